//! Request signatures (`X-Inngest-Signature`) and the hashed signing key used as API bearer.
//!
//! The HMAC key is the UTF-8 text of the signing key with its `signkey-<env>-` prefix removed;
//! it is deliberately *not* hex-decoded (protocol §3.1). The bearer form hashes the hex-decoded
//! key instead (§3.2). Both rules come from the server and the Go SDK, not from the prose spec.

use std::fmt;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a signature's timestamp may be from now, in either direction.
pub const SIGNATURE_MAX_AGE_SECS: i64 = 5 * 60;

/// A signing key (`signkey-prod-…`). Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(String);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    /// Wraps a key as configured, prefix included.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_owned())
    }

    /// Splits `signkey-<env>-` from the rest, if the key has that prefix.
    fn split_prefix(&self) -> (&str, &str) {
        let key = self.0.as_str();
        if let Some(rest) = key.strip_prefix("signkey-")
            && let Some(dash) = rest.find('-')
        {
            let env = &rest[..dash];
            if !env.is_empty() && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                let cut = "signkey-".len() + dash + 1;
                return (&key[..cut], &key[cut..]);
            }
        }
        ("", key)
    }

    fn hmac_key(&self) -> &[u8] {
        self.split_prefix().1.as_bytes()
    }

    /// The `Authorization: Bearer` form: the prefix kept, the rest replaced by
    /// `hex(sha256(hex_decode(rest)))` (the raw bytes are hashed when the key is not hex).
    pub fn hashed(&self) -> String {
        let (prefix, rest) = self.split_prefix();
        let digest = match hex::decode(rest) {
            Ok(bytes) => Sha256::digest(&bytes),
            Err(_) => Sha256::digest(rest.as_bytes()),
        };
        format!("{prefix}{}", hex::encode(digest))
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Inngest-Signature` header.
    #[error("missing X-Inngest-Signature header")]
    Missing,
    /// The header is not `t=<unix secs>&s=<hex>`.
    #[error("malformed X-Inngest-Signature header")]
    Malformed,
    /// The timestamp is more than five minutes away from now.
    #[error("signature timestamp outside the allowed window")]
    Expired,
    /// The HMAC does not match any configured key.
    #[error("signature does not match")]
    Mismatch,
    /// A signature must be checked but no signing key is configured.
    #[error("no signing key configured")]
    NoKey,
}

fn mac(key: &SigningKey, body: &[u8], timestamp: i64) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.hmac_key())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.update(timestamp.to_string().as_bytes());
    mac.finalize().into_bytes().into()
}

/// Signs `body` at `timestamp` (unix seconds): `t=<timestamp>&s=<hex hmac>`.
pub fn sign(key: &SigningKey, body: &[u8], timestamp: i64) -> String {
    format!("t={timestamp}&s={}", hex::encode(mac(key, body, timestamp)))
}

/// Verifies `header` over `body` with the primary key, then the fallback.
/// Returns the key that matched, which signs the response where one is signed.
pub fn verify<'k>(
    header: Option<&str>,
    body: &[u8],
    keys: &[&'k SigningKey],
    now: i64,
) -> Result<&'k SigningKey, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if keys.is_empty() {
        return Err(SignatureError::NoKey);
    }
    let (timestamp, given) = parse_current(header, now)?;
    keys.iter()
        .copied()
        .find(|key| bool::from(mac(key, body, timestamp).ct_eq(given.as_slice())))
        .ok_or(SignatureError::Mismatch)
}

/// Whether `header` could verify at `now`, checked without the body: well formed and within
/// the window. A request whose header fails this is refused whatever its body, so a server
/// need not read the body to refuse it.
pub fn plausible(header: &str, now: i64) -> Result<(), SignatureError> {
    parse_current(header, now).map(drop)
}

/// The timestamp and MAC of a well-formed header whose timestamp is within the window.
fn parse_current(header: &str, now: i64) -> Result<(i64, [u8; 32]), SignatureError> {
    let (mut t, mut s) = (None, None);
    for pair in header.split('&') {
        match pair.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("s", v)) => s = Some(v),
            _ => {}
        }
    }
    let timestamp: i64 = t
        .and_then(|t| t.parse().ok())
        .ok_or(SignatureError::Malformed)?;
    let mut given = [0_u8; 32];
    s.and_then(|s| hex::decode_to_slice(s, &mut given).ok())
        .ok_or(SignatureError::Malformed)?;
    if now.abs_diff(timestamp) > SIGNATURE_MAX_AGE_SECS.unsigned_abs() {
        return Err(SignatureError::Expired);
    }
    Ok((timestamp, given))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "signkey-test-7468697320697320612074657374206b6579";
    const NOW: i64 = 1_700_000_000;

    #[test]
    fn signs_with_the_prefix_stripped_and_not_hex_decoded() {
        let body = br#"{"a":1}"#;
        let with_prefix = sign(&SigningKey::new(KEY), body, NOW);
        let bare = sign(
            &SigningKey::new("7468697320697320612074657374206b6579"),
            body,
            NOW,
        );
        assert_eq!(with_prefix, bare);
        // Reference: HMAC-SHA256(key = ASCII of the hex string, body || "1700000000").
        let mut reference =
            <HmacSha256 as KeyInit>::new_from_slice(b"7468697320697320612074657374206b6579")
                .expect("any key length");
        reference.update(br#"{"a":1}1700000000"#);
        let want = hex::encode(reference.finalize().into_bytes());
        assert_eq!(with_prefix, format!("t={NOW}&s={want}"));
    }

    #[test]
    fn hashed_key_matches_the_spec_example_shape() {
        let key = SigningKey::new("signkey-prod-12345678");
        let hashed = key.hashed();
        assert_eq!(
            hashed,
            format!(
                "signkey-prod-{}",
                hex::encode(Sha256::digest([0x12, 0x34, 0x56, 0x78]))
            )
        );
        assert!(hashed.starts_with("signkey-prod-b2ed9921"), "{hashed}");
    }

    #[test]
    fn accepts_a_valid_signature() {
        let key = SigningKey::new(KEY);
        let header = sign(&key, b"body", NOW);
        assert_eq!(verify(Some(&header), b"body", &[&key], NOW), Ok(&key));
    }

    #[test]
    fn rejects_expired_and_future_signatures() {
        let key = SigningKey::new(KEY);
        let old = sign(&key, b"body", NOW - SIGNATURE_MAX_AGE_SECS - 1);
        let future = sign(&key, b"body", NOW + SIGNATURE_MAX_AGE_SECS + 1);
        let edge = sign(&key, b"body", NOW - SIGNATURE_MAX_AGE_SECS);
        assert_eq!(
            verify(Some(&old), b"body", &[&key], NOW),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(Some(&future), b"body", &[&key], NOW),
            Err(SignatureError::Expired)
        );
        assert!(verify(Some(&edge), b"body", &[&key], NOW).is_ok());
    }

    #[test]
    fn rejects_a_wrong_key_a_changed_body_and_garbage() {
        let key = SigningKey::new(KEY);
        let other = SigningKey::new("signkey-test-00ff");
        let header = sign(&other, b"body", NOW);
        assert_eq!(
            verify(Some(&header), b"body", &[&key], NOW),
            Err(SignatureError::Mismatch)
        );
        let header = sign(&key, b"body", NOW);
        assert_eq!(
            verify(Some(&header), b"b0dy", &[&key], NOW),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "t=abc&s=00", "s=00", &format!("t={NOW}&s=zz")] {
            assert_eq!(
                verify(Some(bad), b"body", &[&key], NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(None, b"body", &[&key], NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn falls_back_to_the_second_key() {
        let primary = SigningKey::new("signkey-prod-aa");
        let fallback = SigningKey::new("signkey-prod-bb");
        let header = sign(&fallback, b"body", NOW);
        assert_eq!(
            verify(Some(&header), b"body", &[&primary, &fallback], NOW),
            Ok(&fallback)
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(
            format!("{:?}", SigningKey::new(KEY)),
            "SigningKey([redacted])"
        );
    }
}
