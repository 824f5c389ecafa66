//! The dev console (`GET /dev`): it shows the database's state of a purchase through the
//! router, its forms act through our own API, and it does not exist in cloud mode.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use huckleberry::demo::PRODUCT_IDS;
use huckleberry::models::{Order, OrderStatus, SessionPack, SessionStatus};
use huckleberry::schema::{orders, session_packs, sessions, users};
use serde_json::json;
use uuid::Uuid;

use crate::sessions::{MENTEE, pack};
use crate::util::dev_app::DevApp;
use crate::util::{TestApp, session_token, spawn_app, spawn_app_with};

const MINA: &str = "user_demo_buyer_mina";
const JONAS: &str = "user_demo_buyer_jonas";
const ADA: &str = "user_demo_mentor_ada";

async fn console(app: &TestApp) -> String {
    page_at(&app.http, &app.url("/dev")).await
}

async fn page_at(http: &reqwest::Client, url: &str) -> String {
    let response = http.get(url).send().await.expect("the app answers");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    response.text().await.expect("body")
}

/// A status cell of the page (`<td class="status-paid">paid</td>`).
fn status(status: &str) -> String {
    format!("<td class=\"status-{status}\">{status}</td>")
}

/// The part of the page from the section with `id` to the end of that section.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!(" id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id} in:\n{page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_paid_purchase_its_seat_session_and_events() {
    let app = spawn_app().await;
    let pack = pack(&app).await;
    let at = Utc::now() + Duration::days(3);
    let booked = app
        .http
        .post(app.url("/api/sessions"))
        .bearer_auth(session_token(MENTEE, 300))
        .json(&json!({ "packId": pack.id, "scheduledAt": at }))
        .send()
        .await
        .expect("the app answers");
    assert_eq!(booked.status(), 201);

    let page = console(&app).await;
    let orders = section(&page, "orders");
    assert!(orders.contains(&status("paid")), "{orders}");
    assert!(orders.contains("200.00 USD"), "{orders}");
    assert!(orders.contains("stripe"), "{orders}");
    let packs = section(&page, "packs");
    assert!(packs.contains("4 of 4"), "{packs}");
    assert!(packs.contains(&status("active")), "{packs}");
    let seats = section(&page, "seats");
    assert!(seats.contains("Ada Mentor"), "{seats}");
    assert!(seats.contains("1 of 3"), "{seats}");
    let sessions = section(&page, "sessions");
    assert!(sessions.contains(&status("scheduled")), "{sessions}");
    assert!(
        sessions.contains(&at.format("%Y-%m-%d %H:%M UTC").to_string()),
        "{sessions}"
    );
    // The booking's event waits in the inbox for the relay.
    let inbox = section(&page, "inbox");
    assert!(inbox.contains("session/scheduled"), "{inbox}");
    // The purchase's onboarding has not sent its welcome email yet: it waits.
    let waiting = section(&page, "waiting");
    assert!(waiting.contains("onboarding-flow"), "{waiting}");
}

#[tokio::test]
async fn an_empty_database_renders_an_empty_console() {
    let app = spawn_app().await;
    let page = console(&app).await;
    assert!(page.contains("No orders yet."), "{page}");
    assert!(page.contains("The inbox is empty."), "{page}");
}

#[tokio::test]
async fn there_is_no_console_in_cloud_mode() {
    let app = spawn_app_with(&[
        ("INNGEST_DEV", "0"),
        (
            "INNGEST_SIGNING_KEY",
            "signkey-test-4465764f6e6c79436f6e736f6c654b6579",
        ),
        ("INNGEST_EVENT_KEY", "event-key-dev-console"),
    ])
    .await;
    let response = app
        .http
        .get(app.url("/dev"))
        .send()
        .await
        .expect("the app answers");
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("the envelope");
    assert_eq!(body["error"], "not_found");
}

/// Posts a console form; answers where it sends the browser.
async fn submit(app: &DevApp, path: &str, form: &[(&str, &str)]) -> String {
    let response = app
        .http
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("the app answers");
    assert_eq!(
        response.status(),
        303,
        "{path}: {:?}",
        response.text().await
    );
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_owned()
}

async fn orders_of(app: &DevApp, clerk_id: &str) -> Vec<Order> {
    let mut conn = app.state().conn().await.expect("a connection");
    orders::table
        .inner_join(users::table)
        .filter(users::clerk_id.eq(clerk_id))
        .select(Order::as_select())
        .load(&mut conn)
        .await
        .expect("orders")
}

