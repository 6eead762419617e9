//! `mfa-audit recheck [--set MFA_RISK_...=VALUE ...]`: what a change of the risk settings
//! would have decided. The log's logins are replayed twice through the risk worker's own
//! decision core (`risk_worker::replay::Replay`: the same model, code caps and learning as the
//! live worker), once with the settings as the risk worker reads them from the environment,
//! once with the overrides on top, and the decisions that differ are listed with their old
//! and new reasons, and counted.
//!
//! Both replays read the same events in the same order, so with no override, or one that
//! sets a value already in force, nothing changes. A decision changes when its kind does
//! (approved, mfa_required, throttled, rejected) or its rejection reason does; a new score or
//! level that leaves the decision as it was is counted apart (`risk_only`).
//!
//! The live worker's own decisions in the log are compared with the replay under the current
//! settings (`live_matched`, `live_differed`): the replay starts with no history, so logins
//! whose users learned before the log began, or settings changed since, can differ; that
//! count says how far "old" is what really happened.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use risk_worker::config::ModelConfig;
use risk_worker::geo::GeoIp;
use risk_worker::replay::Replay;
use risk_worker::rules::Policy;
use shared::domain::AttemptId;
use shared::events::{Envelope, Event, RiskAssessment};

/// The settings `--set` may change: those the risk worker's decision reads
/// (`risk_worker::config::ModelConfig::from_env`), but not where its GeoIP data is.
pub const SETTINGS: [&str; 18] = [
    "MFA_RISK_MODEL",
    "MFA_RISK_MEDIUM_THRESHOLD",
    "MFA_RISK_HIGH_THRESHOLD",
    "MFA_RISK_PRIVILEGED_OFFSET",
    "MFA_RISK_CHALLENGE_LEVELS",
    "MFA_RISK_HISTORY_DAYS",
    "MFA_MAX_TRAVEL_SPEED_KMH",
    "MFA_FAILED_ATTEMPTS_THRESHOLD",
    "MFA_FAILED_ATTEMPTS_WINDOW_SECS",
    "MFA_IP_FAILURES_THRESHOLD",
    "MFA_IP_FAILED_ACCOUNTS_THRESHOLD",
    "MFA_IP_FAILURES_WINDOW_SECS",
    "MFA_DENYLIST_FILE",
    "MFA_DENYLIST_ACTION",
    "MFA_CODE_TTL_SECS",
    "MFA_CODE_EMAILS_PER_HOUR",
    "MFA_CODE_EMAIL_MIN_GAP_SECS",
    "MFA_FAILED_CODES_PER_DAY",
];

