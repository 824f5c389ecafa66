//! The Resend stand-in: `POST /emails` as Resend answers it (an id, the same one again for a
//! repeated idempotency key), and an outbox page where the emails can be read and their links
//! followed.

use std::sync::{Arc, Mutex, PoisonError};

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::Sandbox;
use super::page::{Message, render};

/// The API key our Resend client is given; the stand-in refuses any other.
pub(super) const API_KEY: &str = "re_sandbox";

/// An email the app sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// The id answered to the app (`email_log` records it).
    pub id: String,
    pub to: String,
    pub subject: String,
    pub html: String,
    /// The `kind` tag the app puts on every email (`welcome`, `discord_reminder`, …).
    pub kind: String,
    pub sent_at: DateTime<Utc>,
    idempotency_key: Option<String>,
}

/// The outbox.
#[derive(Default)]
pub struct ResendSandbox {
    sent: Mutex<Vec<SentEmail>>,
}

impl ResendSandbox {
    /// Every email sent, newest first.
    pub fn outbox(&self) -> Vec<SentEmail> {
        let mut sent = self.lock().clone();
        sent.reverse();
        sent
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SentEmail>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/resend/emails", post(send))
        .route("/outbox", get(outbox))
        .route("/outbox/{id}", get(show))
}

#[derive(Deserialize)]
struct Tag {
    name: String,
    value: String,
}

/// The fields of Resend's request that the outbox shows.
#[derive(Deserialize)]
struct SendRequest {
    to: Vec<String>,
    subject: String,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

fn resend_error(status: StatusCode, name: &str, message: &str) -> Response {
    let body = json!({"statusCode": status.as_u16(), "name": name, "message": message});
    (status, axum::Json(body)).into_response()
}

async fn send(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: String) -> Response {
    let Some(resend) = sandbox.resend.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(&format!("Bearer {API_KEY}")) {
        return resend_error(
            StatusCode::UNAUTHORIZED,
            "validation_error",
            "API key is invalid",
        );
    }
    let request: SendRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(e) => {
            return resend_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                &e.to_string(),
            );
        }
    };
    let idempotency_key = header("idempotency-key").map(str::to_owned);
    let mut sent = resend.lock();
    if let Some(key) = &idempotency_key
        && let Some(earlier) = sent
            .iter()
            .find(|e| e.idempotency_key.as_ref() == Some(key))
    {
        return axum::Json(json!({"id": earlier.id})).into_response();
    }
    let email = SentEmail {
        id: uuid::Uuid::new_v4().to_string(),
        to: request.to.join(", "),
        subject: request.subject,
        html: request.html.or(request.text).unwrap_or_default(),
        kind: request
            .tags
            .into_iter()
            .find(|t| t.name == "kind")
            .map(|t| t.value)
            .unwrap_or_default(),
        sent_at: Utc::now(),
        idempotency_key,
    };
    let id = email.id.clone();
    sent.push(email);
    axum::Json(json!({"id": id})).into_response()
}

#[derive(Template)]
#[template(path = "sandbox/outbox.html")]
struct Outbox {
    emails: Vec<SentEmail>,
}

/// `GET /sandbox/outbox`: every email, newest first.
async fn outbox(State(sandbox): State<Arc<Sandbox>>) -> Response {
    match sandbox.resend.as_ref() {
        Some(resend) => render(
            &Outbox {
                emails: resend.outbox(),
            },
            StatusCode::OK,
        ),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /sandbox/outbox/{id}`: the email as its recipient sees it (our own templates'
/// HTML, links live).
async fn show(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>) -> Response {
    let email = sandbox
        .resend
        .as_ref()
        .and_then(|r| r.lock().iter().find(|e| e.id == id).cloned());
    match email {
        Some(email) => Html(email.html).into_response(),
        None => Message::respond(
            "No such email",
            "The outbox is kept in memory: a restart empties it.",
            StatusCode::NOT_FOUND,
        ),
    }
}
