//! Probes for the platform that runs the service: `/healthz` says the process answers (restart
//! it when not), `/readyz` says it can serve (send it traffic when so).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{AppError, AppResult};

/// `GET /healthz`: the process is up. Touches nothing else, so a database outage does not get
/// every instance restarted.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz` (and `/health`): the database answers and has every migration this binary
/// was built with; otherwise 503 in the error envelope, the reason in the log.
pub async fn readyz(State(app): State<AppState>) -> AppResult<Json<Value>> {
    let mut conn = app.conn().await?;
    let pending = crate::db::pending_migrations(&mut conn)
        .await
        .map_err(|e| AppError::Unavailable(format!("reading the applied migrations: {e}")))?;
    if !pending.is_empty() {
        return Err(AppError::Unavailable(format!(
            "migrations not applied yet (run `huckleberry migrate`): {}",
            pending.join(", ")
        )));
    }
    Ok(Json(json!({ "status": "ok" })))
}
