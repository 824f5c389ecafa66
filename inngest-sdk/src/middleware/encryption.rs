//! End-to-end encryption of step results, function output and event data, readable by
//! Inngest's official encryption middleware (npm `@inngest/middleware-encryption` 2.x, default
//! strategy) and reading what it writes. Feature `encryption`.
//!
//! The wire format, as the official middleware defines it: an encrypted value is the JSON
//! object `{"__ENCRYPTED__": true, "__STRATEGY__": "inngest/libsodium", "data": <base64>}`,
//! where `data` is standard base64 of a 24-byte random nonce followed by libsodium's
//! `crypto_secretbox_easy` (XSalsa20-Poly1305, tag first) of the value's JSON. The 32-byte box
//! key is BLAKE2b-256 (libsodium's `crypto_generichash`) of the configured key string.
//! Step results and the function's output are encrypted whole (`null` is left alone); in event
//! data only the field `encrypted` is (the rest stays readable for triggers and
//! expressions); when reading, every top-level field of event data that is an encrypted value
//! is decrypted.
//!
//! The crypto is RustCrypto's (`crypto_secretbox`, `blake2`); nothing here is hand-made.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use blake2::{Blake2b256, Digest};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use rand::RngCore;
use serde_json::{Map, Value, json};

use super::{Middleware, RunHooks, RunInput, StepInfo, StepKind};
use crate::error::{Classify, Error, Retry};
use crate::function::RunInfo;

/// The marker key of an encrypted value.
pub const ENCRYPTION_MARKER: &str = "__ENCRYPTED__";
/// The key naming the strategy of an encrypted value.
pub const STRATEGY_MARKER: &str = "__STRATEGY__";
/// The strategy this middleware reads and writes (the official middleware's default).
pub const LIBSODIUM_STRATEGY: &str = "inngest/libsodium";
/// The event data field encrypted by default.
pub const DEFAULT_EVENT_FIELD: &str = "encrypted";

const NONCE_BYTES: usize = 24;

/// Why a value could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// No usable key was given.
    #[error("no encryption key given (at least one non-empty key is needed)")]
    NoKeys,
    /// None of the configured keys opens the value: a wrong key, or a value encrypted with a
    /// key this process does not have yet (during a rotation).
    #[error(
        "an encrypted value could not be decrypted with any of the {keys} configured key(s): \
         wrong key, or encrypted with a key this process does not have"
    )]
    WrongKey {
        /// How many keys were tried.
        keys: usize,
    },
    /// The value carries the markers but is not a valid box.
    #[error("an encrypted value is malformed: {0}")]
    Malformed(String),
    /// A strategy this middleware does not read (the official AES or v0 formats).
    #[error("an encrypted value uses the {0:?} strategy; only {LIBSODIUM_STRATEGY:?} is supported")]
    UnsupportedStrategy(String),
    /// The value does not serialize, or the decrypted bytes are not JSON.
    #[error("an encrypted value is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A wrong key may be a rotation in progress (another process encrypted with a newer key), so
/// it is retried; any other failure would fail the same way again.
impl Classify for EncryptionError {
    fn retry(&self) -> Retry {
        match self {
            EncryptionError::WrongKey { .. } => Retry::Default,
            _ => Retry::Never,
        }
    }
}

/// The encryption middleware; see the [module](self) for the format.
///
/// ```
/// use inngest_sdk::middleware::encryption::EncryptionMiddleware;
/// use inngest_sdk::{Client, Config};
///
/// // Encrypt with the first key; decrypt with either (key rotation).
/// let encryption = EncryptionMiddleware::new(["new secret", "old secret"])?;
/// let client = Client::new(Config::new("app")).with_middleware(encryption);
/// # Ok::<(), inngest_sdk::middleware::encryption::EncryptionError>(())
/// ```
#[derive(Clone)]
pub struct EncryptionMiddleware {
    inner: Arc<Settings>,
}

