//! Nothing needs a long-lived process: a webhook reaches Inngest before it is answered, and
//! what could not be delivered, like the sweeps, is left to Inngest cron functions. No test
//! here starts the background relay (`spawn_app` never does), as on AWS Lambda.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::InboxEntry;
use huckleberry::relay::INLINE_BUDGET;
use huckleberry::schema::webhook_inbox;
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::util::{TestApp, forwarded, spawn_app, stripe_fixture};

const EVENT_ID: &str = "evt_test_completed_1";

fn completed_payload() -> String {
    stripe_fixture(
        "event_checkout_session_completed.json",
        Uuid::new_v4(),
        Uuid::new_v4(),
    )
}

/// A run of the cron function `id`, as its schedule starts it.
async fn cron(app: &TestApp, id: &str) -> Value {
    app.engine
        .run(id, Event::new("inngest/scheduled.timer", json!({})))
        .await
        .output::<Value>()
}

/// The inbox entry's delivery attempts and last error.
async fn attempts(app: &TestApp) -> (i32, Option<String>) {
    webhook_inbox::table
        .select((webhook_inbox::forward_attempts, webhook_inbox::last_error))
        .first(&mut app.conn().await)
        .await
        .expect("the stored webhook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_reaches_inngest_before_it_is_answered() {
    let app = spawn_app().await;
    let response = app.post_stripe(&completed_payload()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        forwarded(&app, EVENT_ID).len(),
        1,
        "the event API had the event when the answer came"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "received": true, "duplicate": false, "forwarded": true })
    );
    assert_eq!(attempts(&app).await, (1, None));
    assert_eq!(
        app.count("webhook_inbox WHERE forwarded_at IS NULL").await,
        0
    );
    assert_eq!(cron(&app, "relay-inbox").await["forwarded"], 0);
    assert_eq!(forwarded(&app, EVENT_ID).len(), 1, "delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_event_api_down_a_webhook_is_answered_and_delivered_later_by_the_cron_relay() {
    let app = spawn_app().await;
    app.events.set_down(true);
    let started = Instant::now();
    let response = app.post_stripe(&completed_payload()).await;
    assert_eq!(response.status(), 200, "stored, so acknowledged");
    assert!(
        started.elapsed() < INLINE_BUDGET + Duration::from_secs(2),
        "answered within the inline budget, not after the event API's retries: {:?}",
        started.elapsed()
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["forwarded"], false);
    assert!(app.events.events().is_empty());
    let (tried, error) = attempts(&app).await;
    assert_eq!(tried, 1, "the inline attempt counts");
    assert!(error.expect("the error is recorded").contains("503"));

    app.events.set_down(false);
    assert_eq!(
        cron(&app, "relay-inbox").await["forwarded"],
        0,
        "not due before its backoff"
    );
    diesel::update(webhook_inbox::table)
        .set(webhook_inbox::next_attempt_at.eq(diesel::dsl::now))
        .execute(&mut app.conn().await)
        .await
        .expect("make it due");
    assert_eq!(
        cron(&app, "relay-inbox").await,
        json!({ "forwarded": 1, "failed": 0 })
    );
    assert_eq!(cron(&app, "relay-inbox").await["forwarded"], 0);
    assert_eq!(forwarded(&app, EVENT_ID).len(), 1, "delivered once");
    assert_eq!(
        app.count("webhook_inbox WHERE forwarded_at IS NULL").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_and_the_sweeps_run_as_cron_functions_with_no_background_task() {
    let app = spawn_app().await;
    // The cron functions, as the app registers them with Inngest (in-band sync).
    let sync: Value = app
        .http
        .put(app.url("/api/inngest"))
        .header("x-inngest-sync-kind", "in_band")
        .json(&json!({ "url": app.url("/api/inngest") }))
        .send()
        .await
        .expect("sync")
        .json()
        .await
        .expect("json");
    let prefix = format!("{}-", sync["app_id"].as_str().expect("app_id"));
    let crons: BTreeSet<String> = sync["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter(|f| {
            f["triggers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t.get("cron").is_some()))
        })
        .map(|f| {
            let id = f["id"].as_str().expect("id");
            id.strip_prefix(&prefix).unwrap_or(id).to_owned()
        })
        .collect();
    assert_eq!(
        crons,
        BTreeSet::from(
            [
                "pack-expiration-check",
                "purge-oauth-states",
                "relay-inbox",
                "release-abandoned-checkouts"
            ]
            .map(String::from)
        )
    );

    // An event announced in a transaction (as a step or a dashboard route leaves one).
    let mut announced = Event::new(
        "session/cancelled",
        json!({ "sessionId": Uuid::new_v4().to_string() }),
    );
    announced.id = Some("session-cancelled-test".to_owned());
    InboxEntry::enqueue(&mut *app.conn().await, &announced)
        .await
        .expect("enqueue")
        .expect("stored");

    for id in &crons {
        let output = cron(&app, id).await;
        if id == "relay-inbox" {
            assert_eq!(output, json!({ "forwarded": 1, "failed": 0 }));
        }
    }
    assert_eq!(forwarded(&app, "session-cancelled-test").len(), 1);
}
