//! Each detection on a constructed log: a clean generated log, tampered with one way per
//! test, or a log built flow by flow.

use chrono::{DateTime, Utc};
use shared::audit::{AuditSigner, Checkpoint, Seal, SEAL_HEADER};
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, Locale, Platform, PrimaryFactor, UserAgent,
    UserId,
};
use shared::events::{
    AccountChange, AccountChanged, CodeSent, Envelope, Event, LoginApproved, LoginAttempted,
    MfaRequired, MfaSucceeded,
};
use uuid::Uuid;

use super::findings::{Finding, Kind, Severity};
use super::{verify, Options, Summary};
use crate::record::LogRecord;
use crate::source::MemorySource;
use crate::synth::{LogBuilder, Synth, SynthConfig, SynthKeys};

fn run_with(records: Vec<LogRecord>, options: Options) -> (Summary, Vec<Finding>) {
    let mut findings = Vec::new();
    let summary = verify(&mut MemorySource::new(records), options, &mut findings).unwrap();
    (summary, findings)
}

fn run(records: Vec<LogRecord>, keys: &SynthKeys) -> (Summary, Vec<Finding>) {
    run_with(records, Options::new(keys.public_keys()))
}

fn of(findings: &[Finding], severity: Severity) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = findings
        .iter()
        .filter(|finding| finding.severity == severity)
        .map(|finding| finding.kind)
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn violations(findings: &[Finding]) -> Vec<Kind> {
    of(findings, Severity::Violation)
}

fn listed(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(Finding::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A clean generated log: about 600 events over a few minutes, a checkpoint every 25
/// events of a producer.
fn clean() -> (Vec<LogRecord>, SynthKeys) {
    let keys = SynthKeys::generate();
    let mut config = SynthConfig::new(600);
    config.checkpoint_every = 25;
    config.logins_per_sec = 5.0;
    (Synth::new(config, &keys).collect(), keys)
}

fn seal_of(record: &LogRecord) -> Option<Seal> {
    std::str::from_utf8(record.header(SEAL_HEADER)?)
        .ok()?
        .parse()
        .ok()
}

/// The index of the `nth` sealed record on the topic ending in `suffix`.
fn nth_on(records: &[LogRecord], suffix: &str, nth: usize) -> usize {
    records
        .iter()
        .enumerate()
        .filter(|(_, record)| record.topic.ends_with(suffix) && seal_of(record).is_some())
        .nth(nth)
        .map(|(index, _)| index)
        .unwrap()
}

fn is_checkpoint(record: &LogRecord) -> bool {
    record.topic.ends_with("audit-checkpoints")
}

/// Removes `index` and renumbers its partition's later offsets, as if it never was.
fn remove_cleanly(records: &mut Vec<LogRecord>, index: usize) -> LogRecord {
    let removed = records.remove(index);
    for record in records.iter_mut() {
        if record.topic == removed.topic
            && record.partition == removed.partition
            && record.offset > removed.offset
        {
            record.offset -= 1;
        }
    }
    removed
}

/// Appends `record` at the end of the log, at its partition's next offset.
fn append(records: &mut Vec<LogRecord>, mut record: LogRecord) {
    let next = records
        .iter()
        .filter(|other| other.topic == record.topic && other.partition == record.partition)
        .map(|other| other.offset + 1)
        .max()
        .unwrap_or(0);
    record.offset = next;
    record.timestamp_ms = records.last().unwrap().timestamp_ms;
    records.push(record);
}

#[test]
fn a_clean_generated_log_verifies_clean_with_every_checkpoint_matched() {
    let (records, keys) = clean();
    let (summary, findings) = run(records, &keys);
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert_eq!(summary.warnings, 0, "{}", listed(&findings));
    assert!(summary.events >= 550, "{}", summary.events);
    assert_eq!(summary.chains, 4);
    assert!(summary.checkpoints > 20);
    assert_eq!(summary.checkpoints_matched, summary.checkpoints);
    assert!(summary.attempts_checked > 150);
}

#[test]
fn an_altered_event_is_a_head_mismatch_that_names_its_range() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "login-attempts", 40);
    let seal = seal_of(&records[index]).unwrap();
    let value = String::from_utf8(records[index].value.clone()).unwrap();
    let altered = value.replacen("\"privileged\":", "\"privileged\" :", 1);
    assert_ne!(altered, value);
    records[index].value = altered.into_bytes();
    let (summary, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::HeadMismatch],
        "{}",
        listed(&findings)
    );
    let mismatch = findings
        .iter()
        .find(|f| f.kind == Kind::HeadMismatch)
        .unwrap();
    // The range names the altered seq, and only one range is reported.
    let range = mismatch
        .message
        .split("seqs ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    let (from, to) = range.split_once("..=").unwrap();
    let (from, to): (u64, u64) = (from.parse().unwrap(), to.parse().unwrap());
    assert!(
        (from..=to).contains(&seal.seq),
        "{range} should hold {}",
        seal.seq
    );
    assert_eq!(summary.violations, 1, "{}", listed(&findings));
}

