//! PUT: sync (protocol §5). Out-of-band sync POSTs the app to a fake Inngest API that records
//! what it receives; in-band sync answers the app in the response.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::post;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use inngest_sdk::function::{
    Batch, Cancel, Concurrency, Debounce, FunctionConfigError, FunctionFailed, RateLimit, Scope,
    SingletonMode, Throttle,
};
use inngest_sdk::signature::{SigningKey, sign, verify};
use inngest_sdk::{Client, Config, Ctx, Function, FunctionOpts, ServeHandler, Trigger};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The conformance runner's key: hex for "this is a test key".
const KEY: &str = "signkey-test-7468697320697320612074657374206b6579";
/// `signkey-test-` + hex(sha256("this is a test key")), computed independently of the SDK.
const HASHED_KEY: &str =
    "signkey-test-ed30c63423735b44011c49a38c01a8062833420cfb299072e0263c986242556a";
const FALLBACK_KEY: &str = "signkey-test-aabbccdd";
/// `signkey-test-` + hex(sha256([0xaa, 0xbb, 0xcc, 0xdd])).
const HASHED_FALLBACK_KEY: &str =
    "signkey-test-8d70d691c822d55638b6e7fd54cd94170c87d19eb1f628b757506ede5688d297";

const HOST: &str = "myapp.test:3000";
const APP_URL: &str = "http://myapp.test:3000/api/inngest";

// ---------------------------------------------------------------------------------------------
// A fake Inngest API serving `POST /fn/register`.

#[derive(Debug, Clone)]
struct Registration {
    query: Option<String>,
    headers: HeaderMap,
    body: Value,
}

impl Registration {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct ApiState {
    registrations: Vec<Registration>,
    /// Scripted answers, used in order; afterwards every call succeeds.
    answers: VecDeque<(StatusCode, Value)>,
}

struct FakeApi {
    url: String,
    state: Arc<Mutex<ApiState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApi {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ApiState::default()));
        let app = Router::new()
            .route("/fn/register", post(register))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the fake API");
        let addr = listener.local_addr().expect("the fake API has an address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    fn then_answer(&self, status: StatusCode, body: Value) {
        self.lock().answers.push_back((status, body));
    }

    fn registrations(&self) -> Vec<Registration> {
        self.lock().registrations.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().expect("fake API state is not poisoned")
    }
}

