//! What the official TypeScript SDK (`inngest@4.24.0`) does on the wire with async
//! checkpointing, captured afresh by `ts-fixture/checkpoint-capture.mjs` against a fake Inngest
//! API: each test asserts a section of `ts-fixture/CHECKPOINT.md`, so the document the Rust
//! implementation follows cannot drift from the SDK it describes. One capture (about 20 s) is
//! shared by all tests. Without node or the installed fixture each test prints a notice and
//! returns (`scripts/test.sh` installs it with `npm ci`).

#[path = "common/checkpoint_capture.rs"]
mod checkpoint_capture;

use std::sync::OnceLock;

use checkpoint_capture::{
    Exchange, FN_UUID, QI_ID, REQUEST_ID, RUN_ID, SIGNING_KEY, SIGNING_KEY_FALLBACK,
    capture_checkpoints, hashed_key, meaning,
};
use serde_json::{Value, json};
use sha1::Digest;

/// The whole capture against the TypeScript SDK, run once per test binary.
fn capture() -> Option<&'static [Exchange]> {
    static CAPTURE: OnceLock<Option<Vec<Exchange>>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(capture_checkpoints(None, &[]))
        })
        .as_deref()
}

fn case<'a>(exchanges: &'a [Exchange], name: &str) -> &'a Exchange {
    exchanges
        .iter()
        .find(|e| e.case == name)
        .unwrap_or_else(|| panic!("the capture has case {name}"))
}

fn hash(id: &str) -> String {
    hex::encode(sha1::Sha1::digest(id.as_bytes()))
}

fn bearer(key: &str) -> String {
    format!("Bearer {}", hashed_key(key))
}

/// The step ids of each checkpoint call of an exchange.
fn checkpointed(exchange: &Exchange) -> Vec<Vec<String>> {
    exchange
        .checkpoints()
        .iter()
        .map(|c| c.steps().iter().map(op_id).collect())
        .collect()
}

fn op_id(op: &Value) -> String {
    op["id"].as_str().expect("an op id").to_owned()
}

/// `(op, id)` of each op in a 206 body.
fn ops(exchange: &Exchange) -> Vec<(String, String)> {
    exchange
        .ops()
        .iter()
        .map(|o| (o["op"].as_str().expect("an op").to_owned(), op_id(o)))
        .collect()
}

fn op(name: &str, id: &str) -> (String, String) {
    (name.to_owned(), hash(id))
}

fn run_complete(data: Value) -> Value {
    json!([{"op": "RunComplete", "id": hash("complete"), "data": data}])
}

#[test]
fn each_step_is_checkpointed_and_the_end_is_a_206_run_complete() {
    let Some(all) = capture() else { return };
    let three = case(all, "three");
    assert_eq!(three.status, Some(206));
    assert_eq!(
        three.body,
        run_complete(json!({"a": "A", "b": "B", "c": "C"}))
    );
    assert_eq!(
        checkpointed(three),
        vec![vec![hash("a")], vec![hash("b")], vec![hash("c")]]
    );
    for (call, (id, data)) in three
        .checkpoints()
        .iter()
        .zip([("a", "A"), ("b", "B"), ("c", "C")])
    {
        let step = &call.steps()[0];
        assert_eq!(step["op"], "StepRun");
        assert_eq!(step["name"], id);
        assert_eq!(step["displayName"], id);
        assert_eq!(step["data"], data, "the bare value, not {{data: ..}}");
        assert!(step["timing"]["a"].is_u64() && step["timing"]["b"].is_u64());
        // TS serializes its internal step object whole (CHECKPOINT.md §4).
        assert_eq!(step["hashedId"], hash(id));
        assert_eq!(call.answered, Some(200));
        assert!(
            call.t_ms <= three.t_ms.expect("timed"),
            "flushed before the answer"
        );
    }

    let resumed = case(all, "three-resumed");
    assert_eq!(
        checkpointed(resumed),
        vec![vec![hash("b")], vec![hash("c")]]
    );
    assert_eq!(resumed.body, three.body);

    let memoized = case(all, "three-all-memoized");
    assert!(memoized.outbound.is_empty());
    assert_eq!(memoized.status, Some(206), "never 200 while checkpointing");
    assert_eq!(memoized.body, three.body);
}

