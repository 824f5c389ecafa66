//! Runs `ts-fixture/checkpoint-capture.mjs` (see `ts-fixture/CHECKPOINT.md`): the execution
//! requests an executor sends with checkpointing on, against the TypeScript SDK (the default)
//! or against other serve handlers, with a fake Inngest API that records every checkpoint call
//! and fails on demand. Include it with
//! `#[path = "common/checkpoint_capture.rs"] mod checkpoint_capture;`.
//!
//! To drive our SDK: serve the `ckpt-app` functions of CHECKPOINT.md §1 twice, in dev mode and
//! in cloud mode with [`SIGNING_KEY`] and [`SIGNING_KEY_FALLBACK`], both with the API base URL
//! `http://127.0.0.1:{fake_api_port}`, and pass them as [`Targets`].

#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;

/// The cloud target's signing keys (test keys, hex after the prefix).
pub const SIGNING_KEY: &str = "signkey-test-7468697320697320612074657374206b6579";
pub const SIGNING_KEY_FALLBACK: &str = "signkey-test-66616c6c6261636b206b6579";
/// The ids the driver puts in `ctx` (and the matching headers).
pub const RUN_ID: &str = "01KCKPT0000000000000000000";
pub const FN_UUID: &str = "6f1c2a4e-0b5d-4c1e-9a7f-3d2b1c0e9f8a";
pub const QI_ID: &str = "cWktcmVmLWNrcHQ=";
pub const REQUEST_ID: &str = "01KREQ00000000000000000000";

/// Serve handlers to drive instead of spawning the TypeScript fixture.
pub struct Targets {
    /// Dev mode serve URL, e.g. `http://127.0.0.1:3000/api/inngest`.
    pub dev: String,
    /// Cloud mode serve URL (keys above); the cloud cases are skipped without it.
    pub cloud: Option<String>,
    /// The port the targets use as their Inngest API; the fake listens there.
    pub fake_api_port: u16,
}

/// One call request of the driver, its response, and the API calls the SDK made meanwhile.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub case: String,
    /// The call request as sent: `{method, url, headers, body}`.
    pub request: Value,
    /// `None` when the SDK did not answer within the driver's timeout.
    pub status: Option<u16>,
    pub headers: Value,
    pub body: Value,
    /// Milliseconds from sending the request to its response.
    pub t_ms: Option<u64>,
    pub outbound: Vec<Outbound>,
}

/// A request the SDK sent to the fake API.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub method: String,
    pub url: String,
    /// Lower-case header names.
    pub headers: Value,
    pub body: Value,
    /// The fake's status, or `None` when it dropped the connection.
    pub answered: Option<u16>,
    /// Milliseconds from the call request being sent to this request arriving.
    pub t_ms: u64,
}

