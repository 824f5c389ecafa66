//! POST: run a function for one request (protocol §6–7): memoize, run or report steps, answer.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::Instrument;

use super::{ServeHandler, error_response, headers, json_response, set_header, to_json_response};
use crate::error::Error;
use crate::function::{RawCall, RunInfo};
use crate::middleware::{RunEnd, RunHooksChain};
use crate::signature::sign;
use crate::step::op::OpCode;
use crate::step::{Outcome, RunSettings, RunState, Step, drive};

#[derive(Deserialize)]
struct CallRequest {
    #[serde(default)]
    event: Option<Box<RawValue>>,
    #[serde(default)]
    events: Vec<Box<RawValue>>,
    #[serde(default)]
    steps: HashMap<String, Box<RawValue>>,
    ctx: CallCtx,
    #[serde(default)]
    use_api: bool,
}

#[derive(Deserialize)]
struct CallCtx {
    run_id: String,
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    disable_immediate_execution: bool,
    #[serde(default)]
    use_api: bool,
}

/// A call with its event and memoized state loaded.
struct LoadedCall {
    event: Box<RawValue>,
    events: Vec<Box<RawValue>>,
    memo: HashMap<String, Box<RawValue>>,
    ctx: CallCtx,
}

/// Steps Inngest has not finished are sent as `{"input": ...}`; they are not memoized results.
fn is_unfinished(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with(r#"{"input""#)
}

impl<S: Clone + Send + Sync + 'static> ServeHandler<S> {
    pub(super) async fn execute(
        &self,
        request_headers: &HeaderMap,
        query: &HashMap<String, String>,
        body: &Bytes,
    ) -> Response<Bytes> {
        let verified = match self.check_signature(request_headers, body) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(error = %e, "refused an unsigned or badly signed request");
                return error_response(StatusCode::UNAUTHORIZED, &e.to_string());
            }
        };
        if query.get("probe").is_some_and(|p| p == "trust") {
            let mut response = json_response(StatusCode::OK, b"{}".to_vec());
            if let Some(key) = self.response_key(verified) {
                let signature = sign(key, b"{}", chrono::Utc::now().timestamp());
                set_header(&mut response, headers::SIGNATURE, &signature);
            }
            return response;
        }
        let Some(fn_id) = query.get("fnId") else {
            let mut response =
                error_response(StatusCode::BAD_REQUEST, "missing fnId query parameter");
            set_header(&mut response, headers::NO_RETRY, "true");
            return response;
        };
        let Some(function) = self.function(fn_id) else {
            return error_response(StatusCode::GONE, &format!("function not found: {fn_id}"));
        };
        let call: CallRequest = match serde_json::from_slice(body) {
            Ok(call) => call,
            Err(e) => {
                // The same bytes would fail again: tell Inngest not to retry.
                let mut response = error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("malformed request body: {e}"),
                );
                set_header(&mut response, headers::NO_RETRY, "true");
                return response;
            }
        };
        let step_id = query
            .get("stepId")
            .filter(|s| !s.is_empty() && s.as_str() != "step")
            .cloned();
        let span = tracing::info_span!(
            "inngest.execute",
            function = %fn_id,
            run_id = %call.ctx.run_id,
            attempt = call.ctx.attempt,
            step = step_id.as_deref().unwrap_or("step"),
        );
        let max_attempts = call.ctx.max_attempts.unwrap_or(function.opts.retries() + 1);
        // When this attempt fails retriably and the error names no time, the function's backoff
        // (if it has one) says when to try again.
        let backoff = function
            .opts
            .backoff()
            .filter(|_| call.ctx.attempt + 1 < max_attempts)
            .map(|b| b.delay(call.ctx.attempt));
        async move {
            let loaded = match self.load_state(call).await {
                Ok(loaded) => loaded,
                Err(response) => return response,
            };
            let run = RunInfo {
                run_id: loaded.ctx.run_id,
                attempt: loaded.ctx.attempt,
                function_id: self.inner.client.config().composite_id(&function.opts.id),
            };
            let hooks =
                RunHooksChain::start(self.inner.client.middleware(), &function.middleware, &run);
            let state = RunState::new(
                loaded.memo,
                RunSettings {
                    target: step_id,
                    immediate: !loaded.ctx.disable_immediate_execution,
                    attempt: loaded.ctx.attempt,
                    max_attempts,
                },
                self.inner.client.clone(),
            );
            let state = Arc::new(state.with_hooks(hooks.clone()));
            let start = |event: &RawValue, events: &[Box<RawValue>]| {
                let raw = RawCall { event, events };
                let started = catch_unwind(AssertUnwindSafe(|| {
                    let step = Step::new(state.clone());
                    (function.handler)(raw, step, self.inner.state.clone(), run)
                }));
                match started {
                    Ok(Ok(body)) => Ok(body),
                    Ok(Err(err)) => Err(Outcome::Failed(err)),
                    Err(_) => Err(Outcome::Panicked(
                        "the function panicked before its first await".into(),
                    )),
                }
            };
            let outcome = match &hooks {
                None => match start(&loaded.event, &loaded.events) {
                    Ok(body) => drive(body, state.clone()).await,
                    Err(outcome) => outcome,
                },
                Some(hooks) => {
                    let run = run_hooked(hooks, &loaded.event, &loaded.events, start, &state);
                    // The body's own panics are caught by the driver; these are the hooks'.
                    let outcome = AssertUnwindSafe(run)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Outcome::Panicked("a middleware hook panicked".into()));
                    hooks.run_end(&run_end(&outcome)).await;
                    outcome
                }
            };
            respond(outcome, backoff)
        }
        .instrument(span)
        .await
    }

    /// The event, the batch and the memoized steps: from the body, or from the API when the
    /// state was too large to send (`use_api`).
    async fn load_state(&self, call: CallRequest) -> Result<LoadedCall, Response<Bytes>> {
        let (mut events, mut steps) = (call.events, call.steps);
        if call.use_api || call.ctx.use_api {
            let run_id = &call.ctx.run_id;
            let client = &self.inner.client;
            let (batch_path, actions_path) = (
                format!("v0/runs/{run_id}/batch"),
                format!("v0/runs/{run_id}/actions"),
            );
            let fetched = tokio::try_join!(
                client.api_get::<Vec<Box<RawValue>>>(&batch_path),
                client.api_get::<HashMap<String, Box<RawValue>>>(&actions_path),
            );
            match fetched {
                Ok((batch, actions)) => {
                    events = batch;
                    steps = actions;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not load the run state from Inngest");
                    return Err(error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("could not load the run state: {e}"),
                    ));
                }
            }
        }
        let event = match call.event.or_else(|| events.first().cloned()) {
            Some(event) => event,
            None => {
                return Err(error_response(
                    StatusCode::BAD_REQUEST,
                    "the request has no event",
                ));
            }
        };
        if events.is_empty() {
            events.push(event.clone());
        }
        let memo = steps
            .into_iter()
            .filter(|(_, raw)| !is_unfinished(raw))
            .collect();
        Ok(LoadedCall {
            event,
            events,
            memo,
            ctx: call.ctx,
        })
    }
}

