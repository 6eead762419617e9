//! The routes: `GET /` (the sign-in form), `POST /sign-in`, `POST /verify` (the code),
//! `POST /code` (the code page in another language), the stylesheet and `/healthz`.
//! Each visit starts at the sign-in form; what a later form needs travels in its hidden
//! fields, so the page keeps no session: only the device cookie lasts.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{Api, Challenge, Login, LoginAnswer, VerifyAnswer};
use crate::domain::browser::{client_ip, is_loopback_host, user_agent};
use crate::domain::code::TypedCode;
use crate::domain::csrf::CsrfKey;
use crate::domain::device::DeviceId;
use crate::domain::lang::Lang;
use crate::domain::outcome::{NextStep, Outcome};
use crate::domain::platform::{product_name, Platform};
use crate::error::PageError;
use crate::pages::{CodeForm, CodePage, Layout, SignInPage, SignedInPage};

/// The longest password passed on: login-intake's own limit.
const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone)]
pub struct AppState {
    pub api: Api,
    pub csrf: CsrfKey,
    pub platform: Platform,
    pub company_name: Option<String>,
    pub return_url: Url,
    pub trusted_proxies: usize,
}

/// The browser in front of the page, as one request shows it.
pub struct Visitor {
    /// The device cookie it sent, if it sent one the page issued.
    sent_device: Option<DeviceId>,
    /// Its device id from now on: the one it sent, or a new one.
    device: DeviceId,
    secure_cookie: bool,
    accept_language: Option<String>,
    user_agent: String,
    ip: IpAddr,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let sent_device = DeviceId::from_cookie_headers(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        let host = header_str(headers, header::HOST).unwrap_or_default();
        // The risk model and the per-address limits need the user's address, not a proxy's.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        let forwarded_for = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let ip = client_ip(
            peer,
            Some(forwarded_for.as_str()).filter(|header| !header.is_empty()),
            state.trusted_proxies,
        );
        Ok(Visitor {
            device: sent_device.clone().unwrap_or_else(DeviceId::random),
            sent_device,
            secure_cookie: !is_loopback_host(host),
            accept_language: header_str(headers, header::ACCEPT_LANGUAGE).map(str::to_owned),
            user_agent: user_agent(header_str(headers, header::USER_AGENT)),
            ip,
        })
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

impl Visitor {
    fn lang(&self, picked: Option<&str>) -> Lang {
        Lang::choose(picked, self.accept_language.as_deref())
    }

    /// Whether a form came from a page this page made for this browser.
    fn form_is_ours(&self, csrf: &CsrfKey, token: &str) -> bool {
        match &self.sent_device {
            Some(device) => match csrf.check(device, token, Utc::now().timestamp()) {
                Ok(()) => true,
                Err(refused) => {
                    tracing::info!(%refused, "form refused");
                    false
                }
            },
            None => false,
        }
    }
}

/// A rendered page with its status and the device cookie (re-set on every answer, so a
/// browser stays known for a year after its last visit).
pub struct Page {
    status: StatusCode,
    html: String,
    device_cookie: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::response::Html(self.html)).into_response();
        if let Ok(cookie) = HeaderValue::from_str(&self.device_cookie) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// The HTTP status a page about `outcome` is sent with: the words are for the person, the
/// status for tools and logs.
fn status_of(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Unavailable | Outcome::StillDeciding => StatusCode::SERVICE_UNAVAILABLE,
        Outcome::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Outcome::FormExpired => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    }
}

impl AppState {
    fn layout(&self, lang: Lang) -> Layout {
        let brand = match &self.company_name {
            Some(company) => format!("{company} · {}", product_name(self.platform)),
            None => product_name(self.platform).to_owned(),
        };
        Layout::new(lang, brand)
    }

    fn page(
        &self,
        visitor: &Visitor,
        status: StatusCode,
        template: impl Template,
    ) -> Result<Page, PageError> {
        Ok(Page {
            status,
            html: template.render()?,
            device_cookie: visitor.device.set_cookie(visitor.secure_cookie),
        })
    }

