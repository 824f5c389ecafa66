//! `onboarding-flow`: after a purchase, the buyer gets a welcome email with a signed Discord
//! link; once Discord is connected (within 48 hours, or 48 hours after a reminder) the
//! dashboard opens. An already connected buyer goes straight to access. Every email has an
//! idempotency key derived from the order and its purpose, so retries never send twice.
//!
//! `grant-late-discord-access`: the links stay valid for days after the run stopped waiting.
//! A buyer who connects then still gets the dashboard of every pack whose onboarding ended
//! without Discord, while the pack is active.

use std::time::Duration;

use chrono::Utc;
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Step, Trigger, WaitForEvent};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::links::Purpose;
use crate::db::DbError;
use crate::email::{AccessGranted, DiscordReminder, Welcome};
use crate::events::{
    DiscordConnected, PURCHASE_MENTORSHIP, PurchaseMentorship, USER_DISCORD_CONNECTED,
};
use crate::integrations::clerk::ClerkUser;
use crate::models::OnboardingOutcome;
use crate::models::onboarding::{WaitingForDiscord, record_outcome, waiting_for_discord};
use crate::notifications::{Delivery, NotifyError};
use crate::onboarding::{Purchase, fetch_buyer, is_discord_connected, load_purchase};

const CONNECT_WINDOW: Duration = Duration::from_secs(48 * 3600);
const LINK_VALIDITY: chrono::Duration = chrono::Duration::days(7);
/// The reminder goes out once the first connect window has passed.
const REMINDER_AFTER: chrono::Duration = chrono::Duration::hours(48);

/// The function.
pub fn onboarding_flow() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("onboarding-flow")
                .with_name("Onboarding Flow")
                .with_trigger(Trigger::event(PURCHASE_MENTORSHIP)),
        ),
        |ctx: Ctx<PurchaseMentorship, AppState>| async move {
            let (step, app, data) = (&ctx.step, &ctx.state, &ctx.event.data);
            let user: ClerkUser = step
                .run("get-clerk-user", || {
                    fetch_buyer(&app.db, app.clerk.as_ref(), &data.clerk_id)
                })
                .await?;
            let purchase: Purchase = step
                .run("load-purchase", || async {
                    load_purchase(&mut *app.conn().await?, data.pack_id).await
                })
                .await?;
            let buyer = Buyer {
                user,
                purchase,
                order_id: data.order_id,
            };

            let already = step
                .run("check-discord", || {
                    is_connected(app, buyer.purchase.user_id)
                })
                .await?;
            let outcome = if already {
                OnboardingOutcome::Connected
            } else {
                wait_for_discord(step, app, &buyer).await?
            };
            if outcome != OnboardingOutcome::NeverConnected {
                step.run("grant-dashboard-access", || {
                    app.access().grant(data.pack_id)
                })
                .await?;
                // Not for a pack refunded meanwhile: a refund waits for the email or stops it.
                step.run("send-access-email", || {
                    app.access()
                        .while_granted(data.pack_id, || send_access_email(app, &buyer))
                })
                .await?;
            }
            step.run("record-outcome", || async {
                let mut conn = app.conn().await?;
                let user_id = buyer.purchase.user_id;
                Ok::<_, DbError>(record_outcome(&mut conn, buyer.order_id, user_id, outcome).await?)
            })
            .await?;
            Ok(json!({ "orderId": data.order_id, "clerkId": data.clerk_id, "outcome": outcome }))
        },
    )
}

/// The function for a Discord connection that came after its onboarding stopped waiting.
pub fn grant_late_discord_access() -> Function<AppState> {
    Function::new(
        super::money_path_retries(
            FunctionOpts::new("grant-late-discord-access")
                .with_name("Grant Late Discord Access")
                .with_trigger(Trigger::event(USER_DISCORD_CONNECTED)),
        ),
        |ctx: Ctx<DiscordConnected, AppState>| async move {
            let (step, app, data) = (&ctx.step, &ctx.state, &ctx.event.data);
            // Only orders whose run has ended: a run still waiting gets this event itself.
            let waiting: Vec<WaitingForDiscord> = step
                .run("find-orders-without-discord", || async {
                    let mut conn = app.conn().await?;
                    Ok::<_, DbError>(waiting_for_discord(&mut conn, &data.clerk_id).await?)
                })
                .await?;
            if waiting.is_empty() {
                return Ok(json!({ "clerkId": data.clerk_id, "granted": [] }));
            }
            let user: ClerkUser = step
                .run("get-clerk-user", || {
                    fetch_buyer(&app.db, app.clerk.as_ref(), &data.clerk_id)
                })
                .await?;
            for order in &waiting {
                let purchase: Purchase = step
                    .run("load-purchase", || async {
                        load_purchase(&mut *app.conn().await?, order.pack_id).await
                    })
                    .await?;
                let buyer = Buyer {
                    user: user.clone(),
                    purchase,
                    order_id: order.order_id,
                };
                step.run("grant-dashboard-access", || {
                    app.access().grant(order.pack_id)
                })
                .await?;
                step.run("send-access-email", || {
                    app.access()
                        .while_granted(order.pack_id, || send_access_email(app, &buyer))
                })
                .await?;
            }
            let granted: Vec<Uuid> = waiting.iter().map(|order| order.pack_id).collect();
            Ok(json!({ "clerkId": data.clerk_id, "granted": granted }))
        },
    )
}

