//! The Inngest client: sends events and calls the Inngest API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, Mode};
use crate::event::Event;
use crate::middleware::Middleware;
use crate::signature::SigningKey;

/// The SDK's identity, sent as `X-Inngest-SDK` and `User-Agent`.
pub const SDK_HEADER_VALUE: &str = concat!("rust:v", env!("CARGO_PKG_VERSION"));

const SEND_ATTEMPTS: u32 = 5;

/// The longest one request to Inngest may take, connecting included.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a connection to Inngest may take to open, with the SDK's own HTTP client.
const API_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a checkpoint is tried before its results go back in the call's answer.
pub(crate) const CHECKPOINT_ATTEMPTS: u32 = 5;

/// The pause before the second try; it doubles for each one after (plus up to 100 ms jitter).
const CHECKPOINT_FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Why the checkpoint API did not take a batch of step results.
#[derive(Debug)]
pub(crate) enum CheckpointFailure {
    /// 409: a newer call of the run is executing it; this one must stop.
    Stale,
    /// Every try failed; the reason of the last.
    Unavailable(String),
}
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why events could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Cloud mode needs an event key.
    #[error("no event key configured (set INNGEST_EVENT_KEY)")]
    MissingEventKey,
    /// An event the server would refuse.
    #[error("invalid event {name:?}: {reason}")]
    InvalidEvent {
        /// The event name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The event could not be serialized.
    #[error("event does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The event API refused the events.
    #[error("Inngest event API answered {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// A middleware's `transform_send` refused the events.
    #[error("a middleware refused the events: {message}")]
    Middleware {
        /// The middleware's error message.
        message: String,
        /// Whether the middleware's error may pass on retry.
        retry: crate::error::Retry,
    },
    /// The event API could not be reached, after retries.
    #[error("Inngest event API unreachable after {attempts} attempts: {source}")]
    Unreachable {
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        source: reqwest::Error,
    },
}

/// A send that the event API refused, or that was malformed, fails the step for good; an
/// outage (after the client's own retries) is retried by Inngest.
impl crate::error::Classify for SendError {
    fn retry(&self) -> crate::error::Retry {
        use crate::error::Retry;
        match self {
            SendError::MissingEventKey
            | SendError::InvalidEvent { .. }
            | SendError::Serialize(_) => Retry::Never,
            SendError::Rejected { status, .. } => Retry::for_http_status(*status, None),
            SendError::Unreachable { .. } => Retry::Default,
            SendError::Middleware { retry, .. } => retry.clone(),
        }
    }
}

/// A transport failure or a server error may pass; any other answer will not.
impl crate::error::Classify for ApiError {
    fn retry(&self) -> crate::error::Retry {
        match self {
            ApiError::Transport(e) => crate::error::Classify::retry(e),
            ApiError::Status { status, .. } => crate::error::Retry::for_http_status(*status, None),
        }
    }
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A transport failure.
    #[error("Inngest API unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// A non-success answer.
    #[error("Inngest API answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
}

#[derive(serde::Deserialize)]
struct SendResponse {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Sends events and talks to the Inngest API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
    middleware: MiddlewareList,
}

/// The client's middleware, outermost first.
#[derive(Clone, Default)]
struct MiddlewareList(Arc<Vec<Arc<dyn Middleware>>>);

impl std::fmt::Debug for MiddlewareList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|m| m.name()))
            .finish()
    }
}

#[derive(Debug)]
struct ClientInner {
    config: Config,
    http: reqwest::Client,
    keys: KeyPreference,
}

/// Which signing key API calls start with (key rotation, protocol §3.2).
///
/// The switch is one-way: once Inngest accepts `INNGEST_SIGNING_KEY_FALLBACK` for an API call,
/// every later call in this process starts with the fallback, so a rotation costs one wasted
/// round trip in all rather than one per call. The primary key stays second in line, so a
/// server that finishes its rotation while the process runs still gets an accepted key (two
/// requests a call until the restart that drops the fallback). Plain atomics: a call never
/// holds anything across its awaits, and two calls racing to switch both end on the fallback.
#[derive(Debug, Default)]
struct KeyPreference {
    fallback_first: AtomicBool,
    rotation_done_logged: AtomicBool,
}

