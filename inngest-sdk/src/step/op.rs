//! Generator opcodes: what a request reports back about the steps it found or ran.
//!
//! The bytes follow the Go SDK, which the conformance runner compares exactly: `opts` absent on
//! step runs, `"data": null` present on errors, sleeps and waits (protocol §7.3, §10.7).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::WireError;

/// The opcode names the server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum OpCode {
    /// A step ran and succeeded; `data` is its result.
    StepRun,
    /// A step failed and may be retried.
    StepError,
    /// A step failed for good.
    StepFailed,
    /// A step was found and should be run in its own request.
    StepPlanned,
    /// Sleep for `opts.duration`.
    Sleep,
    /// Wait for an event.
    WaitForEvent,
    /// Invoke another function.
    InvokeFunction,
    /// The function returned `data` (checkpointing only: the end of a checkpointed invocation).
    RunComplete,
}

/// The `data` member: absent, an explicit `null`, or raw JSON.
#[derive(Debug, Clone)]
pub enum OpData {
    /// Not serialized.
    Absent,
    /// Serialized as `null` (the conformance runner distinguishes it from absent).
    Null,
    /// A step's result, exactly as serialized.
    Raw(Box<RawValue>),
}

/// One opcode as sent in a 206 response.
#[derive(Debug, Clone)]
pub struct Op {
    /// The opcode.
    pub op: OpCode,
    /// The hashed step id.
    pub id: String,
    /// The user's step id.
    pub name: String,
    /// Options for async steps.
    pub opts: Option<Value>,
    /// The result.
    pub data: OpData,
    /// The error, for `StepError` and `StepFailed`.
    pub error: Option<WireError>,
}

impl Op {
    pub(crate) fn new(op: OpCode, hash: &str, name: &str) -> Self {
        Self {
            op,
            id: hash.to_owned(),
            name: name.to_owned(),
            opts: None,
            data: OpData::Absent,
            error: None,
        }
    }

    pub(crate) fn with_opts(mut self, opts: Value) -> Self {
        self.opts = Some(opts);
        self
    }

    pub(crate) fn with_data(mut self, data: OpData) -> Self {
        self.data = data;
        self
    }

    pub(crate) fn with_error(mut self, error: WireError) -> Self {
        self.error = Some(error);
        self.data = OpData::Null;
        self
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("op", &self.op)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("displayName", &self.name)?;
        if let Some(opts) = &self.opts {
            map.serialize_entry("opts", opts)?;
        }
        match &self.data {
            OpData::Absent => {}
            OpData::Null => map.serialize_entry("data", &Value::Null)?,
            OpData::Raw(raw) => map.serialize_entry("data", raw)?,
        }
        if let Some(error) = &self.error {
            map.serialize_entry("error", error)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wire(op: &Op) -> String {
        serde_json::to_string(op).expect("serializes")
    }

    #[test]
    fn opcodes_serialize_in_the_go_sdk_form() {
        let raw = serde_json::value::to_raw_value(&json!({"first": "first step", "second": true}))
            .expect("raw");
        let error = WireError {
            name: "Error".into(),
            message: "broken".into(),
            stack: None,
        };
        let ops = [
            Op::new(OpCode::StepRun, "h1", "first step").with_data(OpData::Raw(raw)),
            Op::new(OpCode::StepError, "h2", "flaky").with_error(error.clone()),
            Op::new(OpCode::StepFailed, "h3", "flaky").with_error(error),
            Op::new(OpCode::StepPlanned, "h4", "p1"),
            Op::new(OpCode::Sleep, "h5", "sleep")
                .with_opts(json!({"duration": "2s"}))
                .with_data(OpData::Null),
            Op::new(OpCode::WaitForEvent, "h6", "wait")
                .with_opts(json!({"event": "test/resume", "if": "async.data.id == event.data.id", "timeout": "10s"}))
                .with_data(OpData::Null),
            Op::new(OpCode::InvokeFunction, "h7", "call")
                .with_opts(json!({"function_id": "app-fn", "payload": {"data": {}}, "timeout": "1m"})),
        ];
        let lines: Vec<String> = ops.iter().map(wire).collect();
        insta::assert_snapshot!(lines.join("\n"));
    }
}
