//! Key rotation (protocol §3.2): once Inngest accepts `INNGEST_SIGNING_KEY_FALLBACK` for an API
//! call, later calls (sync, a run's state from `/v0/runs/...`) start with it, so the rotation
//! costs one wasted round trip in all, not one per call; and the switch is never undone.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use common::{Call, event};
use http::{Method, Request};
use inngest_sdk::signature::{SigningKey, sign};
use inngest_sdk::{Client, Config, Ctx, Error, Function, FunctionOpts, ServeHandler, Trigger};
use serde_json::{Value, json};

/// The key being rotated in (`INNGEST_SIGNING_KEY`).
const NEW_KEY: &str = "signkey-prod-00112233445566778899aabbccddeeff";
/// The key the server still has (`INNGEST_SIGNING_KEY_FALLBACK`).
const OLD_KEY: &str = "signkey-prod-ffeeddccbbaa99887766554433221100";

// ---------------------------------------------------------------------------------------------
// A fake Inngest API that accepts one signing key and records every request's bearer.

#[derive(Default)]
struct ApiState {
    accepted: String,
    /// `(path, bearer)` of every request, in arrival order.
    seen: Vec<(String, String)>,
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
    async fn accepting(key: &str) -> Self {
        let state = Arc::new(Mutex::new(ApiState::default()));
        let api = Router::new()
            .route("/fn/register", post(register))
            .route("/v0/runs/{run}/{part}", get(run_state))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the fake API");
        let addr = listener.local_addr().expect("the fake API has an address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, api).await;
        });
        let api = Self {
            url: format!("http://{addr}"),
            state,
            task,
        };
        api.accept(key);
        api
    }

    /// From now on the server accepts only `key` (as after it finishes a rotation).
    fn accept(&self, key: &str) {
        self.lock().accepted = format!("Bearer {}", SigningKey::new(key).hashed());
    }

    fn requests(&self) -> usize {
        self.lock().seen.len()
    }

    /// The bearers of requests from the `from`th on, as `"new"` or `"old"`.
    fn keys_since(&self, from: usize) -> Vec<&'static str> {
        let bearer = |key: &str| format!("Bearer {}", SigningKey::new(key).hashed());
        let (new, old) = (bearer(NEW_KEY), bearer(OLD_KEY));
        self.lock().seen[from..]
            .iter()
            .map(|(_, b)| match b {
                b if *b == new => "new",
                b if *b == old => "old",
                _ => "other",
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().expect("fake API state is not poisoned")
    }
}

