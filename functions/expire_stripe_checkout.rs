//! `expire-stripe-checkout`: an unpaid Checkout Session expired; its order expires and the
//! seat it held is released.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};

use crate::app::AppState;
use crate::events::{STRIPE_CHECKOUT_EXPIRED, StripeCheckoutExpired};
use crate::payments::checkout::expire_checkout;

/// The function.
pub fn expire_stripe_checkout() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("expire-stripe-checkout")
            .with_name("Expire Stripe Checkout")
            .with_trigger(Trigger::event(STRIPE_CHECKOUT_EXPIRED))
            .with_retries(3),
        |ctx: Ctx<StripeCheckoutExpired, AppState>| async move {
            let order_id = ctx.event.data.order_id;
            let app = ctx.state.clone();
            let released: bool = ctx
                .step
                .run("release-hold", || async {
                    let mut conn = app.conn().await?;
                    expire_checkout(&mut conn, order_id).await
                })
                .await?;
            Ok(serde_json::json!({ "orderId": order_id, "released": released }))
        },
    )
}
