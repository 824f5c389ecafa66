//! Discord connections and the single-use OAuth states that create them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{discord_connections, oauth_states};

/// A user's Discord account.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = discord_connections)]
pub struct DiscordConnection {
    pub user_id: Uuid,
    pub discord_user_id: String,
    pub discord_username: String,
    pub connected_at: DateTime<Utc>,
}

/// Why a connection could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// Stored now, or already stored identically.
    Connected,
    /// The Discord account belongs to another user, or the user has another account.
    TakenElsewhere,
}

impl DiscordConnection {
    /// The user's connection, if any.
    pub async fn of_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> QueryResult<Option<Self>> {
        discord_connections::table
            .find(user_id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Binds `discord_user_id` to the user; both sides are unique.
    pub async fn connect(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        discord_user_id: &str,
        discord_username: &str,
    ) -> QueryResult<ConnectOutcome> {
        if let Some(existing) = Self::of_user(conn, user_id).await? {
            return Ok(if existing.discord_user_id == discord_user_id {
                ConnectOutcome::Connected
            } else {
                ConnectOutcome::TakenElsewhere
            });
        }
        let inserted = diesel::insert_into(discord_connections::table)
            .values((
                discord_connections::user_id.eq(user_id),
                discord_connections::discord_user_id.eq(discord_user_id),
                discord_connections::discord_username.eq(discord_username),
            ))
            .execute(conn)
            .await;
        match inserted {
            Ok(_) => Ok(ConnectOutcome::Connected),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Ok(ConnectOutcome::TakenElsewhere)
            }
            Err(e) => Err(e),
        }
    }
}

/// Records a new OAuth state (its hash) for a user.
pub async fn store_oauth_state(
    conn: &mut AsyncPgConnection,
    state_hash: &str,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(oauth_states::table)
        .values((
            oauth_states::state_hash.eq(state_hash),
            oauth_states::user_id.eq(user_id),
            oauth_states::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Marks a state used and returns its user, if it exists, is unused and has not expired.
/// One statement, so two concurrent callbacks cannot both consume it.
pub async fn consume_oauth_state(
    conn: &mut AsyncPgConnection,
    state_hash: &str,
) -> QueryResult<Option<Uuid>> {
    diesel::update(oauth_states::table.find(state_hash))
        .filter(oauth_states::used_at.is_null())
        .filter(oauth_states::expires_at.gt(diesel::dsl::now))
        .set(oauth_states::used_at.eq(diesel::dsl::now))
        .returning(oauth_states::user_id)
        .get_result(conn)
        .await
        .optional()
}

/// Deletes up to `limit` states that can no longer be consumed (used, or expired), oldest
/// first, and returns how many went. Bounded, so one statement never holds many row locks.
pub async fn purge_oauth_states(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<usize> {
    let dead: Vec<String> = oauth_states::table
        .filter(
            oauth_states::used_at
                .is_not_null()
                .or(oauth_states::expires_at.le(diesel::dsl::now)),
        )
        .order(oauth_states::created_at)
        .limit(limit)
        .select(oauth_states::state_hash)
        .load(conn)
        .await?;
    if dead.is_empty() {
        return Ok(0);
    }
    diesel::delete(oauth_states::table.filter(oauth_states::state_hash.eq_any(&dead)))
        .execute(conn)
        .await
}
