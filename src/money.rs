//! Amounts of money: the database keeps decimals, each provider counts in its own units.
//!
//! Every currency has the number of decimals ISO 4217 gives it (its exponent): 0 for the yen,
//! 3 for the Kuwaiti dinar, 2 for most. An amount is exact in its currency: a conversion that
//! would need more decimals than the currency (or the provider) has is an error, never a
//! rounding. The database checks the same rule (`currency_exponent` in the migrations).
//!
//! Providers differ from ISO in a few places, and we follow each provider:
//! - Stripe counts in minor units, and treats MGA as zero-decimal (ISO: 2). It keeps ISK (ISO:
//!   0) two-decimal in its API for backwards compatibility, in whole krónur only (500 is
//!   5 ISK). HUF and TWD are two-decimal in its API, but we charge them in whole units only,
//!   since Stripe settles them as zero-decimal. Three-decimal currencies are charged in
//!   multiples of 10 minor units (the last digit zero), so a price needing the third decimal
//!   is refused rather than rounded.
//! - PayPal takes decimal strings with the currency's decimals, but no decimals at all for
//!   HUF, JPY and TWD (`"5000"`), so fractional HUF and TWD prices are refused for PayPal.
//!
//! ISO's two four-decimal units of account (CLF, UYW) are not sold here and are refused.

use bigdecimal::{BigDecimal, ToPrimitive};

/// Why an amount cannot be converted exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a three-letter currency code we sell in.
    #[error("{0:?} is not a currency we can charge in")]
    Currency(String),
    /// The amount needs more decimals than the currency (or the provider) has.
    #[error("{amount} {currency} needs more than {decimals} decimals")]
    TooPrecise {
        /// The amount as given.
        amount: String,
        /// The currency code, lowercase.
        currency: String,
        /// How many decimals are allowed.
        decimals: u32,
    },
    /// The amount does not fit the provider's integer, or is negative.
    #[error("{amount} {currency} is out of range")]
    OutOfRange {
        /// The amount as given.
        amount: String,
        /// The currency code, lowercase.
        currency: String,
    },
    /// Not a decimal number.
    #[error("{0:?} is not an amount")]
    NotAnAmount(String),
}

/// ISO 4217 currencies without minor units.
const ZERO_DECIMAL: [&str; 17] = [
    "bif", "clp", "djf", "gnf", "isk", "jpy", "kmf", "krw", "pyg", "rwf", "ugx", "uyi", "vnd",
    "vuv", "xaf", "xof", "xpf",
];

/// ISO 4217 currencies with three decimals.
const THREE_DECIMAL: [&str; 7] = ["bhd", "iqd", "jod", "kwd", "lyd", "omr", "tnd"];

/// The lowercase code, if it is three ASCII letters and not a unit of account.
fn code(currency: &str) -> Result<String, MoneyError> {
    let code = currency.to_ascii_lowercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(MoneyError::Currency(currency.to_owned()));
    }
    if code == "clf" || code == "uyw" {
        return Err(MoneyError::Currency(currency.to_owned()));
    }
    Ok(code)
}

/// The currency's ISO 4217 exponent: how many decimals its amounts have.
pub fn exponent(currency: &str) -> Result<u32, MoneyError> {
    let code = code(currency)?;
    Ok(if ZERO_DECIMAL.contains(&code.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&code.as_str()) {
        3
    } else {
        2
    })
}

/// How a provider represents a currency: `decimals` of the unit it counts in (its minor unit
/// is 10^-decimals), and the finest decimal it accepts in a charge.
#[derive(Debug, Clone, Copy)]
struct Units {
    decimals: u32,
    finest: u32,
}

