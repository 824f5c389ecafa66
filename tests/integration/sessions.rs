//! Booking and counting sessions in the domain (`huckleberry::sessions`): the rules a booking
//! meets, and a used session counted against its pack exactly once.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::{SessionPack, SessionStatus};
use huckleberry::schema::webhook_inbox;
use huckleberry::sessions::{self, SessionsError};
use uuid::Uuid;

use crate::onboarding::purchase;
use crate::util::{TestApp, spawn_app};

pub(crate) const MENTOR: &str = "user_mentor_1";
pub(crate) const MENTEE: &str = "user_clerk_1";

/// A paid 4-session pack whose mentor is the Clerk user `MENTOR`.
pub(crate) async fn pack(app: &TestApp) -> SessionPack {
    let f = purchase(app).await;
    let mut conn = app.conn().await;
    let pack = SessionPack::find(&mut conn, f.pack_id)
        .await
        .expect("query")
        .expect("pack");
    app.link_mentor(pack.mentor_id, MENTOR).await;
    pack
}

fn in_days(days: i64) -> chrono::DateTime<Utc> {
    // Whole seconds, as the database keeps microseconds and events carry seconds.
    let at = Utc::now() + Duration::days(days);
    at - Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_announces_the_session_and_refuses_past_and_late_times() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut conn = app.conn().await;
    let now = Utc::now();
    // One slot, read once: two readings can straddle a second and name two slots.
    let slot = in_days(2);
    let session = sessions::book(&mut conn, MENTEE, pack.id, slot, now)
        .await
        .expect("booked");
    assert_eq!(session.status, SessionStatus::Scheduled);
    let announced: Vec<String> = webhook_inbox::table
        .filter(webhook_inbox::provider.eq("app"))
        .select(webhook_inbox::event_type)
        .load(&mut conn)
        .await
        .expect("inbox");
    assert_eq!(announced, vec!["session/scheduled"]);

    let past = sessions::book(&mut conn, MENTEE, pack.id, now - Duration::hours(1), now).await;
    assert!(
        matches!(past, Err(SessionsError::SlotInPast(_))),
        "{past:?}"
    );
    let late = sessions::book(&mut conn, MENTEE, pack.id, pack.expires_at, now).await;
    assert!(
        matches!(late, Err(SessionsError::SlotAfterExpiry { .. })),
        "{late:?}"
    );
    let taken = sessions::book(&mut conn, MENTEE, pack.id, slot, now).await;
    assert!(
        matches!(taken, Err(SessionsError::SlotTaken(_))),
        "{taken:?}"
    );
    let stranger = sessions::book(&mut conn, "user_other", pack.id, in_days(3), now).await;
    assert!(
        matches!(stranger, Err(SessionsError::PackNotFound(_))),
        "{stranger:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_mentor_ends_a_session() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut conn = app.conn().await;
    let session = sessions::book(&mut conn, MENTEE, pack.id, in_days(1), Utc::now())
        .await
        .expect("booked");
    let by_mentee = sessions::end(&mut conn, MENTEE, session.id, SessionStatus::Completed).await;
    assert!(
        matches!(by_mentee, Err(SessionsError::MentorOnly)),
        "{by_mentee:?}"
    );
    let ended = sessions::end(&mut conn, MENTOR, session.id, SessionStatus::NoShow)
        .await
        .expect("ended");
    assert_eq!(ended.status, SessionStatus::NoShow);
    let again = sessions::end(&mut conn, MENTOR, session.id, SessionStatus::Completed).await;
    assert!(matches!(
        again,
        Err(SessionsError::NotScheduled(SessionStatus::NoShow))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_session_is_counted_once_even_concurrently() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut ids = Vec::new();
    for day in 1..=2 {
        let mut conn = app.conn().await;
        let s = sessions::book(&mut conn, MENTEE, pack.id, in_days(day), Utc::now())
            .await
            .expect("booked");
        sessions::end(&mut conn, MENTOR, s.id, SessionStatus::Completed)
            .await
            .expect("ended");
        ids.push(s.id);
    }
    // The first session counted five times at once, the second five times too.
    let mut counts = Vec::new();
    for id in ids.iter().cycle().take(10) {
        let (state, id, pack_id) = (app.state.clone(), *id, pack.id);
        counts.push(tokio::spawn(async move {
            let mut conn = state.conn().await.expect("conn");
            sessions::count_used_session(&mut conn, id, pack_id).await
        }));
    }
    let mut newly = 0;
    for count in counts {
        if count.await.expect("task").expect("counted").newly_counted {
            newly += 1;
        }
    }
    assert_eq!(newly, 2, "each session counted once");
    let mut conn = app.conn().await;
    let after = SessionPack::find(&mut conn, pack.id)
        .await
        .expect("query")
        .expect("pack");
    assert_eq!(after.remaining_sessions, 2);
    let unknown = sessions::count_used_session(&mut conn, Uuid::new_v4(), pack.id).await;
    assert!(matches!(unknown, Err(SessionsError::SessionNotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_but_not_yet_counted_keeps_its_place_in_the_pack() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut conn = app.conn().await;
    let mut booked = Vec::new();
    for day in 1..=4 {
        let session = sessions::book(&mut conn, MENTEE, pack.id, in_days(day), Utc::now())
            .await
            .expect("booked");
        booked.push(session);
    }
    sessions::end(&mut conn, MENTOR, booked[0].id, SessionStatus::Completed)
        .await
        .expect("ended");
    // Inngest has not counted it yet: the pack still says 4 left, but all 4 are spoken for.
    let fifth = sessions::book(&mut conn, MENTEE, pack.id, in_days(5), Utc::now()).await;
    assert!(
        matches!(fifth, Err(SessionsError::NoSessionsLeft)),
        "{fifth:?}"
    );
    sessions::count_used_session(&mut conn, booked[0].id, pack.id)
        .await
        .expect("counted");
    let fifth = sessions::book(&mut conn, MENTEE, pack.id, in_days(5), Utc::now()).await;
    assert!(
        matches!(fifth, Err(SessionsError::NoSessionsLeft)),
        "{fifth:?}"
    );
    // A cancelled one gives its place back.
    sessions::cancel(&mut conn, MENTEE, booked[1].id, Utc::now())
        .await
        .expect("cancelled");
    sessions::book(&mut conn, MENTEE, pack.id, in_days(5), Utc::now())
        .await
        .expect("booked in the freed place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mentee_cannot_cancel_or_move_a_session_whose_time_has_come_but_its_mentor_can() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut conn = app.conn().await;
    let slot = in_days(1);
    let session = sessions::book(&mut conn, MENTEE, pack.id, slot, Utc::now())
        .await
        .expect("booked");
    // An hour into the session, before the mentor has marked it.
    let during = slot + Duration::hours(1);
    let cancel = sessions::cancel(&mut conn, MENTEE, session.id, during).await;
    assert!(
        matches!(cancel, Err(SessionsError::AlreadyStarted(at)) if at == slot),
        "{cancel:?}"
    );
    let moved = sessions::reschedule(&mut conn, MENTEE, session.id, in_days(3), during).await;
    assert!(
        matches!(moved, Err(SessionsError::AlreadyStarted(_))),
        "{moved:?}"
    );
    // Up to its start, the mentee may.
    let before = slot - Duration::seconds(1);
    let moved = sessions::reschedule(&mut conn, MENTEE, session.id, in_days(2), before)
        .await
        .expect("moved before its time");
    // The mentor may move one whose time has come (they did not hold it), or cancel it.
    let later = moved.scheduled_at + Duration::minutes(30);
    let moved = sessions::reschedule(&mut conn, MENTOR, session.id, in_days(3), later)
        .await
        .expect("the mentor moved it");
    sessions::cancel(
        &mut conn,
        MENTOR,
        session.id,
        moved.scheduled_at + Duration::minutes(5),
    )
    .await
    .expect("the mentor cancelled it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mentor_is_never_booked_into_two_overlapping_hours() {
    use crate::onboarding::purchase_of;
    use chrono::Timelike;

    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let mine = purchase_of(&app, &product, MENTEE).await;
    let theirs = purchase_of(&app, &product, "user_clerk_2").await;
    app.link_mentor(product.mentor_id, MENTOR).await;
    let mut conn = app.conn().await;
    let now = Utc::now();
    let ten = in_days(2)
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .expect("on the hour");
    let booked = sessions::book(&mut conn, MENTEE, mine.pack_id, ten, now)
        .await
        .expect("booked at ten");

    // Another mentee of the same mentor: any start within the hour either side is taken.
    for minutes in [-59, -1, 0, 1, 30, 59] {
        let at = ten + Duration::minutes(minutes);
        let overlap = sessions::book(&mut conn, "user_clerk_2", theirs.pack_id, at, now).await;
        assert!(
            matches!(overlap, Err(SessionsError::SlotTaken(t)) if t == at),
            "{minutes} min: {overlap:?}"
        );
    }
    let eleven = sessions::book(
        &mut conn,
        "user_clerk_2",
        theirs.pack_id,
        ten + Duration::hours(1),
        now,
    )
    .await
    .expect("the next hour is free");
    let moved = sessions::reschedule(
        &mut conn,
        "user_clerk_2",
        eleven.id,
        ten + Duration::minutes(15),
        now,
    )
    .await;
    assert!(
        matches!(moved, Err(SessionsError::SlotTaken(_))),
        "{moved:?}"
    );

    // Cancelled, the hour is free again.
    sessions::cancel(&mut conn, MENTEE, booked.id, now)
        .await
        .expect("cancelled");
    sessions::book(&mut conn, "user_clerk_2", theirs.pack_id, ten, now)
        .await
        .expect("booked in the freed hour");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mentees_booking_overlapping_hours_at_once_get_one_session() {
    use crate::onboarding::purchase_of;

    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let packs = [
        (MENTEE, purchase_of(&app, &product, MENTEE).await.pack_id),
        (
            "user_clerk_2",
            purchase_of(&app, &product, "user_clerk_2").await.pack_id,
        ),
    ];
    let slot = in_days(3);
    let attempts = packs.iter().enumerate().map(|(i, (who, pack_id))| {
        let (state, who, pack_id) = (app.state.clone(), (*who).to_owned(), *pack_id);
        let at = slot + Duration::minutes(20 * i64::try_from(i).expect("small"));
        tokio::spawn(async move {
            let mut conn = state.conn().await.expect("conn");
            sessions::book(&mut conn, &who, pack_id, at, Utc::now()).await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let booked = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(SessionsError::SlotTaken(_)))))
        .count();
    assert_eq!((booked, taken), (1, 1), "{results:?}");
}

#[derive(diesel::QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    waiting: i64,
}

/// A refund locks the pack, then its sessions. A change to one session must take the two in
/// the same order, or the two can wait on each other until PostgreSQL kills one of them
/// ("deadlock detected"). Here the refund's side holds the pack while a cancel runs: the cancel
/// must wait without having locked the session, which the refund's side then takes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_change_waits_for_a_refund_holding_the_pack_before_it_locks_the_session() {
    use diesel_async::AsyncConnection;

    let app = spawn_app().await;
    let pack = pack(&app).await;
    let mut refund = app.conn().await;
    let session = sessions::book(&mut refund, MENTEE, pack.id, in_days(2), Utc::now())
        .await
        .expect("booked");
    let (pack_id, session_id) = (pack.id, session.id);

    let mut watcher = app.conn().await;
    let db = app.state.db.clone();
    let cancel = refund
        .transaction::<_, diesel::result::Error, _>(async move |refund| {
            diesel::sql_query("SELECT id FROM session_packs WHERE id = $1 FOR UPDATE")
                .bind::<diesel::sql_types::Uuid, _>(pack_id)
                .execute(refund)
                .await?;
            let cancel = tokio::spawn(async move {
                let mut conn = db.get().await.expect("a connection");
                sessions::cancel(&mut conn, MENTEE, session_id, Utc::now()).await
            });
            // Until the cancel waits on a lock.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let Waiting { waiting } = diesel::sql_query(
                    "SELECT count(*) AS waiting FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .get_result(&mut watcher)
                .await?;
                if waiting > 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cancel never waited"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let taken =
                diesel::sql_query("SELECT id FROM sessions WHERE id = $1 FOR UPDATE NOWAIT")
                    .bind::<diesel::sql_types::Uuid, _>(session_id)
                    .execute(refund)
                    .await;
            assert!(
                taken.is_ok(),
                "the cancel locked the session before the pack: {taken:?}"
            );
            Ok(cancel)
        })
        .await
        .expect("the refund's side");
    // Once the refund's side committed, the cancel went on.
    let cancelled = cancel.await.expect("joined").expect("cancelled");
    assert_eq!(cancelled.status, SessionStatus::Cancelled);
}
