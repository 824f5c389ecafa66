//! `release-abandoned-checkouts`: every 15 minutes, pending orders whose checkout ended without
//! a provider event (an abandoned PayPal approval, a lost expiry webhook) expire and release
//! their holds (a hold counts against capacity until it is released).

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::payments::checkout::expire_abandoned;

const BATCH: i64 = 500;

/// The function.
pub fn release_abandoned_checkouts() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("release-abandoned-checkouts")
            .with_name("Release Abandoned Checkouts")
            .with_trigger(Trigger::cron("*/15 * * * *"))
            .with_retries(1),
        |ctx: Ctx<Value, AppState>| async move {
            let app = ctx.state.clone();
            let released: usize = ctx
                .step
                .run("expire-abandoned-orders", || async {
                    let mut conn = app.conn().await?;
                    // An hour after the hold ends, so a payment whose confirmation is delayed
                    // still finds its seat.
                    let before = chrono::Utc::now() - chrono::Duration::hours(1);
                    expire_abandoned(&mut conn, before, BATCH).await
                })
                .await?;
            Ok(json!({ "released": released }))
        },
    )
}
