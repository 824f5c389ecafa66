//! What the local dev console (`GET /dev`) shows: the newest rows of every table a purchase
//! touches, each with the names a person needs to read it (buyer, mentor, product). Read-only,
//! and bounded ([`LIMIT`] rows a list) so a long-lived dev database still renders quickly.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::access::DashboardAccess;
use super::email_log::EmailLogEntry;
use super::{
    InboxEntry, Mentor, Order, OrderStatus, PackStatus, Product, SeatReservation, SeatStatus,
    Session, SessionPack, User,
};
use crate::schema::{
    dashboard_access, discord_connections, email_log, mentors, mentorship_products,
    onboarding_outcomes, orders, seat_reservations, session_packs, sessions, users, webhook_inbox,
};

/// The most rows any list shows, newest first.
pub const LIMIT: i64 = 50;

/// An order with its buyer, product and mentor.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order: Order,
    pub buyer: User,
    pub product: Product,
    pub mentor: Mentor,
}

/// A pack with its buyer and mentor.
#[derive(Debug, Clone)]
pub struct PackRow {
    pub pack: SessionPack,
    pub buyer: User,
    pub mentor: Mentor,
}

/// A mentor with the seats that count against capacity (held, active, in grace).
#[derive(Debug, Clone)]
pub struct MentorSeats {
    pub mentor: Mentor,
    pub seats: Vec<(SeatReservation, User)>,
}

/// A session with its pack's buyer and its mentor.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub session: Session,
    pub buyer: User,
    pub mentor: Mentor,
}

/// A paid order whose onboarding has no outcome yet and whose buyer has not connected
/// Discord: its `onboarding-flow` run is waiting for `user/discord.connected`.
#[derive(Debug, Clone)]
pub struct AwaitingDiscord {
    pub order: Order,
    pub buyer: User,
    /// When the welcome email and the Discord reminder went, if they did.
    pub welcome_sent_at: Option<DateTime<Utc>>,
    pub reminder_sent_at: Option<DateTime<Utc>>,
}

/// Everything the console shows.
#[derive(Debug, Clone, Default)]
pub struct ConsoleFacts {
    pub orders: Vec<OrderRow>,
    pub packs: Vec<PackRow>,
    pub mentors: Vec<MentorSeats>,
    pub sessions: Vec<SessionRow>,
    pub access: Vec<(DashboardAccess, User, Mentor)>,
    pub emails: Vec<EmailLogEntry>,
    pub inbox: Vec<InboxEntry>,
    pub awaiting_discord: Vec<AwaitingDiscord>,
    /// Active products with their mentor, for the buy form.
    pub products: Vec<(Product, Mentor)>,
}

