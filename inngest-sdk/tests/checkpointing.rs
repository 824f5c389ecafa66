//! Checkpointing through the testing executor: the steps of one call are sent to the
//! (fake) checkpoint API and the run goes on in the same call; a step Inngest schedules ends
//! the call; an API that cannot take the results gets them back in the 206, so the run still
//! completes. The wire form is compared with the TypeScript SDK in `checkpoint_differential.rs`.

#[path = "common/checkpoint_support.rs"]
mod checkpoint_support;

use std::time::Duration;

use inngest_sdk::step::hash_step_id;
use inngest_sdk::testing::{EventApi, TestEngine};
use inngest_sdk::{
    Checkpoint, Client, Config, Ctx, Error, Event, Function, FunctionOpts, ServeHandler, Trigger,
};
use serde_json::{Value, json};

const STEPS: u32 = 20;

fn counting(id: &str, checkpoint: Option<Checkpoint>, steps: u32) -> Function<()> {
    let opts = FunctionOpts::new(id);
    let opts = match checkpoint {
        Some(checkpoint) => opts.with_checkpoint(checkpoint),
        None => opts,
    };
    checkpoint_support::counting(opts, steps)
}

fn napping() -> Function<()> {
    let opts = FunctionOpts::new("napping")
        .with_trigger(Trigger::event("count/started"))
        .with_checkpoint(Checkpoint::safe());
    Function::new(opts, |ctx: Ctx<Value, ()>| async move {
        let before: u32 = ctx
            .step
            .run("before", || async { Ok::<_, Error>(1) })
            .await?;
        ctx.step.sleep("nap", Duration::from_secs(60)).await;
        let after: u32 = ctx
            .step
            .run("after", || async { Ok::<_, Error>(2) })
            .await?;
        Ok(json!({ "before": before, "after": after }))
    })
}

/// An executor whose client checkpoints into `api` (and sends events there).
fn engine(functions: Vec<Function<()>>, api: Option<&EventApi>) -> TestEngine<()> {
    let mut config = Config::new("app").dev(None);
    if let Some(api) = api {
        config = config
            .with_api_base_url(&api.url())
            .and_then(|c| c.with_event_api_base_url(&api.url()))
            .expect("a URL");
    }
    let handler = ServeHandler::new(Client::new(config), (), functions).expect("valid");
    match api {
        Some(api) => TestEngine::new(handler).with_event_api(api),
        None => TestEngine::new(handler),
    }
}

fn started() -> Event<Value> {
    Event::new("count/started", json!({}))
}

fn total(steps: u32) -> Value {
    json!({ "total": steps * (steps + 1) / 2 })
}

fn ops(run: &inngest_sdk::testing::RunOutcome) -> Vec<(String, String)> {
    run.steps
        .iter()
        .map(|s| (s.op.clone(), s.name.clone()))
        .collect()
}

#[tokio::test]
async fn with_the_performant_preset_twenty_steps_complete_in_one_call() {
    let api = EventApi::start().await.expect("a fake API");
    let function = counting("count", Some(Checkpoint::performant()), STEPS);
    let run = engine(vec![function], Some(&api))
        .run("count", started())
        .await;
    assert_eq!(run.result, Ok(total(STEPS)));
    assert_eq!(run.requests.len(), 1, "one call: {:?}", run.requests);
    // Up to 1000 results per send: none was sent, all came back with RunComplete.
    assert!(api.checkpoints().is_empty());
    assert_eq!(run.requests[0].status, 206);
    let answered = run.requests[0].body.as_array().expect("ops");
    assert_eq!(answered.len(), STEPS as usize + 1);
    assert_eq!(answered[STEPS as usize]["op"], "RunComplete");
    assert_eq!(answered[STEPS as usize]["id"], hash_step_id("complete", 0));
    // Every step ran once and is memoized as Inngest would store it.
    assert_eq!(run.steps.len(), STEPS as usize);
    assert_eq!(
        run.state[&hash_step_id("step-20", 0)],
        json!({ "data": 210 })
    );
}

