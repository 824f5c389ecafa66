//! Access follows the database whatever the interleaving: a refund racing the grant leaves
//! Clerk saying "no access", and no "access granted" email goes out for a refunded pack.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::patch;
use huckleberry::access::Access;
use huckleberry::config::{ClerkConfig, Secret};
use huckleberry::integrations::clerk::ClerkApi;
use huckleberry::models::discord::DiscordConnection;
use huckleberry::models::{RevokeReason, SessionPack};
use serde_json::Value;
use tokio::sync::Notify;

use crate::onboarding::{
    emails_sent, f_user, mock_clerk_metadata, mock_clerk_user, mock_resend, purchase,
    purchase_event,
};
use crate::util::{fixture, spawn_app};

/// A Clerk whose first "access" write is slow on the way: it lands (is applied) 1.5 s after
/// it was sent, as a write stuck in a slow network path would.
#[derive(Clone, Default)]
struct SlowClerk {
    applied: Arc<Mutex<Vec<Value>>>,
    first_write: Arc<Notify>,
    slowed: Arc<Mutex<bool>>,
}

impl SlowClerk {
    async fn start(self) -> String {
        let router = axum::Router::new()
            .route("/v1/users/{id}/metadata", patch(Self::update))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}/v1")
    }

    async fn update(State(clerk): State<Self>, Json(body): Json<Value>) -> Json<Value> {
        let dashboard = body["public_metadata"]["dashboard"].clone();
        let slow = {
            let mut slowed = clerk.slowed.lock().expect("lock");
            let first = dashboard["access"] == true && !*slowed;
            *slowed |= first;
            first
        };
        clerk.first_write.notify_one();
        if slow {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        clerk.applied.lock().expect("lock").push(dashboard);
        Json(serde_json::from_str(&fixture("clerk/user.json")).expect("user"))
    }

    fn last_applied(&self) -> Value {
        self.applied
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("a write")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_racing_the_grant_leaves_clerk_saying_no_access() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    let clerk = SlowClerk::default();
    let api = ClerkApi::new(
        &ClerkConfig {
            secret_key: Secret::new("sk_test_clerk"),
            api_base: clerk.clone().start().await,
        },
        Duration::from_secs(10),
    )
    .expect("a Clerk client");
    let access = Access::new(&app.state.db, Some(&api), None);
    let grant = access.grant(f.pack_id);
    let refund = async {
        // The grant has read the database ("access") and its write to Clerk is on its way.
        clerk.first_write.notified().await;
        SessionPack::mark_refunded(&mut *app.conn().await, f.pack_id)
            .await
            .expect("refund the pack");
        access.revoke(f.pack_id, RevokeReason::Refunded).await
    };
    let (granted, revoked) = tokio::join!(grant, refund);
    assert!(granted.expect("granted").has_access);
    assert!(!revoked.expect("revoked").expect("had access").has_access);
    assert_eq!(
        clerk.last_applied()["access"],
        false,
        "Clerk ends where the database is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_access_email_is_sent_for_a_pack_refunded_before_onboarding_granted_it() {
    let app = spawn_app().await;
    let f = purchase(&app).await;
    let mut conn = app.conn().await;
    DiscordConnection::connect(&mut conn, f_user(&app, &f).await, "discord-42", "ada_draws")
        .await
        .expect("connect");
    SessionPack::mark_refunded(&mut conn, f.pack_id)
        .await
        .expect("refund the pack");
    mock_clerk_user(
        &app,
        serde_json::from_str(&fixture("clerk/user.json")).expect("json"),
    )
    .await;
    mock_resend(&app, 0).await;
    mock_clerk_metadata(&app, 0).await;
    let run = app.engine.run("onboarding-flow", purchase_event(&f)).await;
    assert_eq!(run.output::<Value>()["outcome"], "connected");
    assert!(
        emails_sent(&app).await.is_empty(),
        "no email for a refunded pack"
    );
}
