//! `DevApp`: the app as `huckleberry dev` serves it, in process: no provider keys, so the
//! sandbox stands in for Stripe, Clerk, Resend and Discord on the app's own port; the demo
//! mentors and products loaded; the relay running; Inngest's event API a local fake.

use std::collections::HashSet;
use std::net::SocketAddr;

use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use huckleberry::sandbox::{self, Origins};
use inngest_sdk::testing::{EventApi, TestEngine};

use super::TestDatabase;

pub struct DevApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub events: EventApi,
    pub engine: TestEngine<AppState>,
    /// Follows no redirects, so tests see where a form sends the browser.
    pub http: reqwest::Client,
    relay: tokio::task::JoinHandle<()>,
    /// Dropped with the app, after `Drop for DevApp` closed the pool.
    pub database: TestDatabase,
}

impl DevApp {
    pub async fn spawn() -> Self {
        let database = TestDatabase::migrated().await;
        let events = EventApi::start().await.expect("fake event API");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let vars = [
            ("DATABASE_URL", database.url().to_owned()),
            ("PORT", addr.port().to_string()),
            ("PUBLIC_URL", format!("http://{addr}")),
            ("INNGEST_DEV", "1".to_owned()),
            ("INNGEST_BASE_URL", events.url()),
        ];
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let mut config = AppConfig::from_vars(get).expect("dev config");
        let origins = Origins::of(&config, addr.port());
        let sandbox = sandbox::stand_in(&mut config, &origins);
        assert!(
            sandbox.is_some(),
            "no provider has keys, so all are stood in"
        );
        let pool = huckleberry::db::pool(database.url(), 10).expect("pool");
        let state = AppState::with_sandbox(config, pool, sandbox).expect("state");
        {
            let mut conn = state.conn().await.expect("a connection");
            huckleberry::demo::seed(&mut conn).await.expect("demo data");
        }
        let router = huckleberry::build_router(state.clone()).expect("router");
        tokio::spawn(huckleberry::server::serve(
            listener,
            router,
            huckleberry::server::Timeouts::default(),
            std::future::pending(),
        ));
        let relay = huckleberry::relay::spawn(state.clone());
        let engine = TestEngine::new(huckleberry::inngest_handler(&state).expect("functions"))
            .with_event_api(&events);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            addr,
            state,
            events,
            engine,
            http,
            relay,
            database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A session token of a demo person, from the Clerk stand-in.
    pub fn token(&self, clerk_id: &str) -> String {
        self.state
            .sandbox
            .as_ref()
            .and_then(|s| s.session_token(clerk_id))
            .expect("the Clerk stand-in issues tokens for demo people")
    }
}

impl DevApp {
    /// Plays Inngest for the payment providers' events: runs, once each, the functions that
    /// every `stripe/` or `paypal/` event delivered so far triggers (`ran` holds the ids of the
    /// events already played). Events the functions send are left alone. Returns the results.
    pub async fn play_payment_events(
        &self,
        ran: &mut HashSet<String>,
    ) -> Vec<(String, Result<serde_json::Value, String>)> {
        let mut results = Vec::new();
        for event in self.events.events() {
            let from_provider =
                event.name.starts_with("stripe/") || event.name.starts_with("paypal/");
            let Some(id) = event.id.clone() else { continue };
            if !from_provider || !ran.insert(id) {
                continue;
            }
            for function in self.engine.triggered_by(&event) {
                let outcome = self.engine.run(&function, event.clone()).execute().await;
                let result = outcome.result.map_err(|e| format!("{e:?}"));
                results.push((function, result));
            }
        }
        results
    }
}

impl Drop for DevApp {
    fn drop(&mut self) {
        self.relay.abort();
        self.state.db.close();
    }
}
