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
    let pool = db::pool(config.database_url.expose(), 16)?;
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
    let state = AppState::new(config, pool)?;
    let router = build_router(state.clone())?;
    let relay = relay::spawn(state);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    tracing::info!(port, "serving /api/inngest");
    server::serve(
        listener,
        router,
        server::Timeouts::default(),
        shutdown_signal(),
    )
    .await;
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
