//! How onboarding ended for an order.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::OnboardingOutcome;
use crate::schema::onboarding_outcomes;

/// Records the outcome once per order.
pub async fn record_outcome(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    user_id: Uuid,
    outcome: OnboardingOutcome,
) -> QueryResult<()> {
    diesel::insert_into(onboarding_outcomes::table)
        .values((
            onboarding_outcomes::order_id.eq(order_id),
            onboarding_outcomes::user_id.eq(user_id),
            onboarding_outcomes::outcome.eq(outcome),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// The outcome of an order's onboarding, if recorded.
pub async fn outcome_of(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Option<OnboardingOutcome>> {
    onboarding_outcomes::table
        .find(order_id)
        .select(onboarding_outcomes::outcome)
        .first(conn)
        .await
        .optional()
}

/// An order whose onboarding ended without Discord, and its pack.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize, serde::Deserialize)]
pub struct WaitingForDiscord {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub order_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub pack_id: Uuid,
}

/// The user's orders whose onboarding ended `never_connected` while their pack is still
/// active and has never given access: what a late Discord connection should open.
pub async fn waiting_for_discord(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
) -> QueryResult<Vec<WaitingForDiscord>> {
    diesel::sql_query(
        "SELECT o.order_id, p.id AS pack_id \
         FROM onboarding_outcomes o \
         JOIN users u ON u.id = o.user_id \
         JOIN payments pay ON pay.order_id = o.order_id \
         JOIN session_packs p ON p.payment_id = pay.id \
         WHERE u.clerk_id = $1 AND o.outcome = 'never_connected' AND p.status = 'active' \
           AND NOT EXISTS (SELECT FROM dashboard_access a WHERE a.session_pack_id = p.id) \
         ORDER BY o.recorded_at",
    )
    .bind::<diesel::sql_types::Text, _>(clerk_id)
    .load(conn)
    .await
}
