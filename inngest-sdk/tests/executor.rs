//! The testing executor runs functions end to end through the real serve handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use inngest_sdk::function::{Backoff, Cancel};
use inngest_sdk::testing::{EventApi, TestEngine};
use inngest_sdk::{
    Client, Config, Ctx, Error, Event, Function, FunctionOpts, FunctionRef, Invocation,
    ServeHandler, Trigger, WaitForEvent,
};
use serde_json::{Value, json};

fn engine(functions: Vec<Function<()>>, event_api: Option<&EventApi>) -> TestEngine<()> {
    let mut config = Config::new("app").dev(None);
    if let Some(api) = event_api {
        config = config.with_event_api_base_url(&api.url()).expect("url");
    }
    let engine =
        TestEngine::new(ServeHandler::new(Client::new(config), (), functions).expect("valid"));
    match event_api {
        Some(api) => engine.with_event_api(api),
        None => engine,
    }
}

fn onboarding() -> Function<()> {
    Function::new(
        FunctionOpts::new("onboard").with_trigger(Trigger::event("user/signed.up")),
        |ctx: Ctx<Value, ()>| async move {
            let user = ctx.event.data["user"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let u = user.clone();
            ctx.step
                .run(
                    "welcome",
                    || async move { Ok::<_, Error>(format!("hi {u}")) },
                )
                .await?;
            let connected = ctx
                .step
                .wait_for_event::<Value>(
                    "connected",
                    WaitForEvent::new("user/connected", Duration::from_secs(48 * 3600))
                        .matching("data.user"),
                )
                .await?;
            if connected.is_none() {
                ctx.step
                    .run("reminder", || async { Ok::<_, Error>("sent".to_owned()) })
                    .await?;
                ctx.step.sleep("cool-down", Duration::from_secs(3600)).await;
            }
            Ok(json!({ "connected": connected.is_some() }))
        },
    )
}

#[tokio::test]
async fn a_delivered_event_resumes_the_wait() {
    let engine = engine(vec![onboarding()], None);
    let run = engine
        .run(
            "onboard",
            Event::new("user/signed.up", json!({"user": "u1"})),
        )
        .with_incoming(Event::new(
            "user/connected",
            json!({"user": "someone-else"}),
        ))
        .with_incoming(Event::new("user/connected", json!({"user": "u1"})))
        .await;
    assert_eq!(run.output::<Value>(), json!({"connected": true}));
    assert_eq!(run.times_ran("welcome"), 1);
    assert_eq!(run.times_ran("reminder"), 0);
    let wait = &run.ops("WaitForEvent")[0];
    assert_eq!(
        wait.opts.as_ref().expect("opts")["if"],
        "event.data.user == async.data.user"
    );
}

#[tokio::test]
async fn a_wait_with_no_matching_event_times_out() {
    let engine = engine(vec![onboarding()], None);
    let run = engine
        .run(
            "onboard",
            Event::new("user/signed.up", json!({"user": "u1"})),
        )
        .with_incoming(Event::new("user/connected", json!({"user": "u2"})))
        .await;
    assert_eq!(run.output::<Value>(), json!({"connected": false}));
    assert_eq!(run.times_ran("reminder"), 1);
    assert_eq!(
        run.sleeps(),
        vec![("cool-down".to_owned(), "1h".to_owned())]
    );
}

#[tokio::test]
async fn step_errors_are_retried_per_the_retry_config() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let flaky = Function::new(
        FunctionOpts::new("flaky")
            .with_trigger(Trigger::event("t/e"))
            .with_retries(2),
        move |ctx: Ctx<Value, ()>| {
            let counter = counter.clone();
            async move {
                let n: u32 = ctx
                    .step
                    .run("charge", || async move {
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        if n < 3 {
                            Err(Error::new(format!("attempt {n} failed")))
                        } else {
                            Ok(n)
                        }
                    })
                    .await?;
                Ok(n)
            }
        },
    );
    let run = engine(vec![flaky], None)
        .run("flaky", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.output::<u32>(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let errors: Vec<u32> = run.ops("StepError").iter().map(|s| s.attempt).collect();
    assert_eq!(errors, vec![0, 1]);
}

#[tokio::test]
async fn a_step_that_always_fails_ends_the_run_after_its_attempts() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let broken = Function::new(
        FunctionOpts::new("broken")
            .with_trigger(Trigger::event("t/e"))
            .with_retries(1),
        move |ctx: Ctx<Value, ()>| {
            let counter = counter.clone();
            async move {
                ctx.step
                    .run("charge", || async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Err::<(), _>(Error::new("card declined"))
                    })
                    .await?;
                Ok(())
            }
        },
    );
    let run = engine(vec![broken], None)
        .run("broken", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.error().message, "card declined");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one try plus one retry");
    assert_eq!(run.ops("StepFailed").len(), 1);
    assert_eq!(run.requests.last().map(|r| r.status), Some(400));
}

