//! The links of the "someone has your password" email (the code worker's `notices`):
//! `GET /v1/login-feedback/{token}` answers a small page that asks to confirm, and its form's
//! `POST` records the feedback. A GET never records anything: mail scanners and link previews
//! fetch links on their own, and a scanner's fetch of "this was me" must not teach the model an
//! attacker's device.
//!
//! Why the verifier answers them: like a code, a link is something only the mailbox received
//! coming back, and the verifier already shares the code worker's secrets.
//!
//! The token is checked first (signature, then expiry: `mfa_code_hash::feedback_link`), then
//! consumed once: the notification row's feedback is set by one conditional update, the login's
//! one `login_feedback` row inserted, and `LoginFeedback` written into the outbox, in one
//! transaction. A second click, on either link, answers "already used"; so does a link of a
//! login that got its feedback over the API first.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use mfa_code_hash::feedback_link::{FeedbackLink, LinkError, LinkSigner};
use mfa_store::data_keys::{self, DataKeyError, DataKeys, SubjectState};
use mfa_store::outbox;
use shared::domain::{AttemptId, CompanyId, Locale, UserId};
use shared::events::{
    Envelope, Event, FeedbackSource, FeedbackVerdict, LoginFeedback, ReportedClient,
};
use shared::personal::Subject;
use shared::topics::Topics;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

use crate::verify::PRODUCER;

#[derive(Clone)]
pub struct FeedbackState {
    pub pool: PgPool,
    /// Seal the reported login's address and device id in the `LoginFeedback`.
    pub data_keys: DataKeys,
    pub signer: LinkSigner,
    pub topics: Arc<Topics>,
}

/// A page's answer: its status, what it says, in the notification's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The link is valid: confirm with the button.
    Confirm(FeedbackVerdict),
    Recorded(FeedbackVerdict),
    /// Unsigned, edited, or no such notification (`invalid_link`).
    Invalid,
    /// Past its expiry (`link_expired`).
    Expired,
    /// A link of this email was followed before, or the login got its feedback otherwise
    /// (`already_used`).
    AlreadyUsed,
}

impl Page {
    fn status(self) -> StatusCode {
        match self {
            Page::Confirm(_) | Page::Recorded(_) => StatusCode::OK,
            Page::Invalid => StatusCode::NOT_FOUND,
            Page::Expired => StatusCode::GONE,
            Page::AlreadyUsed => StatusCode::CONFLICT,
        }
    }

    /// The machine-readable code, in the page's `data-code`.
    pub fn code(self) -> &'static str {
        match self {
            Page::Confirm(_) => "confirm",
            Page::Recorded(_) => "recorded",
            Page::Invalid => "invalid_link",
            Page::Expired => "link_expired",
            Page::AlreadyUsed => "already_used",
        }
    }

    fn text(self, locale: Locale) -> (&'static str, &'static str) {
        use FeedbackVerdict::{WasMe, WasntMe};
        match (locale, self) {
            (Locale::En, Page::Confirm(WasMe)) => ("Was this sign-in you?", "Confirm it was you: this device and network will be recognised next time."),
            (Locale::En, Page::Confirm(WasntMe)) => ("Report this sign-in", "Confirm it wasn't you: sign-ins from this device and network will be challenged. Then change your password."),
            (Locale::En, Page::Recorded(WasMe)) => ("Thank you", "Noted: this sign-in was you."),
            (Locale::En, Page::Recorded(WasntMe)) => ("Thank you", "Reported. Change your password now and tell your administrator: someone knows it."),
            (Locale::En, Page::Invalid) => ("Invalid link", "This link is not valid. Use the links of the email as they are."),
            (Locale::En, Page::Expired) => ("Link expired", "This link has expired. Tell your administrator if a sign-in was not you."),
            (Locale::En, Page::AlreadyUsed) => ("Already used", "This sign-in's feedback was already given: this link was already used."),
            (Locale::Fr, Page::Confirm(WasMe)) => ("Était-ce vous ?", "Confirmez que c'était vous : cet appareil et ce réseau seront reconnus la prochaine fois."),
            (Locale::Fr, Page::Confirm(WasntMe)) => ("Signaler cette connexion", "Confirmez que ce n'était pas vous : les connexions depuis cet appareil et ce réseau demanderont un code. Changez ensuite votre mot de passe."),
            (Locale::Fr, Page::Recorded(WasMe)) => ("Merci", "C'est noté : cette connexion était la vôtre."),
            (Locale::Fr, Page::Recorded(WasntMe)) => ("Merci", "C'est signalé. Changez votre mot de passe maintenant et prévenez votre administrateur : quelqu'un le connaît."),
            (Locale::Fr, Page::Invalid) => ("Lien invalide", "Ce lien n'est pas valide. Utilisez les liens de l'e-mail tels quels."),
            (Locale::Fr, Page::Expired) => ("Lien expiré", "Ce lien a expiré. Prévenez votre administrateur si une connexion n'était pas la vôtre."),
            (Locale::Fr, Page::AlreadyUsed) => ("Déjà utilisé", "L'avis sur cette connexion a déjà été donné : ce lien a déjà servi."),
        }
    }

    fn html(self, locale: Locale) -> String {
        let (title, body) = self.text(locale);
        let button = match (self, locale) {
            (Page::Confirm(_), Locale::En) => {
                "<form method=\"post\"><button type=\"submit\">Confirm</button></form>"
            }
            (Page::Confirm(_), Locale::Fr) => {
                "<form method=\"post\"><button type=\"submit\">Confirmer</button></form>"
            }
            _ => "",
        };
        format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\
             <body data-code=\"{code}\" style=\"font-family:sans-serif\"><h1>{title}</h1>\
             <p>{body}</p>{button}</body></html>",
            lang = locale.as_str(),
            code = self.code(),
        )
    }

    fn respond(self, locale: Locale) -> Response {
        (
            self.status(),
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.html(locale),
        )
            .into_response()
    }
}

