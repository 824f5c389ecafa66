//! Orders: one per checkout, pending until the provider confirms payment.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{OrderStatus, Provider};
use crate::events::{PAYPAL_CAPTURE_COMPLETED, STRIPE_CHECKOUT_COMPLETED};
use crate::schema::orders;

/// An order.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub product_id: Uuid,
    pub provider: Provider,
    pub status: OrderStatus,
    pub currency: String,
    pub total_amount: BigDecimal,
    pub original_amount: Option<BigDecimal>,
    pub discount_amount: Option<BigDecimal>,
    pub discount_code: Option<String>,
    pub refunded_amount: BigDecimal,
    pub provider_checkout_id: Option<String>,
    pub checkout_expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A pending order about to be created.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = orders)]
pub struct NewOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub product_id: Uuid,
    pub provider: Provider,
    pub currency: String,
    pub total_amount: BigDecimal,
    pub checkout_expires_at: DateTime<Utc>,
}

/// What the provider charged, written when the order is paid.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PaidAmounts {
    pub total: BigDecimal,
    pub original: BigDecimal,
    pub discount: BigDecimal,
    pub discount_code: Option<String>,
    pub currency: String,
}

impl Order {
    /// The order, if it exists.
    pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        orders::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The order, locked for the rest of the transaction.
    pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Self>> {
        orders::table
            .find(id)
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// Inserts a pending order.
    pub async fn create(conn: &mut AsyncPgConnection, order: &NewOrder) -> QueryResult<Self> {
        diesel::insert_into(orders::table)
            .values(order)
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// Records the provider's checkout (session or order) id.
    pub async fn set_checkout_id(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        checkout_id: &str,
    ) -> QueryResult<()> {
        diesel::update(orders::table.find(id))
            .set((
                orders::provider_checkout_id.eq(checkout_id),
                orders::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Marks the order paid with what was charged. Idempotent: a paid order keeps its first
    /// amounts, and a refunded one stays refunded.
    pub async fn mark_paid(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        paid: &PaidAmounts,
    ) -> QueryResult<()> {
        diesel::update(orders::table.find(id))
            .filter(orders::status.eq_any([OrderStatus::Pending, OrderStatus::Expired]))
            .set((
                orders::status.eq(OrderStatus::Paid),
                orders::total_amount.eq(&paid.total),
                orders::original_amount.eq(&paid.original),
                orders::discount_amount.eq(&paid.discount),
                orders::discount_code.eq(&paid.discount_code),
                orders::currency.eq(&paid.currency),
                orders::paid_at.eq(diesel::dsl::now),
                orders::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Marks a still-pending order expired. Returns whether it was pending.
    pub async fn expire(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
        diesel::update(orders::table.find(id))
            .filter(orders::status.eq(OrderStatus::Pending))
            .set((
                orders::status.eq(OrderStatus::Expired),
                orders::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Records a refund (the provider's cumulative refunded amount).
    pub async fn record_refund(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        refunded: &BigDecimal,
        status: OrderStatus,
    ) -> QueryResult<()> {
        diesel::update(orders::table.find(id))
            .set((
                orders::refunded_amount.eq(refunded),
                orders::status.eq(status),
                orders::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }
}

/// A pending order whose checkout ended: what the sweep needs to ask its provider.
#[derive(Debug, Clone, Queryable)]
pub struct EndedCheckout {
    pub order_id: Uuid,
    pub provider: Provider,
    /// The Stripe Checkout Session or PayPal order, if its creation was recorded.
    pub checkout_id: Option<String>,
}

impl Order {
    /// Pending orders whose checkout ended before `before` and whose payment event has not
    /// arrived (an event in the inbox means a run is fulfilling the order, perhaps through an
    /// outage, so the order is not abandoned).
    pub async fn abandoned(
        conn: &mut AsyncPgConnection,
        before: DateTime<Utc>,
        limit: i64,
    ) -> QueryResult<Vec<EndedCheckout>> {
        // Matches `webhook_inbox_paid_order_idx`.
        let no_payment_event = diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "NOT EXISTS (SELECT 1 FROM webhook_inbox i \
             WHERE i.inngest_event ->> 'name' IN ('{STRIPE_CHECKOUT_COMPLETED}', '{PAYPAL_CAPTURE_COMPLETED}') \
             AND (i.inngest_event -> 'data' ->> 'orderId') = orders.id::text)"
        ));
        orders::table
            .filter(orders::status.eq(OrderStatus::Pending))
            .filter(orders::checkout_expires_at.lt(before))
            .filter(no_payment_event)
            .order(orders::checkout_expires_at)
            .limit(limit)
            .select((orders::id, orders::provider, orders::provider_checkout_id))
            .load(conn)
            .await
    }
}

impl Order {
    /// The order a provider checkout (session or PayPal order) belongs to.
    pub async fn by_checkout_id(
        conn: &mut AsyncPgConnection,
        provider: Provider,
        checkout_id: &str,
    ) -> QueryResult<Option<Self>> {
        orders::table
            .filter(orders::provider.eq(provider))
            .filter(orders::provider_checkout_id.eq(checkout_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }
}
