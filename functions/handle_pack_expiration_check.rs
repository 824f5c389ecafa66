//! `handle-pack-expiration-check`: one pack past its expiry. It is marked expired at once
//! (bookings stop). With no session left to come, its seat is released, access revoked and
//! the buyer told (with the sessions left unused). With sessions still scheduled, those keep
//! their seat: the run sleeps until an hour after the last one starts, then checks again and
//! releases. Checking a pack twice marks, releases and emails once.

use chrono::Utc;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};
use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::contacts::{self, reach_mentee};
use crate::email::PackExpired;
use crate::events::{PACK_EXPIRATION_CHECK, PackExpirationCheck};
use crate::expiry::{ExpiryCheck, check_pack};
use crate::models::RevokeReason;
use crate::notifications::Delivery;

/// The function.
pub fn handle_pack_expiration_check() -> Function<AppState> {
    Function::new(
        // The daily sweep sees a pack only until it is marked expired: the seat and access
        // that follow must outlast an outage.
        super::money_path_retries(
            FunctionOpts::new("handle-pack-expiration-check")
                .with_name("Handle Pack Expiration Check")
                .with_trigger(Trigger::event(PACK_EXPIRATION_CHECK)),
        ),
        |ctx: Ctx<PackExpirationCheck, AppState>| async move {
            let (step, app) = (&ctx.step, &ctx.state);
            let pack_id = ctx.event.data.pack_id;
            let first: ExpiryCheck = step
                .run("check-pack", || async {
                    check_pack(&mut *app.conn().await?, pack_id, Utc::now()).await
                })
                .await?;
            let outcome = match &first {
                ExpiryCheck::SessionsPending { recheck_at, .. } => {
                    let recheck_at = *recheck_at;
                    step.sleep_until("wait-for-last-session", recheck_at).await;
                    step.run("check-pack-after-last-session", || async {
                        // At least the time slept until, however early the wake-up.
                        let now = Utc::now().max(recheck_at);
                        check_pack(&mut *app.conn().await?, pack_id, now).await
                    })
                    .await?
                }
                other => other.clone(),
            };
            match &outcome {
                ExpiryCheck::Ended { seat_released, .. } => {
                    step.run("revoke-dashboard-access", || {
                        app.access().revoke(pack_id, RevokeReason::PackExpired)
                    })
                    .await?;
                    if *seat_released {
                        step.run("send-pack-expired-email", || {
                            send_pack_expired(app, pack_id, &outcome)
                        })
                        .await?;
                    }
                }
                // An expired pack takes no booking nor move, so sessions cannot still be
                // pending after the last one: say so rather than loop.
                ExpiryCheck::SessionsPending { recheck_at, .. } => {
                    tracing::warn!(%pack_id, %recheck_at, "sessions still pending after the last one");
                }
                ExpiryCheck::NotExpired { .. } => {}
            }
            Ok(json!({ "packId": pack_id, "first": first, "outcome": outcome }))
        },
    )
}

/// The pack expired (once per pack).
async fn send_pack_expired(
    app: &AppState,
    pack_id: Uuid,
    outcome: &ExpiryCheck,
) -> Result<Delivery, Error> {
    let ExpiryCheck::Ended {
        sessions_unused,
        expired_at,
        ..
    } = *outcome
    else {
        return Err(Error::non_retriable("the pack has not ended"));
    };
    let people = contacts::of_pack(&mut *app.conn().await?, pack_id).await?;
    let mentee = reach_mentee(&app.db, app.clerk.as_ref(), &people.mentee).await?;
    let email = PackExpired {
        first_name: mentee.first_name,
        mentor_name: people.mentor_name,
        expired_at,
        sessions_unused,
        buy_link: format!(
            "{}/mentors/{}",
            app.config.public_url.trim_end_matches('/'),
            people.mentor_id
        ),
    };
    let key = format!("pack-expired-{pack_id}");
    let user_id = Some(people.mentee.user_id);
    Ok(app
        .mailer()
        .send(user_id, &mentee.email, &email, &key)
        .await?)
}