async fn register(
    State(state): State<Arc<Mutex<ApiState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AxumResponse {
    let mut state = state.lock().expect("fake API state is not poisoned");
    state.registrations.push(Registration {
        query: uri.query().map(str::to_owned),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let (status, body) = state.answers.pop_front().unwrap_or((
        StatusCode::OK,
        json!({"ok": true, "modified": true, "app_id": "a1", "sync_id": "s1"}),
    ));
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

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

fn hello() -> Function<()> {
    Function::new(
        FunctionOpts::new("fn").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move { Ok(ctx.event.data) },
    )
}

fn serve(config: Config) -> ServeHandler<()> {
    ServeHandler::new(Client::new(config), (), [hello()]).expect("the function is valid")
}

fn cloud_config(api: &FakeApi) -> Config {
    Config::new("app")
        .with_signing_key(KEY)
        .with_api_base_url(&api.url)
        .expect("the fake API URL parses")
}

/// Inngest's out-of-band ping: a PUT with the app URL and its server kind, signed as a server
/// with a signing key signs it (the dev server signs nothing; dev mode ignores the header).
fn ping(path_and_query: &str, server_kind: Option<&str>) -> Request<Bytes> {
    let body = json!({ "url": APP_URL }).to_string();
    let signature = sign(&SigningKey::new(KEY), body.as_bytes(), now());
    let mut request = unsigned_ping(path_and_query, server_kind, &body);
    request
        .headers_mut()
        .insert("x-inngest-signature", signature.parse().expect("header"));
    request
}

fn unsigned_ping(path_and_query: &str, server_kind: Option<&str>, body: &str) -> Request<Bytes> {
    let mut request = Request::builder()
        .method(Method::PUT)
        .uri(path_and_query)
        .header("host", HOST)
        .header("content-type", "application/json");
    if let Some(kind) = server_kind {
        request = request.header("x-inngest-server-kind", kind);
    }
    request
        .body(Bytes::from(body.to_owned()))
        .expect("the ping request builds")
}

fn in_band_put(body: Value, signature: Option<String>) -> Request<Bytes> {
    let mut request = Request::builder()
        .method(Method::PUT)
        .uri("/api/inngest")
        .header("host", HOST)
        .header("content-type", "application/json")
        .header("x-inngest-sync-kind", "in_band")
        .header("x-inngest-server-kind", "cloud");
    if let Some(signature) = signature {
        request = request.header("x-inngest-signature", signature);
    }
    request
        .body(Bytes::from(body.to_string()))
        .expect("the in-band request builds")
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit in i64")
}

fn json_body(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).expect("the response body is JSON")
}

fn header<'a>(response: &'a Response<Bytes>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn the_hello_function(url: &str) -> Value {
    json!({
        "id": "app-fn",
        "name": "fn",
        "triggers": [{"event": "t/e"}],
        "steps": {"step": {
            "id": "step",
            "name": "fn",
            "runtime": {"type": "http", "url": format!("{url}?fnId=app-fn&step=step")},
        }},
    })
}

// ---------------------------------------------------------------------------------------------
// Out-of-band sync.

#[tokio::test]
async fn an_unsigned_cloud_sync_cannot_choose_the_registered_host() {
    let api = FakeApi::start().await;
    let body = json!({ "url": APP_URL }).to_string();
    let response = serve(cloud_config(&api))
        .handle(unsigned_ping("/api/inngest", Some("cloud"), &body))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        json_body(&response)["message"]
            .as_str()
            .expect("message")
            .contains("INNGEST_SERVE_ORIGIN")
    );
    assert!(api.registrations().is_empty(), "nothing was registered");

    // With a configured serve origin the request's Host no longer matters.
    let config = cloud_config(&api).with_serve_origin("https://app.example.com");
    let response = serve(config)
        .handle(unsigned_ping("/api/inngest", Some("cloud"), &body))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let registered = &api.registrations()[0].body["url"];
    assert_eq!(registered, "https://app.example.com/api/inngest");
}

/// An unsigned PUT carrying everything a caller controls: a foreign `Host`, a proxy scheme,
/// and a query that tries to add a path, a function id and a step.
fn forged_ping() -> Request<Bytes> {
    let mut request = unsigned_ping(
        "/api/inngest?deployId=d-7&fnId=evil&step=x&next=https://evil.test",
        Some("cloud"),
        "",
    );
    let headers = request.headers_mut();
    headers.insert("host", http::HeaderValue::from_static("evil.test:666"));
    headers.insert(
        "x-forwarded-proto",
        http::HeaderValue::from_static("gopher"),
    );
    request
}

#[tokio::test]
async fn an_unsigned_cloud_sync_registers_only_the_configured_url() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api).with_serve_origin("https://app.example.com"));

    let response = handler.handle(forged_ping()).await;

    assert_eq!(response.status(), StatusCode::OK);
    let sent = &api.registrations()[0];
    assert_eq!(sent.body["url"], "https://app.example.com/api/inngest");
    assert_eq!(
        sent.body["functions"],
        json!([the_hello_function("https://app.example.com/api/inngest")])
    );
    assert_eq!(sent.query.as_deref(), Some("deployId=d-7"));
}

#[tokio::test]
async fn the_configured_origin_and_path_win_over_a_signed_requests_host_and_scheme() {
    let api = FakeApi::start().await;
    let handler = serve(
        cloud_config(&api)
            .with_serve_origin("app.example.com")
            .with_serve_path("/x/inngest"),
    );
    let mut request = ping("/y/inngest?fnId=evil&region=eu", Some("cloud"));
    let headers = request.headers_mut();
    headers.insert("host", http::HeaderValue::from_static("evil.test"));
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("http"));

    let response = handler.handle(request).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        api.registrations()[0].body["url"],
        "https://app.example.com/x/inngest?region=eu"
    );
}

#[tokio::test]
async fn a_badly_signed_cloud_sync_is_refused_even_with_a_configured_origin() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api).with_serve_origin("https://app.example.com"));
    let mut request = forged_ping();
    request.headers_mut().insert(
        "x-inngest-signature",
        http::HeaderValue::from_static("t=1&s=00"),
    );

    let response = handler.handle(request).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(api.registrations().is_empty(), "nothing was registered");
}

