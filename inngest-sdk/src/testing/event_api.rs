//! A local stand-in for Inngest's event API (`POST /e/{key}`) and its checkpoint API
//! (`POST /v1/checkpoint/{runId}/async`): it stores the events and checkpointed steps it
//! accepts, records every request it receives, and can be scripted to refuse or drop requests,
//! so tests can drive a client through outages, rejections and retries.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use inngest_sdk::testing::EventApi;
//! let api = EventApi::start().await?;
//! api.answer_next(2, 503, serde_json::json!({ "status": 503, "error": "busy" }));
//! api.hang_up_next(1);
//! // ... point a client at `api.url()` and send: the fourth request is accepted ...
//! assert_eq!(api.requests().len(), 4);
//! assert_eq!(api.batches().len(), 1);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tokio::task::JoinSet;

use crate::event::Event;

/// The largest request body the fake reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One accepted request: the events the fake stored and the ids it answered.
#[derive(Debug, Clone)]
pub struct ReceivedBatch {
    /// The event key in the path.
    pub key: String,
    /// The `x-inngest-event-id-seed` header.
    pub seed: Option<String>,
    /// The events.
    pub events: Vec<Event<Value>>,
    /// The ids answered, one per event in order: the event's own id, else one derived from the
    /// seed and the event's position, as Inngest derives them.
    pub ids: Vec<String>,
}

/// One request the fake received, whatever it answered.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// The path, `/e/<event key>`.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
}

impl ReceivedRequest {
    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake does with a request instead of accepting its events.
#[derive(Debug, Clone)]
enum Scripted {
    /// Answers this status and JSON body.
    Answer(StatusCode, Value),
    /// Closes the connection without answering: a transport error for the client.
    HangUp,
}

/// One checkpoint the fake accepted: a run's step results, sent while it ran.
#[derive(Debug, Clone)]
pub struct ReceivedCheckpoint {
    /// The run id in the path.
    pub run_id: String,
    /// The body's `steps`: `StepRun` ops.
    pub steps: Vec<Value>,
}

#[derive(Default)]
struct FakeState {
    batches: Vec<ReceivedBatch>,
    checkpoints: Vec<ReceivedCheckpoint>,
    requests: Vec<ReceivedRequest>,
    script: VecDeque<Scripted>,
    down: bool,
    refusing: bool,
    delay: std::time::Duration,
}

/// A fake event API on `127.0.0.1`, stopped when the last clone is dropped.
///
/// It accepts every well-formed request unless told otherwise: [`EventApi::answer_next`],
/// [`EventApi::fail_next`] and [`EventApi::hang_up_next`] queue what the next requests get, in
/// the order they were called; [`EventApi::set_down`] answers 503 to everything and
/// [`EventApi::set_refusing`] hangs up on everything until set back; [`EventApi::set_delay`]
/// makes every answer slow.
#[derive(Clone)]
pub struct EventApi {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    _server: Arc<ServerTask>,
}

/// Owns the accept loop; aborting it drops every open connection with it.
struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A service error, on which hyper closes the connection without answering.
#[derive(Debug)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted hang-up")
    }
}

impl std::error::Error for HangUp {}

impl EventApi {
    /// Starts the fake on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let service = service_fn(move |request| receive(state.clone(), request));
                connections.spawn(async move {
                    // A scripted hang-up ends the connection with an error: that is the point.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            state,
            _server: Arc::new(ServerTask(task)),
        })
    }

    /// The base URL to configure as the event API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every checkpoint accepted, in order.
    pub fn checkpoints(&self) -> Vec<ReceivedCheckpoint> {
        self.lock().checkpoints.clone()
    }

    /// The checkpoints accepted after the first `seen`, and how many there are in all.
    pub fn checkpoints_after(&self, seen: usize) -> (Vec<ReceivedCheckpoint>, usize) {
        let state = self.lock();
        let all = &state.checkpoints;
        (all.iter().skip(seen).cloned().collect(), all.len())
    }

    /// Every event accepted, in order (duplicates included).
    pub fn events(&self) -> Vec<Event<Value>> {
        self.lock()
            .batches
            .iter()
            .flat_map(|b| b.events.clone())
            .collect()
    }

    /// Every accepted request, in order.
    pub fn batches(&self) -> Vec<ReceivedBatch> {
        self.lock().batches.clone()
    }

    /// Every request received, in order, including those refused or hung up on.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.lock().requests.clone()
    }

    /// Answers the next `times` requests with `status` and the JSON `body` instead of accepting
    /// their events (after any answers queued before).
    pub fn answer_next(&self, times: u32, status: u16, body: Value) {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("{status} is not an HTTP status"));
        let answer = Scripted::Answer(status, body);
        self.lock()
            .script
            .extend(std::iter::repeat_n(answer, times as usize));
    }

    /// Answers the next `n` requests with 503, as an event API that is briefly unavailable.
    pub fn fail_next(&self, n: u32) {
        self.answer_next(n, 503, json!({ "status": 503, "error": "unavailable" }));
    }

    /// Reads the next `times` requests, then closes their connections without answering, so the
    /// client sees a transport error (after any answers queued before).
    pub fn hang_up_next(&self, times: u32) {
        self.lock()
            .script
            .extend(std::iter::repeat_n(Scripted::HangUp, times as usize));
    }

    /// Answers every request with 503 until set back; queued answers wait meanwhile.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Closes every request's connection without answering until set back (the client sees a
    /// transport error, as with an API that is unreachable); queued answers wait meanwhile.
    pub fn set_refusing(&self, refusing: bool) {
        self.lock().refusing = refusing;
    }

    /// Waits `delay` before handling each request from now on (`Duration::ZERO` for none), as
    /// an event API that answers slowly.
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.lock().delay = delay;
    }
}

