//! The tracing middleware's spans, captured by a subscriber layer (one test in its own binary:
//! tracing caches per call site whether a subscriber listens, so it must not share a process
//! with tests that log without one).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use inngest_sdk::middleware::TracingMiddleware;
use inngest_sdk::step::hash_step_id;
use inngest_sdk::testing::TestEngine;
use inngest_sdk::{
    Client, Config, Ctx, Error, Event, Function, FunctionOpts, ServeHandler, Trigger,
};
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed span: its name, its parent's name and its fields.
#[derive(Debug, Clone, Default)]
struct Captured {
    name: String,
    parent: Option<String>,
    fields: HashMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

impl Visit for Captured {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .insert(field.name().to_owned(), value.to_string());
    }
}

#[derive(Clone, Default)]
struct Capture {
    open: Arc<Mutex<HashMap<Id, Captured>>>,
    closed: Arc<Mutex<Vec<Captured>>>,
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = Captured {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            fields: HashMap::new(),
        };
        attrs.record(&mut span);
        self.open.lock().expect("open").insert(id.clone(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(span) = self.open.lock().expect("open").get_mut(id) {
            values.record(span);
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        if let Some(span) = self.open.lock().expect("open").remove(&id) {
            self.closed.lock().expect("closed").push(span);
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_middleware_opens_a_span_per_run_invocation_and_per_step() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let failures = Arc::new(AtomicU32::new(0));
    let traced = Function::new(
        FunctionOpts::new("traced").with_trigger(Trigger::event("test/traced")),
        move |ctx: Ctx<Value, ()>| {
            let failures = failures.clone();
            async move {
                ctx.step
                    .run("charge", || async {
                        // The step's own code: what it traces goes under the step's span.
                        tracing::info_span!("charge.provider_call").in_scope(|| ());
                        Ok::<_, Error>(42)
                    })
                    .await?;
                ctx.step.sleep("cool-down", Duration::from_secs(60)).await;
                ctx.step
                    .run("flaky", || async move {
                        if failures.fetch_add(1, Ordering::SeqCst) == 0 {
                            return Err(Error::new("provider hiccup"));
                        }
                        Ok(())
                    })
                    .await?;
                Ok(json!("done"))
            }
        },
    );
    let client =
        Client::new(Config::new("app").dev(None)).with_middleware(TracingMiddleware::new());
    let handler = ServeHandler::new(client, (), [traced]).expect("valid");
    let run = TestEngine::new(handler)
        .run("traced", Event::new("test/traced", json!({})))
        .with_run_id("run-1")
        .await;
    assert_eq!(run.output::<String>(), "done");

    let closed = capture.closed.lock().expect("closed").clone();
    let runs: Vec<&Captured> = closed.iter().filter(|s| s.name == "inngest.run").collect();
    assert_eq!(runs.len(), run.requests.len(), "one run span per request");
    for span in &runs {
        assert_eq!(span.field("function_id"), "app-traced");
        assert_eq!(span.field("run_id"), "run-1");
        assert_eq!(span.parent.as_deref(), Some("inngest.execute"));
    }
    let outcomes: Vec<&str> = runs.iter().map(|s| s.field("outcome")).collect();
    assert_eq!(outcomes.last(), Some(&"completed"));
    assert!(
        outcomes[..outcomes.len() - 1].iter().all(|o| *o == "steps"),
        "{outcomes:?}"
    );

    let steps: Vec<(&str, &str, &str, &str)> = closed
        .iter()
        .filter(|s| s.name == "inngest.step")
        .map(|s| {
            assert_eq!(s.parent.as_deref(), Some("inngest.run"));
            assert_eq!(s.field("function_id"), "app-traced");
            assert_eq!(s.field("run_id"), "run-1");
            assert_eq!(s.field("step_id"), hash_step_id(s.field("step_name"), 0));
            (
                s.field("step_name"),
                s.field("opcode"),
                s.field("outcome"),
                s.field("attempt"),
            )
        })
        .collect();
    let inner: Vec<&Captured> = closed
        .iter()
        .filter(|s| s.name == "charge.provider_call")
        .collect();
    assert_eq!(inner.len(), 1, "the step's code ran once");
    assert_eq!(inner[0].parent.as_deref(), Some("inngest.step"));
    assert_eq!(
        steps,
        [
            ("charge", "StepRun", "ok", "0"),
            ("cool-down", "Sleep", "reported", "0"),
            ("flaky", "StepError", "error", "0"),
            ("flaky", "StepRun", "ok", "1"),
        ]
    );
}
