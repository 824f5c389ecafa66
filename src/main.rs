//! `huckleberry serve` runs the service; `huckleberry migrate` applies the migrations.

use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use huckleberry::{build_router, db, relay, server, telemetry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init();
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    let config = AppConfig::from_env()?;
    let pool = db::pool_with(config.database_url.expose(), &config.operations.database)?;
    match command.as_str() {
        "migrate" => {
            let applied = db::run_migrations(&pool).await?;
            tracing::info!(?applied, "migrations applied");
            Ok(())
        }
        "serve" => serve(config, pool).await,
        other => Err(format!("unknown command {other:?}; use `serve` or `migrate`").into()),
    }
}

async fn serve(config: AppConfig, pool: db::DbPool) -> Result<(), Box<dyn std::error::Error>> {
    let port = config.port;
    let timeouts = server::Timeouts {
        shutdown_grace: config.operations.shutdown_grace,
        ..server::Timeouts::default()
    };
    let state = AppState::new(config, pool)?;
    let router = build_router(state.clone())?;
    let relay = relay::spawn(state);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!(port, "serving /api/inngest");
    server::serve(listener, router, timeouts, shutdown_signal()).await;
    tracing::info!("stopped");
    relay.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
