//! Booked sessions: scheduled against a pack with its mentor, then completed, missed (no-show)
//! or cancelled. A used session is counted against its pack exactly once (`counted_at`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{PackStatus, SessionStatus};
use crate::schema::sessions;

/// How long a session lasts: a mentor's scheduled sessions may not overlap. The database
/// holds it (`session_span` and the constraint below, migration `2026-12-07-000001`).
pub const SESSION_LENGTH: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The exclusion constraint that keeps a mentor's scheduled sessions from overlapping.
pub const MENTOR_HOUR_FREE: &str = "sessions_mentor_hour_free";

/// A booked session.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: Uuid,
    pub session_pack_id: Uuid,
    pub scheduled_at: DateTime<Utc>,
    pub status: SessionStatus,
    /// When it was completed or marked a no-show.
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub mentor_id: Uuid,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When it was counted against its pack.
    pub counted_at: Option<DateTime<Utc>>,
}

/// The pack after a session was counted against it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize, serde::Deserialize)]
pub struct CountedPack {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub remaining_sessions: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub total_sessions: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: PackStatus,
}

/// Whether a database error is the mentor already booked within the hour.
pub fn is_slot_taken_error(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::ExclusionViolation, info)
            if info.constraint_name() == Some(MENTOR_HOUR_FREE)
    )
}

impl Session {
    /// The session, if it exists.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        sessions::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The session, locked until the transaction ends.
    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        sessions::table
            .find(id)
            .for_update()
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Books a session of `pack_id` with `mentor_id` at `at`.
    pub async fn book(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
        mentor_id: Uuid,
        at: DateTime<Utc>,
    ) -> QueryResult<Self> {
        diesel::insert_into(sessions::table)
            .values((
                sessions::session_pack_id.eq(pack_id),
                sessions::mentor_id.eq(mentor_id),
                sessions::scheduled_at.eq(at),
                sessions::status.eq(SessionStatus::Scheduled),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// Moves a scheduled session to `at`; `None` when it is no longer scheduled.
    pub async fn reschedule(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> QueryResult<Option<Self>> {
        diesel::update(sessions::table.find(id))
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .set((
                sessions::scheduled_at.eq(at),
                sessions::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Cancels a scheduled session; `None` when it is no longer scheduled.
    pub async fn cancel(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        diesel::update(sessions::table.find(id))
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .set((
                sessions::status.eq(SessionStatus::Cancelled),
                sessions::cancelled_at.eq(diesel::dsl::now),
                sessions::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Ends a scheduled session as completed or a no-show; `None` when it is no longer
    /// scheduled.
    pub async fn end(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        outcome: SessionStatus,
    ) -> QueryResult<Option<Self>> {
        debug_assert!(matches!(
            outcome,
            SessionStatus::Completed | SessionStatus::NoShow
        ));
        diesel::update(sessions::table.find(id))
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .set((
                sessions::status.eq(outcome),
                sessions::completed_at.eq(diesel::dsl::now),
                sessions::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Counts a used (completed or no-show) session against its pack, once: marking the
    /// session counted and decrementing the pack happen in one statement, so a replay, a
    /// duplicate event or a concurrent count of the same session changes nothing, and two
    /// sessions of one pack counted at once are both counted (the pack row serializes them).
    /// The pack is depleted when it reaches 0. `None` when the session was already counted,
    /// is not used, or does not belong to `pack_id`.
    pub async fn count_once(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        pack_id: Uuid,
    ) -> QueryResult<Option<CountedPack>> {
        diesel::sql_query(
            "WITH counted AS ( \
                 UPDATE sessions SET counted_at = now(), updated_at = now() \
                 WHERE id = $1 AND session_pack_id = $2 AND counted_at IS NULL \
                   AND status IN ('completed', 'no_show') \
                 RETURNING session_pack_id) \
             UPDATE session_packs p \
             SET remaining_sessions = p.remaining_sessions - 1, \
                 status = CASE WHEN p.remaining_sessions = 1 AND p.status = 'active' \
                               THEN 'depleted' ELSE p.status END, \
                 updated_at = now() \
             FROM counted WHERE p.id = counted.session_pack_id AND p.remaining_sessions > 0 \
             RETURNING p.remaining_sessions, p.total_sessions, p.status",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Uuid, _>(pack_id)
        .get_result(conn)
        .await
        .optional()
    }

    /// The sessions that take or have taken one of the pack's remaining sessions: those
    /// scheduled, and those used but not yet counted (counting follows through Inngest, and
    /// until then the pack's `remaining_sessions` still includes them).
    pub async fn claims_on_pack(conn: &mut AsyncPgConnection, pack_id: Uuid) -> QueryResult<i64> {
        sessions::table
            .filter(sessions::session_pack_id.eq(pack_id))
            .filter(
                sessions::status
                    .eq(SessionStatus::Scheduled)
                    .or(sessions::status
                        .eq_any([SessionStatus::Completed, SessionStatus::NoShow])
                        .and(sessions::counted_at.is_null())),
            )
            .count()
            .get_result(conn)
            .await
    }

    /// Cancels every scheduled session of a pack (it was refunded), returning them.
    pub async fn cancel_scheduled_of_pack(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
    ) -> QueryResult<Vec<Self>> {
        diesel::update(sessions::table)
            .filter(sessions::session_pack_id.eq(pack_id))
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .set((
                sessions::status.eq(SessionStatus::Cancelled),
                sessions::cancelled_at.eq(diesel::dsl::now),
                sessions::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Self::as_returning())
            .get_results(conn)
            .await
    }

    /// The scheduled sessions of a pack, earliest first.
    pub async fn scheduled_for_pack(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
    ) -> QueryResult<Vec<Self>> {
        sessions::table
            .filter(sessions::session_pack_id.eq(pack_id))
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .order(sessions::scheduled_at)
            .select(Self::as_select())
            .load(conn)
            .await
    }
}
