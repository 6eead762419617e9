//! SSO and Google logins that trusted client backends publish straight to Kafka
//! (`<namespace>.login-requests`). Each request is parsed as strictly as an HTTP body; the
//! account and its `privileged` flag are looked up here, never taken from the message. The
//! decision appears on the risk-decisions topic with `attempt_id` = the request's
//! `request_id`. A malformed request goes to the dead-letter topic with the reason.

use async_trait::async_trait;
use mfa_bus::{HandlerError, IncomingMessage, MessageHandler};
use mfa_store::data_keys::DataKeyError;
use shared::domain::{AttemptId, AuthMethod, CompanyId, Email, Locale, Platform};
use uuid::Uuid;

use crate::intake::{FirstFactor, Intake, IntakeError, NewLogin};
use crate::logins::LoginContext;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequestMessage {
    /// Chosen by the client backend (a UUID); becomes the attempt id, so a redelivered
    /// request is the same attempt.
    pub request_id: Uuid,
    pub email: Email,
    pub company_id: CompanyId,
    /// `sso` or `google`: passwords never travel over Kafka.
    pub auth_method: AuthMethod,
    pub platform: Platform,
    pub context: LoginContext,
    /// The language of the code email (`en` or `fr`); English when absent.
    #[serde(default)]
    pub locale: Option<Locale>,
}

/// A request that passed the boundary.
pub struct ParsedLoginRequest {
    pub attempt_id: AttemptId,
    pub company: CompanyId,
    pub login: NewLogin,
}

impl LoginRequestMessage {
    pub fn parse(payload: &[u8]) -> Result<ParsedLoginRequest, String> {
        let request: LoginRequestMessage =
            serde_json::from_slice(payload).map_err(|e| format!("invalid login request: {e}"))?;
        if !request.auth_method.is_federated() {
            return Err("invalid login request: auth_method must be sso or google".into());
        }
        Ok(ParsedLoginRequest {
            attempt_id: AttemptId::from_uuid(request.request_id),
            company: request.company_id,
            login: NewLogin {
                email: request.email,
                first_factor: FirstFactor::Federated(request.auth_method),
                platform: request.platform,
                ip: request.context.ip,
                user_agent: request.context.user_agent,
                device_id: request.context.device_id,
                locale: request.locale.unwrap_or_default(),
            },
        })
    }
}

pub struct LoginRequestHandler {
    pub intake: Intake,
}

#[async_trait]
impl MessageHandler for LoginRequestHandler {
    async fn handle(&self, message: IncomingMessage<'_>) -> Result<(), HandlerError> {
        let request = LoginRequestMessage::parse(message.payload).map_err(HandlerError::Reject)?;
        // The consumer's span declares the field: its log lines and its trace (which the
        // `LoginAttempted` carries on) name the login.
        tracing::Span::current().record("attempt_id", tracing::field::display(request.attempt_id));
        // A redelivered request records and announces nothing new: the attempt and its
        // event were committed together the first time.
        self.intake
            .submit(request.attempt_id, &request.company, request.login)
            .await
            .map_err(|error| match error {
                IntakeError::Overloaded => HandlerError::Retry("password pool full".into()),
                IntakeError::Database(e) => e.into(),
                // A key that will never be sealed under again (a month past retention, a
                // subject erased as a whole) is no outage: retrying would stall the partition
                // behind this request for good.
                IntakeError::DataKeys(
                    e @ (DataKeyError::ErasedForSealing(_) | DataKeyError::SubjectErased(_)),
                ) => HandlerError::Reject(mfa_runtime::supervise::error_chain(&e)),
                IntakeError::DataKeys(e) => HandlerError::Retry(Box::new(e)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_federated_request_strictly() {
        let ok = br#"{"request_id":"0192f0c4-1111-7000-8000-000000000001","email":"A@Example.com","company_id":"acme","auth_method":"sso","platform":"ios","context":{"ip":"198.51.100.4","user_agent":"AcmeApp/3.1 iOS/17.2"}}"#;
        let parsed = LoginRequestMessage::parse(ok).unwrap();
        assert_eq!(
            parsed.attempt_id.to_string(),
            "0192f0c4-1111-7000-8000-000000000001"
        );
        assert_eq!(parsed.company.as_str(), "acme");
        assert_eq!(parsed.login.email.as_str(), "a@example.com");

        let password = br#"{"request_id":"0192f0c4-1111-7000-8000-000000000001","email":"a@example.com","company_id":"acme","auth_method":"password","platform":"ios","context":{"ip":"198.51.100.4","user_agent":"x"}}"#;
        assert!(LoginRequestMessage::parse(password).is_err());
        let extra = br#"{"request_id":"0192f0c4-1111-7000-8000-000000000001","email":"a@example.com","company_id":"acme","auth_method":"sso","platform":"ios","context":{"ip":"198.51.100.4","user_agent":"x"},"privileged":true}"#;
        assert!(LoginRequestMessage::parse(extra)
            .err()
            .unwrap()
            .contains("unknown field"));
        assert!(LoginRequestMessage::parse(b"not json").is_err());
    }
}
