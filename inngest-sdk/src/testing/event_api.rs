//! A local stand-in for Inngest's event API (`POST /e/{key}`), recording what it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::event::Event;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct ReceivedBatch {
    /// The event key in the path.
    pub key: String,
    /// The `x-inngest-event-id-seed` header.
    pub seed: Option<String>,
    /// The events.
    pub events: Vec<Event<Value>>,
}

#[derive(Default)]
struct FakeState {
    batches: Vec<ReceivedBatch>,
    fail_next: u32,
    down: bool,
}

/// A fake event API on `127.0.0.1`, stopped when the last clone is dropped.
#[derive(Clone)]
pub struct EventApi {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    _server: Arc<ServerTask>,
}

struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EventApi {
    /// Starts the fake on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route("/e/{key}", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event received, in order (duplicates included).
    pub fn events(&self) -> Vec<Event<Value>> {
        self.lock()
            .batches
            .iter()
            .flat_map(|b| b.events.clone())
            .collect()
    }

    /// Every request received.
    pub fn batches(&self) -> Vec<ReceivedBatch> {
        self.lock().batches.clone()
    }

    /// Answers the next `n` requests with 503, without recording them.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// Answers every request with 503 until set back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }
}

async fn receive(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    if state.down || state.fail_next > 0 {
        state.fail_next = state.fail_next.saturating_sub(1);
        return (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response();
    }
    let parsed: Result<Vec<Event<Value>>, _> = serde_json::from_slice(&body)
        .or_else(|_| serde_json::from_slice::<Event<Value>>(&body).map(|e| vec![e]));
    let Ok(events) = parsed else {
        let body = json!({ "status": 400, "error": "malformed events" });
        return json_reply(StatusCode::BAD_REQUEST, &body);
    };
    let seed = headers
        .get("x-inngest-event-id-seed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
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
    state.batches.push(ReceivedBatch { key, seed, events });
    json_reply(StatusCode::OK, &json!({ "ids": ids, "status": 200 }))
}

fn json_reply(status: StatusCode, body: &Value) -> Response {
    let headers = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (status, headers, body.to_string()).into_response()
}
