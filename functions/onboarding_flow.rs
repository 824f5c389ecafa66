//! `onboarding-flow`: after a purchase, the buyer gets a welcome email with a signed Discord
//! link; once Discord is connected (within 48 hours, or 48 hours after a reminder) the
//! dashboard opens. An already connected buyer goes straight to access. Every email has an
//! idempotency key derived from the order and its purpose, so retries never send twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger, WaitForEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::conn;
use crate::access;
use crate::app::AppState;
use crate::auth::links::Purpose;
use crate::email::{AccessGranted, DiscordReminder, Welcome};
use crate::events::{PURCHASE_MENTORSHIP, PurchaseMentorship, USER_DISCORD_CONNECTED};
use crate::integrations::clerk::{ClerkApiError, ClerkUser};
use crate::models::discord::DiscordConnection;
use crate::models::onboarding::record_outcome;
use crate::models::{Mentor, OnboardingOutcome, SessionPack, User, UserProfile};
use crate::notifications::{Delivery, send_email};

const CONNECT_WINDOW: Duration = Duration::from_secs(48 * 3600);
const LINK_VALIDITY: chrono::Duration = chrono::Duration::days(7);

/// What the emails need about the purchase.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purchase {
    user_id: Uuid,
    mentor_name: String,
    sessions: i32,
    expires_at: DateTime<Utc>,
}

fn clerk_error(err: ClerkApiError) -> Error {
    if err.is_retriable() {
        Error::new(err.to_string())
    } else {
        Error::non_retriable(err.to_string())
    }
}

fn discord_link(app: &AppState, clerk_id: &str) -> Result<String, Error> {
    let links = app
        .links
        .as_ref()
        .ok_or_else(|| Error::non_retriable("LINK_SIGNING_SECRET is not configured"))?;
    let token = links.sign(Purpose::DiscordLink, clerk_id, Utc::now() + LINK_VALIDITY);
    Ok(format!(
        "{}/api/auth/discord?token={token}",
        app.config.public_url.trim_end_matches('/')
    ))
}

async fn is_connected(app: &AppState, user_id: Uuid) -> Result<bool, Error> {
    let mut conn = conn(app).await?;
    Ok(DiscordConnection::of_user(&mut conn, user_id)
        .await?
        .is_some())
}

