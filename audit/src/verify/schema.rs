//! Reading an event as `shared::events::Envelope::from_json` does, faster: the envelope's
//! fields and the raw payload first, then the payload as its type's struct. The contract's
//! `Envelope` flattens its adjacently tagged `Event`, which serde reads by buffering every
//! field into a generic tree first; that costs more than the rest of the verification of an
//! event. The result is the same `Envelope`; anything that does not read this way is handed
//! to `Envelope::from_json` itself, so errors are the contract's own.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use shared::domain::AttemptId;
use shared::events::{DecodeError, Envelope, Event, EventType};
use uuid::Uuid;

#[derive(Deserialize)]
struct Parts<'a> {
    event_id: Uuid,
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    attempt_id: AttemptId,
    causation_id: Option<Uuid>,
    producer: String,
    #[serde(borrow)]
    event_type: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// `Envelope::from_json(bytes)`, the same result.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Envelope::from_json(bytes);
    };
    let Ok(parts) = serde_json::from_str::<Parts<'_>>(text) else {
        return Envelope::from_json(bytes);
    };
    let Some(event_type) = EventType::from_name(parts.event_type) else {
        return Err(DecodeError::UnknownType(parts.event_type.to_owned()));
    };
    let payload = parts.payload.get();
    let event = match event_type {
        EventType::LoginAttempted => serde_json::from_str(payload).map(Event::LoginAttempted),
        EventType::LoginApproved => serde_json::from_str(payload).map(Event::LoginApproved),
        EventType::MfaRequired => serde_json::from_str(payload).map(Event::MfaRequired),
        EventType::LoginRejected => serde_json::from_str(payload).map(Event::LoginRejected),
        EventType::CodeThrottled => serde_json::from_str(payload).map(Event::CodeThrottled),
        EventType::CodeSent => serde_json::from_str(payload).map(Event::CodeSent),
        EventType::CodeDeliveryFailed => {
            serde_json::from_str(payload).map(Event::CodeDeliveryFailed)
        }
        EventType::MfaSucceeded => serde_json::from_str(payload).map(Event::MfaSucceeded),
        EventType::MfaFailed => serde_json::from_str(payload).map(Event::MfaFailed),
        EventType::AccountChanged => serde_json::from_str(payload).map(Event::AccountChanged),
        EventType::RiskPolicyChanged => serde_json::from_str(payload).map(Event::RiskPolicyChanged),
        EventType::LoginFeedback => serde_json::from_str(payload).map(Event::LoginFeedback),
    };
    match event {
        Ok(event) => Ok(Envelope {
            event_id: parts.event_id,
            schema_version: parts.schema_version,
            occurred_at: parts.occurred_at,
            attempt_id: parts.attempt_id,
            causation_id: parts.causation_id,
            producer: parts.producer,
            event,
        }),
        Err(_) => Envelope::from_json(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Synth, SynthConfig, SynthKeys};

    #[test]
    fn reads_every_generated_event_as_the_contract_does() {
        let records = Synth::new(SynthConfig::new(3_000), &SynthKeys::generate()).collect();
        let mut types = std::collections::HashSet::new();
        for record in records.iter().filter(|r| !r.topic.ends_with("checkpoints")) {
            let ours = decode(&record.value).unwrap();
            assert_eq!(ours, Envelope::from_json(&record.value).unwrap());
            types.insert(ours.event_type());
        }
        assert_eq!(types.len(), EventType::ALL.len());
    }

    #[test]
    fn errors_are_the_contracts_own() {
        let good = Synth::new(SynthConfig::new(10), &SynthKeys::generate()).collect();
        let mut json: serde_json::Value = serde_json::from_slice(&good[0].value).unwrap();
        let cases = {
            let mut unknown = json.clone();
            unknown["event_type"] = "Novel".into();
            let mut bad_payload = json.clone();
            bad_payload["payload"] = serde_json::json!({"user_id": 3});
            json.as_object_mut().unwrap().remove("payload");
            [
                unknown.to_string().into_bytes(),
                bad_payload.to_string().into_bytes(),
                json.to_string().into_bytes(),
                b"{not json".to_vec(),
                b"\xff".to_vec(),
            ]
        };
        for bytes in cases {
            assert_eq!(decode(&bytes), Envelope::from_json(&bytes));
            assert!(decode(&bytes).is_err());
        }
    }
}