#[tokio::test]
async fn a_dev_sync_still_reports_the_dev_servers_url_without_reserved_params() {
    let api = FakeApi::start().await;
    let config = Config::new("app")
        .dev(None)
        .with_api_base_url(&api.url)
        .expect("the fake API URL parses");

    let response = serve(config)
        .handle(unsigned_ping(
            "/api/inngest?fnId=evil&region=eu",
            Some("dev"),
            "",
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        api.registrations()[0].body["url"],
        format!("{APP_URL}?region=eu")
    );
}

#[tokio::test]
async fn out_of_band_sync_posts_functions_with_hashed_key() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api));

    let response = handler
        .handle(ping("/api/inngest?deployId=deploy-123", Some("cloud")))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(&response),
        json!({"message": "Successfully synced.", "modified": true})
    );
    assert_eq!(
        header(&response, "x-inngest-sync-kind"),
        Some("out_of_band")
    );
    assert_eq!(header(&response, "x-inngest-sdk"), Some("rust:v0.1.0"));

    let registrations = api.registrations();
    assert_eq!(registrations.len(), 1, "one POST /fn/register");
    let sent = &registrations[0];
    assert_eq!(sent.query.as_deref(), Some("deployId=deploy-123"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {HASHED_KEY}").as_str())
    );
    assert_eq!(sent.header("x-inngest-expected-server-kind"), Some("cloud"));
    assert_eq!(sent.header("x-inngest-sdk"), Some("rust:v0.1.0"));
    assert_eq!(sent.header("user-agent"), Some("rust:v0.1.0"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.headers.get_all("content-type").iter().count(), 1);
    assert_eq!(sent.header("x-inngest-env"), None, "no env configured");
    assert_eq!(
        sent.body,
        json!({
            "v": "1",
            "url": APP_URL,
            "deployType": "ping",
            "sdk": "rust:v0.1.0",
            "framework": "rust",
            "appName": "app",
            "appVersion": null,
            "functions": [the_hello_function(APP_URL)],
            "headers": {"env": "", "platform": ""},
            "idempotencyKey": "",
            "capabilities": {"in_band_sync": "v1", "trust_probe": "v1"},
        })
    );
}

#[tokio::test]
async fn out_of_band_sync_reports_modified_false_when_the_server_omits_it() {
    let api = FakeApi::start().await;
    api.then_answer(StatusCode::OK, json!({"ok": true, "app_id": "a1"}));
    let handler = serve(cloud_config(&api));

    let response = handler.handle(ping("/api/inngest", Some("dev"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(&response),
        json!({"message": "Successfully synced.", "modified": false})
    );
    let sent = &api.registrations()[0];
    assert_eq!(sent.query, None, "no deployId to forward");
    assert_eq!(sent.header("x-inngest-expected-server-kind"), Some("dev"));
}

#[tokio::test]
async fn out_of_band_sync_sends_the_configured_env_and_app_version() {
    let api = FakeApi::start().await;
    let handler = serve(
        cloud_config(&api)
            .with_env("branch-1")
            .with_app_version("2024-06-01"),
    );

    let response = handler.handle(ping("/api/inngest", None)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let sent = &api.registrations()[0];
    assert_eq!(sent.header("x-inngest-env"), Some("branch-1"));
    assert_eq!(sent.body["headers"]["env"], "branch-1");
    assert_eq!(sent.body["appVersion"], "2024-06-01");
    assert_eq!(
        sent.header("x-inngest-expected-server-kind"),
        None,
        "nothing to echo when the PUT names no server kind"
    );
}

#[tokio::test]
async fn out_of_band_sync_drops_deploy_id_but_keeps_other_query_params() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api));

    handler
        .handle(ping("/api/inngest?deployId=d-1&region=eu", Some("cloud")))
        .await;

    let sent = &api.registrations()[0];
    assert_eq!(sent.query.as_deref(), Some("deployId=d-1"));
    assert_eq!(sent.body["url"], format!("{APP_URL}?region=eu"));
    assert_eq!(
        sent.body["functions"][0]["steps"]["step"]["runtime"]["url"],
        format!("{APP_URL}?region=eu&fnId=app-fn&step=step")
    );
}

#[tokio::test]
async fn out_of_band_sync_behind_a_tls_proxy_reports_https() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api));
    let mut request = ping("/api/inngest", Some("cloud"));
    request
        .headers_mut()
        .insert("x-forwarded-proto", http::HeaderValue::from_static("https"));

    handler.handle(request).await;

    assert_eq!(
        api.registrations()[0].body["url"],
        "https://myapp.test:3000/api/inngest"
    );
}

#[tokio::test]
async fn out_of_band_sync_without_a_signing_key_sends_no_authorization() {
    let api = FakeApi::start().await;
    let config = Config::new("app")
        .dev(None)
        .with_api_base_url(&api.url)
        .expect("the fake API URL parses");
    let handler = serve(config);

    let response = handler.handle(ping("/api/inngest", Some("dev"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.registrations()[0].header("authorization"), None);
}

#[tokio::test]
async fn out_of_band_sync_surfaces_the_servers_error() {
    let api = FakeApi::start().await;
    api.then_answer(
        StatusCode::BAD_REQUEST,
        json!({"error": "At least one function is invalid"}),
    );
    let handler = serve(cloud_config(&api));

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(&response),
        json!({"message": "At least one function is invalid", "modified": false})
    );
    assert_eq!(
        header(&response, "x-inngest-sync-kind"),
        Some("out_of_band")
    );
    assert_eq!(api.registrations().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn out_of_band_sync_surfaces_a_publicerr_message() {
    let api = FakeApi::start().await;
    api.then_answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"message": "database unavailable", "status": 500}),
    );
    let handler = serve(cloud_config(&api));

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json_body(&response)["message"], "database unavailable");
}

