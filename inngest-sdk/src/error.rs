//! Errors a function or step returns, and how each maps to Inngest's retry semantics.
//!
//! [`Error`] is what user code returns: retriable by default, [`Error::non_retriable`] to stop
//! retrying, [`Error::retry_after`] to choose when.
//!
//! Each error *type* decides once what Inngest does with it, by implementing [`Classify`]; `?`
//! then converts it with that decision at every call site, in function bodies and in steps. The
//! standard library's errors, `serde_json`'s and `reqwest`'s are classified here (retriable, as
//! in the official SDKs, except HTTP answers that retrying cannot change). There is deliberately
//! no blanket conversion from every `std::error::Error`: it would make every `?` retriable and
//! leave an app no way to say otherwise for its own types.
//!
//! [`StepError`] is a step's final failure as Inngest remembers it: it comes back from
//! `step.run` on replay, and if it is propagated the run fails without retries.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// When Inngest should try again after an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
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

impl Retry {
    /// The usual reading of an HTTP error answer from another service: a client error is final
    /// (the same request will be refused again) except 408 (timeout), 409 (conflict, often a
    /// concurrent request) and 429 (rate limit); server errors are retried. `retry_after` (the
    /// answer's `Retry-After`) is honoured on 429 and 503, the statuses that define it.
    pub fn for_http_status(status: u16, retry_after: Option<Duration>) -> Self {
        match (status, retry_after) {
            (429 | 503, Some(delay)) => Retry::After(delay),
            (408 | 409 | 429, _) => Retry::Default,
            (400..=499, _) => Retry::Never,
            _ => Retry::Default,
        }
    }
}

/// How Inngest treats an error type: implement it once per type, and `?` converts every error
/// of that type into an [`Error`] with this decision (the message is the error's display
/// followed by its sources).
///
/// ```
/// use inngest_sdk::{Classify, Retry};
///
/// #[derive(Debug, thiserror::Error)]
/// enum BillingError {
///     #[error("card declined")]
///     Declined,
///     #[error("billing provider unavailable")]
///     Unavailable,
/// }
///
/// impl Classify for BillingError {
///     fn retry(&self) -> Retry {
///         match self {
///             BillingError::Declined => Retry::Never,
///             BillingError::Unavailable => Retry::Default,
///         }
///     }
/// }
///
/// let err: inngest_sdk::Error = BillingError::Declined.into();
/// assert!(!err.is_retriable());
/// ```
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// What Inngest does after this error; by default it retries with its backoff.
    fn retry(&self) -> Retry {
        Retry::Default
    }
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
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            name: "Error".to_owned(),
            message: message.into(),
            stack: None,
            retry: Retry::Default,
        }
    }

    /// An error that ends the run (or step) without further attempts.
    #[must_use]
    pub fn non_retriable(message: impl Into<String>) -> Self {
        Self::new(message).with_retry(Retry::Never)
    }

    /// A retriable error with an explicit delay before the next attempt.
    #[must_use]
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        Self::new(message).with_retry(Retry::After(delay))
    }

    /// A retriable error with an explicit time for the next attempt.
    #[must_use]
    pub fn retry_at(message: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self::new(message).with_retry(Retry::At(at))
    }

    /// Sets the error name (default `Error`).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the retry behaviour.
    #[must_use]
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Attaches a stack or cause chain, reported as `stack`.
    #[must_use]
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

impl Error {
    /// Any error, retriable with Inngest's backoff: for a foreign error type that has no
    /// [`Classify`] implementation (an app's own types should implement it instead).
    #[must_use]
    pub fn from_std(err: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(message_with_sources(err))
    }
}

fn message_with_sources(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl<E: Classify> From<E> for Error {
    fn from(err: E) -> Self {
        let retry = err.retry();
        Self::new(message_with_sources(&err)).with_retry(retry)
    }
}

/// A propagated step failure keeps its name and message and is final: Inngest has already
/// spent that step's attempts.
impl From<StepError> for Error {
    fn from(step: StepError) -> Self {
        Self {
            name: step.name,
            message: step.message,
            stack: step.stack,
            retry: Retry::Never,
        }
    }
}

/// A boxed error of unknown kind is retried.
impl From<Box<dyn std::error::Error + Send + Sync>> for Error {
    fn from(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::new(message_with_sources(err.as_ref()))
    }
}

macro_rules! retriable {
    ($($ty:ty),+ $(,)?) => { $(impl Classify for $ty {})+ };
}

// Plain errors are retried, as the official SDKs retry any thrown error.
retriable!(
    std::io::Error,
    std::fmt::Error,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::num::TryFromIntError,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::str::ParseBoolError,
    std::char::ParseCharError,
    std::time::SystemTimeError,
    std::env::VarError,
    serde_json::Error,
    chrono::ParseError,
);

/// Transport failures and server errors are retried; an error status follows
/// [`Retry::for_http_status`] (reqwest does not keep the answer's `Retry-After`).
impl Classify for reqwest::Error {
    fn retry(&self) -> Retry {
        match self.status() {
            Some(status) => Retry::for_http_status(status.as_u16(), None),
            None => Retry::Default,
        }
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

    #[derive(Debug, thiserror::Error)]
    enum Provider {
        #[error("refused")]
        Refused,
        #[error("busy")]
        Busy,
    }

    impl Classify for Provider {
        fn retry(&self) -> Retry {
            match self {
                Provider::Refused => Retry::Never,
                Provider::Busy => Retry::After(Duration::from_secs(7)),
            }
        }
    }

    impl Classify for Outer {}

    fn step(fail: Provider) -> Result<(), Error> {
        Err(fail)?
    }

    #[test]
    fn an_error_type_classifies_itself_once_and_question_mark_keeps_it() {
        let refused = step(Provider::Refused).expect_err("fails");
        assert_eq!(refused.retry(), &Retry::Never);
        let busy = step(Provider::Busy).expect_err("fails");
        assert_eq!(busy.retry(), &Retry::After(Duration::from_secs(7)));
        assert_eq!(busy.retry_after_header().as_deref(), Some("7"));
    }

    #[test]
    fn http_statuses_follow_one_rule() {
        let wait = Some(Duration::from_secs(30));
        assert_eq!(Retry::for_http_status(400, wait), Retry::Never);
        assert_eq!(Retry::for_http_status(404, None), Retry::Never);
        assert_eq!(Retry::for_http_status(408, None), Retry::Default);
        assert_eq!(Retry::for_http_status(409, None), Retry::Default);
        assert_eq!(Retry::for_http_status(429, None), Retry::Default);
        assert_eq!(
            Retry::for_http_status(429, wait),
            Retry::After(Duration::from_secs(30))
        );
        assert_eq!(
            Retry::for_http_status(503, wait),
            Retry::After(Duration::from_secs(30))
        );
        assert_eq!(Retry::for_http_status(500, wait), Retry::Default);
        assert_eq!(Retry::for_http_status(502, None), Retry::Default);
    }

    #[test]
    fn plain_std_errors_are_retriable() {
        let err: Error = "x".parse::<u8>().expect_err("not a number").into();
        assert!(err.is_retriable());
        let err: Error = serde_json::from_str::<u8>("{")
            .expect_err("malformed")
            .into();
        assert!(err.is_retriable());
    }

    #[tokio::test]
    async fn a_timed_out_request_is_retried() {
        // Accepts the connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move { listener.accept().await });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        let err = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect_err("times out");
        assert!(err.is_timeout(), "{err}");
        assert!(Error::from(err).is_retriable());
        hold.abort();
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
