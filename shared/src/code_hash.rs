//! The keyed hash a challenge stores instead of its code: HMAC-SHA256 under a server secret,
//! over the challenge id and the code. A stolen table is useless without the secret, and the
//! same code in two challenges hashes differently. Written by the code worker, checked by the
//! verifier, in constant time.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::domain::{ChallengeId, OtpCode};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: 32 bytes, the HMAC-SHA256 block's worth of guessing.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone)]
pub struct CodeHasher {
    secret: SecretString,
}

#[derive(Debug, thiserror::Error)]
#[error("MFA_CODE_HMAC_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

impl CodeHasher {
    pub fn new(secret: SecretString) -> Result<Self, WeakSecret> {
        if secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        Ok(Self { secret })
    }

    fn mac(&self, challenge_id: ChallengeId, code: &OtpCode) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(challenge_id.as_uuid().as_bytes());
        mac.update(code.expose().as_bytes());
        mac
    }

    pub fn hash(&self, challenge_id: ChallengeId, code: &OtpCode) -> Vec<u8> {
        self.mac(challenge_id, code)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Constant-time comparison with the stored hash.
    pub fn matches(&self, challenge_id: ChallengeId, code: &OtpCode, stored: &[u8]) -> bool {
        self.mac(challenge_id, code).verify_slice(stored).is_ok()
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
    fn refuses_short_secrets() {
        assert!(CodeHasher::new(SecretString::from("short")).is_err());
    }
}