#[tokio::test]
async fn function_errors_are_retried_then_reported() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let failing = Function::new(
        FunctionOpts::new("failing")
            .with_trigger(Trigger::event("t/e"))
            .with_retries(3),
        move |_: Ctx<Value, ()>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::new("database down"))
            }
        },
    );
    let fatal = Function::new(
        FunctionOpts::new("fatal")
            .with_trigger(Trigger::event("t/e"))
            .with_retries(3),
        |_: Ctx<Value, ()>| async move { Err::<(), _>(Error::non_retriable("bad input")) },
    );
    let engine = engine(vec![failing, fatal], None);
    let run = engine.run("failing", Event::new("t/e", json!({}))).await;
    assert_eq!(run.error().message, "database down");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let run = engine.run("fatal", Event::new("t/e", json!({}))).await;
    assert_eq!(run.error().message, "bad input");
    assert_eq!(
        run.requests.len(),
        1,
        "a non-retriable error is not retried"
    );
}

#[tokio::test]
async fn a_backoff_spaces_the_retries_unless_the_error_names_a_time() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let opts = FunctionOpts::new("flaky")
        .with_trigger(Trigger::event("t/e"))
        .with_retries(4)
        .with_backoff(Backoff::exponential(
            Duration::from_secs(10),
            Duration::from_secs(25),
        ));
    assert_eq!(
        opts.retry_window(),
        Some(Duration::from_secs(10 + 20 + 25 + 25))
    );
    let flaky = Function::new(opts, move |ctx: Ctx<Value, ()>| {
        let counter = counter.clone();
        async move {
            ctx.step
                .run("charge", || async {
                    // The third attempt is told by the provider when to come back.
                    Err::<(), _>(match counter.fetch_add(1, Ordering::SeqCst) {
                        2 => Error::retry_after("rate limited", Duration::from_secs(7)),
                        _ => Error::new("provider down"),
                    })
                })
                .await?;
            Ok(())
        }
    });
    let run = engine(vec![flaky], None)
        .run("flaky", Event::new("t/e", json!({})))
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(run.retry_afters(), ["10", "20", "7", "25"]);
    assert_eq!(
        run.ops("StepFailed").len(),
        1,
        "the last attempt fails for good"
    );
}

#[tokio::test]
async fn a_backoff_spaces_retries_of_function_errors_too() {
    let failing = Function::new(
        FunctionOpts::new("failing")
            .with_trigger(Trigger::event("t/e"))
            .with_retries(2)
            .with_backoff(Backoff::exponential(
                Duration::from_secs(30),
                Duration::from_secs(3600),
            )),
        |_: Ctx<Value, ()>| async move { Err::<(), _>(Error::new("database down")) },
    );
    let run = engine(vec![failing], None)
        .run("failing", Event::new("t/e", json!({})))
        .await;
    assert_eq!(
        run.retry_afters(),
        ["30", "60"],
        "none after the last attempt"
    );
}

