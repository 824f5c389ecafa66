//! `huckleberry demo`: one purchase told from start to end, through the real routes and
//! functions of a [`LocalService`]. A buyer checks out with Stripe and pays on the stand-in; the
//! signed webhook is stored and relayed; the purchase is fulfilled; onboarding sends the welcome
//! email, whose Discord link she follows through the real OAuth routes; access opens; the
//! mentor completes her sessions (a renewal reminder with one left); after the last, the 72-hour
//! grace period (played at once) ends and the seat is released. Each function and step is
//! printed as it runs, then the state the database ends in.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::PRODUCT_IDS;
use super::local::{LocalService, Progress, ProgressSink};
use crate::models::access::DashboardAccess;
use crate::models::email_log::EmailLogEntry;
use crate::models::{Order, SeatReservation, SessionPack};
use crate::sandbox::DEMO_BUYERS;

/// Where the walkthrough's lines go.
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// How long each stage may take before the walkthrough gives up.
const STAGE_LIMIT: Duration = Duration::from_secs(60);

/// The state the database ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalState {
    pub order_status: String,
    pub paid: String,
    pub pack_status: String,
    pub remaining_sessions: i32,
    pub seat_status: String,
    pub release_reason: Option<String>,
    pub access_granted: bool,
    /// The kinds of email sent to the buyer, in order.
    pub emails: Vec<String>,
    /// Function runs that failed (none, when all went well).
    pub failed_runs: Vec<String>,
}

/// Why the walkthrough stopped.
#[derive(Debug, thiserror::Error)]
#[error("the demo stopped: {0}")]
pub struct DemoError(String);

fn stop(what: impl std::fmt::Display) -> DemoError {
    DemoError(what.to_string())
}

/// Prints progress the way the walkthrough shows it.
pub fn progress_printer(say: Say) -> ProgressSink {
    Arc::new(move |progress| match progress {
        Progress::Started { function, event } => say(&format!("   ▶ {function} ← {event}")),
        Progress::Step { function, op, step } => {
            let what = match op.as_str() {
                "StepRun" => "ran",
                "Sleep" => "slept (played at once)",
                "WaitForEvent" => "waited for an event",
                "StepError" => "failed, to be retried",
                "StepFailed" => "failed",
                "InvokeFunction" => "invoked",
                other => other,
            };
            say(&format!("     {function} · {step}: {what}"));
        }
        Progress::Finished {
            function,
            error: None,
        } => say(&format!("   ✓ {function} done")),
        Progress::Finished {
            function,
            error: Some(e),
        } => say(&format!("   ✗ {function} failed: {e}")),
    })
}

