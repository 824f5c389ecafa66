//! Sending events (protocol §8): `Client::send` / `send_many` against the crate's fake event
//! API, scripted to refuse or drop requests, recording every request, failed ones included.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use inngest_sdk::testing::EventApi;
use inngest_sdk::{Client, Config, Event, SendError};
use serde_json::{Value, json};

const EVENT_KEY: &str = "ek-secret-0123456789";

/// A local address nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn cloud_client(events_url: &str) -> Client {
    Client::new(
        Config::new("app")
            .with_event_key(EVENT_KEY)
            .with_event_api_base_url(events_url)
            .expect("the fake's URL parses"),
    )
}

fn dev_client(events_url: &str) -> Client {
    Client::new(
        Config::new("app")
            .dev(None)
            .with_event_api_base_url(events_url)
            .expect("the fake's URL parses"),
    )
}

fn signup(email: &str) -> Event<Value> {
    Event::new("user/signed.up", json!({ "email": email }))
}

fn unix_millis() -> i64 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis();
    i64::try_from(millis).expect("millis fit in i64")
}

/// `<unix millis>,<base64 of 10 bytes>`; returns the two parts.
fn parse_seed(seed: &str) -> (i64, Vec<u8>) {
    let (millis, entropy) = seed
        .split_once(',')
        .unwrap_or_else(|| panic!("seed {seed:?} has no comma"));
    let millis: i64 = millis
        .parse()
        .unwrap_or_else(|_| panic!("seed {seed:?} does not start with millis"));
    let entropy = base64::engine::general_purpose::STANDARD
        .decode(entropy)
        .unwrap_or_else(|_| panic!("seed {seed:?} does not end in standard base64"));
    (millis, entropy)
}

// ---------------------------------------------------------------------------------------------
// Delivery and ids.

#[tokio::test]
async fn send_returns_the_id_the_event_api_assigns() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());

    let id = client
        .send(&signup("a@example.com").with_id("order-42"))
        .await
        .expect("the event is accepted");

    assert_eq!(id, "order-42");
    let batches = api.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].key, EVENT_KEY);
    assert_eq!(batches[0].events.len(), 1);
    assert_eq!(batches[0].events[0].name, "user/signed.up");
    assert_eq!(batches[0].events[0].data, json!({"email": "a@example.com"}));
}

#[tokio::test]
async fn send_many_posts_one_array_and_returns_ids_in_order() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());
    let events = [
        Event::new("a/first", json!({"n": 1})),
        Event::new("b/second", json!({"n": 2})).with_ts(1_700_000_000_000),
        Event::new("c/third", json!({"n": 3})).with_user(json!({"id": "u1"})),
    ];

    let ids = client.send_many(&events).await.expect("accepted");

    let batches = api.batches();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids, batches[0].ids, "the ids the API answered, in order");
    let requests = api.requests();
    assert_eq!(requests.len(), 1, "one request for the whole batch");
    assert_eq!(requests[0].path, format!("/e/{EVENT_KEY}"));
    assert_eq!(
        requests[0].body,
        json!([
            {"name": "a/first", "data": {"n": 1}},
            {"name": "b/second", "data": {"n": 2}, "ts": 1_700_000_000_000_i64},
            {"name": "c/third", "data": {"n": 3}, "user": {"id": "u1"}},
        ])
    );
}

#[tokio::test]
async fn send_many_with_no_events_sends_nothing() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());

    let ids = client
        .send_many::<Value>(&[])
        .await
        .expect("nothing to send is fine");

    assert!(ids.is_empty());
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn event_requests_carry_the_sdk_headers() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());

    client
        .send(&signup("a@example.com"))
        .await
        .expect("accepted");

    let sent = &api.requests()[0];
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-inngest-sdk"), Some("rust:v0.1.0"));
    assert_eq!(sent.header("user-agent"), Some("rust:v0.1.0"));
    assert_eq!(sent.header("x-inngest-env"), None, "no env configured");
}

#[tokio::test]
async fn a_client_on_the_callers_http_client_sends_through_it_with_its_own_identity() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let mut defaults = reqwest::header::HeaderMap::new();
    defaults.insert(
        "x-app",
        reqwest::header::HeaderValue::from_static("huckleberry"),
    );
    let shared = reqwest::Client::builder()
        .user_agent("huckleberry/1")
        .default_headers(defaults)
        .build()
        .expect("an HTTP client");
    let config = Config::new("app")
        .with_event_key(EVENT_KEY)
        .with_env("feature-branch")
        .with_event_api_base_url(&api.url())
        .expect("the fake's URL parses");
    let client = Client::with_http_client(config, shared);

    client
        .send(&signup("a@example.com"))
        .await
        .expect("accepted");

    let sent = &api.requests()[0];
    assert_eq!(
        sent.header("x-app"),
        Some("huckleberry"),
        "the caller's client"
    );
    assert_eq!(sent.header("user-agent"), Some("rust:v0.1.0"));
    assert_eq!(sent.header("x-inngest-sdk"), Some("rust:v0.1.0"));
    assert_eq!(sent.header("x-inngest-env"), Some("feature-branch"));
}

