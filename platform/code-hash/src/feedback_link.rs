//! The links of the "someone has your password" email: `this was me` and `this wasn't me`.
//!
//! A link names its notification's token (a random id, stored with the notification), the
//! verdict it gives and when it expires, signed with HMAC-SHA256 under a server secret: the
//! code worker writes it, the verifier checks it in constant time before it reads the
//! database. The signature makes a guessed or edited link (another verdict, a later expiry)
//! worthless; single use is the stored token's, consumed once.
//!
//! On the wire (URL-safe, no padding to get wrong):
//! `v1.<token id, 32 hex digits>.<was_me|wasnt_me>.<expiry, Unix seconds>.<HMAC, 64 hex digits>`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use shared::events::FeedbackVerdict;
use uuid::Uuid;

use crate::MIN_SECRET_BYTES;

type HmacSha256 = Hmac<Sha256>;

/// Kept apart from the code hashes' use of a secret: a link's MAC is never a code's.
const DOMAIN: &[u8] = b"adaptive-mfa login-feedback link v1\0";
const VERSION: &str = "v1";

/// What a link says, once its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackLink {
    pub token_id: Uuid,
    pub verdict: FeedbackVerdict,
    pub expires_at: DateTime<Utc>,
}

/// Why a link is refused before the database is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a feedback link")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link expired")]
    Expired,
}

#[derive(Debug, thiserror::Error)]
#[error("MFA_FEEDBACK_LINK_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakLinkSecret;

/// Signs and checks feedback links.
#[derive(Clone)]
pub struct LinkSigner {
    secret: SecretString,
}

impl LinkSigner {
    pub fn new(secret: SecretString) -> Result<Self, WeakLinkSecret> {
        if secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(WeakLinkSecret);
        }
        Ok(Self { secret })
    }

    /// The key when no `MFA_FEEDBACK_LINK_SECRET` is set: derived from the code secret the
    /// code worker and the verifier already share (HMAC of a fixed label under it), so the
    /// two keys differ and a deployment needs no new secret. Rotating the code secret then
    /// invalidates the links not yet followed.
    pub fn derived_from(code_secret: &SecretString) -> Result<Self, WeakLinkSecret> {
        if code_secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(WeakLinkSecret);
        }
        let mut mac = Self::mac_under(code_secret.expose_secret().as_bytes());
        mac.update(b"adaptive-mfa derive feedback-link key");
        let key = hex::encode(mac.finalize().into_bytes());
        Ok(Self {
            secret: SecretString::from(key),
        })
    }

    #[expect(
        clippy::expect_used,
        reason = "HMAC accepts keys of any length: new_from_slice cannot fail"
    )]
    fn mac_under(key: &[u8]) -> HmacSha256 {
        HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
    }

    fn mac(&self, unsigned: &str) -> HmacSha256 {
        let mut mac = Self::mac_under(self.secret.expose_secret().as_bytes());
        mac.update(DOMAIN);
        mac.update(unsigned.as_bytes());
        mac
    }

    fn unsigned(link: &FeedbackLink) -> String {
        format!(
            "{VERSION}.{}.{}.{}",
            link.token_id.simple(),
            link.verdict.as_str(),
            link.expires_at.timestamp()
        )
    }

    /// The link's token, as it goes in a URL.
    pub fn sign(&self, link: &FeedbackLink) -> String {
        let unsigned = Self::unsigned(link);
        let tag = hex::encode(self.mac(&unsigned).finalize().into_bytes());
        format!("{unsigned}.{tag}")
    }

    /// Reads a link's token: its signature first (nothing else is believed before), then its
    /// expiry against `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<FeedbackLink, LinkError> {
        let (unsigned, tag) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| LinkError::Malformed)?;
        let mut parts = unsigned.split('.');
        let (Some(VERSION), Some(id), Some(verdict), Some(expires), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(LinkError::Malformed);
        };
        self.mac(unsigned)
            .verify_slice(&tag)
            .map_err(|_| LinkError::BadSignature)?;
        // Signed by this service: what follows parses, unless the secret leaked.
        let link = FeedbackLink {
            token_id: Uuid::try_parse(id).map_err(|_| LinkError::Malformed)?,
            verdict: FeedbackVerdict::from_name(verdict).ok_or(LinkError::Malformed)?,
            expires_at: expires
                .parse::<i64>()
                .ok()
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .ok_or(LinkError::Malformed)?,
        };
        if now >= link.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(SecretString::from("a-feedback-link-secret-of-32-bytes!!")).unwrap()
    }

    fn link(verdict: FeedbackVerdict) -> FeedbackLink {
        FeedbackLink {
            token_id: Uuid::new_v4(),
            verdict,
            expires_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    fn before_expiry() -> DateTime<Utc> {
        DateTime::from_timestamp(1_799_999_999, 0).unwrap()
    }

    #[test]
    fn a_signed_link_reads_back_as_it_was_signed() {
        for verdict in [FeedbackVerdict::WasMe, FeedbackVerdict::WasntMe] {
            let link = link(verdict);
            let token = signer().sign(&link);
            assert!(token.starts_with("v1."), "{token}");
            assert!(token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'));
            assert_eq!(signer().verify(&token, before_expiry()), Ok(link));
        }
    }

    #[test]
    fn an_edited_link_is_refused() {
        let link = link(FeedbackVerdict::WasMe);
        let token = signer().sign(&link);
        // The other verdict, a later expiry, another token: each breaks the signature.
        for edited in [
            token.replace(".was_me.", ".wasnt_me."),
            token.replace(".1800000000.", ".1900000000."),
            token.replacen(
                &link.token_id.simple().to_string(),
                &Uuid::nil().simple().to_string(),
                1,
            ),
        ] {
            assert_ne!(edited, token);
            assert_eq!(
                signer().verify(&edited, before_expiry()),
                Err(LinkError::BadSignature),
                "{edited}"
            );
        }
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            signer().verify(&flipped, before_expiry()),
            Err(LinkError::BadSignature)
        );
        let other =
            LinkSigner::new(SecretString::from("another-secret-another-secret-32b!!")).unwrap();
        assert_eq!(
            other.verify(&token, before_expiry()),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn an_expired_link_is_refused_from_its_expiry_on() {
        let link = link(FeedbackVerdict::WasntMe);
        let token = signer().sign(&link);
        assert_eq!(
            signer().verify(&token, link.expires_at),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_crash() {
        for garbage in [
            "",
            ".",
            "v1",
            "v1.x.y.z.w",
            "v2.00000000000000000000000000000000.was_me.1.00",
            "v1.00000000000000000000000000000000.was_me.1.zz",
            "v1.a.b.c.d.e",
            "v1...............",
        ] {
            let verdict = signer().verify(garbage, before_expiry());
            assert!(
                matches!(verdict, Err(LinkError::Malformed | LinkError::BadSignature)),
                "{garbage:?}: {verdict:?}"
            );
        }
    }

    #[test]
    fn the_derived_key_differs_from_the_code_secret_and_is_stable() {
        let code_secret = SecretString::from("test-hmac-secret-that-is-at-least-32-bytes");
        let derived = LinkSigner::derived_from(&code_secret).unwrap();
        let direct = LinkSigner::new(code_secret.clone()).unwrap();
        let link = link(FeedbackVerdict::WasMe);
        assert_ne!(derived.sign(&link), direct.sign(&link));
        assert_eq!(
            LinkSigner::derived_from(&code_secret).unwrap().sign(&link),
            derived.sign(&link)
        );
        assert!(LinkSigner::new(SecretString::from("short")).is_err());
    }
}
