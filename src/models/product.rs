//! Mentors and the mentorship products they sell.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::ProductKind;
use crate::schema::{mentors, mentorship_products};

/// A mentor and how many buyers they take at once.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mentors)]
pub struct Mentor {
    pub id: Uuid,
    pub display_name: String,
    pub email: String,
    pub seat_capacity: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The mentor's own Clerk user, when they have one: how the dashboard knows a mentor.
    pub clerk_id: Option<String>,
}

/// A pack of sessions with one mentor, for sale.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mentorship_products)]
pub struct Product {
    pub id: Uuid,
    pub mentor_id: Uuid,
    pub name: String,
    pub kind: ProductKind,
    pub price: BigDecimal,
    pub currency: String,
    pub sessions_per_pack: i32,
    pub validity_days: i32,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// The product, if it exists.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        mentorship_products::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }
}

impl Mentor {
    /// The mentor.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Self> {
        mentors::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
    }

    /// The mentor, locked for the rest of the transaction: what serializes a mentor's seat
    /// holds, waitlist entries and seat offers (the capacity triggers take the same lock).
    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        mentors::table
            .find(id)
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// The mentor whose own Clerk user this is, if any.
    pub async fn by_clerk_id(
        conn: &mut AsyncPgConnection,
        clerk_id: &str,
    ) -> QueryResult<Option<Self>> {
        mentors::table
            .filter(mentors::clerk_id.eq(clerk_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }
}
