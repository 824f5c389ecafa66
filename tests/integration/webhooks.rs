//! Stripe webhooks: verification, the inbox, duplicates and an Inngest outage.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::relay::forward_due;
use huckleberry::schema::webhook_inbox;
use uuid::Uuid;

use crate::util::{STRIPE_WEBHOOK_SECRET, forwarded, spawn_app, stripe_fixture};

fn completed_payload() -> String {
    stripe_fixture(
        "event_checkout_session_completed.json",
        Uuid::new_v4(),
        Uuid::new_v4(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_webhook_is_stored_and_forwarded_once() {
    let app = spawn_app().await;
    let payload = completed_payload();
    for _ in 0..5 {
        assert_eq!(app.post_stripe(&payload).await.status(), 200);
    }
    let concurrent = (0..5).map(|_| app.post_stripe(&payload));
    for response in futures::future::join_all(concurrent).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.count("webhook_inbox").await, 1);
    forward_due(&app.state).await.expect("relay");
    forward_due(&app.state).await.expect("relay");
    assert_eq!(forwarded(&app, "evt_test_completed_1").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_stale_timestamp_and_malformed_body_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let payload = completed_payload();
    let wrong_key = stripe_webhook::Webhook::generate_test_header(&payload, "whsec_other", None);
    let stale_at = chrono::Utc::now().timestamp() - 301;
    let stale = stripe_webhook::Webhook::generate_test_header(
        &payload,
        STRIPE_WEBHOOK_SECRET,
        Some(stale_at),
    );
    let malformed = "{\"id\": \"evt_1\", \"object\": \"event\"";
    let malformed_sig =
        stripe_webhook::Webhook::generate_test_header(malformed, STRIPE_WEBHOOK_SECRET, None);
    let cases = [
        (
            payload.as_str(),
            wrong_key.as_str(),
            "the Stripe-Signature does not match",
        ),
        (
            payload.as_str(),
            stale.as_str(),
            "the Stripe-Signature timestamp is too old or too new",
        ),
        (
            malformed,
            malformed_sig.as_str(),
            "the event body is malformed",
        ),
        (
            payload.as_str(),
            "garbage",
            "the Stripe-Signature does not match",
        ),
    ];
    for (body, signature, message) in cases {
        let response = app.post_stripe_signed(body, signature).await;
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["message"], message);
    }
    let unsigned = app
        .http
        .post(app.url("/api/webhooks/stripe"))
        .body(payload)
        .send()
        .await
        .expect("answer");
    assert_eq!(unsigned.status(), 400);
    assert_eq!(app.count("webhook_inbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhandled_event_type_is_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let payload = stripe_fixture(
        "event_customer_created_unhandled.json",
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let response = app.post_stripe(&payload).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.expect("json")["ignored"],
        true
    );
    assert_eq!(app.count("webhook_inbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inngest_outage_delays_the_event_but_delivers_it_exactly_once() {
    let app = spawn_app().await;
    app.events.set_down(true);
    let payload = completed_payload();
    assert_eq!(
        app.post_stripe(&payload).await.status(),
        200,
        "Stripe is answered at once"
    );
    // The inline delivery failed and counts as the first attempt.
    let mut conn = app.conn().await;
    let (attempts, error): (i32, Option<String>) = webhook_inbox::table
        .select((webhook_inbox::forward_attempts, webhook_inbox::last_error))
        .first(&mut conn)
        .await
        .expect("row");
    assert_eq!(attempts, 1);
    assert!(error.expect("error recorded").contains("503"));

    let early = forward_due(&app.state).await.expect("relay");
    assert_eq!(
        (early.claimed, early.failed),
        (0, 0),
        "not due before its backoff"
    );
    app.events.set_down(false);
    diesel::update(webhook_inbox::table)
        .set(webhook_inbox::next_attempt_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await
        .expect("make due");
    assert_eq!(forward_due(&app.state).await.expect("relay").forwarded, 1);
    assert_eq!(forward_due(&app.state).await.expect("relay").forwarded, 0);
    assert_eq!(forwarded(&app, "evt_test_completed_1").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_event_that_does_not_parse_is_refused_only_when_we_handle_its_type() {
    let app = spawn_app().await;
    let envelope = |kind: &str| {
        serde_json::json!({
            "id": "evt_odd", "object": "event", "type": kind, "created": 1767268800,
            "livemode": false, "pending_webhooks": 1, "api_version": "2026-09-30.endive",
            "data": { "object": { "id": "x", "object": "customer" } }
        })
        .to_string()
    };
    let ignored = app.post_stripe(&envelope("customer.created")).await;
    assert_eq!(
        ignored.status(),
        200,
        "not ours: acknowledged so Stripe stops retrying"
    );
    let ours = app
        .post_stripe(&envelope("checkout.session.completed"))
        .await;
    assert_eq!(ours.status(), 400);
    assert_eq!(app.count("webhook_inbox").await, 0);
}
