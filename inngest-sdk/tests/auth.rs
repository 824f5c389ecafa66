//! Request signatures through the serve handler (protocol §3, §4): who may execute functions,
//! what introspection reveals to whom, the trust probe, and that no secret ever leaves.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use inngest_sdk::signature::{SigningKey, sign, verify};
use inngest_sdk::{Client, Config, Ctx, Function, FunctionOpts, ServeHandler, Trigger};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The conformance runner's key: hex for "this is a test key".
const KEY: &str = "signkey-test-7468697320697320612074657374206b6579";
/// `signkey-test-` + hex(sha256("this is a test key")), computed independently of the SDK.
const HASHED_KEY: &str =
    "signkey-test-ed30c63423735b44011c49a38c01a8062833420cfb299072e0263c986242556a";
const FALLBACK_KEY: &str = "signkey-test-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OTHER_KEY: &str = "signkey-test-deadbeefdeadbeefdeadbeefdeadbeef";
const EVENT_KEY: &str = "test-event-key";
/// hex(sha256("test-event-key")).
const EVENT_KEY_HASH: &str = "5d0ef16ddc80ea26888cd520cffb7b3c118e5c0ddddc278673cfe69e203a093e";

const EXECUTE: &str = "/api/inngest?fnId=app-hello&stepId=step";

fn hello() -> Function<()> {
    Function::new(
        FunctionOpts::new("hello").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move { Ok(ctx.event.data) },
    )
}

fn serve(config: Config) -> ServeHandler<()> {
    ServeHandler::new(Client::new(config), (), [hello()]).expect("the function is valid")
}

fn cloud() -> ServeHandler<()> {
    serve(
        Config::new("app")
            .with_signing_key(KEY)
            .with_event_key(EVENT_KEY),
    )
}

fn cloud_with_fallback() -> ServeHandler<()> {
    serve(
        Config::new("app")
            .with_signing_key(KEY)
            .with_signing_key_fallback(FALLBACK_KEY)
            .with_event_key(EVENT_KEY),
    )
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit in i64")
}

/// A call request like the executor's (protocol §6.1): JCS-canonical, keys sorted.
fn call_body(data: Value) -> Vec<u8> {
    let event = json!({
        "data": data,
        "id": "01JEVT0000000000000000000",
        "name": "t/e",
        "ts": 1_700_000_000_000_i64,
        "user": {},
    });
    serde_json::to_vec(&json!({
        "ctx": {
            "attempt": 0,
            "disable_immediate_execution": false,
            "env": "",
            "fn_id": "5a0c4f3e-0000-4000-8000-000000000001",
            "generation_id": 1,
            "job_id": "job-1",
            "max_attempts": 5,
            "qi_id": "qi-1",
            "request_id": "req-1",
            "run_id": "01JRUN0000000000000000000",
            "stack": {"current": 0, "stack": []},
            "step_id": "step",
            "use_api": false,
        },
        "defers": {},
        "event": event,
        "events": [event],
        "steps": {},
        "use_api": false,
        "version": 2,
    }))
    .expect("the call body serializes")
}

fn request(method: Method, uri: &str, body: Vec<u8>, signature: Option<String>) -> Request<Bytes> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost:3000")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("x-inngest-signature", signature);
    }
    builder.body(Bytes::from(body)).expect("the request builds")
}

/// A POST to execute `hello`, signed over the body with `key` at `at` (if any).
fn execute(body: Vec<u8>, signed: Option<(&str, i64)>) -> Request<Bytes> {
    let signature = signed.map(|(key, at)| sign(&SigningKey::new(key), &body, at));
    request(Method::POST, EXECUTE, body, signature)
}

fn introspect(signature: Option<String>) -> Request<Bytes> {
    request(Method::GET, "/api/inngest", Vec::new(), signature)
}

fn json_body(response: &Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).expect("the response body is JSON")
}

fn header<'a>(response: &'a Response<Bytes>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn assert_sdk_headers(response: &Response<Bytes>) {
    assert_eq!(header(response, "x-inngest-sdk"), Some("rust:v0.1.0"));
    assert_eq!(header(response, "x-inngest-req-version"), Some("2"));
    assert_eq!(header(response, "content-type"), Some("application/json"));
}

