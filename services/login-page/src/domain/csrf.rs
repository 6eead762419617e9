//! CSRF tokens without a session store: a form's token is an HMAC, under a server secret,
//! of the browser's device id and the moment the form was made. Another site can neither
//! read the device cookie (`HttpOnly`, and the browser keeps it from them) nor make the
//! HMAC without the secret, so it can't forge a form this browser would post; and a token
//! stops working after [`TOKEN_LIFETIME_SECS`].

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::device::DeviceId;

/// How long a form can be left open: longer than any code lives, short enough that a token
/// leaked from a page is soon useless.
pub const TOKEN_LIFETIME_SECS: i64 = 2 * 60 * 60;

/// Clock difference tolerated between the replicas that made and check a token.
const CLOCK_SKEW_SECS: i64 = 60;

#[derive(Clone)]
pub struct CsrfKey(SecretString);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrfRefused {
    #[error("the form carries no token the page could have made")]
    Malformed,
    #[error("the token was not made for this browser, or not by this page")]
    Forged,
    #[error("the form is older than its token's lifetime")]
    Expired,
}

impl CsrfKey {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// The token of a form made at `now` (Unix seconds) for this browser.
    pub fn token(&self, device: &DeviceId, now: i64) -> String {
        format!("{now}.{}", hex::encode(self.mac(device, now)))
    }

    /// Whether `token` came from a form this page made for this browser, and is not too old.
    pub fn check(&self, device: &DeviceId, token: &str, now: i64) -> Result<(), CsrfRefused> {
        let (issued, mac) = token.split_once('.').ok_or(CsrfRefused::Malformed)?;
        let issued: i64 = issued.parse().map_err(|_| CsrfRefused::Malformed)?;
        let mac = hex::decode(mac).map_err(|_| CsrfRefused::Malformed)?;
        if !bool::from(self.mac(device, issued).ct_eq(&mac)) {
            return Err(CsrfRefused::Forged);
        }
        let age = now.saturating_sub(issued);
        if !(-CLOCK_SKEW_SECS..=TOKEN_LIFETIME_SECS).contains(&age) {
            return Err(CsrfRefused::Expired);
        }
        Ok(())
    }

    fn mac(&self, device: &DeviceId, issued: i64) -> Vec<u8> {
        // HMAC takes a key of any length; the config refuses short ones.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes()) else {
            return Vec::new();
        };
        mac.update(b"login-page csrf v1\0");
        mac.update(device.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(issued.to_string().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> CsrfKey {
        CsrfKey::new(SecretString::from(secret))
    }

    const SECRET: &str = "a-csrf-secret-of-at-least-32-bytes-long";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_token_passes_for_its_browser_within_its_lifetime() {
        let device = DeviceId::random();
        let token = key(SECRET).token(&device, NOW);
        assert_eq!(key(SECRET).check(&device, &token, NOW), Ok(()));
        assert_eq!(
            key(SECRET).check(&device, &token, NOW + TOKEN_LIFETIME_SECS),
            Ok(())
        );
    }

    #[test]
    fn another_browser_or_secret_makes_it_forged() {
        let device = DeviceId::random();
        let token = key(SECRET).token(&device, NOW);
        assert_eq!(
            key(SECRET).check(&DeviceId::random(), &token, NOW),
            Err(CsrfRefused::Forged)
        );
        assert_eq!(
            key("another-secret-of-at-least-32-bytes-long").check(&device, &token, NOW),
            Err(CsrfRefused::Forged)
        );
        // Moving the time in the token breaks its MAC.
        let (_, mac) = token.split_once('.').unwrap();
        assert_eq!(
            key(SECRET).check(&device, &format!("{}.{mac}", NOW + 1), NOW),
            Err(CsrfRefused::Forged)
        );
    }

    #[test]
    fn an_old_token_has_expired() {
        let device = DeviceId::random();
        let token = key(SECRET).token(&device, NOW);
        assert_eq!(
            key(SECRET).check(&device, &token, NOW + TOKEN_LIFETIME_SECS + 1),
            Err(CsrfRefused::Expired)
        );
        let future = key(SECRET).token(&device, NOW + 3600);
        assert_eq!(
            key(SECRET).check(&device, &future, NOW),
            Err(CsrfRefused::Expired)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let device = DeviceId::random();
        for token in ["", "abc", "12.zz", "x.00", "."] {
            assert_eq!(
                key(SECRET).check(&device, token, NOW),
                Err(CsrfRefused::Malformed),
                "{token:?}"
            );
        }
    }
}
