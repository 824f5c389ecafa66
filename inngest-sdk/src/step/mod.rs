//! The step tools a function body uses: `run`, `sleep`, `sleep_until`, `wait_for_event`,
//! `invoke` and `send_event`.
//!
//! Each call either returns Inngest's memoized result at once or, the first time it is reached,
//! records itself for the driver and never resolves in this request: the function pauses there
//! and the request reports what it found. Join step futures (`futures::join!`, `join_all`) to
//! run steps in parallel; they are reported together.

mod checkpoint;
mod decode;
mod driver;
mod hooked;
mod memo;
pub mod op;
mod state;

use std::future::{Future, pending, poll_fn};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;

pub(crate) use checkpoint::{CheckpointIds, Halt, RunCheckpoint};
use decode::{ResultMemo, decode, decode_result};
pub(crate) use driver::{Outcome, drive};
pub(crate) use memo::{Memo, MemoText, StepSlices, parse_hex_digest, range_within};
pub use state::hash_step_id;
pub(crate) use state::{RunSettings, RunState};

use crate::duration::format_duration;
use crate::error::{Error, StepError};
use crate::event::Event;
use crate::middleware::StepKind;
use memo::{StepDigest, to_hex};
use op::{Op, OpCode, OpData};
use state::{Executed, Found, FoundOp};

/// The step tools of one run. Cheap to clone.
#[derive(Clone)]
pub struct Step {
    state: Arc<RunState>,
}

impl Step {
    pub(crate) fn new(state: Arc<RunState>) -> Self {
        Self { state }
    }

