//! Personal data in events, sealed under its subject's own data key (crypto-shredding).
//!
//! The event log is kept for years and copied to auditors, so an address, a user agent or a
//! device id is never written to it in the clear: each event's personal fields are one
//! XChaCha20-Poly1305 ciphertext under a data key of their subject (the user, or, for a
//! login with an unknown email, that email's keyed hash) and the calendar month (UTC) of the
//! event. The keys live in PostgreSQL, themselves wrapped under a master key
//! (`mfa_store::data_keys`). Destroying a user's keys, or a month's once it is older than the
//! retention period, erases those fields in every copy of the log without rewriting it: the
//! events still parse, verify and count, and their personal fields read as erased.
//!
//! This module is pure: it seals and opens with a key it is given. Finding the key is the
//! caller's IO.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Datelike, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{AttemptId, UserId};

pub const DATA_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Whose personal data a key protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    User(UserId),
    /// Logins with an email no account has, in one of 256 groups: the first byte of
    /// HMAC-SHA256 of the normalised email under the deployment's pseudonym key. Their keys
    /// are erased by retention only (there is no account to delete).
    ///
    /// Groups, not a subject an email: a fresh key for every unknown email (an INSERT and a
    /// commit on the login's path) made such a login measurably slower than a known
    /// account's wrong password, whose key is cached (5% at the median, the security suite's
    /// timing test): an oracle for which emails have accounts. A group's key is made once a
    /// month and then cached as a user's is.
    UnknownAccounts(u8),
}

impl Subject {
    /// The subject of logins with an unknown `email` (already normalised).
    pub fn unknown_account(pseudonyms: &PseudonymKey, email: &str) -> Self {
        let digest = pseudonyms.digest(b"unknown-account", email.as_bytes());
        Subject::UnknownAccounts(digest[0])
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(user) => write!(f, "user:{user}"),
            Subject::UnknownAccounts(group) => write!(f, "unknown:{group:02x}"),
        }
    }
}

impl FromStr for Subject {
    type Err = PersonalDataError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PersonalDataError::KeyId(text.to_owned());
        match text.split_once(':').ok_or_else(bad)? {
            ("user", id) => UserId::parse(id).map(Subject::User).map_err(|_| bad()),
            ("unknown", group) => {
                let bytes = hex::decode(group).map_err(|_| bad())?;
                let [group]: [u8; 1] = bytes.try_into().map_err(|_| bad())?;
                Ok(Subject::UnknownAccounts(group))
            }
            _ => Err(bad()),
        }
    }
}

/// A calendar month, UTC: the period of a data key. Retention destroys whole months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPeriod {
    year: i32,
    month: u32,
}

impl KeyPeriod {
    pub fn of(at: DateTime<Utc>) -> Self {
        Self {
            year: at.year(),
            month: at.month(),
        }
    }

    /// The first instant after the month: from then on its keys protect no new data.
    pub fn end(&self) -> DateTime<Utc> {
        let (year, month) = if self.month == 12 {
            (self.year.saturating_add(1), 1)
        } else {
            (self.year, self.month + 1)
        };
        chrono::NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
    }
}

impl fmt::Display for KeyPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for KeyPeriod {
    type Err = PersonalDataError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PersonalDataError::KeyId(text.to_owned());
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        let (year, month): (i32, u32) = (
            year.parse().map_err(|_| bad())?,
            month.parse().map_err(|_| bad())?,
        );
        if year.to_string().len() != 4 || !(1..=12).contains(&month) || text.len() != 7 {
            return Err(bad());
        }
        Ok(Self { year, month })
    }
}

/// A data key's name: its subject and month, e.g. `user:0190…/2026-12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DataKeyId {
    pub subject: Subject,
    pub period: KeyPeriod,
}

impl DataKeyId {
    pub fn new(subject: Subject, at: DateTime<Utc>) -> Self {
        Self {
            subject,
            period: KeyPeriod::of(at),
        }
    }
}

impl JsonSchema for DataKeyId {
    fn schema_name() -> String {
        "DataKeyId".into()
    }

    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some(
                    r"^(user:[0-9a-f-]{36}|unknown:[0-9a-f]{2})/[0-9]{4}-[0-9]{2}$".into(),
                ),
                ..Default::default()
            })),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some(
                    "The data key that sealed the fields: its subject and month (UTC).".into(),
                ),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

impl fmt::Display for DataKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.subject, self.period)
    }
}

impl FromStr for DataKeyId {
    type Err = PersonalDataError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (subject, period) = text
            .rsplit_once('/')
            .ok_or_else(|| PersonalDataError::KeyId(text.to_owned()))?;
        Ok(Self {
            subject: subject.parse()?,
            period: period.parse()?,
        })
    }
}

