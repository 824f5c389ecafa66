//! Starting a checkout: a pending order and a seat held until the checkout expires. A renewal
//! holds the buyer's own seat; a buyer offered a seat from the waitlist takes the offer.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::PaymentsError;
use crate::models::seat::SeatOf;
use crate::models::waitlist::{SeatOffer, WaitlistEntry};
use crate::models::{
    Mentor, NewOrder, Order, Product, Provider, ReleaseReason, SeatReservation, User,
};
use crate::seats;

/// An order waiting for the buyer to pay.
#[derive(Debug, Clone)]
pub struct PendingCheckout {
    pub order: Order,
    pub product: Product,
    pub user: User,
}

/// Creates a pending order for `product_id` and holds a seat until `expires_at`, in one
/// transaction: a full mentor or an inactive product leaves nothing behind.
pub async fn start_checkout(
    conn: &mut AsyncPgConnection,
    clerk_id: &str,
    product_id: Uuid,
    provider: Provider,
    expires_at: DateTime<Utc>,
) -> Result<PendingCheckout, PaymentsError> {
    let clerk_id = clerk_id.to_owned();
    conn.transaction::<_, PaymentsError, _>(async move |conn| {
        let product = Product::find(conn, product_id)
            .await?
            .ok_or(PaymentsError::ProductNotFound(product_id))?;
        if !product.active {
            return Err(PaymentsError::ProductInactive(product_id));
        }
        // One checkout (or waitlist change) per mentor at a time, in the order every writer
        // of a mentor's seats and waitlist takes its locks.
        Mentor::lock(conn, product.mentor_id).await?;
        let user = User::ensure(conn, &clerk_id).await?;
        let order = Order::create(
            conn,
            &NewOrder {
                id: Uuid::new_v4(),
                user_id: user.id,
                product_id,
                provider,
                currency: product.currency.clone(),
                total_amount: product.price.clone(),
                checkout_expires_at: expires_at,
            },
        )
        .await?;
        hold_seat(conn, product.mentor_id, user.id, order.id, expires_at).await?;
        Ok(PendingCheckout {
            order,
            product,
            user,
        })
    })
    .await
}

/// Holds the order's seat. A buyer whose seat with the mentor is in grace, or on its last
/// session, renews it: that hold takes no place of its own, so a full mentor does not stop
/// them. Anyone else needs a free seat: their open offer from the waitlist, consumed here so
/// the hold takes its place, or a seat free beyond the buyers waiting ahead of them.
async fn hold_seat(
    conn: &mut AsyncPgConnection,
    mentor_id: Uuid,
    user_id: Uuid,
    order_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<SeatReservation, PaymentsError> {
    if let Some(renewed) = SeatReservation::renewable(conn, user_id, mentor_id).await? {
        return Ok(SeatReservation::hold_renewal(conn, &renewed, order_id, expires_at).await?);
    }
    SeatOffer::take(conn, mentor_id, user_id, order_id).await?;
    let hold = SeatReservation::hold(conn, mentor_id, user_id, order_id, expires_at).await?;
    WaitlistEntry::leave_for_purchase(conn, mentor_id, user_id).await?;
    Ok(hold)
}

/// Ends a checkout that was never paid: the order expires and its hold is released.
/// Returns whether anything changed (a paid order is left alone).
pub async fn expire_checkout(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> Result<bool, PaymentsError> {
    conn.transaction::<_, PaymentsError, _>(async move |conn| {
        let Some(order) = Order::lock(conn, order_id).await? else {
            return Err(PaymentsError::OrderNotFound(order_id));
        };
        if !Order::expire(conn, order.id).await? {
            return Ok(false);
        }
        seats::release(
            conn,
            SeatOf::Order(order.id),
            ReleaseReason::CheckoutExpired,
        )
        .await?;
        Ok(true)
    })
    .await
}