    /// Runs `f` once, durably: Inngest stores its result and later requests get it back without
    /// running `f` again. An error is retried per the function's retries; a non-retriable error
    /// or the last attempt's error is final, and `run` then returns it as a [`StepError`].
    pub async fn run<T, E, F, Fut>(&self, id: &str, f: F) -> Result<T, StepError>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Middleware and checkpointing are awaited boxed: the future every step of every
        // function holds stays the size of the plain path (and is moved and copied less).
        let digest = self.state.next_digest(id);
        let hooks = self.state.hooks.as_deref();
        if let Some(raw) = self.state.memoized(&digest) {
            return match hooks.filter(|h| h.transforms()) {
                None => decode_result(raw, id),
                Some(hooks) => {
                    let step = hooked::info(id, &to_hex(&digest), StepKind::Run, true);
                    Box::pin(self.memoized_result(hooks, &step, raw.json)).await
                }
            };
        }
        let hash = to_hex(&digest);
        if let Some(hooks) = hooks {
            Box::pin(async { self.hook(hooks.memoization_done().await).await }).await;
        }
        self.state.report(Found {
            digest,
            report: FoundOp::Run(id.to_owned()),
        });
        poll_fn(|cx| self.state.poll_chosen(&digest, cx)).await;
        tracing::debug!(step = id, %hash, "running step");
        let executed = match hooks {
            None => {
                let result = f().await.map_err(Into::into);
                self.step_outcome(&hash, id, result)
            }
            Some(hooks) => Box::pin(self.run_hooked(hooks, &hash, id, f)).await,
        };
        if let Some(checkpoint) = self.state.checkpointing()
            && let OpData::Raw(data) = &executed.op.data
        {
            let data = data.clone();
            return Box::pin(self.checkpointed(checkpoint, executed.op, id, &hash, &data)).await;
        }
        self.state.finish(executed);
        pending().await
    }

    /// A step that ran while checkpointing: its result is buffered (and sent when due), and the
    /// function goes on with it, decoded as a replay would decode it.
    async fn checkpointed<T: DeserializeOwned>(
        &self,
        checkpoint: &RunCheckpoint,
        op: Op,
        id: &str,
        hash: &str,
        data: &RawValue,
    ) -> Result<T, StepError> {
        self.state.step_done();
        if checkpoint.push(op) && !checkpoint.flush(&self.state.client).await {
            // The driver answers the call with the unsent results; this step is one of them.
            return pending().await;
        }
        match self.state.hooks.as_deref().filter(|h| h.transforms()) {
            None => decode(data.get(), id),
            Some(hooks) => {
                let step = hooked::info(id, hash, StepKind::Run, true);
                let memo = format!(r#"{{"data":{}}}"#, data.get());
                self.memoized_result(hooks, &step, &memo).await
            }
        }
    }

    fn step_outcome<T: Serialize>(
        &self,
        hash: &str,
        id: &str,
        result: Result<T, Error>,
    ) -> Executed {
        let result = result.and_then(|value| {
            serde_json::value::to_raw_value(&value).map_err(|e| {
                Error::non_retriable(format!("result of step {id:?} does not serialize: {e}"))
            })
        });
        match result {
            Ok(raw) => Executed {
                op: Op::new(OpCode::StepRun, hash, id).with_data(OpData::Raw(raw)),
                retry_after: None,
            },
            Err(err) => {
                let code = self.failure_code(&err);
                tracing::warn!(step = id, error = %err, final = code == OpCode::StepFailed, "step failed");
                Executed {
                    op: Op::new(code, hash, id).with_error(err.to_wire()),
                    retry_after: err.retry_after_header(),
                }
            }
        }
    }

    /// `StepError` when Inngest may retry the step after `err`, else `StepFailed`.
    fn failure_code(&self, err: &Error) -> OpCode {
        if err.is_retriable() && !self.state.is_last_attempt() {
            OpCode::StepError
        } else {
            OpCode::StepFailed
        }
    }

    /// Reports an async op the server carries out, and pauses this request.
    async fn pause<T>(&self, digest: StepDigest, op: Op) -> T {
        self.state.report(Found {
            digest,
            report: FoundOp::Other(op),
        });
        pending().await
    }

    /// Sleeps for `duration` (at most about a year), without holding a process.
    pub async fn sleep(&self, id: &str, duration: Duration) {
        let digest = self.state.next_digest(id);
        if self.state.memoized(&digest).is_some() {
            return;
        }
        let hash = to_hex(&digest);
        let opts = json!({ "duration": format_duration(duration) });
        let opts = self.step_input(id, &hash, StepKind::Sleep, opts).await;
        let op = Op::new(OpCode::Sleep, &hash, id)
            .with_opts(opts)
            .with_data(OpData::Null);
        self.pause(digest, op).await
    }

    /// Sleeps until `until`. A time already past completes at once without a round trip.
    pub async fn sleep_until(&self, id: &str, until: DateTime<Utc>) {
        let digest = self.state.next_digest(id);
        if self.state.memoized(&digest).is_some() || until <= Utc::now() {
            return;
        }
        let hash = to_hex(&digest);
        let opts = json!({
            "duration": until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        });
        let opts = self.step_input(id, &hash, StepKind::Sleep, opts).await;
        let op = Op::new(OpCode::Sleep, &hash, id)
            .with_opts(opts)
            .with_data(OpData::Null);
        self.pause(digest, op).await
    }

    /// Waits for an event matching `wait`; `None` when the timeout passes first.
    pub async fn wait_for_event<T: DeserializeOwned>(
        &self,
        id: &str,
        wait: WaitForEvent,
    ) -> Result<Option<Event<T>>, StepError> {
        let digest = self.state.next_digest(id);
        if let Some(raw) = self.state.memoized(&digest) {
            let hooks = self.state.hooks.as_deref().filter(|h| h.transforms());
            return match (raw.json.trim_ascii(), hooks) {
                ("null", _) => Ok(None),
                (event, None) => decode(event, id).map(Some),
                (event, Some(hooks)) => {
                    let step = hooked::info(id, &to_hex(&digest), StepKind::WaitForEvent, true);
                    self.memoized_value(hooks, &step, event).await.map(Some)
                }
            };
        }
        let hash = to_hex(&digest);
        let mut opts = json!({
            "event": wait.event,
            "timeout": format_duration(wait.timeout),
        });
        if let Some(expr) = wait.if_expression {
            opts["if"] = json!(expr);
        }
        let opts = self
            .step_input(id, &hash, StepKind::WaitForEvent, opts)
            .await;
        let op = Op::new(OpCode::WaitForEvent, &hash, id)
            .with_opts(opts)
            .with_data(OpData::Null);
        self.pause(digest, op).await
    }

    /// Invokes another function and waits for its result (or error).
    pub async fn invoke<I: Serialize, O: DeserializeOwned>(
        &self,
        id: &str,
        invocation: Invocation<I, O>,
    ) -> Result<O, StepError> {
        let digest = self.state.next_digest(id);
        if let Some(raw) = self.state.memoized(&digest) {
            return match self.state.hooks.as_deref().filter(|h| h.transforms()) {
                None => decode_result(raw, id),
                Some(hooks) => {
                    let step = hooked::info(id, &to_hex(&digest), StepKind::Invoke, true);
                    self.memoized_result(hooks, &step, raw.json).await
                }
            };
        }
        let hash = to_hex(&digest);
        let data = serde_json::to_value(&invocation.data).map_err(|e| {
            StepError::new(
                "SerializationError",
                format!("invoke payload of step {id:?} does not serialize: {e}"),
            )
        })?;
        let mut payload = json!({ "data": data });
        if let Some(user) = invocation.user {
            payload["user"] = user;
        }
        let mut opts = json!({
            "function_id": invocation.function.id,
            "payload": payload,
        });
        if let Some(timeout) = invocation.timeout {
            opts["timeout"] = json!(format_duration(timeout));
        }
        let opts = self.step_input(id, &hash, StepKind::Invoke, opts).await;
        let op = Op::new(OpCode::InvokeFunction, &hash, id).with_opts(opts);
        self.pause(digest, op).await
    }

    /// Sends events durably: the send is a step, so a replay does not send again. Returns the
    /// event ids Inngest assigned.
    pub async fn send_event<T: Serialize>(
        &self,
        id: &str,
        events: Vec<Event<T>>,
    ) -> Result<Vec<String>, StepError> {
        let client = self.state.client.clone();
        let function_middleware = self
            .state
            .hooks
            .as_ref()
            .map(|hooks| hooks.function_middleware().to_vec())
            .unwrap_or_default();
        let sent: SentEvents = self
            .run(id, || async move {
                client
                    .send_through(&events, &function_middleware)
                    .await
                    .map(|ids| SentEvents { ids })
            })
            .await?;
        Ok(sent.ids)
    }
}

