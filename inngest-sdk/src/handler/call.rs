//! The call request (protocol §6.1), parsed once: its events and memoized steps stay slices of
//! the body, and its `ctx` says whether the call may checkpoint.

use std::borrow::Cow;

use bytes::Bytes;
use bytestring::ByteString;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::checkpoint::Checkpoint;
use crate::step::{CheckpointIds, Memo, RunCheckpoint, StepSlices};

/// The call request, parsed once: the events and each memoized step stay slices of the body.
#[derive(Deserialize)]
pub(super) struct CallRequest<'a> {
    #[serde(borrow, default)]
    pub(super) event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) events: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) steps: StepSlices<'a>,
    #[serde(borrow)]
    pub(super) ctx: CallCtx<'a>,
    #[serde(default)]
    pub(super) use_api: bool,
}

/// The call's `ctx`; its strings are borrowed from the body unless escaped.
#[derive(Deserialize)]
pub(super) struct CallCtx<'a> {
    #[serde(borrow)]
    pub(super) run_id: Cow<'a, str>,
    #[serde(default)]
    pub(super) attempt: u32,
    #[serde(default)]
    pub(super) max_attempts: Option<u32>,
    #[serde(default)]
    pub(super) disable_immediate_execution: bool,
    #[serde(default)]
    pub(super) use_api: bool,
    /// The function's id at Inngest (a UUID), for checkpoints.
    #[serde(borrow, default)]
    pub(super) fn_id: Cow<'a, str>,
    /// The queue item this call runs, for checkpoints.
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub(super) qi_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    pub(super) request_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) generation_id: Option<i64>,
}

/// An optional string borrowed from the body unless escaped: serde's `Cow` impl alone would
/// copy it, which `#[serde(borrow)]` only prevents for a `Cow` that is the field itself.
fn borrowed<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(deserializer)?.map(|b| b.0))
}

impl CallCtx<'_> {
    /// Checkpointing for this call, when the function has it on and the call allows it: the
    /// whole run from its next step (no targeted step), with immediate execution, on a first
    /// attempt (a retry is answered as without, as the TypeScript SDK does), and naming the
    /// function and queue item the checkpoint API needs.
    pub(super) fn checkpoint(
        &self,
        config: Option<Checkpoint>,
        target: Option<&str>,
    ) -> Option<RunCheckpoint> {
        let config = config.filter(|_| {
            target.is_none() && !self.disable_immediate_execution && self.attempt == 0
        })?;
        let qi_id = self.qi_id.as_deref().filter(|q| !q.is_empty())?;
        if self.fn_id.is_empty() {
            return None;
        }
        Some(RunCheckpoint::new(
            config,
            CheckpointIds {
                run_id: self.run_id.to_string(),
                fn_id: self.fn_id.to_string(),
                qi_id: qi_id.to_owned(),
                request_id: self.request_id.as_deref().map(str::to_owned),
                generation_id: self.generation_id,
            },
        ))
    }
}

/// The run state Inngest kept because it was too large to send (`use_api`).
pub(super) struct FetchedState {
    pub(super) events: Vec<Box<RawValue>>,
    pub(super) actions: Bytes,
}

/// A call with its event and memoized state loaded.
pub(super) struct LoadedCall<'a> {
    pub(super) event: &'a RawValue,
    pub(super) events: Vec<&'a RawValue>,
    pub(super) memo: Memo,
}

/// The event, the batch and the memoized steps: from the body, or from what was fetched from
/// the API when the state was too large to send.
pub(super) fn load<'a>(
    event: Option<&'a RawValue>,
    mut events: Vec<&'a RawValue>,
    steps: StepSlices<'_>,
    body: &ByteString,
    fetched: Option<&'a FetchedState>,
) -> Result<LoadedCall<'a>, (StatusCode, String)> {
    let memo = match fetched {
        None => Memo::index(body, steps),
        Some(fetched) => {
            events = fetched.events.iter().map(|e| &**e).collect();
            let malformed = |why: String| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("could not load the run state: malformed actions: {why}"),
                )
            };
            let actions = ByteString::try_from(fetched.actions.clone())
                .map_err(|e| malformed(format!("not UTF-8: {e}")))?;
            let steps = serde_json::from_str::<StepSlices<'_>>(&actions)
                .map_err(|e| malformed(e.to_string()))?;
            Memo::index(&actions, steps)
        }
    };
    let Some(event) = event.or_else(|| events.first().copied()) else {
        return Err((StatusCode::BAD_REQUEST, "the request has no event".into()));
    };
    if events.is_empty() {
        events.push(event);
    }
    Ok(LoadedCall {
        event,
        events,
        memo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_strings_are_borrowed_from_the_body_unless_escaped() {
        let body = r#"{"run_id":"r1","fn_id":"f","qi_id":"q1","request_id":"q\u002d2"}"#;
        let ctx: CallCtx<'_> = serde_json::from_str(body).expect("parses");
        assert!(matches!(ctx.run_id, Cow::Borrowed("r1")));
        assert!(matches!(ctx.qi_id, Some(Cow::Borrowed("q1"))));
        assert!(
            matches!(ctx.request_id.as_deref(), Some("q-2")),
            "an escaped string is unescaped"
        );

        let ctx: CallCtx<'_> =
            serde_json::from_str(r#"{"run_id":"r1","qi_id":null}"#).expect("parses");
        assert!(ctx.qi_id.is_none() && ctx.request_id.is_none());
    }
}