#[test]
fn the_checkpoint_request_carries_the_call_context_and_the_hashed_key() {
    let Some(all) = capture() else { return };
    let three = case(all, "three");
    let calls = three.checkpoints();
    let first = calls[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.url, format!("/v1/checkpoint/{RUN_ID}/async"));
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("x-inngest-sdk"), Some("inngest-js:v4.24.0"));
    assert_eq!(
        first.header("authorization").map(str::trim_end),
        Some("Bearer"),
        "dev mode without a key: an empty Bearer token"
    );
    let body = first.body.as_object().expect("an object body");
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "fn_id",
            "generation_id",
            "qi_id",
            "request_id",
            "request_started_at",
            "run_id",
            "steps",
            "ts"
        ]
    );
    assert_eq!(body["run_id"], RUN_ID);
    assert_eq!(body["fn_id"], FN_UUID);
    assert_eq!(body["qi_id"], QI_ID);
    assert_eq!(body["request_id"], REQUEST_ID);
    assert_eq!(body["generation_id"], 1);
    let started = body["request_started_at"].as_u64().expect("ms");
    for call in &calls {
        assert_eq!(
            call.body["request_started_at"], started,
            "one value per invocation"
        );
        assert!(call.body["ts"].as_u64().expect("ms") >= started);
    }

    // request_id and generation_id come from the headers, not from ctx.
    let bare = case(all, "three-no-id-headers");
    let body = &bare.checkpoints()[0].body;
    assert!(body.get("request_id").is_none() && body.get("generation_id").is_none());
    assert_eq!(body["qi_id"], QI_ID);

    let cloud = case(all, "cloud-three");
    assert_eq!(cloud.checkpoints().len(), 3);
    for call in cloud.checkpoints() {
        assert_eq!(
            call.header("authorization"),
            Some(bearer(SIGNING_KEY).as_str())
        );
    }
    assert!(
        cloud.header("x-inngest-signature").is_some(),
        "cloud answers are signed"
    );
    assert_eq!(cloud.body, three.body);
}

#[test]
fn checkpointing_needs_an_untargeted_call_and_a_queue_item() {
    let Some(all) = capture() else { return };
    // No qi_id: nothing is sent, the buffered step comes back at once.
    let no_qi = case(all, "three-no-qi-id");
    assert!(no_qi.outbound.is_empty());
    assert_eq!(ops(no_qi), vec![op("StepRun", "a")]);
    assert_eq!(no_qi.ops()[0]["mode"], "sync", "the internal object leaks");
    // Targeted step, immediate execution disabled, checkpointing off, a retry: classic.
    for (name, expected) in [
        ("three-targeted", "StepRun"),
        ("three-disabled", "StepPlanned"),
        ("off", "StepRun"),
        ("three-attempt1", "StepRun"),
    ] {
        let exchange = case(all, name);
        assert!(exchange.outbound.is_empty(), "{name} made no API call");
        assert_eq!(ops(exchange), vec![op(expected, "a")], "{name}");
        assert!(
            exchange.ops()[0].get("mode").is_none(),
            "{name} answers the classic op"
        );
    }
}

#[test]
fn an_async_op_ends_the_invocation_after_the_earlier_steps_are_checkpointed() {
    let Some(all) = capture() else { return };
    for (name, async_op, id) in [
        ("run-sleep-run", "Sleep", "nap"),
        ("run-wait", "WaitForEvent", "wait"),
        ("run-invoke", "InvokeFunction", "call"),
    ] {
        let exchange = case(all, name);
        assert_eq!(checkpointed(exchange), vec![vec![hash("before")]], "{name}");
        assert_eq!(exchange.status, Some(206));
        assert_eq!(ops(exchange), vec![op(async_op, id)], "{name}");
    }
    assert_eq!(case(all, "run-sleep-run").ops()[0]["name"], "1m");

    let woken = case(all, "run-sleep-run-woken");
    assert_eq!(checkpointed(woken), vec![vec![hash("after")]]);
    assert_eq!(woken.body, run_complete(json!({"before": 1, "after": 2})));

    let parallel = case(all, "run-parallel");
    assert_eq!(checkpointed(parallel), vec![vec![hash("first")]]);
    assert_eq!(
        ops(parallel),
        vec![op("StepPlanned", "p1"), op("StepPlanned", "p2")]
    );
}

