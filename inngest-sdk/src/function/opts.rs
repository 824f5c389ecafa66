//! Function configuration: the options and their builder. `validate.rs` checks them against
//! Inngest's rules; `wire.rs` writes them as the sync JSON.

use crate::checkpoint::{Checkpoint, CheckpointSetting};
use std::time::Duration;

use super::Trigger;

/// A configuration Inngest would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function {function:?}: {rule}")]
pub struct FunctionConfigError {
    /// The function id.
    pub function: String,
    /// The rule that was broken.
    pub rule: String,
}

/// Who shares a concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Runs of this function.
    Fn,
    /// Every function in the environment with the same key.
    Env,
    /// Every function in the account with the same key.
    Account,
}

/// A concurrency limit, optionally per key (a CEL expression such as `event.data.user_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Concurrency {
    pub(super) limit: u32,
    pub(super) key: Option<String>,
    pub(super) scope: Scope,
}

impl Concurrency {
    /// At most `limit` steps running at once.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            key: None,
            scope: Scope::Fn,
        }
    }
    /// Applies the limit per value of this expression.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Shares the limit beyond this function.
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
}

/// Queue runs beyond `limit` per `period` (they are delayed, not dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Throttle {
    pub(super) limit: u32,
    pub(super) period: Duration,
    pub(super) burst: Option<u32>,
    pub(super) key: Option<String>,
}

impl Throttle {
    /// At most `limit` runs start per `period` (1s to 7d).
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit,
            period,
            burst: None,
            key: None,
        }
    }
    /// Allows this many extra runs in a burst.
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }
    /// Throttles per value of this expression.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Drop runs beyond `limit` per `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RateLimit {
    pub(super) limit: u32,
    pub(super) period: Duration,
    pub(super) key: Option<String>,
}

impl RateLimit {
    /// At most `limit` runs per `period` (1s to 24h); the rest are skipped.
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit,
            period,
            key: None,
        }
    }
    /// Applies the limit per value of this expression.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Wait for `period` of quiet before running, with the last event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Debounce {
    pub(super) period: Duration,
    pub(super) key: Option<String>,
    pub(super) timeout: Option<Duration>,
}

impl Debounce {
    /// Runs once no new event has arrived for `period` (1s to 7d).
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            key: None,
            timeout: None,
        }
    }
    /// Debounces per value of this expression.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Runs anyway once this long has passed since the first event (not shorter than the period).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Run once for up to `max_size` events collected within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Batch {
    pub(super) max_size: u32,
    pub(super) timeout: Duration,
    pub(super) key: Option<String>,
    pub(super) condition: Option<String>,
}

impl Batch {
    /// Batches of at most `max_size` events (at least 2), run at the latest `timeout` (at least
    /// 1s) after the first event of the batch.
    pub fn new(max_size: u32, timeout: Duration) -> Self {
        Self {
            max_size,
            timeout,
            key: None,
            condition: None,
        }
    }
    /// Keeps one batch per value of this expression.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Only batches events for which this CEL expression holds.
    pub fn with_if(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
}

/// Cancel a run when a matching event arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Cancel {
    pub(super) event: String,
    pub(super) condition: Option<String>,
    pub(super) timeout: Option<Duration>,
}

impl Cancel {
    /// Cancels on `event`.
    pub fn on(event: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            condition: None,
            timeout: None,
        }
    }
    /// Only when this CEL expression over `event` (the trigger) and `async` (the cancelling
    /// event) holds.
    pub fn with_if(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
    /// Only within this long after the run started.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// How long Inngest waits before retrying a failed step or run, when the error names no time
/// of its own (a `Retry-After` from the error always wins). Without one, Inngest's own table
/// applies, which this SDK cannot see; with one, the retry schedule, and so how long a
/// function rides out an outage, is stated in the code and can be tested.
///
/// The delay after the failed attempt `n` (0-based) is `first * 2^n`, at most `max`. Inngest
/// honours 1 second to 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Backoff {
    pub(super) first: Duration,
    pub(super) max: Duration,
}

