//! Clients of the outside services. Each takes its base URL from configuration, so tests point
//! them at local fakes.

pub mod clerk;
pub mod discord;
pub mod paypal;
pub mod resend;
pub mod stripe;
pub mod svix;