impl TryFrom<String> for DataKeyId {
    type Error = PersonalDataError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<DataKeyId> for String {
    fn from(id: DataKeyId) -> Self {
        id.to_string()
    }
}

/// A subject's data key for one month. Never serialised, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl DataKey {
    pub fn generate() -> Self {
        let mut key = [0u8; DATA_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }

    /// Encrypts `plaintext` under this key with a random nonce: `nonce || ciphertext+tag`.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        #[expect(
            clippy::expect_used,
            reason = "XChaCha20-Poly1305 fails only on a message over 256 GiB"
        )]
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("a few hundred bytes always encrypt");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The inverse of [`DataKey::encrypt`]; `None` when the bytes or the `aad` were altered,
    /// or another key sealed them.
    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .ok()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// The master keys that wrap the data keys where they are stored (`MFA_MASTER_KEYS`:
/// `<id>:<base64 of 32 bytes>`, comma-separated). The first wraps new keys; the others still
/// unwrap keys wrapped under them until these are re-wrapped (rotation).
#[derive(Clone)]
pub struct MasterKeys {
    /// The key that wraps new data keys.
    current: (String, DataKey),
    /// All of them, the current one first.
    keys: Vec<(String, DataKey)>,
}

impl MasterKeys {
    pub fn parse(text: &str) -> Result<Self, PersonalDataError> {
        let mut keys: Vec<(String, DataKey)> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').ok_or(PersonalDataError::MasterKeys(
                "an entry is not <id>:<base64 key>",
            ))?;
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(PersonalDataError::MasterKeys(
                    "a key id is letters, digits, '-', '_' or '.'",
                ));
            }
            let bytes: [u8; DATA_KEY_LEN] =
                B64.decode(key).ok().and_then(|b| b.try_into().ok()).ok_or(
                    PersonalDataError::MasterKeys("a key is 32 bytes in standard base64"),
                )?;
            if keys.iter().any(|(known, _)| known == id) {
                return Err(PersonalDataError::MasterKeys("a key id appears twice"));
            }
            keys.push((id.to_owned(), DataKey(bytes)));
        }
        let current = keys
            .first()
            .cloned()
            .ok_or(PersonalDataError::MasterKeys("no key given"))?;
        Ok(Self { current, keys })
    }

    /// The id of the key that wraps new data keys.
    pub fn current_id(&self) -> &str {
        &self.current.0
    }

    fn aad(master_id: &str, key_id: &DataKeyId) -> Vec<u8> {
        format!("adaptive-mfa data key v1\n{master_id}\n{key_id}").into_bytes()
    }

    /// `key` wrapped under the current master key, bound to its id: `(master id, bytes)`.
    pub fn wrap(&self, key_id: &DataKeyId, key: &DataKey) -> (String, Vec<u8>) {
        let (master_id, master) = (&self.current.0, &self.current.1);
        (
            master_id.to_owned(),
            master.encrypt(key.as_bytes(), &Self::aad(master_id, key_id)),
        )
    }

    pub fn unwrap_key(
        &self,
        master_id: &str,
        key_id: &DataKeyId,
        wrapped: &[u8],
    ) -> Result<DataKey, UnwrapError> {
        let (_, master) = self
            .keys
            .iter()
            .find(|(id, _)| id == master_id)
            .ok_or_else(|| UnwrapError::UnknownMasterKey(master_id.to_owned()))?;
        let bytes = master
            .decrypt(wrapped, &Self::aad(master_id, key_id))
            .and_then(|b| <[u8; DATA_KEY_LEN]>::try_from(b).ok())
            .ok_or(UnwrapError::Corrupt(*key_id))?;
        Ok(DataKey(bytes))
    }

    /// A fresh random master key as configured: `<id>:<base64>`.
    pub fn generate_entry(id: &str) -> String {
        format!("{id}:{}", B64.encode(DataKey::generate().as_bytes()))
    }
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "MasterKeys({ids:?})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    #[error("data key wrapped under master key {0:?}, which is not configured (MFA_MASTER_KEYS)")]
    UnknownMasterKey(String),
    #[error("data key {0} does not unwrap: altered, or wrapped under another key of that id")]
    Corrupt(DataKeyId),
}

/// The deployment's key for pseudonyms: keyed hashes that let values be counted or matched
/// (the risk model's global counts, an unknown email's subject) without keeping them.
/// Never rotated: a pseudonym is only useful while the same value gives the same one.
#[derive(Clone)]
pub struct PseudonymKey([u8; 32]);

