//! Function configuration: a builder, the rules Inngest enforces (checked at registration so a
//! mistake fails at start-up with the function and rule named), and the sync JSON (§5.4).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Trigger;
use crate::duration::format_duration;

const DAY: Duration = Duration::from_secs(24 * 3600);
const SECOND: Duration = Duration::from_secs(1);

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
pub struct Concurrency {
    limit: u32,
    key: Option<String>,
    scope: Scope,
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
    fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("limit".into(), json!(self.limit));
        if let Some(key) = &self.key {
            obj.insert("key".into(), json!(key));
        }
        let scope = match self.scope {
            Scope::Fn => "fn",
            Scope::Env => "env",
            Scope::Account => "account",
        };
        obj.insert("scope".into(), json!(scope));
        Value::Object(obj)
    }
}

/// Queue runs beyond `limit` per `period` (they are delayed, not dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// Runs per period.
    pub limit: u32,
    /// The period, 1s to 7d.
    pub period: Duration,
    /// Extra runs allowed in a burst.
    pub burst: Option<u32>,
    /// Per-key throttling expression.
    pub key: Option<String>,
}

/// Drop runs beyond `limit` per `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Runs per period.
    pub limit: u32,
    /// The period, at most 24h.
    pub period: Duration,
    /// Per-key expression.
    pub key: Option<String>,
}

/// Wait for `period` of quiet before running, with the last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    /// The quiet period, 1s to 7d.
    pub period: Duration,
    /// Per-key expression.
    pub key: Option<String>,
    /// Run anyway after this long.
    pub timeout: Option<Duration>,
}

/// Run once for up to `max_size` events collected within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// At least 2.
    pub max_size: u32,
    /// At least 1s.
    pub timeout: Duration,
    /// Per-key batches.
    pub key: Option<String>,
    /// Only events for which this CEL expression holds are batched.
    pub condition: Option<String>,
}

/// Cancel a run when a matching event arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// The cancelling event.
    pub event: String,
    /// A CEL expression over `event` (the trigger) and `async` (the cancelling event).
    pub condition: Option<String>,
    /// Only cancel within this long after the run started.
    pub timeout: Option<Duration>,
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
    /// Only when this expression holds.
    pub fn with_if(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
    /// Only within this long.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
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
pub struct FunctionOpts {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) retries: Option<u32>,
    concurrency: Vec<Concurrency>,
    step_concurrency: Vec<Concurrency>,
    throttle: Option<Throttle>,
    rate_limit: Option<RateLimit>,
    debounce: Option<Debounce>,
    batch: Option<Batch>,
    cancel: Vec<Cancel>,
    priority: Option<String>,
    idempotency: Option<String>,
    timeout_start: Option<Duration>,
    timeout_finish: Option<Duration>,
    singleton: Option<(Option<String>, SingletonMode)>,
}

