//! `POST /api/webhooks/stripe`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use stripe_webhook::WebhookError;

use super::{ignored, store_and_ack};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::models::{NewInboxEntry, Provider};

/// Verifies `Stripe-Signature`, stores the event, answers 200.
pub async fn stripe_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Value>> {
    let stripe = app
        .stripe
        .as_ref()
        .ok_or(AppError::NotConfigured("Stripe"))?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::BadRequest("missing Stripe-Signature header".into()))?;
    let payload = std::str::from_utf8(&body)
        .map_err(|_| AppError::BadRequest("the body is not UTF-8".into()))?;
    let event = stripe.verify_webhook(payload, signature).map_err(|e| {
        AppError::BadRequest(match e {
            WebhookError::BadTimestamp(_) => {
                "the Stripe-Signature timestamp is too old or too new".into()
            }
            WebhookError::BadParse(_) => "the event body is malformed".into(),
            _ => "the Stripe-Signature does not match".into(),
        })
    })?;
    let Some(inngest_event) = event.inngest_event else {
        return Ok(ignored("stripe", &event.id, &event.event_type));
    };
    let payload: Value = serde_json::from_str(payload)
        .map_err(|_| AppError::BadRequest("the event body is malformed".into()))?;
    let inngest_event =
        serde_json::to_value(&inngest_event).map_err(|e| AppError::Internal(e.to_string()))?;
    store_and_ack(
        &app,
        NewInboxEntry {
            provider: Provider::Stripe,
            provider_event_id: event.id,
            event_type: event.event_type,
            payload,
            inngest_event: Some(inngest_event),
        },
    )
    .await
}
