//! Applying a refund: the provider's cumulative refunded amount is recorded (so a repeated
//! event is harmless); a full refund also refunds the pack, cancels its booked sessions and
//! releases the seat.

use bigdecimal::BigDecimal;
use diesel::OptionalExtension;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PaymentsError;
use crate::models::seat::SeatOf;
use crate::models::{
    Order, OrderStatus, Payment, PaymentStatus, Provider, ReleaseReason, SessionPack,
};
use crate::{seats, sessions};

/// A refund as the provider reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportedRefund {
    pub provider: Provider,
    pub provider_payment_id: String,
    /// Everything refunded on this payment so far.
    pub refunded_total: BigDecimal,
    /// The refund's currency, which must be the payment's.
    pub currency: String,
}

/// What the refund did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundOutcome {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub pack_id: Option<Uuid>,
    pub full: bool,
    pub seat_released: bool,
}

/// Records the refund in one transaction.
pub async fn apply_refund(
    conn: &mut AsyncPgConnection,
    refund: &ReportedRefund,
) -> Result<RefundOutcome, PaymentsError> {
    let refund = refund.clone();
    conn.transaction::<_, PaymentsError, _>(async move |conn| {
        let payment =
            Payment::lock_by_provider_id(conn, refund.provider, &refund.provider_payment_id)
                .await?
                .ok_or_else(|| PaymentsError::PaymentNotFound {
                    provider: refund.provider,
                    provider_payment_id: refund.provider_payment_id.clone(),
                })?;
        if !refund.currency.eq_ignore_ascii_case(&payment.currency) {
            return Err(PaymentsError::Inconsistent(format!(
                "refunded in {}, but payment {} was in {}",
                refund.currency.to_ascii_lowercase(),
                payment.provider_payment_id,
                payment.currency
            )));
        }
        if refund.refunded_total > payment.amount {
            return Err(PaymentsError::Inconsistent(format!(
                "refunded {} exceeds the payment of {}",
                refund.refunded_total, payment.amount
            )));
        }
        // Events may arrive out of order: never lower what is already recorded.
        let refunded = refund
            .refunded_total
            .clone()
            .max(payment.refunded_amount.clone());
        let full = refunded == payment.amount;
        let (payment_status, order_status) = if full {
            (PaymentStatus::Refunded, OrderStatus::Refunded)
        } else {
            (
                PaymentStatus::PartiallyRefunded,
                OrderStatus::PartiallyRefunded,
            )
        };
        Payment::record_refund(conn, payment.id, &refunded, payment_status).await?;
        Order::lock(conn, payment.order_id).await?;
        Order::record_refund(conn, payment.order_id, &refunded, order_status).await?;
        let pack = SessionPack::by_payment(conn, payment.id).await.optional()?;
        let mut seat_released = false;
        if full {
            if let Some(pack) = &pack {
                SessionPack::mark_refunded(conn, pack.id).await?;
                sessions::cancel_all_of_refunded_pack(conn, pack.id).await?;
            }
            // The pack's seat: after a renewal it is the renewed seat (bought by an earlier
            // order), and the earlier pack, refunded, no longer has one.
            let of = pack
                .as_ref()
                .map_or(SeatOf::Order(payment.order_id), |p| SeatOf::Pack(p.id));
            seat_released = seats::release(conn, of, ReleaseReason::Refunded)
                .await?
                .is_some();
        }
        Ok(RefundOutcome {
            order_id: payment.order_id,
            payment_id: payment.id,
            pack_id: pack.map(|p| p.id),
            full,
            seat_released,
        })
    })
    .await
}
