//! Testing support: an in-process executor that runs a registered function through the real
//! serve handler the way Inngest does (memoized state fed back, sleeps played instantly, events
//! delivered to `wait_for_event` or timed out, the function's `cancel` options applied to the
//! events that arrive while it sleeps or waits, retries per the function's config, `invoke`
//! answered by running the invoked function with the `data._inngest` metadata Inngest adds,
//! and, on request, a step's response lost once as when the process dies before answering)
//! and returns the whole run for assertions. Enable with the `testing` feature.
//!
//! [`TestEngine::over_http`] sends the same signed requests to a running service instead, so
//! a load driver can play Inngest against a real process with this one executor.
//!
//! ```no_run
//! # async fn demo(handler: inngest_sdk::ServeHandler<()>) {
//! use inngest_sdk::Event;
//! use inngest_sdk::testing::TestEngine;
//! let engine = TestEngine::new(handler);
//! let run = engine
//!     .run("welcome", Event::new("user/signed.up", serde_json::json!({"email": "a@b.c"})))
//!     .execute()
//!     .await;
//! assert!(run.result.is_ok());
//! # }
//! ```

mod event_api;
mod expression;
mod outcome;

use std::collections::{HashMap, VecDeque};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use event_api::{EventApi, ReceivedBatch, ReceivedCheckpoint};
pub use expression::{ExpressionError, matches};
pub use outcome::{RequestRecord, RunOutcome, StepRecord};

use crate::duration::parse_duration;
use crate::error::WireError;
use crate::event::Event;
use crate::handler::ServeHandler;
use crate::signature::sign;

/// The most requests one run may take before the executor calls it stuck.
const MAX_REQUESTS: usize = 500;

/// Runs functions of one serve handler the way Inngest does.
pub struct TestEngine<S> {
    handler: ServeHandler<S>,
    event_api: Option<EventApi>,
    remote: Option<Remote>,
}

/// Where requests go when they leave the process: a serve endpoint over HTTP.
struct Remote {
    url: String,
    http: reqwest::Client,
}

impl<S: Clone + Send + Sync + 'static> TestEngine<S> {
    /// An executor for `handler`'s functions.
    #[must_use]
    pub fn new(handler: ServeHandler<S>) -> Self {
        Self {
            handler,
            event_api: None,
            remote: None,
        }
    }

    /// Sends every request over HTTP to the serve endpoint `url` (`http://host/api/inngest`)
    /// instead of calling the handler in process. The handler still says which functions
    /// exist, how they are configured and which key signs the requests, as Inngest knows
    /// them from a sync; it must describe the functions the endpoint serves.
    #[must_use]
    pub fn over_http(mut self, url: &str) -> Self {
        self.remote = Some(Remote {
            url: url.to_owned(),
            http: reqwest::Client::new(),
        });
        self
    }

    /// The ids (bare) of the functions `event` triggers: an event trigger of that name whose
    /// `if` expression, if any, holds for it.
    pub fn triggered_by<T: Serialize>(&self, event: &Event<T>) -> Vec<String> {
        let event = serde_json::to_value(event).unwrap_or_default();
        self.handler
            .functions()
            .iter()
            .filter(|f| {
                f.opts.triggers.iter().any(|t| match t {
                    crate::function::Trigger::Event {
                        event: name,
                        expression,
                    } => {
                        event["name"] == name.as_str()
                            && expression.as_deref().is_none_or(|expr| {
                                matches(expr, &event, &Value::Null)
                                    .unwrap_or_else(|e| panic!("{e}"))
                            })
                    }
                    crate::function::Trigger::Cron { .. } => false,
                })
            })
            .map(|f| f.opts.id.clone())
            .collect()
    }

    /// Collects what runs send into [`RunOutcome::sent_events`]; the handler's client must send
    /// to `api` (`Config::with_event_api_base_url(&api.url())`). Calls then name a queue item,
    /// so a function with checkpointing checkpoints into `api` when the client's API base URL
    /// is its URL (`Config::with_api_base_url`); the run takes in the checkpointed steps.
    #[must_use]
    pub fn with_event_api(mut self, api: &EventApi) -> Self {
        self.event_api = Some(api.clone());
        self
    }

    /// Prepares a run of `function_id` (bare or composite) triggered by `event`.
    pub fn run<T: Serialize>(&self, function_id: &str, event: Event<T>) -> TestRun<'_, S> {
        TestRun {
            engine: self,
            function_id: function_id.to_owned(),
            event: to_event_value(event),
            incoming: Vec::new(),
            incoming_during: Vec::new(),
            invoke_results: HashMap::new(),
            run_id: format!("test-run-{}", rand::random::<u64>()),
            options: RunOptions::default(),
        }
    }
}

