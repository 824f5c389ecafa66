//! `pack-expiration-check`: every day at midnight UTC, the active packs past their expiry are
//! found in pages (keyset pagination, at most `MAX_PAGES` pages a day; the rest stay active
//! and are found the next day) and one `pack/expiration-check` is sent per pack. Each event's
//! id names the pack and the UTC day, so a second run the same day sends nothing Inngest does
//! not already have.

use chrono::{DateTime, Utc};
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::expiry::{check_event, expired_packs};
use crate::models::pack::ExpiryCursor;

const PAGE: i64 = 500;
const MAX_PAGES: usize = 20;

/// The function.
pub fn pack_expiration_check() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("pack-expiration-check")
            .with_name("Check Pack Expiration")
            .with_trigger(Trigger::cron("0 0 * * *"))
            .with_retries(1),
        |ctx: Ctx<Value, AppState>| async move {
            let (step, app) = (&ctx.step, &ctx.state);
            // One time for the whole run: the cut-off of every page and the day in the ids.
            let now: DateTime<Utc> = step
                .run("note-the-time", || async { Ok::<_, Error>(Utc::now()) })
                .await?;
            let mut after: Option<ExpiryCursor> = None;
            let mut sent = 0;
            for page in 1..=MAX_PAGES {
                let packs: Vec<ExpiryCursor> = step
                    .run(&format!("find-expired-packs-{page}"), || async {
                        expired_packs(&mut *app.conn().await?, now, after, PAGE).await
                    })
                    .await?;
                let Some(last) = packs.last().copied() else {
                    break;
                };
                let events = packs.iter().map(|p| check_event(p.id, now)).collect();
                step.send_event(&format!("send-expiration-checks-{page}"), events)
                    .await?;
                sent += packs.len();
                if packs.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
                    break;
                }
                after = Some(last);
            }
            Ok(json!({ "day": now.format("%Y-%m-%d").to_string(), "checksSent": sent }))
        },
    )
}