/// A shared client may have no timeout at all; the SDK's requests are bounded anyway (30 s a
/// try), so a silent event API ends in an error, not a send that waits for ever. The clock is
/// paused: tokio moves it to the next timer whenever the test is only waiting.
#[tokio::test(start_paused = true)]
async fn a_silent_event_api_times_out_even_on_a_client_without_a_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let url = format!("http://{}", silent.local_addr().expect("local address"));
    let config = Config::new("app")
        .with_event_key(EVENT_KEY)
        .with_event_api_base_url(&url)
        .expect("the URL parses");
    let client = Client::with_http_client(config, reqwest::Client::new());
    let started = tokio::time::Instant::now();

    let sent = tokio::time::timeout(
        std::time::Duration::from_secs(3600),
        client.send(&signup("a@example.com")),
    )
    .await
    .expect("each try is cut off before the hour is up");

    assert!(
        matches!(sent, Err(SendError::Unreachable { attempts: 5, .. })),
        "{sent:?}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(5 * 30));
    drop(silent);
}

#[tokio::test]
async fn x_inngest_env_is_sent_when_configured() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = Client::new(
        Config::new("app")
            .with_event_key(EVENT_KEY)
            .with_env("feature-branch")
            .with_event_api_base_url(&api.url())
            .expect("the fake's URL parses"),
    );

    client
        .send(&signup("a@example.com"))
        .await
        .expect("accepted");

    assert_eq!(
        api.requests()[0].header("x-inngest-env"),
        Some("feature-branch")
    );
}

#[tokio::test]
async fn event_id_seed_is_unix_millis_and_ten_random_bytes() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());

    let before = unix_millis();
    client
        .send(&signup("a@example.com"))
        .await
        .expect("accepted");
    client
        .send(&signup("b@example.com"))
        .await
        .expect("accepted");
    let after = unix_millis();

    let seeds: Vec<String> = api
        .requests()
        .iter()
        .map(|r| {
            r.header("x-inngest-event-id-seed")
                .expect("every send carries a seed")
                .to_owned()
        })
        .collect();
    for seed in &seeds {
        let (millis, entropy) = parse_seed(seed);
        assert!(
            (before..=after).contains(&millis),
            "{millis} not in {before}..={after}"
        );
        assert_eq!(entropy.len(), 10, "{seed}");
    }
    assert_ne!(
        parse_seed(&seeds[0]).1,
        parse_seed(&seeds[1]).1,
        "each send draws fresh entropy"
    );
}

// ---------------------------------------------------------------------------------------------
// Failures and retries.

#[tokio::test]
async fn a_503_is_retried_with_the_same_seed_until_it_succeeds() {
    let api = EventApi::start().await.expect("the fake event API starts");
    api.answer_next(2, 503, json!({"error": "busy"}));
    let client = cloud_client(&api.url());

    let id = client
        .send(&signup("a@example.com"))
        .await
        .expect("the third attempt is accepted");

    let batches = api.batches();
    assert_eq!(batches.len(), 1, "stored once");
    assert_eq!(id, batches[0].ids[0]);
    let requests = api.requests();
    assert_eq!(requests.len(), 3, "two refusals, then success");
    let seed = requests[0]
        .header("x-inngest-event-id-seed")
        .expect("a seed");
    for retry in &requests[1..] {
        assert_eq!(
            retry.header("x-inngest-event-id-seed"),
            Some(seed),
            "a retry must reuse the seed so Inngest derives the same ids"
        );
        assert_eq!(retry.body, requests[0].body);
    }
}

#[tokio::test]
async fn the_testing_event_api_outage_is_ridden_out() {
    let api = EventApi::start().await.expect("the fake event API starts");
    api.fail_next(2);
    let client = cloud_client(&api.url());

    let ids = client
        .send_many(&[signup("a@example.com"), signup("b@example.com")])
        .await
        .expect("accepted after the outage");

    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(api.batches().len(), 1, "stored once");
    assert_eq!(api.events().len(), 2);
}

#[tokio::test]
async fn a_persistent_5xx_gives_up_after_five_attempts() {
    let api = EventApi::start().await.expect("the fake event API starts");
    api.answer_next(5, 500, json!({"status": 500, "error": "queue full"}));
    let client = cloud_client(&api.url());

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("every attempt fails");

    assert!(
        matches!(&err, SendError::Rejected { status: 500, message } if message == "queue full"),
        "{err:?}"
    );
    assert_eq!(api.requests().len(), 5);
}

