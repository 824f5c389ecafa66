//! `expire-stripe-checkout` and `expire-paypal-checkout`: a checkout that will never be paid
//! (an unpaid Stripe session expired, a delayed Stripe payment failed, a pending PayPal capture
//! was denied) ends: its order expires and the seat it held is released. A paid or already
//! expired order is left alone.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::app::AppState;
use crate::events::{
    PAYPAL_CAPTURE_DENIED, PaypalCaptureDenied, STRIPE_CHECKOUT_EXPIRED, StripeCheckoutExpired,
};
use crate::payments::checkout::expire_checkout;

/// Stripe's: `stripe/checkout.session.expired` (also sent for a failed delayed payment).
pub fn expire_stripe_checkout() -> Function<AppState> {
    expiring(
        FunctionOpts::new("expire-stripe-checkout").with_name("Expire Stripe Checkout"),
        STRIPE_CHECKOUT_EXPIRED,
        |data: &StripeCheckoutExpired| data.order_id,
    )
}

/// PayPal's: `paypal/payment.capture.denied`.
pub fn expire_paypal_checkout() -> Function<AppState> {
    expiring(
        FunctionOpts::new("expire-paypal-checkout").with_name("Expire PayPal Checkout"),
        PAYPAL_CAPTURE_DENIED,
        |data: &PaypalCaptureDenied| data.order_id,
    )
}

/// The function `opts` names, run by `event`, ending the order `order_of` its data names.
fn expiring<E>(opts: FunctionOpts, event: &str, order_of: fn(&E) -> Uuid) -> Function<AppState>
where
    E: DeserializeOwned + Send + Sync + 'static,
{
    Function::new(
        // A hold not released keeps a seat from sale.
        super::money_path_retries(opts.with_trigger(Trigger::event(event))),
        move |ctx: Ctx<E, AppState>| async move {
            let order_id = order_of(&ctx.event.data);
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
