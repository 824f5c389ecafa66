//! `purge-oauth-states`: every hour, the Discord OAuth states that can no longer be consumed
//! (used, or expired) are deleted, in bounded batches, so the table holds only live ones.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::db::DbError;
use crate::models::discord::purge_oauth_states as purge;

const BATCH: i64 = 1_000;
/// At most this many batches a run; whatever is left goes in the next hour's run.
const MAX_BATCHES: usize = 50;

/// The function.
pub fn purge_oauth_states() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("purge-oauth-states")
            .with_name("Purge OAuth States")
            .with_trigger(Trigger::cron("17 * * * *"))
            .with_retries(1),
        |ctx: Ctx<Value, AppState>| async move {
            let app = ctx.state.clone();
            let deleted: usize = ctx
                .step
                .run("delete-dead-states", || async {
                    let mut conn = app.conn().await?;
                    let mut deleted = 0;
                    for _ in 0..MAX_BATCHES {
                        let batch = purge(&mut conn, BATCH).await?;
                        deleted += batch;
                        if batch < BATCH as usize {
                            break;
                        }
                    }
                    Ok::<_, DbError>(deleted)
                })
                .await?;
            Ok(json!({ "deleted": deleted }))
        },
    )
}
