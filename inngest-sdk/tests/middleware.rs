//! Middleware: hook order across client and function middleware, transforms, failing hooks,
//! memoized replays, event sends, and the testing executor running the same hooks.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Call, event};
use inngest_sdk::function::RunInfo;
use inngest_sdk::middleware::{
    Middleware, RunEnd, RunHooks, RunInput, StepInfo, StepOutcome, async_trait,
};
use inngest_sdk::step::hash_step_id;
use inngest_sdk::testing::{EventApi, TestEngine};
use inngest_sdk::{
    Client, Config, Ctx, Error, Event, Function, FunctionOpts, Retry, ServeHandler, Trigger,
};
use serde_json::{Value, json};

type Log = Arc<Mutex<Vec<String>>>;

/// Writes `<name>:<hook> [step]` for every hook it sees.
struct Recorder {
    name: &'static str,
    log: Log,
    transforms: bool,
}

struct RecorderHooks {
    name: &'static str,
    log: Log,
}

impl RecorderHooks {
    fn push(&self, line: String) {
        self.log
            .lock()
            .expect("log")
            .push(format!("{}:{line}", self.name));
    }
}

fn step_label(step: &StepInfo) -> String {
    let memo = if step.memoized { " memoized" } else { "" };
    format!("{} {:?}{memo}", step.id, step.kind)
}

#[async_trait]
impl Middleware for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn transforms(&self) -> bool {
        self.transforms
    }

    fn on_run(&self, run: &RunInfo) -> Box<dyn RunHooks> {
        let hooks = RecorderHooks {
            name: self.name,
            log: self.log.clone(),
        };
        hooks.push(format!("on_run attempt={}", run.attempt));
        Box::new(hooks)
    }

    async fn transform_send(&self, events: &mut Vec<Value>) -> Result<(), Error> {
        for event in events.iter_mut() {
            let seen = event["data"]["seen_by"].as_str().unwrap_or("").to_owned();
            event["data"]["seen_by"] = json!(format!("{seen}{}", self.name));
        }
        Ok(())
    }

    async fn after_send(&self, result: Result<&[String], &inngest_sdk::SendError>) {
        let line = format!("{}:after_send ok={}", self.name, result.is_ok());
        self.log.lock().expect("log").push(line);
    }
}

#[async_trait]
impl RunHooks for RecorderHooks {
    async fn transform_input(&mut self, _input: &mut RunInput) -> Result<(), Error> {
        self.push("transform_input".into());
        Ok(())
    }
    async fn before_memoization(&mut self) -> Result<(), Error> {
        self.push("before_memoization".into());
        Ok(())
    }
    async fn transform_memoized(
        &mut self,
        step: &StepInfo,
        _data: &mut Value,
    ) -> Result<(), Error> {
        self.push(format!("transform_memoized {}", step_label(step)));
        Ok(())
    }
    async fn after_memoization(&mut self) -> Result<(), Error> {
        self.push("after_memoization".into());
        Ok(())
    }
    async fn before_execution(&mut self) -> Result<(), Error> {
        self.push("before_execution".into());
        Ok(())
    }
    async fn transform_step_input(
        &mut self,
        step: &StepInfo,
        _input: &mut Value,
    ) -> Result<(), Error> {
        self.push(format!("transform_step_input {}", step_label(step)));
        Ok(())
    }
    async fn before_step(&mut self, step: &StepInfo) -> Result<(), Error> {
        self.push(format!("before_step {}", step_label(step)));
        Ok(())
    }
    async fn after_step(
        &mut self,
        step: &StepInfo,
        outcome: &StepOutcome<'_>,
    ) -> Result<(), Error> {
        self.push(format!("after_step {} {:?}", step.id, outcome.op));
        Ok(())
    }
    async fn transform_step_output(
        &mut self,
        step: &StepInfo,
        _output: &mut Value,
    ) -> Result<(), Error> {
        self.push(format!("transform_step_output {}", step.id));
        Ok(())
    }
    async fn after_execution(&mut self) -> Result<(), Error> {
        self.push("after_execution".into());
        Ok(())
    }
    async fn transform_output(&mut self, output: &mut Result<Value, Error>) -> Result<(), Error> {
        self.push(format!("transform_output ok={}", output.is_ok()));
        Ok(())
    }
    async fn run_end(&mut self, end: &RunEnd<'_>) {
        self.push(format!("run_end {}", end.as_str()));
    }
}

