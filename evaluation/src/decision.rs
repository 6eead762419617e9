//! The replay's answer to one `LoginAttempted`, read as plain JSON so the harness does not
//! depend on the risk worker's Rust types: an envelope whose `event_type` is the decision and
//! whose payload carries `risk: {score, level, reasons, model_version}` (and `challenge_id`
//! when a code is asked for).

use anyhow::{bail, Context, Result};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub event_id: Uuid,
    pub attempt_id: Uuid,
    /// `LoginApproved`, `MfaRequired`, `LoginRejected` (or `CodeThrottled`).
    pub event_type: String,
    pub challenge_id: Option<Uuid>,
    pub score: Option<f64>,
    pub level: Option<String>,
    pub reasons: Vec<String>,
    pub model_version: Option<String>,
}

impl Decision {
    pub fn parse(line: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("decision is not JSON: {}", truncate(line)))?;
        let uuid_field = |name: &str| -> Result<Uuid> {
            value
                .get(name)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .with_context(|| format!("decision has no UUID {name}: {}", truncate(line)))
        };
        let event_type = value
            .get("event_type")
            .and_then(Value::as_str)
            .with_context(|| format!("decision has no event_type: {}", truncate(line)))?
            .to_owned();
        let payload = value.get("payload").cloned().unwrap_or(Value::Null);
        let risk = payload.get("risk").cloned().unwrap_or(Value::Null);
        let reasons = match risk.get("reasons") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|r| {
                    r.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| r.to_string())
                })
                .collect(),
            _ => Vec::new(),
        };
        let challenge_id = payload
            .get("challenge_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        if event_type == "MfaRequired" && challenge_id.is_none() {
            bail!("MfaRequired without a challenge_id: {}", truncate(line));
        }
        Ok(Self {
            event_id: uuid_field("event_id")?,
            attempt_id: uuid_field("attempt_id")?,
            event_type,
            challenge_id,
            score: risk.get("score").and_then(Value::as_f64),
            level: risk.get("level").and_then(Value::as_str).map(str::to_owned),
            reasons,
            model_version: risk
                .get("model_version")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Anything but a direct approval stops a login that cannot pass MFA.
    pub fn approved(&self) -> bool {
        self.event_type == "LoginApproved"
    }
}

fn truncate(line: &str) -> &str {
    match line.char_indices().nth(300) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_mfa_required_with_its_risk() {
        let line = r#"{"event_id":"0190a0b0-0000-7000-8000-000000000001","schema_version":1,"occurred_at":"2025-10-01T08:00:00Z","attempt_id":"0190a0b0-0000-7000-8000-000000000002","causation_id":"0190a0b0-0000-7000-8000-000000000003","producer":"risk-worker","event_type":"MfaRequired","payload":{"user_id":"0190a0b0-0000-7000-8000-000000000004","company_id":"company-001","challenge_id":"0190a0b0-0000-7000-8000-000000000005","expires_at":"2025-10-01T08:10:00Z","reasons":["new_device"],"platform":"dashboard","ip":"203.0.113.9","user_agent":"Mozilla/5.0","risk":{"score":12.5,"level":"medium","reasons":["new_device","new_country"],"model_version":"freeman-1"}}}"#;
        let d = Decision::parse(line).unwrap();
        assert_eq!(d.event_type, "MfaRequired");
        assert!(!d.approved());
        assert_eq!(
            d.challenge_id,
            Some(Uuid::parse_str("0190a0b0-0000-7000-8000-000000000005").unwrap())
        );
        assert_eq!(
            d.attempt_id,
            Uuid::parse_str("0190a0b0-0000-7000-8000-000000000002").unwrap()
        );
        assert_eq!(d.score, Some(12.5));
        assert_eq!(d.level.as_deref(), Some("medium"));
        assert_eq!(d.reasons, ["new_device", "new_country"]);
        assert_eq!(d.model_version.as_deref(), Some("freeman-1"));
    }

    #[test]
    fn reads_an_approval_and_tolerates_missing_risk() {
        let line = r#"{"event_id":"0190a0b0-0000-7000-8000-000000000001","attempt_id":"0190a0b0-0000-7000-8000-000000000002","event_type":"LoginApproved","payload":{"user_id":"0190a0b0-0000-7000-8000-000000000004","approved_after_mfa":false,"challenge_id":null}}"#;
        let d = Decision::parse(line).unwrap();
        assert!(d.approved());
        assert_eq!(d.challenge_id, None);
        assert_eq!(d.score, None);
        assert!(d.reasons.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_decision() {
        assert!(Decision::parse("not json").is_err());
        assert!(Decision::parse(r#"{"event_type":"LoginApproved"}"#).is_err());
        let no_challenge = r#"{"event_id":"0190a0b0-0000-7000-8000-000000000001","attempt_id":"0190a0b0-0000-7000-8000-000000000002","event_type":"MfaRequired","payload":{}}"#;
        assert!(Decision::parse(no_challenge).is_err());
    }
}
