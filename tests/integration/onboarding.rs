//! `onboarding-flow` end to end: Clerk user, Resend emails, waiting for Discord, access.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use huckleberry::models::Provider;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::discord::DiscordConnection;
use huckleberry::models::email_log::{EmailLogEntry, suppress};
use huckleberry::models::onboarding::outcome_of;
use huckleberry::models::order::PaidAmounts;
use huckleberry::payments::fulfilment::{ConfirmedPayment, Fulfilment, fulfil};
use inngest_sdk::Event;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::util::{TestApp, fixture, spawn_app};

/// Resend: answers each send with an id derived from its idempotency key (as Resend answers a
/// repeated key with the first send's id), optionally failing the first `fail_first` requests.
struct ResendFake {
    fail_first: u32,
    seen: AtomicU32,
}

impl Respond for ResendFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return ResponseTemplate::new(500).set_body_json(json!({
                "statusCode": 500, "name": "internal_server_error", "message": "try again"
            }));
        }
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        ResponseTemplate::new(200).set_body_json(json!({ "id": format!("em-{key}") }))
    }
}

pub(crate) async fn mock_resend(app: &TestApp, fail_first: u32) {
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(header("authorization", "Bearer re_test_key"))
        .respond_with(ResendFake {
            fail_first,
            seen: AtomicU32::new(0),
        })
        .mount(&app.resend)
        .await;
}

pub(crate) async fn mock_clerk_user(app: &TestApp, user: Value) {
    Mock::given(method("GET"))
        .and(path("/v1/users/user_clerk_1"))
        .and(header("authorization", "Bearer sk_test_clerk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user))
        .mount(&app.clerk)
        .await;
}

/// Clerk's metadata endpoint, failing the first `fail_first` calls.
struct MetadataFake {
    fail_first: u32,
    seen: Arc<AtomicU32>,
}

impl Respond for MetadataFake {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.seen.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return ResponseTemplate::new(503);
        }
        ResponseTemplate::new(200).set_body_raw(fixture("clerk/user.json"), "application/json")
    }
}

pub(crate) async fn mock_clerk_metadata(app: &TestApp, fail_first: u32) -> Arc<AtomicU32> {
    let seen = Arc::new(AtomicU32::new(0));
    Mock::given(method("PATCH"))
        .and(path("/v1/users/user_clerk_1/metadata"))
        .respond_with(MetadataFake {
            fail_first,
            seen: seen.clone(),
        })
        .mount(&app.clerk)
        .await;
    seen
}

pub(crate) async fn purchase(app: &TestApp) -> Fulfilment {
    let product = app.seed_product(3).await;
    purchase_of(app, &product, "user_clerk_1").await
}

/// `clerk_id` buys `product` (paid through Stripe and fulfilled).
pub(crate) async fn purchase_of(
    app: &TestApp,
    product: &huckleberry::models::Product,
    clerk_id: &str,
) -> Fulfilment {
    let pending = app.pending_order(product, clerk_id, Provider::Stripe).await;
    let checkout_id = format!("cs_{}", pending.order.id.simple());
    app.set_checkout_id(pending.order.id, &checkout_id).await;
    let mut conn = app.conn().await;
    let paid = ConfirmedPayment {
        order_id: pending.order.id,
        provider: Provider::Stripe,
        provider_payment_id: format!("pi_{}", pending.order.id.simple()),
        provider_checkout_id: checkout_id,
        amounts: PaidAmounts {
            total: "200.00".parse().expect("decimal"),
            original: "200.00".parse().expect("decimal"),
            discount: "0".parse().expect("decimal"),
            discount_code: None,
            currency: "usd".into(),
        },
    };
    fulfil(&mut conn, &paid).await.expect("fulfilled")
}

pub(crate) fn purchase_event(f: &Fulfilment) -> Event<Value> {
    Event::new(
        "purchase/mentorship",
        json!({ "orderId": f.order_id, "clerkId": f.clerk_id, "packId": f.pack_id, "provider": "stripe" }),
    )
}

/// A purchase, with Clerk (the fixture user), Resend and Clerk's metadata answering.
async fn ready_to_onboard(app: &TestApp) -> Fulfilment {
    let f = purchase(app).await;
    mock_clerk_user(
        app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(app, 0).await;
    mock_clerk_metadata(app, 0).await;
    f
}

pub(crate) async fn emails_sent(app: &TestApp) -> Vec<(String, Value)> {
    app.resend
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| {
            let key = r
                .headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (key, serde_json::from_slice(&r.body).expect("json"))
        })
        .collect()
}

