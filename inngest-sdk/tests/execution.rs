//! Execution requests (POST) through the serve handler: memoization, immediate execution,
//! parallel and targeted steps, errors and retry semantics, bad input.

mod common;

use std::time::Duration;

use common::{Call, event};
use futures::future::join;
use inngest_sdk::step::hash_step_id;
use inngest_sdk::{
    Client, Config, Ctx, Error, Function, FunctionOpts, ServeHandler, StepError, Trigger,
};
use serde::Deserialize;
use serde_json::{Value, json};

fn handler(functions: Vec<Function<()>>) -> ServeHandler<()> {
    let config = Config::new("app").dev(None);
    ServeHandler::new(Client::new(config), (), functions).expect("valid functions")
}

fn function<F, Fut>(id: &str, body: F) -> Function<()>
where
    F: Fn(Ctx<Value, ()>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, Error>> + Send + 'static,
{
    Function::new(
        FunctionOpts::new(id)
            .with_trigger(Trigger::event("t/e"))
            .with_retries(2),
        body,
    )
}

fn h(id: &str) -> String {
    hash_step_id(id, 0)
}

fn parallel() -> Function<()> {
    function("parallel", |ctx| async move {
        let (a, b) = join(
            ctx.step.run("p1", || async { Ok::<_, Error>(1) }),
            ctx.step.run("p2", || async { Ok::<_, Error>(2) }),
        )
        .await;
        Ok(json!({ "sum": a? + b? }))
    })
}

#[tokio::test]
async fn parallel_steps_are_planned_together() {
    let reply = Call::new("app-parallel", event("t/e", json!({})))
        .send(&handler(vec![parallel()]))
        .await;
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.ops(),
        json!([
            {"op": "StepPlanned", "id": h("p1"), "name": "p1"},
            {"op": "StepPlanned", "id": h("p2"), "name": "p2"},
        ])
    );
}

#[tokio::test]
async fn a_targeted_step_runs_alone() {
    let handler = handler(vec![parallel()]);
    let call = Call::new("app-parallel", event("t/e", json!({})))
        .target(&h("p2"))
        .plan_only();
    let reply = call.send(&handler).await;
    assert_eq!(
        reply.ops(),
        json!([{"op": "StepRun", "id": h("p2"), "name": "p2", "data": 2}])
    );

    let call = Call::new("app-parallel", event("t/e", json!({})))
        .memo(&h("p1"), json!({"data": 1}))
        .memo(&h("p2"), json!({"data": 2}));
    let done = call.send(&handler).await;
    assert_eq!((done.status, done.json), (200, json!({"sum": 3})));
}

#[tokio::test(start_paused = true)]
async fn a_target_the_code_does_not_reach_ends_the_thread() {
    let call = Call::new("app-parallel", event("t/e", json!({}))).target(&h("elsewhere"));
    let reply = call.send(&handler(vec![parallel()])).await;
    assert_eq!((reply.status, reply.json), (206, json!([])));
}

#[tokio::test]
async fn a_targeted_step_behind_io_in_another_branch_is_still_run() {
    let f = function("behind-io", |ctx| async move {
        let (a, b) = join(ctx.step.run("a", || async { Ok::<_, Error>(1) }), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ctx.step.run("b", || async { Ok::<_, Error>(2) }).await
        })
        .await;
        Ok(json!(a? + b?))
    });
    let call = Call::new("app-behind-io", event("t/e", json!({})))
        .target(&h("b"))
        .plan_only();
    let reply = call.send(&handler(vec![f])).await;
    assert_eq!(
        reply.ops(),
        json!([{"op": "StepRun", "id": h("b"), "name": "b", "data": 2}])
    );
}

#[tokio::test]
async fn disabled_immediate_execution_plans_a_single_step() {
    let f = function("one", |ctx| async move {
        let v: u32 = ctx.step.run("only", || async { Ok::<_, Error>(7) }).await?;
        Ok(json!(v))
    });
    let reply = Call::new("app-one", event("t/e", json!({})))
        .plan_only()
        .send(&handler(vec![f]))
        .await;
    assert_eq!(
        reply.ops(),
        json!([{"op": "StepPlanned", "id": h("only"), "name": "only"}])
    );
}