fn assert_refused(response: &Response<Bytes>, message: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(response), json!({ "message": message }));
    assert_sdk_headers(response);
}

const UNAUTHENTICATED_KEYS: [&str; 7] = [
    "authentication_succeeded",
    "function_count",
    "has_event_key",
    "has_signing_key",
    "has_signing_key_fallback",
    "mode",
    "schema_version",
];

fn keys_of(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------------
// Execution (POST).

#[tokio::test]
async fn unsigned_execution_is_refused_with_401() {
    let response = cloud().handle(execute(call_body(json!({})), None)).await;
    assert_refused(&response, "missing X-Inngest-Signature header");
}

#[tokio::test]
async fn signed_execution_runs_the_function() {
    let body = call_body(json!({"hello": "world"}));
    let response = cloud().handle(execute(body, Some((KEY, now())))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(&response), json!({"hello": "world"}));
    assert_sdk_headers(&response);
}

#[tokio::test]
async fn a_signature_from_just_under_five_minutes_ago_is_accepted() {
    let body = call_body(json!({"n": 1}));
    let response = cloud()
        .handle(execute(body, Some((KEY, now() - 4 * 60))))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn expired_signature_is_refused_with_401() {
    let body = call_body(json!({"n": 1}));
    let response = cloud()
        .handle(execute(body, Some((KEY, now() - 6 * 60))))
        .await;
    assert_refused(&response, "signature timestamp outside the allowed window");
}

#[tokio::test]
async fn signature_from_the_future_is_refused_with_401() {
    let body = call_body(json!({"n": 1}));
    let response = cloud()
        .handle(execute(body, Some((KEY, now() + 6 * 60))))
        .await;
    assert_refused(&response, "signature timestamp outside the allowed window");
}

#[tokio::test]
async fn signature_with_the_wrong_key_is_refused_with_401() {
    let body = call_body(json!({"n": 1}));
    let response = cloud()
        .handle(execute(body, Some((OTHER_KEY, now()))))
        .await;
    assert_refused(&response, "signature does not match");
}

#[tokio::test]
async fn body_tampered_after_signing_is_refused_with_401() {
    let signed = call_body(json!({"amount": 10}));
    let signature = sign(&SigningKey::new(KEY), &signed, now());
    let tampered = call_body(json!({"amount": 10_000}));

    let response = cloud()
        .handle(request(Method::POST, EXECUTE, tampered, Some(signature)))
        .await;

    assert_refused(&response, "signature does not match");
}

#[tokio::test]
async fn malformed_signature_header_is_refused_with_401() {
    for garbage in ["", "t=&s=", "s=00", "t=1700000000", "t=now&s=abc"] {
        let response = cloud()
            .handle(request(
                Method::POST,
                EXECUTE,
                call_body(json!({})),
                Some(garbage.to_owned()),
            ))
            .await;
        assert_refused(&response, "malformed X-Inngest-Signature header");
    }
}

#[tokio::test]
async fn fallback_signing_key_is_accepted() {
    let body = call_body(json!({"via": "fallback"}));
    let response = cloud_with_fallback()
        .handle(execute(body, Some((FALLBACK_KEY, now()))))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(&response), json!({"via": "fallback"}));
}

#[tokio::test]
async fn the_fallback_key_is_not_accepted_unless_configured() {
    let body = call_body(json!({}));
    let response = cloud()
        .handle(execute(body, Some((FALLBACK_KEY, now()))))
        .await;
    assert_refused(&response, "signature does not match");
}

#[tokio::test]
async fn cloud_mode_without_a_signing_key_refuses_every_execution() {
    let handler = serve(Config::new("app"));
    let body = call_body(json!({}));

    let unsigned = handler.handle(execute(body.clone(), None)).await;
    let signed = handler.handle(execute(body, Some((KEY, now())))).await;

    assert_refused(&unsigned, "missing X-Inngest-Signature header");
    assert_refused(&signed, "no signing key configured");
}

#[tokio::test]
async fn dev_mode_accepts_unsigned_execution() {
    let handler = serve(Config::new("app").dev(None).with_signing_key(KEY));

    let response = handler
        .handle(execute(call_body(json!({"dev": true})), None))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(&response), json!({"dev": true}));
}

