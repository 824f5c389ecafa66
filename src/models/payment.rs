//! Payments: one per order and per provider payment id.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{PaymentStatus, Provider};
use crate::schema::{chargebacks, payments};

/// A captured payment.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub provider: Provider,
    pub provider_payment_id: String,
    pub amount: BigDecimal,
    pub currency: String,
    pub status: PaymentStatus,
    pub refunded_amount: BigDecimal,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What chargebacks took back: the sum of its `chargebacks`.
    pub disputed_amount: BigDecimal,
}

impl Payment {
    /// Inserts the payment of an order, or returns the one already recorded for it.
    pub async fn record(
        conn: &mut AsyncPgConnection,
        order_id: Uuid,
        provider: Provider,
        provider_payment_id: &str,
        amount: &BigDecimal,
        currency: &str,
    ) -> QueryResult<Self> {
        diesel::insert_into(payments::table)
            .values((
                payments::order_id.eq(order_id),
                payments::provider.eq(provider),
                payments::provider_payment_id.eq(provider_payment_id),
                payments::amount.eq(amount),
                payments::currency.eq(currency),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        payments::table
            .filter(payments::order_id.eq(order_id))
            .select(Self::as_select())
            .first(conn)
            .await
    }

    /// The payment with this provider id, locked for the transaction.
    pub async fn lock_by_provider_id(
        conn: &mut AsyncPgConnection,
        provider: Provider,
        provider_payment_id: &str,
    ) -> QueryResult<Option<Self>> {
        payments::table
            .filter(payments::provider.eq(provider))
            .filter(payments::provider_payment_id.eq(provider_payment_id))
            .select(Self::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    /// Sets the cumulative refunded amount and the status.
    pub async fn record_refund(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        refunded: &BigDecimal,
        status: PaymentStatus,
    ) -> QueryResult<()> {
        diesel::update(payments::table.find(id))
            .set((
                payments::refunded_amount.eq(refunded),
                payments::status.eq(status),
                payments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Records a chargeback (once per provider id: a repeat keeps the first) and returns
    /// what all of the payment's chargebacks took back.
    pub async fn record_chargeback(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        provider_chargeback_id: &str,
        amount: &BigDecimal,
    ) -> QueryResult<BigDecimal> {
        diesel::insert_into(chargebacks::table)
            .values((
                chargebacks::payment_id.eq(id),
                chargebacks::provider_chargeback_id.eq(provider_chargeback_id),
                chargebacks::amount.eq(amount),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        chargebacks::table
            .filter(chargebacks::payment_id.eq(id))
            .select(diesel::dsl::sum(chargebacks::amount))
            .first::<Option<BigDecimal>>(conn)
            .await
            .map(Option::unwrap_or_default)
    }

    /// Sets what chargebacks took back and the status.
    pub async fn record_disputed(
        conn: &mut AsyncPgConnection,
        id: Uuid,
        disputed: &BigDecimal,
        status: PaymentStatus,
    ) -> QueryResult<()> {
        diesel::update(payments::table.find(id))
            .set((
                payments::disputed_amount.eq(disputed),
                payments::status.eq(status),
                payments::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map(drop)
    }
}