fn recorder(name: &'static str, log: &Log) -> Recorder {
    Recorder {
        name,
        log: log.clone(),
        transforms: true,
    }
}

/// A recorder that declares it changes no data.
fn observer(name: &'static str, log: &Log) -> Recorder {
    Recorder {
        transforms: false,
        ..recorder(name, log)
    }
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().expect("log"))
}

fn client() -> Client {
    Client::new(Config::new("app").dev(None))
}

/// `one` runs a step, `two` another; returns both results.
fn two_steps(ran: Arc<AtomicU32>) -> Function<()> {
    Function::new(
        FunctionOpts::new("two-steps").with_trigger(Trigger::event("test/go")),
        move |ctx: Ctx<Value, ()>| {
            let ran = ran.clone();
            async move {
                let r1 = ran.clone();
                let one: String = ctx
                    .step
                    .run("one", || async move {
                        r1.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Error>("first".to_owned())
                    })
                    .await?;
                let two: String = ctx
                    .step
                    .run("two", || async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Error>("second".to_owned())
                    })
                    .await?;
                Ok(json!({ "one": one, "two": two }))
            }
        },
    )
}

#[tokio::test]
async fn hooks_run_in_onion_order_across_client_and_function_middleware() {
    let log = Log::default();
    let ran = Arc::new(AtomicU32::new(0));
    let function = two_steps(ran.clone())
        .with_middleware(recorder("F1", &log))
        .with_middleware(recorder("F2", &log));
    let client = client().with_middleware(recorder("C", &log));
    let handler = ServeHandler::new(client, (), [function]).expect("valid");

    let reply = Call::new("app-two-steps", event("test/go", json!({})))
        .send(&handler)
        .await;
    assert_eq!(reply.status, 206);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    let expected = [
        "C:on_run attempt=0",
        "F1:on_run attempt=0",
        "F2:on_run attempt=0",
        "C:transform_input",
        "F1:transform_input",
        "F2:transform_input",
        "C:before_memoization",
        "F1:before_memoization",
        "F2:before_memoization",
        "F2:after_memoization",
        "F1:after_memoization",
        "C:after_memoization",
        "C:before_execution",
        "F1:before_execution",
        "F2:before_execution",
        "C:before_step one Run",
        "F1:before_step one Run",
        "F2:before_step one Run",
        "F2:after_step one StepRun",
        "F1:after_step one StepRun",
        "C:after_step one StepRun",
        "F2:transform_step_output one",
        "F1:transform_step_output one",
        "C:transform_step_output one",
        "F2:after_execution",
        "F1:after_execution",
        "C:after_execution",
        "F2:run_end steps",
        "F1:run_end steps",
        "C:run_end steps",
    ];
    assert_eq!(taken(&log), expected);
}

#[tokio::test]
async fn memoized_replays_show_steps_as_memoized() {
    let log = Log::default();
    let ran = Arc::new(AtomicU32::new(0));
    let function = two_steps(ran.clone()).with_middleware(recorder("F", &log));
    let handler = ServeHandler::new(client(), (), [function]).expect("valid");

    let reply = Call::new("app-two-steps", event("test/go", json!({})))
        .memo(&hash_step_id("one", 0), json!({ "data": "first" }))
        .memo(&hash_step_id("two", 0), json!({ "data": "second" }))
        .send(&handler)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.json, json!({ "one": "first", "two": "second" }));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "memoized steps do not run again"
    );
    let expected = [
        "F:on_run attempt=0",
        "F:transform_input",
        "F:before_memoization",
        "F:transform_memoized one Run memoized",
        "F:transform_memoized two Run memoized",
        "F:after_memoization",
        "F:before_execution",
        "F:after_execution",
        "F:transform_output ok=true",
        "F:run_end completed",
    ];
    assert_eq!(taken(&log), expected);

    // Replaying `one` only: `two` is new and runs, after memoization ends.
    let reply = Call::new("app-two-steps", event("test/go", json!({})))
        .memo(&hash_step_id("one", 0), json!({ "data": "first" }))
        .send(&handler)
        .await;
    assert_eq!(reply.status, 206);
    let lines = taken(&log);
    let position = |line: &str| {
        lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line} missing from {lines:#?}"))
    };
    assert!(position("F:transform_memoized one Run memoized") < position("F:after_memoization"));
    assert!(position("F:after_memoization") < position("F:before_step two Run"));
    assert!(!lines.iter().any(|l| l.contains("before_step one")));
}