#[tokio::test]
async fn out_of_band_sync_retries_with_the_fallback_key_after_401() {
    let api = FakeApi::start().await;
    api.then_answer(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    let handler = serve(cloud_config(&api).with_signing_key_fallback(FALLBACK_KEY));

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(&response),
        json!({"message": "Successfully synced.", "modified": true})
    );
    let bearers: Vec<String> = api
        .registrations()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        bearers,
        [
            format!("Bearer {HASHED_KEY}"),
            format!("Bearer {HASHED_FALLBACK_KEY}")
        ]
    );
}

#[tokio::test]
async fn out_of_band_sync_refused_by_both_keys_answers_the_last_401() {
    let api = FakeApi::start().await;
    api.then_answer(
        StatusCode::UNAUTHORIZED,
        json!({"error": "primary refused"}),
    );
    api.then_answer(StatusCode::FORBIDDEN, json!({"error": "fallback refused"}));
    let handler = serve(cloud_config(&api).with_signing_key_fallback(FALLBACK_KEY));

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(&response)["message"], "fallback refused");
    assert_eq!(api.registrations().len(), 2);
}

#[tokio::test]
async fn out_of_band_sync_to_an_unreachable_api_answers_500_naming_it() {
    let api_url = closed_port_url().await;
    let config = Config::new("app")
        .with_signing_key(KEY)
        .with_api_base_url(&api_url)
        .expect("the URL parses");
    let handler = serve(config);

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = json_body(&response);
    assert_eq!(body["modified"], false);
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.starts_with("could not reach Inngest")
            && message.contains(&format!("{api_url}/fn/register")),
        "{message}"
    );
    assert_eq!(
        header(&response, "x-inngest-sync-kind"),
        Some("out_of_band")
    );
}

// ---------------------------------------------------------------------------------------------
// What an operator sees in the log when a sync is refused or fails: one warn line with the
// reason and what to set, and never a key.

/// Every form of the test keys that must never reach a log line.
fn secrets() -> [String; 6] {
    let bare = |key: &str| key.trim_start_matches("signkey-test-").to_owned();
    [
        KEY.to_owned(),
        bare(KEY),
        HASHED_KEY.to_owned(),
        FALLBACK_KEY.to_owned(),
        bare(FALLBACK_KEY),
        HASHED_FALLBACK_KEY.to_owned(),
    ]
}

fn assert_one_warning_without_keys(logs: &common::Logs) -> String {
    let warnings = logs.warnings();
    let text = logs.text();
    assert_eq!(warnings.len(), 1, "one warn line in:\n{text}");
    for secret in secrets() {
        assert!(!text.contains(&secret), "a key reached the log: {text}");
    }
    warnings[0].clone()
}

#[tokio::test]
async fn an_unsigned_cloud_sync_without_a_serve_origin_is_logged_once_with_what_to_set() {
    let api = FakeApi::start().await;
    let (logs, _guard) = common::Logs::capture();

    let response = serve(cloud_config(&api))
        .handle(unsigned_ping("/api/inngest", Some("cloud"), ""))
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let line = assert_one_warning_without_keys(&logs);
    assert!(line.contains("refused a sync request"), "{line}");
    assert!(line.contains("401"), "{line}");
    assert!(
        line.contains("missing X-Inngest-Signature"),
        "the reason: {line}"
    );
    assert!(
        line.contains("set INNGEST_SERVE_ORIGIN"),
        "what to set: {line}"
    );
}

#[tokio::test]
async fn a_badly_signed_sync_is_logged_once_naming_the_signing_key_to_set() {
    let api = FakeApi::start().await;
    let body = json!({ "url": APP_URL }).to_string();
    let mut request = unsigned_ping("/api/inngest", Some("cloud"), &body);
    let forged = sign(
        &SigningKey::new("signkey-test-0badc0de"),
        body.as_bytes(),
        now(),
    );
    request
        .headers_mut()
        .insert("x-inngest-signature", forged.parse().expect("header"));
    let (logs, _guard) = common::Logs::capture();

    let response = serve(cloud_config(&api).with_signing_key_fallback(FALLBACK_KEY))
        .handle(request)
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let line = assert_one_warning_without_keys(&logs);
    assert!(line.contains("signature does not match"), "{line}");
    assert!(line.contains("set INNGEST_SIGNING_KEY"), "{line}");
    assert!(api.registrations().is_empty());
}

