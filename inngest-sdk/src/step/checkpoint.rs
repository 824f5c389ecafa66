//! One invocation's checkpointing: step results buffered and sent to Inngest's checkpoint API
//! while the function goes on (see [`crate::checkpoint`]).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::Serialize;

use super::op::Op;
use crate::checkpoint::Checkpoint;
use crate::client::{CheckpointFailure, Client};

/// Which run and queue item the checkpoints belong to, from the call request's `ctx`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckpointIds {
    pub run_id: String,
    pub fn_id: String,
    pub qi_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i64>,
}

/// The body of `POST /v1/checkpoint/{runId}/async`.
#[derive(Serialize)]
struct CheckpointBody<'a> {
    #[serde(flatten)]
    ids: &'a CheckpointIds,
    steps: &'a [Op],
}

/// How checkpointing stopped before the invocation's end.
#[derive(Debug)]
pub(crate) enum Halt {
    /// The API could not take the results: they go back in the call's answer.
    Unavailable,
    /// A newer call of the run has taken over (409): this one stops and reports nothing.
    Stale,
}

#[derive(Default)]
struct Buffer {
    /// Results not yet accepted by the API, oldest first.
    ops: Vec<Op>,
    /// When the oldest of them was buffered.
    oldest: Option<Instant>,
    halted: Option<Halt>,
}

/// The checkpointing state of one invocation.
pub(crate) struct RunCheckpoint {
    config: Checkpoint,
    ids: CheckpointIds,
    started: Instant,
    buffer: Mutex<Buffer>,
}

impl RunCheckpoint {
    pub fn new(config: Checkpoint, ids: CheckpointIds) -> Self {
        Self {
            config,
            ids,
            started: Instant::now(),
            buffer: Mutex::new(Buffer::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Buffers a step's result; true when the buffer is due to be sent.
    pub fn push(&self, op: Op) -> bool {
        let mut buffer = self.lock();
        buffer.ops.push(op);
        let oldest = *buffer.oldest.get_or_insert_with(Instant::now);
        buffer.ops.len() >= self.config.batch_size()
            || self
                .config
                .batch_interval
                .is_some_and(|interval| oldest.elapsed() >= interval)
    }

    /// Sends the buffered results; false when they could not be sent. They then stay
    /// buffered and checkpointing halts: the invocation must answer with them.
    pub async fn flush(&self, client: &Client) -> bool {
        let ops = std::mem::take(&mut self.lock().ops);
        if ops.is_empty() {
            return true;
        }
        let body = CheckpointBody {
            ids: &self.ids,
            steps: &ops,
        };
        let body = match serde_json::to_value(&body) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "a checkpoint did not serialize");
                self.halt(ops, Halt::Unavailable);
                return false;
            }
        };
        match client.checkpoint(&self.ids.run_id, &body).await {
            Ok(()) => {
                tracing::debug!(steps = ops.len(), "checkpointed");
                let mut buffer = self.lock();
                buffer.oldest = (!buffer.ops.is_empty()).then(Instant::now);
                true
            }
            Err(CheckpointFailure::Stale) => {
                tracing::warn!("checkpoint refused as stale: a newer call runs this run");
                self.halt(ops, Halt::Stale);
                false
            }
            Err(CheckpointFailure::Unavailable(reason)) => {
                tracing::warn!(%reason, steps = ops.len(), "checkpointing failed; answering the steps in the response");
                self.halt(ops, Halt::Unavailable);
                false
            }
        }
    }

    fn halt(&self, mut unsent: Vec<Op>, halt: Halt) {
        let mut buffer = self.lock();
        unsent.append(&mut buffer.ops);
        buffer.ops = unsent;
        buffer.halted = Some(halt);
    }

    /// Whether a failed send has halted checkpointing.
    pub fn is_halted(&self) -> bool {
        self.lock().halted.is_some()
    }

    /// How checkpointing halted, if it did (answered once).
    pub fn take_halt(&self) -> Option<Halt> {
        self.lock().halted.take()
    }

    /// The results not sent, leaving the buffer empty.
    pub fn take_unsent(&self) -> Vec<Op> {
        let mut buffer = self.lock();
        buffer.oldest = None;
        std::mem::take(&mut buffer.ops)
    }

    /// Whether the invocation has run past `max_runtime`: the next step is left to a new call.
    pub fn over_runtime(&self) -> bool {
        self.config
            .max_runtime
            .is_some_and(|max| self.started.elapsed() >= max)
    }
}
