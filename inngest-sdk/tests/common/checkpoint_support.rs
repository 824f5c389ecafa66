//! What the checkpointing tests and benchmark share: a function of many steps, and serving a
//! handler on loopback. Include it with
//! `#[path = "common/checkpoint_support.rs"] mod checkpoint_support;`.

#![allow(dead_code)] // each includer uses its own part

use inngest_sdk::{Ctx, Error, Function, FunctionOpts, ServeHandler, Trigger};
use serde_json::{Value, json};

/// `steps` steps, each returning its number plus the previous step's result; triggered by
/// `count/started`, with `opts` (its id, its checkpoint setting).
pub fn counting(opts: FunctionOpts, steps: u32) -> Function<()> {
    let opts = opts.with_trigger(Trigger::event("count/started"));
    Function::new(opts, move |ctx: Ctx<Value, ()>| async move {
        let mut total = 0u32;
        for n in 1..=steps {
            total = ctx
                .step
                .run(
                    &format!("step-{n}"),
                    || async move { Ok::<_, Error>(total + n) },
                )
                .await?;
        }
        Ok(json!({ "total": total }))
    })
}

/// Serves `handler` at `/api/inngest` on a free loopback port; answers its URL.
pub async fn serve_on_loopback(handler: ServeHandler<()>) -> String {
    let app = axum::Router::new().route("/api/inngest", inngest_sdk::axum::serve(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "http://{}/api/inngest",
        listener.local_addr().expect("an address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
