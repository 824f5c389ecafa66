//! Dashboard access, kept in three places: the database (the truth), the Clerk user's public
//! metadata (what the dashboard front end reads), and, with a Discord bot, the mentee role in
//! the academy's guild. Granting and revoking recompute all three from the database, so both
//! are idempotent and safe to retry.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::{DbError, DbPool, conn};
use crate::integrations::clerk::{ClerkApi, ClerkApiError};
use crate::integrations::discord::{DiscordApi, DiscordError};
use crate::models::access::DashboardAccess;
use crate::models::discord::DiscordConnection;
use crate::models::{PackStatus, RevokeReason, SessionPack, User};
use diesel_async::AsyncConnection;

/// Why access could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The pack does not exist.
    #[error("session pack {0} not found")]
    PackNotFound(Uuid),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Clerk failed.
    #[error(transparent)]
    Clerk(#[from] ClerkApiError),
    /// Discord failed.
    #[error(transparent)]
    Discord(#[from] DiscordError),
}

impl From<diesel::result::Error> for AccessError {
    fn from(err: diesel::result::Error) -> Self {
        AccessError::Db(DbError::Query(err))
    }
}

/// Each source decides for itself; a missing pack will not appear by retrying.
impl inngest_sdk::Classify for AccessError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            AccessError::PackNotFound(_) => inngest_sdk::Retry::Never,
            AccessError::Db(e) => e.retry(),
            AccessError::Clerk(e) => e.retry(),
            AccessError::Discord(e) => e.retry(),
        }
    }
}

/// What the user may access now, as published to Clerk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccessState {
    pub clerk_id: String,
    pub dashboard: Value,
    pub has_access: bool,
}

/// Where access lives besides the database: Clerk and, with a bot, Discord.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    db: &'a DbPool,
    clerk: Option<&'a ClerkApi>,
    discord: Option<&'a DiscordApi>,
}

impl<'a> Access<'a> {
    /// Access kept in `db`, published to the clients that are configured.
    pub fn new(
        db: &'a DbPool,
        clerk: Option<&'a ClerkApi>,
        discord: Option<&'a DiscordApi>,
    ) -> Self {
        Self { db, clerk, discord }
    }

    /// Grants dashboard access for a pack, unless the pack is no longer active (refunded or
    /// expired while onboarding waited): the pack row is locked, so a concurrent refund either
    /// sees the grant and revokes it, or this sees the refund and grants nothing.
    pub async fn grant(self, pack_id: Uuid) -> Result<AccessState, AccessError> {
        let user_id = {
            let mut conn = conn(self.db).await?;
            conn.transaction::<_, AccessError, _>(async move |conn| {
                let pack = SessionPack::lock(conn, pack_id)
                    .await?
                    .ok_or(AccessError::PackNotFound(pack_id))?;
                if pack.status == PackStatus::Active {
                    DashboardAccess::grant(conn, pack.user_id, pack.mentor_id, pack.id, pack.expires_at).await?;
                } else {
                    tracing::info!(%pack_id, status = %pack.status, "pack not active; no access granted");
                }
                Ok(pack.user_id)
            })
            .await?
        };
        self.publish(user_id).await
    }

    /// Revokes the access a pack gave (refund, seat released, pack expired). `None` when the pack
    /// never gave access (nothing to take back, nothing to publish).
    pub async fn revoke(
        self,
        pack_id: Uuid,
        reason: RevokeReason,
    ) -> Result<Option<AccessState>, AccessError> {
        let user_id = {
            let mut conn = conn(self.db).await?;
            let pack = SessionPack::find(&mut conn, pack_id)
                .await?
                .ok_or(AccessError::PackNotFound(pack_id))?;
            if !DashboardAccess::revoke(&mut conn, pack.id, reason).await? {
                return Ok(None);
            }
            pack.user_id
        };
        self.publish(user_id).await.map(Some)
    }

    /// Brings Clerk metadata and the Discord role in line with the database.
    async fn publish(self, user_id: Uuid) -> Result<AccessState, AccessError> {
        let (clerk_id, grants, discord) = {
            let mut conn = conn(self.db).await?;
            let clerk_id = User::clerk_id_of(&mut conn, user_id).await?;
            let grants = DashboardAccess::active_for_user(&mut conn, user_id).await?;
            let discord = DiscordConnection::of_user(&mut conn, user_id).await?;
            (clerk_id, grants, discord)
        };
        let mentors: Vec<Value> = grants
            .iter()
            .map(|g| json!({ "mentorId": g.mentor_id, "packId": g.session_pack_id, "until": g.granted_until }))
            .collect();
        let has_access = !mentors.is_empty();
        let dashboard = json!({ "access": has_access, "mentors": mentors });
        if let Some(clerk) = self.clerk {
            clerk
                .set_dashboard_metadata(&clerk_id, dashboard.clone())
                .await?;
        }
        if let (Some(discord_api), Some(connection)) = (self.discord, discord)
            && discord_api.has_bot()
        {
            let changed = if has_access {
                discord_api
                    .add_mentee_role(&connection.discord_user_id)
                    .await
            } else {
                discord_api
                    .remove_mentee_role(&connection.discord_user_id)
                    .await
            };
            match changed {
                // Not in the guild (they left, or joining failed): nothing to change there.
                Err(DiscordError::Status(answer)) if answer.status == 404 => {
                    tracing::warn!(discord_user = %connection.discord_user_id, "not a guild member; role unchanged");
                }
                other => other?,
            }
        }
        Ok(AccessState {
            clerk_id,
            dashboard,
            has_access,
        })
    }
}
