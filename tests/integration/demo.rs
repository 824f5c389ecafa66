//! The demo data: loaded on a migrated database, and loading it again changes nothing.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use huckleberry::demo;

use crate::util::database::TestDatabase;

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Row {
    #[diesel(sql_type = Text)]
    row: String,
}

/// Every mentor and product, whole rows as text, in a fixed order.
async fn snapshot(conn: &mut AsyncPgConnection) -> Vec<Row> {
    diesel::sql_query(
        "SELECT m::text AS row FROM mentors m \
         UNION ALL SELECT p::text FROM mentorship_products p ORDER BY row",
    )
    .load(conn)
    .await
    .expect("read the rows")
}

#[tokio::test]
async fn loading_the_demo_data_twice_changes_nothing() {
    let database = TestDatabase::migrated().await;
    let mut conn = AsyncPgConnection::establish(database.url())
        .await
        .expect("connect");

    demo::seed(&mut conn).await.expect("the first load");
    let first = snapshot(&mut conn).await;
    demo::seed(&mut conn).await.expect("the second load");
    let second = snapshot(&mut conn).await;

    assert_eq!(
        first.len(),
        demo::MENTOR_IDS.len() + demo::PRODUCT_IDS.len()
    );
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_demo_row_edited_by_hand_is_left_as_it_is() {
    let database = TestDatabase::migrated().await;
    let mut conn = AsyncPgConnection::establish(database.url())
        .await
        .expect("connect");
    demo::seed(&mut conn).await.expect("the first load");
    diesel::sql_query("UPDATE mentors SET seat_capacity = 9 WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(demo::MENTOR_IDS[0])
        .execute(&mut conn)
        .await
        .expect("edit a demo mentor");

    demo::seed(&mut conn).await.expect("the second load");

    let capacity: Vec<Row> =
        diesel::sql_query("SELECT seat_capacity::text AS row FROM mentors WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(demo::MENTOR_IDS[0])
            .load(&mut conn)
            .await
            .expect("read the mentor");
    assert_eq!(
        capacity,
        vec![Row {
            row: "9".to_owned()
        }]
    );
}

/// `huckleberry demo`'s walkthrough, on a test database: one purchase from checkout to the
/// seat's release, through the sandbox stand-ins and the in-process executor.
#[tokio::test]
async fn the_walkthrough_ends_with_the_pack_used_and_the_seat_released() {
    use std::sync::{Arc, Mutex};

    use huckleberry::demo::local::LocalService;
    use huckleberry::demo::walkthrough::{self, FinalState, Say};

    let database = TestDatabase::migrated().await;
    let mut conn = AsyncPgConnection::establish(database.url())
        .await
        .expect("connect");
    demo::seed(&mut conn).await.expect("the demo data");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let say: Say = {
        let lines = Arc::clone(&lines);
        Arc::new(move |line| lines.lock().expect("lock").push(line.to_owned()))
    };
    let service = LocalService::start(
        database.url(),
        walkthrough::progress_printer(Arc::clone(&say)),
    )
    .await
    .expect("the service starts");
    let state = walkthrough::run(&service, say)
        .await
        .expect("the walkthrough");

    assert_eq!(
        state,
        FinalState {
            order_status: "paid".into(),
            paid: "15000 JPY".into(),
            pack_status: "depleted".into(),
            remaining_sessions: 0,
            seat_status: "released".into(),
            release_reason: Some("grace_ended".into()),
            access_granted: false,
            emails: [
                "welcome",
                "access_granted",
                "session_reminder",
                "session_reminder",
                "renewal_reminder",
                "session_reminder",
                "session_reminder",
                "seat_released"
            ]
            .map(String::from)
            .to_vec(),
            failed_runs: vec![],
        }
    );
    let lines = lines.lock().expect("lock").join("\n");
    for shown in [
        "▶ process-stripe-checkout ← stripe/checkout.session.completed",
        "onboarding-flow · wait-for-discord: waited for an event",
        "onboarding-flow · grant-dashboard-access: ran",
        "session-completed-handler · send-renewal-reminder: ran",
        "session-completed-handler · grace-period: slept (played at once)",
        "✓ offer-released-seat done",
    ] {
        assert!(lines.contains(shown), "{shown:?} not in:\n{lines}");
    }
}
