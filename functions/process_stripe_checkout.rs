//! `process-stripe-checkout`: a paid Checkout Session becomes an order paid, a payment, a
//! session pack and an active seat, then onboarding starts. Every step is idempotent, so a
//! repeated delivery, a retry after a crash or a replay changes nothing and sends nothing new
//! (`purchase/mentorship` carries an id derived from the order, which Inngest deduplicates).

use inngest_sdk::function::Concurrency;
use inngest_sdk::{Ctx, Error, Event, Function, FunctionOpts, Trigger};

use super::conn;
use crate::app::AppState;
use crate::events::{
    PURCHASE_MENTORSHIP, PurchaseMentorship, STRIPE_CHECKOUT_COMPLETED, StripeCheckoutCompleted,
};
use crate::models::Provider;
use crate::models::order::PaidAmounts;
use crate::payments::fulfilment::{ConfirmedPayment, Fulfilment, fulfil};

/// The function.
pub fn process_stripe_checkout() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("process-stripe-checkout")
            .with_name("Process Stripe Checkout")
            .with_trigger(Trigger::event(STRIPE_CHECKOUT_COMPLETED))
            .with_retries(3)
            .with_concurrency(Concurrency::new(1).with_key("event.data.orderId")),
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
                    stripe
                        .paid_amounts(&data.session_id)
                        .await
                        .map_err(Error::from)
                })
                .await?;
            let Some((payment_intent, amounts)) = paid else {
                // A delayed payment method: async_payment_succeeded will bring it back.
                return Ok(
                    serde_json::json!({ "orderId": data.order_id, "status": "awaiting_payment" }),
                );
            };
            let fulfilment: Fulfilment = ctx
                .step
                .run("fulfil-order", || async {
                    let mut conn = conn(&app).await?;
                    let paid = ConfirmedPayment {
                        order_id: data.order_id,
                        provider: Provider::Stripe,
                        provider_payment_id: payment_intent.clone(),
                        amounts: amounts.clone(),
                    };
                    fulfil(&mut conn, &paid).await.map_err(|e| e.into_inngest())
                })
                .await?;
            start_onboarding(&ctx.step, &fulfilment, Provider::Stripe).await?;
            Ok(serde_json::to_value(&fulfilment)?)
        },
    )
}

/// Sends `purchase/mentorship` once per order.
pub(crate) async fn start_onboarding(
    step: &inngest_sdk::Step,
    fulfilment: &Fulfilment,
    provider: Provider,
) -> Result<(), inngest_sdk::StepError> {
    let event = Event::new(
        PURCHASE_MENTORSHIP,
        PurchaseMentorship {
            order_id: fulfilment.order_id,
            clerk_id: fulfilment.clerk_id.clone(),
            pack_id: fulfilment.pack_id,
            provider,
        },
    )
    .with_id(format!("purchase-mentorship-{}", fulfilment.order_id));
    step.send_event("trigger-onboarding", vec![event])
        .await
        .map(drop)
}
