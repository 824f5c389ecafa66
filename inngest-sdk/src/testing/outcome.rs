//! What a test run produced: its result, every op and request, and what it sent.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::WireError;
use crate::event::Event;

/// One op the function reported, as the executor handled it.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// The opcode (`StepRun`, `StepError`, `StepFailed`, `StepPlanned`, `Sleep`, ...).
    pub op: String,
    /// The user's step id.
    pub name: String,
    /// The hashed id.
    pub hash: String,
    /// The attempt of the request that reported it.
    pub attempt: u32,
    /// The op's options (durations, awaited event, invoked function).
    pub opts: Option<Value>,
    /// The result of a `StepRun`, or the event/result given to a wait or invoke.
    pub data: Option<Value>,
    /// The error of a `StepError` / `StepFailed`.
    pub error: Option<WireError>,
}

/// One request the executor made.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// `step` or the targeted hash.
    pub step_id: String,
    /// The attempt.
    pub attempt: u32,
    /// The response status.
    pub status: u16,
    /// The response body.
    pub body: Value,
    /// The response's `Retry-After`: when the function asked to be retried.
    pub retry_after: Option<String>,
    /// From sending the request to having the whole answer.
    pub elapsed: std::time::Duration,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The function's result, or its final error.
    pub result: Result<Value, WireError>,
    /// Every op in the order it was handled.
    pub steps: Vec<StepRecord>,
    /// Every request, in order.
    pub requests: Vec<RequestRecord>,
    /// The memoized state at the end, by hash.
    pub state: HashMap<String, Value>,
    /// Events the run sent (`send_event`, or the client directly), when the engine has an
    /// [`EventApi`]; runs executing concurrently on one engine see each other's events.
    pub sent_events: Vec<Event<Value>>,
    /// The event that cancelled the run (one of its `cancel` options matched it while the run
    /// slept or waited); the result is then a `FunctionCancelled` error.
    pub cancelled_by: Option<Event<Value>>,
}

impl RunOutcome {
    /// The result decoded into `T`; panics with the error when the run failed (for tests).
    pub fn output<T: DeserializeOwned>(&self) -> T {
        match &self.result {
            Ok(value) => serde_json::from_value(value.clone())
                .unwrap_or_else(|e| panic!("run output {value} does not decode: {e}")),
            Err(err) => panic!("run failed: {}: {}", err.name, err.message),
        }
    }

    /// Whether an event cancelled the run.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled_by.is_some()
    }

    /// The final error; panics when the run succeeded (for tests).
    pub fn error(&self) -> &WireError {
        match &self.result {
            Ok(value) => panic!("run succeeded with {value}"),
            Err(err) => err,
        }
    }

    /// The `Retry-After` of every response that asked for one, in order.
    pub fn retry_afters(&self) -> Vec<&str> {
        self.requests
            .iter()
            .filter_map(|r| r.retry_after.as_deref())
            .collect()
    }

    /// Ops with this opcode, in order.
    pub fn ops(&self, op: &str) -> Vec<&StepRecord> {
        self.steps.iter().filter(|s| s.op == op).collect()
    }

    /// How many times the step `name` ran to success.
    pub fn times_ran(&self, name: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| s.name == name && s.op == "StepRun")
            .count()
    }

    /// The durations of the sleeps, as `(step id, duration string)`.
    pub fn sleeps(&self) -> Vec<(String, String)> {
        self.ops("Sleep")
            .into_iter()
            .map(|s| {
                let duration = s
                    .opts
                    .as_ref()
                    .and_then(|o| o["duration"].as_str())
                    .unwrap_or_default();
                (s.name.clone(), duration.to_owned())
            })
            .collect()
    }
}
