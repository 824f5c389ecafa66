//! Functions: typed handlers with their options, type-erased for the serve handler.

mod decode;
mod events;
mod opts;
mod trigger;
mod validate;
mod wire;

use std::future::Future;
use std::sync::Arc;

use bytestring::ByteString;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use events::Events;
pub use opts::{
    Backoff, Batch, Cancel, Concurrency, Debounce, FunctionConfigError, FunctionOpts, RateLimit,
    Scope, SingletonMode, Throttle,
};
pub use trigger::Trigger;

use crate::error::{Error, StepError};
use crate::event::Event;
use crate::middleware::Middleware;
use crate::step::{FunctionRef, Step};

use decode::decode_event;

/// Facts about the run a request belongs to.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The run id.
    pub run_id: String,
    /// The attempt, from 0.
    pub attempt: u32,
    /// The composite function id.
    pub function_id: String,
}

/// What a function body receives.
pub struct Ctx<E, S> {
    /// The triggering event (the first of a batch).
    pub event: Event<E>,
    /// Every event of a batch (the trigger event alone otherwise), decoded when asked:
    /// `ctx.events.decode()?`.
    pub events: Events<E>,
    /// The step tools.
    pub step: Step,
    /// The app's shared state (database pools, clients...).
    pub state: S,
    /// The run.
    pub run: RunInfo,
}

/// The data of `inngest/function.failed`, which triggers an `on_failure` handler.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionFailed<E> {
    /// The composite id of the function that failed.
    pub function_id: String,
    /// The failed run.
    pub run_id: String,
    /// The final error.
    pub error: StepError,
    /// The event that triggered the failed run.
    pub event: Event<E>,
}

/// The raw request parts a function is started with.
pub(crate) struct RawCall<'a> {
    pub event: &'a str,
    pub events: &'a [&'a str],
    /// The request body the events are slices of (when they are).
    pub body: &'a ByteString,
}

type Handler<S> = dyn Fn(
        RawCall<'_>,
        Step,
        S,
        RunInfo,
    ) -> Result<BoxFuture<'static, Result<Box<RawValue>, Error>>, Error>
    + Send
    + Sync;

/// A function ready to serve: options plus a type-erased handler over app state `S`.
pub struct Function<S> {
    pub(crate) opts: FunctionOpts,
    pub(crate) handler: Arc<Handler<S>>,
    pub(crate) on_failure: Option<Box<Function<S>>>,
    /// This function's own middleware, after the client's.
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
}

impl<S> Clone for Function<S> {
    fn clone(&self) -> Self {
        Self {
            opts: self.opts.clone(),
            handler: self.handler.clone(),
            on_failure: self.on_failure.clone(),
            middleware: self.middleware.clone(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Function<S> {
    /// A function whose body takes a [`Ctx`] with events of type `E` and returns `O`.
    ///
    /// An event whose payload does not deserialize into `E` ends the run as non-retriable,
    /// with the field named in the message.
    #[must_use]
    pub fn new<E, O, F, Fut>(opts: FunctionOpts, body: F) -> Self
    where
        E: DeserializeOwned + Send + 'static,
        O: Serialize + 'static,
        F: Fn(Ctx<E, S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, Error>> + Send + 'static,
    {
        let handler = move |call: RawCall<'_>, step: Step, state: S, run: RunInfo| {
            let event: Event<E> = decode_event(call.event, || "the event".to_owned())?;
            let events = Events::keep(call.body, call.events);
            let fut = body(Ctx {
                event,
                events,
                step,
                state,
                run,
            });
            Ok(async move {
                let output = fut.await?;
                serde_json::value::to_raw_value(&output).map_err(|e| {
                    Error::non_retriable(format!("the function's result does not serialize: {e}"))
                })
            }
            .boxed())
        };
        Self {
            opts,
            handler: Arc::new(handler),
            on_failure: None,
            middleware: Vec::new(),
        }
    }

    /// Adds a middleware to this function's runs, after the client's and those added before.
    /// The failure handler (`on_failure`) runs with the same middleware.
    #[must_use]
    pub fn with_middleware(mut self, middleware: impl Middleware) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Adds a handler that runs once this function has failed for good (all retries spent).
    /// It is synced as its own function, `<id>-failure`, triggered by `inngest/function.failed`,
    /// with one retry, as the official SDKs do.
    #[must_use]
    pub fn on_failure<E, O, F, Fut>(mut self, body: F) -> Self
    where
        E: DeserializeOwned + Send + 'static,
        O: Serialize + 'static,
        F: Fn(Ctx<FunctionFailed<E>, S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, Error>> + Send + 'static,
    {
        let id = format!("{}-failure", self.opts.id);
        let name = format!(
            "{} (failure)",
            self.opts.name.as_deref().unwrap_or(&self.opts.id)
        );
        let opts = FunctionOpts::new(id).with_name(name).with_retries(1);
        self.on_failure = Some(Box::new(Function::new(opts, body)));
        self
    }

    /// The options.
    pub fn opts(&self) -> &FunctionOpts {
        &self.opts
    }

    /// A typed reference for `step.invoke`, given the app id this function is served under.
    pub fn reference<I, O>(&self, app_id: &str) -> FunctionRef<I, O> {
        FunctionRef::new(app_id, &self.opts.id)
    }

    /// Binds the failure handler's trigger to this function's composite id.
    pub(crate) fn failure_handler(&self, app_id: &str) -> Option<Function<S>> {
        let mut handler = (**self.on_failure.as_ref()?).clone();
        handler.middleware = self.middleware.clone();
        let expression = format!("event.data.function_id == '{app_id}-{}'", self.opts.id);
        handler.opts.triggers = vec![Trigger::event("inngest/function.failed").with_if(expression)];
        Some(handler)
    }
}
