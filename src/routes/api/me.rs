//! `GET /api/me`: what the dashboard shows the signed-in user. The facts are read by
//! `models::dashboard`; this module only shapes them for the wire (camelCase JSON). A field
//! that may be null is always sent, so its schema says required (a generated client types it
//! `T | null`, not optional).

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::models::waitlist::WaitlistView;

use crate::app::AppState;
use crate::error::AppResult;
use crate::models::access::DashboardAccess;
use crate::models::dashboard::{DashboardFacts, MentorFacts, PackFacts};
use crate::models::discord::DiscordConnection;
use crate::models::{
    AccessStatus, PackStatus, ReleaseReason, RevokeReason, SeatReservation, SeatStatus, Session,
    User,
};
use crate::routes::api::sessions::SessionView;
use crate::routes::extract::{ClerkUser, Json};

/// The signed-in user's dashboard: one field per part, each read by its own query in
/// [`DashboardFacts::load`]. Someone we do not know yet gets every list empty.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The caller's packs, newest first.
    pub packs: Vec<PackView>,
    /// The caller's scheduled sessions, earliest first (one whose time passed stays listed
    /// until the mentor marks it completed or a no-show).
    pub upcoming_sessions: Vec<SessionView>,
    pub discord: DiscordView,
    /// The mentors' waitlists the caller is in (place in line, or the seat offered to them
    /// until when), oldest first.
    pub waitlist: Vec<WaitlistView>,
    /// `null` unless the caller is a mentor (their Clerk user is linked to the mentor).
    #[schema(required = true)]
    pub mentor: Option<MentorView>,
}

/// A pack of sessions with one mentor.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackView {
    pub id: Uuid,
    pub mentor: MentorRef,
    pub status: PackStatus,
    pub total_sessions: i32,
    /// Sessions not used yet (scheduled ones included).
    pub remaining_sessions: i32,
    /// Of the remaining sessions, how many are booked; a new booking needs
    /// `scheduledSessions < remainingSessions`.
    pub scheduled_sessions: i32,
    pub expires_at: DateTime<Utc>,
    /// The seat with the mentor that this pack holds; `null` when it moved to a renewal.
    #[schema(required = true)]
    pub seat: Option<SeatView>,
    /// The dashboard access this pack granted; `null` before it is granted.
    #[schema(required = true)]
    pub access: Option<AccessView>,
}

/// Which mentor.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorRef {
    pub id: Uuid,
    pub display_name: String,
}

/// A seat with a mentor: `active` (sessions can be booked), `grace` (every session used; the
/// seat is kept until `graceEndsAt` for a renewal), or `released` (given back).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatView {
    pub status: SeatStatus,
    /// When the grace period ends (or ended); set once the last session is used.
    #[schema(required = true)]
    pub grace_ends_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub released_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub release_reason: Option<ReleaseReason>,
}

/// Dashboard access through a pack.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessView {
    pub status: AccessStatus,
    pub granted_until: DateTime<Utc>,
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub revoke_reason: Option<RevokeReason>,
}

/// The user's Discord account, if connected.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscordView {
    pub connected: bool,
    #[schema(required = true)]
    pub username: Option<String>,
    #[schema(required = true)]
    pub connected_at: Option<DateTime<Utc>>,
}

/// A mentor's side: their seats and their mentees.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentorView {
    pub id: Uuid,
    pub display_name: String,
    /// Seats held at checkout, active or in grace.
    pub seats_used: i64,
    pub seat_capacity: i32,
    /// Everyone who bought a pack from this mentor, most recent buyer first.
    pub mentees: Vec<MenteeView>,
}

/// A mentee, as their mentor sees them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MenteeView {
    pub user_id: Uuid,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub first_name: Option<String>,
    #[schema(required = true)]
    pub last_name: Option<String>,
    /// Their packs with this mentor, newest first.
    pub packs: Vec<PackView>,
    /// Their scheduled sessions with this mentor, earliest first.
    pub upcoming_sessions: Vec<SessionView>,
    pub discord: DiscordView,
}

