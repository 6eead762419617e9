//! Drives a scenario through `risk-worker replay`, one login at a time, playing each side of
//! the MFA step: a legitimate user who is asked for a code types it (`MfaSucceeded` and the
//! verifier's final `LoginApproved`, so the engine learns the login as the live worker
//! would); an attacker cannot (`MfaFailed`).
//!
//! Protocol (the replay's contract): for each `LoginAttempted` line written, exactly one
//! decision line comes back, flushed before the replay reads on; other event types get no
//! answer. So the harness writes a login, reads one line, and writes the MFA events (which are
//! sent with the next login, as nothing answers them).
//!
//! With feedback (issue 17), a victim emailed a code for an attacker's login may click
//! "wasn't me" minutes to hours later (`feedback::report_for`): the verifier's `LoginFeedback`
//! joins the MFA events, sent when the stream reaches its time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use shared::domain::ChallengeId;
use shared::events::{
    Envelope, Event, LoginApproved, MfaFailed, MfaFailureReason, MfaSucceeded, SCHEMA_VERSION,
};
use uuid::Uuid;

use crate::decision::Decision;
use crate::feedback::{self, Report, ReportRate};
use crate::generator::{Login, Scenario};
use crate::geoip_files::{GeoIpFiles, ASN_VAR, CITY_VAR};

/// Namespace of the ids the harness gives the MFA events (UUID v5 of the decision's id), so
/// the same decisions always produce byte-identical input.
const MFA_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c2e_9a4d_4e51_8f0a_2d7c_5b3e_91a4);

/// How to start the replay.
#[derive(Debug, Clone)]
pub struct ReplayCommand {
    pub bin: PathBuf,
    pub model: Option<String>,
    pub geoip: Option<GeoIpFiles>,
}

impl ReplayCommand {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.arg("replay");
        if let Some(model) = &self.model {
            command.arg("--model").arg(model);
        }
        if let Some(geoip) = &self.geoip {
            command
                .env(CITY_VAR, &geoip.city_setting)
                .env(ASN_VAR, &geoip.asn_setting);
        }
        command.stderr(Stdio::inherit());
        command
    }

    fn spawn_piped(&self) -> Result<Child> {
        self.command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} replay", self.bin.display()))
    }
}

/// The decisions, one per login of the scenario, in order.
pub struct RunOutput {
    pub decisions: Vec<Decision>,
    /// From the first line written to the last decision read.
    pub elapsed: StdDuration,
    /// The "wasn't me" reports sent (none without feedback), in the order they were made.
    pub reports: Vec<Report>,
}

/// Runs the scenario through the replay; `record` receives every line sent. With `feedback`,
/// victims report attackers' challenged logins at that rate; without it the input is what
/// it was before feedback was measured.
pub fn drive(
    scenario: &Scenario,
    replay: &ReplayCommand,
    feedback: Option<ReportRate>,
    mut record: Option<&mut dyn Write>,
) -> Result<RunOutput> {
    let mut child = replay.spawn_piped()?;
    let mut stdin = BufWriter::with_capacity(
        1 << 16,
        child.stdin.take().context("replay stdin is piped")?,
    );
    let mut stdout = BufReader::new(child.stdout.take().context("replay stdout is piped")?);
    let mut decisions = Vec::with_capacity(scenario.logins.len());
    let mut line = Vec::with_capacity(1024);
    let mut answer = String::with_capacity(2048);
    let started = Instant::now();
    // MFA events wait until the stream reaches their time, so the input stays in time order
    // as the replay expects (a user takes a few seconds to type the code; other users' logins
    // go on meanwhile).
    let mut pending: BTreeMap<(DateTime<Utc>, u64), Envelope> = BTreeMap::new();
    let mut sequence = 0u64;
    let mut reports = Vec::new();
    for (n, login) in scenario.logins.iter().enumerate() {
        while let Some(entry) = pending.first_entry() {
            if entry.key().0 > login.envelope.occurred_at {
                break;
            }
            let event = entry.remove();
            line.clear();
            serde_json::to_writer(&mut line, &event)?;
            line.push(b'\n');
            send(&mut stdin, &mut record, &line)?;
        }
        line.clear();
        serde_json::to_writer(&mut line, &login.envelope)?;
        line.push(b'\n');
        send(&mut stdin, &mut record, &line)?;
        stdin.flush().context("writing to replay")?;
        answer.clear();
        let read = stdout
            .read_line(&mut answer)
            .context("reading from replay")?;
        if read == 0 {
            let status = child.wait()?;
            bail!(
                "replay ended ({status}) before answering login {n} of {}",
                scenario.logins.len()
            );
        }
        let decision = Decision::parse(answer.trim_end())
            .with_context(|| format!("the answer to login {n}"))?;
        if decision.attempt_id != login.envelope.attempt_id.as_uuid() {
            bail!(
                "login {n}: decision for attempt {} answers attempt {}",
                login.envelope.attempt_id,
                decision.attempt_id
            );
        }
        let mfa = mfa_events(login, &decision);
        let report =
            feedback.and_then(|rate| feedback::report_for(rate, n, login, &decision, &mfa));
        for event in mfa {
            pending.insert((event.occurred_at, sequence), event);
            sequence += 1;
        }
        if let Some(report) = report {
            pending.insert((report.at, sequence), report.envelope.clone());
            sequence += 1;
            reports.push(report);
        }
        decisions.push(decision);
    }
    for event in pending.into_values() {
        line.clear();
        serde_json::to_writer(&mut line, &event)?;
        line.push(b'\n');
        send(&mut stdin, &mut record, &line)?;
    }
    let elapsed = started.elapsed();
    finish(child, stdin, stdout)?;
    if let Some(record) = record {
        record.flush().context("writing the record")?;
    }
    Ok(RunOutput {
        decisions,
        elapsed,
        reports,
    })
}

