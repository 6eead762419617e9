//! The checks, after the load stopped: the whole event log, the mail that arrived, the
//! services' tables and what each client saw. Each check that fails is a violation, with
//! the ids to look up; the counts say what was driven and what happened.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use mfa_testkit::event_log::read_topic;
use shared::events::{Envelope, Event};
use shared::topics::Topics;
use uuid::Uuid;

use crate::load::{LoginRecord, Outcome};
use crate::system::{Fault, System, NAMESPACE, PARTITIONS};
use crate::HarnessError;

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub logins: usize,
    pub accepted: usize,
    pub not_accepted: usize,
    pub client_retries: u64,
    pub approved: usize,
    pub mfa_required: usize,
    pub approved_after_mfa: usize,
    pub rejected: usize,
    /// MFA logins whose challenge was replaced by a newer one, or whose code expired.
    pub superseded: usize,
    pub codes_reused_and_refused: usize,
    pub attempts_logged: usize,
    /// Attempts on the log that no client was answered with: a request cut by a crash after
    /// it reached the broker, which the client's retry made anew. Decided all the same.
    pub unanswered_attempts: usize,
    pub decisions: usize,
    pub challenges: usize,
    pub codes_sent: usize,
    pub code_delivery_failed: usize,
    pub codes_accepted: usize,
    pub final_approvals: usize,
    /// Copies of an event already on the log (same event id): at-least-once at work,
    /// harmless by design.
    pub redelivered_copies: usize,
    pub dead_letters: usize,
    pub emails: usize,
    /// Emails beyond the first for one challenge: the one repeat the design allows (a crash
    /// between the SMTP server's acceptance and its record), with one Message-ID.
    pub repeated_emails: usize,
    /// Accepted logins without a decision, or missing from the event log.
    pub losses: usize,
    /// What `mfa-audit verify` read and found on the whole log: the seals, chains and
    /// signed checkpoints, and its own flow checks.
    pub proofs: mfa_audit::verify::Summary,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub seconds: f64,
    pub faults: Vec<Fault>,
    pub unplanned_exits: Vec<String>,
    /// Each SIGTERM and how long the service took to exit.
    pub graceful_stops: Vec<(String, Option<Duration>)>,
    pub counts: Counts,
    pub violations: Vec<String>,
}

