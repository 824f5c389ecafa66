//! HTTP routes.

pub mod api;
pub mod auth;
pub mod checkout;
pub mod dev_console;
pub mod extract;
pub mod operations;
pub mod pages;
pub mod waitlist;
pub mod webhooks;

use axum::http::{Method, Uri};

use crate::error::AppError;

/// The router's fallback: no route has this path.
pub async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

/// A route has this path but no handler for the method (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
