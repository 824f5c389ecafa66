//! Builds execution requests the way the Inngest executor sends them (protocol §6.1).
#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response};
use inngest_sdk::ServeHandler;
use serde_json::{Map, Value, json};

/// One POST to the serve endpoint.
pub struct Call {
    pub fn_id: String,
    pub step_id: String,
    pub event: Value,
    pub steps: Map<String, Value>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub disable_immediate_execution: bool,
}

impl Call {
    pub fn new(fn_id: &str, event: Value) -> Self {
        Self {
            fn_id: fn_id.to_owned(),
            step_id: "step".to_owned(),
            event,
            steps: Map::new(),
            attempt: 0,
            max_attempts: 4,
            disable_immediate_execution: false,
        }
    }

    pub fn memo(mut self, hash: &str, state: Value) -> Self {
        self.steps.insert(hash.to_owned(), state);
        self
    }

    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    pub fn max_attempts(mut self, max: u32) -> Self {
        self.max_attempts = max;
        self
    }

    pub fn target(mut self, step_id: &str) -> Self {
        self.step_id = step_id.to_owned();
        self
    }

    pub fn plan_only(mut self) -> Self {
        self.disable_immediate_execution = true;
        self
    }

    pub fn body(&self) -> Value {
        let stack: Vec<&String> = self.steps.keys().collect();
        json!({
            "ctx": {
                "attempt": self.attempt,
                "disable_immediate_execution": self.disable_immediate_execution,
                "env": "",
                "fn_id": "7f5c4d3e-0000-4000-8000-000000000000",
                "generation_id": 1,
                "job_id": "job",
                "max_attempts": self.max_attempts,
                "qi_id": "qi",
                "request_id": "req",
                "run_id": "01JRUN",
                "stack": { "current": stack.len(), "stack": stack },
                "step_id": self.step_id,
                "use_api": false,
            },
            "defers": {},
            "event": self.event,
            "events": [self.event],
            "steps": self.steps,
            "use_api": false,
            "version": 2,
        })
    }

    pub fn request(&self) -> Request<Bytes> {
        let query = format!("fnId={}&stepId={}", self.fn_id, self.step_id);
        Request::post(format!("http://localhost:3000/api/inngest?{query}"))
            .header("content-type", "application/json")
            .body(Bytes::from(self.body().to_string()))
            .expect("request builds")
    }

    pub async fn send<S: Clone + Send + Sync + 'static>(&self, handler: &ServeHandler<S>) -> Reply {
        Reply::from(handler.handle(self.request()).await)
    }
}

/// A response with its body parsed.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub raw: String,
    pub json: Value,
}

impl From<Response<Bytes>> for Reply {
    fn from(response: Response<Bytes>) -> Self {
        let raw = String::from_utf8(response.body().to_vec()).expect("utf-8 body");
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            json: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
        }
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ops with `displayName` removed, as the conformance runner normalizes them.
    pub fn ops(&self) -> Value {
        let mut ops = self.json.clone();
        for op in ops.as_array_mut().expect("a 206 body is an array") {
            op.as_object_mut().expect("op object").remove("displayName");
        }
        ops
    }
}

/// An event as the executor sends it.
pub fn event(name: &str, data: Value) -> Value {
    json!({ "data": data, "id": "01JEVENT", "name": name, "ts": 1_700_000_000_000_i64, "user": {} })
}
