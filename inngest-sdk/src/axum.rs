//! Mounts a [`ServeHandler`] in axum 0.8: `Router::new().route("/api/inngest", serve(handler))`.

use axum::body::{Body, to_bytes};
use axum::http::{Request, Response, StatusCode};
use axum::routing::{MethodRouter, on};

use crate::handler::{ServeHandler, error_response};

/// The largest request body accepted. Inngest switches to `use_api` above 4 MB of state; this
/// leaves room for the envelope.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// GET, PUT and POST at one path, answered by `handler`.
pub fn serve<S, St>(handler: ServeHandler<S>) -> MethodRouter<St>
where
    S: Clone + Send + Sync + 'static,
    St: Clone + Send + Sync + 'static,
{
    let handler = handler.with_framework("axum");
    on(
        axum::routing::MethodFilter::GET
            .or(axum::routing::MethodFilter::PUT)
            .or(axum::routing::MethodFilter::POST),
        move |request: Request<Body>| {
            let handler = handler.clone();
            async move { call(&handler, request).await }
        },
    )
}

async fn call<S: Clone + Send + Sync + 'static>(
    handler: &ServeHandler<S>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let response = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => handler.handle(Request::from_parts(parts, bytes)).await,
        Err(e) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("unreadable body: {e}"),
        ),
    };
    response.map(Body::from)
}
