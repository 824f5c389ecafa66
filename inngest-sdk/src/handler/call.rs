//! The call request (protocol §6.1), parsed once: its events and memoized steps stay slices of
//! the body, and its `ctx` says whether the call may checkpoint.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::scan::{ScanError, Scanner};
use crate::checkpoint::Checkpoint;
use crate::step::{CheckpointIds, Memo, RunCheckpoint, StepSlices, parse_hex_digest};

/// The call request, parsed once: the events and each memoized step stay slices of the body.
pub(super) struct CallRequest<'a> {
    pub(super) event: Option<&'a str>,
    pub(super) events: Vec<&'a str>,
    pub(super) steps: StepSlices<'a>,
    pub(super) ctx: CallCtx<'a>,
    pub(super) use_api: bool,
}

/// Why a request body was refused.
#[derive(Debug)]
pub(super) struct Malformed(String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ScanError> for Malformed {
    fn from(e: ScanError) -> Self {
        Self(e.to_string())
    }
}

impl From<serde_json::Error> for Malformed {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

impl<'a> CallRequest<'a> {
    /// Reads a call request from the body's text, all of which must be JSON. Its fields are
    /// read as serde would read them into this struct: unknown ones are skipped, a known one
    /// twice is refused, and only `ctx` is required.
    pub(super) fn parse(text: &'a str) -> Result<Self, Malformed> {
        let mut scanner = Scanner::new(text);
        let (mut event, mut steps, mut ctx, mut use_api) = (None, None, None, None);
        let mut events: Option<Vec<&str>> = None;
        let is_object = scanner.object(|scanner, key| match &*key.text()? {
            // The trigger event comes twice, as `event` and as `events[0]`: the second
            // is checked only by comparing it with the first.
            "event" => {
                let value = scanner.at_null().then_some(None);
                let first_of_events = events.as_deref().and_then(<[_]>::first).copied();
                let raw = scanner.value_or_repeat(first_of_events)?;
                once(&mut event, value.unwrap_or(Some(raw)), "event")
            }
            "events" => {
                let list = scanner
                    .array(event.flatten())?
                    .ok_or_else(|| expected("events", "an array"))?;
                once(&mut events, list, "events")
            }
            "steps" => once(&mut steps, step_slices(scanner)?, "steps"),
            "ctx" => {
                let parsed = scanner
                    .deserialize()
                    .map_err(|e| Malformed(format!("ctx: {e}")))?;
                once(&mut ctx, parsed, "ctx")
            }
            "use_api" => {
                let flag = scanner
                    .boolean()?
                    .ok_or_else(|| expected("use_api", "a boolean"))?;
                once(&mut use_api, flag, "use_api")
            }
            _ => scanner.value().map(drop).map_err(Malformed::from),
        })?;
        if !is_object {
            return Err(Malformed("expected an object".into()));
        }
        scanner.end()?;
        Ok(Self {
            event: event.flatten(),
            events: events.unwrap_or_default(),
            steps: steps.unwrap_or_default(),
            ctx: ctx.ok_or_else(|| Malformed("missing field `ctx`".into()))?,
            use_api: use_api.unwrap_or_default(),
        })
    }
}

/// The `steps` object (or `null`): each key's digest (`None` for a key that is not a SHA-1
/// in hex) with its value's text. The state Inngest fetches for a large run has this shape.
fn step_slices<'a>(scanner: &mut Scanner<'a>) -> Result<StepSlices<'a>, Malformed> {
    if scanner.at_null() {
        scanner.value()?;
        return Ok(StepSlices::default());
    }
    let mut entries = Vec::new();
    let is_object = scanner.object(|scanner, key| {
        let digest = parse_hex_digest(key.text()?.as_bytes());
        entries.push((digest, scanner.memo_value()?));
        Ok::<_, Malformed>(())
    })?;
    match is_object {
        true => Ok(StepSlices(entries)),
        false => Err(expected("steps", "an object")),
    }
}

/// A state fetched from the API (`use_api`): the `steps` object alone.
fn fetched_step_slices(text: &str) -> Result<StepSlices<'_>, Malformed> {
    let mut scanner = Scanner::new(text);
    let steps = step_slices(&mut scanner)?;
    scanner.end()?;
    Ok(steps)
}

