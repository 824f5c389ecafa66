//! Discord over reqwest: the OAuth code exchange, the connecting user, and (with a bot) guild
//! membership and the mentee role.

use serde::Deserialize;
use serde_json::json;

use crate::config::DiscordConfig;

/// A Discord failure.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// Discord could not be reached.
    #[error("Discord unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// Discord answered with an error status.
    #[error("Discord answered {0}")]
    Status(super::ErrorAnswer),
    /// No bot is configured.
    #[error("no Discord bot is configured")]
    NoBot,
}

/// Transport failures and timeouts are retried, an answer by its status; a missing bot is a
/// configuration that retrying cannot change.
impl inngest_sdk::Classify for DiscordError {
    fn retry(&self) -> inngest_sdk::Retry {
        match self {
            DiscordError::Transport(_) => inngest_sdk::Retry::Default,
            DiscordError::Status(answer) => answer.retry(),
            DiscordError::NoBot => inngest_sdk::Retry::Never,
        }
    }
}

/// The user who authorized us.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordUser {
    pub id: String,
    pub username: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// The Discord client.
pub struct DiscordApi {
    config: DiscordConfig,
    http: reqwest::Client,
}

impl DiscordApi {
    /// A client for `config`, sending through `http` ([`super::http_client`]).
    pub fn new(config: &DiscordConfig, http: reqwest::Client) -> Self {
        Self {
            config: config.clone(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.config.api_base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// Where to send the user to authorize us (`identify`, and `guilds.join` with a bot).
    pub fn authorize_url(&self, state: &str, redirect_uri: &str) -> String {
        let scope = if self.config.bot.is_some() {
            "identify guilds.join"
        } else {
            "identify"
        };
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("prompt", "consent")
            .finish();
        format!("{}?{query}", self.config.authorize_url)
    }

    /// Exchanges an authorization code for the user's access token.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, DiscordError> {
        let response = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .send()
            .await?;
        let token: TokenResponse = checked(response).await?.json().await?;
        Ok(token.access_token)
    }

    /// The user an access token belongs to.
    pub async fn current_user(&self, access_token: &str) -> Result<DiscordUser, DiscordError> {
        let response = self
            .http
            .get(self.url("/users/@me"))
            .bearer_auth(access_token)
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    /// Adds the user to the academy's guild (no-op if a member). Needs their access token.
    pub async fn join_guild(
        &self,
        discord_user_id: &str,
        access_token: &str,
    ) -> Result<(), DiscordError> {
        let bot = self.config.bot.as_ref().ok_or(DiscordError::NoBot)?;
        let response = self
            .http
            .put(self.url(&format!(
                "/guilds/{}/members/{discord_user_id}",
                bot.guild_id
            )))
            .header("authorization", format!("Bot {}", bot.token.expose()))
            .json(&json!({ "access_token": access_token }))
            .send()
            .await?;
        checked(response).await.map(drop)
    }

    /// Gives the mentee role (idempotent).
    pub async fn add_mentee_role(&self, discord_user_id: &str) -> Result<(), DiscordError> {
        self.role(reqwest::Method::PUT, discord_user_id).await
    }

    /// Takes the mentee role away (idempotent).
    pub async fn remove_mentee_role(&self, discord_user_id: &str) -> Result<(), DiscordError> {
        self.role(reqwest::Method::DELETE, discord_user_id).await
    }

    /// Whether a bot is configured.
    pub fn has_bot(&self) -> bool {
        self.config.bot.is_some()
    }

    async fn role(
        &self,
        method: reqwest::Method,
        discord_user_id: &str,
    ) -> Result<(), DiscordError> {
        let bot = self.config.bot.as_ref().ok_or(DiscordError::NoBot)?;
        let path = format!(
            "/guilds/{}/members/{discord_user_id}/roles/{}",
            bot.guild_id, bot.mentee_role_id
        );
        let response = self
            .http
            .request(method, self.url(&path))
            .header("authorization", format!("Bot {}", bot.token.expose()))
            .header("x-audit-log-reason", "Huckleberry mentorship access")
            .send()
            .await?;
        checked(response).await.map(drop)
    }
}

async fn checked(response: reqwest::Response) -> Result<reqwest::Response, DiscordError> {
    super::success_or(response, DiscordError::Status).await
}
