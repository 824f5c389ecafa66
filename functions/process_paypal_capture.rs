//! `process-paypal-capture`: a completed PayPal capture, fulfilled by the same code as Stripe.

use bigdecimal::BigDecimal;
use inngest_sdk::function::Concurrency;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use crate::app::AppState;
use crate::events::{PAYPAL_CAPTURE_COMPLETED, PaypalCaptureCompleted};
use crate::models::Provider;
use crate::models::order::PaidAmounts;
use crate::money::from_paypal_value;
use crate::payments::fulfilment::{ConfirmedPayment, Fulfilment, fulfil};

/// The function.
pub fn process_paypal_capture() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("process-paypal-capture")
                .with_name("Process PayPal Capture")
                .with_trigger(Trigger::event(PAYPAL_CAPTURE_COMPLETED))
                .with_concurrency(Concurrency::new(1).with_key("event.data.orderId")),
        ),
        |ctx: Ctx<PaypalCaptureCompleted, AppState>| async move {
            let data = ctx.event.data.clone();
            let app = ctx.state.clone();
            let total = from_paypal_value(&data.amount, &data.currency)
                .map_err(|e| Error::non_retriable(format!("capture amount: {e}")))?;
            let paid = ConfirmedPayment {
                order_id: data.order_id,
                provider: Provider::Paypal,
                provider_payment_id: data.capture_id.clone(),
                provider_checkout_id: data.paypal_order_id.clone(),
                amounts: PaidAmounts {
                    original: total.clone(),
                    total,
                    discount: BigDecimal::from(0),
                    discount_code: None,
                    currency: data.currency.to_lowercase(),
                },
            };
            let fulfilment: Fulfilment = ctx
                .step
                .run("fulfil-order", || async {
                    fulfil(&mut *app.conn().await?, &paid).await
                })
                .await?;
            let onboarding = fulfilment.onboarding_event(Provider::Paypal);
            ctx.step
                .send_event("trigger-onboarding", vec![onboarding])
                .await?;
            Ok(fulfilment)
        },
    )
}