async fn outcome(app: &TestApp, f: &Fulfilment) -> Option<String> {
    let mut conn = app.conn().await;
    outcome_of(&mut conn, f.order_id)
        .await
        .expect("query")
        .map(|o| o.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_within_48_hours_grants_access_and_updates_clerk() {
    let app = spawn_app().await;
    let f = ready_to_onboard(&app).await;
    let run = app
        .engine
        .run("onboarding-flow", purchase_event(&f))
        .with_incoming(Event::new(
            "user/discord.connected",
            json!({ "clerkId": "someone_else", "discordId": "1" }),
        ))
        .with_incoming(Event::new(
            "user/discord.connected",
            json!({ "clerkId": "user_clerk_1", "discordId": "42" }),
        ))
        .await;
    assert_eq!(run.output::<Value>()["outcome"], "connected");
    let wait = &run.ops("WaitForEvent")[0];
    let opts = wait.opts.as_ref().expect("opts");
    assert_eq!(
        (opts["event"].as_str(), opts["timeout"].as_str()),
        (Some("user/discord.connected"), Some("2d"))
    );

    let sent = emails_sent(&app).await;
    let keys: Vec<&str> = sent.iter().map(|(k, _)| k.as_str()).collect();
    let order = f.order_id;
    assert_eq!(
        keys,
        vec![
            format!("onboarding-{order}-welcome"),
            format!("onboarding-{order}-access")
        ]
    );
    let welcome = &sent[0].1;
    assert_eq!(welcome["to"], json!(["ada@example.com"]));
    assert_eq!(
        welcome["from"],
        "Huckleberry Art Academy <hello@huckleberry.test>"
    );
    let html = welcome["html"].as_str().expect("html");
    assert!(
        html.contains("http://localhost:3000/api/auth/discord?token="),
        "the welcome carries the signed link"
    );
    assert!(
        !html.contains("clerkId="),
        "never a bare Clerk id in the link"
    );

    let mut conn = app.conn().await;
    let grants = DashboardAccess::active_for_user(&mut conn, f_user(&app, &f).await)
        .await
        .expect("query");
    assert_eq!(grants.len(), 1);
    assert_eq!(outcome(&app, &f).await.as_deref(), Some("connected"));
    let patches: Vec<Value> = app
        .clerk
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0]["public_metadata"]["dashboard"]["access"], true);
    assert_eq!(
        patches[0]["public_metadata"]["dashboard"]["mentors"][0]["packId"],
        json!(f.pack_id)
    );
    let log = EmailLogEntry::of_user(&mut conn, f_user(&app, &f).await)
        .await
        .expect("log");
    assert_eq!(log.len(), 2);
}

