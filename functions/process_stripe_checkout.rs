//! `process-stripe-checkout`: a paid Checkout Session becomes an order paid, a payment, a
//! session pack and an active seat, then onboarding starts. Every step is idempotent, so a
//! repeated delivery, a retry after a crash or a replay changes nothing and sends nothing new
//! (`purchase/mentorship` carries an id derived from the order, which Inngest deduplicates).

use inngest_sdk::function::Concurrency;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};

use crate::app::AppState;
use crate::events::{STRIPE_CHECKOUT_COMPLETED, StripeCheckoutCompleted};
use crate::models::Provider;
use crate::models::order::PaidAmounts;
use crate::payments::fulfilment::{ConfirmedPayment, Fulfilment, fulfil};

/// The function.
pub fn process_stripe_checkout() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("process-stripe-checkout")
                .with_name("Process Stripe Checkout")
                .with_trigger(Trigger::event(STRIPE_CHECKOUT_COMPLETED))
                .with_concurrency(Concurrency::new(1).with_key("event.data.orderId")),
        ),
        |ctx: Ctx<StripeCheckoutCompleted, AppState>| async move {
            let data = ctx.event.data.clone();
            let app = ctx.state.clone();
            let paid: Option<(String, PaidAmounts)> = ctx
                .step
                .run("get-stripe-session", || async {
                    let stripe = app
                        .stripe
                        .as_ref()
                        .ok_or_else(|| Error::non_retriable("Stripe is not configured"))?;
                    Ok::<_, Error>(stripe.paid_amounts(&data.session_id).await?)
                })
                .await?;
            let Some((payment_intent, amounts)) = paid else {
                // A delayed payment method: async_payment_succeeded will bring it back.
                return Ok(
                    serde_json::json!({ "orderId": data.order_id, "status": "awaiting_payment" }),
                );
            };
            let paid = ConfirmedPayment {
                order_id: data.order_id,
                provider: Provider::Stripe,
                provider_payment_id: payment_intent,
                provider_checkout_id: data.session_id.clone(),
                amounts,
            };
            let fulfilment: Fulfilment = ctx
                .step
                .run("fulfil-order", || async {
                    fulfil(&mut *app.conn().await?, &paid).await
                })
                .await?;
            let onboarding = fulfilment.onboarding_event(Provider::Stripe);
            ctx.step
                .send_event("trigger-onboarding", vec![onboarding])
                .await?;
            Ok(serde_json::to_value(&fulfilment)?)
        },
    )
}
