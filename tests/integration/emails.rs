//! The mailer: an email goes to Resend once per idempotency key, also when two runs send it at
//! once, and again only when a send failed or its sender died before logging it.

use std::time::Duration;

use huckleberry::email::RenewalReminder;
use huckleberry::models::email_log::{Claim, EmailLogEntry};
use huckleberry::notifications::{Delivery, NotifyError};
use inngest_sdk::{Classify, Retry};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::onboarding::{emails_sent, mock_resend};
use crate::util::spawn_app;

const TO: &str = "ada@example.com";

fn reminder() -> RenewalReminder {
    RenewalReminder {
        first_name: Some("Ada".into()),
        mentor_name: "Mentor".into(),
        sessions_remaining: 1,
        renew_link: "http://localhost:3000/renew/1".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_sending_the_same_email_at_once_send_it_once() {
    let app = spawn_app().await;
    // Resend takes a while: the second run asks while the first is sending.
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(500))
                .set_body_json(json!({ "id": "em_1" })),
        )
        .mount(&app.resend)
        .await;
    let mailer = app.state.mailer();
    let email = reminder();
    let (first, second) = tokio::join!(mailer.send(None, TO, &email, "key-1"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        mailer.send(None, TO, &email, "key-1").await
    });
    let sent = Delivery::Sent {
        provider_id: "em_1".into(),
    };
    assert_eq!(first.expect("the first sends"), sent);
    let busy = second.expect_err("the second finds it being sent");
    assert!(matches!(busy, NotifyError::InFlight), "{busy:?}");
    assert_ne!(busy.retry(), Retry::Never, "retried later");

    // Its retry finds it sent.
    let retried = mailer.send(None, TO, &reminder(), "key-1").await;
    assert_eq!(retried.expect("already sent"), sent);
    assert_eq!(emails_sent(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_gives_its_claim_back_and_the_retry_sends_at_once() {
    let app = spawn_app().await;
    mock_resend(&app, 1).await;
    let mailer = app.state.mailer();
    let failed = mailer.send(None, TO, &reminder(), "key-2").await;
    assert!(matches!(failed, Err(NotifyError::Resend(_))), "{failed:?}");
    let sent = mailer.send(None, TO, &reminder(), "key-2").await;
    assert!(matches!(sent, Ok(Delivery::Sent { .. })), "{sent:?}");
    assert_eq!(emails_sent(&app).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_left_by_a_sender_that_died_is_taken_over_after_its_lease() {
    let app = spawn_app().await;
    let mut conn = app.conn().await;
    let claim = |lease| {
        let state = app.state.clone();
        async move {
            let mut conn = state.conn().await.expect("conn");
            EmailLogEntry::claim(&mut conn, None, TO, "renewal_reminder", "key-3", lease)
                .await
                .expect("claim")
        }
    };
    let lease = Duration::from_millis(300);
    assert!(matches!(claim(lease).await, Claim::Ours));
    // Its sender died before logging: within the lease the claim stands.
    assert!(matches!(claim(lease).await, Claim::Taken));
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(matches!(claim(lease).await, Claim::Ours), "taken over");
    EmailLogEntry::mark_sent(&mut conn, "key-3", "em_3")
        .await
        .expect("logged");
    match claim(lease).await {
        Claim::Sent(entry) => assert_eq!(entry.provider_message_id.as_deref(), Some("em_3")),
        other => panic!("{other:?}"),
    }
}
