/// The language the user reads, which the code email is written in: the client backend says
/// it with the login (its page's language), and the code email follows. Only the languages the
/// emails exist in; English when the client says none.
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
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Fr,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Fr];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fr => "fr",
        }
    }

    /// `en` or `fr`, as stored and sent; anything else is None.
    pub fn parse(raw: &str) -> Option<Locale> {
        Self::ALL.into_iter().find(|l| l.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_locale_reads_back_from_its_name_and_its_json() {
        for locale in Locale::ALL {
            assert_eq!(Locale::parse(locale.as_str()), Some(locale));
            let json = serde_json::to_string(&locale).unwrap();
            assert_eq!(json, format!("\"{}\"", locale.as_str()));
            assert_eq!(serde_json::from_str::<Locale>(&json).unwrap(), locale);
        }
        assert_eq!(Locale::parse("de"), None);
        assert!(serde_json::from_str::<Locale>("\"fr-FR\"").is_err());
    }
}
