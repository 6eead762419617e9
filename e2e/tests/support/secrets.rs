//! Looking for one-time codes in text that also holds ids and timestamps.

use serde_json::Value;

/// Every number in the JSON value's strings (each word of letters and digits made of digits
/// only) and its numbers, except in timestamp fields (`*_at`, `timestamp`), where any 6
/// digits may appear by chance. A code counts as leaked when it is one of these: a UUID, a
/// hex pointer or another number that merely contains the same digits does not.
pub fn digit_runs(value: &Value) -> Vec<String> {
    fn walk(value: &Value, key: &str, runs: &mut Vec<String>) {
        match value {
            Value::String(s) if !(key.ends_with("_at") || key == "timestamp") => runs.extend(
                // Words of letters and digits, the all-digit ones: a code inside a hex word
                // (a pointer in a trace line, `0x7fd248087cb0`) is no code.
                s.split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()))
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
