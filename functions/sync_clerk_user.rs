//! `sync-clerk-user`: Clerk's user webhooks (as Inngest forwards them, or through
//! `POST /api/webhooks/clerk`) keep the users table current: created and updated upsert the
//! profile, deleted soft-deletes.

use inngest_sdk::{Ctx, Function, FunctionOpts, Trigger};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::db::DbError;
use crate::events::{CLERK_USER_CREATED, CLERK_USER_DELETED, CLERK_USER_UPDATED, MaybeSealed};
use crate::models::{User, UserProfile};

#[derive(Debug, Clone, Deserialize)]
struct ClerkEmail {
    id: Option<String>,
    email_address: String,
}

/// The `data` of Clerk's `user.*` webhooks (a deletion carries only the id).
#[derive(Debug, Clone, Deserialize)]
pub struct ClerkUserPayload {
    id: String,
    #[serde(default)]
    email_addresses: Vec<ClerkEmail>,
    #[serde(default)]
    primary_email_address_id: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

impl ClerkUserPayload {
    fn profile(&self) -> UserProfile {
        let email = self
            .email_addresses
            .iter()
            .find(|e| e.id.is_some() && e.id == self.primary_email_address_id)
            .or_else(|| self.email_addresses.first())
            .map(|e| e.email_address.clone());
        UserProfile {
            clerk_id: self.id.clone(),
            email,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
        }
    }
}

/// The function.
pub fn sync_clerk_user() -> Function<AppState> {
    Function::new(
        FunctionOpts::new("sync-clerk-user")
            .with_name("Sync Clerk User")
            .with_trigger(Trigger::event(CLERK_USER_CREATED))
            .with_trigger(Trigger::event(CLERK_USER_UPDATED))
            .with_trigger(Trigger::event(CLERK_USER_DELETED))
            .with_retries(3)
            .with_concurrency(inngest_sdk::function::Concurrency::new(1).with_key("event.data.id")),
        |ctx: Ctx<MaybeSealed<ClerkUserPayload>, AppState>| async move {
            let app = ctx.state.clone();
            let user = ctx.event.data.data().clone();
            if ctx.event.name == CLERK_USER_DELETED {
                let deleted: bool = ctx
                    .step
                    .run("soft-delete-user", || async {
                        let mut conn = app.conn().await?;
                        Ok::<_, DbError>(User::soft_delete(&mut conn, &user.id).await?)
                    })
                    .await?;
                return Ok(json!({ "clerkId": user.id, "deleted": deleted }));
            }
            let profile = user.profile();
            ctx.step
                .run("upsert-user", || async {
                    let mut conn = app.conn().await?;
                    Ok::<_, DbError>(User::upsert(&mut conn, &profile).await?.id)
                })
                .await?;
            Ok(json!({ "clerkId": user.id, "email": profile.email }))
        },
    )
}
