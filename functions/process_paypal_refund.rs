//! `process-paypal-refund`: a refunded PayPal capture, through the same refund code as Stripe.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use super::conn;
use crate::app::AppState;
use crate::events::{PAYPAL_CAPTURE_REFUNDED, PaypalCaptureRefunded};
use crate::models::Provider;
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
            let data = ctx.event.data.clone();
            let app = ctx.state.clone();
            let refunded = BigDecimal::from_str(&data.total_refunded).map_err(|_| {
                Error::non_retriable(format!(
                    "refund total {:?} is not a number",
                    data.total_refunded
                ))
            })?;
            let outcome: RefundOutcome = ctx
                .step
                .run("apply-refund", || async {
                    let mut conn = conn(&app).await?;
                    let refund = ReportedRefund {
                        provider: Provider::Paypal,
                        provider_payment_id: data.capture_id.clone(),
                        refunded_total: refunded.clone(),
                    };
                    apply_refund(&mut conn, &refund)
                        .await
                        .map_err(|e| e.into_inngest())
                })
                .await?;
            if let (true, Some(pack_id)) = (outcome.full, outcome.pack_id) {
                ctx.step
                    .run("revoke-dashboard-access", || async {
                        crate::access::revoke(&app, pack_id, crate::models::RevokeReason::Refunded)
                            .await
                            .map_err(|e| e.into_inngest())
                    })
                    .await?;
            }
            Ok(outcome)
        },
    )
}
