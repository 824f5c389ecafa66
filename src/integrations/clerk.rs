//! Clerk through clerk-rs: verifying session tokens against the instance's JWKS (fetched from
//! the configurable API base and cached).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use clerk_rs::ClerkConfiguration;
use clerk_rs::clerk::Clerk;
use clerk_rs::validators::authorizer::{ClerkError, validate_jwt_with_key};
use clerk_rs::validators::jwks::{JwksProvider, JwksProviderError, MemoryCacheJwksProvider};

use crate::config::ClerkConfig;

/// Why a session token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ClerkAuthError {
    /// Missing, malformed, expired or forged.
    #[error("invalid session token")]
    Invalid,
    /// Clerk's keys could not be fetched.
    #[error("Clerk unavailable: {0}")]
    Unavailable(String),
}

/// The Clerk backend client.
pub struct ClerkApi {
    client: Clerk,
    jwks: Arc<MemoryCacheJwksProvider>,
}

impl ClerkApi {
    /// A client for `config`, every request (API calls and the JWKS) bounded by `timeout`.
    ///
    /// The configuration is written out rather than taken from `ClerkConfiguration::new`,
    /// which builds an HTTP client of its own (without a timeout) only to be replaced: each
    /// client built loads the system's root certificates.
    pub fn new(config: &ClerkConfig, timeout: Duration) -> Result<Self, reqwest::Error> {
        let configuration = ClerkConfiguration {
            base_path: config.api_base.trim_end_matches('/').to_owned(),
            user_agent: Some(clerk_rs::clerk::USER_AGENT.to_owned()),
            client: bounded_http_client(timeout)?,
            basic_auth: None,
            oauth_access_token: None,
            bearer_access_token: Some(config.secret_key.expose().to_owned()),
            api_key: None,
            api_version: Some(clerk_rs::clerk::CLERK_API_VERSION.to_owned()),
        };
        let client = Clerk::new(configuration);
        Ok(Self {
            jwks: Arc::new(MemoryCacheJwksProvider::new(client.clone())),
            client,
        })
    }

    /// The backend client, for API calls.
    pub fn client(&self) -> &Clerk {
        &self.client
    }

    /// Verifies a session token and returns the Clerk user id (`sub`). The key is fetched
    /// here rather than inside clerk-rs' `validate_jwt`, which reports a JWKS it could not
    /// fetch as an invalid token: an outage must not sign users out.
    pub async fn verify_session(&self, token: &str) -> Result<String, ClerkAuthError> {
        let kid = key_id(token).ok_or_else(|| refused("no key id in the token header"))?;
        let key = self.jwks.get_key(&kid).await.map_err(|e| match e {
            JwksProviderError::UnknownKey => refused("unknown key id"),
            JwksProviderError::JwksApi => {
                ClerkAuthError::Unavailable("Clerk's signing keys could not be fetched".into())
            }
        })?;
        match validate_jwt_with_key(token, &key) {
            Ok(jwt) => Ok(jwt.sub),
            Err(ClerkError::Unauthorized(reason)) => Err(refused(&reason)),
            Err(ClerkError::InternalServerError(reason)) => {
                Err(ClerkAuthError::Unavailable(reason))
            }
        }
    }
}

/// A client like clerk-rs' own (its user agent and API version headers) with the providers'
/// timeouts.
fn bounded_http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(clerk_rs::clerk::USER_AGENT),
    );
    headers.insert(
        "Clerk-API-Version",
        HeaderValue::from_static(clerk_rs::clerk::CLERK_API_VERSION),
    );
    super::client_builder(timeout)
        .default_headers(headers)
        .build()
}

/// The `kid` of a JWT's header, if the header reads as one.
fn key_id(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        kid: String,
    }
    let header = token.split('.').next()?;
    let header = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<Header>(&header)
        .ok()
        .map(|h| h.kid)
}

fn refused(reason: &str) -> ClerkAuthError {
    tracing::info!(%reason, "session token refused");
    ClerkAuthError::Invalid
}