/// Wraps step results on the way out and unwraps them on the way in; renames the buyer in the
/// input; wraps the function's output; shortens sleeps; makes errors final.
struct Wrapper;
struct WrapperHooks;

impl Middleware for Wrapper {
    fn on_run(&self, _run: &RunInfo) -> Box<dyn RunHooks> {
        Box::new(WrapperHooks)
    }
}

#[async_trait]
impl RunHooks for WrapperHooks {
    async fn transform_input(&mut self, input: &mut RunInput) -> Result<(), Error> {
        input.event["data"]["name"] = json!("Ada (checked)");
        for event in &mut input.events {
            event["data"]["name"] = json!("Ada (checked)");
        }
        Ok(())
    }
    async fn transform_memoized(
        &mut self,
        _step: &StepInfo,
        data: &mut Value,
    ) -> Result<(), Error> {
        *data = data["wrapped"].take();
        Ok(())
    }
    async fn transform_step_input(
        &mut self,
        _step: &StepInfo,
        input: &mut Value,
    ) -> Result<(), Error> {
        input["duration"] = json!("1s");
        Ok(())
    }
    async fn transform_step_output(
        &mut self,
        _step: &StepInfo,
        output: &mut Value,
    ) -> Result<(), Error> {
        *output = json!({ "wrapped": output.take() });
        Ok(())
    }
    async fn transform_output(&mut self, output: &mut Result<Value, Error>) -> Result<(), Error> {
        match output {
            Ok(value) => *value = json!({ "output": value.take() }),
            Err(err) => {
                let message = format!("wrapped: {}", err.message());
                *output = Err(Error::non_retriable(message).with_name("Wrapped"));
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn transforms_change_input_step_input_results_and_output() {
    let greet = Function::new(
        FunctionOpts::new("greet").with_trigger(Trigger::event("test/greet")),
        |ctx: Ctx<Value, ()>| async move {
            let name = ctx.event.data["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let greeting: String = ctx
                .step
                .run(
                    "greet",
                    || async move { Ok::<_, Error>(format!("hi {name}")) },
                )
                .await?;
            ctx.step.sleep("pause", Duration::from_secs(3600)).await;
            Ok(greeting)
        },
    )
    .with_middleware(Wrapper);
    let broken = Function::new(
        FunctionOpts::new("broken").with_trigger(Trigger::event("test/broken")),
        |_ctx: Ctx<Value, ()>| async move { Err::<(), _>(Error::new("database down")) },
    )
    .with_middleware(Wrapper);
    let handler = ServeHandler::new(client(), (), [greet, broken]).expect("valid");
    let engine = TestEngine::new(handler);

    let run = engine
        .run("greet", Event::new("test/greet", json!({ "name": "Ada" })))
        .await;
    assert_eq!(
        run.output::<Value>(),
        json!({ "output": "hi Ada (checked)" })
    );
    assert_eq!(
        run.state[&hash_step_id("greet", 0)],
        json!({ "data": { "wrapped": "hi Ada (checked)" } }),
        "Inngest stores the transformed result; the code read it back unwrapped"
    );
    assert_eq!(run.sleeps(), [("pause".to_owned(), "1s".to_owned())]);

    let run = engine
        .run("broken", Event::new("test/broken", json!({})))
        .with_max_attempts(3)
        .await;
    assert_eq!(run.error().name, "Wrapped");
    assert_eq!(run.error().message, "wrapped: database down");
    assert_eq!(run.requests.len(), 1, "the transformed error is final");
}

/// Fails one hook with a given error.
struct Failing {
    hook: &'static str,
    retry: Retry,
}
struct FailingHooks {
    hook: &'static str,
    retry: Retry,
}

impl Middleware for Failing {
    fn on_run(&self, _run: &RunInfo) -> Box<dyn RunHooks> {
        Box::new(FailingHooks {
            hook: self.hook,
            retry: self.retry.clone(),
        })
    }
}

impl FailingHooks {
    fn check(&self, hook: &str) -> Result<(), Error> {
        if self.hook == hook {
            return Err(
                Error::new(format!("audit log down in {hook}")).with_retry(self.retry.clone())
            );
        }
        Ok(())
    }
}

#[async_trait]
impl RunHooks for FailingHooks {
    async fn transform_input(&mut self, _input: &mut RunInput) -> Result<(), Error> {
        self.check("transform_input")
    }
    async fn before_step(&mut self, _step: &StepInfo) -> Result<(), Error> {
        self.check("before_step")
    }
    async fn transform_step_output(
        &mut self,
        _step: &StepInfo,
        _output: &mut Value,
    ) -> Result<(), Error> {
        self.check("transform_step_output")
    }
}

#[tokio::test]
async fn a_failing_hook_fails_the_run_with_its_error() {
    for (hook, retry, status, step_runs) in [
        ("transform_input", Retry::Default, 500, 0),
        ("before_step", Retry::Never, 400, 0),
        ("transform_step_output", Retry::Default, 500, 1),
    ] {
        let log = Log::default();
        let ran = Arc::new(AtomicU32::new(0));
        let function = two_steps(ran.clone())
            .with_middleware(recorder("R", &log))
            .with_middleware(Failing { hook, retry });
        let handler = ServeHandler::new(client(), (), [function]).expect("valid");
        let reply = Call::new("app-two-steps", event("test/go", json!({})))
            .send(&handler)
            .await;
        assert_eq!(reply.status, status, "{hook}: {}", reply.raw);
        assert_eq!(reply.json["message"], format!("audit log down in {hook}"));
        assert_eq!(
            reply.header("x-inngest-no-retry"),
            Some(if status == 400 { "true" } else { "false" })
        );
        assert_eq!(ran.load(Ordering::SeqCst), step_runs, "{hook}");
        let lines = taken(&log);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("R:run_end failed"),
            "{hook}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("after_execution") || l.contains("transform_output")),
            "{hook}: later hooks are skipped: {lines:#?}"
        );
    }
}

#[tokio::test]
async fn the_testing_executor_runs_the_same_middleware() {
    let log = Log::default();
    let ran = Arc::new(AtomicU32::new(0));
    let client = client().with_middleware(recorder("C", &log));
    let handler = ServeHandler::new(client, (), [two_steps(ran.clone())]).expect("valid");
    let run = TestEngine::new(handler)
        .run("two-steps", Event::new("test/go", json!({})))
        .await;
    assert_eq!(
        run.output::<Value>(),
        json!({ "one": "first", "two": "second" })
    );
    let lines = taken(&log);
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("on_run"),
        run.requests.len(),
        "one set of hooks per request"
    );
    assert_eq!(count("before_step one"), 1);
    assert_eq!(count("before_step two"), 1);
    assert_eq!(count("transform_memoized one Run memoized"), 2);
    assert_eq!(count("transform_memoized two Run memoized"), 1);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("C:run_end completed")
    );
}

#[tokio::test]
async fn sends_go_through_function_then_client_send_hooks() {
    let api = EventApi::start().await.expect("fake event API");
    let log = Log::default();
    let config = Config::new("app")
        .dev(None)
        .with_event_api_base_url(&api.url())
        .expect("url");
    let client = Client::new(config).with_middleware(recorder("C", &log));
    client
        .send(&Event::new("test/direct", json!({})))
        .await
        .expect("sent");
    let notify = Function::new(
        FunctionOpts::new("notify").with_trigger(Trigger::event("test/notify")),
        |ctx: Ctx<Value, ()>| async move {
            ctx.step
                .send_event("tell", vec![Event::new("test/told", json!({}))])
                .await?;
            Ok(())
        },
    )
    .with_middleware(recorder("F", &log));
    let handler = ServeHandler::new(client, (), [notify]).expect("valid");
    let run = TestEngine::new(handler)
        .with_event_api(&api)
        .run("notify", Event::new("test/notify", json!({})))
        .await;
    assert!(run.result.is_ok(), "{:?}", run.result);
    let seen: Vec<(String, Value)> = api
        .events()
        .into_iter()
        .map(|e| (e.name, e.data["seen_by"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("test/direct".to_owned(), json!("C")),
            ("test/told".to_owned(), json!("FC")),
        ]
    );
    let sends: Vec<String> = taken(&log)
        .into_iter()
        .filter(|l| l.contains("after_send"))
        .collect();
    assert_eq!(
        sends,
        [
            "C:after_send ok=true",
            "C:after_send ok=true",
            "F:after_send ok=true"
        ]
    );
}

/// Panics in `transform_input` or in `before_step`.
struct Panicking(&'static str);
struct PanickingHooks(&'static str);

impl Middleware for Panicking {
    fn on_run(&self, _run: &RunInfo) -> Box<dyn RunHooks> {
        Box::new(PanickingHooks(self.0))
    }
}

#[async_trait]
impl RunHooks for PanickingHooks {
    async fn transform_input(&mut self, _input: &mut RunInput) -> Result<(), Error> {
        assert_ne!(self.0, "transform_input", "a bug in a middleware");
        Ok(())
    }
    async fn before_step(&mut self, _step: &StepInfo) -> Result<(), Error> {
        assert_ne!(self.0, "before_step", "a bug in a middleware");
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_hook_fails_the_request_as_a_panicking_function_does() {
    for hook in ["transform_input", "before_step"] {
        let ran = Arc::new(AtomicU32::new(0));
        let function = two_steps(ran.clone()).with_middleware(Panicking(hook));
        let handler = ServeHandler::new(client(), (), [function]).expect("valid");
        let reply = Call::new("app-two-steps", event("test/go", json!({})))
            .send(&handler)
            .await;
        assert_eq!(reply.status, 500, "{hook}: {}", reply.raw);
        assert_eq!(reply.json["name"], "Panic", "{hook}");
        assert_eq!(ran.load(Ordering::SeqCst), 0, "{hook}");
    }
}

#[tokio::test]
async fn observers_alone_get_every_hook_but_the_transforms() {
    let api = EventApi::start().await.expect("fake event API");
    let log = Log::default();
    let ran = Arc::new(AtomicU32::new(0));
    let config = Config::new("app")
        .dev(None)
        .with_event_api_base_url(&api.url())
        .expect("url");
    let client = Client::new(config).with_middleware(observer("C", &log));
    let handler = ServeHandler::new(client.clone(), (), [two_steps(ran.clone())]).expect("valid");
    let run = TestEngine::new(handler)
        .run("two-steps", Event::new("test/go", json!({})))
        .await;
    assert_eq!(
        run.output::<Value>(),
        json!({ "one": "first", "two": "second" })
    );
    client
        .send(&Event::new("test/direct", json!({})))
        .await
        .expect("sent");
    assert_eq!(
        api.events()[0].data,
        json!({}),
        "transform_send was not called"
    );
    let lines = taken(&log);
    assert!(!lines.iter().any(|l| l.contains("transform")), "{lines:#?}");
    for hook in [
        "on_run",
        "before_memoization",
        "after_memoization",
        "before_step one",
        "after_step two",
        "after_execution",
        "run_end completed",
        "after_send ok=true",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(hook)),
            "{hook} missing from {lines:#?}"
        );
    }
}
