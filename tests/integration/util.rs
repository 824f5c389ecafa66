//! `TestApp`: the app on a random port with its own database and fakes.
#![allow(dead_code)]

pub mod capture;
pub mod database;
pub mod dev_app;
pub mod instance;
pub mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use huckleberry::db::{self, DbConn};
use huckleberry::models::{Order, Product, ProductKind, Provider, SeatReservation};
use huckleberry::payments::PaymentsError;
use huckleberry::payments::checkout::{PendingCheckout, start_checkout};
use huckleberry::schema::{mentors, mentorship_products};
use inngest_sdk::testing::{EventApi, TestEngine};
use serde_json::Value;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use database::TestDatabase;

pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_secret";
pub const PAYPAL_WEBHOOK_ID: &str = "WH-TEST-ID";
pub const LINK_SECRET: &str = "link-secret-for-tests-0123456789abcdef";
/// The browser origin the test app allows (CORS).
pub const DASHBOARD_ORIGIN: &str = "https://dashboard.huckleberry.test";
/// A Svix endpoint secret (base64 after `whsec_`).
pub const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The running app and everything around it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub stripe: MockServer,
    pub paypal: MockServer,
    pub clerk: MockServer,
    pub discord: MockServer,
    pub resend: MockServer,
    pub events: EventApi,
    pub engine: TestEngine<AppState>,
    pub http: reqwest::Client,
    /// Dropped with the app, after `Drop for TestApp` closed the pool.
    pub database: TestDatabase,
}

/// Starts the app with Stripe and PayPal configured against local fakes.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app`], with some settings replaced (e.g. distinctive secrets to look for).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    capture::install();
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let database = TestDatabase::reserve();
    // Copying the template mostly waits on the server while starting the app is CPU work, so
    // the app starts on another worker meanwhile. The copy stays in this task: the guard can
    // then never be dropped while a copy is still under way.
    let starting = tokio::spawn(start_app(database.url().to_owned(), overrides));
    database.copy_template().await;
    let finish = starting.await.unwrap_or_else(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => panic!("starting the app: {e}"),
    });
    finish(database)
}

