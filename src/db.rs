//! The PostgreSQL pool (diesel-async over tokio-postgres, no libpq; TLS in `tls`) and the
//! embedded migrations.

pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The migrations in `migrations/`, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A pool of connections.
pub type DbPool = Pool<AsyncPgConnection>;
/// One pooled connection.
pub type DbConn = Object<AsyncPgConnection>;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had.
    #[error("database unavailable: {0}")]
    Pool(#[from] PoolError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations failed.
    #[error("migrations failed: {0}")]
    Migration(String),
    /// The pool could not be built.
    #[error("database pool: {0}")]
    Build(String),
}

/// Inside an Inngest step: an outage, a timeout or a failed query is worth retrying (the
/// database comes back, a serialization failure passes); a broken set-up is not.
impl inngest_sdk::Classify for DbError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            DbError::Pool(_) | DbError::Query(_) => inngest_sdk::Retry::Default,
            DbError::Migration(_) | DbError::Build(_) => inngest_sdk::Retry::Never,
        }
    }
}

/// Whether a query failed because the connection to the server was lost (the server went
/// away, restarted, or the network dropped): an outage to retry, not a bug.
pub fn is_connection_lost(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        err,
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _
        ) | Error::BrokenTransactionManager
    )
}

impl DbError {
    /// Whether the database was unavailable (no connection, or it was lost mid-query), as
    /// opposed to a query or set-up that is wrong.
    pub fn is_outage(&self) -> bool {
        match self {
            DbError::Pool(_) => true,
            DbError::Query(e) => is_connection_lost(e),
            DbError::Migration(_) | DbError::Build(_) => false,
        }
    }
}

/// A connection from `pool`, or [`DbError::Pool`] when none can be had in time.
pub async fn conn(pool: &DbPool) -> Result<DbConn, DbError> {
    Ok(pool.get().await?)
}

/// How the pool sizes itself and how long it waits; `DATABASE_*` variables (see
/// `config::OperationsConfig`) override the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// At most this many connections (`DATABASE_POOL_SIZE`, 16).
    pub max_size: usize,
    /// How long a request waits for a free connection before it is answered 503
    /// (`DATABASE_POOL_TIMEOUT_SECS`, 10).
    pub wait_timeout: Duration,
    /// How long opening a connection (TCP, TLS, authentication, session set-up) may take
    /// (`DATABASE_CONNECT_TIMEOUT_SECS`, 5): an unreachable host, or one that accepts
    /// connections but never answers, fails instead of hanging.
    pub connect_timeout: Duration,
    /// The server-side `statement_timeout` of every connection (`DATABASE_STATEMENT_TIMEOUT_SECS`,
    /// 30): a stuck query fails instead of holding a connection and a lock forever.
    pub statement_timeout: Duration,
    /// PEM file of the CA that signed the server's certificate (`DATABASE_CA_CERT`), for TLS
    /// (`sslmode=require` in the URL); unset, the public web roots are trusted.
    pub ca_cert: Option<PathBuf>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(10),
            connect_timeout: CONNECT_TIMEOUT,
            statement_timeout: Duration::from_secs(30),
            ca_cert: None,
        }
    }
}

/// Every connection gets the statement timeout and an application name (visible in
/// `pg_stat_activity`).
fn session_setup(statement_timeout: Duration) -> String {
    format!(
        "SET statement_timeout = '{}ms'; SET application_name = 'huckleberry'",
        statement_timeout.as_millis()
    )
}

fn establish(
    target: Arc<tokio_postgres::Config>,
    transport: tls::Transport,
    setup: Arc<str>,
) -> futures::future::BoxFuture<'static, diesel::ConnectionResult<AsyncPgConnection>> {
    use diesel_async::SimpleAsyncConnection;
    use futures::FutureExt;
    async move {
        let mut conn = tls::connect(&target, &transport).await?;
        conn.batch_execute(&setup)
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    }
    .boxed()
}

/// How long opening a connection, or checking an idle one, may take: a server that accepts
/// connections but never answers (a network partition, a host that froze) would otherwise hold
/// every request and step that asks the pool, for as long as TCP takes to give up.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool for `url` with at most `max_size` connections and the default timeouts.
pub fn pool(url: &str, max_size: usize) -> Result<DbPool, DbError> {
    pool_with(
        url,
        &PoolSettings {
            max_size,
            ..PoolSettings::default()
        },
    )
}

/// A pool for `url` sized and timed by `settings`.
pub fn pool_with(url: &str, settings: &PoolSettings) -> Result<DbPool, DbError> {
    let setup: Arc<str> = session_setup(settings.statement_timeout).into();
    let target = tls::target(url).map_err(DbError::Build)?;
    let transport = tls::transport(&target, settings.ca_cert.as_deref()).map_err(DbError::Build)?;
    let target = Arc::new(target.config);
    let mut config = diesel_async::pooled_connection::ManagerConfig::default();
    // The URL was read once above (sslmode included); every connection reuses that reading.
    config.custom_setup =
        Box::new(move |_url| establish(target.clone(), transport.clone(), setup.clone()));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Build(e.to_string()))
}

/// The embedded migrations the database has not applied, by version; empty when the schema is
/// current. A database without diesel's bookkeeping table was never migrated: an error.
pub async fn pending_migrations(conn: &mut AsyncPgConnection) -> Result<Vec<String>, DbError> {
    use diesel::migration::MigrationSource;
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(conn)
        .await?;
    let embedded = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(embedded
        .iter()
        .map(|m| m.name().version().to_string())
        .filter(|version| !applied.iter().any(|a| &a.version == version))
        .collect())
}

/// Applies pending migrations (needs the multi-thread runtime: the harness blocks in place).
pub async fn run_migrations(pool: &DbPool) -> Result<Vec<String>, DbError> {
    let conn = pool.get().await?;
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}
