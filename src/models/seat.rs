//! Seat reservations: held at checkout, active once paid, released at the end. The database
//! trigger `enforce_mentor_seat_capacity` refuses any change that would overfill a mentor.
//!
//! A renewal's hold names the seat it renews and takes no place while that seat is live; once
//! paid, the renewed seat moves to the new pack ([`SeatReservation::carry_over`]).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{ReleaseReason, SeatStatus};
use crate::schema::{seat_reservations, session_packs};

/// The constraint name the capacity trigger raises.
pub const CAPACITY_CONSTRAINT: &str = "mentor_seat_capacity";
/// The unique index allowing one live hold per buyer and mentor.
pub const ONE_HOLD_INDEX: &str = "seat_reservations_one_hold_per_buyer";

/// Which seat: the one an order holds, or the one a pack is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatOf {
    /// The order's seat.
    Order(Uuid),
    /// The pack's seat.
    Pack(Uuid),
}

/// A seat with a mentor.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = seat_reservations)]
pub struct SeatReservation {
    pub id: Uuid,
    pub mentor_id: Uuid,
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub session_pack_id: Option<Uuid>,
    pub status: SeatStatus,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub seat_expires_at: Option<DateTime<Utc>>,
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub released_at: Option<DateTime<Utc>>,
    pub release_reason: Option<ReleaseReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// For a renewal's hold: the buyer's seat it renews.
    pub renews_seat_id: Option<Uuid>,
}

/// Whether a database error is the mentor being full.
pub fn is_capacity_error(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info)
            if info.constraint_name() == Some(CAPACITY_CONSTRAINT)
    )
}

/// Whether a database error is a second live hold for the same buyer and mentor.
pub fn is_duplicate_hold_error(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(ONE_HOLD_INDEX)
    )
}