fn to_event_value<T: Serialize>(event: Event<T>) -> Value {
    let mut value =
        serde_json::to_value(event).unwrap_or_else(|e| panic!("event does not serialize: {e}"));
    if let Some(obj) = value.as_object_mut() {
        obj.entry("id")
            .or_insert_with(|| json!(format!("test-event-{}", rand::random::<u64>())));
        obj.entry("ts")
            .or_insert_with(|| json!(chrono::Utc::now().timestamp_millis()));
        obj.entry("user").or_insert_with(|| json!({}));
    }
    value
}

/// A run being prepared; `.execute().await` (or `.await`) runs it.
#[must_use = "a test run does nothing until it is awaited"]
pub struct TestRun<'a, S> {
    engine: &'a TestEngine<S>,
    function_id: String,
    event: Value,
    incoming: Vec<Value>,
    incoming_during: Vec<(String, Value)>,
    invoke_results: HashMap<String, Result<Value, WireError>>,
    run_id: String,
    options: RunOptions,
}

/// Called with each step of a run as the executor records it.
pub type StepObserver = std::sync::Arc<dyn Fn(&StepRecord) + Send + Sync>;

/// How a run departs from Inngest's defaults.
#[derive(Clone, Default)]
struct RunOptions {
    /// Events received by this API during the run arrive as they come, and a wait with no
    /// matching event waits this long in real time for one.
    live: Option<(EventApi, Duration)>,
    observer: Option<StepObserver>,
    max_attempts: Option<u32>,
    /// Steps whose next successful response is lost (one entry per loss).
    lost_responses: Vec<String>,
    /// Real time between a failed attempt and the next.
    retry_pause: Option<Duration>,
}

impl<'a, S: Clone + Send + Sync + 'static> TestRun<'a, S> {
    /// An event that arrives during the run, by the time it first sleeps or waits: if it
    /// matches one of the function's cancellations the run ends there, cancelled; otherwise
    /// the first `wait_for_event` it matches (name and `if` expression) receives it. A wait
    /// nothing matches times out.
    pub fn with_incoming<T: Serialize>(mut self, event: Event<T>) -> Self {
        self.incoming.push(to_event_value(event));
        self
    }

    /// An event that arrives while the run sleeps or waits in the step `step_id` (the id given
    /// to `sleep`, `sleep_until` or `wait_for_event`), and not before; from then on it is
    /// handled like [`TestRun::with_incoming`]'s. A run that never reaches that step never
    /// sees it.
    pub fn with_incoming_during<T: Serialize>(mut self, step_id: &str, event: Event<T>) -> Self {
        self.incoming_during
            .push((step_id.to_owned(), to_event_value(event)));
        self
    }

    /// Answers `invoke` of `function_id` (composite) with this result instead of running it.
    pub fn with_invoke_result(
        mut self,
        function_id: &str,
        result: Result<Value, WireError>,
    ) -> Self {
        self.invoke_results.insert(function_id.to_owned(), result);
        self
    }

    /// Sets the run id.
    pub fn with_run_id(mut self, run_id: &str) -> Self {
        self.run_id = run_id.to_owned();
        self
    }

    /// Overrides the attempts per step (default: the function's retries + 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.options.max_attempts = Some(attempts);
        self
    }

    /// Loses the response of the step `step_id` the first time it succeeds, as when the
    /// process serving the function dies after the step's side effects but before Inngest has
    /// its result: nothing is memoized and the same request is made again (the next attempt),
    /// so the step runs a second time. Both runs stay in [`RunOutcome::steps`] (so
    /// [`RunOutcome::times_ran`] counts 2). Call it again to lose the step's response twice.
    pub fn losing_response_of(mut self, step_id: &str) -> Self {
        self.options.lost_responses.push(step_id.to_owned());
        self
    }

    /// Waits `pause` of real time before each retry, where Inngest would back off (by default
    /// retries follow at once). With it a test can end an outage while the run retries.
    pub fn with_retry_pause(mut self, pause: Duration) -> Self {
        self.options.retry_pause = Some(pause);
        self
    }

    /// Plays the run live against `api`: the events it receives while the run goes on (sent
    /// by the service itself, say, when a person acts) arrive as they come, and a
    /// `wait_for_event` that nothing matches yet waits up to `patience` of real time before
    /// its timeout is played. For demos and end-to-end tests where a person's action is what
    /// the run waits for.
    pub fn with_live_events(mut self, api: &EventApi, patience: Duration) -> Self {
        self.options.live = Some((api.clone(), patience));
        self
    }

    /// Calls `observer` with each step as it is recorded, while the run goes on.
    pub fn observing(mut self, observer: StepObserver) -> Self {
        self.options.observer = Some(observer);
        self
    }

    /// Runs to completion or final failure.
    pub async fn execute(self) -> RunOutcome {
        let mut incoming = Incoming {
            arrived: self.incoming.clone(),
            during: self.incoming_during.clone(),
        };
        Box::pin(execute(
            self.engine,
            &self.function_id,
            self.event.clone(),
            &mut incoming,
            &self.invoke_results,
            &self.run_id,
            self.options.clone(),
        ))
        .await
    }
}

