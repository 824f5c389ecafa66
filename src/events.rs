//! The Inngest events this service sends and handles, with their payloads. Names are the
//! product brief's; payload fields are camelCase as in the brief.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::models::Provider;

/// `stripe/checkout.session.completed`.
pub const STRIPE_CHECKOUT_COMPLETED: &str = "stripe/checkout.session.completed";
/// `stripe/checkout.session.expired`.
pub const STRIPE_CHECKOUT_EXPIRED: &str = "stripe/checkout.session.expired";
/// `stripe/charge.refunded`.
pub const STRIPE_CHARGE_REFUNDED: &str = "stripe/charge.refunded";
/// `paypal/payment.capture.completed`.
pub const PAYPAL_CAPTURE_COMPLETED: &str = "paypal/payment.capture.completed";
/// `paypal/payment.capture.refunded`.
pub const PAYPAL_CAPTURE_REFUNDED: &str = "paypal/payment.capture.refunded";
/// `user/discord.connected`, sent when a user connects Discord.
pub const USER_DISCORD_CONNECTED: &str = "user/discord.connected";
/// `clerk/user.created`, `.updated`, `.deleted`: Clerk's webhooks as Inngest forwards them.
pub const CLERK_USER_CREATED: &str = "clerk/user.created";
/// See [`CLERK_USER_CREATED`].
pub const CLERK_USER_UPDATED: &str = "clerk/user.updated";
/// See [`CLERK_USER_CREATED`].
pub const CLERK_USER_DELETED: &str = "clerk/user.deleted";

/// `purchase/mentorship`, which starts onboarding.
pub const PURCHASE_MENTORSHIP: &str = "purchase/mentorship";

/// A paid Stripe Checkout Session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeCheckoutCompleted {
    pub session_id: String,
    pub order_id: Uuid,
    /// The buyer's Clerk id, from the session metadata.
    pub user_id: String,
    pub product_id: Uuid,
}

/// A Stripe Checkout Session that expired unpaid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeCheckoutExpired {
    pub session_id: String,
    pub order_id: Uuid,
}

/// A refunded Stripe charge; `amount_refunded` is cumulative, in minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeChargeRefunded {
    pub charge_id: String,
    pub payment_intent_id: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
}

/// A completed PayPal capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaypalCaptureCompleted {
    pub capture_id: String,
    pub order_id: Uuid,
    /// Decimal string, e.g. `"150.00"`.
    pub amount: String,
    pub currency: String,
}

/// A refunded PayPal capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaypalCaptureRefunded {
    pub capture_id: String,
    pub refund_id: String,
    /// Everything refunded on the capture so far, decimal string.
    pub total_refunded: String,
    pub currency: String,
}

/// A mentorship was bought and fulfilled: starts onboarding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseMentorship {
    pub order_id: Uuid,
    pub clerk_id: String,
    pub pack_id: Uuid,
    pub provider: Provider,
}