#[derive(Serialize, serde::Deserialize)]
struct SentEvents {
    ids: Vec<String>,
}

/// What `wait_for_event` waits for.
#[derive(Debug, Clone)]
#[must_use]
pub struct WaitForEvent {
    event: String,
    timeout: Duration,
    if_expression: Option<String>,
}

impl WaitForEvent {
    /// Waits up to `timeout` for an event named `event`.
    pub fn new(event: impl Into<String>, timeout: Duration) -> Self {
        Self {
            event: event.into(),
            timeout,
            if_expression: None,
        }
    }

    /// Only an event for which this CEL expression holds; `event` is the triggering event and
    /// `async` the candidate, e.g. `async.data.id == event.data.id`.
    pub fn with_if(mut self, expression: impl Into<String>) -> Self {
        self.if_expression = Some(expression.into());
        self
    }

    /// Only an event whose `field` equals the triggering event's (e.g. `data.clerkId`).
    pub fn matching(self, field: &str) -> Self {
        self.with_if(format!("event.{field} == async.{field}"))
    }
}

/// A typed reference to a function that can be invoked: its composite id
/// (`<app id>-<function id>`), its input data type and its output type.
#[derive(Debug)]
#[must_use]
pub struct FunctionRef<I, O> {
    id: String,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for FunctionRef<I, O> {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            _types: PhantomData,
        }
    }
}

impl<I, O> FunctionRef<I, O> {
    /// A reference by app id and function id.
    pub fn new(app_id: &str, function_id: &str) -> Self {
        Self {
            id: format!("{app_id}-{function_id}"),
            _types: PhantomData,
        }
    }

    /// The composite id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A call of another function through `step.invoke`.
#[derive(Debug)]
#[must_use]
pub struct Invocation<I, O> {
    function: FunctionRef<I, O>,
    data: I,
    user: Option<serde_json::Value>,
    timeout: Option<Duration>,
}

impl<I, O> Invocation<I, O> {
    /// Invokes `function` with `data` as its event data.
    pub fn new(function: &FunctionRef<I, O>, data: I) -> Self {
        Self {
            function: function.clone(),
            data,
            user: None,
            timeout: None,
        }
    }

    /// Sets the event's `user` object.
    pub fn with_user(mut self, user: serde_json::Value) -> Self {
        self.user = Some(user);
        self
    }

    /// Gives up after `timeout` (Inngest's default is a year).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}
