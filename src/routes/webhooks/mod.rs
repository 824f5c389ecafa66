//! Provider webhooks: verified over the raw body, stored in the inbox (once per provider event
//! id), forwarded to Inngest inline, and acknowledged; what could not be forwarded is retried
//! by the relay. A storage failure answers 503 so the provider retries; nothing is
//! acknowledged that is not stored.

pub mod paypal;
pub mod stripe;
pub mod svix_forward;

use axum::Json;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::AppResult;
use crate::models::NewInboxEntry;
use crate::relay::{self, Stored};

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

/// Stores a verified event and forwards it to Inngest before answering (the relay retries it
/// if that fails). Answers whether it was a duplicate and whether it reached Inngest.
pub(crate) async fn store_and_ack(app: &AppState, entry: NewInboxEntry) -> AppResult<Json<Value>> {
    let stored = relay::store_and_forward(app, &entry).await?;
    let (provider, event_id) = (&entry.provider, &entry.provider_event_id);
    match stored {
        Stored::Duplicate => {
            tracing::info!(%provider, %event_id, "duplicate webhook ignored");
        }
        Stored::Forwarded | Stored::Pending => {
            let forwarded = stored == Stored::Forwarded;
            tracing::info!(%provider, %event_id, event_type = %entry.event_type, forwarded, "webhook stored");
        }
    }
    Ok(Json(json!({
        "received": true,
        "duplicate": stored == Stored::Duplicate,
        "forwarded": stored == Stored::Forwarded,
    })))
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
