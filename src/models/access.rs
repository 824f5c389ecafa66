//! Dashboard access: which mentor a user may reach, through which pack, until when.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{AccessStatus, RevokeReason};
use crate::schema::dashboard_access;

/// A grant of dashboard access.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = dashboard_access)]
pub struct DashboardAccess {
    pub id: Uuid,
    pub user_id: Uuid,
    pub mentor_id: Uuid,
    pub session_pack_id: Uuid,
    pub status: AccessStatus,
    pub granted_until: DateTime<Utc>,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<RevokeReason>,
}

impl DashboardAccess {
    /// Grants access for a pack (idempotent: one row per pack).
    pub async fn grant(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        mentor_id: Uuid,
        pack_id: Uuid,
        until: DateTime<Utc>,
    ) -> QueryResult<Self> {
        diesel::insert_into(dashboard_access::table)
            .values((
                dashboard_access::user_id.eq(user_id),
                dashboard_access::mentor_id.eq(mentor_id),
                dashboard_access::session_pack_id.eq(pack_id),
                dashboard_access::granted_until.eq(until),
            ))
            .on_conflict(dashboard_access::session_pack_id)
            .do_nothing()
            .execute(conn)
            .await?;
        dashboard_access::table
            .filter(dashboard_access::session_pack_id.eq(pack_id))
            .select(Self::as_select())
            .first(conn)
            .await
    }

    /// Revokes the access of a pack. Returns whether the pack ever had access (granted or
    /// already revoked), so a retry after a partial revoke still republishes.
    pub async fn revoke(
        conn: &mut AsyncPgConnection,
        pack_id: Uuid,
        reason: RevokeReason,
    ) -> QueryResult<bool> {
        diesel::update(dashboard_access::table)
            .filter(dashboard_access::session_pack_id.eq(pack_id))
            .filter(dashboard_access::status.eq(AccessStatus::Granted))
            .set((
                dashboard_access::status.eq(AccessStatus::Revoked),
                dashboard_access::revoked_at.eq(diesel::dsl::now),
                dashboard_access::revoke_reason.eq(reason),
            ))
            .execute(conn)
            .await?;
        diesel::select(diesel::dsl::exists(
            dashboard_access::table.filter(dashboard_access::session_pack_id.eq(pack_id)),
        ))
        .get_result(conn)
        .await
    }

    /// The user's current grants.
    pub async fn active_for_user(
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
    ) -> QueryResult<Vec<Self>> {
        dashboard_access::table
            .filter(dashboard_access::user_id.eq(user_id))
            .filter(dashboard_access::status.eq(AccessStatus::Granted))
            .filter(dashboard_access::granted_until.gt(diesel::dsl::now))
            .select(Self::as_select())
            .load(conn)
            .await
    }
}