/// Starts the fakes and the app on a database that need not exist yet (the pool connects
/// when first used); what it returns completes the `TestApp` with that database.
async fn start_app(
    database_url: String,
    overrides: Vec<(String, String)>,
) -> impl FnOnce(TestDatabase) -> TestApp {
    let stripe = MockServer::start().await;
    let paypal = MockServer::start().await;
    let clerk = MockServer::start().await;
    let discord = MockServer::start().await;
    let resend = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/jwks"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("clerk/jwks.json"), "application/json"),
        )
        .mount(&clerk)
        .await;
    let events = EventApi::start().await.expect("fake event API");
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url.clone()),
        ("STRIPE_SECRET_KEY", "sk_test_123".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", stripe.uri()),
        ("PAYPAL_CLIENT_ID", "paypal-client".to_owned()),
        ("PAYPAL_CLIENT_SECRET", "paypal-secret".to_owned()),
        ("PAYPAL_WEBHOOK_ID", PAYPAL_WEBHOOK_ID.to_owned()),
        ("PAYPAL_API_BASE", paypal.uri()),
        ("CLERK_SECRET_KEY", "sk_test_clerk".to_owned()),
        ("CLERK_API_BASE", format!("{}/v1", clerk.uri())),
        ("DISCORD_CLIENT_ID", "discord-client".to_owned()),
        ("DISCORD_CLIENT_SECRET", "discord-secret".to_owned()),
        ("DISCORD_API_BASE", discord.uri()),
        (
            "DISCORD_AUTHORIZE_URL",
            "https://discord.test/oauth2/authorize".to_owned(),
        ),
        ("DISCORD_BOT_TOKEN", "bot-token".to_owned()),
        ("DISCORD_GUILD_ID", "guild-1".to_owned()),
        ("DISCORD_MENTEE_ROLE_ID", "role-mentee".to_owned()),
        ("LINK_SIGNING_SECRET", LINK_SECRET.to_owned()),
        ("CLERK_WEBHOOK_SECRET", SVIX_SECRET.to_owned()),
        ("RESEND_WEBHOOK_SECRET", SVIX_SECRET.to_owned()),
        ("RESEND_API_KEY", "re_test_key".to_owned()),
        ("RESEND_BASE_URL", resend.uri()),
        (
            "EMAIL_FROM",
            "Huckleberry Art Academy <hello@huckleberry.test>".to_owned(),
        ),
        ("PUBLIC_URL", "http://localhost:3000".to_owned()),
        ("CORS_ALLOWED_ORIGINS", DASHBOARD_ORIGIN.to_owned()),
        ("INNGEST_DEV", "1".to_owned()),
        ("INNGEST_BASE_URL", events.url()),
    ]);
    for (name, value) in &overrides {
        vars.insert(name.as_str(), value.clone());
    }
    let config = AppConfig::from_vars(|k| vars.get(k).cloned()).expect("test config");
    let pool = db::pool(&database_url, 20).expect("pool");
    let state = AppState::new(config, pool).expect("state");
    let router = huckleberry::build_router(state.clone()).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(huckleberry::server::serve(
        listener,
        router,
        huckleberry::server::Timeouts::default(),
        std::future::pending(),
    ));
    let engine = TestEngine::new(huckleberry::inngest_handler(&state).expect("functions register"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    move |database| TestApp {
        addr,
        state,
        stripe,
        paypal,
        clerk,
        discord,
        resend,
        events,
        engine,
        http,
        database,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Idle connections go now; the database's drop ends any still checked out.
        self.state.db.close();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn conn(&self) -> DbConn {
        self.state.db.get().await.expect("a connection")
    }

    /// A mentor with `seats` seats and a 4-session product at 200.00 USD.
    pub async fn seed_product(&self, seats: i32) -> Product {
        let mut conn = self.conn().await;
        let mentor_id: Uuid = diesel::insert_into(mentors::table)
            .values((
                mentors::display_name.eq("Ada Mentor"),
                mentors::email.eq("ada@huckleberry.test"),
                mentors::seat_capacity.eq(seats),
            ))
            .returning(mentors::id)
            .get_result(&mut conn)
            .await
            .expect("mentor");
        diesel::insert_into(mentorship_products::table)
            .values((
                mentorship_products::mentor_id.eq(mentor_id),
                mentorship_products::name.eq("1-on-1 mentorship, 4 sessions"),
                mentorship_products::kind.eq(ProductKind::OneOnOne),
                mentorship_products::price.eq("200.00".parse::<BigDecimal>().expect("decimal")),
                mentorship_products::currency.eq("usd"),
                mentorship_products::sessions_per_pack.eq(4),
                mentorship_products::validity_days.eq(90),
            ))
            .returning(Product::as_returning())
            .get_result(&mut conn)
            .await
            .expect("product")
    }

    /// Starts a checkout as `POST /api/checkout` does (order and hold), for a hold 35 minutes long.
    pub async fn try_checkout(
        &self,
        product: &Product,
        clerk_id: &str,
        provider: Provider,
    ) -> Result<PendingCheckout, PaymentsError> {
        let mut conn = self.conn().await;
        let expires = chrono::Utc::now() + chrono::Duration::minutes(35);
        start_checkout(&mut conn, clerk_id, product.id, provider, expires).await
    }

    /// A pending order with a held seat, as `POST /api/checkout` creates it.
    pub async fn pending_order(
        &self,
        product: &Product,
        clerk_id: &str,
        provider: Provider,
    ) -> PendingCheckout {
        self.try_checkout(product, clerk_id, provider)
            .await
            .expect("checkout starts")
    }

    /// Records the provider checkout of an order, as `POST /api/checkout` does once the
    /// provider answered: a payment must come through it to be fulfilled.
    pub async fn set_checkout_id(&self, order_id: Uuid, checkout_id: &str) {
        let mut conn = self.conn().await;
        Order::set_checkout_id(&mut conn, order_id, checkout_id)
            .await
            .expect("checkout id");
    }

    /// An order, which must exist.
    pub async fn order(&self, id: Uuid) -> Order {
        let mut conn = self.conn().await;
        Order::find(&mut conn, id)
            .await
            .expect("query")
            .expect("the order exists")
    }

    /// The seat of an order, which must exist.
    pub async fn seat(&self, order_id: Uuid) -> SeatReservation {
        let mut conn = self.conn().await;
        SeatReservation::by_order(&mut conn, order_id)
            .await
            .expect("query")
            .expect("the order has a seat")
    }

    /// Posts a Stripe webhook signed now.
    pub async fn post_stripe(&self, payload: &str) -> reqwest::Response {
        let signature =
            stripe_webhook::Webhook::generate_test_header(payload, STRIPE_WEBHOOK_SECRET, None);
        self.post_stripe_signed(payload, &signature).await
    }

    pub async fn post_stripe_signed(&self, payload: &str, signature: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/webhooks/stripe"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .expect("the app answers")
    }

    /// Makes the Clerk user `clerk_id` the mentor `mentor_id` (how the dashboard knows mentors).
    pub async fn link_mentor(&self, mentor_id: Uuid, clerk_id: &str) {
        let mut conn = self.conn().await;
        diesel::update(mentors::table.find(mentor_id))
            .set(mentors::clerk_id.eq(clerk_id))
            .execute(&mut conn)
            .await
            .expect("link the mentor");
    }

    /// Counts rows of a table.
    pub async fn count(&self, table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn().await;
        diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result::<Count>(&mut conn)
            .await
            .expect("count")
            .n
    }
}

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Clerk session token for `user_id`, signed with the test key the fake JWKS serves;
/// `expires_in` may be negative for an expired one.
pub fn session_token(user_id: &str, expires_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "sub": user_id,
        "iss": "https://clerk.huckleberry.test",
        "azp": "http://localhost:3000",
        "sid": "sess_test",
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + expires_in,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("ins_test_key".to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(fixture("clerk/test_rsa_key.pem").as_bytes())
        .expect("test key");
    jsonwebtoken::encode(&header, &claims, &key).expect("token")
}

/// Svix headers signing `body` as message `id` now, with the test endpoint secret.
pub fn svix_headers(id: &str, body: &str) -> reqwest::header::HeaderMap {
    let ts = chrono::Utc::now().timestamp();
    let signature =
        huckleberry::integrations::svix::sign(SVIX_SECRET, id, ts, body.as_bytes()).expect("sign");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("svix-id", id.parse().expect("header"));
    headers.insert("svix-timestamp", ts.to_string().parse().expect("header"));
    headers.insert("svix-signature", signature.parse().expect("header"));
    headers
}

/// A Stripe fixture with the order and product placeholders replaced.
pub fn stripe_fixture(name: &str, order_id: Uuid, product_id: Uuid) -> String {
    fixture(&format!("stripe/{name}"))
        .replace(
            "00000000-0000-0000-0000-0000000000a1",
            &order_id.to_string(),
        )
        .replace(
            "00000000-0000-0000-0000-0000000000b1",
            &product_id.to_string(),
        )
}

/// The event the relay forwarded for a provider event id.
pub fn forwarded(app: &TestApp, event_id: &str) -> Vec<inngest_sdk::Event<Value>> {
    app.events
        .events()
        .into_iter()
        .filter(|e| e.id.as_deref() == Some(event_id))
        .collect()
}
