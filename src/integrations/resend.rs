//! Resend through resend-rs: sends a rendered email (HTML and text) with an idempotency key and
//! a `kind` tag, and sorts Resend's failures into retriable and not.
//!
//! resend-rs throttles itself per client (a burst of `RESEND_RATE_LIMIT` requests, default 9,
//! then one every 1.1 s; it waits rather than fails). It has no builder option for this, and
//! panics on a malformed `RESEND_RATE_LIMIT`, so [`ResendApi::new`] checks that variable first.

use std::fmt;
use std::time::Duration;

use resend_rs::types::{CreateEmailBaseOptions, ErrorResponse, Tag};
use resend_rs::{ConfigBuilder, Resend};

use crate::email::RenderedEmail;

/// The most Resend accepts in `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 256;
/// How much of an unreadable answer an error keeps.
const MAX_BODY_IN_ERROR: usize = 500;

/// A Resend failure. Nothing in it ever holds the API key.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// The client's settings are invalid (base URL, `RESEND_RATE_LIMIT`). Not retriable.
    #[error("Resend misconfigured: {0}")]
    Config(String),
    /// The request was refused before sending (e.g. a bad idempotency key). Not retriable.
    #[error("invalid Resend request: {0}")]
    InvalidRequest(String),
    /// Resend could not be reached, or the connection failed. Retriable.
    #[error("Resend unreachable: {0}")]
    Transport(String),
    /// 429: too many requests or a sending quota reached. Retriable, after `retry_after`.
    #[error("Resend rate limit reached (retry after {retry_after:?})")]
    RateLimited {
        /// When Resend says the limit resets (`ratelimit-reset`).
        retry_after: Option<Duration>,
    },
    /// 5xx: Resend failed. Retriable.
    #[error("Resend failed with {status} {name}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// Resend's error name, e.g. `application_error`.
        name: String,
        /// Resend's message.
        message: String,
    },
    /// 4xx: Resend refused the email (validation, authentication, domain). Not retriable, except
    /// the 409s that mean "try again later" (`concurrent_idempotent_requests`, `resource_locked`).
    #[error("Resend refused the email with {status} {name}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Resend's error name, e.g. `validation_error`.
        name: String,
        /// Resend's message.
        message: String,
    },
    /// An error answer that is not Resend's JSON (a proxy's page, an empty body), or a success
    /// without an id. Retriable: the idempotency key makes a retry safe.
    #[error("unexpected answer from Resend: {0}")]
    UnexpectedResponse(String),
}

/// Resend's 409s say what they mean by name (a concurrent request with the same key passes,
/// a key reused for another email does not), so 4xx answers are sorted by name here; the
/// rest follows the variants' documentation.
impl inngest_sdk::Classify for ResendError {
    fn retry(&self) -> inngest_sdk::Retry {
        use inngest_sdk::Retry;
        match self {
            ResendError::Config(_) | ResendError::InvalidRequest(_) => Retry::Never,
            ResendError::RateLimited {
                retry_after: Some(delay),
            } => Retry::After(*delay),
            ResendError::Transport(_)
            | ResendError::RateLimited { retry_after: None }
            | ResendError::Server { .. }
            | ResendError::UnexpectedResponse(_) => Retry::Default,
            ResendError::Rejected { name, .. } => match name.as_str() {
                "concurrent_idempotent_requests" | "resource_locked" => Retry::Default,
                _ => Retry::Never,
            },
        }
    }
}

/// The Resend client: one sender address, one API key.
#[derive(Clone)]
pub struct ResendApi {
    client: Resend,
    from: String,
    base_url: String,
}

impl fmt::Debug for ResendApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResendApi")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("from", &self.from)
            .finish()
    }
}

impl ResendApi {
    /// A client sending as `from` (e.g. `Huckleberry Art Academy <hello@academy.example>`)
    /// to `base_url` (`https://api.resend.com`, or a local fake in tests), through `http`
    /// ([`super::http_client`]).
    pub fn new(
        api_key: &str,
        base_url: &str,
        from: &str,
        http: reqwest::Client,
    ) -> Result<Self, ResendError> {
        let url = base_url
            .parse()
            .map_err(|e| ResendError::Config(format!("base URL {base_url:?}: {e}")))?;
        check_rate_limit_var(std::env::var("RESEND_RATE_LIMIT").ok().as_deref())?;
        let config = ConfigBuilder::new(api_key)
            .base_url(url)
            .client(http)
            .build();
        Ok(Self {
            client: Resend::with_config(config),
            from: from.to_owned(),
            base_url: base_url.to_owned(),
        })
    }

