//! Booking sessions against a pack: who may book, move, cancel and end a session, and the rules
//! a booking must meet. Every change is made in one transaction together with the event that
//! announces it (stored in the inbox, delivered by the relay), so the change and its event
//! exist together or not at all.
//!
//! The caller is who the Clerk session token says: a mentee owns packs; a mentor is the
//! mentor whose `clerk_id` is the caller's. Another user's pack or session is not found.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use inngest_sdk::{Classify, Event, Retry};
use uuid::Uuid;

use crate::db::DbError;
use crate::events::{
    SESSION_CANCELLED, SESSION_COMPLETED, SESSION_RESCHEDULED, SESSION_SCHEDULED, SessionCancelled,
    SessionCompleted, SessionRescheduled, SessionScheduled,
};
use crate::models::session::{CountedPack, is_slot_taken_error};
use crate::models::{
    InboxEntry, Mentor, PackStatus, SeatReservation, SeatStatus, Session, SessionPack,
    SessionStatus, User,
};

/// Why a session could not be booked or changed. Each variant is a stable code for the API.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// No such pack, or not the caller's.
    #[error("session pack {0} not found")]
    PackNotFound(Uuid),
    /// No such session, or neither the caller's nor their mentor's.
    #[error("session {0} not found")]
    SessionNotFound(Uuid),
    /// Only the session's mentor may do this.
    #[error("only the session's mentor can do this")]
    MentorOnly,
    /// The pack has expired.
    #[error("the pack expired on {0}")]
    PackExpired(DateTime<Utc>),
    /// The pack was refunded.
    #[error("the pack was refunded")]
    PackRefunded,
    /// Every remaining session is used or already scheduled.
    #[error("no sessions left to schedule in this pack")]
    NoSessionsLeft,
    /// The seat is in its grace period or released.
    #[error("the seat with this mentor is {0}; renew to book again")]
    SeatNotActive(SeatStatus),
    /// The time is not in the future.
    #[error("the time {0} is in the past")]
    SlotInPast(DateTime<Utc>),
    /// The time is after the pack expires.
    #[error("the time {at} is after the pack expires ({expires_at})")]
    SlotAfterExpiry {
        /// The requested time.
        at: DateTime<Utc>,
        /// When the pack expires.
        expires_at: DateTime<Utc>,
    },
    /// The mentor already has a session within an hour of then.
    #[error("the mentor already has a session within an hour of {0}")]
    SlotTaken(DateTime<Utc>),
    /// The session is no longer scheduled.
    #[error("the session is already {0}")]
    NotScheduled(SessionStatus),
    /// The session's time has come: only its mentor may still move or cancel it (the mentee
    /// may have had it; the mentor ends it as completed or a no-show).
    #[error("the session started at {0}; only its mentor can change it now")]
    AlreadyStarted(DateTime<Utc>),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SessionsError {
    fn from(err: diesel::result::Error) -> Self {
        SessionsError::Db(DbError::Query(err))
    }
}

impl SessionsError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            SessionsError::PackNotFound(_) | SessionsError::SessionNotFound(_) => "not_found",
            SessionsError::MentorOnly => "mentor_only",
            SessionsError::PackExpired(_) => "pack_expired",
            SessionsError::PackRefunded => "pack_refunded",
            SessionsError::NoSessionsLeft => "no_sessions_left",
            SessionsError::SeatNotActive(_) => "seat_not_active",
            SessionsError::SlotInPast(_) => "slot_in_past",
            SessionsError::SlotAfterExpiry { .. } => "slot_after_expiry",
            SessionsError::SlotTaken(_) => "slot_taken",
            SessionsError::NotScheduled(_) => "session_not_scheduled",
            SessionsError::AlreadyStarted(_) => "session_started",
            SessionsError::Db(_) => "unavailable",
        }
    }
}

/// In a workflow only the database can recover; the rest are facts.
impl Classify for SessionsError {
    fn retry(&self) -> Retry {
        match self {
            SessionsError::Db(e) => e.retry(),
            _ => Retry::Never,
        }
    }
}

/// Who is asking, as far as sessions go.
struct Caller {
    user_id: Option<Uuid>,
    mentor_id: Option<Uuid>,
}

async fn caller(conn: &mut AsyncPgConnection, clerk_id: &str) -> Result<Caller, SessionsError> {
    Ok(Caller {
        user_id: User::by_clerk_id(conn, clerk_id).await?.map(|u| u.id),
        mentor_id: Mentor::by_clerk_id(conn, clerk_id).await?.map(|m| m.id),
    })
}

