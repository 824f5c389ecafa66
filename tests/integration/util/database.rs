//! Per-test PostgreSQL databases: each test gets a copy of a template database that was
//! migrated once, and the copy is dropped when the test ends, whether it passed or panicked.
//!
//! Migrating a database costs far more than copying one, and tests that never clean up fill
//! the server with databases. The template's name carries a hash of `migrations/`, so a
//! changed migration gets a new template while every test process of the same tree, at the
//! same time or later, shares one. `scripts/test.sh` checks that no copy is left behind and
//! drops the templates its run created.

use std::path::Path;
use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use huckleberry::db;
use sha2::{Digest, Sha256};
use uuid::Uuid;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Session-level advisory locks, one per template, keyed `(TEMPLATE_LOCK, hashtext(name))`:
/// shared while a test copies the template, exclusive while it is built or dropped, so a copy
/// never races a half-built template or a drop. `scripts/test.sh` takes the same lock; the
/// number is "huck" in ASCII.
pub const TEMPLATE_LOCK: i32 = 0x6875_636b;

/// Prefix of every template's name; `scripts/test.sh` drops the ones its run created.
pub const TEMPLATE_PREFIX: &str = "huckleberry_tpl_";

/// Prefix of every per-test database's name; `scripts/test.sh` fails if one is left.
pub const TEST_PREFIX: &str = "test_";

/// The template for the migrations in this tree: `huckleberry_tpl_<hash of migrations/>`.
pub static TEMPLATE: LazyLock<String> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files = Vec::new();
    collect_files(&dir, &mut files);
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let relative = file.strip_prefix(&dir).expect("a file under migrations/");
        let contents = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // Lengths first, so that moving bytes between a name and a body changes the hash.
        for part in [relative.to_string_lossy().as_bytes(), &contents] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }
    format!("{TEMPLATE_PREFIX}{}", &hex::encode(hash.finalize())[..16])
});

fn collect_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The server's admin database, where databases are created and dropped.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL must point at a PostgreSQL server the tests may create databases on; `bash scripts/test.sh` starts one")
    })
}

/// The URL of database `name` on the admin database's server.
pub fn url_of(admin: &str, name: &str) -> String {
    let (base, _) = admin.rsplit_once('/').expect("a database URL with a path");
    format!("{base}/{name}")
}

/// A database of this test's own, dropped (connections and all) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// A copy of the migrated template.
    pub async fn migrated() -> Self {
        let database = Self::reserve();
        database.copy_template().await;
        database
    }

    /// An empty database, for tests of the migrations themselves.
    pub async fn empty() -> Self {
        let database = Self::reserve();
        let mut conn = admin(&database.admin).await;
        execute(&mut conn, &format!("CREATE DATABASE {}", database.name))
            .await
            .expect("create an empty database");
        database
    }

    /// A name of this test's own, with nothing created yet: the guard exists before the
    /// database does, so a panic at any point still drops it, and the URL is known early.
    pub fn reserve() -> Self {
        // Every test that touches the database starts here or in `spawn_app`.
        super::capture::install();
        let admin = admin_url();
        let name = format!("{TEST_PREFIX}{}", Uuid::new_v4().simple());
        let url = url_of(&admin, &name);
        Self { admin, name, url }
    }

    /// Creates the reserved database as a copy of the template, building the template first
    /// if no test process has yet.
    pub async fn copy_template(&self) {
        let template: &str = &TEMPLATE;
        let mut conn = admin(&self.admin).await;
        lock_ready_template(&mut conn, &self.admin, template).await;
        let create = format!("CREATE DATABASE {} TEMPLATE {template}", self.name);
        execute(&mut conn, &create)
            .await
            .expect("copy the template database");
        execute(&mut conn, "SELECT pg_advisory_unlock_all()")
            .await
            .expect("release the template lock");
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL that connects to this database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and it runs inside the test's runtime, where blocking on another
        // future panics: a short-lived thread with a runtime of its own does the work. Nothing
        // here may panic, since this also runs while a failed test unwinds.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), Error> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin).await?;
                // FORCE ends connections the test left open (PostgreSQL 13+).
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                execute(&mut conn, &drop).await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

/// Takes `template`'s lock on `conn` with the template ready to copy: shared if it was,
/// else exclusive, after building it. The lock lasts until unlocked or the session ends.
pub async fn lock_ready_template(conn: &mut AsyncPgConnection, admin: &str, template: &str) {
    lock(conn, "pg_advisory_lock_shared", template).await;
    if template_ready(conn, template).await {
        return;
    }
    // Trade the shared lock for the exclusive one; someone may build it meanwhile.
    lock(conn, "pg_advisory_unlock_shared", template).await;
    lock(conn, "pg_advisory_lock", template).await;
    if !template_ready(conn, template).await {
        build_template(conn, admin, template)
            .await
            .unwrap_or_else(|e| panic!("build the template database {template}: {e}"));
    }
}

async fn admin(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .expect("connect to the admin database")
}

async fn execute(conn: &mut AsyncPgConnection, sql: &str) -> Result<(), Error> {
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

/// Calls one of the advisory lock functions on `template`'s lock (see [`TEMPLATE_LOCK`]).
async fn lock(conn: &mut AsyncPgConnection, function: &str, template: &str) {
    diesel::sql_query(format!("SELECT {function}({TEMPLATE_LOCK}, hashtext($1))"))
        .bind::<diesel::sql_types::Text, _>(template)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{function}: {e}"));
}

#[derive(QueryableByName)]
struct TemplateState {
    #[diesel(sql_type = Bool)]
    datistemplate: bool,
    #[diesel(sql_type = Bool)]
    datallowconn: bool,
}

async fn template_state(
    conn: &mut AsyncPgConnection,
    template: &str,
) -> Result<Option<TemplateState>, Error> {
    let state =
        diesel::sql_query("SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(template)
            .get_results::<TemplateState>(conn)
            .await?;
    Ok(state.into_iter().next())
}

/// Whether the template exists and was finished: marking it is the build's last step.
async fn template_ready(conn: &mut AsyncPgConnection, template: &str) -> bool {
    let state = template_state(conn, template)
        .await
        .expect("look the template up");
    state.is_some_and(|s| s.datistemplate && !s.datallowconn)
}

/// Creates and migrates the template; the caller holds the exclusive lock.
async fn build_template(
    conn: &mut AsyncPgConnection,
    admin: &str,
    template: &str,
) -> Result<(), Error> {
    // Whatever exists under the name unfinished is a build that died half-way: start over.
    if template_state(conn, template).await?.is_some() {
        execute(
            conn,
            &format!("ALTER DATABASE {template} IS_TEMPLATE false"),
        )
        .await?;
        execute(conn, &format!("DROP DATABASE {template} WITH (FORCE)")).await?;
    }
    execute(conn, &format!("CREATE DATABASE {template}")).await?;
    let pool = db::pool(&url_of(admin, template), 1)?;
    db::run_migrations(&pool).await?;
    drop(pool);
    // Both in one statement, so the template is never marked half-way. Refusing connections
    // keeps it copyable: CREATE DATABASE ... TEMPLATE fails while anyone is connected to it.
    execute(
        conn,
        &format!("ALTER DATABASE {template} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    )
    .await?;
    // The migration pool's connection closes in the background. Should it linger, it is ended
    // here (a copy waits a few seconds for ending connections, not for live ones).
    execute(
        conn,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}'"
        ),
    )
    .await?;
    Ok(())
}
