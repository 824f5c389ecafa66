//! Extractors whose failures answer the app's error envelope, `{"error": <code>, "message": ...}`
//! (see [`AppError`]), instead of axum's plain-text rejections. Handlers use these in place of
//! axum's `Json`, `Query`, `Path` and `Bytes`; the router's fallbacks (`routes::not_found`,
//! `routes::method_not_allowed`) answer the same envelope for unknown routes and methods.
//!
//! | what failed                                        | status | code                     |
//! |----------------------------------------------------|--------|--------------------------|
//! | [`ClerkUser`]: no, malformed or invalid token      | 401    | `unauthorized`           |
//! | [`Json`]: no `Content-Type: application/json`      | 415    | `unsupported_media_type` |
//! | [`Json`]: empty, or not JSON                       | 400    | `invalid_json`           |
//! | [`Json`]: JSON, but not the shape the route takes  | 422    | `invalid_body`           |
//! | [`Json`], [`RawBody`]: over the body limit (2 MiB) | 413    | `payload_too_large`      |
//! | [`Query`]: the query string does not deserialize   | 400    | `invalid_query`          |
//! | [`Path`]: a path parameter does not deserialize    | 400    | `invalid_path`           |
//! | no route for the path                              | 404    | `not_found`              |
//! | the route exists, but not for this method          | 405    | `method_not_allowed`     |
//!
//! The statuses are the ones axum has always answered (400 when the syntax is wrong, 422 when
//! well-formed JSON does not fit), so only the body changes. Messages name what was wrong as serde
//! reports it (the field path and the expected type); they never quote a header, and the bodies
//! these extractors read carry no secrets. A `Path` failure that is our bug (a route declaring
//! the wrong number of parameters) is a 500 `internal`, not the client's fault.
//!
//! **Authentication comes first.** [`ClerkUser`] reads only the headers, and axum runs such
//! extractors before the one that consumes the body, so a handler taking
//! `(ClerkUser, Json<T>)` refuses a stranger with 401 before a byte of the body is parsed: an
//! unauthenticated caller learns nothing about what the route accepts.
//!
//! **Browser routes redirect.** The PayPal return and the Discord OAuth routes are visited by a
//! person's browser, not by a program, and every failure there already redirects to a page that
//! explains it (and the Discord callback must clear its state cookie whatever happens). Those
//! handlers take `Result<Query<T>, AppError>` and send a query that does not parse to the same
//! error page (`unknown_order`, `invalid_link`, `invalid_request`) rather than show a JSON
//! document in a browser tab. Their other failures (wrong method, missing configuration) still
//! answer the envelope.

use axum::body::Bytes;
use axum::extract::rejection::{
    BytesRejection, FailedToBufferBody, JsonRejection, PathRejection, QueryRejection,
};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::AppError;
use crate::integrations::clerk::ClerkAuthError;

/// A JSON body (`Content-Type: application/json`); also a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Path parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// The body as sent, for routes that verify a signature over the exact bytes before parsing.
/// No content type is required: the signature, not the header, says what the bytes are.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(RawBody(Bytes::from_request(req, state).await?))
    }
}

/// The signed-in user's Clerk id, from a Clerk session token in `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct ClerkUser(pub String);

impl FromRequestParts<AppState> for ClerkUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let clerk = app.clerk.as_ref().ok_or(AppError::NotConfigured("Clerk"))?;
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthorized)?;
        clerk
            .verify_session(token)
            .await
            .map(ClerkUser)
            .map_err(|e| match e {
                ClerkAuthError::Invalid => AppError::Unauthorized,
                ClerkAuthError::Unavailable(detail) => AppError::Unavailable(detail),
            })
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
                "the body must be JSON sent with `Content-Type: application/json`".into(),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                AppError::InvalidJson(format!("the body is not valid JSON: {}", detail(&e)))
            }
            JsonRejection::JsonDataError(e) => AppError::InvalidBody(format!(
                "the body does not have the expected fields: {}",
                detail(&e)
            )),
            JsonRejection::BytesRejection(e) => e.into(),
            other => by_status(other.status(), other.body_text()),
        }
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                AppError::PayloadTooLarge("the body is larger than this route accepts".into())
            }
            BytesRejection::FailedToBufferBody(FailedToBufferBody::UnknownBodyError(e)) => {
                AppError::BadRequest(format!("the body could not be read: {}", detail(&e)))
            }
            other => by_status(other.status(), other.body_text()),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        match rejection {
            QueryRejection::FailedToDeserializeQueryString(e) => {
                AppError::InvalidQuery(format!("the query string does not parse: {}", detail(&e)))
            }
            other => by_status(other.status(), other.body_text()),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        if rejection.status().is_server_error() {
            return AppError::Internal(rejection.body_text());
        }
        let detail = match &rejection {
            PathRejection::FailedToDeserializePathParams(e) => e.kind().to_string(),
            other => other.body_text(),
        };
        AppError::InvalidPath(format!("the path does not parse: {detail}"))
    }
}

/// What the underlying parser said, without axum's generic prefix.
fn detail(error: &dyn std::error::Error) -> String {
    error
        .source()
        .map_or_else(|| error.to_string(), ToString::to_string)
}

/// For rejection variants a future axum adds: keep its status class, answer our envelope.
fn by_status(status: StatusCode, text: String) -> AppError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(text),
        s if s.is_server_error() => AppError::Internal(text),
        _ => AppError::BadRequest(text),
    }
}
