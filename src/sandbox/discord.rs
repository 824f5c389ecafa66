//! The Discord stand-in: the OAuth authorize page (where a person names their sandbox Discord
//! account), the token exchange, `users/@me`, and the bot's guild membership and mentee role,
//! with a page showing who holds what.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;

use super::page::{Message, Refusal, render};
use super::{Sandbox, random_token};

pub(super) const CLIENT_ID: &str = "sandbox-client";
pub(super) const CLIENT_SECRET: &str = "sandbox-client-secret";
pub(super) const BOT_TOKEN: &str = "sandbox-bot-token";
pub(super) const GUILD_ID: &str = "100000000000000001";
pub(super) const MENTEE_ROLE_ID: &str = "100000000000000002";

/// A sandbox Discord account.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    id: String,
    username: String,
}

/// A code waiting for its exchange.
struct Grant {
    account: Account,
    redirect_uri: String,
}

#[derive(Default)]
struct Ledger {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Account>,
    /// Guild members (by id) and whether each holds the mentee role.
    members: BTreeMap<String, (Account, bool)>,
    /// Accounts that authorized the app, for the page.
    authorized: BTreeSet<(String, String)>,
}

/// The Discord stand-in's state.
#[derive(Default)]
pub struct DiscordSandbox {
    state: Mutex<Ledger>,
}

impl DiscordSandbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the account of `username` is in the guild and holds the mentee role.
    pub fn is_mentee(&self, username: &str) -> bool {
        self.lock()
            .members
            .values()
            .any(|(account, mentee)| account.username == username && *mentee)
    }
}

/// The same name gives the same id, so authorizing twice is one account.
fn account(username: &str) -> Account {
    let digest = sha2::Sha256::digest(username.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // 18 digits, like a snowflake.
    let id = 100_000_000_000_000_000 + u64::from_be_bytes(bytes) % 800_000_000_000_000_000;
    Account {
        id: id.to_string(),
        username: username.to_owned(),
    }
}

pub(super) fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/discord", get(overview))
        .route("/discord/oauth2/authorize", get(authorize))
        .route("/discord/oauth2/approve", get(approve))
        .route("/discord/api/oauth2/token", post(token))
        .route("/discord/api/users/@me", get(me))
        .route("/discord/api/guilds/{guild}/members/{user}", put(join))
        .route(
            "/discord/api/guilds/{guild}/members/{user}/roles/{role}",
            put(add_role).delete(remove_role),
        )
}

fn discord(sandbox: &Sandbox) -> Result<&DiscordSandbox, Refusal> {
    sandbox.discord.as_ref().ok_or_else(Refusal::not_stood_in)
}

fn discord_error(status: StatusCode, message: &str) -> Refusal {
    Refusal::new(status, json!({"message": message, "code": 0}))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    #[serde(default)]
    scope: String,
}

#[derive(Template)]
#[template(path = "sandbox/discord_authorize.html")]
struct AuthorizePage {
    redirect_uri: String,
    state: String,
    scope: String,
    suggested: String,
}

/// `GET /sandbox/discord/oauth2/authorize`: where our OAuth start route sends the browser.
async fn authorize(Query(query): Query<AuthorizeQuery>) -> Response {
    if query.client_id != CLIENT_ID {
        return Message::respond(
            "Unknown application",
            "The client id is not the sandbox's.",
            StatusCode::BAD_REQUEST,
        );
    }
    let page = AuthorizePage {
        redirect_uri: query.redirect_uri,
        state: query.state,
        scope: query.scope,
        suggested: format!("sandbox-artist-{}", random_token(4).to_lowercase()),
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
struct Approval {
    redirect_uri: String,
    state: String,
    username: String,
    decision: String,
}

/// The authorize page's form: back to the app with a code, or with `access_denied`.
async fn approve(
    State(sandbox): State<Arc<Sandbox>>,
    Query(form): Query<Approval>,
) -> Result<Response, Refusal> {
    let discord = discord(&sandbox)?;
    let mut back = match url::Url::parse(&form.redirect_uri) {
        Ok(url) => url,
        Err(_) => {
            return Ok(Message::respond(
                "Invalid redirect",
                "The redirect URI is not a URL.",
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    let username = form.username.trim();
    if form.decision != "authorize" || username.is_empty() {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &form.state);
        return Ok(Redirect::to(back.as_str()).into_response());
    }
    let code = random_token(30);
    let account = account(username);
    let mut state = discord.lock();
    state
        .authorized
        .insert((account.username.clone(), account.id.clone()));
    state.codes.insert(
        code.clone(),
        Grant {
            account,
            redirect_uri: form.redirect_uri.clone(),
        },
    );
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &form.state);
    Ok(Redirect::to(back.as_str()).into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
}

/// Client credentials in Basic auth, a code used once, the same redirect URI as authorized.
async fn token(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenForm>,
) -> Result<Response, Refusal> {
    let discord = discord(&sandbox)?;
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(discord_error(StatusCode::UNAUTHORIZED, "invalid_client"));
    }
    let mut state = discord.lock();
    let grant = match state.codes.remove(&form.code) {
        Some(grant)
            if form.grant_type == "authorization_code"
                && grant.redirect_uri == form.redirect_uri =>
        {
            grant
        }
        _ => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_grant"}),
            ));
        }
    };
    let access_token = random_token(30);
    state.tokens.insert(access_token.clone(), grant.account);
    Ok(axum::Json(json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": 604_800,
        "refresh_token": random_token(30), "scope": "identify guilds.join"
    }))
    .into_response())
}

