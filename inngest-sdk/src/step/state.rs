//! Per-request run state shared by every step future of one execution.
//!
//! Steps look their memoized result up by digest (see [`super::memo`]); new steps are
//! recorded as `found` for the driver, which decides whether one of them runs now.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::checkpoint::RunCheckpoint;
use super::memo::{Memo, MemoText, StepDigest, digest_step_id, parse_hex_digest, to_hex};
use super::op::{Op, OpCode};
use crate::client::Client;
use crate::middleware::RunHooksChain;

/// The lowercase hex SHA-1 Inngest keys steps by. The n-th repeat of an id (n ≥ 1) hashes
/// `id:n`.
pub fn hash_step_id(id: &str, repeat: u32) -> String {
    to_hex(&digest_step_id(id, repeat))
}

/// A step reached in this request that Inngest has not seen completed.
#[derive(Debug)]
pub(crate) struct Found {
    pub digest: StepDigest,
    pub report: FoundOp,
}

/// What a found step reports if it does not run in this request.
#[derive(Debug)]
pub(crate) enum FoundOp {
    /// A `run` step, planned (`StepPlanned`) under this name: built only if reported, since
    /// one found alone usually runs at once.
    Run(String),
    /// An op Inngest carries out (a sleep, a wait, an invocation).
    Other(Op),
}

impl Found {
    fn into_op(self) -> Op {
        match self.report {
            FoundOp::Run(name) => Op::new(OpCode::StepPlanned, &to_hex(&self.digest), &name),
            FoundOp::Other(op) => op,
        }
    }

    fn is_run(&self) -> bool {
        matches!(self.report, FoundOp::Run(_))
    }
}

/// The op produced by the step this request executed, and its retry hint.
#[derive(Debug)]
pub(crate) struct Executed {
    pub op: Op,
    pub retry_after: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// How often each step id was reached; a step id comes from the function's code.
    counters: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    found: Vec<Found>,
    executing: Option<StepDigest>,
    wakers: HashMap<StepDigest, Waker, foldhash::fast::RandomState>,
    executed: Option<Executed>,
}

/// Everything a step needs to know about the request it runs in.
pub(crate) struct RunState {
    memo: Memo,
    memo_hits: AtomicUsize,
    /// The step this request targets. A `stepId` that is not a step's hex digest matches no
    /// step, as a misspelled one would.
    target: Option<Target>,
    immediate: bool,
    pub attempt: u32,
    pub max_attempts: u32,
    pub client: Client,
    /// The request's middleware hooks, if any middleware is registered.
    pub hooks: Option<std::sync::Arc<RunHooksChain>>,
    /// Set when this invocation checkpoints its steps.
    checkpoint: Option<RunCheckpoint>,
    inner: Mutex<Inner>,
}

/// How the request was made, for the step decisions.
pub(crate) struct RunSettings {
    pub target: Option<String>,
    pub immediate: bool,
    pub attempt: u32,
    pub max_attempts: u32,
}

