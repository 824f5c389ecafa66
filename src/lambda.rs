//! Serving on AWS Lambda (cargo feature `lambda`, binary `huckleberry-lambda`): the same
//! router as `huckleberry serve`, behind API Gateway (HTTP API, payload 2.0), a function URL
//! or an application load balancer, through `lambda_http`.
//!
//! Nothing runs between requests: webhooks reach Inngest inline and the `relay-inbox` cron
//! function retries what did not, so there is no background relay here (whatever
//! `RELAY_BACKGROUND` says). Migrations stay a separate step (`huckleberry migrate`); a cold
//! start checks the settings and the database as `serve` does and, on a problem, prints the
//! same list and exits, which Lambda reports as an initialisation error.

use std::process::ExitCode;

use crate::app::AppState;
use crate::config::AppConfig;
use crate::startup::{self, Environment, Mode, Problems};
use crate::{build_router, db, telemetry};

/// Runs the Lambda runtime loop until the runtime stops the process.
pub fn main() -> ExitCode {
    telemetry::init(&telemetry::LogSettings::from_env());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huckleberry-lambda: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run());
    telemetry::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprint!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config = checked_config().await.map_err(|p| p.to_string())?;
    tracing::info!("{}", startup::summary(&config, &[]));
    let pool = db::pool_with(config.database_url.expose(), &config.operations.database)
        .map_err(|e| format!("huckleberry-lambda: database: {e}\n"))?;
    let state = AppState::new(config, pool)
        .map_err(|e| format!("huckleberry-lambda: configuration: {e}\n"))?;
    let router =
        build_router(state).map_err(|e| format!("huckleberry-lambda: Inngest functions: {e}\n"))?;
    lambda_http::run(router)
        .await
        .map_err(|e| format!("huckleberry-lambda: the Lambda runtime stopped: {e}\n"))
}

/// The settings and the database, checked as `serve` checks them (no port: Lambda has none).
async fn checked_config() -> Result<AppConfig, Problems> {
    let env = Environment::read(Mode::Serve, None)?;
    let mut problems = startup::check_settings(&env, Mode::Serve);
    if let Some(problem) = startup::check_database(&env, Mode::Serve).await {
        problems.push(problem);
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    AppConfig::from_vars(|name| env.get(name)).map_err(|e| Problems(vec![e.to_string()]))
}