#[tokio::test]
async fn repeated_step_ids_hash_with_a_counter() {
    let f = function("loop", |ctx| async move {
        let mut sum = 0;
        for i in 0..3u32 {
            sum += ctx
                .step
                .run("item", move || async move { Ok::<_, Error>(i * 2) })
                .await?;
        }
        Ok(json!({ "sum": sum }))
    });
    let handler = handler(vec![f]);
    let trigger = event("t/e", json!({}));
    let call = Call::new("app-loop", trigger.clone())
        .memo(&hash_step_id("item", 0), json!({"data": 0}))
        .memo(&hash_step_id("item", 1), json!({"data": 2}));
    let third = call.send(&handler).await;
    assert_eq!(
        third.ops(),
        json!([{"op": "StepRun", "id": hash_step_id("item", 2), "name": "item", "data": 4}])
    );
}

fn failing_step(id: &'static str, err: fn() -> Error) -> Function<()> {
    function(id, move |ctx| async move {
        let outcome = ctx
            .step
            .run("flaky", || async move { Err::<u32, _>(err()) })
            .await;
        match outcome {
            Ok(v) => Ok(json!(v)),
            Err(StepError { name, message, .. }) => Ok(json!({ "caught": message, "name": name })),
        }
    })
}

#[tokio::test]
async fn a_step_error_is_retriable_until_the_last_attempt() {
    let handler = handler(vec![failing_step("flaky", || Error::new("boom"))]);
    let trigger = event("t/e", json!({}));
    let first = Call::new("app-flaky", trigger.clone())
        .max_attempts(3)
        .send(&handler)
        .await;
    assert_eq!(first.status, 206);
    assert_eq!(first.ops()[0]["op"], "StepError");
    assert_eq!(
        first.ops()[0]["error"],
        json!({"name": "Error", "message": "boom"})
    );
    assert_eq!(first.ops()[0]["data"], Value::Null);
    assert!(first.ops()[0].as_object().expect("op").contains_key("data"));

    let last = Call::new("app-flaky", trigger.clone())
        .attempt(2)
        .max_attempts(3)
        .send(&handler)
        .await;
    assert_eq!(last.ops()[0]["op"], "StepFailed");
    assert_eq!(last.header("x-inngest-no-retry"), Some("true"));
    assert_eq!(first.header("x-inngest-no-retry"), Some("false"));

    let replay = Call::new("app-flaky", trigger)
        .memo(
            &h("flaky"),
            json!({"error": {"name": "Error", "message": "boom", "stack": "x"}}),
        )
        .send(&handler)
        .await;
    assert_eq!(
        (replay.status, replay.json),
        (200, json!({"caught": "boom", "name": "Error"}))
    );
}

#[tokio::test]
async fn a_non_retriable_step_error_fails_at_once() {
    let handler = handler(vec![failing_step("fatal", || {
        Error::non_retriable("no way")
    })]);
    let reply = Call::new("app-fatal", event("t/e", json!({})))
        .send(&handler)
        .await;
    assert_eq!(reply.ops()[0]["op"], "StepFailed");
    assert_eq!(reply.ops()[0]["error"]["message"], "no way");
}

#[tokio::test]
async fn a_step_retry_after_sets_the_header() {
    let handler = handler(vec![failing_step("later", || {
        Error::retry_after("rate limited", Duration::from_secs(30))
    })]);
    let reply = Call::new("app-later", event("t/e", json!({})))
        .send(&handler)
        .await;
    assert_eq!(reply.ops()[0]["op"], "StepError");
    assert_eq!(reply.header("retry-after"), Some("30"));
}

#[tokio::test]
async fn an_unhandled_memoized_step_error_fails_the_run_without_retry() {
    let f = function("unhandled", |ctx| async move {
        let v: u32 = ctx
            .step
            .run("flaky", || async { Ok::<_, Error>(1) })
            .await?;
        Ok(json!(v))
    });
    let reply = Call::new("app-unhandled", event("t/e", json!({})))
        .memo(
            &h("flaky"),
            json!({"error": {"name": "Error", "message": "gone"}}),
        )
        .send(&handler(vec![f]))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-inngest-no-retry"), Some("true"));
    assert_eq!(reply.json["message"], "gone");
}

