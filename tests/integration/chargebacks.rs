//! Chargebacks: a dispute Stripe closed as lost takes the pack back as a refund does, end to
//! end: signed webhook → inbox → relay → `stripe/charge.dispute.lost` →
//! `process-stripe-dispute` → PostgreSQL.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::{
    OrderStatus, PackStatus, Payment, PaymentStatus, SeatStatus, SessionPack,
};
use huckleberry::relay::forward_due;
use huckleberry::schema::{chargebacks, dashboard_access, payments};
use serde_json::{Value, json};

use crate::payments::{bought_with_access, expect_access_revoked, refund};
use crate::util::{TestApp, forwarded, spawn_app, stripe_fixture};

const LOST: &str = "event_charge_dispute_closed_lost.json";

fn dec(s: &str) -> BigDecimal {
    s.parse().expect("decimal")
}

/// Posts a signed dispute event and returns what the relay forwarded for it.
async fn post_dispute(app: &TestApp, payload: &str) -> Vec<inngest_sdk::Event<Value>> {
    assert_eq!(app.post_stripe(payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay");
    let id: Value = serde_json::from_str(payload).expect("json");
    forwarded(app, id["id"].as_str().expect("an id"))
}

/// The payment's chargebacks: provider id and amount.
async fn chargebacks(app: &TestApp) -> Vec<(String, BigDecimal)> {
    chargebacks::table
        .select((chargebacks::provider_chargeback_id, chargebacks::amount))
        .order(chargebacks::created_at)
        .load(&mut app.conn().await)
        .await
        .expect("chargebacks")
}

async fn payment(app: &TestApp) -> Payment {
    payments::table
        .select(Payment::as_select())
        .first(&mut app.conn().await)
        .await
        .expect("payment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_dispute_takes_the_pack_back_as_a_full_refund_does() {
    let app = spawn_app().await;
    let (order_id, product_id, pack_id) = bought_with_access(&app).await;
    // Once per run: the second run below writes the same metadata again.
    expect_access_revoked(&app, 2).await;

    let mut events = post_dispute(&app, &stripe_fixture(LOST, order_id, product_id)).await;
    assert_eq!(events.len(), 1);
    let event = events.remove(0);
    assert_eq!(event.name, "stripe/charge.dispute.lost");
    assert_eq!(
        event.data,
        json!({"disputeId": "dp_test_1", "chargeId": "ch_test_1", "paymentIntentId": "pi_test_1", "amount": 15000, "currency": "usd"})
    );
    let run = app
        .engine
        .run("process-stripe-dispute", event.clone())
        .await;
    let outcome: Value = run.output();
    assert_eq!(
        (outcome["full"].clone(), outcome["seat_released"].clone()),
        (json!(true), json!(true))
    );

    let payment = payment(&app).await;
    assert_eq!(
        (
            payment.status,
            payment.disputed_amount,
            payment.refunded_amount
        ),
        (PaymentStatus::ChargedBack, dec("150.00"), dec("0"))
    );
    assert_eq!(
        chargebacks(&app).await,
        [("dp_test_1".to_owned(), dec("150.00"))]
    );
    let order = app.order(order_id).await;
    assert_eq!(
        (order.status, order.refunded_amount),
        (OrderStatus::ChargedBack, dec("0"))
    );
    let mut conn = app.conn().await;
    let pack = SessionPack::find(&mut conn, pack_id)
        .await
        .expect("query")
        .expect("pack");
    assert_eq!(
        (pack.status, pack.remaining_sessions),
        (PackStatus::Refunded, 0)
    );
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Released);
    assert!(
        DashboardAccess::active_for_user(&mut conn, pack.user_id)
            .await
            .expect("query")
            .is_empty(),
        "the chargeback revoked dashboard access"
    );
    let reason: Option<String> = dashboard_access::table
        .select(dashboard_access::revoke_reason)
        .first(&mut conn)
        .await
        .expect("access row");
    assert_eq!(reason.as_deref(), Some("charged_back"));

    // The event runs again (an operator replays it from the dashboard): nothing changes twice.
    let again: Value = app
        .engine
        .run("process-stripe-dispute", event)
        .await
        .output();
    assert_eq!(again["full"], json!(true));
    assert_eq!(self::payment(&app).await.disputed_amount, dec("150.00"));
    assert_eq!(chargebacks(&app).await.len(), 1);
    app.clerk.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_won_or_still_open_is_acknowledged_and_changes_nothing() {
    let app = spawn_app().await;
    let (order_id, product_id, _) = bought_with_access(&app).await;
    for status in ["won", "under_review", "warning_closed"] {
        let payload = stripe_fixture(LOST, order_id, product_id)
            .replace(r#""status": "lost""#, &format!(r#""status": "{status}""#))
            .replace(
                "evt_test_dispute_lost_1",
                &format!("evt_test_dispute_{status}"),
            );
        assert!(post_dispute(&app, &payload).await.is_empty(), "{status}");
    }
    assert_eq!(payment(&app).await.status, PaymentStatus::Completed);
    assert_eq!(app.order(order_id).await.status, OrderStatus::Paid);
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_chargeback_keeps_the_pack_until_a_refund_takes_back_the_rest() {
    let app = spawn_app().await;
    let (order_id, product_id, _) = bought_with_access(&app).await;
    expect_access_revoked(&app, 1).await;

    // The buyer disputed 100.00 of 150.00, and the academy lost.
    let payload = stripe_fixture(LOST, order_id, product_id)
        .replace(r#""amount": 15000"#, r#""amount": 10000"#);
    let event = post_dispute(&app, &payload).await.remove(0);
    let outcome: Value = app
        .engine
        .run("process-stripe-dispute", event)
        .await
        .output();
    assert_eq!(outcome["full"], json!(false));
    // Money is partly back and the pack stands: as after a partial refund.
    assert_eq!(
        app.order(order_id).await.status,
        OrderStatus::PartiallyRefunded
    );
    assert_eq!(
        (
            payment(&app).await.status,
            payment(&app).await.disputed_amount
        ),
        (PaymentStatus::PartiallyRefunded, dec("100.00"))
    );
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Active);

    // The academy refunds the remaining 50.00: now everything paid is back.
    let outcome = refund(
        &app,
        "event_charge_refunded_partial.json",
        "evt_test_refund_partial_1",
        order_id,
        product_id,
    )
    .await;
    assert_eq!(
        (outcome["full"].clone(), outcome["seat_released"].clone()),
        (json!(true), json!(true))
    );
    let payment = payment(&app).await;
    assert_eq!(
        (
            payment.status,
            payment.refunded_amount,
            payment.disputed_amount
        ),
        (PaymentStatus::ChargedBack, dec("50.00"), dec("100.00"))
    );
    assert_eq!(app.order(order_id).await.status, OrderStatus::ChargedBack);
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Released);
    app.clerk.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chargebacks_beyond_the_payment_or_in_another_currency_fail_for_good() {
    let app = spawn_app().await;
    let (order_id, product_id, _) = bought_with_access(&app).await;
    expect_access_revoked(&app, 1).await;
    let first = post_dispute(&app, &stripe_fixture(LOST, order_id, product_id))
        .await
        .remove(0);
    app.engine
        .run("process-stripe-dispute", first.clone())
        .await
        .output::<Value>();

    // Another 150.00 taken back from a payment of 150.00 that is already all back.
    let mut beyond = first.clone();
    beyond.data["disputeId"] = json!("dp_test_2");
    let run = app.engine.run("process-stripe-dispute", beyond).await;
    assert!(
        run.error()
            .message
            .contains("chargebacks took back 300.00, more than the payment of 150.00"),
        "{:?}",
        run.error()
    );
    assert_eq!(run.ops("StepError").len(), 0, "not retried");

    let mut euros = first;
    euros.data["disputeId"] = json!("dp_test_3");
    euros.data["currency"] = json!("eur");
    let run = app.engine.run("process-stripe-dispute", euros).await;
    assert!(
        run.error().message.contains("disputed in eur"),
        "{:?}",
        run.error()
    );
    assert_eq!(run.ops("StepError").len(), 0, "not retried");
    // Neither was recorded.
    assert_eq!(
        chargebacks(&app).await,
        [("dp_test_1".to_owned(), dec("150.00"))]
    );
    assert_eq!(payment(&app).await.disputed_amount, dec("150.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_for_an_unknown_payment_is_retried_then_fails_naming_it() {
    let app = spawn_app().await;
    let event = inngest_sdk::Event::new(
        "stripe/charge.dispute.lost",
        json!({ "disputeId": "dp_x", "chargeId": "ch_x", "paymentIntentId": "pi_unknown", "amount": 1000, "currency": "usd" }),
    );
    let run = app.engine.run("process-stripe-dispute", event).await;
    assert_eq!(run.error().message, "no stripe payment with id pi_unknown");
    assert_eq!(
        run.ops("StepError").len(),
        12,
        "retried: the payment's own event may still be on its way"
    );
}

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Reverted {
    #[diesel(sql_type = diesel::sql_types::Text)]
    payment_status: String,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    payment_refunded: BigDecimal,
    #[diesel(sql_type = diesel::sql_types::Text)]
    order_status: String,
    #[diesel(sql_type = diesel::sql_types::Numeric)]
    order_refunded: BigDecimal,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    revoke_reason: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverting_the_chargebacks_migration_counts_them_as_refunds() {
    let app = spawn_app().await;
    let (order_id, product_id, _) = bought_with_access(&app).await;
    expect_access_revoked(&app, 1).await;
    let event = post_dispute(&app, &stripe_fixture(LOST, order_id, product_id))
        .await
        .remove(0);
    app.engine
        .run("process-stripe-dispute", event)
        .await
        .output::<Value>();

    let mut harness = diesel_async::AsyncMigrationHarness::new(app.conn().await);
    crate::databases::revert_through(&mut harness, "20261207000003");
    let mut conn = harness.into_inner();
    let reverted: Reverted = diesel::sql_query(
        "SELECT p.status AS payment_status, p.refunded_amount AS payment_refunded, \
         o.status AS order_status, o.refunded_amount AS order_refunded, a.revoke_reason \
         FROM payments p JOIN orders o ON o.id = p.order_id \
         JOIN dashboard_access a ON true",
    )
    .get_result(&mut conn)
    .await
    .expect("the rows");
    assert_eq!(
        reverted,
        Reverted {
            payment_status: "refunded".into(),
            payment_refunded: dec("150.00"),
            order_status: "refunded".into(),
            order_refunded: dec("150.00"),
            revoke_reason: Some("refunded".into()),
        }
    );
}
