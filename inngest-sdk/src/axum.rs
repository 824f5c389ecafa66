//! Mounts a [`ServeHandler`] in axum 0.8: `Router::new().route("/api/inngest", serve(handler))`.
//!
//! The endpoint is public, so reading a request costs nothing before it can be trusted: in
//! cloud mode an unsigned POST or PUT is answered without its body being read, a body larger
//! than anything Inngest sends is refused with 413, a body that trickles in is dropped with
//! 408, and only a bounded number of bodies, and of their bytes, are held in memory at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::{MethodRouter, any};
use futures::StreamExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::handler::{ServeHandler, error_response};

/// The largest request body accepted: twice the 4 MB above which Inngest stops inlining run
/// state and sends `use_api` instead, so real requests always fit.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How bodies are read at the endpoint. [`Limits::default`] suits one service instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest body read; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// How many requests may hold a body in memory at once; more wait for a turn.
    pub max_buffered_requests: usize,
    /// How many bytes of bodies may be held in memory at once. A request reserves its
    /// `Content-Length` (`max_body_bytes` if it declares none) before its body is read, and
    /// waits for a turn while the requests before it hold too much. A body is held until its
    /// answer is built, so this bounds the memory of a burst of large runs.
    ///
    /// Like the count above, it can be held by clients that declare large bodies and send
    /// them slowly, each until `body_read_timeout`; on a hostile network, put the endpoint
    /// behind a proxy that reads whole requests before passing them on (as load balancers
    /// and serverless gateways do).
    pub max_buffered_bytes: usize,
    /// How long a body may take to arrive once a turn is granted; slower ones get 408.
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    /// Up to 32 bodies and 32 MiB of them at once (four of the largest), a 30 s read.
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            max_buffered_requests: 32,
            max_buffered_bytes: 4 * MAX_BODY_BYTES,
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// The turns to hold a body: one of a number of requests, and its bytes of a budget.
struct Turns {
    requests: Semaphore,
    bytes: Semaphore,
    /// The budget's size, at most `u32::MAX` (the most one acquisition can take).
    byte_budget: u32,
}

impl Turns {
    fn new(limits: Limits) -> Self {
        let byte_budget = u32::try_from(limits.max_buffered_bytes.max(1)).unwrap_or(u32::MAX);
        Self {
            requests: Semaphore::new(limits.max_buffered_requests.max(1)),
            bytes: Semaphore::new(byte_budget as usize),
            byte_budget,
        }
    }

    /// Waits for a turn to hold a body of `bytes` bytes. A body larger than the whole budget
    /// takes all of it, and so is read alone. `None` once the semaphores are closed.
    async fn take(&self, bytes: usize) -> Option<(SemaphorePermit<'_>, SemaphorePermit<'_>)> {
        let request = self.requests.acquire().await.ok()?;
        let share = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.byte_budget);
        let bytes = self.bytes.acquire_many(share).await.ok()?;
        Some((request, bytes))
    }
}

/// GET, PUT and POST at one path, answered by `handler`, with the default [`Limits`].
pub fn serve<S, St>(handler: ServeHandler<S>) -> MethodRouter<St>
where
    S: Clone + Send + Sync + 'static,
    St: Clone + Send + Sync + 'static,
{
    serve_with_limits(handler, Limits::default())
}

/// GET, PUT and POST at one path, answered by `handler`, reading bodies within `limits`. Any
/// other method is answered by the handler too: 405 in the SDK's JSON, with `Allow`.
pub fn serve_with_limits<S, St>(handler: ServeHandler<S>, limits: Limits) -> MethodRouter<St>
where
    S: Clone + Send + Sync + 'static,
    St: Clone + Send + Sync + 'static,
{
    let handler = handler.with_framework("axum");
    let turns = Arc::new(Turns::new(limits));
    any(move |request: Request<Body>| {
        let handler = handler.clone();
        let turns = turns.clone();
        // Boxed here, once: axum's own futures around it then hold a pointer, and moving
        // them (as axum and hyper do on every request) copies a few bytes, not kilobytes.
        let answer: futures::future::BoxFuture<'static, Response<Body>> =
            Box::pin(async move { call(&handler, &turns, limits, request).await });
        answer
    })
}

async fn call<S: Clone + Send + Sync + 'static>(
    handler: &ServeHandler<S>,
    turns: &Turns,
    limits: Limits,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    if !handler.needs_body(&parts) {
        drop(body);
        let request = Request::from_parts(parts, Bytes::new());
        return handler.handle(request).await.map(Body::from);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large(limits).map(Body::from);
    }
    // The turn is held until the answer is built: the body lives that long.
    let expected = declared.map_or(limits.max_body_bytes, |n| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let Some(_turn) = turns.take(expected).await else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down").map(Body::from);
    };
    let read = read_within(limits, body, declared).await;
    let response = match read {
        Ok(Ok(bytes)) => handler.handle(Request::from_parts(parts, bytes)).await,
        Ok(Err(BodyError::TooLarge)) => too_large(limits),
        Ok(Err(BodyError::Broken(e))) => {
            error_response(StatusCode::BAD_REQUEST, &format!("unreadable body: {e}"))
        }
        Err(_) => error_response(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "the body did not arrive within {}s",
                limits.body_read_timeout.as_secs_f32()
            ),
        ),
    };
    response.map(Body::from)
}

/// The body, or `Err` if it did not arrive within `limits.body_read_timeout`. A small body has
/// usually arrived with the headers: read at once, it needs no timer.
async fn read_within(
    limits: Limits,
    body: Body,
    declared: Option<u64>,
) -> Result<Result<Bytes, BodyError>, tokio::time::error::Elapsed> {
    let mut read = std::pin::pin!(read_body(body, limits.max_body_bytes, declared));
    match futures::poll!(read.as_mut()) {
        std::task::Poll::Ready(read) => Ok(read),
        std::task::Poll::Pending => tokio::time::timeout(limits.body_read_timeout, read).await,
    }
}

fn too_large(limits: Limits) -> Response<Bytes> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {} bytes", limits.max_body_bytes),
    )
}

enum BodyError {
    TooLarge,
    Broken(axum::Error),
}

/// Reads at most `limit` bytes, stopping at the first frame that would pass it. A body that
/// arrives in one frame is kept as it came, without a copy; `declared` sizes the buffer
/// otherwise.
async fn read_body(body: Body, limit: usize, declared: Option<u64>) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut buffer = Vec::new();
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(BodyError::Broken)?;
        let held = first.as_ref().map_or(buffer.len(), Bytes::len);
        if held + frame.len() > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if buffer.is_empty() => first = Some(frame),
            taken => {
                if let Some(taken) = taken {
                    let expected = declared.and_then(|n| usize::try_from(n).ok());
                    buffer.reserve(expected.unwrap_or(0).clamp(held + frame.len(), limit));
                    buffer.extend_from_slice(&taken);
                }
                buffer.extend_from_slice(&frame);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(buffer)))
}
