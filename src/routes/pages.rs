//! The pages a buyer lands on when a payment provider sends them back: `/checkout/success`,
//! `/checkout/cancel` and `/checkout/error` (the URLs `routes::checkout` gives Stripe and
//! PayPal). Server-rendered with askama; they only say what happened, and the payment itself
//! is always settled by the provider's webhook, never by a visit to these pages.

use askama::Template;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/checkout.html")]
struct CheckoutPage {
    /// `success`, `cancel` or `error`: the page's colour.
    kind: &'static str,
    heading: &'static str,
    paragraphs: Vec<&'static str>,
}

impl IntoResponse for CheckoutPage {
    fn into_response(self) -> Response {
        match self.render() {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "a checkout page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
            }
        }
    }
}

/// `GET /checkout/success`: the provider took the payment (Stripe adds `session_id`, PayPal
/// `provider=paypal`; neither is needed to say so).
pub async fn success() -> impl IntoResponse {
    CheckoutPage {
        kind: "success",
        heading: "Thank you, your payment went through",
        paragraphs: vec![
            "We are setting up your mentorship now. A welcome email with your next steps is on \
             its way; it can take a few minutes to arrive.",
            "You can close this page.",
        ],
    }
}

/// `GET /checkout/cancel`: the buyer left the provider's page without paying.
pub async fn cancel() -> impl IntoResponse {
    CheckoutPage {
        kind: "cancel",
        heading: "Checkout cancelled",
        paragraphs: vec![
            "No payment was taken.",
            "The seat held for you during checkout is released automatically. You are welcome \
             to start again whenever you like.",
        ],
    }
}

/// The `reason` a failed return carries (only ours; anything else gets the generic text).
#[derive(Debug, Deserialize)]
pub struct ErrorQuery {
    reason: Option<String>,
}

/// `GET /checkout/error?reason=...`: a return from the provider that could not complete.
pub async fn error(query: Result<Query<ErrorQuery>, QueryRejection>) -> impl IntoResponse {
    let reason = query.ok().and_then(|Query(q)| q.reason);
    let (heading, explanation) = match reason.as_deref() {
        Some("checkout_expired") => (
            "This checkout has expired",
            "It was not completed in time, so no payment was taken. Please start again.",
        ),
        Some("capture_failed") => (
            "The payment could not be completed",
            "PayPal did not complete the payment, so no payment was taken. Please try again, or \
             choose another way to pay.",
        ),
        Some("unknown_order") => (
            "We could not find this checkout",
            "The link does not match a checkout of ours. If you were charged, please contact us \
             with the time of your purchase and we will sort it out.",
        ),
        _ => (
            "Something went wrong with this checkout",
            "If you were charged, please contact us with the time of your purchase and we will \
             sort it out.",
        ),
    };
    CheckoutPage {
        kind: "error",
        heading,
        paragraphs: vec![explanation],
    }
}

/// `GET /auth/discord/success`: where the Discord connection ends (`routes::auth`).
pub async fn discord_connected() -> impl IntoResponse {
    CheckoutPage {
        kind: "success",
        heading: "Discord is connected",
        paragraphs: vec![
            "Thank you. Your dashboard opens in a moment, and an email tells you when it has.",
            "You can close this page.",
        ],
    }
}

/// `GET /auth/error?reason=...`: a Discord connection that did not go through; the codes are
/// `routes::auth`'s.
pub async fn discord_error(query: Result<Query<ErrorQuery>, QueryRejection>) -> impl IntoResponse {
    let reason = query.ok().and_then(|Query(q)| q.reason);
    let explanation = match reason.as_deref() {
        Some("invalid_link") | Some("expired_link") => {
            "This link is no longer valid. Use the link in the latest email from us."
        }
        Some("discord_denied") => {
            "Discord was not connected because the request was declined there. The link in \
             your email still works if you want to try again."
        }
        Some("discord_already_linked") => {
            "This Discord account is already connected to another academy account. Please \
             contact us if that is not right."
        }
        _ => {
            "Discord could not be connected just now. Please try the link in your email again \
              in a few minutes."
        }
    };
    CheckoutPage {
        kind: "error",
        heading: "Discord was not connected",
        paragraphs: vec![explanation],
    }
}
