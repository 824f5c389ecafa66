//! The bodies of the webhook fuzz targets in `fuzz/` (feature `fuzzing`), also replayed over
//! their corpus by `cargo test`. Not an API.
//!
//! Each target runs a route's own parsing (everything the route does before it touches the
//! database or calls a provider) on arbitrary bytes, in the input format of
//! [`inngest_sdk::fuzzing::Input`], and panics only when an invariant breaks. Unless the input
//! brings its own signature header, the harness signs the body as the provider would, so the
//! parsers behind the signature check are reached too.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue};
use inngest_sdk::fuzzing::Input;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::{PaypalConfig, Secret, StripeConfig};
use crate::error::AppError;
use crate::events::{
    PAYPAL_CAPTURE_COMPLETED, PAYPAL_CAPTURE_DENIED, PAYPAL_CAPTURE_REFUNDED,
    PAYPAL_CAPTURE_REVERSED, PaypalCaptureCompleted, PaypalCaptureDenied, PaypalCaptureRefunded,
    PaypalCaptureReversed, STRIPE_CHARGE_REFUNDED, STRIPE_CHECKOUT_COMPLETED,
    STRIPE_CHECKOUT_EXPIRED, STRIPE_DISPUTE_LOST, StripeChargeRefunded, StripeCheckoutCompleted,
    StripeCheckoutExpired, StripeDisputeLost,
};
use crate::integrations::paypal::{PaypalApi, PaypalError};
use crate::integrations::stripe::StripeApi;
use crate::integrations::svix::{self, SvixError, SvixVerifier};
use crate::money::{from_paypal_value, from_stripe_amount, to_paypal_value};
use crate::routes::webhooks::{Delivery, paypal, stripe, svix_forward};

const STRIPE_SECRET: &str = "whsec_fuzz_stripe";
const PAYPAL_WEBHOOK_ID: &str = "WH-FUZZ";
/// Svix's published test secret.
const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SVIX_NOW: i64 = 1_700_000_000;
/// An origin no request is ever made to: the targets call no provider.
const NOWHERE: &str = "http://127.0.0.1:9";
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

fn stripe_api() -> &'static StripeApi {
    static API: OnceLock<StripeApi> = OnceLock::new();
    API.get_or_init(|| {
        StripeApi::new(
            &StripeConfig {
                secret_key: Secret::new("sk_test_fuzz"),
                webhook_secret: Secret::new(STRIPE_SECRET),
                api_base: NOWHERE.to_owned(),
            },
            TIMEOUT,
        )
    })
}

fn paypal_api() -> &'static PaypalApi {
    static API: OnceLock<PaypalApi> = OnceLock::new();
    API.get_or_init(|| {
        PaypalApi::new(
            &PaypalConfig {
                client_id: "fuzz".to_owned(),
                client_secret: Secret::new("fuzz"),
                webhook_id: PAYPAL_WEBHOOK_ID.to_owned(),
                api_base: NOWHERE.to_owned(),
            },
            crate::integrations::http_client(TIMEOUT).expect("an HTTP client for the fuzz target"),
        )
    })
}

/// Only 400s: no delivery, however malformed, is our fault or worth a provider's retry.
fn assert_bad_request(error: &AppError) {
    assert!(
        matches!(error, AppError::BadRequest(_)),
        "a delivery failed with {error:?}, not a 400"
    );
}

/// The data of a forwarded event decodes as its function decodes it, and re-encodes to the
/// same JSON.
fn round_trips<T: Serialize + DeserializeOwned>(data: &Value) -> T {
    let typed: T = serde_json::from_value(data.clone())
        .unwrap_or_else(|e| panic!("forwarded data does not decode ({e}): {data}"));
    let again = serde_json::to_value(&typed).expect("event data serializes");
    assert_eq!(&again, data, "forwarded data does not round-trip");
    typed
}