/// What the audit reads: the event log, the outbox and email tables, the inbox.
struct Snapshot {
    /// Every message of the event topics, decoded, in the order read per topic.
    events: Vec<(Topic, Envelope)>,
    undecodable: usize,
    dead_letters: usize,
    outbox_unpublished: i64,
    emails_pending: i64,
    outcomes_unpublished: i64,
    emails_per_challenge: HashMap<Uuid, usize>,
    malformed_emails: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Topic {
    LoginAttempts,
    RiskDecisions,
    Challenges,
    Verifications,
    Accounts,
}

/// Audits until every check passes or `settle` has passed: the last events may still be on
/// their way (a relay's next round, a consumer's rebalance), so a check that fails is read
/// again until then.
///
/// `records` are all the run's logins; `latest` those of the scenario just ended, whose
/// last login per user shows whether the system came back after the faults.
pub async fn audit(
    scenario: &str,
    system: &System,
    records: &[LoginRecord],
    latest: &[LoginRecord],
    settle: Duration,
) -> Result<Report, HarnessError> {
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        let snapshot = Snapshot::read(system).await?;
        let (counts, mut violations) = check(&snapshot, records);
        violations.extend(check_recovery(latest));
        violations.extend(check_graceful_stops(&system.graceful_stops));
        violations.extend(check_admin_changes(&snapshot, &system.deleted_in_outages));
        let proofs = check_proofs(system).await?;
        violations.extend(proofs.violations);
        let mut counts = counts;
        counts.proofs = proofs.summary;
        if violations.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Report {
                scenario: scenario.to_owned(),
                seconds: system.elapsed().as_secs_f64(),
                faults: system.faults.clone(),
                unplanned_exits: system.unplanned_exits.clone(),
                graceful_stops: system.graceful_stops.clone(),
                counts,
                violations,
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

impl Snapshot {
    async fn read(system: &System) -> Result<Self, HarnessError> {
        let topics = Topics::new(NAMESPACE);
        let brokers = system.brokers();
        let wanted = [
            (Topic::LoginAttempts, topics.login_attempts.clone()),
            (Topic::RiskDecisions, topics.risk_decisions.clone()),
            (Topic::Challenges, topics.challenges.clone()),
            (Topic::Verifications, topics.verifications.clone()),
            (Topic::Accounts, topics.accounts.clone()),
        ];
        let dead_letters_topic = topics.dead_letters.clone();
        let (events, undecodable, dead_letters) = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            let mut undecodable = 0;
            for (topic, name) in wanted {
                for message in read_topic(&brokers, &name, PARTITIONS)? {
                    match Envelope::from_json(&message.payload) {
                        Ok(envelope) => events.push((topic, envelope)),
                        Err(_) => undecodable += 1,
                    }
                }
            }
            let dead_letters = read_topic(&brokers, &dead_letters_topic, PARTITIONS)?.len();
            Ok::<_, HarnessError>((events, undecodable, dead_letters))
        })
        .await
        .map_err(HarnessError::task("reading the log"))??;
        let count = |query: &'static str| async move {
            sqlx::query_scalar::<_, i64>(query)
                .fetch_one(&system.pool)
                .await
        };
        Ok(Self {
            events,
            undecodable,
            dead_letters,
            outbox_unpublished: count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .await?,
            emails_pending: count(
                "SELECT count(*) FROM challenges WHERE email_code_sealed IS NOT NULL",
            )
            .await?,
            outcomes_unpublished: count(
                "SELECT count(*) FROM challenges
                 WHERE outcome_event IS NOT NULL AND outcome_published_at IS NULL",
            )
            .await?,
            emails_per_challenge: system.mailbox.inbox.emails_per_challenge(),
            malformed_emails: system.mailbox.inbox.malformed(),
        })
    }
}

/// Distinct events (the first copy of each id), and how many copies repeated one.
fn distinct(events: &[(Topic, Envelope)]) -> (Vec<(Topic, &Envelope)>, usize) {
    let mut seen = HashSet::new();
    let mut unique = Vec::new();
    for (topic, envelope) in events {
        if seen.insert(envelope.event_id) {
            unique.push((*topic, envelope));
        }
    }
    let copies = events.len() - unique.len();
    (unique, copies)
}

