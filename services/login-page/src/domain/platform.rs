//! What the page signs users in to, as the API names it and as a person does.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Dashboard,
    Workspace,
    Ios,
    Android,
}

impl Platform {
    const ALL: [Platform; 4] = [
        Platform::Dashboard,
        Platform::Workspace,
        Platform::Ios,
        Platform::Android,
    ];

    /// The `platform` of `POST /v1/logins`.
    pub fn api_name(self) -> &'static str {
        match self {
            Platform::Dashboard => "dashboard",
            Platform::Workspace => "workspace",
            Platform::Ios => "ios",
            Platform::Android => "android",
        }
    }

    /// The product's name, the same in every language.
    pub fn product_name(self) -> &'static str {
        match self {
            Platform::Dashboard => "Dashboard",
            Platform::Workspace => "Workspace",
            Platform::Ios => "iOS app",
            Platform::Android => "Android app",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a platform (one of dashboard, workspace, ios, android)")]
pub struct UnknownPlatform;

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|platform| platform.api_name() == raw)
            .ok_or(UnknownPlatform)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_parse_back_and_others_do_not() {
        for platform in Platform::ALL {
            assert_eq!(platform.api_name().parse::<Platform>().unwrap(), platform);
        }
        assert!("web".parse::<Platform>().is_err());
        assert!("Dashboard".parse::<Platform>().is_err());
    }
}
