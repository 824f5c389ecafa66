//! The session routes of the dashboard: a mentee books, the mentee or the mentor reschedules
//! or cancels, the mentor ends a session as completed or a no-show. Each handler calls
//! `crate::sessions`, which decides and stores the change with its event in one transaction;
//! the handler then wakes the relay, which delivers the event to Inngest.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{AppResult, ErrorBody};
use crate::models::{Session, SessionStatus};
use crate::routes::extract::{ClerkUser, Json, Path};
use crate::sessions;

/// A booked session. Its nullable fields are always sent (as `null`), hence required.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: Uuid,
    pub pack_id: Uuid,
    pub mentor_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub status: SessionStatus,
    /// When it was completed or marked a no-show.
    #[schema(required = true)]
    pub completed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> Self {
        SessionView {
            id: session.id,
            pack_id: session.session_pack_id,
            mentor_id: session.mentor_id,
            scheduled_at: session.scheduled_at,
            status: session.status,
            completed_at: session.completed_at,
            cancelled_at: session.cancelled_at,
        }
    }
}

/// `POST /api/sessions`: which pack, and when.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookSession {
    pub pack_id: Uuid,
    /// RFC 3339; in the future and before the pack expires.
    pub scheduled_at: DateTime<Utc>,
}

/// `POST /api/sessions/{id}/reschedule`: the new time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RescheduleSession {
    /// RFC 3339; in the future and before the pack expires.
    pub scheduled_at: DateTime<Utc>,
}

/// Books a session of one of the caller's packs with that pack's mentor.
#[utoipa::path(
    post,
    path = "/api/sessions",
    tag = "sessions",
    operation_id = "bookSession",
    request_body = BookSession,
    responses(
        (status = CREATED, description = "Booked; `session/scheduled` is announced", body = SessionView),
        (status = NOT_FOUND, description = "`not_found`: no such pack of the caller's", body = ErrorBody),
        (status = CONFLICT, description = "Refused, the code says why: `pack_expired`, \
            `pack_refunded`, `no_sessions_left` (every remaining session is used or booked), \
            `seat_not_active` (the seat is in grace or released), `slot_in_past`, \
            `slot_after_expiry`, `slot_taken` (the mentor is booked then)", body = ErrorBody),
    ),
)]
pub async fn book(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Json(request): Json<BookSession>,
) -> AppResult<(StatusCode, Json<SessionView>)> {
    let session = {
        let mut conn = app.conn().await?;
        let (pack_id, at) = (request.pack_id, request.scheduled_at);
        sessions::book(&mut conn, &clerk_id, pack_id, at, Utc::now()).await?
    };
    app.relay_wake.notify_one();
    Ok((StatusCode::CREATED, Json(SessionView::from(&session))))
}

/// Moves a scheduled session; its mentee (before its time) or its mentor may.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/reschedule",
    tag = "sessions",
    operation_id = "rescheduleSession",
    params(("id" = Uuid, Path, description = "The session")),
    request_body = RescheduleSession,
    responses(
        (status = OK, description = "Moved; `session/rescheduled` and `session/scheduled` \
            are announced", body = SessionView),
        (status = NOT_FOUND, description = "`not_found`: no such session of the caller's, as \
            mentee or mentor", body = ErrorBody),
        (status = CONFLICT, description = "Refused, the code says why: \
            `session_not_scheduled`, `session_started` (the mentee, once its time has come), \
            `pack_expired`, `pack_refunded`, `no_sessions_left`, `slot_in_past`, \
            `slot_after_expiry`, `slot_taken`", body = ErrorBody),
    ),
)]
pub async fn reschedule(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Path(id): Path<Uuid>,
    Json(request): Json<RescheduleSession>,
) -> AppResult<Json<SessionView>> {
    let session = {
        let mut conn = app.conn().await?;
        sessions::reschedule(&mut conn, &clerk_id, id, request.scheduled_at, Utc::now()).await?
    };
    app.relay_wake.notify_one();
    Ok(Json(SessionView::from(&session)))
}

/// Cancels a scheduled session (it is not used up); its mentee (before its time) or its
/// mentor may.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/cancel",
    tag = "sessions",
    operation_id = "cancelSession",
    params(("id" = Uuid, Path, description = "The session")),
    responses(
        (status = OK, description = "Cancelled; `session/cancelled` is announced", body = SessionView),
        (status = NOT_FOUND, description = "`not_found`: no such session of the caller's, as \
            mentee or mentor", body = ErrorBody),
        (status = CONFLICT, description = "`session_not_scheduled`: already completed, \
            missed or cancelled; `session_started`: the mentee, once its time has come",
            body = ErrorBody),
    ),
)]
pub async fn cancel(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Path(id): Path<Uuid>,
) -> AppResult<Json<SessionView>> {
    let session = {
        let mut conn = app.conn().await?;
        sessions::cancel(&mut conn, &clerk_id, id, Utc::now()).await?
    };
    app.relay_wake.notify_one();
    Ok(Json(SessionView::from(&session)))
}

/// The session's mentor marks it completed; the session is used up.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/complete",
    tag = "sessions",
    operation_id = "completeSession",
    params(("id" = Uuid, Path, description = "The session")),
    responses(
        (status = OK, description = "Completed; `session/completed` is announced", body = SessionView),
        (status = FORBIDDEN, description = "`mentor_only`: the caller is the mentee", body = ErrorBody),
        (status = NOT_FOUND, description = "`not_found`: no such session of the caller's", body = ErrorBody),
        (status = CONFLICT, description = "`session_not_scheduled`: already ended or \
            cancelled", body = ErrorBody),
    ),
)]
pub async fn complete(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Path(id): Path<Uuid>,
) -> AppResult<Json<SessionView>> {
    end(&app, &clerk_id, id, SessionStatus::Completed).await
}

/// The session's mentor marks it a no-show; the session is used up like a completion.
#[utoipa::path(
    post,
    path = "/api/sessions/{id}/no-show",
    tag = "sessions",
    operation_id = "markSessionNoShow",
    params(("id" = Uuid, Path, description = "The session")),
    responses(
        (status = OK, description = "Recorded as a no-show; `session/completed` is announced",
            body = SessionView),
        (status = FORBIDDEN, description = "`mentor_only`: the caller is the mentee", body = ErrorBody),
        (status = NOT_FOUND, description = "`not_found`: no such session of the caller's", body = ErrorBody),
        (status = CONFLICT, description = "`session_not_scheduled`: already ended or \
            cancelled", body = ErrorBody),
    ),
)]
pub async fn no_show(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Path(id): Path<Uuid>,
) -> AppResult<Json<SessionView>> {
    end(&app, &clerk_id, id, SessionStatus::NoShow).await
}

async fn end(
    app: &AppState,
    clerk_id: &str,
    id: Uuid,
    outcome: SessionStatus,
) -> AppResult<Json<SessionView>> {
    let session = {
        let mut conn = app.conn().await?;
        sessions::end(&mut conn, clerk_id, id, outcome).await?
    };
    app.relay_wake.notify_one();
    Ok(Json(SessionView::from(&session)))
}