impl FunctionOpts {
    /// Options for the function `id` (unique within the app).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            triggers: Vec::new(),
            retries: None,
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
        }
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

    /// Checks every rule Inngest enforces on sync.
    pub fn validate(&self) -> Result<(), FunctionConfigError> {
        let fail = |rule: String| {
            Err(FunctionConfigError {
                function: self.id.clone(),
                rule,
            })
        };
        if self.id.trim().is_empty() || self.id.chars().any(char::is_whitespace) {
            return fail("the id must be non-empty and contain no whitespace".into());
        }
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return fail("the name must not be empty".into());
        }
        if self.triggers.is_empty() || self.triggers.len() > 10 {
            return fail(format!(
                "needs 1 to 10 triggers, has {}",
                self.triggers.len()
            ));
        }
        let mut seen = HashSet::new();
        for trigger in &self.triggers {
            if !seen.insert(trigger.to_json().to_string()) {
                return fail(format!("duplicate trigger {}", trigger.to_json()));
            }
            if let Err(rule) = validate_trigger(trigger) {
                return fail(rule);
            }
        }
        if self.retries.is_some_and(|r| r > 20) {
            return fail("retries must be at most 20".into());
        }
        if self.concurrency.len() > 2 {
            return fail("at most 2 function concurrency limits".into());
        }
        if !self.step_concurrency.is_empty() && self.concurrency.len() > 1 {
            return fail("with step concurrency, at most 1 function concurrency limit".into());
        }
        for c in self.concurrency.iter().chain(&self.step_concurrency) {
            if c.limit == 0 {
                return fail("a concurrency limit must be at least 1".into());
            }
            if c.scope != Scope::Fn && c.key.is_none() {
                return fail("an env or account concurrency scope needs a key".into());
            }
        }
        if let Some(t) = &self.throttle
            && (t.limit == 0 || !(SECOND..=7 * DAY).contains(&t.period) || t.burst == Some(0))
        {
            return fail("throttle needs limit ≥ 1, burst ≥ 1 and a period of 1s to 7d".into());
        }
        if let Some(r) = &self.rate_limit
            && (r.limit == 0 || !(SECOND..=DAY).contains(&r.period))
        {
            return fail("rateLimit needs limit ≥ 1 and a period of 1s to 24h".into());
        }
        if self.rate_limit.is_some() && self.idempotency.is_some() {
            return fail("idempotency is a rate limit of 1 per 24h; set one or the other".into());
        }
        if let Some(d) = &self.debounce {
            if !(SECOND..=7 * DAY).contains(&d.period) {
                return fail("debounce period must be 1s to 7d".into());
            }
            if d.timeout.is_some_and(|t| t < d.period) {
                return fail("debounce timeout must not be shorter than its period".into());
            }
        }
        if let Some(b) = &self.batch {
            if b.max_size < 2 || b.timeout < SECOND {
                return fail("batchEvents needs maxSize ≥ 2 and timeout ≥ 1s".into());
            }
            let excluded = [
                (!self.cancel.is_empty(), "cancel"),
                (self.debounce.is_some(), "debounce"),
                (self.singleton.is_some(), "singleton"),
                (self.priority.is_some(), "priority"),
            ];
            if let Some((_, what)) = excluded.iter().find(|(set, _)| *set) {
                return fail(format!("batchEvents cannot be combined with {what}"));
            }
        }
        if self.cancel.len() > 5 {
            return fail("at most 5 cancellations".into());
        }
        if self.cancel.iter().any(|c| c.event.trim().is_empty()) {
            return fail("a cancellation needs an event name".into());
        }
        if [self.timeout_start, self.timeout_finish].contains(&Some(Duration::ZERO)) {
            return fail("timeouts must be positive".into());
        }
        Ok(())
    }

    /// The function object of a sync request.
    pub(crate) fn to_json(&self, app_id: &str, step_url: &str) -> Value {
        let composite = format!("{app_id}-{}", self.id);
        let name = self.name.clone().unwrap_or_else(|| self.id.clone());
        let mut step = json!({
            "id": "step",
            "name": name,
            "runtime": { "type": "http", "url": step_url },
        });
        if let Some(retries) = self.retries {
            step["retries"] = json!({ "attempts": retries });
        }
        let mut f = Map::new();
        f.insert("id".into(), json!(composite));
        f.insert("name".into(), json!(name));
        let triggers: Vec<Value> = self.triggers.iter().map(Trigger::to_json).collect();
        f.insert("triggers".into(), json!(triggers));
        f.insert("steps".into(), json!({ "step": step }));
        let fn_limits: Vec<Value> = self.concurrency.iter().map(Concurrency::to_json).collect();
        if !self.step_concurrency.is_empty() {
            let step_limits: Vec<Value> = self
                .step_concurrency
                .iter()
                .map(Concurrency::to_json)
                .collect();
            f.insert(
                "concurrency".into(),
                json!({ "fn": fn_limits, "step": step_limits }),
            );
        } else if !fn_limits.is_empty() {
            f.insert("concurrency".into(), json!(fn_limits));
        }
        if let Some(t) = &self.throttle {
            let mut v = json!({ "limit": t.limit, "period": format_duration(t.period) });
            insert_opt(&mut v, "burst", t.burst.map(|b| json!(b)));
            insert_opt(&mut v, "key", t.key.as_ref().map(|k| json!(k)));
            f.insert("throttle".into(), v);
        }
        if let Some(r) = &self.rate_limit {
            let mut v = json!({ "limit": r.limit, "period": format_duration(r.period) });
            insert_opt(&mut v, "key", r.key.as_ref().map(|k| json!(k)));
            f.insert("rateLimit".into(), v);
        }
        if let Some(d) = &self.debounce {
            let mut v = json!({ "period": format_duration(d.period) });
            insert_opt(&mut v, "key", d.key.as_ref().map(|k| json!(k)));
            insert_opt(
                &mut v,
                "timeout",
                d.timeout.map(|t| json!(format_duration(t))),
            );
            f.insert("debounce".into(), v);
        }
        if let Some(b) = &self.batch {
            // batchEvents.timeout goes through Go's time.ParseDuration: no d or w units.
            let mut v =
                json!({ "maxSize": b.max_size, "timeout": format!("{}s", b.timeout.as_secs()) });
            insert_opt(&mut v, "key", b.key.as_ref().map(|k| json!(k)));
            insert_opt(&mut v, "if", b.condition.as_ref().map(|k| json!(k)));
            f.insert("batchEvents".into(), v);
        }
        if !self.cancel.is_empty() {
            let cancel: Vec<Value> = self
                .cancel
                .iter()
                .map(|c| {
                    let mut v = json!({ "event": c.event });
                    insert_opt(&mut v, "if", c.condition.as_ref().map(|k| json!(k)));
                    insert_opt(
                        &mut v,
                        "timeout",
                        c.timeout.map(|t| json!(format_duration(t))),
                    );
                    v
                })
                .collect();
            f.insert("cancel".into(), json!(cancel));
        }
        if let Some(run) = &self.priority {
            f.insert("priority".into(), json!({ "run": run }));
        }
        if let Some(key) = &self.idempotency {
            f.insert("idempotency".into(), json!(key));
        }
        if self.timeout_start.is_some() || self.timeout_finish.is_some() {
            let mut v = json!({});
            insert_opt(
                &mut v,
                "start",
                self.timeout_start.map(|t| json!(format_duration(t))),
            );
            insert_opt(
                &mut v,
                "finish",
                self.timeout_finish.map(|t| json!(format_duration(t))),
            );
            f.insert("timeouts".into(), v);
        }
        if let Some((key, mode)) = &self.singleton {
            let mode = match mode {
                SingletonMode::Skip => "skip",
                SingletonMode::Cancel => "cancel",
            };
            let mut v = json!({ "mode": mode });
            insert_opt(&mut v, "key", key.as_ref().map(|k| json!(k)));
            f.insert("singleton".into(), v);
        }
        Value::Object(f)
    }
}

