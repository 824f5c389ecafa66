//! Each provider's errors are classified once: a 4xx (other than 408, 409 and 429) ends the
//! run at once, a 5xx, a 429 or an unreachable provider is retried, with the provider's
//! `Retry-After` when it gave one. Shown through the functions that call each provider
//! (Stripe, Clerk, Discord, Resend) and, for PayPal, whose calls happen in HTTP routes,
//! through its client.

use std::sync::Mutex;
use std::time::Duration;

use huckleberry::config::{PaypalConfig, Secret};
use huckleberry::integrations::paypal::PaypalApi;
use huckleberry::models::Provider;
use huckleberry::models::discord::DiscordConnection;
use inngest_sdk::testing::RunOutcome;
use inngest_sdk::{Classify, Event, Retry};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::onboarding::{f_user, purchase, purchase_event};
use crate::util::{TestApp, fixture, spawn_app, stripe_fixture};

/// Answers with each template in turn, then with the last one for ever.
struct Answers(Mutex<Vec<ResponseTemplate>>);

impl Answers {
    fn new(answers: Vec<ResponseTemplate>) -> Self {
        Self(Mutex::new(answers.into_iter().rev().collect()))
    }
}

impl Respond for Answers {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut left = self.0.lock().expect("lock");
        if left.len() > 1 {
            left.pop().expect("an answer")
        } else {
            left.last().cloned().expect("an answer")
        }
    }
}

fn ok_json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// The onboarding of a buyer who already connected Discord: it calls Clerk (the user, then the
/// metadata), Discord (the role) and Resend (the access email), each answering as given.
async fn onboard(app: &TestApp, clerk: Answers, discord: Answers, resend: Answers) -> RunOutcome {
    let f = purchase(app).await;
    let mut conn = app.conn().await;
    DiscordConnection::connect(&mut conn, f_user(app, &f).await, "discord-42", "ada_draws")
        .await
        .expect("connect");
    Mock::given(method("GET"))
        .and(path("/v1/users/user_clerk_1"))
        .respond_with(clerk)
        .mount(&app.clerk)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/users/user_clerk_1/metadata"))
        .respond_with(ok_json(fixture("clerk/user.json")))
        .mount(&app.clerk)
        .await;
    Mock::given(method("PUT"))
        .and(path("/guilds/guild-1/members/discord-42/roles/role-mentee"))
        .respond_with(discord)
        .mount(&app.discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(resend)
        .mount(&app.resend)
        .await;
    app.engine.run("onboarding-flow", purchase_event(&f)).await
}

fn clerk_ok() -> Answers {
    Answers::new(vec![ok_json(fixture("clerk/user.json"))])
}

fn discord_ok() -> Answers {
    Answers::new(vec![ResponseTemplate::new(204)])
}

fn resend_ok() -> Answers {
    Answers::new(vec![
        ResponseTemplate::new(200).set_body_json(json!({ "id": "em-access" })),
    ])
}

fn resend_error(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({ "statusCode": status, "name": name, "message": "no" }))
}

