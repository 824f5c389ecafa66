//! HTTP routes.

pub mod auth;
pub mod checkout;
pub mod webhooks;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::AppResult;

/// `GET /health`: the process is up and the database answers.
pub async fn health(State(app): State<AppState>) -> AppResult<Json<Value>> {
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.get().await.map_err(crate::db::DbError::from)?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(Json(json!({ "status": "ok" })))
}