#[tokio::test]
async fn a_registration_the_server_refuses_is_logged_once_with_its_status_and_message() {
    let api = FakeApi::start().await;
    api.then_answer(
        StatusCode::UNAUTHORIZED,
        json!({"error": "primary refused"}),
    );
    api.then_answer(
        StatusCode::UNAUTHORIZED,
        json!({"error": "invalid signing key"}),
    );
    let handler = serve(cloud_config(&api).with_signing_key_fallback(FALLBACK_KEY));
    let (logs, _guard) = common::Logs::capture();

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.registrations().len(), 2, "both keys were tried");
    let line = assert_one_warning_without_keys(&logs);
    assert!(line.contains("Inngest refused the registration"), "{line}");
    assert!(line.contains("401"), "its status: {line}");
    assert!(line.contains("invalid signing key"), "its message: {line}");
    assert!(line.contains("set INNGEST_SIGNING_KEY"), "{line}");

    // Any other refusal carries the server's own words.
    api.then_answer(
        StatusCode::BAD_REQUEST,
        json!({"error": "At least one function is invalid"}),
    );
    let (logs, _guard) = common::Logs::capture();
    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let line = assert_one_warning_without_keys(&logs);
    assert!(line.contains("400"), "{line}");
    assert!(line.contains("At least one function is invalid"), "{line}");
}

#[tokio::test]
async fn a_sync_that_cannot_reach_the_api_is_logged_once_naming_the_base_url() {
    let config = Config::new("app")
        .with_signing_key(KEY)
        .with_api_base_url(&closed_port_url().await)
        .expect("the URL parses");
    let (logs, _guard) = common::Logs::capture();

    let response = serve(config)
        .handle(ping("/api/inngest", Some("cloud")))
        .await;

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let line = assert_one_warning_without_keys(&logs);
    assert!(line.contains("unreachable"), "{line}");
    assert!(line.contains("INNGEST_BASE_URL"), "{line}");
}

#[tokio::test]
async fn serve_origin_and_path_overrides_change_the_reported_url() {
    let api = FakeApi::start().await;
    let handler = serve(
        cloud_config(&api)
            .with_serve_origin("https://example.com")
            .with_serve_path("/x/inngest"),
    );

    let response = handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(response.status(), StatusCode::OK);
    let sent = &api.registrations()[0];
    assert_eq!(sent.body["url"], "https://example.com/x/inngest");
    assert_eq!(
        sent.body["functions"],
        json!([the_hello_function("https://example.com/x/inngest")])
    );
}

#[tokio::test]
async fn serve_origin_alone_keeps_the_request_path() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api).with_serve_origin("https://example.com:8443"));

    handler.handle(ping("/api/inngest", Some("cloud"))).await;

    assert_eq!(
        api.registrations()[0].body["url"],
        "https://example.com:8443/api/inngest"
    );
}

#[tokio::test]
async fn out_of_band_sync_through_axum_reports_the_axum_framework() {
    let api = FakeApi::start().await;
    let app: Router = Router::new().route(
        "/api/inngest",
        inngest_sdk::axum::serve(serve(cloud_config(&api))),
    );
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/api/inngest?deployId=d-9")
        .header("host", HOST)
        .header("x-inngest-server-kind", "dev")
        .header(
            "x-inngest-signature",
            sign(
                &SigningKey::new(KEY),
                json!({ "url": APP_URL }).to_string().as_bytes(),
                now(),
            ),
        )
        .body(axum::body::Body::from(
            json!({ "url": APP_URL }).to_string(),
        ))
        .expect("the request builds");

    let response = app.oneshot(request).await.expect("axum answers");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("x-inngest-sync-kind")
            .and_then(|v| v.to_str().ok()),
        Some("out_of_band")
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON"),
        json!({"message": "Successfully synced.", "modified": true})
    );
    let sent = &api.registrations()[0];
    assert_eq!(sent.body["framework"], "axum");
    assert_eq!(sent.body["url"], APP_URL);
    assert_eq!(sent.query.as_deref(), Some("deployId=d-9"));
}

// ---------------------------------------------------------------------------------------------
// In-band sync.

