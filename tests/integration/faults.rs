//! Fault injection against real PostgreSQL: the database going away mid-run, a step's response
//! lost after its side effects, the Inngest event API down across a restart, two instances on
//! one database, and providers that hang. Each test names what happens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use huckleberry::config::{AppConfig, RelayConfig};
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::discord::DiscordConnection;
use huckleberry::models::email_log::EmailLogEntry;
use huckleberry::models::{OrderStatus, Provider, SeatStatus};
use huckleberry::relay::forward_due;
use inngest_sdk::testing::RunOutcome;
use inngest_sdk::{Classify, Event, Retry};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{any, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::onboarding::{
    emails_sent, f_user, mock_clerk_metadata, mock_clerk_user, mock_resend, purchase,
    purchase_event,
};
use crate::util::instance::Instance;
use crate::util::proxy::DbProxy;
use crate::util::{TestApp, fixture, forwarded, spawn_app, stripe_fixture};

/// Orders, payments, packs and seats.
async fn purchase_rows(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.count("orders").await,
        app.count("payments").await,
        app.count("session_packs").await,
        app.count("seat_reservations").await,
    )
}

/// A pending Stripe order whose `checkout.session.completed` went through the inbox and the
/// relay: returns the order and the event Inngest would run `process-stripe-checkout` with.
async fn paid_stripe_checkout(app: &TestApp) -> (Uuid, Event<Value>) {
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let order_id = pending.order.id;
    app.set_checkout_id(order_id, "cs_test_a1").await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .and(query_param("expand[0]", "discounts.promotion_code"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            stripe_fixture("checkout_session_completed.json", order_id, product.id),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
    let payload = stripe_fixture(
        "event_checkout_session_completed.json",
        order_id,
        product.id,
    );
    assert_eq!(app.post_stripe(&payload).await.status(), 200);
    forward_due(&app.state).await.expect("relay pass");
    let mut events = forwarded(app, "evt_test_completed_1");
    assert_eq!(events.len(), 1, "the webhook reached Inngest once");
    (order_id, events.remove(0))
}

/// How often `step` failed retriably, and whether it failed for good.
fn failures(run: &RunOutcome, step: &str) -> (usize, usize) {
    let of = |op: &str| run.ops(op).iter().filter(|s| s.name == step).count();
    (of("StepError"), of("StepFailed"))
}

/// The events named `name` the fake event API accepted, and how many distinct ids they had.
fn sent(app: &TestApp, name: &str) -> (usize, usize) {
    let events: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == name)
        .collect();
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id.clone()).collect();
    (events.len(), ids.len())
}

