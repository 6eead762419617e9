//! Issue 17: what a "wasn't me" buys. The code for an attacker's login is emailed to the
//! victim; the attacker cannot type it. The email's "wasn't me" link (the verifier's
//! `LoginFeedback`, source `email_link`) reports that login's address and device id, and the
//! risk worker makes that network and device high risk for the user. This module decides,
//! per emailed attacker challenge, whether and when the victim clicks, builds the event the
//! verifier would publish, and finds the attacker's later attempts from the reported network
//! (the repeats whose decisions the report can change).
//!
//! Determinism: whether a victim clicks and how late is a function of the decision's event
//! id alone (a UUID v5 of the input's ids), so the same seed always gives the same reports and
//! byte-identical replay input, and a report changes nothing that was decided before it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::domain::{DeviceId, UserId};
use shared::events::{
    Envelope, Event, FeedbackSource, FeedbackVerdict, LoginFeedback, ReportedClient, SCHEMA_VERSION,
};
use shared::personal::Personal;
use uuid::Uuid;

use crate::decision::Decision;
use crate::generator::Login;

/// The assumed share of victims who click "wasn't me" in the email that carried a code they
/// did not ask for. An assumption, not a measurement: no published figure for such links is
/// known to us. A code nobody asked for is an alarming, personal email (unlike bulk mail,
/// whose links are clicked a few percent of the time), but many are ignored or deleted
/// unread; half is a middle guess. `risk-eval run --feedback-rate` sets another.
pub const DEFAULT_REPORT_RATE: f64 = 0.5;

/// How late the victim clicks: log-uniform between these, as people read their email within
/// minutes at the desk or hours later (the code itself has long expired by then).
const MIN_DELAY_SECONDS: f64 = 120.0;
const MAX_DELAY_SECONDS: f64 = 12.0 * 3600.0;

/// Namespace of the feedback events' ids and of the draws (UUID v5 of the decision's id).
const FEEDBACK_NAMESPACE: Uuid = Uuid::from_u128(0x9c4e_1a7d_3b25_4f80_b6e2_71d0_5a8c_34f9);

/// The verifier publishes email-link feedback.
const PRODUCER: &str = "verifier";

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("a report rate is a probability from 0 to 1, not {0}")]
pub struct RateError(f64);

/// How often notified victims report: a probability, checked once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportRate(f64);

impl ReportRate {
    pub fn new(rate: f64) -> Result<Self, RateError> {
        if (0.0..=1.0).contains(&rate) {
            Ok(Self(rate))
        } else {
            Err(RateError(rate))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for ReportRate {
    fn default() -> Self {
        Self(DEFAULT_REPORT_RATE)
    }
}

impl std::fmt::Display for ReportRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for ReportRate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rate: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
        Self::new(rate).map_err(|e| e.to_string())
    }
}

/// A "wasn't me" the victim sent for an attacker's login.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The reported login's index in the scenario.
    pub login: usize,
    pub user: UserId,
    /// When the victim clicked (the event's `occurred_at`).
    pub at: DateTime<Utc>,
    /// The reported login's network, as the engine groups addresses.
    pub network: Network,
    pub device: Option<DeviceId>,
    /// The `LoginFeedback` the verifier publishes.
    pub envelope: Envelope,
}

