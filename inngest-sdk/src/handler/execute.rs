//! POST: run a function for one request (protocol §6–7): memoize, run or report steps, answer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use futures::FutureExt;
use http::{HeaderMap, Response, StatusCode};
use serde_json::value::RawValue;
use tracing::Instrument;

use super::call::{CallRequest, FetchedState, load};
use super::{
    CallQuery, ServeHandler, error_response, headers, json_response, set_header, to_json_response,
};
use crate::error::Error;
use crate::function::{RawCall, RunInfo};
use crate::middleware::{RunEnd, RunHooksChain};
use crate::signature::sign;
use crate::step::op::{Op, OpCode, OpData};
use crate::step::{Halt, Outcome, RunCheckpoint, RunSettings, RunState, Step, drive, hash_step_id};

impl<S: Clone + Send + Sync + 'static> ServeHandler<S> {
    pub(super) async fn execute(
        &self,
        request_headers: &HeaderMap,
        query: &CallQuery<'_>,
        body: &Bytes,
    ) -> Response<Bytes> {
        let verified = match self.check_signature(request_headers, body) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(error = %e, "refused an unsigned or badly signed request");
                return error_response(StatusCode::UNAUTHORIZED, &e.to_string());
            }
        };
        if query.probe.as_deref() == Some("trust") {
            let mut response = json_response(StatusCode::OK, b"{}".to_vec());
            if let Some(key) = self.response_key(verified) {
                let signature = sign(key, b"{}", chrono::Utc::now().timestamp());
                set_header(&mut response, headers::SIGNATURE, &signature);
            }
            return response;
        }
        let Some(fn_id) = query.fn_id.as_deref() else {
            let mut response =
                error_response(StatusCode::BAD_REQUEST, "missing fnId query parameter");
            set_header(&mut response, headers::NO_RETRY, "true");
            return response;
        };
        let Some((function, composite_id)) = self.function(fn_id) else {
            return error_response(StatusCode::GONE, &format!("function not found: {fn_id}"));
        };
        // Checked as UTF-8 once here (no copy): the parser need not check each string it
        // borrows, nor a step each memoized value it decodes, nor the batch each event.
        let text = match ByteString::try_from(body.clone()) {
            Ok(text) => text,
            Err(e) => return malformed_body(&format!("not UTF-8: {e}")),
        };
        let call = match CallRequest::parse(&text) {
            Ok(call) => call,
            Err(e) => return malformed_body(&e.to_string()),
        };
        let text = &text;
        let step_id = query
            .step_id
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "step")
            .map(str::to_owned);
        let ctx = &call.ctx;
        let span = tracing::info_span!(
            "inngest.execute",
            function = %fn_id,
            run_id = %ctx.run_id,
            attempt = ctx.attempt,
            step = step_id.as_deref().unwrap_or("step"),
        );
        let max_attempts = ctx.max_attempts.unwrap_or(function.opts.retries() + 1);
        // When this attempt fails retriably and the error names no time, the function's backoff
        // (if it has one) says when to try again.
        let backoff = function
            .opts
            .backoff()
            .filter(|_| ctx.attempt + 1 < max_attempts)
            .map(|b| b.delay(ctx.attempt));
        async move {
            let fetched = match call.use_api || call.ctx.use_api {
                // The cold paths are boxed so that every request's future stays small.
                true => match Box::pin(self.fetch_state(&call.ctx.run_id)).await {
                    Ok(fetched) => Some(fetched),
                    Err(response) => return response,
                },
                false => None,
            };
            let CallRequest {
                event,
                events,
                steps,
                ctx,
                ..
            } = call;
            let loaded = match load(event, events, steps, text, fetched.as_ref()) {
                Ok(loaded) => loaded,
                Err((status, message)) => return error_response(status, &message),
            };
            let client_checkpoint = self.inner.client.config().checkpoint();
            let checkpoint = ctx.checkpoint(
                function.opts.checkpoint.resolve(client_checkpoint),
                step_id.as_deref(),
            );
            let run = RunInfo {
                run_id: ctx.run_id.to_string(),
                attempt: ctx.attempt,
                function_id: composite_id.to_owned(),
            };
            let hooks =
                RunHooksChain::start(self.inner.client.middleware(), &function.middleware, &run);
            let state = RunState::new(
                loaded.memo,
                RunSettings {
                    target: step_id,
                    immediate: !ctx.disable_immediate_execution,
                    attempt: ctx.attempt,
                    max_attempts,
                },
                self.inner.client.clone(),
            );
            let state = Arc::new(state.with_hooks(hooks.clone()).with_checkpoint(checkpoint));
            let start = |event: &str, events: &[&str]| {
                let raw = RawCall {
                    event,
                    events,
                    body: text,
                };
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
                None => match start(loaded.event, &loaded.events) {
                    Ok(body) => conclude(drive(body, state.clone()).await, &state).await,
                    Err(outcome) => outcome,
                },
                Some(hooks) => {
                    let run = Box::pin(run_hooked(
                        hooks,
                        loaded.event,
                        &loaded.events,
                        start,
                        &state,
                    ));
                    // The body's own panics are caught by the driver; these are the hooks'.
                    let outcome = AssertUnwindSafe(run)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Outcome::Panicked("a middleware hook panicked".into()));
                    let outcome = conclude(outcome, &state).await;
                    hooks.run_end(&run_end(&outcome)).await;
                    outcome
                }
            };
            respond(outcome, backoff)
        }
        .instrument(span)
        .await
    }

    /// The batch and the memoized steps of a run whose state was too large to send.
    async fn fetch_state(&self, run_id: &str) -> Result<FetchedState, Response<Bytes>> {
        let client = &self.inner.client;
        let (batch_path, actions_path) = (
            format!("v0/runs/{run_id}/batch"),
            format!("v0/runs/{run_id}/actions"),
        );
        let fetched = tokio::try_join!(
            client.api_get::<Vec<Box<RawValue>>>(&batch_path),
            client.api_get_bytes(&actions_path),
        );
        match fetched {
            Ok((events, actions)) => Ok(FetchedState { events, actions }),
            Err(e) => {
                tracing::error!(error = %e, "could not load the run state from Inngest");
                Err(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("could not load the run state: {e}"),
                ))
            }
        }
    }
}

