//! Stripe through async-stripe: webhook verification, and the Checkout Session reads and
//! writes the payment flow needs. The API origin is configurable (a local fake in tests).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use stripe_shared::CheckoutSession;
use stripe_shared::DisputeStatus;
use stripe_webhook::{EventObject, Webhook, WebhookError};
use uuid::Uuid;

use super::ClosedCheckout;
use crate::config::{Secret, StripeConfig};
use crate::events::{
    STRIPE_CHARGE_REFUNDED, STRIPE_CHECKOUT_COMPLETED, STRIPE_CHECKOUT_EXPIRED,
    STRIPE_DISPUTE_LOST, StripeChargeRefunded, StripeCheckoutCompleted, StripeCheckoutExpired,
    StripeDisputeLost,
};
use crate::models::order::PaidAmounts;
use crate::money::from_stripe_amount;

/// A Stripe API failure.
#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    /// The client could not be built.
    #[error("Stripe client: {0}")]
    Client(String),
    /// The API call failed.
    #[error("Stripe API: {0}")]
    Api(#[from] stripe::StripeError),
    /// The answer lacks what we need.
    #[error("unexpected Stripe data: {0}")]
    Unexpected(String),
}

/// Stripe's error answers go by their status (async-stripe keeps it, not `Retry-After`);
/// a timeout or a connection failure is retried; a client we cannot build, or an answer
/// without what we need, will be the same next time.
impl inngest_sdk::Classify for StripeApiError {
    fn retry(&self) -> inngest_sdk::Retry {
        use inngest_sdk::Retry;
        match self {
            StripeApiError::Api(stripe::StripeError::Stripe(_, status)) => {
                Retry::for_http_status(*status, None)
            }
            StripeApiError::Api(stripe::StripeError::ConfigError(_)) => Retry::Never,
            StripeApiError::Api(_) => Retry::Default,
            StripeApiError::Client(_) | StripeApiError::Unexpected(_) => Retry::Never,
        }
    }
}

/// A webhook that verified, reduced to what we store and forward.
#[derive(Debug, Clone)]
pub struct VerifiedStripeEvent {
    /// `evt_...`, also the Inngest event id.
    pub id: String,
    /// `checkout.session.completed`, ...
    pub event_type: String,
    /// The Inngest event to deliver, or `None` for types we do not handle.
    pub inngest_event: Option<inngest_sdk::Event<Value>>,
}

/// The Stripe client and webhook secret.
pub struct StripeApi {
    client: Result<stripe::Client, String>,
    webhook_secret: Secret,
}

