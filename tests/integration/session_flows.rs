//! Sessions over time, through the functions: reminders before each session, each completion
//! counted once, the renewal reminder, the grace period and the released seat (packs past
//! their expiry: `pack_expiry.rs`). Events go the real way (domain → inbox → relay → the fake
//! Inngest) and the executor runs the function each one triggers; Resend, Clerk and Discord
//! are fakes that record what they receive.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::future::join_all;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::discord::DiscordConnection;
use huckleberry::models::{
    PackStatus, Product, Provider, ReleaseReason, SeatReservation, SeatStatus, Session,
    SessionPack, SessionStatus,
};
use huckleberry::payments::PaymentsError;
use huckleberry::payments::fulfilment::Fulfilment;
use huckleberry::relay::forward_due;
use huckleberry::{seats, sessions};
use inngest_sdk::Event;
use inngest_sdk::testing::RunOutcome;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::onboarding::{
    emails_sent, mock_clerk_metadata, mock_clerk_user, mock_resend, purchase_of,
};
use crate::util::{TestApp, fixture, spawn_app};

const MENTOR: &str = "user_mentor_1";
pub(crate) const MENTEE: &str = "user_clerk_1";
pub(crate) const MENTEE_EMAIL: &str = "ada@example.com";
const MENTOR_EMAIL: &str = "ada@huckleberry.test";
const ROLE: &str = "/guilds/guild-1/members/discord-42/roles/role-mentee";

/// A paid 4-session pack of `MENTEE` with a mentor of `seats` seats, who is the Clerk user
/// `MENTOR`; Discord connected and the dashboard open. Resend, Clerk and Discord answer.
pub(crate) async fn paid_pack(app: &TestApp, seats: i32) -> (Product, Fulfilment) {
    let product = app.seed_product(seats).await;
    let f = purchase_of(app, &product, MENTEE).await;
    let mut conn = app.conn().await;
    app.link_mentor(product.mentor_id, MENTOR).await;
    let user_id = pack(app, f.pack_id).await.user_id;
    DiscordConnection::connect(&mut conn, user_id, "discord-42", "ada_draws")
        .await
        .expect("connect Discord");
    let user = serde_json::from_str(&fixture("clerk/user.json")).expect("json");
    mock_clerk_user(app, user).await;
    mock_clerk_metadata(app, 0).await;
    mock_resend(app, 0).await;
    for verb in ["PUT", "DELETE"] {
        Mock::given(method(verb))
            .and(path(ROLE))
            .respond_with(ResponseTemplate::new(204))
            .mount(&app.discord)
            .await;
    }
    app.state.access().grant(f.pack_id).await.expect("grant");
    (product, f)
}

pub(crate) async fn pack(app: &TestApp, id: Uuid) -> SessionPack {
    let mut conn = app.conn().await;
    SessionPack::find(&mut conn, id)
        .await
        .expect("query")
        .expect("pack")
}

pub(crate) async fn seat_of(app: &TestApp, pack_id: Uuid) -> SeatReservation {
    let mut conn = app.conn().await;
    SeatReservation::by_pack(&mut conn, pack_id)
        .await
        .expect("query")
        .expect("seat")
}

/// Whole seconds from now, as a booking form sends them.
pub(crate) fn from_now(duration: Duration) -> DateTime<Utc> {
    let at = Utc::now() + duration;
    at - Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()))
}

pub(crate) async fn book(app: &TestApp, pack_id: Uuid, at: DateTime<Utc>) -> Session {
    let mut conn = app.conn().await;
    sessions::book(&mut conn, MENTEE, pack_id, at, Utc::now())
        .await
        .expect("booked")
}

async fn complete(app: &TestApp, session_id: Uuid) {
    let mut conn = app.conn().await;
    sessions::end(&mut conn, MENTOR, session_id, SessionStatus::Completed)
        .await
        .expect("completed");
}

/// One relay pass: the events Inngest received in it.
pub(crate) async fn relay(app: &TestApp) -> Vec<Event<Value>> {
    let before = app.events.events().len();
    forward_due(&app.state).await.expect("relay pass");
    app.events.events().into_iter().skip(before).collect()
}

