//! Session packs: what a payment buys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::PackStatus;
use crate::schema::session_packs;

/// A pack of sessions with a mentor.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = session_packs)]
pub struct SessionPack {
    pub id: Uuid,
    pub user_id: Uuid,
    pub mentor_id: Uuid,
    pub product_id: Uuid,
    pub payment_id: Uuid,
    pub total_sessions: i32,
    pub remaining_sessions: i32,
    pub status: PackStatus,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A pack about to be created for a payment.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = session_packs)]
pub struct NewSessionPack {
    pub user_id: Uuid,
    pub mentor_id: Uuid,
    pub product_id: Uuid,
    pub payment_id: Uuid,
    pub total_sessions: i32,
    pub remaining_sessions: i32,
    pub expires_at: DateTime<Utc>,
}

impl SessionPack {
    /// Creates the pack of a payment, or returns the one already created for it.
    pub async fn create_for_payment(
        conn: &mut AsyncPgConnection,
        pack: &NewSessionPack,
    ) -> QueryResult<Self> {
        diesel::insert_into(session_packs::table)
            .values(pack)
            .on_conflict(session_packs::payment_id)
            .do_nothing()
            .execute(conn)
            .await?;
        Self::by_payment(conn, pack.payment_id).await
    }

    /// The pack bought by a payment.
    pub async fn by_payment(conn: &mut AsyncPgConnection, payment_id: Uuid) -> QueryResult<Self> {
        session_packs::table
            .filter(session_packs::payment_id.eq(payment_id))
            .select(Self::as_select())
            .first(conn)
            .await
    }

    /// The pack, if it exists.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        session_packs::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Marks the pack refunded with no sessions left.
    pub async fn mark_refunded(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
        diesel::update(session_packs::table.find(id))
            .set((
                session_packs::status.eq(PackStatus::Refunded),
                session_packs::remaining_sessions.eq(0),
                session_packs::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }
}

/// Where the daily expiry sweep is in its walk over expired packs: the last pack it saw, in
/// `(expires_at, id)` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpiryCursor {
    pub expires_at: DateTime<Utc>,
    pub id: Uuid,
}

impl SessionPack {
    /// Marks an active pack expired (bookings stop); false when it was not active.
    pub async fn mark_expired(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        diesel::update(session_packs::table.find(id))
            .filter(session_packs::status.eq(PackStatus::Active))
            .set((
                session_packs::status.eq(PackStatus::Expired),
                session_packs::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Up to `limit` active packs whose expiry is at or before `now`, after `after`, in
    /// `(expires_at, id)` order: keyset pagination over the partial index of active packs, so
    /// each page costs the same however far the walk is.
    pub async fn expired_active(
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
        after: Option<ExpiryCursor>,
        limit: i64,
    ) -> QueryResult<Vec<ExpiryCursor>> {
        let mut query = session_packs::table
            .filter(session_packs::status.eq(PackStatus::Active))
            .filter(session_packs::expires_at.le(now))
            .into_boxed();
        if let Some(c) = after {
            query = query.filter(
                session_packs::expires_at
                    .gt(c.expires_at)
                    .or(session_packs::expires_at
                        .eq(c.expires_at)
                        .and(session_packs::id.gt(c.id))),
            );
        }
        query
            .order((session_packs::expires_at, session_packs::id))
            .limit(limit)
            .select((session_packs::expires_at, session_packs::id))
            .load::<(DateTime<Utc>, Uuid)>(conn)
            .await
            .map(|rows| {
                rows.into_iter()
                    .map(|(expires_at, id)| ExpiryCursor { expires_at, id })
                    .collect()
            })
    }
}

impl SessionPack {
    /// The pack, locked for the rest of the transaction.
    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        session_packs::table
            .find(id)
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }
}
