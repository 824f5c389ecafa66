//! The execution request target: a POST to the serve endpoint, as Inngest sends it, answered by
//! a real [`ServeHandler`] in cloud mode.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Input;
use crate::function::FunctionFailed;
use crate::handler::headers::{NO_RETRY, SIGNATURE};
use crate::signature::{SigningKey, sign};
use crate::step::{FunctionRef, Invocation, WaitForEvent};
use crate::{Client, Config, Ctx, Error, Event, Function, FunctionOpts, ServeHandler, Trigger};

const KEY: &str = "signkey-test-5d41402abc4b2a76b9719d911017c592";
const APP: &str = "fuzz";

struct Harness {
    handler: ServeHandler<()>,
    runtime: tokio::runtime::Runtime,
    key: SigningKey,
}

/// A payload type that refuses unknown fields, as an app's typed events may.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    order_id: String,
    #[serde(default)]
    amount: Option<i64>,
}

fn functions() -> Vec<Function<()>> {
    let echo = Function::new(
        FunctionOpts::new("echo").with_trigger(Trigger::event("fuzz/echo")),
        |ctx: Ctx<Value, ()>| async move {
            Ok(json!({ "data": ctx.event.data, "batch": ctx.events.len() }))
        },
    );
    let steps = Function::new(
        FunctionOpts::new("steps")
            .with_trigger(Trigger::event("fuzz/steps"))
            .with_retries(2),
        |ctx: Ctx<Value, ()>| async move {
            let first: u64 = ctx
                .step
                .run("first", || async { Ok::<_, Error>(1) })
                .await?;
            let (a, b) = futures::join!(
                ctx.step
                    .run("twin", || async { Ok::<_, Error>("a".to_owned()) }),
                ctx.step
                    .run("twin", || async { Ok::<_, Error>("b".to_owned()) }),
            );
            ctx.step.sleep("nap", Duration::from_secs(90)).await;
            let woke: Option<Event<Value>> = ctx
                .step
                .wait_for_event(
                    "wait",
                    WaitForEvent::new("fuzz/woke", Duration::from_secs(3600)).matching("data.id"),
                )
                .await?;
            let target = FunctionRef::<Value, Value>::new(APP, "echo");
            let invoked = ctx
                .step
                .invoke("call", Invocation::new(&target, json!({ "n": first })))
                .await?;
            let failed = ctx
                .step
                .run("fails", || async {
                    Err::<u64, _>(Error::non_retriable("declined"))
                })
                .await
                .is_err();
            Ok(json!([
                first,
                a?,
                b?,
                woke.map(|e| e.name),
                invoked,
                failed
            ]))
        },
    );
    let strict = Function::new(
        FunctionOpts::new("strict").with_trigger(Trigger::event("fuzz/strict")),
        |ctx: Ctx<Order, ()>| async move {
            let total: i64 = ctx
                .events
                .decode()?
                .iter()
                .filter_map(|e| e.data.amount)
                .sum();
            Ok(json!([ctx.event.data.order_id, total]))
        },
    )
    .on_failure(|ctx: Ctx<FunctionFailed<Order>, ()>| async move {
        Ok(ctx.event.data.event.data.order_id)
    });
    vec![echo, steps, strict]
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // `use_api` state loads go to a URL no request can be made to, so they fail at once
        // without touching the network.
        let config = Config::new(APP)
            .with_signing_key(KEY)
            .with_api_base_url("fuzz:nowhere")
            .expect("a URL");
        let handler = ServeHandler::new(Client::new(config), (), functions())
            .expect("the fuzz functions are valid");
        // Paused time: a request targeting a step that is never reached waits out its grace
        // period at once instead of for seconds.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        Harness {
            handler,
            runtime,
            key: SigningKey::new(KEY),
        }
    })
}

/// A POST of the body with the head's query (`@?fnId=...&stepId=...`, by default the `steps`
/// function) and headers; signed by the harness unless the head has `@x-inngest-signature`.
///
/// Invariants: no panic; every answer is one of the statuses the protocol uses, with a JSON
/// body; a correctly signed body that is not JSON is a 400 Inngest must not retry (serde skips
/// the fields it ignores without checking their UTF-8, so only UTF-8 bodies are judged); only a
/// correctly signed request gets past 401; a 206 lists ops with step hashes for ids.
pub fn execution_request(data: &[u8]) {
    execute(data);
}

/// The target's body; the status it answered, `None` for an input no server would pass on.
pub(super) fn execute(data: &[u8]) -> Option<u16> {
    let harness = harness();
    let input = Input::parse(data);
    // `None` for a body that is not UTF-8. The request scanner must judge any text exactly as
    // serde_json does.
    let body_is_json = std::str::from_utf8(input.body).ok().map(|text| {
        let json = is_json(text);
        assert_eq!(
            crate::handler::scans_as_json(text),
            json,
            "the scanner and serde_json disagree on {text:?}"
        );
        json
    });
    let query = input
        .query
        .map_or(Ok("fnId=fuzz-steps&stepId=step"), std::str::from_utf8)
        .ok()?;
    // Not a URI an HTTP server would have parsed: no request.
    let mut request = http::Request::post(format!("http://localhost/api/inngest?{query}"))
        .body(Bytes::copy_from_slice(input.body))
        .ok()?;
    *request.headers_mut() = input.header_map();
    let signed_here = input.header(SIGNATURE).is_none();
    if signed_here {
        let now = chrono::Utc::now().timestamp();
        let signature = sign(&harness.key, input.body, now);
        request.headers_mut().insert(
            SIGNATURE,
            http::HeaderValue::from_str(&signature).expect("a signature is ASCII"),
        );
    }

    // The query as the server sees it: a `#` ends it there (the rest is a fragment).
    let query = request.uri().query().unwrap_or_default().to_owned();
    let response = harness.runtime.block_on(harness.handler.handle(request));

    let status = response.status().as_u16();
    assert!(
        matches!(status, 200 | 206 | 400 | 401 | 410 | 500),
        "status {status}"
    );
    let body: Value = serde_json::from_slice(response.body()).unwrap_or_else(|e| {
        panic!(
            "a {status} answer is not JSON ({e}): {:?}",
            String::from_utf8_lossy(response.body())
        )
    });
    if status == 401 {
        assert!(!signed_here, "a request signed with the key was refused");
    }
    let no_retry = response
        .headers()
        .get(NO_RETRY)
        .and_then(|v| v.to_str().ok());
    let last = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == name)
            .last()
            .map(|(_, v)| v.into_owned())
    };
    let known_function = last("fnId").is_some_and(|id| {
        let functions = harness.handler.functions();
        functions
            .iter()
            .any(|f| id == f.opts().id || id == format!("{APP}-{}", f.opts().id))
    });
    let probe = last("probe").is_some_and(|p| p == "trust");
    if signed_here && known_function && !probe && body_is_json == Some(false) {
        assert_eq!((status, no_retry), (400, Some("true")), "{body}");
    }
    if status == 206 {
        let ops = body.as_array().expect("a 206 answers a list of ops");
        for op in ops {
            let id = op["id"].as_str().expect("an op has an id");
            assert!(
                id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "op id {id:?}"
            );
            assert!(op["op"].is_string(), "{op}");
        }
    }
    Some(status)
}

/// Whether `text` is JSON by its syntax (numbers of any size; `Value` would refuse `1e999`).
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}
