//! The relay: delivers stored webhook events to Inngest, with backoff, until each is delivered.
//! Runs after every stored webhook, every few seconds, and at start-up, so an Inngest outage
//! delays events but never loses them. Inngest deduplicates by event id (the provider's), so
//! a delivery repeated after a crash is harmless.

use std::time::Duration;

use chrono::Utc;
use inngest_sdk::Event;
use serde_json::Value;

use crate::app::AppState;
use crate::db::DbError;
use crate::models::InboxEntry;

const BATCH: i64 = 50;
const LEASE_SECS: i64 = 60;
const TICK: Duration = Duration::from_secs(5);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub forwarded: usize,
    pub failed: usize,
}

/// The delay before attempt `attempts + 1`: 2s, 4s, 8s... up to 10 minutes.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let secs = 2_i64.saturating_pow(attempts.clamp(1, 20) as u32).min(600);
    chrono::Duration::seconds(secs)
}

/// Delivers every due event once.
pub async fn forward_due(app: &AppState) -> Result<RelayReport, DbError> {
    let mut report = RelayReport::default();
    let mut conn = app.db.get().await?;
    let due =
        InboxEntry::claim_due(&mut conn, BATCH, chrono::Duration::seconds(LEASE_SECS)).await?;
    for entry in due {
        let Some(event) = entry.inngest_event.clone() else {
            continue;
        };
        match deliver(app, event).await {
            Ok(()) => {
                InboxEntry::mark_forwarded(&mut conn, entry.id).await?;
                report.forwarded += 1;
            }
            Err(error) => {
                let retry_at = Utc::now() + backoff(entry.forward_attempts + 1);
                tracing::warn!(
                    provider = %entry.provider,
                    event_id = %entry.provider_event_id,
                    attempts = entry.forward_attempts + 1,
                    %error,
                    "could not deliver a webhook event to Inngest; will retry"
                );
                InboxEntry::mark_failed(&mut conn, entry.id, &error, retry_at).await?;
                report.failed += 1;
                // Inngest is likely down for the rest too: stop, and let their lease run out
                // rather than spend this pass's connection on more timeouts.
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

/// Runs the relay until the process ends: at start-up, when woken, and on every tick.
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
                () = tokio::time::sleep(TICK) => {}
            }
        }
    })
}
