//! The waitlist: buyers in line for a full mentor, and released seats offered to them one at a
//! time. The database keeps one live entry per buyer and mentor, one open offer per seat and a
//! seat's first offer made once, and counts open offers and the buyers waiting ahead against
//! the mentor's capacity (migration `2026-11-28-000002_renewal_waitlist`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OfferStatus, WaitlistStatus};
use crate::schema::{mentors, seat_offers, waitlist_entries};

/// A buyer's place in a mentor's line.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = waitlist_entries)]
pub struct WaitlistEntry {
    pub id: Uuid,
    pub mentor_id: Uuid,
    pub user_id: Uuid,
    pub status: WaitlistStatus,
    pub joined_at: DateTime<Utc>,
    /// When the buyer left the line (bought, or let an offer lapse).
    pub left_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A released seat reserved for one buyer in line until it is taken or lapses.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = seat_offers)]
pub struct SeatOffer {
    pub id: Uuid,
    /// The released seat on offer.
    pub seat_id: Uuid,
    pub mentor_id: Uuid,
    pub entry_id: Uuid,
    pub user_id: Uuid,
    /// The lapsed offer of the same seat this one follows.
    pub previous_offer_id: Option<Uuid>,
    pub status: OfferStatus,
    pub expires_at: DateTime<Utc>,
    /// The checkout that took it.
    pub order_id: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A waitlist entry as the dashboard shows it (`GET /api/me`). Its nullable fields are always
/// sent (as `null`), hence required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistView {
    pub entry_id: Uuid,
    pub mentor_id: Uuid,
    pub mentor_name: String,
    pub status: WaitlistStatus,
    pub joined_at: DateTime<Utc>,
    /// The place in line (1: next to be offered a seat), while waiting.
    #[schema(required = true)]
    pub position: Option<i64>,
    /// The seat offered, while the offer is open.
    #[schema(required = true)]
    pub offer: Option<OfferView>,
}

/// An open offer: the buyer can check out with the mentor until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    pub offer_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Free {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    free: i64,
}

