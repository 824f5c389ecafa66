//! `expire-paypal-checkout`: a PayPal capture that was pending was denied; its order expires
//! and the seat it held is released, as an expired Stripe session's does.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};

use crate::app::AppState;
use crate::events::{PAYPAL_CAPTURE_DENIED, PaypalCaptureDenied};
use crate::payments::checkout::expire_checkout;

/// The function.
pub fn expire_paypal_checkout() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("expire-paypal-checkout")
            .with_name("Expire PayPal Checkout")
            .with_trigger(Trigger::event(PAYPAL_CAPTURE_DENIED))
            .with_retries(3),
        |ctx: Ctx<PaypalCaptureDenied, AppState>| async move {
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