impl PseudonymKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Standard base64 of 32 bytes (`MFA_PSEUDONYM_KEY`).
    pub fn parse(text: &str) -> Result<Self, PersonalDataError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| PersonalDataError::PseudonymKey)?;
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| PersonalDataError::PseudonymKey)
    }

    fn digest(&self, purpose: &[u8], value: &[u8]) -> [u8; 32] {
        #[expect(
            clippy::expect_used,
            reason = "HMAC takes a key of any length: new_from_slice cannot fail"
        )]
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(purpose);
        mac.update(b"\0");
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// A value's pseudonym for `purpose` (e.g. a feature level): base64 of 16 bytes.
    pub fn pseudonym(&self, purpose: &str, value: &str) -> String {
        let digest = self.digest(purpose.as_bytes(), value.as_bytes());
        B64.encode(&digest[..16])
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

/// What ties a sealed value to its event, so a ciphertext cannot be moved to another login
/// or another event type: the associated data of the AEAD.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    pub attempt_id: AttemptId,
    /// The event type's name, e.g. `LoginAttempted`.
    pub event_type: &'a str,
}

impl SealContext<'_> {
    fn aad(&self, key: &DataKeyId) -> Vec<u8> {
        format!(
            "adaptive-mfa personal v1\n{key}\n{}\n{}",
            self.attempt_id, self.event_type
        )
        .into_bytes()
    }
}

/// Personal fields, sealed: the data key's id and `nonce || ciphertext` (standard base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sealed {
    pub key: DataKeyId,
    pub ciphertext: String,
}

/// An event's personal fields: sealed (what every producer writes from schema version 7),
/// or in the clear (events before it, and synthetic traces such as the evaluation's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Personal<T> {
    Sealed { sealed: Sealed },
    Clear(T),
}

impl<T: Serialize + DeserializeOwned> Personal<T> {
    pub fn seal(fields: &T, key_id: DataKeyId, key: &DataKey, context: SealContext<'_>) -> Self {
        #[expect(
            clippy::expect_used,
            reason = "personal fields are plain data with string keys: serde_json cannot fail"
        )]
        let plaintext = serde_json::to_vec(fields).expect("personal fields serialise");
        let sealed = key.encrypt(&plaintext, &context.aad(&key_id));
        Personal::Sealed {
            sealed: Sealed {
                key: key_id,
                ciphertext: B64.encode(sealed),
            },
        }
    }

    /// The fields, when in the clear (older events, synthetic traces).
    pub fn in_clear(&self) -> Option<&T> {
        match self {
            Personal::Clear(fields) => Some(fields),
            Personal::Sealed { .. } => None,
        }
    }

    /// The key that opens it; `None` when in the clear.
    pub fn key_id(&self) -> Option<DataKeyId> {
        match self {
            Personal::Sealed { sealed } => Some(sealed.key),
            Personal::Clear(_) => None,
        }
    }

    /// The fields, opened with `key` (the data key named by [`Personal::key_id`]; ignored
    /// when in the clear).
    pub fn open(&self, key: Option<&DataKey>, context: SealContext<'_>) -> Result<T, OpenError>
    where
        T: Clone,
    {
        match self {
            Personal::Clear(fields) => Ok(fields.clone()),
            Personal::Sealed { sealed } => {
                let key = key.ok_or(OpenError::Erased(sealed.key))?;
                let bytes = B64
                    .decode(&sealed.ciphertext)
                    .map_err(|_| OpenError::Corrupt(sealed.key))?;
                let plaintext = key
                    .decrypt(&bytes, &context.aad(&sealed.key))
                    .ok_or(OpenError::Corrupt(sealed.key))?;
                serde_json::from_slice(&plaintext).map_err(|_| OpenError::Corrupt(sealed.key))
            }
        }
    }
}