#[tokio::test]
async fn with_the_safe_preset_each_step_is_checkpointed_before_the_next_runs() {
    let api = EventApi::start().await.expect("a fake API");
    let function = counting("count", Some(Checkpoint::safe()), 5);
    let run = engine(vec![function], Some(&api))
        .run("count", started())
        .await;
    assert_eq!(run.result, Ok(total(5)));
    assert_eq!(run.requests.len(), 1);
    let checkpoints = api.checkpoints();
    let sent: Vec<(String, Value)> = checkpoints
        .iter()
        .flat_map(|c| c.steps.iter())
        .map(|op| {
            (
                op["name"].as_str().unwrap_or_default().to_owned(),
                op["data"].clone(),
            )
        })
        .collect();
    let want: Vec<(String, Value)> = (1..=5)
        .map(|n| (format!("step-{n}"), json!(n * (n + 1) / 2)))
        .collect();
    assert_eq!(
        sent, want,
        "one call per step, in order, each result as returned"
    );
    assert!(checkpoints.iter().all(|c| c.steps.len() == 1));
    // The checkpoint names the run and queue item of the call, with the signing key's bearer.
    let call = api
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/v1/checkpoint/"))
        .expect("a checkpoint call");
    assert_eq!(
        call.path,
        format!("/v1/checkpoint/{}/async", checkpoints[0].run_id)
    );
    assert_eq!(call.body["qi_id"], format!("qi-{}", checkpoints[0].run_id));
    assert_eq!(call.body["fn_id"], "app-count");
    assert_eq!(
        run.requests[0].body,
        json!([{
            "op": "RunComplete", "id": hash_step_id("complete", 0), "name": "complete",
            "displayName": "complete", "data": total(5),
        }])
    );
}

#[tokio::test]
async fn a_sleep_ends_the_call_after_the_steps_before_it_are_checkpointed() {
    let api = EventApi::start().await.expect("a fake API");
    let run = engine(vec![napping()], Some(&api))
        .run("napping", started())
        .await;
    assert_eq!(run.result, Ok(json!({ "before": 1, "after": 2 })));
    let step = |op: &str, name: &str| (op.to_owned(), name.to_owned());
    assert_eq!(
        ops(&run),
        [
            step("StepRun", "before"),
            step("Sleep", "nap"),
            step("StepRun", "after")
        ]
    );
    assert_eq!(run.requests.len(), 2, "the sleep is Inngest's to schedule");
    assert_eq!(run.requests[0].body[0]["op"], "Sleep");
    assert_eq!(api.checkpoints().len(), 2);
}

#[tokio::test]
async fn a_checkpoint_api_that_keeps_failing_gets_the_results_in_the_206_and_the_run_completes() {
    let api = EventApi::start().await.expect("a fake API");
    // The first result is refused five times (every try); the later ones are taken.
    api.answer_next(5, 503, json!({ "error": "busy" }));
    let function = counting("count", Some(Checkpoint::safe()), 3);
    let run = engine(vec![function], Some(&api))
        .run("count", started())
        .await;
    assert_eq!(run.result, Ok(total(3)));
    // The first call answered its unsent result and stopped; the next went on from there.
    assert_eq!(run.requests.len(), 2, "{:?}", run.requests);
    assert_eq!(run.requests[0].body[0]["op"], "StepRun");
    assert_eq!(run.requests[0].body[0]["name"], "step-1");
    assert_eq!(run.requests[0].body.as_array().map(Vec::len), Some(1));
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["step-1", "step-2", "step-3"], "each step ran once");
    let tries = api
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/checkpoint/"))
        .count();
    assert_eq!(tries, 5 + 2);
}

#[tokio::test]
async fn without_a_queue_item_or_with_checkpointing_off_each_step_takes_a_call() {
    // No checkpoint API: the executor names no queue item, so the function cannot checkpoint.
    let function = counting("count", Some(Checkpoint::performant()), 3);
    let run = engine(vec![function], None).run("count", started()).await;
    assert_eq!(run.result, Ok(total(3)));
    assert_eq!(run.requests.len(), 4);

    // A function opted out of the client's checkpointing.
    let api = EventApi::start().await.expect("a fake API");
    let config = Config::new("app")
        .dev(None)
        .with_api_base_url(&api.url())
        .expect("a URL")
        .with_checkpoint(Checkpoint::performant());
    let opts = FunctionOpts::new("plain")
        .with_trigger(Trigger::event("count/started"))
        .without_checkpoint();
    let plain = Function::new(opts, |ctx: Ctx<Value, ()>| async move {
        let one: u32 = ctx.step.run("one", || async { Ok::<_, Error>(1) }).await?;
        Ok(json!(one))
    });
    let handler = ServeHandler::new(Client::new(config), (), [plain]).expect("valid");
    let run = TestEngine::new(handler)
        .with_event_api(&api)
        .run("plain", started())
        .await;
    assert_eq!(run.result, Ok(json!(1)));
    assert_eq!(run.requests.len(), 2);
    assert!(api.checkpoints().is_empty());
}