    fn csrf_token(&self, visitor: &Visitor) -> String {
        self.csrf.token(&visitor.device, Utc::now().timestamp())
    }

    fn sign_in_page(
        &self,
        visitor: &Visitor,
        lang: Lang,
        email: String,
        outcome: Option<Outcome>,
    ) -> Result<Page, PageError> {
        let t = lang.messages();
        let heading = match &self.company_name {
            Some(company) => (t.sign_in_to)(company),
            None => t.sign_in_title.to_owned(),
        };
        let page = SignInPage {
            layout: self.layout(lang),
            heading,
            csrf: self.csrf_token(visitor),
            email,
            problem: outcome.map(|outcome| outcome.message(t)),
        };
        self.page(visitor, outcome.map_or(StatusCode::OK, status_of), page)
    }

    fn code_page(
        &self,
        visitor: &Visitor,
        lang: Lang,
        form: CodeForm,
        outcome: Option<Outcome>,
    ) -> Result<Page, PageError> {
        let page = CodePage::new(
            self.layout(lang),
            self.csrf_token(visitor),
            form,
            outcome.map(|outcome| outcome.message(lang.messages())),
            Utc::now(),
        );
        self.page(visitor, outcome.map_or(StatusCode::OK, status_of), page)
    }

    fn signed_in_page(
        &self,
        visitor: &Visitor,
        lang: Lang,
        attempt_id: Uuid,
    ) -> Result<Page, PageError> {
        let t = lang.messages();
        let product = product_name(self.platform);
        let mut continue_url = self.return_url.clone();
        continue_url
            .query_pairs_mut()
            .append_pair("attempt_id", &attempt_id.to_string());
        let page = SignedInPage {
            layout: self.layout(lang),
            signed_in_to: (t.signed_in_to)(product),
            continue_to: (t.continue_to)(product),
            continue_url: continue_url.to_string(),
        };
        self.page(visitor, StatusCode::OK, page)
    }
}

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// `GET /`: the sign-in form, in the language asked for or the browser's.
pub async fn sign_in_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<LangQuery>,
) -> Result<Page, PageError> {
    let lang = visitor.lang(query.lang.as_deref());
    state.sign_in_page(&visitor, lang, String::new(), None)
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    lang: Option<String>,
    email: String,
    /// Held as a secret from here to the API call: never in a log line or a page.
    password: SecretString,
}

/// `POST /sign-in`: the login, and the page its decision leads to.
pub async fn sign_in(
    State(state): State<AppState>,
    visitor: Visitor,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Page, PageError> {
    let Form(form) = form.map_err(|_| PageError::NotAForm)?;
    let lang = visitor.lang(form.lang.as_deref());
    let email = form.email.trim().to_owned();
    if !visitor.form_is_ours(&state.csrf, &form.csrf) {
        return state.sign_in_page(&visitor, lang, email, Some(Outcome::FormExpired));
    }
    let password_bytes = form.password.expose_secret().len();
    let missing = if email.is_empty() {
        Some(Outcome::MissingEmail)
    } else if password_bytes == 0 {
        Some(Outcome::MissingPassword)
    } else if password_bytes > MAX_PASSWORD_BYTES {
        Some(Outcome::PasswordTooLong)
    } else {
        None
    };
    if let Some(problem) = missing {
        return state.sign_in_page(&visitor, lang, email, Some(problem));
    }
    let answer = state
        .api
        .log_in(Login {
            email: &email,
            password: &form.password,
            ip: visitor.ip,
            user_agent: &visitor.user_agent,
            device: &visitor.device,
            lang,
        })
        .await;
    match answer {
        Ok(LoginAnswer::Approved { attempt_id }) => {
            tracing::info!(%attempt_id, "signed in without a code");
            state.signed_in_page(&visitor, lang, attempt_id)
        }
        Ok(LoginAnswer::CodeSent(challenge)) => {
            state.code_page(&visitor, lang, CodeForm { email, challenge }, None)
        }
        Ok(LoginAnswer::Refused(outcome)) => {
            state.sign_in_page(&visitor, lang, email, Some(outcome))
        }
        Err(error) => {
            tracing::error!(error = %error, "login-intake gave no usable answer");
            state.sign_in_page(&visitor, lang, email, Some(Outcome::Unavailable))
        }
    }
}

/// The hidden fields of the code page, as posted back.
#[derive(Deserialize)]
pub struct CodeFields {
    csrf: String,
    lang: Option<String>,
    email: String,
    attempt_id: String,
    challenge_id: String,
    expires_at: String,
    #[serde(default)]
    recently_sent: String,
}

impl CodeFields {
    /// The challenge the form is about; None for ids that are not ids (a tampered form).
    fn code_form(&self) -> Option<CodeForm> {
        Some(CodeForm {
            email: self.email.trim().to_owned(),
            challenge: Challenge {
                attempt_id: self.attempt_id.parse().ok()?,
                challenge_id: self.challenge_id.parse().ok()?,
                expires_at: self.expires_at.parse::<DateTime<Utc>>().ok()?,
                recently_sent: self.recently_sent == "true",
            },
        })
    }
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(flatten)]
    fields: CodeFields,
    code: String,
}

