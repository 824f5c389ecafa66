//! Configuration from the environment. Secrets are wrapped so no `Debug` or log shows them.

use std::fmt;
use std::time::Duration;

/// A secret value; `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A missing or malformed setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset.
    #[error("{0} must be set")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The Inngest settings are invalid.
    #[error(transparent)]
    Inngest(#[from] inngest_sdk::config::ConfigError),
}

/// Stripe settings.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `sk_...`.
    pub secret_key: Secret,
    /// `whsec_...`, for `Stripe-Signature`.
    pub webhook_secret: Secret,
    /// The API origin (a local fake in tests).
    pub api_base: String,
}

/// PayPal settings.
#[derive(Debug, Clone)]
pub struct PaypalConfig {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// The webhook id PayPal signs notifications for.
    pub webhook_id: String,
    /// Sandbox or live origin.
    pub api_base: String,
}

/// Clerk settings.
#[derive(Debug, Clone)]
pub struct ClerkConfig {
    /// `sk_...`, for the backend API.
    pub secret_key: Secret,
    /// The backend API base, e.g. `https://api.clerk.com/v1`.
    pub api_base: String,
}

/// Everything the service reads from the environment.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// PostgreSQL URL.
    pub database_url: Secret,
    /// Listening port.
    pub port: u16,
    /// Where buyers are sent back to after checkout.
    pub public_url: String,
    /// How long a checkout holds a seat.
    pub checkout_hold: Duration,
    /// Stripe, when configured.
    pub stripe: Option<StripeConfig>,
    /// PayPal, when configured.
    pub paypal: Option<PaypalConfig>,
    /// Clerk, when configured.
    pub clerk: Option<ClerkConfig>,
    /// Inngest.
    pub inngest: inngest_sdk::Config,
}

/// The Inngest app id unless `INNGEST_APP_ID` says otherwise.
pub const DEFAULT_APP_ID: &str = "mentorships-platform";

impl AppConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var` (tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let port = match get("PORT") {
            Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                reason: format!("{p:?} is not a port"),
            })?,
            None => 3000,
        };
        let hold_minutes: u64 = match get("CHECKOUT_HOLD_MINUTES") {
            Some(m) => m.parse().map_err(|_| ConfigError::Invalid {
                name: "CHECKOUT_HOLD_MINUTES",
                reason: format!("{m:?} is not a number of minutes"),
            })?,
            None => 35,
        };
        // Stripe Checkout Sessions last at least 30 minutes; the hold must outlive the session.
        if hold_minutes < 31 {
            return Err(ConfigError::Invalid {
                name: "CHECKOUT_HOLD_MINUTES",
                reason: "must be at least 31 (a Stripe checkout lasts at least 30)".into(),
            });
        }
        let stripe = match get("STRIPE_SECRET_KEY") {
            Some(key) => Some(StripeConfig {
                secret_key: Secret::new(key),
                webhook_secret: Secret::new(required("STRIPE_WEBHOOK_SECRET")?),
                api_base: get("STRIPE_API_BASE")
                    .unwrap_or_else(|| "https://api.stripe.com/".into()),
            }),
            None => None,
        };
        let paypal = match get("PAYPAL_CLIENT_ID") {
            Some(client_id) => Some(PaypalConfig {
                client_id,
                client_secret: Secret::new(required("PAYPAL_CLIENT_SECRET")?),
                webhook_id: required("PAYPAL_WEBHOOK_ID")?,
                api_base: get("PAYPAL_API_BASE")
                    .unwrap_or_else(|| "https://api-m.sandbox.paypal.com".into()),
            }),
            None => None,
        };
        let clerk = get("CLERK_SECRET_KEY").map(|key| ClerkConfig {
            secret_key: Secret::new(key),
            api_base: get("CLERK_API_BASE").unwrap_or_else(|| "https://api.clerk.com/v1".into()),
        });
        let app_id = get("INNGEST_APP_ID").unwrap_or_else(|| DEFAULT_APP_ID.to_owned());
        Ok(Self {
            database_url: Secret::new(required("DATABASE_URL")?),
            port,
            public_url: get("PUBLIC_URL").unwrap_or_else(|| format!("http://localhost:{port}")),
            checkout_hold: Duration::from_secs(hold_minutes * 60),
            stripe,
            paypal,
            clerk,
            inngest: inngest_sdk::Config::from_vars(app_id, |name| var(name))?,
        })
    }
}
