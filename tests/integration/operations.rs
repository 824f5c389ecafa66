//! What an operator relies on: probes, request ids in responses and logs, CORS for the
//! dashboard's origin only, and a shutdown that lets requests finish within its deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use diesel_async::RunQueryDsl;
use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use huckleberry::server::{self, Timeouts};
use reqwest::Method;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{DASHBOARD_ORIGIN, TestDatabase, spawn_app};

/// The app with only a database URL (and the dev Inngest mode) configured: no CORS origins.
async fn spawn_bare_app(database_url: &str) -> SocketAddr {
    let vars = HashMap::from([
        ("DATABASE_URL", database_url.to_owned()),
        ("DATABASE_CONNECT_TIMEOUT_SECS", "2".to_owned()),
        ("INNGEST_DEV", "1".to_owned()),
    ]);
    let config = AppConfig::from_vars(|k| vars.get(k).cloned()).expect("config");
    let pool = huckleberry::db::pool_with(database_url, &config.operations.database).expect("pool");
    let state = AppState::new(config, pool).expect("state");
    let router = huckleberry::build_router(state).expect("router");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(server::serve(
        listener,
        router,
        Timeouts::default(),
        std::future::pending(),
    ));
    addr
}

fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_new_request_id_unless_the_client_sent_one() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for path in ["/healthz", "/healthz", "/api/nothing-here"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        let id = header(&response, "x-request-id")
            .expect("a request id")
            .to_owned();
        uuid::Uuid::parse_str(&id).expect("a generated id is a UUID");
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "each request gets its own id: {ids:?}");

    let response = app
        .http
        .get(app.url("/api/me"))
        .header("x-request-id", "lb-7f3a-42")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "x-request-id"), Some("lb-7f3a-42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_ok_on_a_migrated_database() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/health"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], "ok", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_unavailable_while_a_migration_is_not_applied() {
    let app = spawn_app().await;
    let mut conn = app.conn().await;
    diesel::sql_query(
        "DELETE FROM __diesel_schema_migrations \
         WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    )
    .execute(&mut conn)
    .await
    .expect("forget the latest migration");
    drop(conn);

    for path in ["/readyz", "/health"] {
        let response = app.http.get(app.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), 503, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "unavailable", "{path}");
    }
    let response = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_unavailable_on_a_database_never_migrated() {
    let database = TestDatabase::empty().await;
    let addr = spawn_bare_app(database.url()).await;
    let response = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .expect("answer");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_unavailable_and_healthz_ok_when_the_database_is_unreachable() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let addr = spawn_bare_app("postgres://postgres@127.0.0.1:1/huckleberry").await;
    let started = Instant::now();
    let response = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .expect("answer");
    assert_eq!(response.status(), 503);
    assert!(header(&response, "x-request-id").is_some());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_the_dashboard_origin_is_allowed() {
    let app = spawn_app().await;
    let response = app
        .http
        .request(Method::OPTIONS, app.url("/api/me"))
        .header(ORIGIN, DASHBOARD_ORIGIN)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(DASHBOARD_ORIGIN)
    );
    let methods = header(&response, ACCESS_CONTROL_ALLOW_METHODS).expect("methods");
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    let headers = header(&response, ACCESS_CONTROL_ALLOW_HEADERS).expect("headers");
    assert!(headers.contains("authorization"), "{headers}");
    assert!(header(&response, "x-request-id").is_some());

    // The request that follows the preflight gets the origin back too.
    let response = app
        .http
        .get(app.url("/api/me"))
        .header(ORIGIN, DASHBOARD_ORIGIN)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(DASHBOARD_ORIGIN)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_origin_gets_no_cors_header() {
    let app = spawn_app().await;
    for origin in [
        "https://evil.test",
        "http://dashboard.huckleberry.test",
        "https://dashboard.huckleberry.test.evil.test",
    ] {
        let preflight = app
            .http
            .request(Method::OPTIONS, app.url("/api/me"))
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .send()
            .await
            .expect("answer");
        assert_eq!(preflight.status(), 405, "{origin}");
        assert_eq!(cors_headers(&preflight), Vec::<String>::new(), "{origin}");
        let request = app
            .http
            .get(app.url("/healthz"))
            .header(ORIGIN, origin)
            .send()
            .await
            .expect("answer");
        assert_eq!(request.status(), 200);
        assert_eq!(cors_headers(&request), Vec::<String>::new(), "{origin}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_origins_no_origin_is_allowed() {
    let addr = spawn_bare_app("postgres://postgres@127.0.0.1:1/huckleberry").await;
    let response = reqwest::Client::new()
        .request(Method::OPTIONS, format!("http://{addr}/healthz"))
        .header(ORIGIN, DASHBOARD_ORIGIN)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .send()
        .await
        .expect("answer");
    assert_eq!(cors_headers(&response), Vec::<String>::new());
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_still_gets_its_answer() {
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let router = Router::new().route(
        "/slow",
        get({
            let started = started.clone();
            move || async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "done"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        router,
        Timeouts::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let request = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    started.notified().await;
    stop.send(()).expect("the server listens for the signal");

    let response = request
        .await
        .expect("task")
        .expect("an answer despite the shutdown");
    assert_eq!(response.text().await.expect("body"), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops once the request is answered")
        .expect("task");
}

/// Sends SIGTERM to the binary and waits (up to `limit`) for it to end; how it ended and how
/// long that took.
async fn terminate(
    child: &mut tokio::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, Duration) {
    let pid = child.id().expect("running").to_string();
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the process did not exit within {limit:?} of SIGTERM"))
        .expect("wait");
    (exit, sent.elapsed())
}

/// A free port on loopback (released before the binary binds it).
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_json_with_the_request_id_and_stops_on_sigterm_within_its_deadline() {
    let database = TestDatabase::migrated().await;
    let port = free_port().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_huckleberry"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("PORT", port.to_string())
        .env("INNGEST_DEV", "1")
        .env("INNGEST_BASE_URL", "http://127.0.0.1:1")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("SHUTDOWN_GRACE_SECS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        match http
            .get(format!("{base}/healthz"))
            .header("x-request-id", "op-test-42")
            .send()
            .await
        {
            Ok(response) => break response,
            Err(e) if Instant::now() < deadline => {
                drop(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the binary never answered: {e}"),
        }
    };
    assert_eq!(header(&response, "x-request-id"), Some("op-test-42"));

    // A request whose body never finishes: in flight until the grace period ends.
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(b"POST /api/webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("a partial request");
    // Time for the server to accept it and read its headers, even on a busy machine.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (exit, took) = terminate(&mut child, Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "exited {took:?} after SIGTERM with a 1 s grace period and a request in flight"
    );

    let lines = lines.await.expect("log reader");
    let request_line = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["request_id"] == "op-test-42")
        .unwrap_or_else(|| panic!("no JSON log line carries the request id: {lines:#?}"));
    assert_eq!(request_line["span"]["path"], "/healthz");
    assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:#?}");
    drop(stream);
}

/// A step stuck in a provider call that never answers (a Stripe that accepts the connection and
/// then says nothing) does not keep the process alive past its shutdown grace: SIGTERM, and it
/// is gone within the grace period, long before the provider timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_hung_provider_call_exits_within_the_grace_period() {
    let database = TestDatabase::migrated().await;
    // Accepts connections and never answers; counts them.
    let hung = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hung_addr = hung.local_addr().expect("addr");
    let (connected_tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            let _ = connected_tx.send(());
            held.push(socket);
        }
    });
    let port = free_port().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_huckleberry"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("PORT", port.to_string())
        .env("INNGEST_DEV", "1")
        .env("INNGEST_BASE_URL", "http://127.0.0.1:1")
        .env("RELAY_BACKGROUND", "false")
        .env("STRIPE_SECRET_KEY", "sk_test_hung")
        .env("STRIPE_WEBHOOK_SECRET", "whsec_hung")
        .env("STRIPE_API_BASE", format!("http://{hung_addr}/"))
        .env("PROVIDER_TIMEOUT_MS", "120000")
        .env("SHUTDOWN_GRACE_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the binary never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Inngest (the dev server: unsigned) runs the purchase's first step, which asks Stripe.
    let event = serde_json::json!({
        "name": "stripe/checkout.session.completed",
        "data": {
            "sessionId": "cs_test_hung",
            "orderId": "00000000-0000-4000-8000-0000000000a1",
            "userId": "user_hung",
            "productId": "00000000-0000-4000-8000-0000000000b1"
        },
        "id": "evt_hung", "ts": 1796558400000_i64
    });
    let run = serde_json::json!({
        "ctx": {
            "attempt": 0, "disable_immediate_execution": false, "env": "",
            "fn_id": "mentorships-platform-process-stripe-checkout", "max_attempts": 13,
            "run_id": "01HUNGRUN", "stack": { "current": 0, "stack": [] },
            "step_id": "step", "use_api": false
        },
        "event": event, "events": [event], "steps": {}, "use_api": false, "version": 2
    });
    let url =
        format!("{base}/api/inngest?fnId=mentorships-platform-process-stripe-checkout&stepId=step");
    let in_flight = tokio::spawn(async move { http.post(url).json(&run).send().await });
    tokio::time::timeout(Duration::from_secs(20), connected.recv())
        .await
        .expect("the step called Stripe")
        .expect("a connection");

    // Gone within 15 s at all, not after the 120 s provider timeout. Whether it exits cleanly
    // is the test above's; this one is about the time, so it also accepts an end by the signal
    // itself (a CI run saw one before the handlers were installed at start, in `cli`).
    let (exit, took) = terminate(&mut child, Duration::from_secs(15)).await;
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(exit.success() || exit.signal() == Some(15), "{exit:?}");
    }
    assert!(
        took < Duration::from_secs(6),
        "exited {took:?} after SIGTERM with a 1 s grace period"
    );
    // The call in flight got no answer (Inngest retries it): the connection was closed.
    let answer = in_flight.await.expect("the client task");
    assert!(
        answer.is_err() || answer.is_ok_and(|r| !r.status().is_success()),
        "an unfinished step must not be reported as done"
    );
    holder.abort();
}
