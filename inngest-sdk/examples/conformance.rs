//! Serves Inngest's conformance fixtures as app `conformance-rust`, configured from the standard
//! `INNGEST_*` variables like any app: cloud mode unless `INNGEST_DEV` says dev, so it can also
//! check an Inngest Cloud or self-hosted setup (see the README). Port from `PORT`, default 3000.

#[path = "../tests/conformance_fixtures/mod.rs"]
mod conformance_fixtures;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = conformance_fixtures::config(|name| std::env::var(name).ok())?;
    let (mode, api) = (config.mode().as_str(), config.api_base_url().to_string());
    let app = conformance_fixtures::router(config)?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    tracing::info!(mode, %api, "conformance fixtures on http://127.0.0.1:{port}/api/inngest");
    axum::serve(listener, app).await?;
    Ok(())
}