impl StripeApi {
    /// A client for `config`, each attempt of a request bounded by `timeout` (async-stripe
    /// has none by default: a Stripe that hangs would hold the step for ever).
    pub fn new(config: &StripeConfig, timeout: Duration) -> Self {
        let client = stripe::ClientBuilder::new(config.secret_key.expose())
            .url(config.api_base.clone())
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string());
        Self {
            client,
            webhook_secret: config.webhook_secret.clone(),
        }
    }

    fn client(&self) -> Result<&stripe::Client, StripeApiError> {
        self.client
            .as_ref()
            .map_err(|e| StripeApiError::Client(e.clone()))
    }

    /// Verifies `Stripe-Signature` over the raw body (300 s tolerance) and maps the event.
    pub fn verify_webhook(
        &self,
        payload: &str,
        signature: &str,
    ) -> Result<VerifiedStripeEvent, WebhookError> {
        let event = Webhook::construct_event(payload, signature, self.webhook_secret.expose())?;
        let id = event.id.as_str().to_owned();
        let event_type = event.type_.as_str().to_owned();
        let data = match &event.data.object {
            // A delayed payment method succeeds later with its own event; both fulfil.
            EventObject::CheckoutSessionCompleted(session)
            | EventObject::CheckoutSessionAsyncPaymentSucceeded(session) => {
                checkout_completed(session).map(|data| (STRIPE_CHECKOUT_COMPLETED, json!(data)))
            }
            // A delayed payment method failed: the session will never be paid, and its order
            // ends as an expired one does (its seat hold released). Without this, the order
            // stayed pending for ever: the abandoned-checkout sweep skips an order whose
            // session completed, and a completed session reads as paid when closed.
            EventObject::CheckoutSessionExpired(session)
            | EventObject::CheckoutSessionAsyncPaymentFailed(session) => {
                order_id(session).map(|order_id| {
                    let data = StripeCheckoutExpired {
                        session_id: session.id.as_str().to_owned(),
                        order_id,
                    };
                    (STRIPE_CHECKOUT_EXPIRED, json!(data))
                })
            }
            EventObject::ChargeRefunded(charge) => charge.payment_intent.as_ref().map(|pi| {
                let data = StripeChargeRefunded {
                    charge_id: charge.id.as_str().to_owned(),
                    payment_intent_id: pi.id().as_str().to_owned(),
                    amount: charge.amount,
                    amount_refunded: charge.amount_refunded,
                    currency: charge.currency.to_string(),
                };
                (STRIPE_CHARGE_REFUNDED, json!(data))
            }),
            // A chargeback: the money went back to the buyer as surely as with a refund. A
            // dispute still open, won or only warned of changes nothing.
            EventObject::ChargeDisputeClosed(dispute) if dispute.status == DisputeStatus::Lost => {
                match &dispute.payment_intent {
                    Some(pi) => {
                        let data = StripeDisputeLost {
                            dispute_id: dispute.id.as_str().to_owned(),
                            charge_id: dispute.charge.id().as_str().to_owned(),
                            payment_intent_id: pi.id().as_str().to_owned(),
                            amount: dispute.amount,
                            currency: dispute.currency.to_string(),
                        };
                        Some((STRIPE_DISPUTE_LOST, json!(data)))
                    }
                    None => {
                        tracing::error!(
                            dispute = dispute.id.as_str(),
                            "a lost Stripe dispute names no PaymentIntent; it cannot be applied"
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        let inngest_event =
            data.map(|(name, data)| inngest_sdk::Event::new(name, data).with_id(id.clone()));
        Ok(VerifiedStripeEvent {
            id,
            event_type,
            inngest_event,
        })
    }

    /// What a completed session charged, with discounts and the promotion code.
    pub async fn paid_amounts(
        &self,
        session_id: &str,
    ) -> Result<Option<(String, PaidAmounts)>, StripeApiError> {
        let session = stripe_checkout::checkout_session::RetrieveCheckoutSession::new(session_id)
            // Two levels deep: Stripe refuses expansions deeper than four.
            .expand(vec!["discounts.promotion_code".to_owned()])
            .send(self.client()?)
            .await?;
        summarize(&session)
    }
}

impl StripeApi {
    /// Makes sure a Checkout Session can no longer be paid, expiring it at Stripe if it is
    /// still open, and says whether it was paid. A completed session counts as paid even while
    /// a delayed payment method settles: its own event decides.
    pub async fn close_checkout(&self, session_id: &str) -> Result<ClosedCheckout, StripeApiError> {
        use stripe_checkout::checkout_session::{ExpireCheckoutSession, RetrieveCheckoutSession};
        use stripe_shared::CheckoutSessionStatus as Status;
        let client = self.client()?;
        let session = match RetrieveCheckoutSession::new(session_id).send(client).await {
            Err(stripe::StripeError::Stripe(_, 404)) => return Ok(ClosedCheckout::Unpaid),
            other => other?,
        };
        match session.status {
            Some(Status::Complete) => Ok(ClosedCheckout::Paid),
            Some(Status::Expired) => Ok(ClosedCheckout::Unpaid),
            Some(Status::Open) => {
                // If the buyer pays in between, Stripe refuses to expire: an error, and the
                // next sweep finds the session complete.
                let expired = ExpireCheckoutSession::new(session_id).send(client).await?;
                match expired.status {
                    Some(Status::Expired) => Ok(ClosedCheckout::Unpaid),
                    other => Err(StripeApiError::Unexpected(format!(
                        "session {session_id} is {other:?} after expiring it"
                    ))),
                }
            }
            other => Err(StripeApiError::Unexpected(format!(
                "session {session_id} has the status {other:?}"
            ))),
        }
    }
}

/// What a Checkout Session is created with.
#[derive(Debug, Clone)]
pub struct NewCheckoutSession {
    pub order_id: Uuid,
    pub clerk_id: String,
    pub product_id: Uuid,
    pub product_name: String,
    /// Stripe's minor units of `currency` (`money::to_stripe_amount`).
    pub unit_amount: i64,
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    /// Unix seconds; at least 30 minutes ahead (Stripe's minimum).
    pub expires_at: i64,
}

impl StripeApi {
    /// Creates a Checkout Session for an order, promotion codes allowed. The idempotency key is
    /// the order's, so a retried request cannot create a second session.
    pub async fn create_checkout_session(
        &self,
        new: &NewCheckoutSession,
    ) -> Result<(String, String), StripeApiError> {
        use stripe::StripeRequest;
        use stripe_checkout::checkout_session::{
            CreateCheckoutSession, CreateCheckoutSessionLineItems,
            CreateCheckoutSessionLineItemsPriceData, ProductData,
        };
        let currency: stripe_types::Currency = new.currency.parse().map_err(|_| {
            StripeApiError::Unexpected(format!("unknown currency {}", new.currency))
        })?;
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price.unit_amount = Some(new.unit_amount);
        price.product_data = Some(ProductData::new(new.product_name.clone()));
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let metadata = HashMap::from([
            ("order_id".to_owned(), new.order_id.to_string()),
            ("user_id".to_owned(), new.clerk_id.clone()),
            ("product_id".to_owned(), new.product_id.to_string()),
        ]);
        let key = stripe::IdempotencyKey::new(format!("checkout-{}", new.order_id))
            .map_err(|e| StripeApiError::Unexpected(e.to_string()))?;
        let session = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Payment)
            .line_items(vec![item])
            .success_url(new.success_url.clone())
            .cancel_url(new.cancel_url.clone())
            .metadata(metadata)
            .allow_promotion_codes(true)
            .expires_at(new.expires_at)
            .client_reference_id(new.order_id.to_string())
            .customize()
            .request_strategy(stripe::RequestStrategy::Idempotent(key))
            .send(self.client()?)
            .await?;
        let url = session
            .url
            .ok_or_else(|| StripeApiError::Unexpected("the new session has no url".into()))?;
        Ok((session.id.as_str().to_owned(), url))
    }
}

fn metadata(session: &CheckoutSession) -> HashMap<String, String> {
    session.metadata.clone().unwrap_or_default()
}

fn order_id(session: &CheckoutSession) -> Option<Uuid> {
    metadata(session)
        .get("order_id")
        .and_then(|id| id.parse().ok())
}

/// Sessions not created by our checkout (no order metadata) are stored but not forwarded.
fn checkout_completed(session: &CheckoutSession) -> Option<StripeCheckoutCompleted> {
    let meta = metadata(session);
    Some(StripeCheckoutCompleted {
        session_id: session.id.as_str().to_owned(),
        order_id: meta.get("order_id")?.parse().ok()?,
        user_id: meta.get("user_id")?.clone(),
        product_id: meta.get("product_id")?.parse().ok()?,
    })
}

/// The payment's id and the amounts of a session, or `None` while it is not paid (a delayed
/// payment method: `checkout.session.async_payment_succeeded` comes later).
///
/// The id is the PaymentIntent's. A session a promotion code made free (100% off) is
/// complete with `no_payment_required` and no PaymentIntent: the session's own id stands for
/// the payment, of zero. Left unpaid, its order would hold the seat for ever.
pub fn summarize(
    session: &CheckoutSession,
) -> Result<Option<(String, PaidAmounts)>, StripeApiError> {
    use stripe_shared::CheckoutSessionPaymentStatus as Status;
    let free = match session.payment_status {
        Status::Paid => false,
        Status::NoPaymentRequired => true,
        _ => return Ok(None),
    };
    let unexpected =
        |what: &str| StripeApiError::Unexpected(format!("session {}: {what}", session.id.as_str()));
    let payment_intent = match &session.payment_intent {
        Some(pi) => pi.id().as_str().to_owned(),
        None if free => session.id.as_str().to_owned(),
        None => return Err(unexpected("no payment intent")),
    };
    let total = session
        .amount_total
        .ok_or_else(|| unexpected("no amount_total"))?;
    let subtotal = session.amount_subtotal.unwrap_or(total);
    let discount = session
        .total_details
        .as_ref()
        .map_or(0, |d| d.amount_discount);
    // The code the buyer typed when the promotion code is expanded (we expand
    // `discounts.promotion_code`), else its id, else the coupon's id.
    let discount_code = session.discounts.iter().flatten().find_map(|d| {
        let promotion = d.promotion_code.as_ref().map(|p| match p {
            stripe_types::Expandable::Object(code) => code.code.clone(),
            stripe_types::Expandable::Id(id) => id.as_str().to_owned(),
        });
        promotion.or_else(|| d.coupon.as_ref().map(|c| c.id().as_str().to_owned()))
    });
    let currency = session
        .currency
        .as_ref()
        .map(|c| c.to_string())
        .ok_or_else(|| unexpected("no currency"))?;
    let decimal =
        |minor: i64| from_stripe_amount(minor, &currency).map_err(|e| unexpected(&e.to_string()));
    Ok(Some((
        payment_intent,
        PaidAmounts {
            total: decimal(total)?,
            original: decimal(subtotal)?,
            discount: decimal(discount)?,
            discount_code,
            currency,
        },
    )))
}
