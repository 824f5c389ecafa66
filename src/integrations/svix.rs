//! Svix webhook signatures, as Clerk and Resend send them: HMAC-SHA256 over
//! `{svix-id}.{svix-timestamp}.{body}` with the base64 key after `whsec_`, base64 signatures
//! listed as `v1,<sig>` separated by spaces, and a five-minute window.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = hmac::Hmac<Sha256>;

const TOLERANCE_SECS: i64 = 5 * 60;

/// Why a Svix signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SvixError {
    /// A `svix-*` header is missing.
    #[error("missing svix headers")]
    MissingHeaders,
    /// The timestamp is not a number or is too far from now.
    #[error("svix timestamp outside the allowed window")]
    Timestamp,
    /// No signature matches.
    #[error("svix signature does not match")]
    Mismatch,
    /// The configured secret is not `whsec_<base64>`.
    #[error("invalid webhook secret")]
    BadSecret,
}

/// Verifies Svix-signed webhooks with one endpoint secret.
#[derive(Clone, Debug)]
pub struct SvixVerifier {
    secret: Secret,
}

impl SvixVerifier {
    /// A verifier for `whsec_...`.
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// Checks the signature of `body`; returns the message id (`svix-id`), which is unique
    /// per message and stable across retries.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<String, SvixError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(id), Some(timestamp), Some(signatures)) = (
            header("svix-id"),
            header("svix-timestamp"),
            header("svix-signature"),
        ) else {
            return Err(SvixError::MissingHeaders);
        };
        let ts: i64 = timestamp.parse().map_err(|_| SvixError::Timestamp)?;
        if now.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
            return Err(SvixError::Timestamp);
        }
        let key = self
            .secret
            .expose()
            .strip_prefix("whsec_")
            .and_then(|k| STANDARD.decode(k).ok())
            .ok_or(SvixError::BadSecret)?;
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(&key).map_err(|_| SvixError::BadSecret)?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let matched = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|sig| mac.clone().verify_slice(&sig).is_ok());
        if matched {
            Ok(id.to_owned())
        } else {
            Err(SvixError::Mismatch)
        }
    }
}

/// Signs like Svix (for tests and fakes).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Svix's published test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(signature: &str, ts: i64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("svix-id", ID.parse().expect("header"));
        h.insert("svix-timestamp", ts.to_string().parse().expect("header"));
        h.insert("svix-signature", signature.parse().expect("header"));
        h
    }

    #[test]
    fn the_published_vector_verifies() {
        let verifier = SvixVerifier::new(Secret::new(SECRET));
        assert_eq!(
            verifier.verify(&headers(SIGNATURE, TS), BODY, TS),
            Ok(ID.to_owned())
        );
        assert_eq!(sign(SECRET, ID, TS, BODY).as_deref(), Some(SIGNATURE));
        let several = format!("v1,bm9wZQ== {SIGNATURE}");
        assert!(verifier.verify(&headers(&several, TS), BODY, TS).is_ok());
    }

    #[test]
    fn tampering_staleness_and_missing_headers_are_refused() {
        let verifier = SvixVerifier::new(Secret::new(SECRET));
        assert_eq!(
            verifier.verify(&headers(SIGNATURE, TS), b"{}", TS),
            Err(SvixError::Mismatch)
        );
        assert_eq!(
            verifier.verify(&headers(SIGNATURE, TS), BODY, TS + 301),
            Err(SvixError::Timestamp)
        );
        assert_eq!(
            verifier.verify(&HeaderMap::new(), BODY, TS),
            Err(SvixError::MissingHeaders)
        );
        let other = SvixVerifier::new(Secret::new("whsec_c2VjcmV0"));
        assert_eq!(
            other.verify(&headers(SIGNATURE, TS), BODY, TS),
            Err(SvixError::Mismatch)
        );
    }
}
