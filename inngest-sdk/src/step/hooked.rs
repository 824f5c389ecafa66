//! The step tools' paths through middleware hooks, taken only when middleware is registered.

use std::future::{Future, pending};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::state::Executed;
use super::{ResultMemo, Step};
use crate::error::{Error, StepError};
use crate::middleware::{RunHooksChain, StepInfo, StepKind, StepOutcome};
use crate::step::op::OpCode;

pub(super) fn info(id: &str, hash: &str, kind: StepKind, memoized: bool) -> StepInfo {
    StepInfo {
        id: id.to_owned(),
        hash: hash.to_owned(),
        kind,
        memoized,
    }
}

fn malformed(step: &str, e: impl std::fmt::Display) -> StepError {
    StepError::new(
        "DeserializationError",
        format!("memoized state of step {step:?} is malformed: {e}"),
    )
}

/// Decodes a (transformed) memoized value into the step's type.
fn decode_value<T: DeserializeOwned>(value: Value, step: &str) -> Result<T, StepError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        StepError::new(
            "DeserializationError",
            format!("memoized result of step {step:?} does not match its type: {e}"),
        )
    })
}

impl Step {
    /// The value of a hook that succeeded; a failed hook is recorded for the driver, which
    /// ends the request with its error, and this step never resolves.
    pub(super) async fn hook<T>(&self, result: Result<T, Error>) -> T {
        match result {
            Ok(value) => value,
            Err(err) => {
                if let Some(hooks) = &self.state.hooks {
                    hooks.fail(err);
                }
                pending().await
            }
        }
    }

    /// A memoized `{"data"}` or `{"error"}` (run, invoke), its data through the hooks.
    pub(super) async fn memoized_result<T: DeserializeOwned>(
        &self,
        hooks: &RunHooksChain,
        step: &StepInfo,
        raw: &str,
    ) -> Result<T, StepError> {
        let memo: ResultMemo<'_> = serde_json::from_str(raw).map_err(|e| malformed(&step.id, e))?;
        if let Some(error) = memo.error {
            return Err(error);
        }
        let data = memo.data.map_or("null", RawValue::get);
        self.memoized_value(hooks, step, data).await
    }

    /// A memoized value through `transform_memoized`, then decoded.
    pub(super) async fn memoized_value<T: DeserializeOwned>(
        &self,
        hooks: &RunHooksChain,
        step: &StepInfo,
        raw: &str,
    ) -> Result<T, StepError> {
        let mut value: Value = serde_json::from_str(raw).map_err(|e| malformed(&step.id, e))?;
        self.hook(hooks.transform_memoized(step, &mut value).await)
            .await;
        decode_value(value, &step.id)
    }

    /// A new async step's options, through `transform_step_input` (the first new step also
    /// ends memoization).
    pub(super) async fn step_input(
        &self,
        id: &str,
        hash: &str,
        kind: StepKind,
        mut opts: Value,
    ) -> Value {
        if let Some(hooks) = self.state.hooks.as_deref() {
            self.hook(hooks.memoization_done().await).await;
            if hooks.transforms() {
                let step = info(id, hash, kind, false);
                self.hook(hooks.transform_step_input(&step, &mut opts).await)
                    .await;
            }
        }
        opts
    }

    /// Runs a chosen `run` step's code between `before_step` and `after_step`; its result goes
    /// through `transform_step_output`.
    pub(super) async fn run_hooked<T, E, F, Fut>(
        &self,
        hooks: &RunHooksChain,
        hash: &str,
        id: &str,
        f: F,
    ) -> Executed
    where
        T: Serialize,
        E: Into<Error>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let step = info(id, hash, StepKind::Run, false);
        self.hook(hooks.before_step(&step).await).await;
        let code = f();
        let result = match hooks.step_span(&step).await {
            Some(span) => tracing::Instrument::instrument(code, span).await,
            None => code.await,
        };
        let result = result.map_err(Into::into).and_then(|value| {
            serde_json::value::to_raw_value(&value).map_err(|e| {
                Error::non_retriable(format!("result of step {id:?} does not serialize: {e}"))
            })
        });
        let outcome = StepOutcome {
            op: match &result {
                Ok(_) => OpCode::StepRun,
                Err(err) => self.failure_code(err),
            },
            error: result.as_ref().err(),
        };
        self.hook(hooks.after_step(&step, &outcome).await).await;
        let result = match result {
            Ok(raw) if hooks.transforms() => {
                let transformed = self.transform_output(hooks, &step, &raw).await;
                Ok(self.hook(transformed).await)
            }
            other => other,
        };
        self.step_outcome(hash, id, result)
    }

    /// A step's serialized result through `transform_step_output`.
    async fn transform_output(
        &self,
        hooks: &RunHooksChain,
        step: &StepInfo,
        raw: &RawValue,
    ) -> Result<Box<RawValue>, Error> {
        let mut value: Value = serde_json::from_str(raw.get())?;
        hooks.transform_step_output(step, &mut value).await?;
        Ok(serde_json::value::to_raw_value(&value)?)
    }
}
