//! GET: introspection. Unsigned requests learn only what the dev server's discovery needs;
//! a valid signature unlocks the full description (protocol §4).

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{ServeHandler, headers, to_json_response};
use crate::client::SDK_HEADER_VALUE;
use crate::signature::verify;

const SCHEMA_VERSION: &str = "2024-05-24";

impl<S: Clone + Send + Sync + 'static> ServeHandler<S> {
    pub(super) fn introspect(&self, request_headers: &HeaderMap) -> Response<Bytes> {
        let config = self.inner.client.config();
        let signature = request_headers
            .get(headers::SIGNATURE)
            .and_then(|v| v.to_str().ok());
        // GET is signed over an empty body. In dev mode any signature counts, as in Go.
        let authenticated = signature.map(|sig| {
            self.is_dev()
                || verify(
                    Some(sig),
                    b"",
                    &config.signing_keys(),
                    chrono::Utc::now().timestamp(),
                )
                .is_ok()
        });
        to_json_response(StatusCode::OK, &self.inspection(authenticated))
    }

    /// The introspection body; the full one when `authenticated` is `Some(true)`.
    pub(super) fn inspection(&self, authenticated: Option<bool>) -> Value {
        let config = self.inner.client.config();
        let mut body = json!({
            "schema_version": SCHEMA_VERSION,
            "authentication_succeeded": authenticated,
            "function_count": self.inner.functions.len(),
            "has_event_key": config.event_key.is_some(),
            "has_signing_key": config.signing_key.is_some(),
            "has_signing_key_fallback": config.signing_key_fallback.is_some(),
            "mode": config.mode().as_str(),
        });
        if authenticated == Some(true)
            && let Value::Object(obj) = &mut body
        {
            let extra = json!({
                "api_origin": config.api_base_url().as_str().trim_end_matches('/'),
                "app_id": config.app_id(),
                "capabilities": capabilities(),
                "env": config.env,
                "event_api_origin": config.event_api_base_url().as_str().trim_end_matches('/'),
                "event_key_hash": config.event_key.as_ref().map(|k| hex::encode(Sha256::digest(k.expose()))),
                "framework": self.framework,
                "sdk_language": "rust",
                "sdk_version": env!("CARGO_PKG_VERSION"),
                "serve_origin": config.serve_origin,
                "serve_path": config.serve_path,
                "signing_key_hash": config.signing_key.as_ref().map(|k| k.hashed()),
                "signing_key_fallback_hash": config.signing_key_fallback.as_ref().map(|k| k.hashed()),
            });
            if let Value::Object(extra) = extra {
                obj.extend(extra);
            }
        }
        body
    }
}

/// What this SDK supports, reported on sync and introspection.
pub(crate) fn capabilities() -> Value {
    json!({ "in_band_sync": "v1", "trust_probe": "v1" })
}

/// `rust:v<version>`.
pub(crate) fn sdk_name() -> &'static str {
    SDK_HEADER_VALUE
}
