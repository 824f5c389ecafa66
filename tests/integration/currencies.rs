//! Currencies in their own decimals: a yen price is charged in yen, a dinar price to the fils,
//! through checkout to the Stripe and PayPal fakes, and back through payment and refund.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::{Order, OrderStatus, Payment, PaymentStatus, Product, Provider};
use huckleberry::schema::{mentorship_products, payments};
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{TestApp, fixture, session_token, spawn_app, stripe_fixture};

fn dec(s: &str) -> BigDecimal {
    s.parse().expect("decimal")
}

/// A product of the seeded mentor, priced `price` in `currency`.
pub(crate) async fn priced(app: &TestApp, price: &str, currency: &str) -> Product {
    let product = app.seed_product(3).await;
    let mut conn = app.conn().await;
    diesel::update(mentorship_products::table.find(product.id))
        .set((
            mentorship_products::price.eq(dec(price)),
            mentorship_products::currency.eq(currency),
        ))
        .returning(Product::as_returning())
        .get_result(&mut conn)
        .await
        .expect("priced")
}

async fn start_checkout(app: &TestApp, product: &Product, provider: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/api/checkout"))
        .bearer_auth(session_token("user_buyer", 60))
        .json(&json!({ "product_id": product.id, "provider": provider }))
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The form fields of the Checkout Session Stripe was asked to create.
async fn stripe_session_request(app: &TestApp) -> String {
    let requests = app.stripe.received_requests().await.expect("recorded");
    let create = requests
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/checkout/sessions")
        .expect("a session was created");
    String::from_utf8(create.body.clone()).expect("form body")
}

async fn mock_stripe_creation(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("stripe/checkout_session_created.json"),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
}

async fn mock_paypal(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "A21-test-token", "token_type": "Bearer", "expires_in": 32400
        })))
        .mount(&app.paypal)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "PAYPAL-ORDER-1",
            "status": "PAYER_ACTION_REQUIRED",
            "links": [{ "rel": "payer-action", "href": "https://www.paypal.com/checkoutnow?token=PAYPAL-ORDER-1" }]
        })))
        .mount(&app.paypal)
        .await;
}

