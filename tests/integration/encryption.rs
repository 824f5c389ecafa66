//! With `INNGEST_ENCRYPTION_KEY` set, a purchase and the onboarding it starts run as usual, and
//! nothing that reaches Inngest (events sent, step results and outputs returned to the
//! executor) shows the buyer's email address or name.

use huckleberry::models::Provider;
use inngest_sdk::Event;
use inngest_sdk::middleware::encryption::EncryptionMiddleware;
use inngest_sdk::step::hash_step_id;
use serde_json::{Value, json};

use crate::onboarding::{mock_clerk_metadata, mock_clerk_user, mock_resend};
use crate::payments::purchase_through_stripe;
use crate::util::{fixture, spawn_app_with};

const KEYS: &str = "the academy's rotated key,the academy's first key";
/// The buyer in `clerk/user.json`: primary address, other address, first and last name.
/// What must not reach Inngest in plain text. The first name is looked for as a JSON string,
/// also escaped inside another: three bare letters can turn up by chance in base64 ciphertext,
/// quotes cannot.
const PERSONAL: [&str; 5] = [
    "ada@example.com",
    "old@example.com",
    "\"Ada\"",
    "\\\"Ada\\\"",
    "Lovelace",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_encryption_key_no_buyer_email_or_name_reaches_inngest() {
    let app = spawn_app_with(&[("INNGEST_ENCRYPTION_KEY", KEYS)]).await;
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let purchase = purchase_through_stripe(&app, pending.order.id, product.id).await;
    assert!(purchase.result.is_ok(), "{:?}", purchase.result);

    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    mock_clerk_metadata(&app, 0).await;
    let started: Vec<Event<Value>> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == "purchase/mentorship")
        .collect();
    assert_eq!(started.len(), 1, "the purchase started onboarding");
    let onboarding = app
        .engine
        .run("onboarding-flow", started[0].clone())
        .with_incoming(Event::new(
            "user/discord.connected",
            json!({ "clerkId": "user_clerk_1", "discordId": "42" }),
        ))
        .await;

    // The runs worked on the plain data: the buyer got their emails, addressed by name.
    let keys = EncryptionMiddleware::from_list(KEYS).expect("keys");
    let output = keys
        .decrypt_value(onboarding.result.as_ref().expect("onboarding completed"))
        .expect("the output decrypts");
    assert_eq!(output["outcome"], "connected");
    let buyer = &onboarding.state[&hash_step_id("get-clerk-user", 0)]["data"];
    assert!(EncryptionMiddleware::is_encrypted(buyer), "{buyer}");
    let buyer = keys.decrypt_value(buyer).expect("the step result decrypts");
    assert_eq!(
        (buyer["email"].as_str(), buyer["first_name"].as_str()),
        (Some("ada@example.com"), Some("Ada"))
    );
    let emails = app.resend.received_requests().await.expect("recorded");
    assert_eq!(emails.len(), 2, "welcome and access emails");
    assert!(String::from_utf8_lossy(&emails[0].body).contains("ada@example.com"));

    // Every body sent to the event API, and every answer the executor got, is free of them.
    let mut bodies: Vec<String> = app
        .events
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(!bodies.is_empty());
    bodies.extend(
        purchase
            .requests
            .iter()
            .chain(&onboarding.requests)
            .map(|r| r.body.to_string()),
    );
    for body in &bodies {
        for personal in PERSONAL {
            assert!(
                !body.contains(personal),
                "{personal:?} reached Inngest in {body}"
            );
        }
    }
}

/// Clerk's and Resend's webhooks, forwarded by our own routes, carry emails and names: with a
/// key they reach Inngest sealed, and the functions still read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clerk_and_resend_webhooks_reach_inngest_sealed_and_are_still_read() {
    use crate::util::svix_headers;

    let app = spawn_app_with(&[("INNGEST_ENCRYPTION_KEY", KEYS)]).await;
    let user: Value = serde_json::from_str(&fixture("clerk/user.json")).expect("json");
    let clerk = json!({ "type": "user.created", "object": "event", "data": user }).to_string();
    let resend = json!({
        "type": "email.bounced",
        "data": { "email_id": "email_1", "to": ["ada@example.com"], "subject": "Welcome, Ada" }
    })
    .to_string();
    for (path, id, body) in [
        ("/api/webhooks/clerk", "msg_clerk", &clerk),
        ("/api/webhooks/resend", "msg_resend", &resend),
    ] {
        let answer = app
            .http
            .post(app.url(path))
            .headers(svix_headers(id, body))
            .body(body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "{path}");
    }
    for request in app.events.requests() {
        for personal in PERSONAL {
            assert!(
                !request.body.to_string().contains(personal),
                "{personal:?} reached Inngest in {}",
                request.body
            );
        }
    }
    let forwarded = app.events.events();
    assert_eq!(
        forwarded[0].data["id"], "user_clerk_1",
        "the id stays readable"
    );
    assert_eq!(forwarded[1].data["email_id"], "email_1");

    let synced = app
        .engine
        .run("sync-clerk-user", forwarded[0].clone())
        .await;
    let keys = EncryptionMiddleware::from_list(KEYS).expect("keys");
    let output = keys
        .decrypt_value(synced.result.as_ref().expect("synced"))
        .expect("the output decrypts");
    assert_eq!(output["email"], "ada@example.com");
    let mut conn = app.conn().await;
    let stored = huckleberry::models::User::by_clerk_id(&mut conn, "user_clerk_1")
        .await
        .expect("query")
        .expect("the user is stored");
    assert_eq!(stored.email.as_deref(), Some("ada@example.com"));

    let tracked = app
        .engine
        .run("track-email-events", forwarded[1].clone())
        .await;
    assert!(tracked.result.is_ok(), "{:?}", tracked.result);
}
