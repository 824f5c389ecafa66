//! Start-up checks: the environment is read once (plus `.env` in dev mode), every setting is
//! checked before anything starts, the database is tried and the port is opened, and every
//! problem found is reported at once in plain words, with what to do about it. A
//! misconfigured deployment then fails in one round trip instead of one fix per restart.

use std::collections::HashMap;
use std::fmt;
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_postgres::error::SqlState;

use crate::config::{AppConfig, OperationsConfig};
use crate::db::{PoolSettings, tls};

/// What the process was started to do; the checks differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve requests (production and staging).
    Serve,
    /// Apply the migrations and exit.
    Migrate,
    /// Local development: `.env` is read, the dev server is the default, a missing database
    /// is created and migrations are applied before serving.
    Dev,
}

impl Mode {
    fn serves(self) -> bool {
        matches!(self, Mode::Serve | Mode::Dev)
    }
}

/// The variables the process was started with, read once.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    /// The process environment, plus in dev mode the variables of `env_file` (usually
    /// `.env`; a missing `.env` is fine, another missing file is not), which never override a
    /// variable already set. In dev mode the Inngest dev server is the default
    /// (`INNGEST_DEV=1` unless set).
    pub fn read(mode: Mode, env_file: Option<&Path>) -> Result<Self, Problems> {
        let mut vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        if mode == Mode::Dev {
            if let Some(path) = env_file
                && (path.exists() || path != Path::new(".env"))
            {
                let problem = |e: dotenvy::Error| {
                    Problems(vec![format!("{} could not be read: {e}", path.display())])
                };
                for entry in dotenvy::from_path_iter(path).map_err(problem)? {
                    let (name, value) = entry.map_err(problem)?;
                    vars.entry(name).or_insert(value);
                }
            }
            vars.entry("INNGEST_DEV".to_owned())
                .or_insert_with(|| "1".to_owned());
        }
        Ok(Self { vars })
    }

    /// An environment of exactly these variables (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// A variable's value; empty counts as unset, as in [`AppConfig::from_vars`].
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

/// Everything that stops the process from starting, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        writeln!(f, "huckleberry cannot start ({count} {noun}):")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The variables that must hold an http(s) URL when set.
const URL_VARS: &[&str] = &[
    "PUBLIC_URL",
    "STRIPE_API_BASE",
    "PAYPAL_API_BASE",
    "CLERK_API_BASE",
    "RESEND_BASE_URL",
    "DISCORD_API_BASE",
    "DISCORD_AUTHORIZE_URL",
    "INNGEST_BASE_URL",
    "INNGEST_API_BASE_URL",
    "INNGEST_EVENT_API_BASE_URL",
    "INNGEST_SERVE_ORIGIN",
];

/// An example of a working `DATABASE_URL`, for the messages.
const DATABASE_URL_EXAMPLE: &str = "postgres://postgres@127.0.0.1:5432/huckleberry";