    /// Sends `email` to `to` and returns Resend's email id. Resend answers a repeated
    /// `idempotency_key` (kept 24 hours) with the first send's id instead of sending again.
    pub async fn send(
        &self,
        to: &str,
        email: &RenderedEmail,
        idempotency_key: &str,
    ) -> Result<String, ResendError> {
        if idempotency_key.is_empty() || idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(ResendError::InvalidRequest(format!(
                "the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} bytes, not {}",
                idempotency_key.len()
            )));
        }
        let options = CreateEmailBaseOptions::new(&self.from, [to], &email.subject)
            .with_html(&email.html)
            .with_text(&email.text)
            .with_tag(Tag::new("kind", email.kind.as_str()))
            .with_idempotency_key(idempotency_key);
        match self.client.emails.send(options).await {
            Ok(sent) => Ok(sent.id.to_string()),
            Err(error) => Err(self.classify(error)),
        }
    }

    /// Maps resend-rs's error, with the key scrubbed from anything the server echoed.
    fn classify(&self, error: resend_rs::Error) -> ResendError {
        let scrub = |text: String| {
            let key = self.client.api_key();
            let text = if key.is_empty() {
                text
            } else {
                text.replace(key, "[redacted]")
            };
            text.chars().take(MAX_BODY_IN_ERROR).collect::<String>()
        };
        match error {
            resend_rs::Error::Http(e) if e.is_decode() => {
                ResendError::UnexpectedResponse(scrub(e.to_string()))
            }
            resend_rs::Error::Http(e) => ResendError::Transport(scrub(e.to_string())),
            resend_rs::Error::RateLimit {
                ratelimit_reset, ..
            } => ResendError::RateLimited {
                retry_after: ratelimit_reset.map(Duration::from_secs),
            },
            resend_rs::Error::Resend(ErrorResponse {
                status_code,
                message,
                name,
            }) => {
                let (name, message) = (scrub(name), scrub(message));
                if status_code >= 500 {
                    ResendError::Server {
                        status: status_code,
                        name,
                        message,
                    }
                } else {
                    ResendError::Rejected {
                        status: status_code,
                        name,
                        message,
                    }
                }
            }
            resend_rs::Error::Parse { message, .. } if message.trim().is_empty() => {
                ResendError::UnexpectedResponse("an error status with an empty body".into())
            }
            resend_rs::Error::Parse { message, .. } => {
                ResendError::UnexpectedResponse(scrub(message))
            }
            other => ResendError::UnexpectedResponse(scrub(other.to_string())),
        }
    }
}

