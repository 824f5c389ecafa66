//! `POST /api/checkout`: a signed-in buyer starts paying for a product. The order and the seat
//! hold are created first (a full mentor is refused before anyone is charged), then the
//! provider's checkout; if the provider fails, the hold is released at once. The session token
//! is verified before the body is read.

use axum::extract::State;
use axum::response::Redirect;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::integrations::stripe::NewCheckoutSession;
use crate::models::{Order, OrderStatus, Provider};
use crate::money;
use crate::payments::checkout::{PendingCheckout, expire_checkout, start_checkout};
use crate::routes::extract::{ClerkUser, Json, Query};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CheckoutRequest {
    pub product_id: Uuid,
    pub provider: Provider,
}

/// The answer: where to send the buyer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutResponse {
    pub order_id: Uuid,
    pub provider: Provider,
    /// The provider's payment page.
    pub checkout_url: String,
    /// When the seat hold (and the checkout) ends.
    pub expires_at: chrono::DateTime<Utc>,
}

/// Stripe refuses sessions that expire sooner than 30 minutes after creation.
const STRIPE_MIN_SESSION: Duration = Duration::minutes(30);

/// Starts a checkout. `ClerkUser` comes before `Json`, so the token is checked first.
#[utoipa::path(
    post,
    path = "/api/checkout",
    tag = "checkout",
    operation_id = "startCheckout",
    request_body = CheckoutRequest,
    responses(
        (status = OK, description = "A seat is held; send the buyer to `checkout_url`", body = CheckoutResponse),
        (status = NOT_FOUND, description = "`not_found`: no such product", body = ErrorBody),
        (status = CONFLICT, description = "Refused, the code says why: `mentor_full`, \
            `product_inactive`, `checkout_in_progress` (the buyer already holds a seat with \
            this mentor)", body = ErrorBody),
        (status = NOT_IMPLEMENTED, description = "`not_configured`: the provider is not \
            configured here", body = ErrorBody),
    ),
)]
pub async fn checkout(
    State(app): State<AppState>,
    ClerkUser(clerk_id): ClerkUser,
    Json(request): Json<CheckoutRequest>,
) -> AppResult<Json<CheckoutResponse>> {
    // Check the provider before holding a seat.
    match request.provider {
        Provider::Stripe if app.stripe.is_none() => return Err(AppError::NotConfigured("Stripe")),
        Provider::Paypal if app.paypal.is_none() => return Err(AppError::NotConfigured("PayPal")),
        _ => {}
    }
    let hold = Duration::from_std(app.config.checkout_hold)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let expires_at = Utc::now() + hold;
    let pending = {
        let mut conn = app.conn().await?;
        start_checkout(
            &mut conn,
            &clerk_id,
            request.product_id,
            request.provider,
            expires_at,
        )
        .await?
    };
    let order_id = pending.order.id;
    // The provider call and what follows run in their own task: a buyer who disconnects drops
    // this handler, not the task, so the order gets its checkout id or its hold back either way.
    let url = tokio::spawn(finish_checkout(app, pending, hold))
        .await
        .map_err(|e| AppError::Internal(format!("checkout task: {e}")))??;
    Ok(Json(CheckoutResponse {
        order_id,
        provider: request.provider,
        checkout_url: url,
        expires_at,
    }))
}

/// Creates the provider's checkout and records its id; on any failure the hold is released
/// at once. Returns the provider's payment page.
async fn finish_checkout(
    app: AppState,
    pending: PendingCheckout,
    hold: Duration,
) -> AppResult<String> {
    let order_id = pending.order.id;
    let recorded = match create_provider_checkout(&app, &pending, hold).await {
        Ok((checkout_id, url)) => match record_checkout_id(&app, order_id, &checkout_id).await {
            Ok(()) => Ok(url),
            Err(error) => {
                close_unrecorded(&app, &pending, &checkout_id).await;
                Err(error)
            }
        },
        Err(error) => Err(error),
    };
    match recorded {
        Ok(url) => {
            tracing::info!(%order_id, provider = %pending.order.provider, "checkout started");
            Ok(url)
        }
        Err(error) => {
            let mut conn = app.conn().await?;
            expire_checkout(&mut conn, order_id).await?;
            Err(error)
        }
    }
}

/// A checkout whose id could not be recorded must not take money: its order is about to
/// expire, and a payment to it would match no order. A Stripe session is expired at Stripe; a
/// PayPal order needs nothing, since only our return route captures, and it finds orders by
/// the recorded id.
async fn close_unrecorded(app: &AppState, pending: &PendingCheckout, checkout_id: &str) {
    let (Provider::Stripe, Some(stripe)) = (pending.order.provider, app.stripe.as_ref()) else {
        return;
    };
    if let Err(error) = stripe.close_checkout(checkout_id).await {
        tracing::error!(
            order_id = %pending.order.id,
            checkout_id,
            %error,
            "a Stripe session whose id could not be recorded is still open; expire it by hand"
        );
    }
}

