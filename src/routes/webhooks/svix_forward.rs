//! `POST /api/webhooks/clerk` and `POST /api/webhooks/resend`: for deployments that do not route
//! Clerk or Resend through Inngest's webhook integrations. Verified with Svix signatures, then
//! sent to Inngest as the integrations would (`clerk/user.created`, `resend/email.bounced`),
//! with the Svix message id as the event id so a redelivery is deduplicated. When Inngest cannot
//! be reached the answer is 503 and Svix delivers again later.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::integrations::svix::SvixVerifier;
use crate::routes::extract::RawBody;

/// `POST /api/webhooks/clerk`.
pub async fn clerk_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> AppResult<Json<Value>> {
    let verifier = app
        .clerk_webhooks
        .as_ref()
        .ok_or(AppError::NotConfigured("Clerk webhooks"))?;
    // The user's id stays readable: `sync-clerk-user`'s concurrency key reads it.
    forward(
        &app,
        verifier,
        &headers,
        &body,
        ("clerk", &["id"]),
        clerk_handles,
    )
    .await
}

/// `POST /api/webhooks/resend`.
pub async fn resend_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> AppResult<Json<Value>> {
    let verifier = app
        .resend_webhooks
        .as_ref()
        .ok_or(AppError::NotConfigured("Resend webhooks"))?;
    forward(
        &app,
        verifier,
        &headers,
        &body,
        ("resend", &["email_id"]),
        resend_handles,
    )
    .await
}

/// The Clerk event types forwarded (`user.created`, ...).
pub(crate) fn clerk_handles(kind: &str) -> bool {
    kind.starts_with("user.")
}

/// The Resend event types forwarded (`email.bounced`, ...).
pub(crate) fn resend_handles(kind: &str) -> bool {
    kind.starts_with("email.")
}

/// Forwards a delivery from `source`; with encryption on, its data (emails, names) goes sealed,
/// only the fields in `readable` beside it ([`crate::events::seal_if`]).
async fn forward(
    app: &AppState,
    verifier: &SvixVerifier,
    headers: &HeaderMap,
    body: &[u8],
    (source, readable): (&str, &[&str]),
    handled: impl Fn(&str) -> bool,
) -> AppResult<Json<Value>> {
    let now = chrono::Utc::now().timestamp();
    let Some(mut event) = read_delivery(verifier, headers, body, now, source, handled)? else {
        return Ok(Json(json!({ "received": true, "ignored": true })));
    };
    let sealing = app.config.inngest_encryption_key.is_some();
    event.data = crate::events::seal_if(sealing, event.data, readable);
    app.inngest
        .send(&event)
        .await
        .map_err(|e| AppError::Unavailable(format!("Inngest: {e}")))?;
    Ok(Json(json!({ "received": true })))
}

/// Verifies a delivery and makes the Inngest event it stands for, or `None` for a type we do
/// not handle (also the body of the `svix_webhook` fuzz target).
pub(crate) fn read_delivery(
    verifier: &SvixVerifier,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    source: &str,
    handled: impl Fn(&str) -> bool,
) -> AppResult<Option<inngest_sdk::Event<Value>>> {
    let message_id = verifier
        .verify(headers, body, now)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let payload: Value = serde_json::from_slice(body)
        .map_err(|_| AppError::BadRequest("the event body is malformed".into()))?;
    let kind = payload["type"].as_str().unwrap_or_default();
    if !handled(kind) {
        tracing::info!(source, kind, "webhook type not handled; ignored");
        return Ok(None);
    }
    Ok(Some(
        inngest_sdk::Event::new(format!("{source}/{kind}"), payload["data"].clone())
            .with_id(message_id),
    ))
}
