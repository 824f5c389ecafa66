//! `POST /api/webhooks/stripe`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::Value;
use stripe_webhook::WebhookError;

use super::{Delivery, ignored, store_and_ack};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::integrations::stripe::StripeApi;
use crate::models::{EventSource, NewInboxEntry};
use crate::routes::extract::RawBody;

/// The event types we forward.
pub(crate) const HANDLED: [&str; 6] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    // Forwarded only when the dispute was lost.
    "charge.dispute.closed",
];

/// Verifies `Stripe-Signature`, stores the event, answers 200.
pub async fn stripe_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> AppResult<Json<Value>> {
    let stripe = app
        .stripe
        .as_ref()
        .ok_or(AppError::NotConfigured("Stripe"))?;
    match read_delivery(stripe, &headers, &body)? {
        Delivery::Store(entry) => store_and_ack(&app, entry).await,
        Delivery::Ignore {
            event_id,
            event_type,
        } => Ok(ignored("stripe", &event_id, &event_type)),
    }
}

/// Verifies a delivery and reads what it asks of us: everything the route does before it
/// touches the database (also the body of the `stripe_webhook` fuzz target).
pub(crate) fn read_delivery(
    stripe: &StripeApi,
    headers: &HeaderMap,
    body: &[u8],
) -> AppResult<Delivery> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AppError::BadRequest("missing Stripe-Signature header".into()))?;
    let payload = std::str::from_utf8(body)
        .map_err(|_| AppError::BadRequest("the body is not UTF-8".into()))?;
    let event = match stripe.verify_webhook(payload, signature) {
        Ok(event) => event,
        // The signature was good (it is checked first) but the object did not parse. For a
        // type we do not handle that is no reason to make Stripe retry (and eventually disable
        // the endpoint); for one we handle it is a real problem, and a 400 says so.
        Err(WebhookError::BadParse(_)) => {
            let raw: Value = serde_json::from_str(payload)
                .map_err(|_| AppError::BadRequest("the event body is malformed".into()))?;
            let kind = raw["type"].as_str().unwrap_or_default();
            if HANDLED.contains(&kind) {
                tracing::error!(
                    event_type = kind,
                    "a signed Stripe event we handle did not parse"
                );
                return Err(AppError::BadRequest("the event body is malformed".into()));
            }
            return Ok(Delivery::Ignore {
                event_id: raw["id"].as_str().unwrap_or_default().to_owned(),
                event_type: kind.to_owned(),
            });
        }
        Err(WebhookError::BadTimestamp(_)) => {
            return Err(AppError::BadRequest(
                "the Stripe-Signature timestamp is too old or too new".into(),
            ));
        }
        Err(_) => {
            return Err(AppError::BadRequest(
                "the Stripe-Signature does not match".into(),
            ));
        }
    };
    let Some(inngest_event) = event.inngest_event else {
        return Ok(Delivery::Ignore {
            event_id: event.id,
            event_type: event.event_type,
        });
    };
    let payload: Value = serde_json::from_str(payload)
        .map_err(|_| AppError::BadRequest("the event body is malformed".into()))?;
    let inngest_event =
        serde_json::to_value(&inngest_event).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Delivery::Store(NewInboxEntry {
        provider: EventSource::Stripe,
        provider_event_id: event.id,
        event_type: event.event_type,
        payload,
        inngest_event: Some(inngest_event),
    }))
}
