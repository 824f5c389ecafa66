//! Integration tests: the real app on a fresh PostgreSQL database per test, local fakes of
//! Stripe, PayPal and the Inngest event API, and the functions run through the SDK's executor.

mod checkout;
mod envelope;
mod identity;
mod onboarding;
mod pack_expiry;
mod payments;
mod paypal;
mod retries;
mod session_flows;
mod sessions;
mod util;
mod webhooks;
