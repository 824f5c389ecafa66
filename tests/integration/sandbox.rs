//! The sandbox stand-ins of `huckleberry dev`: each speaks its provider's wire format to our
//! own clients and refuses what the provider would refuse; none of it is mounted without a
//! sandbox. Run on the demo's [`LocalService`] (every provider stood in, Inngest played by the
//! executor).

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use huckleberry::demo::local::LocalService;
use huckleberry::demo::{self, PRODUCT_IDS};
use huckleberry::models::{Order, OrderStatus};
use huckleberry::sandbox::DEMO_BUYERS;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::util::database::TestDatabase;
use crate::util::spawn_app;

struct Sandboxed {
    service: LocalService,
    http: reqwest::Client,
    _database: TestDatabase,
}

async fn sandboxed() -> Sandboxed {
    let database = TestDatabase::migrated().await;
    let mut conn = AsyncPgConnection::establish(database.url())
        .await
        .expect("connect");
    demo::seed(&mut conn).await.expect("the demo data");
    let service = LocalService::start(database.url(), Arc::new(|_| {}))
        .await
        .expect("the service starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Sandboxed {
        service,
        http,
        _database: database,
    }
}

impl Sandboxed {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.service.origin)
    }

    /// Starts a Stripe checkout as the first demo buyer; (order id, checkout URL).
    async fn checkout(&self) -> (Uuid, String) {
        let sandbox = self.service.state.sandbox.as_ref().expect("a sandbox");
        let token = sandbox
            .session_token(DEMO_BUYERS[0].clerk_id)
            .expect("a token");
        let response = self
            .http
            .post(self.url("/api/checkout"))
            .bearer_auth(token)
            .json(&json!({"product_id": PRODUCT_IDS[0], "provider": "stripe"}))
            .send()
            .await
            .expect("checkout");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        (
            body["order_id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("uuid"),
            body["checkout_url"].as_str().expect("url").to_owned(),
        )
    }

    async fn order(&self, id: Uuid) -> Order {
        let mut conn = self.service.state.conn().await.expect("conn");
        Order::find(&mut conn, id)
            .await
            .expect("query")
            .expect("the order")
    }

    /// Waits (30 s at most) for the functions to bring the order to `status`.
    async fn wait_for(&self, id: Uuid, status: OrderStatus) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let order = self.order(id).await;
            if order.status == status {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the order stayed {:?}; runs: {:?}",
                order.status,
                self.service.finished()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn paying_on_the_stand_in_fulfils_the_order_and_a_second_payment_is_refused() {
    let app = sandboxed().await;
    let (order_id, checkout_url) = app.checkout().await;
    assert!(
        checkout_url.starts_with(&app.url("/sandbox/stripe/checkout/cs_test_sandbox_")),
        "{checkout_url}"
    );
    let page = app.http.get(&checkout_url).send().await.expect("page");
    assert!(page.text().await.expect("html").contains("240.00 EUR"));

    let paid = app
        .http
        .post(format!("{checkout_url}/pay"))
        .send()
        .await
        .expect("pay");
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let to = paid.headers()["location"].to_str().expect("location");
    assert!(
        to.contains("/checkout/success?session_id=cs_test_sandbox_"),
        "{to}"
    );
    // Not `settle`: onboarding then waits for Discord, which nobody connects here.
    app.wait_for(order_id, OrderStatus::Paid).await;

    let again = app
        .http
        .post(format!("{checkout_url}/pay"))
        .send()
        .await
        .expect("pay again");
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn expiring_a_checkout_at_the_stand_in_sends_the_expired_webhook_and_frees_the_seat() {
    let app = sandboxed().await;
    let (order_id, checkout_url) = app.checkout().await;
    let session_id = checkout_url.rsplit('/').next().expect("an id");
    let stripe = app.service.state.stripe.as_ref().expect("stripe");
    let closed = stripe.close_checkout(session_id).await.expect("closed");
    assert_eq!(closed, huckleberry::integrations::ClosedCheckout::Unpaid);
    app.wait_for(order_id, OrderStatus::Expired).await;
    let page = app.http.get(&checkout_url).send().await.expect("page");
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("<strong>expired</strong>")
    );
}

#[tokio::test]
async fn the_stand_ins_refuse_other_keys_unknown_users_and_a_reused_code() {
    let app = sandboxed().await;
    let stripe = app
        .http
        .post(app.url("/sandbox/stripe/v1/checkout/sessions"))
        .bearer_auth("sk_test_someone_else")
        .send()
        .await
        .expect("stripe");
    assert_eq!(stripe.status(), StatusCode::UNAUTHORIZED);
    let body: Value = stripe.json().await.expect("json");
    assert_eq!(body["error"]["code"], "api_key_invalid");

    let clerk = app.service.state.clerk.as_ref().expect("clerk");
    let missing = clerk.get_user("user_nobody").await.expect_err("unknown");
    assert!(
        matches!(
            missing,
            huckleberry::integrations::clerk::ClerkApiError::NotFound(_)
        ),
        "{missing:?}"
    );
    let mina = clerk
        .get_user(DEMO_BUYERS[0].clerk_id)
        .await
        .expect("known");
    assert_eq!(mina.email.as_deref(), Some(DEMO_BUYERS[0].email));

    let resend = app
        .http
        .post(app.url("/sandbox/resend/emails"))
        .bearer_auth("re_other")
        .json(&json!({"to": ["a@b.c"], "subject": "hi"}))
        .send()
        .await
        .expect("resend");
    assert_eq!(resend.status(), StatusCode::UNAUTHORIZED);

    let callback = app.url("/api/auth/discord/callback");
    let approved = app
        .http
        .get(app.url("/sandbox/discord/oauth2/approve"))
        .query(&[
            ("redirect_uri", callback.as_str()),
            ("state", "s"),
            ("username", "ada"),
            ("decision", "authorize"),
        ])
        .send()
        .await
        .expect("approve");
    let back =
        url::Url::parse(approved.headers()["location"].to_str().expect("location")).expect("url");
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let discord = app.service.state.discord.as_ref().expect("discord");
    discord
        .exchange_code(&code, &callback)
        .await
        .expect("the first exchange");
    assert!(
        discord.exchange_code(&code, &callback).await.is_err(),
        "a code is used once"
    );
}

#[tokio::test]
async fn without_a_sandbox_there_are_no_sandbox_routes() {
    let app = spawn_app().await;
    for path in ["/sandbox/", "/sandbox/outbox", "/sandbox/clerk/v1/jwks"] {
        let response = app.http.get(app.url(path)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.expect("the envelope");
        assert_eq!(body["error"], "not_found", "{path}");
    }
}
