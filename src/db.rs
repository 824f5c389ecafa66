//! The PostgreSQL pool (diesel-async over tokio-postgres, no libpq) and embedded migrations.

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

/// Every connection gets a statement timeout (a stuck query fails instead of holding a
/// connection and a lock forever) and an application name (visible in `pg_stat_activity`).
const SESSION_SETUP: &str = "SET statement_timeout = '30s'; SET application_name = 'huckleberry'";

fn establish(
    url: &str,
) -> futures::future::BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> {
    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    use futures::FutureExt;
    async move {
        let mut conn = AsyncPgConnection::establish(url).await?;
        conn.batch_execute(SESSION_SETUP)
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

/// A pool for `url` with at most `max_size` connections.
pub fn pool(url: &str, max_size: usize) -> Result<DbPool, DbError> {
    let mut config = diesel_async::pooled_connection::ManagerConfig::default();
    config.custom_setup = Box::new(establish);
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Build(e.to_string()))
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