struct Settings {
    ciphers: Vec<XSalsa20Poly1305>,
    decrypt_only: bool,
    event_field: String,
}

impl std::fmt::Debug for EncryptionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionMiddleware")
            .field("keys", &self.inner.ciphers.len())
            .field("decrypt_only", &self.inner.decrypt_only)
            .field("event_field", &self.inner.event_field)
            .finish()
    }
}

fn cipher(key: &str) -> XSalsa20Poly1305 {
    let digest = Blake2b256::digest(key.as_bytes());
    XSalsa20Poly1305::new(Key::from_slice(digest.as_slice()))
}

impl EncryptionMiddleware {
    /// Encrypts with the first key and decrypts with any of them. Keys are trimmed and empty
    /// ones dropped, as the official middleware does.
    pub fn new<I, K>(keys: I) -> Result<Self, EncryptionError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let ciphers: Vec<_> = keys
            .into_iter()
            .filter_map(|k| {
                let k = k.as_ref().trim();
                (!k.is_empty()).then(|| cipher(k))
            })
            .collect();
        if ciphers.is_empty() {
            return Err(EncryptionError::NoKeys);
        }
        Ok(Self {
            inner: Arc::new(Settings {
                ciphers,
                decrypt_only: false,
                event_field: DEFAULT_EVENT_FIELD.to_owned(),
            }),
        })
    }

    /// Keys from a comma-separated list (`INNGEST_ENCRYPTION_KEY=new,old`).
    pub fn from_list(list: &str) -> Result<Self, EncryptionError> {
        Self::new(list.split(','))
    }

    fn settings(mut self, edit: impl FnOnce(&mut Settings)) -> Self {
        if let Some(settings) = Arc::get_mut(&mut self.inner) {
            edit(settings);
        } else {
            let mut settings = Settings {
                ciphers: self.inner.ciphers.clone(),
                decrypt_only: self.inner.decrypt_only,
                event_field: self.inner.event_field.clone(),
            };
            edit(&mut settings);
            self.inner = Arc::new(settings);
        }
        self
    }

    /// Decrypts what it reads and encrypts nothing: for migrating functions to encryption
    /// (deploy readers first, then writers).
    #[must_use]
    pub fn decrypt_only(self) -> Self {
        self.settings(|s| s.decrypt_only = true)
    }

    /// Encrypts this event data field instead of `encrypted`.
    #[must_use]
    pub fn with_event_field(self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.settings(|s| s.event_field = field)
    }

    /// Whether `value` is an encrypted value (of any strategy).
    pub fn is_encrypted(value: &Value) -> bool {
        value.get(ENCRYPTION_MARKER) == Some(&Value::Bool(true))
            && value.get("data").is_some_and(Value::is_string)
    }

    /// `value` as an encrypted value, with the first key.
    pub fn encrypt_value(&self, value: &Value) -> Result<Value, EncryptionError> {
        let plaintext = serde_json::to_vec(value)?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self.inner.ciphers[0]
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
            .map_err(|_| EncryptionError::Malformed("the value could not be sealed".into()))?;
        let mut combined = nonce.to_vec();
        combined.extend_from_slice(&sealed);
        Ok(json!({
            ENCRYPTION_MARKER: true,
            STRATEGY_MARKER: LIBSODIUM_STRATEGY,
            "data": STANDARD.encode(combined),
        }))
    }

    /// The plain value of an encrypted value; any other value is returned as it is.
    pub fn decrypt_value(&self, value: &Value) -> Result<Value, EncryptionError> {
        if !Self::is_encrypted(value) {
            return Ok(value.clone());
        }
        match value.get(STRATEGY_MARKER) {
            Some(Value::String(s)) if s == LIBSODIUM_STRATEGY => {}
            Some(Value::String(s)) => return Err(EncryptionError::UnsupportedStrategy(s.clone())),
            _ => return Err(EncryptionError::UnsupportedStrategy("v0 (legacy)".into())),
        }
        let encoded = value["data"].as_str().unwrap_or_default();
        let combined = STANDARD
            .decode(encoded)
            .map_err(|e| EncryptionError::Malformed(format!("data is not base64: {e}")))?;
        if combined.len() < NONCE_BYTES + 16 {
            return Err(EncryptionError::Malformed("data is too short".into()));
        }
        let (nonce, sealed) = combined.split_at(NONCE_BYTES);
        let opened = self
            .inner
            .ciphers
            .iter()
            .find_map(|c| c.decrypt(Nonce::from_slice(nonce), sealed).ok())
            .ok_or(EncryptionError::WrongKey {
                keys: self.inner.ciphers.len(),
            })?;
        Ok(serde_json::from_slice(&opened)?)
    }

    /// Encrypts the configured field of event data (an object), if present.
    pub fn encrypt_event_data(&self, data: &mut Value) -> Result<(), EncryptionError> {
        if let Some(field) = data
            .as_object_mut()
            .and_then(|d| d.get_mut(&self.inner.event_field))
        {
            *field = self.encrypt_value(field)?;
        }
        Ok(())
    }

    /// Decrypts every top-level field of event data that is an encrypted value.
    pub fn decrypt_event_data(&self, data: &mut Value) -> Result<(), EncryptionError> {
        if let Some(fields) = data.as_object_mut() {
            decrypt_fields(self, fields)?;
        }
        Ok(())
    }

    fn decrypt_event(&self, event: &mut Value) -> Result<(), EncryptionError> {
        match event.get_mut("data") {
            Some(data) => self.decrypt_event_data(data),
            None => Ok(()),
        }
    }
}

