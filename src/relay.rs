//! The relay: delivers stored events to Inngest, with backoff, until each is delivered.
//!
//! A webhook is delivered inline, right after it is stored and before it is answered
//! ([`store_and_forward`]); what that could not deliver (Inngest down or slow, the process
//! gone) is retried by [`forward_due`], which runs in two places: the `relay-inbox` cron
//! function (every minute, so a serverless deployment needs no process of its own) and, on
//! container hosts, a background loop ([`spawn`], every few seconds and at start-up;
//! `RELAY_BACKGROUND=false` turns it off). So an Inngest outage delays events but never loses
//! them. Inngest deduplicates by event id (the provider's), so a delivery repeated after a
//! crash is harmless.

use std::time::{Duration, Instant};

use chrono::Utc;
use inngest_sdk::Event;
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;
use crate::db::DbError;
use crate::models::{InboxEntry, NewInboxEntry};

/// The most entries one pass claims.
pub const BATCH: i64 = 50;

/// The longest a webhook waits for its inline delivery before it is answered anyway (the
/// relay then retries it): providers time out their deliveries after 10 to 30 seconds.
pub const INLINE_BUDGET: Duration = Duration::from_secs(3);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelayReport {
    pub forwarded: usize,
    pub failed: usize,
    /// How many entries the pass claimed: a full batch means more may be due.
    pub claimed: usize,
}

/// How a stored webhook fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Another delivery of the same provider event is already stored; nothing was done.
    Duplicate,
    /// Stored and delivered to Inngest.
    Forwarded,
    /// Stored, not delivered yet: the relay retries it after its backoff.
    Pending,
}

/// Stores a verified provider event and delivers it to Inngest at once, within
/// [`INLINE_BUDGET`].
///
/// The entry is stored already claimed for a lease, so no relay delivers it while this does;
/// if the delivery fails, times out or this process dies, it is the relay's after the backoff
/// or the lease. Only the storing can fail: once stored, the event is never lost, so a failed
/// delivery (or a failure to record one) is logged and answered as [`Stored::Pending`].
pub async fn store_and_forward(app: &AppState, entry: &NewInboxEntry) -> Result<Stored, DbError> {
    let lease = app.config.relay.lease;
    let stored = {
        let mut conn = app.conn().await?;
        InboxEntry::insert_claimed(&mut conn, entry, to_chrono(lease)).await?
    };
    let Some(stored) = stored else {
        return Ok(Stored::Duplicate);
    };
    // The pooled connection is not held while Inngest answers: an Inngest outage must not
    // starve the pool of the webhooks still arriving.
    let budget = INLINE_BUDGET.min(lease * 9 / 10);
    let delivered = deliver_within(app, &stored, budget).await;
    let recorded = async {
        let mut conn = app.conn().await?;
        record(app, &mut conn, &stored, delivered).await
    };
    match recorded.await {
        Ok(Outcome::Forwarded) => Ok(Stored::Forwarded),
        Ok(Outcome::Failed { .. }) => Ok(Stored::Pending),
        Err(error) => {
            tracing::error!(
                provider = %stored.provider,
                event_id = %stored.provider_event_id,
                %error,
                "could not record a webhook's delivery; the relay delivers it again after the lease"
            );
            Ok(Stored::Pending)
        }
    }
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
    report.claimed = due.len();
    let mut due = due.into_iter();
    while let Some(entry) = due.next() {
        let elapsed = claimed_at.elapsed();
        if elapsed >= relay.lease / 2 {
            let rest: Vec<Uuid> = std::iter::once(entry.id).chain(due.map(|e| e.id)).collect();
            InboxEntry::postpone(&mut conn, &rest, Utc::now()).await?;
            break;
        }
        // A tenth of the lease is left for recording the outcome.
        let budget = (relay.lease * 9 / 10).saturating_sub(elapsed);
        let delivered = deliver_within(app, &entry, budget).await;
        match record(app, &mut conn, &entry, delivered).await? {
            Outcome::Forwarded => report.forwarded += 1,
            Outcome::Failed { retry_at } => {
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

/// What became of one delivery, as recorded in the inbox.
enum Outcome {
    Forwarded,
    Failed { retry_at: chrono::DateTime<Utc> },
}

/// Delivers a claimed entry's event, giving up after `budget` (the delivery may still have
/// reached Inngest: a second one is deduplicated by the event id).
async fn deliver_within(
    app: &AppState,
    entry: &InboxEntry,
    budget: Duration,
) -> Result<(), String> {
    let Some(event) = entry.inngest_event.clone() else {
        return Err("the entry has no event to deliver".to_owned());
    };
    match tokio::time::timeout(budget, deliver(app, event)).await {
        Ok(delivered) => delivered,
        Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
    }
}

/// Records a delivery's result on its entry: forwarded, or failed and due again after the
/// backoff.
async fn record(
    app: &AppState,
    conn: &mut crate::db::DbConn,
    entry: &InboxEntry,
    delivered: Result<(), String>,
) -> Result<Outcome, DbError> {
    match delivered {
        Ok(()) => {
            InboxEntry::mark_forwarded(conn, entry.id).await?;
            Ok(Outcome::Forwarded)
        }
        Err(error) => {
            let attempts = entry.forward_attempts + 1;
            let retry_at = Utc::now() + backoff(attempts, app.config.relay.max_backoff);
            tracing::warn!(
                provider = %entry.provider,
                event_id = %entry.provider_event_id,
                attempts,
                %error,
                "could not deliver an event to Inngest; will retry"
            );
            InboxEntry::mark_failed(conn, entry.id, &error, retry_at).await?;
            Ok(Outcome::Failed { retry_at })
        }
    }
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
