//! One login through the model, the same for the live worker and `replay`: features from the
//! event and GeoIP, the assessment against the state read for it, and the verdict.

use chrono::{DateTime, Utc};
use shared::domain::AttemptId;
use std::net::IpAddr;

use shared::events::{LoginAttempted, LoginClient, Observed, RiskAssessment, WouldHave};

use crate::model::assess::{self, Input, UserFacts, Velocity};
use crate::model::features::Features;
use crate::model::freeman::GlobalCounts;
use crate::model::state::AccountKey;
use crate::rules::{decide_in_force, InForce, Verdict};

/// The account a failed attempt counts against.
pub fn account_key(attempt_id: AttemptId, attempt: &LoginAttempted) -> AccountKey {
    match attempt.user_id {
        Some(user_id) => AccountKey(user_id.to_string()),
        None => AccountKey(format!("unknown:{attempt_id}")),
    }
}

/// The address as the velocity signals count it.
pub fn ip_key(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// What the model reads about one login, from PostgreSQL or from memory.
pub struct StateView<'a> {
    /// The user's approved history; None for an unknown account.
    pub user: Option<&'a UserFacts>,
    pub global: &'a GlobalCounts,
    pub velocity: Velocity,
}

pub fn evaluate(
    attempt: &LoginAttempted,
    client: &LoginClient,
    features: &Features,
    at: DateTime<Utc>,
    state: StateView<'_>,
    in_force: &InForce<'_>,
) -> (RiskAssessment, Verdict) {
    let policy = &in_force.policy;
    let mut risk = assess::assess(
        &Input {
            at,
            features,
            user: attempt.user_id.and(state.user),
            global: state.global,
            velocity: state.velocity,
            denylisted: policy.risk.denylist.contains(client.ip),
            privileged: attempt.privileged,
            platform: attempt.platform,
        },
        &policy.risk,
    );
    let verdict = decide_in_force(attempt, client.ip, &risk, in_force);
    risk.policy_version = in_force.recorded_version();
    if matches!(verdict, Verdict::Observed { .. }) {
        risk.observed = Some(Observed {
            would_have: WouldHave::MfaRequired,
        });
    }
    (risk, verdict)
}
