//! The "someone has your password" email (`crate::notices`), in the login's language.

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::Message;
use shared::domain::{Locale, Platform, UserAgent};
use shared::user_agent::UserAgentSummary;
use uuid::Uuid;

use crate::email::{html_escape, EmailError};

/// How the code went unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Expired,
    /// Too many wrong codes.
    Locked,
}

pub struct NoticeEmail<'a> {
    pub to: &'a str,
    /// The Message-ID's: one notification per challenge.
    pub challenge_id: Uuid,
    pub ending: Ending,
    pub login_at: DateTime<Utc>,
    pub platform: Platform,
    pub user_agent: &'a UserAgent,
    pub ip: std::net::IpAddr,
    /// Where the address is, as the GeoIP data says (`Place::of`); None when it says nothing.
    pub place: Option<Place>,
    pub locale: Locale,
    pub was_me_link: String,
    pub wasnt_me_link: String,
    pub links_expire_at: DateTime<Utc>,
}

/// Where a login came from, for a person to read: the city (or the region) and the country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place(String);

impl Place {
    /// From what the GeoIP data knows of the address: None when it knows no country.
    pub fn of(facts: &mfa_geoip::IpFacts) -> Option<Self> {
        let country = facts.country.as_deref()?;
        let local = facts.city.as_deref().or(facts.region.as_deref());
        Some(Self(match local {
            Some(local) => format!("{local}, {country}"),
            None => country.to_owned(),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

struct Wording {
    subject: &'static str,
    intro: fn(Ending) -> &'static str,
    when: &'static str,
    device: &'static str,
    address: &'static str,
    place: &'static str,
    /// No location data for the address.
    unknown_place: &'static str,
    platform: fn(Platform) -> &'static str,
    unrecognised_browser: &'static str,
    browser_on_os: fn(&str, &str) -> String,
    was_me: &'static str,
    wasnt_me: &'static str,
    wasnt_me_advice: &'static str,
    links_work_until: &'static str,
}

const ENGLISH: Wording = Wording {
    subject: "Someone has your password",
    intro: |ending| match ending {
        Ending::Expired => {
            "Someone signed in to your account with your password and was asked for a sign-in \
             code, which was never entered: it has expired."
        }
        Ending::Locked => {
            "Someone signed in to your account with your password and was asked for a sign-in \
             code: too many wrong codes were entered, and the code was locked."
        }
    },
    when: "Time",
    device: "Device",
    address: "IP address",
    place: "Place (from the address, approximate)",
    unknown_place: "not known",
    platform: Platform::display_name,
    unrecognised_browser: "an unrecognised browser or app",
    browser_on_os: |browser, os| format!("{browser} on {os}"),
    was_me: "This was me",
    wasnt_me: "This wasn't me",
    wasnt_me_advice: "If it wasn't you, someone knows your password: tell us with the link \
                      below, change your password and tell your administrator.",
    links_work_until: "The links work once, until",
};

const FRENCH: Wording = Wording {
    subject: "Quelqu'un connaît votre mot de passe",
    intro: |ending| match ending {
        Ending::Expired => {
            "Quelqu'un s'est connecté à votre compte avec votre mot de passe et un code de \
             connexion lui a été demandé, qui n'a jamais été saisi : il a expiré."
        }
        Ending::Locked => {
            "Quelqu'un s'est connecté à votre compte avec votre mot de passe et un code de \
             connexion lui a été demandé : trop de codes erronés ont été saisis, et le code a été \
             bloqué."
        }
    },
    when: "Heure",
    device: "Appareil",
    address: "adresse IP",
    place: "Lieu (d'après l'adresse, approximatif)",
    unknown_place: "inconnu",
    platform: |platform| match platform {
        Platform::Dashboard => "le Dashboard web",
        Platform::Workspace => "l'application de bureau Workspace",
        Platform::Ios => "l'application iOS",
        Platform::Android => "l'application Android",
    },
    unrecognised_browser: "un navigateur ou une application non reconnus",
    browser_on_os: |browser, os| format!("{browser} sous {os}"),
    was_me: "C'était moi",
    wasnt_me: "Ce n'était pas moi",
    wasnt_me_advice:
        "Si ce n'était pas vous, quelqu'un connaît votre mot de passe : dites-le-nous \
                      avec le lien ci-dessous, changez votre mot de passe et prévenez votre \
                      administrateur.",
    links_work_until: "Les liens servent une fois, jusqu'au",
};

impl NoticeEmail<'_> {
    fn wording(&self) -> &'static Wording {
        match self.locale {
            Locale::En => &ENGLISH,
            Locale::Fr => &FRENCH,
        }
    }

    fn device(&self) -> String {
        let w = self.wording();
        let summary = UserAgentSummary::parse(self.user_agent);
        let browser = if summary.browser == "UNKNOWN" {
            w.unrecognised_browser.to_owned()
        } else if summary.os == "UNKNOWN" {
            summary.browser
        } else {
            (w.browser_on_os)(&summary.browser, &summary.os)
        };
        format!("{}, {browser}", (w.platform)(self.platform))
    }

    fn place(&self) -> &str {
        self.place
            .as_ref()
            .map_or(self.wording().unknown_place, Place::as_str)
    }

    fn time(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn subject(&self) -> String {
        self.wording().subject.to_owned()
    }

    pub fn text(&self) -> String {
        let w = self.wording();
        format!(
            "{intro}\n\n- {when}: {at}\n- {device}: {device_value}\n- {address}: {ip}\n\
             - {place}: {place_value}\n\n\
             {advice}\n\n{was_me}: {was_me_link}\n{wasnt_me}: {wasnt_me_link}\n\n\
             {until} {expires}.\n",
            intro = (w.intro)(self.ending),
            when = w.when,
            at = Self::time(self.login_at),
            device = w.device,
            device_value = self.device(),
            address = w.address,
            ip = self.ip,
            place = w.place,
            place_value = self.place(),
            advice = w.wasnt_me_advice,
            was_me = w.was_me,
            was_me_link = self.was_me_link,
            wasnt_me = w.wasnt_me,
            wasnt_me_link = self.wasnt_me_link,
            until = w.links_work_until,
            expires = Self::time(self.links_expire_at),
        )
    }

    pub fn html(&self) -> String {
        let w = self.wording();
        format!(
            "<!doctype html><html lang=\"{lang}\"><body style=\"font-family:sans-serif\">\
             <p>{intro}</p><ul><li>{when}: {at}</li><li>{device}: {device_value}</li>\
             <li>{address}: {ip}</li><li>{place}: {place_value}</li></ul><p>{advice}</p>\
             <p><a href=\"{was_me_link}\">{was_me}</a></p>\
             <p><a href=\"{wasnt_me_link}\">{wasnt_me}</a></p>\
             <p>{until} {expires}.</p></body></html>",
            lang = self.locale.as_str(),
            intro = html_escape((w.intro)(self.ending)),
            when = html_escape(w.when),
            at = Self::time(self.login_at),
            device = html_escape(w.device),
            device_value = html_escape(&self.device()),
            address = html_escape(w.address),
            ip = html_escape(&self.ip.to_string()),
            place = html_escape(w.place),
            place_value = html_escape(self.place()),
            advice = html_escape(w.wasnt_me_advice),
            was_me_link = html_escape(&self.was_me_link),
            was_me = html_escape(w.was_me),
            wasnt_me_link = html_escape(&self.wasnt_me_link),
            wasnt_me = html_escape(w.wasnt_me),
            until = html_escape(w.links_work_until),
            expires = Self::time(self.links_expire_at),
        )
    }

    pub fn message(&self, from: &Mailbox) -> Result<Message, EmailError> {
        // One per challenge: a resend after a crash is dropped by mail systems.
        crate::email::build_message(
            from,
            self.to,
            self.subject(),
            format!("<notice-{}@adaptive-mfa>", self.challenge_id),
            self.text(),
            self.html(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(locale: Locale, ending: Ending, agent: &UserAgent) -> NoticeEmail<'_> {
        NoticeEmail {
            to: "alice@example.com",
            challenge_id: Uuid::nil(),
            ending,
            login_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            platform: Platform::Dashboard,
            user_agent: agent,
            ip: "203.0.113.66".parse().unwrap(),
            place: Place::of(&mfa_geoip::IpFacts {
                country: Some("GB".into()),
                region: Some("England".into()),
                city: Some("London".into()),
                ..Default::default()
            }),
            locale,
            was_me_link: "https://mfa.example/v1/login-feedback/v1.a.was_me.1.b".into(),
            wasnt_me_link: "https://mfa.example/v1/login-feedback/v1.a.wasnt_me.1.b".into(),
            links_expire_at: DateTime::from_timestamp(1_800_604_800, 0).unwrap(),
        }
    }

    fn firefox() -> UserAgent {
        UserAgent::parse("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0")
            .unwrap()
    }

    #[test]
    fn names_the_time_device_address_and_both_links() {
        let agent = firefox();
        let email = email(Locale::En, Ending::Expired, &agent);
        assert_eq!(email.subject(), "Someone has your password");
        for body in [email.text(), email.html()] {
            assert!(body.contains("2027-01-15 08:00 UTC"), "{body}");
            assert!(body.contains("Firefox on Linux"), "{body}");
            assert!(body.contains("203.0.113.66"), "{body}");
            assert!(body.contains("London, GB"), "{body}");
            assert!(body.contains("has expired"), "{body}");
            assert!(
                body.contains("/v1/login-feedback/v1.a.was_me.1.b"),
                "{body}"
            );
            assert!(
                body.contains("/v1/login-feedback/v1.a.wasnt_me.1.b"),
                "{body}"
            );
            assert!(body.contains("This wasn't me") || body.contains("This wasn&#39;t me"));
        }
        let locked = self::email(Locale::En, Ending::Locked, &agent);
        assert!(locked.text().contains("too many wrong codes"));
        let raw = String::from_utf8(
            email
                .message(&"MFA <mfa@example.com>".parse().unwrap())
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(raw.contains(&format!(
            "Message-ID: <notice-{}@adaptive-mfa>",
            Uuid::nil()
        )));
    }

    #[test]
    fn a_french_login_gets_it_in_french() {
        let agent = firefox();
        let email = email(Locale::Fr, Ending::Locked, &agent);
        assert_eq!(email.subject(), "Quelqu'un connaît votre mot de passe");
        let text = email.text();
        assert!(text.contains("Firefox sous Linux"), "{text}");
        assert!(text.contains("C'était moi"), "{text}");
        assert!(text.contains("bloqué"), "{text}");
        assert!(
            text.contains("Lieu (d'après l'adresse, approximatif): London, GB"),
            "{text}"
        );
        assert!(!text.contains("password"), "no English left: {text}");
        assert!(email.html().contains("lang=\"fr\""));
    }

    #[test]
    fn the_place_is_the_city_or_region_and_country_or_said_to_be_unknown() {
        let facts =
            |city: Option<&str>, region: Option<&str>, country: Option<&str>| mfa_geoip::IpFacts {
                city: city.map(Into::into),
                region: region.map(Into::into),
                country: country.map(Into::into),
                ..Default::default()
            };
        let place = |f| Place::of(&f).map(|p| p.as_str().to_owned());
        assert_eq!(
            place(facts(Some("Lyon"), Some("ARA"), Some("FR"))),
            Some("Lyon, FR".into())
        );
        assert_eq!(
            place(facts(None, Some("Bavaria"), Some("DE"))),
            Some("Bavaria, DE".into())
        );
        assert_eq!(place(facts(None, None, Some("US"))), Some("US".into()));
        assert_eq!(place(facts(Some("Nowhere"), None, None)), None);
        let agent = firefox();
        let mut unknown = email(Locale::En, Ending::Expired, &agent);
        unknown.place = None;
        assert!(unknown
            .text()
            .contains("Place (from the address, approximate): not known"));
    }
}