/// Why a link could not be followed now.
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("sealing the reported login's personal data")]
    DataKeys(#[from] DataKeyError),
}

/// A database failure: a page of its own, and the error logged.
fn unavailable(error: impl Into<Unavailable>) -> Response {
    let error = error.into();
    tracing::warn!(error = %mfa_runtime::supervise::error_chain(&error), "login feedback link: unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><html><body data-code=\"unavailable\"><p>Please try again in a moment.</p></body></html>",
    )
        .into_response()
}

/// The notification a verified link names: its language, and whether its token was used.
struct Notification {
    locale: Locale,
    used: bool,
}

fn locale_of(raw: Option<&str>) -> Locale {
    match raw {
        Some("fr") => Locale::Fr,
        _ => Locale::En,
    }
}

async fn notification(pool: &PgPool, token_id: Uuid) -> Result<Option<Notification>, sqlx::Error> {
    let row: Option<(Option<String>, bool)> = sqlx::query_as(
        "SELECT n.context->>'locale',
                n.feedback_at IS NOT NULL
                  OR EXISTS (SELECT 1 FROM login_feedback f WHERE f.attempt_id = n.attempt_id)
         FROM login_notifications n WHERE n.token_id = $1",
    )
    .bind(token_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(locale, used)| Notification {
        locale: locale_of(locale.as_deref()),
        used,
    }))
}

fn checked(state: &FeedbackState, token: &str) -> Result<FeedbackLink, Page> {
    state
        .signer
        .verify(token, Utc::now())
        .map_err(|error| match error {
            LinkError::Expired => Page::Expired,
            LinkError::Malformed | LinkError::BadSignature => Page::Invalid,
        })
}

/// A link of the notification email: asks to confirm.
#[utoipa::path(
    get, path = "/v1/login-feedback/{token}",
    params(("token" = String, Path, description = "From the link of the \"someone has your password\" email")),
    responses(
        (status = 200, description = "The link is valid: a page asking to confirm (its form posts to the same URL)", body = String, content_type = "text/html"),
        (status = 404, description = "`invalid_link`: unsigned, edited or unknown", body = String, content_type = "text/html"),
        (status = 409, description = "`already_used`: a link of this email was followed, or the login got its feedback otherwise", body = String, content_type = "text/html"),
        (status = 410, description = "`link_expired`", body = String, content_type = "text/html"),
        (status = 503, description = "`unavailable`: the database does not answer", body = String, content_type = "text/html"),
    )
)]
pub async fn show(State(state): State<FeedbackState>, Path(token): Path<String>) -> Response {
    let link = match checked(&state, &token) {
        Ok(link) => link,
        Err(page) => return page.respond(Locale::En),
    };
    match notification(&state.pool, link.token_id).await {
        Err(error) => unavailable(error),
        Ok(None) => Page::Invalid.respond(Locale::En),
        Ok(Some(n)) if n.used => Page::AlreadyUsed.respond(n.locale),
        Ok(Some(n)) => Page::Confirm(link.verdict).respond(n.locale),
    }
}

/// The confirmation of a link: records the feedback, once.
#[utoipa::path(
    post, path = "/v1/login-feedback/{token}",
    params(("token" = String, Path, description = "From the link of the \"someone has your password\" email")),
    responses(
        (status = 200, description = "`recorded`: the feedback is recorded and announced (`LoginFeedback`)", body = String, content_type = "text/html"),
        (status = 404, description = "`invalid_link`: unsigned, edited or unknown", body = String, content_type = "text/html"),
        (status = 409, description = "`already_used`: a link of this email was followed, or the login got its feedback otherwise", body = String, content_type = "text/html"),
        (status = 410, description = "`link_expired`", body = String, content_type = "text/html"),
        (status = 503, description = "`unavailable`: the database does not answer", body = String, content_type = "text/html"),
    )
)]
pub async fn confirm(State(state): State<FeedbackState>, Path(token): Path<String>) -> Response {
    let link = match checked(&state, &token) {
        Ok(link) => link,
        Err(page) => return page.respond(Locale::En),
    };
    match consume(&state, &link).await {
        Err(error) => unavailable(error),
        Ok(Consumed::Recorded(locale)) => Page::Recorded(link.verdict).respond(locale),
        Ok(Consumed::AlreadyUsed(locale)) => Page::AlreadyUsed.respond(locale),
        Ok(Consumed::Unknown) => Page::Invalid.respond(Locale::En),
    }
}

