//! `session-completed-handler`: a completed (or missed) session is counted against its pack,
//! exactly once: a replay, a duplicate event or a concurrent run of the same completion
//! counts nothing and sends nothing more. With one session left the buyer is reminded to renew;
//! with none, the seat enters its 72-hour grace period, and when it ends the seat is released,
//! access revoked and the buyer told, unless a renewal took the seat over meanwhile.

use chrono::Utc;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::contacts::{self, reach_mentee};
use crate::db::DbError;
use crate::email::{RenewalReminder, SeatReleased};
use crate::events::{SESSION_COMPLETED, SessionCompleted};
use crate::models::{PackStatus, RevokeReason};
use crate::notifications::Delivery;
use crate::seats;
use crate::sessions::{Counted, count_used_session};

/// The function.
pub fn session_completed_handler() -> Function<AppState> {
    Function::new(
        // It counts the session, starts the grace period, releases the seat and revokes
        // access: an outage must delay those, never leave a seat taken for ever.
        super::money_path_retries(
            FunctionOpts::new("session-completed-handler")
                .with_name("Handle Session Completion")
                .with_trigger(Trigger::event(SESSION_COMPLETED)),
        ),
        |ctx: Ctx<SessionCompleted, AppState>| async move {
            let (step, app, data) = (&ctx.step, &ctx.state, &ctx.event.data);
            let pack_id = data.session_pack_id;
            let counted: Counted = step
                .run("count-session", || async {
                    let mut conn = app.conn().await?;
                    count_used_session(&mut conn, data.session_id, pack_id).await
                })
                .await?;
            let pack = &counted.pack;
            let summary = |grace: Value| {
                json!({
                    "sessionId": data.session_id,
                    "sessionPackId": pack_id,
                    "counted": counted.newly_counted,
                    "remainingSessions": pack.remaining_sessions,
                    "grace": grace,
                })
            };
            let last_one_left = pack.status == PackStatus::Active && pack.remaining_sessions == 1;
            // Not only when this run counted it: a retry after the count committed finds it
            // counted already. The email is keyed by the pack and claimed before it is sent,
            // so it goes out once however many runs get here.
            if last_one_left {
                step.run("send-renewal-reminder", || {
                    send_renewal_reminder(app, pack_id, pack.remaining_sessions)
                })
                .await?;
            }
            // Depleted: the last session of an active pack is used. (An expired pack's seat is
            // released by the expiry check instead.) Not only when this run counted it: a run
            // replayed after failing past the count must still start the grace, or the seat
            // would stay taken for ever; every step below is safe to repeat (an existing grace
            // keeps its end, a seat is released once, emails are keyed by the pack).
            if pack.status != PackStatus::Depleted {
                return Ok(summary(Value::Null));
            }

            let grace_ends = step
                .run("start-grace-period", || async {
                    let mut conn = app.conn().await?;
                    seats::start_grace(&mut conn, pack_id, Utc::now()).await
                })
                .await?;
            let Some(grace_ends) = grace_ends else {
                return Ok(summary(json!("no active seat")));
            };
            step.sleep_until("grace-period", grace_ends).await;

            let released: Option<Uuid> = step
                .run("release-seat", || async {
                    let mut conn = app.conn().await?;
                    let seat = seats::release_after_grace(&mut conn, pack_id).await?;
                    Ok::<_, DbError>(seat.map(|s| s.id))
                })
                .await?;
            let Some(seat_id) = released else {
                return Ok(summary(
                    json!({ "endedAt": grace_ends, "seat": "kept by a renewal" }),
                ));
            };
            step.run("revoke-dashboard-access", || {
                app.access().revoke(pack_id, RevokeReason::SeatReleased)
            })
            .await?;
            step.run("send-seat-released-email", || {
                send_seat_released(app, pack_id)
            })
            .await?;
            Ok(summary(
                json!({ "endedAt": grace_ends, "releasedSeat": seat_id }),
            ))
        },
    )
}

/// `remaining` sessions left: renew now to keep going (once per pack).
async fn send_renewal_reminder(
    app: &AppState,
    pack_id: Uuid,
    remaining: i32,
) -> Result<Delivery, Error> {
    let people = contacts::of_pack(&mut *app.conn().await?, pack_id).await?;
    let mentee = reach_mentee(&app.db, app.clerk.as_ref(), &people.mentee).await?;
    let email = RenewalReminder {
        first_name: mentee.first_name,
        mentor_name: people.mentor_name,
        sessions_remaining: remaining,
        renew_link: format!("{}/renew/{pack_id}", public_url(app)),
    };
    let key = format!("renewal-reminder-{pack_id}");
    let user_id = Some(people.mentee.user_id);
    Ok(app
        .mailer()
        .send(user_id, &mentee.email, &email, &key)
        .await?)
}

/// The grace period ended and the seat went back to the mentor (once per pack).
async fn send_seat_released(app: &AppState, pack_id: Uuid) -> Result<Delivery, Error> {
    let people = contacts::of_pack(&mut *app.conn().await?, pack_id).await?;
    let mentee = reach_mentee(&app.db, app.clerk.as_ref(), &people.mentee).await?;
    let email = SeatReleased {
        first_name: mentee.first_name,
        mentor_name: people.mentor_name,
        buy_link: format!("{}/mentors/{}", public_url(app), people.mentor_id),
    };
    let key = format!("seat-released-grace-ended-{pack_id}");
    let user_id = Some(people.mentee.user_id);
    Ok(app
        .mailer()
        .send(user_id, &mentee.email, &email, &key)
        .await?)
}

fn public_url(app: &AppState) -> &str {
    app.config.public_url.trim_end_matches('/')
}
