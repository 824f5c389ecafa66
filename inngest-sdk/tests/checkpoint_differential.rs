//! Checkpointing against the official TypeScript SDK: the same `ckpt-app` functions
//! (`ts-fixture/CHECKPOINT.md` §1) served by this SDK, driven by the same call requests of
//! `ts-fixture/checkpoint-capture.mjs`, with the same fake Inngest API failing the same way.
//! For each case, what the server acts on must match: the response's status, no-retry header
//! and ops, and each checkpoint call's key, answer and steps. The few deliberate differences
//! are asserted on their own. Without node or the installed fixture, a notice and no test.

#[path = "common/checkpoint_capture.rs"]
mod checkpoint_capture;
#[path = "common/checkpoint_support.rs"]
mod checkpoint_support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use checkpoint_capture::{
    Exchange, SIGNING_KEY, SIGNING_KEY_FALLBACK, Targets, capture_checkpoints, meaning,
};
use inngest_sdk::{
    Checkpoint, Client, Config, Ctx, Error, Function, FunctionOpts, FunctionRef, Invocation,
    ServeHandler, Trigger, WaitForEvent,
};
use serde_json::{Value, json};

const APP: &str = "ckpt-app";

fn function<F, Fut>(
    id: &str,
    opts: impl FnOnce(FunctionOpts) -> FunctionOpts,
    body: F,
) -> Function<()>
where
    F: Fn(Ctx<Value, ()>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, Error>> + Send + 'static,
{
    let base = FunctionOpts::new(id).with_trigger(Trigger::event(format!("ckpt/{id}")));
    Function::new(opts(base), body)
}

async fn value(v: Value) -> Result<Value, Error> {
    Ok(v)
}

/// The functions of CHECKPOINT.md §1, with TS's settings in ours: the client default is TS's
/// `true` (every step, 10 s runtime).
fn functions() -> Vec<Function<()>> {
    let three = |ctx: Ctx<Value, ()>| async move {
        let a: Value = ctx.step.run("a", || value(json!("A"))).await?;
        let b: Value = ctx.step.run("b", || value(json!("B"))).await?;
        let c: Value = ctx.step.run("c", || value(json!("C"))).await?;
        Ok(json!({ "a": a, "b": b, "c": c }))
    };
    let three_ref: FunctionRef<Value, Value> = FunctionRef::new(APP, "three");
    vec![
        function("three", |o| o, three),
        function(
            "run-sleep-run",
            |o| o,
            |ctx| async move {
                let before: Value = ctx.step.run("before", || value(json!(1))).await?;
                ctx.step.sleep("nap", Duration::from_secs(60)).await;
                let after: Value = ctx.step.run("after", || value(json!(2))).await?;
                Ok(json!({ "before": before, "after": after }))
            },
        ),
        function(
            "run-wait",
            |o| o,
            |ctx| async move {
                let before: Value = ctx.step.run("before", || value(json!(1))).await?;
                let wait = WaitForEvent::new("ckpt/resume", Duration::from_secs(3600));
                let got = ctx.step.wait_for_event::<Value>("wait", wait).await?;
                Ok(json!({ "before": before, "got": got.map(|e| e.data) }))
            },
        ),
        function(
            "run-invoke",
            |o| o,
            move |ctx| {
                let three_ref = three_ref.clone();
                async move {
                    let before: Value = ctx.step.run("before", || value(json!(1))).await?;
                    let call = Invocation::new(&three_ref, json!({ "from": "run-invoke" }))
                        .with_timeout(Duration::from_secs(60));
                    let r = ctx.step.invoke("call", call).await?;
                    Ok(json!({ "before": before, "r": r }))
                }
            },
        ),
        function(
            "run-parallel",
            |o| o,
            |ctx| async move {
                let first: Value = ctx.step.run("first", || value(json!(1))).await?;
                let (x, y) = futures::join!(
                    ctx.step.run("p1", || value(json!(2))),
                    ctx.step.run("p2", || value(json!(3))),
                );
                Ok(json!({ "first": first, "x": x?, "y": y? }))
            },
        ),
        function(
            "step-error",
            |o| o.with_retries(2),
            |ctx| async move {
                let ok: Value = ctx.step.run("ok", || value(json!("fine"))).await?;
                let _: Value = ctx
                    .step
                    .run("fails", || async { Err::<Value, _>(Error::new("boom")) })
                    .await?;
                Ok(json!({ "ok": ok }))
            },
        ),
        function(
            "fn-error",
            |o| o,
            |ctx| async move {
                let _: Value = ctx.step.run("ok", || value(json!("fine"))).await?;
                Err(Error::new("fn broke"))
            },
        ),
        function(
            "slow",
            |o| o.with_checkpoint(Checkpoint::safe().with_max_runtime(Duration::from_millis(500))),
            |ctx| async move {
                let s1: Value = ctx
                    .step
                    .run("s1", || async {
                        tokio::time::sleep(Duration::from_millis(800)).await;
                        value(json!(1)).await
                    })
                    .await?;
                let s2: Value = ctx.step.run("s2", || value(json!(2))).await?;
                let s3: Value = ctx.step.run("s3", || value(json!(3))).await?;
                Ok(json!({ "s1": s1, "s2": s2, "s3": s3 }))
            },
        ),
        function(
            "blended",
            |o| o.with_checkpoint(Checkpoint::blended()),
            |ctx| async move {
                let mut sum = 0;
                for (id, n) in [("b1", 1), ("b2", 2), ("b3", 3), ("b4", 4)] {
                    let got: i64 = ctx
                        .step
                        .run(id, || async move { Ok::<_, Error>(n) })
                        .await?;
                    sum += got;
                }
                Ok(json!({ "sum": sum }))
            },
        ),
        function(
            "performant",
            |o| o.with_checkpoint(Checkpoint::performant()),
            three,
        ),
        function(
            "interval",
            |o| {
                o.with_checkpoint(Checkpoint {
                    batch_steps: 100,
                    batch_interval: Some(Duration::from_millis(500)),
                    max_runtime: None,
                })
            },
            |ctx| async move {
                let mut got = Vec::new();
                for id in ["i1", "i2", "i3", "i4"] {
                    let step: Value = ctx
                        .step
                        .run(id, || async move {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            value(json!(id)).await
                        })
                        .await?;
                    got.push(step);
                }
                Ok(json!(got))
            },
        ),
        function("off", FunctionOpts::without_checkpoint, |ctx| async move {
            let a: Value = ctx.step.run("a", || value(json!("A"))).await?;
            let b: Value = ctx.step.run("b", || value(json!("B"))).await?;
            Ok(json!({ "a": a, "b": b }))
        }),
    ]
}

/// Serves `config`'s handler on a free loopback port; answers its serve URL.
async fn serve(config: Config) -> String {
    let config =
        config.with_checkpoint(Checkpoint::safe().with_max_runtime(Duration::from_secs(10)));
    let handler = ServeHandler::new(Client::new(config), (), functions()).expect("valid functions");
    checkpoint_support::serve_on_loopback(handler).await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Both captures, once per test binary: the TypeScript SDK's, then ours.
fn captures() -> Option<&'static (Vec<Exchange>, Vec<Exchange>)> {
    static CAPTURES: OnceLock<Option<(Vec<Exchange>, Vec<Exchange>)>> = OnceLock::new();
    CAPTURES
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let typescript = capture_checkpoints(None, &[]).await?;
                let port = free_port();
                let api = format!("http://127.0.0.1:{port}");
                let dev = Config::new(APP)
                    .dev(None)
                    .with_api_base_url(&api)
                    .expect("a URL");
                let cloud = Config::new(APP)
                    .with_signing_key(SIGNING_KEY)
                    .with_signing_key_fallback(SIGNING_KEY_FALLBACK)
                    .with_api_base_url(&api)
                    .expect("a URL");
                let targets = Targets {
                    dev: serve(dev).await,
                    cloud: Some(serve(cloud).await),
                    fake_api_port: port,
                };
                let ours = capture_checkpoints(Some(&targets), &[]).await?;
                Some((typescript, ours))
            })
        })
        .as_ref()
}

