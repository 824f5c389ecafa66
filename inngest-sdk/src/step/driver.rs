//! Drives a function body through one request: polls it until it returns, runs the one step
//! chosen for this request, or pauses on steps to report.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, CatchUnwind};
use serde_json::value::RawValue;

use super::checkpoint::RunCheckpoint;
use super::op::Op;
use super::state::{Decision, RunState};
use crate::error::Error;

/// How one request of a run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The function returned this value (200).
    Complete(Box<RawValue>),
    /// The function returned an error (500, or 400 when non-retriable).
    Failed(Error),
    /// New steps to report (206).
    Ops {
        ops: Vec<Op>,
        retry_after: Option<String>,
    },
    /// The function panicked (500 with the panic message).
    Panicked(String),
}

type Body = BoxFuture<'static, Result<Box<RawValue>, Error>>;

/// How long a request targeting a step the code has not reached keeps polling: the step may sit
/// behind I/O in another branch of a join. After that the thread ends (206 `[]`).
const TARGET_GRACE: Duration = Duration::from_secs(5);

struct Drive {
    body: CatchUnwind<AssertUnwindSafe<Body>>,
    state: Arc<RunState>,
    target_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Drive {
    /// Ready once the grace for a missing target is over.
    fn target_grace_over(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self
            .target_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(TARGET_GRACE)));
        deadline.as_mut().poll(cx).is_ready()
    }
}

/// Runs `body` until this request has something to answer.
pub(crate) async fn drive(body: Body, state: Arc<RunState>) -> Outcome {
    Drive {
        body: AssertUnwindSafe(body).catch_unwind(),
        state,
        target_deadline: None,
    }
    .await
}

fn end_thread() -> Outcome {
    tracing::warn!("the targeted step was not reached; ending this thread");
    Outcome::Ops {
        ops: Vec::new(),
        retry_after: None,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

impl Future for Drive {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            let polled = Pin::new(&mut self.body).poll(cx);
            // A failed middleware hook ends the request with its error, whatever the body did.
            if let Some(err) = self.state.hooks.as_ref().and_then(|h| h.take_failure()) {
                return Poll::Ready(Outcome::Failed(err));
            }
            // A failed checkpoint ends the invocation with the unsent results (see `conclude`).
            if self
                .state
                .checkpoint()
                .is_some_and(RunCheckpoint::is_halted)
            {
                return Poll::Ready(Outcome::Ops {
                    ops: Vec::new(),
                    retry_after: None,
                });
            }
            // A step that ran must be reported even if the body then finished (e.g. a `select`
            // dropped the step future): its side effects happened and must be memoized.
            if let Some(executed) = self.state.take_executed() {
                return Poll::Ready(Outcome::Ops {
                    ops: vec![executed.op],
                    retry_after: executed.retry_after,
                });
            }
            match polled {
                Poll::Ready(Ok(Ok(value))) => return Poll::Ready(Outcome::Complete(value)),
                Poll::Ready(Ok(Err(err))) => return Poll::Ready(Outcome::Failed(err)),
                Poll::Ready(Err(payload)) => {
                    return Poll::Ready(Outcome::Panicked(panic_message(payload.as_ref())));
                }
                Poll::Pending => {}
            }
            if self.state.is_executing() {
                // The chosen step's body awaits I/O; its waker brings us back.
                return Poll::Pending;
            }
            match self.state.decide() {
                Decision::Wait => {
                    if self.target_deadline.is_some() && self.target_grace_over(cx) {
                        return Poll::Ready(end_thread());
                    }
                    return Poll::Pending;
                }
                Decision::Execute => continue,
                Decision::Report(ops) => {
                    if self.state.memo_hits() < self.state.memo_len() {
                        tracing::debug!(
                            memoized = self.state.memo_len(),
                            used = self.state.memo_hits(),
                            "new steps found before all memoized steps were used"
                        );
                    }
                    return Poll::Ready(Outcome::Ops {
                        ops,
                        retry_after: None,
                    });
                }
                Decision::TargetMissing => {
                    if self.target_grace_over(cx) {
                        return Poll::Ready(end_thread());
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
