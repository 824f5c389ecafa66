//! Fulfilling a paid order: order paid, payment, session pack and active seat, atomically and
//! idempotently (every write is an upsert keyed by the order, the provider payment id or the
//! payment), so a repeated webhook, a retry after a crash or a replay changes nothing. A
//! renewal's seat is the renewed one, moved to the new pack.
//!
//! Only a payment that matches its order is fulfilled: the order's provider and checkout
//! (the Stripe Checkout Session or PayPal order we created), its currency, and its price,
//! less a discount only where Stripe reports one (total = subtotal - discount, subtotal =
//! price). Anything else is recorded in `payment_mismatches`, logged as an error and fails
//! for good, naming the order: a verified webhook proves who sent it, not what was owed.

use bigdecimal::BigDecimal;
use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use inngest_sdk::Event;

use super::PaymentsError;
use crate::events::{PURCHASE_MENTORSHIP, PurchaseMentorship};
use crate::models::order::PaidAmounts;
use crate::models::pack::NewSessionPack;
use crate::models::{
    Order, Payment, PaymentMismatch, Product, Provider, SeatReservation, SessionPack, User,
};

/// What a provider confirmed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmedPayment {
    pub order_id: Uuid,
    pub provider: Provider,
    /// Stripe PaymentIntent id or PayPal capture id.
    pub provider_payment_id: String,
    /// The checkout the provider says was paid: the Stripe Checkout Session id or the PayPal
    /// order id, to match the order's `provider_checkout_id`.
    pub provider_checkout_id: String,
    pub amounts: PaidAmounts,
}

/// What fulfilment produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fulfilment {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub pack_id: Uuid,
    pub seat_id: Uuid,
    pub clerk_id: String,
}

impl Fulfilment {
    /// `purchase/mentorship` for this order, with an id derived from the order, so Inngest
    /// starts onboarding once however often the purchase is processed.
    pub fn onboarding_event(&self, provider: Provider) -> Event<PurchaseMentorship> {
        Event::new(
            PURCHASE_MENTORSHIP,
            PurchaseMentorship {
                order_id: self.order_id,
                clerk_id: self.clerk_id.clone(),
                pack_id: self.pack_id,
                provider,
            },
        )
        .with_id(format!("purchase-mentorship-{}", self.order_id))
    }
}

/// Records the payment and everything it buys, in one transaction; a payment that does not
/// match its order is recorded as a mismatch instead (committed) and fails.
pub async fn fulfil(
    conn: &mut AsyncPgConnection,
    paid: &ConfirmedPayment,
) -> Result<Fulfilment, PaymentsError> {
    let checked = paid.clone();
    let outcome = conn
        .transaction::<_, PaymentsError, _>(async move |conn| {
            let paid = checked;
            let order = Order::lock(conn, paid.order_id)
                .await?
                .ok_or(PaymentsError::OrderNotFound(paid.order_id))?;
            if let Some(mismatch) = mismatch(&order, &paid) {
                PaymentMismatch::record(conn, &mismatch).await?;
                return Ok(Err(mismatch.reason));
            }
            record(conn, &order, &paid).await.map(Ok)
        })
        .await?;
    outcome.map_err(|reason| {
        tracing::error!(
            order_id = %paid.order_id,
            provider = %paid.provider,
            provider_payment_id = %paid.provider_payment_id,
            %reason,
            "a confirmed payment does not match its order; recorded, not fulfilled"
        );
        PaymentsError::Mismatch {
            order_id: paid.order_id,
            provider_payment_id: paid.provider_payment_id.clone(),
            reason,
        }
    })
}