/// Refuses a time outside `(now, pack expiry)`, and a pack that cannot be booked.
fn check_bookable(
    pack: &SessionPack,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SessionsError> {
    match pack.status {
        PackStatus::Refunded => return Err(SessionsError::PackRefunded),
        PackStatus::Expired => return Err(SessionsError::PackExpired(pack.expires_at)),
        PackStatus::Depleted => return Err(SessionsError::NoSessionsLeft),
        PackStatus::Active if pack.expires_at <= now => {
            return Err(SessionsError::PackExpired(pack.expires_at));
        }
        PackStatus::Active => {}
    }
    if at <= now {
        return Err(SessionsError::SlotInPast(at));
    }
    if at >= pack.expires_at {
        return Err(SessionsError::SlotAfterExpiry {
            at,
            expires_at: pack.expires_at,
        });
    }
    Ok(())
}

fn slot_taken(at: DateTime<Utc>) -> impl Fn(diesel::result::Error) -> SessionsError {
    move |err| {
        if is_slot_taken_error(&err) {
            SessionsError::SlotTaken(at)
        } else {
            err.into()
        }
    }
}

/// A mentee books a session of their pack at `at`, and `session/scheduled` is announced.
pub async fn book(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    pack_id: Uuid,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Session, SessionsError> {
    conn.transaction(async move |conn| {
        let caller = caller(conn, clerk_id).await?;
        // Locked: two bookings of one pack are serialized, so they cannot both take the last
        // unscheduled session.
        let pack = SessionPack::lock(conn, pack_id)
            .await?
            .filter(|p| Some(p.user_id) == caller.user_id)
            .ok_or(SessionsError::PackNotFound(pack_id))?;
        check_bookable(&pack, at, now)?;
        // A renewed pack's seat moved to the new pack; its remaining sessions stay bookable
        // while that seat is active.
        let seat =
            SeatReservation::serving_pack(conn, pack.id, pack.user_id, pack.mentor_id).await?;
        match seat.map(|s| s.status) {
            Some(SeatStatus::Active) => {}
            Some(status) => return Err(SessionsError::SeatNotActive(status)),
            None => return Err(SessionsError::SeatNotActive(SeatStatus::Released)),
        }
        // A session the mentor has ended but Inngest has not yet counted still holds its place:
        // counting it later must not find the pack already spent on another booking.
        if Session::claims_on_pack(conn, pack.id).await? >= i64::from(pack.remaining_sessions) {
            return Err(SessionsError::NoSessionsLeft);
        }
        let session = Session::book(conn, pack.id, pack.mentor_id, at)
            .await
            .map_err(slot_taken(at))?;
        let event = Event::new(
            SESSION_SCHEDULED,
            SessionScheduled {
                session_id: session.id,
                session_pack_id: pack.id,
                scheduled_at: session.scheduled_at,
            },
        )
        .with_id(format!(
            "session-scheduled-{}-{}",
            session.id,
            at.timestamp()
        ));
        InboxEntry::enqueue(conn, &event).await?;
        Ok(session)
    })
    .await
}

/// The session and its pack, if the caller is its mentee or its mentor (else not found).
/// Both rows are locked for the rest of the transaction, the pack first: the order a refund
/// (which cancels the pack's sessions) and a booking take them in, so none waits on another
/// in a cycle.
async fn session_for(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    session_id: Uuid,
) -> Result<(Session, SessionPack, Caller), SessionsError> {
    let caller = caller(conn, clerk_id).await?;
    let not_found = || SessionsError::SessionNotFound(session_id);
    // A session never changes pack, so its pack can be read before either is locked.
    let pack_id = Session::find(conn, session_id)
        .await?
        .ok_or_else(not_found)?
        .session_pack_id;
    let pack = SessionPack::lock(conn, pack_id)
        .await?
        .ok_or_else(not_found)?;
    let session = Session::lock(conn, session_id)
        .await?
        .ok_or_else(not_found)?;
    let is_mentee = Some(pack.user_id) == caller.user_id;
    let is_mentor = Some(session.mentor_id) == caller.mentor_id;
    if !is_mentee && !is_mentor {
        return Err(SessionsError::SessionNotFound(session_id));
    }
    Ok((session, pack, caller))
}

/// Refuses the mentee a change to a session whose time has come: they may have had it, and
/// cancelling or moving it then would give it back for free. Its mentor may still, for a
/// session that did not take place through them.
fn check_changeable(
    session: &Session,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<(), SessionsError> {
    if session.status != SessionStatus::Scheduled {
        return Err(SessionsError::NotScheduled(session.status));
    }
    let by_mentor = Some(session.mentor_id) == caller.mentor_id;
    if !by_mentor && session.scheduled_at <= now {
        return Err(SessionsError::AlreadyStarted(session.scheduled_at));
    }
    Ok(())
}

/// The mentee or the mentor moves a scheduled session to `at`; `session/rescheduled` (which
/// stops the old time's reminders) and `session/scheduled` (which starts the new ones) are
/// announced.
pub async fn reschedule(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    session_id: Uuid,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Session, SessionsError> {
    conn.transaction(async move |conn| {
        let (session, pack, caller) = session_for(conn, clerk_id, session_id).await?;
        check_changeable(&session, &caller, now)?;
        check_bookable(&pack, at, now)?;
        let previous = session.scheduled_at;
        let moved = Session::reschedule(conn, session.id, at)
            .await
            .map_err(slot_taken(at))?
            .ok_or(SessionsError::NotScheduled(session.status))?;
        // The times as stored (microseconds): reminders match `previousScheduledAt` to the
        // `scheduledAt` they were started with. The ids name this move (its time), so moving
        // back to an earlier time is announced again rather than taken for a duplicate.
        let (at, moved_at) = (moved.scheduled_at, moved.updated_at.timestamp_micros());
        let rescheduled = Event::new(
            SESSION_RESCHEDULED,
            SessionRescheduled {
                session_id: moved.id,
                session_pack_id: pack.id,
                scheduled_at: at,
                previous_scheduled_at: previous,
            },
        )
        .with_id(format!("session-rescheduled-{}-{moved_at}", moved.id));
        let scheduled = Event::new(
            SESSION_SCHEDULED,
            SessionScheduled {
                session_id: moved.id,
                session_pack_id: pack.id,
                scheduled_at: at,
            },
        )
        .with_id(format!("session-scheduled-{}-{moved_at}", moved.id));
        InboxEntry::enqueue(conn, &rescheduled).await?;
        InboxEntry::enqueue(conn, &scheduled).await?;
        Ok(moved)
    })
    .await
}

/// The mentee (before its time) or the mentor cancels a scheduled session;
/// `session/cancelled` is announced.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Session, SessionsError> {
    conn.transaction(async move |conn| {
        let (session, _, caller) = session_for(conn, clerk_id, session_id).await?;
        check_changeable(&session, &caller, now)?;
        let cancelled = Session::cancel(conn, session.id)
            .await?
            .ok_or(SessionsError::NotScheduled(session.status))?;
        announce_cancelled(conn, &cancelled).await?;
        Ok(cancelled)
    })
    .await
}

/// Cancels the scheduled sessions of a refunded pack, each announced as cancelled (so its
/// reminders stop), in the caller's transaction: a refunded pack keeps no booked time.
pub async fn cancel_all_of_refunded_pack(
    conn: &mut AsyncPgConnection,
    pack_id: Uuid,
) -> diesel::QueryResult<Vec<Session>> {
    let cancelled = Session::cancel_scheduled_of_pack(conn, pack_id).await?;
    for session in &cancelled {
        announce_cancelled(conn, session).await?;
    }
    Ok(cancelled)
}

async fn announce_cancelled(
    conn: &mut AsyncPgConnection,
    cancelled: &Session,
) -> diesel::QueryResult<()> {
    let event = Event::new(
        SESSION_CANCELLED,
        SessionCancelled {
            session_id: cancelled.id,
            session_pack_id: cancelled.session_pack_id,
            scheduled_at: cancelled.scheduled_at,
        },
    )
    .with_id(format!("session-cancelled-{}", cancelled.id));
    InboxEntry::enqueue(conn, &event).await?;
    Ok(())
}

/// The session's mentor ends it as completed or a no-show (either uses it up);
/// `session/completed` is announced (the brief's payload), once per session.
pub async fn end(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    session_id: Uuid,
    outcome: SessionStatus,
) -> Result<Session, SessionsError> {
    conn.transaction(async move |conn| {
        let (session, pack, caller) = session_for(conn, clerk_id, session_id).await?;
        if Some(session.mentor_id) != caller.mentor_id {
            return Err(SessionsError::MentorOnly);
        }
        let ended = Session::end(conn, session.id, outcome)
            .await?
            .ok_or(SessionsError::NotScheduled(session.status))?;
        let mentee = User::clerk_id_of(conn, pack.user_id).await?;
        let event = Event::new(
            SESSION_COMPLETED,
            SessionCompleted {
                session_id: ended.id,
                session_pack_id: pack.id,
                user_id: mentee,
            },
        )
        .with_id(format!("session-completed-{}", ended.id));
        InboxEntry::enqueue(conn, &event).await?;
        Ok(ended)
    })
    .await
}

/// What counting a used session did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counted {
    /// Whether this call counted it (false: it was counted before).
    pub newly_counted: bool,
    /// The pack after counting.
    pub pack: CountedPack,
}

/// Counts a used session against its pack exactly once (see [`Session::count_once`]).
pub async fn count_used_session(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    pack_id: Uuid,
) -> Result<Counted, SessionsError> {
    if let Some(pack) = Session::count_once(conn, session_id, pack_id).await? {
        return Ok(Counted {
            newly_counted: true,
            pack,
        });
    }
    let session = Session::find(conn, session_id)
        .await?
        .filter(|s| s.session_pack_id == pack_id)
        .ok_or(SessionsError::SessionNotFound(session_id))?;
    if session.counted_at.is_none() {
        return Err(SessionsError::NotScheduled(session.status));
    }
    let pack = SessionPack::find(conn, pack_id)
        .await?
        .ok_or(SessionsError::PackNotFound(pack_id))?;
    Ok(Counted {
        newly_counted: false,
        pack: CountedPack {
            remaining_sessions: pack.remaining_sessions,
            total_sessions: pack.total_sessions,
            status: pack.status,
        },
    })
}
