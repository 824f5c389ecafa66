//! Sending the academy's emails: never to a suppressed address, with a Resend idempotency key
//! (so a retried step does not send twice), and logged with Resend's id.

use uuid::Uuid;

use crate::app::AppState;
use crate::email::Email;
use crate::functions::conn;
use crate::models::email_log::{EmailLogEntry, is_suppressed};

/// What happened to an email.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Delivery {
    /// Handed to Resend.
    Sent { provider_id: String },
    /// Not sent: the address bounced or complained before.
    Suppressed,
}

/// Sends `email` to `to` once per `idempotency_key`. Errors are Inngest errors: retried when
/// Resend or the database may recover, final otherwise.
pub async fn send_email<E: Email>(
    app: &AppState,
    user_id: Option<Uuid>,
    to: &str,
    email: &E,
    idempotency_key: &str,
) -> Result<Delivery, inngest_sdk::Error> {
    let resend = app
        .resend
        .as_ref()
        .ok_or_else(|| inngest_sdk::Error::non_retriable("Resend is not configured"))?;
    {
        // Scoped: the connection goes back to the pool before the call to Resend.
        let mut conn = conn(app).await?;
        // Resend forgets idempotency keys after 24 hours; our log does not, so a replay days
        // later sends nothing.
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
    let rendered = email
        .render()
        .map_err(|e| inngest_sdk::Error::non_retriable(e.to_string()))?;
    let provider_id = resend
        .send(to, &rendered, idempotency_key)
        .await
        .map_err(|e| {
            if e.is_retriable() {
                match e.retry_after() {
                    Some(delay) => inngest_sdk::Error::retry_after(e.to_string(), delay),
                    None => inngest_sdk::Error::new(e.to_string()),
                }
            } else {
                inngest_sdk::Error::non_retriable(e.to_string())
            }
        })?;
    let mut conn = conn(app).await?;
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
