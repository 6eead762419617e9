//! The device cookie: a random id per browser, sent to login-intake as `device_id` so a
//! browser that passed a code once is known the next time. It is the only thing the page
//! keeps in a browser, and it lasts a year.

use rand::RngCore;

pub const COOKIE_NAME: &str = "mfa_device";

/// A year, in seconds: how long a browser stays known without signing in.
pub const COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 60 * 60;

const PREFIX: &str = "browser-";
const RANDOM_BYTES: usize = 16;

/// `browser-` and 32 lowercase hex digits (128 random bits): unguessable, and within the
/// API's `device_id` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn random() -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", hex::encode(bytes)))
    }

    /// Only an id this page could have issued; anything else a browser sends is replaced.
    pub fn parse(raw: &str) -> Option<Self> {
        let digits = raw.strip_prefix(PREFIX)?;
        (digits.len() == RANDOM_BYTES * 2
            && digits
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
        .then(|| Self(raw.to_owned()))
    }

    /// The device id in a request's `Cookie` headers, if one is there and well-formed.
    pub fn from_cookie_headers<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        headers
            .into_iter()
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE_NAME)
            .find_map(|(_, value)| Self::parse(value.trim()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `Set-Cookie` value. `HttpOnly`: no script reads it; `SameSite=Lax`: another site's
    /// form can't post with it; `Secure` unless the page is served on the loopback
    /// interface, where development runs over plain HTTP.
    pub fn set_cookie(&self, secure: bool) -> String {
        let secure = if secure { "; Secure" } else { "" };
        format!(
            "{COOKIE_NAME}={}; Max-Age={COOKIE_MAX_AGE_SECS}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_back_and_differ() {
        let (one, two) = (DeviceId::random(), DeviceId::random());
        assert_eq!(DeviceId::parse(one.as_str()), Some(one.clone()));
        assert_ne!(one, two);
        assert_eq!(one.as_str().len(), PREFIX.len() + 32);
    }

    #[test]
    fn ids_the_page_did_not_issue_are_refused() {
        for raw in [
            "",
            "browser-",
            "laptop-1",
            "browser-0123456789abcdef0123456789abcde",
            "browser-0123456789abcdef0123456789abcdef0",
            "browser-0123456789ABCDEF0123456789ABCDEF",
            "browser-0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(DeviceId::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn found_among_other_cookies() {
        let id = DeviceId::random();
        let header = format!("theme=dark; {COOKIE_NAME}={}; other=1", id.as_str());
        assert_eq!(
            DeviceId::from_cookie_headers(["a=b", header.as_str()]),
            Some(id)
        );
        assert_eq!(
            DeviceId::from_cookie_headers([format!("{COOKIE_NAME}=forged").as_str()]),
            None
        );
        assert_eq!(DeviceId::from_cookie_headers([]), None);
    }

    #[test]
    fn the_cookie_is_http_only_lax_for_a_year_and_secure_when_asked() {
        let id = DeviceId::random();
        let cookie = id.set_cookie(true);
        assert!(cookie.starts_with(&format!("{COOKIE_NAME}={};", id.as_str())));
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=31536000",
            "Path=/",
            "Secure",
        ] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
        assert!(!id.set_cookie(false).contains("Secure"));
    }
}
