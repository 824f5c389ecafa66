//! Identity: Clerk user sync, Discord OAuth, dashboard access, Resend events and the
//! Svix-verified direct webhook routes.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::auth::links::Purpose;
use huckleberry::models::User;
use huckleberry::models::access::DashboardAccess;
use huckleberry::models::discord::DiscordConnection;
use huckleberry::models::email_log::{Claim, EmailLogEntry, SentEmail, is_suppressed};
use huckleberry::schema::{discord_connections, oauth_states};
use inngest_sdk::Event;
use serde_json::{Value, json};
use wiremock::matchers::{
    basic_auth, body_partial_json, body_string_contains, header, method, path,
};
use wiremock::{Mock, ResponseTemplate};

use crate::util::{TestApp, fixture, spawn_app, svix_headers};

fn link_token(app: &TestApp, clerk_id: &str, valid_for: Duration) -> String {
    app.state.links.as_ref().expect("links").sign(
        Purpose::DiscordLink,
        clerk_id,
        Utc::now() + valid_for,
    )
}

async fn get(app: &TestApp, path_and_query: &str) -> (u16, String) {
    let response = app
        .http
        .get(app.url(path_and_query))
        .send()
        .await
        .expect("answer");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status().as_u16(), location)
}

/// A request from another browser: no cookie jar, only the cookie given.
async fn get_with_cookie(app: &TestApp, path_and_query: &str, nonce: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client
        .get(app.url(path_and_query))
        .header("cookie", format!("hb_discord_oauth={nonce}"))
        .send()
        .await
        .expect("answer");
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The nonce inside a signed state (what the browser's cookie holds).
fn nonce_of(state: &str) -> String {
    use base64::Engine;
    let encoded = state.split('.').next().expect("token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

/// Follows the email link and returns the `state` Discord would send back.
async fn start_oauth(app: &TestApp, clerk_id: &str) -> String {
    let (status, location) = get(
        app,
        &format!(
            "/api/auth/discord?token={}",
            link_token(app, clerk_id, Duration::hours(1))
        ),
    )
    .await;
    assert_eq!(status, 303, "{location}");
    assert!(
        location.starts_with("https://discord.test/oauth2/authorize?"),
        "{location}"
    );
    let url = url::Url::parse(&location).expect("url");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "discord-client");
    assert_eq!(query["scope"], "identify guilds.join");
    assert_eq!(
        query["redirect_uri"],
        "http://localhost:3000/api/auth/discord/callback"
    );
    query["state"].clone()
}

async fn mock_discord(app: &TestApp, discord_id: &str) {
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(basic_auth("discord-client", "discord-secret"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "user-access-token", "token_type": "Bearer", "expires_in": 604800, "scope": "identify guilds.join"
        })))
        .mount(&app.discord)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/@me"))
        .and(header("authorization", "Bearer user-access-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": discord_id, "username": "ada_draws" })),
        )
        .mount(&app.discord)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/guilds/guild-1/members/{discord_id}")))
        .and(header("authorization", "Bot bot-token"))
        .and(body_partial_json(
            json!({ "access_token": "user-access-token" }),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&app.discord)
        .await;
}

async fn seed_user(app: &TestApp, clerk_id: &str) -> User {
    let mut conn = app.conn().await;
    User::ensure(&mut conn, clerk_id).await.expect("user")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_discord_stores_the_account_joins_the_guild_and_announces_it() {
    let app = spawn_app().await;
    let user = seed_user(&app, "user_clerk_1").await;
    mock_discord(&app, "discord-42").await;
    let state = start_oauth(&app, "user_clerk_1").await;
    let (status, location) = get(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={state}"),
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "http://localhost:3000/auth/discord/success")
    );

    let mut conn = app.conn().await;
    let connection = DiscordConnection::of_user(&mut conn, user.id)
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(
        (
            connection.discord_user_id.as_str(),
            connection.discord_username.as_str()
        ),
        ("discord-42", "ada_draws")
    );
    let events: Vec<_> = app
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == "user/discord.connected")
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].data,
        json!({ "clerkId": "user_clerk_1", "discordId": "discord-42" })
    );

    // The same callback again, even with the browser's cookie: the state was used.
    let location = get_with_cookie(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={state}"),
        &nonce_of(&state),
    )
    .await;
    assert_eq!(
        location,
        "http://localhost:3000/auth/error?reason=reused_state"
    );
}

