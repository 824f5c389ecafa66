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

    /// Runs `then` only while the pack's access stands (granted, unexpired, and the pack still
    /// active), holding the pack row meanwhile: a refund or an expiry of the pack waits until
    /// `then` is done, or `then` does not run. `None` when it did not run.
    pub async fn while_granted<T, E, F, Fut>(self, pack_id: Uuid, then: F) -> Result<Option<T>, E>
    where
        F: FnOnce() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, E>> + Send,
        T: Send,
        E: From<diesel::result::Error> + From<DbError> + Send,
    {
        let mut conn = conn(self.db).await?;
        conn.transaction::<_, E, _>(async move |conn| {
            let pack = SessionPack::lock(conn, pack_id).await?;
            let stands = match pack {
                Some(pack) if pack.status == PackStatus::Active => {
                    DashboardAccess::active_for_user(conn, pack.user_id)
                        .await?
                        .iter()
                        .any(|grant| grant.session_pack_id == pack_id)
                }
                _ => false,
            };
            if !stands {
                tracing::info!(%pack_id, "the pack's access does not stand; skipped");
                return Ok(None);
            }
            then().await.map(Some)
        })
        .await
    }

    /// Brings Clerk metadata and the Discord role in line with the database. One user's
    /// publishes run one at a time, each reading the database once it holds the user's lock:
    /// every change to access is followed by a publish, so the last publish reads the last
    /// change and Clerk and Discord end where the database is, however a grant and a refund
    /// interleave. (The lock is held across the provider calls, which have timeouts.)
    async fn publish(self, user_id: Uuid) -> Result<AccessState, AccessError> {
        let mut conn = conn(self.db).await?;
        conn.transaction::<_, AccessError, _>(async move |conn| {
            lock_publishing(conn, user_id).await?;
            let clerk_id = User::clerk_id_of(conn, user_id).await?;
            let grants = DashboardAccess::active_for_user(conn, user_id).await?;
            let discord = DiscordConnection::of_user(conn, user_id).await?;
            self.write(clerk_id, &grants, discord).await
        })
        .await
    }

    /// Writes what the database says to Clerk and Discord.
    async fn write(
        self,
        clerk_id: String,
        grants: &[DashboardAccess],
        discord: Option<DiscordConnection>,
    ) -> Result<AccessState, AccessError> {
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

/// The advisory lock namespace for publishing a user's access (the key is the user).
const PUBLISH_LOCK: i32 = 0x4163_6365;

/// Takes the user's publishing lock until the transaction ends.
async fn lock_publishing(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: Uuid,
) -> Result<(), diesel::result::Error> {
    use diesel::sql_types::{Integer, Text};
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<Integer, _>(PUBLISH_LOCK)
        .bind::<Text, _>(user_id.to_string())
        .execute(conn)
        .await
        .map(drop)
}