type Body = futures::future::BoxFuture<'static, Result<Box<RawValue>, Error>>;

/// A 400 for a body that cannot be read: the same bytes would fail again, so Inngest is told
/// not to retry.
fn malformed_body(why: &str) -> Response<Bytes> {
    let mut response = error_response(
        StatusCode::BAD_REQUEST,
        &format!("malformed request body: {why}"),
    );
    set_header(&mut response, headers::NO_RETRY, "true");
    response
}

/// One request through the middleware `hooks`: input, memoization, the body, output.
async fn run_hooked(
    hooks: &RunHooksChain,
    event: &str,
    events: &[&str],
    start: impl FnOnce(&str, &[&str]) -> Result<Body, Outcome>,
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
    let transformed: Vec<&str>;
    let (event, events) = match &input {
        Some((event, events)) => {
            transformed = events.iter().map(|e| e.get()).collect();
            (event.get(), &transformed[..])
        }
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

/// Ends a checkpointing invocation. The function's end answers its unsent results with
/// `RunComplete`, as the TypeScript SDK does (the checkpoint API takes no `RunComplete`).
/// Anything else that answers the call (a step Inngest schedules, an error) first sends the
/// buffered results; if they cannot be sent, the call is answered with them instead.
async fn conclude(outcome: Outcome, state: &RunState) -> Outcome {
    match state.checkpoint() {
        None => outcome,
        Some(checkpoint) => Box::pin(conclude_checkpointing(outcome, state, checkpoint)).await,
    }
}

async fn conclude_checkpointing(
    outcome: Outcome,
    state: &RunState,
    checkpoint: &RunCheckpoint,
) -> Outcome {
    if !checkpoint.is_halted() {
        if let Outcome::Complete(value) = outcome {
            let mut ops = checkpoint.take_unsent();
            let complete = Op::new(
                OpCode::RunComplete,
                &hash_step_id("complete", 0),
                "complete",
            );
            ops.push(complete.with_data(OpData::Raw(value)));
            return Outcome::Ops {
                ops,
                retry_after: None,
            };
        }
        if checkpoint.flush(&state.client).await {
            return outcome;
        }
    }
    match checkpoint.take_halt() {
        Some(Halt::Stale) => Outcome::Failed(
            Error::non_retriable("stale dispatch: a newer call of this run has taken over")
                .with_name("StaleDispatchError"),
        ),
        _ => Outcome::Ops {
            ops: checkpoint.take_unsent(),
            retry_after: None,
        },
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
