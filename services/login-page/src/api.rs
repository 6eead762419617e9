//! The page as a client backend: its calls to login-intake (`POST /v1/logins`,
//! `GET /v1/logins/{attempt_id}`) and the verifier (`POST /v1/challenges/{id}/verify`),
//! with its API key, and their answers read into what the page does next. Nothing here is
//! internal to the services: a client backend can do the same from the two OpenAPI
//! documents.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{header, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::domain::code::TypedCode;
use crate::domain::device::DeviceId;
use crate::domain::lang::Lang;
use crate::domain::outcome::Outcome;
use crate::domain::platform::Platform;

/// Between two reads of a login still `pending`.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    intake: Url,
    verifier: Url,
    api_key: SecretString,
    platform: Platform,
    decision_poll: Duration,
}

/// A login as the page sends it: what the user typed and what it knows of their browser.
pub struct Login<'a> {
    pub email: &'a str,
    pub password: &'a SecretString,
    pub ip: IpAddr,
    pub user_agent: &'a str,
    pub device: &'a DeviceId,
    /// The page's language: the code email is written in it.
    pub lang: Lang,
}

/// A code was emailed: what the code page needs to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub attempt_id: Uuid,
    pub challenge_id: Uuid,
    pub expires_at: DateTime<Utc>,
    /// No new email: the one sent moments ago still works.
    pub recently_sent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginAnswer {
    Approved { attempt_id: Uuid },
    CodeSent(Challenge),
    Refused(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyAnswer {
    Approved { attempt_id: Uuid },
    Refused(Outcome),
}

/// A call that got no answer the page understands. The user is told the service is
/// unavailable; the log says which of these it was.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{call}: no answer")]
    Transport {
        call: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: unexpected answer {status} ({code})")]
    Unexpected {
        call: &'static str,
        status: StatusCode,
        code: String,
    },
}

/// The fields of a login decision the page reads; others are ignored, so the API can add
/// fields without breaking this client.
#[derive(Deserialize)]
struct Decision {
    attempt_id: Uuid,
    status: String,
    challenge_id: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
    code_recently_sent: Option<bool>,
    reason: Option<String>,
    retry_after_secs: Option<u64>,
}

/// `{"error": "<code>", ...}` of every refusal, and the verifier's `attempts_remaining`.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    attempts_remaining: Option<u32>,
}

#[derive(Deserialize)]
struct Verified {
    attempt_id: Uuid,
}

impl Api {
    pub fn new(
        intake: Url,
        verifier: Url,
        api_key: SecretString,
        platform: Platform,
        timeout: Duration,
        decision_poll: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            intake,
            verifier,
            api_key,
            platform,
            decision_poll,
        })
    }

    fn url(base: &Url, path: &str) -> String {
        format!("{}{path}", base.as_str().trim_end_matches('/'))
    }

    /// `POST /v1/logins`; a `pending` answer is followed with `GET /v1/logins/{id}` for up
    /// to the configured poll time.
    pub async fn log_in(&self, login: Login<'_>) -> Result<LoginAnswer, ApiError> {
        const CALL: &str = "POST /v1/logins";
        let body = json!({
            "email": login.email,
            "password": login.password.expose_secret(),
            "platform": self.platform.as_str(),
            // The API's `locale` takes the same tags the page speaks.
            "locale": login.lang.code(),
            "context": {
                "ip": login.ip,
                "user_agent": login.user_agent,
                "device_id": login.device.as_str(),
            },
        });
        let response = self
            .http
            .post(Self::url(&self.intake, "/v1/logins"))
            .bearer_auth(self.api_key.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|source| ApiError::Transport { call: CALL, source })?;
        let status = response.status();
        let retry_after = retry_after(&response);
        match status {
            StatusCode::OK => Ok(decided(read_json::<Decision>(CALL, response).await?)),
            StatusCode::ACCEPTED => {
                let pending = read_json::<Decision>(CALL, response).await?;
                self.follow(pending.attempt_id).await
            }
            StatusCode::TOO_MANY_REQUESTS => Ok(LoginAnswer::Refused(Outcome::RateLimited {
                seconds: retry_after,
            })),
            StatusCode::UNPROCESSABLE_ENTITY => {
                // The page sends every other field well-formed: a 422 is about the address.
                let error = read_error(response).await;
                tracing::info!(code = %error.error, "login refused: not an address");
                Ok(LoginAnswer::Refused(Outcome::EmailNotAccepted))
            }
            StatusCode::SERVICE_UNAVAILABLE => Ok(LoginAnswer::Refused(Outcome::Unavailable)),
            _ => Err(unexpected(CALL, status, response).await),
        }
    }

    /// Reads a pending login until it is decided or the poll time is over.
    async fn follow(&self, attempt_id: Uuid) -> Result<LoginAnswer, ApiError> {
        const CALL: &str = "GET /v1/logins/{attempt_id}";
        let started = Instant::now();
        while started.elapsed() < self.decision_poll {
            tokio::time::sleep(POLL_INTERVAL).await;
            let response = self
                .http
                .get(Self::url(&self.intake, &format!("/v1/logins/{attempt_id}")))
                .bearer_auth(self.api_key.expose_secret())
                .send()
                .await
                .map_err(|source| ApiError::Transport { call: CALL, source })?;
            match response.status() {
                StatusCode::OK => return Ok(decided(read_json(CALL, response).await?)),
                StatusCode::ACCEPTED => continue,
                status => return Err(unexpected(CALL, status, response).await),
            }
        }
        Ok(LoginAnswer::Refused(Outcome::StillDeciding))
    }

    /// `POST /v1/challenges/{challenge_id}/verify`.
    pub async fn verify(
        &self,
        challenge_id: Uuid,
        code: &TypedCode,
    ) -> Result<VerifyAnswer, ApiError> {
        const CALL: &str = "POST /v1/challenges/{challenge_id}/verify";
        let response = self
            .http
            .post(Self::url(
                &self.verifier,
                &format!("/v1/challenges/{challenge_id}/verify"),
            ))
            .bearer_auth(self.api_key.expose_secret())
            .json(&json!({ "code": code.as_str() }))
            .send()
            .await
            .map_err(|source| ApiError::Transport { call: CALL, source })?;
        let status = response.status();
        let retry_after = retry_after(&response);
        if status == StatusCode::OK {
            let verified: Verified = read_json(CALL, response).await?;
            return Ok(VerifyAnswer::Approved {
                attempt_id: verified.attempt_id,
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Ok(VerifyAnswer::Refused(Outcome::RateLimited {
                seconds: retry_after,
            }));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return Ok(VerifyAnswer::Refused(Outcome::Unavailable));
        }
        let error = read_error(response).await;
        let outcome = match (status, error.error.as_str()) {
            (StatusCode::UNAUTHORIZED, "invalid_code") => Outcome::IncorrectCode {
                tries_left: error.attempts_remaining.unwrap_or(0),
            },
            (StatusCode::FORBIDDEN, "too_many_attempts") => Outcome::CodeLocked,
            (StatusCode::NOT_FOUND, "unknown_challenge") => Outcome::ChallengeUnknown,
            (StatusCode::CONFLICT, "already_used") => Outcome::CodeAlreadyUsed,
            (StatusCode::GONE, "expired_code") => Outcome::CodeExpired,
            (StatusCode::GONE, "superseded") => Outcome::CodeSuperseded,
            (StatusCode::GONE, "revoked") => Outcome::CodeRevoked,
            (StatusCode::UNPROCESSABLE_ENTITY, _) => Outcome::CodeNotSixDigits,
            _ => {
                return Err(ApiError::Unexpected {
                    call: CALL,
                    status,
                    code: error.error,
                })
            }
        };
        Ok(VerifyAnswer::Refused(outcome))
    }
}

/// A decided login (`200`) as the page's next step.
fn decided(decision: Decision) -> LoginAnswer {
    match (
        decision.status.as_str(),
        decision.challenge_id,
        decision.expires_at,
    ) {
        ("approved", _, _) => LoginAnswer::Approved {
            attempt_id: decision.attempt_id,
        },
        ("mfa_required", Some(challenge_id), Some(expires_at)) => {
            LoginAnswer::CodeSent(Challenge {
                attempt_id: decision.attempt_id,
                challenge_id,
                expires_at,
                recently_sent: decision.code_recently_sent.unwrap_or(false),
            })
        }
        ("rejected", _, _) => LoginAnswer::Refused(Outcome::from_rejection(
            decision.reason.as_deref().unwrap_or_default(),
            decision.retry_after_secs,
        )),
        ("pending", _, _) => LoginAnswer::Refused(Outcome::StillDeciding),
        _ => LoginAnswer::Refused(Outcome::Unavailable),
    }
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn read_json<T: serde::de::DeserializeOwned>(
    call: &'static str,
    response: reqwest::Response,
) -> Result<T, ApiError> {
    let status = response.status();
    response.json().await.map_err(|_| ApiError::Unexpected {
        call,
        status,
        code: "a body that is not the documented JSON".into(),
    })
}

async fn read_error(response: reqwest::Response) -> ErrorBody {
    response.json().await.unwrap_or_default()
}

async fn unexpected(
    call: &'static str,
    status: StatusCode,
    response: reqwest::Response,
) -> ApiError {
    ApiError::Unexpected {
        call,
        status,
        code: read_error(response).await.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(json: serde_json::Value) -> LoginAnswer {
        decided(serde_json::from_value(json).unwrap())
    }

    const ATTEMPT: &str = "0190f0c4-1111-7000-8000-000000000001";
    const CHALLENGE: &str = "0190f0c4-2222-7000-8000-000000000002";

    #[test]
    fn decisions_read_as_next_steps() {
        assert_eq!(
            decision(
                json!({"attempt_id": ATTEMPT, "status": "approved", "approved_after_mfa": false})
            ),
            LoginAnswer::Approved {
                attempt_id: ATTEMPT.parse().unwrap()
            }
        );
        assert_eq!(
            decision(json!({
                "attempt_id": ATTEMPT, "status": "mfa_required", "challenge_id": CHALLENGE,
                "expires_at": "2026-12-01T12:10:00Z", "code_recently_sent": true,
            })),
            LoginAnswer::CodeSent(Challenge {
                attempt_id: ATTEMPT.parse().unwrap(),
                challenge_id: CHALLENGE.parse().unwrap(),
                expires_at: "2026-12-01T12:10:00Z".parse().unwrap(),
                recently_sent: true,
            })
        );
        assert_eq!(
            decision(json!({
                "attempt_id": ATTEMPT, "status": "rejected", "reason": "too_many_codes",
                "retry_after_secs": 600,
            })),
            LoginAnswer::Refused(Outcome::WaitForNewCode { seconds: 600 })
        );
        assert_eq!(
            decision(
                json!({"attempt_id": ATTEMPT, "status": "rejected", "reason": "invalid_credentials"})
            ),
            LoginAnswer::Refused(Outcome::WrongCredentials)
        );
    }

    #[test]
    fn an_mfa_required_without_its_challenge_is_not_trusted() {
        assert_eq!(
            decision(json!({"attempt_id": ATTEMPT, "status": "mfa_required"})),
            LoginAnswer::Refused(Outcome::Unavailable)
        );
        assert_eq!(
            decision(json!({"attempt_id": ATTEMPT, "status": "something_new"})),
            LoginAnswer::Refused(Outcome::Unavailable)
        );
    }
}