fn stripe_units(currency: &str) -> Result<Units, MoneyError> {
    let iso = exponent(currency)?;
    Ok(match code(currency)?.as_str() {
        "mga" => Units {
            decimals: 0,
            finest: 0,
        },
        "isk" | "huf" | "twd" => Units {
            decimals: 2,
            finest: 0,
        },
        _ if iso == 3 => Units {
            decimals: 3,
            finest: 2,
        },
        _ => Units {
            decimals: iso,
            finest: iso,
        },
    })
}

fn paypal_units(currency: &str) -> Result<Units, MoneyError> {
    let iso = exponent(currency)?;
    let decimals = match code(currency)?.as_str() {
        "huf" | "jpy" | "twd" => 0,
        _ => iso,
    };
    Ok(Units {
        decimals,
        finest: decimals,
    })
}

/// `amount` with exactly `decimals` decimals, or an error if it needs more.
fn to_scale(amount: &BigDecimal, currency: &str, decimals: u32) -> Result<BigDecimal, MoneyError> {
    let scaled = amount.with_scale(i64::from(decimals));
    if &scaled != amount {
        return Err(MoneyError::TooPrecise {
            amount: amount.to_string(),
            currency: currency.to_ascii_lowercase(),
            decimals,
        });
    }
    if scaled.sign() == bigdecimal::num_bigint::Sign::Minus {
        return Err(MoneyError::OutOfRange {
            amount: amount.to_string(),
            currency: currency.to_ascii_lowercase(),
        });
    }
    Ok(scaled)
}

/// `amount` exactly, with the currency's decimals; an error if it needs more.
pub fn exact(amount: &BigDecimal, currency: &str) -> Result<BigDecimal, MoneyError> {
    to_scale(amount, currency, exponent(currency)?)
}

/// An integer count of 10^-`units.decimals`, refusing what needs a finer step than
/// `units.finest` or more than the currency's own decimals.
fn to_integer(amount: &BigDecimal, currency: &str, units: Units) -> Result<i64, MoneyError> {
    let allowed = units.finest.min(exponent(currency)?);
    to_scale(amount, currency, allowed)?;
    let (digits, _) = amount
        .with_scale(i64::from(units.decimals))
        .into_bigint_and_exponent();
    digits.to_i64().ok_or_else(|| MoneyError::OutOfRange {
        amount: amount.to_string(),
        currency: currency.to_ascii_lowercase(),
    })
}

/// A count of 10^-`decimals` as an amount of the currency, refusing what the currency cannot
/// hold.
fn from_integer(count: i64, currency: &str, decimals: u32) -> Result<BigDecimal, MoneyError> {
    exact(
        &BigDecimal::new(count.into(), i64::from(decimals)),
        currency,
    )
}

/// The currency's ISO minor units (cents, or yen, or fils) in `amount`.
pub fn to_minor_units(amount: &BigDecimal, currency: &str) -> Result<i64, MoneyError> {
    let iso = exponent(currency)?;
    to_integer(
        amount,
        currency,
        Units {
            decimals: iso,
            finest: iso,
        },
    )
}

/// An amount from the currency's ISO minor units.
pub fn from_minor_units(minor: i64, currency: &str) -> Result<BigDecimal, MoneyError> {
    from_integer(minor, currency, exponent(currency)?)
}

/// What Stripe takes as `unit_amount` (its minor units) for `amount`.
pub fn to_stripe_amount(amount: &BigDecimal, currency: &str) -> Result<i64, MoneyError> {
    to_integer(amount, currency, stripe_units(currency)?)
}

/// An amount Stripe reports in its minor units (a total, a refund), as a decimal.
pub fn from_stripe_amount(minor: i64, currency: &str) -> Result<BigDecimal, MoneyError> {
    from_integer(minor, currency, stripe_units(currency)?.decimals)
}

/// The `value` string PayPal takes for `amount`.
pub fn to_paypal_value(amount: &BigDecimal, currency: &str) -> Result<String, MoneyError> {
    let units = paypal_units(currency)?;
    let allowed = units.finest.min(exponent(currency)?);
    to_scale(amount, currency, allowed)?;
    Ok(amount.with_scale(i64::from(units.decimals)).to_string())
}

