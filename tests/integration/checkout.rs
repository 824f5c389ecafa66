//! `POST /api/checkout`: authentication, the seat hold, the provider checkout, and the race for
//! the last seat.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::{Order, OrderStatus, SeatReservation, SeatStatus};
use huckleberry::schema::mentorship_products;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{TestApp, fixture, session_token, spawn_app};

async fn post_checkout(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app.http.post(app.url("/api/checkout")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn mock_stripe_session_creation(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(header("authorization", "Bearer sk_test_123"))
        .and(body_string_contains("mode=payment"))
        .and(body_string_contains("allow_promotion_codes=true"))
        .and(body_string_contains(
            "line_items[0][price_data][unit_amount]=20000",
        ))
        .and(body_string_contains(
            "line_items[0][price_data][currency]=usd",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("stripe/checkout_session_created.json"),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_holds_a_seat_and_returns_the_stripe_session_url() {
    let app = spawn_app().await;
    let product = app.seed_product(2).await;
    mock_stripe_session_creation(&app).await;
    let token = session_token("user_buyer", 60);
    let (status, body) = post_checkout(
        &app,
        Some(&token),
        json!({"product_id": product.id, "provider": "stripe"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["checkout_url"]
            .as_str()
            .expect("url")
            .starts_with("https://checkout.stripe.com/")
    );
    let order_id: Uuid = serde_json::from_value(body["order_id"].clone()).expect("order id");

    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.provider_checkout_id.as_deref(), Some("cs_test_a1"));
    let seat = app.seat(order_id).await;
    assert_eq!(seat.status, SeatStatus::Held);

    let requests = app.stripe.received_requests().await.expect("recorded");
    let create = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .expect("session created");
    let key = create
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok());
    assert_eq!(key, Some(format!("checkout-{order_id}").as_str()));
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&create.body)
        .into_owned()
        .collect();
    assert_eq!(form.get("metadata[order_id]"), Some(&order_id.to_string()));
    assert_eq!(
        form.get("metadata[product_id]"),
        Some(&product.id.to_string())
    );
    assert_eq!(
        form.get("metadata[user_id]").map(String::as_str),
        Some("user_buyer")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_without_a_valid_session_is_unauthorized() {
    let app = spawn_app().await;
    let product = app.seed_product(2).await;
    let body = json!({"product_id": product.id, "provider": "stripe"});
    // jsonwebtoken allows 60 s of clock skew.
    let expired = session_token("user_buyer", -600);
    let valid = session_token("user_buyer", 60);
    let (head, rest) = valid.rsplit_once('.').expect("jwt");
    let forged = format!("{head}.{}", rest.chars().rev().collect::<String>());
    for token in [
        None,
        Some("not-a-jwt"),
        Some(expired.as_str()),
        Some(forged.as_str()),
    ] {
        let (status, answer) = post_checkout(&app, token, body.clone()).await;
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert_eq!(answer["error"], "unauthorized");
    }
    assert_eq!(app.count("orders").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_refuses_unknown_and_inactive_products() {
    let app = spawn_app().await;
    let product = app.seed_product(2).await;
    let token = session_token("user_buyer", 60);
    let (status, answer) = post_checkout(
        &app,
        Some(&token),
        json!({"product_id": Uuid::new_v4(), "provider": "stripe"}),
    )
    .await;
    assert_eq!((status, answer["error"].clone()), (404, json!("not_found")));

    let mut conn = app.conn().await;
    diesel::update(mentorship_products::table)
        .set(mentorship_products::active.eq(false))
        .execute(&mut conn)
        .await
        .expect("deactivate");
    let (status, answer) = post_checkout(
        &app,
        Some(&token),
        json!({"product_id": product.id, "provider": "stripe"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (409, json!("product_inactive"))
    );
    let (status, answer) = post_checkout(
        &app,
        Some(&token),
        json!({"product_id": product.id, "provider": "bitcoin"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (422, json!("invalid_body")),
        "an unknown provider is refused by the JSON extractor"
    );
    assert_eq!(app.count("orders").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_buyers_racing_for_the_last_seat_get_one_checkout_and_nine_mentor_full() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    mock_stripe_session_creation(&app).await;
    let attempts = (0..10).map(|i| {
        let token = session_token(&format!("user_buyer_{i}"), 60);
        let body = json!({"product_id": product.id, "provider": "stripe"});
        let app = &app;
        async move { post_checkout(app, Some(&token), body).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let won = answers.iter().filter(|(s, _)| *s == 200).count();
    let full: Vec<_> = answers.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!((won, full.len()), (1, 9), "{answers:?}");
    assert!(full.iter().all(|(_, body)| body["error"] == "mentor_full"));
    assert_eq!(app.count("seat_reservations").await, 1);
    assert_eq!(app.count("orders").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_outage_at_checkout_releases_the_hold() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            fixture("stripe/error_resource_missing.json"),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
    let token = session_token("user_buyer", 60);
    let (status, answer) = post_checkout(
        &app,
        Some(&token),
        json!({"product_id": product.id, "provider": "stripe"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (503, json!("unavailable"))
    );
    let mut conn = app.conn().await;
    assert_eq!(
        SeatReservation::occupied(&mut conn, product.mentor_id)
            .await
            .expect("count"),
        0
    );
    let order: Order = huckleberry::schema::orders::table
        .select(Order::as_select())
        .first(&mut conn)
        .await
        .expect("order");
    assert_eq!(order.status, OrderStatus::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_session_whose_id_cannot_be_recorded_is_expired_at_stripe() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    mock_stripe_session_creation(&app).await;
    let session: Value =
        serde_json::from_str(&fixture("stripe/checkout_session_created.json")).expect("json");
    let mut expired = session.clone();
    expired["status"] = json!("expired");
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&session))
        .mount(&app.stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions/cs_test_a1/expire"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&expired))
        .expect(1)
        .mount(&app.stripe)
        .await;
    // The database refuses to record any checkout id.
    let mut conn = app.conn().await;
    diesel::sql_query(
        "CREATE FUNCTION refuse_checkout_id() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'no checkout ids today'; END $$",
    )
    .execute(&mut conn)
    .await
    .expect("function");
    diesel::sql_query(
        "CREATE TRIGGER refuse_checkout_id BEFORE UPDATE OF provider_checkout_id ON orders \
         FOR EACH ROW EXECUTE FUNCTION refuse_checkout_id()",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    let token = session_token("user_buyer", 60);
    let (status, _) = post_checkout(
        &app,
        Some(&token),
        json!({"product_id": product.id, "provider": "stripe"}),
    )
    .await;
    assert_eq!(status, 500);
    app.stripe.verify().await;
    assert_eq!(
        SeatReservation::occupied(&mut conn, product.mentor_id)
            .await
            .expect("count"),
        0,
        "the hold is released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_buyer_cannot_hold_two_seats_with_the_same_mentor() {
    let app = spawn_app().await;
    let product = app.seed_product(5).await;
    mock_stripe_session_creation(&app).await;
    let token = session_token("user_buyer", 60);
    let body = json!({"product_id": product.id, "provider": "stripe"});
    let (first, _) = post_checkout(&app, Some(&token), body.clone()).await;
    let (second, answer) = post_checkout(&app, Some(&token), body).await;
    assert_eq!((first, second), (200, 409));
    assert_eq!(answer["error"], "checkout_in_progress");
    assert_eq!(app.count("seat_reservations").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_who_gives_up_during_a_slow_stripe_call_still_leaves_a_recorded_checkout() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(
                    fixture("stripe/checkout_session_created.json"),
                    "application/json",
                )
                .set_delay(std::time::Duration::from_millis(1500)),
        )
        .mount(&app.stripe)
        .await;
    let token = session_token("user_buyer", 60);
    let gave_up = app
        .http
        .post(app.url("/api/checkout"))
        .bearer_auth(&token)
        .json(&json!({"product_id": product.id, "provider": "stripe"}))
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gave up first");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mut conn = app.conn().await;
    let order: Order = huckleberry::schema::orders::table
        .select(Order::as_select())
        .first(&mut conn)
        .await
        .expect("order");
    assert_eq!(order.status, OrderStatus::Pending);
    assert!(
        order.provider_checkout_id.is_some(),
        "the Stripe session the buyer can return to is recorded"
    );
}