#[tokio::test]
async fn parallel_steps_run_as_planned_steps() {
    let fan_out = Function::new(
        FunctionOpts::new("fan-out").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move {
            let runs = (0..3u32).map(|i| {
                let step = ctx.step.clone();
                async move {
                    step.run(
                        &format!("part-{i}"),
                        move || async move { Ok::<_, Error>(i) },
                    )
                    .await
                }
            });
            let parts = futures::future::join_all(runs).await;
            let total: u32 = parts
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .sum();
            Ok(total)
        },
    );
    let run = engine(vec![fan_out], None)
        .run("fan-out", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.output::<u32>(), 3);
    assert_eq!(run.ops("StepPlanned").len(), 3);
    for i in 0..3 {
        assert_eq!(run.times_ran(&format!("part-{i}")), 1);
    }
}

#[tokio::test]
async fn invoke_runs_the_registered_function_or_a_given_result() {
    let double = Function::new(
        FunctionOpts::new("double").with_trigger(Trigger::event("math/double")),
        |ctx: Ctx<Value, ()>| async move {
            let n = ctx.event.data["n"].as_i64().unwrap_or_default();
            if n < 0 {
                return Err(Error::non_retriable("negative"));
            }
            Ok(n * 2)
        },
    );
    let caller = Function::new(
        FunctionOpts::new("caller").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move {
            let double: FunctionRef<Value, i64> = FunctionRef::new("app", "double");
            let n = ctx.event.data["n"].clone();
            let result = ctx
                .step
                .invoke("double", Invocation::new(&double, json!({ "n": n })))
                .await;
            Ok(match result {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "err": e.message }),
            })
        },
    );
    let engine = engine(vec![double, caller], None);
    let run = engine
        .run("caller", Event::new("t/e", json!({"n": 21})))
        .await;
    assert_eq!(run.output::<Value>(), json!({"ok": 42}));
    let run = engine
        .run("caller", Event::new("t/e", json!({"n": -1})))
        .await;
    assert_eq!(run.output::<Value>(), json!({"err": "negative"}));
    let run = engine
        .run("caller", Event::new("t/e", json!({"n": 1})))
        .with_invoke_result("app-double", Ok(json!(100)))
        .await;
    assert_eq!(run.output::<Value>(), json!({"ok": 100}));
}

/// A payload type that refuses any field it does not name.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Doubling {
    n: i64,
}

#[tokio::test]
async fn an_invoked_function_with_a_strict_payload_type_runs() {
    let double = Function::new(
        FunctionOpts::new("double").with_trigger(Trigger::event("math/double")),
        |ctx: Ctx<Doubling, ()>| async move { Ok(ctx.event.data.n * 2) },
    );
    let caller = Function::new(
        FunctionOpts::new("caller").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move {
            let double: FunctionRef<Value, i64> = FunctionRef::new("app", "double");
            let doubled = ctx
                .step
                .invoke("double", Invocation::new(&double, json!({ "n": 21 })))
                .await?;
            Ok(doubled)
        },
    );
    let run = engine(vec![double, caller], None)
        .run("caller", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.result, Ok(json!(42)));
}

#[tokio::test]
async fn sent_events_reach_the_event_api_once_per_run() {
    let api = EventApi::start().await.expect("fake event API");
    let notify = Function::new(
        FunctionOpts::new("notify").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move {
            let ids = ctx
                .step
                .send_event(
                    "announce",
                    vec![Event::new("order/paid", json!({"order": 7})).with_id("order-7-paid")],
                )
                .await?;
            ctx.step.sleep("pause", Duration::from_secs(5)).await;
            Ok(ids)
        },
    );
    let run = engine(vec![notify], Some(&api))
        .run("notify", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.output::<Vec<String>>(), vec!["order-7-paid".to_owned()]);
    let received = api.events();
    assert_eq!(
        received.len(),
        1,
        "memoized on the later requests, so sent once"
    );
    assert_eq!(received[0].name, "order/paid");
    assert_eq!(received[0].data, json!({"order": 7}));
    assert_eq!(run.sent_events, received, "the run collects what it sent");
}

#[tokio::test]
async fn an_event_api_outage_is_retried_inside_the_step() {
    let api = EventApi::start().await.expect("fake event API");
    api.fail_next(2);
    let notify = Function::new(
        FunctionOpts::new("notify").with_trigger(Trigger::event("t/e")),
        |ctx: Ctx<Value, ()>| async move {
            Ok(ctx
                .step
                .send_event("announce", vec![Event::new("x/y", json!({}))])
                .await?)
        },
    );
    let run = engine(vec![notify], Some(&api))
        .run("notify", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.output::<Vec<String>>().len(), 1);
    assert_eq!(api.batches().len(), 1);
}

