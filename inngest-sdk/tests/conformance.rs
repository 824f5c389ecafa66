//! The conformance runner's request sequences against the fixture functions, with the exact
//! responses it expects (protocol §10.6-10.7), through the axum adapter.

mod common;
mod conformance_fixtures;

use axum::Router;
use bytes::Bytes;
use common::{Call, Reply, event};
use http::Request;
use http_body_util::BodyExt;
use inngest_sdk::signature::{SigningKey, sign};
use inngest_sdk::{Config, Mode};
use serde_json::{Value, json};
use tower::ServiceExt;

const FIRST_STEP: &str = "98bf98df193bcce7c33e6bc50927cf2ac21206cb";
const SLEEP: &str = "c3ca5f787365eae0dea86250e27d476406956478";
const SECOND_STEP: &str = "764e20ec975d4ef820d0f42e6a5833384bd7ee36";
const WAIT: &str = "daaad336276d15594d0e765f96c17cd746bf4971";

fn app() -> Router {
    let config = Config::new(conformance_fixtures::APP_ID)
        .dev(None)
        .with_signing_key("7468697320697320612074657374206b6579");
    conformance_fixtures::router(config).expect("fixtures register")
}

async fn send(app: &Router, request: Request<Bytes>) -> Reply {
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Reply::from(http::Response::from_parts(parts, bytes))
}

fn fixture(slug: &str) -> String {
    format!("conformance-rust-{slug}")
}

fn assert_retriable(reply: &Reply) {
    assert_ne!(
        reply.header("x-inngest-no-retry"),
        Some("true"),
        "{}",
        reply.raw
    );
}