fn once<T>(slot: &mut Option<T>, value: T, field: &str) -> Result<(), Malformed> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(Malformed(format!("duplicate field `{field}`"))),
    }
}

fn expected(field: &str, what: &str) -> Malformed {
    Malformed(format!("{field}: expected {what}"))
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
    pub(super) event: &'a str,
    pub(super) events: Vec<&'a str>,
    pub(super) memo: Memo,
}

/// The event, the batch and the memoized steps: from the body, or from what was fetched from
/// the API when the state was too large to send.
pub(super) fn load<'a>(
    event: Option<&'a str>,
    mut events: Vec<&'a str>,
    steps: StepSlices<'_>,
    body: &ByteString,
    fetched: Option<&'a FetchedState>,
) -> Result<LoadedCall<'a>, (StatusCode, String)> {
    let memo = match fetched {
        None => Memo::index(body, steps),
        Some(fetched) => {
            events = fetched.events.iter().map(|e| e.get()).collect();
            let malformed = |why: String| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("could not load the run state: malformed actions: {why}"),
                )
            };
            let actions = ByteString::try_from(fetched.actions.clone())
                .map_err(|e| malformed(format!("not UTF-8: {e}")))?;
            let steps = fetched_step_slices(&actions).map_err(|e| malformed(e.to_string()))?;
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::step::Memo;

    /// The request as serde_json read it before the scanner: the reference for what a body
    /// must be to be read.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct SerdeRequest<'a> {
        #[serde(borrow, default)]
        event: Option<&'a RawValue>,
        #[serde(borrow, default)]
        events: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        steps: Option<BTreeMap<String, &'a RawValue>>,
        #[serde(borrow)]
        ctx: CallCtx<'a>,
        #[serde(default)]
        use_api: bool,
    }

    const BODIES: &[&str] = &[
        r#"{"ctx":{"run_id":"r","attempt":0,"stack":{"stack":[]}},"event":{"name":"a","data":{"n":1}},"events":[{"name":"a","data":{"n":1}}],"steps":{"0123456789abcdef0123456789abcdef01234567":{"data":"x"},"nothex":{"data":[1,2.5e3,null,true]}},"use_api":false,"version":2}"#,
        r#" { "ctx" : { "run_id" : "r" } , "steps" : null , "event" : null } "#,
        r#"{"events":[{"name":"a","data":{"s":"x\"y","n":[1,2]}},{"name":"a"}],"event":{"name":"a","data":{"s":"x\"y","n":[1,2]}},"ctx":{"run_id":"r"}}"#,
        r#"{"event":"e","events":["e","e",1],"ctx":{"run_id":"r"}}"#,
        r#"{"event":1,"events":[12],"ctx":{"run_id":"r"}}"#,
        r#"{"event":[1,{}],"events":[[1,{}],[1,{}]],"ctx":{"run_id":"r"}}"#,
        r#"{"ctx":{"run_id":"r"},"steps":{}}"#,
        r#"{"ctx":{"run_id":"r"},"ctx":{"run_id":"s"}}"#,
        r#"{"ctx":{"run_id":"r"},"steps":{},"steps":{}}"#,
        r#"{"ctx":{"run_id":"r"},"unknown":1,"unknown":2}"#,
        r#"{"event":{"name":"a"}}"#,
        r#"{"ctx":{"run_id":"r"},"events":null}"#,
        r#"{"ctx":{"run_id":"r"},"events":{}}"#,
        r#"{"ctx":{"run_id":"r"},"steps":[]}"#,
        r#"{"ctx":{"run_id":"r"},"steps":"x"}"#,
        r#"{"ctx":{"run_id":"r"},"use_api":null}"#,
        r#"{"ctx":{"run_id":"r"},"use_api":1}"#,
        r#"{"ctx":{"run_id":7}}"#,
        r#"{"ctx":null}"#,
        r#"{"ctx":{"run_id":"r"}} x"#,
        r#"{"ctx":{"run_id":"r"},"steps":{"\ud800":1}}"#,
        r#"{"ctx":{"run_id":"r"},"\ud800":1}"#,
        r#"{"ctx":{"run_id":"r"},"event":{"name":"\ud800"}}"#,
        r#"{"c\u0074x":{"run_id":"r"}}"#,
        "null",
        "\"ctx\"",
    ];

    fn both_read(text: &str) -> (bool, bool) {
        let ours = CallRequest::parse(text).is_ok();
        let serde = serde_json::from_str::<SerdeRequest<'_>>(text).is_ok();
        (ours, serde)
    }

    #[test]
    fn a_body_is_read_exactly_when_serde_json_would_read_it() {
        for body in BODIES {
            let (ours, serde) = both_read(body);
            assert_eq!(ours, serde, "{body}");
        }
    }

    #[test]
    fn every_prefix_and_one_byte_change_of_a_body_is_judged_as_serde_json_judges_it() {
        let bytes: &[u8] = b" \"\\{}[],:0123456789abcdef-.eEtrufalsn\x01";
        for body in BODIES {
            let mut variants: Vec<Vec<u8>> = (0..body.len())
                .map(|end| body.as_bytes()[..end].to_vec())
                .collect();
            for at in 0..body.len() {
                for &b in bytes {
                    let mut changed = body.as_bytes().to_vec();
                    changed[at] = b;
                    variants.push(changed);
                }
            }
            for variant in variants {
                let Ok(text) = std::str::from_utf8(&variant) else {
                    continue;
                };
                // serde also reads a struct from an array of its fields; Inngest never sends
                // one, and the scanner refuses it.
                if text.trim_start().starts_with('[') {
                    continue;
                }
                let (ours, serde) = both_read(text);
                assert_eq!(ours, serde, "{text}");
            }
        }
    }

    #[test]
    fn events_and_steps_are_slices_of_the_body_and_escaped_keys_are_read() {
        let a = crate::step::hash_step_id("a", 0);
        let escaped: String = a.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let text = ByteString::from(format!(
            r#"{{"ctx":{{"run_id":"r"}},"event":{{"name":"e"}},"events":[ {{"name":"e"}} ],"steps":{{"{escaped}":null,"nothex":1}}}}"#
        ));
        let call = CallRequest::parse(&text).expect("reads");
        assert_eq!(call.event, Some(r#"{"name":"e"}"#));
        assert_eq!(call.events, [r#"{"name":"e"}"#]);
        assert_eq!(call.steps.0.len(), 2);
        let memo = Memo::index(&text, call.steps);
        assert_eq!(memo.len(), 1, "the key that is not a digest is left out");
        let digest = parse_hex_digest(a.as_bytes()).expect("hex");
        assert_eq!(memo.get(&digest).map(|memo| memo.json), Some("null"));
    }

    #[test]
    fn the_memo_of_plain_text_keeps_the_scans_note_to_the_step() {
        let (a, b) = (
            crate::step::hash_step_id("a", 0),
            crate::step::hash_step_id("b", 0),
        );
        let text = ByteString::from(format!(
            r#"{{"ctx":{{"run_id":"r"}},"steps":{{"{a}":{{"data":"plain"}},"{b}":{{"data":"a\nb"}}}}}}"#
        ));
        let call = CallRequest::parse(&text).expect("reads");
        let memo = Memo::index(&text, call.steps);
        let plain = |id: &str| {
            let digest = parse_hex_digest(id.as_bytes()).expect("hex");
            memo.get(&digest).map(|memo| memo.plain_data)
        };
        assert_eq!((plain(&a), plain(&b)), (Some(true), Some(false)));
    }

    #[test]
    fn a_refused_body_says_why() {
        let why = |text: &str| CallRequest::parse(text).err().map(|e| e.to_string());
        assert_eq!(
            why(r#"{"event":{}}"#).as_deref(),
            Some("missing field `ctx`")
        );
        assert_eq!(
            why(r#"{"ctx":{"run_id":"r"},"ctx":{"run_id":"r"}}"#).as_deref(),
            Some("duplicate field `ctx`")
        );
        assert_eq!(
            why(r#"{"ctx":{"run_id":"r"},"events":{}}"#).as_deref(),
            Some("events: expected an array")
        );
        assert_eq!(why("[]").as_deref(), Some("expected an object"));
        assert_eq!(
            why(r#"{"ctx":{"run_id":"r"}"#).as_deref(),
            Some("EOF while parsing an object at byte 21")
        );
        assert!(why(r#"{"ctx":{"run_id":1}}"#).is_some_and(|m| m.starts_with("ctx: ")));
    }

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