fn check(snapshot: &Snapshot, records: &[LoginRecord]) -> (Counts, Vec<String>) {
    let mut violations = Vec::new();
    let mut counts = Counts::default();
    let (events, copies) = distinct(&snapshot.events);
    counts.redelivered_copies = copies;
    counts.dead_letters = snapshot.dead_letters;

    let mut attempted: HashMap<Uuid, Vec<&Envelope>> = HashMap::new();
    let mut decisions: HashMap<Uuid, Vec<&Envelope>> = HashMap::new();
    let mut approvals: HashMap<Uuid, Vec<(Topic, &Envelope)>> = HashMap::new();
    let mut required: HashMap<Uuid, &Envelope> = HashMap::new();
    let mut outcomes: HashMap<Uuid, Vec<&Envelope>> = HashMap::new();
    let mut accepted_codes: HashMap<Uuid, Vec<&Envelope>> = HashMap::new();
    let by_id: HashMap<Uuid, &Envelope> = events.iter().map(|(_, e)| (e.event_id, *e)).collect();

    for (topic, envelope) in &events {
        let attempt = envelope.attempt_id.as_uuid();
        match (&envelope.event, topic) {
            (Event::LoginAttempted(_), _) => attempted.entry(attempt).or_default().push(envelope),
            (event, Topic::RiskDecisions) => {
                decisions.entry(attempt).or_default().push(envelope);
                match event {
                    Event::LoginApproved(_) => approvals
                        .entry(attempt)
                        .or_default()
                        .push((*topic, envelope)),
                    Event::MfaRequired(mfa) => {
                        required.insert(mfa.challenge_id.as_uuid(), envelope);
                    }
                    _ => {}
                }
            }
            (Event::CodeSent(sent), _) => outcomes
                .entry(sent.challenge_id.as_uuid())
                .or_default()
                .push(envelope),
            (Event::CodeDeliveryFailed(failed), _) => outcomes
                .entry(failed.challenge_id.as_uuid())
                .or_default()
                .push(envelope),
            (Event::MfaSucceeded(succeeded), _) => accepted_codes
                .entry(succeeded.challenge_id.as_uuid())
                .or_default()
                .push(envelope),
            (Event::LoginApproved(_), Topic::Verifications) => approvals
                .entry(attempt)
                .or_default()
                .push((*topic, envelope)),
            _ => {}
        }
    }
    counts.attempts_logged = attempted.len();
    counts.decisions = decisions.values().map(Vec::len).sum();
    counts.challenges = required.len();
    counts.final_approvals = approvals.values().map(Vec::len).sum();
    counts.codes_accepted = accepted_codes.values().map(Vec::len).sum();

    if snapshot.undecodable > 0 {
        violations.push(format!(
            "{} messages on the event topics do not decode",
            snapshot.undecodable
        ));
    }
    // Every attempt on the log: published once, decided exactly once.
    for (attempt, published) in &attempted {
        if published.len() > 1 {
            violations.push(format!(
                "attempt {attempt}: LoginAttempted {} times with different ids",
                published.len()
            ));
        }
        match decisions.get(attempt).map_or(0, Vec::len) {
            1 => {}
            0 => {
                counts.losses += 1;
                violations.push(format!("attempt {attempt}: no decision"));
            }
            n => violations.push(format!("attempt {attempt}: {n} decisions")),
        }
    }
    for attempt in decisions.keys().filter(|a| !attempted.contains_key(a)) {
        violations.push(format!(
            "attempt {attempt}: a decision without LoginAttempted"
        ));
    }
    // At most one final approval, and each with its cause on the log.
    for (attempt, approved) in &approvals {
        if approved.len() > 1 {
            violations.push(format!(
                "attempt {attempt}: approved {} times",
                approved.len()
            ));
        }
        for (topic, approval) in approved {
            if let Err(why) = approval_cause(*topic, approval, &attempted, &by_id, &required) {
                violations.push(format!(
                    "attempt {attempt}: LoginApproved {} {why}",
                    approval.event_id
                ));
            }
        }
    }
    // Each challenge: exactly one email outcome; CodeSent means the email arrived.
    for challenge in required.keys() {
        let found = outcomes.get(challenge).map_or(&[][..], Vec::as_slice);
        let emails = snapshot
            .emails_per_challenge
            .get(challenge)
            .copied()
            .unwrap_or(0);
        counts.emails += emails;
        counts.repeated_emails += emails.saturating_sub(1);
        match found {
            [outcome] => match outcome.event {
                Event::CodeSent(_) => {
                    counts.codes_sent += 1;
                    if emails == 0 {
                        violations.push(format!(
                            "challenge {challenge}: CodeSent, but no email arrived"
                        ));
                    }
                }
                _ => {
                    counts.code_delivery_failed += 1;
                    if accepted_codes.contains_key(challenge) {
                        violations.push(format!(
                            "challenge {challenge}: CodeDeliveryFailed, yet its code was used"
                        ));
                    }
                }
            },
            [] => violations.push(format!(
                "challenge {challenge}: neither CodeSent nor CodeDeliveryFailed"
            )),
            many => violations.push(format!(
                "challenge {challenge}: {} email outcomes",
                many.len()
            )),
        }
    }
    for challenge in outcomes.keys().filter(|c| !required.contains_key(c)) {
        violations.push(format!(
            "challenge {challenge}: an email outcome without MfaRequired"
        ));
    }
    for challenge in snapshot
        .emails_per_challenge
        .keys()
        .filter(|c| !required.contains_key(c))
    {
        violations.push(format!(
            "challenge {challenge}: an email without MfaRequired"
        ));
    }
    if snapshot.malformed_emails > 0 {
        violations.push(format!(
            "{} emails without a challenge's Message-ID or a code",
            snapshot.malformed_emails
        ));
    }
    for (challenge, accepted) in &accepted_codes {
        if accepted.len() > 1 {
            violations.push(format!(
                "challenge {challenge}: code accepted {} times",
                accepted.len()
            ));
        }
    }
    // Nothing left behind.
    for (count, what) in [
        (snapshot.outbox_unpublished, "events stuck in the outbox"),
        (snapshot.emails_pending, "code emails still pending"),
        (
            snapshot.outcomes_unpublished,
            "email outcomes recorded but not published",
        ),
    ] {
        if count > 0 {
            violations.push(format!("{count} {what}"));
        }
    }
    check_clients(
        records,
        &attempted,
        &approvals,
        &outcomes,
        &mut counts,
        &mut violations,
    );
    (counts, violations)
}