/// The configured role of the key an API call was sent with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyRole {
    Primary,
    Fallback,
}

impl Client {
    /// A client for `config`, with an HTTP client of its own.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(API_CONNECT_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self::with_http_client(config, http)
    }

    /// A client for `config` that sends through `http`, an HTTP client the caller already has.
    ///
    /// Building a client loads the system's root certificates, a few milliseconds each time;
    /// an app with several API clients can build one and share it (and its connection pool).
    /// Each request the SDK sends still carries its own `User-Agent` and a 30 s timeout,
    /// whatever `http`'s defaults; proxies, TLS roots and the connect timeout are `http`'s.
    #[must_use]
    pub fn with_http_client(config: Config, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                config,
                http,
                keys: KeyPreference::default(),
            }),
            middleware: MiddlewareList::default(),
        }
    }

    /// Adds a middleware that sees every run of every function served with this client and
    /// every event it sends; it comes before the functions' own middleware and after those
    /// added before it. Add middleware before the client is cloned into a handler.
    #[must_use]
    pub fn with_middleware(mut self, middleware: impl Middleware) -> Self {
        Arc::make_mut(&mut self.middleware.0).push(Arc::new(middleware));
        self
    }

    /// The client's middleware, outermost first.
    pub(crate) fn middleware(&self) -> &[Arc<dyn Middleware>] {
        &self.middleware.0
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A request to Inngest (its API or its event API), with the SDK's identity, its timeout
    /// and the configured branch environment.
    pub(crate) fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .inner
            .http
            .request(method, url)
            .timeout(API_TIMEOUT)
            .header(reqwest::header::USER_AGENT, SDK_HEADER_VALUE);
        match &self.inner.config.env {
            Some(env) => request.header("x-inngest-env", env),
            None => request,
        }
    }

    /// Sends one event; returns its id.
    pub async fn send<T: Serialize>(&self, event: &Event<T>) -> Result<String, SendError> {
        let mut ids = self.send_many(std::slice::from_ref(event)).await?;
        ids.pop().ok_or(SendError::Rejected {
            status: 200,
            message: "no event id in the response".to_owned(),
        })
    }

    /// Sends events in one request; returns their ids in order. Retries 5xx answers and
    /// transport errors with backoff, with the same `x-inngest-event-id-seed`, so a retried
    /// request produces the same ids and Inngest does not store the events twice.
    pub async fn send_many<T: Serialize>(
        &self,
        events: &[Event<T>],
    ) -> Result<Vec<String>, SendError> {
        self.send_through(events, &[]).await
    }

    /// Sends `events` through the `function` middleware's send hooks (innermost first), then
    /// the client's.
    pub(crate) async fn send_through<T: Serialize>(
        &self,
        events: &[Event<T>],
        function: &[Arc<dyn Middleware>],
    ) -> Result<Vec<String>, SendError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        for event in events {
            validate_event(&event.name)?;
        }
        let client = self.middleware();
        if client.is_empty() && function.is_empty() {
            return self.post_events(serde_json::to_vec(events)?).await;
        }
        let all = || function.iter().chain(client);
        let body = if all().any(|m| m.transforms()) {
            let mut values = events
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            for middleware in function.iter().rev().chain(client.iter().rev()) {
                middleware.transform_send(&mut values).await.map_err(|e| {
                    SendError::Middleware {
                        message: e.to_string(),
                        retry: e.retry().clone(),
                    }
                })?;
            }
            serde_json::to_vec(&values)?
        } else {
            serde_json::to_vec(events)?
        };
        let result = self.post_events(body).await;
        for middleware in client.iter().chain(function) {
            middleware.after_send(result.as_deref()).await;
        }
        result
    }

    /// POSTs serialized events to the event API, with retries.
    async fn post_events(&self, body: Vec<u8>) -> Result<Vec<String>, SendError> {
        let key = match (&self.inner.config.event_key, &self.inner.config.mode) {
            (Some(key), _) => key.expose().to_owned(),
            (None, Mode::Dev) => "NO_EVENT_KEY_SET".to_owned(),
            (None, Mode::Cloud) => return Err(SendError::MissingEventKey),
        };
        // Bytes, so each retry shares the one serialized body instead of copying it.
        let body = bytes::Bytes::from(body);
        let url = join_url(&self.inner.config.event_api_base_url, &format!("e/{key}"));
        let redacted_url = join_url(&self.inner.config.event_api_base_url, "e/***");
        let seed = event_id_seed();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let request = self
                .request(reqwest::Method::POST, &url)
                .header("content-type", "application/json")
                .header("x-inngest-sdk", SDK_HEADER_VALUE)
                .header("x-inngest-event-id-seed", &seed)
                .body(body.clone());
            let retry = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        let parsed: SendResponse =
                            serde_json::from_str(&text).map_err(|_| SendError::Rejected {
                                status: status.as_u16(),
                                message: format!("unreadable response: {}", truncate(&text)),
                            })?;
                        return Ok(parsed.ids);
                    }
                    let message = serde_json::from_str::<SendResponse>(&text)
                        .ok()
                        .and_then(|r| r.error)
                        .unwrap_or_else(|| truncate(&text));
                    let rejected = SendError::Rejected {
                        status: status.as_u16(),
                        message,
                    };
                    if !status.is_server_error() || attempt >= SEND_ATTEMPTS {
                        return Err(rejected);
                    }
                    rejected.to_string()
                }
                Err(source) => {
                    // The URL holds the event key: keep it out of errors and logs.
                    let source = match url::Url::parse(&redacted_url) {
                        Ok(redacted) => source.with_url(redacted),
                        Err(_) => source.without_url(),
                    };
                    if attempt >= SEND_ATTEMPTS {
                        return Err(SendError::Unreachable {
                            attempts: attempt,
                            source,
                        });
                    }
                    source.to_string()
                }
            };
            tracing::warn!(attempt, error = %retry, "sending events failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            attempt += 1;
        }
    }

    /// GETs an API path with the hashed signing key (see [`Self::send_authorized`]), decoded.
    pub(crate) async fn api_get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        Ok(self.api_get_response(path).await?.json().await?)
    }

    /// GETs an API path like [`Self::api_get`], answering the body as it came.
    pub(crate) async fn api_get_bytes(&self, path: &str) -> Result<bytes::Bytes, ApiError> {
        Ok(self.api_get_response(path).await?.bytes().await?)
    }

    /// The successful response to a GET of an API path.
    async fn api_get_response(&self, path: &str) -> Result<reqwest::Response, ApiError> {
        let url = join_url(&self.inner.config.api_base_url, path);
        let response = self
            .send_authorized(|| {
                self.request(reqwest::Method::GET, &url)
                    .header("x-inngest-sdk", SDK_HEADER_VALUE)
            })
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(ApiError::Status {
            status: status.as_u16(),
            body: truncate(&response.text().await.unwrap_or_default()),
        })
    }

    /// Sends checkpointed step results of `run_id` (spec §10.3.1): tried up to
    /// [`CHECKPOINT_ATTEMPTS`] times with growing pauses, each try with the key fallback of
    /// [`Self::send_authorized`]. A 409 means another call of the run has taken over: it is
    /// not retried.
    pub(crate) async fn checkpoint(
        &self,
        run_id: &str,
        body: &serde_json::Value,
    ) -> Result<(), CheckpointFailure> {
        let url = join_url(
            &self.inner.config.api_base_url,
            &format!("v1/checkpoint/{run_id}/async"),
        );
        let mut attempt = 1;
        loop {
            let sent = self
                .send_authorized(|| {
                    self.request(reqwest::Method::POST, &url)
                        .header("x-inngest-sdk", SDK_HEADER_VALUE)
                        .json(body)
                })
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status() == StatusCode::CONFLICT => {
                    return Err(CheckpointFailure::Stale);
                }
                Ok(response) => format!("Inngest API answered {}", response.status().as_u16()),
                Err(e) => format!("Inngest API unreachable: {}", e.without_url()),
            };
            if attempt >= CHECKPOINT_ATTEMPTS {
                return Err(CheckpointFailure::Unavailable(failure));
            }
            tracing::warn!(attempt, error = %failure, "checkpoint failed; retrying");
            let jitter = Duration::from_millis(u64::from(rand::rng().next_u32() % 100));
            tokio::time::sleep(CHECKPOINT_FIRST_PAUSE * 2u32.pow(attempt - 1) + jitter).await;
            attempt += 1;
        }
    }

    /// Sends an Inngest API request with a signing key as bearer: the preferred key first,
    /// the other one only when the first is refused with 401 or 403. Answers the first
    /// response that is not such a refusal, else the last refusal. `build` makes a fresh
    /// request for each attempt; without any signing key the request goes out without one.
    pub(crate) async fn send_authorized(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut keys = self.api_keys().into_iter().peekable();
        while let Some((key, role)) = keys.next() {
            let response = build().bearer_auth(key.hashed()).send().await?;
            let status = response.status();
            if status.is_success() {
                self.accepted(role);
            }
            let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            if !refused || keys.peek().is_none() {
                return Ok(response);
            }
        }
        build().send().await
    }

    /// The configured signing keys in the order API calls try them.
    fn api_keys(&self) -> Vec<(&SigningKey, KeyRole)> {
        let config = &self.inner.config;
        let primary = config.signing_key.as_ref().map(|k| (k, KeyRole::Primary));
        let fallback = config
            .signing_key_fallback
            .as_ref()
            .map(|k| (k, KeyRole::Fallback));
        if self.inner.keys.fallback_first.load(Ordering::Relaxed) {
            fallback.into_iter().chain(primary).collect()
        } else {
            primary.into_iter().chain(fallback).collect()
        }
    }

    /// Records that Inngest accepted a key: the fallback becomes the first choice for good.
    fn accepted(&self, role: KeyRole) {
        let keys = &self.inner.keys;
        match role {
            KeyRole::Fallback => {
                if self.inner.config.signing_key.is_some()
                    && keys
                        .fallback_first
                        .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::info!(
                        "Inngest refused INNGEST_SIGNING_KEY and accepted INNGEST_SIGNING_KEY_FALLBACK: \
                         API calls use the fallback key first from now on (a key rotation is under way)"
                    );
                }
            }
            KeyRole::Primary => {
                if keys.fallback_first.load(Ordering::Relaxed)
                    && !keys.rotation_done_logged.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        "Inngest now refuses INNGEST_SIGNING_KEY_FALLBACK and accepts INNGEST_SIGNING_KEY: \
                         the key rotation looks finished; remove INNGEST_SIGNING_KEY_FALLBACK and restart \
                         (until then each API call tries the fallback key first)"
                    );
                }
            }
        }
    }
}

fn validate_event(name: &str) -> Result<(), SendError> {
    let invalid = |reason| SendError::InvalidEvent {
        name: name.to_owned(),
        reason,
    };
    if name.trim().is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name.starts_with("inngest/") {
        return Err(invalid("names starting with inngest/ are reserved"));
    }
    Ok(())
}

/// `<unix millis>,<base64 of 10 random bytes>`, from which Inngest derives event ids.
fn event_id_seed() -> String {
    let mut entropy = [0u8; 10];
    rand::rng().fill_bytes(&mut entropy);
    format!(
        "{},{}",
        chrono::Utc::now().timestamp_millis(),
        base64::engine::general_purpose::STANDARD.encode(entropy)
    )
}

pub(crate) fn join_url(base: &url::Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn truncate(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
