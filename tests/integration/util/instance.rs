//! More service instances on a test's database: the same configuration and fakes as the
//! `TestApp`, a pool of their own (possibly through a [`super::proxy::DbProxy`]), their own
//! HTTP server, executor and, when asked, relay. Dropping one is the process dying: its tasks
//! stop where they are and its connections close.

use std::net::SocketAddr;

use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use huckleberry::db;
use inngest_sdk::testing::TestEngine;

use super::TestApp;

/// One more instance of the service.
pub struct Instance {
    pub addr: SocketAddr,
    pub state: AppState,
    pub engine: TestEngine<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How an instance is started.
pub struct InstanceOptions {
    /// The database URL its pool connects to (the test's database, or a proxy of it).
    pub database_url: String,
    /// Whether it runs the relay, as `huckleberry serve` does.
    pub relay: bool,
    /// Changes to the `TestApp`'s configuration.
    pub configure: Box<dyn FnOnce(&mut AppConfig) + Send>,
}

impl TestApp {
    /// Options for an instance on this app's database, with the relay, configured as the app.
    pub fn instance_options(&self) -> InstanceOptions {
        InstanceOptions {
            database_url: self.database.url().to_owned(),
            relay: true,
            configure: Box::new(|_| {}),
        }
    }

    /// Starts another instance of the service on this app's database.
    pub async fn start_instance(&self, options: InstanceOptions) -> Instance {
        let mut config = self.state.config.clone();
        (options.configure)(&mut config);
        config.database_url = huckleberry::config::Secret::new(options.database_url.clone());
        let pool = db::pool(&options.database_url, 10).expect("pool");
        let state = AppState::new(config, pool).expect("state");
        let router = huckleberry::build_router(state.clone()).expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut tasks = vec![tokio::spawn(huckleberry::server::serve(
            listener,
            router,
            huckleberry::server::Timeouts::default(),
            std::future::pending(),
        ))];
        if options.relay {
            tasks.push(huckleberry::relay::spawn(state.clone()));
        }
        let engine = TestEngine::new(huckleberry::inngest_handler(&state).expect("functions"));
        Instance {
            addr,
            state,
            engine,
            tasks,
        }
    }
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.state.db.close();
    }
}
