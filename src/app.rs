//! Application state: configuration, the database pool and the provider clients, shared by
//! routes and Inngest functions.

use std::ops::Deref;
use std::sync::Arc;

use inngest_sdk::middleware::encryption::EncryptionMiddleware;
use tokio::sync::Notify;

use crate::auth::links::LinkSigner;
use crate::config::{AppConfig, ConfigError};
use crate::db::DbPool;
use crate::integrations::clerk::ClerkApi;
use crate::integrations::discord::DiscordApi;
use crate::integrations::http_client;
use crate::integrations::paypal::PaypalApi;
use crate::integrations::resend::ResendApi;
use crate::integrations::stripe::StripeApi;
use crate::integrations::svix::SvixVerifier;

/// Everything a request or a function needs.
pub struct App {
    pub config: AppConfig,
    pub db: DbPool,
    pub inngest: inngest_sdk::Client,
    pub stripe: Option<StripeApi>,
    pub paypal: Option<PaypalApi>,
    pub clerk: Option<ClerkApi>,
    pub discord: Option<DiscordApi>,
    pub resend: Option<ResendApi>,
    /// Signs email links and OAuth states.
    pub links: Option<LinkSigner>,
    /// Verifies the direct Clerk webhook route.
    pub clerk_webhooks: Option<SvixVerifier>,
    /// Verifies the direct Resend webhook route.
    pub resend_webhooks: Option<SvixVerifier>,
    /// Wakes the relay when a webhook was stored.
    pub relay_wake: Notify,
    /// The local stand-ins of the providers without keys (`huckleberry dev` only).
    pub sandbox: Option<Arc<crate::sandbox::Sandbox>>,
}

/// Cheap-to-clone handle on [`App`]; axum state and the Inngest functions' state.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// A database connection; a pool that cannot give one in time is a retriable error.
    pub async fn conn(&self) -> Result<crate::db::DbConn, crate::db::DbError> {
        crate::db::conn(&self.db).await
    }

    /// Dashboard access over this app's database, Clerk and Discord.
    pub fn access(&self) -> crate::access::Access<'_> {
        crate::access::Access::new(&self.db, self.clerk.as_ref(), self.discord.as_ref())
    }

    /// Email over this app's database and Resend.
    pub fn mailer(&self) -> crate::notifications::Mailer<'_> {
        crate::notifications::Mailer::new(
            &self.db,
            self.resend.as_ref(),
            self.config.provider_timeout,
        )
    }
}

impl AppState {
    /// Builds the state from configuration and a pool.
    pub fn new(config: AppConfig, db: DbPool) -> Result<Self, ConfigError> {
        Self::with_sandbox(config, db, None)
    }

    /// The state of a dev process whose `config` [`crate::sandbox::stand_in`] pointed at
    /// `sandbox`.
    pub fn with_sandbox(
        config: AppConfig,
        db: DbPool,
        sandbox: Option<Arc<crate::sandbox::Sandbox>>,
    ) -> Result<Self, ConfigError> {
        let timeout = config.provider_timeout;
        let http = http_client(timeout).map_err(ConfigError::HttpClient)?;
        let inngest = inngest_client(&config, http.clone())?;
        let stripe = config.stripe.as_ref().map(|c| StripeApi::new(c, timeout));
        let paypal = config
            .paypal
            .as_ref()
            .map(|c| PaypalApi::new(c, http.clone()));
        let clerk = match &config.clerk {
            Some(c) => Some(ClerkApi::new(c, timeout).map_err(ConfigError::HttpClient)?),
            None => None,
        };
        let discord = config
            .discord
            .as_ref()
            .map(|c| DiscordApi::new(c, http.clone()));
        let resend = match &config.resend {
            Some(r) => Some(
                ResendApi::new(r.api_key.expose(), &r.api_base, &r.from, http).map_err(|e| {
                    ConfigError::Invalid {
                        name: "RESEND_*",
                        reason: e.to_string(),
                    }
                })?,
            ),
            None => None,
        };
        let links = config.link_secret.clone().map(LinkSigner::new);
        let clerk_webhooks = config.clerk_webhook_secret.clone().map(SvixVerifier::new);
        let resend_webhooks = config.resend_webhook_secret.clone().map(SvixVerifier::new);
        Ok(Self(Arc::new(App {
            config,
            db,
            inngest,
            stripe,
            paypal,
            clerk,
            discord,
            resend,
            links,
            clerk_webhooks,
            resend_webhooks,
            relay_wake: Notify::new(),
            sandbox,
        })))
    }
}

/// The Inngest client: a tracing span around every run and step, and, with
/// `INNGEST_ENCRYPTION_KEY`, step results, outputs and the `encrypted` field of events
/// encrypted end to end (readable by the official SDKs' encryption middleware).
fn inngest_client(
    config: &AppConfig,
    http: reqwest::Client,
) -> Result<inngest_sdk::Client, ConfigError> {
    let client = inngest_sdk::Client::with_http_client(config.inngest.clone(), http)
        .with_middleware(inngest_sdk::middleware::TracingMiddleware::new());
    let Some(keys) = &config.inngest_encryption_key else {
        return Ok(client);
    };
    let encryption =
        EncryptionMiddleware::from_list(keys.expose()).map_err(|e| ConfigError::Invalid {
            name: "INNGEST_ENCRYPTION_KEY",
            reason: e.to_string(),
        })?;
    Ok(client.with_middleware(encryption))
}
