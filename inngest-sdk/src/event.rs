//! Events: what triggers functions and what `send` and `send_event` deliver.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An Inngest event with a typed `data` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<T = Value> {
    /// The event id. Inngest deduplicates events that share an id (for 24 hours), so a
    /// provider's own event id here makes delivery idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The event name, e.g. `purchase/mentorship`.
    pub name: String,
    /// The payload.
    pub data: T,
    /// Data about the user the event concerns; Inngest always sends an object.
    #[serde(default, skip_serializing_if = "is_empty_user")]
    pub user: Value,
    /// Milliseconds since the epoch; Inngest sets it to now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// An optional schema version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
}

fn is_empty_user(user: &Value) -> bool {
    match user {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

impl<T> Event<T> {
    /// An event with a name and data.
    #[must_use]
    pub fn new(name: impl Into<String>, data: T) -> Self {
        Self {
            id: None,
            name: name.into(),
            data,
            user: Value::Null,
            ts: None,
            v: None,
        }
    }

    /// Sets the id Inngest deduplicates on.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the user object.
    #[must_use]
    pub fn with_user(mut self, user: Value) -> Self {
        self.user = user;
        self
    }

    /// Sets the timestamp (milliseconds since the epoch).
    #[must_use]
    pub fn with_ts(mut self, ts: i64) -> Self {
        self.ts = Some(ts);
        self
    }
}
