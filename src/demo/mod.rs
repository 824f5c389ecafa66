//! Demo mentors and products for local development, loaded by `huckleberry dev` from
//! `seeds/demo.sql` (loading is idempotent: fixed ids, and existing rows are left alone), and
//! `huckleberry demo`: the whole service in one process ([`local`]) walked through a purchase
//! ([`walkthrough`]).

pub mod command;
pub mod local;
pub mod walkthrough;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use uuid::{Uuid, uuid};

/// The SQL that inserts the demo rows.
pub const DEMO_SQL: &str = include_str!("../../seeds/demo.sql");

/// The demo mentors' ids.
pub const MENTOR_IDS: [Uuid; 2] = [
    uuid!("de000000-0000-4000-8000-000000000001"),
    uuid!("de000000-0000-4000-8000-000000000002"),
];

/// The demo products' ids (the last one is inactive).
pub const PRODUCT_IDS: [Uuid; 5] = [
    uuid!("de000000-0000-4000-8000-000000000101"),
    uuid!("de000000-0000-4000-8000-000000000102"),
    uuid!("de000000-0000-4000-8000-000000000103"),
    uuid!("de000000-0000-4000-8000-000000000104"),
    uuid!("de000000-0000-4000-8000-000000000105"),
];

/// Inserts the demo rows that are missing. The statements go in one simple query, which
/// PostgreSQL runs as one transaction: all of the demo data or none of it.
pub async fn seed(conn: &mut AsyncPgConnection) -> Result<(), diesel::result::Error> {
    conn.batch_execute(DEMO_SQL).await
}
