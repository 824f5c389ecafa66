//! The load driver behind `scripts/load.sh`: the real service binary on loopback, a fresh
//! database, local fakes of Stripe, Clerk and Resend, and this program playing Inngest.
//!
//! It seeds one pending Stripe checkout per purchase (buyer, order and held seat, as
//! `POST /api/checkout` leaves them), then for the given number of seconds posts signed
//! `checkout.session.completed` webhooks at the target rate. The service stores each one and
//! its relay sends the event to the fake event API here; every event is run like Inngest
//! runs it: the triggered functions (`process-stripe-checkout`, then `onboarding-flow` for
//! the `purchase/mentorship` it sends) are executed by the SDK's `TestEngine` over HTTP, with
//! signed requests and memoized state fed back. At the end the database must hold exactly one
//! paid order, one payment, one active pack and one active seat per purchase, and nothing more.
//!
//! `load <service binary> <seconds> [rate per second]`, with `DATABASE_URL` naming a server
//! where databases may be created (its database is only used to create and drop ours).
//! Exits 1 when a request failed or the check found anything else.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use huckleberry::app::AppState;
use huckleberry::config::AppConfig;
use huckleberry::models::{Order, ProductKind, Provider};
use huckleberry::payments::checkout::start_checkout;
use huckleberry::schema::{mentors, mentorship_products};
use inngest_sdk::testing::{EventApi, RunOutcome, TestEngine};
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

type Failure = Box<dyn std::error::Error + Send + Sync>;

const WEBHOOK_SECRET: &str = "whsec_load_driver_secret";
const SIGNING_KEY: &str = "signkey-test-6c6f61642d6472697665722d7369676e696e672d6b6579";
/// Webhooks in flight at once; more would only queue in the client.
const WEBHOOKS_IN_FLIGHT: usize = 64;
/// Runs in flight at once, as Inngest's executor bounds its own concurrency.
const RUNS_IN_FLIGHT: usize = 32;
/// How long the backlog may take to drain once the webhooks stop.
const DRAIN: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: load <service binary> <seconds> [rate per second]";
    let service = PathBuf::from(args.next().ok_or(usage)?);
    let seconds: u64 = args.next().ok_or(usage)?.parse()?;
    let rate: u64 = args.next().map(|r| r.parse()).transpose()?.unwrap_or(10);
    let admin_url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL must be set")?;
    let purchases = usize::try_from(seconds * rate)?;

    let database = Database::create(&admin_url).await?;
    let result = drive(&service, &database.url, seconds, rate, purchases).await;
    database.drop().await;
    result
}

async fn drive(
    service: &PathBuf,
    database_url: &str,
    seconds: u64,
    rate: u64,
    purchases: usize,
) -> Result<bool, Failure> {
    let pool = huckleberry::db::pool(database_url, 8)?;
    huckleberry::db::run_migrations(&pool).await?;
    let seeding = Instant::now();
    let orders = seed(&pool, purchases).await?;
    println!(
        "seeded {purchases} pending checkouts in {:.1}s",
        seeding.elapsed().as_secs_f64()
    );

    let fakes = Fakes::start().await;
    let events = EventApi::start().await?;
    let port = free_port()?;
    let vars = service_vars(database_url, port, &fakes, &events, purchases);
    let mut child = tokio::process::Command::new(service)
        .arg("serve")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await?;

    // The executor knows the functions and the signing key as Inngest does after a sync.
    let config = AppConfig::from_vars(|k| {
        vars.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    })?;
    let state = AppState::new(config, pool.clone())?;
    let engine = Arc::new(
        TestEngine::new(huckleberry::inngest_handler(&state)?)
            .over_http(&format!("{base}/api/inngest")),
    );

    let stats = Arc::new(Stats::default());
    let executor = tokio::spawn(execute_events(
        engine,
        events.clone(),
        stats.clone(),
        purchases * 2,
    ));
    let started = Instant::now();
    post_webhooks(&base, &orders, rate, stats.clone()).await;
    let sending = started.elapsed();
    let drained = tokio::time::timeout(sending + DRAIN, executor).await;
    let total = started.elapsed();
    child.start_kill()?;
    let _ = child.wait().await;

    let report = stats.report(purchases, seconds, rate, sending, total);
    println!("{report}");
    let mut ok = stats.errors() == 0;
    match drained {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            println!("FAIL: the executor ended: {e}");
            ok = false;
        }
        Err(_) => {
            println!("FAIL: runs were still pending {DRAIN:?} after the last webhook");
            ok = false;
        }
    }
    let mut conn = pool.get().await?;
    let check = Check::load(&mut conn).await?;
    ok &= check.holds(purchases);
    Ok(ok)
}

