//! Releasing abandoned checkouts: a pending order whose checkout ended long ago without a
//! provider event expires and its hold is released, but only once its provider confirms it
//! can no longer be paid. An order whose payment event has arrived is never touched (its
//! run may be retrying an outage), and one paid at the provider without an event is kept
//! and reported, since expiring it would take the seat of someone who paid.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PaymentsError;
use super::checkout::expire_checkout;
use crate::db::{DbPool, conn};
use crate::integrations::ClosedCheckout;
use crate::integrations::paypal::PaypalApi;
use crate::integrations::stripe::StripeApi;
use crate::models::Provider;
use crate::models::order::{EndedCheckout, Order};

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Orders expired and their holds released.
    pub released: usize,
    /// Orders paid at the provider with no payment event received: kept pending, for an
    /// operator to look at (logged as errors).
    pub paid_without_event: Vec<Uuid>,
    /// Orders whose provider could not say (an outage): left for the next sweep.
    pub deferred: usize,
}

/// The providers' clients, as configured.
#[derive(Clone, Copy)]
pub struct Providers<'a> {
    pub stripe: Option<&'a StripeApi>,
    pub paypal: Option<&'a PaypalApi>,
}

impl Providers<'_> {
    /// Closes `checkout` at its provider; `None` when the provider could not be asked.
    async fn close(&self, checkout: &EndedCheckout) -> Option<ClosedCheckout> {
        // The provider call failed before its checkout was recorded: nothing to pay.
        let Some(checkout_id) = checkout.checkout_id.as_deref() else {
            return Some(ClosedCheckout::Unpaid);
        };
        let closed = match (checkout.provider, self.stripe, self.paypal) {
            (Provider::Stripe, Some(stripe), _) => stripe
                .close_checkout(checkout_id)
                .await
                .map_err(|e| e.to_string()),
            (Provider::Paypal, _, Some(paypal)) => paypal
                .close_checkout(checkout_id)
                .await
                .map_err(|e| e.to_string()),
            (provider, _, _) => Err(format!("{provider} is not configured")),
        };
        closed
            .inspect_err(|error| {
                tracing::warn!(
                    order_id = %checkout.order_id,
                    provider = %checkout.provider,
                    %error,
                    "could not ask the provider about an abandoned checkout; trying next sweep"
                );
            })
            .ok()
    }
}

/// Expires up to `limit` pending orders whose checkout ended before `ended_before`, each once
/// its provider says it can no longer be paid.
pub async fn release_abandoned(
    db: &DbPool,
    providers: Providers<'_>,
    ended_before: DateTime<Utc>,
    limit: i64,
) -> Result<SweepReport, PaymentsError> {
    let ended = Order::abandoned(&mut *conn(db).await?, ended_before, limit).await?;
    let mut report = SweepReport::default();
    // No connection is held while a provider answers.
    for checkout in ended {
        match providers.close(&checkout).await {
            Some(ClosedCheckout::Unpaid) => {
                if expire_checkout(&mut *conn(db).await?, checkout.order_id).await? {
                    report.released += 1;
                }
            }
            Some(ClosedCheckout::Paid) => {
                tracing::error!(
                    order_id = %checkout.order_id,
                    provider = %checkout.provider,
                    "paid at the provider, but no payment event has arrived; the order stays pending"
                );
                report.paid_without_event.push(checkout.order_id);
            }
            None => report.deferred += 1,
        }
    }
    Ok(report)
}
