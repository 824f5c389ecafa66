//! `session-reminders`: a booked session is reminded to its mentee and its mentor 24 hours and
//! 1 hour before it starts. A reminder whose time had already passed when the run began is
//! skipped (a session booked 3 hours ahead gets only the 1-hour one). Cancelling the session,
//! or moving it away from this run's time, cancels the run (the move's own `session/scheduled`
//! starts a fresh one); and each email first checks that the session is still scheduled at
//! this time, so a lost cancellation sends nothing. Emails are keyed by session, time,
//! reminder and recipient.

use chrono::{DateTime, Utc};
use inngest_sdk::function::Cancel;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::contacts::{self, reach_mentee};
use crate::email::{MentorSessionReminder, SessionReminder};
use crate::events::{SESSION_CANCELLED, SESSION_RESCHEDULED, SESSION_SCHEDULED, SessionScheduled};
use crate::notifications::Delivery;

/// The function.
pub fn session_reminders() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("session-reminders")
            .with_name("Session Reminders")
            .with_trigger(Trigger::event(SESSION_SCHEDULED))
            .with_retries(3)
            .with_cancel(
                Cancel::on(SESSION_CANCELLED)
                    .with_if("event.data.sessionId == async.data.sessionId"),
            )
            // Only a move away from this run's time: the move also announces the new time,
            // whose run this must not cancel.
            .with_cancel(Cancel::on(SESSION_RESCHEDULED).with_if(
                "event.data.sessionId == async.data.sessionId \
                 && event.data.scheduledAt == async.data.previousScheduledAt",
            )),
        |ctx: Ctx<SessionScheduled, AppState>| async move {
            let (step, app, session) = (&ctx.step, &ctx.state, &ctx.event.data);
            // Decided once and memoized: on later requests the reminder times have passed.
            let ahead: Vec<Reminder> = step
                .run("plan-reminders", || async {
                    Ok::<_, Error>(Reminder::ahead(session.scheduled_at, Utc::now()))
                })
                .await?;
            let mut sent = Vec::new();
            for reminder in ahead {
                let label = reminder.label();
                step.sleep_until(
                    &format!("wait-until-{label}-before"),
                    reminder.at(session.scheduled_at),
                )
                .await;
                for to in [Recipient::Mentee, Recipient::Mentor] {
                    let id = format!("remind-{}-{label}-before", to.as_str());
                    let outcome: Reminded =
                        step.run(&id, || remind(app, session, reminder, to)).await?;
                    sent.push(json!({ "reminder": label, "to": to.as_str(), "outcome": outcome }));
                }
            }
            Ok(json!({ "sessionId": session.session_id, "reminders": sent }))
        },
    )
}

/// The two reminders before a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reminder {
    DayBefore,
    HourBefore,
}

impl Reminder {
    /// The reminders still ahead at `now` for a session at `starts_at`, earliest first.
    fn ahead(starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Reminder> {
        [Reminder::DayBefore, Reminder::HourBefore]
            .into_iter()
            .filter(|r| r.at(starts_at) > now)
            .collect()
    }

    fn at(self, starts_at: DateTime<Utc>) -> DateTime<Utc> {
        starts_at
            - match self {
                Reminder::DayBefore => chrono::Duration::hours(24),
                Reminder::HourBefore => chrono::Duration::hours(1),
            }
    }

    fn label(self) -> &'static str {
        match self {
            Reminder::DayBefore => "24h",
            Reminder::HourBefore => "1h",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Recipient {
    Mentee,
    Mentor,
}

impl Recipient {
    fn as_str(self) -> &'static str {
        match self {
            Recipient::Mentee => "mentee",
            Recipient::Mentor => "mentor",
        }
    }
}

/// What one reminder email came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
enum Reminded {
    /// Sent (or suppressed) through the mailer.
    Delivered { delivery: Delivery },
    /// Not sent: the session is no longer scheduled at this time.
    NotScheduled,
}

/// Sends one reminder to one recipient, if the session is still scheduled at this run's time.
async fn remind(
    app: &AppState,
    session: &SessionScheduled,
    reminder: Reminder,
    to: Recipient,
) -> Result<Reminded, Error> {
    let people = {
        let mut conn = app.conn().await?;
        contacts::of_scheduled_session(&mut conn, session.session_id, session.scheduled_at).await?
    };
    let Some(people) = people else {
        return Ok(Reminded::NotScheduled);
    };
    let key = format!(
        "session-reminder-{}-{}-{}-{}",
        session.session_id,
        session.scheduled_at.timestamp(),
        reminder.label(),
        to.as_str()
    );
    let dashboard_link = format!("{}/dashboard", app.config.public_url.trim_end_matches('/'));
    let mailer = app.mailer();
    let delivery = match to {
        Recipient::Mentee => {
            let mentee = reach_mentee(&app.db, app.clerk.as_ref(), &people.mentee).await?;
            let email = SessionReminder {
                first_name: mentee.first_name,
                mentor_name: people.mentor_name.clone(),
                starts_at: session.scheduled_at,
                dashboard_link,
            };
            let user_id = Some(people.mentee.user_id);
            mailer.send(user_id, &mentee.email, &email, &key).await?
        }
        Recipient::Mentor => {
            let email = MentorSessionReminder {
                first_name: people.mentor_first_name(),
                mentee_name: people.mentee.display_name(),
                starts_at: session.scheduled_at,
                dashboard_link,
            };
            mailer
                .send(None, &people.mentor_email, &email, &key)
                .await?
        }
    };
    Ok(Reminded::Delivered { delivery })
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::Reminder;

    #[test]
    fn a_reminder_whose_time_has_passed_is_skipped() {
        let starts = Utc
            .with_ymd_and_hms(2026, 3, 2, 14, 0, 0)
            .single()
            .expect("a valid time");
        let both = Reminder::ahead(starts, starts - Duration::days(2));
        assert_eq!(both, vec![Reminder::DayBefore, Reminder::HourBefore]);
        let booked_3h_ahead = Reminder::ahead(starts, starts - Duration::hours(3));
        assert_eq!(booked_3h_ahead, vec![Reminder::HourBefore]);
        assert!(Reminder::ahead(starts, starts - Duration::minutes(30)).is_empty());
    }
}