/// `POST /verify`: the code, and the page the verifier's answer leads to.
pub async fn verify(
    State(state): State<AppState>,
    visitor: Visitor,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Result<Page, PageError> {
    let Form(VerifyForm { fields, code }) = form.map_err(|_| PageError::NotAForm)?;
    let lang = visitor.lang(fields.lang.as_deref());
    let email = fields.email.trim().to_owned();
    if !visitor.form_is_ours(&state.csrf, &fields.csrf) {
        return state.sign_in_page(&visitor, lang, email, Some(Outcome::FormExpired));
    }
    let Some(code_form) = fields.code_form() else {
        return state.sign_in_page(&visitor, lang, email, Some(Outcome::ChallengeUnknown));
    };
    let Ok(code) = TypedCode::parse(&code) else {
        return state.code_page(&visitor, lang, code_form, Some(Outcome::CodeNotSixDigits));
    };
    let answer = state
        .api
        .verify(code_form.challenge.challenge_id, &code)
        .await;
    let outcome = match answer {
        Ok(VerifyAnswer::Approved { attempt_id }) => {
            tracing::info!(%attempt_id, "signed in with a code");
            return state.signed_in_page(&visitor, lang, attempt_id);
        }
        Ok(VerifyAnswer::Refused(outcome)) => outcome,
        Err(error) => {
            tracing::error!(error = %error, "the verifier gave no usable answer");
            Outcome::Unavailable
        }
    };
    match outcome.next_step() {
        NextStep::CodeForm => state.code_page(&visitor, lang, code_form, Some(outcome)),
        NextStep::SignInForm => state.sign_in_page(&visitor, lang, email, Some(outcome)),
    }
}

/// `POST /code`: the same code page in the language picked with the switch.
pub async fn code_page_in(
    State(state): State<AppState>,
    visitor: Visitor,
    form: Result<Form<CodeFields>, FormRejection>,
) -> Result<Page, PageError> {
    let Form(fields) = form.map_err(|_| PageError::NotAForm)?;
    let lang = visitor.lang(fields.lang.as_deref());
    let email = fields.email.trim().to_owned();
    if !visitor.form_is_ours(&state.csrf, &fields.csrf) {
        return state.sign_in_page(&visitor, lang, email, Some(Outcome::FormExpired));
    }
    match fields.code_form() {
        Some(code_form) => state.code_page(&visitor, lang, code_form, None),
        None => state.sign_in_page(&visitor, lang, email, Some(Outcome::ChallengeUnknown)),
    }
}

/// `GET /static/page.css`: the only stylesheet (the CSP allows no inline style).
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/page.css"),
    )
}

/// `GET /healthz`: the page answers. It holds no connection of its own to check.
pub async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_outcome() {
        assert_eq!(
            status_of(Outcome::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_of(Outcome::RateLimited { seconds: None }),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status_of(Outcome::FormExpired), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(Outcome::IncorrectCode { tries_left: 2 }),
            StatusCode::OK
        );
    }
}
