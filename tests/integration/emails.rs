//! The mailer: an email goes to Resend once per idempotency key, also when two runs send it at
//! once, and again only when a send failed or its sender died before logging it.

use std::time::Duration;

use huckleberry::email::RenewalReminder;
use huckleberry::models::email_log::{Claim, EmailLogEntry, SentEmail};
use huckleberry::notifications::{Delivery, NotifyError};
use inngest_sdk::{Classify, Retry};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::onboarding::{emails_sent, mock_resend};
use crate::util::spawn_app;

const TO: &str = "ada@example.com";

/// A renewal reminder to `TO` as the log records it, under `key`.
fn logged(key: &str) -> SentEmail<'_> {
    SentEmail {
        user_id: None,
        to: TO,
        kind: "renewal_reminder",
        idempotency_key: key,
    }
}

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
    // Resend takes a while to answer: the second run asks while the first is sending.
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(2))
                .set_body_json(json!({ "id": "em_1" })),
        )
        .mount(&app.resend)
        .await;
    let state = app.state.clone();
    let first =
        tokio::spawn(async move { state.mailer().send(None, TO, &reminder(), "key-1").await });
    // Once Resend has the first run's request, that run holds the claim.
    let started = std::time::Instant::now();
    while emails_sent(&app).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the first run never sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mailer = app.state.mailer();
    let busy = mailer
        .send(None, TO, &reminder(), "key-1")
        .await
        .expect_err("the second finds it being sent");
    assert!(matches!(busy, NotifyError::InFlight { .. }), "{busy:?}");
    assert_ne!(busy.retry(), Retry::Never, "retried later");

    let sent = Delivery::Sent {
        provider_id: "em_1".into(),
    };
    assert_eq!(first.await.expect("joins").expect("the first sends"), sent);
    // The second's retry finds it sent.
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
    let email = logged("key-3");
    let minute = Duration::from_secs(60);
    let Claim::Ours(dead) = EmailLogEntry::claim(&mut conn, &email, minute)
        .await
        .expect("claim")
    else {
        panic!("the first claim is ours")
    };
    // Its sender died before logging: within the lease the claim stands.
    let again = EmailLogEntry::claim(&mut conn, &email, minute).await;
    assert!(matches!(again, Ok(Claim::Taken)), "{again:?}");
    // Past the lease (none here), another sender takes it over.
    let over = EmailLogEntry::claim(&mut conn, &email, Duration::ZERO).await;
    assert!(
        matches!(over, Ok(Claim::Ours(token)) if token != dead),
        "{over:?}"
    );
    // The first sender, back and failing, cannot give away the new sender's claim.
    EmailLogEntry::release(&mut conn, "key-3", dead)
        .await
        .expect("release");
    let still = EmailLogEntry::claim(&mut conn, &email, minute).await;
    assert!(matches!(still, Ok(Claim::Taken)), "{still:?}");

    EmailLogEntry::mark_sent(&mut conn, &email, "em_3")
        .await
        .expect("logged");
    match EmailLogEntry::claim(&mut conn, &email, minute).await {
        Ok(Claim::Sent(entry)) => {
            assert_eq!(entry.provider_message_id.as_deref(), Some("em_3"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_sent_after_its_claim_was_given_away_is_still_logged() {
    let app = spawn_app().await;
    let mut conn = app.conn().await;
    let email = logged("key-4");
    let Ok(Claim::Ours(token)) = EmailLogEntry::claim(&mut conn, &email, Duration::ZERO).await
    else {
        panic!("ours")
    };
    EmailLogEntry::release(&mut conn, "key-4", token)
        .await
        .expect("released");
    EmailLogEntry::mark_sent(&mut conn, &email, "em_4")
        .await
        .expect("logged");
    let entry = EmailLogEntry::by_key(&mut conn, "key-4")
        .await
        .expect("query")
        .expect("an entry");
    assert_eq!(entry.provider_message_id.as_deref(), Some("em_4"));
}
