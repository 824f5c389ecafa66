//! The abandoned-checkout sweep expires a pending order only once nothing can pay it: not
//! while its payment event waits to be processed, not when its provider says it was paid, and
//! an open Stripe session is expired at Stripe before its seat goes to someone else.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::{OrderStatus, Provider, SeatStatus};
use huckleberry::schema::orders;
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{TestApp, spawn_app, stripe_fixture};

/// A pending order whose hold ended two hours ago, with `checkout_id` recorded.
async fn ended_order(app: &TestApp, provider: Provider, checkout_id: &str) -> (Uuid, Uuid) {
    let product = app.seed_product(2).await;
    let pending = app.pending_order(&product, "user_clerk_1", provider).await;
    app.set_checkout_id(pending.order.id, checkout_id).await;
    diesel::update(orders::table.find(pending.order.id))
        .set(orders::checkout_expires_at.eq(chrono::Utc::now() - chrono::Duration::hours(2)))
        .execute(&mut app.conn().await)
        .await
        .expect("age the order");
    (pending.order.id, product.id)
}

async fn sweep(app: &TestApp) -> Value {
    app.engine
        .run(
            "release-abandoned-checkouts",
            Event::new("inngest/scheduled.timer", json!({})),
        )
        .await
        .output::<Value>()
}

/// Stripe's answer for the session `cs_test_a1` of `order_id`, in `status`.
async fn stripe_session(app: &TestApp, order_id: Uuid, product_id: Uuid, status: &str) {
    let mut session: Value = serde_json::from_str(&stripe_fixture(
        "checkout_session_completed.json",
        order_id,
        product_id,
    ))
    .expect("fixture");
    session["status"] = json!(status);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&session))
        .mount(&app.stripe)
        .await;
    session["status"] = json!("expired");
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions/cs_test_a1/expire"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&session))
        .mount(&app.stripe)
        .await;
}

async fn statuses(app: &TestApp, order_id: Uuid) -> (OrderStatus, SeatStatus) {
    (
        app.order(order_id).await.status,
        app.seat(order_id).await.status,
    )
}

async fn expire_calls(app: &TestApp) -> usize {
    app.stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/expire"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_payment_event_arrived_is_never_expired() {
    let app = spawn_app().await;
    let (order_id, product_id) = ended_order(&app, Provider::Stripe, "cs_test_a1").await;
    // The paid webhook is stored; its run is (say) retrying a database outage.
    let webhook = stripe_fixture(
        "event_checkout_session_completed.json",
        order_id,
        product_id,
    );
    assert_eq!(app.post_stripe(&webhook).await.status(), 200);
    let report = sweep(&app).await;
    assert_eq!(
        report,
        json!({ "released": 0, "paidWithoutEvent": [], "deferred": 0 })
    );
    assert_eq!(
        statuses(&app, order_id).await,
        (OrderStatus::Pending, SeatStatus::Held)
    );
    assert!(
        app.stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "no need to ask Stripe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_at_stripe_without_an_event_is_kept_and_reported() {
    let app = spawn_app().await;
    let (order_id, product_id) = ended_order(&app, Provider::Stripe, "cs_test_a1").await;
    stripe_session(&app, order_id, product_id, "complete").await;
    let report = sweep(&app).await;
    assert_eq!(
        report,
        json!({ "released": 0, "paidWithoutEvent": [order_id], "deferred": 0 })
    );
    assert_eq!(
        statuses(&app, order_id).await,
        (OrderStatus::Pending, SeatStatus::Held)
    );
    assert_eq!(expire_calls(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stripe_session_is_expired_at_stripe_before_the_seat_is_released() {
    let app = spawn_app().await;
    let (order_id, product_id) = ended_order(&app, Provider::Stripe, "cs_test_a1").await;
    stripe_session(&app, order_id, product_id, "open").await;
    let report = sweep(&app).await;
    assert_eq!(report["released"], 1);
    assert_eq!(expire_calls(&app).await, 1);
    assert_eq!(
        statuses(&app, order_id).await,
        (OrderStatus::Expired, SeatStatus::Released)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_outage_defers_the_release_to_a_later_sweep() {
    let app = spawn_app().await;
    let (order_id, product_id) = ended_order(&app, Provider::Stripe, "cs_test_a1").await;
    let down = Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&app.stripe)
        .await;
    let report = sweep(&app).await;
    assert_eq!(
        report,
        json!({ "released": 0, "paidWithoutEvent": [], "deferred": 1 })
    );
    assert_eq!(app.order(order_id).await.status, OrderStatus::Pending);
    drop(down);
    stripe_session(&app, order_id, product_id, "expired").await;
    assert_eq!(sweep(&app).await["released"], 1);
    assert_eq!(
        statuses(&app, order_id).await,
        (OrderStatus::Expired, SeatStatus::Released)
    );
}

async fn paypal_order(app: &TestApp, paypal_order_id: &str, status: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "A21-test-token", "token_type": "Bearer", "expires_in": 32400
        })))
        .mount(&app.paypal)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/checkout/orders/{paypal_order_id}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": paypal_order_id, "status": status })),
        )
        .mount(&app.paypal)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_paypal_order_is_kept_and_an_uncaptured_one_released() {
    let app = spawn_app().await;
    let (captured, _) = ended_order(&app, Provider::Paypal, "5O190127TN364715T").await;
    let (approved, _) = ended_order(&app, Provider::Paypal, "8AB12345CD678901E").await;
    paypal_order(&app, "5O190127TN364715T", "COMPLETED").await;
    // Approved but never captured: only our return route captures, never after the hold.
    paypal_order(&app, "8AB12345CD678901E", "APPROVED").await;
    let report = sweep(&app).await;
    assert_eq!(
        report,
        json!({ "released": 1, "paidWithoutEvent": [captured], "deferred": 0 })
    );
    assert_eq!(
        statuses(&app, captured).await,
        (OrderStatus::Pending, SeatStatus::Held)
    );
    assert_eq!(
        statuses(&app, approved).await,
        (OrderStatus::Expired, SeatStatus::Released)
    );
}