/// The `amount` of the PayPal order that was created.
async fn paypal_amount(app: &TestApp) -> Value {
    let requests = app.paypal.received_requests().await.expect("recorded");
    let create = requests
        .iter()
        .find(|r| r.url.path() == "/v2/checkout/orders")
        .expect("an order was created");
    let sent: Value = serde_json::from_slice(&create.body).expect("json body");
    sent["purchase_units"][0]["amount"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yen_price_reaches_stripe_in_whole_yen() {
    let app = spawn_app().await;
    let product = priced(&app, "5000", "jpy").await;
    mock_stripe_creation(&app).await;
    let (status, body) = start_checkout(&app, &product, "stripe").await;
    assert_eq!(status, 200, "{body}");
    let form = stripe_session_request(&app).await;
    assert!(
        form.contains("line_items[0][price_data][unit_amount]=5000&"),
        "{form}"
    );
    assert!(form.contains("line_items[0][price_data][currency]=jpy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dinar_price_reaches_stripe_in_fils_and_one_stripe_cannot_charge_is_refused() {
    let app = spawn_app().await;
    let product = priced(&app, "12.340", "kwd").await;
    mock_stripe_creation(&app).await;
    let (status, body) = start_checkout(&app, &product, "stripe").await;
    assert_eq!(status, 200, "{body}");
    let form = stripe_session_request(&app).await;
    assert!(
        form.contains("line_items[0][price_data][unit_amount]=12340&"),
        "{form}"
    );

    // Stripe charges three-decimal currencies in steps of ten fils: 12.345 is refused, not
    // rounded, and the buyer's hold is released at once.
    let exact = priced(&app, "12.345", "kwd").await;
    let (status, _) = start_checkout(&app, &exact, "stripe").await;
    assert_eq!(status, 500);
    let sessions = app
        .stripe
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(sessions, 1, "nothing was sent to Stripe for 12.345 KWD");
    let mut conn = app.conn().await;
    let statuses: Vec<OrderStatus> = huckleberry::schema::orders::table
        .filter(huckleberry::schema::orders::product_id.eq(exact.id))
        .select(huckleberry::schema::orders::status)
        .load(&mut conn)
        .await
        .expect("orders");
    assert_eq!(statuses, vec![OrderStatus::Expired]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paypal_gets_yen_without_decimals_and_dinars_with_three() {
    let app = spawn_app().await;
    mock_paypal(&app).await;
    let yen = priced(&app, "5000", "jpy").await;
    let (status, body) = start_checkout(&app, &yen, "paypal").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        paypal_amount(&app).await,
        json!({ "currency_code": "JPY", "value": "5000" })
    );

    let app = spawn_app().await;
    mock_paypal(&app).await;
    let dinar = priced(&app, "12.345", "kwd").await;
    let (status, body) = start_checkout(&app, &dinar, "paypal").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        paypal_amount(&app).await,
        json!({ "currency_code": "KWD", "value": "12.345" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_an_amount_finer_than_its_currency() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let mut conn = app.conn().await;
    let stored = diesel::update(mentorship_products::table.find(product.id))
        .set((
            mentorship_products::price.eq(dec("5000.50")),
            mentorship_products::currency.eq("jpy"),
        ))
        .execute(&mut conn)
        .await;
    assert!(stored.is_err(), "half a yen is not an amount");
}

/// A paid Stripe session for `order_id` in `currency`, amounts in Stripe's minor units.
fn paid_session(order_id: Uuid, product_id: Uuid, currency: &str, minor: i64) -> String {
    let mut session: Value = serde_json::from_str(&stripe_fixture(
        "checkout_session_completed.json",
        order_id,
        product_id,
    ))
    .expect("fixture json");
    session["currency"] = json!(currency);
    session["amount_subtotal"] = json!(minor);
    session["amount_total"] = json!(minor);
    session["total_details"]["amount_discount"] = json!(0);
    session["discounts"] = json!([]);
    session.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yen_purchase_through_stripe_is_paid_and_refunded_in_yen() {
    let app = spawn_app().await;
    let product = priced(&app, "5000", "jpy").await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let order_id = pending.order.id;
    let mut conn = app.conn().await;
    Order::set_checkout_id(&mut conn, order_id, "cs_test_a1")
        .await
        .expect("checkout id");
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            paid_session(order_id, product.id, "jpy", 5000),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
    let event = Event::new(
        "stripe/checkout.session.completed",
        json!({ "sessionId": "cs_test_a1", "orderId": order_id, "userId": "user_clerk_1", "productId": product.id }),
    );
    app.engine
        .run("process-stripe-checkout", event)
        .await
        .output::<Value>();
    let order = app.order(order_id).await;
    assert_eq!(
        (order.status, order.total_amount, order.currency.as_str()),
        (OrderStatus::Paid, dec("5000"), "jpy")
    );

    let refund = Event::new(
        "stripe/charge.refunded",
        json!({ "chargeId": "ch_test_1", "paymentIntentId": "pi_test_1", "amount": 5000, "amountRefunded": 5000, "currency": "jpy" }),
    );
    let outcome: Value = app
        .engine
        .run("process-stripe-refund", refund)
        .await
        .output();
    assert_eq!(outcome["full"], true, "5000 of 5000 yen is a full refund");
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    assert_eq!(
        (payment.amount, payment.refunded_amount, payment.status),
        (dec("5000"), dec("5000"), PaymentStatus::Refunded)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dinar_purchase_through_paypal_is_paid_and_refunded_to_the_fils() {
    let app = spawn_app().await;
    let product = priced(&app, "12.345", "kwd").await;
    let pending = app
        .pending_order(&product, "user_paypal", Provider::Paypal)
        .await;
    let order_id = pending.order.id;
    let mut conn = app.conn().await;
    Order::set_checkout_id(&mut conn, order_id, "PAYPAL-ORDER-1")
        .await
        .expect("checkout id");
    let capture = Event::new(
        "paypal/payment.capture.completed",
        json!({ "captureId": "CAP-1", "orderId": order_id, "paypalOrderId": "PAYPAL-ORDER-1", "amount": "12.345", "currency": "kwd" }),
    );
    app.engine
        .run("process-paypal-capture", capture)
        .await
        .output::<Value>();
    let order = app.order(order_id).await;
    assert_eq!(
        (order.status, order.total_amount),
        (OrderStatus::Paid, dec("12.345"))
    );

    let partial = Event::new(
        "paypal/payment.capture.refunded",
        json!({ "captureId": "CAP-1", "refundId": "REF-1", "totalRefunded": "12.344", "currency": "kwd" }),
    );
    let outcome: Value = app
        .engine
        .run("process-paypal-refund", partial)
        .await
        .output();
    assert_eq!(outcome["full"], false, "one fils short of the payment");
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    assert_eq!(
        (payment.refunded_amount, payment.status),
        (dec("12.344"), PaymentStatus::PartiallyRefunded)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_finer_than_its_currency_fails_without_rounding() {
    let app = spawn_app().await;
    let refund = Event::new(
        "paypal/payment.capture.refunded",
        json!({ "captureId": "CAP-1", "refundId": "REF-1", "totalRefunded": "100.5", "currency": "jpy" }),
    );
    let run = app.engine.run("process-paypal-refund", refund).await;
    let message = &run.error().message;
    assert!(message.contains("more than 0 decimals"), "{message}");
}