/// Seats of a mentor free for `user_id`: the capacity, less the seats taken (open offers
/// included) and the buyers waiting ahead of them; `None` for an unknown mentor.
pub async fn free_seats_for(
    conn: &mut AsyncPgConnection,
    mentor_id: Uuid,
    user_id: Uuid,
) -> QueryResult<Option<i64>> {
    diesel::sql_query(
        "SELECT m.seat_capacity - mentor_seats_taken(m.id, NULL, NULL) \
                - mentor_waiting_ahead(m.id, $2) AS free \
         FROM mentors m WHERE m.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(mentor_id)
    .bind::<diesel::sql_types::Uuid, _>(user_id)
    .get_result::<Free>(conn)
    .await
    .optional()
    .map(|row| row.map(|r| r.free))
}

fn live() -> diesel::dsl::EqAny<waitlist_entries::status, [WaitlistStatus; 2]> {
    waitlist_entries::status.eq_any([WaitlistStatus::Waiting, WaitlistStatus::Offered])
}

impl WaitlistEntry {
    /// The buyer's entry in a mentor's line, if they are in it.
    pub async fn live(
        conn: &mut AsyncPgConnection,
        mentor_id: Uuid,
        user_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        waitlist_entries::table
            .filter(waitlist_entries::mentor_id.eq(mentor_id))
            .filter(waitlist_entries::user_id.eq(user_id))
            .filter(live())
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Puts the buyer at the end of the line (a second live entry for the same buyer and
    /// mentor is refused by a unique index).
    pub async fn join(
        conn: &mut AsyncPgConnection,
        mentor_id: Uuid,
        user_id: Uuid,
    ) -> QueryResult<Self> {
        diesel::insert_into(waitlist_entries::table)
            .values((
                waitlist_entries::mentor_id.eq(mentor_id),
                waitlist_entries::user_id.eq(user_id),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// The first buyer waiting for a mentor, locked.
    pub async fn first_waiting(
        conn: &mut AsyncPgConnection,
        mentor_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        waitlist_entries::table
            .filter(waitlist_entries::mentor_id.eq(mentor_id))
            .filter(waitlist_entries::status.eq(WaitlistStatus::Waiting))
            .order((waitlist_entries::joined_at, waitlist_entries::id))
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// Moves a live entry on: offered, or out of the line (purchased, lapsed).
    pub async fn set_status(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        status: WaitlistStatus,
    ) -> QueryResult<()> {
        let left = matches!(status, WaitlistStatus::Purchased | WaitlistStatus::Lapsed);
        diesel::update(waitlist_entries::table.find(id))
            .filter(live())
            .set((
                waitlist_entries::status.eq(status),
                waitlist_entries::left_at.eq(left.then(Utc::now)),
                waitlist_entries::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// The buyer bought a seat with the mentor: they leave its line, if they were in it.
    pub async fn leave_for_purchase(
        conn: &mut AsyncPgConnection,
        mentor_id: Uuid,
        user_id: Uuid,
    ) -> QueryResult<()> {
        if let Some(entry) = Self::live(conn, mentor_id, user_id).await? {
            Self::set_status(conn, entry.id, WaitlistStatus::Purchased).await?;
        }
        Ok(())
    }

    /// The entry's place in line (1: next), counting only buyers still waiting.
    pub async fn position(&self, conn: &mut AsyncPgConnection) -> QueryResult<i64> {
        use diesel::dsl::count_star;
        let ahead: i64 = waitlist_entries::table
            .filter(waitlist_entries::mentor_id.eq(self.mentor_id))
            .filter(waitlist_entries::status.eq(WaitlistStatus::Waiting))
            .filter(
                waitlist_entries::joined_at
                    .lt(self.joined_at)
                    .or(waitlist_entries::joined_at
                        .eq(self.joined_at)
                        .and(waitlist_entries::id.lt(self.id))),
            )
            .select(count_star())
            .get_result(conn)
            .await?;
        Ok(ahead + 1)
    }

    /// How the dashboard shows this entry.
    pub async fn view(&self, conn: &mut AsyncPgConnection) -> QueryResult<WaitlistView> {
        let mentor_name: String = mentors::table
            .find(self.mentor_id)
            .select(mentors::display_name)
            .first(conn)
            .await?;
        let position = match self.status {
            WaitlistStatus::Waiting => Some(self.position(conn).await?),
            _ => None,
        };
        let offer = seat_offers::table
            .filter(seat_offers::entry_id.eq(self.id))
            .filter(seat_offers::status.eq(OfferStatus::Open))
            .select(SeatOffer::as_select())
            .first(conn)
            .await
            .optional()?
            .map(|o| OfferView {
                offer_id: o.id,
                expires_at: o.expires_at,
            });
        Ok(WaitlistView {
            entry_id: self.id,
            mentor_id: self.mentor_id,
            mentor_name,
            status: self.status,
            joined_at: self.joined_at,
            position,
            offer,
        })
    }

    /// The user's places in line (waiting or offered a seat), oldest first, with their offers.
    pub async fn for_user(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
    ) -> QueryResult<Vec<WaitlistView>> {
        let entries: Vec<Self> = waitlist_entries::table
            .filter(waitlist_entries::user_id.eq(user_id))
            .filter(live())
            .order(waitlist_entries::joined_at)
            .select(Self::as_select())
            .load(conn)
            .await?;
        let mut views = Vec::with_capacity(entries.len());
        for entry in &entries {
            views.push(entry.view(conn).await?);
        }
        Ok(views)
    }
}

/// An offer about to be made.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = seat_offers)]
pub struct NewSeatOffer {
    pub seat_id: Uuid,
    pub mentor_id: Uuid,
    pub entry_id: Uuid,
    pub user_id: Uuid,
    pub previous_offer_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

impl SeatOffer {
    /// Makes an offer (refused by the database if the mentor has no seat to give).
    pub async fn create(conn: &mut AsyncPgConnection, offer: &NewSeatOffer) -> QueryResult<Self> {
        diesel::insert_into(seat_offers::table)
            .values(offer)
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// The offer, if it exists.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        seat_offers::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The offer, locked for the rest of the transaction.
    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        seat_offers::table
            .find(id)
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// The mentor of an offer, if the offer exists.
    pub async fn mentor_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Uuid>> {
        seat_offers::table
            .find(id)
            .select(seat_offers::mentor_id)
            .first(conn)
            .await
            .optional()
    }

    /// The first offer of a released seat, if one was made.
    pub async fn first_for_seat(
        conn: &mut AsyncPgConnection,
        seat_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        seat_offers::table
            .filter(seat_offers::seat_id.eq(seat_id))
            .filter(seat_offers::previous_offer_id.is_null())
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The offer of the same seat made when this one lapsed, if any.
    pub async fn successor(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        seat_offers::table
            .filter(seat_offers::previous_offer_id.eq(id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Closes an open offer as lapsed; `None` if it was not open.
    pub async fn lapse(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        diesel::update(seat_offers::table.find(id))
            .filter(seat_offers::status.eq(OfferStatus::Open))
            .set((
                seat_offers::status.eq(OfferStatus::Lapsed),
                seat_offers::closed_at.eq(diesel::dsl::now),
                seat_offers::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Takes the buyer's open, unexpired offer of a seat with the mentor for an order, if they
    /// have one: the offer stops counting, so the order's hold can take its place.
    pub async fn take(
        conn: &mut AsyncPgConnection,
        mentor_id: Uuid,
        user_id: Uuid,
        order_id: Uuid,
    ) -> QueryResult<Option<Self>> {
        diesel::update(seat_offers::table)
            .filter(seat_offers::mentor_id.eq(mentor_id))
            .filter(seat_offers::user_id.eq(user_id))
            .filter(seat_offers::status.eq(OfferStatus::Open))
            .filter(seat_offers::expires_at.gt(diesel::dsl::now))
            .set((
                seat_offers::status.eq(OfferStatus::Taken),
                seat_offers::order_id.eq(order_id),
                seat_offers::closed_at.eq(diesel::dsl::now),
                seat_offers::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }
}
