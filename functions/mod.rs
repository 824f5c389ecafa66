//! The Inngest functions, one workflow per file, and the one list they are served from.

mod expire_stripe_checkout;
mod onboarding_flow;
mod process_paypal_capture;
mod process_paypal_refund;
mod process_stripe_checkout;
mod process_stripe_refund;
mod release_abandoned_checkouts;
mod sync_clerk_user;
mod track_email_events;

use inngest_sdk::{Event, Function};

use crate::events::{PURCHASE_MENTORSHIP, PurchaseMentorship};
use crate::models::Provider;
use crate::payments::fulfilment::Fulfilment;

use crate::app::AppState;

pub use expire_stripe_checkout::expire_stripe_checkout;
pub use onboarding_flow::onboarding_flow;
pub use process_paypal_capture::process_paypal_capture;
pub use process_paypal_refund::process_paypal_refund;
pub use process_stripe_checkout::process_stripe_checkout;
pub use process_stripe_refund::process_stripe_refund;
pub use release_abandoned_checkouts::release_abandoned_checkouts;
pub use sync_clerk_user::sync_clerk_user;
pub use track_email_events::track_email_events;

/// Every function this app serves.
pub fn all() -> Vec<Function<AppState>> {
    vec![
        process_stripe_checkout(),
        expire_stripe_checkout(),
        process_stripe_refund(),
        process_paypal_capture(),
        process_paypal_refund(),
        release_abandoned_checkouts(),
        sync_clerk_user(),
        track_email_events(),
        onboarding_flow(),
    ]
}

/// A database connection inside a step; a pool failure is retriable.
pub(crate) async fn conn(app: &AppState) -> Result<crate::db::DbConn, inngest_sdk::Error> {
    app.db
        .get()
        .await
        .map_err(|e| inngest_sdk::Error::new(format!("database unavailable: {e}")))
}

/// Records a refund (one step) and, when it is full, takes back the dashboard access the pack
/// gave (another step). Shared by both providers' refund functions.
pub(crate) async fn record_refund(
    step: &inngest_sdk::Step,
    app: &AppState,
    refund: crate::payments::refunds::ReportedRefund,
) -> Result<crate::payments::refunds::RefundOutcome, inngest_sdk::StepError> {
    let outcome: crate::payments::refunds::RefundOutcome = step
        .run("apply-refund", || async {
            let mut conn = conn(app).await?;
            crate::payments::refunds::apply_refund(&mut conn, &refund)
                .await
                .map_err(|e| e.into_inngest())
        })
        .await?;
    if let (true, Some(pack_id)) = (outcome.full, outcome.pack_id) {
        step.run("revoke-dashboard-access", || async {
            crate::access::revoke(app, pack_id, crate::models::RevokeReason::Refunded)
                .await
                .map_err(|e| e.into_inngest())
        })
        .await?;
    }
    Ok(outcome)
}

/// Fulfils a confirmed payment (one step: order, payment, pack, seat in one transaction), then
/// starts onboarding. Shared by both providers' purchase functions.
pub(crate) async fn fulfil_purchase(
    step: &inngest_sdk::Step,
    app: &AppState,
    paid: crate::payments::fulfilment::ConfirmedPayment,
) -> Result<crate::payments::fulfilment::Fulfilment, inngest_sdk::StepError> {
    let fulfilment: crate::payments::fulfilment::Fulfilment = step
        .run("fulfil-order", || async {
            let mut conn = conn(app).await?;
            crate::payments::fulfilment::fulfil(&mut conn, &paid)
                .await
                .map_err(|e| e.into_inngest())
        })
        .await?;
    start_onboarding(step, &fulfilment, paid.provider).await?;
    Ok(fulfilment)
}

/// Sends `purchase/mentorship` once per order.
async fn start_onboarding(
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