/// A LoginApproved from the risk worker answers its attempt's LoginAttempted; one from the
/// verifier answers the MfaSucceeded of that attempt's challenge, which answers the
/// challenge's MfaRequired.
fn approval_cause(
    topic: Topic,
    approval: &Envelope,
    attempted: &HashMap<Uuid, Vec<&Envelope>>,
    by_id: &HashMap<Uuid, &Envelope>,
    required: &HashMap<Uuid, &Envelope>,
) -> Result<(), String> {
    let attempt = approval.attempt_id;
    let cause = approval
        .causation_id
        .and_then(|id| by_id.get(&id))
        .ok_or("has no cause on the log")?;
    if cause.attempt_id != attempt {
        return Err(format!(
            "is caused by another attempt's event {}",
            cause.event_id
        ));
    }
    match (topic, &cause.event) {
        (Topic::RiskDecisions, Event::LoginAttempted(_)) => attempted
            .get(&attempt.as_uuid())
            .into_iter()
            .flatten()
            .any(|e| e.event_id == cause.event_id)
            .then_some(())
            .ok_or_else(|| "is caused by an unknown LoginAttempted".to_owned()),
        (Topic::Verifications, Event::MfaSucceeded(succeeded)) => {
            let mfa = required
                .get(&succeeded.challenge_id.as_uuid())
                .ok_or("follows a code for a challenge nobody required")?;
            if mfa.attempt_id != attempt || cause.causation_id != Some(mfa.event_id) {
                return Err("follows a code of another login".into());
            }
            Ok(())
        }
        (_, other) => Err(format!("is caused by {}", other.event_type().name())),
    }
}

