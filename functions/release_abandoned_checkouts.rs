//! `release-abandoned-checkouts`: every 15 minutes, pending orders whose checkout ended without
//! a provider event (an abandoned PayPal approval, a lost expiry webhook) expire and release
//! their holds (a hold counts against capacity until it is released), each once its provider
//! confirms it can no longer be paid.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde_json::Value;

use crate::app::AppState;
use crate::payments::abandoned::{Providers, SweepReport, release_abandoned};

const BATCH: i64 = 200;

/// The function.
pub fn release_abandoned_checkouts() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("release-abandoned-checkouts")
            .with_name("Release Abandoned Checkouts")
            .with_trigger(Trigger::cron("*/15 * * * *"))
            .with_retries(1),
        |ctx: Ctx<Value, AppState>| async move {
            let app = ctx.state.clone();
            let report: SweepReport = ctx
                .step
                .run("expire-abandoned-orders", || async {
                    let providers = Providers {
                        stripe: app.stripe.as_ref(),
                        paypal: app.paypal.as_ref(),
                    };
                    // An hour after the hold ends, so a payment whose confirmation is delayed
                    // still finds its seat.
                    let before = chrono::Utc::now() - chrono::Duration::hours(1);
                    release_abandoned(&app.db, providers, before, BATCH).await
                })
                .await?;
            Ok(report)
        },
    )
}
