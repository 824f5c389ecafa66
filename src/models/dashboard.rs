//! What the dashboard shows a signed-in user (`GET /api/me`), read in one consistent snapshot:
//! their packs with each pack's seat and dashboard access, their scheduled sessions and their
//! Discord connection; and, when the user is a mentor, the same for every mentee of theirs,
//! with the mentor's seats used against capacity.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::waitlist::{WaitlistEntry, WaitlistView};

use super::access::DashboardAccess;
use super::discord::DiscordConnection;
use super::{Mentor, SeatReservation, Session, SessionPack, SessionStatus, User};
use crate::schema::{
    dashboard_access, discord_connections, mentors, seat_reservations, session_packs, sessions,
    users,
};

/// A pack with what the dashboard shows beside it.
#[derive(Debug, Clone)]
pub struct PackFacts {
    pub pack: SessionPack,
    pub mentor_name: String,
    /// Who bought it.
    pub buyer: User,
    /// The seat bound to the pack; none once it moved to a renewal (or was never taken).
    pub seat: Option<SeatReservation>,
    /// The dashboard access the pack granted, if any.
    pub access: Option<DashboardAccess>,
}

/// A mentor's side of the dashboard.
#[derive(Debug, Clone)]
pub struct MentorFacts {
    pub mentor: Mentor,
    /// Seats held, active or in grace: what counts against capacity.
    pub seats_used: i64,
    /// Every pack bought from the mentor, newest first.
    pub packs: Vec<PackFacts>,
    /// The scheduled sessions of those packs, earliest first.
    pub sessions: Vec<Session>,
    /// The Discord connections of the mentor's mentees.
    pub discord: Vec<DiscordConnection>,
}

/// Everything `GET /api/me` answers, for one caller. Each part is read by its own query
/// below, so a new part of the dashboard is a new field and a new query here.
#[derive(Debug, Clone, Default)]
pub struct DashboardFacts {
    /// The caller as a buyer; none for a Clerk user who never bought anything.
    pub user: Option<User>,
    /// The caller's packs, newest first.
    pub packs: Vec<PackFacts>,
    /// The scheduled sessions of the caller's packs, earliest first.
    pub sessions: Vec<Session>,
    pub discord: Option<DiscordConnection>,
    /// The mentors' waitlists the caller is in, with any open offer, oldest first.
    pub waitlist: Vec<WaitlistView>,
    /// Present when the caller is a mentor.
    pub mentor: Option<MentorFacts>,
}

/// Whose packs to read.
#[derive(Debug, Clone, Copy)]
enum PacksOf {
    Buyer(Uuid),
    Mentor(Uuid),
}

impl DashboardFacts {
    /// Reads the dashboard of the Clerk user `clerk_id` in one read-only snapshot, so the
    /// parts agree with each other. A caller we do not know gets empty facts.
    pub async fn load(conn: &mut AsyncPgConnection, clerk_id: &str) -> QueryResult<Self> {
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(async move |conn| {
                let mut facts = DashboardFacts::default();
                if let Some(user) = User::by_clerk_id(conn, clerk_id).await? {
                    facts.packs = packs(conn, PacksOf::Buyer(user.id)).await?;
                    facts.sessions = scheduled_sessions(conn, &facts.packs).await?;
                    facts.discord = DiscordConnection::of_user(conn, user.id).await?;
                    facts.waitlist = WaitlistEntry::for_user(conn, user.id).await?;
                    facts.user = Some(user);
                }
                if let Some(mentor) = Mentor::by_clerk_id(conn, clerk_id).await? {
                    facts.mentor = Some(mentor_facts(conn, mentor).await?);
                }
                Ok(facts)
            })
            .await
    }
}

async fn mentor_facts(conn: &mut AsyncPgConnection, mentor: Mentor) -> QueryResult<MentorFacts> {
    let seats_used = SeatReservation::occupied(conn, mentor.id).await?;
    let packs = packs(conn, PacksOf::Mentor(mentor.id)).await?;
    let sessions = scheduled_sessions(conn, &packs).await?;
    let mut mentees: Vec<Uuid> = packs.iter().map(|p| p.buyer.id).collect();
    mentees.sort_unstable();
    mentees.dedup();
    let discord = discord_connections::table
        .filter(discord_connections::user_id.eq_any(mentees))
        .select(DiscordConnection::as_select())
        .load(conn)
        .await?;
    Ok(MentorFacts {
        mentor,
        seats_used,
        packs,
        sessions,
        discord,
    })
}

/// A pack, its mentor's name, its buyer, its seat and its access grant.
type PackRow = (
    SessionPack,
    String,
    User,
    Option<SeatReservation>,
    Option<DashboardAccess>,
);

/// Packs with their mentor, buyer, seat and access, newest first: one query (a pack has at
/// most one seat and one access grant, both unique by pack).
async fn packs(conn: &mut AsyncPgConnection, of: PacksOf) -> QueryResult<Vec<PackFacts>> {
    let query = session_packs::table
        .inner_join(mentors::table.on(mentors::id.eq(session_packs::mentor_id)))
        .inner_join(users::table.on(users::id.eq(session_packs::user_id)))
        .left_join(
            seat_reservations::table
                .on(seat_reservations::session_pack_id.eq(session_packs::id.nullable())),
        )
        .left_join(
            dashboard_access::table.on(dashboard_access::session_pack_id.eq(session_packs::id)),
        )
        .select((
            SessionPack::as_select(),
            mentors::display_name,
            User::as_select(),
            Option::<SeatReservation>::as_select(),
            Option::<DashboardAccess>::as_select(),
        ))
        .order((session_packs::created_at.desc(), session_packs::id))
        .into_boxed();
    let query = match of {
        PacksOf::Buyer(user_id) => query.filter(session_packs::user_id.eq(user_id)),
        PacksOf::Mentor(mentor_id) => query.filter(session_packs::mentor_id.eq(mentor_id)),
    };
    let rows: Vec<PackRow> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(pack, mentor_name, buyer, seat, access)| PackFacts {
            pack,
            mentor_name,
            buyer,
            seat,
            access,
        })
        .collect())
}

/// The scheduled sessions of some packs, earliest first. A session whose time has passed
/// stays scheduled until its mentor ends it, so it is listed too.
async fn scheduled_sessions(
    conn: &mut AsyncPgConnection,
    packs: &[PackFacts],
) -> QueryResult<Vec<Session>> {
    let ids: Vec<Uuid> = packs.iter().map(|p| p.pack.id).collect();
    sessions::table
        .filter(sessions::session_pack_id.eq_any(ids))
        .filter(sessions::status.eq(SessionStatus::Scheduled))
        .order((sessions::scheduled_at, sessions::id))
        .select(Session::as_select())
        .load(conn)
        .await
}
