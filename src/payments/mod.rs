//! The payment domain: starting a checkout, fulfilling a paid order, applying a refund.
//! Provider-neutral: Stripe and PayPal adapters call the same code.

pub mod checkout;
pub mod fulfilment;
pub mod refunds;

use bigdecimal::BigDecimal;
use uuid::Uuid;

use crate::db::DbError;
use crate::models::Provider;

/// Why a payment operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// The product does not exist.
    #[error("product {0} not found")]
    ProductNotFound(Uuid),
    /// The product is not for sale.
    #[error("product {0} is not on sale")]
    ProductInactive(Uuid),
    /// The mentor has no free seat.
    #[error("the mentor has no free seat")]
    NoFreeSeat,
    /// The buyer already holds a seat with this mentor in an unfinished checkout.
    #[error("a checkout with this mentor is already in progress")]
    CheckoutInProgress,
    /// The order does not exist (yet: a webhook may beat the checkout's commit).
    #[error("order {0} not found")]
    OrderNotFound(Uuid),
    /// No payment matches the provider's id.
    #[error("no {provider} payment with id {provider_payment_id}")]
    PaymentNotFound {
        /// The provider.
        provider: Provider,
        /// The provider's payment id.
        provider_payment_id: String,
    },
    /// A provider sent something that cannot be right.
    #[error("inconsistent provider data: {0}")]
    Inconsistent(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PaymentsError {
    fn from(err: diesel::result::Error) -> Self {
        if crate::models::seat::is_capacity_error(&err) {
            PaymentsError::NoFreeSeat
        } else if crate::models::seat::is_duplicate_hold_error(&err) {
            PaymentsError::CheckoutInProgress
        } else {
            PaymentsError::Db(DbError::Query(err))
        }
    }
}

impl PaymentsError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            PaymentsError::OrderNotFound(_)
                | PaymentsError::PaymentNotFound { .. }
                | PaymentsError::Db(_)
        )
    }
}

impl PaymentsError {
    /// The Inngest error: retried when trying again may help, final otherwise.
    pub fn into_inngest(self) -> inngest_sdk::Error {
        // A refund can arrive before its payment is fulfilled: wait for it patiently.
        if let PaymentsError::PaymentNotFound { .. } = self {
            return inngest_sdk::Error::retry_after(
                self.to_string(),
                std::time::Duration::from_secs(600),
            );
        }
        if self.is_retriable() {
            inngest_sdk::Error::new(self.to_string())
        } else {
            inngest_sdk::Error::non_retriable(self.to_string())
        }
    }
}

/// Minor units (cents) to a decimal amount. Products are priced in two-decimal currencies.
pub fn from_minor_units(minor: i64) -> BigDecimal {
    BigDecimal::new(minor.into(), 2)
}
