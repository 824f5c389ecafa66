//! Client configuration: app identity, keys, mode and URLs, from `INNGEST_*` variables or code.
//!
//! Cloud mode is the default, so a deployment that forgets `INNGEST_SIGNING_KEY` refuses
//! requests instead of running them unsigned. `INNGEST_DEV=1` (or a dev-server URL) selects dev.

use crate::checkpoint::Checkpoint;
use std::fmt;

use url::Url;

use crate::signature::SigningKey;

/// Cloud API origin.
pub const CLOUD_API_URL: &str = "https://api.inngest.com";
/// Cloud event API origin.
pub const CLOUD_EVENT_URL: &str = "https://inn.gs";
/// The dev server's default origin.
pub const DEV_SERVER_URL: &str = "http://127.0.0.1:8288";

/// Where requests come from and how strictly they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Inngest Cloud or a self-hosted `inngest start`: every request must be signed.
    Cloud,
    /// The local dev server (`inngest dev`), which signs nothing.
    Dev,
}

impl Mode {
    /// `"cloud"` or `"dev"`, as reported in introspection.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Cloud => "cloud",
            Mode::Dev => "dev",
        }
    }
}

/// An event key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EventKey(String);

impl EventKey {
    /// Wraps a key.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventKey([redacted])")
    }
}

/// A configuration value that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A URL variable that does not parse.
    #[error("{var} is not a valid URL: {value:?}")]
    InvalidUrl {
        /// The variable or setting name.
        var: &'static str,
        /// What it held.
        value: String,
    },
    /// An empty app id.
    #[error("the app id must not be empty")]
    EmptyAppId,
}

/// Everything the SDK needs to know about this app and where Inngest is.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) app_id: String,
    pub(crate) app_version: Option<String>,
    pub(crate) event_key: Option<EventKey>,
    pub(crate) signing_key: Option<SigningKey>,
    pub(crate) signing_key_fallback: Option<SigningKey>,
    pub(crate) env: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) api_base_url: Url,
    pub(crate) event_api_base_url: Url,
    pub(crate) serve_origin: Option<String>,
    pub(crate) serve_path: Option<String>,
    pub(crate) allow_in_band_sync: bool,
    pub(crate) checkpoint: Option<Checkpoint>,
}

fn parse_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value).map_err(|_| ConfigError::InvalidUrl {
        var,
        value: value.to_owned(),
    })
}

fn const_url(value: &str) -> Url {
    Url::parse(value).unwrap_or_else(|_| unreachable!("constant URLs parse"))
}

