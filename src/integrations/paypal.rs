//! PayPal over reqwest (no maintained crate): OAuth client credentials, Orders v2, and webhook
//! verification through `verify-webhook-signature`.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::ClosedCheckout;
use crate::config::PaypalConfig;

/// A PayPal failure.
#[derive(Debug, thiserror::Error)]
pub enum PaypalError {
    /// PayPal could not be reached.
    #[error("PayPal unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// PayPal answered with an error status.
    #[error("PayPal answered {0}")]
    Status(super::ErrorAnswer),
    /// A required webhook header is missing.
    #[error("missing PayPal webhook header {0}")]
    MissingHeader(&'static str),
    /// An answer without what we need.
    #[error("unexpected PayPal response: {0}")]
    Unexpected(String),
}

/// Transport failures and timeouts are retried, an answer by its status; a missing header or
/// an answer without what we need will be the same next time.
impl inngest_sdk::Classify for PaypalError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            PaypalError::Transport(_) => inngest_sdk::Retry::Default,
            PaypalError::Status(answer) => answer.retry(),
            PaypalError::MissingHeader(_) | PaypalError::Unexpected(_) => inngest_sdk::Retry::Never,
        }
    }
}

/// A created PayPal order.
#[derive(Debug, Clone)]
pub struct CreatedOrder {
    pub id: String,
    pub approve_url: String,
}

/// The PayPal client.
pub struct PaypalApi {
    config: PaypalConfig,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

const WEBHOOK_HEADERS: [(&str, &str); 5] = [
    ("paypal-auth-algo", "auth_algo"),
    ("paypal-cert-url", "cert_url"),
    ("paypal-transmission-id", "transmission_id"),
    ("paypal-transmission-sig", "transmission_sig"),
    ("paypal-transmission-time", "transmission_time"),
];

impl PaypalApi {
    /// A client for `config`, sending through `http` ([`super::http_client`]).
    pub fn new(config: &PaypalConfig, http: reqwest::Client) -> Self {
        Self {
            config: config.clone(),
            http,
            token: Mutex::new(None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.config.api_base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// An OAuth access token, cached until shortly before it expires.
    async fn access_token(&self) -> Result<String, PaypalError> {
        let mut cached = self.token.lock().await;
        if let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(self.url("/v1/oauth2/token"))
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?;
        let token: TokenResponse = checked(response).await?.json().await?;
        let valid_until = Instant::now() + Duration::from_secs(token.expires_in.saturating_sub(60));
        *cached = Some((token.access_token.clone(), valid_until));
        Ok(token.access_token)
    }

    /// Creates an order for our `order_id` (the request id makes a retry create nothing new).
    pub async fn create_order(
        &self,
        order_id: Uuid,
        amount: &str,
        currency: &str,
        return_url: &str,
        cancel_url: &str,
    ) -> Result<CreatedOrder, PaypalError> {
        let token = self.access_token().await?;
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": order_id,
                "custom_id": order_id,
                "amount": { "currency_code": currency.to_uppercase(), "value": amount },
            }],
            "payment_source": { "paypal": { "experience_context": {
                "return_url": return_url,
                "cancel_url": cancel_url,
                "user_action": "PAY_NOW",
            }}},
        });
        let response = self
            .http
            .post(self.url("/v2/checkout/orders"))
            .bearer_auth(token)
            .header("PayPal-Request-Id", format!("create-{order_id}"))
            .json(&body)
            .send()
            .await?;
        let created: Value = checked(response).await?.json().await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| PaypalError::Unexpected("no order id".into()))?;
        let approve_url = created["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["rel"] == "payer-action" || l["rel"] == "approve")
            .and_then(|l| l["href"].as_str())
            .ok_or_else(|| PaypalError::Unexpected("no approval link".into()))?;
        Ok(CreatedOrder {
            id: id.to_owned(),
            approve_url: approve_url.to_owned(),
        })
    }