/// What is wrong with `paid` for `order`, if anything.
fn mismatch(order: &Order, paid: &ConfirmedPayment) -> Option<PaymentMismatch> {
    let amounts = &paid.amounts;
    // Once paid, `total_amount` is what was charged and `original_amount` the price.
    let price = order
        .original_amount
        .as_ref()
        .unwrap_or(&order.total_amount);
    let zero = BigDecimal::from(0);
    let reason = if order.provider != paid.provider {
        format!(
            "paid through {}, ordered through {}",
            paid.provider, order.provider
        )
    } else if order.provider_checkout_id.as_deref() != Some(paid.provider_checkout_id.as_str()) {
        format!(
            "paid checkout {} is not the order's ({})",
            paid.provider_checkout_id,
            order
                .provider_checkout_id
                .as_deref()
                .unwrap_or("none recorded")
        )
    } else if !amounts.currency.eq_ignore_ascii_case(&order.currency) {
        format!(
            "paid in {}, priced in {}",
            amounts.currency.to_ascii_lowercase(),
            order.currency
        )
    } else if &amounts.original != price {
        format!(
            "paid for {} {}, priced {price}",
            amounts.original, order.currency
        )
    } else if amounts.discount < zero || amounts.discount > amounts.original {
        format!("a discount of {} on {}", amounts.discount, amounts.original)
    } else if amounts.discount > zero && paid.provider != Provider::Stripe {
        format!("a discount of {} outside Stripe", amounts.discount)
    } else if amounts.total != &amounts.original - &amounts.discount {
        format!(
            "charged {}, but {} less a discount of {} is {}",
            amounts.total,
            amounts.original,
            amounts.discount,
            &amounts.original - &amounts.discount
        )
    } else {
        return None;
    };
    Some(PaymentMismatch {
        id: Uuid::new_v4(),
        order_id: order.id,
        provider: paid.provider,
        provider_payment_id: paid.provider_payment_id.clone(),
        provider_checkout_id: paid.provider_checkout_id.clone(),
        reason,
        expected_amount: price.clone(),
        expected_currency: order.currency.clone(),
        paid_amount: amounts.total.clone(),
        paid_original_amount: amounts.original.clone(),
        paid_discount_amount: amounts.discount.clone(),
        paid_currency: amounts.currency.to_ascii_lowercase(),
        detected_at: Utc::now(),
    })
}

/// The writes of a matching payment, in the caller's transaction.
async fn record(
    conn: &mut AsyncPgConnection,
    order: &Order,
    paid: &ConfirmedPayment,
) -> Result<Fulfilment, PaymentsError> {
    let product = Product::find(conn, order.product_id)
        .await?
        .ok_or(PaymentsError::ProductNotFound(order.product_id))?;
    let clerk_id = User::clerk_id_of(conn, order.user_id).await?;
    Order::mark_paid(conn, order.id, &paid.amounts).await?;
    let payment = Payment::record(
        conn,
        order.id,
        paid.provider,
        &paid.provider_payment_id,
        &paid.amounts.total,
        &paid.amounts.currency,
    )
    .await?;
    if payment.provider_payment_id != paid.provider_payment_id {
        return Err(PaymentsError::Inconsistent(format!(
            "order {} is already paid by {}",
            order.id, payment.provider_payment_id
        )));
    }
    let paid_at = order.paid_at.unwrap_or_else(Utc::now);
    let expires_at = paid_at + Duration::days(i64::from(product.validity_days));
    let pack = SessionPack::create_for_payment(
        conn,
        &NewSessionPack {
            user_id: order.user_id,
            mentor_id: product.mentor_id,
            product_id: product.id,
            payment_id: payment.id,
            total_sessions: product.sessions_per_pack,
            remaining_sessions: product.sessions_per_pack,
            expires_at,
        },
    )
    .await?;
    // A renewal keeps the buyer's seat (now the new pack's); the earlier pack keeps its
    // remaining sessions, booked on that seat.
    let seat = match SeatReservation::carry_over(conn, order.id, pack.id, pack.expires_at).await? {
        Some(seat) => seat,
        None => {
            SeatReservation::activate(
                conn,
                order.id,
                product.mentor_id,
                order.user_id,
                pack.id,
                pack.expires_at,
            )
            .await?
        }
    };
    Ok(Fulfilment {
        order_id: order.id,
        payment_id: payment.id,
        pack_id: pack.id,
        seat_id: seat.id,
        clerk_id,
    })
}
