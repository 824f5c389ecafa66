//! Amounts of money: providers count in minor units, the database in decimals.

use bigdecimal::BigDecimal;

/// Minor units (cents) to a decimal amount. Products are priced in two-decimal currencies.
pub fn from_minor_units(minor: i64) -> BigDecimal {
    BigDecimal::new(minor.into(), 2)
}
