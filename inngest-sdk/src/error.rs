//! Errors a function or step returns, and how each maps to Inngest's retry semantics.
//!
//! [`Error`] is what user code returns: retriable by default, [`Error::non_retriable`] to stop
//! retrying, [`Error::retry_after`] to choose when. Any `std::error::Error` converts into it with
//! `?`. [`StepError`] is a step's final failure as Inngest remembers it: it comes back from
//! `step.run` on replay, and if it is propagated the run fails without retries.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// When Inngest should try again after an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Retry with Inngest's backoff while attempts remain.
    Default,
    /// Never retry: the run (or step) fails now.
    Never,
    /// Retry after this long.
    After(Duration),
    /// Retry at this time.
    At(DateTime<Utc>),
}

/// An error returned by a function or a step.
pub struct Error {
    name: String,
    message: String,
    stack: Option<String>,
    retry: Retry,
}

impl Error {
    /// A retriable error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            name: "Error".to_owned(),
            message: message.into(),
            stack: None,
            retry: Retry::Default,
        }
    }

    /// An error that ends the run (or step) without further attempts.
    pub fn non_retriable(message: impl Into<String>) -> Self {
        Self::new(message).with_retry(Retry::Never)
    }

    /// A retriable error with an explicit delay before the next attempt.
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        Self::new(message).with_retry(Retry::After(delay))
    }

    /// A retriable error with an explicit time for the next attempt.
    pub fn retry_at(message: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self::new(message).with_retry(Retry::At(at))
    }

    /// Sets the error name (default `Error`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the retry behaviour.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Attaches a stack or cause chain, reported as `stack`.
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// The error name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The retry behaviour.
    pub fn retry(&self) -> &Retry {
        &self.retry
    }

    /// Whether Inngest may try again.
    pub fn is_retriable(&self) -> bool {
        self.retry != Retry::Never
    }

    pub(crate) fn to_wire(&self) -> WireError {
        WireError {
            name: self.name.clone(),
            message: self.message.clone(),
            stack: self.stack.clone(),
        }
    }

    /// The `Retry-After` header value, if this error sets one: whole seconds for a delay
    /// (at least 1), RFC 3339 for a time.
    pub(crate) fn retry_after_header(&self) -> Option<String> {
        match &self.retry {
            Retry::After(d) => Some(d.as_secs().max(1).to_string()),
            Retry::At(at) => Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            _ => None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("name", &self.name)
            .field("message", &self.message)
            .field("retry", &self.retry)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name == "Error" {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

/// Any error converts with `?`. The message is the error's display followed by its sources;
/// a [`StepError`] keeps its name and message and becomes non-retriable, because Inngest has
/// already spent that step's attempts.
impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        if let Some(step) = (&err as &dyn Any).downcast_ref::<StepError>() {
            return Self {
                name: step.name.clone(),
                message: step.message.clone(),
                stack: step.stack.clone(),
                retry: Retry::Never,
            };
        }
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }
}

/// A step's final failure, as memoized by Inngest: `step.run` returns it on replay once the
/// step has failed permanently (non-retriable, or out of attempts), so the function can handle
/// it. Propagating it with `?` fails the run without retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// The error name (`Error` by default).
    #[serde(default = "default_name")]
    pub name: String,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// A stack or cause chain, when the step reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Extra data attached to the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

fn default_name() -> String {
    "Error".to_owned()
}

impl StepError {
    pub(crate) fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
            stack: None,
            data: None,
        }
    }
}

/// The `{name, message, stack}` shape errors take on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// The error name.
    pub name: String,
    /// The message.
    pub message: String,
    /// A stack or cause chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn std_errors_convert_with_their_sources() {
        let err: Error = Outer(std::io::Error::other("inner")).into();
        assert_eq!(err.message(), "outer: inner");
        assert!(err.is_retriable());
    }

    #[test]
    fn a_propagated_step_error_is_final() {
        let err: Error = StepError::new("Error", "broken").into();
        assert_eq!(err.message(), "broken");
        assert!(!err.is_retriable());
    }

    #[test]
    fn retry_after_is_whole_seconds_or_a_date() {
        let err = Error::retry_after("later", Duration::from_millis(30_500));
        assert_eq!(err.retry_after_header().as_deref(), Some("30"));
        let at = DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
            .expect("date")
            .with_timezone(&Utc);
        let err = Error::retry_at("later", at);
        assert_eq!(
            err.retry_after_header().as_deref(),
            Some("2030-01-02T03:04:05Z")
        );
    }

    #[test]
    fn step_errors_read_the_typescript_serialized_form() {
        let err: StepError = serde_json::from_str(
            r#"{"__serialized":true,"name":"Error","message":"boom","stack":"at x"}"#,
        )
        .expect("parses");
        assert_eq!(err.message, "boom");
    }
}
