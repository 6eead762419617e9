//! One login through the model, the same for the live worker and `replay`: features from the
//! event and GeoIP, the assessment against the state read for it, and the verdict.

use chrono::{DateTime, Utc};
use shared::domain::AttemptId;
use std::net::IpAddr;

use shared::events::{
    LoginAttempted, LoginClient, Observed, RejectionReason, RiskAssessment, WouldHave,
};

use crate::model::assess::{self, Input, UserFacts, Velocity};
use crate::model::features::Features;
use crate::model::freeman::GlobalCounts;
use crate::model::state::AccountKey;
use crate::rules::{decide_in_force, password_must_change, InForce, Verdict};

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
    // Before anything the model says: no signal of the login tells the reported attacker,
    // who has the password, from the user (`rules::password_must_change`).
    let must_change = state.user.is_some_and(|user| user.password_change_required);
    let verdict = if password_must_change(attempt, must_change) {
        Verdict::Reject(RejectionReason::PasswordChangeRequired)
    } else {
        decide_in_force(attempt, client.ip, &risk, in_force)
    };
    risk.policy_version = in_force.recorded_version();
    if matches!(verdict, Verdict::Observed { .. }) {
        risk.observed = Some(Observed {
            would_have: WouldHave::MfaRequired,
        });
    }
    (risk, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::GeoIp;
    use crate::rules::{CompanyPolicy, Policy};
    use shared::domain::{AuthMethod, DeviceId, Platform, PrimaryFactor, UserAgent, UserId};
    use shared::events::CompanyRiskPolicy;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    fn login(auth_method: AuthMethod, client: &LoginClient) -> LoginAttempted {
        LoginAttempted {
            user_id: Some(UserId::new()),
            company_id: None,
            auth_method,
            primary_factor: PrimaryFactor::Succeeded,
            privileged: false,
            platform: Platform::Dashboard,
            client: shared::personal::Personal::Clear(client.clone()),
            locale: shared::domain::Locale::En,
        }
    }

    /// The mark comes before the model and the company's policy: a login the policy would
    /// approve without a code (observe-only) is refused, and says nothing was observed.
    #[test]
    fn a_password_that_must_change_is_refused_before_the_model_and_the_policy_have_their_say() {
        let client = LoginClient {
            ip: "81.2.69.142".parse().unwrap(),
            user_agent: UserAgent::parse(CHROME).unwrap(),
            device_id: Some(DeviceId::parse("laptop").unwrap()),
        };
        let features = Features::of(&client, &GeoIp::none());
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let global = GlobalCounts::default();
        let policy = Policy::default();
        let observe_only = CompanyPolicy {
            version: 1,
            policy: CompanyRiskPolicy {
                observe_only: Some(true),
                ..CompanyRiskPolicy::default()
            },
        };
        for company in [None, Some(&observe_only)] {
            let in_force = policy.in_force(company);
            let decide = |auth_method, password_change_required| {
                let user = UserFacts {
                    password_change_required,
                    ..UserFacts::default()
                };
                evaluate(
                    &login(auth_method, &client),
                    &client,
                    &features,
                    at,
                    StateView {
                        user: Some(&user),
                        global: &global,
                        velocity: Velocity::default(),
                    },
                    &in_force,
                )
            };
            let (risk, verdict) = decide(AuthMethod::Password, true);
            assert_eq!(
                verdict,
                Verdict::Reject(RejectionReason::PasswordChangeRequired)
            );
            assert_eq!(risk.observed, None);
            // The assessment is still recorded, under the policy's version.
            assert_eq!(risk.policy_version, in_force.recorded_version());
            for (auth_method, marked) in [
                (AuthMethod::Password, false),
                (AuthMethod::Sso, true),
                (AuthMethod::Google, true),
            ] {
                let (_, verdict) = decide(auth_method, marked);
                assert!(
                    !matches!(verdict, Verdict::Reject(_)),
                    "{auth_method:?} {marked}: {verdict:?}"
                );
            }
        }
    }
}