/// What the clients saw agrees with the log: nothing they were told was accepted is missing,
/// nothing ended without an answer that the flow does not explain.
fn check_clients(
    records: &[LoginRecord],
    attempted: &HashMap<Uuid, Vec<&Envelope>>,
    approvals: &HashMap<Uuid, Vec<(Topic, &Envelope)>>,
    outcomes: &HashMap<Uuid, Vec<&Envelope>>,
    counts: &mut Counts,
    violations: &mut Vec<String>,
) {
    counts.logins = records.len();
    let answered: HashSet<Uuid> = records.iter().filter_map(|r| r.attempt_id).collect();
    counts.unanswered_attempts = attempted.keys().filter(|a| !answered.contains(a)).count();
    for record in records {
        counts.client_retries += u64::from(record.retries);
        if record.challenge_id.is_some() {
            counts.mfa_required += 1;
        }
        let Some(attempt) = record.attempt_id else {
            match &record.outcome {
                Outcome::Refused(why) => violations.push(format!("a login was refused: {why}")),
                _ => counts.not_accepted += 1,
            }
            continue;
        };
        counts.accepted += 1;
        if !attempted.contains_key(&attempt) {
            counts.losses += 1;
            violations.push(format!(
                "attempt {attempt}: accepted, but not on the event log"
            ));
        }
        let approved_by = |wanted: Topic| {
            approvals
                .get(&attempt)
                .is_some_and(|approved| approved.iter().any(|(topic, _)| *topic == wanted))
        };
        match &record.outcome {
            Outcome::Approved => {
                counts.approved += 1;
                if !approved_by(Topic::RiskDecisions) {
                    violations.push(format!(
                        "attempt {attempt}: the client was told approved; the log has no approval"
                    ));
                }
            }
            Outcome::ApprovedAfterMfa => {
                counts.approved_after_mfa += 1;
                if !approved_by(Topic::Verifications) {
                    violations.push(format!(
                        "attempt {attempt}: the code was accepted; the log has no approval"
                    ));
                }
            }
            Outcome::Rejected(_) => counts.rejected += 1,
            Outcome::Undecided => {
                counts.losses += 1;
                violations.push(format!(
                    "attempt {attempt}: accepted, still pending after 120 s"
                ));
            }
            Outcome::MfaUnfinished(why) => {
                let delivery_failed = record
                    .challenge_id
                    .and_then(|c| outcomes.get(&c))
                    .is_some_and(|found| {
                        found
                            .iter()
                            .any(|e| matches!(e.event, Event::CodeDeliveryFailed(_)))
                    });
                if why.starts_with("410") {
                    counts.superseded += 1;
                } else if !delivery_failed {
                    violations.push(format!("attempt {attempt}: MFA did not finish: {why}"));
                }
            }
            Outcome::Refused(why) => violations.push(format!("attempt {attempt}: refused: {why}")),
            Outcome::NotAccepted => {}
        }
        match record.code_reuse_refused {
            Some(true) => counts.codes_reused_and_refused += 1,
            Some(false) => {
                violations.push(format!("attempt {attempt}: a used code was accepted again"))
            }
            None => {}
        }
    }
}

/// Each user's last login of the scenario started after its faults were over: the system
/// must have taken it (a client retries for a minute).
fn check_recovery(latest: &[LoginRecord]) -> Vec<String> {
    let mut last: HashMap<usize, &LoginRecord> = HashMap::new();
    for record in latest {
        last.insert(record.user, record);
    }
    last.values()
        .filter(|record| record.outcome == Outcome::NotAccepted)
        .map(|record| {
            format!(
                "user {}: the last login was not accepted: the system did not come back",
                record.user
            )
        })
        .collect()
}

/// A SIGTERM must end the service within its shutdown timeout (10 s), plus the moment the
/// process takes to exit.
fn check_graceful_stops(stops: &[(String, Option<Duration>)]) -> Vec<String> {
    const LIMIT: Duration = Duration::from_millis(10_500);
    stops
        .iter()
        .filter(|(_, took)| took.is_none_or(|took| took > LIMIT))
        .map(|(service, took)| match took {
            Some(took) => format!("{service}: exited {took:?} after SIGTERM, over 10 s"),
            None => format!("{service}: still running 15 s after SIGTERM"),
        })
        .collect()
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "== chaos scenario `{}` ({:.0} s)",
            self.scenario, self.seconds
        )?;
        writeln!(f, "faults injected: {}", self.faults.len())?;
        for fault in &self.faults {
            writeln!(f, "  {:>6.1} s  {}", fault.at_secs, fault.what)?;
        }
        if !self.graceful_stops.is_empty() {
            let stops: Vec<String> = self
                .graceful_stops
                .iter()
                .map(|(service, took)| match took {
                    Some(took) => format!("{service} {:.2} s", took.as_secs_f64()),
                    None => format!("{service} did not stop"),
                })
                .collect();
            writeln!(f, "exits after SIGTERM: {}", stops.join(", "))?;
        }
        if !self.unplanned_exits.is_empty() {
            writeln!(
                f,
                "services that exited by themselves (started again): {}",
                self.unplanned_exits.join(", ")
            )?;
        }
        writeln!(
            f,
            "logins driven {}: accepted {}, not accepted {} (client retries {})",
            c.logins, c.accepted, c.not_accepted, c.client_retries
        )?;
        writeln!(
            f,
            "  approved at once {}, MFA {} (approved after the code {}, superseded {}), rejected {}, used codes refused again {}",
            c.approved, c.mfa_required, c.approved_after_mfa, c.superseded, c.rejected, c.codes_reused_and_refused
        )?;
        writeln!(
            f,
            "event log: attempts {} ({} unanswered), decisions {}, challenges {}, CodeSent {}, CodeDeliveryFailed {}, codes accepted {}, final approvals {}",
            c.attempts_logged, c.unanswered_attempts, c.decisions, c.challenges, c.codes_sent, c.code_delivery_failed, c.codes_accepted, c.final_approvals
        )?;
        writeln!(
            f,
            "  redelivered copies (same event id) {}, dead letters {}",
            c.redelivered_copies, c.dead_letters
        )?;
        let p = &c.proofs;
        writeln!(
            f,
            "proofs (mfa-audit verify): {} events in {} chains, {} of {} checkpoints signed and matched, {} duplicates, {} violations",
            p.events, p.chains, p.checkpoints_matched, p.checkpoints, p.duplicates, p.violations
        )?;
        writeln!(
            f,
            "emails {}, repeated emails {}",
            c.emails, c.repeated_emails
        )?;
        writeln!(
            f,
            "losses {}, violations {}",
            c.losses,
            self.violations.len()
        )?;
        for violation in self.violations.iter().take(20) {
            writeln!(f, "  VIOLATION {violation}")?;
        }
        if self.violations.len() > 20 {
            writeln!(f, "  ... and {} more", self.violations.len() - 20)?;
        }
        Ok(())
    }
}