/// Each case's meaning; the wording of a stale-dispatch error is each SDK's own.
fn by_case(exchanges: &[Exchange]) -> BTreeMap<&str, Vec<Value>> {
    let mut cases: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for exchange in exchanges {
        let mut meaning = meaning(exchange);
        if let Some(message) = meaning["body"].as_str()
            && message.to_lowercase().starts_with("stale dispatch")
        {
            meaning["body"] = json!("stale dispatch");
        }
        cases.entry(&exchange.case).or_default().push(meaning);
    }
    cases
}

fn our_case(name: &str) -> Option<Value> {
    let (_, ours) = captures()?;
    let exchange = ours
        .iter()
        .find(|e| e.case == name)
        .unwrap_or_else(|| panic!("our capture has case {name}"));
    Some(meaning(exchange))
}

fn hash(id: &str) -> String {
    inngest_sdk::step::hash_step_id(id, 0)
}

/// Cases where this SDK differs from TypeScript on purpose (asserted in the tests below).
const DELIBERATE: &[&str] = &[
    // TS arms its interval timer once, at the start of the call; ours starts at the oldest
    // buffered result, as the spec and the Go SDK say.
    "interval",
    // After a 401, ours keeps using the fallback key (as the Go SDK and our other API calls
    // do); TS tries the refused key again on every call.
    "cloud-401-primary",
    // Ours syncs the function's checkpoint configuration (spec §10.1.1); TS sends none.
    "sync-in-band",
];

