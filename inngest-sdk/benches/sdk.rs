//! Micro-benchmarks of the SDK's hot paths through its public API: step-id hashing, signature
//! verification and a whole execution request (parsing the body and replaying memoized steps),
//! on the same function and request bytes as the load harness (`scripts/bench.sh`); the same
//! requests again through the axum adapter and a `Router`, in process (no socket), where the
//! cost of moving the request's futures around shows.
//!
//! `cargo bench -p inngest-sdk --bench sdk`; the test command builds and runs each once
//! (`--profile-time 1`) so it cannot rot.

#[path = "../../bench/rust/function.rs"]
mod function;
#[allow(dead_code)] // The harness's file writers are not needed here.
#[path = "../../bench/rust/workloads.rs"]
mod workloads;

/// What `workloads.rs` expects of its crate.
type Outcome = Result<(), Box<dyn std::error::Error>>;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inngest_sdk::signature::{SigningKey, sign, verify};
use inngest_sdk::step::hash_step_id;
use inngest_sdk::{Client, Config, ServeHandler};

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_id_hash");
    group.bench_function("first_occurrence", |b| {
        b.iter(|| hash_step_id(black_box("middle"), 0))
    });
    group.bench_function("repeat_999", |b| {
        b.iter(|| hash_step_id(black_box("middle"), 999))
    });
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let key = SigningKey::new("signkey-test-7468697320697320612074657374206b6579");
    let now = 1_764_979_200;
    let mut group = c.benchmark_group("signature_verify");
    for name in ["first-step", "100-steps-of-1kb"] {
        let body = workloads::body(workloads::find(name).expect("a workload"));
        let header = sign(&key, body.as_bytes(), now);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                verify(
                    Some(black_box(&header)),
                    black_box(body.as_bytes()),
                    &[&key],
                    now,
                )
            })
        });
    }
    group.finish();
}

fn execution(c: &mut Criterion) {
    let handler = ServeHandler::new(
        Client::new(Config::new("bench").dev(None)),
        (),
        [function::function()],
    )
    .expect("the benchmark function registers");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("execution_request");
    for name in [
        "first-step",
        "memoized-100",
        "memoized-1000",
        "100-steps-of-1kb",
    ] {
        let body = Bytes::from(workloads::body(workloads::find(name).expect("a workload")));
        let path = workloads::url_path();
        let request = || {
            http::Request::post(path.as_str())
                .header("content-type", "application/json")
                .body(body.clone())
                .expect("a request")
        };
        let status = runtime.block_on(handler.handle(request())).status();
        assert_eq!(
            status, 206,
            "{name}: the benchmark must measure a correct answer"
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| runtime.block_on(handler.handle(request())))
        });
    }
    group.finish();
}

fn through_axum(c: &mut Criterion) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let handler = ServeHandler::new(
        Client::new(Config::new("bench").dev(None)),
        (),
        [function::function()],
    )
    .expect("the benchmark function registers");
    let router = axum::Router::new().route("/api/inngest", inngest_sdk::axum::serve(handler));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("through_axum");
    for name in ["first-step", "memoized-100"] {
        let body = Bytes::from(workloads::body(workloads::find(name).expect("a workload")));
        let path = workloads::url_path();
        let answer = || async {
            let request = http::Request::post(path.as_str())
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.clone()))
                .expect("a request");
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response.into_body().collect().await.expect("a body");
            (status, bytes.to_bytes())
        };
        let (status, _) = runtime.block_on(answer());
        assert_eq!(
            status, 206,
            "{name}: the benchmark must measure a correct answer"
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| b.iter(|| runtime.block_on(answer())));
    }
    group.finish();
}

criterion_group!(benches, hashing, signatures, execution, through_axum);
criterion_main!(benches);
