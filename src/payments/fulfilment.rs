//! Fulfilling a paid order: order paid, payment, session pack and active seat, atomically and
//! idempotently (every write is an upsert keyed by the order, the provider payment id or the
//! payment), so a repeated webhook, a retry after a crash or a replay changes nothing. A
//! renewal's seat is the renewed one, moved to the new pack.

use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use inngest_sdk::Event;

use super::PaymentsError;
use crate::events::{PURCHASE_MENTORSHIP, PurchaseMentorship};
use crate::models::order::PaidAmounts;
use crate::models::pack::NewSessionPack;
use crate::models::{Order, Payment, Product, Provider, SeatReservation, SessionPack, User};

/// What a provider confirmed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmedPayment {
    pub order_id: Uuid,
    pub provider: Provider,
    /// Stripe PaymentIntent id or PayPal capture id.
    pub provider_payment_id: String,
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

/// Records the payment and everything it buys, in one transaction.
pub async fn fulfil(
    conn: &mut AsyncPgConnection,
    paid: &ConfirmedPayment,
) -> Result<Fulfilment, PaymentsError> {
    let paid = paid.clone();
    conn.transaction::<_, PaymentsError, _>(async move |conn| {
        let order = Order::lock(conn, paid.order_id)
            .await?
            .ok_or(PaymentsError::OrderNotFound(paid.order_id))?;
        if order.provider != paid.provider {
            return Err(PaymentsError::Inconsistent(format!(
                "order {} was placed with {}, not {}",
                order.id, order.provider, paid.provider
            )));
        }
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
        let seat =
            match SeatReservation::carry_over(conn, order.id, pack.id, pack.expires_at).await? {
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
    })
    .await
}
