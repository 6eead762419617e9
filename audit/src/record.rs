//! One record of the event log as the broker holds it, and its line in an export file.
//!
//! An export is JSON Lines, one record a line, in the order `mfa-audit` read them (merged by
//! timestamp across partitions):
//!
//! ```text
//! {"topic":"mfa.risk-decisions","partition":1,"offset":17,"timestamp_ms":1764600000000,
//!  "key":"<utf-8 key>","headers":{"mfa-seal":"...","traceparent":"..."},"value":{...}}
//! ```
//!
//! (on one line). The value is embedded verbatim, so the line holds the record's exact bytes,
//! which is what the seals hash. A key that is not UTF-8 goes as `"key_b64"`, a value that is
//! not JSON or would not come back byte for byte from one line (surrounding whitespace, a
//! line break between tokens) as `"value_b64"` (standard base64); no key is `"key":null`. A
//! header without a value is `null`, one whose value is not UTF-8 `{"b64":"..."}`. A record
//! without a value (a Kafka tombstone) reads as an empty value: the event log has none.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One Kafka record header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub name: String,
    /// `None` for a header sent without a value.
    pub value: Option<Vec<u8>>,
}

/// One record of the log: where it is, and its exact bytes.
///
/// Sources fill a record in place ([`crate::source::RecordSource::next_into`]), so reading a
/// log reuses one record's buffers instead of allocating per record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp (the producer's create time), milliseconds since the
    /// epoch; -1 when the broker gave none.
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    /// In the order the broker returned them.
    pub headers: Vec<Header>,
    pub value: Vec<u8>,
}

