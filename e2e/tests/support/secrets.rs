//! Looking for one-time codes in text that also holds ids and timestamps.

use serde_json::Value;

/// Every maximal run of digits in the JSON value's strings and numbers, except in timestamp
/// fields (`*_at`, `timestamp`), where any 6 digits may appear by chance. A code counts as
/// leaked when it is one of these runs: a UUID or another number that merely contains the
/// same digits inside a longer run does not.
pub fn digit_runs(value: &Value) -> Vec<String> {
    fn walk(value: &Value, key: &str, runs: &mut Vec<String>) {
        match value {
            Value::String(s) if !(key.ends_with("_at") || key == "timestamp") => runs.extend(
                s.split(|c: char| !c.is_ascii_digit())
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
            ),
            Value::Number(n) => runs.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, key, runs)),
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, k, runs)),
            _ => {}
        }
    }
    let mut runs = Vec::new();
    walk(value, "", &mut runs);
    runs
}
