//! Turning a login into a `LoginAttempted`: look the account up, check the first factor,
//! record the attempt and its event in one transaction (the outbox; the relay publishes it).
//! Shared by the HTTP API and the Kafka ingress.
//!
//! The first factor counts only if the caller's company accepts it (`FirstFactors`): an SSO
//! or Google claim is the client backend's word, so a company that logs in with passwords
//! must not take it, or any leaked client key logs anyone in with no factor at all. A
//! method the company does not accept is `NotAccepted` (the risk worker rejects it with
//! `auth_method_not_allowed`), whoever the email belongs to; a method the account's own
//! limit excludes is `Failed`, exactly like an unknown email, so the answer never tells
//! whether an account exists.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use mfa_store::data_keys::{DataKeyError, DataKeys};
use secrecy::SecretString;
use shared::domain::{
    AttemptId, AuthMethod, CompanyId, DeviceId, Email, FirstFactors, Locale, Platform,
    PrimaryFactor, UserAgent,
};
use shared::events::{Envelope, Event, EventType, LoginAttempted, LoginClient};
use shared::personal::{PseudonymKey, Subject};
use shared::topics::Topics;
use tracing::Instrument;

use crate::password::PasswordPool;
use crate::store::{accepted_by_account, IntakeStore, Recorded, UserRecord};

pub const PRODUCER: &str = "login-intake";

/// How the user proved themselves before MFA.
pub enum FirstFactor {
    Password(SecretString),
    /// The client backend authenticated the user with SSO or Google.
    Federated(AuthMethod),
}

impl FirstFactor {
    pub fn method(&self) -> AuthMethod {
        match self {
            FirstFactor::Password(_) => AuthMethod::Password,
            FirstFactor::Federated(method) => *method,
        }
    }
}

/// What the first factor proved, for the `LoginAttempted`. `account` is the account's own
/// limit (`Some(None)`: no limit), or None for an unknown email; `password_matched` is the
/// password check's result (ignored for a federated login).
pub fn primary_factor(
    method: AuthMethod,
    company: FirstFactors,
    account: Option<Option<FirstFactors>>,
    password_matched: bool,
) -> PrimaryFactor {
    if !company.accepts(method) {
        return PrimaryFactor::NotAccepted;
    }
    let Some(limit) = account else {
        return PrimaryFactor::Failed;
    };
    let proved = method.is_federated() || password_matched;
    if proved && accepted_by_account(company, limit).accepts(method) {
        PrimaryFactor::Succeeded
    } else {
        PrimaryFactor::Failed
    }
}

