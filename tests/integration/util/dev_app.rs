//! `DevApp`: the app as `huckleberry dev` serves it, in process, through the demo's
//! [`LocalService`]: no provider keys, so the sandbox stands in for Stripe, Clerk, Resend and
//! Discord on the app's own port; the demo mentors and products loaded; the relay running; and
//! the SDK's executor playing Inngest (every event runs the functions it triggers).

use std::sync::Arc;

use huckleberry::app::AppState;
use huckleberry::demo::local::LocalService;

use super::TestDatabase;

pub struct DevApp {
    pub service: LocalService,
    /// Follows no redirects, so tests see where a form sends the browser.
    pub http: reqwest::Client,
    /// Dropped with the app, after `Drop for DevApp` closed the pool.
    pub database: TestDatabase,
}

impl DevApp {
    pub async fn spawn() -> Self {
        let database = TestDatabase::migrated().await;
        let service = LocalService::start(database.url(), Arc::new(|_| {}))
            .await
            .expect("the service starts");
        {
            let mut conn = service.state.conn().await.expect("a connection");
            huckleberry::demo::seed(&mut conn).await.expect("demo data");
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            service,
            http,
            database,
        }
    }

    pub fn state(&self) -> &AppState {
        &self.service.state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.service.origin)
    }
}

impl Drop for DevApp {
    fn drop(&mut self) {
        self.service.state.db.close();
    }
}
