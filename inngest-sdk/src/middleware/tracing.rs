//! A middleware that opens `tracing` spans: one per request of a run (`inngest.run`) and one
//! per step that runs or is reported in it (`inngest.step`), with the fields an OpenTelemetry
//! exporter (`tracing-opentelemetry`) turns into span attributes.

use std::collections::HashMap;

use async_trait::async_trait;
use tracing::Span;
use tracing::field::Empty;

use super::{Middleware, RunEnd, RunHooks, StepInfo, StepOutcome};
use crate::error::Error;
use crate::function::RunInfo;
use crate::step::op::OpCode;

/// Spans around every run invocation and step.
///
/// `inngest.run` (`function_id`, `run_id`, `attempt`, `outcome`: `completed`, `failed`,
/// `steps` or `panicked`, and `error` when it failed) is a child of the span the request is
/// served in. `inngest.step` (`function_id`, `run_id`, `attempt`, `step_id` (the hash),
/// `step_name`, `opcode`, `outcome`: `ok`, `error` (retried), `failed` (final) or `reported`
/// for a step Inngest carries out or runs in a later request) is a child of the run's span.
/// Memoized steps are not spans again: they were spans in the request that ran them. A `run`
/// step's code runs inside its span, so its logs and its own spans are children of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingMiddleware;

impl TracingMiddleware {
    /// The middleware.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

impl Middleware for TracingMiddleware {
    fn name(&self) -> &'static str {
        "tracing"
    }

    fn transforms(&self) -> bool {
        false
    }

    fn on_run(&self, run: &RunInfo) -> Box<dyn RunHooks> {
        let span = tracing::info_span!(
            "inngest.run",
            function_id = %run.function_id,
            run_id = %run.run_id,
            attempt = run.attempt,
            outcome = Empty,
            error = Empty,
        );
        Box::new(TracingHooks {
            run: run.clone(),
            span,
            steps: HashMap::new(),
        })
    }
}

struct TracingHooks {
    run: RunInfo,
    span: Span,
    /// The spans of steps running now, by hash.
    steps: HashMap<String, Span>,
}

impl TracingHooks {
    fn step_span(&self, hash: &str, name: &str) -> Span {
        tracing::info_span!(
            parent: &self.span,
            "inngest.step",
            function_id = %self.run.function_id,
            run_id = %self.run.run_id,
            attempt = self.run.attempt,
            step_id = %hash,
            step_name = %name,
            opcode = Empty,
            outcome = Empty,
        )
    }
}

fn opcode_name(op: OpCode) -> &'static str {
    match op {
        OpCode::StepRun => "StepRun",
        OpCode::StepError => "StepError",
        OpCode::StepFailed => "StepFailed",
        OpCode::StepPlanned => "StepPlanned",
        OpCode::Sleep => "Sleep",
        OpCode::WaitForEvent => "WaitForEvent",
        OpCode::InvokeFunction => "InvokeFunction",
        OpCode::RunComplete => "RunComplete",
    }
}

#[async_trait]
impl RunHooks for TracingHooks {
    async fn before_step(&mut self, step: &StepInfo) -> Result<(), Error> {
        let span = self.step_span(&step.hash, &step.id);
        self.steps.insert(step.hash.clone(), span);
        Ok(())
    }

    fn step_span(&self, step: &StepInfo) -> Option<Span> {
        self.steps.get(&step.hash).cloned()
    }

    async fn after_step(
        &mut self,
        step: &StepInfo,
        outcome: &StepOutcome<'_>,
    ) -> Result<(), Error> {
        if let Some(span) = self.steps.remove(&step.hash) {
            let result = match outcome.op {
                OpCode::StepRun => "ok",
                OpCode::StepError => "error",
                _ => "failed",
            };
            span.record("opcode", opcode_name(outcome.op));
            span.record("outcome", result);
        }
        Ok(())
    }

    async fn run_end(&mut self, end: &RunEnd<'_>) {
        if let RunEnd::Steps(ops) = end {
            let ran = [OpCode::StepRun, OpCode::StepError, OpCode::StepFailed];
            for op in ops.iter().filter(|op| !ran.contains(&op.op)) {
                let span = self.step_span(&op.id, &op.name);
                span.record("opcode", opcode_name(op.op));
                span.record("outcome", "reported");
            }
        }
        self.span.record("outcome", end.as_str());
        if let RunEnd::Failed(err) = end {
            self.span.record("error", tracing::field::display(err));
        }
        // A step whose span is still open was cut short (a hook failed): close it as such.
        for (_, span) in self.steps.drain() {
            span.record("outcome", "interrupted");
        }
    }
}