#[tokio::test]
async fn a_run_that_panics_is_retried_and_reported() {
    let panicky = Function::new(
        FunctionOpts::new("panicky")
            .with_trigger(Trigger::event("t/e"))
            .with_retries(1),
        |_: Ctx<Value, ()>| async move {
            let empty: Vec<u32> = Vec::new();
            let Some(max) = empty.iter().copied().max() else {
                panic!("no maximum");
            };
            Ok(max)
        },
    );
    let run = engine(vec![panicky], None)
        .run("panicky", Event::new("t/e", json!({})))
        .await;
    assert_eq!(run.error().message, "no maximum");
    assert_eq!(run.requests.len(), 2);
}

#[tokio::test]
async fn an_on_failure_handler_is_served_as_its_own_function() {
    let failing = Function::new(
        FunctionOpts::new("charge").with_trigger(Trigger::event("t/e")),
        |_: Ctx<Value, ()>| async move { Err::<(), _>(Error::non_retriable("nope")) },
    )
    .on_failure(|ctx: Ctx<inngest_sdk::function::FunctionFailed<Value>, ()>| async move {
        Ok(json!({ "cleaned_up": ctx.event.data.function_id, "because": ctx.event.data.error.message }))
    });
    let engine = engine(vec![failing], None);
    let failed = Event::new(
        "inngest/function.failed",
        json!({
            "function_id": "app-charge",
            "run_id": "01RUN",
            "error": {"name": "Error", "message": "nope"},
            "event": {"name": "t/e", "data": {}},
        }),
    );
    let run = engine.run("charge-failure", failed).await;
    assert_eq!(
        run.output::<Value>(),
        json!({"cleaned_up": "app-charge", "because": "nope"})
    );
}

/// Reminds, waits an hour for feedback, reminds two days later and again a week later, unless
/// the order is cancelled within a day of the start.
fn reminders() -> Function<()> {
    Function::new(
        FunctionOpts::new("remind")
            .with_trigger(Trigger::event("order/placed"))
            .with_cancel(
                Cancel::on("order/cancelled")
                    .with_if("event.data.order == async.data.order")
                    .with_timeout(Duration::from_secs(24 * 3600)),
            ),
        |ctx: Ctx<Value, ()>| async move {
            let step = &ctx.step;
            step.run("first", || async { Ok::<_, Error>(1) }).await?;
            step.sleep("hour-later", Duration::from_secs(3600)).await;
            step.run("second", || async { Ok::<_, Error>(2) }).await?;
            let wait = WaitForEvent::new("order/feedback", Duration::from_secs(3600));
            step.wait_for_event::<Value>("feedback", wait).await?;
            step.sleep("two-days-later", Duration::from_secs(48 * 3600))
                .await;
            step.run("third", || async { Ok::<_, Error>(3) }).await?;
            step.sleep("a-week-later", Duration::from_secs(7 * 24 * 3600))
                .await;
            step.run("fourth", || async { Ok::<_, Error>(4) }).await?;
            Ok(json!("done"))
        },
    )
}

fn placed() -> Event<Value> {
    Event::new("order/placed", json!({"order": 7}))
}

fn cancelled(order: u32) -> Event<Value> {
    Event::new("order/cancelled", json!({"order": order})).with_id(format!("cancel-{order}"))
}

#[tokio::test]
async fn a_matching_event_cancels_a_sleeping_run_before_its_next_step() {
    let run = engine(vec![reminders()], None)
        .run("remind", placed())
        .with_incoming(cancelled(7))
        .await;
    assert!(run.is_cancelled());
    assert_eq!(run.error().name, "FunctionCancelled");
    let by = run.cancelled_by.as_ref().expect("cancelled by an event");
    assert_eq!(by.id.as_deref(), Some("cancel-7"));
    assert_eq!(run.times_ran("first"), 1, "steps before the sleep ran");
    assert_eq!(
        run.times_ran("second"),
        0,
        "nothing runs after the cancellation"
    );
    let last = run.steps.last().expect("ops");
    assert_eq!(
        (last.op.as_str(), last.name.as_str()),
        ("Sleep", "hour-later")
    );
}