type Body = futures::future::BoxFuture<'static, Result<Box<RawValue>, Error>>;

/// One request through the middleware `hooks`: input, memoization, the body, output.
async fn run_hooked(
    hooks: &RunHooksChain,
    event: &RawValue,
    events: &[Box<RawValue>],
    start: impl FnOnce(&RawValue, &[Box<RawValue>]) -> Result<Body, Outcome>,
    state: &Arc<RunState>,
) -> Outcome {
    let before = async {
        let input = match hooks.transforms() {
            true => Some(hooks.transform_input(event, events).await?),
            false => None,
        };
        hooks.before_memoization().await?;
        if state.memo_len() == 0 {
            hooks.memoization_done().await?;
        }
        Ok::<_, Error>(input)
    };
    let input = match before.await {
        Ok(input) => input,
        Err(err) => return Outcome::Failed(err),
    };
    let (event, events) = match &input {
        Some((event, events)) => (&**event, &events[..]),
        None => (event, events),
    };
    let outcome = match start(event, events) {
        Ok(body) => drive(body, state.clone()).await,
        Err(outcome) => outcome,
    };
    if hooks.has_failed() {
        return outcome;
    }
    let returned = matches!(outcome, Outcome::Complete(_) | Outcome::Failed(_));
    let after = async {
        if returned {
            hooks.memoization_done().await?;
        }
        hooks.after_execution().await
    };
    if let Err(err) = after.await {
        return Outcome::Failed(err);
    }
    if !hooks.transforms() {
        return outcome;
    }
    let mut output = match outcome {
        Outcome::Complete(value) => serde_json::from_str(value.get()).map_err(Error::from),
        Outcome::Failed(err) => Err(err),
        other => return other,
    };
    if let Err(err) = hooks.transform_output(&mut output).await {
        return Outcome::Failed(err);
    }
    match output {
        Ok(value) => match serde_json::value::to_raw_value(&value) {
            Ok(raw) => Outcome::Complete(raw),
            Err(e) => Outcome::Failed(e.into()),
        },
        Err(err) => Outcome::Failed(err),
    }
}

