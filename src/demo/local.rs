//! The whole service in this process, with no account and no network: every provider is a
//! sandbox stand-in ([`crate::sandbox`]) and Inngest is played by the SDK's testing executor.
//! The executor runs each function an event triggers, through the real `/api/inngest`
//! handler, as the dev server would (sleeps played at once, waits answered live by the
//! events the service sends while they wait).
//!
//! For `huckleberry demo` and the tests of it: a demo and a smoke test, never the
//! production path (that is `serve` with Inngest Cloud or the dev server).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use inngest_sdk::Event;
use inngest_sdk::testing::{EventApi, RunOutcome, StepObserver, StepRecord, TestEngine};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::config::AppConfig;
use crate::sandbox::{self, Origins};
use crate::{build_router, db, inngest_handler, relay, server};

/// How long a `wait_for_event` waits, in real time, for a person's action before its timeout
/// is played.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What the executor reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A function started, triggered by an event.
    Started { function: String, event: String },
    /// A step of it was reported (`StepRun`, `Sleep`, `WaitForEvent`, …).
    Step {
        function: String,
        op: String,
        step: String,
    },
    /// It ended; `error` says why when it failed.
    Finished {
        function: String,
        error: Option<String>,
    },
}

/// Where progress goes (the demo prints it; tests collect it).
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// A function run the executor finished.
#[derive(Debug)]
pub struct FinishedRun {
    pub function: String,
    pub event: String,
    pub outcome: RunOutcome,
}

/// The service, listening on loopback, and the executor playing Inngest for it.
pub struct LocalService {
    pub state: AppState,
    /// `http://127.0.0.1:<port>`, also the public URL (links in emails lead here).
    pub origin: String,
    /// Stands in for Inngest's event API: what the service sends arrives here.
    pub events: EventApi,
    runs: Arc<Mutex<Vec<FinishedRun>>>,
    in_flight: Arc<AtomicUsize>,
    dispatched: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalService {
    /// Starts the service on the database at `database_url` (migrated, with the demo data).
    pub async fn start(database_url: &str, progress: ProgressSink) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("no loopback port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("no loopback port: {e}"))?
            .port();
        let events = EventApi::start()
            .await
            .map_err(|e| format!("the local event API did not start: {e}"))?;
        let origin = format!("http://127.0.0.1:{port}");
        // Only what the demo needs: no provider keys, so every provider is stood in.
        let vars = [
            ("DATABASE_URL", database_url.to_owned()),
            ("PORT", port.to_string()),
            ("PUBLIC_URL", origin.clone()),
            ("INNGEST_DEV", "1".to_owned()),
            ("INNGEST_BASE_URL", events.url()),
            ("RELAY_INTERVAL_MS", "200".to_owned()),
        ];
        let mut config = AppConfig::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())?;
        let origins = Origins::of(&config, port);
        let sandbox = sandbox::stand_in(&mut config, &origins);
        let pool =
            db::pool_with(database_url, &config.operations.database).map_err(|e| e.to_string())?;
        let state = AppState::with_sandbox(config, pool, sandbox).map_err(|e| e.to_string())?;
        let router = build_router(state.clone()).map_err(|e| e.to_string())?;
        let engine = TestEngine::new(inngest_handler(&state).map_err(|e| e.to_string())?)
            .with_event_api(&events);
        let mut service = Self {
            state: state.clone(),
            origin,
            events: events.clone(),
            runs: Arc::default(),
            in_flight: Arc::default(),
            dispatched: Arc::default(),
            tasks: Vec::new(),
        };
        service.tasks.push(tokio::spawn(server::serve(
            listener,
            router,
            server::Timeouts::default(),
            std::future::pending(),
        )));
        service.tasks.push(relay::spawn(state));
        service
            .tasks
            .push(tokio::spawn(service.dispatch(Arc::new(engine), progress)));
        Ok(service)
    }

    /// Plays Inngest: every event the API receives starts the functions it triggers, each in
    /// its own task (a run that waits does not hold up the others).
    fn dispatch(
        &self,
        engine: Arc<TestEngine<AppState>>,
        progress: ProgressSink,
    ) -> impl Future<Output = ()> + use<> {
        let (events, runs) = (self.events.clone(), Arc::clone(&self.runs));
        let (in_flight, dispatched) = (Arc::clone(&self.in_flight), Arc::clone(&self.dispatched));
        async move {
            loop {
                let received = events.events();
                for event in received.iter().skip(dispatched.load(Ordering::SeqCst)) {
                    for function in engine.triggered_by(event) {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(run_one(
                            Arc::clone(&engine),
                            function,
                            event.clone(),
                            events.clone(),
                            Arc::clone(&progress),
                            Arc::clone(&runs),
                            Arc::clone(&in_flight),
                        ));
                    }
                    dispatched.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Waits until every event received so far has been dispatched and every run has ended
    /// (a run waiting for an event counts as running), up to `limit`. Whether it settled.
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut quiet = 0;
        while tokio::time::Instant::now() < deadline {
            let idle = self.in_flight.load(Ordering::SeqCst) == 0
                && self.dispatched.load(Ordering::SeqCst) == self.events.events().len();
            // Idle twice in a row, so an event the relay is delivering right now is seen.
            quiet = if idle { quiet + 1 } else { 0 };
            if quiet >= 15 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The runs finished so far, in the order they ended.
    pub fn finished(&self) -> Vec<(String, String, Result<Value, String>)> {
        lock(&self.runs)
            .iter()
            .map(|r| {
                let result = r.outcome.result.clone().map_err(|e| e.message.clone());
                (r.function.clone(), r.event.clone(), result)
            })
            .collect()
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run_one(
    engine: Arc<TestEngine<AppState>>,
    function: String,
    event: Event<Value>,
    events: EventApi,
    progress: ProgressSink,
    runs: Arc<Mutex<Vec<FinishedRun>>>,
    in_flight: Arc<AtomicUsize>,
) {
    progress(Progress::Started {
        function: function.clone(),
        event: event.name.clone(),
    });
    let observer: StepObserver = {
        let (progress, function) = (Arc::clone(&progress), function.clone());
        Arc::new(move |step: &StepRecord| {
            progress(Progress::Step {
                function: function.clone(),
                op: step.op.clone(),
                step: step.name.clone(),
            });
        })
    };
    let event_name = event.name.clone();
    let outcome = engine
        .run(&function, event)
        .with_live_events(&events, PATIENCE)
        .observing(observer)
        .await;
    progress(Progress::Finished {
        function: function.clone(),
        error: outcome.result.as_ref().err().map(|e| e.message.clone()),
    });
    lock(&runs).push(FinishedRun {
        function,
        event: event_name,
        outcome,
    });
    in_flight.fetch_sub(1, Ordering::SeqCst);
}
