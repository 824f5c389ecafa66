//! `process-paypal-refund`: a refunded PayPal capture, through the same refund code as Stripe.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use crate::app::AppState;
use crate::events::{PAYPAL_CAPTURE_REFUNDED, PaypalCaptureRefunded};
use crate::models::{Provider, RevokeReason};
use crate::payments::refunds::{RefundOutcome, ReportedRefund, apply_refund};

/// The function.
pub fn process_paypal_refund() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("process-paypal-refund")
            .with_name("Process PayPal Refund")
            .with_trigger(Trigger::event(PAYPAL_CAPTURE_REFUNDED))
            // A refund may arrive before its payment is fulfilled: up to ~2 hours of retries.
            .with_retries(12),
        |ctx: Ctx<PaypalCaptureRefunded, AppState>| async move {
            let data = &ctx.event.data;
            let refunded_total = BigDecimal::from_str(&data.total_refunded).map_err(|_| {
                Error::non_retriable(format!(
                    "refund total {:?} is not a number",
                    data.total_refunded
                ))
            })?;
            let refund = ReportedRefund {
                provider: Provider::Paypal,
                provider_payment_id: data.capture_id.clone(),
                refunded_total,
            };
            let app = &ctx.state;
            let outcome: RefundOutcome = ctx
                .step
                .run("apply-refund", || async {
                    apply_refund(&mut *app.conn().await?, &refund).await
                })
                .await?;
            if let (true, Some(pack_id)) = (outcome.full, outcome.pack_id) {
                ctx.step
                    .run("revoke-dashboard-access", || {
                        app.access().revoke(pack_id, RevokeReason::Refunded)
                    })
                    .await?;
            }
            Ok(outcome)
        },
    )
}
