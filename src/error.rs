//! HTTP errors: one enum, mapped once to a status and a JSON body. Internal details go to the
//! log, never to the response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;
use crate::payments::PaymentsError;
use crate::sessions::SessionsError;
use crate::waitlist::WaitlistError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    #[error("{message}")]
    Forbidden {
        /// A stable machine-readable code.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// The resource (or the route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is not JSON at all (or is empty).
    #[error("{0}")]
    InvalidJson(String),
    /// The body is JSON, but not of the shape the route takes.
    #[error("{0}")]
    InvalidBody(String),
    /// The query string does not parse into what the route takes.
    #[error("{0}")]
    InvalidQuery(String),
    /// A path parameter does not parse into what the route takes.
    #[error("{0}")]
    InvalidPath(String),
    /// The body is not in a media type the route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the route accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request conflicts with the current state (e.g. a full mentor).
    #[error("{message}")]
    Conflict {
        /// A stable machine-readable code.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// A feature that is not configured on this deployment.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// A dependency (database, provider) is down; the client may retry.
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error answer: the envelope, the same on every route but `/api/inngest`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `unauthorized`, `not_found`, `invalid_body`, or
    /// the reason of a conflict such as `slot_in_past`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// What happened, for people; not meant to be parsed.
    #[schema(example = "session 7c1b3c0e-7a43-4a44-9a8f-3d4f0f6f0b1e not found")]
    pub message: String,
}

/// Handler result.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AppError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            AppError::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            AppError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            AppError::InvalidPath(_) => (StatusCode::BAD_REQUEST, "invalid_path"),
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            AppError::NotConfigured(_) => (StatusCode::NOT_IMPLEMENTED, "not_configured"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            AppError::Unavailable(detail) | AppError::Internal(detail) => {
                tracing::error!(%status, %detail, "request failed");
            }
            _ => tracing::info!(%status, error = %self, "request refused"),
        }
        let body = ErrorBody {
            error: code,
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

/// A database that is down, or whose connection died mid-query, is a 503 the client may retry;
/// any other database failure is ours.
impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        if err.is_outage() {
            AppError::Unavailable(err.to_string())
        } else {
            AppError::Internal(err.to_string())
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        DbError::Query(err).into()
    }
}

impl From<PaymentsError> for AppError {
    fn from(err: PaymentsError) -> Self {
        match err {
            PaymentsError::ProductNotFound(_) | PaymentsError::OrderNotFound(_) => {
                AppError::NotFound(err.to_string())
            }
            PaymentsError::ProductInactive(_) => AppError::Conflict {
                code: "product_inactive",
                message: err.to_string(),
            },
            PaymentsError::NoFreeSeat => AppError::Conflict {
                code: "mentor_full",
                message: err.to_string(),
            },
            PaymentsError::CheckoutInProgress => AppError::Conflict {
                code: "checkout_in_progress",
                message: err.to_string(),
            },
            PaymentsError::Db(e) => e.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<SessionsError> for AppError {
    fn from(err: SessionsError) -> Self {
        let code = err.code();
        match err {
            SessionsError::PackNotFound(_) | SessionsError::SessionNotFound(_) => {
                AppError::NotFound(err.to_string())
            }
            SessionsError::MentorOnly => AppError::Forbidden {
                code,
                message: err.to_string(),
            },
            SessionsError::Db(e) => e.into(),
            other => AppError::Conflict {
                code,
                message: other.to_string(),
            },
        }
    }
}

impl From<WaitlistError> for AppError {
    fn from(err: WaitlistError) -> Self {
        match err {
            WaitlistError::MentorNotFound(_) | WaitlistError::OfferNotFound(_) => {
                AppError::NotFound(err.to_string())
            }
            WaitlistError::SeatAvailable | WaitlistError::AlreadySeated => AppError::Conflict {
                code: err.code(),
                message: err.to_string(),
            },
            WaitlistError::Db(e) => e.into(),
            WaitlistError::Contacts(_) | WaitlistError::Notify(_) => {
                AppError::Unavailable(err.to_string())
            }
        }
    }
}