#[tokio::test]
async fn an_event_the_condition_rejects_leaves_the_run_alone() {
    let run = engine(vec![reminders()], None)
        .run("remind", placed())
        .with_incoming(cancelled(8))
        .with_incoming(Event::new("order/refunded", json!({"order": 7})))
        .await;
    assert!(!run.is_cancelled());
    assert_eq!(run.output::<Value>(), json!("done"));
    assert_eq!(run.times_ran("fourth"), 1);
}

#[tokio::test]
async fn an_event_arriving_in_a_later_sleep_cancels_from_there() {
    let run = engine(vec![reminders()], None)
        .run("remind", placed())
        .with_incoming_during("two-days-later", cancelled(7))
        .await;
    assert!(run.is_cancelled());
    assert_eq!(
        (run.times_ran("first"), run.times_ran("second")),
        (1, 1),
        "the event had not arrived during the first sleep"
    );
    assert_eq!(run.times_ran("third"), 0);
}

#[tokio::test]
async fn an_event_arriving_while_the_run_waits_cancels_it() {
    let run = engine(vec![reminders()], None)
        .run("remind", placed())
        .with_incoming_during("feedback", cancelled(7))
        .await;
    assert!(run.is_cancelled());
    assert_eq!(run.steps.last().expect("ops").op, "WaitForEvent");
    assert_eq!(run.times_ran("third"), 0);
}

#[tokio::test]
async fn a_cancellation_is_ignored_after_its_timeout() {
    // The last sleep begins 50 hours into the run, past the 24-hour cancellation timeout.
    let run = engine(vec![reminders()], None)
        .run("remind", placed())
        .with_incoming_during("a-week-later", cancelled(7))
        .await;
    assert!(!run.is_cancelled());
    assert_eq!(run.output::<Value>(), json!("done"));
}

const KEY: &str = "signkey-test-6f7665722d687474702d6b6579";