/// Why personal fields could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The key was destroyed (the user was deleted, or the month is past retention): the
    /// fields are erased, by design.
    #[error("personal data erased (data key {0} destroyed)")]
    Erased(DataKeyId),
    /// The ciphertext does not open under its key: altered, moved to another event, or the
    /// key is not the one that sealed it.
    #[error("personal data under data key {0} does not open: altered or misplaced")]
    Corrupt(DataKeyId),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonalDataError {
    #[error("{0:?} is not a data key id (user:<uuid>/YYYY-MM or unknown:<2 hex>/YYYY-MM)")]
    KeyId(String),
    #[error("the pseudonym key must be 32 bytes in standard base64")]
    PseudonymKey,
    #[error("MFA_MASTER_KEYS: {0}")]
    MasterKeys(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Fields {
        ip: String,
    }

    fn context(event_type: &str) -> SealContext<'_> {
        SealContext {
            attempt_id: AttemptId::from_uuid(Uuid::from_u128(7)),
            event_type,
        }
    }

    fn key_id() -> DataKeyId {
        DataKeyId::new(
            Subject::User(UserId::from_uuid(Uuid::from_u128(1))),
            Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
        )
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_context_only() {
        let key = DataKey::generate();
        let fields = Fields {
            ip: "203.0.113.7".into(),
        };
        let sealed = Personal::seal(&fields, key_id(), &key, context("LoginAttempted"));
        let json = serde_json::to_string(&sealed).unwrap();
        assert!(!json.contains("203.0.113.7"), "{json}");
        assert!(json.contains("user:00000000-0000-0000-0000-000000000001/2026-12"));
        let back: Personal<Fields> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.open(Some(&key), context("LoginAttempted")).unwrap(),
            fields
        );
        assert_eq!(
            back.open(Some(&key), context("MfaRequired")),
            Err(OpenError::Corrupt(key_id()))
        );
        assert_eq!(
            back.open(Some(&DataKey::generate()), context("LoginAttempted")),
            Err(OpenError::Corrupt(key_id()))
        );
        assert_eq!(
            back.open(None, context("LoginAttempted")),
            Err(OpenError::Erased(key_id()))
        );
    }

    #[test]
    fn clear_fields_read_as_they_are() {
        let clear: Personal<Fields> = serde_json::from_str(r#"{"ip":"192.0.2.1"}"#).unwrap();
        assert_eq!(clear.key_id(), None);
        assert_eq!(
            clear.open(None, context("LoginAttempted")).unwrap().ip,
            "192.0.2.1"
        );
    }

    #[test]
    fn key_ids_round_trip_and_reject_garbage() {
        let unknown = DataKeyId {
            subject: Subject::unknown_account(&PseudonymKey::from_bytes([3; 32]), "a@b.example"),
            period: "2026-01".parse().unwrap(),
        };
        for id in [key_id(), unknown] {
            assert_eq!(id.to_string().parse::<DataKeyId>().unwrap(), id);
        }
        for bad in [
            "",
            "user:nope/2026-12",
            "user:00000000-0000-0000-0000-000000000001/2026-13",
            "user:00000000-0000-0000-0000-000000000001/26-12",
            "unknown:abcd/2026-12",
            "admin:00000000-0000-0000-0000-000000000001/2026-12",
        ] {
            assert!(bad.parse::<DataKeyId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_month_ends_at_the_next_ones_first_instant() {
        let december: KeyPeriod = "2026-12".parse().unwrap();
        assert_eq!(
            december.end(),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            KeyPeriod::of(Utc.with_ymd_and_hms(2026, 2, 28, 23, 59, 59).unwrap()).end(),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn data_keys_unwrap_under_any_configured_master_key_after_rotation() {
        let old = MasterKeys::parse(&MasterKeys::generate_entry("m1")).unwrap();
        let data_key = DataKey::generate();
        let (master_id, wrapped) = old.wrap(&key_id(), &data_key);
        assert_eq!(master_id, "m1");
        let rotated = MasterKeys::parse(&format!(
            "{},{}",
            MasterKeys::generate_entry("m2"),
            old.keys
                .iter()
                .map(|(id, k)| format!("{id}:{}", B64.encode(k.as_bytes())))
                .collect::<String>()
        ))
        .unwrap();
        assert_eq!(rotated.current_id(), "m2");
        assert_eq!(
            rotated.unwrap_key("m1", &key_id(), &wrapped).unwrap(),
            data_key
        );
        let other_id = DataKeyId {
            period: "2027-01".parse().unwrap(),
            ..key_id()
        };
        assert!(matches!(
            rotated.unwrap_key("m1", &other_id, &wrapped),
            Err(UnwrapError::Corrupt(_))
        ));
        let only_new = MasterKeys::parse(&MasterKeys::generate_entry("m2")).unwrap();
        assert_eq!(
            only_new.unwrap_key("m1", &key_id(), &wrapped),
            Err(UnwrapError::UnknownMasterKey("m1".into()))
        );
        for bad in ["", "m1", "m1:abc", ":AAAA", "m 1:AAAA"] {
            assert!(MasterKeys::parse(bad).is_err(), "{bad}");
        }
        let twice = format!("{0},{0}", MasterKeys::generate_entry("m1"));
        assert!(MasterKeys::parse(&twice).is_err());
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_purpose() {
        let key = PseudonymKey::from_bytes([9; 32]);
        assert_eq!(
            key.pseudonym("ip", "192.0.2.1"),
            key.pseudonym("ip", "192.0.2.1")
        );
        assert_ne!(
            key.pseudonym("ip", "192.0.2.1"),
            key.pseudonym("prefix", "192.0.2.1")
        );
        assert_ne!(
            key.pseudonym("ip", "192.0.2.1"),
            PseudonymKey::from_bytes([8; 32]).pseudonym("ip", "192.0.2.1")
        );
    }
}