async fn receive(
    state: Arc<Mutex<FakeState>>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, HangUp> {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
        return Err(HangUp);
    };
    let delay = state.lock().unwrap_or_else(PoisonError::into_inner).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let path = parts.uri.path().to_owned();
    state.requests.push(ReceivedRequest {
        path: path.clone(),
        headers: parts.headers.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let key = path
        .strip_prefix("/e/")
        .filter(|k| !k.is_empty() && !k.contains('/'));
    let checkpoint = path
        .strip_prefix("/v1/checkpoint/")
        .and_then(|rest| rest.strip_suffix("/async"))
        .filter(|run| !run.is_empty() && !run.contains('/'));
    let target = match (key, checkpoint) {
        (Some(key), _) => Some(Target::Events(key)),
        (None, Some(run)) => Some(Target::Checkpoint(run)),
        (None, None) => None,
    };
    let Some(target) = target.filter(|_| parts.method == Method::POST) else {
        return Ok(json_reply(
            StatusCode::NOT_FOUND,
            &json!({ "status": 404, "error": "not found" }),
        ));
    };
    if state.refusing {
        return Err(HangUp);
    }
    if state.down {
        return Ok(json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": 503, "error": "unavailable" }),
        ));
    }
    match state.script.pop_front() {
        Some(Scripted::Answer(status, body)) => return Ok(json_reply(status, &body)),
        Some(Scripted::HangUp) => return Err(HangUp),
        None => {}
    }
    let key = match target {
        Target::Events(key) => key,
        Target::Checkpoint(run_id) => return Ok(checkpoint_reply(run_id, &body, &mut state)),
    };
    let seed = parts
        .headers
        .get("x-inngest-event-id-seed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, reply) = accept(key, seed, &body, &mut state);
    Ok(json_reply(status, &reply))
}

/// What a request asks of the fake.
enum Target<'a> {
    /// Send events with this event key.
    Events(&'a str),
    /// Checkpoint steps of this run.
    Checkpoint(&'a str),
}

/// Stores a checkpoint; as Inngest's API does, only `StepRun` ops are accepted (400 otherwise)
/// and success is a 200 with an empty body.
fn checkpoint_reply(run_id: &str, body: &Bytes, state: &mut FakeState) -> Response<Body> {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let steps = parsed["steps"].as_array().cloned().unwrap_or_default();
    if parsed["run_id"] != run_id || steps.iter().any(|op| op["op"] != "StepRun") {
        return json_reply(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "cannot checkpoint these steps" }),
        );
    }
    state.checkpoints.push(ReceivedCheckpoint {
        run_id: run_id.to_owned(),
        steps,
    });
    Response::new(Body::empty())
}

/// Stores the events of one request; answers their ids, or 400 when they do not parse.
fn accept(
    key: &str,
    seed: Option<String>,
    body: &Bytes,
    state: &mut FakeState,
) -> (StatusCode, Value) {
    let parsed: Result<Vec<Event<Value>>, _> = serde_json::from_slice(body)
        .or_else(|_| serde_json::from_slice::<Event<Value>>(body).map(|e| vec![e]));
    let Ok(events) = parsed else {
        return (
            StatusCode::BAD_REQUEST,
            json!({ "status": 400, "error": "malformed events" }),
        );
    };
    // Deterministic ids like Inngest's: the event's own id, else derived from the seed.
    let ids: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| match &e.id {
            Some(id) => id.clone(),
            None => hex::encode(Sha1::digest(format!(
                "{}:{i}",
                seed.as_deref().unwrap_or("")
            ))),
        })
        .collect();
    state.batches.push(ReceivedBatch {
        key: key.to_owned(),
        seed,
        events,
        ids: ids.clone(),
    });
    (StatusCode::OK, json!({ "ids": ids, "status": 200 }))
}

fn json_reply(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripted_answers_are_used_in_order_then_events_are_accepted() {
        let api = EventApi::start().await.expect("the fake starts");
        api.answer_next(1, 400, json!({ "error": "too large" }));
        api.fail_next(1);
        let http = reqwest::Client::new();
        let url = format!("{}/e/key", api.url());
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let response = http
                .post(&url)
                .body(r#"[{"name":"a/b","data":{}}]"#)
                .send()
                .await
                .expect("the fake answers");
            statuses.push(response.status().as_u16());
        }
        assert_eq!(statuses, [400, 503, 200]);
        assert_eq!(api.requests().len(), 3);
        assert_eq!(api.batches().len(), 1);
        assert_eq!(api.batches()[0].key, "key");
    }

    #[tokio::test]
    async fn a_hang_up_is_a_transport_error_and_is_recorded() {
        let api = EventApi::start().await.expect("the fake starts");
        api.hang_up_next(1);
        let sent = reqwest::Client::new()
            .post(format!("{}/e/key", api.url()))
            .header("x-inngest-event-id-seed", "1,AAAA")
            .body("[]")
            .send()
            .await;
        assert!(sent.is_err(), "{sent:?}");
        let requests = api.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].header("x-inngest-event-id-seed"),
            Some("1,AAAA")
        );
        assert!(api.batches().is_empty());
    }
}
