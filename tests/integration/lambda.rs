//! The `huckleberry-lambda` binary (feature `lambda`) run as AWS Lambda runs it: it polls a
//! local stand-in of the Lambda Runtime API, which hands it API Gateway HTTP API (payload 2.0)
//! events and collects its answers, in Inngest cloud mode with signed requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use huckleberry::models::InboxEntry;
use inngest_sdk::Event;
use inngest_sdk::signature::{SigningKey, sign};
use inngest_sdk::testing::EventApi;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::util::TestDatabase;

const SIGNING_KEY: &str = "signkey-test-7468697320697320612074657374206b6579";
const HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";

/// What the binary answered to one invocation: its response, or the error it reported.
type Answer = Result<Value, Value>;

/// An invocation waiting to be picked up.
struct Invocation {
    event: Value,
    answer: oneshot::Sender<Answer>,
}

/// The Lambda Runtime API's four routes, enough for `lambda_runtime`.
#[derive(Clone)]
struct Runtime {
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
    init_error: Arc<Mutex<Option<Value>>>,
}

/// The stand-in and the queue the test feeds.
struct FakeRuntime {
    addr: SocketAddr,
    invocations: mpsc::UnboundedSender<Invocation>,
    init_error: Arc<Mutex<Option<Value>>>,
}

impl FakeRuntime {
    async fn start() -> Self {
        let (invocations, queue) = mpsc::unbounded_channel();
        let runtime = Runtime {
            queue: Arc::new(tokio::sync::Mutex::new(queue)),
            waiting: Arc::default(),
            init_error: Arc::default(),
        };
        let init_error = runtime.init_error.clone();
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_failed))
            .with_state(runtime);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            addr,
            invocations,
            init_error,
        }
    }

    /// Hands `event` to the function and waits for what it answers.
    async fn invoke(&self, event: Value) -> Value {
        let (answer, answered) = oneshot::channel();
        self.invocations
            .send(Invocation { event, answer })
            .expect("the runtime stand-in is up");
        match tokio::time::timeout(Duration::from_secs(60), answered).await {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(error))) => panic!("the function reported an error: {error}"),
            Ok(Err(_)) => panic!("the invocation was dropped"),
            Err(_) => panic!(
                "no answer within 60 s; init error: {:?}",
                self.init_error.lock().expect("lock")
            ),
        }
    }
}

async fn next(State(runtime): State<Runtime>) -> impl IntoResponse {
    let invocation = runtime.queue.lock().await.recv().await;
    let Some(Invocation { event, answer }) = invocation else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let id = uuid::Uuid::new_v4().to_string();
    runtime
        .waiting
        .lock()
        .expect("lock")
        .insert(id.clone(), answer);
    let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, value.parse().expect("header value"));
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:huckleberry".to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
    );
    (StatusCode::OK, headers, event.to_string())
}