/// A Clerk user, reduced to what we use.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClerkUser {
    pub id: String,
    /// The primary address, else the first one.
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A Clerk API failure.
#[derive(Debug, thiserror::Error)]
pub enum ClerkApiError {
    /// No such user.
    #[error("Clerk user {0} not found")]
    NotFound(String),
    /// Clerk answered with another error status.
    #[error("Clerk answered {0}")]
    Status(super::ErrorAnswer),
    /// Clerk could not be reached, timed out, or sent an answer we cannot read.
    #[error("Clerk unavailable: {0}")]
    Unavailable(String),
}

/// A missing user stays missing; other answers go by their status; anything else is an
/// outage to ride out.
impl inngest_sdk::Classify for ClerkApiError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            ClerkApiError::NotFound(_) => inngest_sdk::Retry::Never,
            ClerkApiError::Status(answer) => answer.retry(),
            ClerkApiError::Unavailable(_) => inngest_sdk::Retry::Default,
        }
    }
}

fn api_error<T>(user_id: &str, err: clerk_rs::apis::Error<T>) -> ClerkApiError {
    match err {
        clerk_rs::apis::Error::ResponseError(r) if r.status.as_u16() == 404 => {
            ClerkApiError::NotFound(user_id.to_owned())
        }
        // clerk-rs keeps the status and body of an error answer, not its headers.
        clerk_rs::apis::Error::ResponseError(r) => ClerkApiError::Status(super::ErrorAnswer {
            status: r.status.as_u16(),
            body: r.content.chars().take(500).collect(),
            retry_after: None,
        }),
        other => ClerkApiError::Unavailable(other.to_string()),
    }
}

impl ClerkApi {
    /// Fetches a user.
    pub async fn get_user(&self, user_id: &str) -> Result<ClerkUser, ClerkApiError> {
        let user = clerk_rs::apis::users_api::get_user(&self.client.config, user_id)
            .await
            .map_err(|e| api_error(user_id, e))?;
        let email = user
            .email_addresses
            .iter()
            .find(|e| e.id.is_some() && e.id == user.primary_email_address_id)
            .or_else(|| user.email_addresses.first())
            .map(|e| e.email_address.clone());
        Ok(ClerkUser {
            id: user.id.clone(),
            email,
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
        })
    }

    /// Replaces the `dashboard` key of the user's public metadata (Clerk merges top-level keys,
    /// so other keys are kept). Idempotent.
    pub async fn set_dashboard_metadata(
        &self,
        user_id: &str,
        dashboard: serde_json::Value,
    ) -> Result<(), ClerkApiError> {
        let request = clerk_rs::models::UpdateUserMetadataRequest {
            public_metadata: Some(std::collections::HashMap::from([(
                "dashboard".to_owned(),
                dashboard,
            )])),
            ..Default::default()
        };
        clerk_rs::apis::users_api::update_user_metadata(&self.client.config, user_id, Some(request))
            .await
            .map(drop)
            .map_err(|e| api_error(user_id, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// The client is configured by hand (not by `ClerkConfiguration::new`): it must still send
    /// what clerk-rs' own would, to the configured base.
    #[tokio::test]
    async fn requests_carry_the_key_the_api_version_and_the_user_agent() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/users/user_1"))
            .and(header("authorization", "Bearer sk_test_clerk"))
            .and(header(
                "clerk-api-version",
                clerk_rs::clerk::CLERK_API_VERSION,
            ))
            .and(header("user-agent", clerk_rs::clerk::USER_AGENT))
            .respond_with(ResponseTemplate::new(404).set_body_string("{}"))
            .expect(1)
            .mount(&server)
            .await;
        let api = ClerkApi::new(
            &ClerkConfig {
                secret_key: Secret::new("sk_test_clerk"),
                api_base: format!("{}/v1/", server.uri()),
            },
            Duration::from_secs(10),
        )
        .expect("a Clerk client");

        let error = api.get_user("user_1").await.expect_err("no such user");

        assert!(
            matches!(error, ClerkApiError::NotFound(ref id) if id == "user_1"),
            "{error:?}"
        );
    }
}