/// A login as parsed at the boundary.
pub struct NewLogin {
    pub email: Email,
    pub first_factor: FirstFactor,
    pub platform: Platform,
    pub ip: IpAddr,
    pub user_agent: UserAgent,
    pub device_id: Option<DeviceId>,
    /// The language of the code email, if the login needs one.
    pub locale: Locale,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the password pool is full")]
    Overloaded,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The subject's data key could not be made or read: the login is not accepted, since
    /// its personal fields could not be sealed.
    #[error("sealing the login's personal data")]
    DataKeys(#[from] DataKeyError),
}

#[derive(Clone)]
pub struct Intake {
    pub store: IntakeStore,
    pub passwords: PasswordPool,
    pub topics: Arc<Topics>,
    pub data_keys: DataKeys,
    pub pseudonyms: PseudonymKey,
}

/// Whose personal data a login's fields are: the account's, or an unknown email's.
pub fn subject_of(
    user_id: Option<shared::domain::UserId>,
    email: &Email,
    pseudonyms: &PseudonymKey,
) -> Subject {
    match user_id {
        Some(user_id) => Subject::User(user_id),
        None => Subject::unknown_account(pseudonyms, email.as_str()),
    }
}

/// The Kafka key of a subject's events: the user id, or for an unknown email its group
/// (from a keyed hash: never the email, nor a plain hash of it), so that one account's
/// events stay in order in one partition.
pub fn event_key(subject: Subject) -> String {
    match subject {
        Subject::User(user_id) => user_id.to_string(),
        Subject::UnknownAccounts(group) => format!("unknown-{group:02x}"),
    }
}

impl Intake {
    /// Accepts a login under `attempt_id`: once this returned `Ok`, the attempt and its
    /// `LoginAttempted` are committed together, the outbox relay (woken by the commit)
    /// publishes the event, and the risk worker will decide it. The same attempt accepted
    /// again (a redelivered Kafka request) changes nothing and announces nothing twice. `company` is the one the caller speaks
    /// for (its API key's, or the Kafka request's): an account of another company is treated
    /// as unknown.
    #[tracing::instrument(
        name = "submit login",
        skip_all,
        fields(attempt_id = %attempt_id, auth_method = login.first_factor.method().as_str())
    )]
    pub async fn submit(
        &self,
        attempt_id: AttemptId,
        company: &CompanyId,
        login: NewLogin,
    ) -> Result<(), IntakeError> {
        let accepted_by_company = self.store.company_first_factors(company).await?;
        let user = self
            .store
            .find_user(&login.email)
            .await?
            .filter(|user| &user.company_id == company);
        let auth_method = login.first_factor.method();
        let password_matched = match login.first_factor {
            // Not checked when the company takes no passwords: the answer is the same for
            // every email, so skipping the hash tells nobody anything.
            FirstFactor::Password(password) if accepted_by_company.accepts(auth_method) => {
                // Checked even when the account's own limit excludes passwords: an excluded
                // account costs the same time as any other wrong password.
                let hash = user.as_ref().and_then(|u| u.password_hash.clone());
                // A span of its own: the queue for a hashing thread shows in the trace.
                self.passwords
                    .verify(password, hash)
                    .instrument(tracing::info_span!("password check"))
                    .await
                    .map_err(|_| IntakeError::Overloaded)?
            }
            FirstFactor::Password(_) | FirstFactor::Federated(_) => false,
        };
        let attempt = Attempt {
            attempt_id,
            company,
            auth_method,
            platform: login.platform,
            locale: login.locale,
            email: &login.email,
            client: LoginClient {
                ip: login.ip,
                user_agent: login.user_agent,
                device_id: login.device_id,
            },
        };
        if let Some(user) = &user {
            let factor = primary_factor(
                auth_method,
                accepted_by_company,
                Some(user.first_factors),
                password_matched,
            );
            match self.record(&attempt, Some(user), factor).await? {
                Recorded::SubjectErased => {
                    // Deleted while this login was in flight: nothing of it was kept under
                    // the account, and it goes on exactly as a login with an email no account
                    // has (which is what it is now), so the answer tells nothing either.
                    tracing::info!(%attempt_id, "account deleted during the login: treated as unknown");
                }
                Recorded::New | Recorded::Before => return Ok(()),
            }
        }
        let factor = primary_factor(auth_method, accepted_by_company, None, false);
        match self.record(&attempt, None, factor).await? {
            Recorded::New | Recorded::Before => Ok(()),
            // An unknown email's subject is erased by retention only, a month at a time,
            // never as a whole: this is a database edited by hand.
            Recorded::SubjectErased => {
                Err(
                    DataKeyError::SubjectErased(subject_of(None, attempt.email, &self.pseudonyms))
                        .into(),
                )
            }
        }
    }

    /// Seals the login's personal fields under `user`'s key (an unknown email's when None) and
    /// records the attempt with its `LoginAttempted`. `SubjectErased` when the account was
    /// deleted meanwhile: nothing is recorded.
    async fn record(
        &self,
        attempt: &Attempt<'_>,
        user: Option<&UserRecord>,
        primary_factor: PrimaryFactor,
    ) -> Result<Recorded, IntakeError> {
        let user_id = user.map(|u| u.user_id);
        let now = Utc::now();
        let subject = subject_of(user_id, attempt.email, &self.pseudonyms);
        let context = EventType::LoginAttempted.seal_context(attempt.attempt_id);
        let sealed = match self
            .data_keys
            .seal(subject, now, &attempt.client, context)
            .await
        {
            Ok(sealed) => sealed,
            Err(DataKeyError::SubjectErased(_)) => return Ok(Recorded::SubjectErased),
            Err(error) => return Err(error.into()),
        };
        let event = Event::LoginAttempted(LoginAttempted {
            user_id,
            company_id: user.map(|u| u.company_id.clone()),
            auth_method: attempt.auth_method,
            primary_factor,
            privileged: user.is_some_and(|u| u.privileged),
            platform: attempt.platform,
            client: sealed,
            locale: attempt.locale,
        });
        let envelope = Envelope::new(PRODUCER, attempt.attempt_id, None, now, event);
        let key = event_key(subject);
        let recorded = self
            .store
            .record_attempt(
                attempt.attempt_id,
                (subject, user_id),
                attempt.company,
                (&self.topics.login_attempts, &key, &envelope),
                &attempt.client,
            )
            .await?;
        let attempt_id = attempt.attempt_id;
        match recorded {
            Recorded::New => {
                let auth_method = attempt.auth_method;
                tracing::info!(%attempt_id, ?auth_method, ?primary_factor, "login attempt accepted");
            }
            Recorded::Before => {
                tracing::info!(%attempt_id, "login attempt accepted before: nothing to announce");
            }
            Recorded::SubjectErased => {}
        }
        Ok(recorded)
    }
}

