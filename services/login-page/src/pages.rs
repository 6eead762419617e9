//! The page's HTML: one askama template per page (`templates/`), with what each shows.
//! Everything is escaped by askama; the words come from the language's catalogue.

use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::Challenge;
use crate::domain::email::masked;
use crate::domain::lang::Lang;
use crate::messages::Catalogue;

/// What every page has around it: its language, the words, the brand, the language switch.
pub struct Layout {
    pub lang: &'static str,
    pub t: &'static Catalogue,
    pub brand: String,
    pub others: Vec<OtherLang>,
}

pub struct OtherLang {
    pub code: &'static str,
    pub name: &'static str,
}

impl Layout {
    pub fn new(lang: Lang, brand: String) -> Self {
        Self {
            lang: lang.code(),
            t: lang.messages(),
            brand,
            others: lang
                .others()
                .map(|other| OtherLang {
                    code: other.code(),
                    name: other.messages().name,
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub layout: Layout,
    pub heading: String,
    pub csrf: String,
    /// What the user typed last, so they need not type it again.
    pub email: String,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "code.html")]
pub struct CodePage {
    pub layout: Layout,
    pub csrf: String,
    /// Carried to the next form: the "sign in again" after a lock or expiry keeps it.
    pub email: String,
    pub attempt_id: Uuid,
    pub challenge_id: Uuid,
    pub expires_at: String,
    pub recently_sent: bool,
    pub sent_to: String,
    pub validity: Option<String>,
    pub problem: Option<String>,
}

/// The challenge a code page is about, as its hidden fields carry it from one form to the
/// next (the page keeps no session): none of it is a secret, and the CSRF token ties the
/// form to this browser.
pub struct CodeForm {
    pub email: String,
    pub challenge: Challenge,
}

impl CodePage {
    pub fn new(
        layout: Layout,
        csrf: String,
        form: CodeForm,
        problem: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let t = layout.t;
        let masked_email = masked(&form.email);
        let challenge = form.challenge;
        let sent_to = if challenge.recently_sent {
            (t.code_recently_sent)(&masked_email)
        } else {
            (t.code_sent_to)(&masked_email)
        };
        Self {
            layout,
            csrf,
            email: form.email,
            attempt_id: challenge.attempt_id,
            challenge_id: challenge.challenge_id,
            expires_at: challenge.expires_at.to_rfc3339(),
            recently_sent: challenge.recently_sent,
            sent_to,
            validity: validity(t, challenge.expires_at, now),
            problem,
        }
    }
}

/// "It works for 10 minutes, until 12:47 UTC": whole minutes left, rounded up; nothing once
/// the time has passed (the verifier then says the code expired).
fn validity(t: &Catalogue, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let seconds_left = (expires_at - now).num_seconds();
    (seconds_left > 0).then(|| {
        let minutes = (seconds_left + 59) / 60;
        (t.code_valid_for)(minutes, &expires_at.format("%H:%M UTC").to_string())
    })
}

#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedInPage {
    pub layout: Layout,
    pub signed_in_to: String,
    pub continue_to: String,
    pub continue_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(expires_at: DateTime<Utc>, recently_sent: bool) -> Challenge {
        Challenge {
            attempt_id: Uuid::new_v4(),
            challenge_id: Uuid::new_v4(),
            expires_at,
            recently_sent,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:37:30Z".parse().unwrap()
    }

    #[test]
    fn the_code_page_says_where_the_code_went_and_how_long_it_works() {
        let expires_at = now() + chrono::Duration::seconds(570);
        let page = CodePage::new(
            Layout::new(Lang::En, "Acme".into()),
            "token".into(),
            CodeForm {
                email: "alice@example.com".into(),
                challenge: challenge(expires_at, false),
            },
            None,
            now(),
        );
        let html = page.render().unwrap();
        assert!(html.contains("a•••@example.com"), "{html}");
        assert!(!html.contains(">alice@example.com"), "{html}");
        assert!(
            html.contains("It works for 10 minutes, until 12:47 UTC."),
            "{html}"
        );
        assert!(html.contains(r#"autocomplete="one-time-code""#));
        assert!(html.contains(r#"inputmode="numeric""#));
        assert!(html.contains(r#"lang="en""#));
    }

    #[test]
    fn a_problem_is_announced_and_takes_the_focus() {
        let page = CodePage::new(
            Layout::new(Lang::Fr, "Acme".into()),
            "token".into(),
            CodeForm {
                email: "alice@example.com".into(),
                challenge: challenge(now() + chrono::Duration::seconds(60), true),
            },
            Some("Ce code n’est pas le bon.".into()),
            now(),
        );
        let html = page.render().unwrap();
        assert!(
            html.contains(r#"role="alert""#) && html.contains("autofocus"),
            "{html}"
        );
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains("il y a quelques instants"), "{html}");
        assert!(html.contains("Il est valable 1 minute"), "{html}");
        assert_eq!(html.matches("autofocus").count(), 1, "{html}");
    }

    #[test]
    fn no_validity_once_expired() {
        assert_eq!(validity(Lang::En.messages(), now(), now()), None);
    }

    #[test]
    fn what_the_user_typed_is_escaped() {
        let page = SignInPage {
            layout: Layout::new(Lang::En, "Acme".into()),
            heading: "Sign in".into(),
            csrf: "token".into(),
            email: r#""><script>alert(1)</script>"#.into(),
            problem: None,
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
    }
}
