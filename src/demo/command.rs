//! The `demo` command: its own database, the [`LocalService`], the [`walkthrough`].

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::local::LocalService;
use super::walkthrough::{self, Say};
use crate::startup::{self, Environment, Mode};
use crate::{db, telemetry};

/// Runs the demo; the exit code says whether every step and function went through.
pub fn main(env_file: &Path) -> ExitCode {
    telemetry::init_for_demo();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huckleberry demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(env_file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("huckleberry demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(env_file: &Path) -> Result<(), String> {
    // Read as `dev` reads it: the environment, then `.env`.
    let env = Environment::read(Mode::Dev, Some(env_file)).map_err(|p| p.to_string())?;
    let url = env.get("DATABASE_URL").ok_or(
        "DATABASE_URL is not set: the demo makes its own database on that server \
         (scripts/dev.sh demo starts a local PostgreSQL and sets it for you)",
    )?;
    let url = demo_database_url(&url)?;
    startup::recreate_database(&url).await?;
    let pool = db::pool(&url, 8).map_err(|e| e.to_string())?;
    db::run_migrations(&pool)
        .await
        .map_err(|e| format!("migrating the demo database: {e}"))?;
    let mut conn = db::conn(&pool).await.map_err(|e| e.to_string())?;
    super::seed(&mut conn)
        .await
        .map_err(|e| format!("loading the demo data: {e}"))?;
    drop(conn);
    pool.close();

    let say: Say = Arc::new(|line| println!("{line}"));
    say("Huckleberry demo: one purchase through the whole system, offline.");
    say("Providers are sandbox stand-ins; Inngest is played in process by the SDK's executor.");
    let service = LocalService::start(&url, walkthrough::progress_printer(say.clone())).await?;
    let state = walkthrough::run(&service, say)
        .await
        .map_err(|e| e.to_string())?;
    if state.failed_runs.is_empty() {
        Ok(())
    } else {
        Err(format!("failed runs: {}", state.failed_runs.join(", ")))
    }
}

/// The URL of the demo's database: `url` with `_demo` added to the database's name.
pub fn demo_database_url(url: &str) -> Result<String, String> {
    let not_url = || {
        "DATABASE_URL is not a postgres://user@host:port/database URL, which the demo needs \
         to name its own database"
            .to_owned()
    };
    let mut parsed = url::Url::parse(url).map_err(|_| not_url())?;
    let name = parsed.path().trim_start_matches('/');
    let name = if name.is_empty() { "postgres" } else { name };
    let demo = format!("/{name}_demo");
    parsed.set_path(&demo);
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::demo_database_url;

    #[test]
    fn the_demo_database_sits_beside_the_configured_one() {
        assert_eq!(
            demo_database_url("postgres://me:pw@db:5432/huckleberry?sslmode=disable"),
            Ok("postgres://me:pw@db:5432/huckleberry_demo?sslmode=disable".to_owned())
        );
        assert_eq!(
            demo_database_url("postgres://me@db"),
            Ok("postgres://me@db/postgres_demo".to_owned())
        );
        assert!(demo_database_url("host=db dbname=x").is_err());
    }
}