impl LogRecord {
    /// The value of the first header called `name`, if it has one.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|header| header.name == name)
            .and_then(|header| header.value.as_deref())
    }

    /// How many headers are called `name` (a record with two seals is suspect).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|header| header.name == name)
            .count()
    }

    /// The key's bytes; a record without a key hashes as an empty one.
    pub fn key_bytes(&self) -> &[u8] {
        self.key.as_deref().unwrap_or_default()
    }

    /// Where the record is, for messages: `topic/partition@offset`.
    pub fn location(&self) -> Location {
        Location {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }

    /// Sets the key, reusing the buffer already held.
    pub fn set_key(&mut self, key: Option<&[u8]>) {
        match (key, &mut self.key) {
            (None, _) => self.key = None,
            (Some(bytes), Some(held)) => {
                held.clear();
                held.extend_from_slice(bytes);
            }
            (Some(bytes), None) => self.key = Some(bytes.to_vec()),
        }
    }

    /// Replaces the headers, reusing the buffers of the ones already held.
    pub fn set_headers<'h>(
        &mut self,
        headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    ) {
        let mut count = 0;
        for (name, value) in headers {
            self.set_header_at(count, name, value);
            count += 1;
        }
        self.headers.truncate(count);
    }

    /// Sets the header at `index` (at most one past the last), reusing its buffers.
    fn set_header_at(&mut self, index: usize, name: &str, value: Option<&[u8]>) {
        if index >= self.headers.len() {
            self.headers.push(Header::default());
        }
        let header = &mut self.headers[index];
        header.name.clear();
        header.name.push_str(name);
        match (value, &mut header.value) {
            (None, held) => *held = None,
            (Some(bytes), Some(held)) => {
                held.clear();
                held.extend_from_slice(bytes);
            }
            (Some(bytes), held) => *held = Some(bytes.to_vec()),
        }
    }

    /// Appends this record's export line (with its `\n`) to `out`.
    pub fn encode_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"topic\":");
        write_json_str(out, &self.topic);
        out.extend_from_slice(b",\"partition\":");
        out.extend_from_slice(self.partition.to_string().as_bytes());
        out.extend_from_slice(b",\"offset\":");
        out.extend_from_slice(self.offset.to_string().as_bytes());
        out.extend_from_slice(b",\"timestamp_ms\":");
        out.extend_from_slice(self.timestamp_ms.to_string().as_bytes());
        match self.key.as_deref().map(std::str::from_utf8) {
            None => out.extend_from_slice(b",\"key\":null"),
            Some(Ok(key)) => {
                out.extend_from_slice(b",\"key\":");
                write_json_str(out, key);
            }
            Some(Err(_)) => {
                out.extend_from_slice(b",\"key_b64\":");
                write_json_str(out, &BASE64.encode(self.key_bytes()));
            }
        }
        out.extend_from_slice(b",\"headers\":{");
        for (index, header) in self.headers.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_json_str(out, &header.name);
            out.push(b':');
            match header.value.as_deref().map(std::str::from_utf8) {
                None => out.extend_from_slice(b"null"),
                Some(Ok(value)) => write_json_str(out, value),
                Some(Err(_)) => {
                    out.extend_from_slice(b"{\"b64\":");
                    write_json_str(
                        out,
                        &BASE64.encode(header.value.as_deref().unwrap_or_default()),
                    );
                    out.push(b'}');
                }
            }
        }
        out.push(b'}');
        if embeds_verbatim(&self.value) {
            out.extend_from_slice(b",\"value\":");
            out.extend_from_slice(&self.value);
        } else {
            out.extend_from_slice(b",\"value_b64\":");
            write_json_str(out, &BASE64.encode(&self.value));
        }
        out.extend_from_slice(b"}\n");
    }

    /// Reads one export line (without its line break) into `self`, reusing its buffers.
    /// On an error `self` holds whatever was read so far: read the next line into it.
    pub fn decode_line(&mut self, line: &[u8]) -> Result<(), LineError> {
        // Checked once here, the line's strings need no check of their own while parsed.
        let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
        let parsed: Line<'_> = serde_json::from_str(text).map_err(LineError::Json)?;
        self.topic.clear();
        self.topic.push_str(&parsed.topic.0);
        self.partition = parsed.partition;
        self.offset = parsed.offset;
        self.timestamp_ms = parsed.timestamp_ms;
        match (parsed.key, parsed.key_b64) {
            (Some(_), Some(_)) => return Err(LineError::Both("key")),
            (Some(key), None) => self.set_key(key.as_ref().map(|Text(key)| key.as_bytes())),
            (None, Some(Text(encoded))) => {
                let bytes = BASE64
                    .decode(encoded.as_bytes())
                    .map_err(|_| LineError::Base64("key_b64"))?;
                self.set_key(Some(&bytes));
            }
            (None, None) => return Err(LineError::Missing("key")),
        }
        let mut count = 0;
        for (Text(name), value) in parsed.headers.0 {
            let decoded;
            let value = match &value {
                HeaderValue::Absent => None,
                HeaderValue::Text(text) => Some(text.as_bytes()),
                HeaderValue::Base64(encoded) => {
                    decoded = BASE64
                        .decode(encoded.as_bytes())
                        .map_err(|_| LineError::Base64("headers"))?;
                    Some(decoded.as_slice())
                }
            };
            self.set_header_at(count, &name, value);
            count += 1;
        }
        self.headers.truncate(count);
        self.value.clear();
        match (parsed.value, parsed.value_b64) {
            (Some(_), Some(_)) => return Err(LineError::Both("value")),
            (Some(raw), None) => self.value.extend_from_slice(raw.get().as_bytes()),
            (None, Some(Text(encoded))) => {
                let bytes = BASE64
                    .decode(encoded.as_bytes())
                    .map_err(|_| LineError::Base64("value_b64"))?;
                self.value.extend_from_slice(&bytes);
            }
            (None, None) => return Err(LineError::Missing("value")),
        }
        Ok(())
    }
}

