//! The sandbox's pages: one look (a yellow "Sandbox" banner on each), rendered with askama.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::Sandbox;

/// Renders a page, or a plain 500 if the template fails (it never should: they are checked
/// at compile time).
pub(super) fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a sandbox page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
        }
    }
}

/// A page that says one thing, with an optional link onwards.
#[derive(Template)]
#[template(path = "sandbox/message.html")]
pub(super) struct Message {
    pub heading: String,
    pub text: String,
    pub link: Option<(String, String)>,
}

impl Message {
    /// The page with `status`.
    pub fn respond(heading: &str, text: impl Into<String>, status: StatusCode) -> Response {
        let page = Message {
            heading: heading.to_owned(),
            text: text.into(),
            link: None,
        };
        render(&page, status)
    }
}

#[derive(Template)]
#[template(path = "sandbox/index.html")]
struct Index {
    links: Vec<(&'static str, &'static str, &'static str)>,
}

/// `GET /sandbox/`: what is stood in here.
pub(super) async fn index(State(sandbox): State<Arc<Sandbox>>) -> Response {
    let mut links = Vec::new();
    if sandbox.stripe.is_some() {
        links.push((
            "Stripe Checkout",
            "/sandbox/stripe/checkout",
            "the checkout sessions; each has a page to pay it",
        ));
    }
    if sandbox.clerk.is_some() {
        links.push((
            "Clerk sign-in",
            "/sandbox/clerk/sign-in",
            "the demo people and a session token for each, to call the API",
        ));
    }
    if sandbox.resend.is_some() {
        links.push(("Resend outbox", "/sandbox/outbox", "every email sent"));
    }
    if sandbox.discord.is_some() {
        links.push((
            "Discord",
            "/sandbox/discord",
            "who joined the guild and holds the mentee role",
        ));
    }
    render(&Index { links }, StatusCode::OK)
}

/// A stand-in's API refusing a call, answered in its provider's JSON error shape; `body`
/// `None` is a bare status (the stand-in is not mounted).
#[derive(Debug)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub body: Option<serde_json::Value>,
}

impl Refusal {
    /// A refusal with the provider's error body.
    pub fn new(status: StatusCode, body: serde_json::Value) -> Self {
        Self {
            status,
            body: Some(body),
        }
    }

    /// The provider is real here, so its stand-in does not exist.
    pub fn not_stood_in() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            body: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self.body {
            Some(body) => (self.status, axum::Json(body)).into_response(),
            None => self.status.into_response(),
        }
    }
}