impl Exchange {
    /// The response body as an array of ops (empty when it is not an array).
    pub fn ops(&self) -> &[Value] {
        self.body.as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// The checkpoint calls (`POST /v1/checkpoint/{run}/async`) among the outbound requests.
    pub fn checkpoints(&self) -> Vec<&Outbound> {
        self.outbound
            .iter()
            .filter(|o| o.method == "POST" && o.url.starts_with("/v1/checkpoint/"))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

impl Outbound {
    /// The `steps` of a checkpoint body.
    pub fn steps(&self) -> &[Value] {
        self.body["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ts-fixture")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether node and the installed fixture are there; prints a `notice:` when not.
pub fn fixture_ready() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        eprintln!("notice: skipping the checkpoint fixture: node is not installed");
        return false;
    }
    if !fixture_dir().join("node_modules/inngest").exists() {
        eprintln!(
            "notice: skipping the checkpoint fixture: the TypeScript SDK is not installed \
             (npm ci --prefix inngest-sdk/tests/ts-fixture)"
        );
        return false;
    }
    true
}

/// Runs the capture for `cases` (all cases when empty) against `targets`, or against the
/// TypeScript SDK when `None`; `None` (with a notice) when node or the fixture is missing.
pub async fn capture_checkpoints(
    targets: Option<&Targets>,
    cases: &[&str],
) -> Option<Vec<Exchange>> {
    if !fixture_ready() {
        return None;
    }
    let mut command = tokio::process::Command::new("node");
    command
        .arg("checkpoint-capture.mjs")
        .current_dir(fixture_dir())
        .env("REQUEST_TIMEOUT_MS", "12000")
        .env_remove("NORMALIZE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if !cases.is_empty() {
        command.env("CASES", cases.join(","));
    }
    match targets {
        Some(targets) => {
            command
                .env("TARGET_URL", &targets.dev)
                .env("FAKE_API_PORT", targets.fake_api_port.to_string());
            match &targets.cloud {
                Some(cloud) => command.env("TARGET_CLOUD_URL", cloud),
                None => command.env_remove("TARGET_CLOUD_URL"),
            };
        }
        None => {
            command
                .env_remove("TARGET_URL")
                .env_remove("TARGET_CLOUD_URL")
                .env("FAKE_API_PORT", free_port().to_string())
                .env("SDK_PORT", free_port().to_string())
                .env("SDK_CLOUD_PORT", free_port().to_string());
        }
    }
    let output = command.output().await.expect("node runs");
    assert!(
        output.status.success(),
        "checkpoint-capture.mjs failed: {output:?}"
    );
    Some(parse(&String::from_utf8_lossy(&output.stdout)))
}

/// Groups the capture's JSON lines: each exchange line, then the outbound lines of its case.
pub fn parse(stdout: &str) -> Vec<Exchange> {
    let mut exchanges: Vec<Exchange> = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).expect("a JSON line");
        let case = value["case"].as_str().expect("a case").to_owned();
        if let Some(outbound) = value.get("outbound") {
            let exchange = exchanges
                .iter_mut()
                .rev()
                .find(|e| e.case == case)
                .expect("an outbound line follows its exchange");
            exchange.outbound.push(Outbound {
                method: outbound["method"].as_str().unwrap_or_default().to_owned(),
                url: outbound["url"].as_str().unwrap_or_default().to_owned(),
                headers: outbound["headers"].clone(),
                body: outbound["body"].clone(),
                answered: value["answered"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok()),
                t_ms: value["t_ms"].as_u64().unwrap_or_default(),
            });
        } else {
            exchanges.push(Exchange {
                case,
                request: value["request"].clone(),
                status: value["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
                headers: value.get("headers").cloned().unwrap_or(Value::Null),
                body: value.get("body").cloned().unwrap_or(Value::Null),
                t_ms: value["t_ms"].as_u64(),
                outbound: Vec::new(),
            });
        }
    }
    exchanges
}

/// An op reduced to what the server acts on: `op`, `id`, and `data` or the error's `message`
/// (TS's internal-object fields, `timing`, `opts` and names dropped).
pub fn op_meaning(op: &Value) -> Value {
    let mut meaning = serde_json::Map::new();
    for key in ["op", "id"] {
        meaning.insert(key.to_owned(), op[key].clone());
    }
    if let Some(message) = op.get("error").and_then(|e| e.get("message")) {
        meaning.insert("error".to_owned(), message.clone());
    } else if let Some(data) = op.get("data").filter(|d| !d.is_null()) {
        meaning.insert("data".to_owned(), data.clone());
    }
    Value::Object(meaning)
}

/// An exchange reduced to its meaning, for comparing two SDKs: the response status, its
/// `x-inngest-no-retry`, its ops (or the error message), and each checkpoint call as the key it
/// used (`primary`, `fallback`, `none`, or the raw header), the fake's answer and its steps.
pub fn meaning(exchange: &Exchange) -> Value {
    let body = match &exchange.body {
        Value::Array(ops) => Value::Array(ops.iter().map(op_meaning).collect()),
        Value::Object(error) if error.contains_key("message") => error["message"].clone(),
        other => other.clone(),
    };
    let primary = format!("Bearer {}", hashed_key(SIGNING_KEY));
    let fallback = format!("Bearer {}", hashed_key(SIGNING_KEY_FALLBACK));
    let checkpoints: Vec<Value> = exchange
        .checkpoints()
        .iter()
        .map(|call| {
            let key = match call.header("authorization").map(str::trim_end) {
                None | Some("Bearer") => "none".to_owned(),
                Some(auth) if auth == primary => "primary".to_owned(),
                Some(auth) if auth == fallback => "fallback".to_owned(),
                Some(auth) => auth.to_owned(),
            };
            serde_json::json!({
                "key": key,
                "answered": call.answered,
                "steps": call.steps().iter().map(op_meaning).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "status": exchange.status,
        "no_retry": exchange.header("x-inngest-no-retry"),
        "body": body,
        "checkpoints": checkpoints,
    })
}

/// The hashed signing key of protocol §3.2 (prefix kept, `sha256(hex_decode(rest))`).
pub fn hashed_key(key: &str) -> String {
    use sha2::Digest;
    let rest = key.trim_start_matches("signkey-test-");
    let bytes = hex::decode(rest).expect("a hex test key");
    format!("signkey-test-{}", hex::encode(sha2::Sha256::digest(&bytes)))
}
