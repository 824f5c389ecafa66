//! A 20-step function run end to end through the testing executor, which calls the service
//! over loopback HTTP as Inngest would: without checkpointing (a call per step, each replaying
//! the state so far), with the `performant` preset (one call) and with `safe` (one call and a
//! checkpoint per step to the fake API). What differs is the number of round trips, which a
//! real Inngest makes far dearer than loopback does.
//!
//! `cargo bench -p inngest-sdk --features testing --bench checkpoint`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use inngest_sdk::testing::{EventApi, TestEngine};
use inngest_sdk::{
    Checkpoint, Client, Config, Ctx, Error, Event, Function, FunctionOpts, ServeHandler, Trigger,
};
use serde_json::{Value, json};

const STEPS: u32 = 20;

fn counting(checkpoint: Option<Checkpoint>) -> Function<()> {
    let opts = FunctionOpts::new("count").with_trigger(Trigger::event("count/started"));
    let opts = match checkpoint {
        Some(checkpoint) => opts.with_checkpoint(checkpoint),
        None => opts.without_checkpoint(),
    };
    Function::new(opts, |ctx: Ctx<Value, ()>| async move {
        let mut total = 0u32;
        for n in 1..=STEPS {
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

/// Serves `function` on loopback; answers an executor calling it there, checkpoints going to
/// `api`.
async fn executor(function: Function<()>, api: &EventApi) -> TestEngine<()> {
    let config = Config::new("bench")
        .dev(None)
        .with_api_base_url(&api.url())
        .expect("a URL");
    let handler = ServeHandler::new(Client::new(config), (), [function]).expect("valid");
    let app = axum::Router::new().route("/api/inngest", inngest_sdk::axum::serve(handler.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "http://{}/api/inngest",
        listener.local_addr().expect("an address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestEngine::new(handler).over_http(&url).with_event_api(api)
}

fn end_to_end(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("twenty_steps_end_to_end");
    let modes = [
        ("without_checkpointing", None, STEPS as usize + 1),
        ("performant", Some(Checkpoint::performant()), 1),
        ("safe", Some(Checkpoint::safe()), 1),
    ];
    for (name, checkpoint, calls) in modes {
        let (engine, _api) = runtime.block_on(async {
            let api = EventApi::start().await.expect("a fake API");
            (executor(counting(checkpoint), &api).await, api)
        });
        let run = || engine.run("count", Event::new("count/started", json!({})));
        let outcome = runtime.block_on(run().execute());
        assert_eq!(outcome.result, Ok(json!({ "total": 210 })), "{name}");
        assert_eq!(outcome.requests.len(), calls, "{name}: calls per run");
        group.bench_function(name, |b| {
            b.iter(|| black_box(runtime.block_on(run().execute()).result))
        });
    }
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
