use std::fmt;

/// Where the user is logging in from. Unknown platforms are refused at the boundary.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// The web Dashboard.
    Dashboard,
    /// The Workspace desktop app.
    Workspace,
    Ios,
    Android,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Dashboard,
        Platform::Workspace,
        Platform::Ios,
        Platform::Android,
    ];

    pub fn parse(raw: &str) -> Option<Platform> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Dashboard => "dashboard",
            Platform::Workspace => "workspace",
            Platform::Ios => "ios",
            Platform::Android => "android",
        }
    }

    /// How the platform is named to a person, e.g. in the code email.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Dashboard => "the web Dashboard",
            Platform::Workspace => "the Workspace desktop app",
            Platform::Ios => "the iOS app",
            Platform::Android => "the Android app",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the user proved who they are before adaptive MFA looks at the login.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Email and password, checked by login-intake.
    #[default]
    Password,
    /// The client backend already authenticated the user with the company's SSO provider.
    Sso,
    /// The client backend already authenticated the user with Google Sign-in.
    Google,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Sso => "sso",
            AuthMethod::Google => "google",
        }
    }

    pub fn is_federated(self) -> bool {
        !matches!(self, AuthMethod::Password)
    }
}

/// Whether the first factor (password, or the identity provider) succeeded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryFactor {
    Succeeded,
    Failed,
}
