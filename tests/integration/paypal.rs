//! PayPal: checkout, webhook verification through PayPal's API, and purchase and refund through
//! the same fulfilment and refund code as Stripe.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::{Order, OrderStatus, Payment, PaymentStatus, Provider, SeatStatus};
use huckleberry::relay::forward_due;
use huckleberry::schema::payments;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{basic_auth, body_partial_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{PAYPAL_WEBHOOK_ID, TestApp, forwarded, session_token, spawn_app};

async fn mock_oauth(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .and(basic_auth("paypal-client", "paypal-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "A21-test-token", "token_type": "Bearer", "expires_in": 32400
        })))
        .mount(&app.paypal)
        .await;
}

async fn mock_verification(app: &TestApp, transmission_id: &str, status: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/notifications/verify-webhook-signature"))
        .and(header("authorization", "Bearer A21-test-token"))
        .and(body_partial_json(
            json!({ "webhook_id": PAYPAL_WEBHOOK_ID, "transmission_id": transmission_id }),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "verification_status": status })),
        )
        .mount(&app.paypal)
        .await;
}

async fn post_paypal(app: &TestApp, transmission_id: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/api/webhooks/paypal"))
        .header("paypal-auth-algo", "SHA256withRSA")
        .header(
            "paypal-cert-url",
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
        )
        .header("paypal-transmission-id", transmission_id)
        .header("paypal-transmission-sig", "c2lnbmF0dXJl")
        .header("paypal-transmission-time", "2026-11-22T10:00:00Z")
        .json(body)
        .send()
        .await
        .expect("answer")
}

fn capture_completed(order_id: Uuid) -> Value {
    json!({
        "id": "WH-CAPTURE-1",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource_type": "capture",
        "resource": {
            "id": "CAP-1",
            "status": "COMPLETED",
            "amount": { "currency_code": "USD", "value": "200.00" },
            "custom_id": order_id,
            "supplementary_data": { "related_ids": { "order_id": "PAYPAL-ORDER-1" } }
        }
    })
}

fn capture_refunded(total: &str) -> Value {
    json!({
        "id": format!("WH-REFUND-{total}"),
        "event_type": "PAYMENT.CAPTURE.REFUNDED",
        "resource_type": "refund",
        "resource": {
            "id": format!("REF-{total}"),
            "status": "COMPLETED",
            "amount": { "currency_code": "USD", "value": total },
            "seller_payable_breakdown": { "total_refunded_amount": { "currency_code": "USD", "value": total } },
            "links": [
                { "rel": "self", "href": "https://api.paypal.com/v2/payments/refunds/REF-1" },
                { "rel": "up", "href": "https://api.paypal.com/v2/payments/captures/CAP-1" }
            ]
        }
    })
}

async fn deliver(
    app: &TestApp,
    transmission_id: &str,
    body: &Value,
    function: &str,
) -> inngest_sdk::testing::RunOutcome {
    mock_verification(app, transmission_id, "SUCCESS").await;
    assert_eq!(post_paypal(app, transmission_id, body).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    let event_id = body["id"].as_str().expect("id");
    let event = forwarded(app, event_id).remove(0);
    app.engine.run(function, event).await
}

/// An order for a two-session pack, paid with PayPal capture `CAP-1` and fulfilled.
async fn paid_through_paypal(app: &TestApp) -> Uuid {
    mock_oauth(app).await;
    let product = app.seed_product(2).await;
    let pending = app
        .pending_order(&product, "user_paypal", Provider::Paypal)
        .await;
    let order_id = pending.order.id;
    app.set_checkout_id(order_id, "PAYPAL-ORDER-1").await;
    deliver(
        app,
        "T-1",
        &capture_completed(order_id),
        "process-paypal-capture",
    )
    .await
    .output::<Value>();
    order_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paypal_purchase_and_full_refund_use_the_shared_fulfilment() {
    let app = spawn_app().await;
    let order_id = paid_through_paypal(&app).await;
    let mut conn = app.conn().await;
    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::Paid);
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    assert_eq!(
        (payment.provider, payment.provider_payment_id.as_str()),
        (Provider::Paypal, "CAP-1")
    );
    let seat = app.seat(order_id).await;
    assert_eq!(seat.status, SeatStatus::Active);
    let purchase = app
        .events
        .events()
        .into_iter()
        .find(|e| e.name == "purchase/mentorship")
        .expect("onboarding event");
    assert_eq!(purchase.data["provider"], "paypal");

    deliver(
        &app,
        "T-2",
        &capture_refunded("80.00"),
        "process-paypal-refund",
    )
    .await
    .output::<Value>();
    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::PartiallyRefunded);

    let outcome: Value = deliver(
        &app,
        "T-3",
        &capture_refunded("200.00"),
        "process-paypal-refund",
    )
    .await
    .output();
    assert_eq!(outcome["full"], true);
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    assert_eq!(payment.status, PaymentStatus::Refunded);
    let seat = app.seat(order_id).await;
    assert_eq!(seat.status, SeatStatus::Released);
}