/// The whole log as an auditor's `mfa-audit verify` sees it: every event sealed in its
/// producer's chain and covered by a checkpoint signed with that producer's key, whatever
/// was killed or restarted. The load has stopped and the services run, so a relay covers
/// its chain's tail within about a second: an uncovered tail is a violation, which the
/// audit's retries give the time to clear.
struct Proofs {
    summary: mfa_audit::verify::Summary,
    violations: Vec<String>,
}

async fn check_proofs(system: &System) -> Result<Proofs, HarnessError> {
    use mfa_audit::kafka_source::{KafkaSource, KafkaSourceConfig};
    use mfa_audit::verify::findings::{Finding, Severity};
    use mfa_audit::verify::{self, Options};

    let mut config = KafkaSourceConfig::new(&system.brokers(), NAMESPACE);
    config.quiet = true;
    let keys = shared::audit::PublicKeys::from_entries(&system.audit_keys.key_file().keys)
        .map_err(|error| HarnessError::setup("the run's audit key file", error))?;
    let (summary, findings) = tokio::task::spawn_blocking(move || {
        let mut source =
            KafkaSource::connect(&config).map_err(mfa_audit::source::SourceError::from)?;
        let mut findings: Vec<Finding> = Vec::new();
        let summary = verify::verify(&mut source, Options::new(keys), &mut findings)?;
        Ok::<_, HarnessError>((summary, findings))
    })
    .await
    .map_err(HarnessError::task("verifying the log"))??;
    let violations = findings
        .iter()
        .filter(|finding| finding.severity == Severity::Violation)
        .map(|finding| format!("mfa-audit verify: {finding}"))
        .collect();
    Ok(Proofs {
        summary,
        violations,
    })
}

/// Every account deleted while the broker was down was announced once it was back: the
/// change committed with its `AccountChanged` in the outbox, and login-intake's relay
/// published it (issue 10, item 4).
fn check_admin_changes(snapshot: &Snapshot, deleted: &[Uuid]) -> Vec<String> {
    deleted
        .iter()
        .filter(|user_id| {
            !snapshot.events.iter().any(|(topic, envelope)| {
                *topic == Topic::Accounts
                    && envelope.producer == "login-intake"
                    && matches!(&envelope.event, Event::AccountChanged(changed)
                        if changed.user_id.as_uuid() == **user_id
                            && changed.change == shared::events::AccountChange::Deleted)
            })
        })
        .map(|user_id| {
            format!("user {user_id}, deleted while the broker was down, was never announced")
        })
        .collect()
}
