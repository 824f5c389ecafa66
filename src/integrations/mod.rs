//! Clients of the outside services. Each takes its base URL from configuration, so tests point
//! them at local fakes.

pub mod clerk;
pub mod discord;
pub mod paypal;
pub mod resend;
pub mod stripe;
pub mod svix;

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The HTTP client that Inngest's, PayPal's, Discord's and Resend's clients share, every
/// request bounded by `timeout`.
///
/// One client, built once: building one loads the system's root certificates (about 3 ms and
/// 150 KB each time), and a shared one also shares its pool of open connections. Clerk's
/// client is its own: clerk-rs sends its API version as a header of the client.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    client_builder(timeout).build()
}

/// A builder with the providers' timeouts: every request bounded by `timeout`, and its
/// connection by [`CONNECT_TIMEOUT`] at most.
fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
}

/// The longest a provider's connection may take to open (a request's own timeout still
/// bounds the whole exchange).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a checkout we no longer wait for stands at its provider, once it can no longer be
/// paid there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedCheckout {
    /// The buyer paid: the payment event is on its way (or was lost).
    Paid,
    /// Nothing was paid and nothing can be any more.
    Unpaid,
}

/// A provider's error answer: what its error type keeps to report it and to decide on a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The start of the body (provider error bodies carry no secrets, but may be long).
    pub body: String,
    /// The answer's `Retry-After`, when it had one.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ErrorAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.body)
    }
}

impl ErrorAnswer {
    /// Inngest's decision for this answer, by the one rule for HTTP statuses.
    pub fn retry(&self) -> inngest_sdk::Retry {
        inngest_sdk::Retry::for_http_status(self.status, self.retry_after)
    }
}

/// `Retry-After` as a delay: delta-seconds, or an HTTP date (a past date is no delay).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The response if it succeeded; otherwise the error `make` builds from its [`ErrorAnswer`].
pub(crate) async fn success_or<E>(
    response: reqwest::Response,
    make: impl FnOnce(ErrorAnswer) -> E,
) -> Result<reqwest::Response, E> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    Err(make(ErrorAnswer {
        status: status.as_u16(),
        body,
        retry_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(value).expect("header value"),
        );
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        let soon = (Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let delay = retry_after(&headers(&soon)).expect("a date parses");
        assert!(delay > Duration::from_secs(100) && delay <= Duration::from_secs(120));
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
