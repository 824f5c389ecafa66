//! Decoding the events a run is called with into the function's event type, without the
//! metadata Inngest adds to them.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;
use crate::event::Event;

/// The key under which Inngest puts its own metadata in `event.data`: an invoked run's event
/// carries the invocation (caller, correlation id, expiry) there beside the caller's data.
const INNGEST_KEY: &str = "_inngest";

/// The name of the event that triggers failure handlers; its data holds the failed run's event.
const FUNCTION_FAILED: &str = "inngest/function.failed";

/// Decodes one event into `Event<E>`, with `data._inngest` removed so that a payload type
/// with `deny_unknown_fields` accepts an invoked run's event. `what` names the event in errors
/// (called only to write one).
pub(super) fn decode_event<E: DeserializeOwned>(
    text: &str,
    what: impl Fn() -> String,
) -> Result<Event<E>, Error> {
    // Only an event whose text has the key can carry it: every other one decodes in one pass,
    // and is read again only to name the path that did not match.
    if !text.contains("\"_inngest\"") {
        if let Ok(event) = serde_json::from_str(text) {
            return Ok(event);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        return serde_path_to_error::deserialize(&mut de)
            .map_err(|e| decode_error(&what(), &e.path().to_string(), e.inner()));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let mut event: Event<Value> = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| decode_error(&what(), &e.path().to_string(), e.inner()))?;
    strip_metadata(&mut event.data);
    if event.name == FUNCTION_FAILED
        && let Some(failed) = event.data.as_object_mut()
    {
        // A failure handler's typed payload holds the failed run's event(s).
        for (key, value) in failed.iter_mut() {
            match (key.as_str(), value) {
                ("event", event) => strip_event(event),
                ("events", Value::Array(events)) => events.iter_mut().for_each(strip_event),
                _ => {}
            }
        }
    }
    // The tree is already built: the data is decoded from it, not from text again.
    let data = serde_path_to_error::deserialize(event.data).map_err(|e| {
        let path = match e.path().to_string().as_str() {
            "." => "data".to_owned(),
            inner => format!("data.{inner}"),
        };
        decode_error(&what(), &path, e.inner())
    })?;
    Ok(Event {
        id: event.id,
        name: event.name,
        data,
        user: event.user,
        ts: event.ts,
        v: event.v,
    })
}

fn strip_event(event: &mut Value) {
    if let Some(data) = event.get_mut("data") {
        strip_metadata(data);
    }
}

fn strip_metadata(data: &mut Value) {
    if let Some(data) = data.as_object_mut() {
        data.remove(INNGEST_KEY);
    }
}

fn decode_error(what: &str, path: &str, error: &serde_json::Error) -> Error {
    Error::non_retriable(format!(
        "{what} does not match the function's event type at `{path}`: {error}"
    ))
    .with_name("EventDecodeError")
}
