//! The Inngest functions, one workflow per file, and the one list they are served from.
//! Workflows only: each step calls the domain (`payments`, `access`, `notifications`,
//! `sessions`, `seats`, `expiry`, `contacts`) or a model, and the error types those return
//! decide, once, whether Inngest retries. `refund.rs` is the part of a workflow the functions
//! that take money back (refunds, chargebacks) share.

mod expire_checkout;
mod handle_pack_expiration_check;
mod lapse_seat_offer;
mod offer_released_seat;
mod onboarding_flow;
mod pack_expiration_check;
mod process_chargeback;
mod process_paypal_capture;
mod process_paypal_refund;
mod process_stripe_checkout;
mod process_stripe_refund;
mod purge_oauth_states;
mod refund;
mod relay_inbox;
mod release_abandoned_checkouts;
mod session_completed_handler;
mod session_reminders;
mod sync_clerk_user;
mod track_email_events;

use std::time::Duration;

use inngest_sdk::function::Backoff;
use inngest_sdk::{Function, FunctionOpts};

use crate::app::AppState;

pub use expire_checkout::{expire_paypal_checkout, expire_stripe_checkout};
pub use handle_pack_expiration_check::handle_pack_expiration_check;
pub use lapse_seat_offer::lapse_seat_offer;
pub use offer_released_seat::offer_released_seat;
pub use onboarding_flow::{grant_late_discord_access, onboarding_flow};
pub use pack_expiration_check::pack_expiration_check;
pub use process_chargeback::{process_paypal_reversal, process_stripe_dispute};
pub use process_paypal_capture::process_paypal_capture;
pub use process_paypal_refund::process_paypal_refund;
pub use process_stripe_checkout::process_stripe_checkout;
pub use process_stripe_refund::process_stripe_refund;
pub use purge_oauth_states::purge_oauth_states;
pub use relay_inbox::relay_inbox;
pub use release_abandoned_checkouts::release_abandoned_checkouts;
pub use session_completed_handler::session_completed_handler;
pub use session_reminders::session_reminders;
pub use sync_clerk_user::sync_clerk_user;
pub use track_email_events::track_email_events;

/// The retries of the functions that move money, seats or access (a payment to fulfil, a
/// refund to apply, access to grant or take back, a seat to hold, offer or release): 30 s
/// doubling to 10 min, 12 times, so a provider or database outage of up to about 85 minutes
/// delays them but never fails them. A `Retry-After` from a provider wins over the schedule.
pub(crate) fn money_path_retries(opts: FunctionOpts) -> FunctionOpts {
    opts.with_retries(12).with_backoff(Backoff::exponential(
        Duration::from_secs(30),
        Duration::from_secs(600),
    ))
}

/// The functions whose retries follow [`money_path_retries`].
pub const MONEY_PATHS: [&str; 14] = [
    "process-stripe-checkout",
    "process-paypal-capture",
    "process-stripe-refund",
    "process-stripe-dispute",
    "process-paypal-refund",
    "process-paypal-reversal",
    "onboarding-flow",
    "grant-late-discord-access",
    "expire-stripe-checkout",
    "expire-paypal-checkout",
    "session-completed-handler",
    "handle-pack-expiration-check",
    "offer-released-seat",
    "lapse-seat-offer",
];

/// Every function this app serves.
pub fn all() -> Vec<Function<AppState>> {
    vec![
        process_stripe_checkout(),
        expire_stripe_checkout(),
        process_stripe_refund(),
        process_stripe_dispute(),
        process_paypal_capture(),
        process_paypal_refund(),
        process_paypal_reversal(),
        expire_paypal_checkout(),
        release_abandoned_checkouts(),
        sync_clerk_user(),
        track_email_events(),
        onboarding_flow(),
        grant_late_discord_access(),
        session_reminders(),
        session_completed_handler(),
        pack_expiration_check(),
        handle_pack_expiration_check(),
        offer_released_seat(),
        lapse_seat_offer(),
        purge_oauth_states(),
        relay_inbox(),
    ]
}
