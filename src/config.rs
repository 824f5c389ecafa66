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
    /// The HTTP clients of the providers could not be built: TLS could not be set up (are the
    /// system's root certificates installed?).
    #[error("no HTTP client could be built: {0}")]
    HttpClient(#[source] reqwest::Error),
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

/// The Discord bot that manages guild membership and the mentee role.
#[derive(Debug, Clone)]
pub struct DiscordBot {
    /// The bot token.
    pub token: Secret,
    /// The academy's guild.
    pub guild_id: String,
    /// The role mentees get.
    pub mentee_role_id: String,
}

/// Discord OAuth settings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// API base, e.g. `https://discord.com/api/v10`.
    pub api_base: String,
    /// The authorize page.
    pub authorize_url: String,
    /// The bot, when configured.
    pub bot: Option<DiscordBot>,
}

/// Resend settings.
#[derive(Debug, Clone)]
pub struct ResendConfig {
    /// `re_...`.
    pub api_key: Secret,
    /// API base.
    pub api_base: String,
    /// The sender, e.g. `Huckleberry Art Academy <hello@example.com>`.
    pub from: String,
}

/// How the relay ([`crate::relay`]) paces its passes over the webhook inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// The time between passes when nothing wakes the relay.
    pub interval: Duration,
    /// How long a claimed entry is left to the relay that claimed it before another may take
    /// it (the claimer crashed). A pass stops delivering before its claim runs out.
    pub lease: Duration,
    /// The longest wait before delivering an entry again after a failure (the waits double
    /// from 2 seconds up to this).
    pub max_backoff: Duration,
    /// Whether `serve` runs the relay in the background (`RELAY_BACKGROUND`). Off on hosts
    /// that keep no process between requests: the `relay-inbox` cron function does the same.
    pub background: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            max_backoff: Duration::from_secs(600),
            background: true,
        }
    }
}

impl RelayConfig {
    /// Reads `RELAY_INTERVAL_MS`, `RELAY_LEASE_MS`, `RELAY_MAX_BACKOFF_MS` and
    /// `RELAY_BACKGROUND` through `get`.
    pub fn from_vars(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            interval: millis(get, "RELAY_INTERVAL_MS", defaults.interval)?,
            lease: millis(get, "RELAY_LEASE_MS", defaults.lease)?,
            max_backoff: millis(get, "RELAY_MAX_BACKOFF_MS", defaults.max_backoff)?,
            background: match get("RELAY_BACKGROUND").as_deref().map(str::trim) {
                None | Some("true" | "1") => true,
                Some("false" | "0") => false,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "RELAY_BACKGROUND",
                        reason: format!("{other:?} is neither true nor false"),
                    });
                }
            },
        })
    }
}

/// A number of milliseconds up to a day (longer is a typo, and would overflow the times
/// computed from it), or `default` when unset.
fn millis(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match get(name) {
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) if (1..=86_400_000).contains(&ms) => Ok(Duration::from_millis(ms)),
            _ => Err(ConfigError::Invalid {
                name,
                reason: format!("{v:?} is not a number of milliseconds from 1 to a day"),
            }),
        },
        None => Ok(default),
    }
}

/// The settings read after the first round of start-up checks (timeouts, the pool, the
/// relay, CORS): each can be checked on its own with [`check_late_setting`], so every bad one
/// is listed at once.
pub const LATE_SETTINGS: [&str; 11] = [
    "PROVIDER_TIMEOUT_MS",
    "RELAY_INTERVAL_MS",
    "RELAY_LEASE_MS",
    "RELAY_MAX_BACKOFF_MS",
    "RELAY_BACKGROUND",
    "DATABASE_POOL_SIZE",
    "DATABASE_POOL_TIMEOUT_SECS",
    "DATABASE_CONNECT_TIMEOUT_SECS",
    "DATABASE_STATEMENT_TIMEOUT_SECS",
    "CORS_ALLOWED_ORIGINS",
    "SHUTDOWN_GRACE_SECS",
];

/// Checks the late setting `name` alone, as the full configuration will read it.
pub fn check_late_setting(
    name: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let only = |n: &str| if n == name { get(n) } else { None };
    millis(&only, "PROVIDER_TIMEOUT_MS", DEFAULT_PROVIDER_TIMEOUT)?;
    RelayConfig::from_vars(&only)?;
    OperationsConfig::from_vars(&only)?;
    Ok(())
}

