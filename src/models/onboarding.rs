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
