//! Payment mismatches: a confirmed payment whose amount, currency or checkout is not its
//! order's, recorded instead of fulfilled.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::Provider;
use crate::schema::payment_mismatches;

/// A payment that did not match its order.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payment_mismatches)]
pub struct PaymentMismatch {
    pub id: Uuid,
    pub order_id: Uuid,
    pub provider: Provider,
    pub provider_payment_id: String,
    pub provider_checkout_id: String,
    /// What did not match, for the operator.
    pub reason: String,
    pub expected_amount: BigDecimal,
    pub expected_currency: String,
    pub paid_amount: BigDecimal,
    pub paid_original_amount: BigDecimal,
    pub paid_discount_amount: BigDecimal,
    pub paid_currency: String,
    pub detected_at: DateTime<Utc>,
}

impl PaymentMismatch {
    /// Records the mismatch once per provider payment (a repeated delivery adds nothing).
    pub async fn record(conn: &mut AsyncPgConnection, mismatch: &Self) -> QueryResult<()> {
        diesel::insert_into(payment_mismatches::table)
            .values(mismatch)
            .on_conflict((
                payment_mismatches::provider,
                payment_mismatches::provider_payment_id,
            ))
            .do_nothing()
            .execute(conn)
            .await
            .map(drop)
    }

    /// The mismatches recorded for an order, oldest first.
    pub async fn of_order(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<Vec<Self>> {
        payment_mismatches::table
            .filter(payment_mismatches::order_id.eq(order_id))
            .order(payment_mismatches::detected_at)
            .select(Self::as_select())
            .load(conn)
            .await
    }
}