#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    #[error("--set {0:?}: expected NAME=VALUE")]
    NotAnAssignment(String),
    #[error("--set {name}: not a risk setting (the settings are {})", SETTINGS.join(", "))]
    UnknownSetting { name: String },
    #[error("the current risk settings")]
    Current(#[source] mfa_runtime::config::ConfigError),
    #[error("the risk settings with the overrides")]
    Proposed(#[source] mfa_runtime::config::ConfigError),
    #[error("the GeoIP databases")]
    GeoIp(#[source] mfa_runtime::config::ConfigError),
    /// A sealed event, and no data key that opens it (`MFA_MASTER_KEYS` and
    /// `MFA_DATABASE_URL` give the deployment's).
    #[error("reading the log's personal data")]
    DataKey(#[source] risk_worker::replay::ReplayError),
    /// Cannot happen: the replay's memory state never waits.
    #[error("the in-memory replay waited")]
    Waited,
}

/// One `--set NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub value: String,
}

impl Override {
    pub fn parse(raw: &str) -> Result<Self, RecheckError> {
        let (name, value) = raw
            .split_once('=')
            .ok_or_else(|| RecheckError::NotAnAssignment(raw.to_owned()))?;
        let name = name.trim();
        if !SETTINGS.contains(&name) {
            return Err(RecheckError::UnknownSetting { name: name.into() });
        }
        Ok(Self {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        })
    }
}

/// The current settings and the proposed ones, both read as the risk worker reads them.
///
/// The overrides are put into this process's environment between the two reads (the risk
/// worker's settings are read from nowhere else), so call it before any other thread starts:
/// first thing in `main`, before a source is opened.
pub fn settings(overrides: &[Override]) -> Result<(ModelConfig, ModelConfig), RecheckError> {
    let current = ModelConfig::from_env().map_err(RecheckError::Current)?;
    for Override { name, value } in overrides {
        std::env::set_var(name, value);
    }
    let proposed = ModelConfig::from_env().map_err(RecheckError::Proposed)?;
    Ok((current, proposed))
}

/// The GeoIP data the risk worker uses (`MFA_GEOIP_CITY_DB`, `MFA_GEOIP_ASN_DB`).
pub fn geoip(config: &ModelConfig) -> Result<Arc<GeoIp>, RecheckError> {
    Ok(Arc::new(config.geoip.open().map_err(RecheckError::GeoIp)?))
}

/// A decision, as compared.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecisionSummary {
    /// `approved`, `mfa_required`, `throttled` or `rejected`.
    pub decision: &'static str,
    /// With `rejected`.
    pub rejection_reason: Option<&'static str>,
    pub risk: Option<RiskAssessment>,
}

impl DecisionSummary {
    fn of(decision: &Envelope) -> Option<Self> {
        let (name, reason, risk) = match &decision.event {
            Event::LoginApproved(approved) => ("approved", None, approved.risk.clone()),
            Event::MfaRequired(required) => ("mfa_required", None, required.risk.clone()),
            Event::CodeThrottled(throttled) => ("throttled", None, throttled.risk.clone()),
            Event::LoginRejected(rejected) => (
                "rejected",
                Some(rejected.reason.as_str()),
                rejected.risk.clone(),
            ),
            _ => return None,
        };
        Some(Self {
            decision: name,
            rejection_reason: reason,
            risk,
        })
    }

    /// `mfa_required (medium 1.20: new_device, new_network)`.
    pub fn describe(&self) -> String {
        let mut out = self.decision.to_owned();
        let mut details = Vec::new();
        if let Some(reason) = self.rejection_reason {
            details.push(reason.to_owned());
        }
        if let Some(risk) = &self.risk {
            let reasons: Vec<&str> = risk.reasons.iter().map(|r| r.as_str()).collect();
            let mut risk_text = format!("{} {:.2}", risk.level.as_str(), risk.score);
            if !reasons.is_empty() {
                let _ = write!(risk_text, ": {}", reasons.join(", "));
            }
            details.push(risk_text);
        }
        if !details.is_empty() {
            let _ = write!(out, " ({})", details.join("; "));
        }
        out
    }

    fn same_decision(&self, other: &Self) -> bool {
        self.decision == other.decision && self.rejection_reason == other.rejection_reason
    }
}

/// A login decided otherwise under the proposed settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    pub attempt_id: AttemptId,
    pub at: chrono::DateTime<chrono::Utc>,
    pub old: DecisionSummary,
    pub new: DecisionSummary,
}

/// The counts of a recheck.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Logins replayed (decided by both).
    pub logins: u64,
    pub changed: u64,
    /// Same decision, another score or level.
    pub risk_only: u64,
    /// Logins the live worker would dead-letter (a user without a company): no decision.
    pub not_decided: u64,
    /// `old -> new`: how many.
    pub by_change: BTreeMap<String, u64>,
    /// Of the logins whose live decision is in the log, how many the replay with the current
    /// settings decided alike, and how many otherwise (settings changed since, or history
    /// from before the log began): how far "old" is what the live worker did.
    pub live_matched: u64,
    pub live_differed: u64,
}

/// The two replays, side by side.
pub struct Recheck {
    current: Replay,
    proposed: Replay,
    /// The changes listed (at most `max_listed`); `totals` counts them all.
    pub changes: Vec<Change>,
    pub totals: Totals,
    max_listed: usize,
    /// The current replay's decision of each login whose live decision is still to come
    /// (it follows within moments; older entries are dropped, see `apply`).
    awaiting_live: HashMap<AttemptId, (chrono::DateTime<chrono::Utc>, DecisionSummary)>,
    pruned_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How long a replayed decision waits for the live one in the log.
const LIVE_WAIT: chrono::Duration = chrono::Duration::hours(1);

impl Recheck {
    pub fn new(current: Policy, proposed: Policy, geo: Arc<GeoIp>, max_listed: usize) -> Self {
        Self {
            current: Replay::new(current, geo.clone()),
            proposed: Replay::new(proposed, geo),
            changes: Vec::new(),
            totals: Totals::default(),
            max_listed,
            awaiting_live: HashMap::new(),
            pruned_at: None,
        }
    }

    /// Opens sealed personal fields with the keys of `current` and `proposed` (one each: the
    /// two replays read them on their own), and hashes the shared counts under `pseudonyms`
    /// (the live worker's `MFA_PSEUDONYM_KEY`, so that erased logins count as they did).
    pub fn with_data_keys(
        mut self,
        current: impl risk_worker::replay::DataKeySource + Send + 'static,
        proposed: impl risk_worker::replay::DataKeySource + Send + 'static,
        pseudonyms: Option<shared::personal::PseudonymKey>,
    ) -> Self {
        if let Some(key) = pseudonyms {
            self.current.set_pseudonym_key(key.clone());
            self.proposed.set_pseudonym_key(key);
        }
        self.current.set_data_keys(current);
        self.proposed.set_data_keys(proposed);
        self
    }

