//! Money taken back: a refund, or a chargeback (a dispute the seller lost, a reversed
//! capture). The provider's cumulative refunded amount is recorded as a value, and each
//! chargeback once by its provider id, so a repeated event is harmless. Once refunds and
//! chargebacks took back everything paid, the pack is refunded, its booked sessions cancelled
//! and the seat released; until then the pack stays, as after a partial refund.

use bigdecimal::{BigDecimal, Signed};
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

/// A chargeback as the provider reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportedChargeback {
    pub provider: Provider,
    pub provider_payment_id: String,
    /// The Stripe dispute's or the PayPal reversal's id.
    pub chargeback_id: String,
    /// What this chargeback took back.
    pub amount: BigDecimal,
    /// Its currency, which must be the payment's.
    pub currency: String,
}

/// What the refund or chargeback did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundOutcome {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub pack_id: Option<Uuid>,
    /// Everything paid is taken back.
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
        let payment = locked_payment(
            conn,
            refund.provider,
            &refund.provider_payment_id,
            &refund.currency,
            "refunded",
        )
        .await?;
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
        let taken = TakenBack::of(&payment, &refunded, &payment.disputed_amount);
        Payment::record_refund(conn, payment.id, &refunded, taken.payment_status).await?;
        record_on_order_and_pack(conn, &payment, &refunded, taken).await
    })
    .await
}

/// Records the chargeback in one transaction.
pub async fn apply_chargeback(
    conn: &mut AsyncPgConnection,
    chargeback: &ReportedChargeback,
) -> Result<RefundOutcome, PaymentsError> {
    let chargeback = chargeback.clone();
    conn.transaction::<_, PaymentsError, _>(async move |conn| {
        let payment = locked_payment(
            conn,
            chargeback.provider,
            &chargeback.provider_payment_id,
            &chargeback.currency,
            "disputed",
        )
        .await?;
        let disputed = Payment::record_chargeback(
            conn,
            payment.id,
            &chargeback.chargeback_id,
            &chargeback.amount,
        )
        .await?;
        if disputed > payment.amount {
            // The transaction rolls back: this chargeback is not recorded.
            return Err(PaymentsError::Inconsistent(format!(
                "chargebacks took back {disputed}, more than the payment of {}",
                payment.amount
            )));
        }
        let taken = TakenBack::of(&payment, &payment.refunded_amount, &disputed);
        Payment::record_disputed(conn, payment.id, &disputed, taken.payment_status).await?;
        record_on_order_and_pack(conn, &payment, &payment.refunded_amount, taken).await
    })
    .await
}

/// The payment the provider names, locked, in the currency it reports.
async fn locked_payment(
    conn: &mut AsyncPgConnection,
    provider: Provider,
    provider_payment_id: &str,
    currency: &str,
    what: &str,
) -> Result<Payment, PaymentsError> {
    let payment = Payment::lock_by_provider_id(conn, provider, provider_payment_id)
        .await?
        .ok_or_else(|| PaymentsError::PaymentNotFound {
            provider,
            provider_payment_id: provider_payment_id.to_owned(),
        })?;
    if !currency.eq_ignore_ascii_case(&payment.currency) {
        return Err(PaymentsError::Inconsistent(format!(
            "{what} in {}, but payment {} was in {}",
            currency.to_ascii_lowercase(),
            payment.provider_payment_id,
            payment.currency
        )));
    }
    Ok(payment)
}

/// How much of a payment has been taken back, and so the statuses of payment and order.
#[derive(Clone, Copy)]
struct TakenBack {
    full: bool,
    payment_status: PaymentStatus,
    order_status: OrderStatus,
}

impl TakenBack {
    /// Stripe counts a dispute apart from the charge's refunds, so the two add up. PayPal
    /// is taken to do the same (a reversal is a refund object of its own); were a later
    /// refund total to include an earlier reversal, the pack would be taken back a little
    /// early, never kept past everything paid.
    fn of(payment: &Payment, refunded: &BigDecimal, disputed: &BigDecimal) -> Self {
        let full = refunded + disputed >= payment.amount;
        let charged_back = disputed.is_positive();
        let (payment_status, order_status) = match (full, charged_back) {
            (true, true) => (PaymentStatus::ChargedBack, OrderStatus::ChargedBack),
            (true, false) => (PaymentStatus::Refunded, OrderStatus::Refunded),
            (false, _) => (
                PaymentStatus::PartiallyRefunded,
                OrderStatus::PartiallyRefunded,
            ),
        };
        Self {
            full,
            payment_status,
            order_status,
        }
    }
}

/// The order's refunded amount and status; when everything is taken back, the pack, its
/// booked sessions and the seat.
async fn record_on_order_and_pack(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    refunded: &BigDecimal,
    taken: TakenBack,
) -> Result<RefundOutcome, PaymentsError> {
    Order::lock(conn, payment.order_id).await?;
    Order::record_refund(conn, payment.order_id, refunded, taken.order_status).await?;
    let pack = SessionPack::by_payment(conn, payment.id).await.optional()?;
    let mut seat_released = false;
    if taken.full {
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
        full: taken.full,
        seat_released,
    })
}