/// How often the step failed retriably, and whether it then failed for good.
fn failures(run: &RunOutcome, step: &str) -> (usize, usize) {
    let of = |op: &str| run.ops(op).iter().filter(|s| s.name == step).count();
    (of("StepError"), of("StepFailed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_4xx_ends_the_run_at_once() {
    let app = spawn_app().await;
    let refused = Answers::new(vec![ResponseTemplate::new(403).set_body_json(
        json!({ "errors": [{ "code": "authorization_invalid", "message": "no" }] }),
    )]);
    let run = onboard(&app, refused, discord_ok(), resend_ok()).await;
    assert!(run.error().message.contains("403"), "{:?}", run.error());
    assert_eq!(failures(&run, "get-clerk-user"), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_5xx_or_429_is_retried() {
    let app = spawn_app().await;
    let flaky = Answers::new(vec![
        ResponseTemplate::new(500),
        ResponseTemplate::new(429),
        ok_json(fixture("clerk/user.json")),
    ]);
    let run = onboard(&app, flaky, discord_ok(), resend_ok()).await;
    assert_eq!(run.output::<serde_json::Value>()["outcome"], "connected");
    assert_eq!(failures(&run, "get-clerk-user"), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_4xx_ends_the_run_at_once() {
    let app = spawn_app().await;
    let refused =
        Answers::new(vec![ResponseTemplate::new(403).set_body_json(
            json!({ "message": "Missing Permissions", "code": 50013 }),
        )]);
    let run = onboard(&app, clerk_ok(), refused, resend_ok()).await;
    assert!(run.error().message.contains("403"), "{:?}", run.error());
    assert_eq!(failures(&run, "grant-dashboard-access"), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_5xx_or_429_is_retried_after_its_retry_after() {
    let app = spawn_app().await;
    let flaky = Answers::new(vec![
        ResponseTemplate::new(502),
        ResponseTemplate::new(429)
            .insert_header("retry-after", "5")
            .set_body_json(json!({ "message": "You are being rate limited.", "retry_after": 5.0 })),
        ResponseTemplate::new(204),
    ]);
    let run = onboard(&app, clerk_ok(), flaky, resend_ok()).await;
    assert_eq!(run.output::<serde_json::Value>()["outcome"], "connected");
    assert_eq!(failures(&run, "grant-dashboard-access"), (2, 0));
    // The 502 waits by the function's backoff; the 429 as long as Discord asked.
    assert_eq!(run.retry_afters(), vec!["30", "5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_4xx_ends_the_run_at_once() {
    let app = spawn_app().await;
    let refused = Answers::new(vec![resend_error(422, "validation_error")]);
    let run = onboard(&app, clerk_ok(), discord_ok(), refused).await;
    assert!(
        run.error().message.contains("validation_error"),
        "{:?}",
        run.error()
    );
    assert_eq!(failures(&run, "send-access-email"), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_5xx_or_429_is_retried_after_its_reset() {
    let app = spawn_app().await;
    let flaky = Answers::new(vec![
        resend_error(500, "internal_server_error"),
        resend_error(429, "rate_limit_exceeded")
            .insert_header("ratelimit-limit", "2")
            .insert_header("ratelimit-remaining", "0")
            .insert_header("ratelimit-reset", "3"),
        ResponseTemplate::new(200).set_body_json(json!({ "id": "em-access" })),
    ]);
    let run = onboard(&app, clerk_ok(), discord_ok(), flaky).await;
    assert_eq!(run.output::<serde_json::Value>()["outcome"], "connected");
    assert_eq!(failures(&run, "send-access-email"), (2, 0));
    assert_eq!(run.retry_afters(), vec!["30", "3"]);
}

/// `process-stripe-checkout` for a fresh pending order; `stripe` is given the paid session's
/// body and returns Stripe's answers.
async fn stripe_checkout(app: &TestApp, stripe: impl FnOnce(String) -> Answers) -> RunOutcome {
    let product = app.seed_product(3).await;
    let pending = app
        .pending_order(&product, "user_clerk_1", Provider::Stripe)
        .await;
    let (order_id, product_id) = (pending.order.id, product.id);
    app.set_checkout_id(order_id, "cs_test_a1").await;
    let session = stripe_fixture("checkout_session_completed.json", order_id, product_id);
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_a1"))
        .respond_with(stripe(session))
        .mount(&app.stripe)
        .await;
    let event = Event::new(
        "stripe/checkout.session.completed",
        json!({ "sessionId": "cs_test_a1", "orderId": order_id, "userId": "user_clerk_1", "productId": product_id }),
    );
    app.engine.run("process-stripe-checkout", event).await
}

fn stripe_error(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": { "type": "invalid_request_error", "message": "No such checkout.session" }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_4xx_ends_the_run_at_once() {
    let app = spawn_app().await;
    let run = stripe_checkout(&app, |_| Answers::new(vec![stripe_error(404)])).await;
    assert!(run.error().message.contains("404"), "{:?}", run.error());
    assert_eq!(failures(&run, "get-stripe-session"), (0, 1));
    assert_eq!(app.count("payments").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_5xx_or_429_is_retried() {
    let app = spawn_app().await;
    let run = stripe_checkout(&app, |session| {
        Answers::new(vec![stripe_error(500), stripe_error(429), ok_json(session)])
    })
    .await;
    run.output::<serde_json::Value>();
    assert_eq!(failures(&run, "get-stripe-session"), (2, 0));
    assert_eq!(app.count("payments").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_outage_of_over_an_hour_delays_the_purchase_but_never_fails_it() {
    let app = spawn_app().await;
    let run = stripe_checkout(&app, |session| {
        let mut answers = vec![stripe_error(503); 12];
        answers.push(ok_json(session));
        Answers::new(answers)
    })
    .await;
    run.output::<serde_json::Value>();
    assert_eq!(failures(&run, "get-stripe-session"), (12, 0));
    let waited: u64 = run
        .retry_afters()
        .iter()
        .map(|s| s.parse::<u64>().expect("whole seconds"))
        .sum();
    assert!(waited >= 3600, "the retries spanned only {waited} s");
    assert_eq!(app.count("payments").await, 1);
}

#[test]
fn every_function_that_moves_money_or_access_retries_for_over_an_hour() {
    let functions = huckleberry::functions::all();
    for id in huckleberry::functions::MONEY_PATHS {
        let function = functions
            .iter()
            .find(|f| f.opts().id() == id)
            .unwrap_or_else(|| panic!("{id} is served"));
        let window = function.opts().retry_window().unwrap_or_default();
        assert!(
            window >= Duration::from_secs(3600),
            "{id} gives up after {window:?}"
        );
    }
}

fn paypal(api_base: String) -> PaypalApi {
    PaypalApi::new(
        &PaypalConfig {
            client_id: "paypal-client".into(),
            client_secret: Secret::new("paypal-secret"),
            webhook_id: "WH-TEST-ID".into(),
            api_base,
        },
        huckleberry::integrations::http_client(huckleberry::config::DEFAULT_PROVIDER_TIMEOUT)
            .expect("an HTTP client"),
    )
}

/// What Inngest would do after a PayPal capture answered `answer`.
async fn paypal_capture_retry(answer: ResponseTemplate) -> Retry {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "access_token": "A21", "expires_in": 3600 })),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders/5O190127TN364715T/capture"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let err = paypal(server.uri())
        .capture_order("5O190127TN364715T")
        .await
        .expect_err("the capture fails");
    err.retry()
}

#[tokio::test]
async fn paypal_answers_are_final_for_4xx_and_retried_for_5xx_and_429() {
    let unprocessable = ResponseTemplate::new(422)
        .set_body_json(json!({ "name": "UNPROCESSABLE_ENTITY", "details": [] }));
    assert_eq!(paypal_capture_retry(unprocessable).await, Retry::Never);
    assert_eq!(
        paypal_capture_retry(ResponseTemplate::new(500)).await,
        Retry::Default
    );
    assert_eq!(
        paypal_capture_retry(ResponseTemplate::new(429)).await,
        Retry::Default
    );
    let busy = ResponseTemplate::new(503).insert_header("retry-after", "9");
    assert_eq!(
        paypal_capture_retry(busy).await,
        Retry::After(Duration::from_secs(9))
    );
    let conflict = ResponseTemplate::new(409);
    assert_eq!(paypal_capture_retry(conflict).await, Retry::Default);
}

#[tokio::test]
async fn an_unreachable_provider_is_retried() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = paypal(format!("http://{addr}"))
        .capture_order("5O190127TN364715T")
        .await
        .expect_err("nothing answers");
    assert_eq!(err.retry(), Retry::Default);
    let inngest: inngest_sdk::Error = err.into();
    assert!(inngest.is_retriable());
}
