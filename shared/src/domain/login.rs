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

    /// An installed app (Workspace, iOS, Android), which keeps its device id for as long as
    /// it is installed: unlike a browser, it has no private window and no cookies to clear.
    pub fn is_native_app(self) -> bool {
        !matches!(self, Platform::Dashboard)
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
    pub const ALL: [AuthMethod; 3] = [AuthMethod::Password, AuthMethod::Sso, AuthMethod::Google];

    pub fn parse(raw: &str) -> Option<AuthMethod> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

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
    /// Not checked: the company does not accept this first factor (`auth_method`). The risk
    /// worker rejects the login with `auth_method_not_allowed`.
    NotAccepted,
}

/// The first factors a company (or, narrower, one account) accepts: a set of `AuthMethod`s.
/// On the wire, the methods' names in a fixed order (`password`, `sso`, `google`); reading
/// one tolerates repeats. An admin always states at least one (login-intake's API refuses an
/// empty list); an account's effective set (its company's, narrowed by the account's own
/// limit) can be empty, and then no first factor logs it in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<AuthMethod>", into = "Vec<AuthMethod>")]
pub struct FirstFactors {
    /// Bit `i` set: `AuthMethod::ALL[i]` accepted.
    bits: u8,
}

impl FirstFactors {
    /// What a new company accepts until an admin says otherwise.
    pub const PASSWORD_ONLY: FirstFactors = FirstFactors { bits: 1 };

    fn bit(method: AuthMethod) -> u8 {
        match method {
            AuthMethod::Password => 1,
            AuthMethod::Sso => 2,
            AuthMethod::Google => 4,
        }
    }

    pub fn of(methods: impl IntoIterator<Item = AuthMethod>) -> Self {
        Self {
            bits: methods.into_iter().fold(0, |bits, m| bits | Self::bit(m)),
        }
    }

    /// Reads stored names (a `text[]` column); an unknown name is refused, not skipped.
    pub fn parse_names<S: AsRef<str>>(names: &[S]) -> Result<Self, super::ParseError> {
        names
            .iter()
            .map(|name| {
                AuthMethod::parse(name.as_ref()).ok_or_else(|| {
                    super::ParseError::new(format!("unknown first factor {:?}", name.as_ref()))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::of)
    }

    pub fn accepts(self, method: AuthMethod) -> bool {
        self.bits & Self::bit(method) != 0
    }

    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// What both accept: a company's set narrowed by an account's limit.
    pub fn intersection(self, other: FirstFactors) -> FirstFactors {
        FirstFactors {
            bits: self.bits & other.bits,
        }
    }

    pub fn union(self, other: FirstFactors) -> FirstFactors {
        FirstFactors {
            bits: self.bits | other.bits,
        }
    }

    pub fn methods(self) -> impl Iterator<Item = AuthMethod> {
        AuthMethod::ALL
            .into_iter()
            .filter(move |m| self.accepts(*m))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.methods().map(AuthMethod::as_str).collect()
    }
}

impl From<Vec<AuthMethod>> for FirstFactors {
    fn from(methods: Vec<AuthMethod>) -> Self {
        Self::of(methods)
    }
}

impl From<FirstFactors> for Vec<AuthMethod> {
    fn from(factors: FirstFactors) -> Self {
        factors.methods().collect()
    }
}

impl fmt::Debug for FirstFactors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl schemars::JsonSchema for FirstFactors {
    fn schema_name() -> String {
        "FirstFactors".into()
    }

    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        let mut schema: schemars::schema::SchemaObject =
            <Vec<AuthMethod>>::json_schema(generator).into();
        schema.array().unique_items = Some(true);
        schema.array().max_items = Some(AuthMethod::ALL.len() as u32);
        schema.metadata().description =
            Some("A set of first factors; empty: none is accepted.".into());
        schema.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_factors_are_a_set_in_a_fixed_order() {
        let factors: FirstFactors =
            serde_json::from_str(r#"["google","password","google"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&factors).unwrap(),
            r#"["password","google"]"#
        );
        assert!(factors.accepts(AuthMethod::Google) && !factors.accepts(AuthMethod::Sso));
        assert!(serde_json::from_str::<FirstFactors>(r#"["saml"]"#).is_err());
        let none = factors.intersection(FirstFactors::of([AuthMethod::Sso]));
        assert!(none.is_empty());
        assert_eq!(serde_json::to_string(&none).unwrap(), "[]");
        assert_eq!(
            FirstFactors::parse_names(&["sso", "password"]).unwrap(),
            FirstFactors::PASSWORD_ONLY.union(FirstFactors::of([AuthMethod::Sso]))
        );
        assert!(FirstFactors::parse_names(&["password", "otp"]).is_err());
        assert_eq!(FirstFactors::default().names(), Vec::<&str>::new());
    }
}