/// The report, if the victim makes one, for login `index` answered by `decision`, whose MFA
/// events (`harness::mfa_events`) are `mfa`. Only an attacker's login with a new code emailed
/// (`MfaRequired`; a throttled login reuses a code already sent, and a rejection sends none)
/// and not passed (no `MfaSucceeded`: the attacker could not type the code) is reported: a
/// real user's own login never is.
pub fn report_for(
    rate: ReportRate,
    index: usize,
    login: &Login,
    decision: &Decision,
    mfa: &[Envelope],
) -> Option<Report> {
    if login.label.is_legit()
        || decision.event_type != "MfaRequired"
        || decision.challenge_id.is_none()
        || mfa
            .iter()
            .any(|e| matches!(e.event, Event::MfaSucceeded(_)))
    {
        return None;
    }
    let Event::LoginAttempted(attempt) = &login.envelope.event else {
        return None;
    };
    let (Some(user_id), Some(company_id)) = (attempt.user_id, attempt.company_id.clone()) else {
        return None;
    };
    let client = attempt.client.in_clear()?;
    let draw = Uuid::new_v5(&FEEDBACK_NAMESPACE, decision.event_id.as_bytes());
    let mut rng = ChaCha8Rng::seed_from_u64(draw.as_u64_pair().0 ^ draw.as_u64_pair().1);
    if !rng.gen_bool(rate.get()) {
        return None;
    }
    let delay = (rng.gen_range(MIN_DELAY_SECONDS.ln()..MAX_DELAY_SECONDS.ln())).exp();
    // After the attacker's wrong code too (`mfa`), though the delays cannot overlap today.
    let after = mfa
        .iter()
        .map(|e| e.occurred_at)
        .max()
        .unwrap_or(login.envelope.occurred_at)
        .max(login.envelope.occurred_at);
    let at = after + Duration::milliseconds((delay * 1000.0) as i64);
    let reported = ReportedClient {
        ip: Some(client.ip),
        device_id: client.device_id.clone(),
    };
    let envelope = Envelope {
        event_id: Uuid::new_v5(&FEEDBACK_NAMESPACE, draw.as_bytes()),
        schema_version: SCHEMA_VERSION,
        occurred_at: at,
        attempt_id: login.envelope.attempt_id,
        causation_id: None,
        producer: PRODUCER.to_owned(),
        event: Event::LoginFeedback(LoginFeedback {
            user_id,
            company_id,
            verdict: FeedbackVerdict::WasntMe,
            source: FeedbackSource::EmailLink,
            // A synthetic trace: in the clear, as the logins are (replay reads both).
            reported: Personal::Clear(reported),
        }),
    };
    Some(Report {
        login: index,
        user: user_id,
        at,
        network: Network::of(client.ip),
        device: client.device_id.clone(),
        envelope,
    })
}

/// An address's network as the risk engine groups them (`Level::Prefix` in the risk
/// worker's features): the /24 of an IPv4 address, the /48 of an IPv6 one. Kept here as a
/// copy because the evaluation talks to the engine only through replay's input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network(IpAddr);

impl Network {
    pub fn of(ip: IpAddr) -> Self {
        Self(match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, 0))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
            }
        })
    }
}

/// The scenario's attacker logins with the right password that come after a report by their
/// victim, from the network it reported: indices, in order. `reports` come from a run with
/// feedback; the same indices are scored in a run without it, so the two answer for the
/// same attempts.
pub fn repeats(logins: &[Login], reports: &[Report]) -> Vec<usize> {
    let mut by_user: BTreeMap<UserId, Vec<(DateTime<Utc>, Network)>> = BTreeMap::new();
    for report in reports {
        by_user
            .entry(report.user)
            .or_default()
            .push((report.at, report.network));
    }
    logins
        .iter()
        .enumerate()
        .filter_map(|(index, login)| {
            if login.label.is_legit() || !login.label.password_ok {
                return None;
            }
            let Event::LoginAttempted(attempt) = &login.envelope.event else {
                return None;
            };
            let user = attempt.user_id?;
            let network = Network::of(attempt.client.in_clear()?.ip);
            by_user
                .get(&user)?
                .iter()
                .any(|(at, reported)| *at < login.envelope.occurred_at && *reported == network)
                .then_some(index)
        })
        .collect()
}

