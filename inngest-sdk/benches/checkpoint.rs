//! A 20-step function run end to end through the testing executor, which calls the service
//! over loopback HTTP as Inngest would: without checkpointing (a call per step, each replaying
//! the state so far), with the `performant` preset (one call) and with `safe` (one call and a
//! checkpoint per step to the fake API). What differs is the number of round trips, which a
//! real Inngest makes far dearer than loopback does.
//!
//! `cargo bench -p inngest-sdk --features testing --bench checkpoint`.

#[path = "../tests/common/checkpoint_support.rs"]
mod checkpoint_support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use inngest_sdk::testing::{EventApi, TestEngine};
use inngest_sdk::{Checkpoint, Client, Config, Event, Function, FunctionOpts, ServeHandler};
use serde_json::json;

const STEPS: u32 = 20;

fn counting(checkpoint: Option<Checkpoint>) -> Function<()> {
    let opts = FunctionOpts::new("count");
    let opts = match checkpoint {
        Some(checkpoint) => opts.with_checkpoint(checkpoint),
        None => opts.without_checkpoint(),
    };
    checkpoint_support::counting(opts, STEPS)
}

/// Serves `function` on loopback; answers an executor calling it there, checkpoints going to
/// `api`.
async fn executor(function: Function<()>, api: &EventApi) -> TestEngine<()> {
    let config = Config::new("bench")
        .dev(None)
        .with_api_base_url(&api.url())
        .expect("a URL");
    let handler = ServeHandler::new(Client::new(config), (), [function]).expect("valid");
    let url = checkpoint_support::serve_on_loopback(handler.clone()).await;
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