#[tokio::test]
async fn a_400_is_not_retried_and_its_error_is_surfaced() {
    let api = EventApi::start().await.expect("the fake event API starts");
    api.answer_next(
        1,
        400,
        json!({"ids": [], "status": 400, "error": "event payload too large"}),
    );
    let client = cloud_client(&api.url());

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("refused");

    assert!(
        matches!(&err, SendError::Rejected { status: 400, message } if message == "event payload too large"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Inngest event API answered 400: event payload too large"
    );
    assert_eq!(api.requests().len(), 1, "a 400 is final");
}

#[tokio::test]
async fn an_unknown_event_key_is_surfaced_and_not_retried() {
    let api = EventApi::start().await.expect("the fake event API starts");
    api.answer_next(
        1,
        401,
        json!({"status": 401, "message": "", "error": "Event key not found"}),
    );
    let client = cloud_client(&api.url());

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("refused");

    assert!(
        matches!(&err, SendError::Rejected { status: 401, message } if message == "Event key not found"),
        "{err:?}"
    );
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_event_api_fails_after_five_attempts() {
    let client = cloud_client(&closed_port_url().await);

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("nothing listens");

    assert!(
        matches!(err, SendError::Unreachable { attempts: 5, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("Inngest event API unreachable after 5 attempts"),
        "{err}"
    );
}

#[tokio::test]
async fn dropped_connections_are_retried_five_times_with_one_seed() {
    let api = EventApi::start().await.expect("the fake event API starts");
    api.hang_up_next(5);
    let client = cloud_client(&api.url());

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("the server never answers");

    assert!(
        matches!(err, SendError::Unreachable { attempts: 5, .. }),
        "{err:?}"
    );
    let seeds: Vec<String> = api
        .requests()
        .iter()
        .map(|r| {
            r.header("x-inngest-event-id-seed")
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(seeds.len(), 5, "{seeds:?}");
    assert!(!seeds[0].is_empty(), "the seed header was sent");
    assert!(seeds.iter().all(|s| s == &seeds[0]), "{seeds:?}");
}

#[tokio::test]
async fn send_errors_never_show_the_event_key() {
    let client = cloud_client(&closed_port_url().await);

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("nothing listens");

    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.contains(EVENT_KEY), "{display}");
    assert!(!debug.contains(EVENT_KEY), "{debug}");
    assert!(display.contains("/e/***"), "still says where: {display}");
}

// ---------------------------------------------------------------------------------------------
// Keys and names.

#[tokio::test]
async fn cloud_mode_without_an_event_key_is_refused_before_sending() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = Client::new(
        Config::new("app")
            .with_event_api_base_url(&api.url())
            .expect("the fake's URL parses"),
    );

    let err = client
        .send(&signup("a@example.com"))
        .await
        .expect_err("no key");

    assert!(matches!(err, SendError::MissingEventKey), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no event key configured (set INNGEST_EVENT_KEY)"
    );
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn dev_mode_without_a_key_uses_no_event_key_set() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = dev_client(&api.url());

    client
        .send(&signup("a@example.com"))
        .await
        .expect("the dev server takes any key");

    assert_eq!(api.batches()[0].key, "NO_EVENT_KEY_SET");
}

#[tokio::test]
async fn dev_mode_uses_a_configured_key() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = Client::new(
        Config::new("app")
            .dev(None)
            .with_event_key("local-key")
            .with_event_api_base_url(&api.url())
            .expect("the fake's URL parses"),
    );

    client
        .send(&signup("a@example.com"))
        .await
        .expect("accepted");

    assert_eq!(api.requests()[0].path, "/e/local-key");
}

#[tokio::test]
async fn reserved_inngest_names_are_refused_before_sending() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());
    let events = [
        signup("a@example.com"),
        Event::new("inngest/function.failed", json!({})),
    ];

    let err = client.send_many(&events).await.expect_err("reserved name");

    assert!(
        matches!(&err, SendError::InvalidEvent { name, .. } if name == "inngest/function.failed"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid event \"inngest/function.failed\": names starting with inngest/ are reserved"
    );
    assert!(api.requests().is_empty(), "no event of the batch is sent");
}

#[tokio::test]
async fn an_empty_name_is_refused_before_sending() {
    let api = EventApi::start().await.expect("the fake event API starts");
    let client = cloud_client(&api.url());

    let err = client
        .send(&Event::new("  ", json!({})))
        .await
        .expect_err("no name");

    assert!(matches!(err, SendError::InvalidEvent { .. }), "{err:?}");
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn the_seed_differs_between_sends_but_not_between_attempts() {
    // Two sends, the first retried once: three requests, two distinct seeds.
    let api = EventApi::start().await.expect("the fake event API starts");
    api.answer_next(1, 502, json!({"error": "proxy"}));
    let client = cloud_client(&api.url());

    for email in ["a@example.com", "b@example.com"] {
        client.send(&signup(email)).await.expect("accepted");
    }

    let seeds: Vec<String> = api
        .requests()
        .iter()
        .map(|r| {
            r.header("x-inngest-event-id-seed")
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(seeds.len(), 3, "{seeds:?}");
    assert_eq!(seeds[0], seeds[1], "a retry keeps its seed");
    assert_ne!(seeds[1], seeds[2], "a new send draws a new seed");
}
