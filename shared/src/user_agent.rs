//! A user agent reduced to what people and the risk rules care about: browser family, OS and
//! device type. The browser's version is left out on purpose: an update is not a new device.

use crate::domain::UserAgent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgentSummary {
    /// e.g. `Chrome`, `Safari`, `UNKNOWN` when the parser can't tell.
    pub browser: String,
    /// e.g. `Windows 10`, `Mac OSX`, `iPhone`, `Android`.
    pub os: String,
    /// `pc`, `smartphone`, `mobilephone`, `appliance`, `crawler` or `misc`.
    pub device_type: String,
}

impl UserAgentSummary {
    pub fn parse(user_agent: &UserAgent) -> Self {
        match woothee::parser::Parser::new().parse(user_agent.as_str()) {
            Some(result) => Self {
                browser: result.name.to_owned(),
                os: result.os.to_owned(),
                device_type: result.category.to_owned(),
            },
            None => Self {
                browser: "UNKNOWN".into(),
                os: "UNKNOWN".into(),
                device_type: "UNKNOWN".into(),
            },
        }
    }

    /// The browser family and OS, as the risk rules compare them.
    pub fn browser_and_os(&self) -> String {
        format!("{} on {}", self.browser, self.os)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ua: &str) -> UserAgentSummary {
        UserAgentSummary::parse(&UserAgent::parse(ua).unwrap())
    }

    #[test]
    fn a_browser_update_keeps_the_same_family() {
        let old = summary("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36");
        let new = summary("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
        assert_eq!(old.browser, "Chrome");
        assert_eq!(old.browser_and_os(), new.browser_and_os());
    }

    #[test]
    fn another_browser_differs() {
        let chrome = summary("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
        let firefox = summary(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        );
        assert_ne!(chrome.browser_and_os(), firefox.browser_and_os());
    }
}