#[tokio::test]
async fn in_band_sync_in_dev_mode_answers_the_app_without_a_signature() {
    let handler = serve(Config::new("app").dev(None));
    // The conformance runner sends its proxy's bare origin.
    let url = "http://127.0.0.1:9999";

    let response = handler
        .handle(in_band_put(json!({ "url": url }), None))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-inngest-sync-kind"), Some("in_band"));
    assert_eq!(header(&response, "x-inngest-sdk"), Some("rust:v0.1.0"));
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(
        header(&response, "x-inngest-signature"),
        None,
        "no key to sign with"
    );
    let body = json_body(&response);
    assert_eq!(body["app_id"], "app");
    assert_eq!(body["sdk_language"], "rust");
    assert_eq!(body["sdk_version"], "0.1.0");
    assert_eq!(body["url"], url);
    assert_eq!(body["platform"], Value::Null);
    assert_eq!(body["functions"], json!([the_hello_function(url)]));
    assert_eq!(body["inspection"]["authentication_succeeded"], true);
    assert_eq!(body["inspection"]["mode"], "dev");
}

#[tokio::test]
async fn in_band_sync_in_cloud_mode_refuses_an_unsigned_request_with_401() {
    let handler = serve(Config::new("app").with_signing_key(KEY));

    let response = handler
        .handle(in_band_put(json!({ "url": APP_URL }), None))
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&response, "x-inngest-sync-kind"), Some("in_band"));
    let body = json_body(&response);
    assert!(body.get("functions").is_none(), "{body}");
}

#[tokio::test]
async fn in_band_sync_in_cloud_mode_refuses_a_wrong_key_with_401() {
    let handler = serve(Config::new("app").with_signing_key(KEY));
    let body = json!({ "url": APP_URL }).to_string();
    let signature = sign(&SigningKey::new(FALLBACK_KEY), body.as_bytes(), now());

    let response = handler
        .handle(in_band_put(
            serde_json::from_str(&body).expect("JSON"),
            Some(signature),
        ))
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn in_band_sync_in_cloud_mode_signs_its_response_over_the_exact_bytes() {
    let handler = serve(Config::new("app").with_signing_key(KEY));
    let body = json!({ "url": APP_URL });
    let key = SigningKey::new(KEY);
    let signature = sign(&key, body.to_string().as_bytes(), now());

    let response = handler.handle(in_band_put(body, Some(signature))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-inngest-sync-kind"), Some("in_band"));
    let response_signature =
        header(&response, "x-inngest-signature").expect("the response is signed");
    assert_eq!(
        verify(Some(response_signature), response.body(), &[&key], now()),
        Ok(&key)
    );
    let mut altered = response.body().to_vec();
    altered.push(b' ');
    assert!(
        verify(Some(response_signature), &altered, &[&key], now()).is_err(),
        "the signature covers the body as sent"
    );
    let body = json_body(&response);
    assert_eq!(body["url"], APP_URL);
    assert_eq!(body["functions"], json!([the_hello_function(APP_URL)]));
    assert_eq!(body["inspection"]["signing_key_hash"], HASHED_KEY);
}

#[tokio::test]
async fn in_band_sync_signed_with_the_fallback_key_is_answered_with_that_key() {
    let handler = serve(
        Config::new("app")
            .with_signing_key(KEY)
            .with_signing_key_fallback(FALLBACK_KEY),
    );
    let body = json!({ "url": APP_URL });
    let fallback = SigningKey::new(FALLBACK_KEY);
    let signature = sign(&fallback, body.to_string().as_bytes(), now());

    let response = handler.handle(in_band_put(body, Some(signature))).await;

    assert_eq!(response.status(), StatusCode::OK);
    let response_signature =
        header(&response, "x-inngest-signature").expect("the response is signed");
    assert_eq!(
        verify(
            Some(response_signature),
            response.body(),
            &[&fallback],
            now()
        ),
        Ok(&fallback)
    );
}

#[tokio::test]
async fn in_band_sync_without_a_url_is_a_400() {
    let handler = serve(Config::new("app").dev(None));

    let missing = handler.handle(in_band_put(json!({}), None)).await;
    let empty = handler
        .handle(in_band_put(json!({ "url": "" }), None))
        .await;

    for response in [missing, empty] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            json_body(&response),
            json!({"message": "missing url in sync body"})
        );
    }
}

#[tokio::test]
async fn in_band_sync_with_a_malformed_body_is_a_400() {
    let handler = serve(Config::new("app").dev(None));
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/api/inngest")
        .header("x-inngest-sync-kind", "in_band")
        .body(Bytes::from_static(b"not json"))
        .expect("the request builds");

    let response = handler.handle(request).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let message = json_body(&response)["message"]
        .as_str()
        .expect("a message")
        .to_owned();
    assert!(message.starts_with("malformed sync body"), "{message}");
}

