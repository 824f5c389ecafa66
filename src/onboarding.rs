//! What onboarding needs to know about a buyer: their Clerk profile (required to have an email
//! address, and kept in our users table), their purchase, and whether Discord is connected.
//! The `onboarding-flow` workflow runs these as steps.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{DbError, DbPool, conn};
use crate::integrations::clerk::{ClerkApi, ClerkApiError, ClerkUser};
use crate::models::discord::DiscordConnection;
use crate::models::{Mentor, SessionPack, User, UserProfile};

/// Why a buyer could not be onboarded (yet).
#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    /// Clerk is not configured on this deployment.
    #[error("Clerk is not configured")]
    ClerkNotConfigured,
    /// The buyer has no address to send the welcome email to.
    #[error("Clerk user {0} has no email address to onboard")]
    NoEmail(String),
    /// The purchased pack does not exist.
    #[error("session pack {0} not found")]
    PackNotFound(Uuid),
    /// Clerk failed.
    #[error(transparent)]
    Clerk(#[from] ClerkApiError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for OnboardingError {
    fn from(err: diesel::result::Error) -> Self {
        OnboardingError::Db(err.into())
    }
}

/// Missing configuration or data stays missing; Clerk and the database decide for themselves.
impl inngest_sdk::Classify for OnboardingError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            OnboardingError::ClerkNotConfigured
            | OnboardingError::NoEmail(_)
            | OnboardingError::PackNotFound(_) => inngest_sdk::Retry::Never,
            OnboardingError::Clerk(e) => e.retry(),
            OnboardingError::Db(e) => e.retry(),
        }
    }
}

/// The buyer's Clerk user, required to have an email address; refreshes our users row.
pub async fn fetch_buyer(
    db: &DbPool,
    clerk: Option<&ClerkApi>,
    clerk_id: &str,
) -> Result<ClerkUser, OnboardingError> {
    let clerk = clerk.ok_or(OnboardingError::ClerkNotConfigured)?;
    let user = clerk.get_user(clerk_id).await?;
    if user.email.is_none() {
        return Err(OnboardingError::NoEmail(clerk_id.to_owned()));
    }
    let profile = UserProfile {
        clerk_id: user.id.clone(),
        email: user.email.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
    };
    User::upsert(&mut *conn(db).await?, &profile).await?;
    Ok(user)
}

/// What the onboarding emails say about the purchase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purchase {
    pub user_id: Uuid,
    pub mentor_name: String,
    pub sessions: i32,
    pub expires_at: DateTime<Utc>,
    /// When the pack was bought: what the emails' links expire from, so a retried email is
    /// the same email (Resend refuses a reused idempotency key with another body). Absent in
    /// runs recorded before it existed.
    #[serde(default)]
    pub purchased_at: Option<DateTime<Utc>>,
}

/// The purchase behind a pack.
pub async fn load_purchase(
    conn: &mut AsyncPgConnection,
    pack_id: Uuid,
) -> Result<Purchase, OnboardingError> {
    let pack = SessionPack::find(conn, pack_id)
        .await?
        .ok_or(OnboardingError::PackNotFound(pack_id))?;
    let mentor = Mentor::find(conn, pack.mentor_id).await?;
    Ok(Purchase {
        user_id: pack.user_id,
        mentor_name: mentor.display_name,
        sessions: pack.total_sessions,
        expires_at: pack.expires_at,
        purchased_at: Some(pack.created_at),
    })
}

/// Whether the user has connected Discord.
pub async fn is_discord_connected(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<bool, DbError> {
    Ok(DiscordConnection::of_user(conn, user_id).await?.is_some())
}