/// The one relayed event named `name`.
pub(crate) fn the(events: &[Event<Value>], name: &str) -> Event<Value> {
    let found: Vec<_> = events.iter().filter(|e| e.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} in {events:?}");
    found[0].clone()
}

/// Books a session and runs its reminders to the end.
async fn book_and_remind(app: &TestApp, pack_id: Uuid, at: DateTime<Utc>) -> Session {
    let session = book(app, pack_id, at).await;
    let scheduled = the(&relay(app).await, "session/scheduled");
    let run = app.engine.run("session-reminders", scheduled).await;
    assert!(run.result.is_ok(), "{:?}", run.result);
    session
}

/// Completes a session and runs the handler of its `session/completed`.
async fn complete_and_handle(app: &TestApp, session_id: Uuid) -> RunOutcome {
    complete(app, session_id).await;
    let completed = the(&relay(app).await, "session/completed");
    app.engine.run("session-completed-handler", completed).await
}

fn reminder_keys(session: &Session, labels: &[&str]) -> Vec<String> {
    let ts = session.scheduled_at.timestamp();
    labels
        .iter()
        .flat_map(|label| {
            ["mentee", "mentor"]
                .map(|to| format!("session-reminder-{}-{ts}-{label}-{to}", session.id))
        })
        .collect()
}

pub(crate) async fn email_keys(app: &TestApp) -> Vec<String> {
    emails_sent(app).await.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_session_pack_goes_from_booking_to_a_released_seat() {
    let app = spawn_app().await;
    let (product, f) = paid_pack(&app, 1).await;
    let mut expected = Vec::new();
    let mut last_run = None;
    for day in 1..=4 {
        // A day and two hours ahead at least, so both reminders are still to come.
        let at = from_now(Duration::days(day) + Duration::hours(2));
        let session = book_and_remind(&app, f.pack_id, at).await;
        expected.extend(reminder_keys(&session, &["24h", "1h"]));
        if day == 4 {
            let full = app
                .try_checkout(&product, "user_other", Provider::Stripe)
                .await;
            assert!(matches!(full, Err(PaymentsError::NoFreeSeat)), "{full:?}");
        }
        let run = complete_and_handle(&app, session.id).await;
        assert_eq!(run.output::<Value>()["counted"], json!(true));
        match day {
            3 => expected.push(format!("renewal-reminder-{}", f.pack_id)),
            4 => expected.push(format!("seat-released-grace-ended-{}", f.pack_id)),
            _ => {}
        }
        last_run = Some(run);
    }
    let last_run = last_run.expect("four runs");

    let sent = emails_sent(&app).await;
    let keys: Vec<&str> = sent.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, expected);
    for (key, body) in &sent {
        let to = if key.ends_with("-mentor") {
            MENTOR_EMAIL
        } else {
            MENTEE_EMAIL
        };
        assert_eq!(body["to"], json!([to]), "{key}");
    }
    let renewal = &sent
        .iter()
        .find(|(k, _)| k.starts_with("renewal"))
        .expect("sent")
        .1;
    assert_eq!(renewal["subject"], "One session left with Ada Mentor");

    // The last session started the 72-hour grace; the run slept until it ended, then released.
    let seat = seat_of(&app, f.pack_id).await;
    let grace_end = seat.grace_period_ends_at.expect("grace was started");
    assert!(
        (grace_end - Utc::now() - Duration::hours(72))
            .num_seconds()
            .abs()
            < 60
    );
    let until = grace_end.to_rfc3339_opts(SecondsFormat::Millis, true);
    assert_eq!(last_run.sleeps(), vec![("grace-period".to_owned(), until)]);
    assert_eq!(
        (seat.status, seat.release_reason),
        (SeatStatus::Released, Some(ReleaseReason::GraceEnded))
    );
    let pack = pack(&app, f.pack_id).await;
    assert_eq!(
        (pack.status, pack.remaining_sessions),
        (PackStatus::Depleted, 0)
    );

    // Access revoked everywhere; the release announced for whoever waits for the mentor.
    let mut conn = app.conn().await;
    let grants = DashboardAccess::active_for_user(&mut conn, pack.user_id).await;
    assert!(grants.expect("query").is_empty());
    let metadata = app.clerk.received_requests().await.expect("recorded");
    let last_patch = metadata
        .iter()
        .rfind(|r| r.method.as_str() == "PATCH")
        .expect("patched");
    let body: Value = serde_json::from_slice(&last_patch.body).expect("json");
    assert_eq!(body["public_metadata"]["dashboard"]["access"], json!(false));
    let discord = app.discord.received_requests().await.expect("recorded");
    let verbs: Vec<&str> = discord.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(verbs, vec!["PUT", "DELETE"]);
    the(&relay(&app).await, "seat/released");

    app.try_checkout(&product, "user_other", Provider::Stripe)
        .await
        .expect("the released seat is for the next buyer");
}

