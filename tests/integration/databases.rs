//! The migrations, and the per-test databases the other tests run on: copies of a finished
//! template that disappear when their test ends, also when it panics.

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use huckleberry::db::{self, MIGRATIONS};

use crate::util::TestDatabase;
use crate::util::database::{TEMPLATE, TEMPLATE_PREFIX, admin_url, lock_ready_template, url_of};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

/// Reverts the newest migrations down to and including `version` (as diesel records it:
/// `2026-12-07-000001_session_length` is `20261207000001`), whatever came after it.
pub(crate) fn revert_through<C>(harness: &mut diesel_async::AsyncMigrationHarness<C>, version: &str)
where
    diesel_async::AsyncMigrationHarness<C>: MigrationHarness<diesel::pg::Pg>,
{
    loop {
        let reverted = harness
            .revert_last_migration(MIGRATIONS)
            .expect("down.sql works");
        if reverted.to_string() == version {
            return;
        }
    }
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to the admin database")
}

async fn database_exists(name: &str) -> bool {
    diesel::sql_query("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1) AS flag")
        .bind::<Text, _>(name)
        .get_result::<Flag>(&mut admin().await)
        .await
        .expect("look the database up")
        .flag
}

fn migration_count() -> usize {
    diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .expect("the embedded migrations")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_migration_reverts_and_reapplies() {
    // An empty database rather than a copy of the template, so that up.sql runs from nothing
    // in every run, even when the template was built by an earlier one.
    let database = TestDatabase::empty().await;
    let pool = db::pool(database.url(), 1).expect("pool");
    let applied = db::run_migrations(&pool)
        .await
        .expect("up.sql applies to an empty database");
    assert_eq!(applied.len(), migration_count());
    let conn = pool.get().await.expect("a connection");
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let reverted = harness
        .revert_all_migrations(MIGRATIONS)
        .expect("down.sql works")
        .len();
    assert_eq!(reverted, applied.len());

    let mut conn = harness.into_inner();
    let left: Vec<Name> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relname NOT LIKE '\\_\\_diesel\\_schema\\_migrations%' \
         UNION ALL \
         SELECT p.proname::text FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'",
    )
    .load(&mut conn)
    .await
    .expect("list what is left");
    let left: Vec<String> = left.into_iter().map(|n| n.name).collect();
    assert!(left.is_empty(), "down.sql left {left:?} behind");

    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let reapplied = harness
        .run_pending_migrations(MIGRATIONS)
        .expect("up.sql works again");
    assert_eq!(reapplied.len(), applied.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_database_is_a_migrated_copy_dropped_with_its_guard_even_while_in_use() {
    #[derive(QueryableByName)]
    struct Template {
        #[diesel(sql_type = Bool)]
        datistemplate: bool,
        #[diesel(sql_type = Bool)]
        datallowconn: bool,
    }
    let database = TestDatabase::migrated().await;
    let template: Template =
        diesel::sql_query("SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(TEMPLATE.as_str())
            .get_result(&mut admin().await)
            .await
            .expect("the template exists");
    assert!(template.datistemplate && !template.datallowconn);

    let mut open = AsyncPgConnection::establish(database.url())
        .await
        .expect("connect to the copy");
    let applied: Vec<Name> =
        diesel::sql_query("SELECT version::text AS name FROM __diesel_schema_migrations")
            .load(&mut open)
            .await
            .expect("the copy has diesel's bookkeeping");
    assert_eq!(applied.len(), migration_count());

    let name = database.name().to_owned();
    drop(database);
    assert!(!database_exists(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_still_drops_its_database() {
    let (name_tx, name_rx) = tokio::sync::oneshot::channel();
    let failing = tokio::spawn(async move {
        let database = TestDatabase::migrated().await;
        let _open = AsyncPgConnection::establish(database.url())
            .await
            .expect("connect to the copy");
        name_tx
            .send(database.name().to_owned())
            .expect("the test waits for the name");
        panic!("a deliberate failure: the database must be dropped all the same");
    });
    let name = name_rx.await.expect("the failing task got its database");
    let outcome = failing.await.expect_err("the task panicked");
    assert!(outcome.is_panic());
    assert!(!database_exists(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_built_template_is_built_again_not_copied() {
    let template = format!(
        "{TEMPLATE_PREFIX}half_built_{}",
        uuid::Uuid::new_v4().simple()
    );
    let mut conn = admin().await;
    // What a build that died during the migrations leaves: a database not marked as a template.
    diesel::sql_query(format!("CREATE DATABASE {template}"))
        .execute(&mut conn)
        .await
        .expect("create the half-built template");
    let mut half = AsyncPgConnection::establish(&url_of(&admin_url(), &template))
        .await
        .expect("connect to the half-built template");
    diesel::sql_query("CREATE TABLE half_built (id int)")
        .execute(&mut half)
        .await
        .expect("leave a trace of the first build");
    drop(half);

    lock_ready_template(&mut conn, &admin_url(), &template).await;
    let copy = TestDatabase::reserve();
    diesel::sql_query(format!(
        "CREATE DATABASE {} TEMPLATE {template}",
        copy.name()
    ))
    .execute(&mut conn)
    .await
    .expect("copy the rebuilt template");
    diesel::sql_query("SELECT pg_advisory_unlock_all()")
        .execute(&mut conn)
        .await
        .expect("unlock");
    let mut copied = AsyncPgConnection::establish(copy.url())
        .await
        .expect("connect to the copy");
    let traces: Vec<Name> = diesel::sql_query(
        "SELECT tablename::text AS name FROM pg_tables WHERE tablename = 'half_built'",
    )
    .load(&mut copied)
    .await
    .expect("look for the trace");
    assert!(traces.is_empty(), "the half-built template was reused");
    let applied: Vec<Name> =
        diesel::sql_query("SELECT version::text AS name FROM __diesel_schema_migrations")
            .load(&mut copied)
            .await
            .expect("the rebuilt template is migrated");
    assert_eq!(applied.len(), migration_count());

    for sql in [
        format!("ALTER DATABASE {template} IS_TEMPLATE false"),
        format!("DROP DATABASE {template}"),
    ] {
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("drop the test's template");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_length_migration_names_the_sessions_that_overlap_and_applies_once_they_do_not()
{
    let app = crate::util::spawn_app().await;
    let (_, _, pack_id) = crate::payments::bought_with_access(&app).await;
    let mut harness = diesel_async::AsyncMigrationHarness::new(app.conn().await);
    revert_through(&mut harness, "20261207000001");

    // Booked before sessions lasted an hour: the same mentor at 10:00 and at 10:30.
    let mut conn = harness.into_inner();
    let booked: Vec<Name> = diesel::sql_query(
        "INSERT INTO sessions (session_pack_id, mentor_id, scheduled_at) \
         SELECT id, mentor_id, at FROM session_packs, (VALUES \
           (timestamptz '2027-01-04 10:00Z'), (timestamptz '2027-01-04 10:30Z')) AS t(at) \
         WHERE id = $1 RETURNING id::text AS name",
    )
    .bind::<diesel::sql_types::Uuid, _>(pack_id)
    .load(&mut conn)
    .await
    .expect("two sessions");
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let refused = harness
        .run_pending_migrations(MIGRATIONS)
        .expect_err("the overlap stops the migration")
        .to_string();
    assert!(
        refused.contains("scheduled sessions overlap")
            && booked.iter().all(|session| refused.contains(&session.name)),
        "{refused}"
    );

    // An operator moves one of them: now the migration and those after it apply.
    let mut conn = harness.into_inner();
    diesel::sql_query(
        "UPDATE sessions SET scheduled_at = scheduled_at + interval '1 hour' WHERE id = $1::uuid",
    )
    .bind::<Text, _>(&booked[1].name)
    .execute(&mut conn)
    .await
    .expect("moved");
    let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .expect("applies once nothing overlaps");
    let first = <[_]>::first(&applied).map(ToString::to_string);
    assert_eq!(first.as_deref(), Some("20261207000001"));
}
