//! Discord OAuth for onboarding. The email link carries a signed, expiring token naming the
//! Clerk user (never a bare id from the query string); the OAuth `state` is signed, stored as a
//! hash and usable once. Every failure, a query that does not parse included, redirects to the
//! error page with a reason code and stores no connection (see `routes::extract` for why these
//! browser routes redirect rather than answer the JSON envelope).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::links::{LinkError, Purpose};
use crate::error::AppError;
use crate::events::USER_DISCORD_CONNECTED;
use crate::models::User;
use crate::models::discord::{
    ConnectOutcome, DiscordConnection, consume_oauth_state, store_oauth_state,
};
use crate::routes::extract::Query;

const STATE_LIFETIME: Duration = Duration::minutes(10);

/// Why a connection failed, as shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NotConfigured,
    InvalidLink,
    ExpiredLink,
    UnknownUser,
    ForgedState,
    ExpiredState,
    ReusedState,
    StateMismatch,
    DiscordDenied,
    DiscordError,
    AlreadyLinked,
    Unavailable,
    InvalidRequest,
}

impl Reason {
    /// The code in the error page's URL.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotConfigured => "not_configured",
            Reason::InvalidLink => "invalid_link",
            Reason::ExpiredLink => "expired_link",
            Reason::UnknownUser => "unknown_user",
            Reason::ForgedState => "forged_state",
            Reason::ExpiredState => "expired_state",
            Reason::ReusedState => "reused_state",
            Reason::StateMismatch => "state_mismatch",
            Reason::DiscordDenied => "discord_denied",
            Reason::DiscordError => "discord_error",
            Reason::AlreadyLinked => "discord_already_linked",
            Reason::Unavailable => "unavailable",
            Reason::InvalidRequest => "invalid_request",
        }
    }
}

fn error_page(app: &AppState, reason: Reason) -> Redirect {
    tracing::info!(reason = reason.code(), "Discord connection refused");
    Redirect::to(&format!(
        "{}/auth/error?reason={}",
        app.config.public_url.trim_end_matches('/'),
        reason.code()
    ))
}

fn callback_url(app: &AppState) -> String {
    format!(
        "{}/api/auth/discord/callback",
        app.config.public_url.trim_end_matches('/')
    )
}

fn state_hash(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

/// `?token=` from the email link.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    pub token: String,
}

/// The cookie binding an OAuth state to the browser that started it, so a state minted by
/// someone else (sent to a victim in a crafted Discord link) cannot bind their Discord account.
pub const STATE_COOKIE: &str = "hb_discord_oauth";

fn state_cookie(app: &AppState, value: &str, max_age: i64) -> String {
    let secure = if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{STATE_COOKIE}={value}; Path=/api/auth/discord; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    )
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Logs why a query did not parse; the browser only sees the reason code.
fn unparsed(error: &AppError, reason: Reason) -> Reason {
    tracing::info!(%error, "Discord OAuth query does not parse");
    reason
}

/// `GET /api/auth/discord`: checks the link and sends the user to Discord. A link whose query
/// does not parse (no `token`) is a broken link: `invalid_link`.
pub async fn start(
    State(app): State<AppState>,
    query: Result<Query<StartQuery>, AppError>,
) -> Response {
    let outcome = match &query {
        Ok(Query(query)) => start_inner(&app, &query.token).await,
        Err(error) => Err(unparsed(error, Reason::InvalidLink)),
    };
    match outcome {
        Ok((url, nonce)) => {
            let cookie = state_cookie(&app, &nonce, STATE_LIFETIME.num_seconds());
            ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
        }
        Err(reason) => error_page(&app, reason).into_response(),
    }
}

async fn start_inner(app: &AppState, token: &str) -> Result<(String, String), Reason> {
    let (Some(links), Some(discord)) = (&app.links, &app.discord) else {
        return Err(Reason::NotConfigured);
    };
    let now = Utc::now();
    let clerk_id = links
        .verify(Purpose::DiscordLink, token, now)
        .map_err(|e| match e {
            LinkError::Expired => Reason::ExpiredLink,
            _ => Reason::InvalidLink,
        })?;
    let mut conn = app.db.get().await.map_err(|_| Reason::Unavailable)?;
    let user = User::by_clerk_id(&mut conn, &clerk_id)
        .await
        .map_err(|_| Reason::Unavailable)?
        .ok_or(Reason::UnknownUser)?;
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let expires = now + STATE_LIFETIME;
    store_oauth_state(&mut conn, &state_hash(&nonce), user.id, expires)
        .await
        .map_err(|_| Reason::Unavailable)?;
    let state = links.sign(Purpose::OAuthState, &nonce, expires);
    Ok((discord.authorize_url(&state, &callback_url(app)), nonce))
}

