//! Signed, expiring tokens: `<base64url subject>.<expiry unix secs>.<hex HMAC-SHA256>`, the MAC
//! over the purpose, subject and expiry with a server secret. The purpose keeps a token made
//! for one use (an email link) from being accepted for another (an OAuth state).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token of ours.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match: forged or altered.
    #[error("forged token")]
    Forged,
    /// Past its expiry.
    #[error("expired token")]
    Expired,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The Discord link in onboarding emails; the subject is a Clerk id.
    DiscordLink,
    /// The OAuth `state`; the subject is a random nonce.
    OAuthState,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::DiscordLink => "discord-link",
            Purpose::OAuthState => "oauth-state",
        }
    }
}

/// Signs and verifies tokens with one secret.
#[derive(Clone, Debug)]
pub struct LinkSigner {
    secret: Secret,
}

impl LinkSigner {
    /// A signer with `secret` (at least 32 bytes, checked by the configuration).
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    fn mac(&self, purpose: Purpose, subject: &str, expires: i64) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(subject.as_bytes());
        mac.update(b"\0");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// A token for `subject` valid until `expires`.
    pub fn sign(&self, purpose: Purpose, subject: &str, expires: DateTime<Utc>) -> String {
        let expires = expires.timestamp();
        let tag = hex::encode(self.mac(purpose, subject, expires).finalize().into_bytes());
        format!("{}.{expires}.{tag}", URL_SAFE_NO_PAD.encode(subject))
    }

    /// The subject of a valid token.
    pub fn verify(
        &self,
        purpose: Purpose,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<String, LinkError> {
        let mut parts = token.split('.');
        let (Some(subject), Some(expires), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        let subject = URL_SAFE_NO_PAD
            .decode(subject)
            .ok()
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or(LinkError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| LinkError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| LinkError::Malformed)?;
        self.mac(purpose, &subject, expires)
            .verify_slice(&tag)
            .map_err(|_| LinkError::Forged)?;
        if expires <= now.timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(subject)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn signer(secret: &str) -> LinkSigner {
        LinkSigner::new(Secret::new(secret))
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let now = Utc::now();
        let token = signer("s3cret-s3cret-s3cret-s3cret-s3cret").sign(
            Purpose::DiscordLink,
            "user_1",
            now + Duration::hours(1),
        );
        let s = signer("s3cret-s3cret-s3cret-s3cret-s3cret");
        assert_eq!(
            s.verify(Purpose::DiscordLink, &token, now),
            Ok("user_1".to_owned())
        );
        assert_eq!(
            s.verify(Purpose::DiscordLink, &token, now + Duration::hours(2)),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn altered_tokens_other_secrets_and_other_purposes_are_forged() {
        let now = Utc::now();
        let s = signer("s3cret-s3cret-s3cret-s3cret-s3cret");
        let token = s.sign(Purpose::DiscordLink, "user_1", now + Duration::hours(1));
        let other_user = token.replacen(
            &URL_SAFE_NO_PAD.encode("user_1"),
            &URL_SAFE_NO_PAD.encode("user_2"),
            1,
        );
        assert_eq!(
            s.verify(Purpose::DiscordLink, &other_user, now),
            Err(LinkError::Forged)
        );
        assert_eq!(
            signer("another-secret-another-secret-xx").verify(Purpose::DiscordLink, &token, now),
            Err(LinkError::Forged)
        );
        assert_eq!(
            s.verify(Purpose::OAuthState, &token, now),
            Err(LinkError::Forged)
        );
        let later = token.replacen(
            &(now + Duration::hours(1)).timestamp().to_string(),
            "9999999999",
            1,
        );
        assert_eq!(
            s.verify(Purpose::DiscordLink, &later, now),
            Err(LinkError::Forged)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.1.00"] {
            assert_eq!(
                s.verify(Purpose::DiscordLink, bad, now),
                Err(LinkError::Malformed),
                "{bad}"
            );
        }
    }
}
