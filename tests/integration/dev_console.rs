//! The dev console (`GET /dev`): it shows the database's state of a purchase through the
//! router, its forms act through our own API, and it does not exist in cloud mode.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::sessions::{MENTEE, pack};
use crate::util::{TestApp, session_token, spawn_app, spawn_app_with};

async fn console(app: &TestApp) -> String {
    let response = app
        .http
        .get(app.url("/dev"))
        .send()
        .await
        .expect("the app answers");
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
    assert!(orders.contains(">paid<"), "{orders}");
    assert!(orders.contains("200.00 USD"), "{orders}");
    assert!(orders.contains("stripe"), "{orders}");
    let packs = section(&page, "packs");
    assert!(packs.contains("4 of 4"), "{packs}");
    assert!(packs.contains(">active<"), "{packs}");
    let seats = section(&page, "seats");
    assert!(seats.contains("Ada Mentor"), "{seats}");
    assert!(seats.contains("1 of 3"), "{seats}");
    let sessions = section(&page, "sessions");
    assert!(sessions.contains(">scheduled<"), "{sessions}");
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