#[tokio::test]
async fn signed_execution_through_axum_verifies_the_exact_bytes() {
    let app: Router = Router::new().route("/api/inngest", inngest_sdk::axum::serve(cloud()));
    let body = call_body(json!({"through": "axum"}));
    let signature = sign(&SigningKey::new(KEY), &body, now());
    let request = Request::builder()
        .method(Method::POST)
        .uri(EXECUTE)
        .header("content-type", "application/json")
        .header("x-inngest-signature", signature)
        .body(axum::body::Body::from(body))
        .expect("the request builds");

    let response = app.oneshot(request).await.expect("axum answers");

    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).expect("JSON"),
        json!({"through": "axum"})
    );
}

// ---------------------------------------------------------------------------------------------
// Introspection (GET).

#[tokio::test]
async fn unsigned_introspection_shows_only_the_public_fields() {
    let response = cloud().handle(introspect(None)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_sdk_headers(&response);
    assert_eq!(
        json_body(&response),
        json!({
            "schema_version": "2024-05-24",
            "authentication_succeeded": null,
            "function_count": 1,
            "has_event_key": true,
            "has_signing_key": true,
            "has_signing_key_fallback": false,
            "mode": "cloud",
        })
    );
}

#[tokio::test]
async fn badly_signed_introspection_reports_authentication_failed() {
    let wrong_key = sign(&SigningKey::new(OTHER_KEY), b"", now());
    let expired = sign(&SigningKey::new(KEY), b"", now() - 6 * 60);
    let over_a_body = sign(&SigningKey::new(KEY), b"{}", now());

    for signature in [wrong_key, expired, over_a_body, "garbage".to_owned()] {
        let response = cloud().handle(introspect(Some(signature.clone()))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(&response);
        assert_eq!(body["authentication_succeeded"], false, "{signature}");
        assert_eq!(keys_of(&body), UNAUTHENTICATED_KEYS, "{signature}");
    }
}

#[tokio::test]
async fn signed_introspection_reveals_hashes_not_keys() {
    let signature = sign(&SigningKey::new(KEY), b"", now());

    let response = cloud().handle(introspect(Some(signature))).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_sdk_headers(&response);
    let body = json_body(&response);
    let mut expected_keys: Vec<&str> = UNAUTHENTICATED_KEYS.to_vec();
    expected_keys.extend([
        "api_origin",
        "app_id",
        "capabilities",
        "env",
        "event_api_origin",
        "event_key_hash",
        "framework",
        "sdk_language",
        "sdk_version",
        "serve_origin",
        "serve_path",
        "signing_key_fallback_hash",
        "signing_key_hash",
    ]);
    expected_keys.sort_unstable();
    assert_eq!(keys_of(&body), expected_keys);
    assert_eq!(body["authentication_succeeded"], true);
    assert_eq!(body["app_id"], "app");
    assert_eq!(body["mode"], "cloud");
    assert_eq!(
        body["api_origin"].as_str().map(|s| s.trim_end_matches('/')),
        Some("https://api.inngest.com")
    );
    assert_eq!(
        body["event_api_origin"]
            .as_str()
            .map(|s| s.trim_end_matches('/')),
        Some("https://inn.gs")
    );
    assert_eq!(body["signing_key_hash"], HASHED_KEY);
    assert_eq!(body["signing_key_fallback_hash"], Value::Null);
    assert_eq!(body["event_key_hash"], EVENT_KEY_HASH);
    assert_eq!(body["sdk_language"], "rust");
    assert_eq!(body["sdk_version"], "0.1.0");
    assert_eq!(
        body["capabilities"],
        json!({"in_band_sync": "v1", "trust_probe": "v1"})
    );
    assert_eq!(body["env"], Value::Null);
    assert_eq!(body["serve_origin"], Value::Null);
    assert_eq!(body["serve_path"], Value::Null);
}

#[tokio::test]
async fn introspection_signed_with_the_fallback_key_shows_its_hash() {
    let signature = sign(&SigningKey::new(FALLBACK_KEY), b"", now());

    let response = cloud_with_fallback()
        .handle(introspect(Some(signature)))
        .await;

    let body = json_body(&response);
    assert_eq!(body["authentication_succeeded"], true);
    assert_eq!(body["has_signing_key_fallback"], true);
    assert_eq!(
        body["signing_key_fallback_hash"],
        "signkey-test-4179529caf32c8cca4a1772697d3c8b15837a02eefe85cd8f9483480e663f2f1"
    );
}

#[tokio::test]
async fn introspection_reports_env_and_serve_overrides_when_authenticated() {
    let handler = serve(
        Config::new("app")
            .with_signing_key(KEY)
            .with_env("branch-7")
            .with_serve_origin("https://example.com")
            .with_serve_path("/x/inngest"),
    );
    let signature = sign(&SigningKey::new(KEY), b"", now());

    let body = json_body(&handler.handle(introspect(Some(signature))).await);

    assert_eq!(body["env"], "branch-7");
    assert_eq!(body["serve_origin"], "https://example.com");
    assert_eq!(body["serve_path"], "/x/inngest");
    assert_eq!(body["event_key_hash"], Value::Null, "no event key");
    assert_eq!(body["has_event_key"], false);
}

#[tokio::test]
async fn dev_mode_introspection_trusts_any_signature_like_go() {
    let handler = serve(Config::new("app").dev(None));

    let unsigned = json_body(&handler.handle(introspect(None)).await);
    let signed = json_body(&handler.handle(introspect(Some("t=1&s=00".into()))).await);

    assert_eq!(unsigned["authentication_succeeded"], Value::Null);
    assert_eq!(unsigned["mode"], "dev");
    assert_eq!(keys_of(&unsigned), UNAUTHENTICATED_KEYS);
    assert_eq!(signed["authentication_succeeded"], true);
    assert_eq!(signed["signing_key_hash"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Trust probe.

#[tokio::test]
async fn signed_trust_probe_answers_an_empty_signed_object() {
    let signature = sign(&SigningKey::new(KEY), b"", now());

    let response = cloud()
        .handle(request(
            Method::POST,
            "/api/inngest?probe=trust",
            Vec::new(),
            Some(signature),
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_sdk_headers(&response);
    assert_eq!(response.body().as_ref(), b"{}");
    let key = SigningKey::new(KEY);
    let response_signature =
        header(&response, "x-inngest-signature").expect("the probe answer is signed");
    assert_eq!(
        verify(Some(response_signature), response.body(), &[&key], now()),
        Ok(&key)
    );
}

#[tokio::test]
async fn trust_probe_signed_with_the_fallback_key_is_answered_with_it() {
    let fallback = SigningKey::new(FALLBACK_KEY);
    let signature = sign(&fallback, b"", now());

    let response = cloud_with_fallback()
        .handle(request(
            Method::POST,
            "/api/inngest?probe=trust",
            Vec::new(),
            Some(signature),
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let response_signature =
        header(&response, "x-inngest-signature").expect("the probe answer is signed");
    assert_eq!(
        verify(Some(response_signature), b"{}", &[&fallback], now()),
        Ok(&fallback)
    );
}

#[tokio::test]
async fn unsigned_trust_probe_is_refused_with_401() {
    let response = cloud()
        .handle(request(
            Method::POST,
            "/api/inngest?probe=trust",
            Vec::new(),
            None,
        ))
        .await;
    assert_refused(&response, "missing X-Inngest-Signature header");
    assert_eq!(header(&response, "x-inngest-signature"), None);
}

#[tokio::test]
async fn dev_mode_trust_probe_answers_200() {
    let handler = serve(Config::new("app").dev(None));

    let response = handler
        .handle(request(
            Method::POST,
            "/api/inngest?probe=trust",
            Vec::new(),
            None,
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().as_ref(), b"{}");
}

// ---------------------------------------------------------------------------------------------
// Every answer.

/// One of each kind of answer the endpoint gives, in cloud mode with every secret configured.
async fn every_kind_of_response() -> Vec<(&'static str, Response<Bytes>)> {
    let handler = cloud_with_fallback();
    let body = call_body(json!({"x": 1}));
    let sync_body = json!({"url": "http://localhost:3000/api/inngest"})
        .to_string()
        .into_bytes();
    let sync = |signature: Option<String>| {
        let mut request = request(Method::PUT, "/api/inngest", sync_body.clone(), signature);
        request.headers_mut().insert(
            "x-inngest-sync-kind",
            http::HeaderValue::from_static("in_band"),
        );
        request
    };
    let signed = |bytes: &[u8]| Some(sign(&SigningKey::new(KEY), bytes, now()));
    let unknown_fn = request(
        Method::POST,
        "/api/inngest?fnId=app-nope&stepId=step",
        body.clone(),
        signed(&body),
    );
    let malformed = request(
        Method::POST,
        EXECUTE,
        b"{not json".to_vec(),
        signed(b"{not json"),
    );
    let no_fn_id = request(Method::POST, "/api/inngest", body.clone(), signed(&body));
    let delete = request(Method::DELETE, "/api/inngest", Vec::new(), None);
    let probe = request(
        Method::POST,
        "/api/inngest?probe=trust",
        Vec::new(),
        signed(b""),
    );
    let requests = vec![
        ("GET unsigned", introspect(None)),
        ("GET signed", introspect(signed(b""))),
        ("GET bad signature", introspect(Some("t=1&s=00".into()))),
        ("PUT in-band signed", sync(signed(&sync_body))),
        ("PUT in-band unsigned", sync(None)),
        ("POST signed", execute(body.clone(), Some((KEY, now())))),
        (
            "POST fallback",
            execute(body.clone(), Some((FALLBACK_KEY, now()))),
        ),
        ("POST unsigned", execute(body.clone(), None)),
        (
            "POST wrong key",
            execute(body.clone(), Some((OTHER_KEY, now()))),
        ),
        (
            "POST expired",
            execute(body.clone(), Some((KEY, now() - 600))),
        ),
        ("POST unknown function", unknown_fn),
        ("POST malformed body", malformed),
        ("POST without fnId", no_fn_id),
        ("POST trust probe", probe),
        ("DELETE", delete),
    ];
    let mut responses = Vec::new();
    for (what, request) in requests {
        responses.push((what, handler.handle(request).await));
    }
    responses
}

#[tokio::test]
async fn every_response_carries_the_sdk_headers() {
    let responses = every_kind_of_response().await;
    let statuses: Vec<(&str, u16)> = responses
        .iter()
        .map(|(what, r)| (*what, r.status().as_u16()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("GET unsigned", 200),
            ("GET signed", 200),
            ("GET bad signature", 200),
            ("PUT in-band signed", 200),
            ("PUT in-band unsigned", 401),
            ("POST signed", 200),
            ("POST fallback", 200),
            ("POST unsigned", 401),
            ("POST wrong key", 401),
            ("POST expired", 401),
            ("POST unknown function", 410),
            ("POST malformed body", 400),
            ("POST without fnId", 400),
            ("POST trust probe", 200),
            ("DELETE", 405),
        ]
    );
    for (what, response) in &responses {
        assert_eq!(
            header(response, "x-inngest-sdk"),
            Some("rust:v0.1.0"),
            "{what}"
        );
        assert_eq!(
            header(response, "x-inngest-req-version"),
            Some("2"),
            "{what}"
        );
        assert_eq!(
            header(response, "content-type"),
            Some("application/json"),
            "{what}"
        );
        assert!(
            serde_json::from_slice::<Value>(response.body()).is_ok(),
            "{what}: the body is JSON"
        );
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_response() {
    let secrets = [
        KEY,
        KEY.trim_start_matches("signkey-test-"),
        FALLBACK_KEY,
        FALLBACK_KEY.trim_start_matches("signkey-test-"),
        EVENT_KEY,
    ];
    for (what, response) in every_kind_of_response().await {
        let body = String::from_utf8_lossy(response.body()).into_owned();
        let headers: Vec<String> = response
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "{what} body reveals a secret: {body}"
            );
            for header in &headers {
                assert!(
                    !header.contains(secret),
                    "{what} header reveals a secret: {header}"
                );
            }
        }
    }
}