/// Why an export line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not an export record: {0}")]
    Json(#[source] serde_json::Error),
    #[error("not UTF-8: an export line is JSON")]
    NotUtf8,
    #[error("both {0:?} and \"{0}_b64\" are given")]
    Both(&'static str),
    #[error("neither {0:?} nor \"{0}_b64\" is given")]
    Missing(&'static str),
    #[error("{0:?} is not standard base64")]
    Base64(&'static str),
}

/// Where a record is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// Whether `value` can go into a line as raw JSON and come back as the same bytes: valid
/// UTF-8 JSON, no line break anywhere (between tokens it would end the line), nothing
/// around the value (the reader hands back the value alone).
fn embeds_verbatim(value: &[u8]) -> bool {
    let (Some(first), Some(last)) = (value.first(), value.last()) else {
        return false;
    };
    let is_space = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    !is_space(first)
        && !is_space(last)
        && !value.iter().any(|byte| matches!(byte, b'\n' | b'\r'))
        && std::str::from_utf8(value).is_ok()
        && serde_json::from_slice::<&RawValue>(value).is_ok()
}

#[expect(
    clippy::expect_used,
    reason = "serialising a str into a Vec cannot fail: no IO, no map keys"
)]
fn write_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("a string always serialises");
}

/// A JSON string borrowed from the line unless it holds escapes. (serde's own `Cow<str>`
/// always copies when nested in an `Option` or read as a map key.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// An export line as read, borrowing from the line where it can.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    topic: Text<'a>,
    partition: i32,
    offset: i64,
    timestamp_ms: i64,
    /// `Some(None)` for `"key":null`, `None` when the field is absent.
    #[serde(default, borrow, deserialize_with = "present")]
    key: Option<Option<Text<'a>>>,
    #[serde(default, borrow)]
    key_b64: Option<Text<'a>>,
    #[serde(default, borrow)]
    headers: LineHeaders<'a>,
    /// Raw JSON, `null` included: a value that is the JSON `null` is a value.
    #[serde(default, borrow, deserialize_with = "raw")]
    value: Option<&'a RawValue>,
    #[serde(default, borrow)]
    value_b64: Option<Text<'a>>,
}

fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