/// An amount PayPal reports as a decimal string, refusing what the currency cannot hold.
pub fn from_paypal_value(value: &str, currency: &str) -> Result<BigDecimal, MoneyError> {
    let well_formed = !value.is_empty()
        && value.len() <= 32
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let amount: BigDecimal = value
        .parse()
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(|| MoneyError::NotAnAmount(value.to_owned()))?;
    exact(&amount, currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> BigDecimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn exponents_follow_iso_4217() {
        for (code, e) in [("usd", 2), ("JPY", 0), ("krw", 0), ("kwd", 3), ("bhd", 3)] {
            assert_eq!(exponent(code), Ok(e), "{code}");
        }
        assert!(exponent("clf").is_err());
        assert!(exponent("us").is_err());
        assert!(exponent("u$d").is_err());
    }

    #[test]
    fn stripe_amounts_use_each_currency_s_minor_units() {
        assert_eq!(to_stripe_amount(&dec("200.00"), "usd"), Ok(20000));
        assert_eq!(to_stripe_amount(&dec("5000"), "jpy"), Ok(5000));
        assert_eq!(to_stripe_amount(&dec("12.34"), "kwd"), Ok(12340));
        assert_eq!(to_stripe_amount(&dec("5"), "isk"), Ok(500));
        assert_eq!(to_stripe_amount(&dec("1500"), "huf"), Ok(150000));
        assert_eq!(to_stripe_amount(&dec("300"), "mga"), Ok(300));
        assert_eq!(from_stripe_amount(5000, "jpy"), Ok(dec("5000")));
        assert_eq!(from_stripe_amount(12345, "kwd"), Ok(dec("12.345")));
        assert_eq!(from_stripe_amount(500, "isk"), Ok(dec("5")));
    }

    #[test]
    fn stripe_refuses_what_it_cannot_charge_exactly() {
        for (amount, currency) in [
            ("5000.5", "jpy"),
            ("12.345", "kwd"),
            ("1500.50", "huf"),
            ("1.001", "usd"),
            ("-1", "usd"),
        ] {
            assert!(
                to_stripe_amount(&dec(amount), currency).is_err(),
                "{amount} {currency}"
            );
        }
        assert!(from_stripe_amount(550, "isk").is_err(), "5.50 ISK");
    }

    #[test]
    fn paypal_values_have_the_decimals_paypal_takes() {
        assert_eq!(to_paypal_value(&dec("200"), "usd").as_deref(), Ok("200.00"));
        assert_eq!(
            to_paypal_value(&dec("5000.00"), "jpy").as_deref(),
            Ok("5000")
        );
        assert_eq!(
            to_paypal_value(&dec("12.5"), "kwd").as_deref(),
            Ok("12.500")
        );
        assert_eq!(to_paypal_value(&dec("1500"), "huf").as_deref(), Ok("1500"));
        assert!(to_paypal_value(&dec("1500.50"), "huf").is_err());
        assert_eq!(from_paypal_value("5000", "jpy"), Ok(dec("5000")));
        assert_eq!(from_paypal_value("12.345", "kwd"), Ok(dec("12.345")));
        assert!(from_paypal_value("5000.5", "jpy").is_err());
        assert!(from_paypal_value("1e3", "usd").is_err());
        assert!(from_paypal_value("-1.00", "usd").is_err());
    }

    #[test]
    fn minor_units_round_trip_exactly() {
        for (amount, currency, minor) in [
            ("49.99", "eur", 4999),
            ("7", "krw", 7),
            ("0.125", "omr", 125),
        ] {
            assert_eq!(to_minor_units(&dec(amount), currency), Ok(minor));
            assert_eq!(from_minor_units(minor, currency), Ok(dec(amount)));
        }
        assert!(to_minor_units(&dec("0.5"), "krw").is_err());
    }
}