#[test]
fn a_dropped_event_is_a_seq_gap() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "risk-decisions", 30);
    let dropped = remove_cleanly(&mut records, index);
    let seal = seal_of(&dropped).unwrap();
    let mut options = Options::new(keys.public_keys());
    options.recent = std::time::Duration::ZERO;
    let (_, findings) = run_with(records, options);
    let gap = findings
        .iter()
        .find(|f| f.kind == Kind::SeqGap)
        .unwrap_or_else(|| panic!("{}", listed(&findings)));
    assert!(
        gap.message
            .contains(&format!("seqs {}..={} are missing", seal.seq, seal.seq)),
        "{gap}"
    );
    // The attempt lost its decision, too.
    assert!(
        violations(&findings).contains(&Kind::NoDecision),
        "{}",
        listed(&findings)
    );
}

#[test]
fn an_event_record_without_a_seal_is_caught() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "verifications", 3);
    let mut forged = records[index].clone();
    forged.headers.retain(|header| header.name != SEAL_HEADER);
    append(&mut records, forged);
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::MissingSeal],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_malformed_seal_is_caught() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "verifications", 3);
    let mut forged = records[index].clone();
    forged.set_headers([(SEAL_HEADER, Some(&b"not-a-seal"[..]))]);
    append(&mut records, forged);
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::MalformedSeal],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_second_copy_of_a_seal_with_other_bytes_is_a_forgery() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "risk-decisions", 10);
    let mut forged = records[index].clone();
    forged.value = String::from_utf8(forged.value)
        .unwrap()
        .replacen("\"score\":", "\"score\": ", 1)
        .into_bytes();
    // Right after the original, in its partition: a plausible insertion.
    let at = index + 1;
    forged.offset += 1;
    for record in records.iter_mut() {
        if record.topic == forged.topic
            && record.partition == forged.partition
            && record.offset >= forged.offset
        {
            record.offset += 1;
        }
    }
    records.insert(at, forged);
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::ConflictingCopy],
        "{}",
        listed(&findings)
    );
}

#[test]
fn an_event_sealed_into_a_chain_nobody_signs_is_not_covered() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "risk-decisions", 10);
    let mut forged = records[index].clone();
    let seal = Seal {
        chain_id: Uuid::new_v4(),
        seq: 1,
    }
    .to_string();
    forged.set_headers([(SEAL_HEADER, Some(seal.as_bytes()))]);
    append(&mut records, forged);
    let (_, findings) = run(records, &keys);
    let kinds = violations(&findings);
    assert!(kinds.contains(&Kind::NotCovered), "{}", listed(&findings));
    let covered = findings
        .iter()
        .find(|f| f.kind == Kind::NotCovered)
        .unwrap();
    assert!(covered.message.contains("no valid checkpoint"), "{covered}");
}