    /// Captures an approved order (idempotent through the request id).
    pub async fn capture_order(&self, paypal_order_id: &str) -> Result<Value, PaypalError> {
        let token = self.access_token().await?;
        let response = self
            .http
            .post(self.url(&format!("/v2/checkout/orders/{paypal_order_id}/capture")))
            .bearer_auth(token)
            .header("PayPal-Request-Id", format!("capture-{paypal_order_id}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    /// Whether an order we no longer wait for was paid. Only our return route captures, and
    /// never after the checkout's hold ended, so an order not captured by now never will be.
    pub async fn close_checkout(
        &self,
        paypal_order_id: &str,
    ) -> Result<ClosedCheckout, PaypalError> {
        let token = self.access_token().await?;
        let response = self
            .http
            .get(self.url(&format!("/v2/checkout/orders/{paypal_order_id}")))
            .bearer_auth(token)
            .send()
            .await?;
        let order: Value = match checked(response).await {
            Err(PaypalError::Status(answer)) if answer.status == 404 => {
                return Ok(ClosedCheckout::Unpaid);
            }
            other => other?.json().await?,
        };
        match order["status"].as_str() {
            Some("COMPLETED") => Ok(ClosedCheckout::Paid),
            Some(_) => Ok(ClosedCheckout::Unpaid),
            None => Err(PaypalError::Unexpected(format!(
                "order {paypal_order_id} has no status"
            ))),
        }
    }

    /// Asks PayPal whether a webhook delivery is authentic. The event is passed on exactly as
    /// received (`raw_event`), never re-serialized. An error means PayPal could not say (it is
    /// down, rate-limits us, or refuses our credentials): the delivery may be genuine.
    pub async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        raw_event: &serde_json::value::RawValue,
    ) -> Result<Verdict, PaypalError> {
        let body = self.verification_request(headers, raw_event)?;
        let token = self.access_token().await?;
        let response = self
            .http
            .post(self.url("/v1/notifications/verify-webhook-signature"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let answer: Value = match checked(response).await {
            Ok(response) => response.json().await?,
            // A final client error other than about our credentials: PayPal refuses to check
            // what the caller sent (malformed headers or event), which the same delivery will
            // never pass.
            Err(PaypalError::Status(answer))
                if answer.retry() == inngest_sdk::Retry::Never
                    && !matches!(answer.status, 401 | 403) =>
            {
                return Ok(Verdict::Refused(answer));
            }
            Err(other) => return Err(other),
        };
        Ok(if answer["verification_status"] == "SUCCESS" {
            Verdict::Authentic
        } else {
            Verdict::Failed
        })
    }

    /// The body of `verify-webhook-signature`: our webhook id, the five transmission headers,
    /// and the event exactly as received.
    pub(crate) fn verification_request(
        &self,
        headers: &HeaderMap,
        raw_event: &serde_json::value::RawValue,
    ) -> Result<String, PaypalError> {
        let mut body = json!({ "webhook_id": self.config.webhook_id });
        for (header, field) in WEBHOOK_HEADERS {
            let value = headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .ok_or(PaypalError::MissingHeader(header))?;
            body[field] = json!(value);
        }
        let mut body =
            serde_json::to_string(&body).map_err(|e| PaypalError::Unexpected(e.to_string()))?;
        body.pop();
        body.push_str(",\"webhook_event\":");
        body.push_str(raw_event.get());
        body.push('}');
        Ok(body)
    }
}

/// PayPal's answer on a webhook delivery.
#[derive(Debug)]
pub enum Verdict {
    /// PayPal vouches for it.
    Authentic,
    /// PayPal checked it and it does not verify (status `FAILURE`).
    Failed,
    /// PayPal refused to check it, as malformed.
    Refused(super::ErrorAnswer),
}

async fn checked(response: reqwest::Response) -> Result<reqwest::Response, PaypalError> {
    super::success_or(response, PaypalError::Status).await
}
