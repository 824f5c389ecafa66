//! The axum endpoint under a hostile client: what it reads before trusting a request, how much
//! it holds, and for how long.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use inngest_sdk::axum::{Limits, serve_with_limits};
use inngest_sdk::signature::{SigningKey, sign};
use inngest_sdk::{Client, Config, Ctx, Function, FunctionOpts, ServeHandler, Trigger};
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "signkey-test-7468697320697320612074657374206b6579";
const EXECUTE: &str = "/api/inngest?fnId=app-hello&stepId=step";
const MB: usize = 1024 * 1024;

fn hello() -> Function<()> {
    Function::new(
        FunctionOpts::new("hello").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move { Ok(ctx.event.data) },
    )
}

fn app(config: Config, limits: Limits) -> Router {
    let handler =
        ServeHandler::new(Client::new(config), (), [hello()]).expect("the function is valid");
    Router::new().route("/api/inngest", serve_with_limits(handler, limits))
}

fn cloud(limits: Limits) -> Router {
    app(Config::new("app").with_signing_key(KEY), limits)
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit in i64")
}

/// A signature of the moment over other bytes: well formed and current, so the body is read
/// before it is refused.
fn wrong_signature() -> String {
    sign(&SigningKey::new(KEY), b"another body", now())
}

/// A body of `chunks` chunks of one MB that counts the bytes the server pulls from it, and
/// then, if `stall`, never ends.
fn counted_body(chunks: usize, stall: bool, pulled: Arc<AtomicUsize>) -> Body {
    let data = futures::stream::iter(0..chunks).map(move |_| {
        pulled.fetch_add(MB, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b' '; MB]))
    });
    if stall {
        Body::from_stream(data.chain(futures::stream::pending()))
    } else {
        Body::from_stream(data)
    }
}

fn post(body: Body, signature: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(EXECUTE)
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("x-inngest-signature", signature);
    }
    builder.body(body).expect("the request builds")
}

async fn message(response: axum::response::Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body is readable")
        .to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    body["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_unsigned_15_mb_post_in_cloud_mode_is_refused_without_being_read() {
    let pulled = Arc::new(AtomicUsize::new(0));

    let response = cloud(Limits::default())
        .oneshot(post(counted_body(15, false, pulled.clone()), None))
        .await
        .expect("axum answers");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "no byte of the body was read"
    );
}

#[tokio::test]
async fn an_unsigned_put_in_cloud_mode_is_answered_without_reading_its_body() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/api/inngest")
        .header("x-inngest-sync-kind", "in_band")
        .body(counted_body(15, false, pulled.clone()))
        .expect("the request builds");

    let response = cloud(Limits::default())
        .oneshot(request)
        .await
        .expect("axum answers");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "no byte of the body was read"
    );
}

#[tokio::test]
async fn a_made_up_or_stale_signature_is_refused_without_reading_the_body() {
    let stale = sign(&SigningKey::new(KEY), b"", now() - 3600);
    for header in ["x", "t=1&s=00", stale.as_str()] {
        let pulled = Arc::new(AtomicUsize::new(0));
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            cloud(Limits::default())
                .oneshot(post(counted_body(1, true, pulled.clone()), Some(header))),
        )
        .await
        .expect("answered without waiting for the body")
        .expect("axum answers");

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(pulled.load(Ordering::SeqCst), 0, "{header}: no byte read");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_it_is_all_read() {
    let pulled = Arc::new(AtomicUsize::new(0));

    // No Content-Length: the limit holds while streaming.
    let response = cloud(Limits::default())
        .oneshot(post(
            counted_body(15, false, pulled.clone()),
            Some(&wrong_signature()),
        ))
        .await
        .expect("axum answers");

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        pulled.load(Ordering::SeqCst) <= 9 * MB,
        "reading stopped at the limit"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_with_413_unread() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut request = post(
        counted_body(9, false, pulled.clone()),
        Some(&wrong_signature()),
    );
    request.headers_mut().insert(
        "content-length",
        (9 * MB).to_string().parse().expect("a header value"),
    );

    let response = cloud(Limits::default())
        .oneshot(request)
        .await
        .expect("axum answers");

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "no byte of the body was read"
    );
}