fn raw<'de, D>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: Deserializer<'de>,
{
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// The headers object, in its order, repeated names kept.
#[derive(Default)]
struct LineHeaders<'a>(Vec<(Text<'a>, HeaderValue<'a>)>);

enum HeaderValue<'a> {
    Absent,
    Text(Cow<'a, str>),
    Base64(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for LineHeaders<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for HeadersVisitor<'a> {
            type Value = LineHeaders<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header names to values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut headers = Vec::with_capacity(map.size_hint().unwrap_or(2));
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    let value = map.next_value::<HeaderValue<'de>>()?;
                    headers.push((name, value));
                }
                Ok(LineHeaders(headers))
            }
        }
        deserializer.deserialize_map(HeadersVisitor(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for HeaderValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
            type Value = HeaderValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value: a string, null or {\"b64\": \"...\"}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(HeaderValue::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(HeaderValue::Absent)
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(HeaderValue::Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(HeaderValue::Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(HeaderValue::Text(Cow::Owned(text)))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut encoded = None;
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    if name != "b64" || encoded.is_some() {
                        return Err(de::Error::custom(
                            "a header object holds exactly one \"b64\"",
                        ));
                    }
                    encoded = Some(map.next_value::<Text<'de>>()?.0);
                }
                encoded
                    .map(HeaderValue::Base64)
                    .ok_or_else(|| de::Error::custom("a header object holds exactly one \"b64\""))
            }
        }
        deserializer.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&[u8]>, value: &[u8]) -> LogRecord {
        let mut record = LogRecord {
            topic: "mfa.risk-decisions".into(),
            partition: 1,
            offset: 17,
            timestamp_ms: 1_764_600_000_000,
            key: None,
            headers: Vec::new(),
            value: value.to_vec(),
        };
        record.set_key(key);
        record.set_headers([
            (
                "mfa-seal",
                Some(&b"0190b8a4-0000-7000-8000-000000000000:3"[..]),
            ),
            ("traceparent", Some(&b"00-abc-def-01"[..])),
        ]);
        record
    }

    fn round_trip(original: &LogRecord) -> (String, LogRecord) {
        let mut line = Vec::new();
        original.encode_line(&mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|byte| **byte == b'\n').count(), 1);
        let mut read = LogRecord::default();
        read.decode_line(&line[..line.len() - 1]).unwrap();
        (String::from_utf8(line).unwrap(), read)
    }

    #[test]
    fn a_json_value_is_embedded_verbatim_and_reads_back_byte_for_byte() {
        // Unusual but valid JSON: spacing, escapes, a long number, key order.
        let value = br#"{"b": 1.50000000000000000001, "a":"\u00e9\n\"x\"" ,"c":[ ]}"#;
        let original = record(Some(b"user-1"), value);
        let (line, read) = round_trip(&original);
        assert!(
            line.contains(r#""value":{"b": 1.50000000000000000001"#),
            "{line}"
        );
        assert!(line.contains(r#""key":"user-1""#), "{line}");
        assert!(
            line.contains(r#""headers":{"mfa-seal":"0190b8a4"#),
            "{line}"
        );
        assert_eq!(read, original);
    }

    #[test]
    fn values_that_would_not_round_trip_go_as_base64() {
        for value in [
            &b"not json"[..],
            b" {\"a\":1}",
            b"{\"a\":1}\n",
            b"{\"a\":\n1}",
            b"",
            b"\xff\xfe",
            b"{\"a\":\"\xff\"}",
        ] {
            let original = record(None, value);
            let (line, read) = round_trip(&original);
            assert!(line.contains("\"value_b64\":"), "{line}");
            assert!(line.contains("\"key\":null"), "{line}");
            assert_eq!(read, original);
        }
    }

    #[test]
    fn the_json_null_value_is_a_value() {
        let original = record(Some(b"k"), b"null");
        let (line, read) = round_trip(&original);
        assert!(line.contains("\"value\":null"), "{line}");
        assert_eq!(read.value, b"null");
    }

    #[test]
    fn binary_keys_and_headers_and_repeated_headers_survive() {
        let mut original = record(Some(b"\x00\xffkey"), b"{}");
        original.set_headers([
            ("mfa-seal", Some(&b"a"[..])),
            ("mfa-seal", Some(&b"b"[..])),
            ("empty", None),
            ("binary", Some(&b"\xc3\x28"[..])),
        ]);
        let (line, read) = round_trip(&original);
        assert!(line.contains("\"key_b64\":"), "{line}");
        assert!(line.contains(r#""empty":null"#), "{line}");
        assert!(line.contains(r#""binary":{"b64":"#), "{line}");
        assert_eq!(read, original);
        assert_eq!(read.header_count("mfa-seal"), 2);
        assert_eq!(read.header("mfa-seal"), Some(&b"a"[..]));
    }

    #[test]
    fn decoding_reuses_a_record_and_clears_what_the_line_lacks() {
        let mut held = record(Some(b"k"), b"{\"x\":1}");
        let mut line = Vec::new();
        let mut plain = record(None, b"[1]");
        plain.headers.clear();
        plain.encode_line(&mut line);
        held.decode_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(held, plain);
    }

    #[test]
    fn malformed_lines_are_errors_that_say_why() {
        let mut read = LogRecord::default();
        let cases: [(&str, &str); 6] = [
            ("{not json", "not an export record"),
            (
                r#"{"topic":"t","partition":0,"offset":1,"timestamp_ms":2,"key":null}"#,
                "neither \"value\"",
            ),
            (
                r#"{"topic":"t","partition":0,"offset":1,"timestamp_ms":2,"value":1}"#,
                "neither \"key\"",
            ),
            (
                r#"{"topic":"t","partition":0,"offset":1,"timestamp_ms":2,"key":null,"value":1,"value_b64":"AA=="}"#,
                "both",
            ),
            (
                r#"{"topic":"t","partition":0,"offset":1,"timestamp_ms":2,"key":null,"value_b64":"%%"}"#,
                "base64",
            ),
            (
                r#"{"topic":"t","partition":0,"offset":1,"timestamp_ms":2,"key":null,"value":1,"extra":1}"#,
                "unknown field",
            ),
        ];
        for (line, expected) in cases {
            let error = read.decode_line(line.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
