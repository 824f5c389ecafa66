//! Integration tests: the real app on a database of each test's own (a copy of a template
//! migrated once, dropped when the test ends), local fakes of Stripe, PayPal and the Inngest
//! event API, and the functions run through the SDK's executor.

mod abandoned;
mod access;
mod api;
mod browser;
mod chargebacks;
mod checkout;
mod checkout_pages;
mod currencies;
mod database_tls;
mod databases;
mod demo;
mod dev_console;
mod dev_script;
mod emails;
mod encryption;
mod envelope;
mod faults;
mod identity;
#[cfg(feature = "lambda")]
mod lambda;
mod logs;
mod onboarding;
mod operations;
#[cfg(feature = "otlp")]
mod otlp;
mod pack_expiry;
mod paid_amounts;
mod payments;
mod paypal;
mod renewal_waitlist;
mod retries;
mod sandbox;
mod server;
mod serverless;
mod session_flows;
mod sessions;
mod startup;
mod util;
mod webhooks;