/// `POST /api/webhooks/stripe`: `@stripe-signature` or, by default, a signature made now.
///
/// Invariants: failures are 400s; a signed JSON event of a type we do not handle is
/// acknowledged (a 400 would make Stripe retry and then disable the endpoint); a stored event
/// keeps the payload, id and type as sent, and forwards data its function decodes, with
/// amounts the refund function can convert; a signature never covers another body.
pub fn stripe_webhook(data: &[u8]) {
    let input = Input::parse(data);
    let mut headers = input.header_map();
    let signed_here = input.header("stripe-signature").is_none();
    if signed_here && let Ok(payload) = std::str::from_utf8(input.body) {
        let signature = stripe_webhook::Webhook::generate_test_header(payload, STRIPE_SECRET, None);
        headers.insert(
            "stripe-signature",
            HeaderValue::from_str(&signature).expect("a signature is ASCII"),
        );
    }
    let result = stripe::read_delivery(stripe_api(), &headers, input.body);
    let sent: Option<Value> = serde_json::from_slice(input.body).ok();
    match &result {
        Err(error) => assert_bad_request(error),
        Ok(Delivery::Ignore { .. }) => {}
        Ok(Delivery::Store(entry)) => {
            let sent = sent.as_ref().expect("a stored event is JSON");
            assert_eq!(&entry.payload, sent);
            assert_eq!(Some(entry.provider_event_id.as_str()), sent["id"].as_str());
            assert_eq!(Some(entry.event_type.as_str()), sent["type"].as_str());
            let event = entry
                .inngest_event
                .as_ref()
                .expect("a stored event is forwarded");
            assert_eq!(event["id"], sent["id"]);
            match event["name"].as_str() {
                Some(STRIPE_CHECKOUT_COMPLETED) => {
                    round_trips::<StripeCheckoutCompleted>(&event["data"]);
                }
                Some(STRIPE_CHECKOUT_EXPIRED) => {
                    round_trips::<StripeCheckoutExpired>(&event["data"]);
                }
                Some(STRIPE_CHARGE_REFUNDED) => {
                    let refund: StripeChargeRefunded = round_trips(&event["data"]);
                    let _ = from_stripe_amount(refund.amount_refunded, &refund.currency);
                    let _ = from_stripe_amount(refund.amount, &refund.currency);
                }
                Some(STRIPE_DISPUTE_LOST) => {
                    let dispute: StripeDisputeLost = round_trips(&event["data"]);
                    let _ = from_stripe_amount(dispute.amount, &dispute.currency);
                }
                other => panic!("forwarded as {other:?}"),
            }
        }
    }
    if signed_here && let Some(sent) = &sent {
        let kind = sent["type"].as_str().unwrap_or_default();
        if !stripe::HANDLED.contains(&kind) {
            assert!(
                matches!(result, Ok(Delivery::Ignore { .. })),
                "a signed {kind:?} event was not acknowledged: {result:?}"
            );
        }
    }
    if signed_here {
        let mut other = input.body.to_vec();
        other.push(b' ');
        assert!(stripe::read_delivery(stripe_api(), &headers, &other).is_err());
    }
}

/// What the app sends to PayPal's `verify-webhook-signature`.
#[derive(Deserialize)]
struct VerificationRequest<'a> {
    webhook_id: String,
    auth_algo: String,
    cert_url: String,
    transmission_id: String,
    transmission_sig: String,
    transmission_time: String,
    #[serde(borrow)]
    webhook_event: &'a RawValue,
}

