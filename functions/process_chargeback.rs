//! `process-stripe-dispute` and `process-paypal-reversal`: chargebacks. Stripe closed a
//! dispute as lost, or PayPal reversed a capture (a buyer's claim or card chargeback decided
//! against the academy, a bounced funding source). The money went back as surely as with a
//! refund: once refunds and chargebacks took back everything paid, payment and order read
//! `charged_back`, the pack is refunded (0 sessions left), its booked sessions are cancelled,
//! the seat is released and dashboard access revoked. Until then the amount is recorded and
//! payment and order read `partially_refunded`, as after a partial refund. Stripe takes the
//! money when a dispute opens and gives it back if the academy wins: only a lost dispute
//! counts, so access stands while a dispute is open.

use inngest_sdk::function::Concurrency;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use super::refund::charge_back_and_revoke;
use crate::app::AppState;
use crate::events::{
    PAYPAL_CAPTURE_REVERSED, PaypalCaptureReversed, STRIPE_DISPUTE_LOST, StripeDisputeLost,
};
use crate::models::Provider;
use crate::money::{from_paypal_value, from_stripe_amount};
use crate::payments::refunds::ReportedChargeback;

/// A Stripe dispute closed as lost.
pub fn process_stripe_dispute() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("process-stripe-dispute")
                .with_name("Process Stripe Dispute")
                .with_trigger(Trigger::event(STRIPE_DISPUTE_LOST))
                // One at a time per payment. A refund of the same payment may run beside it:
                // both lock the payment row first.
                .with_concurrency(Concurrency::new(1).with_key("event.data.paymentIntentId")),
        ),
        |ctx: Ctx<StripeDisputeLost, AppState>| async move {
            let data = &ctx.event.data;
            let amount = from_stripe_amount(data.amount, &data.currency)
                .map_err(|e| Error::non_retriable(format!("dispute amount: {e}")))?;
            let chargeback = ReportedChargeback {
                provider: Provider::Stripe,
                provider_payment_id: data.payment_intent_id.clone(),
                chargeback_id: data.dispute_id.clone(),
                amount,
                currency: data.currency.clone(),
            };
            Ok(charge_back_and_revoke(&ctx.step, &ctx.state, chargeback).await?)
        },
    )
}

/// A PayPal capture reversed.
pub fn process_paypal_reversal() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("process-paypal-reversal")
                .with_name("Process PayPal Reversal")
                .with_trigger(Trigger::event(PAYPAL_CAPTURE_REVERSED))
                .with_concurrency(Concurrency::new(1).with_key("event.data.captureId")),
        ),
        |ctx: Ctx<PaypalCaptureReversed, AppState>| async move {
            let data = &ctx.event.data;
            let amount = from_paypal_value(&data.amount, &data.currency)
                .map_err(|e| Error::non_retriable(format!("reversed amount: {e}")))?;
            let chargeback = ReportedChargeback {
                provider: Provider::Paypal,
                provider_payment_id: data.capture_id.clone(),
                chargeback_id: data.reversal_id.clone(),
                amount,
                currency: data.currency.clone(),
            };
            Ok(charge_back_and_revoke(&ctx.step, &ctx.state, chargeback).await?)
        },
    )
}
