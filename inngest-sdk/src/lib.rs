//! A typed Rust SDK for [Inngest](https://www.inngest.com), speaking the serve protocol the
//! official SDKs speak: introspection (GET), sync (PUT, in-band and out-of-band) and execution
//! (POST) on one endpoint, request signatures, memoized steps, and event sending.
//!
//! ```no_run
//! use inngest_sdk::{Client, Config, Ctx, Error, Function, FunctionOpts, ServeHandler, Trigger};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Signup { email: String }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let welcome = Function::new(
//!     FunctionOpts::new("welcome").with_trigger(Trigger::event("user/signed.up")),
//!     |ctx: Ctx<Signup, ()>| async move {
//!         let email = ctx.event.data.email.clone();
//!         let sent = ctx.step.run("send-email", || async move {
//!             Ok::<_, Error>(format!("sent to {email}"))
//!         }).await?;
//!         Ok(sent)
//!     },
//! );
//! let client = Client::new(Config::from_env("my-app")?);
//! let handler = ServeHandler::new(client, (), [welcome])?;
//! # let _ = handler;
//! # Ok(())
//! # }
//! ```
//!
//! The core ([`ServeHandler::handle`]) takes an `http::Request<Bytes>` and returns an
//! `http::Response<Bytes>`, so any framework can mount it; the `axum` feature adds an adapter.

#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod checkpoint;
pub mod client;
pub mod config;
pub mod duration;
pub mod error;
pub mod event;
pub mod function;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod handler;
mod json_string;
pub mod middleware;
pub mod signature;
pub mod step;
#[cfg(feature = "testing")]
pub mod testing;

pub use checkpoint::Checkpoint;
pub use client::{Client, SendError};
pub use config::{Config, Mode};
pub use error::{Classify, Error, Retry, StepError};
pub use event::Event;
pub use function::{Ctx, Events, Function, FunctionOpts, Trigger};
pub use handler::ServeHandler;
pub use step::{FunctionRef, Invocation, Step, WaitForEvent};
