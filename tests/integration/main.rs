//! Integration tests: the real app on a fresh PostgreSQL database per test, local fakes of
//! Stripe, PayPal and the Inngest event API, and the functions run through the SDK's executor.

mod checkout;
mod envelope;
mod identity;
mod onboarding;
mod payments;
mod paypal;
mod renewal_waitlist;
mod retries;
mod sessions;
mod util;
mod webhooks;