/// The function.
pub fn onboarding_flow() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("onboarding-flow")
            .with_name("Onboarding Flow")
            .with_trigger(Trigger::event(PURCHASE_MENTORSHIP))
            .with_retries(2),
        |ctx: Ctx<PurchaseMentorship, AppState>| async move {
            let data = ctx.event.data.clone();
            let app = ctx.state.clone();
            let order = data.order_id;

            let user: ClerkUser = ctx
                .step
                .run("get-clerk-user", || async {
                    let clerk = app
                        .clerk
                        .as_ref()
                        .ok_or_else(|| Error::non_retriable("Clerk is not configured"))?;
                    let user = clerk.get_user(&data.clerk_id).await.map_err(clerk_error)?;
                    if user.email.is_none() {
                        return Err(Error::non_retriable(format!(
                            "Clerk user {} has no email address to onboard",
                            data.clerk_id
                        )));
                    }
                    let mut conn = conn(&app).await?;
                    let profile = UserProfile {
                        clerk_id: user.id.clone(),
                        email: user.email.clone(),
                        first_name: user.first_name.clone(),
                        last_name: user.last_name.clone(),
                    };
                    User::upsert(&mut conn, &profile).await?;
                    Ok(user)
                })
                .await?;
            let email = user.email.clone().unwrap_or_default();

            let purchase: Purchase = ctx
                .step
                .run("load-purchase", || async {
                    let mut conn = conn(&app).await?;
                    let pack = SessionPack::find(&mut conn, data.pack_id)
                        .await?
                        .ok_or_else(|| {
                            Error::non_retriable(format!("session pack {} not found", data.pack_id))
                        })?;
                    let mentor = Mentor::find(&mut conn, pack.mentor_id).await?;
                    Ok::<_, Error>(Purchase {
                        user_id: pack.user_id,
                        mentor_name: mentor.display_name,
                        sessions: pack.total_sessions,
                        expires_at: pack.expires_at,
                    })
                })
                .await?;

            let already: bool = ctx
                .step
                .run("check-discord", || is_connected(&app, purchase.user_id))
                .await?;
            let outcome = if already {
                OnboardingOutcome::Connected
            } else {
                let welcome: Delivery = ctx
                    .step
                    .run("send-welcome-email", || async {
                        let mail = Welcome {
                            first_name: user.first_name.clone(),
                            mentor_name: purchase.mentor_name.clone(),
                            sessions: purchase.sessions,
                            discord_link: discord_link(&app, &data.clerk_id)?,
                        };
                        send_email(
                            &app,
                            Some(purchase.user_id),
                            &email,
                            &mail,
                            &format!("onboarding-{order}-welcome"),
                        )
                        .await
                    })
                    .await?;
                tracing::info!(?welcome, "welcome email");
                let wait = WaitForEvent::new(USER_DISCORD_CONNECTED, CONNECT_WINDOW)
                    .matching("data.clerkId");
                let first = ctx
                    .step
                    .wait_for_event::<Value>("wait-for-discord", wait.clone())
                    .await?;
                // The callback stores the connection before it sends the event: check the
                // database too, in case the event was lost.
                let connected = first.is_some()
                    || ctx
                        .step
                        .run("check-discord-after-wait", || {
                            is_connected(&app, purchase.user_id)
                        })
                        .await?;
                if connected {
                    OnboardingOutcome::Connected
                } else {
                    ctx.step
                        .run("send-discord-reminder", || async {
                            let mail = DiscordReminder {
                                first_name: user.first_name.clone(),
                                mentor_name: purchase.mentor_name.clone(),
                                discord_link: discord_link(&app, &data.clerk_id)?,
                            };
                            send_email(
                                &app,
                                Some(purchase.user_id),
                                &email,
                                &mail,
                                &format!("onboarding-{order}-reminder"),
                            )
                            .await
                        })
                        .await?;
                    let second = ctx
                        .step
                        .wait_for_event::<Value>("wait-for-discord-after-reminder", wait)
                        .await?;
                    let connected = second.is_some()
                        || ctx
                            .step
                            .run("check-discord-after-reminder", || {
                                is_connected(&app, purchase.user_id)
                            })
                            .await?;
                    if connected {
                        OnboardingOutcome::ConnectedAfterReminder
                    } else {
                        OnboardingOutcome::NeverConnected
                    }
                }
            };

            if outcome != OnboardingOutcome::NeverConnected {
                ctx.step
                    .run("grant-dashboard-access", || async {
                        access::grant(&app, data.pack_id)
                            .await
                            .map_err(|e| e.into_inngest())
                    })
                    .await?;
                ctx.step
                    .run("send-access-email", || async {
                        let mail = AccessGranted {
                            first_name: user.first_name.clone(),
                            mentor_name: purchase.mentor_name.clone(),
                            dashboard_link: format!(
                                "{}/dashboard",
                                app.config.public_url.trim_end_matches('/')
                            ),
                            pack_expires_at: purchase.expires_at,
                        };
                        send_email(
                            &app,
                            Some(purchase.user_id),
                            &email,
                            &mail,
                            &format!("onboarding-{order}-access"),
                        )
                        .await
                    })
                    .await?;
            }
            ctx.step
                .run("record-outcome", || async {
                    let mut conn = conn(&app).await?;
                    record_outcome(&mut conn, order, purchase.user_id, outcome)
                        .await
                        .map_err(Error::from)
                })
                .await?;
            Ok(json!({ "orderId": order, "clerkId": data.clerk_id, "outcome": outcome }))
        },
    )
}
