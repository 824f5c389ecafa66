//! The payment domain: starting a checkout, fulfilling a paid order, applying a refund.
//! Provider-neutral: Stripe and PayPal adapters call the same code.

pub mod abandoned;
pub mod checkout;
pub mod fulfilment;
pub mod refunds;

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
    /// A confirmed payment is not what its order costs, or not for its checkout: recorded in
    /// `payment_mismatches`, never fulfilled.
    #[error("payment {provider_payment_id} for order {order_id} does not match it: {reason}")]
    Mismatch {
        /// Our order.
        order_id: Uuid,
        /// The provider's payment id.
        provider_payment_id: String,
        /// What did not match.
        reason: String,
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

/// A missing order or payment may still be on its way (a webhook can beat the checkout's commit,
/// a refund its payment), so those are retried, the refund patiently; the database's own
/// classification holds; anything else is a fact that retrying cannot change.
impl inngest_sdk::Classify for PaymentsError {
    fn retry(&self) -> inngest_sdk::Retry {
        use inngest_sdk::Retry;
        match self {
            PaymentsError::PaymentNotFound { .. } => Retry::After(PAYMENT_NOT_FOUND_RETRY),
            PaymentsError::OrderNotFound(_) => Retry::Default,
            PaymentsError::Db(e) => e.retry(),
            PaymentsError::ProductNotFound(_)
            | PaymentsError::ProductInactive(_)
            | PaymentsError::NoFreeSeat
            | PaymentsError::CheckoutInProgress
            | PaymentsError::Mismatch { .. }
            | PaymentsError::Inconsistent(_) => Retry::Never,
        }
    }
}

/// How long a refund waits before looking again for the payment it refunds.
const PAYMENT_NOT_FOUND_RETRY: std::time::Duration = std::time::Duration::from_secs(600);
