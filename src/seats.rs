//! Releasing seats: the one way a seat is given back, whatever the reason (checkout expired,
//! refund, grace period over, pack expired). A seat is released once; the release frees it for
//! the next buyer at once (the capacity trigger counts only live seats) and announces
//! `seat/released` in the same transaction, for whoever waits for that mentor.
//!
//! Taking back dashboard access is the caller's next step ([`crate::access::Access::revoke`]),
//! outside the transaction, since it calls Clerk and Discord.

use diesel_async::AsyncPgConnection;
use inngest_sdk::Event;

use crate::db::DbError;
use crate::events::{SEAT_RELEASED, SeatReleased};
use crate::models::seat::SeatOf;
use crate::models::{InboxEntry, ReleaseReason, SeatReservation};

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