#[tokio::test]
async fn function_errors_map_to_retry_semantics() {
    let retriable = function("retriable", |_| async { Err(Error::new("fn broke")) });
    let fatal = function("fatal", |_| async {
        Err(Error::non_retriable("stop here"))
    });
    let later = function("later", |_| async {
        Err(Error::retry_after("later", Duration::from_secs(90)))
    });
    let handler = handler(vec![retriable, fatal, later]);
    let trigger = event("t/e", json!({}));

    let reply = Call::new("app-retriable", trigger.clone())
        .send(&handler)
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json, json!({"name": "Error", "message": "fn broke"}));
    assert_eq!(reply.header("x-inngest-no-retry"), Some("false"));

    let reply = Call::new("app-fatal", trigger.clone()).send(&handler).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-inngest-no-retry"), Some("true"));
    assert_eq!(reply.json["message"], "stop here");

    let reply = Call::new("app-later", trigger).send(&handler).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("retry-after"), Some("90"));
}

#[tokio::test]
async fn a_panic_becomes_a_500_and_the_handler_keeps_serving() {
    let boom = function("boom", |ctx| async move {
        if ctx.event.data["explode"] == true {
            panic!("kaboom");
        }
        Ok(json!("calm"))
    });
    let handler = handler(vec![boom]);
    let reply = Call::new("app-boom", event("t/e", json!({"explode": true})))
        .send(&handler)
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json["message"], "kaboom");
    assert_ne!(reply.header("x-inngest-no-retry"), Some("true"));
    let reply = Call::new("app-boom", event("t/e", json!({"explode": false})))
        .send(&handler)
        .await;
    assert_eq!((reply.status, reply.json), (200, json!("calm")));
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Order {
    order_id: String,
    amount: Amount,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Amount {
    cents: u64,
}

#[tokio::test]
async fn a_payload_that_does_not_decode_is_non_retriable_and_names_the_field() {
    let typed = Function::new(
        FunctionOpts::new("typed").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Order, ()>| async move { Ok(ctx.event.data.amount.cents) },
    );
    let handler = handler(vec![typed]);
    let bad = event("t/e", json!({"order_id": "o1", "amount": {"cents": "ten"}}));
    let reply = Call::new("app-typed", bad).send(&handler).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-inngest-no-retry"), Some("true"));
    let message = reply.json["message"].as_str().expect("message");
    assert!(message.contains("data.amount.cents"), "{message}");

    let good = event("t/e", json!({"order_id": "o1", "amount": {"cents": 10}}));
    let reply = Call::new("app-typed", good).send(&handler).await;
    assert_eq!((reply.status, reply.json), (200, json!(10)));
}

/// Sends `events` as the batch of a call to `fn_id`, its first as the trigger event.
async fn send_batch(handler: &ServeHandler<()>, fn_id: &str, events: Vec<Value>) -> common::Reply {
    let call = Call::new(fn_id, events[0].clone());
    let mut body = call.body();
    body["events"] = Value::Array(events);
    let request = http::Request::post(format!(
        "http://localhost/api/inngest?fnId={fn_id}&stepId=step"
    ))
    .body(bytes::Bytes::from(body.to_string()))
    .expect("request");
    common::Reply::from(handler.handle(request).await)
}

#[tokio::test]
async fn a_batch_is_decoded_in_order_when_the_body_asks() {
    let total = Function::new(
        FunctionOpts::new("total").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Order, ()>| async move {
            let batch = ctx.events.decode()?;
            let ids: Vec<_> = batch.iter().map(|e| e.data.order_id.as_str()).collect();
            let cents: u64 = batch.iter().map(|e| e.data.amount.cents).sum();
            Ok(json!([
                ctx.events.len(),
                ids,
                cents,
                ctx.event.data.order_id
            ]))
        },
    );
    let handler = handler(vec![total]);
    let order =
        |id: &str, cents: u64| event("t/e", json!({"order_id": id, "amount": {"cents": cents}}));
    let batch = vec![order("o1", 10), order("o2", 20), order("o3", 5)];
    let reply = send_batch(&handler, "app-total", batch).await;
    assert_eq!(
        (reply.status, reply.json),
        (200, json!([3, ["o1", "o2", "o3"], 35, "o1"]))
    );
}

#[tokio::test]
async fn a_batch_event_that_does_not_decode_fails_only_a_body_that_reads_the_batch() {
    let reads_batch = Function::new(
        FunctionOpts::new("batch").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Order, ()>| async move { Ok(ctx.events.decode()?.len()) },
    );
    let reads_event = Function::new(
        FunctionOpts::new("first").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Order, ()>| async move { Ok(ctx.event.data.amount.cents) },
    );
    let handler = handler(vec![reads_batch, reads_event]);
    let batch = vec![
        event("t/e", json!({"order_id": "o1", "amount": {"cents": 10}})),
        event("t/e", json!({"order_id": "o2", "amount": {"cents": "ten"}})),
    ];

    let reply = send_batch(&handler, "app-batch", batch.clone()).await;
    assert_eq!(reply.status, 400, "{}", reply.raw);
    assert_eq!(reply.header("x-inngest-no-retry"), Some("true"));
    let message = reply.json["message"].as_str().expect("message");
    assert!(
        message.contains("event 1 of the batch") && message.contains("data.amount.cents"),
        "{message}"
    );

    let reply = send_batch(&handler, "app-first", batch).await;
    assert_eq!((reply.status, reply.json), (200, json!(10)));
}

/// A payload type that refuses any field it does not name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictOrder {
    order_id: String,
}

