//! OTLP export (feature `otlp`): the real binary, pointed at a local stand-in of an
//! OpenTelemetry collector's OTLP/HTTP endpoint, exports the spans of an Inngest execution,
//! its run and its step, with the function, run id and step name.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::json;
use tokio::net::TcpListener;

use crate::util::TestDatabase;

/// Every body posted to `/v1/traces`.
type Received = Arc<Mutex<Vec<Bytes>>>;

async fn collect(State(received): State<Received>, body: Bytes) -> StatusCode {
    received.lock().expect("lock").push(body);
    StatusCode::OK
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inngest_execution_is_exported_over_otlp_with_its_function_run_id_and_step() {
    let database = TestDatabase::migrated().await;
    let received: Received = Arc::default();
    let collector = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector_addr = collector.local_addr().expect("addr");
    let router = axum::Router::new()
        .route("/v1/traces", post(collect))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(collector, router).await });
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_huckleberry"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("PORT", port.to_string())
        .env("INNGEST_DEV", "1")
        .env("INNGEST_BASE_URL", "http://127.0.0.1:1")
        .env("RELAY_BACKGROUND", "false")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");

    let run = json!({
        "ctx": {
            "attempt": 0, "disable_immediate_execution": false, "env": "",
            "fn_id": "mentorships-platform-relay-inbox", "max_attempts": 2,
            "run_id": "01OTLPTESTRUN", "stack": { "current": 0, "stack": [] },
            "step_id": "step", "use_api": false
        },
        "event": { "name": "inngest/scheduled.timer", "data": {}, "id": "tick-otlp", "ts": 1796558400000_i64 },
        "events": [{ "name": "inngest/scheduled.timer", "data": {}, "id": "tick-otlp", "ts": 1796558400000_i64 }],
        "steps": {}, "use_api": false, "version": 2
    });
    let url = format!(
        "http://127.0.0.1:{port}/api/inngest?fnId=mentorships-platform-relay-inbox&stepId=step"
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        match http.post(&url).json(&run).send().await {
            Ok(response) => break response,
            Err(e) if Instant::now() < deadline => {
                drop(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the binary never answered: {e}"),
        }
    };
    assert_eq!(response.status(), 206, "the relay's first step ran");

    // SIGTERM: the process flushes what it has not exported yet before it exits.
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the process exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");

    let bodies = received.lock().expect("lock").clone();
    let all: Vec<u8> = bodies.iter().flat_map(|b| b.iter().copied()).collect();
    for expected in [
        "inngest.execute",
        // The app's tracing middleware: the run and its step, by name.
        "inngest.run",
        "inngest.step",
        "forward-due-1",
        "mentorships-platform-relay-inbox",
        "01OTLPTESTRUN",
        "run_id",
        "step",
        "huckleberry",
        "request",
    ] {
        assert!(
            contains(&all, expected),
            "{expected:?} not in the {} exported batch(es)",
            bodies.len()
        );
    }
}