/// A database of this run's own on the server of `DATABASE_URL`, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin_url: &str) -> Result<Self, Failure> {
        let name = format!("huckleberry_load_{}", Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&name);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    async fn drop(self) {
        let dropped = async {
            let mut admin = AsyncPgConnection::establish(&self.admin_url).await?;
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .await?;
            Ok::<_, Failure>(())
        };
        if let Err(e) = dropped.await {
            eprintln!("load: could not drop the database {}: {e}", self.name);
        }
    }
}

/// One pending checkout per purchase, for one mentor with room for all of them.
async fn seed(pool: &huckleberry::db::DbPool, purchases: usize) -> Result<Vec<Uuid>, Failure> {
    let mut conn = pool.get().await?;
    let mentor: Uuid = diesel::insert_into(mentors::table)
        .values((
            mentors::display_name.eq("Load Mentor"),
            mentors::email.eq("mentor@load.test"),
            mentors::seat_capacity.eq(i32::try_from(purchases)?),
        ))
        .returning(mentors::id)
        .get_result(&mut conn)
        .await?;
    let product: Uuid = diesel::insert_into(mentorship_products::table)
        .values((
            mentorship_products::mentor_id.eq(mentor),
            mentorship_products::name.eq("Load mentorship, 4 sessions"),
            mentorship_products::kind.eq(ProductKind::OneOnOne),
            mentorship_products::price.eq("200.00".parse::<BigDecimal>()?),
            mentorship_products::currency.eq("usd"),
            mentorship_products::sessions_per_pack.eq(4),
            mentorship_products::validity_days.eq(90),
        ))
        .returning(mentorship_products::id)
        .get_result(&mut conn)
        .await?;
    let expires = chrono::Utc::now() + chrono::Duration::minutes(35);
    let mut orders = Vec::with_capacity(purchases);
    for i in 0..purchases {
        let pending = start_checkout(
            &mut conn,
            &format!("user_load_{i}"),
            product,
            Provider::Stripe,
            expires,
        )
        .await?;
        let order = pending.order.id;
        Order::set_checkout_id(&mut conn, order, &session_id(order)).await?;
        orders.push(order);
    }
    Ok(orders)
}

fn session_id(order: Uuid) -> String {
    format!("cs_load_{}", order.simple())
}

fn fixture(name: &str) -> Result<String, Failure> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    Ok(std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?)
}

/// Stripe, Clerk and Resend on loopback, answering every buyer alike.
struct Fakes {
    stripe: MockServer,
    clerk: MockServer,
    resend: MockServer,
}

/// Stripe's `GET /v1/checkout/sessions/cs_load_<order>`: that order's paid session.
struct StripeSessions {
    template: String,
}

impl Respond for StripeSessions {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        let Some(order) = id
            .strip_prefix("cs_load_")
            .and_then(|o| Uuid::parse_str(o).ok())
        else {
            return ResponseTemplate::new(404);
        };
        let body = self
            .template
            .replace("cs_test_a2", id)
            .replace("pi_test_2", &format!("pi_load_{}", order.simple()))
            .replace("00000000-0000-0000-0000-0000000000a1", &order.to_string());
        ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }
}

/// Clerk's `GET /v1/users/<id>`: a user with that id.
struct ClerkUsers {
    template: String,
}

impl Respond for ClerkUsers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        let body = self
            .template
            .replace("user_clerk_1", id)
            .replace("ada@example.com", &format!("{id}@load.test"));
        ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }
}

