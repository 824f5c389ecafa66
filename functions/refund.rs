//! The refund workflow both providers' refund functions run once they have read their event:
//! apply the refund (one step), then, when it is full, take back the dashboard access the pack
//! gave (another step).

use inngest_sdk::{Step, StepError};

use crate::app::AppState;
use crate::models::RevokeReason;
use crate::payments::refunds::{RefundOutcome, ReportedRefund, apply_refund};

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
    if let (true, Some(pack_id)) = (outcome.full, outcome.pack_id) {
        step.run("revoke-dashboard-access", || {
            app.access().revoke(pack_id, RevokeReason::Refunded)
        })
        .await?;
    }
    Ok(outcome)
}