impl<'a, S: Clone + Send + Sync + 'static> IntoFuture for TestRun<'a, S> {
    type Output = RunOutcome;
    type IntoFuture = Pin<Box<dyn Future<Output = RunOutcome> + Send + 'a>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

/// The events that reach a run: those that have arrived, and those that arrive when the run
/// sleeps or waits in a given step.
#[derive(Default)]
struct Incoming {
    arrived: Vec<Value>,
    during: Vec<(String, Value)>,
}

impl Incoming {
    /// The run now sleeps or waits in `step_id`: the events due then arrive.
    fn reach(&mut self, step_id: &str) {
        let (now, later) = std::mem::take(&mut self.during)
            .into_iter()
            .partition(|(step, _)| step == step_id);
        self.during = later;
        self.arrived.extend(now.into_iter().map(|(_, event)| event));
    }
}

/// One `cancel` entry of the function's registered configuration, as Inngest reads it.
struct Cancellation {
    event: String,
    condition: Option<String>,
    timeout: Option<Duration>,
}

impl Cancellation {
    /// The cancellations in a function's sync configuration.
    fn from_config(config: &Value) -> Vec<Self> {
        let entries = config["cancel"].as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .map(|c| Cancellation {
                event: c["event"].as_str().unwrap_or_default().to_owned(),
                condition: c["if"].as_str().map(str::to_owned),
                timeout: c["timeout"].as_str().map(|t| {
                    parse_duration(t).unwrap_or_else(|e| panic!("cancel timeout {t:?}: {e}"))
                }),
            })
            .collect()
    }

    /// Whether `candidate`, arriving `elapsed` after the run started, cancels a run triggered
    /// by `trigger`.
    fn matches(&self, trigger: &Value, candidate: &Value, elapsed: Duration) -> bool {
        candidate["name"] == self.event.as_str()
            && self.timeout.is_none_or(|t| elapsed <= t)
            && self.condition.as_deref().is_none_or(|expr| {
                matches(expr, trigger, candidate).unwrap_or_else(|e| panic!("{e}"))
            })
    }
}

struct Run<'e, S> {
    engine: &'e TestEngine<S>,
    composite: String,
    event: Value,
    run_id: String,
    max_attempts: u32,
    retry_pause: Option<Duration>,
    memo: Map<String, Value>,
    stack: Vec<String>,
    outcome_steps: Vec<StepRecord>,
    requests: Vec<RequestRecord>,
    cancellations: Vec<Cancellation>,
    /// When the run started (real time), and how far its sleeps and waits have taken it.
    started: chrono::DateTime<chrono::Utc>,
    elapsed: Duration,
    cancelled_by: Option<Value>,
    /// Steps whose next successful response is lost (one entry per loss).
    lost_responses: Vec<String>,
    live: Option<(EventApi, Duration)>,
    /// How many of the live API's events had arrived when last looked at.
    live_seen: usize,
    /// How many of the event API's checkpoints had been taken in when last looked at.
    checkpoints_seen: usize,
    observer: Option<StepObserver>,
}