fn answer(runtime: &Runtime, id: &str, answer: Answer) -> StatusCode {
    match runtime.waiting.lock().expect("lock").remove(id) {
        Some(waiting) => {
            drop(waiting.send(answer));
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn respond(
    State(runtime): State<Runtime>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    answer(&runtime, &id, Ok(body))
}

async fn fail(
    State(runtime): State<Runtime>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    answer(&runtime, &id, Err(body))
}

async fn init_failed(State(runtime): State<Runtime>, body: axum::body::Bytes) -> StatusCode {
    *runtime.init_error.lock().expect("lock") = serde_json::from_slice(&body).ok();
    StatusCode::ACCEPTED
}

/// An API Gateway HTTP API (payload 2.0) event for a request on the `$default` stage.
fn http_event(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut all: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    all.insert("host".into(), json!(HOST));
    all.insert("x-forwarded-proto".into(), json!("https"));
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": HOST,
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Inngest"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "06/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1796558400000_i64
        },
        // Base64, as API Gateway sends bodies it does not take for text.
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// The answer's status, headers (lower-case names) and body as JSON.
fn decode(response: &Value) -> (u64, HashMap<String, String>, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode");
    let headers = response["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let text = response["body"].as_str().unwrap_or_default();
    let bytes = if response["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64 body")
    } else {
        text.as_bytes().to_vec()
    };
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn signed(body: &str) -> String {
    sign(
        &SigningKey::new(SIGNING_KEY),
        body.as_bytes(),
        chrono::Utc::now().timestamp(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_events_reach_the_router_on_lambda_inngest_sync_and_a_step_included() {
    let database = TestDatabase::migrated().await;
    let events = EventApi::start().await.expect("fake event API");
    let runtime = FakeRuntime::start().await;
    // An event waiting in the inbox, for the relay's step to deliver.
    let mut announced = Event::new("session/cancelled", json!({ "sessionId": "s-1" }));
    announced.id = Some("lambda-relayed-1".to_owned());
    {
        let pool = huckleberry::db::pool(database.url(), 1).expect("pool");
        let mut conn = pool.get().await.expect("connection");
        InboxEntry::enqueue(&mut conn, &announced)
            .await
            .expect("enqueue")
            .expect("stored");
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_huckleberry-lambda"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "huckleberry")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("DATABASE_URL", database.url())
        .env("DATABASE_POOL_SIZE", "2")
        .env("INNGEST_SIGNING_KEY", SIGNING_KEY)
        .env("INNGEST_EVENT_KEY", "test-event-key")
        .env("INNGEST_BASE_URL", events.url())
        .env("INNGEST_SERVE_ORIGIN", format!("https://{HOST}"))
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");

    let (status, headers, body) =
        decode(&runtime.invoke(http_event("GET", "/readyz", &[], "")).await);
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
    assert!(headers.contains_key("x-request-id"), "{headers:?}");

    let (status, _, body) = decode(
        &runtime
            .invoke(http_event("GET", "/api/nothing-here", &[], ""))
            .await,
    );
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found", "the app's envelope: {body}");

    // Inngest syncs the app: a signed in-band PUT.
    let sync = json!({ "url": format!("https://{HOST}/api/inngest") }).to_string();
    let signature = signed(&sync);
    let put = http_event(
        "PUT",
        "/api/inngest",
        &[
            ("content-type", "application/json"),
            ("x-inngest-sync-kind", "in_band"),
            ("x-inngest-signature", &signature),
        ],
        &sync,
    );
    let (status, headers, body) = decode(&runtime.invoke(put).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["url"], format!("https://{HOST}/api/inngest"));
    let ids: Vec<&str> = body["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&"mentorships-platform-relay-inbox"), "{ids:?}");
    assert!(headers.contains_key("x-inngest-signature"), "signed answer");

    // An unsigned execution request is refused.
    let run = json!({
        "ctx": {
            "attempt": 0, "disable_immediate_execution": false, "env": "",
            "fn_id": "mentorships-platform-relay-inbox", "max_attempts": 2,
            "run_id": "01LAMBDARUN", "stack": { "current": 0, "stack": [] },
            "step_id": "step", "use_api": false
        },
        "event": { "name": "inngest/scheduled.timer", "data": {}, "id": "tick-1", "ts": 1796558400000_i64 },
        "events": [{ "name": "inngest/scheduled.timer", "data": {}, "id": "tick-1", "ts": 1796558400000_i64 }],
        "steps": {},
        "use_api": false,
        "version": 2
    })
    .to_string();
    let path = "/api/inngest?fnId=mentorships-platform-relay-inbox&stepId=step";
    let unsigned = http_event("POST", path, &[("content-type", "application/json")], &run);
    assert_eq!(decode(&runtime.invoke(unsigned).await).0, 401);

    // Inngest runs the cron relay's first step: it delivers the waiting event.
    let signature = signed(&run);
    let post = http_event(
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("x-inngest-signature", &signature),
        ],
        &run,
    );
    let (status, _, body) = decode(&runtime.invoke(post).await);
    assert_eq!(status, 206, "{body}");
    let ops = body.as_array().expect("ops");
    assert_eq!(ops.len(), 1, "{body}");
    assert_eq!(ops[0]["op"], "StepRun");
    assert_eq!(ops[0]["name"], "forward-due-1");
    assert_eq!(
        ops[0]["data"],
        json!({ "forwarded": 1, "failed": 0, "claimed": 1 })
    );
    let delivered: Vec<_> = events
        .events()
        .into_iter()
        .filter(|e| e.id.as_deref() == Some("lambda-relayed-1"))
        .collect();
    assert_eq!(delivered.len(), 1);

    child.start_kill().expect("kill");
    drop(child.wait().await);
}