impl Config {
    /// A cloud-mode configuration with no keys, for `app_id`.
    #[must_use]
    pub fn new(app_id: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            app_version: None,
            event_key: None,
            signing_key: None,
            signing_key_fallback: None,
            env: None,
            mode: Mode::Cloud,
            api_base_url: const_url(CLOUD_API_URL),
            event_api_base_url: const_url(CLOUD_EVENT_URL),
            serve_origin: None,
            serve_path: None,
            allow_in_band_sync: true,
            checkpoint: None,
        }
    }

    /// Reads the standard `INNGEST_*` variables from the process environment.
    pub fn from_env(app_id: impl Into<String>) -> Result<Self, ConfigError> {
        Self::from_vars(app_id, |name| std::env::var(name).ok())
    }

    /// Reads the standard variables through `var`, so tests need not touch the process
    /// environment. Empty values count as unset.
    pub fn from_vars(
        app_id: impl Into<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::new(app_id);
        if config.app_id.trim().is_empty() {
            return Err(ConfigError::EmptyAppId);
        }
        if let Some(dev) = get("INNGEST_DEV") {
            match dev.trim() {
                "0" | "false" => {}
                "1" | "true" => config = config.dev(None),
                url => config = config.dev(Some(url)),
            }
        }
        if let Some(base) = get("INNGEST_BASE_URL") {
            let url = parse_url("INNGEST_BASE_URL", &base)?;
            config.api_base_url = url.clone();
            config.event_api_base_url = url;
        }
        if let Some(api) = get("INNGEST_API_BASE_URL") {
            config.api_base_url = parse_url("INNGEST_API_BASE_URL", &api)?;
        }
        if let Some(events) = get("INNGEST_EVENT_API_BASE_URL") {
            config.event_api_base_url = parse_url("INNGEST_EVENT_API_BASE_URL", &events)?;
        }
        config.event_key = get("INNGEST_EVENT_KEY").map(EventKey::new);
        config.signing_key = get("INNGEST_SIGNING_KEY").map(SigningKey::new);
        config.signing_key_fallback = get("INNGEST_SIGNING_KEY_FALLBACK").map(SigningKey::new);
        config.env = get("INNGEST_ENV");
        config.serve_origin = get("INNGEST_SERVE_ORIGIN").or_else(|| get("INNGEST_SERVE_HOST"));
        config.serve_path = get("INNGEST_SERVE_PATH");
        if let Some(flag) = get("INNGEST_ALLOW_IN_BAND_SYNC") {
            config.allow_in_band_sync = matches!(flag.trim(), "1" | "true");
        }
        Ok(config)
    }

    /// Switches to dev mode. `origin` is the dev server (default `http://127.0.0.1:8288`);
    /// a value that is not a URL with a host is ignored, as the Go SDK does.
    #[must_use]
    pub fn dev(mut self, origin: Option<&str>) -> Self {
        let url = origin
            .and_then(|o| Url::parse(o).ok())
            .filter(|u| u.host().is_some())
            .unwrap_or_else(|| const_url(DEV_SERVER_URL));
        self.mode = Mode::Dev;
        self.api_base_url = url.clone();
        self.event_api_base_url = url;
        self
    }

    /// Switches to cloud mode with the cloud URLs.
    #[must_use]
    pub fn cloud(mut self) -> Self {
        self.mode = Mode::Cloud;
        self.api_base_url = const_url(CLOUD_API_URL);
        self.event_api_base_url = const_url(CLOUD_EVENT_URL);
        self
    }

    /// Sets the event key.
    #[must_use]
    pub fn with_event_key(mut self, key: impl Into<String>) -> Self {
        self.event_key = Some(EventKey::new(key));
        self
    }

    /// Sets the signing key.
    #[must_use]
    pub fn with_signing_key(mut self, key: impl Into<String>) -> Self {
        self.signing_key = Some(SigningKey::new(key));
        self
    }

    /// Sets the fallback signing key, tried when the primary one fails (key rotation).
    #[must_use]
    pub fn with_signing_key_fallback(mut self, key: impl Into<String>) -> Self {
        self.signing_key_fallback = Some(SigningKey::new(key));
        self
    }

    /// Sets the Inngest environment (branch environments), sent as `X-Inngest-Env`.
    #[must_use]
    pub fn with_env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Sets the app version reported on sync.
    #[must_use]
    pub fn with_app_version(mut self, version: impl Into<String>) -> Self {
        self.app_version = Some(version.into());
        self
    }

    /// Sets the API origin (`/fn/register`, `/v0/runs/...`).
    pub fn with_api_base_url(mut self, url: &str) -> Result<Self, ConfigError> {
        self.api_base_url = parse_url("api_base_url", url)?;
        Ok(self)
    }

    /// Sets the event API origin (`/e/{key}`).
    pub fn with_event_api_base_url(mut self, url: &str) -> Result<Self, ConfigError> {
        self.event_api_base_url = parse_url("event_api_base_url", url)?;
        Ok(self)
    }

    /// Overrides the scheme and host reported to Inngest on sync (e.g. behind a proxy).
    #[must_use]
    pub fn with_serve_origin(mut self, origin: impl Into<String>) -> Self {
        self.serve_origin = Some(origin.into());
        self
    }

    /// Overrides the path reported to Inngest on sync.
    #[must_use]
    pub fn with_serve_path(mut self, path: impl Into<String>) -> Self {
        self.serve_path = Some(path.into());
        self
    }

    /// Allows or refuses in-band sync (`x-inngest-sync-kind: in_band`).
    #[must_use]
    pub fn with_in_band_sync(mut self, allow: bool) -> Self {
        self.allow_in_band_sync = allow;
        self
    }

    /// Checkpoints every function's steps as `checkpoint` says, unless the function has its
    /// own setting (see [`crate::checkpoint`]). Off by default.
    #[must_use]
    pub fn with_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// The client's checkpoint setting, if any.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The API origin.
    pub fn api_base_url(&self) -> &Url {
        &self.api_base_url
    }

    /// The event API origin.
    pub fn event_api_base_url(&self) -> &Url {
        &self.event_api_base_url
    }

    pub(crate) fn signing_keys(&self) -> Vec<&SigningKey> {
        self.signing_key
            .iter()
            .chain(self.signing_key_fallback.iter())
            .collect()
    }

    /// The composite id Inngest knows a function by: `<app id>-<function id>`.
    pub fn composite_id(&self, function_id: &str) -> String {
        format!("{}-{}", self.app_id, function_id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars("app", |k| map.get(k).cloned()).expect("valid config")
    }

    #[test]
    fn cloud_is_the_default() {
        let config = from(&[]);
        assert_eq!(config.mode, Mode::Cloud);
        assert_eq!(config.api_base_url.as_str(), "https://api.inngest.com/");
        assert_eq!(config.event_api_base_url.as_str(), "https://inn.gs/");
    }

    #[test]
    fn inngest_dev_selects_dev_mode_and_its_url() {
        let config = from(&[("INNGEST_DEV", "1")]);
        assert_eq!(config.mode, Mode::Dev);
        assert_eq!(config.api_base_url.as_str(), "http://127.0.0.1:8288/");
        let config = from(&[("INNGEST_DEV", "http://localhost:9999")]);
        assert_eq!(config.event_api_base_url.as_str(), "http://localhost:9999/");
        assert_eq!(from(&[("INNGEST_DEV", "0")]).mode, Mode::Cloud);
    }

    #[test]
    fn specific_urls_win_over_the_base_url() {
        let config = from(&[
            ("INNGEST_BASE_URL", "http://base:1"),
            ("INNGEST_EVENT_API_BASE_URL", "http://events:2"),
        ]);
        assert_eq!(config.api_base_url.as_str(), "http://base:1/");
        assert_eq!(config.event_api_base_url.as_str(), "http://events:2/");
    }

    #[test]
    fn reads_keys_env_and_serve_overrides() {
        let config = from(&[
            ("INNGEST_EVENT_KEY", "ek"),
            ("INNGEST_SIGNING_KEY", "signkey-prod-aa"),
            ("INNGEST_SIGNING_KEY_FALLBACK", "signkey-prod-bb"),
            ("INNGEST_ENV", "branch-1"),
            ("INNGEST_SERVE_ORIGIN", "https://example.com"),
            ("INNGEST_SERVE_PATH", "/x/inngest"),
            ("INNGEST_ALLOW_IN_BAND_SYNC", "false"),
        ]);
        assert_eq!(config.signing_keys().len(), 2);
        assert_eq!(config.env.as_deref(), Some("branch-1"));
        assert_eq!(config.serve_origin.as_deref(), Some("https://example.com"));
        assert_eq!(config.serve_path.as_deref(), Some("/x/inngest"));
        assert!(!config.allow_in_band_sync);
        let debug = format!("{config:?}");
        assert!(!debug.contains("signkey-prod-aa") && !debug.contains("\"ek\""));
    }

    #[test]
    fn a_bad_url_is_a_clear_error() {
        let err = Config::from_vars("app", |k| {
            (k == "INNGEST_BASE_URL").then(|| "not a url".to_owned())
        })
        .expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "INNGEST_BASE_URL is not a valid URL: \"not a url\""
        );
    }
}
