//! The part of a workflow every function that takes money back shares (both providers'
//! refunds and chargebacks): apply it (one step), then, once everything paid is taken back,
//! take back the dashboard access the pack gave (another step).

use inngest_sdk::{Step, StepError};

use crate::app::AppState;
use crate::models::RevokeReason;
use crate::payments::refunds::{
    RefundOutcome, ReportedChargeback, ReportedRefund, apply_chargeback, apply_refund,
};

/// Applies `refund`, then revokes access on a full refund.
pub(super) async fn refund_and_revoke(
    step: &Step,
    app: &AppState,
    refund: ReportedRefund,
) -> Result<RefundOutcome, StepError> {
    let outcome: RefundOutcome = step
        .run("apply-refund", || async {
            apply_refund(&mut *app.conn().await?, &refund).await
        })
        .await?;
    revoke_when_full(step, app, &outcome, RevokeReason::Refunded).await?;
    Ok(outcome)
}

/// Applies `chargeback`, then revokes access once everything paid is taken back.
pub(super) async fn charge_back_and_revoke(
    step: &Step,
    app: &AppState,
    chargeback: ReportedChargeback,
) -> Result<RefundOutcome, StepError> {
    let outcome: RefundOutcome = step
        .run("apply-chargeback", || async {
            apply_chargeback(&mut *app.conn().await?, &chargeback).await
        })
        .await?;
    revoke_when_full(step, app, &outcome, RevokeReason::ChargedBack).await?;
    Ok(outcome)
}

async fn revoke_when_full(
    step: &Step,
    app: &AppState,
    outcome: &RefundOutcome,
    reason: RevokeReason,
) -> Result<(), StepError> {
    if let (true, Some(pack_id)) = (outcome.full, outcome.pack_id) {
        step.run("revoke-dashboard-access", || {
            app.access().revoke(pack_id, reason)
        })
        .await?;
    }
    Ok(())
}
