//! `POST /api/mentors/{id}/waitlist`: a signed-in buyer who met a full mentor joins the line.
//! Joining again answers the same entry (200 rather than 201); an unknown mentor is a 404, and
//! a mentor with a seat free for the caller a 409 `seat_available` (check out instead).

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{AppResult, ErrorBody};
use crate::models::waitlist::WaitlistView;
use crate::routes::extract::{ClerkUser, Json, Path};
use crate::waitlist;

/// Joins the mentor's waitlist. `ClerkUser` comes first, so a stranger learns nothing.
#[utoipa::path(
    post,
    path = "/api/mentors/{id}/waitlist",
    tag = "waitlist",
    operation_id = "joinWaitlist",
    params(("id" = Uuid, Path, description = "The mentor")),
    responses(
        (status = CREATED, description = "In line; `GET /api/me` shows the place", body = WaitlistView),
        (status = OK, description = "Already in line: the same entry", body = WaitlistView),
        (status = NOT_FOUND, description = "`not_found`: no such mentor", body = ErrorBody),
        (status = CONFLICT, description = "`seat_available` (a seat is free for the caller: \
            check out instead) or `already_seated` (the caller has a seat with this mentor)", body = ErrorBody),
    ),
)]
pub async fn join_waitlist(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Path(mentor_id): Path<Uuid>,
) -> AppResult<(StatusCode, Json<WaitlistView>)> {
    let mut conn = app.conn().await?;
    let joined = waitlist::join(&mut conn, &clerk_id, mentor_id).await?;
    let status = if joined.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(joined.entry)))
}