fn run_end(outcome: &Outcome) -> RunEnd<'_> {
    match outcome {
        Outcome::Complete(_) => RunEnd::Completed,
        Outcome::Failed(err) => RunEnd::Failed(err),
        Outcome::Ops { ops, .. } => RunEnd::Steps(ops),
        Outcome::Panicked(message) => RunEnd::Panicked(message),
    }
}

/// The response for `outcome`; `backoff` is the wait before a retry of a retriable failure
/// that names none itself.
fn respond(outcome: Outcome, backoff: Option<Duration>) -> Response<Bytes> {
    match outcome {
        Outcome::Complete(value) => {
            tracing::info!("run completed");
            json_response(StatusCode::OK, value.get().as_bytes().to_vec())
        }
        Outcome::Ops { ops, retry_after } => {
            tracing::info!(ops = ops.len(), "reporting steps");
            let mut response = to_json_response(StatusCode::PARTIAL_CONTENT, &ops);
            // A failed step says explicitly whether Inngest may retry it, as the JS SDK does.
            let failure = ops.iter().find_map(|op| match op.op {
                OpCode::StepFailed => Some("true"),
                OpCode::StepError => Some("false"),
                _ => None,
            });
            if let Some(no_retry) = failure {
                set_header(&mut response, headers::NO_RETRY, no_retry);
            }
            let backoff = backoff.filter(|_| failure == Some("false")).map(seconds);
            if let Some(retry_after) = retry_after.or(backoff) {
                set_header(&mut response, "retry-after", &retry_after);
            }
            response
        }
        Outcome::Failed(err) => error_outcome(&err, backoff),
        Outcome::Panicked(message) => {
            tracing::error!(%message, "function panicked");
            error_outcome(&Error::new(message).with_name("Panic"), backoff)
        }
    }
}

/// A `Retry-After` of whole seconds (Inngest honours at least one).
fn seconds(wait: Duration) -> String {
    wait.as_secs().max(1).to_string()
}

fn error_outcome(err: &Error, backoff: Option<Duration>) -> Response<Bytes> {
    let retriable = err.is_retriable();
    tracing::warn!(error = %err, retriable, "run failed");
    let status = if retriable {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut response = to_json_response(status, &err.to_wire());
    set_header(
        &mut response,
        headers::NO_RETRY,
        if retriable { "false" } else { "true" },
    );
    let backoff = backoff.filter(|_| retriable).map(seconds);
    if let Some(retry_after) = err.retry_after_header().or(backoff) {
        set_header(&mut response, "retry-after", &retry_after);
    }
    response
}