/// The signed-in user's packs, seats, sessions, Discord and access; a mentor's mentees.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "me",
    operation_id = "getMe",
    responses((status = OK, description = "The caller's dashboard", body = Me)),
)]
pub async fn me(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
) -> AppResult<Json<Me>> {
    let facts = {
        let mut conn = app.conn().await?;
        DashboardFacts::load(&mut conn, &clerk_id).await?
    };
    Ok(Json(Me::from(facts)))
}

impl From<DashboardFacts> for Me {
    fn from(facts: DashboardFacts) -> Self {
        Me {
            packs: pack_views(&facts.packs, &facts.sessions),
            upcoming_sessions: facts.sessions.iter().map(SessionView::from).collect(),
            discord: DiscordView::from(facts.discord.as_ref()),
            waitlist: facts.waitlist,
            mentor: facts.mentor.map(MentorView::from),
        }
    }
}

impl From<MentorFacts> for MentorView {
    fn from(facts: MentorFacts) -> Self {
        // Mentees in the order of their newest pack (packs come newest first).
        let mut mentees: Vec<&User> = Vec::new();
        for pack in &facts.packs {
            if !mentees.iter().any(|m| m.id == pack.buyer.id) {
                mentees.push(&pack.buyer);
            }
        }
        let mentees = mentees
            .into_iter()
            .map(|user| {
                let packs: Vec<PackFacts> = facts
                    .packs
                    .iter()
                    .filter(|p| p.buyer.id == user.id)
                    .cloned()
                    .collect();
                let sessions: Vec<Session> = facts
                    .sessions
                    .iter()
                    .filter(|s| packs.iter().any(|p| p.pack.id == s.session_pack_id))
                    .cloned()
                    .collect();
                let discord = facts.discord.iter().find(|d| d.user_id == user.id);
                MenteeView {
                    user_id: user.id,
                    email: user.email.clone(),
                    first_name: user.first_name.clone(),
                    last_name: user.last_name.clone(),
                    packs: pack_views(&packs, &sessions),
                    upcoming_sessions: sessions.iter().map(SessionView::from).collect(),
                    discord: DiscordView::from(discord),
                }
            })
            .collect();
        MentorView {
            id: facts.mentor.id,
            display_name: facts.mentor.display_name,
            seats_used: facts.seats_used,
            seat_capacity: facts.mentor.seat_capacity,
            mentees,
        }
    }
}

/// The packs, each with how many of `sessions` (the scheduled ones) are booked on it.
fn pack_views(packs: &[PackFacts], sessions: &[Session]) -> Vec<PackView> {
    let mut scheduled: HashMap<Uuid, i32> = HashMap::new();
    for session in sessions {
        *scheduled.entry(session.session_pack_id).or_default() += 1;
    }
    packs
        .iter()
        .map(|facts| PackView {
            id: facts.pack.id,
            mentor: MentorRef {
                id: facts.pack.mentor_id,
                display_name: facts.mentor_name.clone(),
            },
            status: facts.pack.status,
            total_sessions: facts.pack.total_sessions,
            remaining_sessions: facts.pack.remaining_sessions,
            scheduled_sessions: scheduled.get(&facts.pack.id).copied().unwrap_or(0),
            expires_at: facts.pack.expires_at,
            seat: facts.seat.as_ref().map(SeatView::from),
            access: facts.access.as_ref().map(AccessView::from),
        })
        .collect()
}

impl From<&SeatReservation> for SeatView {
    fn from(seat: &SeatReservation) -> Self {
        SeatView {
            status: seat.status,
            grace_ends_at: seat.grace_period_ends_at,
            released_at: seat.released_at,
            release_reason: seat.release_reason,
        }
    }
}

impl From<&DashboardAccess> for AccessView {
    fn from(access: &DashboardAccess) -> Self {
        AccessView {
            status: access.status,
            granted_until: access.granted_until,
            revoked_at: access.revoked_at,
            revoke_reason: access.revoke_reason,
        }
    }
}

impl From<Option<&DiscordConnection>> for DiscordView {
    fn from(connection: Option<&DiscordConnection>) -> Self {
        DiscordView {
            connected: connection.is_some(),
            username: connection.map(|c| c.discord_username.clone()),
            connected_at: connection.map(|c| c.connected_at),
        }
    }
}