impl RunState {
    pub fn new(memo: Memo, settings: RunSettings, client: Client) -> Self {
        Self {
            memo,
            memo_hits: AtomicUsize::new(0),
            target: settings
                .target
                .map(|hex| match parse_hex_digest(hex.as_bytes()) {
                    Some(digest) => Target::Step(digest),
                    None => Target::Unknown,
                }),
            immediate: settings.immediate,
            attempt: settings.attempt,
            max_attempts: settings.max_attempts.max(1),
            client,
            hooks: None,
            checkpoint: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Runs the steps of this request through `hooks`.
    pub fn with_hooks(mut self, hooks: Option<std::sync::Arc<RunHooksChain>>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Checkpoints this invocation's steps.
    pub fn with_checkpoint(mut self, checkpoint: Option<RunCheckpoint>) -> Self {
        self.checkpoint = checkpoint;
        self
    }

    /// The invocation's checkpointing, also once halted.
    pub fn checkpoint(&self) -> Option<&RunCheckpoint> {
        self.checkpoint.as_ref()
    }

    /// The invocation's checkpointing while it goes on: a step that ran continues the function.
    pub fn checkpointing(&self) -> Option<&RunCheckpoint> {
        self.checkpoint.as_ref().filter(|c| !c.is_halted())
    }

    /// The executing step finished and was checkpointed: the next one may be chosen.
    pub fn step_done(&self) {
        self.lock().executing = None;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims the next occurrence of `id` in this request: its digest.
    pub fn next_digest(&self, id: &str) -> StepDigest {
        let repeat = {
            let mut inner = self.lock();
            match inner.counters.get_mut(id) {
                Some(counter) => {
                    *counter += 1;
                    *counter
                }
                None => {
                    inner.counters.insert(id.into(), 0);
                    0
                }
            }
        };
        digest_step_id(id, repeat)
    }

    /// The memoized state for `digest`, if Inngest sent one.
    pub fn memoized(&self, digest: &StepDigest) -> Option<MemoText<'_>> {
        let found = self.memo.get(digest);
        if found.is_some() {
            self.memo_hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Records a new step for the driver.
    pub fn report(&self, found: Found) {
        self.lock().found.push(found);
    }

    /// Whether the last attempt of a step is running, so a failure is final.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt + 1 >= self.max_attempts
    }

    /// Ready once the driver chose `digest` to execute in this request; pending forever
    /// otherwise.
    pub fn poll_chosen(&self, digest: &StepDigest, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.executing.as_ref() == Some(digest) {
            Poll::Ready(())
        } else {
            inner.wakers.insert(*digest, cx.waker().clone());
            Poll::Pending
        }
    }

    /// Stores the op of the step that ran.
    pub fn finish(&self, executed: Executed) {
        self.lock().executed = Some(executed);
    }

    pub fn take_executed(&self) -> Option<Executed> {
        self.lock().executed.take()
    }

    pub fn is_executing(&self) -> bool {
        self.lock().executing.is_some()
    }

    pub fn memo_len(&self) -> usize {
        self.memo.len()
    }

    pub fn memo_hits(&self) -> usize {
        self.memo_hits.load(Ordering::Relaxed)
    }

    /// Decides what to do with the steps found since the last poll.
    pub fn decide(&self) -> Decision {
        let mut inner = self.lock();
        if inner.found.is_empty() {
            return Decision::Wait;
        }
        let found = std::mem::take(&mut inner.found);
        let chosen = match &self.target {
            Some(target) => match found
                .iter()
                .find(|f| f.is_run() && *target == Target::Step(f.digest))
            {
                Some(f) => Some(f.digest),
                None => return Decision::TargetMissing,
            },
            // Past its runtime, a checkpointing invocation leaves the next step to a new call.
            None if self
                .checkpoint
                .as_ref()
                .is_some_and(RunCheckpoint::over_runtime) =>
            {
                None
            }
            None if self.immediate && found.len() == 1 && found[0].is_run() => {
                Some(found[0].digest)
            }
            None => None,
        };
        match chosen {
            Some(digest) => {
                if let Some(waker) = inner.wakers.remove(&digest) {
                    waker.wake();
                }
                inner.executing = Some(digest);
                Decision::Execute
            }
            None => Decision::Report(found.into_iter().map(Found::into_op).collect()),
        }
    }
}

/// The step a request targets (`stepId`).
#[derive(PartialEq, Eq)]
enum Target {
    Step(StepDigest),
    /// Not a hex digest: no step matches it.
    Unknown,
}

/// What the driver does after the function paused.
pub(crate) enum Decision {
    /// Nothing new was found: the function awaits something else; wait for its waker.
    Wait,
    /// A step was chosen; poll again so it runs.
    Execute,
    /// Report these ops (206).
    Report(Vec<Op>),
    /// The request targets a step this code did not reach.
    TargetMissing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_protocol_vectors() {
        let vectors = [
            ("my-step-id", 0, "e7d8a2f140845095749d60246ff1110c9d01d76a"),
            ("my-step-id", 1, "f47c6228c581af870aa285200cf95ec3ac59bb6a"),
            ("first step", 0, "98bf98df193bcce7c33e6bc50927cf2ac21206cb"),
            ("sleep", 0, "c3ca5f787365eae0dea86250e27d476406956478"),
            ("second step", 0, "764e20ec975d4ef820d0f42e6a5833384bd7ee36"),
            ("wait", 0, "daaad336276d15594d0e765f96c17cd746bf4971"),
        ];
        for (id, repeat, want) in vectors {
            assert_eq!(hash_step_id(id, repeat), want, "{id}:{repeat}");
        }
    }
}