/// Runs the walkthrough on `service` (whose database has the demo data).
pub async fn run(service: &LocalService, say: Say) -> Result<FinalState, DemoError> {
    let sandbox = service
        .state
        .sandbox
        .clone()
        .ok_or_else(|| stop("the service has no sandbox"))?;
    let buyer = DEMO_BUYERS[0];
    let token = |clerk_id: &str| {
        sandbox
            .session_token(clerk_id)
            .ok_or_else(|| stop("Clerk is not stood in"))
    };
    let buyer_token = token(buyer.clerk_id)?;
    let mentor_token = token("user_demo_mentor_tomas")?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .map_err(stop)?;
    let url = |path: &str| format!("{}{path}", service.origin);

    say(&format!(
        "1. {} buys \"Character design critique: 2 sessions\" (JPY 15000) from Tomás Okafor, \
         with Stripe",
        buyer.name
    ));
    let checkout: Value = expect_json(
        http.post(url("/api/checkout"))
            .bearer_auth(&buyer_token)
            .json(&json!({"product_id": PRODUCT_IDS[3], "provider": "stripe"})),
        StatusCode::OK,
    )
    .await?;
    let order_id: Uuid = serde_json::from_value(checkout["order_id"].clone()).map_err(stop)?;
    let checkout_url = checkout["checkout_url"].as_str().unwrap_or_default();
    say(&format!(
        "   order {order_id}: a seat is held; the buyer goes to {checkout_url}"
    ));

    say("2. She pays on the Stripe stand-in; it posts the signed webhook to /api/webhooks/stripe");
    let paid = http
        .post(format!("{checkout_url}/pay"))
        .send()
        .await
        .map_err(stop)?;
    if paid.status() != StatusCode::SEE_OTHER {
        return Err(stop(format!("paying answered {}", paid.status())));
    }
    say("   the webhook is stored in the inbox and relayed to Inngest, which runs:");

    let link = welcome_link(service, buyer.email).await?;
    say("3. The welcome email is in the outbox; she follows its Discord link and authorizes");
    connect_discord(&http, &link, "mina-draws").await?;
    settle(service).await?;

    say("4. She books her two sessions; Tomás completes them");
    let pack_id = {
        let mut conn = service.state.conn().await.map_err(stop)?;
        SeatReservation::by_order(&mut conn, order_id)
            .await
            .map_err(stop)?
            .and_then(|seat| seat.session_pack_id)
            .ok_or_else(|| stop("the order has no pack"))?
    };
    for day in 1..=2 {
        // Days ahead, so both reminders (a day and an hour before) are still to come.
        let at = Utc::now() + chrono::Duration::days(2 + day);
        let session: Value = expect_json(
            http.post(url("/api/sessions"))
                .bearer_auth(&buyer_token)
                .json(&json!({"packId": pack_id, "scheduledAt": at})),
            StatusCode::CREATED,
        )
        .await?;
        let id = session["id"].as_str().unwrap_or_default();
        say(&format!(
            "   session {day} booked for {}",
            at.format("%Y-%m-%d %H:%M UTC")
        ));
        // Its reminders first (their sleeps are played at once), so what they send does not
        // depend on how soon the completion follows.
        settle(service).await?;
        expect_json(
            http.post(url(&format!("/api/sessions/{id}/complete")))
                .bearer_auth(&mentor_token),
            StatusCode::OK,
        )
        .await?;
        say(&format!("   session {day} completed"));
        settle(service).await?;
    }

    let state = final_state(service, order_id, pack_id).await?;
    say("5. Where it ended (from the database):");
    say(&format!(
        "   order: {} ({})",
        state.order_status, state.paid
    ));
    say(&format!(
        "   pack: {}, {} session(s) left",
        state.pack_status, state.remaining_sessions
    ));
    say(&format!(
        "   seat with {}: {}{}",
        "Tomás Okafor",
        state.seat_status,
        state
            .release_reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    ));
    say(&format!(
        "   dashboard access: {}",
        if state.access_granted {
            "granted"
        } else {
            "none"
        }
    ));
    say(&format!(
        "   emails to {}: {}",
        buyer.email,
        state.emails.join(", ")
    ));
    if state.failed_runs.is_empty() {
        say("   every function run succeeded");
    } else {
        say(&format!("   failed runs: {}", state.failed_runs.join(", ")));
    }
    Ok(state)
}

async fn expect_json(
    request: reqwest::RequestBuilder,
    status: StatusCode,
) -> Result<Value, DemoError> {
    let response = request.send().await.map_err(stop)?;
    let got = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if got != status {
        return Err(stop(format!("expected {status}, got {got}: {body}")));
    }
    Ok(body)
}

async fn settle(service: &LocalService) -> Result<(), DemoError> {
    if service.settle(STAGE_LIMIT).await {
        Ok(())
    } else {
        Err(stop("the functions did not settle within a minute"))
    }
}