/// `data._inngest` as Inngest adds it to an invoked run's event (protocol §14).
fn invocation_metadata() -> Value {
    json!({
        "source_app_id": "8b5c1c1e-0000-4000-8000-000000000000",
        "source_fn_id": "3f2a9d4b-0000-4000-8000-000000000000",
        "source_fn_v": 3,
        "fn_id": "app-strict",
        "correlation_id": "01JCALLER.c3ca5f787365eae0dea86250e27d476406956478",
        "expire": 1_731_536_000_000_i64,
        "gid": "",
        "name": "charge",
    })
}

#[tokio::test]
async fn an_invoked_run_decodes_into_a_strict_payload_type() {
    let strict = Function::new(
        FunctionOpts::new("strict").with_trigger(Trigger::event("t/strict")),
        |ctx: Ctx<StrictOrder, ()>| async move {
            Ok(json!([
                ctx.event.data.order_id,
                ctx.events.decode()?[0].data.order_id
            ]))
        },
    );
    let untyped = function("untyped", |ctx| async move { Ok(ctx.event.data) });
    let handler = handler(vec![strict, untyped]);
    let invoked = event(
        "inngest/function.invoked",
        json!({ "order_id": "o1", "_inngest": invocation_metadata() }),
    );

    let reply = Call::new("app-strict", invoked.clone())
        .send(&handler)
        .await;
    assert_eq!((reply.status, reply.json), (200, json!(["o1", "o1"])));

    let reply = Call::new("app-untyped", invoked).send(&handler).await;
    assert_eq!(
        (reply.status, reply.json),
        (200, json!({ "order_id": "o1" })),
        "the metadata is not the caller's data, whatever the payload type"
    );
}

