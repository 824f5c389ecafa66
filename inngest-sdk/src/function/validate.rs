//! The rules Inngest enforces on sync, checked at registration so a mistake fails at start-up
//! with the function and rule named.

use std::collections::HashSet;
use std::time::Duration;

use super::Trigger;
use super::opts::{FunctionConfigError, FunctionOpts, Scope};

const DAY: Duration = Duration::from_secs(24 * 3600);
const SECOND: Duration = Duration::from_secs(1);

impl FunctionOpts {
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
        if let Some(backoff) = &self.backoff {
            let honoured = Duration::from_secs(1)..=Duration::from_secs(24 * 3600);
            if !honoured.contains(&backoff.first)
                || !honoured.contains(&backoff.max)
                || backoff.max < backoff.first
            {
                return fail(
                    "a backoff waits 1s to 24h, its maximum no less than its first".into(),
                );
            }
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
