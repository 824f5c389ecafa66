//! Provider webhooks: verified over the raw body, stored in the inbox (once per provider event
//! id), acknowledged, and forwarded to Inngest by the relay. A storage failure answers 503 so
//! the provider retries; nothing is acknowledged that is not stored.

pub mod paypal;
pub mod stripe;
pub mod svix_forward;

use axum::Json;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::AppResult;
use crate::models::{InboxEntry, NewInboxEntry};

/// What a verified provider delivery asks of us.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Store it in the inbox, to be forwarded to Inngest.
    Store(NewInboxEntry),
    /// Acknowledge it and do nothing more: a type we do not handle.
    Ignore {
        /// The provider's event id.
        event_id: String,
        /// The provider's event type.
        event_type: String,
    },
}

/// Stores a verified event and wakes the relay. Answers whether it was a duplicate.
pub(crate) async fn store_and_ack(app: &AppState, entry: NewInboxEntry) -> AppResult<Json<Value>> {
    let mut conn = app.conn().await?;
    let stored = InboxEntry::insert(&mut conn, &entry).await?;
    let duplicate = stored.is_none();
    if duplicate {
        tracing::info!(provider = %entry.provider, event_id = %entry.provider_event_id, "duplicate webhook ignored");
    } else {
        tracing::info!(provider = %entry.provider, event_id = %entry.provider_event_id, event_type = %entry.event_type, "webhook stored");
        app.relay_wake.notify_one();
    }
    Ok(Json(json!({ "received": true, "duplicate": duplicate })))
}

/// Acknowledges an event type we do not handle.
pub(crate) fn ignored(provider: &str, event_id: &str, event_type: &str) -> Json<Value> {
    tracing::info!(
        provider,
        event_id,
        event_type,
        "webhook type not handled; ignored"
    );
    Json(json!({ "received": true, "ignored": true }))
}