/// Buys `product` as `buyer` through the console, pays on the Stripe stand-in, and waits
/// until the order is paid (the executor runs `process-stripe-checkout`).
async fn buy_and_pay(app: &DevApp, buyer: &str, product: Uuid) {
    let checkout = submit(
        app,
        "/dev/buy",
        &[
            ("buyer", buyer),
            ("product_id", &product.to_string()),
            ("provider", "stripe"),
        ],
    )
    .await;
    let paid = app
        .http
        .post(format!("{checkout}/pay"))
        .send()
        .await
        .expect("the stand-in answers");
    assert!(paid.status().is_redirection(), "{:?}", paid.text().await);
    for _ in 0..100 {
        if orders_of(app, buyer)
            .await
            .iter()
            .any(|o| o.status == OrderStatus::Paid)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the order of {buyer} was not paid within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buy_form_starts_a_checkout_as_the_demo_buyer_and_sends_the_browser_to_pay() {
    let app = DevApp::spawn().await;
    let page = page_at(&app.http, &app.url("/dev")).await;
    assert!(
        page.contains("Mina Castellanos (mina@demo.huckleberry.art)"),
        "{page}"
    );

    let location = submit(
        &app,
        "/dev/buy",
        &[
            ("buyer", MINA),
            ("product_id", &PRODUCT_IDS[0].to_string()),
            ("provider", "stripe"),
        ],
    )
    .await;
    assert!(
        location.starts_with(&app.url("/sandbox/stripe/checkout/cs_")),
        "{location}"
    );
    let orders = orders_of(&app, MINA).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status, OrderStatus::Pending);
    let page = page_at(&app.http, &app.url("/dev")).await;
    let orders = section(&page, "orders");
    assert!(orders.contains(&status("pending")), "{orders}");
    assert!(orders.contains("240.00 EUR"), "{orders}");
    let waiting = section(&page, "waiting");
    assert!(
        waiting.contains("checkout hold of Mina Castellanos"),
        "{waiting}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_checkout_comes_back_to_the_console_as_a_notice() {
    let app = DevApp::spawn().await;
    // Tomás takes one buyer at a time.
    let tomas = PRODUCT_IDS[2].to_string();
    let form = |buyer| {
        [
            ("buyer", buyer),
            ("product_id", tomas.as_str()),
            ("provider", "stripe"),
        ]
    };
    submit(&app, "/dev/buy", &form(MINA)).await;
    let location = submit(&app, "/dev/buy", &form(JONAS)).await;
    assert!(location.starts_with("/dev?notice="), "{location}");
    let page = page_at(&app.http, &app.url(&location)).await;
    let notice = section(&page, "notice");
    assert!(notice.contains("checkout refused"), "{notice}");
    assert!(notice.contains("(mentor_full)"), "{notice}");
    assert!(orders_of(&app, JONAS).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_books_a_session_as_the_buyer_and_completes_it_as_the_mentor() {
    let app = DevApp::spawn().await;
    buy_and_pay(&app, MINA, PRODUCT_IDS[0]).await;
    let pack: SessionPack = {
        let mut conn = app.state().conn().await.expect("a connection");
        session_packs::table
            .select(SessionPack::as_select())
            .first(&mut conn)
            .await
            .expect("the pack")
    };
    let page = page_at(&app.http, &app.url("/dev")).await;
    assert!(section(&page, "orders").contains(&status("paid")), "{page}");
    assert!(section(&page, "packs").contains("4 of 4"), "{page}");

    let at = (Utc::now() + Duration::days(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let pack_choice = format!("{}|{MINA}", pack.id);
    let location = submit(
        &app,
        "/dev/sessions",
        &[("pack", &pack_choice), ("scheduled_at", &at)],
    )
    .await;
    let page = page_at(&app.http, &app.url(&location)).await;
    assert!(
        section(&page, "notice").contains("booked a session"),
        "{page}"
    );
    assert!(
        section(&page, "sessions").contains(&status("scheduled")),
        "{page}"
    );
    let session_id: Uuid = {
        let mut conn = app.state().conn().await.expect("a connection");
        sessions::table
            .filter(sessions::session_pack_id.eq(pack.id))
            .select(sessions::id)
            .first(&mut conn)
            .await
            .expect("the booked session")
    };

    let location = submit(
        &app,
        &format!("/dev/sessions/{session_id}/complete"),
        &[("mentor", ADA)],
    )
    .await;
    let page = page_at(&app.http, &app.url(&location)).await;
    assert!(
        section(&page, "notice").contains("completed session"),
        "{page}"
    );
    assert!(
        section(&page, "sessions").contains(&status("completed")),
        "{page}"
    );
    let status: SessionStatus = {
        let mut conn = app.state().conn().await.expect("a connection");
        sessions::table
            .find(session_id)
            .select(sessions::status)
            .first(&mut conn)
            .await
            .expect("the session")
    };
    assert_eq!(status, SessionStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complete_form_refuses_to_act_as_the_mentee() {
    let app = DevApp::spawn().await;
    buy_and_pay(&app, MINA, PRODUCT_IDS[0]).await;
    let pack_id: Uuid = {
        let mut conn = app.state().conn().await.expect("a connection");
        session_packs::table
            .select(session_packs::id)
            .first(&mut conn)
            .await
            .expect("the pack")
    };
    let at = (Utc::now() + Duration::days(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    submit(
        &app,
        "/dev/sessions",
        &[
            ("pack", &format!("{pack_id}|{MINA}")),
            ("scheduled_at", &at),
        ],
    )
    .await;
    let session_id: Uuid = {
        let mut conn = app.state().conn().await.expect("a connection");
        sessions::table
            .select(sessions::id)
            .first(&mut conn)
            .await
            .expect("session")
    };
    let location = submit(
        &app,
        &format!("/dev/sessions/{session_id}/complete"),
        &[("mentor", MINA)],
    )
    .await;
    let page = page_at(&app.http, &app.url(&location)).await;
    assert!(section(&page, "notice").contains("(mentor_only)"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_site_is_refused() {
    let app = DevApp::spawn().await;
    let product = PRODUCT_IDS[0].to_string();
    let form = [
        ("buyer", MINA),
        ("product_id", &product),
        ("provider", "stripe"),
    ];
    let response = app
        .http
        .post(app.url("/dev/buy"))
        .header("origin", "https://elsewhere.example")
        .form(&form)
        .send()
        .await
        .expect("the app answers");
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.expect("the envelope");
    assert_eq!(body["error"], "cross_origin");
    assert!(orders_of(&app, MINA).await.is_empty());

    // The console's own page posts with its own origin.
    let response = app
        .http
        .post(app.url("/dev/buy"))
        .header("origin", app.url(""))
        .form(&form)
        .send()
        .await
        .expect("the app answers");
    assert_eq!(response.status(), 303);
    assert_eq!(orders_of(&app, MINA).await.len(), 1);
}
