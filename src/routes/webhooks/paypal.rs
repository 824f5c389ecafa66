//! `POST /api/webhooks/paypal`, verified through PayPal's verify-webhook-signature API.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{Delivery, ignored, store_and_ack};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::events::{
    PAYPAL_CAPTURE_COMPLETED, PAYPAL_CAPTURE_DENIED, PAYPAL_CAPTURE_REFUNDED,
    PAYPAL_CAPTURE_REVERSED, PaypalCaptureCompleted, PaypalCaptureDenied, PaypalCaptureRefunded,
    PaypalCaptureReversed,
};
use crate::integrations::paypal::{PaypalError, Verdict};
use crate::models::{EventSource, NewInboxEntry};
use crate::routes::extract::RawBody;

/// Verifies the notification with PayPal, stores it, answers 200.
pub async fn paypal_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> AppResult<Json<Value>> {
    let paypal = app
        .paypal
        .as_ref()
        .ok_or(AppError::NotConfigured("PayPal"))?;
    let (event, raw) = parse_body(&body)?;
    let verdict = paypal
        .verify_webhook(&headers, raw)
        .await
        .map_err(|e| match e {
            PaypalError::MissingHeader(_) => AppError::BadRequest(e.to_string()),
            // PayPal could not say: answer 503 so PayPal delivers again later.
            other => AppError::Unavailable(other.to_string()),
        })?;
    match verdict {
        Verdict::Authentic => {}
        Verdict::Failed => {
            return Err(AppError::BadRequest(
                "the PayPal signature does not verify".into(),
            ));
        }
        // A final answer, so a forged delivery is not asked for again and again.
        Verdict::Refused(answer) => {
            tracing::warn!(status = answer.status, "PayPal refused to verify a webhook");
            return Err(AppError::BadRequest(
                "PayPal refused to verify the delivery".into(),
            ));
        }
    }
    match read_verified(event)? {
        Delivery::Store(entry) => store_and_ack(&app, entry).await,
        Delivery::Ignore {
            event_id,
            event_type,
        } => Ok(ignored("paypal", &event_id, &event_type)),
    }
}

/// The body as a tree (to read) and as the exact text received (to pass on to PayPal's
/// verification). A body that is not JSON is a 400.
pub(crate) fn parse_body(body: &[u8]) -> AppResult<(Value, &RawValue)> {
    let malformed = |_| AppError::BadRequest("the event body is malformed".into());
    let event: Value = serde_json::from_slice(body).map_err(malformed)?;
    let raw: &RawValue = serde_json::from_slice(body).map_err(malformed)?;
    Ok((event, raw))
}

/// What a delivery PayPal vouched for asks of us (also the body of the `paypal_webhook` fuzz
/// target).
pub(crate) fn read_verified(event: Value) -> AppResult<Delivery> {
    let event_id = event["id"]
        .as_str()
        .ok_or_else(|| AppError::BadRequest("the event has no id".into()))?
        .to_owned();
    let event_type = event["event_type"].as_str().unwrap_or_default().to_owned();
    let Some((name, data)) = to_inngest(&event_type, &event["resource"]) else {
        if HANDLED.contains(&event_type.as_str()) {
            tracing::error!(%event_id, %event_type, "PayPal event lacks fields we need; ignored");
        }
        return Ok(Delivery::Ignore {
            event_id,
            event_type,
        });
    };
    let inngest_event = json!({ "id": event_id, "name": name, "data": data });
    Ok(Delivery::Store(NewInboxEntry {
        provider: EventSource::Paypal,
        provider_event_id: event_id,
        event_type,
        payload: event,
        inngest_event: Some(inngest_event),
    }))
}

const HANDLED: [&str; 4] = [
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.CAPTURE.REFUNDED",
    "PAYMENT.CAPTURE.REVERSED",
];

fn to_inngest(event_type: &str, resource: &Value) -> Option<(&'static str, Value)> {
    match event_type {
        "PAYMENT.CAPTURE.COMPLETED" => {
            let data = PaypalCaptureCompleted {
                capture_id: resource["id"].as_str()?.to_owned(),
                order_id: resource["custom_id"].as_str()?.parse().ok()?,
                paypal_order_id: resource["supplementary_data"]["related_ids"]["order_id"]
                    .as_str()?
                    .to_owned(),
                amount: resource["amount"]["value"].as_str()?.to_owned(),
                currency: resource["amount"]["currency_code"].as_str()?.to_lowercase(),
            };
            Some((PAYPAL_CAPTURE_COMPLETED, json!(data)))
        }
        // A capture left pending (an eCheck, a review) and then denied: without this the
        // order stayed pending and its seat held for ever (no completed capture ever comes,
        // and the abandoned-checkout sweep finds the PayPal order completed).
        "PAYMENT.CAPTURE.DENIED" => {
            let data = PaypalCaptureDenied {
                capture_id: resource["id"].as_str()?.to_owned(),
                order_id: resource["custom_id"].as_str()?.parse().ok()?,
            };
            Some((PAYPAL_CAPTURE_DENIED, json!(data)))
        }
        "PAYMENT.CAPTURE.REFUNDED" => {
            let data = PaypalCaptureRefunded {
                capture_id: refunded_capture(resource)?,
                refund_id: resource["id"].as_str()?.to_owned(),
                total_refunded:
                    resource["seller_payable_breakdown"]["total_refunded_amount"]["value"]
                        .as_str()?
                        .to_owned(),
                currency: resource["amount"]["currency_code"].as_str()?.to_lowercase(),
            };
            Some((PAYPAL_CAPTURE_REFUNDED, json!(data)))
        }
        // The money PayPal took back, as a refund object of its own: a chargeback.
        "PAYMENT.CAPTURE.REVERSED" => {
            let data = PaypalCaptureReversed {
                capture_id: refunded_capture(resource)?,
                reversal_id: resource["id"].as_str()?.to_owned(),
                amount: resource["amount"]["value"].as_str()?.to_owned(),
                currency: resource["amount"]["currency_code"].as_str()?.to_lowercase(),
            };
            Some((PAYPAL_CAPTURE_REVERSED, json!(data)))
        }
        _ => None,
    }
}

/// The capture a refund (or reversal) belongs to: it links to it with rel "up".
fn refunded_capture(refund: &Value) -> Option<String> {
    let href = refund["links"]
        .as_array()?
        .iter()
        .find(|link| link["rel"] == "up")?["href"]
        .as_str()?;
    Some(href.rsplit('/').next()?.to_owned())
}