    /// Reads the next event of the log (in log order, each once).
    pub fn apply(&mut self, event: &Envelope) -> Result<(), RecheckError> {
        let old = decide(&mut self.current, event)?;
        let new = decide(&mut self.proposed, event)?;
        if !matches!(event.event, Event::LoginAttempted(_)) {
            self.compare_live(event);
            return Ok(());
        }
        let (Some(old), Some(new)) = (old, new) else {
            self.totals.not_decided += 1;
            return Ok(());
        };
        self.totals.logins += 1;
        self.awaiting_live
            .insert(event.attempt_id, (event.occurred_at, old.clone()));
        if old.same_decision(&new) {
            if old.risk != new.risk {
                self.totals.risk_only += 1;
            }
            return Ok(());
        }
        self.totals.changed += 1;
        *self
            .totals
            .by_change
            .entry(format!("{} -> {}", label(&old), label(&new)))
            .or_default() += 1;
        if self.changes.len() < self.max_listed {
            self.changes.push(Change {
                attempt_id: event.attempt_id,
                at: event.occurred_at,
                old,
                new,
            });
        }
        Ok(())
    }

    /// A live decision of the log (the risk worker's), against the current replay's.
    fn compare_live(&mut self, event: &Envelope) {
        let at = event.occurred_at;
        if self.pruned_at.is_none_or(|last| at - last > LIVE_WAIT) {
            self.awaiting_live
                .retain(|_, (decided_at, _)| at - *decided_at <= LIVE_WAIT);
            self.pruned_at = Some(at);
        }
        let is_risk_decision = match &event.event {
            Event::LoginApproved(approved) => !approved.approved_after_mfa,
            Event::MfaRequired(_) | Event::CodeThrottled(_) | Event::LoginRejected(_) => true,
            _ => false,
        };
        if !is_risk_decision {
            return;
        }
        let (Some(live), Some((_, replayed))) = (
            DecisionSummary::of(event),
            self.awaiting_live.remove(&event.attempt_id),
        ) else {
            return;
        };
        if live.same_decision(&replayed) {
            self.totals.live_matched += 1;
        } else {
            self.totals.live_differed += 1;
        }
    }

    pub fn render_table(&self, overrides: &[Override]) -> String {
        let mut out = String::new();
        if overrides.is_empty() {
            out.push_str("recheck: no override: the current settings against themselves\n");
        } else {
            let set: Vec<String> = overrides
                .iter()
                .map(|o| format!("{}={}", o.name, o.value))
                .collect();
            let _ = writeln!(out, "recheck with {}", set.join(" "));
        }
        for change in &self.changes {
            let _ = writeln!(
                out,
                "{}  {}\n    was: {}\n    now: {}",
                change.at.format("%Y-%m-%d %H:%M:%SZ"),
                change.attempt_id,
                change.old.describe(),
                change.new.describe()
            );
        }
        if self.totals.changed as usize > self.changes.len() {
            let _ = writeln!(
                out,
                "... {} more not listed",
                self.totals.changed as usize - self.changes.len()
            );
        }
        let _ = writeln!(
            out,
            "\n{} logins replayed: {} decisions would change, {} only in score or level, {} not decided",
            self.totals.logins, self.totals.changed, self.totals.risk_only, self.totals.not_decided
        );
        for (change, count) in &self.totals.by_change {
            let _ = writeln!(out, "  {change}: {count}");
        }
        let live = self.totals.live_matched + self.totals.live_differed;
        if live > 0 {
            let _ = writeln!(
                out,
                "the current settings replayed decide {} of the {live} logged decisions as the live worker did{}",
                self.totals.live_matched,
                if self.totals.live_differed > 0 {
                    " (the others: settings changed since, or history from before the log began)"
                } else {
                    ""
                }
            );
        }
        out
    }

    pub fn render_json(&self, overrides: &[Override]) -> serde_json::Value {
        serde_json::json!({
            "overrides": overrides.iter().map(|o| (o.name.clone(), o.value.clone())).collect::<BTreeMap<_, _>>(),
            "totals": self.totals,
            "changes": self.changes,
        })
    }
}

fn label(summary: &DecisionSummary) -> String {
    match summary.rejection_reason {
        Some(reason) => format!("rejected ({reason})"),
        None => summary.decision.to_owned(),
    }
}

/// The replay's decision on `event` (None for events that are not logins). Over the memory
/// state every step is done when called, so one poll completes it, as `Replay::run` does.
fn decide(replay: &mut Replay, event: &Envelope) -> Result<Option<DecisionSummary>, RecheckError> {
    let mut handling = pin!(replay.handle(event));
    match handling
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(decision)) => Ok(decision.as_ref().and_then(DecisionSummary::of)),
        Poll::Ready(Err(error)) => Err(RecheckError::DataKey(error)),
        Poll::Pending => Err(RecheckError::Waited),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::tests::Log;
    use shared::domain::{Platform, PrimaryFactor, UserId};

