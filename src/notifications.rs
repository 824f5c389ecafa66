//! Sending the academy's emails: never to a suppressed address, with a Resend idempotency key
//! (so a retried step does not send twice), and logged with Resend's id.

use uuid::Uuid;

use diesel_async::AsyncPgConnection;

use crate::db::{DbError, DbPool, conn};
use crate::email::{Email, EmailError};
use crate::integrations::resend::{ResendApi, ResendError};
use crate::models::EmailStatus;
use crate::models::email_log::{EmailLogEntry, is_suppressed, suppress};

/// What happened to an email.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Delivery {
    /// Handed to Resend.
    Sent { provider_id: String },
    /// Not sent: the address bounced or complained before.
    Suppressed,
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No Resend client is configured.
    #[error("Resend is not configured")]
    NotConfigured,
    /// The template failed to render.
    #[error(transparent)]
    Render(#[from] EmailError),
    /// Resend failed.
    #[error(transparent)]
    Resend(#[from] ResendError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for NotifyError {
    fn from(err: diesel::result::Error) -> Self {
        NotifyError::Db(err.into())
    }
}

/// A missing client or a broken template stays broken; Resend and the database decide for
/// themselves.
impl inngest_sdk::Classify for NotifyError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            NotifyError::NotConfigured | NotifyError::Render(_) => inngest_sdk::Retry::Never,
            NotifyError::Resend(e) => e.retry(),
            NotifyError::Db(e) => e.retry(),
        }
    }
}

/// What sending needs: the database (log and suppression list) and Resend.
#[derive(Clone, Copy)]
pub struct Mailer<'a> {
    db: &'a DbPool,
    resend: Option<&'a ResendApi>,
}

impl<'a> Mailer<'a> {
    /// A mailer over `db`, sending through `resend` when it is configured.
    pub fn new(db: &'a DbPool, resend: Option<&'a ResendApi>) -> Self {
        Self { db, resend }
    }

    /// Sends `email` to `to` once per `idempotency_key`.
    pub async fn send<E: Email>(
        self,
        user_id: Option<Uuid>,
        to: &str,
        email: &E,
        idempotency_key: &str,
    ) -> Result<Delivery, NotifyError> {
        let resend = self.resend.ok_or(NotifyError::NotConfigured)?;
        {
            // Scoped: the connection goes back to the pool before the call to Resend.
            let mut conn = conn(self.db).await?;
            // Resend forgets idempotency keys after 24 hours; our log does not, so a replay
            // days later sends nothing.
            if let Some(sent) = EmailLogEntry::by_key(&mut conn, idempotency_key).await? {
                return Ok(Delivery::Sent {
                    provider_id: sent.provider_message_id.unwrap_or_default(),
                });
            }
            if is_suppressed(&mut conn, to).await? {
                tracing::info!(kind = %email.kind(), "address suppressed; email not sent");
                return Ok(Delivery::Suppressed);
            }
        }
        let rendered = email.render()?;
        let provider_id = resend.send(to, &rendered, idempotency_key).await?;
        let mut conn = conn(self.db).await?;
        EmailLogEntry::record(
            &mut conn,
            user_id,
            to,
            rendered.kind.as_str(),
            idempotency_key,
            &provider_id,
        )
        .await?;
        tracing::info!(kind = %rendered.kind, %provider_id, "email sent");
        Ok(Delivery::Sent { provider_id })
    }
}

/// Records what Resend reported of the email `provider_id`; a bounce or a complaint suppresses
/// its addresses, so nothing more is sent to them. Returns how many log rows changed.
pub async fn record_delivery_status(
    conn: &mut AsyncPgConnection,
    provider_id: &str,
    status: EmailStatus,
    to: &[String],
) -> Result<usize, DbError> {
    let updated = EmailLogEntry::update_status(conn, provider_id, status).await?;
    if matches!(status, EmailStatus::Bounced | EmailStatus::Complained) {
        for address in to {
            suppress(conn, address, status.as_str()).await?;
        }
    }
    Ok(updated)
}