/// What Discord sends back.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// `GET /api/auth/discord/callback`. Every field is optional, so only a query Discord would
/// never send (a repeated field) fails to parse: `invalid_request`.
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, AppError>,
) -> Response {
    let browser_nonce = cookie_value(&headers, STATE_COOKIE).map(str::to_owned);
    let outcome = match query {
        Ok(Query(query)) => callback_inner(&app, query, browser_nonce.as_deref()).await,
        Err(error) => Err(unparsed(&error, Reason::InvalidRequest)),
    };
    let redirect = match outcome {
        Ok(()) => Redirect::to(&format!(
            "{}/auth/discord/success",
            app.config.public_url.trim_end_matches('/')
        )),
        Err(reason) => error_page(&app, reason),
    };
    ([(header::SET_COOKIE, state_cookie(&app, "", 0))], redirect).into_response()
}

async fn callback_inner(
    app: &AppState,
    query: CallbackQuery,
    browser_nonce: Option<&str>,
) -> Result<(), Reason> {
    let (Some(links), Some(discord)) = (&app.links, &app.discord) else {
        return Err(Reason::NotConfigured);
    };
    let state = query.state.ok_or(Reason::ForgedState)?;
    let nonce = links
        .verify(Purpose::OAuthState, &state, Utc::now())
        .map_err(|e| match e {
            LinkError::Expired => Reason::ExpiredState,
            _ => Reason::ForgedState,
        })?;
    if browser_nonce != Some(nonce.as_str()) {
        return Err(Reason::StateMismatch);
    }
    // Consumed first, so a replayed callback fails even if Discord would accept the code.
    let user_id = {
        let mut conn = app.db.get().await.map_err(|_| Reason::Unavailable)?;
        consume_oauth_state(&mut conn, &state_hash(&nonce))
            .await
            .map_err(|_| Reason::Unavailable)?
            .ok_or(Reason::ReusedState)?
    };
    if query.error.is_some() {
        return Err(Reason::DiscordDenied);
    }
    let code = query.code.ok_or(Reason::DiscordDenied)?;
    let token = discord
        .exchange_code(&code, &callback_url(app))
        .await
        .map_err(|e| log_discord(&e))?;
    let discord_user = discord
        .current_user(&token)
        .await
        .map_err(|e| log_discord(&e))?;
    let clerk_id = {
        let mut conn = app.db.get().await.map_err(|_| Reason::Unavailable)?;
        match DiscordConnection::connect(
            &mut conn,
            user_id,
            &discord_user.id,
            &discord_user.username,
        )
        .await
        {
            Ok(ConnectOutcome::Connected) => {}
            Ok(ConnectOutcome::TakenElsewhere) => return Err(Reason::AlreadyLinked),
            Err(_) => return Err(Reason::Unavailable),
        }
        User::clerk_id_of(&mut conn, user_id)
            .await
            .map_err(|_| Reason::Unavailable)?
    };
    if discord.has_bot()
        && let Err(e) = discord.join_guild(&discord_user.id, &token).await
    {
        // Not fatal: the connection is stored; the role is granted once they join.
        tracing::warn!(error = %e, "could not add the user to the guild");
    }
    let event = inngest_sdk::Event::new(
        USER_DISCORD_CONNECTED,
        json!({ "clerkId": clerk_id, "discordId": discord_user.id }),
    )
    .with_id(format!("discord-connected-{user_id}"));
    if let Err(e) = app.inngest.send(&event).await {
        // The connection is stored; onboarding checks the database again before reminding.
        tracing::error!(error = %e, "could not send user/discord.connected");
    }
    Ok(())
}

fn log_discord(error: &crate::integrations::discord::DiscordError) -> Reason {
    tracing::warn!(%error, "Discord OAuth failed");
    Reason::DiscordError
}