/// Checks every setting without touching the network; returns every problem found.
pub fn check_settings(env: &Environment, mode: Mode) -> Vec<String> {
    let mut problems = Vec::new();
    let get = |name: &str| env.get(name);

    match get("DATABASE_URL") {
        None => problems.push(format!(
            "DATABASE_URL is not set: it names the PostgreSQL database, e.g. \
             {DATABASE_URL_EXAMPLE} (scripts/dev.sh starts a local one and sets it for you)"
        )),
        Some(url) => match database_target(&url) {
            Ok(_) => {}
            // The URL itself is not echoed: it may hold a password.
            Err(Some(sslmode)) => problems.push(format!(
                "DATABASE_URL: {sslmode}: use disable, allow, prefer, require, verify-ca or \
                 verify-full"
            )),
            Err(None) => problems.push(format!(
                "DATABASE_URL is not a PostgreSQL URL: expected \
                 postgres://user:password@host:port/database, e.g. {DATABASE_URL_EXAMPLE}"
            )),
        },
    }
    if let Some(port) = get("PORT")
        && port.trim().parse::<u16>().is_err()
    {
        problems.push(format!(
            "PORT is not a port number: {port:?} (expected 1 to 65535; the default is 3000)"
        ));
    }
    if let Some(minutes) = get("CHECKOUT_HOLD_MINUTES") {
        match minutes.trim().parse::<u64>() {
            Ok(m) if m >= 31 => {}
            Ok(_) => problems.push(
                "CHECKOUT_HOLD_MINUTES must be at least 31: a Stripe checkout lasts at least 30 \
                 minutes and the seat hold must outlive it (the default is 35)"
                    .to_owned(),
            ),
            Err(_) => problems.push(format!(
                "CHECKOUT_HOLD_MINUTES is not a whole number of minutes: {minutes:?}"
            )),
        }
    }
    for name in URL_VARS {
        if let Some(value) = get(name)
            && !is_http_url(&value)
        {
            problems.push(format!(
                "{name} is not a valid URL: {value:?} (expected http:// or https:// and a host, \
                 e.g. https://example.com)"
            ));
        }
    }
    if let Some(sandbox) = get("SANDBOX") {
        match (mode, sandbox.trim()) {
            (Mode::Dev, "on" | "off") => {}
            (Mode::Dev, other) => problems.push(format!(
                "SANDBOX is neither on nor off: {other:?} (on, the default, stands in for \
                 Stripe, Clerk, Resend and Discord when their keys are not set)"
            )),
            _ => problems.push(
                "SANDBOX is set, but the sandbox stand-ins exist only in `huckleberry dev`: \
                 `serve` never serves them. Unset SANDBOX and configure the providers' keys"
                    .to_owned(),
            ),
        }
    }
    if let Some(dev) = get("INNGEST_DEV") {
        let dev = dev.trim();
        if !matches!(dev, "0" | "1" | "true" | "false") && !is_http_url(dev) {
            problems.push(format!(
                "INNGEST_DEV is neither 1, 0 nor the dev server's URL: {dev:?} (e.g. \
                 INNGEST_DEV=1, or INNGEST_DEV=http://127.0.0.1:8288)"
            ));
        }
    }

    check_stripe(&get, &mut problems);
    check_paypal(&get, &mut problems);
    check_prefix(
        &get,
        "CLERK_SECRET_KEY",
        "sk_",
        "a Clerk secret key (sk_test_... or sk_live_..., from the Clerk dashboard's API keys)",
        &mut problems,
    );
    check_prefix(
        &get,
        "RESEND_API_KEY",
        "re_",
        "a Resend API key (re_..., from resend.com/api-keys)",
        &mut problems,
    );
    if let Some(limit) = get("RESEND_RATE_LIMIT")
        && !limit.trim().parse::<u32>().is_ok_and(|n| n > 0)
    {
        problems.push(format!(
            "RESEND_RATE_LIMIT is not a positive whole number of requests per second: {limit:?}"
        ));
    }
    if let Some(from) = get("EMAIL_FROM")
        && !from.contains('@')
    {
        problems.push(format!(
            "EMAIL_FROM has no email address: {from:?} (e.g. Huckleberry Art Academy \
             <hello@example.com>)"
        ));
    }
    check_discord(&get, &mut problems);
    if let Some(secret) = get("LINK_SIGNING_SECRET")
        && secret.len() < 32
    {
        problems.push(format!(
            "LINK_SIGNING_SECRET is too short: it has {} characters and needs at least 32 \
             (e.g. the output of `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    for name in ["CLERK_WEBHOOK_SECRET", "RESEND_WEBHOOK_SECRET"] {
        check_prefix(
            &get,
            name,
            "whsec_",
            "a webhook signing secret (whsec_..., from the provider's webhook settings)",
            &mut problems,
        );
    }
    if mode.serves() && inngest_cloud(env) {
        for (name, why) in [
            (
                "INNGEST_SIGNING_KEY",
                "every request from Inngest is checked with it",
            ),
            (
                "INNGEST_EVENT_KEY",
                "events cannot be sent to Inngest without it",
            ),
        ] {
            if get(name).is_none() {
                problems.push(format!(
                    "{name} is not set: in cloud mode (the default) {why}; set it from the \
                     Inngest dashboard, or set INNGEST_DEV=1 to use the local dev server"
                ));
            }
        }
    }
    // Read later, by the full configuration: checked here one by one, so a bad one is listed
    // with the rest rather than after they are fixed.
    for name in crate::config::LATE_SETTINGS {
        if let Err(e) = crate::config::check_late_setting(name, &get) {
            problems.push(e.to_string());
        }
    }
    problems
}

/// Whether the Inngest settings select cloud mode (no `INNGEST_DEV`, or `INNGEST_DEV=0`).
fn inngest_cloud(env: &Environment) -> bool {
    env.get("INNGEST_DEV")
        .is_none_or(|dev| matches!(dev.trim(), "0" | "false"))
}

fn check_stripe(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) {
    match get("STRIPE_SECRET_KEY") {
        Some(key) if key.starts_with("pk_") => problems.push(
            "STRIPE_SECRET_KEY is a publishable key (pk_...): use the secret key, which starts \
             with sk_ (Stripe dashboard, Developers, API keys)"
                .to_owned(),
        ),
        Some(key) if !(key.starts_with("sk_") || key.starts_with("rk_")) => problems.push(
            "STRIPE_SECRET_KEY does not look like a Stripe secret key: it should start with sk_ \
             (sk_test_... in test mode)"
                .to_owned(),
        ),
        Some(_) => {
            if get("STRIPE_WEBHOOK_SECRET").is_none() {
                problems.push(
                    "STRIPE_WEBHOOK_SECRET is not set: Stripe is on (STRIPE_SECRET_KEY is set) \
                     and its webhooks cannot be verified without the signing secret (whsec_..., \
                     from the webhook endpoint's page or `stripe listen`)"
                        .to_owned(),
                );
            }
        }
        None => {
            if get("STRIPE_WEBHOOK_SECRET").is_some() {
                problems.push(
                    "STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not, so Stripe would \
                     be off: set both, or neither"
                        .to_owned(),
                );
            }
        }
    }
    check_prefix(
        get,
        "STRIPE_WEBHOOK_SECRET",
        "whsec_",
        "a Stripe webhook signing secret (whsec_..., from the webhook endpoint's page or \
         `stripe listen`)",
        problems,
    );
}

fn check_paypal(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) {
    let others = ["PAYPAL_CLIENT_SECRET", "PAYPAL_WEBHOOK_ID"];
    if get("PAYPAL_CLIENT_ID").is_some() {
        for name in others {
            if get(name).is_none() {
                problems.push(format!(
                    "{name} is not set: PayPal is on (PAYPAL_CLIENT_ID is set) and needs it"
                ));
            }
        }
    } else {
        for name in others {
            if get(name).is_some() {
                problems.push(format!(
                    "{name} is set but PAYPAL_CLIENT_ID is not, so PayPal would be off: set \
                     PAYPAL_CLIENT_ID too, or unset {name}"
                ));
            }
        }
    }
}

fn check_discord(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) {
    if get("DISCORD_CLIENT_ID").is_some() {
        if get("DISCORD_CLIENT_SECRET").is_none() {
            problems.push(
                "DISCORD_CLIENT_SECRET is not set: Discord is on (DISCORD_CLIENT_ID is set) and \
                 needs it"
                    .to_owned(),
            );
        }
        if get("LINK_SIGNING_SECRET").is_none() {
            problems.push(
                "LINK_SIGNING_SECRET is not set: Discord is on and its OAuth states are signed \
                 with it (32 characters or more, e.g. the output of `openssl rand -hex 32`)"
                    .to_owned(),
            );
        }
        if get("DISCORD_BOT_TOKEN").is_some() {
            for name in ["DISCORD_GUILD_ID", "DISCORD_MENTEE_ROLE_ID"] {
                if get(name).is_none() {
                    problems.push(format!(
                        "{name} is not set: the Discord bot is on (DISCORD_BOT_TOKEN is set) \
                         and needs it"
                    ));
                }
            }
        }
    } else {
        for name in ["DISCORD_CLIENT_SECRET", "DISCORD_BOT_TOKEN"] {
            if get(name).is_some() {
                problems.push(format!(
                    "{name} is set but DISCORD_CLIENT_ID is not, so Discord would be off: set \
                     DISCORD_CLIENT_ID too, or unset {name}"
                ));
            }
        }
    }
}

fn check_prefix(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    prefix: &str,
    what: &str,
    problems: &mut Vec<String>,
) {
    if let Some(value) = get(name)
        && !value.starts_with(prefix)
    {
        // The value is a secret: never echoed.
        problems.push(format!(
            "{name} does not look like {what}: it should start with {prefix}"
        ));
    }
}

fn is_http_url(value: &str) -> bool {
    url::Url::parse(value.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// What the pool will connect to, read as the pool reads it (`sslmode` included), or why
/// not: `Some` names a wrong `sslmode`; `None` is any other malformed URL.
fn database_target(url: &str) -> Result<tls::Target, Option<String>> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(None);
    }
    tls::target(url).map_err(|why| why.starts_with("sslmode=").then_some(why))
}

/// How the start-up checks reach the database: as the pool will, over TLS when `sslmode`
/// asks for it, within the pool's connect timeout.
struct Database {
    config: tokio_postgres::Config,
    transport: tls::Transport,
    timeout: Duration,
}

impl Database {
    /// `Ok(None)` when the URL is malformed (`check_settings` reports it).
    fn of(url: &str, settings: &PoolSettings) -> Result<Option<Self>, String> {
        let Ok(target) = database_target(url) else {
            return Ok(None);
        };
        let transport = tls::transport(&target, settings.ca_cert.as_deref())?;
        Ok(Some(Self {
            config: target.config,
            transport,
            timeout: settings.connect_timeout,
        }))
    }

    /// The same server, its database `name`.
    fn named(&self, name: &str) -> Self {
        let mut config = self.config.clone();
        config.dbname(name);
        Self {
            config,
            transport: self.transport.clone(),
            timeout: self.timeout,
        }
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, ConnectError> {
        let connecting = tls::connect_client(&self.config, &self.transport);
        match tokio::time::timeout(self.timeout, connecting).await {
            Err(_) => Err(ConnectError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(ConnectError::Postgres(e)),
            Ok(Ok(client)) => Ok(client),
        }
    }

    fn address(&self) -> DatabaseAddress {
        DatabaseAddress::of(&self.config)
    }
}

/// Where a database lives, for the messages.
struct DatabaseAddress {
    host: String,
    port: u16,
    user: String,
    name: String,
}

impl DatabaseAddress {
    fn of(config: &tokio_postgres::Config) -> Self {
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        // PostgreSQL's own default: the database named after the user.
        let name = config.get_dbname().unwrap_or(&user).to_owned();
        Self {
            host,
            port,
            user,
            name,
        }
    }
}

impl fmt::Display for DatabaseAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why the database `DATABASE_URL` names cannot be used, in plain words, or `None` when it
/// answers (or is not set: `check_settings` says so). It is reached as the pool will reach it:
/// `sslmode`, `DATABASE_CA_CERT` and `DATABASE_CONNECT_TIMEOUT_SECS` apply. In dev mode a
/// missing database is created.
pub async fn check_database(env: &Environment, mode: Mode) -> Option<String> {
    let url = env.get("DATABASE_URL")?;
    // Another malformed setting is reported elsewhere; the database is reached with the
    // defaults then, but still with its CA.
    let settings = OperationsConfig::from_vars(&|name| env.get(name))
        .map(|operations| operations.database)
        .unwrap_or_else(|_| PoolSettings {
            ca_cert: env.get("DATABASE_CA_CERT").map(std::path::PathBuf::from),
            ..PoolSettings::default()
        });
    let database = match Database::of(&url, &settings) {
        Ok(Some(database)) => database,
        Ok(None) => return None,
        Err(problem) => return Some(problem),
    };
    let address = database.address();
    let error = match database.connect().await {
        Ok(client) => return check_migrations(&client, mode).await,
        Err(error) => error,
    };
    if error.missing_database() && mode == Mode::Dev {
        return create_database(&database, &address).await.err();
    }
    Some(error.describe(&address, &database.transport))
}

enum ConnectError {
    Timeout(Duration),
    Postgres(tokio_postgres::Error),
}

impl ConnectError {
    fn missing_database(&self) -> bool {
        matches!(self, ConnectError::Postgres(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME))
    }

    fn describe(&self, at: &DatabaseAddress, transport: &tls::Transport) -> String {
        let error = match self {
            ConnectError::Timeout(timeout) => {
                return format!(
                    "the database at {at} did not answer within {} seconds: check the host and \
                     port in DATABASE_URL and that PostgreSQL is running there",
                    timeout.as_secs()
                );
            }
            ConnectError::Postgres(error) => error,
        };
        let code = error.code();
        if code == Some(&SqlState::INVALID_CATALOG_NAME) {
            return format!(
                "the database \"{name}\" does not exist on {at}: create it with `createdb -h {host} \
                 -p {port} -U {user} {name}` (or run scripts/dev.sh, which creates it)",
                name = at.name,
                host = at.host,
                port = at.port,
                user = at.user,
            );
        }
        if code == Some(&SqlState::INVALID_PASSWORD) {
            return format!(
                "the database at {at} refused user \"{}\": check the user and password in \
                 DATABASE_URL",
                at.user
            );
        }
        if code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION) {
            // pg_hba.conf: also what a server that takes TLS only says to a plain connection.
            let server = error.as_db_error().map_or("", |db| db.message());
            let tls_hint = match transport {
                tls::Transport::Plain => {
                    "; if the server accepts TLS connections only, add sslmode=require to \
                     DATABASE_URL"
                }
                tls::Transport::Tls { .. } => "",
            };
            return format!(
                "the database at {at} refused user \"{}\" ({server}): check the user, \
                 password and database in DATABASE_URL{tls_hint}",
                at.user
            );
        }
        let io = std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<std::io::Error>());
        match io.map(std::io::Error::kind) {
            Some(ErrorKind::ConnectionRefused) => format!(
                "cannot reach the database at {at} (connection refused): is PostgreSQL running \
                 there? Without DATABASE_URL, scripts/dev.sh starts a local one"
            ),
            _ => format!(
                "cannot use the database at {at}: {}",
                tls::explain_failure(error, transport)
            ),
        }
    }
}

/// Drops the database `url` names, if there, and creates it empty: the demo's own database,
/// which each `huckleberry demo` starts afresh.
pub async fn recreate_database(url: &str) -> Result<(), String> {
    let database = Database::of(url, &PoolSettings::default())?
        .ok_or("DATABASE_URL is not a PostgreSQL URL")?;
    let at = database.address();
    let (client, quoted) = server_of(&database, &at).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .await
        .map_err(|e| format!("cannot drop the database {quoted} at {at}: {e}"))?;
    create_database(&database, &at).await
}

/// A connection to the server's `postgres` database, and the quoted name of `at`'s.
async fn server_of(
    database: &Database,
    at: &DatabaseAddress,
) -> Result<(tokio_postgres::Client, String), String> {
    let server = database.named("postgres");
    let client = server
        .connect()
        .await
        .map_err(|e| e.describe(&server.address(), &server.transport))?;
    Ok((client, format!("\"{}\"", at.name.replace('"', "\"\""))))
}

async fn create_database(database: &Database, at: &DatabaseAddress) -> Result<(), String> {
    let (client, quoted) = server_of(database, at).await?;
    match client
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .await
    {
        Ok(()) => {
            tracing::info!(database = %at.name, at = %at, "created the database");
            Ok(())
        }
        // Another process created it in the meantime: just as good.
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
        Err(e) => Err(format!(
            "the database \"{}\" does not exist on {at} and could not be created: {e}",
            at.name
        )),
    }
}

/// When serving, pending migrations are a problem: the code expects every table.
async fn check_migrations(client: &tokio_postgres::Client, mode: Mode) -> Option<String> {
    if mode != Mode::Serve {
        return None;
    }
    use diesel::migration::MigrationSource;
    let known = match MigrationSource::<diesel::pg::Pg>::migrations(&crate::db::MIGRATIONS) {
        Ok(known) => known,
        Err(e) => return Some(format!("the embedded migrations cannot be read: {e}")),
    };
    // No table yet means nothing was applied.
    let applied: Vec<String> = client
        .query("SELECT version FROM __diesel_schema_migrations", &[])
        .await
        .map(|rows| rows.iter().map(|row| row.get::<_, String>(0)).collect())
        .unwrap_or_default();
    let pending = known
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .count();
    (pending > 0).then(|| {
        let noun = if pending == 1 {
            "migration is"
        } else {
            "migrations are"
        };
        format!(
            "{pending} database {noun} not applied yet: run `huckleberry migrate` (`cargo run \
             -- migrate`) first"
        )
    })
}

/// Opens the listening port, or says why it cannot be opened.
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, String> {
    TcpListener::bind((host, port))
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::AddrInUse => format!(
                "port {port} is already in use by another program (another huckleberry?): stop \
                 it, or set PORT to a free port"
            ),
            ErrorKind::PermissionDenied => format!(
                "port {port} cannot be opened by this user (ports below 1024 need privileges): \
                 set PORT to 1024 or above"
            ),
            _ => format!("cannot listen on port {port}: {e}"),
        })
}

