//! The webhook inbox: every verified provider event, stored before it is acknowledged, and
//! whether it has reached Inngest yet.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::EventSource;
use crate::schema::webhook_inbox;

/// A stored provider event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_inbox)]
pub struct InboxEntry {
    pub id: Uuid,
    pub provider: EventSource,
    pub provider_event_id: String,
    pub event_type: String,
    pub payload: Value,
    pub inngest_event: Option<Value>,
    pub received_at: DateTime<Utc>,
    pub forwarded_at: Option<DateTime<Utc>>,
    pub forward_attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// An event to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_inbox)]
pub struct NewInboxEntry {
    pub provider: EventSource,
    pub provider_event_id: String,
    pub event_type: String,
    pub payload: Value,
    pub inngest_event: Option<Value>,
}

impl InboxEntry {
    /// Stores an event this service announces, to be delivered by the relay; written in the
    /// caller's transaction, so the event exists exactly when the change it announces does.
    /// The event must have an id (it is the row's key, and Inngest's deduplication key).
    pub async fn enqueue<T: serde::Serialize>(
        conn: &mut AsyncPgConnection,
        event: &inngest_sdk::Event<T>,
    ) -> QueryResult<Option<Self>> {
        let id = event.id.clone().ok_or_else(|| {
            diesel::result::Error::SerializationError("an announced event needs an id".into())
        })?;
        let inngest_event = serde_json::to_value(event)
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        let entry = NewInboxEntry {
            provider: EventSource::App,
            provider_event_id: id,
            event_type: event.name.clone(),
            payload: inngest_event["data"].clone(),
            inngest_event: Some(inngest_event),
        };
        Self::insert(conn, &entry).await
    }

    /// Stores the event unless one with the same provider id is there. Returns the new row,
    /// or `None` for a duplicate delivery.
    pub async fn insert(
        conn: &mut AsyncPgConnection,
        entry: &NewInboxEntry,
    ) -> QueryResult<Option<Self>> {
        diesel::insert_into(webhook_inbox::table)
            .values(entry)
            .on_conflict_do_nothing()
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Stores a provider's event, unless one with the same provider id is there, already
    /// claimed by the caller for `lease` (no relay takes it meanwhile). Returns the new row,
    /// or `None` for a duplicate delivery.
    pub async fn insert_claimed(
        conn: &mut AsyncPgConnection,
        entry: &NewInboxEntry,
        lease: chrono::Duration,
    ) -> QueryResult<Option<Self>> {
        diesel::insert_into(webhook_inbox::table)
            .values((entry, webhook_inbox::next_attempt_at.eq(Utc::now() + lease)))
            .on_conflict_do_nothing()
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Claims up to `limit` entries due for delivery, skipping rows another relay holds, and
    /// pushes their next attempt out by `lease` so a crash mid-delivery retries them later.
    pub async fn claim_due(
        conn: &mut AsyncPgConnection,
        limit: i64,
        lease: chrono::Duration,
    ) -> QueryResult<Vec<Self>> {
        use diesel_async::AsyncConnection;
        conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
            let due: Vec<Self> = webhook_inbox::table
                .filter(webhook_inbox::forwarded_at.is_null())
                .filter(webhook_inbox::inngest_event.is_not_null())
                .filter(webhook_inbox::next_attempt_at.le(diesel::dsl::now))
                .order(webhook_inbox::next_attempt_at)
                .limit(limit)
                .for_update()
                .skip_locked()
                .select(Self::as_select())
                .load(&mut *conn)
                .await?;
            let ids: Vec<Uuid> = due.iter().map(|e| e.id).collect();
            diesel::update(webhook_inbox::table.filter(webhook_inbox::id.eq_any(&ids)))
                .set(webhook_inbox::next_attempt_at.eq(Utc::now() + lease))
                .execute(conn)
                .await?;
            Ok(due)
        })
        .await
    }

    /// Records a successful delivery.
    pub async fn mark_forwarded(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
        diesel::update(webhook_inbox::table.find(id))
            .set((
                webhook_inbox::forwarded_at.eq(diesel::dsl::now),
                webhook_inbox::forward_attempts.eq(webhook_inbox::forward_attempts + 1),
                webhook_inbox::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Hands claimed entries back undelivered, due again at `at`, with no attempt counted.
    pub async fn postpone(
        conn: &mut AsyncPgConnection,
        ids: &[Uuid],
        at: DateTime<Utc>,
    ) -> QueryResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        diesel::update(
            webhook_inbox::table
                .filter(webhook_inbox::id.eq_any(ids))
                .filter(webhook_inbox::forwarded_at.is_null()),
        )
        .set(webhook_inbox::next_attempt_at.eq(at))
        .execute(conn)
        .await
        .map(drop)
    }

    /// Records a failed delivery and when to try again.
    pub async fn mark_failed(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> QueryResult<()> {
        diesel::update(webhook_inbox::table.find(id))
            .set((
                webhook_inbox::forward_attempts.eq(webhook_inbox::forward_attempts + 1),
                webhook_inbox::last_error.eq(error),
                webhook_inbox::next_attempt_at.eq(retry_at),
            ))
            .execute(conn)
            .await
            .map(drop)
    }
}
