//! Middleware: code that runs around every run and step, and every event send, following the
//! lifecycle of Inngest's SDK spec (section 6) as the official SDKs implement it.
//!
//! A [`Middleware`] is registered on the [`Client`](crate::Client) (it then sees every function
//! and every send) or on one [`Function`](crate::Function). For each request of a run it hands
//! out fresh [`RunHooks`], which keep whatever the request needs (a span, a timer). In one
//! request the hooks are called in this order:
//!
//! 1. [`RunHooks::transform_input`]: the event and the batch, before the function starts;
//! 2. [`RunHooks::before_memoization`]; for each memoized step the code reaches,
//!    [`RunHooks::transform_memoized`] (with [`StepInfo::memoized`] set); then, when the code
//!    reaches its first new step or returns, [`RunHooks::after_memoization`] and
//!    [`RunHooks::before_execution`];
//! 3. for each new step: [`RunHooks::transform_step_input`] (steps whose options go to Inngest:
//!    sleeps, waits, invokes); if the step runs in this request, [`RunHooks::before_step`], its
//!    code, [`RunHooks::after_step`] and, on success, [`RunHooks::transform_step_output`];
//! 4. [`RunHooks::after_execution`]; [`RunHooks::transform_output`] when the function returned
//!    (its value or its error); and [`RunHooks::run_end`] with what the request answers.
//!
//! Middleware compose like onion layers, as in the official SDKs: the client's come first, then
//! the function's, in the order they were added. Hooks that run *before* something, and data
//! flowing *into* the function (input, memoized results), go outermost first; hooks that run
//! *after* something, and data flowing *out* to Inngest (step options, step results, the
//! function's output, sent events), go innermost first, so the outermost middleware (say,
//! encryption on the client) sees the final bytes.
//!
//! An observer that changes no data says so ([`Middleware::transforms`]), and runs with only the
//! other hooks then skip the `transform_*` hooks and their JSON conversions.
//!
//! A hook that returns an error fails the request with that error, as a thrown error in an
//! official SDK's middleware does: the remaining hooks except [`RunHooks::run_end`] are skipped,
//! the step that was running is not reported, and Inngest retries the request if the error is
//! retriable. Middleware runs the same under the testing executor, which goes through the real
//! handler.

mod chain;
#[cfg(feature = "encryption")]
pub mod encryption;
mod tracing;

/// The attribute for implementing the hooks traits with `async fn`s.
pub use async_trait::async_trait;
use serde_json::Value;

pub(crate) use chain::RunHooksChain;
pub use tracing::TracingMiddleware;

use crate::client::SendError;
use crate::error::Error;
use crate::function::RunInfo;
use crate::step::op::{Op, OpCode};

/// A middleware: hands out hooks for each request of a run, and sees every event sent.
///
/// ```
/// use inngest_sdk::middleware::{Middleware, RunHooks, StepInfo, async_trait};
/// use inngest_sdk::function::RunInfo;
/// use inngest_sdk::Error;
///
/// struct Timing;
/// struct TimingHooks { started: std::time::Instant }
///
/// impl Middleware for Timing {
///     fn on_run(&self, _run: &RunInfo) -> Box<dyn RunHooks> {
///         Box::new(TimingHooks { started: std::time::Instant::now() })
///     }
/// }
///
/// #[async_trait]
/// impl RunHooks for TimingHooks {
///     async fn after_step(&mut self, step: &StepInfo, _outcome: &inngest_sdk::middleware::StepOutcome<'_>) -> Result<(), Error> {
///         println!("{} done after {:?}", step.id, self.started.elapsed());
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// The name used in logs when a hook fails.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// Whether this middleware changes data (its `transform_*` hooks). An observer (logs,
    /// traces, metrics) answers `false`: when no middleware of a run changes data, the SDK
    /// skips the JSON conversions those hooks need and calls none of them (nor
    /// [`Middleware::transform_send`]), so observing costs little more than the hooks' calls.
    fn transforms(&self) -> bool {
        true
    }

    /// A request of a run starts: the hooks for this request.
    fn on_run(&self, run: &RunInfo) -> Box<dyn RunHooks>;

    /// Events about to be sent (each the full event object: `name`, `data`, `id`...), by
    /// [`Client::send`](crate::Client::send) or `step.send_event`. An error cancels the send.
    async fn transform_send(&self, _events: &mut Vec<Value>) -> Result<(), Error> {
        Ok(())
    }

    /// The send ended: the event ids Inngest assigned, or why it failed.
    async fn after_send(&self, _result: Result<&[String], &SendError>) {}
}