/// A configuration that passed every check, and the open port when serving.
pub struct Ready {
    /// The settings.
    pub config: AppConfig,
    /// The port, already bound, when the mode serves.
    pub listener: Option<TcpListener>,
}

/// Where the service listens: every interface, except in dev with the sandbox on, whose
/// stand-ins let anyone who reaches them sign in as anyone and pay without paying: loopback only.
pub fn listen_host(env: &Environment, mode: Mode) -> &'static str {
    if mode == Mode::Dev && env.get("SANDBOX").as_deref() != Some("off") {
        "127.0.0.1"
    } else {
        "0.0.0.0"
    }
}

/// Runs every check and returns the settings, or every problem found.
pub async fn prepare(env: &Environment, mode: Mode) -> Result<Ready, Problems> {
    let mut problems = check_settings(env, mode);
    let config = if problems.is_empty() {
        match AppConfig::from_vars(|name| env.get(name)) {
            Ok(config) => Some(config),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        }
    } else {
        None
    };
    if let Some(problem) = check_database(env, mode).await {
        problems.push(problem);
    }
    let port = env
        .get("PORT")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(3000);
    let listener = if mode.serves() {
        match bind(listen_host(env, mode), port).await {
            Ok(listener) => Some(listener),
            Err(problem) => {
                problems.push(problem);
                None
            }
        }
    } else {
        None
    };
    match config {
        Some(config) if problems.is_empty() => Ok(Ready { config, listener }),
        _ => Err(Problems(problems)),
    }
}

