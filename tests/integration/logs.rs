//! What the app logs keeps secrets out: every line logged (TRACE and up, spans included) during
//! a Clerk signup, a Stripe purchase through the API, onboarding and the Discord OAuth link is
//! captured, and no key, token, signed link, session or buyer address may be in it.
//!
//! The capture (`util::capture`) takes only what is logged on this test's thread, so tests
//! running at the same time in other threads neither add to it nor see it. The test runs on a
//! current-thread runtime: the server, its connection tasks and the runs all poll on this
//! thread, inside the capture.

use std::sync::{Mutex, PoisonError};

use base64::Engine;
use huckleberry::relay::forward_due;
use inngest_sdk::Event;
use serde_json::{Value, json};
use wiremock::matchers::{basic_auth, body_string_contains, header, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::util::{
    SVIX_SECRET, TestApp, fixture, forwarded, session_token, spawn_app_with, svix_headers,
};

const STRIPE_KEY: &str = "sk_test_LeakProbeStripeKey7c1d";
const STRIPE_WEBHOOK: &str = "whsec_LeakProbeStripeWebhook4e2a";
const PAYPAL_SECRET: &str = "LeakProbePaypalSecret9b3f";
const CLERK_KEY: &str = "sk_test_LeakProbeClerkKey2d8e";
const RESEND_KEY: &str = "re_LeakProbeResendKey5a7c";
const DISCORD_SECRET: &str = "LeakProbeDiscordSecret3f9b";
const BOT_TOKEN: &str = "LeakProbeBotToken8c4d";
/// `signkey-test-` and the hex of "LeakProbeSigningKey".
const SIGNING_KEY: &str = "signkey-test-4c65616b50726f62655369676e696e674b6579";
const EVENT_KEY: &str = "LeakProbeEventKey6e1a";
const LINK_SECRET: &str = "LeakProbeLinkSecret-0123456789abcdef0123";
const OAUTH_CODE: &str = "LeakProbeOauthCode1b2c";
const ACCESS_TOKEN: &str = "LeakProbeAccessToken7d6e";
const BUYER_EMAIL: &str = "ada.leakprobe@example.org";
const CLERK_ID: &str = "user_clerk_1";

/// Resend: fails the first send (so an error path is logged too), then accepts.
struct ResendOnceDown(Mutex<bool>);

impl Respond for ResendOnceDown {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut failed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !*failed {
            *failed = true;
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

fn clerk_user() -> Value {
    serde_json::from_str(&fixture("clerk/user.json").replace("ada@example.com", BUYER_EMAIL))
        .expect("json")
}

fn stripe(name: &str, order_id: uuid::Uuid, product_id: uuid::Uuid) -> String {
    crate::util::stripe_fixture(name, order_id, product_id)
        .replace("student@example.com", BUYER_EMAIL)
}

async fn mount_fakes(app: &TestApp) {
    let bearer = |key: &str| header("authorization", format!("Bearer {key}").as_str());
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(bearer(STRIPE_KEY))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(
                fixture("stripe/checkout_session_created.json")
                    .replace("student@example.com", BUYER_EMAIL),
                "application/json",
            ),
        )
        .mount(&app.stripe)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/users/{CLERK_ID}")))
        .and(bearer(CLERK_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(clerk_user()))
        .mount(&app.clerk)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/v1/users/{CLERK_ID}/metadata")))
        .and(bearer(CLERK_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(clerk_user()))
        .mount(&app.clerk)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(bearer(RESEND_KEY))
        .respond_with(ResendOnceDown(Mutex::new(false)))
        .mount(&app.resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(basic_auth("discord-client", DISCORD_SECRET))
        .and(body_string_contains(format!("code={OAUTH_CODE}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 604800,
            "refresh_token": format!("{ACCESS_TOKEN}-refresh"), "scope": "identify guilds.join"
        })))
        .mount(&app.discord)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/@me"))
        .and(bearer(ACCESS_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "id": "discord-42", "username": "ada_draws", "email": BUYER_EMAIL }),
        ))
        .mount(&app.discord)
        .await;
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42"))
        .and(header("authorization", format!("Bot {BOT_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&app.discord)
        .await;
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .and(header("authorization", format!("Bot {BOT_TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1..)
        .mount(&app.discord)
        .await;
}

/// The one event named `name` the app sent to the fake event API.
fn sent(app: &TestApp, name: &str) -> Event<Value> {
    let mut found: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one {name} event");
    found.remove(0)
}

/// The signed Discord link in the welcome email Resend was asked to send.
async fn welcome_link_token(app: &TestApp) -> String {
    let requests = app.resend.received_requests().await.expect("recorded");
    let html = requests
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("json"))
        .find_map(|body| {
            let html = body["html"].as_str()?.to_owned();
            html.contains("api/auth/discord?token=").then_some(html)
        })
        .expect("a welcome email with the link");
    let start = html.find("?token=").expect("token") + "?token=".len();
    html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

/// Redirect target of a GET through the app's cookie-keeping client.
async fn location(app: &TestApp, path_and_query: &str) -> String {
    let response = app
        .http
        .get(app.url(path_and_query))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 303, "{path_and_query}");
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned()
}

#[tokio::test]
async fn a_purchase_and_onboarding_log_no_key_token_or_buyer_address() {
    let (capture, _capturing) = crate::util::capture::Capture::start();

    let app = spawn_app_with(&[
        ("STRIPE_SECRET_KEY", STRIPE_KEY),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK),
        ("PAYPAL_CLIENT_SECRET", PAYPAL_SECRET),
        ("CLERK_SECRET_KEY", CLERK_KEY),
        ("RESEND_API_KEY", RESEND_KEY),
        ("DISCORD_CLIENT_SECRET", DISCORD_SECRET),
        ("DISCORD_BOT_TOKEN", BOT_TOKEN),
        ("LINK_SIGNING_SECRET", LINK_SECRET),
        // Cloud mode: executions are signed and events carry the event key.
        ("INNGEST_DEV", "0"),
        ("INNGEST_SIGNING_KEY", SIGNING_KEY),
        ("INNGEST_EVENT_KEY", EVENT_KEY),
    ])
    .await;
    mount_fakes(&app).await;
    let product = app.seed_product(3).await;

    // Clerk: the signup webhook (Svix-signed) becomes a user.
    let signup =
        json!({ "type": "user.created", "object": "event", "data": clerk_user() }).to_string();
    let answer = app
        .http
        .post(app.url("/api/webhooks/clerk"))
        .headers(svix_headers("msg_leakprobe_1", &signup))
        .body(signup)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let created = sent(&app, "clerk/user.created");
    app.engine
        .run("sync-clerk-user", created)
        .await
        .output::<Value>();

    // Checkout through the API with a session token.
    let session = session_token(CLERK_ID, 60);
    let answer = app
        .http
        .post(app.url("/api/checkout"))
        .bearer_auth(&session)
        .json(&json!({ "product_id": product.id, "provider": "stripe" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let order_id: uuid::Uuid =
        serde_json::from_value(answer.json::<Value>().await.expect("json")["order_id"].clone())
            .expect("order id");

    // Stripe: the signed webhook, relayed (the event API is busy once), then the function.
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .and(header(
            "authorization",
            format!("Bearer {STRIPE_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            stripe("checkout_session_completed.json", order_id, product.id),
            "application/json",
        ))
        .mount(&app.stripe)
        .await;
    let payload = stripe(
        "event_checkout_session_completed.json",
        order_id,
        product.id,
    );
    let signature = stripe_webhook::Webhook::generate_test_header(&payload, STRIPE_WEBHOOK, None);
    // The event API answers 503 once (a hang-up could be retried unseen by hyper when the
    // connection was pooled).
    app.events
        .answer_next(1, 503, json!({ "status": 503, "error": "busy" }));
    assert_eq!(
        app.post_stripe_signed(&payload, &signature).await.status(),
        200
    );
    let completed = delivered(&app, "evt_test_completed_1").await;
    app.engine
        .run("process-stripe-checkout", completed)
        .await
        .output::<Value>();

    // Onboarding: welcome (Resend fails once), Discord connected meanwhile, access.
    let purchase = sent(&app, "purchase/mentorship");
    let run = app
        .engine
        .run("onboarding-flow", purchase.clone())
        .with_incoming_during(
            "wait-for-discord",
            Event::new(
                "user/discord.connected",
                json!({ "clerkId": CLERK_ID, "discordId": "discord-42" }),
            ),
        )
        .await;
    assert_eq!(run.output::<Value>()["outcome"], "connected");

    // The buyer follows the emailed link through Discord's OAuth.
    let link = welcome_link_token(&app).await;
    let authorize = location(&app, &format!("/api/auth/discord?token={link}")).await;
    let state = url::Url::parse(&authorize)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", OAUTH_CODE)
        .append_pair("state", &state)
        .finish();
    let done = location(&app, &format!("/api/auth/discord/callback?{query}")).await;
    assert!(done.ends_with("/auth/discord/success"), "{done}");
    sent(&app, "user/discord.connected");
    // Replayed, onboarding now finds the connection and gives the Discord role.
    app.engine
        .run("onboarding-flow", purchase)
        .await
        .output::<Value>();
    app.discord.verify().await;

    // The test's own browser (a reqwest cookie jar) logs the cookies it is given: that is the
    // buyer's side, not the service's.
    let logs: String = capture
        .text()
        .lines()
        .filter(|line| !line.contains(" cookie_store::"))
        .map(|line| format!("{line}\n"))
        .collect();
    // The capture saw the server's tasks, the relay and the runs, so its silence means something.
    for expected in [
        "webhook stored",
        "checkout started",
        "sending events failed; retrying",
        "email sent",
        "run completed",
        &order_id.to_string(),
    ] {
        assert!(logs.contains(expected), "the logs lack {expected:?}");
    }
    let signing_secret = SIGNING_KEY.trim_start_matches("signkey-test-");
    let svix_secret = SVIX_SECRET.trim_start_matches("whsec_");
    let link_secret_part = &LINK_SECRET[..20];
    let hashed_signing_key = inngest_sdk::signature::SigningKey::new(SIGNING_KEY).hashed();
    let state_payload = state.split('.').next().expect("state payload");
    let nonce = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(state_payload)
            .expect("base64"),
    )
    .expect("utf-8");
    let secrets: [(&str, &str); 21] = [
        ("Stripe secret key", STRIPE_KEY),
        ("Stripe webhook secret", STRIPE_WEBHOOK),
        ("Stripe signature header", &signature),
        ("PayPal client secret", PAYPAL_SECRET),
        ("Clerk secret key", CLERK_KEY),
        ("Clerk session token", &session),
        ("Svix secret", svix_secret),
        ("Resend API key", RESEND_KEY),
        ("Discord client secret", DISCORD_SECRET),
        ("Discord bot token", BOT_TOKEN),
        ("Discord OAuth code", OAUTH_CODE),
        ("Discord access token", ACCESS_TOKEN),
        ("OAuth state", &state),
        ("OAuth state payload", state_payload),
        ("OAuth state nonce (the cookie)", &nonce),
        ("Inngest signing key", signing_secret),
        ("Inngest hashed signing key", &hashed_signing_key),
        ("Inngest event key", EVENT_KEY),
        ("link signing secret", link_secret_part),
        ("signed Discord link", &link),
        ("buyer's email address", "leakprobe@"),
    ];
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, secret)| logs.to_lowercase().contains(&secret.to_lowercase()))
        .map(|(what, _)| *what)
        .collect();
    assert!(
        leaked.is_empty(),
        "secrets in the logs: {leaked:?}\n---- logs ----\n{logs}"
    );
}

/// The event the relay delivered for `event_id`, relaying until it is there (the app's
/// background relay and this pass may each hold the entry for a while).
async fn delivered(app: &TestApp, event_id: &str) -> inngest_sdk::Event<Value> {
    for _ in 0..100 {
        forward_due(&app.state).await.expect("relay pass");
        if let Some(event) = forwarded(app, event_id).pop() {
            return event;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{event_id} was not delivered within 5 s");
}