fn bearer(headers: &HeaderMap, scheme: &str) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix(scheme)
        .map(str::to_owned)
}

async fn me(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let discord = discord(&sandbox)?;
    let account = bearer(&headers, "Bearer ").and_then(|t| discord.lock().tokens.get(&t).cloned());
    let account =
        account.ok_or_else(|| discord_error(StatusCode::UNAUTHORIZED, "401: Unauthorized"))?;
    Ok(axum::Json(json!({
        "id": account.id, "username": account.username, "global_name": account.username,
        "discriminator": "0", "avatar": null
    }))
    .into_response())
}

/// The bot's calls: its token, our guild.
fn bot_call<'a>(
    sandbox: &'a Sandbox,
    headers: &HeaderMap,
    guild: &str,
) -> Result<&'a DiscordSandbox, Refusal> {
    let discord = discord(sandbox)?;
    if bearer(headers, "Bot ").as_deref() != Some(BOT_TOKEN) {
        return Err(discord_error(StatusCode::UNAUTHORIZED, "401: Unauthorized"));
    }
    if guild != GUILD_ID {
        return Err(discord_error(StatusCode::NOT_FOUND, "Unknown Guild"));
    }
    Ok(discord)
}

#[derive(Deserialize)]
struct JoinBody {
    access_token: String,
}

/// 201 when added, 204 when already a member, as Discord answers.
async fn join(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path((guild, user)): Path<(String, String)>,
    axum::Json(body): axum::Json<JoinBody>,
) -> Result<Response, Refusal> {
    let discord = bot_call(&sandbox, &headers, &guild)?;
    let mut state = discord.lock();
    let Some(account) = state.tokens.get(&body.access_token).cloned() else {
        return Err(discord_error(
            StatusCode::FORBIDDEN,
            "Invalid OAuth2 access token",
        ));
    };
    if account.id != user {
        return Err(discord_error(
            StatusCode::FORBIDDEN,
            "The token belongs to another user",
        ));
    }
    if state.members.contains_key(&user) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    state.members.insert(user, (account.clone(), false));
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"user": {"id": account.id, "username": account.username}})),
    )
        .into_response())
}

async fn set_role(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    (guild, user, role): (String, String, String),
    mentee: bool,
) -> Result<Response, Refusal> {
    let discord = bot_call(sandbox, headers, &guild)?;
    if role != MENTEE_ROLE_ID {
        return Err(discord_error(StatusCode::NOT_FOUND, "Unknown Role"));
    }
    match discord.lock().members.get_mut(&user) {
        Some(member) => {
            member.1 = mentee;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(discord_error(StatusCode::NOT_FOUND, "Unknown Member")),
    }
}

async fn add_role(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(ids): Path<(String, String, String)>,
) -> Result<Response, Refusal> {
    set_role(&sandbox, &headers, ids, true).await
}

async fn remove_role(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(ids): Path<(String, String, String)>,
) -> Result<Response, Refusal> {
    set_role(&sandbox, &headers, ids, false).await
}

#[derive(Template)]
#[template(path = "sandbox/discord.html")]
struct Overview {
    /// (username, id, in the guild, mentee).
    accounts: Vec<(String, String, bool, bool)>,
}

/// `GET /sandbox/discord`: the accounts that authorized the app and what they hold.
async fn overview(State(sandbox): State<Arc<Sandbox>>) -> Result<Response, Refusal> {
    let discord = discord(&sandbox)?;
    let state = discord.lock();
    let accounts = state
        .authorized
        .iter()
        .map(|(username, id)| {
            let member = state.members.get(id);
            (
                username.clone(),
                id.clone(),
                member.is_some(),
                member.is_some_and(|m| m.1),
            )
        })
        .collect();
    Ok(render(&Overview { accounts }, StatusCode::OK))
}