/// A pack with two sessions already counted, and a third one completed: its event.
async fn third_completion(app: &TestApp, pack_id: Uuid) -> Event<Value> {
    let mut last = None;
    for day in 1..=3 {
        let session = book(app, pack_id, from_now(Duration::days(day))).await;
        complete(app, session.id).await;
        if day < 3 {
            let mut conn = app.conn().await;
            sessions::count_used_session(&mut conn, session.id, pack_id)
                .await
                .expect("counted");
        }
        last = Some(session.id);
    }
    let third = json!(last.expect("three sessions"));
    relay(app)
        .await
        .into_iter()
        .find(|e| e.name == "session/completed" && e.data["sessionId"] == third)
        .expect("the third completion was announced")
}

fn counted(runs: &[RunOutcome]) -> usize {
    runs.iter()
        .filter(|r| r.output::<Value>()["counted"] == json!(true))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_completion_five_times_in_a_row_is_counted_once() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let event = third_completion(&app, f.pack_id).await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(
            app.engine
                .run("session-completed-handler", event.clone())
                .await,
        );
    }
    assert_eq!(counted(&runs), 1);
    assert_eq!(pack(&app, f.pack_id).await.remaining_sessions, 1);
    let renewal = format!("renewal-reminder-{}", f.pack_id);
    assert_eq!(email_keys(&app).await, vec![renewal]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_completion_five_times_at_once_is_counted_once() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let event = third_completion(&app, f.pack_id).await;
    // The runs that find the reminder being sent by another retry it a moment later.
    let runs = join_all((0..5).map(|_| {
        app.engine
            .run("session-completed-handler", event.clone())
            .with_retry_pause(std::time::Duration::from_millis(200))
            .with_max_attempts(20)
            .execute()
    }))
    .await;
    assert_eq!(counted(&runs), 1);
    assert_eq!(pack(&app, f.pack_id).await.remaining_sessions, 1);
    let renewal = format!("renewal-reminder-{}", f.pack_id);
    assert_eq!(email_keys(&app).await, vec![renewal]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_completed_at_once_are_both_counted() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let mut ids = Vec::new();
    for day in 1..=2 {
        ids.push(
            book(&app, f.pack_id, from_now(Duration::days(day)))
                .await
                .id,
        );
    }
    for id in &ids {
        complete(&app, *id).await;
    }
    let events = relay(&app).await;
    let runs = join_all(
        events
            .iter()
            .filter(|e| e.name == "session/completed")
            .map(|e| {
                app.engine
                    .run("session-completed-handler", e.clone())
                    .execute()
            }),
    )
    .await;
    assert_eq!(counted(&runs), 2);
    let pack = pack(&app, f.pack_id).await;
    assert_eq!(
        (pack.status, pack.remaining_sessions),
        (PackStatus::Active, 2)
    );
    assert!(
        email_keys(&app).await.is_empty(),
        "two left: no reminder yet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_a_renewal_took_over_is_not_released_when_grace_ends() {
    let app = spawn_app().await;
    let (product, f) = paid_pack(&app, 3).await;
    let mut conn = app.conn().await;
    let ends = seats::start_grace(&mut conn, f.pack_id, Utc::now())
        .await
        .expect("query")
        .expect("the active seat enters grace");
    let again = seats::start_grace(&mut conn, f.pack_id, Utc::now() + Duration::hours(1)).await;
    assert_eq!(
        again.expect("query"),
        Some(ends),
        "a retried start keeps the end"
    );
    // The buyer renews during grace: the seat moves to the new pack and is active again.
    let renewal = purchase_of(&app, &product, MENTEE).await;
    assert_eq!(
        renewal.seat_id, f.seat_id,
        "the renewal carries the seat over"
    );

    let released = seats::release_after_grace(&mut conn, f.pack_id).await;
    assert!(released.expect("query").is_none());
    let seat = seat_of(&app, renewal.pack_id).await;
    assert_eq!((seat.id, seat.status), (f.seat_id, SeatStatus::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reschedule_stops_the_old_reminders_and_the_new_time_gets_its_own() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let session = book(&app, f.pack_id, from_now(Duration::days(3))).await;
    let old = the(&relay(&app).await, "session/scheduled");
    let mut conn = app.conn().await;
    let moved = sessions::reschedule(
        &mut conn,
        MENTEE,
        session.id,
        from_now(Duration::days(4)),
        Utc::now(),
    )
    .await
    .expect("moved");
    let events = relay(&app).await;
    let (rescheduled, new) = (
        the(&events, "session/rescheduled"),
        the(&events, "session/scheduled"),
    );

    let run = app
        .engine
        .run("session-reminders", old.clone())
        .with_incoming(rescheduled.clone())
        .await;
    assert!(run.is_cancelled());
    assert_eq!(run.ops("Sleep")[0].name, "wait-until-24h-before");
    assert!(email_keys(&app).await.is_empty());

    let run = app
        .engine
        .run("session-reminders", new)
        .with_incoming(rescheduled)
        .await;
    assert!(
        !run.is_cancelled(),
        "the move does not cancel the new time's run"
    );
    assert_eq!(
        email_keys(&app).await,
        reminder_keys(&moved, &["24h", "1h"])
    );

    // Had the cancellation been lost, the old run would check the database and send nothing.
    let lost = app.engine.run("session-reminders", old.clone()).await;
    let output = lost.output::<Value>();
    let outcomes: Vec<&str> = output["reminders"]
        .as_array()
        .expect("reminders")
        .iter()
        .map(|r| r["outcome"]["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, vec!["not_scheduled"; 4]);
    assert_eq!(email_keys(&app).await.len(), 4);

    // Moving back to the first time is announced anew (not taken for the first booking's
    // event), so that time is reminded again.
    sessions::reschedule(
        &mut conn,
        MENTEE,
        session.id,
        session.scheduled_at,
        Utc::now(),
    )
    .await
    .expect("moved back");
    let back = the(&relay(&app).await, "session/scheduled");
    assert_eq!(back.data["scheduledAt"], old.data["scheduledAt"]);
    assert_ne!(back.id, old.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_session_stops_its_reminders_and_only_its_own() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let kept = book(&app, f.pack_id, from_now(Duration::days(2))).await;
    let dropped = book(&app, f.pack_id, from_now(Duration::days(3))).await;
    let scheduled = relay(&app).await;
    let mut conn = app.conn().await;
    sessions::cancel(&mut conn, MENTEE, dropped.id, Utc::now())
        .await
        .expect("cancelled");
    let cancelled = the(&relay(&app).await, "session/cancelled");
    for event in scheduled {
        let run = app
            .engine
            .run("session-reminders", event.clone())
            .with_incoming(cancelled.clone())
            .await;
        let cancelled_run = event.data["sessionId"] == json!(dropped.id);
        assert_eq!(run.is_cancelled(), cancelled_run);
    }
    assert_eq!(email_keys(&app).await, reminder_keys(&kept, &["24h", "1h"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_booked_three_hours_ahead_gets_only_the_hour_before_reminders() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let session = book(&app, f.pack_id, from_now(Duration::hours(3))).await;
    let run = app
        .engine
        .run(
            "session-reminders",
            the(&relay(&app).await, "session/scheduled"),
        )
        .await;
    let sleeps: Vec<String> = run.sleeps().into_iter().map(|(name, _)| name).collect();
    assert_eq!(sleeps, vec!["wait-until-1h-before"]);
    assert_eq!(email_keys(&app).await, reminder_keys(&session, &["1h"]));
    let sent = emails_sent(&app).await;
    assert_eq!(
        sent[1].1["subject"]
            .as_str()
            .map(|s| s.starts_with("Reminder: your session with Ada Lovelace")),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_replayed_after_failing_past_the_count_still_releases_the_seat() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let mut last = None;
    for day in 1..=4 {
        let session = book(&app, f.pack_id, from_now(Duration::days(day))).await;
        complete(&app, session.id).await;
        // Counted as a first run would have counted them, before it failed for good.
        let mut conn = app.conn().await;
        sessions::count_used_session(&mut conn, session.id, f.pack_id)
            .await
            .expect("counted");
        last = Some(session.id);
    }
    let fourth = json!(last.expect("four sessions"));
    let completed = relay(&app)
        .await
        .into_iter()
        .find(|e| e.name == "session/completed" && e.data["sessionId"] == fourth)
        .expect("the fourth completion was announced");

    // The replay: a new run of the same event, which finds the session already counted.
    let replay = app.engine.run("session-completed-handler", completed).await;
    let output: Value = replay.output();
    assert_eq!(output["counted"], json!(false));
    assert!(output["grace"]["releasedSeat"].is_string(), "{output}");
    let seat = app.seat(f.order_id).await;
    assert_eq!(seat.status, SeatStatus::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refund_cancels_the_booked_sessions_and_stops_their_reminders() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use huckleberry::models::Payment;
    use huckleberry::payments::refunds::{ReportedRefund, apply_refund};
    use huckleberry::schema::payments;

    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let booked = [
        book(&app, f.pack_id, from_now(Duration::days(2))).await,
        book(&app, f.pack_id, from_now(Duration::days(3))).await,
    ];
    let scheduled = relay(&app).await;
    let mut conn = app.conn().await;
    let payment: Payment = payments::table
        .filter(payments::order_id.eq(f.order_id))
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    let refund = ReportedRefund {
        provider: payment.provider,
        provider_payment_id: payment.provider_payment_id.clone(),
        refunded_total: payment.amount.clone(),
        currency: payment.currency.clone(),
    };
    let outcome = apply_refund(&mut conn, &refund).await.expect("refunded");
    assert!(outcome.full && outcome.seat_released, "{outcome:?}");
    // Told twice (the provider repeats itself): nothing more is cancelled or announced.
    apply_refund(&mut conn, &refund).await.expect("again");

    for session in &booked {
        let now = Session::find(&mut conn, session.id)
            .await
            .expect("query")
            .expect("session");
        assert_eq!(now.status, SessionStatus::Cancelled);
    }
    let announced = relay(&app).await;
    let cancelled: Vec<&Event<Value>> = announced
        .iter()
        .filter(|e| e.name == "session/cancelled")
        .collect();
    assert_eq!(cancelled.len(), 2, "{announced:?}");
    for event in scheduled {
        let session = event.data["sessionId"].clone();
        let its_cancellation = cancelled
            .iter()
            .find(|c| c.data["sessionId"] == session)
            .expect("each booked session is announced cancelled");
        let run = app
            .engine
            .run("session-reminders", event.clone())
            .with_incoming((*its_cancellation).clone())
            .await;
        assert!(run.is_cancelled(), "{session}");
    }
    assert!(email_keys(&app).await.is_empty());
    let rebook = sessions::book(
        &mut conn,
        MENTEE,
        f.pack_id,
        from_now(Duration::days(4)),
        Utc::now(),
    )
    .await;
    assert!(
        matches!(rebook, Err(sessions::SessionsError::PackRefunded)),
        "{rebook:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renewal_reminder_goes_out_even_when_a_retry_finds_the_session_counted() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let completed = third_completion(&app, f.pack_id).await;
    // The first attempt's count committed, but its answer never reached Inngest.
    let third: Uuid = serde_json::from_value(completed.data["sessionId"].clone()).expect("id");
    let mut conn = app.conn().await;
    sessions::count_used_session(&mut conn, third, f.pack_id)
        .await
        .expect("counted");

    let retry = app.engine.run("session-completed-handler", completed).await;
    let output: Value = retry.output();
    assert_eq!(
        (
            output["counted"].clone(),
            output["remainingSessions"].clone()
        ),
        (json!(false), json!(1))
    );
    let renewal = format!("renewal-reminder-{}", f.pack_id);
    assert_eq!(email_keys(&app).await, vec![renewal]);
}