/// Polls `done` every 20 ms until it holds, failing the test after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// 1. The database goes away mid-run.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_mid_fulfilment_fails_the_step_retriably_writes_nothing_and_the_run_completes_when_it_is_back()
 {
    let app = spawn_app().await;
    let (order_id, event) = paid_stripe_checkout(&app).await;
    let proxy = DbProxy::start(app.database.url()).await;
    let mut options = app.instance_options();
    options.database_url = proxy.url(app.database.url());
    options.relay = false;
    let instance = app.start_instance(options).await;
    // The order is marked paid and the payment inserted by then: the pack's insert never
    // reaches the server, and the connection carrying the transaction dies.
    proxy.cut_when_sent(r#"INSERT INTO "session_packs""#);

    let run = instance
        .engine
        .run("process-stripe-checkout", event)
        .with_retry_pause(Duration::from_millis(100))
        .with_max_attempts(30);
    // While the run retries: once the database has also refused a reconnection, look at what
    // the failed attempt left (through the app's own pool, which the cut does not touch), then
    // bring the database back.
    let outage = async {
        eventually(Duration::from_secs(20), "the outage", || async {
            proxy.is_down() && proxy.connections().0 >= 1
        })
        .await;
        let rows = purchase_rows(&app).await;
        let order = app.order(order_id).await.status;
        let seat = app.seat(order_id).await.status;
        proxy.restore();
        (rows, order, seat)
    };
    let (run, (during, order_during, seat_during)) = tokio::join!(run.execute(), outage);

    assert_eq!(
        (during, order_during, seat_during),
        ((1, 0, 0, 1), OrderStatus::Pending, SeatStatus::Held),
        "the failed attempt left nothing half-written"
    );
    let (retried, failed) = failures(&run, "fulfil-order");
    assert!(retried >= 2, "cut mid-transaction, then refused: {retried}");
    assert_eq!(failed, 0, "a database outage is never a final failure");
    let fulfilment: Value = run.output();
    assert_eq!(fulfilment["order_id"], json!(order_id));
    assert_eq!(purchase_rows(&app).await, (1, 1, 1, 1));
    assert_eq!(app.order(order_id).await.status, OrderStatus::Paid);
    assert_eq!(app.seat(order_id).await.status, SeatStatus::Active);
    assert_eq!(sent(&app, "purchase/mentorship"), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_during_a_database_outage_gets_the_503_envelope_at_once_and_is_stored_when_the_database_is_back()
 {
    let app = spawn_app().await;
    let proxy = DbProxy::start(app.database.url()).await;
    let mut options = app.instance_options();
    options.database_url = proxy.url(app.database.url());
    options.relay = false;
    let instance = app.start_instance(options).await;
    let post = |payload: String| {
        let signature = stripe_webhook::Webhook::generate_test_header(
            &payload,
            crate::util::STRIPE_WEBHOOK_SECRET,
            None,
        );
        app.http
            .post(instance.url("/api/webhooks/stripe"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(payload)
            .send()
    };
    let webhook = |i: u32| {
        stripe_fixture(
            "event_checkout_session_completed.json",
            Uuid::new_v4(),
            Uuid::new_v4(),
        )
        .replace("evt_test_completed_1", &format!("evt_outage_{i}"))
    };
    // A first delivery fills the instance's pool, so the outage also breaks live connections.
    assert_eq!(post(webhook(0)).await.expect("answer").status(), 200);

    // The connection dies under the insert, then the database refuses new ones.
    proxy.cut_when_sent(r#"INSERT INTO "webhook_inbox""#);
    for i in 1..=2 {
        let started = Instant::now();
        let response = post(webhook(i)).await.expect("an answer, not a hang");
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 503, "delivery {i}");
        let body: Value = response.json().await.expect("the JSON envelope");
        assert_eq!(
            body,
            json!({ "error": "unavailable", "message": "service unavailable" }),
            "no internals in the answer"
        );
        assert!(elapsed < Duration::from_secs(5), "answered in {elapsed:?}");
    }
    assert!(
        proxy.connections().0 >= 1,
        "the database refused connections"
    );

    proxy.restore();
    assert_eq!(post(webhook(1)).await.expect("answer").status(), 200);
    assert_eq!(post(webhook(2)).await.expect("answer").status(), 200);
    assert_eq!(app.count("webhook_inbox").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_accepts_connections_but_never_answers_gets_a_503_within_the_connect_timeout()
 {
    let app = spawn_app().await;
    let proxy = DbProxy::start(app.database.url()).await;
    let mut options = app.instance_options();
    options.database_url = proxy.url(app.database.url());
    options.relay = false;
    let instance = app.start_instance(options).await;
    let post = async |id: &str| {
        let payload = completed_webhook(id);
        post_stripe_to(&app, instance.url("/api/webhooks/stripe"), &payload).await
    };
    assert_eq!(post("evt_silent_0").await, 200);

    proxy.go_silent().await;
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), post("evt_silent_1"))
        .await
        .expect("an answer, not a hang");
    let elapsed = started.elapsed();
    assert_eq!(status, 503);
    assert!(
        elapsed >= huckleberry::db::CONNECT_TIMEOUT && elapsed < Duration::from_secs(15),
        "answered after {elapsed:?}"
    );

    proxy.restore();
    assert_eq!(post("evt_silent_1").await, 200);
    assert_eq!(app.count("webhook_inbox").await, 2);
}

// 2. The process dies between a side effect and the step's completion.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fulfilment_whose_responses_are_lost_runs_again_without_a_second_payment_order_pack_seat_or_event()
 {
    let app = spawn_app().await;
    let (order_id, event) = paid_stripe_checkout(&app).await;
    let run = app
        .engine
        .run("process-stripe-checkout", event)
        .losing_response_of("fulfil-order")
        .losing_response_of("trigger-onboarding")
        .await;
    let fulfilment: Value = run.output();
    assert_eq!(run.times_ran("fulfil-order"), 2, "the lost step ran again");
    assert_eq!(run.times_ran("trigger-onboarding"), 2);
    assert_eq!(purchase_rows(&app).await, (1, 1, 1, 1));
    assert_eq!(app.order(order_id).await.status, OrderStatus::Paid);
    assert_eq!(fulfilment["order_id"], json!(order_id));
    assert_eq!(
        sent(&app, "purchase/mentorship"),
        (2, 1),
        "sent twice under one id, which Inngest stores once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onboarding_whose_responses_are_lost_grants_once_sends_one_access_email_and_puts_the_same_role()
 {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    let user = f_user(&app, &f).await;
    let mut conn = app.conn().await;
    DiscordConnection::connect(&mut conn, user, "discord-42", "ada_draws")
        .await
        .expect("connect");
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    let metadata_calls = mock_clerk_metadata(&app, 0).await;
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&app.discord)
        .await;
    let run = app
        .engine
        .run("onboarding-flow", purchase_event(&f))
        .losing_response_of("grant-dashboard-access")
        .losing_response_of("send-access-email")
        .losing_response_of("record-outcome")
        .await;
    assert_eq!(run.output::<Value>()["outcome"], "connected");
    for step in [
        "grant-dashboard-access",
        "send-access-email",
        "record-outcome",
    ] {
        assert_eq!(run.times_ran(step), 2, "{step} ran again");
    }

    let keys: Vec<String> = emails_sent(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        vec![format!("onboarding-{}-access", f.order_id)],
        "the email log stopped the second send before Resend"
    );
    let grants = DashboardAccess::active_for_user(&mut conn, user)
        .await
        .expect("query");
    assert_eq!(grants.len(), 1);
    // Publishing is repeated with the same idempotent writes: the same metadata, and the
    // same role, which a member holds once however often it is put.
    let roles = app.discord.received_requests().await.expect("recorded");
    assert_eq!(roles.len(), 2);
    assert!(roles.iter().all(|r| r.method.as_str() == "PUT"
        && r.url.path() == "/guilds/guild-1/members/discord-42/roles/role-mentee"));
    assert_eq!(metadata_calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let patches: Vec<Value> = app
        .clerk
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(patches[0], patches[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_and_a_reminder_whose_responses_are_lost_are_each_sent_once() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    let run = app
        .engine
        .run("onboarding-flow", purchase_event(&f))
        .losing_response_of("send-welcome-email")
        .losing_response_of("send-discord-reminder")
        .await;
    assert_eq!(run.output::<Value>()["outcome"], "never_connected");
    assert_eq!(run.times_ran("send-welcome-email"), 2);
    assert_eq!(run.times_ran("send-discord-reminder"), 2);
    let order = f.order_id;
    let keys: Vec<String> = emails_sent(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("onboarding-{order}-welcome"),
            format!("onboarding-{order}-reminder")
        ]
    );
    let mut conn = app.conn().await;
    let log = EmailLogEntry::of_user(&mut conn, f_user(&app, &f).await)
        .await
        .expect("log");
    assert_eq!(log.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_dying_after_resend_accepted_an_email_sends_it_again_under_the_same_idempotency_key()
 {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    let proxy = DbProxy::start(app.database.url()).await;
    let mut options = app.instance_options();
    options.database_url = proxy.url(app.database.url());
    options.relay = false;
    // The claim the dying attempt leaves lapses after six times this.
    options.configure =
        Box::new(|config: &mut AppConfig| config.provider_timeout = Duration::from_millis(500));
    let instance = app.start_instance(options).await;
    // Resend has the welcome; the database dies as its sending is logged.
    proxy.cut_when_sent("SET status = 'sent'");
    let run = instance
        .engine
        .run("onboarding-flow", purchase_event(&f))
        .with_retry_pause(Duration::from_millis(100))
        // The dead attempt's claim lapses after six times the provider timeout (3 s here).
        .with_max_attempts(80);
    let outage = async {
        eventually(Duration::from_secs(20), "the outage", || async {
            proxy.is_down()
        })
        .await;
        proxy.restore();
    };
    let (run, ()) = tokio::join!(run.execute(), outage);
    assert_eq!(run.output::<Value>()["outcome"], "never_connected");
    assert!(failures(&run, "send-welcome-email").0 >= 1);

    let welcomes: Vec<(String, Value)> = emails_sent(&app)
        .await
        .into_iter()
        .filter(|(k, _)| k.ends_with("-welcome"))
        .collect();
    assert_eq!(welcomes.len(), 2, "sent again after the crash");
    assert_eq!(
        welcomes[0], welcomes[1],
        "the same email under the same key, which Resend delivers once"
    );
    let mut conn = app.conn().await;
    let log = EmailLogEntry::of_user(&mut conn, f_user(&app, &f).await)
        .await
        .expect("log");
    let welcome_logs = log.iter().filter(|e| e.kind == "welcome").count();
    assert_eq!(welcome_logs, 1);
}

// 3. The Inngest event API is down for minutes and the service restarts meanwhile.

/// A relay that passes every 50 ms and backs off at most 100 ms, with a lease of `lease`.
fn fast_relay(lease: Duration) -> Box<dyn FnOnce(&mut AppConfig) + Send> {
    Box::new(move |config: &mut AppConfig| {
        config.relay = RelayConfig {
            interval: Duration::from_millis(50),
            lease,
            max_backoff: Duration::from_millis(100),
            background: true,
        };
    })
}

/// A signed `checkout.session.completed` with the event id `event_id`.
fn completed_webhook(event_id: &str) -> String {
    stripe_fixture(
        "event_checkout_session_completed.json",
        Uuid::new_v4(),
        Uuid::new_v4(),
    )
    .replace("evt_test_completed_1", event_id)
}

async fn post_stripe_to(app: &TestApp, url: String, payload: &str) -> u16 {
    let signature = stripe_webhook::Webhook::generate_test_header(
        payload,
        crate::util::STRIPE_WEBHOOK_SECRET,
        None,
    );
    app.http
        .post(url)
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(payload.to_owned())
        .send()
        .await
        .expect("the app answers")
        .status()
        .as_u16()
}

async fn start_relaying(app: &TestApp, lease: Duration) -> Instance {
    let mut options = app.instance_options();
    options.configure = fast_relay(lease);
    app.start_instance(options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_stored_while_inngest_is_down_across_a_restart_are_each_delivered_once_when_it_is_back()
 {
    let app = spawn_app().await;
    app.events.set_down(true);
    let first = start_relaying(&app, Duration::from_secs(1)).await;
    let ids: Vec<String> = (0..6).map(|i| format!("evt_restart_{i}")).collect();
    for id in &ids[..4] {
        let url = first.url("/api/webhooks/stripe");
        assert_eq!(post_stripe_to(&app, url, &completed_webhook(id)).await, 200);
    }
    eventually(Duration::from_secs(15), "failed deliveries", || async {
        app.count("webhook_inbox WHERE forward_attempts >= 2").await >= 1
    })
    .await;

    // The process dies; meanwhile Inngest stops answering at all, and more webhooks arrive
    // (at another instance, which does not relay).
    drop(first);
    app.events.set_down(false);
    app.events.set_refusing(true);
    for id in &ids[4..] {
        assert_eq!(app.post_stripe(&completed_webhook(id)).await.status(), 200);
    }
    let second = start_relaying(&app, Duration::from_secs(1)).await;
    let refused_before = app.events.requests().len();
    eventually(Duration::from_secs(15), "a refused delivery", || async {
        app.events.requests().len() > refused_before
    })
    .await;
    assert!(
        app.events.events().is_empty(),
        "nothing was accepted while Inngest was away"
    );

    app.events.set_refusing(false);
    eventually(Duration::from_secs(20), "every delivery", || async {
        app.count("webhook_inbox WHERE forwarded_at IS NULL").await == 0
    })
    .await;
    drop(second);
    for id in &ids {
        assert_eq!(forwarded(&app, id).len(), 1, "{id} delivered once");
    }
    assert_eq!(app.events.events().len(), ids.len());
}

// 4. Two service instances share one database.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_relaying_one_inbox_deliver_each_entry_once_even_when_inngest_answers_slowly()
{
    let app = spawn_app().await;
    let ids: Vec<String> = (0..16).map(|i| format!("evt_shared_{i}")).collect();
    // Down while they arrive, so the inline deliveries fail and all 16 are the relays'.
    app.events.set_down(true);
    let webhooks: Vec<String> = ids.iter().map(|id| completed_webhook(id)).collect();
    let posts = webhooks.iter().map(|webhook| app.post_stripe(webhook));
    for response in futures::future::join_all(posts).await {
        assert_eq!(response.status(), 200);
    }
    app.events.set_down(false);
    // 100 ms an event: the 16 take longer than one claim's lease of a second.
    app.events.set_delay(Duration::from_millis(100));
    let a = start_relaying(&app, Duration::from_secs(1)).await;
    let b = start_relaying(&app, Duration::from_secs(1)).await;
    eventually(Duration::from_secs(30), "every delivery", || async {
        app.count("webhook_inbox WHERE forwarded_at IS NULL").await == 0
    })
    .await;
    drop((a, b));
    let mut times: HashMap<String, usize> = HashMap::new();
    for event in app.events.events() {
        *times.entry(event.id.unwrap_or_default()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(times.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sweeping_abandoned_checkouts_at_once_release_each_seat_once_and_announce_it_once()
 {
    let app = spawn_app().await;
    let product = app.seed_product(10).await;
    let mut orders = Vec::new();
    for i in 0..6 {
        let pending = app
            .pending_order(&product, &format!("user_sweep_{i}"), Provider::Stripe)
            .await;
        orders.push(pending.order.id);
    }
    let mut conn = app.conn().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE orders SET checkout_expires_at = now() - interval '2 hours' \
             WHERE status = 'pending'",
        ),
        &mut conn,
    )
    .await
    .expect("backdate the holds");
    drop(conn);

    let a = start_relaying(&app, Duration::from_secs(5)).await;
    let b = start_relaying(&app, Duration::from_secs(5)).await;
    let (r1, r2, r3, r4) = tokio::join!(sweep(&a), sweep(&b), sweep(&a), sweep(&b));
    let released: u64 = [r1, r2, r3, r4]
        .iter()
        .map(|r| r.output::<Value>()["released"].as_u64().expect("a count"))
        .sum();
    assert_eq!(released, 6, "each hold released by one sweep");
    for order in &orders {
        assert_eq!(app.order(*order).await.status, OrderStatus::Expired);
        assert_eq!(app.seat(*order).await.status, SeatStatus::Released);
    }
    eventually(Duration::from_secs(20), "the announcements", || async {
        app.count("webhook_inbox WHERE forwarded_at IS NULL").await == 0
    })
    .await;
    drop((a, b));
    assert_eq!(
        sent(&app, "seat/released"),
        (6, 6),
        "each release announced once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_expiring_the_same_packs_at_once_release_each_seat_once_and_announce_it_once()
{
    let app = spawn_app().await;
    let product = app.seed_product(10).await;
    let mut packs = Vec::new();
    for i in 0..3 {
        let f = crate::onboarding::purchase_of(&app, &product, &format!("user_expiry_{i}")).await;
        packs.push(f.pack_id);
    }
    let mut conn = app.conn().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE session_packs SET expires_at = now() - interval '1 day'"),
        &mut conn,
    )
    .await
    .expect("backdate the packs");
    drop(conn);
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(r"^/v1/users/[^/]+$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("clerk/user.json"), "application/json"),
        )
        .mount(&app.clerk)
        .await;
    mock_resend(&app, 0).await;
    let a = start_relaying(&app, Duration::from_secs(5)).await;
    let b = start_relaying(&app, Duration::from_secs(5)).await;

    // The daily cron, run by both at once: the same checks under the same ids.
    let tick = || Event::new("inngest/scheduled.timer", json!({}));
    let (on_a, on_b) = tokio::join!(
        a.engine.run("pack-expiration-check", tick()).execute(),
        b.engine.run("pack-expiration-check", tick()).execute()
    );
    for run in [on_a, on_b] {
        assert_eq!(run.output::<Value>()["checksSent"], 3);
    }
    assert_eq!(sent(&app, "pack/expiration-check"), (6, 3));

    // Every check handled by both at once.
    let now = chrono::Utc::now();
    let runs = packs.iter().flat_map(|pack| {
        [&a, &b].map(|instance| {
            let check = huckleberry::expiry::check_event(*pack, now);
            instance
                .engine
                .run("handle-pack-expiration-check", check)
                .execute()
        })
    });
    for run in futures::future::join_all(runs).await {
        run.output::<Value>();
    }
    assert_eq!(
        app.count("seat_reservations WHERE status = 'released'")
            .await,
        3
    );
    assert_eq!(app.count("session_packs WHERE status = 'expired'").await, 3);
    eventually(Duration::from_secs(20), "the announcements", || async {
        app.count("webhook_inbox WHERE forwarded_at IS NULL").await == 0
    })
    .await;
    drop((a, b));
    assert_eq!(
        sent(&app, "seat/released"),
        (3, 3),
        "each release announced once"
    );
    // Both runs of a check may mail at once: under one idempotency key, which Resend
    // delivers once, and logged once.
    let keys: std::collections::HashSet<String> = emails_sent(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(app.count("email_log WHERE kind = 'pack_expired'").await, 3);
}

/// A run of the sweep of abandoned checkouts on `instance`, as its cron would start it.
fn sweep(instance: &Instance) -> impl std::future::Future<Output = RunOutcome> + '_ {
    let tick = Event::new("inngest/scheduled.timer", json!({}));
    instance
        .engine
        .run("release-abandoned-checkouts", tick)
        .execute()
}

// 5. Providers that hang: every client is bounded by PROVIDER_TIMEOUT_MS.

const BOUND: Duration = Duration::from_millis(300);

/// An instance whose provider calls are bounded by [`BOUND`], with `fake` answering every
/// request only after a minute.
async fn with_hanging(app: &TestApp, fake: &MockServer) -> Instance {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .with_priority(1)
        .mount(fake)
        .await;
    let mut options = app.instance_options();
    options.relay = false;
    options.configure = Box::new(|config: &mut AppConfig| config.provider_timeout = BOUND);
    app.start_instance(options).await
}

/// The call ended in an error Inngest retries, after the bound and well before a minute.
fn assert_bounded_and_retriable<T: std::fmt::Debug, E: Classify + std::fmt::Debug>(
    outcome: Result<T, E>,
    elapsed: Duration,
) {
    let error = outcome.expect_err("a hanging provider is an error");
    assert_ne!(error.retry(), Retry::Never, "{error:?} is retried");
    assert!(
        elapsed >= BOUND && elapsed < BOUND * 10,
        "ended after {elapsed:?}"
    );
}

async fn timed<F: std::future::Future>(call: F) -> (F::Output, Duration) {
    let started = Instant::now();
    let outcome = call.await;
    (outcome, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_stripe_ends_in_a_retriable_error_within_the_timeout() {
    let app = spawn_app().await;
    let instance = with_hanging(&app, &app.stripe).await;
    let stripe = instance.state.stripe.as_ref().expect("Stripe");
    let (outcome, elapsed) = timed(stripe.paid_amounts("cs_test_a1")).await;
    assert_bounded_and_retriable(outcome, elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_paypal_ends_in_a_retriable_error_within_the_timeout() {
    let app = spawn_app().await;
    let instance = with_hanging(&app, &app.paypal).await;
    let paypal = instance.state.paypal.as_ref().expect("PayPal");
    let (outcome, elapsed) = timed(paypal.capture_order("PAYPAL-ORDER-1")).await;
    assert_bounded_and_retriable(outcome, elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_clerk_ends_in_a_retriable_error_within_the_timeout() {
    let app = spawn_app().await;
    let instance = with_hanging(&app, &app.clerk).await;
    let clerk = instance.state.clerk.as_ref().expect("Clerk");
    let (outcome, elapsed) = timed(clerk.get_user("user_clerk_1")).await;
    assert_bounded_and_retriable(outcome, elapsed);
    // Session tokens too: the JWKS fetch is bounded, and its outage is a 503, not a hang.
    let started = Instant::now();
    let response = app
        .http
        .get(instance.url("/api/me"))
        .bearer_auth(crate::util::session_token("user_clerk_1", 300))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < BOUND * 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_resend_ends_in_a_retriable_error_within_the_timeout() {
    let app = spawn_app().await;
    let instance = with_hanging(&app, &app.resend).await;
    let resend = instance.state.resend.as_ref().expect("Resend");
    let email = huckleberry::email::RenderedEmail {
        kind: huckleberry::email::EmailKind::Welcome,
        subject: "Welcome".into(),
        html: "<p>Welcome</p>".into(),
        text: "Welcome".into(),
    };
    let (outcome, elapsed) = timed(resend.send("ada@example.com", &email, "faults-welcome")).await;
    assert_bounded_and_retriable(outcome, elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_discord_ends_in_a_retriable_error_within_the_timeout() {
    let app = spawn_app().await;
    let instance = with_hanging(&app, &app.discord).await;
    let discord = instance.state.discord.as_ref().expect("Discord");
    let (outcome, elapsed) = timed(discord.add_mentee_role("discord-42")).await;
    assert_bounded_and_retriable(outcome, elapsed);
}