/// The bound on every call to Stripe, PayPal, Clerk, Resend and Discord unless
/// `PROVIDER_TIMEOUT_MS` says otherwise: a provider that hangs is then an outage to retry.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Discord, when configured.
    pub discord: Option<DiscordConfig>,
    /// Resend, when configured.
    pub resend: Option<ResendConfig>,
    /// The secret that signs email links and OAuth states.
    pub link_secret: Option<Secret>,
    /// Svix secret of the direct Clerk webhook route.
    pub clerk_webhook_secret: Option<Secret>,
    /// Svix secret of the direct Resend webhook route.
    pub resend_webhook_secret: Option<Secret>,
    /// How long one request to a provider (Stripe, PayPal, Clerk, Resend, Discord) may take,
    /// connection included.
    pub provider_timeout: Duration,
    /// The relay's pacing.
    pub relay: RelayConfig,
    /// Inngest.
    pub inngest: inngest_sdk::Config,
    /// Pool, CORS and shutdown settings.
    pub operations: OperationsConfig,
    /// Keys of the Inngest encryption middleware (`INNGEST_ENCRYPTION_KEY`, comma-separated:
    /// the first encrypts, any decrypts); none turns encryption off.
    pub inngest_encryption_key: Option<Secret>,
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
        let discord = match get("DISCORD_CLIENT_ID") {
            Some(client_id) => {
                let bot = match get("DISCORD_BOT_TOKEN") {
                    Some(token) => Some(DiscordBot {
                        token: Secret::new(token),
                        guild_id: required("DISCORD_GUILD_ID")?,
                        mentee_role_id: required("DISCORD_MENTEE_ROLE_ID")?,
                    }),
                    None => None,
                };
                Some(DiscordConfig {
                    client_id,
                    client_secret: Secret::new(required("DISCORD_CLIENT_SECRET")?),
                    api_base: get("DISCORD_API_BASE")
                        .unwrap_or_else(|| "https://discord.com/api/v10".into()),
                    authorize_url: get("DISCORD_AUTHORIZE_URL")
                        .unwrap_or_else(|| "https://discord.com/oauth2/authorize".into()),
                    bot,
                })
            }
            None => None,
        };
        let resend = get("RESEND_API_KEY").map(|key| ResendConfig {
            api_key: Secret::new(key),
            api_base: get("RESEND_BASE_URL").unwrap_or_else(|| "https://api.resend.com".into()),
            from: get("EMAIL_FROM")
                .unwrap_or_else(|| "Huckleberry Art Academy <hello@huckleberry.art>".into()),
        });
        let link_secret = match get("LINK_SIGNING_SECRET") {
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::Invalid {
                    name: "LINK_SIGNING_SECRET",
                    reason: "must be at least 32 characters".into(),
                });
            }
            other => other.map(Secret::new),
        };
        if discord.is_some() && link_secret.is_none() {
            return Err(ConfigError::Missing("LINK_SIGNING_SECRET"));
        }
        let provider_timeout = millis(&get, "PROVIDER_TIMEOUT_MS", DEFAULT_PROVIDER_TIMEOUT)?;
        let relay = RelayConfig::from_vars(&get)?;
        let app_id = get("INNGEST_APP_ID").unwrap_or_else(|| DEFAULT_APP_ID.to_owned());
        Ok(Self {
            database_url: Secret::new(required("DATABASE_URL")?),
            port,
            public_url: get("PUBLIC_URL").unwrap_or_else(|| format!("http://localhost:{port}")),
            checkout_hold: Duration::from_secs(hold_minutes * 60),
            stripe,
            paypal,
            clerk,
            discord,
            resend,
            link_secret,
            clerk_webhook_secret: get("CLERK_WEBHOOK_SECRET").map(Secret::new),
            resend_webhook_secret: get("RESEND_WEBHOOK_SECRET").map(Secret::new),
            provider_timeout,
            relay,
            inngest: inngest_sdk::Config::from_vars(app_id, |name| var(name))?,
            operations: OperationsConfig::from_vars(&get)?,
            inngest_encryption_key: get("INNGEST_ENCRYPTION_KEY").map(Secret::new),
        })
    }
}

