//! The email log and suppressed addresses.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::EmailStatus;
use crate::schema::{email_log, email_suppressions};

/// One email sent.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_log)]
pub struct EmailLogEntry {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub to_address: String,
    pub kind: String,
    pub idempotency_key: String,
    pub provider_message_id: Option<String>,
    pub status: EmailStatus,
    pub sent_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EmailLogEntry {
    /// Records a sent email (idempotent by key).
    pub async fn record(
        conn: &mut AsyncPgConnection,
        user_id: Option<Uuid>,
        to: &str,
        kind: &str,
        idempotency_key: &str,
        provider_message_id: &str,
    ) -> QueryResult<()> {
        diesel::insert_into(email_log::table)
            .values((
                email_log::user_id.eq(user_id),
                email_log::to_address.eq(to),
                email_log::kind.eq(kind),
                email_log::idempotency_key.eq(idempotency_key),
                email_log::provider_message_id.eq(provider_message_id),
            ))
            .on_conflict(email_log::idempotency_key)
            .do_nothing()
            .execute(conn)
            .await
            .map(drop)
    }

    /// Applies a delivery status from Resend; a later state never goes back.
    pub async fn update_status(
        conn: &mut AsyncPgConnection,
        provider_message_id: &str,
        status: EmailStatus,
    ) -> QueryResult<usize> {
        use EmailStatus::*;
        let earlier: &[EmailStatus] = match status {
            Sent => &[],
            Delivered => &[Sent],
            Opened => &[Sent, Delivered],
            Bounced | Complained => &[Sent, Delivered, Opened],
        };
        diesel::update(email_log::table)
            .filter(email_log::provider_message_id.eq(provider_message_id))
            .filter(email_log::status.eq_any(earlier))
            .set((
                email_log::status.eq(status),
                email_log::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
    }

    /// Entries of a user, oldest first.
    pub async fn of_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Vec<Self>> {
        email_log::table
            .filter(email_log::user_id.eq(user_id))
            .order(email_log::sent_at)
            .select(Self::as_select())
            .load(conn)
            .await
    }
}

/// Stops mail to an address.
pub async fn suppress(
    conn: &mut AsyncPgConnection,
    address: &str,
    reason: &str,
) -> QueryResult<()> {
    diesel::insert_into(email_suppressions::table)
        .values((
            email_suppressions::address.eq(address.trim().to_lowercase()),
            email_suppressions::reason.eq(reason),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// Whether mail to `address` is suppressed.
pub async fn is_suppressed(conn: &mut AsyncPgConnection, address: &str) -> QueryResult<bool> {
    use diesel::dsl::exists;
    diesel::select(exists(
        email_suppressions::table.find(address.trim().to_lowercase()),
    ))
    .get_result(conn)
    .await
}

impl EmailLogEntry {
    /// The email already sent under this idempotency key, if any.
    pub async fn by_key(
        conn: &mut AsyncPgConnection,
        idempotency_key: &str,
    ) -> QueryResult<Option<Self>> {
        email_log::table
            .filter(email_log::idempotency_key.eq(idempotency_key))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }
}