fn execute<'e, S: Clone + Send + Sync + 'static>(
    engine: &'e TestEngine<S>,
    function_id: &'e str,
    event: Value,
    incoming: &'e mut Incoming,
    invoke_results: &'e HashMap<String, Result<Value, WireError>>,
    run_id: &'e str,
    options: RunOptions,
) -> Pin<Box<dyn Future<Output = RunOutcome> + Send + 'e>> {
    Box::pin(async move {
        let config = engine.handler.client().config();
        let function = engine
            .handler
            .functions()
            .iter()
            .find(|f| f.opts.id == function_id || config.composite_id(&f.opts.id) == function_id)
            .unwrap_or_else(|| panic!("no function {function_id:?} is registered"));
        let mut run = Run {
            engine,
            composite: config.composite_id(&function.opts.id),
            event,
            run_id: run_id.to_owned(),
            max_attempts: options.max_attempts.unwrap_or(function.opts.retries() + 1),
            retry_pause: options.retry_pause,
            memo: Map::new(),
            stack: Vec::new(),
            outcome_steps: Vec::new(),
            requests: Vec::new(),
            cancellations: Cancellation::from_config(&function.opts.to_json(
                config.app_id(),
                "http://localhost/api/inngest",
                None,
            )),
            started: chrono::Utc::now(),
            elapsed: Duration::ZERO,
            cancelled_by: None,
            lost_responses: options.lost_responses,
            live_seen: options
                .live
                .as_ref()
                .map_or(0, |(api, _)| api.events().len()),
            live: options.live,
            observer: options.observer,
            checkpoints_seen: engine
                .event_api
                .as_ref()
                .map_or(0, |api| api.checkpoints_after(usize::MAX).1),
        };
        let before = engine
            .event_api
            .as_ref()
            .map_or(0, |api| api.events().len());
        let result = run.drive(incoming, invoke_results).await;
        let sent_events = engine
            .event_api
            .as_ref()
            .map(|api| api.events().into_iter().skip(before).collect())
            .unwrap_or_default();
        RunOutcome {
            result,
            steps: run.outcome_steps,
            requests: run.requests,
            state: run.memo.into_iter().collect(),
            sent_events,
            cancelled_by: run
                .cancelled_by
                .map(|e| serde_json::from_value(e).unwrap_or_else(|e| panic!("event: {e}"))),
        }
    })
}