/// How the service is operated: database pool and timeouts, browser origins, shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationsConfig {
    /// Pool size and database timeouts.
    pub database: crate::db::PoolSettings,
    /// Browser origins (`https://dashboard.example.com`) allowed to call the API from their
    /// pages (`CORS_ALLOWED_ORIGINS`, comma-separated); none by default.
    pub cors_allowed_origins: Vec<String>,
    /// How long a shutdown waits for requests in flight (`SHUTDOWN_GRACE_SECS`, 30).
    pub shutdown_grace: Duration,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            database: crate::db::PoolSettings::default(),
            cors_allowed_origins: Vec::new(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl OperationsConfig {
    /// Reads the settings through `get` (which already treats blank values as unset).
    pub fn from_vars(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let seconds = |name: &'static str, default: Duration| match get(name) {
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: format!("{s:?} is not a positive number of seconds"),
                }),
            },
            None => Ok(default),
        };
        let pool_size = match get("DATABASE_POOL_SIZE") {
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "DATABASE_POOL_SIZE",
                        reason: format!("{s:?} is not a positive number of connections"),
                    });
                }
            },
            None => defaults.database.max_size,
        };
        let database = crate::db::PoolSettings {
            max_size: pool_size,
            wait_timeout: seconds("DATABASE_POOL_TIMEOUT_SECS", defaults.database.wait_timeout)?,
            connect_timeout: seconds(
                "DATABASE_CONNECT_TIMEOUT_SECS",
                defaults.database.connect_timeout,
            )?,
            statement_timeout: seconds(
                "DATABASE_STATEMENT_TIMEOUT_SECS",
                defaults.database.statement_timeout,
            )?,
            ca_cert: get("DATABASE_CA_CERT").map(std::path::PathBuf::from),
        };
        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(parse_origin)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            database,
            cors_allowed_origins,
            shutdown_grace: seconds("SHUTDOWN_GRACE_SECS", defaults.shutdown_grace)?,
        })
    }
}

/// `https://host[:port]` exactly as a browser sends it in `Origin`; a path, a wildcard or a
/// typo is refused at start rather than silently never matching.
fn parse_origin(origin: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "CORS_ALLOWED_ORIGINS",
        reason,
    };
    let url = url::Url::parse(origin).map_err(|e| invalid(format!("{origin:?}: {e}")))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        return Err(invalid(format!(
            "{origin:?} is not an origin like https://dashboard.example.com"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod operations_tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<OperationsConfig, ConfigError> {
        OperationsConfig::from_vars(&|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults_and_no_origin() {
        let config = read(&[]).expect("defaults");
        assert_eq!(config, OperationsConfig::default());
        assert_eq!(config.database.max_size, 16);
        assert!(config.cors_allowed_origins.is_empty());
    }

    #[test]
    fn pool_timeouts_and_origins_are_read() {
        let config = read(&[
            ("DATABASE_POOL_SIZE", "5"),
            ("DATABASE_POOL_TIMEOUT_SECS", "2"),
            ("DATABASE_CONNECT_TIMEOUT_SECS", "3"),
            ("DATABASE_STATEMENT_TIMEOUT_SECS", "4"),
            ("SHUTDOWN_GRACE_SECS", "7"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://dash.example.com, http://localhost:5173/",
            ),
        ])
        .expect("valid");
        assert_eq!(config.database.max_size, 5);
        assert_eq!(config.database.wait_timeout, Duration::from_secs(2));
        assert_eq!(config.database.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.database.statement_timeout, Duration::from_secs(4));
        assert_eq!(config.shutdown_grace, Duration::from_secs(7));
        assert_eq!(
            config.cors_allowed_origins,
            ["https://dash.example.com", "http://localhost:5173"]
        );
    }

    #[test]
    fn a_wildcard_a_path_or_a_zero_is_refused() {
        for vars in [
            [("CORS_ALLOWED_ORIGINS", "*")],
            [("CORS_ALLOWED_ORIGINS", "https://dash.example.com/app")],
            [("CORS_ALLOWED_ORIGINS", "dash.example.com")],
            [("DATABASE_POOL_SIZE", "0")],
            [("SHUTDOWN_GRACE_SECS", "soon")],
        ] {
            assert!(read(&vars).is_err(), "{vars:?} accepted");
        }
    }
}
