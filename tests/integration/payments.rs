//! Purchases, refunds and seats, end to end: webhook → inbox → relay → Inngest event →
//! function (through the SDK's executor) → PostgreSQL.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::{
    OrderStatus, PackStatus, Payment, PaymentStatus, Provider, SeatStatus, SessionPack,
};
use huckleberry::payments::PaymentsError;
use huckleberry::relay::forward_due;
use huckleberry::schema::{orders, payments, seat_reservations, session_packs};
use inngest_sdk::Event;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{TestApp, forwarded, spawn_app, stripe_fixture};

fn dec(s: &str) -> BigDecimal {
    s.parse().expect("decimal")
}

async fn mock_session_retrieval(
    app: &TestApp,
    fixture: &str,
    session_id: &str,
    order_id: Uuid,
    product_id: Uuid,
) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{session_id}")))
        .and(query_param("expand[0]", "discounts.promotion_code"))
        .and(header("authorization", "Bearer sk_test_123"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            stripe_fixture(fixture, order_id, product_id),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
}

/// Webhook in, relayed to the fake Inngest, then the forwarded event run by the executor.
pub(crate) async fn purchase_through_stripe(
    app: &TestApp,
    order_id: Uuid,
    product_id: Uuid,
) -> inngest_sdk::testing::RunOutcome {
    app.set_checkout_id(order_id, "cs_test_a1").await;
    mock_session_retrieval(
        app,
        "checkout_session_completed.json",
        "cs_test_a1",
        order_id,
        product_id,
    )
    .await;
    let payload = stripe_fixture(
        "event_checkout_session_completed.json",
        order_id,
        product_id,
    );
    assert_eq!(app.post_stripe(&payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay pass");
    let events = forwarded(app, "evt_test_completed_1");
    assert_eq!(events.len(), 1, "the webhook reached Inngest once");
    app.engine
        .run("process-stripe-checkout", events[0].clone())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_purchase_with_promotion_code_creates_order_payment_pack_and_seat() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let order_id = pending.order.id;

    let run = purchase_through_stripe(&app, order_id, product.id).await;
    let fulfilment: Value = run.output();

    let mut conn = app.conn().await;
    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.total_amount, dec("150.00"));
    assert_eq!(order.original_amount, Some(dec("200.00")));
    assert_eq!(order.discount_amount, Some(dec("50.00")));
    assert_eq!(order.discount_code.as_deref(), Some("SPRING25"));
    assert!(order.paid_at.is_some());

    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    assert_eq!(payment.provider_payment_id, "pi_test_1");
    assert_eq!(
        (payment.amount.clone(), payment.status),
        (dec("150.00"), PaymentStatus::Completed)
    );

    let pack = SessionPack::by_payment(&mut conn, payment.id)
        .await
        .expect("pack");
    assert_eq!(
        (pack.total_sessions, pack.remaining_sessions, pack.status),
        (4, 4, PackStatus::Active)
    );
    let days = (pack.expires_at - order.paid_at.expect("paid")).num_days();
    assert_eq!(days, 90, "the pack lasts the product's validity");

    let seat = app.seat(order_id).await;
    assert_eq!(
        (seat.status, seat.session_pack_id),
        (SeatStatus::Active, Some(pack.id))
    );
    assert_eq!(
        seat.id,
        pending_seat_id(&app, order_id).await,
        "the held seat became the active one"
    );

    let purchases: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == "purchase/mentorship")
        .collect();
    assert_eq!(purchases.len(), 1);
    assert_eq!(
        purchases[0].id.as_deref(),
        Some(format!("purchase-mentorship-{order_id}").as_str())
    );
    assert_eq!(
        purchases[0].data,
        json!({ "orderId": order_id, "clerkId": "user_clerk_1", "packId": pack.id, "provider": "stripe" })
    );
    assert_eq!(fulfilment["pack_id"], json!(pack.id));
}

async fn pending_seat_id(app: &TestApp, order_id: Uuid) -> Uuid {
    let mut conn = app.conn().await;
    seat_reservations::table
        .filter(seat_reservations::order_id.eq(order_id))
        .select(seat_reservations::id)
        .first(&mut conn)
        .await
        .expect("seat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_finished_run_changes_nothing_and_sends_nothing_new() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let first = purchase_through_stripe(&app, pending.order.id, product.id).await;
    let event = forwarded(&app, "evt_test_completed_1").remove(0);

    for _ in 0..2 {
        let replay = app
            .engine
            .run("process-stripe-checkout", event.clone())
            .await;
        assert_eq!(replay.output::<Value>(), first.output::<Value>());
    }
    assert_eq!(
        (
            app.count("orders").await,
            app.count("payments").await,
            app.count("session_packs").await,
            app.count("seat_reservations").await
        ),
        (1, 1, 1, 1)
    );
    let ids: std::collections::HashSet<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == "purchase/mentorship")
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every send carries the same event id, which Inngest deduplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_payment_is_recorded_completes_on_retry() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    // As if a first attempt died after writing the payment but before the pack.
    let mut conn = app.conn().await;
    Payment::record(
        &mut conn,
        pending.order.id,
        Provider::Stripe,
        "pi_test_1",
        &dec("150.00"),
        "usd",
    )
    .await
    .expect("payment");
    purchase_through_stripe(&app, pending.order.id, product.id)
        .await
        .output::<Value>();
    assert_eq!(
        (
            app.count("payments").await,
            app.count("session_packs").await
        ),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_for_an_unknown_order_is_retried_then_fails_naming_it() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let missing = Uuid::new_v4();
    mock_session_retrieval(
        &app,
        "checkout_session_completed.json",
        "cs_test_a1",
        missing,
        product.id,
    )
    .await;
    let event = Event::new(
        "stripe/checkout.session.completed",
        json!({ "sessionId": "cs_test_a1", "orderId": missing, "userId": "user_clerk_1", "productId": product.id }),
    );
    let run = app.engine.run("process-stripe-checkout", event).await;
    assert_eq!(run.error().message, format!("order {missing} not found"));
    assert_eq!(run.ops("StepError").len(), 12, "retried before failing");
    assert_eq!(app.count("payments").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_buyers_racing_for_the_last_seat_never_oversell() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let attempts = (0..10).map(|i| {
        let state = app.state.clone();
        let product_id = product.id;
        tokio::spawn(async move {
            let mut conn = state.db.get().await.expect("conn");
            let expires = chrono::Utc::now() + chrono::Duration::minutes(35);
            huckleberry::payments::checkout::start_checkout(
                &mut conn,
                &format!("buyer_{i}"),
                product_id,
                Provider::Stripe,
                expires,
            )
            .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(PaymentsError::NoFreeSeat))))
        .count();
    assert_eq!((won, full), (1, 9));
    assert_eq!(app.count("seat_reservations").await, 1);
    assert_eq!(
        app.count("orders").await,
        1,
        "a losing checkout leaves no order behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_checkout_releases_its_hold() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let blocked = app
        .try_checkout(&product, "user_clerk_2", Provider::Stripe)
        .await;
    assert!(matches!(blocked, Err(PaymentsError::NoFreeSeat)));

    let payload = stripe_fixture(
        "event_checkout_session_expired.json",
        pending.order.id,
        product.id,
    );
    assert_eq!(app.post_stripe(&payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    let event = forwarded(&app, "evt_test_expired_1").remove(0);
    let run = app.engine.run("expire-stripe-checkout", event).await;
    assert_eq!(run.output::<Value>()["released"], true);

    assert_checkout_ended(&app, &product, pending.order.id, "user_clerk_2").await;
}

/// The order expired, its seat hold released, and `buyer` can check out with the mentor.
async fn assert_checkout_ended(
    app: &TestApp,
    product: &huckleberry::models::Product,
    order_id: Uuid,
    buyer: &str,
) {
    let order = app.order(order_id).await;
    assert_eq!(order.status, OrderStatus::Expired);
    let seat = app.seat(order_id).await;
    assert_eq!(seat.status, SeatStatus::Released);
    let next = app.try_checkout(product, buyer, Provider::Stripe).await;
    assert!(next.is_ok(), "{buyer} can check out again: {next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_payment_that_fails_ends_the_order_and_releases_its_hold() {
    let app = spawn_app().await;
    let product = app.seed_product(1).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    // The session completed with a bank debit still to settle (unpaid), which then failed.
    let completed = stripe_fixture(
        "event_checkout_session_completed.json",
        pending.order.id,
        product.id,
    );
    let mut failed: Value = serde_json::from_str(&completed).expect("json");
    failed["id"] = json!("evt_test_async_failed_1");
    failed["type"] = json!("checkout.session.async_payment_failed");
    failed["data"]["object"]["payment_status"] = json!("unpaid");
    let unpaid = completed.replace(
        "\"payment_status\": \"paid\"",
        "\"payment_status\": \"unpaid\"",
    );
    assert_eq!(app.post_stripe(&unpaid).await.status(), 200);
    assert_eq!(app.post_stripe(&failed.to_string()).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    let event = forwarded(&app, "evt_test_async_failed_1").remove(0);
    assert_eq!(event.name, "stripe/checkout.session.expired");
    let run = app.engine.run("expire-stripe-checkout", event).await;
    assert_eq!(run.output::<Value>()["released"], true);

    assert_checkout_ended(&app, &product, pending.order.id, "user_clerk_1").await;
}

pub(crate) async fn refund(
    app: &TestApp,
    fixture: &str,
    event_id: &str,
    order_id: Uuid,
    product_id: Uuid,
) -> Value {
    let payload = stripe_fixture(fixture, order_id, product_id);
    assert_eq!(app.post_stripe(&payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    let event = forwarded(app, event_id).remove(0);
    app.engine
        .run("process-stripe-refund", event)
        .await
        .output()
}

/// A pack bought through Stripe, with the dashboard access onboarding opens: (order,
/// product, pack).
pub(crate) async fn bought_with_access(app: &TestApp) -> (Uuid, Uuid, Uuid) {
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let fulfilment: Value = purchase_through_stripe(app, pending.order.id, product.id)
        .await
        .output();
    let pack_id: Uuid = serde_json::from_value(fulfilment["pack_id"].clone()).expect("pack id");
    let mut conn = app.conn().await;
    let pack = SessionPack::find(&mut conn, pack_id)
        .await
        .expect("query")
        .expect("pack");
    DashboardAccess::grant(
        &mut conn,
        pack.user_id,
        pack.mentor_id,
        pack.id,
        pack.expires_at,
    )
    .await
    .expect("grant");
    (pending.order.id, product.id, pack_id)
}

/// Clerk is told, `times` times, that the buyer's dashboard is closed.
pub(crate) async fn expect_access_revoked(app: &TestApp, times: u64) {
    Mock::given(method("PATCH"))
        .and(path("/v1/users/user_clerk_1/metadata"))
        .and(wiremock::matchers::body_partial_json(
            json!({ "public_metadata": { "dashboard": { "access": false } } }),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(crate::util::fixture("clerk/user.json"), "application/json"),
        )
        .expect(times)
        .mount(&app.clerk)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refund_refunds_the_pack_and_releases_the_seat() {
    let app = spawn_app().await;
    let (order_id, product_id, _) = bought_with_access(&app).await;
    expect_access_revoked(&app, 1).await;

    let outcome = refund(
        &app,
        "event_charge_refunded_full.json",
        "evt_test_refund_full_1",
        order_id,
        product_id,
    )
    .await;
    assert_eq!(
        (outcome["full"].clone(), outcome["seat_released"].clone()),
        (json!(true), json!(true))
    );

    let mut conn = app.conn().await;
    let order = app.order(order_id).await;
    assert_eq!(
        (order.status, order.refunded_amount),
        (OrderStatus::Refunded, dec("150.00"))
    );
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut conn)
        .await
        .expect("payment");
    assert_eq!(payment.status, PaymentStatus::Refunded);
    let pack: SessionPack = session_packs::table
        .select(SessionPack::as_select())
        .first(&mut conn)
        .await
        .expect("pack");
    assert_eq!(
        (pack.status, pack.remaining_sessions),
        (PackStatus::Refunded, 0)
    );
    let seat = app.seat(order_id).await;
    assert_eq!(seat.status, SeatStatus::Released);
    assert!(
        DashboardAccess::active_for_user(&mut conn, pack.user_id)
            .await
            .expect("query")
            .is_empty(),
        "the refund revoked dashboard access"
    );
    app.clerk.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_refund_records_the_amount_and_keeps_the_seat() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    purchase_through_stripe(&app, pending.order.id, product.id)
        .await
        .output::<Value>();

    let outcome = refund(
        &app,
        "event_charge_refunded_partial.json",
        "evt_test_refund_partial_1",
        pending.order.id,
        product.id,
    )
    .await;
    assert_eq!(outcome["full"], json!(false));
    let mut conn = app.conn().await;
    let order = app.order(pending.order.id).await;
    assert_eq!(
        (order.status, order.refunded_amount),
        (OrderStatus::PartiallyRefunded, dec("50.00"))
    );
    let status: String = orders::table
        .select(orders::status)
        .first::<OrderStatus>(&mut conn)
        .await
        .expect("s")
        .to_string();
    assert_eq!(status, "partially_refunded");
    let seat = app.seat(pending.order.id).await;
    assert_eq!(seat.status, SeatStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_in_another_currency_fails_for_good_and_changes_nothing() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    purchase_through_stripe(&app, pending.order.id, product.id)
        .await
        .output::<Value>();
    let payload = stripe_fixture(
        "event_charge_refunded_full.json",
        pending.order.id,
        product.id,
    )
    .replace(r#""currency": "usd""#, r#""currency": "eur""#);
    assert_eq!(app.post_stripe(&payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    let event = forwarded(&app, "evt_test_refund_full_1").remove(0);
    let run = app.engine.run("process-stripe-refund", event).await;
    assert!(
        run.error().message.contains("refunded in eur"),
        "{:?}",
        run.error()
    );
    assert_eq!(run.ops("StepError").len(), 0, "not retried");
    assert_eq!(app.order(pending.order.id).await.status, OrderStatus::Paid);
    assert_eq!(app.seat(pending.order.id).await.status, SeatStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_for_an_unknown_payment_fails_naming_the_provider_id() {
    let app = spawn_app().await;
    let event = Event::new(
        "stripe/charge.refunded",
        json!({ "chargeId": "ch_x", "paymentIntentId": "pi_unknown", "amount": 1000, "amountRefunded": 1000, "currency": "usd" }),
    );
    let run = app.engine.run("process-stripe-refund", event).await;
    assert_eq!(run.error().message, "no stripe payment with id pi_unknown");
    assert_eq!(
        run.ops("StepError").len(),
        12,
        "retried for about two hours"
    );
    assert_eq!(
        run.ops("StepFailed").len(),
        1,
        "then the last attempt fails for good"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_checkouts_are_expired_by_the_sweep() {
    let app = spawn_app().await;
    let product = app.seed_product(2).await;
    let abandoned = app
        .pending_order(&product, "user_gone", Provider::Paypal)
        .await;
    let live = app
        .pending_order(&product, "user_paying", Provider::Paypal)
        .await;
    let mut conn = app.conn().await;
    diesel::update(orders::table.find(abandoned.order.id))
        .set(orders::checkout_expires_at.eq(chrono::Utc::now() - chrono::Duration::hours(2)))
        .execute(&mut conn)
        .await
        .expect("age the order");
    let run = app
        .engine
        .run(
            "release-abandoned-checkouts",
            Event::new("inngest/scheduled.timer", json!({})),
        )
        .await;
    assert_eq!(
        run.output::<Value>(),
        json!({ "released": 1, "paidWithoutEvent": [], "deferred": 0 })
    );
    let gone = app.order(abandoned.order.id).await;
    let paying = app.order(live.order.id).await;
    assert_eq!(
        (gone.status, paying.status),
        (OrderStatus::Expired, OrderStatus::Pending)
    );
    let seat = app.seat(abandoned.order.id).await;
    assert_eq!(seat.status, SeatStatus::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_time_out_stuck_statements() {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let app = spawn_app().await;
    let mut conn = app.conn().await;
    let setting: Setting = diesel::sql_query("SHOW statement_timeout")
        .get_result(&mut conn)
        .await
        .expect("show");
    assert_eq!(setting.statement_timeout, "30s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_session_waits_for_its_delayed_payment() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let unpaid = stripe_fixture(
        "checkout_session_completed.json",
        pending.order.id,
        product.id,
    )
    .replace(
        "\"payment_status\": \"paid\"",
        "\"payment_status\": \"unpaid\"",
    );
    assert!(unpaid.contains("\"payment_status\": \"unpaid\""));
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(unpaid, "application/json"))
        .mount(&app.stripe)
        .await;
    let event = Event::new(
        "stripe/checkout.session.completed",
        json!({ "sessionId": "cs_test_a1", "orderId": pending.order.id, "userId": "user_clerk_1", "productId": product.id }),
    );
    let run = app.engine.run("process-stripe-checkout", event).await;
    assert_eq!(run.output::<Value>()["status"], "awaiting_payment");
    assert_eq!(app.count("payments").await, 0);
    assert!(app.events.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_a_promotion_code_made_free_is_fulfilled_for_nothing() {
    let app = spawn_app().await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let order_id = pending.order.id;
    app.set_checkout_id(order_id, "cs_test_a1").await;
    // 100% off: Stripe completes the session without a payment, and so without a PaymentIntent.
    let free = stripe_fixture("checkout_session_completed.json", order_id, product.id)
        .replace(
            r#""payment_status": "paid""#,
            r#""payment_status": "no_payment_required""#,
        )
        .replace(
            r#""payment_intent": "pi_test_1""#,
            r#""payment_intent": null"#,
        )
        .replace(r#""amount_total": 15000"#, r#""amount_total": 0"#)
        .replace(r#""amount_discount": 5000"#, r#""amount_discount": 20000"#);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(free, "application/json"))
        .mount(&app.stripe)
        .await;
    let payload = stripe_fixture(
        "event_checkout_session_completed.json",
        order_id,
        product.id,
    );
    assert_eq!(app.post_stripe(&payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay pass");
    let event = forwarded(&app, "evt_test_completed_1").remove(0);
    let fulfilment: Value = app
        .engine
        .run("process-stripe-checkout", event)
        .await
        .output();
    assert!(fulfilment["pack_id"].is_string(), "{fulfilment}");

    let order = app.order(order_id).await;
    assert_eq!(
        (order.status, order.total_amount, order.discount_amount),
        (OrderStatus::Paid, dec("0.00"), Some(dec("200.00")))
    );
    let payment: Payment = payments::table
        .select(Payment::as_select())
        .first(&mut app.conn().await)
        .await
        .expect("payment");
    assert_eq!(
        (payment.provider_payment_id.as_str(), payment.amount),
        ("cs_test_a1", dec("0.00"))
    );
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Active);
}
