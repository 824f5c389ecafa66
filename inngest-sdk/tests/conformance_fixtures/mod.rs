//! The five functions of Inngest's conformance suite, behaving like the Go SDK's fixture
//! (protocol §10.7), and the app that serves them. Shared by `examples/conformance.rs` and
//! `tests/conformance.rs`, so the tests exercise the example's own configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use inngest_sdk::config::ConfigError;
use inngest_sdk::function::{Cancel, FunctionConfigError};
use inngest_sdk::{
    Client, Config, Ctx, Error, Function, FunctionOpts, ServeHandler, Trigger, WaitForEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The app id the conformance runner finds the fixtures under.
pub const APP_ID: &str = "conformance-rust";

/// The example's configuration: the standard `INNGEST_*` variables, read through `var` as any
/// app reads them. Cloud mode (every request signed, Inngest Cloud's URLs) unless `INNGEST_DEV`
/// selects the dev server; `INNGEST_BASE_URL` points it at a self-hosted `inngest start`.
pub fn config(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    Config::from_vars(APP_ID, var)
}

/// The example's routes: the fixtures at `/api/inngest`, and `/health`.
pub fn router(config: Config) -> Result<Router, FunctionConfigError> {
    let handler = ServeHandler::new(Client::new(config), (), functions())?;
    Ok(Router::new()
        .route("/api/inngest", inngest_sdk::axum::serve(handler))
        .route("/health", get(|| async { "ok" })))
}

#[derive(Serialize, Deserialize)]
struct Reply {
    name: String,
    body: String,
}

fn ok(name: &str) -> Reply {
    Reply {
        name: name.to_owned(),
        body: "ok".to_owned(),
    }
}

/// The fixture functions. The retry fixture counts attempts in `counters`, which the Go fixture
/// keeps process-global: one set per served process.
pub fn functions() -> Vec<Function<()>> {
    let step_calls = Arc::new(AtomicU32::new(0));
    let fn_calls = Arc::new(AtomicU32::new(0));
    vec![
        Function::new(
            FunctionOpts::new("test-suite-simple-fn")
                .with_trigger(Trigger::event("tests/function.test")),
            |ctx: Ctx<Value, ()>| async move { Ok(ok(&ctx.event.name)) },
        ),
        Function::new(
            FunctionOpts::new("test-suite-step-test")
                .with_trigger(Trigger::event("tests/step.test")),
            |ctx: Ctx<Value, ()>| async move {
                let first: String = ctx
                    .step
                    .run("first step", || async {
                        Ok::<_, Error>("first step".to_owned())
                    })
                    .await?;
                ctx.step.sleep("sleep", Duration::from_secs(2)).await;
                let _second: Value = ctx
                    .step
                    .run("second step", || async move {
                        Ok::<_, Error>(json!({ "first": first, "second": true }))
                    })
                    .await?;
                Ok(ok(&ctx.event.name))
            },
        ),
        Function::new(
            FunctionOpts::new("test-suite-retry-test")
                .with_trigger(Trigger::event("tests/retry.test"))
                .with_retries(3),
            move |ctx: Ctx<Value, ()>| {
                let (step_calls, fn_calls) = (step_calls.clone(), fn_calls.clone());
                async move {
                    let _: String = ctx
                        .step
                        .run("first step", || async move {
                            let n = step_calls.fetch_add(1, Ordering::SeqCst) + 1;
                            if n < 2 {
                                return Err(Error::new("broken"));
                            }
                            Ok(format!("yes: {n}"))
                        })
                        .await?;
                    if fn_calls.fetch_add(1, Ordering::SeqCst) + 1 < 2 {
                        return Err(Error::new("broken func"));
                    }
                    Ok(ok(&ctx.event.name))
                }
            },
        ),
        Function::new(
            FunctionOpts::new("test-suite-cancel-test")
                .with_trigger(Trigger::event("tests/cancel.test"))
                .with_cancel(
                    Cancel::on("cancel/please")
                        .with_if("async.data.request_id == event.data.request_id"),
                ),
            |ctx: Ctx<Value, ()>| async move {
                ctx.step.sleep("sleep", Duration::from_secs(10)).await;
                Ok(ok(&ctx.event.name))
            },
        ),
        Function::new(
            FunctionOpts::new("test-suite-wait-for-event")
                .with_trigger(Trigger::event("tests/wait.test")),
            |ctx: Ctx<Value, ()>| async move {
                let resumed = ctx
                    .step
                    .wait_for_event::<Value>(
                        "wait",
                        WaitForEvent::new("test/resume", Duration::from_secs(10))
                            .with_if("async.data.resume == true && async.data.id == event.data.id"),
                    )
                    .await?;
                Ok(match resumed {
                    Some(event) => json!({ "result": event.data }),
                    None => json!({}),
                })
            },
        ),
    ]
}
