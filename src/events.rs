//! The Inngest events this service sends and handles, with their payloads. Names are the
//! product brief's; payload fields are camelCase as in the brief.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::models::Provider;

/// `stripe/checkout.session.completed`.
pub const STRIPE_CHECKOUT_COMPLETED: &str = "stripe/checkout.session.completed";
/// `stripe/checkout.session.expired`.
pub const STRIPE_CHECKOUT_EXPIRED: &str = "stripe/checkout.session.expired";
/// `stripe/charge.refunded`.
pub const STRIPE_CHARGE_REFUNDED: &str = "stripe/charge.refunded";
/// `stripe/charge.dispute.lost`: Stripe's `charge.dispute.closed` with status `lost`, a
/// chargeback: the card network took the disputed amount back from us.
pub const STRIPE_DISPUTE_LOST: &str = "stripe/charge.dispute.lost";
/// `paypal/payment.capture.completed`.
pub const PAYPAL_CAPTURE_COMPLETED: &str = "paypal/payment.capture.completed";
/// `paypal/payment.capture.refunded`.
pub const PAYPAL_CAPTURE_REFUNDED: &str = "paypal/payment.capture.refunded";
/// `paypal/payment.capture.reversed`: PayPal took a capture's money back (a chargeback, a
/// claim decided for the buyer, a bounced funding source).
pub const PAYPAL_CAPTURE_REVERSED: &str = "paypal/payment.capture.reversed";
/// `paypal/payment.capture.denied`: a pending capture (an eCheck, a review) that failed.
pub const PAYPAL_CAPTURE_DENIED: &str = "paypal/payment.capture.denied";
/// `user/discord.connected`, sent when a user connects Discord.
pub const USER_DISCORD_CONNECTED: &str = "user/discord.connected";
/// `clerk/user.created`, `.updated`, `.deleted`: Clerk's webhooks as Inngest forwards them.
pub const CLERK_USER_CREATED: &str = "clerk/user.created";
/// See [`CLERK_USER_CREATED`].
pub const CLERK_USER_UPDATED: &str = "clerk/user.updated";
/// See [`CLERK_USER_CREATED`].
pub const CLERK_USER_DELETED: &str = "clerk/user.deleted";

/// `session/scheduled`: a mentee booked a session (or moved one: see [`SESSION_RESCHEDULED`]).
pub const SESSION_SCHEDULED: &str = "session/scheduled";
/// `session/rescheduled`: a scheduled session moved; the old time's reminders stop.
pub const SESSION_RESCHEDULED: &str = "session/rescheduled";
/// `session/cancelled`: a scheduled session was cancelled.
pub const SESSION_CANCELLED: &str = "session/cancelled";
/// `session/completed`: the mentor completed a session, or marked it a no-show; either way
/// it is used up.
pub const SESSION_COMPLETED: &str = "session/completed";
/// `pack/expiration-check`: look at one pack past its expiry.
pub const PACK_EXPIRATION_CHECK: &str = "pack/expiration-check";

/// `seat/released`: a seat with a mentor was given back (see `crate::seats`).
pub const SEAT_RELEASED: &str = "seat/released";
/// `seat/offered`: a released seat was reserved for the first buyer in a mentor's waitlist,
/// until `expiresAt` (see `crate::waitlist`).
pub const SEAT_OFFERED: &str = "seat/offered";

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

/// A dispute Stripe closed as lost; `amount` is what was taken back, in minor units. A charge
/// has at most one dispute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripeDisputeLost {
    pub dispute_id: String,
    pub charge_id: String,
    pub payment_intent_id: String,
    pub amount: i64,
    pub currency: String,
}

/// A reversed PayPal capture: the reversal (a refund object PayPal made) and its amount, a
/// decimal string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaypalCaptureReversed {
    pub capture_id: String,
    pub reversal_id: String,
    pub amount: String,
    pub currency: String,
}

/// A user connected Discord (sent by the OAuth callback once the connection is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscordConnected {
    pub clerk_id: String,
    pub discord_id: String,
}

/// A completed PayPal capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaypalCaptureCompleted {
    pub capture_id: String,
    pub order_id: Uuid,
    /// The PayPal order the capture belongs to (`supplementary_data.related_ids.order_id`).
    /// Empty in events stored before it was carried, which then do not match their order.
    #[serde(default)]
    pub paypal_order_id: String,
    /// Decimal string, e.g. `"150.00"`.
    pub amount: String,
    pub currency: String,
}

/// A PayPal capture that was pending and then denied: the order will never be paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaypalCaptureDenied {
    pub capture_id: String,
    pub order_id: Uuid,
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

/// A booked session, at its (new) time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionScheduled {
    pub session_id: Uuid,
    pub session_pack_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
}

/// A session moved from `previous_scheduled_at` to `scheduled_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRescheduled {
    pub session_id: Uuid,
    pub session_pack_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub previous_scheduled_at: DateTime<Utc>,
}

/// A cancelled session, with the time it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCancelled {
    pub session_id: Uuid,
    pub session_pack_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
}

/// A used session (the brief's payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCompleted {
    pub session_id: Uuid,
    pub session_pack_id: Uuid,
    /// The mentee's Clerk id.
    pub user_id: String,
}

/// A pack to check for expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackExpirationCheck {
    pub pack_id: Uuid,
}

/// A released seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatReleased {
    pub seat_id: Uuid,
    pub mentor_id: Uuid,
    /// The user who had the seat (our id).
    pub user_id: Uuid,
    pub session_pack_id: Option<Uuid>,
    pub reason: crate::models::ReleaseReason,
}

/// A seat offered to a buyer in line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatOfferMade {
    pub offer_id: Uuid,
    /// The released seat on offer.
    pub seat_id: Uuid,
    pub mentor_id: Uuid,
    /// The buyer it is offered to (our id).
    pub user_id: Uuid,
    /// When the offer lapses if not taken.
    pub expires_at: DateTime<Utc>,
}

/// The field of event data that the encryption middleware seals (`INNGEST_ENCRYPTION_KEY`).
pub const SEALED_FIELD: &str = inngest_sdk::middleware::encryption::DEFAULT_EVENT_FIELD;

/// A provider's event data as our webhook routes forward it: with encryption on, the personal
/// part (emails, names) travels under [`SEALED_FIELD`], which the encryption middleware
/// seals on the way to Inngest and opens before the function reads it; without it, or from
/// the provider's own Inngest integration, the data is as the provider sent it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MaybeSealed<T> {
    /// `{"encrypted": data, …}`.
    Sealed { encrypted: T },
    /// The provider's data itself.
    Plain(T),
}

impl<T> MaybeSealed<T> {
    /// The provider's data, whichever way it came.
    pub fn data(&self) -> &T {
        match self {
            MaybeSealed::Sealed { encrypted } | MaybeSealed::Plain(encrypted) => encrypted,
        }
    }
}

/// `data` sealed for the trip through Inngest when `sealing`, keeping `keep` (fields that
/// trigger expressions and concurrency keys read, never personal) readable beside it.
pub fn seal_if(sealing: bool, data: Value, keep: &[&str]) -> Value {
    if !sealing {
        return data;
    }
    let mut sealed = serde_json::Map::new();
    for field in keep {
        if let Some(value) = data.get(*field) {
            sealed.insert((*field).to_owned(), value.clone());
        }
    }
    sealed.insert(SEALED_FIELD.to_owned(), data);
    Value::Object(sealed)
}