/// One line saying which integrations are on, in sandbox (`stood_in`, by name) or off, and
/// where Inngest is.
pub fn summary(config: &AppConfig, stood_in: &[&str]) -> String {
    let state = |name: &str, enabled: bool| match (enabled, stood_in.contains(&name)) {
        (true, true) => "sandbox",
        (true, false) => "on",
        (false, _) => "off",
    };
    let discord = match &config.discord {
        Some(_) if stood_in.contains(&"Discord") => "sandbox",
        Some(discord) if discord.bot.is_some() => "on (with bot)",
        Some(_) => "on (no bot)",
        None => "off",
    };
    let inngest = match config.inngest.mode() {
        inngest_sdk::config::Mode::Dev => {
            format!("dev server at {}", config.inngest.api_base_url())
        }
        inngest_sdk::config::Mode::Cloud => format!("cloud at {}", config.inngest.api_base_url()),
    };
    format!(
        "integrations: Stripe {}, PayPal {}, Clerk {}, Resend {}, Discord {discord}; Inngest {inngest}",
        state("Stripe", config.stripe.is_some()),
        state("PayPal", config.paypal.is_some()),
        state("Clerk", config.clerk.is_some()),
        state("Resend", config.resend.is_some()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(pairs: &[(&str, &str)], mode: Mode) -> Vec<String> {
        check_settings(&Environment::from_pairs(pairs.iter().copied()), mode)
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app");

    #[test]
    fn dev_with_the_sandbox_listens_on_loopback_only() {
        let env =
            |pairs: &[(&'static str, &'static str)]| Environment::from_pairs(pairs.iter().copied());
        assert_eq!(listen_host(&env(&[]), Mode::Dev), "127.0.0.1");
        assert_eq!(
            listen_host(&env(&[("SANDBOX", "off")]), Mode::Dev),
            "0.0.0.0"
        );
        assert_eq!(listen_host(&env(&[]), Mode::Serve), "0.0.0.0");
    }

    #[test]
    fn a_complete_dev_configuration_has_no_problems() {
        assert_eq!(
            problems(&[DB, ("INNGEST_DEV", "1")], Mode::Dev),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_problem_is_listed_not_just_the_first() {
        let found = problems(
            &[
                ("STRIPE_SECRET_KEY", "pk_test_123"),
                ("STRIPE_WEBHOOK_SECRET", "abc"),
                ("PUBLIC_URL", "localhost:3000"),
                ("PORT", "http"),
            ],
            Mode::Serve,
        );
        assert_eq!(found.len(), 7, "{found:#?}");
        assert!(found[0].starts_with("DATABASE_URL is not set"));
    }

    #[test]
    fn bad_timeout_pool_relay_and_cors_settings_are_listed_with_the_rest() {
        let found = problems(
            &[
                DB,
                ("INNGEST_DEV", "1"),
                ("PORT", "http"),
                ("PROVIDER_TIMEOUT_MS", "0"),
                ("RELAY_INTERVAL_MS", "soon"),
                ("RELAY_BACKGROUND", "maybe"),
                ("DATABASE_POOL_SIZE", "0"),
                ("CORS_ALLOWED_ORIGINS", "dashboard.example.com"),
                ("SHUTDOWN_GRACE_SECS", "-1"),
            ],
            Mode::Serve,
        );
        let named = [
            "PORT ",
            "PROVIDER_TIMEOUT_MS",
            "RELAY_INTERVAL_MS",
            "RELAY_BACKGROUND",
            "DATABASE_POOL_SIZE",
            "CORS_ALLOWED_ORIGINS",
            "SHUTDOWN_GRACE_SECS",
        ];
        for name in named {
            let naming = found.iter().filter(|p| p.starts_with(name)).count();
            assert_eq!(naming, 1, "{name}: {found:#?}");
        }
        assert_eq!(found.len(), named.len(), "{found:#?}");
        // Good values of the same settings are no problem.
        let good = problems(
            &[
                DB,
                ("INNGEST_DEV", "1"),
                ("PROVIDER_TIMEOUT_MS", "2500"),
                ("RELAY_BACKGROUND", "false"),
                ("DATABASE_POOL_SIZE", "4"),
                ("CORS_ALLOWED_ORIGINS", "https://dashboard.example.com"),
            ],
            Mode::Serve,
        );
        assert_eq!(good, Vec::<String>::new());
    }

    #[test]
    fn every_sslmode_the_pool_knows_is_accepted_and_a_typo_is_named() {
        for sslmode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let url = format!("postgres://u:hunter2@db.example.com/app?sslmode={sslmode}");
            assert_eq!(
                problems(&[("DATABASE_URL", url.as_str())], Mode::Migrate),
                Vec::<String>::new(),
                "{sslmode}"
            );
        }
        let url = "postgres://u:hunter2@db.example.com/app?sslmode=verify_full";
        let found = problems(&[("DATABASE_URL", url)], Mode::Migrate);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("sslmode=verify_full") && !found[0].contains("hunter2"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn a_database_url_with_a_password_is_not_echoed_when_malformed() {
        let found = problems(&[("DATABASE_URL", "mysql://u:hunter2@h/db")], Mode::Migrate);
        assert_eq!(found.len(), 1);
        assert!(!found[0].contains("hunter2"), "{}", found[0]);
    }

    #[test]
    fn cloud_mode_needs_both_inngest_keys_only_when_serving() {
        assert_eq!(problems(&[DB], Mode::Serve).len(), 2);
        assert_eq!(problems(&[DB], Mode::Migrate), Vec::<String>::new());
    }

    #[test]
    fn half_configured_integrations_are_named() {
        let found = problems(
            &[
                DB,
                ("INNGEST_DEV", "1"),
                ("PAYPAL_WEBHOOK_ID", "WH-1"),
                ("DISCORD_CLIENT_ID", "123"),
                ("DISCORD_BOT_TOKEN", "bot"),
            ],
            Mode::Dev,
        );
        assert_eq!(
            found,
            vec![
                "PAYPAL_WEBHOOK_ID is set but PAYPAL_CLIENT_ID is not, so PayPal would be off: \
                 set PAYPAL_CLIENT_ID too, or unset PAYPAL_WEBHOOK_ID",
                "DISCORD_CLIENT_SECRET is not set: Discord is on (DISCORD_CLIENT_ID is set) and \
                 needs it",
                "LINK_SIGNING_SECRET is not set: Discord is on and its OAuth states are signed \
                 with it (32 characters or more, e.g. the output of `openssl rand -hex 32`)",
                "DISCORD_GUILD_ID is not set: the Discord bot is on (DISCORD_BOT_TOKEN is set) \
                 and needs it",
                "DISCORD_MENTEE_ROLE_ID is not set: the Discord bot is on (DISCORD_BOT_TOKEN is \
                 set) and needs it",
            ]
        );
    }

    #[test]
    fn the_summary_names_each_integration() {
        let config = AppConfig::from_vars(|name| match name {
            "DATABASE_URL" => Some(DB.1.to_owned()),
            "INNGEST_DEV" => Some("1".to_owned()),
            "STRIPE_SECRET_KEY" => Some("sk_test_1".to_owned()),
            "STRIPE_WEBHOOK_SECRET" => Some("whsec_1".to_owned()),
            _ => None,
        })
        .expect("a valid configuration");
        assert_eq!(
            summary(&config, &[]),
            "integrations: Stripe on, PayPal off, Clerk off, Resend off, Discord off; Inngest \
             dev server at http://127.0.0.1:8288/"
        );
        assert_eq!(
            summary(&config, &["Stripe"]),
            "integrations: Stripe sandbox, PayPal off, Clerk off, Resend off, Discord off; \
             Inngest dev server at http://127.0.0.1:8288/"
        );
    }
}