/// Each reporting victim's first report: their own logins after it are the ones a report
/// could make harder for them.
pub fn first_reports(reports: &[Report]) -> BTreeMap<UserId, DateTime<Utc>> {
    let mut first = BTreeMap::new();
    for report in reports {
        first
            .entry(report.user)
            .and_modify(|at: &mut DateTime<Utc>| *at = (*at).min(report.at))
            .or_insert(report.at);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::mfa_events;
    use crate::labels::{Actor, AttackKind, Label};
    use chrono::TimeZone;
    use shared::domain::{
        AttemptId, AuthMethod, CompanyId, Locale, Platform, PrimaryFactor, UserAgent,
    };
    use shared::events::{LoginAttempted, LoginClient};

    const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36";

    fn user() -> UserId {
        UserId::from_uuid(Uuid::from_u128(7))
    }

    fn login(n: u128, at_minute: u32, ip: &str, legit: bool) -> Login {
        let at = Utc.with_ymd_and_hms(2025, 10, 20, 9, at_minute, 0).unwrap();
        let actor = if legit {
            Actor::Legit { user: 7 }
        } else {
            Actor::Attacker {
                kind: AttackKind::Targeted,
                victim: Some(7),
            }
        };
        Login {
            envelope: Envelope {
                event_id: Uuid::from_u128(1000 + n),
                schema_version: SCHEMA_VERSION,
                occurred_at: at,
                attempt_id: AttemptId::from_uuid(Uuid::from_u128(2000 + n)),
                causation_id: None,
                producer: "login-intake".to_owned(),
                event: Event::LoginAttempted(LoginAttempted {
                    user_id: Some(user()),
                    company_id: Some(CompanyId::parse("company-001").unwrap()),
                    auth_method: AuthMethod::Password,
                    primary_factor: PrimaryFactor::Succeeded,
                    privileged: false,
                    platform: Platform::Dashboard,
                    client: Personal::Clear(LoginClient {
                        ip: ip.parse().unwrap(),
                        user_agent: UserAgent::parse(UA).unwrap(),
                        device_id: Some(DeviceId::parse(&format!("web-{n:016x}")).unwrap()),
                    }),
                    locale: Locale::default(),
                }),
            },
            label: Label {
                actor,
                password_ok: true,
                causes: Vec::new(),
            },
        }
    }

    fn decision(login: &Login, n: u128, event_type: &str) -> Decision {
        Decision {
            event_id: Uuid::from_u128(3000 + n),
            attempt_id: login.envelope.attempt_id.as_uuid(),
            event_type: event_type.to_owned(),
            challenge_id: (event_type != "LoginApproved").then(|| Uuid::from_u128(4000 + n)),
            score: Some(1.0),
            level: Some("medium".to_owned()),
            reasons: vec!["new_device".to_owned()],
            model_version: Some("adaptive-1".to_owned()),
        }
    }

    fn always() -> ReportRate {
        ReportRate::new(1.0).unwrap()
    }

    #[test]
    fn a_challenged_attackers_unused_code_is_reported_after_the_challenge() {
        let attacker = login(1, 0, "203.0.113.9", false);
        let answer = decision(&attacker, 1, "MfaRequired");
        let mfa = mfa_events(&attacker, &answer);
        assert!(mfa.iter().all(|e| matches!(e.event, Event::MfaFailed(_))));
        let report = report_for(always(), 5, &attacker, &answer, &mfa).expect("reported");
        assert_eq!(report.login, 5);
        assert_eq!(report.user, user());
        let latest_mfa = mfa.iter().map(|e| e.occurred_at).max().unwrap();
        assert!(
            report.at >= latest_mfa + Duration::seconds(120),
            "{report:?}"
        );
        assert!(report.at <= latest_mfa + Duration::hours(12), "{report:?}");
        assert_eq!(report.envelope.occurred_at, report.at);
        assert_eq!(report.envelope.attempt_id, attacker.envelope.attempt_id);
        assert_eq!(report.envelope.producer, "verifier");
        let Event::LoginFeedback(feedback) = &report.envelope.event else {
            panic!("not a LoginFeedback: {:?}", report.envelope.event);
        };
        assert_eq!(feedback.verdict, FeedbackVerdict::WasntMe);
        assert_eq!(feedback.source, FeedbackSource::EmailLink);
        assert_eq!(
            feedback.reported.in_clear(),
            Some(&ReportedClient {
                ip: Some("203.0.113.9".parse().unwrap()),
                device_id: Some(DeviceId::parse("web-0000000000000001").unwrap()),
            })
        );
        // It reads back as the replay reads its input.
        let line = serde_json::to_vec(&report.envelope).unwrap();
        assert_eq!(Envelope::from_json(&line).unwrap(), report.envelope);
    }

    #[test]
    fn only_an_emailed_code_the_attacker_could_not_use_is_reported() {
        let attacker = login(1, 0, "203.0.113.9", false);
        for event_type in ["LoginApproved", "CodeThrottled", "LoginRejected"] {
            let answer = decision(&attacker, 1, event_type);
            let mfa = mfa_events(&attacker, &answer);
            assert_eq!(
                report_for(always(), 0, &attacker, &answer, &mfa),
                None,
                "{event_type}"
            );
        }
        // A real user's challenge is passed, and never reported.
        let user_login = login(2, 0, "198.51.100.7", true);
        let answer = decision(&user_login, 2, "MfaRequired");
        let mfa = mfa_events(&user_login, &answer);
        assert!(mfa
            .iter()
            .any(|e| matches!(e.event, Event::MfaSucceeded(_))));
        assert_eq!(report_for(always(), 0, &user_login, &answer, &mfa), None);
        // Nor is a code that was used, whoever's login it was.
        let answer = decision(&attacker, 1, "MfaRequired");
        assert_eq!(report_for(always(), 0, &attacker, &answer, &mfa), None);
        // At rate 0 nobody clicks.
        let mfa = mfa_events(&attacker, &answer);
        let never = ReportRate::new(0.0).unwrap();
        assert_eq!(report_for(never, 0, &attacker, &answer, &mfa), None);
    }

    #[test]
    fn reports_are_a_function_of_the_decision_and_about_as_frequent_as_the_rate() {
        let attacker = login(1, 0, "203.0.113.9", false);
        let half = ReportRate::new(0.5).unwrap();
        let mut made = 0;
        let mut delays = Vec::new();
        for n in 0..2000u128 {
            let answer = decision(&attacker, n, "MfaRequired");
            let mfa = mfa_events(&attacker, &answer);
            let first = report_for(half, 0, &attacker, &answer, &mfa);
            let again = report_for(half, 0, &attacker, &answer, &mfa);
            assert_eq!(first, again, "the same decision, the same report");
            if let Some(report) = first {
                made += 1;
                delays.push((report.at - attacker.envelope.occurred_at).num_seconds());
            }
        }
        assert!(
            (900..1100).contains(&made),
            "{made} of 2000 reported at 0.5"
        );
        delays.sort_unstable();
        // Minutes to hours: log-uniform from 2 min to 12 h has its median near 49 min.
        let median = delays[delays.len() / 2];
        assert!(
            (30 * 60..70 * 60).contains(&median),
            "median delay {median}s"
        );
    }

    #[test]
    fn repeats_are_the_victims_attackers_after_the_report_from_its_network() {
        let reported = login(1, 0, "203.0.113.9", false);
        let answer = decision(&reported, 1, "MfaRequired");
        let mfa = mfa_events(&reported, &answer);
        let mut report = report_for(always(), 0, &reported, &answer, &mfa).unwrap();
        report.at = reported.envelope.occurred_at + Duration::minutes(10);
        let logins = vec![
            reported,
            // Before the report, same network: not a repeat.
            login(2, 5, "203.0.113.77", false),
            // After it, same /24 (another address): a repeat.
            login(3, 20, "203.0.113.200", false),
            // After it, another network: not one.
            login(4, 25, "198.51.100.9", false),
            // The victim's own login from there: never counted as an attacker's.
            login(5, 30, "203.0.113.9", true),
            login(6, 40, "203.0.113.9", false),
        ];
        assert_eq!(repeats(&logins, &[report.clone()]), vec![2, 5]);
        assert_eq!(repeats(&logins, &[]), Vec::<usize>::new());
        assert_eq!(
            first_reports(&[report.clone()]).get(&user()),
            Some(&report.at)
        );
    }

    #[test]
    fn a_report_rate_is_a_probability() {
        assert!(ReportRate::new(0.5).is_ok());
        assert!(ReportRate::new(1.5).is_err());
        assert!(ReportRate::new(f64::NAN).is_err());
        assert!("-0.1".parse::<ReportRate>().is_err());
        assert_eq!("0.25".parse::<ReportRate>().unwrap().get(), 0.25);
    }

    #[test]
    fn networks_are_the_engines_prefixes() {
        let n = |ip: &str| Network::of(ip.parse().unwrap());
        assert_eq!(n("203.0.113.9"), n("203.0.113.250"));
        assert_ne!(n("203.0.113.9"), n("203.0.114.9"));
        assert_eq!(n("2001:db8:1:2::1"), n("2001:db8:1:ffff::9"));
        assert_ne!(n("2001:db8:1::1"), n("2001:db8:2::1"));
    }
}