/// `functions` behind the axum adapter on a free loopback port, in cloud mode with `KEY`.
async fn served(functions: Vec<Function<()>>) -> String {
    let config = Config::new("app").cloud().with_signing_key(KEY);
    let handler = ServeHandler::new(Client::new(config), (), functions).expect("valid");
    let router = axum::Router::new().route("/api/inngest", inngest_sdk::axum::serve(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/api/inngest")
}

#[tokio::test]
async fn over_http_the_engine_runs_a_served_function_with_signed_timed_requests() {
    let url = served(vec![onboarding()]).await;
    let config = Config::new("app").cloud().with_signing_key(KEY);
    let engine = TestEngine::new(
        ServeHandler::new(Client::new(config), (), vec![onboarding()]).expect("valid"),
    )
    .over_http(&url);
    let signed_up = Event::new("user/signed.up", json!({"user": "u1"}));
    assert_eq!(engine.triggered_by(&signed_up), vec!["onboard".to_owned()]);
    assert!(
        engine
            .triggered_by(&Event::new("user/connected", json!({})))
            .is_empty()
    );
    let run = engine.run("onboard", signed_up).await;
    assert_eq!(run.output::<Value>(), json!({"connected": false}));
    assert_eq!(run.times_ran("reminder"), 1);
    assert!(
        run.requests
            .iter()
            .all(|r| matches!(r.status, 200 | 206) && r.elapsed > Duration::ZERO),
        "{:?}",
        run.requests
    );

    // Without the key the endpoint refuses every request: the run fails, nothing ran.
    let unsigned = TestEngine::new(
        ServeHandler::new(
            Client::new(Config::new("app").cloud()),
            (),
            vec![onboarding()],
        )
        .expect("valid"),
    )
    .over_http(&url);
    let refused = unsigned
        .run(
            "onboard",
            Event::new("user/signed.up", json!({"user": "u2"})),
        )
        .await;
    assert!(refused.result.is_err());
    assert!(refused.requests.iter().all(|r| r.status == 401));
}

/// A function whose one step counts its side effects and fails the first `fail_first` times.
fn counted(effects: Arc<AtomicU32>, fail_first: u32) -> Function<()> {
    Function::new(
        FunctionOpts::new("counted")
            .with_trigger(Trigger::event("thing/happened"))
            .with_retries(3),
        move |ctx: Ctx<Value, ()>| {
            let effects = effects.clone();
            async move {
                let n = ctx
                    .step
                    .run("effect", || async {
                        let n = effects.fetch_add(1, Ordering::SeqCst) + 1;
                        if n <= fail_first {
                            return Err(Error::new("not yet"));
                        }
                        Ok::<_, Error>(n)
                    })
                    .await?;
                Ok(json!({ "effects": n }))
            }
        },
    )
}

#[tokio::test]
async fn a_lost_step_response_runs_the_step_again_on_the_next_attempt() {
    let effects = Arc::new(AtomicU32::new(0));
    let engine = engine(vec![counted(effects.clone(), 0)], None);
    let run = engine
        .run("counted", Event::new("thing/happened", json!({})))
        .losing_response_of("effect")
        .await;
    assert_eq!(run.output::<Value>(), json!({ "effects": 2 }));
    assert_eq!(effects.load(Ordering::SeqCst), 2);
    assert_eq!(run.times_ran("effect"), 2);
    let attempts: Vec<u32> = run.ops("StepRun").iter().map(|s| s.attempt).collect();
    assert_eq!(
        attempts,
        [0, 1],
        "the lost response counts as a failed attempt"
    );
}

#[tokio::test]
async fn a_lost_response_on_the_last_attempt_fails_the_run() {
    let effects = Arc::new(AtomicU32::new(0));
    let engine = engine(vec![counted(effects.clone(), 0)], None);
    let run = engine
        .run("counted", Event::new("thing/happened", json!({})))
        .with_max_attempts(1)
        .losing_response_of("effect")
        .await;
    assert_eq!(run.error().name, "ResponseLost");
    assert_eq!(effects.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_wait_the_given_pause_in_real_time() {
    let effects = Arc::new(AtomicU32::new(0));
    let engine = engine(vec![counted(effects.clone(), 2)], None);
    let started = std::time::Instant::now();
    let run = engine
        .run("counted", Event::new("thing/happened", json!({})))
        .with_retry_pause(Duration::from_millis(100))
        .await;
    assert_eq!(run.output::<Value>(), json!({ "effects": 3 }));
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// A live run waits in real time for the event a person's action sends, and shows each step
/// as it goes; without the event it times out once its patience is spent.
#[tokio::test]
async fn a_live_run_receives_the_event_sent_while_it_waits_and_reports_each_step() {
    let api = EventApi::start().await.expect("fake event API");
    let engine = engine(vec![onboarding()], Some(&api));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let observer: inngest_sdk::testing::StepObserver = {
        let seen = Arc::clone(&seen);
        Arc::new(move |step| {
            seen.lock()
                .expect("lock")
                .push(format!("{} {}", step.op, step.name))
        })
    };
    let sender = Client::new(
        Config::new("app")
            .dev(None)
            .with_event_api_base_url(&api.url())
            .expect("url"),
    );
    let person = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sender
            .send(&Event::new("user/connected", json!({"user": "ada"})))
            .await
            .expect("sent");
    });
    let run = engine
        .run(
            "onboard",
            Event::new("user/signed.up", json!({"user": "ada"})),
        )
        .with_live_events(&api, Duration::from_secs(10))
        .observing(observer)
        .await;
    person.await.expect("the sender ran");
    assert_eq!(run.output::<Value>(), json!({"connected": true}));
    assert_eq!(
        *seen.lock().expect("lock"),
        ["StepRun welcome", "WaitForEvent connected"]
    );

    let unanswered = engine
        .run(
            "onboard",
            Event::new("user/signed.up", json!({"user": "bo"})),
        )
        .with_live_events(&api, Duration::from_millis(100))
        .await;
    assert_eq!(unanswered.output::<Value>(), json!({"connected": false}));
}