/// PayPal takes a capture's money back: a refund object of its own, linked to the capture.
fn capture_reversed(id: &str, value: &str) -> Value {
    json!({
        "id": format!("WH-REVERSED-{id}"),
        "event_type": "PAYMENT.CAPTURE.REVERSED",
        "resource_type": "refund",
        "summary": format!("A {value} USD capture payment was reversed"),
        "resource": {
            "id": id,
            "status": "COMPLETED",
            "amount": { "currency_code": "USD", "value": value },
            "links": [
                { "rel": "self", "href": format!("https://api.paypal.com/v2/payments/refunds/{id}") },
                { "rel": "up", "href": "https://api.paypal.com/v2/payments/captures/CAP-1" }
            ]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversals_of_a_paypal_capture_add_up_and_take_the_pack_back_once_all_is_back() {
    let app = spawn_app().await;
    let order_id = paid_through_paypal(&app).await;

    // Two reversals of the one capture, 80.00 and then the other 120.00: the first leaves the
    // pack, the second takes it back.
    let outcome: Value = deliver(
        &app,
        "T-2",
        &capture_reversed("REV-1", "80.00"),
        "process-paypal-reversal",
    )
    .await
    .output();
    assert_eq!(outcome["full"], json!(false));
    assert_eq!(
        app.order(order_id).await.status,
        OrderStatus::PartiallyRefunded
    );
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Active);
    let outcome: Value = deliver(
        &app,
        "T-3",
        &capture_reversed("REV-2", "120.00"),
        "process-paypal-reversal",
    )
    .await
    .output();
    assert_eq!(
        (outcome["full"].clone(), outcome["seat_released"].clone()),
        (json!(true), json!(true))
    );
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut app.conn().await)
        .await
        .expect("payment");
    assert_eq!(
        (payment.status, payment.disputed_amount.to_string()),
        (PaymentStatus::ChargedBack, "200.00".to_owned())
    );
    assert_eq!(app.order(order_id).await.status, OrderStatus::ChargedBack);
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Released);

    // A reversal without the link to its capture cannot be applied: acknowledged, not
    // forwarded (and logged as an error).
    let mut unlinked = capture_reversed("REV-3", "10.00");
    unlinked["resource"]["links"] = json!([]);
    mock_verification(&app, "T-4", "SUCCESS").await;
    assert_eq!(post_paypal(&app, "T-4", &unlinked).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    assert!(forwarded(&app, "WH-REVERSED-REV-3").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_paypal_capture_that_is_denied_ends_the_order_and_releases_its_hold() {
    let app = spawn_app().await;
    mock_oauth(&app).await;
    let product = app.seed_product(1).await;
    let pending = app
        .pending_order(&product, "user_paypal", Provider::Paypal)
        .await;
    let order_id = pending.order.id;
    let denied = json!({
        "id": "WH-DENIED-1",
        "event_type": "PAYMENT.CAPTURE.DENIED",
        "resource_type": "capture",
        "resource": {
            "id": "CAP-9",
            "status": "DENIED",
            "amount": { "currency_code": "USD", "value": "200.00" },
            "custom_id": order_id,
            "supplementary_data": { "related_ids": { "order_id": "PAYPAL-ORDER-9" } }
        }
    });
    let run = deliver(&app, "T-9", &denied, "expire-paypal-checkout").await;
    assert_eq!(run.output::<Value>()["released"], true);

    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::Expired);
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Released);
    let again = app
        .try_checkout(&product, "user_paypal", Provider::Paypal)
        .await;
    assert!(again.is_ok(), "the buyer can check out again: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paypal_webhook_that_does_not_verify_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    mock_oauth(&app).await;
    mock_verification(&app, "T-FORGED", "FAILURE").await;
    let body = capture_completed(Uuid::new_v4());
    let response = post_paypal(&app, "T-FORGED", &body).await;
    assert_eq!(response.status(), 400);
    let missing_headers = app
        .http
        .post(app.url("/api/webhooks/paypal"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(missing_headers.status(), 400);
    let malformed = app
        .http
        .post(app.url("/api/webhooks/paypal"))
        .body("{oops")
        .send()
        .await
        .expect("answer");
    assert_eq!(malformed.status(), 400);
    assert_eq!(app.count("webhook_inbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_paypal_cannot_verify_the_webhook_is_answered_503_so_paypal_retries() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.paypal)
        .await;
    let response = post_paypal(&app, "T-1", &capture_completed(Uuid::new_v4())).await;
    assert_eq!(response.status(), 503);
    assert_eq!(app.count("webhook_inbox").await, 0);
}

async fn mock_verification_answer(app: &TestApp, status: u16) {
    Mock::given(method("POST"))
        .and(path("/v1/notifications/verify-webhook-signature"))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_json(json!({ "name": "VALIDATION_ERROR", "message": "Invalid request" })),
        )
        .mount(&app.paypal)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_paypal_refuses_to_verify_is_answered_400_so_it_is_not_sent_again() {
    let app = spawn_app().await;
    mock_oauth(&app).await;
    mock_verification_answer(&app, 400).await;
    let response = post_paypal(&app, "T-FORGED", &capture_completed(Uuid::new_v4())).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "bad_request");
    assert_eq!(app.count("webhook_inbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_that_fails_on_paypal_side_is_answered_503_and_rate_limits_too() {
    let app = spawn_app().await;
    mock_oauth(&app).await;
    mock_verification_answer(&app, 500).await;
    let response = post_paypal(&app, "T-1", &capture_completed(Uuid::new_v4())).await;
    assert_eq!(response.status(), 503);
    app.paypal.reset().await;
    mock_oauth(&app).await;
    mock_verification_answer(&app, 429).await;
    let response = post_paypal(&app, "T-1", &capture_completed(Uuid::new_v4())).await;
    assert_eq!(response.status(), 503);
    assert_eq!(app.count("webhook_inbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paypal_checkout_returns_the_approval_link() {
    let app = spawn_app().await;
    mock_oauth(&app).await;
    let product = app.seed_product(1).await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders"))
        .and(header("authorization", "Bearer A21-test-token"))
        .and(body_partial_json(json!({ "intent": "CAPTURE" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "PAYPAL-ORDER-1",
            "status": "PAYER_ACTION_REQUIRED",
            "links": [
                { "rel": "self", "href": "https://api.paypal.com/v2/checkout/orders/PAYPAL-ORDER-1" },
                { "rel": "payer-action", "href": "https://www.paypal.com/checkoutnow?token=PAYPAL-ORDER-1" }
            ]
        })))
        .mount(&app.paypal)
        .await;
    let response = app
        .http
        .post(app.url("/api/checkout"))
        .bearer_auth(session_token("user_paypal", 60))
        .json(&json!({ "product_id": product.id, "provider": "paypal" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["checkout_url"],
        "https://www.paypal.com/checkoutnow?token=PAYPAL-ORDER-1"
    );
    let requests = app.paypal.received_requests().await.expect("recorded");
    let create = requests
        .iter()
        .find(|r| r.url.path() == "/v2/checkout/orders")
        .expect("order created");
    let sent: Value = serde_json::from_slice(&create.body).expect("json body");
    let order_id = body["order_id"].as_str().expect("order id");
    assert_eq!(sent["purchase_units"][0]["custom_id"], order_id);
    assert_eq!(
        sent["purchase_units"][0]["amount"],
        json!({ "currency_code": "USD", "value": "200.00" })
    );
    assert_eq!(
        create
            .headers
            .get("paypal-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(format!("create-{order_id}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_from_paypal_captures_only_our_live_orders() {
    let app = spawn_app().await;
    mock_oauth(&app).await;
    let product = app.seed_product(2).await;
    let live = app
        .pending_order(&product, "user_paypal", Provider::Paypal)
        .await;
    let stale = app
        .pending_order(&product, "user_late", Provider::Paypal)
        .await;
    let mut conn = app.conn().await;
    Order::set_checkout_id(&mut conn, live.order.id, "5O190127TN364715T")
        .await
        .expect("set");
    Order::set_checkout_id(&mut conn, stale.order.id, "8AB12345CD678901E")
        .await
        .expect("set");
    diesel::update(huckleberry::schema::orders::table.find(stale.order.id))
        .set(
            huckleberry::schema::orders::checkout_expires_at
                .eq(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .execute(&mut conn)
        .await
        .expect("expire");
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders/5O190127TN364715T/capture"))
        .and(header("paypal-request-id", "capture-5O190127TN364715T"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": "5O190127TN364715T", "status": "COMPLETED" })),
        )
        .expect(1)
        .mount(&app.paypal)
        .await;
    let location = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .http
                .get(app.url(&format!("/api/checkout/paypal/return?{query}")))
                .send()
                .await
                .expect("answer");
            assert_eq!(response.status(), 303);
            response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        }
    };
    assert_eq!(
        location("token=5O190127TN364715T&PayerID=P1").await,
        "http://localhost:3000/checkout/success?provider=paypal"
    );
    assert_eq!(
        location("token=8AB12345CD678901E").await,
        "http://localhost:3000/checkout/error?reason=checkout_expired"
    );
    assert_eq!(
        location("token=NOTOURS1").await,
        "http://localhost:3000/checkout/error?reason=unknown_order"
    );
    assert_eq!(
        location("token=X%2F..%2F..%2Fpayments%2Fcaptures%2FCAP-1%2Frefund%3F").await,
        "http://localhost:3000/checkout/error?reason=unknown_order",
        "a token is never put in a URL path unchecked"
    );
    app.paypal.verify().await;
    let captures = app
        .paypal
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path().ends_with("/capture"))
        .count();
    assert_eq!(captures, 1);
}