fn insert_opt(target: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(value), Some(obj)) = (value, target.as_object_mut()) {
        obj.insert(key.to_owned(), value);
    }
}

fn validate_trigger(trigger: &Trigger) -> Result<(), String> {
    match trigger {
        Trigger::Event { event, expression } => {
            if event.trim().is_empty() || event.len() > 255 {
                return Err(format!("event name {event:?} must be 1 to 255 characters"));
            }
            if expression.as_deref().is_some_and(|e| e.trim().is_empty()) {
                return Err(format!("the expression of trigger {event:?} is empty"));
            }
        }
        Trigger::Cron {
            schedule,
            timezone,
            jitter,
        } => {
            schedule
                .parse::<croner::Cron>()
                .map_err(|e| format!("invalid cron {schedule:?}: {e}"))?;
            if schedule.split_whitespace().count() != 5 {
                return Err(format!("cron {schedule:?} must have 5 fields"));
            }
            if timezone
                .as_deref()
                .is_some_and(|tz| tz.trim().is_empty() || tz.contains(' '))
            {
                return Err(format!("invalid time zone for cron {schedule:?}"));
            }
            if let Some(j) = jitter
                && !(SECOND..=Duration::from_secs(300)).contains(j)
            {
                return Err(format!("jitter of cron {schedule:?} must be 1s to 5m"));
            }
        }
    }
    Ok(())
}
