//! Builds execution requests the way the Inngest executor sends them (protocol §6.1).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

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

/// Log output captured for one test: what is logged on the test's thread while the guard from
/// [`Logs::capture`] lives (a `#[tokio::test]` runtime runs every task of the test there), so
/// tests running in parallel never see each other's lines.
///
/// One process-wide subscriber writes every event to the buffer of the thread that logs it, if
/// that thread is capturing. A subscriber per test (`set_default`) would be simpler, but
/// tracing caches per call site whether anyone listens, and a test running on another thread
/// without one can make the cache say no, so lines would go missing at random.
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Stops the capture on this thread when dropped.
pub struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

impl Logs {
    pub fn capture() -> (Self, Capturing) {
        static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        INSTALLED.get_or_init(|| {
            let installed = tracing_subscriber::fmt()
                .with_writer(|| ThreadWriter)
                .with_ansi(false)
                .without_time()
                .with_max_level(tracing::Level::DEBUG)
                .try_init();
            drop(installed);
        });
        let buffer = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(buffer.clone()));
        (Self(buffer), Capturing)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer is not poisoned")).into_owned()
    }

    /// The lines logged at warn level.
    pub fn warnings(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.trim_start().starts_with("WARN"))
            .map(str::to_owned)
            .collect()
    }
}

/// Appends to the capturing thread's buffer; discards on any other thread.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(buffer) = capture.borrow().as_ref() {
                buffer
                    .lock()
                    .expect("log buffer is not poisoned")
                    .extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
