//! The Stripe Checkout stand-in: the three calls our client makes (create, retrieve and expire
//! a Checkout Session, in Stripe's form encoding and JSON), a payment page for each session,
//! and, when it is paid or expired, a webhook signed with the endpoint secret and posted to our
//! own webhook route, as Stripe does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::page::{Message, Refusal, render};
use super::{Origins, Sandbox, random_token};
use crate::config::Secret;
use crate::money;

/// The secret key our Stripe client is given; the stand-in refuses any other.
pub(super) const SECRET_KEY: &str = "sk_test_sandbox_stripe";

/// A Checkout Session as the stand-in holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxCheckout {
    pub id: String,
    pub product_name: String,
    /// In the currency's minor units.
    pub amount: i64,
    pub currency: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    pub success_url: String,
    pub cancel_url: String,
    pub metadata: serde_json::Map<String, Value>,
    pub client_reference_id: Option<String>,
    pub created: i64,
    pub expires_at: i64,
    pub payment_intent: Option<String>,
    idempotency_key: Option<String>,
}

/// The Stripe stand-in's state.
pub struct StripeSandbox {
    origins: Origins,
    webhook_secret: Secret,
    http: reqwest::Client,
    sessions: Mutex<Vec<SandboxCheckout>>,
}

impl StripeSandbox {
    pub(super) fn new(origins: Origins, timeout: Duration) -> Self {
        Self {
            origins,
            webhook_secret: Secret::new(format!("whsec_sandbox_{}", random_token(32))),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            sessions: Mutex::default(),
        }
    }

    /// The secret the webhooks are signed with (made at start, so only this process knows it).
    pub fn webhook_secret(&self) -> &Secret {
        &self.webhook_secret
    }

    /// Every session, newest first.
    pub fn sessions(&self) -> Vec<SandboxCheckout> {
        let mut sessions = self.lock().clone();
        sessions.reverse();
        sessions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SandboxCheckout>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, id: &str) -> Option<SandboxCheckout> {
        self.lock().iter().find(|s| s.id == id).cloned()
    }

    /// Changes an open session; `None` when there is no such session or it is not open.
    fn close(&self, id: &str, status: &str) -> Option<SandboxCheckout> {
        let mut sessions = self.lock();
        let session = sessions
            .iter_mut()
            .find(|s| s.id == id && s.status == "open")?;
        session.status = status.to_owned();
        if status == "complete" {
            session.payment_intent = Some(format!("pi_sandbox_{}", random_token(24)));
        }
        Some(session.clone())
    }

    /// Signs `event` and posts it to our webhook route; the answer's status, or why there was
    /// none.
    async fn deliver(&self, event: &Value) -> Result<StatusCode, String> {
        let payload = event.to_string();
        let signature = stripe_webhook::Webhook::generate_test_header(
            &payload,
            self.webhook_secret.expose(),
            None,
        );
        let response = self
            .http
            .post(format!("{}/api/webhooks/stripe", self.origins.internal))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(payload)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status())
    }
}

/// The session in Stripe's JSON (the fields async-stripe requires, with what a hosted
/// payment-mode session has).
fn session_json(session: &SandboxCheckout, origins: &Origins) -> Value {
    let paid = session.status == "complete";
    let open = session.status == "open";
    let mut json = json!({
        "id": session.id, "object": "checkout.session",
        "adaptive_pricing": {"enabled": false}, "after_expiration": null,
        "allow_promotion_codes": true,
        "amount_subtotal": session.amount, "amount_total": session.amount,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null, "branding_settings": null,
        "cancel_url": session.cancel_url,
        "client_reference_id": session.client_reference_id, "client_secret": null,
        "collected_information": null, "consent": null, "consent_collection": null,
        "created": session.created, "currency": session.currency, "currency_conversion": null,
        "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
            "terms_of_service_acceptance": null},
        "customer": null, "customer_account": null, "customer_creation": "if_required",
        "customer_details": null, "customer_email": null, "discounts": [],
        "expires_at": session.expires_at, "integration_identifier": null, "invoice": null,
        "invoice_creation": null, "livemode": false, "locale": null,
        "metadata": session.metadata, "mode": "payment", "origin_context": null
    });
    // In two parts: one `json!` this long exceeds the macro's recursion limit.
    let rest = json!({
        "payment_intent": session.payment_intent, "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null, "payment_method_options": null,
        "payment_method_types": ["card"],
        "payment_status": if paid { "paid" } else { "unpaid" },
        "permissions": null, "phone_number_collection": {"enabled": false},
        "presentment_details": null, "recovered_from": null,
        "saved_payment_method_options": null, "setup_intent": null,
        "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": session.status, "submit_type": null, "subscription": null,
        "success_url": session.success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": if open {
            Value::String(format!("{}/sandbox/stripe/checkout/{}", origins.public, session.id))
        } else {
            Value::Null
        },
        "wallet_options": null
    });
    if let (Some(json), Value::Object(rest)) = (json.as_object_mut(), rest) {
        json.extend(rest);
    }
    json
}