pub(crate) async fn f_user(app: &TestApp, f: &Fulfilment) -> uuid::Uuid {
    let mut conn = app.conn().await;
    huckleberry::models::User::by_clerk_id(&mut conn, &f.clerk_id)
        .await
        .expect("query")
        .expect("user")
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_already_connected_user_skips_straight_to_access_and_gets_the_guild_role() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    let mut conn = app.conn().await;
    DiscordConnection::connect(&mut conn, f_user(&app, &f).await, "discord-42", "ada_draws")
        .await
        .expect("connect");
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    mock_clerk_metadata(&app, 0).await;
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .and(header("authorization", "Bot bot-token"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&app.discord)
        .await;
    let run = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(run.output::<Value>()["outcome"], "connected");
    assert!(run.ops("WaitForEvent").is_empty());
    let keys: Vec<String> = emails_sent(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![format!("onboarding-{}-access", f.order_id)]);
    app.discord.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_connecting_sends_exactly_a_welcome_and_a_reminder_even_with_retries() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    // Resend fails the very first request: the welcome step is retried.
    mock_resend(&app, 1).await;
    let run = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(run.output::<Value>()["outcome"], "never_connected");
    assert_eq!(run.ops("StepError").len(), 1, "the failed send was retried");
    assert_eq!(run.ops("WaitForEvent").len(), 2);

    let order = f.order_id;
    let delivered: Vec<String> = emails_sent(&app)
        .await
        .into_iter()
        .skip(1)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        delivered,
        vec![
            format!("onboarding-{order}-welcome"),
            format!("onboarding-{order}-reminder")
        ]
    );
    let mut conn = app.conn().await;
    let log = EmailLogEntry::of_user(&mut conn, f_user(&app, &f).await)
        .await
        .expect("log");
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["welcome", "discord_reminder"]);
    assert!(
        DashboardAccess::active_for_user(&mut conn, f_user(&app, &f).await)
            .await
            .expect("query")
            .is_empty()
    );
    assert_eq!(outcome(&app, &f).await.as_deref(), Some("never_connected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_email_step_succeeded_does_not_send_it_again() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    let metadata_calls = mock_clerk_metadata(&app, 2).await;
    let run = app
        .engine
        .run("onboarding-flow", purchase_event(&f))
        .with_incoming(Event::new(
            "user/discord.connected",
            json!({ "clerkId": "user_clerk_1", "discordId": "42" }),
        ))
        .await;
    assert_eq!(run.output::<Value>()["outcome"], "connected");
    assert_eq!(
        metadata_calls.load(Ordering::SeqCst),
        3,
        "access was granted on the third attempt"
    );
    let welcome_sends = emails_sent(&app)
        .await
        .iter()
        .filter(|(k, _)| k.ends_with("-welcome"))
        .count();
    assert_eq!(welcome_sends, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounced_address_gets_no_further_mail() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    let mut conn = app.conn().await;
    suppress(&mut conn, "ADA@example.com", "bounced")
        .await
        .expect("suppress");
    let run = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(run.output::<Value>()["outcome"], "never_connected");
    assert!(emails_sent(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_user_without_email_ends_the_run_without_retries() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    let mut user: Value = serde_json::from_str(&fixture("clerk/user.json")).expect("json");
    user["email_addresses"] = json!([]);
    user["primary_email_address_id"] = Value::Null;
    mock_clerk_user(&app, user).await;
    let run = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(
        run.error().message,
        "Clerk user user_clerk_1 has no email address to onboard"
    );
    assert_eq!(run.ops("StepFailed").len(), 1);
    assert!(run.ops("StepError").is_empty(), "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_onboarding_days_later_sends_no_email_again() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    app.engine
        .run("onboarding-flow", purchase_event(&f))
        .await
        .output::<Value>();
    let sent = emails_sent(&app).await.len();
    assert_eq!(sent, 2);
    // A replay from the dashboard, long after Resend forgot the idempotency keys.
    let replay = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(replay.output::<Value>()["outcome"], "never_connected");
    assert_eq!(
        emails_sent(&app).await.len(),
        sent,
        "the email log stopped both sends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_refunded_while_onboarding_waited_gets_no_access() {
    let app = spawn_app().await;
    let f = ready_to_onboard(&app).await;
    let mut conn = app.conn().await;
    huckleberry::models::SessionPack::mark_refunded(&mut conn, f.pack_id)
        .await
        .expect("refund");
    let run = app
        .engine
        .run("onboarding-flow", purchase_event(&f))
        .with_incoming(Event::new(
            "user/discord.connected",
            json!({ "clerkId": "user_clerk_1", "discordId": "42" }),
        ))
        .await;
    run.output::<Value>();
    assert!(
        DashboardAccess::active_for_user(&mut conn, f_user(&app, &f).await)
            .await
            .expect("query")
            .is_empty(),
        "a refunded pack opens nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_after_onboarding_stopped_waiting_still_opens_the_dashboard() {
    let app = spawn_app().await;
    let f = ready_to_onboard(&app).await;
    let run = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(run.output::<Value>()["outcome"], "never_connected");

    // Day 5: the welcome link is still valid; the callback stores the connection and
    // announces it, but no run waits for it any more.
    let mut conn = app.conn().await;
    DiscordConnection::connect(&mut conn, f_user(&app, &f).await, "discord-42", "ada_draws")
        .await
        .expect("connect");
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&app.discord)
        .await;
    let connected = Event::new(
        "user/discord.connected",
        json!({ "clerkId": "user_clerk_1", "discordId": "discord-42" }),
    );
    let late: Value = app
        .engine
        .run("grant-late-discord-access", connected.clone())
        .await
        .output();
    assert_eq!(late["granted"], json!([f.pack_id]));
    let grants = DashboardAccess::active_for_user(&mut conn, f_user(&app, &f).await)
        .await
        .expect("query");
    assert_eq!(grants.len(), 1);
    let keys: Vec<String> = emails_sent(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys.last(),
        Some(&format!("onboarding-{}-access", f.order_id))
    );

    // Announced again (or replayed): nothing left to open, nothing sent twice.
    let again: Value = app
        .engine
        .run("grant-late-discord-access", connected)
        .await
        .output();
    assert_eq!(again["granted"], json!([]));
    assert_eq!(emails_sent(&app).await.len(), keys.len());
}
