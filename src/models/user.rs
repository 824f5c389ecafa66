//! Buyers, keyed by their Clerk id.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::users;

/// A user of the academy.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub clerk_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What Clerk tells us about a user.
#[derive(Debug, Clone, Default, Insertable, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserProfile {
    pub clerk_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl User {
    /// Inserts or refreshes the user with this Clerk id.
    pub async fn upsert(conn: &mut AsyncPgConnection, profile: &UserProfile) -> QueryResult<Self> {
        diesel::insert_into(users::table)
            .values(profile)
            .on_conflict(users::clerk_id)
            .do_update()
            .set((
                users::email.eq(excluded(users::email)),
                users::first_name.eq(excluded(users::first_name)),
                users::last_name.eq(excluded(users::last_name)),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// The user with this Clerk id, if known.
    pub async fn by_clerk_id(
        conn: &mut AsyncPgConnection,
        clerk_id: &str,
    ) -> QueryResult<Option<Self>> {
        users::table
            .filter(users::clerk_id.eq(clerk_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }
}

impl User {
    /// The user with this Clerk id, created with no profile if new (checkout knows only the id;
    /// `clerk/user.*` events fill in the rest).
    pub async fn ensure(conn: &mut AsyncPgConnection, clerk_id: &str) -> QueryResult<Self> {
        diesel::insert_into(users::table)
            .values(users::clerk_id.eq(clerk_id))
            .on_conflict(users::clerk_id)
            .do_nothing()
            .execute(conn)
            .await?;
        users::table
            .filter(users::clerk_id.eq(clerk_id))
            .select(Self::as_select())
            .first(conn)
            .await
    }
}

impl User {
    /// The user.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Self> {
        users::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
    }

    /// The Clerk id of a user.
    pub async fn clerk_id_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<String> {
        users::table
            .find(id)
            .select(users::clerk_id)
            .first(conn)
            .await
    }
}

impl User {
    /// Marks the user deleted (their orders and packs stay for the books).
    pub async fn soft_delete(conn: &mut AsyncPgConnection, clerk_id: &str) -> QueryResult<bool> {
        diesel::update(users::table)
            .filter(users::clerk_id.eq(clerk_id))
            .filter(users::deleted_at.is_null())
            .set((
                users::deleted_at.eq(diesel::dsl::now),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