#[test]
fn every_case_means_the_same_to_the_server_as_with_the_typescript_sdk() {
    let Some((typescript, ours)) = captures() else {
        return;
    };
    let (typescript, ours) = (by_case(typescript), by_case(ours));
    assert!(
        typescript.len() >= 25,
        "the capture ran its cases: {:?}",
        typescript.keys()
    );
    let mut differences = Vec::new();
    for (case, theirs) in &typescript {
        if DELIBERATE.contains(case) {
            continue;
        }
        match ours.get(case) {
            Some(mine) if mine == theirs => {}
            mine => differences.push(format!(
                "{case}:\n  typescript {}\n  ours       {}",
                json!(theirs),
                json!(mine)
            )),
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn the_interval_counts_from_the_oldest_unsent_result_and_is_checked_between_steps() {
    let Some(interval) = our_case("interval") else {
        return;
    };
    // i1 waits 300 ms, then 600 ms when i3 is done: over 500 ms, i1..i3 go in one call.
    let sent: Vec<Value> = ["i1", "i2", "i3"]
        .iter()
        .map(|id| json!({"op": "StepRun", "id": hash(id), "data": id}))
        .collect();
    assert_eq!(
        interval["checkpoints"],
        json!([{"key": "none", "answered": 200, "steps": sent}])
    );
    assert_eq!(
        interval["body"],
        json!([
            {"op": "StepRun", "id": hash("i4"), "data": "i4"},
            {"op": "RunComplete", "id": hash("complete"), "data": ["i1", "i2", "i3", "i4"]},
        ])
    );
}

#[test]
fn after_a_401_the_fallback_key_is_kept_for_later_checkpoints() {
    let Some(refused) = our_case("cloud-401-primary") else {
        return;
    };
    let keys: Vec<(Value, Value)> = refused["checkpoints"]
        .as_array()
        .expect("checkpoint calls")
        .iter()
        .map(|call| (call["key"].clone(), call["answered"].clone()))
        .collect();
    let key = |k: &str, answered: u16| (json!(k), json!(answered));
    assert_eq!(
        keys,
        [
            key("primary", 401),
            key("fallback", 200),
            key("fallback", 200),
            key("fallback", 200)
        ]
    );
    assert_eq!(refused["status"], 206);
    assert_eq!(refused["body"][0]["op"], "RunComplete");
}

#[test]
fn the_sync_payload_carries_each_functions_checkpoint_configuration() {
    let Some((_, ours)) = captures() else {
        return;
    };
    let sync = ours
        .iter()
        .find(|e| e.case == "sync-in-band")
        .expect("a sync case");
    let config = |id: &str| {
        sync.body["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .find(|f| f["id"] == format!("{APP}-{id}"))
            .unwrap_or_else(|| panic!("function {id} is synced"))
            .get("checkpoint")
            .cloned()
    };
    let safe = json!({"batch_steps": 0, "batch_interval": "0s", "max_runtime": "10s"});
    assert_eq!(config("three"), Some(safe), "the client's default");
    assert_eq!(
        config("blended"),
        Some(json!({"batch_steps": 3, "batch_interval": "3s", "max_runtime": "0s"}))
    );
    assert_eq!(
        config("performant"),
        Some(json!({"batch_steps": 1000, "batch_interval": "0s", "max_runtime": "0s"}))
    );
    assert_eq!(
        config("off"),
        None,
        "a function opted out syncs no checkpoint"
    );
}
