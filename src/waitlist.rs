//! The waitlist: a buyer who meets a full mentor joins the line; each released seat is offered
//! to the first in line, reserved for them for 24 hours; an offer not taken lapses and the seat
//! goes to the next in line. Checkout consumes the buyer's offer (`payments::checkout`).
//!
//! Every change locks the mentor row first (as checkout and the capacity triggers do), so one
//! mentor's line, offers and holds change one transaction at a time. Each offer is announced
//! (`seat/offered`) in the transaction that makes it; the `lapse-seat-offer` function sleeps
//! until it expires and calls [`lapse_offer`]. A seat's first offer is made once however often
//! its release is announced, a lapsed offer has one successor, and a seat never has two open
//! offers (unique indexes), so replays and duplicate events change nothing.

use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use inngest_sdk::{Classify, Event, Retry};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contacts::{ContactsError, Mentee, reach_mentee};
use crate::db::{DbError, DbPool, conn};
use crate::email::SeatOffered;
use crate::events::{SEAT_OFFERED, SeatOfferMade};
use crate::integrations::clerk::ClerkApi;
use crate::models::waitlist::{
    NewSeatOffer, SeatOffer, WaitlistEntry, WaitlistView, free_seats_for,
};
use crate::models::{InboxEntry, Mentor, OfferStatus, SeatReservation, User, WaitlistStatus};
use crate::notifications::{Delivery, Mailer, NotifyError};

/// How long a seat stays reserved for the buyer it is offered to.
pub const OFFER_WINDOW: Duration = Duration::hours(24);

/// Why a waitlist operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WaitlistError {
    /// No such mentor.
    #[error("mentor {0} not found")]
    MentorNotFound(Uuid),
    /// The mentor has a seat free for the caller: no need to wait.
    #[error("the mentor has a free seat: check out instead of waiting")]
    SeatAvailable,
    /// The caller already has a seat with the mentor (or a checkout in progress); a seat in
    /// grace or on its last session is renewed by checking out.
    #[error("you already have a seat with this mentor")]
    AlreadySeated,
    /// No such offer.
    #[error("seat offer {0} not found")]
    OfferNotFound(Uuid),
    /// The buyer's address could not be had.
    #[error(transparent)]
    Contacts(#[from] ContactsError),
    /// The offer email was not sent.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for WaitlistError {
    fn from(err: diesel::result::Error) -> Self {
        WaitlistError::Db(DbError::Query(err))
    }
}

impl WaitlistError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            WaitlistError::MentorNotFound(_) | WaitlistError::OfferNotFound(_) => "not_found",
            WaitlistError::SeatAvailable => "seat_available",
            WaitlistError::AlreadySeated => "already_seated",
            WaitlistError::Contacts(_) | WaitlistError::Notify(_) | WaitlistError::Db(_) => {
                "unavailable"
            }
        }
    }
}

/// Only the services can recover; a missing mentor or offer stays missing.
impl Classify for WaitlistError {
    fn retry(&self) -> Retry {
        match self {
            WaitlistError::Contacts(e) => e.retry(),
            WaitlistError::Notify(e) => e.retry(),
            WaitlistError::Db(e) => e.retry(),
            WaitlistError::MentorNotFound(_)
            | WaitlistError::SeatAvailable
            | WaitlistError::AlreadySeated
            | WaitlistError::OfferNotFound(_) => Retry::Never,
        }
    }
}

/// The caller's place in line, and whether this call put them there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub entry: WaitlistView,
    pub created: bool,
}

/// Puts the caller in a full mentor's line, once: joining again returns the same entry.
/// Refused when a seat is free for them (they should just buy it), or when they have one.
pub async fn join(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    mentor_id: Uuid,
) -> Result<Joined, WaitlistError> {
    conn.transaction(async move |conn| {
        Mentor::lock(conn, mentor_id)
            .await?
            .ok_or(WaitlistError::MentorNotFound(mentor_id))?;
        let user = User::ensure(conn, clerk_id).await?;
        if let Some(entry) = WaitlistEntry::live(conn, mentor_id, user.id).await? {
            let entry = entry.view(conn).await?;
            return Ok(Joined {
                entry,
                created: false,
            });
        }
        if SeatReservation::has_live(conn, user.id, mentor_id).await? {
            return Err(WaitlistError::AlreadySeated);
        }
        let free = free_seats_for(conn, mentor_id, user.id).await?.unwrap_or(0);
        if free > 0 {
            return Err(WaitlistError::SeatAvailable);
        }
        // The mentor lock serializes joins: nobody else can have put this buyer in line since.
        let entry = WaitlistEntry::join(conn, mentor_id, user.id).await?;
        tracing::info!(%mentor_id, user_id = %user.id, "joined the waitlist");
        Ok(Joined {
            entry: entry.view(conn).await?,
            created: true,
        })
    })
    .await
}

/// Offers a released seat to the first in line, once per seat: a repeated call (a replay, a
/// duplicate `seat/released`) returns the seat's first offer, whatever became of it. `None`
/// when nobody waits or no seat is free (the release freed none, or it was already taken).
pub async fn offer_released_seat(
    conn: &mut AsyncPgConnection,
    seat_id: Uuid,
    mentor_id: Uuid,
) -> Result<Option<SeatOffer>, WaitlistError> {
    conn.transaction(async move |conn| {
        Mentor::lock(conn, mentor_id)
            .await?
            .ok_or(WaitlistError::MentorNotFound(mentor_id))?;
        if let Some(first) = SeatOffer::first_for_seat(conn, seat_id).await? {
            return Ok(Some(first));
        }
        offer_to_next(conn, seat_id, mentor_id, None).await
    })
    .await
}

