//! Turning a login into a `LoginAttempted`: look the account up, check the first factor,
//! record the attempt, publish. Shared by the HTTP API and the Kafka ingress.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use mfa_bus::{EventPublisher, PublishError};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use shared::domain::{
    AttemptId, AuthMethod, CompanyId, DeviceId, Email, Platform, PrimaryFactor, UserAgent,
};
use shared::events::{Envelope, Event, LoginAttempted};
use shared::topics::Topics;

use crate::password::PasswordPool;
use crate::store::IntakeStore;

pub const PRODUCER: &str = "login-intake";

/// How the user proved themselves before MFA.
pub enum FirstFactor {
    Password(SecretString),
    /// The client backend authenticated the user with SSO or Google.
    Federated(AuthMethod),
}

/// A login as parsed at the boundary.
pub struct NewLogin {
    pub email: Email,
    pub first_factor: FirstFactor,
    pub platform: Platform,
    pub ip: IpAddr,
    pub user_agent: UserAgent,
    pub device_id: Option<DeviceId>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the password pool is full")]
    Overloaded,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

#[derive(Clone)]
pub struct Intake {
    pub store: IntakeStore,
    pub passwords: PasswordPool,
    pub publisher: Arc<dyn EventPublisher>,
    pub topics: Arc<Topics>,
}

/// The Kafka key of a user's events: the user id, or for an unknown account a hash of the
/// normalised email, so that one account's events stay in order in one partition.
pub fn partition_key(user_id: Option<shared::domain::UserId>, email: &Email) -> String {
    match user_id {
        Some(user_id) => user_id.to_string(),
        None => hex::encode(Sha256::digest(email.as_str().as_bytes())),
    }
}

impl Intake {
    /// Accepts a login under `attempt_id`: once this returned `Ok`, the `LoginAttempted` is on
    /// the broker and the risk worker will decide it. `company` is the one the caller speaks
    /// for (its API key's, or the Kafka request's): an account of another company is treated
    /// as unknown.
    pub async fn submit(
        &self,
        attempt_id: AttemptId,
        company: &CompanyId,
        login: NewLogin,
    ) -> Result<(), IntakeError> {
        let user = self
            .store
            .find_user(&login.email)
            .await?
            .filter(|user| &user.company_id == company);
        let (auth_method, succeeded) = match login.first_factor {
            FirstFactor::Password(password) => {
                let hash = user.as_ref().and_then(|u| u.password_hash.clone());
                let ok = self
                    .passwords
                    .verify(password, hash)
                    .await
                    .map_err(|_| IntakeError::Overloaded)?;
                (AuthMethod::Password, ok)
            }
            FirstFactor::Federated(method) => (method, user.is_some()),
        };
        let user_id = user.as_ref().map(|u| u.user_id);
        let event = Event::LoginAttempted(LoginAttempted {
            user_id,
            company_id: user.as_ref().map(|u| u.company_id.clone()),
            auth_method,
            primary_factor: if succeeded {
                PrimaryFactor::Succeeded
            } else {
                PrimaryFactor::Failed
            },
            privileged: user.as_ref().is_some_and(|u| u.privileged),
            platform: login.platform,
            ip: login.ip,
            user_agent: login.user_agent,
            device_id: login.device_id,
        });
        let envelope = Envelope::new(PRODUCER, attempt_id, None, Utc::now(), event);
        self.store
            .record_attempt(attempt_id, user_id, company)
            .await?;
        let key = partition_key(user_id, &login.email);
        self.publisher
            .publish(&self.topics.login_attempts, &key, &envelope)
            .await?;
        tracing::info!(%attempt_id, ?auth_method, succeeded, "login attempt published");
        Ok(())
    }
}
