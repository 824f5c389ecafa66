//! Triggers: an event (optionally filtered by a CEL expression) or a cron schedule.

use std::time::Duration;

use serde_json::{Value, json};

use crate::duration::format_duration;

/// What starts a function.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Trigger {
    /// An event by name.
    Event {
        /// The event name.
        event: String,
        /// A CEL expression over `event` that must hold.
        expression: Option<String>,
    },
    /// A cron schedule.
    Cron {
        /// Five-field cron expression.
        schedule: String,
        /// An IANA time zone (`Europe/Paris`), sent as a `TZ=` prefix.
        timezone: Option<String>,
        /// Random delay added to each tick, 1s to 5m.
        jitter: Option<Duration>,
    },
}

impl Trigger {
    /// Triggers on the event `name`.
    pub fn event(name: impl Into<String>) -> Self {
        Self::Event {
            event: name.into(),
            expression: None,
        }
    }

    /// Triggers on a five-field cron schedule (UTC unless a time zone is set).
    pub fn cron(schedule: impl Into<String>) -> Self {
        Self::Cron {
            schedule: schedule.into(),
            timezone: None,
            jitter: None,
        }
    }

    /// Adds a CEL condition to an event trigger (`event.data.amount > 100`).
    /// Has no effect on a cron trigger.
    pub fn with_if(mut self, condition: impl Into<String>) -> Self {
        if let Self::Event { expression, .. } = &mut self {
            *expression = Some(condition.into());
        }
        self
    }

    /// Sets the time zone of a cron trigger.
    pub fn with_timezone(mut self, tz: impl Into<String>) -> Self {
        if let Self::Cron { timezone, .. } = &mut self {
            *timezone = Some(tz.into());
        }
        self
    }

    /// Sets the jitter of a cron trigger.
    pub fn with_jitter(mut self, value: Duration) -> Self {
        if let Self::Cron { jitter, .. } = &mut self {
            *jitter = Some(value);
        }
        self
    }

    /// The event name, for event triggers.
    pub fn event_name(&self) -> Option<&str> {
        match self {
            Self::Event { event, .. } => Some(event),
            Self::Cron { .. } => None,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            Self::Event { event, expression } => match expression {
                Some(expr) => json!({ "event": event, "expression": expr }),
                None => json!({ "event": event }),
            },
            Self::Cron {
                schedule,
                timezone,
                jitter,
            } => {
                let cron = match timezone {
                    Some(tz) => format!("TZ={tz} {schedule}"),
                    None => schedule.clone(),
                };
                match jitter {
                    Some(j) => json!({ "cron": cron, "jitter": format_duration(*j) }),
                    None => json!({ "cron": cron }),
                }
            }
        }
    }
}
