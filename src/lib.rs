//! Huckleberry: the academy's mentorship business on Inngest.
//!
//! Layers, each using only the ones above it in this list:
//! 1. Foundations: `config`, `db`, `schema` and `models` (tables and their queries), `money`,
//!    `events` (the Inngest events' names and payloads), `email` (templates), `auth` (signed
//!    links), `telemetry`.
//! 2. `integrations`: clients of Stripe, PayPal, Clerk, Resend, Discord and Svix.
//! 3. The domain: `payments`, `access`, `notifications`, `onboarding`. Each takes narrow inputs
//!    (a connection or the pool, the clients it calls), never the app state, and each error
//!    type says once, through `inngest_sdk::Classify`, whether Inngest should retry it.
//! 4. `app` (the shared state: configuration, pool, clients) and `relay` (webhook inbox to
//!    Inngest).
//! 5. The edges: `routes` and `error` (HTTP), and `functions` (the Inngest workflows, one per
//!    file, reading top to bottom), both mounted by [`build_router`].

pub mod access;
pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod email;
pub mod error;
pub mod events;
pub mod integrations;
pub mod models;
pub mod money;
pub mod notifications;
pub mod onboarding;
pub mod payments;
pub mod relay;
pub mod routes;
pub mod schema;
pub mod seats;
pub mod sessions;
pub mod telemetry;
pub mod waitlist;

#[path = "../functions/mod.rs"]
pub mod functions;

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
    Ok(Router::new()
        .route(
            "/api/webhooks/stripe",
            post(routes::webhooks::stripe::stripe_webhook),
        )
        .route(
            "/api/webhooks/paypal",
            post(routes::webhooks::paypal::paypal_webhook),
        )
        .route("/api/checkout", post(routes::checkout::checkout))
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
        .route(
            "/api/mentors/{id}/waitlist",
            post(routes::waitlist::join_waitlist),
        )
        .route("/api/auth/discord", get(routes::auth::start))
        .route("/api/auth/discord/callback", get(routes::auth::callback))
        .route("/health", get(routes::health))
        // Applies to the routes above only: the Inngest route, added after, keeps the SDK's
        // own answers, which Inngest's protocol (not our envelope) defines.
        .method_not_allowed_fallback(routes::method_not_allowed)
        .route("/api/inngest", inngest_sdk::axum::serve(inngest))
        .fallback(routes::not_found)
        .with_state(app))
}
