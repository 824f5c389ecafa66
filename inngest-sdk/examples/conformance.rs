//! Serves Inngest's conformance fixtures as app `conformance-rust` in dev mode, for
//! `inngest alpha conformance run` (see the README). Port from `PORT`, default 3000.

#[path = "../tests/conformance_fixtures/mod.rs"]
mod conformance_fixtures;

use axum::Router;
use axum::routing::get;
use inngest_sdk::{Client, Config, ServeHandler};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::from_env(conformance_fixtures::APP_ID)?
        .dev(std::env::var("INNGEST_DEV").ok().as_deref())
        .with_in_band_sync(true);
    let handler = ServeHandler::new(Client::new(config), (), conformance_fixtures::functions())?;
    let app = Router::new()
        .route("/api/inngest", inngest_sdk::axum::serve(handler))
        .route("/health", get(|| async { "ok" }));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!("conformance fixtures on http://127.0.0.1:{port}/api/inngest");
    axum::serve(listener, app).await?;
    Ok(())
}
