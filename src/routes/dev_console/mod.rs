//! The local dev console, `GET /dev`: the state of a purchase as the database has it (orders,
//! packs, seats, sessions, access, emails, the webhook inbox and what waits), and forms that
//! act as the demo users through our own API, so clicking through it runs the real code
//! paths. Mounted only for local development ([`enabled`]), never in cloud mode.

mod actions;
mod view;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::models::console::ConsoleFacts;
use crate::routes::extract::Query;

pub use view::{Choice, ConsolePage, amount};

/// Whether this app serves the console: in a dev process (`huckleberry dev` made a sandbox) or
/// with Inngest in dev mode (the local dev server, which signs nothing), so a deployment in
/// cloud mode never has it.
pub fn enabled(app: &AppState) -> bool {
    app.sandbox.is_some() || matches!(app.config.inngest.mode(), inngest_sdk::config::Mode::Dev)
}

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dev", get(console))
        .route("/dev/buy", post(actions::buy))
        .route("/dev/sessions", post(actions::book))
        .route("/dev/sessions/{id}/complete", post(actions::complete))
}

/// What the last action left to say (`/dev?notice=...`).
#[derive(Debug, Deserialize)]
pub struct ConsoleQuery {
    notice: Option<String>,
}

/// `GET /dev`.
pub async fn console(
    State(app): State<AppState>,
    Query(query): Query<ConsoleQuery>,
) -> AppResult<Response> {
    let facts = ConsoleFacts::read(&mut *app.conn().await?).await?;
    let dashboard = app.config.inngest.api_base_url().to_string();
    let outbox = app.sandbox.as_ref().is_some_and(|s| s.resend.is_some());
    let page = ConsolePage::new(
        &facts,
        Utc::now(),
        dashboard,
        buyers(&app),
        outbox,
        query.notice,
    );
    let html = page
        .render()
        .map_err(|e| AppError::Internal(format!("the dev console failed to render: {e}")))?;
    Ok(Html(html).into_response())
}

/// The demo buyers the forms can act as: the Clerk stand-in's, when it is on.
fn buyers(app: &AppState) -> Vec<Choice> {
    let Some(sandbox) = &app.sandbox else {
        return Vec::new();
    };
    if sandbox.clerk.is_none() {
        return Vec::new();
    }
    crate::sandbox::DEMO_BUYERS
        .iter()
        .map(|person| Choice {
            value: person.clerk_id.to_owned(),
            label: format!("{} ({})", person.name, person.email),
        })
        .collect()
}

/// A session token of `clerk_id` that our `ClerkUser` extractor accepts: the Clerk
/// stand-in's, when it is on.
fn session_token(app: &AppState, clerk_id: &str) -> Option<String> {
    app.sandbox.as_ref()?.session_token(clerk_id)
}