#[tokio::test]
async fn a_strict_payload_still_refuses_other_unknown_fields() {
    let strict = Function::new(
        FunctionOpts::new("strict").with_trigger(Trigger::event("t/strict")),
        |ctx: Ctx<StrictOrder, ()>| async move { Ok(ctx.event.data.order_id) },
    );
    let invoked = event(
        "inngest/function.invoked",
        json!({ "order_id": "o1", "extra": 1, "_inngest": invocation_metadata() }),
    );
    let reply = Call::new("app-strict", invoked)
        .send(&handler(vec![strict]))
        .await;
    assert_eq!(reply.status, 400);
    let message = reply.json["message"].as_str().expect("message");
    assert!(
        message.contains("at `data.extra`: unknown field `extra`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failure_handler_of_an_invoked_function_decodes_a_strict_payload() {
    let strict = Function::new(
        FunctionOpts::new("strict").with_trigger(Trigger::event("t/strict")),
        |_: Ctx<StrictOrder, ()>| async move { Err::<(), _>(Error::non_retriable("declined")) },
    )
    .on_failure(
        |ctx: Ctx<inngest_sdk::function::FunctionFailed<StrictOrder>, ()>| async move {
            Ok(ctx.event.data.event.data.order_id)
        },
    );
    let failed_event = event(
        "inngest/function.invoked",
        json!({ "order_id": "o1", "_inngest": invocation_metadata() }),
    );
    let failed = event(
        "inngest/function.failed",
        json!({
            "function_id": "app-strict",
            "run_id": "01JRUN",
            "error": { "name": "Error", "message": "declined" },
            "event": failed_event,
            "events": [failed_event],
        }),
    );
    let reply = Call::new("app-strict-failure", failed)
        .send(&handler(vec![strict]))
        .await;
    assert_eq!((reply.status, reply.json), (200, json!("o1")));
}

#[tokio::test]
async fn async_steps_report_their_opcodes() {
    let f = function("asyncs", |ctx| async move {
        ctx.step.sleep("nap", Duration::from_secs(90 * 60)).await;
        let past = chrono::Utc::now() - chrono::Duration::hours(1);
        ctx.step.sleep_until("already", past).await;
        let target = inngest_sdk::FunctionRef::<Value, Value>::new("app", "other");
        let r: Value = ctx
            .step
            .invoke(
                "call",
                inngest_sdk::Invocation::new(&target, json!({"x": 1}))
                    .with_timeout(Duration::from_secs(60)),
            )
            .await?;
        Ok(r)
    });
    let handler = handler(vec![f]);
    let trigger = event("t/e", json!({}));
    let sleep = Call::new("app-asyncs", trigger.clone())
        .send(&handler)
        .await;
    assert_eq!(
        sleep.ops(),
        json!([{"op": "Sleep", "id": h("nap"), "name": "nap", "opts": {"duration": "1h30m"}, "data": null}])
    );

    // The past sleep_until completes without a round trip; the invoke comes next.
    let invoke = Call::new("app-asyncs", trigger.clone())
        .memo(&h("nap"), Value::Null)
        .send(&handler)
        .await;
    assert_eq!(
        invoke.ops(),
        json!([{"op": "InvokeFunction", "id": h("call"), "name": "call",
                "opts": {"function_id": "app-other", "payload": {"data": {"x": 1}}, "timeout": "1m"}}])
    );

    let done = Call::new("app-asyncs", trigger)
        .memo(&h("nap"), Value::Null)
        .memo(&h("call"), json!({"data": {"answer": 42}}))
        .send(&handler)
        .await;
    assert_eq!((done.status, done.json), (200, json!({"answer": 42})));
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Basket {
    id: u32,
    lines: Vec<u32>,
}

#[tokio::test]
async fn memoized_results_decode_into_the_step_type_or_name_the_field_that_does_not() {
    let f = function("typed", |ctx| async move {
        let order = ctx
            .step
            .run("load", || async {
                Ok::<_, Error>(Basket {
                    id: 0,
                    lines: vec![],
                })
            })
            .await;
        let nothing: Option<u32> = ctx
            .step
            .run("none", || async { Ok::<_, Error>(None) })
            .await?;
        Ok(match order {
            Ok(order) => json!({ "order": order, "nothing": nothing }),
            Err(e) => json!({ "error": e.message, "name": e.name }),
        })
    });
    let handler = handler(vec![f]);
    let call = |load: Value| {
        Call::new("app-typed", event("t/e", json!({})))
            .memo(&h("load"), load)
            .memo(&h("none"), json!({ "data": null }))
    };

    let reply = call(json!({"data": {"id": 7, "lines": [1, 2]}}))
        .send(&handler)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(
        reply.json,
        json!({"order": {"id": 7, "lines": [1, 2]}, "nothing": null})
    );

    // A stored result that no longer fits the type is the step's error, naming the field.
    let reply = call(json!({"data": {"id": 7, "lines": [1, "two"]}}))
        .send(&handler)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["name"], "DeserializationError");
    let message = reply.json["error"].as_str().expect("a message");
    assert!(
        message.contains("\"load\"") && message.contains("lines[1]"),
        "{message}"
    );

    let reply = call(json!(["not", "a", "memo"])).send(&handler).await;
    let message = reply.json["error"].as_str().expect("a message");
    assert!(message.contains("is malformed"), "{message}");

    // Keys that are not a step hash are ignored; the hash matches in either case.
    let reply = Call::new("app-typed", event("t/e", json!({})))
        .memo(
            &h("load").to_uppercase(),
            json!({"data": {"id": 1, "lines": []}}),
        )
        .memo("not-a-hash", json!({"data": 1}))
        .memo(&h("none"), json!({ "data": 3 }))
        .send(&handler)
        .await;
    assert_eq!(
        reply.json,
        json!({"order": {"id": 1, "lines": []}, "nothing": 3})
    );
}

#[tokio::test]
async fn unfinished_step_inputs_are_not_taken_as_results() {
    let f = function("inputs", |ctx| async move {
        let v: u32 = ctx.step.run("s", || async { Ok::<_, Error>(5) }).await?;
        Ok(json!(v))
    });
    let reply = Call::new("app-inputs", event("t/e", json!({})))
        .memo(&h("s"), json!({"input": [1, 2]}))
        .send(&handler(vec![f]))
        .await;
    assert_eq!(
        reply.ops(),
        json!([{"op": "StepRun", "id": h("s"), "name": "s", "data": 5}])
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let handler = handler(vec![parallel()]);
    let trigger = event("t/e", json!({}));

    let reply = Call::new("app-missing", trigger.clone())
        .send(&handler)
        .await;
    assert_eq!(reply.status, 410);
    assert_eq!(reply.json["message"], "function not found: app-missing");

    let bare = Call::new("parallel", trigger).send(&handler).await;
    assert_eq!(bare.status, 206, "the bare function id is accepted too");

    let request = http::Request::post("http://localhost/api/inngest?fnId=app-parallel&stepId=step")
        .body(bytes::Bytes::from_static(b"{not json"))
        .expect("request");
    let reply = common::Reply::from(handler.handle(request).await);
    assert_eq!(reply.status, 400);
    assert!(
        reply.json["message"]
            .as_str()
            .expect("message")
            .starts_with("malformed request body")
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-inngest-req-version"), Some("2"));

    let mut latin1 = Call::new("app-parallel", event("t/e", json!({"name": "X"})))
        .body()
        .to_string()
        .into_bytes();
    let at = latin1.iter().position(|b| *b == b'X').expect("the name");
    latin1[at] = 0xC9; // 'É' in Latin-1: not UTF-8
    let request = http::Request::post("http://localhost/api/inngest?fnId=app-parallel&stepId=step")
        .body(bytes::Bytes::from(latin1))
        .expect("request");
    let reply = common::Reply::from(handler.handle(request).await);
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-inngest-no-retry"), Some("true"));
    let message = reply.json["message"].as_str().expect("message");
    assert!(
        message.starts_with("malformed request body: not UTF-8"),
        "{message}"
    );

    let request = http::Request::post("http://localhost/api/inngest")
        .body(bytes::Bytes::from_static(b"{}"))
        .expect("request");
    assert_eq!(handler.handle(request).await.status(), 400);

    let request = http::Request::delete("http://localhost/api/inngest")
        .body(bytes::Bytes::new())
        .expect("request");
    assert_eq!(handler.handle(request).await.status(), 405);
}

/// A fake Inngest API serving a run's state, as when it is too large to send (`use_api`):
/// `actions` as the memoized steps.
async fn state_api(expected_bearer: &'static str, actions: bytes::Bytes) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    let authorized = move |headers: &HeaderMap| {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected_bearer)
    };
    let app = axum::Router::new()
        .route(
            "/v0/runs/01JRUN/batch",
            get(move |headers: HeaderMap| async move {
                if !authorized(&headers) {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let events = json!([event("t/e", json!({"n": 20}))]);
                (StatusCode::OK, events.to_string())
            }),
        )
        .route(
            "/v0/runs/01JRUN/actions",
            get(move |headers: HeaderMap| async move {
                if !authorized(&headers) {
                    return (StatusCode::UNAUTHORIZED, bytes::Bytes::new());
                }
                (StatusCode::OK, actions)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn large_state_is_fetched_from_the_api_with_the_hashed_key() {
    const KEY: &str = "signkey-test-00ff";
    let hashed = inngest_sdk::signature::SigningKey::new(KEY).hashed();
    let bearer: &'static str = Box::leak(format!("Bearer {hashed}").into_boxed_str());
    let actions = json!({ h("s"): {"data": 22} }).to_string();
    let api = state_api(bearer, actions.into()).await;
    let f = function("big", |ctx| async move {
        let s: u32 = ctx.step.run("s", || async { Ok::<_, Error>(0) }).await?;
        let n = ctx.event.data["n"].as_u64().unwrap_or_default() as u32;
        Ok(json!(s + n))
    });
    let config = Config::new("app")
        .dev(None)
        .with_signing_key(KEY)
        .with_api_base_url(&api)
        .expect("url");
    let handler = ServeHandler::new(Client::new(config), (), vec![f]).expect("valid");
    let mut call = Call::new("app-big", Value::Null);
    call.event = Value::Null;
    let mut body = call.body();
    body["use_api"] = json!(true);
    body["ctx"]["use_api"] = json!(true);
    body["events"] = json!([]);
    body.as_object_mut().expect("object").remove("event");
    let request = http::Request::post("http://localhost/api/inngest?fnId=app-big&stepId=step")
        .body(bytes::Bytes::from(body.to_string()))
        .expect("request");
    let reply = common::Reply::from(handler.handle(request).await);
    assert_eq!(
        (reply.status, reply.json),
        (200, json!(42)),
        "state and event came from the API"
    );

    let wrong = Config::new("app")
        .dev(None)
        .with_signing_key("signkey-test-abcd")
        .with_api_base_url(&api)
        .expect("url");
    let f = function("big", |_| async move { Ok(json!(0)) });
    let handler = ServeHandler::new(Client::new(wrong), (), vec![f]).expect("valid");
    let request = http::Request::post("http://localhost/api/inngest?fnId=app-big&stepId=step")
        .body(bytes::Bytes::from(body.to_string()))
        .expect("request");
    let reply = common::Reply::from(handler.handle(request).await);
    assert_eq!(
        reply.status, 500,
        "an API failure is retriable: {}",
        reply.raw
    );
}

#[tokio::test]
async fn fetched_state_that_is_not_json_or_not_utf8_fails_retriably_naming_it() {
    const KEY: &str = "signkey-test-00ff";
    let hashed = inngest_sdk::signature::SigningKey::new(KEY).hashed();
    let bearer: &'static str = Box::leak(format!("Bearer {hashed}").into_boxed_str());
    let bad: [(&[u8], &str); 2] = [
        (b"{\"steps\": [", "malformed actions"),
        (b"{\"a\": \"caf\xe9\"}", "malformed actions: not UTF-8"),
    ];
    for (actions, why) in bad {
        let api = state_api(bearer, bytes::Bytes::from_static(actions)).await;
        let config = Config::new("app")
            .dev(None)
            .with_signing_key(KEY)
            .with_api_base_url(&api)
            .expect("url");
        let f = function("big", |_| async move { Ok(json!(0)) });
        let handler = ServeHandler::new(Client::new(config), (), vec![f]).expect("valid");
        let mut body = Call::new("app-big", Value::Null).body();
        body["use_api"] = json!(true);
        let request = http::Request::post("http://localhost/api/inngest?fnId=app-big&stepId=step")
            .body(bytes::Bytes::from(body.to_string()))
            .expect("request");
        let reply = common::Reply::from(handler.handle(request).await);
        assert_eq!(reply.status, 500, "retriable: {}", reply.raw);
        assert!(reply.raw.contains(why), "{why}: {}", reply.raw);
        assert!(reply.header("x-inngest-no-retry").is_none());
    }
}