fn send(
    stdin: &mut BufWriter<ChildStdin>,
    record: &mut Option<&mut dyn Write>,
    line: &[u8],
) -> Result<()> {
    stdin.write_all(line).context("writing to replay")?;
    if let Some(record) = record {
        record.write_all(line).context("writing the record")?;
    }
    Ok(())
}

fn finish(
    mut child: Child,
    stdin: BufWriter<ChildStdin>,
    mut stdout: BufReader<ChildStdout>,
) -> Result<()> {
    // Closing stdin ends the replay; anything it still prints is a protocol error.
    drop(stdin.into_inner().map_err(|e| e.into_error())?);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("replay exited with {status}");
    }
    if !rest.trim().is_empty() {
        bail!(
            "replay wrote lines nobody asked for: {}",
            rest.lines().next().unwrap_or("")
        );
    }
    Ok(())
}

/// What follows a decision that asks for a code: the user passes, the attacker fails.
pub fn mfa_events(login: &Login, decision: &Decision) -> Vec<Envelope> {
    let (Some(challenge), false) = (decision.challenge_id, decision.approved()) else {
        return Vec::new();
    };
    let Event::LoginAttempted(attempt) = &login.envelope.event else {
        return Vec::new();
    };
    let Some(user_id) = attempt.user_id else {
        return Vec::new();
    };
    if !attempt_password_ok(attempt) {
        return Vec::new();
    }
    let id = |what: &str| {
        let mut name = decision.event_id.as_bytes().to_vec();
        name.extend_from_slice(what.as_bytes());
        Uuid::new_v5(&MFA_NAMESPACE, &name)
    };
    // Typing the code takes the user a little while; a fixed function of the decision keeps
    // it reproducible.
    let delay = Duration::seconds(5 + (decision.event_id.as_u128() % 25) as i64);
    let at = login.envelope.occurred_at + delay;
    let envelope = |event_id: Uuid, event: Event| Envelope {
        event_id,
        schema_version: SCHEMA_VERSION,
        occurred_at: at,
        attempt_id: login.envelope.attempt_id,
        causation_id: Some(decision.event_id),
        producer: "verifier".to_owned(),
        event,
    };
    let challenge_id = ChallengeId::from_uuid(challenge);
    if login.label.is_legit() {
        vec![
            envelope(
                id("mfa_succeeded"),
                Event::MfaSucceeded(MfaSucceeded {
                    user_id,
                    challenge_id,
                }),
            ),
            envelope(
                id("login_approved"),
                Event::LoginApproved(LoginApproved {
                    counted: None,
                    user_id,
                    approved_after_mfa: true,
                    challenge_id: Some(challenge_id),
                    risk: None,
                }),
            ),
        ]
    } else {
        vec![envelope(
            id("mfa_failed"),
            Event::MfaFailed(MfaFailed {
                user_id,
                challenge_id,
                reason: MfaFailureReason::InvalidCode,
                attempts_remaining: 4,
            }),
        )]
    }
}

fn attempt_password_ok(attempt: &shared::events::LoginAttempted) -> bool {
    attempt.primary_factor == shared::domain::PrimaryFactor::Succeeded
}

/// Throughput of the replay reading a file: the whole process timed, decisions counted.
pub struct Throughput {
    pub decisions: u64,
    pub wall: StdDuration,
    /// User + system CPU time of the replay process.
    pub cpu: StdDuration,
}

pub fn throughput(replay: &ReplayCommand, input: &Path) -> Result<Throughput> {
    let file =
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut child = replay
        .command()
        .stdin(Stdio::from(file))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} replay", replay.bin.display()))?;
    let mut stdout = BufReader::with_capacity(1 << 16, child.stdout.take().context("piped")?);
    let mut decisions = 0u64;
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        if stdout.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        decisions += 1;
    }
    let status = child.wait()?;
    let wall = started.elapsed();
    if !status.success() {
        bail!("replay exited with {status}");
    }
    Ok(Throughput {
        decisions,
        wall,
        cpu: children_cpu().saturating_sub(cpu_before),
    })
}

/// CPU time of the waited-for children so far.
fn children_cpu() -> StdDuration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| StdDuration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