#[tokio::test]
async fn in_band_sync_applies_the_serve_overrides_to_the_sent_url() {
    let handler = serve(
        Config::new("app")
            .dev(None)
            .with_serve_origin("https://example.com")
            .with_serve_path("/x/inngest"),
    );

    let response = handler
        .handle(in_band_put(
            json!({ "url": "http://127.0.0.1:4000/api/inngest" }),
            None,
        ))
        .await;

    let body = json_body(&response);
    assert_eq!(body["url"], "https://example.com/x/inngest");
    assert_eq!(
        body["functions"][0]["steps"]["step"]["runtime"]["url"],
        "https://example.com/x/inngest?fnId=app-fn&step=step"
    );
}

#[tokio::test]
async fn disabled_in_band_sync_falls_back_to_out_of_band() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api).with_in_band_sync(false));

    let body = json!({ "url": "http://elsewhere/api" });
    let signature = sign(&SigningKey::new(KEY), body.to_string().as_bytes(), now());
    let response = handler.handle(in_band_put(body, Some(signature))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-inngest-sync-kind"),
        Some("out_of_band")
    );
    assert_eq!(
        json_body(&response),
        json!({"message": "Successfully synced.", "modified": true})
    );
    let registrations = api.registrations();
    assert_eq!(registrations.len(), 1);
    assert_eq!(
        registrations[0].body["url"], APP_URL,
        "out-of-band reports the request's own URL, not the body's"
    );
}