enum Consumed {
    Recorded(Locale),
    AlreadyUsed(Locale),
    Unknown,
}

#[derive(sqlx::FromRow)]
struct ConsumedRow {
    attempt_id: Uuid,
    user_id: Uuid,
    company_id: String,
    locale: Option<String>,
    ip: Option<String>,
    device_id: Option<String>,
}

async fn consume(state: &FeedbackState, link: &FeedbackLink) -> Result<Consumed, Unavailable> {
    let mut tx = state.pool.begin().await?;
    let row: Option<ConsumedRow> = sqlx::query_as(
        "UPDATE login_notifications SET feedback_verdict = $2, feedback_at = now()
         WHERE token_id = $1 AND feedback_at IS NULL
         RETURNING attempt_id, user_id, company_id, context->>'locale' AS locale,
                   context->>'ip' AS ip, device_id",
    )
    .bind(link.token_id)
    .bind(link.verdict.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        drop(tx);
        return Ok(match notification(&state.pool, link.token_id).await? {
            Some(n) => Consumed::AlreadyUsed(n.locale),
            None => Consumed::Unknown,
        });
    };
    let locale = locale_of(row.locale.as_deref());
    let user_id = UserId::from_uuid(row.user_id);
    let first = sqlx::query(
        "INSERT INTO login_feedback (attempt_id, user_id, company_id, verdict, source)
         VALUES ($1, $2, $3, $4, 'email_link') ON CONFLICT (attempt_id) DO NOTHING",
    )
    .bind(row.attempt_id)
    .bind(row.user_id)
    .bind(&row.company_id)
    .bind(link.verdict.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !first {
        // Given over the API before: the token stays unconsumed, and says so on every click.
        return Ok(Consumed::AlreadyUsed(locale));
    }
    let Ok(company_id) = CompanyId::parse(&row.company_id) else {
        tracing::error!(attempt_id = %row.attempt_id, "a notification's company id does not parse");
        return Ok(Consumed::Unknown);
    };
    let attempt_id = AttemptId::from_uuid(row.attempt_id);
    let now = Utc::now();
    let reported = ReportedClient::from_recorded(row.ip.as_deref(), row.device_id.as_deref());
    let reported = match state
        .data_keys
        .seal_reported(user_id, attempt_id, now, &reported)
        .await
    {
        Ok(reported) => reported,
        Err(DataKeyError::SubjectErased(_)) => return Ok(Consumed::Unknown),
        Err(error) => return Err(error.into()),
    };
    // Held until the commit (after sealing, which may make the user's key in a transaction
    // of its own): a deletion of the account in flight waits for this transaction and then
    // deletes its feedback row (the key that sealed the event erased with the others), or it
    // committed first and this link is as unknown as it will be once the code worker has
    // deleted the notification; nothing of it is kept.
    if data_keys::hold_subject(&mut tx, Subject::User(user_id)).await? == SubjectState::Erased {
        return Ok(Consumed::Unknown);
    }
    let event = Envelope::new(
        PRODUCER,
        attempt_id,
        None,
        now,
        Event::LoginFeedback(LoginFeedback {
            user_id,
            company_id,
            verdict: link.verdict,
            source: FeedbackSource::EmailLink,
            reported,
        }),
    );
    outbox::enqueue(
        &mut tx,
        PRODUCER,
        &state.topics.accounts,
        &user_id.to_string(),
        &event,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(attempt_id = %row.attempt_id, verdict = link.verdict.as_str(), "login feedback from an email link");
    Ok(Consumed::Recorded(locale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_says_its_code_in_both_languages() {
        let pages = [
            Page::Confirm(FeedbackVerdict::WasMe),
            Page::Confirm(FeedbackVerdict::WasntMe),
            Page::Recorded(FeedbackVerdict::WasMe),
            Page::Recorded(FeedbackVerdict::WasntMe),
            Page::Invalid,
            Page::Expired,
            Page::AlreadyUsed,
        ];
        for page in pages {
            for locale in [Locale::En, Locale::Fr] {
                let html = page.html(locale);
                assert!(
                    html.contains(&format!("data-code=\"{}\"", page.code())),
                    "{html}"
                );
                assert!(html.contains(&format!("lang=\"{}\"", locale.as_str())));
                // Only the confirmation page records anything, and only by its form's POST.
                assert_eq!(
                    html.contains("method=\"post\""),
                    matches!(page, Page::Confirm(_))
                );
            }
        }
        assert_eq!(Page::AlreadyUsed.status(), StatusCode::CONFLICT);
        assert_eq!(Page::Expired.status(), StatusCode::GONE);
        assert_eq!(Page::Invalid.status(), StatusCode::NOT_FOUND);
    }
}