/// What lapsing an offer did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lapse {
    /// What the offer is now (`taken`: the buyer checked out in time, nothing to do).
    pub status: OfferStatus,
    /// The offer of the same seat to the next in line, if any.
    pub next: Option<SeatOffer>,
}

/// Lapses an offer that was not taken and, in the same transaction, offers its seat to the
/// next in line (so nobody else can take it in between). Idempotent: an offer already lapsed
/// returns the successor it got.
pub async fn lapse_offer(
    conn: &mut AsyncPgConnection,
    offer_id: Uuid,
) -> Result<Lapse, WaitlistError> {
    conn.transaction(async move |conn| {
        let mentor_id = SeatOffer::mentor_of(conn, offer_id)
            .await?
            .ok_or(WaitlistError::OfferNotFound(offer_id))?;
        Mentor::lock(conn, mentor_id).await?;
        let offer = SeatOffer::lock(conn, offer_id)
            .await?
            .ok_or(WaitlistError::OfferNotFound(offer_id))?;
        let next = match offer.status {
            OfferStatus::Taken => None,
            OfferStatus::Lapsed => SeatOffer::successor(conn, offer.id).await?,
            OfferStatus::Open => {
                SeatOffer::lapse(conn, offer.id).await?;
                WaitlistEntry::set_status(conn, offer.entry_id, WaitlistStatus::Lapsed).await?;
                tracing::info!(offer_id = %offer.id, "seat offer lapsed");
                offer_to_next(conn, offer.seat_id, mentor_id, Some(offer.id)).await?
            }
        };
        let status = match offer.status {
            OfferStatus::Open => OfferStatus::Lapsed,
            other => other,
        };
        Ok(Lapse { status, next })
    })
    .await
}

/// Reserves a free seat for the first buyer waiting and announces the offer; `None` when no
/// seat is free or nobody waits. The mentor row must be locked.
async fn offer_to_next(
    conn: &mut AsyncPgConnection,
    seat_id: Uuid,
    mentor_id: Uuid,
    previous_offer_id: Option<Uuid>,
) -> Result<Option<SeatOffer>, WaitlistError> {
    let Some(entry) = WaitlistEntry::first_waiting(conn, mentor_id).await? else {
        return Ok(None);
    };
    // The first in line has nobody ahead: a seat is free for them if any is free at all.
    if free_seats_for(conn, mentor_id, entry.user_id)
        .await?
        .unwrap_or(0)
        < 1
    {
        return Ok(None);
    }
    let offer = SeatOffer::create(
        conn,
        &NewSeatOffer {
            seat_id,
            mentor_id,
            entry_id: entry.id,
            user_id: entry.user_id,
            previous_offer_id,
            expires_at: Utc::now() + OFFER_WINDOW,
        },
    )
    .await?;
    WaitlistEntry::set_status(conn, entry.id, WaitlistStatus::Offered).await?;
    let event = Event::new(
        SEAT_OFFERED,
        SeatOfferMade {
            offer_id: offer.id,
            seat_id,
            mentor_id,
            user_id: offer.user_id,
            expires_at: offer.expires_at,
        },
    )
    .with_id(format!("seat-offered-{}", offer.id));
    InboxEntry::enqueue(conn, &event).await?;
    tracing::info!(offer_id = %offer.id, %seat_id, user_id = %offer.user_id, "seat offered");
    Ok(Some(offer))
}

/// What the offer email needs besides the database and the mailer.
#[derive(Clone, Copy)]
pub struct OfferMail<'a> {
    pub db: &'a DbPool,
    pub mailer: Mailer<'a>,
    /// To look up an address our users table does not have yet.
    pub clerk: Option<&'a ClerkApi>,
    /// The academy's site, for the checkout link.
    pub public_url: &'a str,
}

/// Emails the buyer their offer, once per offer (the idempotency key is the offer's). `None`
/// when the offer is no longer open, or no address is known (the offer stands, and the
/// dashboard shows it).
pub async fn email_offer(
    mail: OfferMail<'_>,
    offer_id: Uuid,
) -> Result<Option<Delivery>, WaitlistError> {
    let (offer, user, mentor) = {
        let mut conn = conn(mail.db).await?;
        let offer = SeatOffer::find(&mut conn, offer_id)
            .await?
            .ok_or(WaitlistError::OfferNotFound(offer_id))?;
        let user = User::find(&mut conn, offer.user_id)
            .await?
            .ok_or(WaitlistError::OfferNotFound(offer_id))?;
        let mentor = Mentor::find(&mut conn, offer.mentor_id).await?;
        (offer, user, mentor)
    };
    if offer.status != OfferStatus::Open {
        // A late retry: the offer was taken or lapsed meanwhile, so there is nothing to tell.
        return Ok(None);
    }
    let to = reach_mentee(mail.db, mail.clerk, &Mentee::from(user)).await?;
    let public = mail.public_url.trim_end_matches('/');
    let email = SeatOffered {
        first_name: to.first_name,
        mentor_name: mentor.display_name,
        expires_at: offer.expires_at,
        checkout_link: format!("{public}/mentors/{}?offer={}", mentor.id, offer.id),
    };
    let key = format!("seat-offer-{}", offer.id);
    let delivery = mail
        .mailer
        .send(Some(offer.user_id), &to.email, &email, &key)
        .await?;
    Ok(Some(delivery))
}
