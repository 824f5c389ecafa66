//! Who the emails about a pack or a session go to: its mentee (at the address our users row
//! knows, else the one Clerk has) and its mentor (`mentors.email`).

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{DbError, DbPool};
use crate::integrations::clerk::ClerkApi;
use crate::models::{Mentor, SessionPack, SessionStatus, User};
use crate::models::{PackStatus, Session};
use crate::onboarding::{OnboardingError, fetch_buyer};

/// Why the people of a pack could not be found or written to.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// The pack does not exist.
    #[error("session pack {0} not found")]
    PackNotFound(Uuid),
    /// The mentee's address had to come from Clerk, and did not.
    #[error(transparent)]
    Clerk(#[from] OnboardingError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ContactsError {
    fn from(err: diesel::result::Error) -> Self {
        ContactsError::Db(err.into())
    }
}

/// A missing pack stays missing; Clerk and the database decide for themselves.
impl inngest_sdk::Classify for ContactsError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            ContactsError::PackNotFound(_) => inngest_sdk::Retry::Never,
            ContactsError::Clerk(e) => e.retry(),
            ContactsError::Db(e) => e.retry(),
        }
    }
}

/// The buyer of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mentee {
    pub user_id: Uuid,
    pub clerk_id: String,
    /// As our users row has it (filled in from Clerk); see [`mentee_email`].
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl Mentee {
    /// The name a mentor knows them by: first and last name, else "your mentee".
    pub fn display_name(&self) -> String {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            "your mentee".to_owned()
        } else {
            name
        }
    }
}

impl From<User> for Mentee {
    fn from(user: User) -> Self {
        Self {
            user_id: user.id,
            clerk_id: user.clerk_id,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
        }
    }
}

/// A pack and the two people it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackContacts {
    pub pack_id: Uuid,
    pub pack_status: PackStatus,
    pub remaining_sessions: i32,
    pub expires_at: DateTime<Utc>,
    pub mentee: Mentee,
    pub mentor_id: Uuid,
    pub mentor_name: String,
    pub mentor_email: String,
}

impl PackContacts {
    /// The mentor's first name, to greet them by.
    pub fn mentor_first_name(&self) -> Option<String> {
        self.mentor_name
            .split_whitespace()
            .next()
            .map(str::to_owned)
    }
}

/// The pack and its mentee and mentor.
pub async fn of_pack(
    conn: &mut AsyncPgConnection,
    pack_id: Uuid,
) -> Result<PackContacts, ContactsError> {
    let pack = SessionPack::find(conn, pack_id)
        .await?
        .ok_or(ContactsError::PackNotFound(pack_id))?;
    let user = User::find(conn, pack.user_id)
        .await?
        .ok_or(ContactsError::PackNotFound(pack_id))?;
    let mentor = Mentor::find(conn, pack.mentor_id).await?;
    Ok(PackContacts {
        pack_id: pack.id,
        pack_status: pack.status,
        remaining_sessions: pack.remaining_sessions,
        expires_at: pack.expires_at,
        mentee: Mentee::from(user),
        mentor_id: mentor.id,
        mentor_name: mentor.display_name,
        mentor_email: mentor.email,
    })
}

/// The people of a session, if it is still scheduled at `at` (not cancelled, ended or moved
/// since): what a reminder checks just before it is sent.
pub async fn of_scheduled_session(
    conn: &mut AsyncPgConnection,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<PackContacts>, ContactsError> {
    let session = Session::find(conn, session_id).await?;
    match session {
        Some(s) if s.status == SessionStatus::Scheduled && s.scheduled_at == at => {
            Ok(Some(of_pack(conn, s.session_pack_id).await?))
        }
        _ => Ok(None),
    }
}

/// Where and how to write to someone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addressee {
    pub email: String,
    pub first_name: Option<String>,
}

/// The mentee's address and first name: our users row's, else their Clerk profile's (which
/// then refreshes the row). A mentee Clerk has no address for is an error no retry will fix.
pub async fn reach_mentee(
    db: &DbPool,
    clerk: Option<&ClerkApi>,
    mentee: &Mentee,
) -> Result<Addressee, ContactsError> {
    if let Some(email) = mentee.email.as_deref().filter(|e| !e.trim().is_empty()) {
        return Ok(Addressee {
            email: email.to_owned(),
            first_name: mentee.first_name.clone(),
        });
    }
    let user = fetch_buyer(db, clerk, &mentee.clerk_id).await?;
    let email = user
        .email
        .ok_or_else(|| OnboardingError::NoEmail(mentee.clerk_id.clone()))?;
    Ok(Addressee {
        email,
        first_name: user.first_name,
    })
}