/// `POST /api/webhooks/paypal`: the body with the `paypal-*` headers, then read as if PayPal
/// had vouched for it.
///
/// Invariants: failures are 400s; the verification request is JSON carrying the event byte for
/// byte and each header as sent, or names the missing header; a verified event is stored with
/// its own id and payload and forwards data its function decodes, with amounts that convert
/// and convert back exactly.
pub fn paypal_webhook(data: &[u8]) {
    let input = Input::parse(data);
    let headers = input.header_map();
    let (event, raw) = match paypal::parse_body(input.body) {
        Ok(parsed) => parsed,
        Err(error) => return assert_bad_request(&error),
    };
    match paypal_api().verification_request(&headers, raw) {
        Ok(request) => {
            let sent: VerificationRequest<'_> = serde_json::from_str(&request)
                .unwrap_or_else(|e| panic!("the verification request is not JSON ({e})"));
            assert_eq!(sent.webhook_event.get(), raw.get());
            assert_eq!(sent.webhook_id, PAYPAL_WEBHOOK_ID);
            for (header, value) in [
                ("paypal-auth-algo", &sent.auth_algo),
                ("paypal-cert-url", &sent.cert_url),
                ("paypal-transmission-id", &sent.transmission_id),
                ("paypal-transmission-sig", &sent.transmission_sig),
                ("paypal-transmission-time", &sent.transmission_time),
            ] {
                let given = headers.get(header).and_then(|v| v.to_str().ok());
                assert_eq!(given, Some(value.as_str()), "{header}");
            }
        }
        Err(PaypalError::MissingHeader(header)) => {
            assert!(headers.get(header).and_then(|v| v.to_str().ok()).is_none());
        }
        Err(other) => panic!("building the verification request failed: {other}"),
    }
    match paypal::read_verified(event.clone()) {
        Err(error) => {
            assert_bad_request(&error);
            assert!(event["id"].as_str().is_none(), "{error:?}");
        }
        Ok(Delivery::Ignore { event_id, .. }) => {
            assert_eq!(Some(event_id.as_str()), event["id"].as_str())
        }
        Ok(Delivery::Store(entry)) => {
            assert_eq!(entry.payload, event);
            assert_eq!(Some(entry.provider_event_id.as_str()), event["id"].as_str());
            let forwarded = entry.inngest_event.expect("a stored event is forwarded");
            assert_eq!(forwarded["id"], event["id"]);
            match forwarded["name"].as_str() {
                Some(PAYPAL_CAPTURE_COMPLETED) => {
                    let capture: PaypalCaptureCompleted = round_trips(&forwarded["data"]);
                    paypal_amount(&capture.amount, &capture.currency);
                }
                Some(PAYPAL_CAPTURE_REFUNDED) => {
                    let refund: PaypalCaptureRefunded = round_trips(&forwarded["data"]);
                    paypal_amount(&refund.total_refunded, &refund.currency);
                }
                Some(PAYPAL_CAPTURE_DENIED) => {
                    let _: PaypalCaptureDenied = round_trips(&forwarded["data"]);
                }
                Some(PAYPAL_CAPTURE_REVERSED) => {
                    let reversal: PaypalCaptureReversed = round_trips(&forwarded["data"]);
                    paypal_amount(&reversal.amount, &reversal.currency);
                }
                other => panic!("forwarded as {other:?}"),
            }
        }
    }
}

/// An amount PayPal reports converts as the capture and refund functions convert it, and an
/// amount we would send PayPal reads back as the same amount.
fn paypal_amount(value: &str, currency: &str) {
    let Ok(amount) = from_paypal_value(value, currency) else {
        return;
    };
    if let Ok(text) = to_paypal_value(&amount, currency) {
        assert_eq!(
            from_paypal_value(&text, currency).as_ref(),
            Ok(&amount),
            "{value} {currency} was sent as {text}"
        );
    }
}

/// `POST /api/webhooks/clerk` and `/api/webhooks/resend`: `@svix-id`, `@svix-timestamp` and
/// `@svix-signature`, each made up by the harness when absent (the signature over this body).
///
/// Invariants: failures are 400s; a delivery with all three made up is accepted exactly when
/// its body is JSON; an accepted delivery keeps its message id as the event id, and forwards
/// the `data` of a handled type under `<source>/<type>`; what `svix::sign` makes verifies,
/// and not for another body.
pub fn svix_webhook(data: &[u8]) {
    let input = Input::parse(data);
    let mut headers = input.header_map();
    let made_up = ["svix-id", "svix-timestamp", "svix-signature"]
        .iter()
        .all(|name| input.header(name).is_none());
    if input.header("svix-id").is_none() {
        headers.insert("svix-id", HeaderValue::from_static("msg_fuzz"));
    }
    if input.header("svix-timestamp").is_none() {
        headers.insert("svix-timestamp", HeaderValue::from(SVIX_NOW));
    }
    if input.header("svix-signature").is_none() {
        insert_svix_signature(&mut headers, input.body);
    }
    let verifier = SvixVerifier::new(Secret::new(SVIX_SECRET));
    let payload: Option<Value> = serde_json::from_slice(input.body).ok();
    type Handles = fn(&str) -> bool;
    let sources: [(&str, Handles); 2] = [
        ("clerk", svix_forward::clerk_handles),
        ("resend", svix_forward::resend_handles),
    ];
    for (source, handled) in sources {
        let result =
            svix_forward::read_delivery(&verifier, &headers, input.body, SVIX_NOW, source, handled);
        match result {
            Err(error) => {
                assert_bad_request(&error);
                assert!(!(made_up && payload.is_some()), "{error:?}");
            }
            Ok(None) => {
                let payload = payload.as_ref().expect("an accepted delivery is JSON");
                assert!(!handled(payload["type"].as_str().unwrap_or_default()));
            }
            Ok(Some(event)) => {
                let payload = payload.as_ref().expect("an accepted delivery is JSON");
                let kind = payload["type"].as_str().unwrap_or_default();
                assert!(handled(kind));
                assert_eq!(event.name, format!("{source}/{kind}"));
                assert_eq!(event.data, payload["data"]);
                let id = headers.get("svix-id").and_then(|v| v.to_str().ok());
                assert_eq!(event.id.as_deref(), id);
            }
        }
    }

    let mut fresh = HeaderMap::new();
    fresh.insert("svix-id", HeaderValue::from_static("msg_round_trip"));
    fresh.insert("svix-timestamp", HeaderValue::from(SVIX_NOW));
    insert_svix_signature(&mut fresh, input.body);
    assert_eq!(
        verifier.verify(&fresh, input.body, SVIX_NOW),
        Ok("msg_round_trip".to_owned())
    );
    let mut other = input.body.to_vec();
    other.push(b'!');
    assert_eq!(
        verifier.verify(&fresh, &other, SVIX_NOW),
        Err(SvixError::Mismatch)
    );
}

