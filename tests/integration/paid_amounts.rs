//! Fulfilment checks what was paid: a capture or session for less than the price, in another
//! currency, or for another provider checkout is recorded as a mismatch and never fulfilled.

use huckleberry::models::{OrderStatus, PaymentMismatch, Provider, SeatStatus};
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{TestApp, spawn_app, stripe_fixture};

/// A pending PayPal order for the seeded product (200.00 USD) with PayPal order `PAYPAL-ORDER-1`.
async fn paypal_order(app: &TestApp) -> Uuid {
    let product = app.seed_product(2).await;
    let pending = app
        .pending_order(&product, "user_paypal", Provider::Paypal)
        .await;
    app.set_checkout_id(pending.order.id, "PAYPAL-ORDER-1")
        .await;
    pending.order.id
}

fn capture(order_id: Uuid, paypal_order_id: &str, amount: &str, currency: &str) -> Event<Value> {
    Event::new(
        "paypal/payment.capture.completed",
        json!({ "captureId": "CAP-1", "orderId": order_id, "paypalOrderId": paypal_order_id, "amount": amount, "currency": currency }),
    )
}

/// The capture fails for good naming the order, the order stays pending with its seat held,
/// nothing is paid or started, and one mismatch is recorded with `reason_part` in its reason.
async fn assert_refused(app: &TestApp, order_id: Uuid, event: Event<Value>, reason_part: &str) {
    let run = app
        .engine
        .run("process-paypal-capture", event.clone())
        .await;
    let message = &run.error().message;
    assert!(message.contains(&order_id.to_string()), "{message}");
    let failed = |op: &str| {
        run.ops(op)
            .iter()
            .filter(|s| s.name == "fulfil-order")
            .count()
    };
    assert_eq!(
        (failed("StepError"), failed("StepFailed")),
        (0, 1),
        "a mismatch is not retried"
    );
    // A second delivery of the same capture records nothing new.
    let _ = app.engine.run("process-paypal-capture", event).await;

    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(
        order.total_amount,
        "200.00".parse::<bigdecimal::BigDecimal>().expect("decimal")
    );
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Held);
    assert_eq!(app.count("payments").await, 0);
    assert!(
        app.events
            .events()
            .iter()
            .all(|e| e.name != "purchase/mentorship")
    );
    let mut conn = app.conn().await;
    let recorded = PaymentMismatch::of_order(&mut conn, order_id)
        .await
        .expect("mismatches");
    assert_eq!(recorded.len(), 1);
    assert!(
        recorded[0].reason.contains(reason_part),
        "{}",
        recorded[0].reason
    );
    assert_eq!(recorded[0].provider_payment_id, "CAP-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paypal_capture_for_less_than_the_price_is_recorded_and_not_fulfilled() {
    let app = spawn_app().await;
    let order_id = paypal_order(&app).await;
    let cheap = capture(order_id, "PAYPAL-ORDER-1", "1.00", "usd");
    assert_refused(&app, order_id, cheap, "priced 200").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paypal_capture_in_another_currency_is_recorded_and_not_fulfilled() {
    let app = spawn_app().await;
    let order_id = paypal_order(&app).await;
    let yen = capture(order_id, "PAYPAL-ORDER-1", "200", "jpy");
    assert_refused(&app, order_id, yen, "paid in jpy, priced in usd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paypal_capture_of_another_paypal_order_is_recorded_and_not_fulfilled() {
    let app = spawn_app().await;
    let order_id = paypal_order(&app).await;
    let other = capture(order_id, "PAYPAL-ORDER-CHEAP", "200.00", "usd");
    assert_refused(&app, order_id, other, "PAYPAL-ORDER-CHEAP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_paypal_capture_is_fulfilled_and_records_no_mismatch() {
    let app = spawn_app().await;
    let order_id = paypal_order(&app).await;
    let run = app
        .engine
        .run(
            "process-paypal-capture",
            capture(order_id, "PAYPAL-ORDER-1", "200.00", "USD"),
        )
        .await;
    run.output::<Value>();
    assert_eq!(app.order(order_id).await.status, OrderStatus::Paid);
    assert_eq!(app.count("payment_mismatches").await, 0);
}

/// A paid session of `session_id` for the order, its subtotal and total `minor` cents.
async fn stripe_run(app: &TestApp, checkout_id: &str, session_id: &str, minor: i64) -> Uuid {
    let product = app.seed_product(2).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let order_id = pending.order.id;
    app.set_checkout_id(order_id, checkout_id).await;
    let mut session: Value = serde_json::from_str(&stripe_fixture(
        "checkout_session_completed.json",
        order_id,
        product.id,
    ))
    .expect("fixture");
    session["id"] = json!(session_id);
    session["payment_intent"] = json!(format!("pi_{session_id}"));
    session["amount_subtotal"] = json!(minor);
    session["amount_total"] = json!(minor);
    session["total_details"]["amount_discount"] = json!(0);
    session["discounts"] = json!([]);
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{session_id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .mount(&app.stripe)
        .await;
    let event = Event::new(
        "stripe/checkout.session.completed",
        json!({ "sessionId": session_id, "orderId": order_id, "userId": "user_clerk_1", "productId": product.id }),
    );
    let run = app.engine.run("process-stripe-checkout", event).await;
    assert!(
        run.error().message.contains(&order_id.to_string()),
        "the failure names the order"
    );
    order_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_session_below_the_price_or_of_another_checkout_is_not_fulfilled() {
    let app = spawn_app().await;
    let underpaid = stripe_run(&app, "cs_test_a1", "cs_test_a1", 100).await;
    let elsewhere = stripe_run(&app, "cs_test_ours", "cs_test_other", 20000).await;
    let mut conn = app.conn().await;
    for (order_id, reason) in [
        (underpaid, "paid for 1.00 usd, priced 200"),
        (
            elsewhere,
            "paid checkout cs_test_other is not the order's (cs_test_ours)",
        ),
    ] {
        assert_eq!(app.order(order_id).await.status, OrderStatus::Pending);
        let recorded = PaymentMismatch::of_order(&mut conn, order_id)
            .await
            .expect("mismatches");
        assert_eq!(recorded.len(), 1, "{reason}");
        assert!(
            recorded[0].reason.contains(reason),
            "{}",
            recorded[0].reason
        );
    }
    assert_eq!(app.count("payments").await, 0);
}
