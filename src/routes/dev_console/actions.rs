//! The console's forms. Each acts as a demo user through our own HTTP API over loopback, with
//! the session token the sandbox's Clerk stand-in issues for that user, so a click runs
//! exactly what a signed-in dashboard would: `POST /api/checkout`, `POST /api/sessions`,
//! `POST /api/sessions/{id}/complete`. A refusal comes back to the console as a notice.

use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::Redirect;
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::models::Provider;
use crate::routes::extract::Path;

/// How long the console waits for our own API.
const LOOPBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /dev/buy`.
#[derive(Debug, Deserialize)]
pub struct Buy {
    /// The demo buyer's Clerk id.
    buyer: String,
    product_id: Uuid,
    provider: Provider,
}

/// `POST /dev/sessions`.
#[derive(Debug, Deserialize)]
pub struct Book {
    /// `<pack id>|<buyer's Clerk id>`.
    pack: String,
    /// From `<input type="datetime-local">`: `2026-12-07T10:00`, read as UTC.
    scheduled_at: String,
}

/// `POST /dev/sessions/{id}/complete`.
#[derive(Debug, Deserialize)]
pub struct Complete {
    /// The session's mentor's Clerk id.
    mentor: String,
}

/// Starts a checkout as `buyer` and sends the browser to the provider's page (the Stripe
/// stand-in in the sandbox).
pub async fn buy(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Buy>, FormRejection>,
) -> AppResult<Redirect> {
    from_the_console(&headers)?;
    let Form(buy) = form.map_err(bad_form)?;
    let answer = Loopback::new(&app, &buy.buyer)?
        .post(
            "/api/checkout",
            json!({ "product_id": buy.product_id, "provider": buy.provider }),
        )
        .await?;
    Ok(match answer {
        Ok(body) => match body["checkout_url"].as_str() {
            Some(url) => Redirect::to(url),
            None => back("checkout answered without a checkout_url"),
        },
        Err(refusal) => back(&format!("checkout refused: {refusal}")),
    })
}

/// Books a session of a pack as its buyer.
pub async fn book(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Book>, FormRejection>,
) -> AppResult<Redirect> {
    from_the_console(&headers)?;
    let Form(book) = form.map_err(bad_form)?;
    let (pack_id, buyer) = book
        .pack
        .split_once('|')
        .ok_or_else(|| AppError::BadRequest("pack is not `<pack id>|<buyer>`".to_owned()))?;
    let at = NaiveDateTime::parse_from_str(&book.scheduled_at, "%Y-%m-%dT%H:%M")
        .map_err(|e| AppError::BadRequest(format!("scheduled_at: {e}")))?
        .and_utc();
    let answer = Loopback::new(&app, buyer)?
        .post(
            "/api/sessions",
            json!({ "packId": pack_id, "scheduledAt": at }),
        )
        .await?;
    Ok(match answer {
        Ok(_) => back(&format!("booked a session at {}", super::view::time(at))),
        Err(refusal) => back(&format!("booking refused: {refusal}")),
    })
}

/// Marks a session completed as its mentor.
pub async fn complete(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    form: Result<Form<Complete>, FormRejection>,
) -> AppResult<Redirect> {
    from_the_console(&headers)?;
    let Form(complete) = form.map_err(bad_form)?;
    let answer = Loopback::new(&app, &complete.mentor)?
        .post(&format!("/api/sessions/{id}/complete"), json!({}))
        .await?;
    Ok(match answer {
        Ok(_) => back(&format!("completed session {id} at {}", Utc::now())),
        Err(refusal) => back(&format!("completing refused: {refusal}")),
    })
}

/// Refuses a form posted from another site: a page the developer has open elsewhere could
/// otherwise make the console buy or book as the demo users. Browsers send `Origin` with every
/// form POST; a request without one is not a browser's cross-site form.
fn from_the_console(headers: &HeaderMap) -> AppResult<()> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h);
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if origin_host.is_some() && origin_host == host {
        return Ok(());
    }
    Err(AppError::Forbidden {
        code: "cross_origin",
        message: "the dev console's forms act only when posted from the console's own page"
            .to_owned(),
    })
}

fn bad_form(rejection: FormRejection) -> AppError {
    AppError::BadRequest(format!("the console's form: {rejection}"))
}

/// Back to the console, saying what happened.
fn back(notice: &str) -> Redirect {
    let notice: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Redirect::to(&format!("/dev?notice={notice}"))
}

/// Our own API, called as one demo user.
struct Loopback {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Loopback {
    /// Calls go to this process on loopback (the port it listens on, as the sandbox's own
    /// webhooks do), as the user `clerk_id`; the console acts only when the sandbox can issue
    /// that user's token.
    fn new(app: &AppState, clerk_id: &str) -> AppResult<Self> {
        let token = super::session_token(app, clerk_id)
            .ok_or(AppError::NotConfigured("the sandbox's Clerk stand-in"))?;
        let http = reqwest::Client::builder()
            .timeout(LOOPBACK_TIMEOUT)
            .build()
            .map_err(|e| AppError::Internal(format!("loopback client: {e}")))?;
        Ok(Self {
            base: format!("http://127.0.0.1:{}", app.config.port),
            token,
            http,
        })
    }

    /// The JSON answer of a success, or the refusal's envelope as `message (code)`.
    async fn post(&self, path: &str, body: Value) -> AppResult<Result<Value, String>> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| AppError::Unavailable(format!("our own API at {}: {e}", self.base)))?;
        let success = response.status().is_success();
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| AppError::Internal(format!("our own API answered {status}: {e}")))?;
        Ok(if success {
            Ok(body)
        } else {
            Err(format!(
                "{} ({})",
                body["message"].as_str().unwrap_or_default(),
                body["error"].as_str().unwrap_or_default()
            ))
        })
    }
}
