//! The keyed hash a challenge stores instead of its code: HMAC-SHA256 under a server secret,
//! over the challenge id and the code. A stolen table is useless without the secret, and the
//! same code in two challenges hashes differently. Written by the code worker, checked by the
//! verifier, in constant time.
//!
//! Rotating the secret: deploy the new one as `MFA_CODE_HMAC_SECRET` and the old one as
//! `MFA_CODE_HMAC_PREVIOUS_SECRET`; codes hashed under the old secret keep working until they
//! expire (one code lifetime), then the previous secret can be removed.

pub mod feedback_link;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use shared::domain::{ChallengeId, OtpCode};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: 32 bytes, the HMAC-SHA256 block's worth of guessing.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone)]
pub struct CodeHasher {
    secret: SecretString,
    /// Still accepted by `matches`, never used by `hash`.
    previous: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
#[error("MFA_CODE_HMAC_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

impl CodeHasher {
    pub fn new(secret: SecretString) -> Result<Self, WeakSecret> {
        Self::rotating(secret, None)
    }

    /// A hasher that also accepts codes hashed under `previous`.
    pub fn rotating(
        secret: SecretString,
        previous: Option<SecretString>,
    ) -> Result<Self, WeakSecret> {
        let strong = |s: &SecretString| s.expose_secret().len() >= MIN_SECRET_BYTES;
        if !strong(&secret) || !previous.as_ref().is_none_or(strong) {
            return Err(WeakSecret);
        }
        Ok(Self { secret, previous })
    }

    #[expect(
        clippy::expect_used,
        reason = "HMAC accepts keys of any length: new_from_slice cannot fail"
    )]
    fn mac_with(secret: &SecretString, challenge_id: ChallengeId, code: &OtpCode) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(challenge_id.as_uuid().as_bytes());
        mac.update(code.expose().as_bytes());
        mac
    }

    pub fn hash(&self, challenge_id: ChallengeId, code: &OtpCode) -> Vec<u8> {
        Self::mac_with(&self.secret, challenge_id, code)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Constant-time comparison with the stored hash, under the current secret or the
    /// previous one. Both are always computed, so the time does not tell which matched.
    pub fn matches(&self, challenge_id: ChallengeId, code: &OtpCode, stored: &[u8]) -> bool {
        let current = Self::mac_with(&self.secret, challenge_id, code)
            .verify_slice(stored)
            .is_ok();
        let previous = self.previous.as_ref().is_some_and(|previous| {
            Self::mac_with(previous, challenge_id, code)
                .verify_slice(stored)
                .is_ok()
        });
        current | previous
    }
}

/// While its email waits to be sent (retries included) the code is kept sealed: XORed with
/// a keystream HMAC-SHA256(secret, "pending-email" || challenge_id), unique per challenge.
/// A stolen table still yields no code without the secret; the sealed copy is erased once
/// the email is sent or given up.
impl CodeHasher {
    #[expect(
        clippy::expect_used,
        reason = "HMAC accepts keys of any length: new_from_slice cannot fail"
    )]
    fn keystream(secret: &SecretString, challenge_id: ChallengeId) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"pending-email");
        mac.update(challenge_id.as_uuid().as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, challenge_id: ChallengeId, code: &OtpCode) -> Vec<u8> {
        let stream = Self::keystream(&self.secret, challenge_id);
        code.expose()
            .bytes()
            .zip(stream)
            .map(|(byte, key)| byte ^ key)
            .collect()
    }

    /// The sealed code, under the current secret or (after a rotation) the previous one.
    pub fn unseal(&self, challenge_id: ChallengeId, sealed: &[u8]) -> Option<OtpCode> {
        std::iter::once(&self.secret)
            .chain(self.previous.as_ref())
            .find_map(|secret| {
                let stream = Self::keystream(secret, challenge_id);
                let bytes: Vec<u8> = sealed.iter().zip(stream).map(|(b, k)| b ^ k).collect();
                OtpCode::parse(std::str::from_utf8(&bytes).ok()?).ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> CodeHasher {
        CodeHasher::new(SecretString::from("a test secret that is long enough!!")).unwrap()
    }

    #[test]
    fn matches_only_the_same_code_and_challenge() {
        let hasher = hasher();
        let challenge = ChallengeId::new_random();
        let code = OtpCode::parse("123456").unwrap();
        let stored = hasher.hash(challenge, &code);
        assert!(hasher.matches(challenge, &code, &stored));
        assert!(!hasher.matches(challenge, &OtpCode::parse("123457").unwrap(), &stored));
        assert!(!hasher.matches(ChallengeId::new_random(), &code, &stored));
    }

    #[test]
    fn a_rotated_secret_still_accepts_codes_of_the_previous_one() {
        let old = hasher();
        let challenge = ChallengeId::new_random();
        let code = OtpCode::parse("654321").unwrap();
        let stored = old.hash(challenge, &code);
        let rotated = CodeHasher::rotating(
            SecretString::from("the new secret, also long enough!!!"),
            Some(SecretString::from("a test secret that is long enough!!")),
        )
        .unwrap();
        assert!(rotated.matches(challenge, &code, &stored));
        assert_ne!(
            rotated.hash(challenge, &code),
            stored,
            "new codes use the new secret"
        );
        let forgotten =
            CodeHasher::new(SecretString::from("the new secret, also long enough!!!")).unwrap();
        assert!(!forgotten.matches(challenge, &code, &stored));
    }

    #[test]
    fn refuses_short_secrets() {
        assert!(CodeHasher::new(SecretString::from("short")).is_err());
    }

    #[test]
    fn a_sealed_code_opens_only_with_its_secret_and_challenge() {
        let hasher = CodeHasher::new(SecretString::from("s".repeat(32))).unwrap();
        let challenge = ChallengeId::new_random();
        let code = OtpCode::parse("042137").unwrap();
        let sealed = hasher.seal(challenge, &code);
        assert_ne!(sealed, b"042137");
        assert_eq!(
            hasher.unseal(challenge, &sealed).unwrap().expose(),
            "042137"
        );
        let other = CodeHasher::new(SecretString::from("t".repeat(32))).unwrap();
        assert!(other
            .unseal(challenge, &sealed)
            .is_none_or(|c| c.expose() != "042137"));
        let rotated = CodeHasher::rotating(
            SecretString::from("t".repeat(32)),
            Some(SecretString::from("s".repeat(32))),
        )
        .unwrap();
        assert_eq!(
            rotated.unseal(challenge, &sealed).unwrap().expose(),
            "042137"
        );
    }
}
