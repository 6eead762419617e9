//! The page's language: the one the user picked with the switch (carried in every link and
//! form, since the page keeps no session), else the best of the browser's
//! `Accept-Language` the page speaks, else English.

use crate::messages::{self, Catalogue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 tag: the page's `lang` attribute and the switch's value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Self::ALL.into_iter().find(|lang| lang.code() == code)
    }

    pub fn messages(self) -> &'static Catalogue {
        match self {
            Lang::En => &messages::en::ENGLISH,
            Lang::Fr => &messages::fr::FRENCH,
        }
    }

    /// The languages the switch offers from this one.
    pub fn others(self) -> impl Iterator<Item = Lang> {
        Self::ALL.into_iter().filter(move |lang| *lang != self)
    }

    /// The picked language if it is one the page speaks, else the browser's preference.
    pub fn choose(picked: Option<&str>, accept_language: Option<&str>) -> Lang {
        picked
            .and_then(Lang::parse)
            .unwrap_or_else(|| Lang::negotiate(accept_language))
    }

    /// The page's language with the highest `q` in an `Accept-Language` header (the first
    /// listed among equals; `fr-CA` counts as `fr`); English when none is spoken here.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let mut best: Option<(Lang, f32)> = None;
        for entry in accept_language.unwrap_or_default().split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let primary = tag
                .split('-')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let quality = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let Some(lang) = Lang::parse(&primary) else {
                continue;
            };
            if quality > 0.0 && best.is_none_or(|(_, best_quality)| quality > best_quality) {
                best = Some((lang, quality));
            }
        }
        best.map_or(Lang::En, |(lang, _)| lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_quality_spoken_language_wins() {
        assert_eq!(Lang::negotiate(Some("fr-FR,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::negotiate(Some("en-GB,en;q=0.9,fr;q=0.8")), Lang::En);
        assert_eq!(
            Lang::negotiate(Some("de-DE,de;q=0.9,fr;q=0.5,en;q=0.3")),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(Some("en;q=0.2, fr-CA;q=0.7")), Lang::Fr);
    }

    #[test]
    fn nothing_spoken_here_is_english() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de,es;q=0.5")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr;q=0")), Lang::En);
        assert_eq!(Lang::negotiate(Some("*")), Lang::En);
    }

    #[test]
    fn a_picked_language_beats_the_browsers() {
        assert_eq!(Lang::choose(Some("fr"), Some("en")), Lang::Fr);
        assert_eq!(Lang::choose(Some("en"), Some("fr")), Lang::En);
        assert_eq!(Lang::choose(Some("xx"), Some("fr")), Lang::Fr);
        assert_eq!(Lang::choose(None, None), Lang::En);
    }

    #[test]
    fn the_switch_offers_the_other_languages() {
        assert_eq!(Lang::En.others().collect::<Vec<_>>(), vec![Lang::Fr]);
        assert_eq!(Lang::Fr.others().collect::<Vec<_>>(), vec![Lang::En]);
    }
}