impl<S: Clone + Send + Sync + 'static> Run<'_, S> {
    async fn drive(
        &mut self,
        incoming: &mut Incoming,
        invoke_results: &HashMap<String, Result<Value, WireError>>,
    ) -> Result<Value, WireError> {
        let mut planned: VecDeque<String> = VecDeque::new();
        let mut attempt = 0;
        let mut force_plan = false;
        let mut current = "step".to_owned();
        for _ in 0..MAX_REQUESTS {
            let (status, body, no_retry) = self.request(&current, attempt, force_plan).await;
            self.take_in_checkpoints(attempt);
            let retry_allowed = attempt + 1 < self.max_attempts;
            match status {
                StatusCode::OK => return Ok(body),
                StatusCode::PARTIAL_CONTENT => {
                    let ops = body.as_array().cloned().unwrap_or_default();
                    if let Some(lost) = self.lose_response(&ops) {
                        // Inngest never saw this response: to it the request failed, and it
                        // retries the step as it would after a timeout.
                        let record = self.record(&lost, attempt);
                        self.push_step(record);
                        if !retry_allowed {
                            return Err(WireError {
                                name: "ResponseLost".into(),
                                message: "the step's last attempt never answered".into(),
                                stack: None,
                            });
                        }
                        attempt += 1;
                        self.pause_before_retry().await;
                        continue;
                    }
                    if ops.len() > 1 {
                        force_plan = true;
                    }
                    let mut retry_same = false;
                    let mut completed = None;
                    for op in &ops {
                        if op["op"] == "RunComplete" {
                            completed = Some(op.get("data").cloned().unwrap_or(Value::Null));
                            continue;
                        }
                        let record = self.record(op, attempt);
                        if matches!(record.op.as_str(), "Sleep" | "WaitForEvent")
                            && let Some(cancelled) = self.cancel_while_paused(&record, incoming)
                        {
                            self.push_step(record);
                            return Err(cancelled);
                        }
                        match record.op.as_str() {
                            "StepRun" => self.memoize(&record.hash, json!({ "data": record.data })),
                            "StepError" if retry_allowed => retry_same = true,
                            "StepError" | "StepFailed" => {
                                self.memoize(&record.hash, json!({ "error": record.error }))
                            }
                            "StepPlanned" => planned.push_back(record.hash.clone()),
                            "Sleep" => {
                                self.advance_past_sleep(&record);
                                self.memoize(&record.hash, Value::Null);
                            }
                            "WaitForEvent" => {
                                self.await_live(&record, incoming).await;
                                let matched = self.match_wait(&record, &mut incoming.arrived);
                                self.memoize(&record.hash, matched);
                            }
                            "InvokeFunction" => {
                                let result = self.invoke(&record, invoke_results).await;
                                self.memoize(&record.hash, result);
                            }
                            other => panic!("the executor does not know op {other}"),
                        }
                        self.push_step(record);
                    }
                    if let Some(output) = completed {
                        return Ok(output);
                    }
                    if retry_same {
                        attempt += 1;
                        self.pause_before_retry().await;
                        continue;
                    }
                    attempt = 0;
                    if ops.is_empty() && planned.is_empty() && current == "step" {
                        return Err(WireError {
                            name: "Stuck".into(),
                            message: "the function reported nothing to do".into(),
                            stack: None,
                        });
                    }
                    current = match planned.pop_front() {
                        Some(hash) => hash,
                        None => {
                            force_plan = false;
                            "step".to_owned()
                        }
                    };
                }
                _ => {
                    let error: WireError =
                        serde_json::from_value(body.clone()).unwrap_or(WireError {
                            name: "Error".into(),
                            message: body.to_string(),
                            stack: None,
                        });
                    if !no_retry && retry_allowed {
                        attempt += 1;
                        self.pause_before_retry().await;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
        Err(WireError {
            name: "Stuck".into(),
            message: format!("no result after {MAX_REQUESTS} requests"),
            stack: None,
        })
    }

    async fn pause_before_retry(&self) {
        if let Some(pause) = self.retry_pause {
            tokio::time::sleep(pause).await;
        }
    }

    /// The `StepRun` op among `ops` whose response is to be lost now, if any (taken off the
    /// list, so each loss happens once).
    fn lose_response(&mut self, ops: &[Value]) -> Option<Value> {
        let op = ops.iter().find(|op| {
            op["op"] == "StepRun"
                && self
                    .lost_responses
                    .iter()
                    .any(|name| op["name"] == name.as_str())
        })?;
        let name = op["name"].as_str().unwrap_or_default();
        let index = self.lost_responses.iter().position(|n| n == name)?;
        self.lost_responses.remove(index);
        Some(op.clone())
    }

    /// The steps the function checkpointed during the last request, memoized as Inngest's
    /// checkpoint API saves them.
    fn take_in_checkpoints(&mut self, attempt: u32) {
        let Some(api) = &self.engine.event_api else {
            return;
        };
        let (checkpoints, seen) = api.checkpoints_after(self.checkpoints_seen);
        self.checkpoints_seen = seen;
        let fresh: Vec<Value> = checkpoints
            .into_iter()
            .filter(|checkpoint| checkpoint.run_id == self.run_id)
            .flat_map(|checkpoint| checkpoint.steps)
            .collect();
        for op in fresh {
            let record = self.record(&op, attempt);
            self.memoize(&record.hash, json!({ "data": record.data }));
            self.push_step(record);
        }
    }

    fn memoize(&mut self, hash: &str, value: Value) {
        self.memo.insert(hash.to_owned(), value);
        self.stack.push(hash.to_owned());
    }

    fn record(&self, op: &Value, attempt: u32) -> StepRecord {
        StepRecord {
            op: op["op"].as_str().unwrap_or_default().to_owned(),
            name: op["name"].as_str().unwrap_or_default().to_owned(),
            hash: op["id"].as_str().unwrap_or_default().to_owned(),
            attempt,
            opts: op.get("opts").filter(|o| !o.is_null()).cloned(),
            data: op.get("data").filter(|d| !d.is_null()).cloned(),
            error: op
                .get("error")
                .and_then(|e| serde_json::from_value(e.clone()).ok()),
        }
    }

    /// The run pauses in a sleep or a wait: the events due arrive, and the first one that
    /// matches a cancellation ends the run, as Inngest cancels a paused run (the pause never
    /// resumes and no further step runs).
    fn cancel_while_paused(
        &mut self,
        record: &StepRecord,
        incoming: &mut Incoming,
    ) -> Option<WireError> {
        incoming.reach(&record.name);
        let event = incoming.arrived.iter().find(|candidate| {
            self.cancellations
                .iter()
                .any(|c| c.matches(&self.event, candidate, self.elapsed))
        })?;
        self.cancelled_by = Some(event.clone());
        Some(WireError {
            name: "FunctionCancelled".into(),
            message: format!(
                "cancelled by {} (event {}) during {:?}",
                event["name"].as_str().unwrap_or_default(),
                event["id"].as_str().unwrap_or_default(),
                record.name
            ),
            stack: None,
        })
    }

    /// Moves the run's clock past a sleep: a duration, or an RFC 3339 time (`sleep_until`).
    fn advance_past_sleep(&mut self, record: &StepRecord) {
        let opts = record.opts.clone().unwrap_or_default();
        let duration = opts["duration"].as_str().unwrap_or_default();
        match chrono::DateTime::parse_from_rfc3339(duration) {
            Ok(until) => {
                let since_start = (until.with_timezone(&chrono::Utc) - self.started)
                    .to_std()
                    .unwrap_or_default();
                self.elapsed = self.elapsed.max(since_start);
            }
            Err(_) => {
                self.elapsed += parse_duration(duration)
                    .unwrap_or_else(|e| panic!("sleep {:?}: {e}", record.name));
            }
        }
    }

    fn push_step(&mut self, record: StepRecord) {
        if let Some(observer) = &self.observer {
            observer(&record);
        }
        self.outcome_steps.push(record);
    }

    /// Whether `candidate` is the event the wait of `record` awaits.
    fn awaited(&self, record: &StepRecord, candidate: &Value) -> bool {
        let opts = record.opts.clone().unwrap_or_default();
        candidate["name"] == opts["event"].as_str().unwrap_or_default()
            && opts["if"].as_str().is_none_or(|expr| {
                matches(expr, &self.event, candidate).unwrap_or_else(|e| panic!("{e}"))
            })
    }

    /// In a live run, takes in the events the API received since last looked, until one is
    /// awaited by `record` or the patience runs out.
    async fn await_live(&mut self, record: &StepRecord, incoming: &mut Incoming) {
        let Some((api, patience)) = self.live.clone() else {
            return;
        };
        let deadline = Instant::now() + patience;
        loop {
            let fresh: Vec<Value> = api
                .events()
                .into_iter()
                .skip(self.live_seen)
                .map(|e| serde_json::to_value(e).unwrap_or_default())
                .collect();
            self.live_seen += fresh.len();
            incoming.arrived.extend(fresh);
            if incoming.arrived.iter().any(|e| self.awaited(record, e))
                || Instant::now() >= deadline
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn match_wait(&mut self, record: &StepRecord, incoming: &mut Vec<Value>) -> Value {
        let opts = record.opts.clone().unwrap_or_default();
        let timeout = opts["timeout"].as_str().map(|timeout| {
            parse_duration(timeout).unwrap_or_else(|e| panic!("wait {:?}: {e}", record.name))
        });
        let position = incoming
            .iter()
            .position(|candidate| self.awaited(record, candidate));
        match position {
            Some(i) => incoming.remove(i),
            None => {
                self.elapsed += timeout.unwrap_or_default();
                Value::Null
            }
        }
    }

    async fn invoke(
        &self,
        record: &StepRecord,
        results: &HashMap<String, Result<Value, WireError>>,
    ) -> Value {
        let opts = record.opts.clone().unwrap_or_default();
        let target = opts["function_id"].as_str().unwrap_or_default().to_owned();
        let result = match results.get(&target) {
            Some(result) => result.clone(),
            None => {
                let payload = &opts["payload"];
                let mut data = payload.get("data").cloned().unwrap_or(json!({}));
                if let Some(data) = data.as_object_mut() {
                    data.insert("_inngest".into(), self.invocation_metadata(record, &target));
                }
                let event = json!({
                    "name": "inngest/function.invoked",
                    "data": data,
                    "user": payload.get("user").cloned().unwrap_or(json!({})),
                    "id": format!("invoke-{}", record.hash),
                    "ts": chrono::Utc::now().timestamp_millis(),
                });
                let mut none = Incoming::default();
                let nested_id = format!("{}-{}", self.run_id, record.hash);
                execute(
                    self.engine,
                    &target,
                    event,
                    &mut none,
                    results,
                    &nested_id,
                    RunOptions::default(),
                )
                .await
                .result
            }
        };
        match result {
            Ok(data) => json!({ "data": data }),
            Err(error) => json!({ "error": error }),
        }
    }

    /// The `_inngest` object Inngest puts in an invoked run's `event.data`: who invoked it,
    /// the correlation id the result is routed back by, and when the invocation expires.
    fn invocation_metadata(&self, record: &StepRecord, target: &str) -> Value {
        let opts = record.opts.clone().unwrap_or_default();
        let timeout = opts["timeout"]
            .as_str()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let expire = chrono::Utc::now()
            + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::days(365));
        json!({
            "source_app_id": self.engine.handler.client().config().app_id(),
            "source_fn_id": self.composite,
            "source_fn_v": 1,
            "fn_id": target,
            "correlation_id": format!("{}.{}", self.run_id, record.hash),
            "expire": expire.timestamp_millis(),
            "gid": "",
            "name": record.name,
        })
    }

    async fn request(
        &mut self,
        step_id: &str,
        attempt: u32,
        force_plan: bool,
    ) -> (StatusCode, Value, bool) {
        // The queue item lets the function checkpoint, into the event API when there is one.
        let qi_id = self
            .engine
            .event_api
            .as_ref()
            .map(|_| format!("qi-{}", self.run_id));
        let body = json!({
            "ctx": {
                "qi_id": qi_id,
                "attempt": attempt,
                "disable_immediate_execution": force_plan,
                "env": "",
                "fn_id": self.composite,
                "max_attempts": self.max_attempts,
                "run_id": self.run_id,
                "stack": { "current": self.stack.len(), "stack": self.stack },
                "step_id": step_id,
                "use_api": false,
            },
            "event": self.event,
            "events": [self.event],
            "steps": self.memo,
            "use_api": false,
            "version": 2,
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("fnId", &self.composite)
            .append_pair("stepId", step_id)
            .finish();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://localhost/api/inngest?{query}"))
            .header("content-type", "application/json");
        if let Some(key) = &self.engine.handler.client().config().signing_key {
            request = request.header(
                crate::handler::headers::SIGNATURE,
                sign(key, &bytes, chrono::Utc::now().timestamp()),
            );
        }
        let request = request
            .body(Bytes::from(bytes))
            .unwrap_or_else(|e| panic!("request does not build: {e}"));
        let started = Instant::now();
        let response = match &self.engine.remote {
            None => self.engine.handler.handle(request).await,
            Some(remote) => remote.send(request, &query).await,
        };
        let elapsed = started.elapsed();
        let status = response.status();
        let no_retry = response
            .headers()
            .get(crate::handler::headers::NO_RETRY)
            .is_some_and(|v| v == "true");
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        self.requests.push(RequestRecord {
            step_id: step_id.to_owned(),
            attempt,
            status: status.as_u16(),
            body: body.clone(),
            retry_after,
            elapsed,
        });
        (status, body, no_retry)
    }
}

impl Remote {
    /// `request` (built for the handler) sent to the endpoint; a transport failure is a 599
    /// answer with the error as its body, which the run retries like any failed request.
    async fn send(&self, request: Request<Bytes>, query: &str) -> http::Response<Bytes> {
        let (parts, body) = request.into_parts();
        let sent = self
            .http
            .post(format!("{}?{query}", self.url))
            .headers(parts.headers)
            .body(body)
            .send()
            .await;
        let failed = |message: String| {
            let body = serde_json::to_vec(&json!({ "name": "TransportError", "message": message }))
                .unwrap_or_default();
            let mut response = http::Response::new(Bytes::from(body));
            *response.status_mut() =
                StatusCode::from_u16(599).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response
        };
        let response = match sent {
            Ok(response) => response,
            Err(e) => return failed(e.to_string()),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => {
                let mut answer = http::Response::new(body);
                *answer.status_mut() = status;
                *answer.headers_mut() = headers;
                answer
            }
            Err(e) => failed(e.to_string()),
        }
    }
}