/// The hooks of one request of a run (see the [module](self) for their order). Every hook
/// does nothing by default.
#[async_trait]
pub trait RunHooks: Send {
    /// The event and the batch before the function sees them.
    async fn transform_input(&mut self, _input: &mut RunInput) -> Result<(), Error> {
        Ok(())
    }

    /// The function is about to replay its memoized steps.
    async fn before_memoization(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// The memoized result of a step (a `run` or `invoke` step's data, a waited-for event),
    /// before the code reads it. Not called for memoized errors, sleeps and timed-out waits.
    async fn transform_memoized(
        &mut self,
        _step: &StepInfo,
        _data: &mut Value,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// The code reached its first step that is not memoized, or returned.
    async fn after_memoization(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// New code is about to run (right after [`RunHooks::after_memoization`]).
    async fn before_execution(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// The options of a new step that Inngest carries out (`sleep`: `{"duration"}`,
    /// `wait_for_event`: `{"event", "timeout", "if"}`, `invoke`: `{"function_id", "payload":
    /// {"data", "user"}, "timeout"}`), before they are reported.
    async fn transform_step_input(
        &mut self,
        _step: &StepInfo,
        _input: &mut Value,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// A `run` step is about to run its code in this request.
    async fn before_step(&mut self, _step: &StepInfo) -> Result<(), Error> {
        Ok(())
    }

    /// The span a `run` step's own code runs in (called after [`RunHooks::before_step`]): what
    /// the code logs, and the spans it opens, go under it. The first middleware that gives one
    /// wins.
    fn step_span(&self, _step: &StepInfo) -> Option<::tracing::Span> {
        None
    }

    /// A `run` step's code ended.
    async fn after_step(
        &mut self,
        _step: &StepInfo,
        _outcome: &StepOutcome<'_>,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// A successful step's result, before it is reported to Inngest.
    async fn transform_step_output(
        &mut self,
        _step: &StepInfo,
        _output: &mut Value,
    ) -> Result<(), Error> {
        Ok(())
    }

    /// The request's code stopped (it returned, or paused at steps to report).
    async fn after_execution(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// The function returned: its value, or its error. The hook may replace either.
    async fn transform_output(&mut self, _output: &mut Result<Value, Error>) -> Result<(), Error> {
        Ok(())
    }

    /// The request ends with this answer. Called even when a hook failed.
    async fn run_end(&mut self, _end: &RunEnd<'_>) {}
}

/// The input of a function, as [`RunHooks::transform_input`] sees it.
#[derive(Debug, Clone)]
pub struct RunInput {
    /// The triggering event (the first of a batch).
    pub event: Value,
    /// Every event of the batch (one element otherwise).
    pub events: Vec<Value>,
}

/// What kind of step a hook is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `step.run` (and `step.send_event`, which is a run).
    Run,
    /// `step.sleep`, `step.sleep_until`.
    Sleep,
    /// `step.wait_for_event`.
    WaitForEvent,
    /// `step.invoke`.
    Invoke,
}

/// The step a hook is about.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// The id the code gave the step.
    pub id: String,
    /// The hashed id Inngest knows it by.
    pub hash: String,
    /// Which step tool.
    pub kind: StepKind,
    /// Whether Inngest sent its result (the code is replaying it, not running it).
    pub memoized: bool,
}

/// How a `run` step's code ended, for [`RunHooks::after_step`].
#[derive(Debug)]
pub struct StepOutcome<'a> {
    /// `StepRun` (success), `StepError` (retried) or `StepFailed` (final).
    pub op: OpCode,
    /// The error, when it failed.
    pub error: Option<&'a Error>,
}

/// How a request of a run ends, for [`RunHooks::run_end`].
#[derive(Debug)]
#[non_exhaustive]
pub enum RunEnd<'a> {
    /// The function returned a value (200).
    Completed,
    /// The function, or a hook, returned this error.
    Failed(&'a Error),
    /// The request reports these steps (206): one that ran, or new ones found.
    Steps(&'a [Op]),
    /// The function panicked.
    Panicked(&'a str),
}

impl RunEnd<'_> {
    /// A short word for the outcome: `completed`, `failed`, `steps` or `panicked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunEnd::Completed => "completed",
            RunEnd::Failed(_) => "failed",
            RunEnd::Steps(_) => "steps",
            RunEnd::Panicked(_) => "panicked",
        }
    }
}