/// Signs `body` with the id and timestamp in `headers`, when both are there to sign with.
fn insert_svix_signature(headers: &mut HeaderMap, body: &[u8]) {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let (Some(id), Some(Ok(timestamp))) = (
        text("svix-id"),
        text("svix-timestamp").map(str::parse::<i64>),
    ) else {
        return;
    };
    if let Some(signature) = svix::sign(SVIX_SECRET, id, timestamp, body)
        && let Ok(value) = HeaderValue::from_str(&signature)
    {
        headers.insert("svix-signature", value);
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use inngest_sdk::fuzzing::replay;

    use super::*;

    fn corpus(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    fn seed(target: &str, name: &str) -> Vec<u8> {
        std::fs::read(corpus(target).join(name)).expect("a seed")
    }

    #[test]
    fn the_webhook_seeds_reach_past_the_signature_to_the_event_parsers() {
        let completed = seed("stripe_webhook", "checkout_session_completed");
        let payload = std::str::from_utf8(&completed).expect("UTF-8");
        let mut headers = HeaderMap::new();
        let signature = stripe_webhook::Webhook::generate_test_header(payload, STRIPE_SECRET, None);
        headers.insert("stripe-signature", signature.parse().expect("ASCII"));
        let delivery = stripe::read_delivery(stripe_api(), &headers, &completed);
        assert!(matches!(delivery, Ok(Delivery::Store(_))), "{delivery:?}");

        let capture = seed("paypal_webhook", "capture_completed");
        let (event, _) = paypal::parse_body(Input::parse(&capture).body).expect("JSON");
        let delivery = paypal::read_verified(event);
        assert!(matches!(delivery, Ok(Delivery::Store(_))), "{delivery:?}");

        let created = seed("svix_webhook", "clerk_user_created");
        let mut headers = HeaderMap::new();
        headers.insert("svix-id", HeaderValue::from_static("msg_1"));
        headers.insert("svix-timestamp", HeaderValue::from(SVIX_NOW));
        insert_svix_signature(&mut headers, &created);
        let verifier = SvixVerifier::new(Secret::new(SVIX_SECRET));
        let event = svix_forward::read_delivery(
            &verifier,
            &headers,
            &created,
            SVIX_NOW,
            "clerk",
            svix_forward::clerk_handles,
        );
        let name = event.expect("accepted").map(|e| e.name);
        assert_eq!(name.as_deref(), Some("clerk/user.created"));
    }

    #[test]
    fn stripe_deliveries_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("stripe_webhook"), stripe_webhook, 2000);
    }

    #[test]
    fn paypal_deliveries_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("paypal_webhook"), paypal_webhook, 3000);
    }

    #[test]
    fn svix_deliveries_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("svix_webhook"), svix_webhook, 3000);
    }
}