#[test]
fn step_and_function_errors_are_answered_after_the_flush() {
    let Some(all) = capture() else { return };
    let error = case(all, "step-error");
    assert_eq!(checkpointed(error), vec![vec![hash("ok")]]);
    assert_eq!(ops(error), vec![op("StepError", "fails")]);
    assert_eq!(error.header("x-inngest-no-retry"), Some("false"));

    let retry = case(all, "step-error-retry");
    assert!(retry.outbound.is_empty());
    assert_eq!(ops(retry), vec![op("StepError", "fails")]);
    assert_eq!(retry.header("x-inngest-no-retry"), Some("false"));

    let last = case(all, "step-error-last");
    assert!(last.outbound.is_empty());
    assert_eq!(ops(last), vec![op("StepFailed", "fails")]);
    assert_eq!(last.header("x-inngest-no-retry"), Some("true"));

    let fn_error = case(all, "fn-error");
    assert_eq!(checkpointed(fn_error), vec![vec![hash("ok")]]);
    assert_eq!(fn_error.status, Some(500));
    assert_eq!(fn_error.body["message"], "fn broke");
    assert_eq!(fn_error.header("x-inngest-no-retry"), Some("false"));
}

#[test]
fn a_failing_checkpoint_api_is_tried_five_times_then_the_buffer_is_returned() {
    let Some(all) = capture() else { return };
    let twice = case(all, "api-500-twice");
    let a = vec![hash("a")];
    assert_eq!(
        checkpointed(twice),
        vec![
            a.clone(),
            a.clone(),
            a.clone(),
            vec![hash("b")],
            vec![hash("c")]
        ]
    );
    let answered: Vec<_> = twice.checkpoints().iter().map(|c| c.answered).collect();
    assert_eq!(
        answered,
        [Some(500), Some(500), Some(200), Some(200), Some(200)]
    );
    assert_eq!(
        twice.body,
        run_complete(json!({"a": "A", "b": "B", "c": "C"}))
    );

    for (name, answered) in [
        ("api-500-always", Some(500)),
        ("api-400", Some(400)),
        ("api-unreachable", None),
    ] {
        let exchange = case(all, name);
        let calls = exchange.checkpoints();
        assert_eq!(
            checkpointed(exchange),
            vec![a.clone(); 5],
            "{name}: 5 tries of [a]"
        );
        assert!(calls.iter().all(|c| c.answered == answered), "{name}");
        // Backoff: 100·2^(n-1) ms plus up to 100 ms of jitter before try n+1.
        for (n, pair) in calls.windows(2).enumerate() {
            let floor = 100 << n;
            assert!(
                pair[1].t_ms - pair[0].t_ms >= floor,
                "{name}: pause {n} shorter than {floor} ms"
            );
        }
        assert_eq!(exchange.status, Some(206), "{name}");
        assert_eq!(
            ops(exchange),
            vec![op("StepRun", "a")],
            "{name}: the fallback"
        );
        assert_eq!(exchange.ops()[0]["data"], "A");
    }

    let stale = case(all, "api-409-stale");
    assert_eq!(checkpointed(stale), vec![a], "409 is not retried");
    assert_eq!(stale.status, Some(400));
    assert_eq!(stale.header("x-inngest-no-retry"), Some("true"));
    assert_eq!(stale.body["name"], "StaleDispatchError");
}

#[test]
fn a_401_for_the_primary_key_is_retried_with_the_fallback_key_on_every_call() {
    let Some(all) = capture() else { return };
    let exchange = case(all, "cloud-401-primary");
    let (primary, fallback) = (bearer(SIGNING_KEY), bearer(SIGNING_KEY_FALLBACK));
    let seen: Vec<_> = exchange
        .checkpoints()
        .iter()
        .map(|c| (c.header("authorization").map(str::to_owned), c.answered))
        .collect();
    let pair = [
        (Some(primary.clone()), Some(401)),
        (Some(fallback.clone()), Some(200)),
    ];
    assert_eq!(
        seen,
        [pair.clone(), pair.clone(), pair].concat(),
        "not sticky"
    );
    assert_eq!(
        checkpointed(exchange),
        ["a", "a", "b", "b", "c", "c"].map(|id| vec![hash(id)])
    );
    assert_eq!(
        exchange.body,
        run_complete(json!({"a": "A", "b": "B", "c": "C"}))
    );
}

