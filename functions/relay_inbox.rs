//! `relay-inbox`: every minute, the stored events that have not reached Inngest yet (a
//! webhook whose inline delivery failed, an event announced in a transaction) are delivered,
//! each after its backoff. The same passes as the background relay of `huckleberry serve`, so
//! a host that keeps no process between requests (AWS Lambda) loses nothing; where both run,
//! their claims keep them from delivering one entry twice at once.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::relay::{self, RelayReport};

/// At most this many passes (of `relay::BATCH` entries) a run; the rest wait a minute.
const MAX_PASSES: usize = 10;

/// The function.
pub fn relay_inbox() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("relay-inbox")
            .with_name("Relay the Inbox to Inngest")
            .with_trigger(Trigger::cron("* * * * *"))
            .with_retries(1),
        |ctx: Ctx<Value, AppState>| async move {
            let (step, app) = (&ctx.step, &ctx.state);
            let (mut forwarded, mut failed) = (0, 0);
            // One step a pass, so a pass that ends (or fails) is never run again on replay
            // and each stays well inside one request's time.
            for pass in 1..=MAX_PASSES {
                let report: RelayReport = step
                    .run(&format!("forward-due-{pass}"), || relay::forward_due(app))
                    .await?;
                forwarded += report.forwarded;
                failed += report.failed;
                let full = i64::try_from(report.claimed).is_ok_and(|n| n >= relay::BATCH);
                if report.failed > 0 || !full {
                    break;
                }
            }
            Ok(json!({ "forwarded": forwarded, "failed": failed }))
        },
    )
}
