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

/// A claim held: when it was made, which tells it from a later claim of the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimToken(DateTime<Utc>);

/// An email as the log records it.
#[derive(Debug, Clone, Copy)]
pub struct SentEmail<'a> {
    pub user_id: Option<Uuid>,
    pub to: &'a str,
    pub kind: &'a str,
    pub idempotency_key: &'a str,
}

/// What claiming an email's idempotency key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is the caller's to send under: new, or a claim older than its lease (its sender
    /// died) taken over.
    Ours(ClaimToken),
    /// The email was sent: its entry.
    Sent(EmailLogEntry),
    /// Another sender claimed it within the lease and may be sending it now.
    Taken,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    sent_at: DateTime<Utc>,
}

impl EmailLogEntry {
    /// Claims `idempotency_key` for one sender before the email is sent, so two senders at
    /// once send it once. A claim is the caller's for `lease`; after that another may take it.
    pub async fn claim(
        conn: &mut AsyncPgConnection,
        email: &SentEmail<'_>,
        lease: std::time::Duration,
    ) -> QueryResult<Claim> {
        let claimed = diesel::sql_query(
            "INSERT INTO email_log (user_id, to_address, kind, idempotency_key, status) \
             VALUES ($1, $2, $3, $4, 'sending') \
             ON CONFLICT (idempotency_key) DO UPDATE \
             SET sent_at = now(), updated_at = now() \
             WHERE email_log.status = 'sending' \
               AND email_log.sent_at < now() - make_interval(secs => $5) \
             RETURNING sent_at",
        )
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(email.user_id)
        .bind::<diesel::sql_types::Text, _>(email.to)
        .bind::<diesel::sql_types::Text, _>(email.kind)
        .bind::<diesel::sql_types::Text, _>(email.idempotency_key)
        .bind::<diesel::sql_types::Double, _>(lease.as_secs_f64())
        .get_result::<Claimed>(conn)
        .await
        .optional()?;
        if let Some(claimed) = claimed {
            return Ok(Claim::Ours(ClaimToken(claimed.sent_at)));
        }
        Ok(match Self::by_key(conn, email.idempotency_key).await? {
            Some(entry) if entry.status != EmailStatus::Sending => Claim::Sent(entry),
            _ => Claim::Taken,
        })
    }

    /// Records that the email was sent, with Resend's id: its claim becomes the log entry.
    /// Also when the claim is gone (another sender took it over after the lease and gave it
    /// back): the email was sent, and the log must say so or a replay after Resend forgot
    /// the key would send it again.
    pub async fn mark_sent(
        conn: &mut AsyncPgConnection,
        sent: &SentEmail<'_>,
        provider_message_id: &str,
    ) -> QueryResult<()> {
        diesel::sql_query(
            "INSERT INTO email_log \
                 (user_id, to_address, kind, idempotency_key, provider_message_id, status) \
             VALUES ($1, $2, $3, $4, $5, 'sent') \
             ON CONFLICT (idempotency_key) DO UPDATE \
             SET status = 'sent', provider_message_id = EXCLUDED.provider_message_id, \
                 sent_at = now(), updated_at = now() \
             WHERE email_log.status = 'sending'",
        )
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(sent.user_id)
        .bind::<diesel::sql_types::Text, _>(sent.to)
        .bind::<diesel::sql_types::Text, _>(sent.kind)
        .bind::<diesel::sql_types::Text, _>(sent.idempotency_key)
        .bind::<diesel::sql_types::Text, _>(provider_message_id)
        .execute(conn)
        .await
        .map(drop)
    }

    /// Gives the claim `token` back after a failed send, so a retry need not wait for the
    /// lease. A later claim of the same key (another sender's) is left alone.
    pub async fn release(
        conn: &mut AsyncPgConnection,
        idempotency_key: &str,
        token: ClaimToken,
    ) -> QueryResult<()> {
        diesel::delete(email_log::table)
            .filter(email_log::idempotency_key.eq(idempotency_key))
            .filter(email_log::status.eq(EmailStatus::Sending))
            .filter(email_log::sent_at.eq(token.0))
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
            Sending | Sent => &[],
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
    /// The entry under this idempotency key (sent, or claimed), if any.
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
