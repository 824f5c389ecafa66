//! Local stand-ins for Stripe Checkout, Clerk, Resend and Discord, so `huckleberry dev` (and
//! `huckleberry demo`) run the real code paths with no account anywhere.
//!
//! Only the `dev` and `demo` commands create a [`Sandbox`], and only for the providers whose
//! keys are not configured: [`stand_in`] points those providers' settings at the routes under
//! `/sandbox/…` of this same process, so our own clients (async-stripe, clerk-rs, resend-rs,
//! reqwest) make their usual requests to it. `serve` never mounts these routes and refuses to
//! start when `SANDBOX` is set (`startup`). Each stand-in speaks the provider's wire format for
//! the calls we make, keeps its state in memory (a restart forgets it), and has a page marked
//! "Sandbox" where a person plays the provider's part: pay a checkout, read an email, authorize
//! Discord. Paying sends a correctly signed webhook to our own webhook route, as Stripe would.

mod clerk;
mod discord;
mod page;
mod resend;
mod stripe;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::config::{
    AppConfig, ClerkConfig, DiscordBot, DiscordConfig, ResendConfig, Secret, StripeConfig,
};

pub use clerk::{ClerkSandbox, DemoPerson};
pub use discord::DiscordSandbox;
pub use resend::{ResendSandbox, SentEmail};
pub use stripe::{SandboxCheckout, StripeSandbox};

/// The demo buyers the Clerk stand-in knows, beside the demo mentors of `seeds/demo.sql`.
pub const DEMO_BUYERS: &[DemoPerson] = clerk::DEMO_BUYERS;

/// The stand-ins of one process. Each is `Some` when it replaces a provider.
pub struct Sandbox {
    /// Stripe Checkout: sessions, the payment page, signed webhooks.
    pub stripe: Option<StripeSandbox>,
    /// Clerk: demo users, session tokens, user metadata.
    pub clerk: Option<ClerkSandbox>,
    /// Resend: the outbox.
    pub resend: Option<ResendSandbox>,
    /// Discord: OAuth, the guild and the mentee role.
    pub discord: Option<DiscordSandbox>,
}

impl Sandbox {
    /// The names of the providers stood in, for the start-up summary.
    pub fn stood_in(&self) -> Vec<&'static str> {
        [
            ("Stripe", self.stripe.is_some()),
            ("Clerk", self.clerk.is_some()),
            ("Resend", self.resend.is_some()),
            ("Discord", self.discord.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
    }

    /// A session token for a demo person (buyer or mentor) that the app's `ClerkUser`
    /// extractor accepts; `None` when Clerk is real (there is no way to sign in for someone).
    pub fn session_token(&self, clerk_id: &str) -> Option<String> {
        self.clerk.as_ref()?.session_token(clerk_id).ok()
    }
}

/// Where the sandbox is reached: `internal` by our own clients (loopback, the port we listen
/// on), `public` by a browser (`PUBLIC_URL`).
#[derive(Debug, Clone)]
pub struct Origins {
    /// e.g. `http://127.0.0.1:3000`.
    pub internal: String,
    /// e.g. `http://localhost:3000`.
    pub public: String,
}

impl Origins {
    /// The origins of a process listening on `port` with `config.public_url`.
    pub fn of(config: &AppConfig, port: u16) -> Self {
        Self {
            internal: format!("http://127.0.0.1:{port}"),
            public: config.public_url.trim_end_matches('/').to_owned(),
        }
    }
}

/// Points every provider without keys at a stand-in of this process, and returns the
/// stand-ins; `None` when every provider is real. PayPal has no stand-in: it stays off unless
/// configured.
pub fn stand_in(config: &mut AppConfig, origins: &Origins) -> Option<Arc<Sandbox>> {
    let internal = |path: &str| format!("{}/sandbox/{path}", origins.internal);
    let public = |path: &str| format!("{}/sandbox/{path}", origins.public);
    let timeout = config.provider_timeout;
    let stripe = config.stripe.is_none().then(|| {
        let sandbox = StripeSandbox::new(origins.clone(), timeout);
        config.stripe = Some(StripeConfig {
            secret_key: Secret::new(stripe::SECRET_KEY),
            webhook_secret: sandbox.webhook_secret().clone(),
            api_base: internal("stripe/"),
        });
        sandbox
    });
    let clerk = config.clerk.is_none().then(|| {
        config.clerk = Some(ClerkConfig {
            secret_key: Secret::new(clerk::SECRET_KEY),
            api_base: internal("clerk/v1"),
        });
        ClerkSandbox::new()
    });
    let resend = config.resend.is_none().then(|| {
        config.resend = Some(ResendConfig {
            api_key: Secret::new(resend::API_KEY),
            api_base: internal("resend"),
            from: "Huckleberry Art Academy <hello@sandbox.huckleberry.art>".into(),
        });
        ResendSandbox::default()
    });
    let discord = config.discord.is_none().then(|| {
        config.discord = Some(DiscordConfig {
            client_id: discord::CLIENT_ID.into(),
            client_secret: Secret::new(discord::CLIENT_SECRET),
            api_base: internal("discord/api"),
            authorize_url: public("discord/oauth2/authorize"),
            bot: Some(DiscordBot {
                token: Secret::new(discord::BOT_TOKEN),
                guild_id: discord::GUILD_ID.into(),
                mentee_role_id: discord::MENTEE_ROLE_ID.into(),
            }),
        });
        // Discord links are signed; a secret made now means links from an earlier run no
        // longer open, which is what a restart of the sandbox means anyway.
        if config.link_secret.is_none() {
            config.link_secret = Some(Secret::new(random_token(48)));
        }
        DiscordSandbox::default()
    });
    let sandbox = Sandbox {
        stripe,
        clerk,
        resend,
        discord,
    };
    (!sandbox.stood_in().is_empty()).then(|| Arc::new(sandbox))
}

/// The sandbox's routes, to nest under `/sandbox`.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    let mut router = Router::new().route("/", get(page::index));
    if sandbox.stripe.is_some() {
        router = router.merge(stripe::routes());
    }
    if sandbox.clerk.is_some() {
        router = router.merge(clerk::routes());
    }
    if sandbox.resend.is_some() {
        router = router.merge(resend::routes());
    }
    if sandbox.discord.is_some() {
        router = router.merge(discord::routes());
    }
    router.with_state(sandbox)
}

/// `len` random letters and digits.
fn random_token(len: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