/// A login's facts that do not depend on whose account it turns out to be.
struct Attempt<'a> {
    attempt_id: AttemptId,
    company: &'a CompanyId,
    auth_method: AuthMethod,
    platform: Platform,
    locale: Locale,
    email: &'a Email,
    client: LoginClient,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: AuthMethod = AuthMethod::Password;
    const SSO: AuthMethod = AuthMethod::Sso;
    const GOOGLE: AuthMethod = AuthMethod::Google;

    #[test]
    fn a_method_the_company_does_not_accept_is_not_accepted_for_any_email() {
        let passwords_only = FirstFactors::PASSWORD_ONLY;
        for account in [None, Some(None), Some(Some(FirstFactors::of([SSO])))] {
            for method in [SSO, GOOGLE] {
                assert_eq!(
                    primary_factor(method, passwords_only, account, false),
                    PrimaryFactor::NotAccepted
                );
            }
        }
        let sso_only = FirstFactors::of([SSO]);
        assert_eq!(
            primary_factor(PASSWORD, sso_only, Some(None), true),
            PrimaryFactor::NotAccepted
        );
    }

    #[test]
    fn an_accepted_method_succeeds_only_for_a_known_account_that_proved_it() {
        let company = FirstFactors::of([PASSWORD, SSO]);
        assert_eq!(
            primary_factor(SSO, company, Some(None), false),
            PrimaryFactor::Succeeded
        );
        assert_eq!(
            primary_factor(PASSWORD, company, Some(None), true),
            PrimaryFactor::Succeeded
        );
        assert_eq!(
            primary_factor(PASSWORD, company, Some(None), false),
            PrimaryFactor::Failed
        );
        assert_eq!(
            primary_factor(SSO, company, None, false),
            PrimaryFactor::Failed
        );
    }

    #[test]
    fn an_account_limit_looks_exactly_like_an_unknown_email() {
        let company = FirstFactors::of([PASSWORD, SSO]);
        let passwords_only = Some(Some(FirstFactors::PASSWORD_ONLY));
        let unknown = primary_factor(SSO, company, None, false);
        assert_eq!(primary_factor(SSO, company, passwords_only, false), unknown);
        let sso_only = Some(Some(FirstFactors::of([SSO])));
        assert_eq!(
            primary_factor(PASSWORD, company, sso_only, true),
            primary_factor(PASSWORD, company, None, false)
        );
        // A limit wider than the company's changes nothing.
        let wide = Some(Some(FirstFactors::of([PASSWORD, SSO, GOOGLE])));
        assert_eq!(
            primary_factor(GOOGLE, company, wide, false),
            PrimaryFactor::NotAccepted
        );
        assert_eq!(
            primary_factor(SSO, company, wide, false),
            PrimaryFactor::Succeeded
        );
    }
}
