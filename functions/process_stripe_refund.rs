//! `process-stripe-refund`: a refunded charge. A full refund refunds payment, order and pack
//! (0 sessions left), releases the seat and revokes dashboard access; a partial one records
//! the amount.

use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use super::refund::refund_and_revoke;
use crate::app::AppState;
use crate::events::{STRIPE_CHARGE_REFUNDED, StripeChargeRefunded};
use crate::models::Provider;
use crate::money::from_stripe_amount;
use crate::payments::refunds::ReportedRefund;

/// The function.
pub fn process_stripe_refund() -> Function<AppState> {
    Function::new(
        // A refund may arrive before its payment is fulfilled: the retries wait for it.
        super::money_path_retries(
            FunctionOpts::new("process-stripe-refund")
                .with_name("Process Stripe Refund")
                .with_trigger(Trigger::event(STRIPE_CHARGE_REFUNDED))
                .with_concurrency(
                    inngest_sdk::function::Concurrency::new(1)
                        .with_key("event.data.paymentIntentId"),
                ),
        ),
        |ctx: Ctx<StripeChargeRefunded, AppState>| async move {
            let data = &ctx.event.data;
            let refunded_total = from_stripe_amount(data.amount_refunded, &data.currency)
                .map_err(|e| Error::non_retriable(format!("refund amount: {e}")))?;
            let refund = ReportedRefund {
                provider: Provider::Stripe,
                provider_payment_id: data.payment_intent_id.clone(),
                refunded_total,
                currency: data.currency.clone(),
            };
            Ok(refund_and_revoke(&ctx.step, &ctx.state, refund).await?)
        },
    )
}
