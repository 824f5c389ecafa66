//! HTTP routes.

pub mod api;
pub mod auth;
pub mod checkout;
pub mod extract;
pub mod pages;
pub mod waitlist;
pub mod webhooks;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{AppError, AppResult};

/// `GET /health`: the process is up and the database answers.
pub async fn health(State(app): State<AppState>) -> AppResult<Json<Value>> {
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// The router's fallback: no route has this path.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

/// A route has this path but no handler for the method (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
