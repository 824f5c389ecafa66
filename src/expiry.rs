//! Packs past their expiry. A daily sweep finds active packs whose time is up and asks for one
//! check per pack ([`check_event`], an event id per pack and UTC day, so Inngest drops a second
//! sweep's repeats). A check marks the pack expired (bookings stop at once) and, when no
//! session is still to come, gives its seat back; sessions booked before the expiry are kept,
//! and the seat is released an hour after the last of them ([`SESSION_SETTLE`]).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use inngest_sdk::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::DbError;
use crate::events::{PACK_EXPIRATION_CHECK, PackExpirationCheck};
use crate::models::pack::ExpiryCursor;
use crate::models::seat::SeatOf;
use crate::models::{PackStatus, ReleaseReason, SeatReservation, SeatStatus, Session, SessionPack};
use crate::seats;

/// How long after a session's start it still holds the seat of an expired pack (the session
/// itself, and the mentor marking it).
pub const SESSION_SETTLE: chrono::Duration = chrono::Duration::hours(1);

/// Why a pack could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    /// The pack does not exist.
    #[error("session pack {0} not found")]
    PackNotFound(Uuid),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ExpiryError {
    fn from(err: diesel::result::Error) -> Self {
        ExpiryError::Db(err.into())
    }
}

/// A missing pack stays missing; the database decides for itself.
impl inngest_sdk::Classify for ExpiryError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            ExpiryError::PackNotFound(_) => inngest_sdk::Retry::Never,
            ExpiryError::Db(e) => e.retry(),
        }
    }
}

/// What a check of one pack found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ExpiryCheck {
    /// Nothing to do: the pack is not past its expiry, or it ended otherwise (depleted, whose
    /// seat the grace period handles, or refunded).
    NotExpired { status: PackStatus },
    /// Expired, with sessions still to come: check again at `recheck_at`, an hour after the
    /// last one starts.
    SessionsPending {
        newly_expired: bool,
        recheck_at: DateTime<Utc>,
    },
    /// Expired, nothing left to come: the seat is given back.
    Ended {
        newly_expired: bool,
        /// Whether the pack's seat is released for its expiry (by this check or an earlier
        /// one); false when the pack has no seat of its own any more (a renewal took it).
        seat_released: bool,
        /// Sessions left unused.
        sessions_unused: i32,
        expired_at: DateTime<Utc>,
    },
}

/// Checks a pack at `now`, in one transaction with the pack locked: marks it expired if it
/// is active and past its expiry, then releases its seat unless a session is still to come.
/// Checking the same pack again changes nothing more.
pub async fn check_pack(
    conn: &mut AsyncPgConnection,
    pack_id: Uuid,
    now: DateTime<Utc>,
) -> Result<ExpiryCheck, ExpiryError> {
    conn.transaction::<_, ExpiryError, _>(async move |conn| {
        let pack = SessionPack::lock(conn, pack_id)
            .await?
            .ok_or(ExpiryError::PackNotFound(pack_id))?;
        let newly_expired = match pack.status {
            PackStatus::Active if pack.expires_at <= now => {
                SessionPack::mark_expired(conn, pack.id).await?
            }
            PackStatus::Expired => false,
            status => return Ok(ExpiryCheck::NotExpired { status }),
        };
        // An expired pack takes no booking nor move, so the sessions to come only dwindle.
        let last = Session::scheduled_for_pack(conn, pack.id)
            .await?
            .into_iter()
            .map(|s| s.scheduled_at)
            .max();
        if let Some(last) = last.filter(|at| *at + SESSION_SETTLE > now) {
            return Ok(ExpiryCheck::SessionsPending {
                newly_expired,
                recheck_at: last + SESSION_SETTLE,
            });
        }
        let released = seats::release(conn, SeatOf::Pack(pack.id), ReleaseReason::PackExpired)
            .await?
            .is_some();
        let seat_released = released
            || SeatReservation::by_pack(conn, pack.id)
                .await?
                .is_some_and(|s| {
                    s.status == SeatStatus::Released
                        && s.release_reason == Some(ReleaseReason::PackExpired)
                });
        Ok(ExpiryCheck::Ended {
            newly_expired,
            seat_released,
            sessions_unused: pack.remaining_sessions,
            expired_at: pack.expires_at,
        })
    })
    .await
}

/// Up to `limit` active packs past their expiry at `now`, after `after`: one page of the
/// daily sweep.
pub async fn expired_packs(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    after: Option<ExpiryCursor>,
    limit: i64,
) -> Result<Vec<ExpiryCursor>, DbError> {
    Ok(SessionPack::expired_active(conn, now, after, limit).await?)
}

/// The `pack/expiration-check` of a pack on the UTC day of `now`: its id names both, so a
/// second sweep the same day sends an event Inngest already has.
pub fn check_event(pack_id: Uuid, now: DateTime<Utc>) -> Event<PackExpirationCheck> {
    Event::new(PACK_EXPIRATION_CHECK, PackExpirationCheck { pack_id }).with_id(format!(
        "pack-expiration-check-{pack_id}-{}",
        now.format("%Y-%m-%d")
    ))
}
