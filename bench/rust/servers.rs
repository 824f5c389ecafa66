//! The two Rust servers measured: the benchmark function on this SDK, and the ceiling (a bare
//! axum handler answering the bytes the SDK answered). Both print `READY` once listening.

use std::fs;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::post;
use axum::serve::ListenerExt;
use inngest_sdk::axum::Limits;
use inngest_sdk::{Client, Config, ServeHandler};

use crate::Outcome;
use crate::function::function;

/// Serves the benchmark function at `/api/inngest` on `127.0.0.1:$PORT`.
pub fn serve_sdk() -> Outcome {
    // Dev mode unless a signing key is given: the same switch as the TypeScript and Go servers.
    let mut config = Config::from_env("bench")?;
    if std::env::var_os("INNGEST_SIGNING_KEY").is_none() {
        config = config.dev(None);
    }
    let handler = ServeHandler::new(Client::new(config), (), [function()])?;
    // `BENCH_BUFFERED_REQUESTS` sets the adapter's bound on bodies held at once (BENCHMARKS.md,
    // memory; at least 1, and the byte budget still applies); unset, the SDK's default.
    let mut limits = Limits::default();
    if let Ok(count) = std::env::var("BENCH_BUFFERED_REQUESTS") {
        limits.max_buffered_requests = count.parse()?;
    }
    let route = inngest_sdk::axum::serve_with_limits(handler, limits);
    serve(Router::new().route("/api/inngest", route))
}

/// Serves the status, headers and body in `<capture>.status|headers|body` to every POST at
/// `/api/inngest`, after reading the request body as any server must.
pub fn serve_bare(capture: &str) -> Outcome {
    let status = StatusCode::from_u16(
        fs::read_to_string(format!("{capture}.status"))?
            .trim()
            .parse()?,
    )?;
    let mut headers = HeaderMap::new();
    for line in fs::read_to_string(format!("{capture}.headers"))?.lines() {
        let (name, value) = line
            .split_once(": ")
            .ok_or("a header line without \": \"")?;
        // The server writes these itself, as it does for the SDK's answer.
        if !matches!(name, "content-length" | "date") {
            headers.append(HeaderName::try_from(name)?, HeaderValue::try_from(value)?);
        }
    }
    let body = Bytes::from(fs::read(format!("{capture}.body"))?);
    let answer = move |_request: Bytes| {
        let (headers, body) = (headers.clone(), body.clone());
        async move { (status, headers, body) }
    };
    // axum's own limit (2 MB) would refuse the 4 MB workload; the SDK's adapter allows 8 MB.
    let limit = DefaultBodyLimit::max(inngest_sdk::axum::MAX_BODY_BYTES);
    serve(
        Router::new()
            .route("/api/inngest", post(answer))
            .layer(limit),
    )
}

/// A stand-in for Inngest's API that accepts everything with 200 `{}`: where the TypeScript
/// SDK sends its checkpoints when checkpointing is on.
pub fn serve_fake_api() -> Outcome {
    let accept = || async { (StatusCode::OK, [("content-type", "application/json")], "{}") };
    serve(
        Router::new()
            .fallback(accept)
            .layer(DefaultBodyLimit::disable()),
    )
}

fn serve(router: Router) -> Outcome {
    let port = std::env::var("PORT").map_err(|_| "PORT is required")?;
    // The multi-thread runtime sizes itself to the CPUs the process may use: one when pinned.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // No Nagle delay on answers, as Go's net/http and Node's http server do by default.
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
            .await?
            .tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
        println!("READY");
        axum::serve(listener, router).await?;
        Ok(())
    })
}