/// An event of `type_` about `session`, as Stripe posts it.
fn event_json(type_: &str, session: &SandboxCheckout, origins: &Origins) -> Value {
    json!({
        "id": format!("evt_sandbox_{}", random_token(24)),
        "object": "event",
        "api_version": stripe_shared::version::VERSION.as_str(),
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": type_,
        "data": {"object": session_json(session, origins)}
    })
}

pub(super) fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/stripe/v1/checkout/sessions", post(create))
        .route("/stripe/v1/checkout/sessions/{id}", get(retrieve))
        .route("/stripe/v1/checkout/sessions/{id}/expire", post(expire))
        .route("/stripe/checkout", get(list_page))
        .route("/stripe/checkout/{id}", get(pay_page))
        .route("/stripe/checkout/{id}/pay", post(pay))
}

fn stripe_error(status: StatusCode, code: &str, message: &str) -> Refusal {
    Refusal::new(
        status,
        json!({"error": {"type": "invalid_request_error", "code": code, "message": message}}),
    )
}

fn api_call<'a>(sandbox: &'a Sandbox, headers: &HeaderMap) -> Result<&'a StripeSandbox, Refusal> {
    let stripe = sandbox.stripe.as_ref().ok_or_else(Refusal::not_stood_in)?;
    let expected = format!("Bearer {SECRET_KEY}");
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) if value == expected => Ok(stripe),
        _ => Err(stripe_error(
            StatusCode::UNAUTHORIZED,
            "api_key_invalid",
            "Invalid API Key provided",
        )),
    }
}

/// `POST /v1/checkout/sessions`, form-encoded with Stripe's bracketed keys. A repeated
/// idempotency key answers the session it created.
async fn create(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, Refusal> {
    let stripe = api_call(&sandbox, &headers)?;
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = &idempotency_key
        && let Some(earlier) = stripe
            .lock()
            .iter()
            .find(|s| s.idempotency_key.as_ref() == Some(key))
    {
        return Ok(axum::Json(session_json(earlier, &stripe.origins)).into_response());
    }
    let item = "line_items[0]";
    let quantity: i64 = field(&format!("{item}[quantity]"))
        .and_then(|q| q.parse().ok())
        .unwrap_or(1);
    let (Some(unit_amount), Some(currency), Some(success_url), Some(cancel_url)) = (
        field(&format!("{item}[price_data][unit_amount]")).and_then(|a| a.parse::<i64>().ok()),
        field(&format!("{item}[price_data][currency]")),
        field("success_url"),
        field("cancel_url"),
    ) else {
        return Err(stripe_error(
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "line_items[0][price_data] (unit_amount, currency), success_url and cancel_url \
             are required by the sandbox",
        ));
    };
    let metadata = form
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((key.to_owned(), Value::String(v.clone())))
        })
        .collect();
    let now = chrono::Utc::now().timestamp();
    let session = SandboxCheckout {
        id: format!("cs_test_sandbox_{}", random_token(24)),
        product_name: field(&format!("{item}[price_data][product_data][name]")).unwrap_or_default(),
        amount: unit_amount * quantity,
        currency: currency.to_lowercase(),
        status: "open".into(),
        success_url,
        cancel_url,
        metadata,
        client_reference_id: field("client_reference_id"),
        created: now,
        expires_at: field("expires_at")
            .and_then(|e| e.parse().ok())
            .unwrap_or(now + 24 * 3600),
        payment_intent: None,
        idempotency_key,
    };
    let json = session_json(&session, &stripe.origins);
    stripe.lock().push(session);
    Ok(axum::Json(json).into_response())
}

fn no_such_session(id: &str) -> Refusal {
    stripe_error(
        StatusCode::NOT_FOUND,
        "resource_missing",
        &format!("No such checkout.session: '{id}'"),
    )
}