impl ConsoleFacts {
    /// Reads every list in one repeatable-read transaction, so the lists agree.
    pub async fn read(conn: &mut AsyncPgConnection) -> QueryResult<Self> {
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| Self::read_in(conn).await)
            .await
    }

    async fn read_in(conn: &mut AsyncPgConnection) -> QueryResult<Self> {
        let orders = orders::table
            .inner_join(users::table)
            .inner_join(mentorship_products::table.inner_join(mentors::table))
            .order(orders::created_at.desc())
            .limit(LIMIT)
            .select((
                Order::as_select(),
                User::as_select(),
                Product::as_select(),
                Mentor::as_select(),
            ))
            .load::<(Order, User, Product, Mentor)>(conn)
            .await?
            .into_iter()
            .map(|(order, buyer, product, mentor)| OrderRow {
                order,
                buyer,
                product,
                mentor,
            })
            .collect();
        let packs = session_packs::table
            .inner_join(users::table)
            .inner_join(mentors::table)
            .order(session_packs::created_at.desc())
            .limit(LIMIT)
            .select((
                SessionPack::as_select(),
                User::as_select(),
                Mentor::as_select(),
            ))
            .load::<(SessionPack, User, Mentor)>(conn)
            .await?
            .into_iter()
            .map(|(pack, buyer, mentor)| PackRow {
                pack,
                buyer,
                mentor,
            })
            .collect();
        let mentor_list = mentors::table
            .order(mentors::display_name)
            .select(Mentor::as_select())
            .load::<Mentor>(conn)
            .await?;
        let live_seats = seat_reservations::table
            .inner_join(users::table)
            .filter(seat_reservations::status.ne(SeatStatus::Released))
            .order(seat_reservations::created_at)
            .select((SeatReservation::as_select(), User::as_select()))
            .load::<(SeatReservation, User)>(conn)
            .await?;
        let mentors = mentor_list
            .into_iter()
            .map(|mentor| MentorSeats {
                seats: live_seats
                    .iter()
                    .filter(|(seat, _)| seat.mentor_id == mentor.id)
                    .cloned()
                    .collect(),
                mentor,
            })
            .collect();
        let sessions = sessions::table
            .inner_join(session_packs::table.inner_join(users::table))
            .inner_join(mentors::table)
            .order(sessions::scheduled_at.desc())
            .limit(LIMIT)
            .select((Session::as_select(), User::as_select(), Mentor::as_select()))
            .load::<(Session, User, Mentor)>(conn)
            .await?
            .into_iter()
            .map(|(session, buyer, mentor)| SessionRow {
                session,
                buyer,
                mentor,
            })
            .collect();
        let access = dashboard_access::table
            .inner_join(users::table)
            .inner_join(mentors::table)
            .order(dashboard_access::granted_at.desc())
            .limit(LIMIT)
            .select((
                DashboardAccess::as_select(),
                User::as_select(),
                Mentor::as_select(),
            ))
            .load(conn)
            .await?;
        let emails = email_log::table
            .order(email_log::sent_at.desc())
            .limit(LIMIT)
            .select(EmailLogEntry::as_select())
            .load(conn)
            .await?;
        let inbox = webhook_inbox::table
            .order(webhook_inbox::received_at.desc())
            .limit(LIMIT)
            .select(InboxEntry::as_select())
            .load(conn)
            .await?;
        let awaiting_discord = awaiting_discord(conn).await?;
        let products = mentorship_products::table
            .inner_join(mentors::table)
            .filter(mentorship_products::active)
            .order((mentors::display_name, mentorship_products::name))
            .select((Product::as_select(), Mentor::as_select()))
            .load(conn)
            .await?;
        Ok(Self {
            orders,
            packs,
            mentors,
            sessions,
            access,
            emails,
            inbox,
            awaiting_discord,
            products,
        })
    }

    /// The packs a session can be booked on: active, with sessions left.
    pub fn bookable_packs(&self) -> impl Iterator<Item = &PackRow> {
        self.packs
            .iter()
            .filter(|p| p.pack.status == PackStatus::Active && p.pack.remaining_sessions > 0)
    }
}

/// Paid orders whose onboarding is still open, with the emails it sent so far.
async fn awaiting_discord(conn: &mut AsyncPgConnection) -> QueryResult<Vec<AwaitingDiscord>> {
    let open = orders::table
        .inner_join(users::table)
        .filter(orders::status.eq(OrderStatus::Paid))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            onboarding_outcomes::table.filter(onboarding_outcomes::order_id.eq(orders::id)),
        )))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            discord_connections::table.filter(discord_connections::user_id.eq(orders::user_id)),
        )))
        .order(orders::paid_at.desc())
        .limit(LIMIT)
        .select((Order::as_select(), User::as_select()))
        .load::<(Order, User)>(conn)
        .await?;
    let mut waiting = Vec::with_capacity(open.len());
    for (order, buyer) in open {
        // The onboarding emails' idempotency keys (functions/onboarding_flow.rs).
        let welcome = format!("onboarding-{}-welcome", order.id);
        let reminder = format!("onboarding-{}-reminder", order.id);
        let sent: Vec<(String, DateTime<Utc>)> = email_log::table
            .filter(email_log::idempotency_key.eq_any([&welcome, &reminder]))
            .filter(email_log::status.ne(super::EmailStatus::Sending))
            .select((email_log::idempotency_key, email_log::sent_at))
            .load(conn)
            .await?;
        let at = |key: &str| sent.iter().find(|(k, _)| k == key).map(|(_, at)| *at);
        waiting.push(AwaitingDiscord {
            welcome_sent_at: at(&welcome),
            reminder_sent_at: at(&reminder),
            order,
            buyer,
        });
    }
    Ok(waiting)
}
