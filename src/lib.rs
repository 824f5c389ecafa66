//! Huckleberry: the academy's mentorship business on Inngest.
//!
//! Layers, each using only the ones above it in this list:
//! 1. Foundations: `config`, `db`, `schema` and `models` (tables and their queries), `money`,
//!    `events` (the Inngest events' names and payloads), `email` (templates), `auth` (signed
//!    links), `telemetry`.
//! 2. `integrations`: clients of Stripe, PayPal, Clerk, Resend, Discord and Svix.
//! 3. The domain: `payments`, `access`, `notifications`, `onboarding`, `sessions`, `seats`,
//!    `expiry`, `contacts`, `waitlist`. Each takes narrow inputs (a connection or the pool, the
//!    clients it calls), never the app state, and each error type says once, through
//!    `inngest_sdk::Classify`, whether Inngest should retry it.
//! 4. `app` (the shared state: configuration, pool, clients) and `relay` (webhook inbox to
//!    Inngest).
//! 5. The edges: `routes`, `error` and `layers` (HTTP: request id, request span, CORS), and
//!    `functions` (the Inngest workflows, one per file, reading top to bottom), both mounted
//!    by [`build_router`].
//!    `sandbox` (local stand-ins of the providers, `huckleberry dev` only) is an edge too.
//! 6. The process: `cli` (the commands), `startup` (configuration checked at once, before
//!    anything starts) and `demo` (demo rows for local development).

pub mod access;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod db;
pub mod demo;
pub mod email;
pub mod error;
pub mod events;
pub mod expiry;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod integrations;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod layers;
pub mod models;
pub mod money;
pub mod notifications;
pub mod onboarding;
pub mod payments;
pub mod relay;
pub mod routes;
pub mod sandbox;
pub mod schema;
pub mod seats;
pub mod server;
pub mod sessions;
pub mod startup;
pub mod telemetry;
pub mod waitlist;

#[path = "../functions/mod.rs"]
pub mod functions;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use inngest_sdk::ServeHandler;
use inngest_sdk::function::FunctionConfigError;

use crate::app::AppState;

/// The Inngest serve handler with every function of the app.
pub fn inngest_handler(app: &AppState) -> Result<ServeHandler<AppState>, FunctionConfigError> {
    ServeHandler::new(app.inngest.clone(), app.clone(), functions::all())
}

/// The whole HTTP surface; used by `main` and by the tests.
pub fn build_router(app: AppState) -> Result<Router, FunctionConfigError> {
    let inngest = inngest_handler(&app)?;
    let router = Router::new()
        // The dashboard API (checkout included) and its OpenAPI document.
        .merge(routes::api::router())
        .route(
            "/api/webhooks/stripe",
            post(routes::webhooks::stripe::stripe_webhook),
        )
        .route(
            "/api/webhooks/paypal",
            post(routes::webhooks::paypal::paypal_webhook),
        )
        .route(
            "/api/checkout/paypal/return",
            get(routes::checkout::paypal_return),
        )
        .route(
            "/api/webhooks/clerk",
            post(routes::webhooks::svix_forward::clerk_webhook),
        )
        .route(
            "/api/webhooks/resend",
            post(routes::webhooks::svix_forward::resend_webhook),
        )
        .route("/api/auth/discord", get(routes::auth::start))
        .route("/api/auth/discord/callback", get(routes::auth::callback))
        .route("/healthz", get(routes::operations::healthz))
        .route("/readyz", get(routes::operations::readyz))
        // The name the first deployments probed.
        .route("/health", get(routes::operations::readyz))
        // Where payment providers send buyers back (see routes::checkout).
        .route("/checkout/success", get(routes::pages::success))
        .route("/checkout/cancel", get(routes::pages::cancel))
        .route("/checkout/error", get(routes::pages::error))
        // Where the Discord connection sends the buyer back (see routes::auth).
        .route(
            "/auth/discord/success",
            get(routes::pages::discord_connected),
        )
        .route("/auth/error", get(routes::pages::discord_error))
        // Local development only: the console reads every table and acts as demo users.
        .merge(if routes::dev_console::enabled(&app) {
            routes::dev_console::router()
        } else {
            Router::new()
        })
        // Applies to the routes above only: the Inngest route, added after, keeps the SDK's
        // own answers, which Inngest's protocol (not our envelope) defines.
        .method_not_allowed_fallback(routes::method_not_allowed);
    // Only a dev process has a sandbox (`serve` never makes one).
    let router = match &app.sandbox {
        Some(sandbox) => router.nest_service("/sandbox", sandbox::router(sandbox.clone())),
        None => router,
    };
    // The deadline covers the routes so far, not the Inngest route added after it: the SDK
    // bounds the bodies it reads itself (a turn, a byte budget, and its own 408).
    let router = with_body_timeout(router, BODY_READ_TIMEOUT)
        .route("/api/inngest", inngest_sdk::axum::serve(inngest))
        .fallback(routes::not_found)
        .with_state(app.clone());
    let router = layers::with_cors(router, &app.config.operations.cors_allowed_origins);
    Ok(layers::with_request_tracing(router))
}

/// How long any request body may take to arrive. Webhooks and Inngest's calls send theirs at
/// once; a client that trickles one would otherwise hold its connection and buffer forever.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `router` with every request body cut off `timeout` after its reading starts, however it
/// trickles in: the read fails and the request is refused (see [`layers::with_body_deadline`]).
pub fn with_body_timeout<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    timeout: Duration,
) -> Router<S> {
    layers::with_body_deadline(router, timeout)
}

/// The layering above, checked on the source so a change that breaks it fails a test.
#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("a readable source folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        files
    }

    /// Files under `src/` (relative names) whose text contains any of `needles`.
    fn offenders(under: &str, needles: &[&str]) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        rust_files(&root.join(under))
            .into_iter()
            .filter(|path| {
                let text = std::fs::read_to_string(path).expect("a readable file");
                needles.iter().any(|n| text.contains(n))
            })
            .filter_map(|path| {
                let name = path.strip_prefix(&root).ok()?.display().to_string();
                (name != "lib.rs").then_some(name)
            })
            .collect()
    }

    #[test]
    fn nothing_under_src_imports_the_workflows() {
        assert_eq!(
            offenders("", &["crate::functions", "super::functions"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_domain_takes_narrow_inputs_not_the_app_or_http() {
        let upper = [
            "crate::app",
            "crate::routes",
            "crate::error",
            "crate::relay",
        ];
        for domain in [
            "payments",
            "access.rs",
            "notifications.rs",
            "onboarding.rs",
            "sessions.rs",
            "seats.rs",
            "expiry.rs",
            "contacts.rs",
            "waitlist.rs",
            "integrations",
            "models",
        ] {
            let found = if domain.ends_with(".rs") {
                offenders("", &upper)
                    .into_iter()
                    .filter(|f| f == domain)
                    .collect()
            } else {
                offenders(domain, &upper)
            };
            assert_eq!(
                found,
                Vec::<String>::new(),
                "{domain} imports an upper layer"
            );
        }
    }
}
