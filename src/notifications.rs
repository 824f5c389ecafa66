//! Sending the academy's emails: never to a suppressed address, with a Resend idempotency key
//! (so a retried step does not send twice), claimed in the log before it is sent (so two runs
//! sending it at once send it once), and logged with Resend's id.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::db::{DbError, DbPool, conn};
use crate::email::{Email, EmailError};
use crate::integrations::resend::{ResendApi, ResendError};
use crate::models::EmailStatus;
use crate::models::email_log::{Claim, EmailLogEntry, SentEmail, is_suppressed, suppress};

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
    /// Another run is sending this very email (same idempotency key) right now.
    #[error("this email is being sent by another run")]
    InFlight {
        /// When its claim lapses if that run died: try again then.
        retry_after: Duration,
    },
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
            // By then the other run has sent it, or its claim has lapsed.
            NotifyError::InFlight { retry_after } => inngest_sdk::Retry::After(*retry_after),
        }
    }
}

/// What sending needs: the database (log and suppression list) and Resend.
#[derive(Clone, Copy)]
pub struct Mailer<'a> {
    db: &'a DbPool,
    resend: Option<&'a ResendApi>,
    lease: Duration,
}

impl<'a> Mailer<'a> {
    /// A mailer over `db`, sending through `resend` when it is configured, whose call to
    /// Resend ends within `resend_timeout`.
    pub fn new(db: &'a DbPool, resend: Option<&'a ResendApi>, resend_timeout: Duration) -> Self {
        Self {
            db,
            resend,
            // A claim older than this cannot belong to a send still in flight: its sender died
            // between claiming and logging, and another may send under the same key. Besides
            // Resend's answer, a send can wait for resend-rs's rate limiter and for a pooled
            // connection to log it: hence several times the timeout, not just one.
            lease: resend_timeout * 6,
        }
    }

    /// Sends `email` to `to` once per `idempotency_key`, also when two runs send it at once:
    /// the key is claimed in the log first, and a run that finds it claimed by another fails
    /// with [`NotifyError::InFlight`] (retried; by then the email is logged as sent).
    pub async fn send<E: Email>(
        self,
        user_id: Option<Uuid>,
        to: &str,
        email: &E,
        idempotency_key: &str,
    ) -> Result<Delivery, NotifyError> {
        let resend = self.resend.ok_or(NotifyError::NotConfigured)?;
        let rendered = {
            // Scoped: the connection goes back to the pool before the call to Resend.
            let mut conn = conn(self.db).await?;
            // Resend forgets idempotency keys after 24 hours; our log does not, so a replay
            // days later sends nothing.
            if let Some(sent) = EmailLogEntry::by_key(&mut conn, idempotency_key).await?
                && sent.status != EmailStatus::Sending
            {
                return Ok(sent_before(sent));
            }
            if is_suppressed(&mut conn, to).await? {
                tracing::info!(kind = %email.kind(), "address suppressed; email not sent");
                return Ok(Delivery::Suppressed);
            }
            let rendered = email.render()?;
            let entry = SentEmail {
                user_id,
                to,
                kind: rendered.kind.as_str(),
                idempotency_key,
            };
            match EmailLogEntry::claim(&mut conn, &entry, self.lease).await? {
                Claim::Ours(token) => (rendered, token),
                Claim::Sent(sent) => return Ok(sent_before(sent)),
                Claim::Taken => {
                    return Err(NotifyError::InFlight {
                        retry_after: self.lease,
                    });
                }
            }
        };
        let (rendered, token) = rendered;
        let sent = resend.send(to, &rendered, idempotency_key).await;
        let mut conn = conn(self.db).await?;
        let provider_id = match sent {
            Ok(provider_id) => provider_id,
            Err(e) => {
                // Best effort: unreleased, the claim lapses after its lease.
                if let Err(release) =
                    EmailLogEntry::release(&mut conn, idempotency_key, token).await
                {
                    tracing::warn!(error = %release, "could not release an email's claim");
                }
                return Err(e.into());
            }
        };
        let entry = SentEmail {
            user_id,
            to,
            kind: rendered.kind.as_str(),
            idempotency_key,
        };
        EmailLogEntry::mark_sent(&mut conn, &entry, &provider_id).await?;
        tracing::info!(kind = %rendered.kind, %provider_id, "email sent");
        Ok(Delivery::Sent { provider_id })
    }
}

fn sent_before(entry: EmailLogEntry) -> Delivery {
    Delivery::Sent {
        provider_id: entry.provider_message_id.unwrap_or_default(),
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
