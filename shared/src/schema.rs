//! JSON Schemas of the events, generated from the Rust types. `schemas/` holds them for
//! readers in other languages; a test fails when a committed file and its type drift apart.
//! Regenerate with `cargo run -p shared --bin generate-schemas`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use uuid::Uuid;

use crate::domain::AttemptId;
use crate::events::*;

/// The file in `schemas/` that holds the schema of `event_type`.
pub fn file_name(event_type: EventType) -> String {
    format!("{}.schema.json", event_type.name())
}

/// Every event type's schema, rendered as committed: pretty JSON ending in a newline.
#[expect(
    clippy::expect_used,
    reason = "a schema is a JSON value already: printing it cannot fail"
)]
pub fn render_all() -> Vec<(String, String)> {
    let render = |schema: serde_json::Value| {
        let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
        text.push('\n');
        text
    };
    let mut files: Vec<(String, String)> = EventType::ALL
        .iter()
        .map(|&event_type| (file_name(event_type), render(json_schema(event_type))))
        .collect();
    for (name, schema) in audit_schemas() {
        files.push((name.to_owned(), render(schema)));
    }
    files
}

/// The audit records that are not events: the checkpoints on their topic, and the key file
/// an auditor is given.
#[expect(
    clippy::expect_used,
    reason = "schemars' root schema is plain data with string keys"
)]
fn audit_schemas() -> [(&'static str, serde_json::Value); 2] {
    use schemars::gen::SchemaSettings;
    fn schema_of<T: JsonSchema>(title: &str) -> serde_json::Value {
        let generator = SchemaSettings::draft07().into_generator();
        let mut value =
            serde_json::to_value(generator.into_root_schema_for::<T>()).expect("schemas serialise");
        value["title"] = title.into();
        value
    }
    [
        (
            "AuditCheckpoint.schema.json",
            schema_of::<crate::audit::Checkpoint>("AuditCheckpoint"),
        ),
        (
            "AuditKeyFile.schema.json",
            schema_of::<crate::audit::KeyFile>("AuditKeyFile"),
        ),
    ]
}

/// The JSON Schema of one event type: the envelope with that type's payload.
pub fn json_schema(event_type: EventType) -> serde_json::Value {
    use schemars::gen::SchemaSettings;

    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct EnvelopeOf<P> {
        event_id: Uuid,
        event_type: String,
        schema_version: u32,
        occurred_at: DateTime<Utc>,
        attempt_id: AttemptId,
        causation_id: Option<Uuid>,
        producer: String,
        payload: P,
    }

    #[expect(
        clippy::expect_used,
        reason = "schemars' root schema is plain data with string keys"
    )]
    fn schema_of<P: JsonSchema>(event_type: EventType) -> serde_json::Value {
        let generator = SchemaSettings::draft07().into_generator();
        let schema = generator.into_root_schema_for::<EnvelopeOf<P>>();
        let mut value = serde_json::to_value(schema).expect("schemas serialise");
        value["title"] = event_type.name().into();
        value["properties"]["event_type"] = serde_json::json!({ "const": event_type.name() });
        value["properties"]["schema_version"]["minimum"] = 1.into();
        value["properties"]["event_id"]["format"] = "uuid".into();
        value
    }

    match event_type {
        EventType::LoginAttempted => schema_of::<LoginAttempted>(event_type),
        EventType::LoginApproved => schema_of::<LoginApproved>(event_type),
        EventType::MfaRequired => schema_of::<MfaRequired>(event_type),
        EventType::LoginRejected => schema_of::<LoginRejected>(event_type),
        EventType::CodeThrottled => schema_of::<CodeThrottled>(event_type),
        EventType::CodeSent => schema_of::<CodeSent>(event_type),
        EventType::CodeDeliveryFailed => schema_of::<CodeDeliveryFailed>(event_type),
        EventType::MfaSucceeded => schema_of::<MfaSucceeded>(event_type),
        EventType::MfaFailed => schema_of::<MfaFailed>(event_type),
        EventType::AccountChanged => schema_of::<AccountChanged>(event_type),
        EventType::RiskPolicyChanged => schema_of::<RiskPolicyChanged>(event_type),
        EventType::LoginFeedback => schema_of::<LoginFeedback>(event_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a type changed and `schemas/` was not regenerated (or the other way round).
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        for (name, expected) in render_all() {
            let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
            assert!(
                committed == expected,
                "schemas/{name} is out of date: run `cargo run -p shared --bin generate-schemas`"
            );
        }
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            files,
            render_all().len(),
            "schemas/ holds a file for a type that no longer exists"
        );
    }
}