/// Resend's `POST /emails`: an id from the idempotency key, as Resend answers a repeat.
struct ResendEmails;

impl Respond for ResendEmails {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        ResponseTemplate::new(200).set_body_json(json!({ "id": format!("em-{key}") }))
    }
}

impl Fakes {
    async fn start() -> Self {
        let start = || MockServer::builder().disable_request_recording().start();
        let (stripe, clerk, resend) = (start().await, start().await, start().await);
        let session = fixture("stripe/checkout_session_no_discount.json").unwrap_or_default();
        Mock::given(method("GET"))
            .and(path_regex("^/v1/checkout/sessions/[^/]+$"))
            .respond_with(StripeSessions { template: session })
            .mount(&stripe)
            .await;
        let user = fixture("clerk/user.json").unwrap_or_default();
        Mock::given(method("GET"))
            .and(path_regex("^/v1/users/[^/]+$"))
            .respond_with(ClerkUsers { template: user })
            .mount(&clerk)
            .await;
        Mock::given(method("POST"))
            .and(path("/emails"))
            .respond_with(ResendEmails)
            .mount(&resend)
            .await;
        Self {
            stripe,
            clerk,
            resend,
        }
    }
}

fn service_vars(
    database_url: &str,
    port: u16,
    fakes: &Fakes,
    events: &EventApi,
    purchases: usize,
) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("PORT", port.to_string()),
        ("PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("RUST_LOG", "warn".to_owned()),
        ("STRIPE_SECRET_KEY", "sk_test_load".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", fakes.stripe.uri()),
        ("CLERK_SECRET_KEY", "sk_test_load_clerk".to_owned()),
        ("CLERK_API_BASE", format!("{}/v1", fakes.clerk.uri())),
        ("RESEND_API_KEY", "re_load".to_owned()),
        ("RESEND_BASE_URL", fakes.resend.uri()),
        // Resend's client paces itself to Resend's account limit (a burst, then about one a
        // second); the fake has none, and the run measures the service, not that pacing.
        ("RESEND_RATE_LIMIT", (purchases * 3 + 10).to_string()),
        ("EMAIL_FROM", "Huckleberry <hello@load.test>".to_owned()),
        (
            "LINK_SIGNING_SECRET",
            "load-driver-link-secret-0123456789abcdef".to_owned(),
        ),
        ("INNGEST_SIGNING_KEY", SIGNING_KEY.to_owned()),
        ("INNGEST_EVENT_KEY", "load-event-key".to_owned()),
        ("INNGEST_BASE_URL", events.url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn free_port() -> Result<u16, Failure> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_healthy(base: &str) -> Result<(), Failure> {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(answer) = http.get(format!("{base}/health")).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the service did not answer /health within 30 s".into())
}

/// Posts one signed `checkout.session.completed` per order, `rate` per second.
async fn post_webhooks(base: &str, orders: &[Uuid], rate: u64, stats: Arc<Stats>) {
    let template = fixture("stripe/event_checkout_session_completed.json").unwrap_or_default();
    let http = reqwest::Client::new();
    let url = format!("{base}/api/webhooks/stripe");
    let in_flight = Arc::new(Semaphore::new(WEBHOOKS_IN_FLIGHT));
    let mut ticks =
        tokio::time::interval(Duration::from_secs(1) / u32::try_from(rate).unwrap_or(1));
    let mut sent = tokio::task::JoinSet::new();
    for (i, order) in orders.iter().enumerate() {
        ticks.tick().await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let payload = template
            .replace("evt_test_completed_1", &format!("evt_load_{i}"))
            .replace("cs_test_a1", &session_id(*order))
            .replace("00000000-0000-0000-0000-0000000000a1", &order.to_string());
        let signature =
            stripe_webhook::Webhook::generate_test_header(&payload, WEBHOOK_SECRET, None);
        let (http, url, stats) = (http.clone(), url.clone(), stats.clone());
        sent.spawn(async move {
            let started = Instant::now();
            let answer = http
                .post(&url)
                .header("stripe-signature", signature)
                .header("content-type", "application/json")
                .body(payload)
                .send()
                .await;
            let ok = answer.is_ok_and(|a| a.status().is_success());
            stats.webhook(started.elapsed(), ok);
            drop(permit);
        });
    }
    while sent.join_next().await.is_some() {}
}

/// Plays Inngest: every new event the relay (or a run) sends is run through the functions it
/// triggers, each event id once, until `expected` runs have finished.
async fn execute_events(
    engine: Arc<TestEngine<AppState>>,
    events: EventApi,
    stats: Arc<Stats>,
    expected: usize,
) {
    let in_flight = Arc::new(Semaphore::new(RUNS_IN_FLIGHT));
    let mut seen_ids = HashSet::new();
    let mut seen = 0;
    let mut runs = tokio::task::JoinSet::new();
    let mut finished = 0;
    while finished < expected {
        let all = events.events();
        for event in all.into_iter().skip(seen) {
            seen += 1;
            // Inngest stores an event id once; a repeated send is not a new run.
            if let Some(id) = &event.id
                && !seen_ids.insert(id.clone())
            {
                continue;
            }
            for function in engine.triggered_by(&event) {
                let (engine, stats, event) = (engine.clone(), stats.clone(), event.clone());
                let in_flight = in_flight.clone();
                runs.spawn(async move {
                    let Ok(_permit) = in_flight.acquire_owned().await else {
                        return;
                    };
                    let outcome = engine.run(&function, event).execute().await;
                    stats.run(&function, &outcome);
                });
            }
        }
        while let Some(done) = runs.try_join_next() {
            if done.is_ok() {
                finished += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Default)]
struct Stats {
    inner: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    webhooks: Vec<Duration>,
    webhook_errors: usize,
    executions: Vec<Duration>,
    execution_errors: usize,
    runs: usize,
    failed_runs: Vec<String>,
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn webhook(&self, latency: Duration, ok: bool) {
        let mut r = self.lock();
        r.webhooks.push(latency);
        if !ok {
            r.webhook_errors += 1;
        }
    }

    /// A run's requests: anything but 200 or 206, or a step that failed, is an error.
    fn run(&self, function: &str, outcome: &RunOutcome) {
        let mut r = self.lock();
        r.runs += 1;
        for request in &outcome.requests {
            r.executions.push(request.elapsed);
            if !matches!(request.status, 200 | 206) {
                r.execution_errors += 1;
            }
        }
        r.execution_errors += outcome
            .steps
            .iter()
            .filter(|s| matches!(s.op.as_str(), "StepError" | "StepFailed"))
            .count();
        if let Err(e) = &outcome.result {
            r.failed_runs
                .push(format!("{function}: {}: {}", e.name, e.message));
        }
    }

    fn errors(&self) -> usize {
        let r = self.lock();
        r.webhook_errors + r.execution_errors + r.failed_runs.len()
    }

    fn report(
        &self,
        purchases: usize,
        seconds: u64,
        rate: u64,
        sending: Duration,
        total: Duration,
    ) -> String {
        let mut r = self.lock();
        r.webhooks.sort();
        r.executions.sort();
        let per_second = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(0.001);
        let mut lines = vec![
            format!("target: {rate} purchases/s for {seconds} s ({purchases} purchases)"),
            format!(
                "webhooks: {} in {:.1} s = {:.1}/s held; p50 {} p99 {}; errors {}",
                r.webhooks.len(),
                sending.as_secs_f64(),
                per_second(r.webhooks.len(), sending),
                ms(percentile(&r.webhooks, 50)),
                ms(percentile(&r.webhooks, 99)),
                r.webhook_errors
            ),
            format!(
                "executions: {} signed requests in {} runs, {:.1}/s over {:.1} s; p50 {} p99 {}; errors {}",
                r.executions.len(),
                r.runs,
                per_second(r.executions.len(), total),
                total.as_secs_f64(),
                ms(percentile(&r.executions, 50)),
                ms(percentile(&r.executions, 99)),
                r.execution_errors
            ),
        ];
        lines.push(format!(
            "purchases: {purchases} paid and onboarded {:.1} s after the first webhook = {:.1}/s end to end",
            total.as_secs_f64(),
            per_second(purchases, total)
        ));
        for failed in r.failed_runs.iter().take(10) {
            lines.push(format!("failed run: {failed}"));
        }
        lines.join("\n")
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last * p).div_ceil(100)).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".to_owned(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    })
}

/// What the database holds after the run.
#[derive(QueryableByName, Debug)]
struct Check {
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    paid_orders: i64,
    #[diesel(sql_type = BigInt)]
    payments: i64,
    #[diesel(sql_type = BigInt)]
    orders_with_a_completed_payment: i64,
    #[diesel(sql_type = BigInt)]
    packs: i64,
    #[diesel(sql_type = BigInt)]
    orders_with_an_active_pack: i64,
    #[diesel(sql_type = BigInt)]
    seats: i64,
    #[diesel(sql_type = BigInt)]
    orders_whose_active_seat_holds_their_pack: i64,
    #[diesel(sql_type = BigInt)]
    mismatches: i64,
    #[diesel(sql_type = BigInt)]
    webhooks_not_forwarded: i64,
    #[diesel(sql_type = BigInt)]
    onboarding_outcomes: i64,
}

impl Check {
    async fn load(conn: &mut AsyncPgConnection) -> Result<Self, Failure> {
        Ok(diesel::sql_query(
            "SELECT
               (SELECT count(*) FROM orders) AS orders,
               (SELECT count(*) FROM orders WHERE status = 'paid') AS paid_orders,
               (SELECT count(*) FROM payments) AS payments,
               (SELECT count(DISTINCT order_id) FROM payments WHERE status = 'completed')
                 AS orders_with_a_completed_payment,
               (SELECT count(*) FROM session_packs) AS packs,
               (SELECT count(DISTINCT p.order_id) FROM session_packs s
                  JOIN payments p ON p.id = s.payment_id WHERE s.status = 'active')
                 AS orders_with_an_active_pack,
               (SELECT count(*) FROM seat_reservations) AS seats,
               (SELECT count(DISTINCT r.order_id) FROM seat_reservations r
                  JOIN session_packs s ON s.id = r.session_pack_id
                  JOIN payments p ON p.id = s.payment_id
                  WHERE p.order_id = r.order_id AND r.status = 'active')
                 AS orders_whose_active_seat_holds_their_pack,
               (SELECT count(*) FROM payment_mismatches) AS mismatches,
               (SELECT count(*) FROM webhook_inbox WHERE forwarded_at IS NULL)
                 AS webhooks_not_forwarded,
               (SELECT count(*) FROM onboarding_outcomes) AS onboarding_outcomes",
        )
        .get_result(conn)
        .await?)
    }

    /// Every count is one per purchase, and nothing failed or is left behind.
    fn holds(&self, purchases: usize) -> bool {
        let n = i64::try_from(purchases).unwrap_or(i64::MAX);
        let per_purchase = [
            ("orders", self.orders),
            ("paid orders", self.paid_orders),
            ("payments", self.payments),
            (
                "orders with a completed payment",
                self.orders_with_a_completed_payment,
            ),
            ("session packs", self.packs),
            (
                "orders with an active pack",
                self.orders_with_an_active_pack,
            ),
            ("seats", self.seats),
            (
                "orders whose active seat holds their pack",
                self.orders_whose_active_seat_holds_their_pack,
            ),
            ("onboarding outcomes", self.onboarding_outcomes),
        ];
        let none = [
            ("payment mismatches", self.mismatches),
            ("webhooks not forwarded", self.webhooks_not_forwarded),
        ];
        let mut ok = true;
        for (what, count) in per_purchase {
            if count != n {
                println!("FAIL: {count} {what}, expected {n}");
                ok = false;
            }
        }
        for (what, count) in none {
            if count != 0 {
                println!("FAIL: {count} {what}, expected none");
                ok = false;
            }
        }
        if ok {
            println!(
                "database: {n} purchases, each exactly one paid order, payment, active pack and active seat; nothing else"
            );
        }
        ok
    }
}