impl SeatReservation {
    /// Holds a seat for an order until `until`.
    pub async fn hold(
        conn: &mut AsyncPgConnection,
        mentor_id: Uuid,
        user_id: Uuid,
        order_id: Uuid,
        until: DateTime<Utc>,
    ) -> QueryResult<Self> {
        diesel::insert_into(seat_reservations::table)
            .values((
                seat_reservations::mentor_id.eq(mentor_id),
                seat_reservations::user_id.eq(user_id),
                seat_reservations::order_id.eq(order_id),
                seat_reservations::status.eq(SeatStatus::Held),
                seat_reservations::hold_expires_at.eq(until),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// Holds a renewal of `renewed` (a live seat of the buyer) for an order until `until`. The
    /// hold takes no place while `renewed` is live, so it succeeds with the mentor full.
    pub async fn hold_renewal(
        conn: &mut AsyncPgConnection,
        renewed: &SeatReservation,
        order_id: Uuid,
        until: DateTime<Utc>,
    ) -> QueryResult<Self> {
        diesel::insert_into(seat_reservations::table)
            .values((
                seat_reservations::mentor_id.eq(renewed.mentor_id),
                seat_reservations::user_id.eq(renewed.user_id),
                seat_reservations::order_id.eq(order_id),
                seat_reservations::status.eq(SeatStatus::Held),
                seat_reservations::hold_expires_at.eq(until),
                seat_reservations::renews_seat_id.eq(renewed.id),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// The buyer's seat with a mentor that a new purchase would renew: one in its grace period,
    /// or an active one whose pack has at most one session left.
    pub async fn renewable(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        mentor_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        let last_session = session_packs::table
            .filter(session_packs::remaining_sessions.le(1))
            .select(session_packs::id);
        seat_reservations::table
            .filter(seat_reservations::user_id.eq(user_id))
            .filter(seat_reservations::mentor_id.eq(mentor_id))
            .filter(
                seat_reservations::status
                    .eq(SeatStatus::Grace)
                    .or(seat_reservations::status
                        .eq(SeatStatus::Active)
                        .and(seat_reservations::session_pack_id.eq_any(last_session.nullable()))),
            )
            .order(seat_reservations::created_at)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Whether the buyer has a live (held, active or grace) seat with the mentor.
    pub async fn has_live(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        mentor_id: Uuid,
    ) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            seat_reservations::table
                .filter(seat_reservations::user_id.eq(user_id))
                .filter(seat_reservations::mentor_id.eq(mentor_id))
                .filter(seat_reservations::status.ne(SeatStatus::Released)),
        ))
        .get_result(conn)
        .await
    }

    /// Pays a renewal, in the fulfilment's transaction: the seat the order's hold renews moves
    /// to `pack_id` and is active until `until` (its grace period cleared), and the hold is
    /// settled (released as `renewed`: it never took a place, so nothing is freed or announced).
    /// `None` when the order is no renewal or its renewed seat was released meanwhile: the hold
    /// is then activated like any purchase's. Idempotent.
    pub async fn carry_over(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
        pack_id: Uuid,
        until: DateTime<Utc>,
    ) -> QueryResult<Option<Self>> {
        let Some(hold) = Self::by_order(conn, order_id).await? else {
            return Ok(None);
        };
        let Some(renewed_id) = hold.renews_seat_id else {
            return Ok(None);
        };
        // Locked: a release at the same moment either comes first (and this purchase then
        // needs the hold's own place) or finds the seat already moved to the new pack.
        let renewed: Self = seat_reservations::table
            .find(renewed_id)
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await?;
        if renewed.session_pack_id == Some(pack_id) {
            return Ok(Some(renewed));
        }
        if !matches!(renewed.status, SeatStatus::Active | SeatStatus::Grace) {
            return Ok(None);
        }
        let moved = diesel::update(seat_reservations::table.find(renewed.id))
            .set((
                seat_reservations::status.eq(SeatStatus::Active),
                seat_reservations::session_pack_id.eq(pack_id),
                seat_reservations::seat_expires_at.eq(until),
                seat_reservations::grace_period_ends_at.eq(None::<DateTime<Utc>>),
                seat_reservations::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await?;
        diesel::update(seat_reservations::table.find(hold.id))
            .filter(seat_reservations::status.eq(SeatStatus::Held))
            .set((
                seat_reservations::status.eq(SeatStatus::Released),
                seat_reservations::released_at.eq(diesel::dsl::now),
                seat_reservations::release_reason.eq(ReleaseReason::Renewed),
                seat_reservations::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        Ok(Some(moved))
    }

    /// The seat that lets a pack's sessions be booked: the one bound to it, or, when that seat
    /// moved on to a renewal's pack, the buyer's live seat with the pack's mentor.
    pub async fn serving_pack(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
        user_id: Uuid,
        mentor_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        if let Some(seat) = Self::by_pack(conn, pack_id).await? {
            return Ok(Some(seat));
        }
        seat_reservations::table
            .filter(seat_reservations::user_id.eq(user_id))
            .filter(seat_reservations::mentor_id.eq(mentor_id))
            .filter(seat_reservations::status.eq_any([SeatStatus::Active, SeatStatus::Grace]))
            .order(seat_reservations::created_at)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The seat of an order.
    pub async fn by_order(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        seat_reservations::table
            .filter(seat_reservations::order_id.eq(order_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The seat bound to a pack.
    pub async fn by_pack(conn: &mut AsyncPgConnection, pack_id: Uuid) -> QueryResult<Option<Self>> {
        seat_reservations::table
            .filter(seat_reservations::session_pack_id.eq(pack_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Makes the order's seat active for a pack until `until`: converts the hold, or takes a
    /// new seat when there was none (or it was released). Idempotent.
    pub async fn activate(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
        mentor_id: Uuid,
        user_id: Uuid,
        pack_id: Uuid,
        until: DateTime<Utc>,
    ) -> QueryResult<Self> {
        let activate = (
            seat_reservations::status.eq(SeatStatus::Active),
            seat_reservations::session_pack_id.eq(pack_id),
            seat_reservations::seat_expires_at.eq(until),
            seat_reservations::hold_expires_at.eq(None::<DateTime<Utc>>),
            seat_reservations::released_at.eq(None::<DateTime<Utc>>),
            seat_reservations::release_reason.eq(None::<ReleaseReason>),
            seat_reservations::updated_at.eq(diesel::dsl::now),
        );
        match Self::by_order(conn, order_id).await? {
            Some(seat) if seat.session_pack_id == Some(pack_id) => Ok(seat),
            Some(seat) => {
                diesel::update(seat_reservations::table.find(seat.id))
                    .set(activate)
                    .returning(Self::as_returning())
                    .get_result(conn)
                    .await
            }
            None => {
                diesel::insert_into(seat_reservations::table)
                    .values((
                        seat_reservations::mentor_id.eq(mentor_id),
                        seat_reservations::user_id.eq(user_id),
                        seat_reservations::order_id.eq(order_id),
                        seat_reservations::status.eq(SeatStatus::Active),
                        seat_reservations::session_pack_id.eq(pack_id),
                        seat_reservations::seat_expires_at.eq(until),
                    ))
                    .returning(Self::as_returning())
                    .get_result(conn)
                    .await
            }
        }
    }

    /// Releases the seat of an order, or of a pack, unless it is already released; returns
    /// the seat if this call released it (so each release happens, and is announced, once).
    pub async fn release(
        conn: &mut AsyncPgConnection,
        of: SeatOf,
        reason: ReleaseReason,
    ) -> QueryResult<Option<Self>> {
        let live =
            seat_reservations::table.filter(seat_reservations::status.ne(SeatStatus::Released));
        let released = (
            seat_reservations::status.eq(SeatStatus::Released),
            seat_reservations::released_at.eq(diesel::dsl::now),
            seat_reservations::release_reason.eq(reason),
            seat_reservations::updated_at.eq(diesel::dsl::now),
        );
        match of {
            SeatOf::Order(order_id) => {
                diesel::update(live.filter(seat_reservations::order_id.eq(order_id)))
                    .set(released)
                    .returning(Self::as_returning())
                    .get_result(conn)
                    .await
            }
            SeatOf::Pack(pack_id) => {
                diesel::update(live.filter(seat_reservations::session_pack_id.eq(pack_id)))
                    .set(released)
                    .returning(Self::as_returning())
                    .get_result(conn)
                    .await
            }
        }
        .optional()
    }

    /// The seat bound to a pack, locked until the transaction ends. A seat moved to another
    /// pack meanwhile (a renewal) is not found: the row is re-read once the lock is granted.
    pub async fn lock_by_pack(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        seat_reservations::table
            .filter(seat_reservations::session_pack_id.eq(pack_id))
            .for_update()
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Puts the pack's active seat in its grace period until `ends_at`. A seat already in
    /// grace for this pack keeps the end it has (so a retried start does not extend it).
    /// `None` when the pack's seat is neither active nor in grace, or the pack has none (it was
    /// released, or moved to a renewal).
    pub async fn start_grace(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
        ends_at: DateTime<Utc>,
    ) -> QueryResult<Option<Self>> {
        let of_pack =
            seat_reservations::table.filter(seat_reservations::session_pack_id.eq(pack_id));
        let started =
            diesel::update(of_pack.filter(seat_reservations::status.eq(SeatStatus::Active)))
                .set((
                    seat_reservations::status.eq(SeatStatus::Grace),
                    seat_reservations::grace_period_ends_at.eq(ends_at),
                    seat_reservations::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Self::as_returning())
                .get_result(conn)
                .await
                .optional()?;
        match started {
            Some(seat) => Ok(Some(seat)),
            None => of_pack
                .filter(seat_reservations::status.eq(SeatStatus::Grace))
                .select(Self::as_select())
                .first(conn)
                .await
                .optional(),
        }
    }

    /// Seats of a mentor that count against capacity, as the capacity trigger counts them:
    /// held, active and grace seats (a renewal's hold only once the seat it renews is gone) and
    /// seats offered to the waitlist.
    pub async fn occupied(conn: &mut AsyncPgConnection, mentor_id: Uuid) -> QueryResult<i64> {
        #[derive(QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            taken: i64,
        }
        diesel::sql_query("SELECT mentor_seats_taken($1, NULL, NULL) AS taken")
            .bind::<diesel::sql_types::Uuid, _>(mentor_id)
            .get_result::<Taken>(conn)
            .await
            .map(|row| row.taken)
    }
}
