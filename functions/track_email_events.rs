//! `track-email-events`: Resend's delivery events update the email log; a bounce or a spam
//! complaint suppresses the address, so nothing more is sent to it.

use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::events::MaybeSealed;
use crate::models::EmailStatus;
use crate::notifications::record_delivery_status;

/// The `data` of Resend's `email.*` webhooks.
#[derive(Debug, Clone, Deserialize)]
pub struct ResendEmailEvent {
    email_id: String,
    #[serde(default)]
    to: Vec<String>,
}

const TRACKED: [(&str, EmailStatus); 4] = [
    ("resend/email.delivered", EmailStatus::Delivered),
    ("resend/email.opened", EmailStatus::Opened),
    ("resend/email.bounced", EmailStatus::Bounced),
    ("resend/email.complained", EmailStatus::Complained),
];

/// The function.
pub fn track_email_events() -> Function<AppState> {
    let opts = TRACKED.iter().fold(
        FunctionOpts::new("track-email-events")
            .with_name("Track Email Events")
            .with_retries(3),
        |opts, (event, _)| opts.with_trigger(Trigger::event(*event)),
    );
    Function::new(
        opts,
        |ctx: Ctx<MaybeSealed<ResendEmailEvent>, AppState>| async move {
            let app = ctx.state.clone();
            let data = ctx.event.data.data().clone();
            let Some((_, status)) = TRACKED.iter().find(|(name, _)| *name == ctx.event.name) else {
                return Err(Error::non_retriable(format!(
                    "unexpected event {}",
                    ctx.event.name
                )));
            };
            let status = *status;
            let updated: usize = ctx
                .step
                .run("update-email-log", || async {
                    record_delivery_status(
                        &mut *app.conn().await?,
                        &data.email_id,
                        status,
                        &data.to,
                    )
                    .await
                })
                .await?;
            Ok(json!({ "emailId": data.email_id, "status": status, "updated": updated }))
        },
    )
}