/// `GET /v1/checkout/sessions/{id}` (an `expand` is accepted: nothing here needs expanding).
async fn retrieve(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let stripe = api_call(&sandbox, &headers)?;
    let session = stripe.find(&id).ok_or_else(|| no_such_session(&id))?;
    Ok(axum::Json(session_json(&session, &stripe.origins)).into_response())
}

/// `POST /v1/checkout/sessions/{id}/expire`: only an open session; then the
/// `checkout.session.expired` webhook, as Stripe sends it.
async fn expire(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let stripe = api_call(&sandbox, &headers)?;
    let Some(session) = stripe.close(&id, "expired") else {
        return Err(match stripe.find(&id) {
            Some(_) => stripe_error(
                StatusCode::BAD_REQUEST,
                "checkout_session_not_open",
                "Only Checkout Sessions with a status of open can be expired",
            ),
            None => no_such_session(&id),
        });
    };
    let event = event_json("checkout.session.expired", &session, &stripe.origins);
    let sandbox = Arc::clone(&sandbox);
    // After answering, as Stripe does: the webhook route may call back into this API.
    tokio::spawn(async move {
        if let Some(stripe) = sandbox.stripe.as_ref()
            && let Err(e) = stripe.deliver(&event).await
        {
            tracing::warn!(error = %e, "sandbox: the expired webhook was not delivered");
        }
    });
    Ok(axum::Json(session_json(&session, &stripe.origins)).into_response())
}

#[derive(Template)]
#[template(path = "sandbox/stripe_pay.html")]
struct PayPage {
    session: SandboxCheckout,
    amount: String,
}

#[derive(Template)]
#[template(path = "sandbox/stripe_sessions.html")]
struct ListPage {
    /// Each session and its amount for people.
    sessions: Vec<(SandboxCheckout, String)>,
}

fn display_amount(session: &SandboxCheckout) -> String {
    match money::from_stripe_amount(session.amount, &session.currency) {
        Ok(amount) => format!("{amount} {}", session.currency.to_uppercase()),
        Err(_) => format!("{} (minor units of {})", session.amount, session.currency),
    }
}

/// `GET /sandbox/stripe/checkout`: every session of this run.
async fn list_page(State(sandbox): State<Arc<Sandbox>>) -> Response {
    let Some(stripe) = sandbox.stripe.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sessions = stripe
        .sessions()
        .into_iter()
        .map(|s| {
            let amount = display_amount(&s);
            (s, amount)
        })
        .collect();
    render(&ListPage { sessions }, StatusCode::OK)
}

/// `GET /sandbox/stripe/checkout/{id}`: the hosted payment page.
async fn pay_page(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>) -> Response {
    match sandbox.stripe.as_ref().and_then(|s| s.find(&id)) {
        Some(session) => {
            let amount = display_amount(&session);
            render(&PayPage { session, amount }, StatusCode::OK)
        }
        None => Message::respond(
            "No such checkout",
            "The sandbox keeps its checkouts in memory: a restart forgets them. Start a new \
             checkout from the dev console.",
            StatusCode::NOT_FOUND,
        ),
    }
}

/// The "Pay" button: the session completes, the signed `checkout.session.completed` webhook
/// goes to our webhook route, and the buyer is sent to the success URL, as from Stripe.
async fn pay(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>) -> Response {
    let Some(stripe) = sandbox.stripe.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(session) = stripe.close(&id, "complete") else {
        let text = match stripe.find(&id) {
            Some(s) => format!("This checkout is {}; it can no longer be paid.", s.status),
            None => "The sandbox keeps its checkouts in memory: a restart forgets them.".into(),
        };
        return Message::respond("Checkout closed", text, StatusCode::CONFLICT);
    };
    let event = event_json("checkout.session.completed", &session, &stripe.origins);
    match stripe.deliver(&event).await {
        Ok(status) if status.is_success() => {}
        // Stripe would retry for days; the page says what happened instead.
        Ok(status) => {
            return Message::respond(
                "Paid, but the webhook was refused",
                format!("Our webhook route answered {status}; see the service's log."),
                StatusCode::BAD_GATEWAY,
            );
        }
        Err(e) => {
            return Message::respond(
                "Paid, but the webhook was not delivered",
                format!("Posting it to our webhook route failed: {e}"),
                StatusCode::BAD_GATEWAY,
            );
        }
    }
    let success = session
        .success_url
        .replace("{CHECKOUT_SESSION_ID}", &session.id);
    Redirect::to(&success).into_response()
}