#[tokio::test]
async fn a_signed_body_just_under_the_limit_still_runs() {
    let mut call = json!({
        "ctx": {"run_id": "r1", "attempt": 0, "stack": {"stack": []}},
        "event": {"name": "t/e", "data": {"pad": ""}},
        "events": [],
        "steps": {},
        "version": 2,
    });
    call["event"]["data"]["pad"] = Value::String("x".repeat(7 * MB));
    let body = serde_json::to_vec(&call).expect("the call serializes");
    let signature = sign(&SigningKey::new(KEY), &body, now());

    let response = cloud(Limits::default())
        .oneshot(post(Body::from(body), Some(&signature)))
        .await
        .expect("axum answers");

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_trickles_in_is_dropped_with_408() {
    let limits = Limits {
        body_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let pulled = Arc::new(AtomicUsize::new(0));

    let response = tokio::time::timeout(
        Duration::from_secs(5),
        cloud(limits).oneshot(post(
            counted_body(1, true, pulled),
            Some(&wrong_signature()),
        )),
    )
    .await
    .expect("the endpoint gives up on the body")
    .expect("axum answers");

    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(message(response).await.contains("did not arrive"));
}

/// Sends `first`, whose body gives one MB and then stalls, then `second`; checks that no byte
/// of `second`'s body is pulled (`why`) until `first` is dropped with 408, and that it is read
/// then (and refused: its signature is wrong).
async fn the_second_waits_for_the_first(
    router: &Router,
    (first, first_pulled): (Request<Body>, Arc<AtomicUsize>),
    (second, second_pulled): (Request<Body>, Arc<AtomicUsize>),
    why: &str,
) {
    let stalled = tokio::spawn(router.clone().oneshot(first));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        first_pulled.load(Ordering::SeqCst),
        MB,
        "the first body is being read"
    );
    let waiting = tokio::spawn(router.clone().oneshot(second));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(second_pulled.load(Ordering::SeqCst), 0, "{why}");

    let first = stalled.await.expect("joins").expect("axum answers");
    assert_eq!(first.status(), StatusCode::REQUEST_TIMEOUT);
    let second = waiting.await.expect("joins").expect("axum answers");
    assert_eq!(
        second.status(),
        StatusCode::UNAUTHORIZED,
        "read, then refused"
    );
    assert!(second_pulled.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn only_the_allowed_number_of_bodies_are_read_at_once() {
    let limits = Limits {
        max_buffered_requests: 1,
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (first, second) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());

    the_second_waits_for_the_first(
        &cloud(limits),
        (
            post(
                counted_body(1, true, first.clone()),
                Some(&wrong_signature()),
            ),
            first,
        ),
        (
            post(
                counted_body(1, false, second.clone()),
                Some(&wrong_signature()),
            ),
            second,
        ),
        "the second waits for a turn",
    )
    .await;
}

/// A POST declaring `declared` bytes, signed (wrongly: it is refused once read).
fn post_declaring(body: Body, declared: usize) -> Request<Body> {
    let mut request = post(body, Some(&wrong_signature()));
    request
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, declared.into());
    request
}

#[tokio::test]
async fn a_body_waits_while_the_bodies_before_it_hold_the_byte_budget() {
    let limits = Limits {
        max_buffered_bytes: 3 * MB,
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let router = cloud(limits);
    let (first, second) = (Arc::<AtomicUsize>::default(), Arc::<AtomicUsize>::default());

    the_second_waits_for_the_first(
        &router,
        (
            post_declaring(counted_body(1, true, first.clone()), 2 * MB),
            first,
        ),
        (
            post_declaring(counted_body(2, false, second.clone()), 2 * MB),
            second.clone(),
        ),
        "2 MB more would pass the 3 MB budget: the second waits",
    )
    .await;
    assert_eq!(second.load(Ordering::SeqCst), 2 * MB);

    // The budget is whole again: a body that fits is read at once.
    let pulled = Arc::new(AtomicUsize::new(0));
    let third = router
        .oneshot(post_declaring(
            counted_body(3, false, pulled.clone()),
            3 * MB,
        ))
        .await
        .expect("axum answers");
    assert_eq!(third.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(pulled.load(Ordering::SeqCst), 3 * MB);
}

#[tokio::test]
async fn small_bodies_share_the_byte_budget_and_one_larger_than_it_is_read_alone() {
    let limits = Limits {
        max_buffered_bytes: MB,
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let router = cloud(limits);
    let pulled = Arc::new(AtomicUsize::new(0));

    // Two stalled bodies declaring 100 bytes each fit the budget together.
    let small = || {
        let body = Body::from_stream(
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b" "))])
                .chain(futures::stream::pending()),
        );
        router.clone().oneshot(post_declaring(body, 100))
    };
    let (one, two) = tokio::join!(small(), small());
    assert_eq!(
        one.expect("axum answers").status(),
        StatusCode::REQUEST_TIMEOUT
    );
    assert_eq!(
        two.expect("axum answers").status(),
        StatusCode::REQUEST_TIMEOUT
    );

    // A 2 MB body, more than the whole 1 MB budget, takes all of it rather than waiting for
    // ever.
    let large = tokio::time::timeout(
        Duration::from_secs(5),
        router.oneshot(post_declaring(
            counted_body(2, false, pulled.clone()),
            2 * MB,
        )),
    )
    .await
    .expect("the larger body is read, alone")
    .expect("axum answers");
    assert_eq!(large.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(pulled.load(Ordering::SeqCst), 2 * MB);
}
