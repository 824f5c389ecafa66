//! The command line: `serve` (the default), `migrate` and `dev`. Each command checks the whole
//! configuration first ([`crate::startup`]) and fails with plain words and a non-zero exit,
//! never a debug dump.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::AppState;
use crate::startup::{self, Environment, Mode, Problems};
use crate::{build_router, db, demo, relay, sandbox, server, telemetry};

/// Huckleberry Art Academy mentorships on Inngest.
///
/// Settings come from the environment (see .env.example); `dev` also reads `.env`.
#[derive(Debug, Parser)]
#[command(name = "huckleberry", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Serve the app on $PORT (default 3000): the Inngest endpoint, checkout and webhooks.
    ///
    /// The database must be migrated (`huckleberry migrate`). This is the default command.
    Serve,
    /// Apply the pending database migrations, then exit.
    Migrate,
    /// Run locally: read `.env`, use the Inngest dev server unless INNGEST_DEV says otherwise,
    /// create the database if missing, migrate, load the demo mentors and products, serve.
    ///
    /// scripts/dev.sh wraps this command and also starts PostgreSQL and the dev server.
    Dev {
        /// The file of settings to read; variables already in the environment win.
        #[arg(long, value_name = "PATH", default_value = ".env")]
        env_file: PathBuf,
    },
    /// Walk one purchase through the whole system, offline, and print each function and step
    /// as it runs, then the state it ends in.
    ///
    /// Runs on its own database beside DATABASE_URL's (its name plus `_demo`, recreated each
    /// time), with every provider stood in by the sandbox and Inngest played in process by the
    /// SDK's executor: no account, no network, no dev server. A demo and a smoke test, never
    /// the production path. `scripts/dev.sh demo` runs it against the local cluster.
    Demo {
        /// The file of settings to read (for DATABASE_URL); the environment wins.
        #[arg(long, value_name = "PATH", default_value = ".env")]
        env_file: PathBuf,
    },
}

/// Parses the arguments, runs the command and says how it ended.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let (mode, env_file) = match command {
        Command::Serve => (Mode::Serve, None),
        Command::Migrate => (Mode::Migrate, None),
        Command::Dev { env_file } => (Mode::Dev, Some(env_file)),
        Command::Demo { env_file } => return demo::command::main(&env_file),
    };
    // Read first: in dev mode `.env` may set RUST_LOG and LOG_FORMAT, and dev mode itself
    // means text logs (INNGEST_DEV).
    let env = match Environment::read(mode, env_file.as_deref()) {
        Ok(env) => env,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&telemetry::LogSettings::from_vars(|name| env.get(name)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huckleberry: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(mode, env));
    telemetry::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Problems(problems)) => {
            eprint!("{problems}");
            ExitCode::FAILURE
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("huckleberry: {message}");
            ExitCode::FAILURE
        }
    }
}

/// How a command failed.
enum Failure {
    /// Start-up checks failed: nothing was started.
    Problems(Problems),
    /// Something failed after the checks passed.
    Runtime(String),
}

impl From<Problems> for Failure {
    fn from(problems: Problems) -> Self {
        Failure::Problems(problems)
    }
}

fn fail(what: &str, error: impl std::fmt::Display) -> Failure {
    Failure::Runtime(format!("{what}: {error}"))
}

async fn run(mode: Mode, env: Environment) -> Result<(), Failure> {
    let ready = startup::prepare(&env, mode).await?;
    // As soon as the port is bound: from then on SIGTERM stops the process gracefully.
    let shutdown = ready.listener.as_ref().map(|_| shutdown_signal());
    let mut config = ready.config;
    let sandbox = if mode == Mode::Dev && env.get("SANDBOX").as_deref() != Some("off") {
        let origins = sandbox::Origins::of(&config, config.port);
        sandbox::stand_in(&mut config, &origins)
    } else {
        None
    };
    let pool = db::pool_with(config.database_url.expose(), &config.operations.database)
        .map_err(|e| fail("database", e))?;
    if mode != Mode::Serve {
        let applied = db::run_migrations(&pool)
            .await
            .map_err(|e| fail("database migrations", e))?;
        tracing::info!(count = applied.len(), ?applied, "migrations applied");
    }
    if mode == Mode::Dev {
        let mut conn = db::conn(&pool).await.map_err(|e| fail("demo data", e))?;
        demo::seed(&mut conn)
            .await
            .map_err(|e| fail("demo data", e))?;
        tracing::info!(
            mentors = demo::MENTOR_IDS.len(),
            products = demo::PRODUCT_IDS.len(),
            "demo data in place (rows already there are left as they are)"
        );
    }
    let (Some(listener), Some(shutdown)) = (ready.listener, shutdown) else {
        return Ok(());
    };
    let stood_in = sandbox.as_ref().map(|s| s.stood_in()).unwrap_or_default();
    tracing::info!("{}", startup::summary(&config, &stood_in));
    let port = config.port;
    let dev = mode == Mode::Dev;
    let timeouts = server::Timeouts {
        shutdown_grace: config.operations.shutdown_grace,
        ..server::Timeouts::default()
    };
    let relay_in_background = config.relay.background;
    let state =
        AppState::with_sandbox(config, pool, sandbox).map_err(|e| fail("configuration", e))?;
    let router = build_router(state.clone()).map_err(|e| fail("Inngest functions", e))?;
    let relay = relay_in_background.then(|| relay::spawn(state));
    if dev {
        tracing::info!(
            "dev mode: the dev console at http://localhost:{port}/dev, the sandbox at \
             http://localhost:{port}/sandbox/, Inngest endpoint http://localhost:{port}/api/inngest"
        );
    }
    tracing::info!(port, "serving /api/inngest");
    server::serve(listener, router, timeouts, shutdown).await;
    if let Some(relay) = relay {
        relay.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The next signal `sig` receives; never, when it could not be installed.
#[cfg(unix)]
async fn received(sig: Option<&mut tokio::signal::unix::Signal>) {
    match sig {
        Some(sig) => drop(sig.recv().await),
        None => std::future::pending::<()>().await,
    }
}

/// Ctrl-C or SIGTERM. The handlers are installed by this call, not when the future is first
/// polled (which `server::serve` does only once no connection is waiting), so a signal that
/// arrives any time after it starts a graceful shutdown instead of killing the process.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        let mut terminate = signal(SignalKind::terminate()).ok();
        async move {
            tokio::select! {
                () = received(interrupt.as_mut()) => {}
                () = received(terminate.as_mut()) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