impl Backoff {
    /// Doubling from `first` up to `max`.
    pub fn exponential(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after the failed attempt `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }

    /// How long `retries` retries keep a failing function going: the sum of the waits.
    pub fn total(&self, retries: u32) -> Duration {
        (0..retries).map(|attempt| self.delay(attempt)).sum()
    }
}

/// What happens to a new run while one with the same key is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingletonMode {
    /// Skip the new run.
    Skip,
    /// Cancel the running one.
    Cancel,
}

/// Options of one function. Build with [`FunctionOpts::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct FunctionOpts {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) retries: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(super) concurrency: Vec<Concurrency>,
    pub(super) step_concurrency: Vec<Concurrency>,
    pub(super) throttle: Option<Throttle>,
    pub(super) rate_limit: Option<RateLimit>,
    pub(super) debounce: Option<Debounce>,
    pub(super) batch: Option<Batch>,
    pub(super) cancel: Vec<Cancel>,
    pub(super) priority: Option<String>,
    pub(super) idempotency: Option<String>,
    pub(super) timeout_start: Option<Duration>,
    pub(super) timeout_finish: Option<Duration>,
    pub(super) singleton: Option<(Option<String>, SingletonMode)>,
    pub(crate) checkpoint: CheckpointSetting,
}

impl FunctionOpts {
    /// Options for the function `id` (unique within the app).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            triggers: Vec::new(),
            retries: None,
            backoff: None,
            concurrency: Vec::new(),
            step_concurrency: Vec::new(),
            throttle: None,
            rate_limit: None,
            debounce: None,
            batch: None,
            cancel: Vec::new(),
            priority: None,
            idempotency: None,
            timeout_start: None,
            timeout_finish: None,
            singleton: None,
            checkpoint: CheckpointSetting::Inherit,
        }
    }
    /// Checkpoints this function's steps as `checkpoint` says, whatever the client's setting
    /// (see [`crate::checkpoint`]).
    pub fn with_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = CheckpointSetting::On(checkpoint);
        self
    }

    /// Never checkpoints this function, even when the client checkpoints by default.
    pub fn without_checkpoint(mut self) -> Self {
        self.checkpoint = CheckpointSetting::Off;
        self
    }

    /// The human name shown in the dashboard (default: the id).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Adds a trigger (at most 10).
    pub fn with_trigger(mut self, trigger: Trigger) -> Self {
        self.triggers.push(trigger);
        self
    }
    /// Retries after the first attempt (default 4, at most 20).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }
    /// Waits between retries by `backoff` instead of Inngest's own table.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }
    /// Adds a function-level concurrency limit (at most 2).
    pub fn with_concurrency(mut self, limit: Concurrency) -> Self {
        self.concurrency.push(limit);
        self
    }
    /// Adds a step-level concurrency limit.
    pub fn with_step_concurrency(mut self, limit: Concurrency) -> Self {
        self.step_concurrency.push(limit);
        self
    }
    /// Sets throttling.
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }
    /// Sets rate limiting.
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = Some(rate_limit);
        self
    }
    /// Sets debouncing.
    pub fn with_debounce(mut self, debounce: Debounce) -> Self {
        self.debounce = Some(debounce);
        self
    }
    /// Sets event batching.
    pub fn with_batch(mut self, batch: Batch) -> Self {
        self.batch = Some(batch);
        self
    }
    /// Adds a cancellation (at most 5).
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel.push(cancel);
        self
    }
    /// Sets a priority expression (`event.data.priority`, seconds of advantage, ±600).
    pub fn with_priority(mut self, run: impl Into<String>) -> Self {
        self.priority = Some(run.into());
        self
    }
    /// Runs once per value of this expression within 24 hours.
    pub fn with_idempotency(mut self, key: impl Into<String>) -> Self {
        self.idempotency = Some(key.into());
        self
    }
    /// Cancels a run that has not started within `start`.
    pub fn with_start_timeout(mut self, start: Duration) -> Self {
        self.timeout_start = Some(start);
        self
    }
    /// Cancels a run that has not finished within `finish` of starting.
    pub fn with_finish_timeout(mut self, finish: Duration) -> Self {
        self.timeout_finish = Some(finish);
        self
    }
    /// Allows one run at a time (per key).
    pub fn with_singleton(mut self, key: Option<String>, mode: SingletonMode) -> Self {
        self.singleton = Some((key, mode));
        self
    }

    /// The function id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The configured retries, or Inngest's default of 4.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(4)
    }

    /// The backoff between retries, if one is set (else Inngest's table applies).
    pub fn backoff(&self) -> Option<Backoff> {
        self.backoff
    }

    /// How long the retries keep a failing run going, when a backoff is set: the time from
    /// the first failure to the last attempt.
    pub fn retry_window(&self) -> Option<Duration> {
        self.backoff.map(|backoff| backoff.total(self.retries()))
    }
}