#[test]
fn an_event_appended_to_a_real_chain_is_not_covered() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "risk-decisions", 10);
    let chain = seal_of(&records[index]).unwrap().chain_id;
    let last = records
        .iter()
        .filter_map(seal_of)
        .filter(|seal| seal.chain_id == chain)
        .map(|seal| seal.seq)
        .max()
        .unwrap();
    let mut forged = records[index].clone();
    let seal = Seal {
        chain_id: chain,
        seq: last + 1,
    }
    .to_string();
    forged.set_headers([(SEAL_HEADER, Some(seal.as_bytes()))]);
    append(&mut records, forged);
    let (_, findings) = run(records, &keys);
    assert!(
        violations(&findings).contains(&Kind::NotCovered),
        "{}",
        listed(&findings)
    );
}

/// Re-signs the `nth` checkpoint with `signer`, claiming `producer`.
fn resign(records: &mut [LogRecord], nth: usize, signer: &AuditSigner, producer: &str) {
    let index = records
        .iter()
        .enumerate()
        .filter(|(_, record)| is_checkpoint(record))
        .nth(nth)
        .map(|(index, _)| index)
        .unwrap();
    let original = Checkpoint::from_json(&records[index].value).unwrap();
    let head = shared::audit::ChainHead {
        seq: original.seq,
        digest: original.head_digest().unwrap(),
    };
    let mut forged = signer.checkpoint(original.chain_id, &head, original.signed_at);
    forged.producer = producer.to_owned();
    records[index].value = forged.to_json();
}

#[test]
fn a_checkpoint_signed_by_an_unknown_key_is_caught() {
    let (mut records, keys) = clean();
    let (_, stranger) = AuditSigner::generate("risk-worker", "risk-worker-stolen");
    resign(&mut records, 5, &stranger, "risk-worker");
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::CheckpointUnknownKey],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_checkpoint_signed_by_another_producers_key_is_caught() {
    let (mut records, keys) = clean();
    let index = records.iter().position(is_checkpoint).unwrap();
    let claimed = Checkpoint::from_json(&records[index].value)
        .unwrap()
        .producer;
    let other = keys
        .signers
        .iter()
        .find(|signer| signer.producer != claimed)
        .unwrap()
        .clone();
    resign(&mut records, 0, &other, &claimed);
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::CheckpointWrongProducer],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_checkpoint_with_a_bad_signature_is_caught() {
    let (mut records, keys) = clean();
    let index = records.iter().position(is_checkpoint).unwrap();
    let mut checkpoint = Checkpoint::from_json(&records[index].value).unwrap();
    checkpoint.seq += 1;
    records[index].value = checkpoint.to_json();
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::CheckpointBadSignature],
        "{}",
        listed(&findings)
    );
}