async fn record_checkout_id(app: &AppState, order_id: Uuid, checkout_id: &str) -> AppResult<()> {
    let mut conn = app.conn().await?;
    Order::set_checkout_id(&mut conn, order_id, checkout_id).await?;
    Ok(())
}

async fn create_provider_checkout(
    app: &AppState,
    pending: &PendingCheckout,
    hold: Duration,
) -> AppResult<(String, String)> {
    let order_id = pending.order.id;
    let public = app.config.public_url.trim_end_matches('/');
    let unavailable =
        |e: &dyn std::fmt::Display| AppError::Unavailable(format!("payment provider: {e}"));
    match pending.order.provider {
        Provider::Stripe => {
            let stripe = app
                .stripe
                .as_ref()
                .ok_or(AppError::NotConfigured("Stripe"))?;
            // The session ends before the hold does, so a paid session always finds its seat.
            let session_length = (hold - Duration::minutes(3)).max(STRIPE_MIN_SESSION);
            let unit_amount =
                money::to_stripe_amount(&pending.order.total_amount, &pending.order.currency)
                    .map_err(unpayable)?;
            stripe
                .create_checkout_session(&NewCheckoutSession {
                    order_id,
                    clerk_id: pending.user.clerk_id.clone(),
                    product_id: pending.product.id,
                    product_name: pending.product.name.clone(),
                    unit_amount,
                    currency: pending.order.currency.clone(),
                    success_url: format!(
                        "{public}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
                    ),
                    cancel_url: format!("{public}/checkout/cancel?order_id={order_id}"),
                    expires_at: (Utc::now() + session_length).timestamp(),
                })
                .await
                .map_err(|e| unavailable(&e))
        }
        Provider::Paypal => {
            let paypal = app
                .paypal
                .as_ref()
                .ok_or(AppError::NotConfigured("PayPal"))?;
            let value =
                money::to_paypal_value(&pending.order.total_amount, &pending.order.currency)
                    .map_err(unpayable)?;
            let created = paypal
                .create_order(
                    order_id,
                    &value,
                    &pending.order.currency,
                    &format!("{public}/api/checkout/paypal/return"),
                    &format!("{public}/checkout/cancel?order_id={order_id}"),
                )
                .await
                .map_err(|e| unavailable(&e))?;
            Ok((created.id, created.approve_url))
        }
    }
}

/// A price the provider cannot charge exactly (say a fractional forint) is the catalogue's
/// fault: refused, never rounded.
fn unpayable(error: money::MoneyError) -> AppError {
    AppError::Internal(format!("the price cannot be charged exactly: {error}"))
}

/// PayPal sends the buyer back with `?token=<PayPal order id>` after approval. A query without
/// one is not a return from an order we issued: the buyer sees `unknown_order` like any other.
#[derive(Debug, Deserialize)]
pub struct PaypalReturn {
    pub token: String,
}

/// `GET /api/checkout/paypal/return`: captures the approved order; the capture webhook then
/// fulfils it like any other payment. Only a PayPal order id we issued, for a pending order
/// whose hold is still live, is captured.
pub async fn paypal_return(
    State(app): State<AppState>,
    query: Result<Query<PaypalReturn>, AppError>,
) -> AppResult<Redirect> {
    let paypal = app
        .paypal
        .as_ref()
        .ok_or(AppError::NotConfigured("PayPal"))?;
    let public = app.config.public_url.trim_end_matches('/');
    let fail = |reason: &str| {
        Ok(Redirect::to(&format!(
            "{public}/checkout/error?reason={reason}"
        )))
    };
    // PayPal order ids are short upper-case alphanumerics; anything else is not ours (and must
    // never reach a URL path).
    let query = match query {
        Ok(Query(query)) => query,
        Err(error) => {
            tracing::info!(%error, "PayPal return with a query that does not parse");
            return fail("unknown_order");
        }
    };
    let token = query.token.as_str();
    if token.is_empty() || token.len() > 64 || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        return fail("unknown_order");
    }
    let order = {
        let mut conn = app.conn().await?;
        Order::by_checkout_id(&mut conn, Provider::Paypal, token).await?
    };
    let Some(order) = order else {
        return fail("unknown_order");
    };
    if order.status != OrderStatus::Pending || order.checkout_expires_at <= Utc::now() {
        return fail("checkout_expired");
    }
    match paypal.capture_order(token).await {
        Ok(_) => Ok(Redirect::to(&format!(
            "{public}/checkout/success?provider=paypal"
        ))),
        Err(e) => {
            tracing::warn!(error = %e, order_id = %order.id, "PayPal capture failed");
            fail("capture_failed")
        }
    }
}
