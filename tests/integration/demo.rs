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