    /// A user's first login (a code, passed), the same context again, a wrong password, and a
    /// second user's first login.
    fn known_log() -> Vec<Envelope> {
        let user = UserId::new();
        let mut log = Log::new();
        let first = log.login(
            user,
            0,
            Platform::Dashboard,
            "198.51.100.23",
            PrimaryFactor::Succeeded,
        );
        let (required, challenge) = log.require_code(&first, user, 1);
        log.pass(&required, user, challenge, 30);
        let known = log.login(
            user,
            100,
            Platform::Dashboard,
            "198.51.100.23",
            PrimaryFactor::Succeeded,
        );
        // The live worker's decisions of those two are in the log as well.
        log.approve(&known, user, 101);
        let wrong_password = log.login(
            user,
            200,
            Platform::Dashboard,
            "198.51.100.23",
            PrimaryFactor::Failed,
        );
        log.reject(&wrong_password, user, 201);
        log.login(
            UserId::new(),
            300,
            Platform::Ios,
            "203.0.113.9",
            PrimaryFactor::Succeeded,
        );
        log.events
    }

    fn recheck(proposed: Policy) -> Recheck {
        recheck_from(Policy::default(), proposed)
    }

    fn recheck_from(current: Policy, proposed: Policy) -> Recheck {
        let mut recheck = Recheck::new(current, proposed, Arc::new(GeoIp::none()), 100);
        for event in known_log() {
            recheck.apply(&event).unwrap();
        }
        recheck
    }

    #[test]
    fn the_same_settings_change_nothing() {
        let recheck = recheck(Policy::default());
        assert_eq!(recheck.totals.logins, 4);
        assert_eq!(recheck.totals.changed, 0);
        assert_eq!(recheck.totals.risk_only, 0);
        assert!(recheck.changes.is_empty());
        let table = recheck.render_table(&[]);
        assert!(
            table.contains("4 logins replayed: 0 decisions would change"),
            "{table}"
        );
        // The replay decides as the live worker did, for the three decisions in the log.
        assert_eq!(
            (recheck.totals.live_matched, recheck.totals.live_differed),
            (3, 0)
        );
        assert!(
            table.contains("decide 3 of the 3 logged decisions"),
            "{table}"
        );
    }

    #[test]
    fn current_settings_unlike_the_live_workers_show_in_the_live_comparison() {
        let mut lowered = Policy::default();
        lowered.risk.medium_threshold = -1000.0;
        let recheck = recheck_from(lowered, Policy::default());
        assert_eq!(
            (recheck.totals.live_matched, recheck.totals.live_differed),
            (2, 1)
        );
    }

    #[test]
    fn a_lower_threshold_asks_the_known_login_for_a_code() {
        let mut proposed = Policy::default();
        proposed.risk.medium_threshold = -1000.0;
        let recheck = recheck(proposed);
        // Only the approved login changes: first logins already asked for a code, and a wrong
        // password is refused whatever the risk.
        assert_eq!(recheck.totals.changed, 1, "{:?}", recheck.changes);
        let change = &recheck.changes[0];
        assert_eq!(change.at, crate::timeline::tests::t(100));
        assert_eq!(change.old.decision, "approved");
        assert_eq!(change.new.decision, "mfa_required");
        assert_eq!(
            change.new.risk.as_ref().map(|r| r.level.as_str()),
            Some("medium")
        );
        assert_eq!(
            recheck.totals.by_change,
            BTreeMap::from([("approved -> mfa_required".to_owned(), 1)])
        );
        let json =
            recheck.render_json(&[Override::parse("MFA_RISK_MEDIUM_THRESHOLD=-1000").unwrap()]);
        assert_eq!(json["totals"]["changed"], 1);
        assert_eq!(json["overrides"]["MFA_RISK_MEDIUM_THRESHOLD"], "-1000");
    }

    #[test]
    fn only_risk_settings_can_be_set() {
        assert_eq!(
            Override::parse(" MFA_RISK_HIGH_THRESHOLD = 3 ").unwrap(),
            Override {
                name: "MFA_RISK_HIGH_THRESHOLD".into(),
                value: "3".into()
            }
        );
        assert!(matches!(
            Override::parse("MFA_RISK_HIGH_THRESHOLD"),
            Err(RecheckError::NotAnAssignment(_))
        ));
        assert!(matches!(
            Override::parse("MFA_DATABASE_URL=postgres://"),
            Err(RecheckError::UnknownSetting { .. })
        ));
        assert!(matches!(
            Override::parse("MFA_RISK_THRESHOLD=1"),
            Err(RecheckError::UnknownSetting { .. })
        ));
    }
}