#[tokio::test]
async fn an_unknown_sync_kind_is_out_of_band() {
    let api = FakeApi::start().await;
    let handler = serve(cloud_config(&api));
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/api/inngest")
        .header("host", HOST)
        .header("x-inngest-sync-kind", "in-band")
        .header(
            "x-inngest-signature",
            sign(&SigningKey::new(KEY), b"", now()),
        )
        .body(Bytes::new())
        .expect("the request builds");

    let response = handler.handle(request).await;

    assert_eq!(
        header(&response, "x-inngest-sync-kind"),
        Some("out_of_band")
    );
    assert_eq!(api.registrations().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Function configuration on the wire.

fn everything() -> Function<()> {
    let opts = FunctionOpts::new("everything")
        .with_name("Everything at once")
        .with_trigger(Trigger::event("shop/order.placed").with_if("event.data.total > 100"))
        .with_trigger(
            Trigger::cron("0 9 * * 1")
                .with_timezone("Europe/Paris")
                .with_jitter(Duration::from_secs(30)),
        )
        .with_retries(7)
        .with_concurrency(Concurrency::new(5).with_key("event.data.customer_id"))
        .with_step_concurrency(
            Concurrency::new(20)
                .with_key("event.data.region")
                .with_scope(Scope::Account),
        )
        .with_throttle(
            Throttle::new(10, Duration::from_secs(60))
                .with_burst(2)
                .with_key("event.data.customer_id"),
        )
        .with_rate_limit(
            RateLimit::new(100, Duration::from_secs(3600)).with_key("event.data.customer_id"),
        )
        .with_debounce(
            Debounce::new(Duration::from_secs(5))
                .with_key("event.data.order_id")
                .with_timeout(Duration::from_secs(60)),
        )
        .with_cancel(
            Cancel::on("shop/order.cancelled")
                .with_if("async.data.order_id == event.data.order_id")
                .with_timeout(Duration::from_secs(48 * 3600)),
        )
        .with_priority("event.data.priority")
        .with_start_timeout(Duration::from_secs(10))
        .with_finish_timeout(Duration::from_secs(90 * 60))
        .with_singleton(Some("event.data.customer_id".into()), SingletonMode::Cancel);
    Function::new(
        opts,
        |ctx: Ctx<Value, ()>| async move { Ok(ctx.event.data) },
    )
    .on_failure(|ctx: Ctx<FunctionFailed<Value>, ()>| async move { Ok(ctx.event.data.run_id) })
}

#[tokio::test]
async fn in_band_functions_carry_every_option() {
    let handler = ServeHandler::new(
        Client::new(Config::new("shop").dev(None)),
        (),
        [everything()],
    )
    .expect("every option is valid");

    let response = handler
        .handle(in_band_put(
            json!({ "url": "http://localhost:3000/api/inngest" }),
            None,
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(&response);
    assert_eq!(
        body["inspection"]["function_count"], 2,
        "the failure handler counts"
    );
    insta::assert_json_snapshot!("in_band_functions_with_every_option", body["functions"]);
}

#[tokio::test]
async fn batching_syncs_its_size_timeout_key_and_condition() {
    let batch = Batch::new(50, Duration::from_secs(5))
        .with_key("event.data.user_id")
        .with_if("event.data.kind == 'note'");
    let opts = FunctionOpts::new("batched")
        .with_trigger(Trigger::event("t/e"))
        .with_batch(batch);
    let handler = ServeHandler::new(Client::new(Config::new("shop").dev(None)), (), [on(opts)])
        .expect("a valid batch");

    let response = handler
        .handle(in_band_put(
            json!({ "url": "http://localhost:3000/api/inngest" }),
            None,
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(&response)["functions"][0]["batchEvents"],
        json!({
            "maxSize": 50,
            "timeout": "5s",
            "key": "event.data.user_id",
            "if": "event.data.kind == 'note'",
        })
    );
}

fn must_fail(functions: Vec<Function<()>>) -> FunctionConfigError {
    ServeHandler::new(Client::new(Config::new("app")), (), functions)
        .err()
        .expect("registration refuses this configuration")
}

fn on(opts: FunctionOpts) -> Function<()> {
    Function::new(
        opts,
        |ctx: Ctx<Value, ()>| async move { Ok(ctx.event.data) },
    )
}

#[test]
fn registration_refuses_eleven_triggers() {
    let opts = (0..11).fold(FunctionOpts::new("busy"), |opts, i| {
        opts.with_trigger(Trigger::event(format!("t/{i}")))
    });
    let err = must_fail(vec![on(opts)]);
    assert_eq!(err.function, "busy");
    assert_eq!(
        err.to_string(),
        "function \"busy\": needs 1 to 10 triggers, has 11"
    );
}

#[test]
fn registration_refuses_a_function_without_triggers() {
    let err = must_fail(vec![on(FunctionOpts::new("idle"))]);
    assert_eq!(
        err.to_string(),
        "function \"idle\": needs 1 to 10 triggers, has 0"
    );
}

#[test]
fn registration_refuses_batching_combined_with_cancel() {
    let opts = FunctionOpts::new("batched")
        .with_trigger(Trigger::event("t/e"))
        .with_batch(Batch::new(10, Duration::from_secs(5)))
        .with_cancel(Cancel::on("t/stop"));
    let err = must_fail(vec![on(opts)]);
    assert_eq!(
        err.to_string(),
        "function \"batched\": batchEvents cannot be combined with cancel"
    );
}

#[test]
fn registration_refuses_a_bad_cron() {
    let opts = FunctionOpts::new("nightly").with_trigger(Trigger::cron("61 * * * *"));
    let err = must_fail(vec![on(opts)]);
    assert_eq!(err.function, "nightly");
    assert!(err.rule.starts_with("invalid cron \"61 * * * *\""), "{err}");
}

#[test]
fn registration_refuses_a_jitter_over_five_minutes() {
    let opts = FunctionOpts::new("nightly")
        .with_trigger(Trigger::cron("0 0 * * *").with_jitter(Duration::from_secs(301)));
    let err = must_fail(vec![on(opts)]);
    assert_eq!(
        err.to_string(),
        "function \"nightly\": jitter of cron \"0 0 * * *\" must be 1s to 5m"
    );
}

#[test]
fn registration_refuses_21_retries() {
    let opts = FunctionOpts::new("stubborn")
        .with_trigger(Trigger::event("t/e"))
        .with_retries(21);
    let err = must_fail(vec![on(opts)]);
    assert_eq!(
        err.to_string(),
        "function \"stubborn\": retries must be at most 20"
    );
}

#[test]
fn registration_accepts_20_retries() {
    let opts = FunctionOpts::new("stubborn")
        .with_trigger(Trigger::event("t/e"))
        .with_retries(20);
    let handler = ServeHandler::new(Client::new(Config::new("app")), (), [on(opts)]);
    assert!(handler.is_ok(), "20 is the maximum, not beyond it");
}

#[test]
fn registration_refuses_duplicate_ids() {
    let err = must_fail(vec![hello(), hello()]);
    assert_eq!(
        err.to_string(),
        "function \"fn\": another function has the same id"
    );
}

#[test]
fn registration_refuses_a_function_clashing_with_a_failure_handler() {
    let with_handler =
        hello().on_failure(|_: Ctx<FunctionFailed<Value>, ()>| async move { Ok(()) });
    let clash = on(FunctionOpts::new("fn-failure").with_trigger(Trigger::event("t/x")));
    let err = must_fail(vec![with_handler, clash]);
    assert_eq!(
        err.to_string(),
        "function \"fn-failure\": another function has the same id"
    );
}

#[test]
fn registration_refuses_an_env_scope_without_a_key() {
    let opts = FunctionOpts::new("scoped")
        .with_trigger(Trigger::event("t/e"))
        .with_concurrency(Concurrency::new(3).with_scope(Scope::Env));
    let err = must_fail(vec![on(opts)]);
    assert_eq!(
        err.to_string(),
        "function \"scoped\": an env or account concurrency scope needs a key"
    );
}