#[test]
fn records_swapped_within_a_partition_are_reordered() {
    let (mut records, keys) = clean();
    let first = nth_on(&records, "risk-decisions", 20);
    let (topic, partition) = (records[first].topic.clone(), records[first].partition);
    let second = (first + 1..records.len())
        .find(|&index| records[index].topic == topic && records[index].partition == partition)
        .unwrap();
    // The records change places; each keeps its bytes and seal, the offsets stay.
    let (a, b) = (records[first].clone(), records[second].clone());
    records[first] = LogRecord {
        offset: a.offset,
        timestamp_ms: a.timestamp_ms,
        ..b.clone()
    };
    records[second] = LogRecord {
        offset: b.offset,
        timestamp_ms: b.timestamp_ms,
        ..a
    };
    let (_, findings) = run(records, &keys);
    assert!(
        violations(&findings).contains(&Kind::Reordered),
        "{}",
        listed(&findings)
    );
    assert!(
        !violations(&findings).contains(&Kind::HeadMismatch),
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_missing_final_checkpoint_leaves_the_tail_not_covered() {
    let (mut records, keys) = clean();
    let last = records.iter().rposition(is_checkpoint).unwrap();
    let removed = remove_cleanly(&mut records, last);
    let chain = Checkpoint::from_json(&removed.value).unwrap().chain_id;
    let (_, findings) = run(records.clone(), &keys);
    assert_eq!(
        violations(&findings),
        [Kind::NotCovered],
        "{}",
        listed(&findings)
    );
    let finding = findings
        .iter()
        .find(|f| f.kind == Kind::NotCovered)
        .unwrap();
    assert!(finding.message.contains(&chain.to_string()), "{finding}");

    // A live system's last second is not covered yet: with an open tail it is only noted.
    // (A day: the generated log's last events are feedback, hours after the logins.)
    let mut options = Options::new(keys.public_keys());
    options.open_tail = std::time::Duration::from_secs(24 * 3600);
    let (summary, findings) = run_with(records, options);
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert!(of(&findings, Severity::Info).contains(&Kind::NotCovered));
}

#[test]
fn a_checkpoint_beyond_the_log_means_its_tail_was_dropped() {
    let (mut records, keys) = clean();
    let last_checkpoint = records.iter().rposition(is_checkpoint).unwrap();
    let chain = Checkpoint::from_json(&records[last_checkpoint].value)
        .unwrap()
        .chain_id;
    let last_entry = records
        .iter()
        .rposition(|record| seal_of(record).is_some_and(|seal| seal.chain_id == chain))
        .unwrap();
    remove_cleanly(&mut records, last_entry);
    let (_, findings) = run(records, &keys);
    assert!(
        violations(&findings).contains(&Kind::CheckpointBeyondLog),
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_redelivered_copy_is_a_duplicate_never_a_violation() {
    let (mut records, keys) = clean();
    let index = nth_on(&records, "challenges", 5);
    let copy = records[index].clone();
    let checkpoint = records[records.iter().rposition(is_checkpoint).unwrap()].clone();
    append(&mut records, copy);
    append(&mut records, checkpoint);
    let (summary, findings) = run(records, &keys);
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert_eq!(summary.duplicates, 1);
    assert_eq!(of(&findings, Severity::Info), [Kind::Duplicate]);
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_764_600_000_000 + ms).unwrap()
}

/// A user's login, its events built as the services build them.
struct Login {
    attempted: Envelope,
    user: UserId,
}

impl Login {
    fn new(ms: i64) -> Self {
        let user = UserId::from_uuid(Uuid::new_v4());
        let attempted = Envelope::new(
            "login-intake",
            AttemptId::new(),
            None,
            at(ms),
            Event::LoginAttempted(LoginAttempted {
                user_id: Some(user),
                company_id: Some(CompanyId::parse("acme").unwrap()),
                auth_method: AuthMethod::Password,
                primary_factor: PrimaryFactor::Succeeded,
                privileged: false,
                platform: Platform::Dashboard,
                client: shared::personal::Personal::Clear(shared::events::LoginClient {
                    ip: "81.2.3.4".parse().unwrap(),
                    user_agent: UserAgent::parse("Mozilla/5.0").unwrap(),
                    device_id: None,
                }),
                locale: Locale::En,
            }),
        );
        Self { attempted, user }
    }

    fn approved(&self, ms: i64) -> Envelope {
        Envelope::caused_by(
            &self.attempted,
            "risk-worker",
            at(ms),
            Event::LoginApproved(LoginApproved {
                counted: None,
                user_id: self.user,
                approved_after_mfa: false,
                challenge_id: None,
                risk: None,
            }),
        )
    }

    fn mfa_required(&self, challenge: ChallengeId, ms: i64) -> Envelope {
        Envelope::caused_by(
            &self.attempted,
            "risk-worker",
            at(ms),
            Event::MfaRequired(MfaRequired {
                counted: None,
                user_id: self.user,
                company_id: CompanyId::parse("acme").unwrap(),
                challenge_id: challenge,
                expires_at: at(ms + 600_000),
                reasons: vec![],
                platform: Platform::Dashboard,
                client: shared::personal::Personal::Clear(shared::events::LoginClient {
                    ip: "81.2.3.4".parse().unwrap(),
                    user_agent: UserAgent::parse("Mozilla/5.0").unwrap(),
                    device_id: None,
                }),
                locale: Locale::En,
                risk: None,
            }),
        )
    }

    fn sent(&self, required: &Envelope, challenge: ChallengeId, ms: i64) -> Envelope {
        Envelope::caused_by(
            required,
            "code-worker",
            at(ms),
            Event::CodeSent(CodeSent {
                user_id: self.user,
                challenge_id: challenge,
                expires_at: at(ms + 600_000),
            }),
        )
    }

    fn succeeded(&self, required: &Envelope, challenge: ChallengeId, ms: i64) -> Envelope {
        Envelope::caused_by(
            required,
            "verifier",
            at(ms),
            Event::MfaSucceeded(MfaSucceeded {
                user_id: self.user,
                challenge_id: challenge,
            }),
        )
    }

    fn approved_after(&self, cause: &Envelope, challenge: ChallengeId, ms: i64) -> Envelope {
        Envelope::caused_by(
            cause,
            "verifier",
            at(ms),
            Event::LoginApproved(LoginApproved {
                counted: None,
                user_id: self.user,
                approved_after_mfa: true,
                challenge_id: Some(challenge),
                risk: None,
            }),
        )
    }

    fn key(&self) -> String {
        self.user.to_string()
    }
}

/// Builds a log of `events`, checkpointed at the end, and verifies it with `recent`.
fn flows(events: &[(&Envelope, &str)], recent_ms: u64) -> (Summary, Vec<Finding>) {
    let keys = SynthKeys::generate();
    let mut log = LogBuilder::new("t", &keys);
    for (envelope, key) in events {
        log.event(envelope, key).unwrap();
    }
    let end = log
        .records()
        .iter()
        .map(|r| r.timestamp_ms)
        .max()
        .unwrap_or(0);
    log.checkpoint_all(end + 1);
    let mut options = Options::new(keys.public_keys());
    options.recent = std::time::Duration::from_millis(recent_ms);
    run_with(log.into_records(), options)
}

#[test]
fn complete_flows_are_clean() {
    let plain = Login::new(0);
    let approved = plain.approved(30);
    let mfa = Login::new(100);
    let challenge = ChallengeId::from_uuid(Uuid::new_v4());
    let required = mfa.mfa_required(challenge, 130);
    let sent = mfa.sent(&required, challenge, 900);
    let succeeded = mfa.succeeded(&required, challenge, 20_000);
    let after = mfa.approved_after(&succeeded, challenge, 20_000);
    let (k1, k2) = (plain.key(), mfa.key());
    let (summary, findings) = flows(
        &[
            (&plain.attempted, &k1),
            (&approved, &k1),
            (&mfa.attempted, &k2),
            (&required, &k2),
            (&sent, &k2),
            (&succeeded, &k2),
            (&after, &k2),
        ],
        0,
    );
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert!(findings.is_empty(), "{}", listed(&findings));
    assert_eq!(summary.attempts_checked, 2);
}

#[test]
fn a_login_without_a_decision_is_open_when_recent_and_a_violation_when_old() {
    let login = Login::new(0);
    let key = login.key();
    let (_, findings) = flows(&[(&login.attempted, &key)], 60_000);
    assert_eq!(
        of(&findings, Severity::Info),
        [Kind::Open],
        "{}",
        listed(&findings)
    );
    assert!(violations(&findings).is_empty());

    let later = Login::new(3_600_000);
    let approved = later.approved(3_600_030);
    let later_key = later.key();
    let (_, findings) = flows(
        &[
            (&login.attempted, &key),
            (&later.attempted, &later_key),
            (&approved, &later_key),
        ],
        60_000,
    );
    assert_eq!(
        violations(&findings),
        [Kind::NoDecision],
        "{}",
        listed(&findings)
    );
}

#[test]
fn two_decisions_for_one_login_are_caught() {
    let login = Login::new(0);
    let key = login.key();
    let (first, second) = (login.approved(30), login.approved(40));
    let (_, findings) = flows(
        &[(&login.attempted, &key), (&first, &key), (&second, &key)],
        0,
    );
    assert_eq!(
        violations(&findings),
        [Kind::SeveralDecisions],
        "{}",
        listed(&findings)
    );
}

#[test]
fn an_mfa_required_without_its_delivery_outcome_is_caught_unless_the_account_went() {
    let login = Login::new(0);
    let key = login.key();
    let challenge = ChallengeId::from_uuid(Uuid::new_v4());
    let required = login.mfa_required(challenge, 30);
    let (_, findings) = flows(&[(&login.attempted, &key), (&required, &key)], 0);
    assert_eq!(
        violations(&findings),
        [Kind::NoDeliveryOutcome],
        "{}",
        listed(&findings)
    );

    // The account was deleted before its email went: the code worker dropped it.
    let deleted = Envelope::new(
        "login-intake",
        AttemptId::new(),
        None,
        at(200),
        Event::AccountChanged(AccountChanged {
            user_id: login.user,
            change: AccountChange::Deleted,
        }),
    );
    let (summary, findings) = flows(
        &[
            (&login.attempted, &key),
            (&required, &key),
            (&deleted, &key),
        ],
        0,
    );
    assert!(summary.is_clean(), "{}", listed(&findings));
}

#[test]
fn an_approval_after_mfa_without_its_success_is_caught() {
    let login = Login::new(0);
    let key = login.key();
    let challenge = ChallengeId::from_uuid(Uuid::new_v4());
    let required = login.mfa_required(challenge, 30);
    let sent = login.sent(&required, challenge, 900);
    // Caused by the MfaRequired, with no MfaSucceeded at all.
    let forged = login.approved_after(&required, challenge, 20_000);
    let (_, findings) = flows(
        &[
            (&login.attempted, &key),
            (&required, &key),
            (&sent, &key),
            (&forged, &key),
        ],
        0,
    );
    assert_eq!(
        violations(&findings),
        [Kind::ApprovalWithoutMfa],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_cause_that_is_not_in_the_log_is_dangling() {
    let login = Login::new(0);
    let key = login.key();
    let mut approved = login.approved(30);
    approved.causation_id = Some(Uuid::new_v4());
    let (_, findings) = flows(&[(&login.attempted, &key), (&approved, &key)], 0);
    assert_eq!(
        violations(&findings),
        [Kind::DanglingCause],
        "{}",
        listed(&findings)
    );
}

#[test]
fn events_of_an_attempt_without_its_login_are_caught() {
    let login = Login::new(0);
    let key = login.key();
    let approved = login.approved(30);
    let (_, findings) = flows(&[(&approved, &key)], 0);
    let kinds = violations(&findings);
    assert!(
        kinds.contains(&Kind::NoLoginAttempted),
        "{}",
        listed(&findings)
    );
}

#[test]
fn the_same_event_sealed_twice_is_a_duplicate_and_other_bytes_a_conflict() {
    let login = Login::new(0);
    let key = login.key();
    let approved = login.approved(30);
    let (summary, findings) = flows(
        &[
            (&login.attempted, &key),
            (&approved, &key),
            (&approved, &key),
        ],
        0,
    );
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert_eq!(summary.duplicates, 1);

    let mut changed = approved.clone();
    changed.occurred_at = at(31);
    let (_, findings) = flows(
        &[
            (&login.attempted, &key),
            (&approved, &key),
            (&changed, &key),
        ],
        0,
    );
    assert_eq!(
        violations(&findings),
        [Kind::ConflictingEvent],
        "{}",
        listed(&findings)
    );
}

#[test]
fn an_event_on_the_wrong_topic_or_from_the_wrong_producer_is_caught() {
    let keys = SynthKeys::generate();
    let login = Login::new(0);
    let key = login.key();
    let approved = login.approved(30);
    let mut log = LogBuilder::new("t", &keys);
    log.event(&login.attempted, &key).unwrap();
    let topic = log.topics().challenges.clone();
    log.publish("risk-worker", &topic, &key, &approved.to_json(), 30)
        .unwrap();
    let mut impostor = login.approved(40);
    impostor.producer = "code-worker".into();
    let topic = log.topics().risk_decisions.clone();
    log.publish("code-worker", &topic, &key, &impostor.to_json(), 40)
        .unwrap();
    log.checkpoint_all(50);
    let (_, findings) = run(log.into_records(), &keys);
    let kinds = violations(&findings);
    assert!(kinds.contains(&Kind::WrongTopic), "{}", listed(&findings));
    assert!(
        kinds.contains(&Kind::WrongProducer),
        "{}",
        listed(&findings)
    );
}

#[test]
fn an_unknown_event_type_is_a_warning_and_a_malformed_event_a_violation() {
    let keys = SynthKeys::generate();
    let login = Login::new(0);
    let key = login.key();
    let mut log = LogBuilder::new("t", &keys);
    let mut newer: serde_json::Value =
        serde_json::from_slice(&login.approved(30).to_json()).unwrap();
    newer["event_type"] = "LoginQueued".into();
    let topic = log.topics().risk_decisions.clone();
    log.publish(
        "risk-worker",
        &topic,
        &key,
        newer.to_string().as_bytes(),
        30,
    )
    .unwrap();
    log.checkpoint_all(50);
    let (summary, findings) = run(log.records().to_vec(), &keys);
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert_eq!(of(&findings, Severity::Warning), [Kind::UnknownEventType]);

    log.publish(
        "risk-worker",
        &topic,
        &key,
        br#"{"event_type":"LoginApproved"}"#,
        60,
    )
    .unwrap();
    log.checkpoint_all(70);
    let (_, findings) = run(log.into_records(), &keys);
    assert_eq!(
        violations(&findings),
        [Kind::MalformedEvent],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_malformed_checkpoint_is_caught() {
    let (mut records, keys) = clean();
    let index = records.iter().position(is_checkpoint).unwrap();
    let mut broken = records[index].clone();
    broken.value = b"{\"chain_id\": 1}".to_vec();
    append(&mut records, broken);
    let (_, findings) = run(records, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::MalformedCheckpoint],
        "{}",
        listed(&findings)
    );
}

#[test]
fn missing_and_repeated_offsets_are_caught() {
    let (records, keys) = clean();
    let index = nth_on(&records, "challenges", 4);
    let mut gapped = records.clone();
    // Removed without renumbering: the offset is missing (and the record with it).
    gapped.remove(index);
    let (_, findings) = run(gapped, &keys);
    assert!(
        violations(&findings).contains(&Kind::OffsetGap),
        "{}",
        listed(&findings)
    );

    let mut doubled = records;
    let copy = doubled[index].clone();
    doubled.insert(index + 1, copy);
    let (_, findings) = run(doubled, &keys);
    assert_eq!(
        violations(&findings),
        [Kind::OffsetOrder],
        "{}",
        listed(&findings)
    );
}

#[test]
fn a_checkpoint_that_arrives_after_later_records_is_still_compared() {
    let (mut records, keys) = clean();
    let index = records.iter().position(is_checkpoint).unwrap();
    let checkpoint = records.remove(index);
    records.insert((index + 40).min(records.len()), checkpoint);
    let (summary, findings) = run(records, &keys);
    assert!(summary.is_clean(), "{}", listed(&findings));
    assert_eq!(summary.checkpoints_matched, summary.checkpoints);
}

#[test]
fn events_of_a_chain_arriving_out_of_seq_order_across_partitions_are_chained() {
    let (mut records, keys) = clean();
    // Two records of one chain on different partitions, swapped in the merged order.
    let first = nth_on(&records, "risk-decisions", 12);
    let second = (first + 1..records.len())
        .find(|&i| {
            records[i].topic == records[first].topic
                && records[i].partition != records[first].partition
        })
        .unwrap();
    let moved = records.remove(second);
    records.insert(first, moved);
    let (summary, findings) = run(records, &keys);
    assert!(summary.is_clean(), "{}", listed(&findings));
}