fn decrypt_fields(
    middleware: &EncryptionMiddleware,
    fields: &mut Map<String, Value>,
) -> Result<(), EncryptionError> {
    for value in fields.values_mut() {
        if EncryptionMiddleware::is_encrypted(value) {
            *value = middleware.decrypt_value(value)?;
        }
    }
    Ok(())
}

#[async_trait]
impl Middleware for EncryptionMiddleware {
    fn name(&self) -> &'static str {
        "encryption"
    }

    fn on_run(&self, _run: &RunInfo) -> Box<dyn RunHooks> {
        Box::new(self.clone())
    }

    async fn transform_send(&self, events: &mut Vec<Value>) -> Result<(), Error> {
        if self.inner.decrypt_only {
            return Ok(());
        }
        for event in events.iter_mut() {
            if let Some(data) = event.get_mut("data") {
                self.encrypt_event_data(data)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RunHooks for EncryptionMiddleware {
    async fn transform_input(&mut self, input: &mut RunInput) -> Result<(), Error> {
        self.decrypt_event(&mut input.event)?;
        for event in &mut input.events {
            self.decrypt_event(event)?;
        }
        Ok(())
    }

    async fn transform_memoized(&mut self, step: &StepInfo, data: &mut Value) -> Result<(), Error> {
        match step.kind {
            StepKind::WaitForEvent => self.decrypt_event(data)?,
            _ => *data = self.decrypt_value(data)?,
        }
        Ok(())
    }

    async fn transform_step_input(
        &mut self,
        step: &StepInfo,
        input: &mut Value,
    ) -> Result<(), Error> {
        if step.kind == StepKind::Invoke
            && !self.inner.decrypt_only
            && let Some(data) = input.pointer_mut("/payload/data")
        {
            self.encrypt_event_data(data)?;
        }
        Ok(())
    }

    async fn transform_step_output(
        &mut self,
        _step: &StepInfo,
        output: &mut Value,
    ) -> Result<(), Error> {
        if !self.inner.decrypt_only && !output.is_null() {
            *output = self.encrypt_value(output)?;
        }
        Ok(())
    }

    async fn transform_output(&mut self, output: &mut Result<Value, Error>) -> Result<(), Error> {
        if let Ok(value) = output
            && !self.inner.decrypt_only
            && !value.is_null()
        {
            *value = self.encrypt_value(value)?;
        }
        Ok(())
    }
}
