//! Clerk through clerk-rs: verifying session tokens against the instance's JWKS (fetched from
//! the configurable API base and cached).

use std::sync::Arc;

use clerk_rs::ClerkConfiguration;
use clerk_rs::clerk::Clerk;
use clerk_rs::validators::authorizer::{ClerkError, validate_jwt};
use clerk_rs::validators::jwks::MemoryCacheJwksProvider;

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
    /// A client for `config`.
    pub fn new(config: &ClerkConfig) -> Self {
        let configuration = ClerkConfiguration::new(config.secret_key.expose())
            .with_base_path(config.api_base.trim_end_matches('/'));
        let client = Clerk::new(configuration);
        Self {
            jwks: Arc::new(MemoryCacheJwksProvider::new(client.clone())),
            client,
        }
    }

    /// The backend client, for API calls.
    pub fn client(&self) -> &Clerk {
        &self.client
    }

    /// Verifies a session token and returns the Clerk user id (`sub`).
    pub async fn verify_session(&self, token: &str) -> Result<String, ClerkAuthError> {
        match validate_jwt(token, self.jwks.clone()).await {
            Ok(jwt) => Ok(jwt.sub),
            Err(ClerkError::Unauthorized(reason)) => {
                tracing::info!(%reason, "session token refused");
                Err(ClerkAuthError::Invalid)
            }
            Err(ClerkError::InternalServerError(reason)) => {
                Err(ClerkAuthError::Unavailable(reason))
            }
        }
    }
}