/// resend-rs panics on a `RESEND_RATE_LIMIT` that is not a positive `u32`: refuse it cleanly.
fn check_rate_limit_var(value: Option<&str>) -> Result<(), ResendError> {
    match value {
        None => Ok(()),
        Some(v) if v.parse::<u32>().is_ok_and(|n| n > 0) => Ok(()),
        Some(v) => Err(ResendError::Config(format!(
            "RESEND_RATE_LIMIT must be a positive whole number, not {v:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::email::EmailKind;
    use inngest_sdk::{Classify, Retry};

    fn retriable(error: &ResendError) -> bool {
        error.retry() != Retry::Never
    }

    const KEY: &str = "re_test_0123456789abcdef";
    const FROM: &str = "Huckleberry Art Academy <hello@academy.example>";
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn email() -> RenderedEmail {
        RenderedEmail {
            kind: EmailKind::Welcome,
            subject: "Welcome to Huckleberry Art Academy".into(),
            html: "<p>Hi Ada,</p>".into(),
            text: "Hi Ada,".into(),
        }
    }

    fn http() -> reqwest::Client {
        crate::integrations::http_client(TIMEOUT).expect("an HTTP client")
    }

    fn api(server: &MockServer) -> ResendApi {
        ResendApi::new(KEY, &server.uri(), FROM, http()).expect("test fixture")
    }

    /// A Resend error body as the API sends it.
    fn resend_error(status: u16, name: &str, message: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({
            "statusCode": status, "name": name, "message": message,
        }))
    }

    async fn send_against(response: ResponseTemplate) -> ResendError {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/emails"))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        api(&server)
            .send("ada@example.com", &email(), "welcome/order-1")
            .await
            .expect_err("the send fails")
    }

    fn assert_no_key(error: &ResendError) {
        assert!(!error.to_string().contains(KEY), "{error}");
        assert!(!format!("{error:?}").contains(KEY), "{error:?}");
    }

    #[tokio::test]
    async fn send_posts_the_email_with_key_idempotency_key_and_kind_tag() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/emails"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .and(header("idempotency-key", "welcome/order-1"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "from": FROM,
                "to": ["ada@example.com"],
                "subject": "Welcome to Huckleberry Art Academy",
                "html": "<p>Hi Ada,</p>",
                "text": "Hi Ada,",
                "tags": [{ "name": "kind", "value": "welcome" }],
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794" })),
            )
            .expect(1)
            .mount(&server)
            .await;

        let id = api(&server)
            .send("ada@example.com", &email(), "welcome/order-1")
            .await
            .expect("test fixture");

        assert_eq!(id, "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794");
    }

    #[tokio::test]
    async fn a_base_url_with_a_path_keeps_it() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/proxy/resend/emails"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "e1" })))
            .expect(1)
            .mount(&server)
            .await;
        let api = ResendApi::new(
            KEY,
            &format!("{}/proxy/resend/", server.uri()),
            FROM,
            http(),
        )
        .expect("test fixture");
        assert_eq!(
            api.send("a@example.com", &email(), "k")
                .await
                .expect("test fixture"),
            "e1"
        );
    }

    #[tokio::test]
    async fn a_422_validation_error_is_not_retriable() {
        let error = send_against(resend_error(
            422,
            "validation_error",
            "Invalid `to` field. The email address needs to follow the `email@example.com` format.",
        ))
        .await;
        assert!(
            matches!(&error, ResendError::Rejected { status: 422, name, .. } if name == "validation_error"),
            "{error:?}"
        );
        assert!(!retriable(&error));
        assert_no_key(&error);
    }

    #[tokio::test]
    async fn a_500_is_retriable() {
        let error = send_against(resend_error(500, "application_error", "Unexpected")).await;
        assert!(
            matches!(error, ResendError::Server { status: 500, .. }),
            "{error:?}"
        );
        assert!(retriable(&error));
    }

    #[tokio::test]
    async fn a_502_page_from_a_proxy_is_retriable() {
        let page = ResponseTemplate::new(502)
            .insert_header("content-type", "text/html")
            .set_body_string("<html><body>Bad Gateway</body></html>");
        let error = send_against(page).await;
        assert!(
            matches!(error, ResendError::UnexpectedResponse(_)),
            "{error:?}"
        );
        assert!(retriable(&error));
    }

    #[tokio::test]
    async fn a_429_is_retriable_after_the_reset() {
        let limited = resend_error(429, "rate_limit_exceeded", "Too many requests")
            .insert_header("ratelimit-limit", "2")
            .insert_header("ratelimit-remaining", "0")
            .insert_header("ratelimit-reset", "3");
        let error = send_against(limited).await;
        assert!(retriable(&error));
        assert_eq!(error.retry(), Retry::After(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn a_concurrent_idempotent_request_is_retriable() {
        let error = send_against(resend_error(
            409,
            "concurrent_idempotent_requests",
            "Same idempotency key used while original request is still in progress.",
        ))
        .await;
        assert!(retriable(&error), "{error:?}");
        let error = send_against(resend_error(
            409,
            "invalid_idempotent_request",
            "Same idempotency key used with a different request payload.",
        ))
        .await;
        assert!(!retriable(&error), "{error:?}");
    }

    #[tokio::test]
    async fn a_success_without_an_id_is_retriable() {
        let error = send_against(ResponseTemplate::new(200).set_body_json(json!({}))).await;
        assert!(
            matches!(error, ResendError::UnexpectedResponse(_)),
            "{error:?}"
        );
        assert!(retriable(&error));
    }

    #[tokio::test]
    async fn an_unreachable_resend_is_retriable() {
        // A port nothing listens on (a dropped MockServer goes back to wiremock's pool, alive).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("test fixture");
        let uri = format!("http://{}", listener.local_addr().expect("test fixture"));
        drop(listener);
        let error = ResendApi::new(KEY, &uri, FROM, http())
            .expect("test fixture")
            .send("ada@example.com", &email(), "k")
            .await
            .expect_err("the send fails");
        assert!(matches!(error, ResendError::Transport(_)), "{error:?}");
        assert!(retriable(&error));
        assert_no_key(&error);
    }

    #[tokio::test]
    async fn the_key_never_shows_in_debug_or_errors_even_when_echoed() {
        let server = MockServer::start().await;
        let api = api(&server);
        let debug = format!("{api:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("[redacted]"));

        let error = send_against(resend_error(
            401,
            "restricted_api_key",
            &format!("API key {KEY} can only send emails"),
        ))
        .await;
        assert!(!retriable(&error));
        assert_no_key(&error);
        assert!(
            error
                .to_string()
                .contains("API key [redacted] can only send")
        );
    }

    #[tokio::test]
    async fn a_bad_idempotency_key_is_refused_before_sending() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let api = api(&server);
        for key in [String::new(), "k".repeat(257)] {
            let error = api
                .send("a@example.com", &email(), &key)
                .await
                .expect_err("the send fails");
            assert!(matches!(error, ResendError::InvalidRequest(_)), "{error:?}");
            assert!(!retriable(&error));
        }
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let error = ResendApi::new(KEY, "not a url", FROM, http()).expect_err("the send fails");
        assert!(matches!(error, ResendError::Config(_)) && !retriable(&error));
        assert_no_key(&error);
        assert!(check_rate_limit_var(None).is_ok());
        assert!(check_rate_limit_var(Some("100")).is_ok());
        for bad in ["0", "-1", "lots"] {
            assert!(check_rate_limit_var(Some(bad)).is_err(), "{bad}");
        }
    }
}