async fn assert_refused(app: &TestApp, path: &str, reason: &str) {
    let (status, location) = get(app, path).await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        format!("http://localhost:3000/auth/error?reason={reason}"),
        "{path}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_replayed_links_and_states_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    seed_user(&app, "user_clerk_1").await;
    mock_discord(&app, "discord-42").await;
    let links = app.state.links.clone().expect("links");

    let forged_link = link_token(&app, "user_clerk_1", Duration::hours(1))
        .replace("dXNlcl9jbGVya18x", "dXNlcl9jbGVya18y");
    assert_refused(
        &app,
        &format!("/api/auth/discord?token={forged_link}"),
        "invalid_link",
    )
    .await;
    let old_link = link_token(&app, "user_clerk_1", Duration::hours(-1));
    assert_refused(
        &app,
        &format!("/api/auth/discord?token={old_link}"),
        "expired_link",
    )
    .await;
    let stranger = link_token(&app, "user_nobody", Duration::hours(1));
    assert_refused(
        &app,
        &format!("/api/auth/discord?token={stranger}"),
        "unknown_user",
    )
    .await;

    let state = start_oauth(&app, "user_clerk_1").await;
    let (nonce_b64, rest) = state.split_once('.').expect("token");
    let forged_state = format!("{}.{rest}", nonce_b64.chars().rev().collect::<String>());
    assert_refused(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={forged_state}"),
        "forged_state",
    )
    .await;
    assert_refused(
        &app,
        "/api/auth/discord/callback?code=the-code",
        "forged_state",
    )
    .await;
    let expired_state = links.sign(
        Purpose::OAuthState,
        "some-nonce",
        Utc::now() - Duration::minutes(1),
    );
    assert_refused(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={expired_state}"),
        "expired_state",
    )
    .await;
    let unknown_state = links.sign(
        Purpose::OAuthState,
        "never-issued",
        Utc::now() + Duration::minutes(5),
    );
    let location = get_with_cookie(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={unknown_state}"),
        "never-issued",
    )
    .await;
    assert_eq!(
        location,
        "http://localhost:3000/auth/error?reason=reused_state"
    );
    // A genuine state in a browser that did not start the flow (a crafted link).
    let other_browser = get_with_cookie(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={state}"),
        "someone-elses-nonce",
    )
    .await;
    assert_eq!(
        other_browser,
        "http://localhost:3000/auth/error?reason=state_mismatch"
    );
    // A link token is not a state, even though both are signed with the same key.
    let link = link_token(&app, "user_clerk_1", Duration::hours(1));
    assert_refused(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={link}"),
        "forged_state",
    )
    .await;

    let mut conn = app.conn().await;
    let stored: i64 = discord_connections::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    assert!(app.events.events().is_empty());
    // The real state is still usable: none of the above consumed it.
    let used: i64 = oauth_states::table
        .filter(oauth_states::used_at.is_not_null())
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(used, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_account_linked_to_another_user_is_refused() {
    let app = spawn_app().await;
    let first = seed_user(&app, "user_first").await;
    seed_user(&app, "user_second").await;
    let mut conn = app.conn().await;
    DiscordConnection::connect(&mut conn, first.id, "discord-42", "ada_draws")
        .await
        .expect("connect");
    mock_discord(&app, "discord-42").await;
    let state = start_oauth(&app, "user_second").await;
    assert_refused(
        &app,
        &format!("/api/auth/discord/callback?code=the-code&state={state}"),
        "discord_already_linked",
    )
    .await;
    let stored: i64 = discord_connections::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(stored, 1);
    assert!(app.events.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_errors_and_denials_are_refused() {
    let app = spawn_app().await;
    seed_user(&app, "user_clerk_1").await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": "invalid_grant" })))
        .mount(&app.discord)
        .await;
    let state = start_oauth(&app, "user_clerk_1").await;
    assert_refused(
        &app,
        &format!("/api/auth/discord/callback?code=bad&state={state}"),
        "discord_error",
    )
    .await;
    let state = start_oauth(&app, "user_clerk_1").await;
    assert_refused(
        &app,
        &format!("/api/auth/discord/callback?error=access_denied&state={state}"),
        "discord_denied",
    )
    .await;
    assert_eq!(app.count("discord_connections").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_user_events_upsert_and_soft_delete_users() {
    let app = spawn_app().await;
    let created: Value = serde_json::from_str(&fixture("clerk/user.json")).expect("json");
    let run = app
        .engine
        .run(
            "sync-clerk-user",
            Event::new("clerk/user.created", created.clone()),
        )
        .await;
    assert_eq!(
        run.output::<Value>()["email"],
        "ada@example.com",
        "the primary address, not the first"
    );
    let mut updated = created;
    updated["first_name"] = json!("Augusta");
    app.engine
        .run("sync-clerk-user", Event::new("clerk/user.updated", updated))
        .await
        .output::<Value>();
    let mut conn = app.conn().await;
    let user = User::by_clerk_id(&mut conn, "user_clerk_1")
        .await
        .expect("query")
        .expect("user");
    assert_eq!(user.first_name.as_deref(), Some("Augusta"));

    let deleted = json!({ "id": "user_clerk_1", "object": "user", "deleted": true });
    let run = app
        .engine
        .run("sync-clerk-user", Event::new("clerk/user.deleted", deleted))
        .await;
    assert_eq!(run.output::<Value>()["deleted"], true);
    let user = User::by_clerk_id(&mut conn, "user_clerk_1")
        .await
        .expect("query")
        .expect("user");
    assert!(user.deleted_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_clerk_route_verifies_svix_and_forwards_the_event() {
    let app = spawn_app().await;
    let body = json!({ "type": "user.created", "object": "event", "data": { "id": "user_9" } })
        .to_string();
    let post = |headers: reqwest::header::HeaderMap, body: String| {
        app.http
            .post(app.url("/api/webhooks/clerk"))
            .headers(headers)
            .body(body)
            .send()
    };
    assert_eq!(
        post(svix_headers("msg_1", &body), body.clone())
            .await
            .expect("answer")
            .status(),
        200
    );
    let forwarded: Vec<_> = app.events.events();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(
        (forwarded[0].name.as_str(), forwarded[0].id.as_deref()),
        ("clerk/user.created", Some("msg_1"))
    );

    let tampered = body.replace("user_9", "user_8");
    assert_eq!(
        post(svix_headers("msg_2", &body), tampered)
            .await
            .expect("answer")
            .status(),
        400
    );
    assert_eq!(
        post(reqwest::header::HeaderMap::new(), body.clone())
            .await
            .expect("answer")
            .status(),
        400
    );
    app.events.set_down(true);
    assert_eq!(
        post(svix_headers("msg_3", &body), body.clone())
            .await
            .expect("answer")
            .status(),
        503,
        "Svix will retry"
    );
    assert_eq!(app.events.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_updates_the_log_and_suppresses_the_address() {
    let app = spawn_app().await;
    let user = seed_user(&app, "user_clerk_1").await;
    let mut conn = app.conn().await;
    let lease = std::time::Duration::from_secs(60);
    let email = SentEmail {
        user_id: Some(user.id),
        to: "ada@example.com",
        kind: "welcome",
        idempotency_key: "onboarding-1-welcome",
    };
    let claim = EmailLogEntry::claim(&mut conn, &email, lease)
        .await
        .expect("claim");
    assert!(matches!(claim, Claim::Ours(_)), "{claim:?}");
    EmailLogEntry::mark_sent(&mut conn, &email, "em_1")
        .await
        .expect("log");
    let delivered = json!({ "email_id": "em_1", "to": ["ada@example.com"] });
    app.engine
        .run(
            "track-email-events",
            Event::new("resend/email.delivered", delivered),
        )
        .await
        .output::<Value>();
    let bounced =
        json!({ "email_id": "em_1", "to": ["Ada@Example.com"], "bounce": { "type": "Permanent" } });
    app.engine
        .run(
            "track-email-events",
            Event::new("resend/email.bounced", bounced),
        )
        .await
        .output::<Value>();
    // A late "opened" does not overwrite the bounce.
    let opened = json!({ "email_id": "em_1", "to": ["ada@example.com"] });
    app.engine
        .run(
            "track-email-events",
            Event::new("resend/email.opened", opened),
        )
        .await
        .output::<Value>();
    let log = EmailLogEntry::of_user(&mut conn, user.id)
        .await
        .expect("log");
    assert_eq!(log[0].status, huckleberry::models::EmailStatus::Bounced);
    assert!(
        is_suppressed(&mut conn, "ada@example.com")
            .await
            .expect("query")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granting_access_records_it_updates_clerk_and_gives_the_discord_role() {
    let app = spawn_app().await;
    let product = app.seed_product(2).await;
    let pending = app
        .pending_order(
            &product,
            "user_clerk_1",
            huckleberry::models::Provider::Stripe,
        )
        .await;
    app.set_checkout_id(pending.order.id, "cs_access").await;
    let mut conn = app.conn().await;
    let paid = huckleberry::payments::fulfilment::ConfirmedPayment {
        order_id: pending.order.id,
        provider: huckleberry::models::Provider::Stripe,
        provider_payment_id: "pi_access".into(),
        provider_checkout_id: "cs_access".into(),
        amounts: huckleberry::models::order::PaidAmounts {
            total: "200.00".parse().expect("decimal"),
            original: "200.00".parse().expect("decimal"),
            discount: "0".parse().expect("decimal"),
            discount_code: None,
            currency: "usd".into(),
        },
    };
    let fulfilment = huckleberry::payments::fulfilment::fulfil(&mut conn, &paid)
        .await
        .expect("fulfil");
    DiscordConnection::connect(&mut conn, pending.user.id, "discord-42", "ada_draws")
        .await
        .expect("connect");
    Mock::given(method("PATCH"))
        .and(path("/v1/users/user_clerk_1/metadata"))
        .and(header("authorization", "Bearer sk_test_clerk"))
        .and(body_partial_json(
            json!({ "public_metadata": { "dashboard": { "access": true } } }),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("clerk/user.json"), "application/json"),
        )
        .expect(1)
        .mount(&app.clerk)
        .await;
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .and(header("authorization", "Bot bot-token"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&app.discord)
        .await;
    let state = app
        .state
        .access()
        .grant(fulfilment.pack_id)
        .await
        .expect("granted");
    assert!(state.has_access);
    assert_eq!(
        state.dashboard["mentors"][0]["mentorId"],
        json!(product.mentor_id)
    );
    let grants = DashboardAccess::active_for_user(&mut conn, pending.user.id)
        .await
        .expect("query");
    assert_eq!(grants.len(), 1);
    app.clerk.verify().await;
    app.discord.verify().await;

    // Revoking (a refund) takes the role away and publishes no access.
    Mock::given(method("PATCH"))
        .and(path("/v1/users/user_clerk_1/metadata"))
        .and(body_partial_json(
            json!({ "public_metadata": { "dashboard": { "access": false, "mentors": [] } } }),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("clerk/user.json"), "application/json"),
        )
        .mount(&app.clerk)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&app.discord)
        .await;
    let state = app
        .state
        .access()
        .revoke(
            fulfilment.pack_id,
            huckleberry::models::RevokeReason::Refunded,
        )
        .await
        .expect("revoked")
        .expect("the pack had access");
    assert!(!state.has_access);
    assert!(
        DashboardAccess::active_for_user(&mut conn, pending.user.id)
            .await
            .expect("query")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_purge_deletes_used_and_expired_oauth_states_and_keeps_live_ones() {
    let app = spawn_app().await;
    let user = seed_user(&app, "user_clerk_1").await;
    let mut conn = app.conn().await;
    let now = Utc::now();
    for (hash, expires_at) in [
        ("expired", now - Duration::minutes(1)),
        ("used", now + Duration::minutes(5)),
        ("live", now + Duration::minutes(5)),
    ] {
        huckleberry::models::discord::store_oauth_state(&mut conn, hash, user.id, expires_at)
            .await
            .expect("store state");
    }
    let consumed = huckleberry::models::discord::consume_oauth_state(&mut conn, "used")
        .await
        .expect("consume");
    assert_eq!(consumed, Some(user.id));

    let run = app
        .engine
        .run(
            "purge-oauth-states",
            Event::new("inngest/scheduled.timer", json!({})),
        )
        .await;
    assert_eq!(run.output::<Value>(), json!({ "deleted": 2 }));
    let left: Vec<String> = oauth_states::table
        .select(oauth_states::state_hash)
        .load(&mut conn)
        .await
        .expect("states");
    assert_eq!(left, vec!["live".to_owned()]);
    // The live state still works after the purge.
    let consumed = huckleberry::models::discord::consume_oauth_state(&mut conn, "live")
        .await
        .expect("consume");
    assert_eq!(consumed, Some(user.id));
}
