//! The relay: delivers stored webhook events to Inngest, with backoff, until each is delivered.
//! Runs after every stored webhook, every few seconds, and at start-up, so an Inngest outage
//! delays events but never loses them. Inngest deduplicates by event id (the provider's), so
//! a delivery repeated after a crash is harmless.

use std::time::{Duration, Instant};

use chrono::Utc;
use inngest_sdk::Event;
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;
use crate::db::DbError;
use crate::models::InboxEntry;

const BATCH: i64 = 50;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub forwarded: usize,
    pub failed: usize,
}

/// The delay before attempt `attempts + 1`: 2s, 4s, 8s... up to `max`.
pub fn backoff(attempts: i32, max: Duration) -> chrono::Duration {
    let secs = 2_u64.saturating_pow(attempts.clamp(1, 20).unsigned_abs());
    to_chrono(Duration::from_secs(secs).min(max))
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Delivers every due event once.
///
/// The entries claimed are this relay's until the lease ends; after that another instance may
/// claim them. So a pass starts deliveries only in the first half of its lease and bounds each
/// one to end well inside it, then hands back what it did not get to: however slow Inngest
/// answers, two relays never deliver the same entry at once.
pub async fn forward_due(app: &AppState) -> Result<RelayReport, DbError> {
    let relay = app.config.relay;
    let mut report = RelayReport::default();
    let mut conn = app.db.get().await?;
    let claimed_at = Instant::now();
    let due = InboxEntry::claim_due(&mut conn, BATCH, to_chrono(relay.lease)).await?;
    let mut due = due.into_iter();
    while let Some(entry) = due.next() {
        let elapsed = claimed_at.elapsed();
        if elapsed >= relay.lease / 2 {
            let rest: Vec<Uuid> = std::iter::once(entry.id).chain(due.map(|e| e.id)).collect();
            InboxEntry::postpone(&mut conn, &rest, Utc::now()).await?;
            break;
        }
        let Some(event) = entry.inngest_event.clone() else {
            continue;
        };
        // A tenth of the lease is left for recording the outcome.
        let budget = (relay.lease * 9 / 10).saturating_sub(elapsed);
        let delivered = match tokio::time::timeout(budget, deliver(app, event)).await {
            Ok(delivered) => delivered,
            Err(_) => Err(format!(
                "no answer within {} ms (the lease's end)",
                budget.as_millis()
            )),
        };
        match delivered {
            Ok(()) => {
                InboxEntry::mark_forwarded(&mut conn, entry.id).await?;
                report.forwarded += 1;
            }
            Err(error) => {
                let retry_at = Utc::now() + backoff(entry.forward_attempts + 1, relay.max_backoff);
                tracing::warn!(
                    provider = %entry.provider,
                    event_id = %entry.provider_event_id,
                    attempts = entry.forward_attempts + 1,
                    %error,
                    "could not deliver a webhook event to Inngest; will retry"
                );
                InboxEntry::mark_failed(&mut conn, entry.id, &error, retry_at).await?;
                report.failed += 1;
                // Inngest is likely down for the rest too: they wait as long as this one,
                // without an attempt counted, rather than spend this pass on more timeouts.
                let rest: Vec<Uuid> = due.map(|e| e.id).collect();
                InboxEntry::postpone(&mut conn, &rest, retry_at).await?;
                break;
            }
        }
    }
    Ok(report)
}

async fn deliver(app: &AppState, event: Value) -> Result<(), String> {
    let event: Event<Value> = serde_json::from_value(event).map_err(|e| e.to_string())?;
    app.inngest
        .send(&event)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Runs the relay until the process ends (or the task is aborted): at start-up, when woken,
/// and every `RELAY_INTERVAL_MS`.
pub fn spawn(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match forward_due(&app).await {
                Ok(report) if report.forwarded + report.failed > 0 => {
                    tracing::info!(
                        forwarded = report.forwarded,
                        failed = report.failed,
                        "relay pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "relay pass failed"),
            }
            tokio::select! {
                () = app.relay_wake.notified() => {}
                () = tokio::time::sleep(app.config.relay.interval) => {}
            }
        }
    })
}
