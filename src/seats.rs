//! Releasing seats: the one way a seat is given back, whatever the reason (checkout expired,
//! refund, grace period over, pack expired). A seat is released once; the release frees it for
//! the next buyer at once (the capacity trigger counts only live seats) and announces
//! `seat/released` in the same transaction, for whoever waits for that mentor.
//!
//! Taking back dashboard access is the caller's next step ([`crate::access::Access::revoke`]),
//! outside the transaction, since it calls Clerk and Discord.
//!
//! When a pack's last session is used, its seat enters a grace period ([`GRACE_PERIOD`]) in
//! which the buyer can renew and keep it; [`release_after_grace`] gives it back afterwards
//! unless a renewal took it over.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use inngest_sdk::Event;
use uuid::Uuid;

use crate::db::DbError;
use crate::events::{SEAT_RELEASED, SeatReleased};
use crate::models::seat::SeatOf;
use crate::models::{InboxEntry, ReleaseReason, SeatReservation, SeatStatus};

/// How long a seat stays in grace after its pack's last session: the time to renew.
pub const GRACE_PERIOD: chrono::Duration = chrono::Duration::hours(72);

/// Releases the seat of an order or a pack, unless it already was; returns the seat if this
/// call released it. Run it inside the transaction that decided the release.
pub async fn release(
    conn: &mut AsyncPgConnection,
    of: SeatOf,
    reason: ReleaseReason,
) -> Result<Option<SeatReservation>, DbError> {
    let Some(seat) = SeatReservation::release(conn, of, reason).await? else {
        return Ok(None);
    };
    let event = Event::new(
        SEAT_RELEASED,
        SeatReleased {
            seat_id: seat.id,
            mentor_id: seat.mentor_id,
            user_id: seat.user_id,
            session_pack_id: seat.session_pack_id,
            reason,
        },
    )
    .with_id(format!("seat-released-{}", seat.id));
    InboxEntry::enqueue(conn, &event).await?;
    tracing::info!(seat_id = %seat.id, mentor_id = %seat.mentor_id, %reason, "seat released");
    Ok(Some(seat))
}

/// Starts the grace period of a pack's seat at `now`; returns when it ends (the end it already
/// had if it was started before). `None` when the pack has no active seat to put in grace
/// (released, or moved to a renewal).
pub async fn start_grace(
    conn: &mut AsyncPgConnection,
    pack_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let seat = SeatReservation::start_grace(conn, pack_id, now + GRACE_PERIOD).await?;
    Ok(seat.and_then(|s| s.grace_period_ends_at))
}

/// At the end of the grace period: releases the pack's seat, in one transaction with the seat
/// row locked, only if it is still in grace and still bound to this pack. A renewal moves the
/// seat to the new pack and makes it active, and such a seat is kept. Returns the seat if this
/// call released it.
pub async fn release_after_grace(
    conn: &mut AsyncPgConnection,
    pack_id: Uuid,
) -> Result<Option<SeatReservation>, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let seat = SeatReservation::lock_by_pack(conn, pack_id).await?;
        match seat {
            Some(seat) if seat.status == SeatStatus::Grace => {
                release(conn, SeatOf::Pack(pack_id), ReleaseReason::GraceEnded).await
            }
            other => {
                tracing::info!(%pack_id, status = ?other.map(|s| s.status), "seat not in grace for this pack; kept");
                Ok(None)
            }
        }
    })
    .await
}