/// The Discord link of the welcome email in the outbox, once it is there.
async fn welcome_link(service: &LocalService, to: &str) -> Result<String, DemoError> {
    let resend = service
        .state
        .sandbox
        .as_ref()
        .and_then(|s| s.resend.as_ref())
        .ok_or_else(|| stop("Resend is not stood in"))?;
    let deadline = tokio::time::Instant::now() + STAGE_LIMIT;
    while tokio::time::Instant::now() < deadline {
        let welcome = resend
            .outbox()
            .into_iter()
            .find(|e| e.to == to && e.kind == "welcome");
        if let Some(email) = welcome {
            return discord_href(&email.html)
                .ok_or_else(|| stop("the welcome email has no Discord link"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(stop("no welcome email within a minute"))
}

/// The first link to our Discord start route in an email's HTML, unescaped.
fn discord_href(html: &str) -> Option<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.contains("/api/auth/discord"))
        .map(|href| href.replace("&amp;", "&"))
}

/// Follows the link as a browser would: our start route, the stand-in's authorize page (the
/// person names their account and authorizes), our callback.
async fn connect_discord(
    http: &reqwest::Client,
    link: &str,
    username: &str,
) -> Result<(), DemoError> {
    let location = |response: &reqwest::Response| -> Result<url::Url, DemoError> {
        let to = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| stop(format!("{} redirected nowhere", response.url())))?;
        response.url().join(to).map_err(stop)
    };
    let start = http.get(link).send().await.map_err(stop)?;
    let authorize = location(&start)?;
    let query = |name: &str| {
        authorize
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| stop(format!("the authorize URL has no {name}")))
    };
    let mut approve = authorize
        .join("/sandbox/discord/oauth2/approve")
        .map_err(stop)?;
    approve
        .query_pairs_mut()
        .append_pair("redirect_uri", &query("redirect_uri")?)
        .append_pair("state", &query("state")?)
        .append_pair("username", username)
        .append_pair("decision", "authorize");
    let approved = http.get(approve).send().await.map_err(stop)?;
    let callback = location(&approved)?;
    let done = http.get(callback).send().await.map_err(stop)?;
    let landing = location(&done)?;
    if landing.path() != "/auth/discord/success" {
        return Err(stop(format!("Discord was not connected: {landing}")));
    }
    Ok(())
}

/// A status as the API and the database spell it (`grace_ended`).
fn wire_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

async fn final_state(
    service: &LocalService,
    order_id: Uuid,
    pack_id: Uuid,
) -> Result<FinalState, DemoError> {
    let mut conn = service.state.conn().await.map_err(stop)?;
    let order = Order::find(&mut conn, order_id)
        .await
        .map_err(stop)?
        .ok_or_else(|| stop("the order is gone"))?;
    let pack = SessionPack::find(&mut conn, pack_id)
        .await
        .map_err(stop)?
        .ok_or_else(|| stop("the pack is gone"))?;
    let seat = SeatReservation::by_order(&mut conn, order_id)
        .await
        .map_err(stop)?
        .ok_or_else(|| stop("the seat is gone"))?;
    let access = DashboardAccess::active_for_user(&mut conn, order.user_id)
        .await
        .map_err(stop)?;
    let mut emails = EmailLogEntry::of_user(&mut conn, order.user_id)
        .await
        .map_err(stop)?;
    // A claim not yet logged as sent is not an email.
    emails.retain(|e| e.status != crate::models::EmailStatus::Sending);
    emails.sort_by_key(|e| e.sent_at);
    let amount = crate::money::exact(&order.total_amount, &order.currency).map_err(stop)?;
    Ok(FinalState {
        order_status: wire_name(&order.status),
        paid: format!("{amount} {}", order.currency.to_uppercase()),
        pack_status: wire_name(&pack.status),
        remaining_sessions: pack.remaining_sessions,
        seat_status: wire_name(&seat.status),
        release_reason: seat.release_reason.as_ref().map(wire_name),
        access_granted: !access.is_empty(),
        emails: emails.into_iter().map(|e| e.kind).collect(),
        failed_runs: service
            .finished()
            .into_iter()
            .filter(|(_, _, result)| result.is_err())
            .map(|(function, event, _)| format!("{function} ({event})"))
            .collect(),
    })
}