#[tokio::test]
async fn in_band_sync_answers_what_the_runner_decodes() {
    let request = Request::put("http://127.0.0.1:3000/api/inngest")
        .header("content-type", "application/json")
        .header("x-inngest-sync-kind", "in_band")
        .header("x-inngest-server-kind", "dev")
        .body(Bytes::from(r#"{"url":"http://127.0.0.1:40123"}"#))
        .expect("request");
    let reply = send(&app(), request).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.header("x-inngest-sync-kind"), Some("in_band"));
    assert!(reply.header("x-inngest-signature").is_some());
    let body = &reply.json;
    assert_eq!(body["app_id"], "conformance-rust");
    assert_eq!(body["sdk_language"], "rust");
    assert_eq!(body["sdk_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["url"], "http://127.0.0.1:40123");
    assert!(body.as_object().expect("object").contains_key("platform"));
    let ids: Vec<&str> = body["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .map(|f| f["id"].as_str().expect("id"))
        .collect();
    for slug in [
        "test-suite-simple-fn",
        "test-suite-step-test",
        "test-suite-retry-test",
        "test-suite-cancel-test",
        "test-suite-wait-for-event",
    ] {
        assert!(
            ids.iter().any(|id| id.ends_with(&format!("-{slug}"))),
            "{slug} missing"
        );
    }
    let step_url = body["functions"][0]["steps"]["step"]["runtime"]["url"]
        .as_str()
        .expect("url");
    assert_eq!(
        step_url,
        "http://127.0.0.1:40123?fnId=conformance-rust-test-suite-simple-fn&step=step"
    );
    let cancel = &body["functions"][3]["cancel"];
    assert_eq!(
        cancel,
        &json!([{"event": "cancel/please", "if": "async.data.request_id == event.data.request_id"}])
    );
}

#[tokio::test]
async fn doctor_inspection_is_below_300() {
    let request = Request::get("http://127.0.0.1:3000/api/inngest")
        .body(Bytes::new())
        .expect("request");
    let reply = send(&app(), request).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-inngest-sdk"),
        Some(concat!("rust:v", env!("CARGO_PKG_VERSION")))
    );
}

#[tokio::test]
async fn basic_invoke_returns_the_exact_object() {
    let call = Call::new(
        &fixture("test-suite-simple-fn"),
        event("tests/function.test", json!({"test": true})),
    );
    let reply = send(&app(), call.request()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.raw, r#"{"name":"tests/function.test","body":"ok"}"#);
}

#[tokio::test]
async fn steps_serial_runs_sleeps_and_finishes() {
    let app = app();
    let trigger = event("tests/step.test", json!({"steps": {"ok": "yes"}}));
    let fn_id = fixture("test-suite-step-test");

    let first = send(&app, Call::new(&fn_id, trigger.clone()).request()).await;
    assert_eq!(first.status, 206);
    assert_eq!(
        first.ops(),
        json!([{"op": "StepRun", "id": FIRST_STEP, "name": "first step", "data": "first step"}])
    );

    let call = Call::new(&fn_id, trigger.clone()).memo(FIRST_STEP, json!({"data": "first step"}));
    let sleep = send(&app, call.request()).await;
    assert_eq!(sleep.status, 206);
    assert_eq!(
        sleep.ops(),
        json!([{"op": "Sleep", "id": SLEEP, "name": "sleep", "opts": {"duration": "2s"}, "data": null}])
    );

    let call = Call::new(&fn_id, trigger.clone())
        .memo(FIRST_STEP, json!({"data": "first step"}))
        .memo(SLEEP, Value::Null);
    let second = send(&app, call.request()).await;
    assert_eq!(second.status, 206);
    assert_eq!(
        second.ops(),
        json!([{"op": "StepRun", "id": SECOND_STEP, "name": "second step", "data": {"first": "first step", "second": true}}])
    );
    // The runner compares StepRun data byte for byte.
    assert!(
        second
            .raw
            .contains(r#""data":{"first":"first step","second":true}"#),
        "{}",
        second.raw
    );

    let call = Call::new(&fn_id, trigger)
        .memo(FIRST_STEP, json!({"data": "first step"}))
        .memo(SLEEP, Value::Null)
        .memo(
            SECOND_STEP,
            json!({"data": {"first": "first step", "second": true}}),
        );
    let done = send(&app, call.request()).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.json, json!({"body": "ok", "name": "tests/step.test"}));
}

#[tokio::test]
async fn retry_basic_retries_the_step_then_the_function() {
    let app = app();
    let trigger = event("tests/retry.test", json!({}));
    let fn_id = fixture("test-suite-retry-test");

    let failed = send(&app, Call::new(&fn_id, trigger.clone()).request()).await;
    assert_eq!(failed.status, 206);
    assert_eq!(
        failed.ops(),
        json!([{"op": "StepError", "id": FIRST_STEP, "name": "first step", "error": {"name": "Error", "message": "broken"}, "data": null}])
    );
    assert_retriable(&failed);

    let retried = send(
        &app,
        Call::new(&fn_id, trigger.clone()).attempt(1).request(),
    )
    .await;
    assert_eq!(
        retried.ops(),
        json!([{"op": "StepRun", "id": FIRST_STEP, "name": "first step", "data": "yes: 2"}])
    );

    let call = Call::new(&fn_id, trigger.clone()).memo(FIRST_STEP, json!({"data": "yes: 2"}));
    let fn_error = send(&app, call.request()).await;
    assert_eq!(fn_error.status, 500);
    assert_eq!(fn_error.json["message"], "broken func");
    assert!(matches!(
        fn_error.json["name"].as_str(),
        None | Some("") | Some("Error")
    ));
    assert_retriable(&fn_error);

    let call = Call::new(&fn_id, trigger)
        .memo(FIRST_STEP, json!({"data": "yes: 2"}))
        .attempt(1);
    let done = send(&app, call.request()).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.json, json!({"body": "ok", "name": "tests/retry.test"}));
}

#[tokio::test]
async fn cancel_basic_sleeps_ten_seconds() {
    let call = Call::new(
        &fixture("test-suite-cancel-test"),
        event("tests/cancel.test", json!({"request_id": "123"})),
    );
    let reply = send(&app(), call.request()).await;
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.ops(),
        json!([{"op": "Sleep", "id": SLEEP, "name": "sleep", "opts": {"duration": "10s"}, "data": null}])
    );
}

#[tokio::test]
async fn wait_for_event_basic_waits_then_returns_the_event_data() {
    let app = app();
    let trigger = event("tests/wait.test", json!({"id": "123"}));
    let fn_id = fixture("test-suite-wait-for-event");

    let wait = send(&app, Call::new(&fn_id, trigger.clone()).request()).await;
    assert_eq!(wait.status, 206);
    assert_eq!(
        wait.ops(),
        json!([{
            "op": "WaitForEvent", "id": WAIT, "name": "wait", "data": null,
            "opts": {
                "event": "test/resume",
                "if": "async.data.resume == true && async.data.id == event.data.id",
                "timeout": "10s"
            }
        }])
    );

    let resume = json!({"data": {"id": "123", "resume": true}, "id": "01JRESUME", "name": "test/resume", "ts": 1_700_000_001_000_i64, "user": {}});
    let resumed = send(
        &app,
        Call::new(&fn_id, trigger.clone())
            .memo(WAIT, resume)
            .request(),
    )
    .await;
    assert_eq!(resumed.status, 200);
    assert_eq!(
        resumed.json,
        json!({"result": {"id": "123", "resume": true}})
    );

    let timed_out = send(
        &app,
        Call::new(&fn_id, trigger).memo(WAIT, Value::Null).request(),
    )
    .await;
    assert_eq!(timed_out.status, 200);
    assert_eq!(timed_out.json, json!({}));
}

// ---------------------------------------------------------------------------------------------
// The example's own configuration (`examples/conformance.rs` builds the same way).

/// The example's configuration from these variables instead of the process environment.
fn example_config(vars: &[(&str, &str)]) -> Config {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    conformance_fixtures::config(|name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("the variables are valid")
}

#[test]
fn the_example_is_in_dev_mode_only_when_inngest_dev_says_so() {
    let cloud = example_config(&[]);
    assert_eq!(cloud.mode(), &Mode::Cloud);
    assert_eq!(cloud.api_base_url().as_str(), "https://api.inngest.com/");

    let self_hosted = example_config(&[
        ("INNGEST_BASE_URL", "http://inngest.internal:8288"),
        (
            "INNGEST_SIGNING_KEY",
            "7468697320697320612074657374206b6579",
        ),
    ]);
    assert_eq!(self_hosted.mode(), &Mode::Cloud);
    assert_eq!(
        self_hosted.api_base_url().as_str(),
        "http://inngest.internal:8288/"
    );
    assert_eq!(
        self_hosted.event_api_base_url().as_str(),
        "http://inngest.internal:8288/",
        "INNGEST_BASE_URL covers the event API too"
    );

    assert_eq!(example_config(&[("INNGEST_DEV", "0")]).mode(), &Mode::Cloud);
    let dev = example_config(&[("INNGEST_DEV", "1")]);
    assert_eq!(dev.mode(), &Mode::Dev);
    assert_eq!(dev.api_base_url().as_str(), "http://127.0.0.1:8288/");
}

#[tokio::test]
async fn the_example_in_cloud_mode_refuses_requests_without_a_valid_signature() {
    const KEY: &str = "7468697320697320612074657374206b6579";
    let app = conformance_fixtures::router(example_config(&[
        ("INNGEST_BASE_URL", "http://inngest.internal:8288"),
        ("INNGEST_SIGNING_KEY", KEY),
    ]))
    .expect("fixtures register");
    let call = Call::new(
        &fixture("test-suite-simple-fn"),
        event("tests/function.test", json!({"test": true})),
    );
    let with_signature = |signature: Option<String>| {
        let mut request = call.request();
        if let Some(signature) = signature {
            request.headers_mut().insert(
                "x-inngest-signature",
                signature.parse().expect("a header value"),
            );
        }
        request
    };
    let body = call.body().to_string();
    let now = chrono::Utc::now().timestamp();

    let unsigned = send(&app, with_signature(None)).await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.raw);
    let wrong_key = sign(
        &SigningKey::new("00112233445566778899aabbccddeeff"),
        body.as_bytes(),
        now,
    );
    let forged = send(&app, with_signature(Some(wrong_key))).await;
    assert_eq!(forged.status, 401, "{}", forged.raw);
    let expired = sign(&SigningKey::new(KEY), body.as_bytes(), now - 3600);
    let replayed = send(&app, with_signature(Some(expired))).await;
    assert_eq!(replayed.status, 401, "{}", replayed.raw);

    let good = sign(&SigningKey::new(KEY), body.as_bytes(), now);
    let signed = send(&app, with_signature(Some(good))).await;
    assert_eq!(signed.status, 200, "{}", signed.raw);
    assert_eq!(signed.raw, r#"{"name":"tests/function.test","body":"ok"}"#);

    // An unsigned sync is refused too: no INNGEST_SERVE_ORIGIN is configured.
    let sync = Request::put("http://127.0.0.1:3000/api/inngest")
        .body(Bytes::new())
        .expect("request");
    let refused = send(&app, sync).await;
    assert_eq!(refused.status, 401, "{}", refused.raw);
}
