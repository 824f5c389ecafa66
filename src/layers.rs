//! What every request passes through, outermost first: a request id (the client's
//! `x-request-id`, or a new UUID), one span per request carrying it (so each log line of the
//! request names it), CORS for the configured dashboard origins only, and a deadline for the
//! whole of each request body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The request id header, read from clients and proxies and sent back on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// `router` with a request id on every request and response and one `request` span per
/// request (method, path, request id), logged when the response is sent.
pub fn with_request_tracing(router: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // The path only: a query string may carry a signed link's token.
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = %id,
            )
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        .on_failure(DefaultOnFailure::new().level(Level::ERROR));
    // The last layer added runs first: the id is set before the span opens, and copied onto
    // the response inside it.
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `router` answering CORS for `origins` (already normalised, e.g. `https://dash.example.com`)
/// and for no other: without origins, nothing changes.
///
/// tower-http's `CorsLayer` answers every `OPTIONS` itself and lists the allowed methods and
/// headers to any origin; it only runs here for a request from an allowed origin, so a refused
/// origin gets no CORS header at all (and its preflight the usual 405).
pub fn with_cors(router: Router, origins: &[String]) -> Router {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return router;
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed.iter().cloned()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID])
        .max_age(PREFLIGHT_MAX_AGE);
    let allowed: Arc<[HeaderValue]> = allowed.into();
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let cors = cors.clone();
            let allowed = allowed.clone();
            async move { cors_for_allowed(&allowed, cors, request, next).await }
        },
    ))
}

async fn cors_for_allowed(
    allowed: &[HeaderValue],
    cors: CorsLayer,
    request: Request,
    next: Next,
) -> Response {
    let from_allowed = request
        .headers()
        .get(ORIGIN)
        .is_some_and(|origin| allowed.contains(origin));
    if !from_allowed {
        return next.run(request).await;
    }
    match cors.layer(next).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// `router` with every request body given `limit` to arrive whole, counted from when it is
/// first read: a read past that fails, and the request is refused. Only the body is timed,
/// never the handler, so work with a provider in flight is not cancelled halfway. (tower-http's
/// body timeout restarts with every chunk, so a client sending a byte now and then would never
/// be cut off.)
pub fn with_body_deadline<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limit: Duration,
) -> Router<S> {
    router.layer(axum::middleware::map_request(
        move |request: Request| async move {
            request.map(|body| Body::new(DeadlineBody::new(body, limit)))
        },
    ))
}

/// A body that fails once `limit` has passed since it was first polled.
struct DeadlineBody {
    inner: Body,
    limit: Duration,
    /// Set at the first poll: a body waiting for its turn to be read is not yet late.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Body, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: None,
        }
    }
}

/// The error a late body's read fails with.
#[derive(Debug)]
struct BodyTooSlow(Duration);

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the body did not arrive within {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTooSlow {}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let limit = this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow(limit)))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    // Kept: the SDK and the extractors size their buffers and budgets by it.
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