/// Records the request; `Err(401)` unless its bearer is the accepted key.
fn authorize(state: &Mutex<ApiState>, path: String, headers: &HeaderMap) -> Result<(), StatusCode> {
    let mut state = state.lock().expect("fake API state is not poisoned");
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ok = bearer == state.accepted;
    state.seen.push((path, bearer));
    if ok {
        Ok(())
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

async fn register(
    State(state): State<Arc<Mutex<ApiState>>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    match authorize(&state, "/fn/register".to_owned(), &headers) {
        Ok(()) => (
            StatusCode::OK,
            json!({"ok": true, "modified": false}).to_string(),
        ),
        Err(status) => (status, json!({"error": "unauthorized"}).to_string()),
    }
}

async fn run_state(
    State(state): State<Arc<Mutex<ApiState>>>,
    Path((run, part)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if let Err(status) = authorize(&state, format!("/v0/runs/{run}/{part}"), &headers) {
        return (status, json!({"error": "unauthorized"}).to_string());
    }
    let body = match part.as_str() {
        "batch" => json!([event("t/e", json!({"n": 2}))]),
        _ => json!({}),
    };
    (StatusCode::OK, body.to_string())
}

// ---------------------------------------------------------------------------------------------
// The app: one function, its state always fetched from the API, requests signed by the server.

fn app(api: &FakeApi) -> ServeHandler<()> {
    let double = Function::new(
        FunctionOpts::new("double").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move {
            let n = ctx.event.data["n"].as_u64().unwrap_or_default();
            Ok::<_, Error>(json!(n * 2))
        },
    );
    let config = Config::new("app")
        .with_signing_key(NEW_KEY)
        .with_signing_key_fallback(OLD_KEY)
        .with_api_base_url(&api.url)
        .expect("the fake API URL parses");
    ServeHandler::new(Client::new(config), (), [double]).expect("the function is valid")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A call whose run state is too large to send (`use_api`), signed as the server signs it.
fn large_state_call(signing_key: &str) -> Request<Bytes> {
    let mut body = Call::new("app-double", Value::Null).body();
    body["use_api"] = json!(true);
    body["ctx"]["use_api"] = json!(true);
    body["events"] = json!([]);
    body.as_object_mut().expect("object").remove("event");
    let bytes = body.to_string();
    let signature = sign(&SigningKey::new(signing_key), bytes.as_bytes(), now());
    Request::post("http://app.test/api/inngest?fnId=app-double&stepId=step")
        .header("x-inngest-signature", signature)
        .body(Bytes::from(bytes))
        .expect("the call builds")
}

/// An out-of-band sync as the server sends it.
fn sync(signing_key: &str) -> Request<Bytes> {
    let body = json!({ "url": "http://app.test/api/inngest" }).to_string();
    let signature = sign(&SigningKey::new(signing_key), body.as_bytes(), now());
    Request::builder()
        .method(Method::PUT)
        .uri("/api/inngest")
        .header("host", "app.test")
        .header("x-inngest-signature", signature)
        .body(Bytes::from(body))
        .expect("the sync builds")
}

async fn run(app: &ServeHandler<()>, request: Request<Bytes>) -> u16 {
    app.handle(request).await.status().as_u16()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn after_the_first_fallback_success_n_api_calls_make_n_requests() {
    let api = FakeApi::accepting(OLD_KEY).await;
    let app = app(&api);

    // Two calls race to find the accepted key: the run's batch and its steps, fetched at once.
    assert_eq!(run(&app, large_state_call(OLD_KEY)).await, 200);
    let mut tried = api.keys_since(0);
    tried.sort_unstable();
    assert_eq!(
        tried,
        ["new", "new", "old", "old"],
        "each racing call tried the new key, then the old one"
    );

    let before = api.requests();
    const N: usize = 5;
    for _ in 0..N {
        assert_eq!(run(&app, sync(OLD_KEY)).await, 200);
    }
    let calls = futures::future::join_all((0..N).map(|_| run(&app, large_state_call(OLD_KEY))));
    assert!(calls.await.iter().all(|status| *status == 200));

    // N syncs and N runs, each run two API calls: 3N calls, 3N requests, all with the old key.
    assert_eq!(api.requests() - before, 3 * N);
    assert!(api.keys_since(before).iter().all(|key| *key == "old"));
}

#[tokio::test]
async fn a_sync_that_finds_the_fallback_switches_later_run_state_fetches_too() {
    let api = FakeApi::accepting(OLD_KEY).await;
    let app = app(&api);

    assert_eq!(run(&app, sync(OLD_KEY)).await, 200);
    assert_eq!(api.keys_since(0), ["new", "old"]);
    assert_eq!(run(&app, large_state_call(OLD_KEY)).await, 200);
    assert_eq!(api.keys_since(2), ["old", "old"], "one request per fetch");
}

#[tokio::test]
async fn while_the_primary_is_accepted_the_fallback_is_never_sent() {
    let api = FakeApi::accepting(NEW_KEY).await;
    let app = app(&api);

    for _ in 0..3 {
        assert_eq!(run(&app, sync(NEW_KEY)).await, 200);
        assert_eq!(run(&app, large_state_call(NEW_KEY)).await, 200);
    }

    assert_eq!(api.keys_since(0), ["new"; 9]);
}

#[tokio::test]
async fn the_switch_is_never_undone_but_a_finished_rotation_still_gets_through() {
    let api = FakeApi::accepting(OLD_KEY).await;
    let app = app(&api);
    assert_eq!(run(&app, sync(OLD_KEY)).await, 200);

    // The server finishes its rotation: it now signs with and accepts only the new key.
    api.accept(NEW_KEY);
    let (logs, _guard) = common::Logs::capture();
    let before = api.requests();
    for _ in 0..3 {
        assert_eq!(run(&app, sync(NEW_KEY)).await, 200);
    }

    // Each call still starts with the old key (one-way), and the new key answers second.
    assert_eq!(
        api.keys_since(before),
        ["old", "new", "old", "new", "old", "new"]
    );
    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "said once: {warnings:#?}");
    assert!(
        warnings[0].contains("remove INNGEST_SIGNING_KEY_FALLBACK and restart"),
        "{}",
        warnings[0]
    );
}