/// Welcome, wait 48 hours; then reminder, wait 48 hours more.
async fn wait_for_discord(
    step: &Step,
    app: &AppState,
    buyer: &Buyer,
) -> Result<OnboardingOutcome, Error> {
    step.run("send-welcome-email", || send(app, buyer, Mail::Welcome))
        .await?;
    let wait = WaitForEvent::new(USER_DISCORD_CONNECTED, CONNECT_WINDOW).matching("data.clerkId");
    // The callback stores the connection before it sends the event: check the database too,
    // in case the event was lost.
    let first = step
        .wait_for_event::<Value>("wait-for-discord", wait.clone())
        .await?;
    if first.is_some()
        || step
            .run("check-discord-after-wait", || {
                is_connected(app, buyer.purchase.user_id)
            })
            .await?
    {
        return Ok(OnboardingOutcome::Connected);
    }
    step.run("send-discord-reminder", || send(app, buyer, Mail::Reminder))
        .await?;
    let second = step
        .wait_for_event::<Value>("wait-for-discord-after-reminder", wait)
        .await?;
    let connected = second.is_some()
        || step
            .run("check-discord-after-reminder", || {
                is_connected(app, buyer.purchase.user_id)
            })
            .await?;
    Ok(if connected {
        OnboardingOutcome::ConnectedAfterReminder
    } else {
        OnboardingOutcome::NeverConnected
    })
}

/// Everything one onboarding run knows about its buyer.
struct Buyer {
    user: ClerkUser,
    purchase: Purchase,
    order_id: Uuid,
}

async fn is_connected(app: &AppState, user_id: Uuid) -> Result<bool, DbError> {
    is_discord_connected(&mut *app.conn().await?, user_id).await
}

/// The emails before access.
#[derive(Clone, Copy)]
enum Mail {
    Welcome,
    Reminder,
}

/// An email's idempotency key: the order and the email's purpose.
fn email_key(buyer: &Buyer, purpose: &str) -> String {
    format!("onboarding-{}-{purpose}", buyer.order_id)
}

/// Sends the welcome or the reminder.
async fn send(app: &AppState, buyer: &Buyer, mail: Mail) -> Result<Delivery, Error> {
    let to = buyer.user.email.clone().unwrap_or_default();
    let first_name = buyer.user.first_name.clone();
    let mentor_name = buyer.purchase.mentor_name.clone();
    let key = |purpose: &str| email_key(buyer, purpose);
    let user_id = Some(buyer.purchase.user_id);
    let mailer = app.mailer();
    match mail {
        Mail::Welcome => {
            let email = Welcome {
                first_name,
                mentor_name,
                sessions: buyer.purchase.sessions,
                discord_link: discord_link(app, buyer, chrono::Duration::zero())?,
            };
            Ok(mailer.send(user_id, &to, &email, &key("welcome")).await?)
        }
        Mail::Reminder => {
            let email = DiscordReminder {
                first_name,
                mentor_name,
                discord_link: discord_link(app, buyer, REMINDER_AFTER)?,
            };
            Ok(mailer.send(user_id, &to, &email, &key("reminder")).await?)
        }
    }
}

/// Sends the "access granted" email.
async fn send_access_email(app: &AppState, buyer: &Buyer) -> Result<Delivery, NotifyError> {
    let email = AccessGranted {
        first_name: buyer.user.first_name.clone(),
        mentor_name: buyer.purchase.mentor_name.clone(),
        dashboard_link: format!("{}/dashboard", app.config.public_url.trim_end_matches('/')),
        pack_expires_at: buyer.purchase.expires_at,
    };
    let to = buyer.user.email.clone().unwrap_or_default();
    app.mailer()
        .send(
            Some(buyer.purchase.user_id),
            &to,
            &email,
            &email_key(buyer, "access"),
        )
        .await
}

/// `/api/auth/discord?token=...`, the token naming the Clerk user, signed and valid for
/// `LINK_VALIDITY` from the purchase plus `sent_after` (when the email goes out): the same
/// link however often the email step runs, so a retried email is the same email.
fn discord_link(
    app: &AppState,
    buyer: &Buyer,
    sent_after: chrono::Duration,
) -> Result<String, Error> {
    let links = app
        .links
        .as_ref()
        .ok_or_else(|| Error::non_retriable("LINK_SIGNING_SECRET is not configured"))?;
    let from = buyer.purchase.purchased_at.unwrap_or_else(Utc::now) + sent_after;
    let token = links.sign(Purpose::DiscordLink, &buyer.user.id, from + LINK_VALIDITY);
    Ok(format!(
        "{}/api/auth/discord?token={token}",
        app.config.public_url.trim_end_matches('/')
    ))
}
