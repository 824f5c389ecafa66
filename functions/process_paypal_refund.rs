//! `process-paypal-refund`: a refunded PayPal capture, through the same refund code as Stripe.

use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use super::refund::refund_and_revoke;
use crate::app::AppState;
use crate::events::{PAYPAL_CAPTURE_REFUNDED, PaypalCaptureRefunded};
use crate::models::Provider;
use crate::money::from_paypal_value;
use crate::payments::refunds::ReportedRefund;

/// The function.
pub fn process_paypal_refund() -> Function<AppState> {
    Function::new(
        // A refund may arrive before its payment is fulfilled: the retries wait for it.
        super::money_path_retries(
            FunctionOpts::new("process-paypal-refund")
                .with_name("Process PayPal Refund")
                .with_trigger(Trigger::event(PAYPAL_CAPTURE_REFUNDED)),
        ),
        |ctx: Ctx<PaypalCaptureRefunded, AppState>| async move {
            let data = &ctx.event.data;
            let refunded_total = from_paypal_value(&data.total_refunded, &data.currency)
                .map_err(|e| Error::non_retriable(format!("refund total: {e}")))?;
            let refund = ReportedRefund {
                provider: Provider::Paypal,
                provider_payment_id: data.capture_id.clone(),
                refunded_total,
                currency: data.currency.clone(),
            };
            Ok(refund_and_revoke(&ctx.step, &ctx.state, refund).await?)
        },
    )
}
