//! Packs past their expiry, through the functions: the daily sweep (`pack-expiration-check`)
//! and the check of one pack (`handle-pack-expiration-check`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::contacts;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::{PackStatus, ReleaseReason, SeatStatus};
use huckleberry::schema::{session_packs, users};
use huckleberry::sessions;
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::onboarding::{emails_sent, purchase_of};
use crate::session_flows::{MENTEE, MENTEE_EMAIL, book, from_now, pack, paid_pack, relay, seat_of};
use crate::util::{TestApp, spawn_app};

/// Moves a pack's expiry to `at`.
async fn expire_at(app: &TestApp, pack_id: Uuid, at: DateTime<Utc>) {
    let mut conn = app.conn().await;
    diesel::update(session_packs::table.find(pack_id))
        .set(session_packs::expires_at.eq(at))
        .execute(&mut conn)
        .await
        .expect("expiry moved");
}

fn timer() -> Event<Value> {
    Event::new("inngest/scheduled.timer", json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_cron_twice_the_same_day_sends_each_check_once() {
    let app = spawn_app().await;
    let (product, f) = paid_pack(&app, 3).await;
    let second = purchase_of(&app, &product, "user_clerk_2").await;
    let _current = purchase_of(&app, &product, "user_clerk_3").await;
    for id in [f.pack_id, second.pack_id] {
        expire_at(&app, id, Utc::now() - Duration::days(1)).await;
    }
    let day = Utc::now().format("%Y-%m-%d");
    let mut expected: Vec<String> = [f.pack_id, second.pack_id]
        .iter()
        .map(|id| format!("pack-expiration-check-{id}-{day}"))
        .collect();
    expected.sort();

    for _ in 0..2 {
        let before = app.events.batches().len();
        let run = app.engine.run("pack-expiration-check", timer()).await;
        assert_eq!(run.output::<Value>()["checksSent"], json!(2));
        let mut sent: Vec<String> = app
            .events
            .batches()
            .into_iter()
            .skip(before)
            .flat_map(|b| b.ids)
            .collect();
        sent.sort();
        assert_eq!(
            sent, expected,
            "the same ids: Inngest keeps the first of each"
        );
    }

    let mut conn = app.conn().await;
    diesel::update(users::table.filter(users::clerk_id.eq("user_clerk_2")))
        .set(users::email.eq("bea@example.com"))
        .execute(&mut conn)
        .await
        .expect("an address");
    for id in [f.pack_id, second.pack_id] {
        let check = Event::new("pack/expiration-check", json!({ "packId": id }));
        let run = app.engine.run("handle-pack-expiration-check", check).await;
        assert_eq!(run.output::<Value>()["outcome"]["outcome"], "ended");
    }
    let run = app.engine.run("pack-expiration-check", timer()).await;
    assert_eq!(
        run.output::<Value>()["checksSent"],
        json!(0),
        "expired packs are not active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_packs_are_found_page_by_page() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let mut expired = Vec::new();
    for (n, buyer) in ["user_a", "user_b", "user_c"].into_iter().enumerate() {
        let f = purchase_of(&app, &product, buyer).await;
        if n < 2 {
            expire_at(&app, f.pack_id, Utc::now() - Duration::hours(1)).await;
            expired.push(f.pack_id);
        }
    }
    let (now, mut after, mut seen) = (Utc::now(), None, Vec::new());
    let mut conn = app.conn().await;
    loop {
        let page = huckleberry::expiry::expired_packs(&mut conn, now, after, 1)
            .await
            .expect("page");
        let Some(last) = page.last().copied() else {
            break;
        };
        assert_eq!(page.len(), 1);
        seen.push(last.id);
        after = Some(last);
    }
    seen.sort();
    expired.sort();
    assert_eq!(seen, expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_pack_is_released_once_however_often_it_is_checked() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    expire_at(&app, f.pack_id, Utc::now() - Duration::minutes(5)).await;
    let mut outcomes = Vec::new();
    for n in 0..2 {
        let check = Event::new("pack/expiration-check", json!({ "packId": f.pack_id }))
            .with_id(format!("check-{n}"));
        let run = app.engine.run("handle-pack-expiration-check", check).await;
        outcomes.push(run.output::<Value>()["outcome"].clone());
    }
    assert_eq!(outcomes[0]["newly_expired"], json!(true));
    assert_eq!(outcomes[1]["newly_expired"], json!(false));
    assert_eq!(outcomes[0]["seat_released"], json!(true));
    assert_eq!(pack(&app, f.pack_id).await.status, PackStatus::Expired);
    let seat = seat_of(&app, f.pack_id).await;
    assert_eq!(seat.release_reason, Some(ReleaseReason::PackExpired));
    let released: Vec<_> = relay(&app)
        .await
        .into_iter()
        .filter(|e| e.name == "seat/released")
        .collect();
    assert_eq!(released.len(), 1);

    let sent = emails_sent(&app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, format!("pack-expired-{}", f.pack_id));
    let text = sent[0].1["text"].as_str().expect("text");
    assert!(text.contains("4 unused sessions"), "{text}");
    let mut conn = app.conn().await;
    let user_id = pack(&app, f.pack_id).await.user_id;
    let grants = DashboardAccess::active_for_user(&mut conn, user_id).await;
    assert!(grants.expect("query").is_empty(), "access revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_with_a_session_after_its_expiry_is_released_only_after_that_session() {
    let app = spawn_app().await;
    let (_, f) = paid_pack(&app, 3).await;
    let session = book(&app, f.pack_id, from_now(Duration::days(2))).await;
    expire_at(&app, f.pack_id, Utc::now() - Duration::minutes(1)).await;
    let check = Event::new("pack/expiration-check", json!({ "packId": f.pack_id }));
    let run = app.engine.run("handle-pack-expiration-check", check).await;
    let output = run.output::<Value>();

    // First: expired, seat kept for the session; then a sleep until an hour after it, and
    // only then the release.
    assert_eq!(output["first"]["outcome"], "sessions_pending");
    assert_eq!(output["first"]["newly_expired"], json!(true));
    let recheck =
        (session.scheduled_at + Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    assert_eq!(
        run.sleeps(),
        vec![("wait-for-last-session".to_owned(), recheck)]
    );
    let names: Vec<&str> = run
        .steps
        .iter()
        .filter(|s| s.op == "StepRun" || s.op == "Sleep")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "check-pack",
            "wait-for-last-session",
            "check-pack-after-last-session",
            "revoke-dashboard-access",
            "send-pack-expired-email"
        ]
    );
    assert_eq!(output["outcome"]["seat_released"], json!(true));
    assert_eq!(seat_of(&app, f.pack_id).await.status, SeatStatus::Released);

    // An expired pack takes no new booking.
    let mut conn = app.conn().await;
    let tomorrow = from_now(Duration::days(1));
    let refused = sessions::book(&mut conn, MENTEE, f.pack_id, tomorrow, Utc::now()).await;
    assert!(
        matches!(refused, Err(sessions::SessionsError::PackExpired(_))),
        "{refused:?}"
    );
    let people = contacts::of_pack(&mut conn, f.pack_id)
        .await
        .expect("contacts");
    assert_eq!(
        people.mentee.email.as_deref(),
        Some(MENTEE_EMAIL),
        "the address came from Clerk and was kept"
    );
}