#[test]
fn past_max_runtime_the_next_step_is_returned_planned() {
    let Some(all) = capture() else { return };
    let slow = case(all, "slow");
    assert_eq!(checkpointed(slow), vec![vec![hash("s1")]]);
    let s1 = &slow.checkpoints()[0].steps()[0];
    // The step pauses 800 ms. The TypeScript SDK times it with `Date.now()`, against a timer
    // that starts from the event loop's cached clock, so on a busy machine it can measure a few
    // milliseconds less: the bound only shows a real duration, in nanoseconds.
    let duration = s1["timing"]["b"].as_u64().expect("ns");
    assert!(
        (700_000_000..60_000_000_000).contains(&duration),
        "a real duration in ns: {duration}"
    );
    assert_eq!(ops(slow), vec![op("StepPlanned", "s2")]);
}

#[test]
fn buffered_steps_batch_the_checkpoints_and_the_rest_goes_in_the_206() {
    let Some(all) = capture() else { return };
    let blended = case(all, "blended");
    assert_eq!(
        checkpointed(blended),
        vec![vec![hash("b1"), hash("b2"), hash("b3")]]
    );
    assert_eq!(
        ops(blended),
        vec![op("StepRun", "b4"), op("RunComplete", "complete")]
    );
    assert_eq!(blended.ops()[1]["data"], json!({"sum": 10}));

    let performant = case(all, "performant");
    assert!(performant.outbound.is_empty(), "1000 steps never fill");
    assert_eq!(
        ops(performant),
        vec![
            op("StepRun", "a"),
            op("StepRun", "b"),
            op("StepRun", "c"),
            op("RunComplete", "complete")
        ]
    );

    // maxInterval: one flush, between steps, starting with i1; the rest in the 206.
    let interval = case(all, "interval");
    let calls = checkpointed(interval);
    assert_eq!(calls.len(), 1, "the interval fires once per invocation");
    assert_eq!(calls[0][0], hash("i1"));
    let mut steps = calls[0].clone();
    let mut answered = ops(interval);
    let last = answered.pop().expect("ops");
    assert_eq!(last, op("RunComplete", "complete"));
    steps.extend(answered.into_iter().map(|(_, id)| id));
    assert_eq!(steps, ["i1", "i2", "i3", "i4"].map(hash));
}

#[test]
fn typescript_sends_no_checkpoint_config_in_the_sync_payload() {
    let Some(all) = capture() else { return };
    let sync = case(all, "sync-in-band");
    let functions = sync.body["functions"].as_array().expect("functions");
    assert_eq!(functions.len(), 12);
    for function in functions {
        assert!(function.get("checkpoint").is_none(), "{}", function["id"]);
    }
}

#[test]
fn the_meaning_of_an_exchange_keeps_what_the_server_acts_on() {
    let Some(all) = capture() else { return };
    assert_eq!(
        meaning(case(all, "blended")),
        json!({
            "status": 206,
            "no_retry": null,
            "body": [
                {"op": "StepRun", "id": hash("b4"), "data": 4},
                {"op": "RunComplete", "id": hash("complete"), "data": {"sum": 10}}
            ],
            "checkpoints": [{"key": "none", "answered": 200, "steps": [
                {"op": "StepRun", "id": hash("b1"), "data": 1},
                {"op": "StepRun", "id": hash("b2"), "data": 2},
                {"op": "StepRun", "id": hash("b3"), "data": 3}
            ]}]
        })
    );
    let fallback = meaning(case(all, "cloud-401-primary"));
    let keys: Vec<_> = fallback["checkpoints"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["key"].as_str().expect("a key"))
        .collect();
    assert_eq!(
        keys,
        [
            "primary", "fallback", "primary", "fallback", "primary", "fallback"
        ]
    );
    let error = meaning(case(all, "step-error"));
    assert_eq!(
        error["body"],
        json!([{"op": "StepError", "id": hash("fails"), "error": "boom"}])
    );
    assert_eq!(error["no_retry"], "false");
}
