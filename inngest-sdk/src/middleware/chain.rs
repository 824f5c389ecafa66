//! The hooks of one request, in onion order, and the first failure among them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use serde_json::value::RawValue;

use super::{Middleware, RunEnd, RunHooks, RunInput, StepInfo, StepOutcome};
use crate::error::Error;
use crate::function::RunInfo;

/// One request's hooks: the client's middleware first, then the function's.
pub(crate) struct RunHooksChain {
    /// Outermost first. An async lock: parallel steps call hooks from concurrent futures.
    hooks: tokio::sync::Mutex<Vec<(&'static str, Box<dyn RunHooks>)>>,
    /// The function's own middleware, which also sees its `step.send_event` sends.
    function_middleware: Vec<Arc<dyn Middleware>>,
    failure: Mutex<Option<Error>>,
    failed: AtomicBool,
    memoization_done: AtomicBool,
    /// Whether any middleware of the run changes data (else `transform_*` are skipped).
    transforms: bool,
}

/// Runs `$hook` on each hooks object in `$order` (`iter` or `iter().rev()`), stopping at the
/// first error, which is logged with the middleware's name and recorded as the failure.
macro_rules! each {
    ($chain:expr, $hooks:ident, $($order:ident()).+, $call:expr) => {{
        let mut guard = $chain.hooks.lock().await;
        let mut result = Ok(());
        for (name, $hooks) in guard.$($order()).+ {
            if let Err(err) = $call.await {
                tracing::warn!(middleware = *name, error = %err, "a middleware hook failed");
                result = Err(err);
                break;
            }
        }
        result
    }};
}

impl RunHooksChain {
    /// The hooks of `client` and `function` middleware for one request; `None` without any.
    pub fn start(
        client: &[Arc<dyn Middleware>],
        function: &[Arc<dyn Middleware>],
        run: &RunInfo,
    ) -> Option<Arc<Self>> {
        if client.is_empty() && function.is_empty() {
            return None;
        }
        let transforms = client.iter().chain(function).any(|m| m.transforms());
        let hooks = client
            .iter()
            .chain(function)
            .map(|m| (m.name(), m.on_run(run)))
            .collect();
        Some(Arc::new(Self {
            hooks: tokio::sync::Mutex::new(hooks),
            function_middleware: function.to_vec(),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            memoization_done: AtomicBool::new(false),
            transforms,
        }))
    }

    /// Whether the `transform_*` hooks run (some middleware of the run changes data).
    pub fn transforms(&self) -> bool {
        self.transforms
    }

    pub fn function_middleware(&self) -> &[Arc<dyn Middleware>] {
        &self.function_middleware
    }

    /// Records a hook's failure (the first one wins); the driver ends the request with it.
    pub fn fail(&self, err: Error) {
        self.failed.store(true, Ordering::SeqCst);
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert(err);
    }

    pub fn take_failure(&self) -> Option<Error> {
        if !self.failed.load(Ordering::SeqCst) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether a hook has failed in this request.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The event and batch through `transform_input`, outermost first.
    pub async fn transform_input(
        &self,
        event: &str,
        events: &[&str],
    ) -> Result<(Box<RawValue>, Vec<Box<RawValue>>), Error> {
        let mut input = RunInput {
            event: serde_json::from_str(event)?,
            events: events
                .iter()
                .map(|e| serde_json::from_str(e))
                .collect::<Result<_, _>>()?,
        };
        each!(self, hooks, iter_mut(), hooks.transform_input(&mut input))?;
        let event = serde_json::value::to_raw_value(&input.event)?;
        let events = input
            .events
            .iter()
            .map(serde_json::value::to_raw_value)
            .collect::<Result<_, _>>()?;
        Ok((event, events))
    }

    pub async fn before_memoization(&self) -> Result<(), Error> {
        each!(self, hooks, iter_mut(), hooks.before_memoization())
    }

    /// `after_memoization` (innermost first) then `before_execution` (outermost first), once
    /// per request: at the first new step, or when the function returns.
    pub async fn memoization_done(&self) -> Result<(), Error> {
        if self.memoization_done.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        each!(self, hooks, iter_mut().rev(), hooks.after_memoization())?;
        each!(self, hooks, iter_mut(), hooks.before_execution())
    }

    pub async fn transform_memoized(&self, step: &StepInfo, data: &mut Value) -> Result<(), Error> {
        each!(
            self,
            hooks,
            iter_mut(),
            hooks.transform_memoized(step, data)
        )
    }

    pub async fn transform_step_input(
        &self,
        step: &StepInfo,
        input: &mut Value,
    ) -> Result<(), Error> {
        each!(
            self,
            hooks,
            iter_mut().rev(),
            hooks.transform_step_input(step, input)
        )
    }

    pub async fn before_step(&self, step: &StepInfo) -> Result<(), Error> {
        each!(self, hooks, iter_mut(), hooks.before_step(step))
    }

    /// The span the step's code runs in, from the outermost middleware that gives one.
    pub async fn step_span(&self, step: &StepInfo) -> Option<tracing::Span> {
        let guard = self.hooks.lock().await;
        guard.iter().find_map(|(_, hooks)| hooks.step_span(step))
    }

    pub async fn after_step(
        &self,
        step: &StepInfo,
        outcome: &StepOutcome<'_>,
    ) -> Result<(), Error> {
        each!(
            self,
            hooks,
            iter_mut().rev(),
            hooks.after_step(step, outcome)
        )
    }

    pub async fn transform_step_output(
        &self,
        step: &StepInfo,
        output: &mut Value,
    ) -> Result<(), Error> {
        each!(
            self,
            hooks,
            iter_mut().rev(),
            hooks.transform_step_output(step, output)
        )
    }

    /// `after_execution`, innermost first, if execution began in this request.
    pub async fn after_execution(&self) -> Result<(), Error> {
        if !self.memoization_done.load(Ordering::SeqCst) {
            return Ok(());
        }
        each!(self, hooks, iter_mut().rev(), hooks.after_execution())
    }

    pub async fn transform_output(&self, output: &mut Result<Value, Error>) -> Result<(), Error> {
        each!(
            self,
            hooks,
            iter_mut().rev(),
            hooks.transform_output(output)
        )
    }

    /// `run_end` on every hooks object, innermost first; it cannot fail.
    pub async fn run_end(&self, end: &RunEnd<'_>) {
        let mut guard = self.hooks.lock().await;
        for (_, hooks) in guard.iter_mut().rev() {
            hooks.run_end(end).await;
        }
    }
}
