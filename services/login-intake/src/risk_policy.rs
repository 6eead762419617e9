//! A company's risk policy (admin API key): `PUT` replaces it whole, `GET` reads it with its
//! version. Stored in `company_risk_policies`; each change bumps the version and is announced
//! (`RiskPolicyChanged`, on the accounts topic, keyed by the company) through the outbox in
//! the change's own transaction. The risk worker decides the company's next logins under it,
//! live and in replay alike, from that event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SubsecRound, Utc};
use mfa_http::JsonBody;
use mfa_store::outbox;
use shared::domain::{AttemptId, CompanyId};
use shared::events::{
    ChallengeLevel, Cidr, CidrError, CompanyRiskPolicy, Envelope, Event, RiskPolicyChanged,
};
use sqlx::PgPool;

use crate::admin::CompanyPath;
use crate::error::ApiError;
use crate::intake::PRODUCER;
use crate::startup::AppState;

/// The scores a threshold may be set to: the model's scores are log10 likelihood ratios plus
/// a few penalties, within a few units of 0 (the deployment's defaults are -0.5 and 2.0).
pub const THRESHOLD_RANGE: std::ops::RangeInclusive<f64> = -10.0..=10.0;
/// How long a login may stay known: a day to ten years (the deployment keeps at most its
/// own `MFA_RISK_HISTORY_DAYS`).
pub const DEVICE_KNOWN_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;
pub const MAX_TRUSTED_NETWORKS: usize = 100;
/// The broadest trusted networks: a policy that trusted a large part of the Internet would
/// turn the second factor off for new devices everywhere (that is what observe-only is for).
pub const MIN_PREFIX_V4: u8 = 8;
pub const MIN_PREFIX_V6: u8 = 16;

/// A risk policy as an admin states it, and as `GET` shows it: every field optional (absent
/// or null: the deployment's default, the risk worker's `MFA_RISK_*` settings).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RiskPolicyBody {
    /// Score from which a login is medium risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -10, maximum = 10, example = -0.5)]
    pub medium_threshold: Option<f64>,
    /// Score from which a login is high risk; above `medium_threshold` when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -10, maximum = 10, example = 2.0)]
    pub high_threshold: Option<f64>,
    /// The risk levels that ask for a code: at least one of `medium`, `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1, example = json!(["medium", "high"]))]
    pub challenge_levels: Option<Vec<String>>,
    /// Networks in CIDR notation (host bits zero, at most /8 for IPv4 and /16 for IPv6, at
    /// most 100) where a new device, network, browser or a first login alone never asks for
    /// a code, e.g. the office; a deny-listed network, a burst of failures or impossible
    /// travel still do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100, example = json!(["198.51.100.0/24"]))]
    pub trusted_networks: Option<Vec<String>>,
    /// How many days an approved login (its device, network and browser) stays known: 1 to
    /// 3650, and no longer than the deployment keeps logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650, example = 90)]
    pub device_known_days: Option<i64>,
    /// Decide and record, but approve every login that would have asked for a code (its
    /// decision says `observed.would_have`); no code is emailed, and such a login's device is
    /// not learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe_only: Option<bool>,
    /// A "wasn't me" (`POST .../feedback` `wasnt_me`, from the client or an admin, or the
    /// notification email's link) means the password leaked: from then on a login with the
    /// user's password is `rejected` `password_change_required`, from a known device and
    /// network too, until the password is changed (`PUT /v1/admin/users/{user_id}/password`);
    /// a wrong password is still `invalid_credentials`, SSO and Google logins are not refused.
    /// Absent or false: the report only makes that network and device high risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = true)]
    pub password_change_on_takeover_report: Option<bool>,
}

/// Why a stated policy is refused: each with its machine-readable code (`code`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("{field} must be a score from -10 to 10, not {value}")]
    ThresholdOutOfRange { field: &'static str, value: f64 },
    #[error("medium_threshold ({medium}) must be below high_threshold ({high})")]
    ThresholdsOutOfOrder { medium: f64, high: f64 },
    #[error("challenge_levels: {0:?} is not `medium` or `high`")]
    UnknownChallengeLevel(String),
    #[error("challenge_levels must name at least one of `medium`, `high` (to ask for no code, use observe_only)")]
    NoChallengeLevel,
    #[error("trusted_networks: {0}")]
    InvalidCidr(#[source] CidrError),
    #[error(
        "trusted_networks: {0} is broader than /{MIN_PREFIX_V4} (IPv4) or /{MIN_PREFIX_V6} (IPv6)"
    )]
    NetworkTooBroad(Cidr),
    #[error("trusted_networks: {0} networks, at most {MAX_TRUSTED_NETWORKS}")]
    TooManyNetworks(usize),
    #[error("device_known_days must be 1 to 3650, not {0}")]
    DeviceKnownDaysOutOfRange(i64),
}

impl PolicyError {
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::ThresholdOutOfRange { .. } => "threshold_out_of_range",
            PolicyError::ThresholdsOutOfOrder { .. } => "thresholds_out_of_order",
            PolicyError::UnknownChallengeLevel(_) => "unknown_challenge_level",
            PolicyError::NoChallengeLevel => "no_challenge_level",
            PolicyError::InvalidCidr(_) => "invalid_cidr",
            PolicyError::NetworkTooBroad(_) => "network_too_broad",
            PolicyError::TooManyNetworks(_) => "too_many_networks",
            PolicyError::DeviceKnownDaysOutOfRange(_) => "device_known_days_out_of_range",
        }
    }
}

impl RiskPolicyBody {
    /// The policy it states, or the first thing wrong with it (in field order).
    pub fn parse(&self) -> Result<CompanyRiskPolicy, PolicyError> {
        let threshold = |field, value: Option<f64>| match value {
            Some(value) if !THRESHOLD_RANGE.contains(&value) => {
                Err(PolicyError::ThresholdOutOfRange { field, value })
            }
            _ => Ok(value),
        };
        let medium_threshold = threshold("medium_threshold", self.medium_threshold)?;
        let high_threshold = threshold("high_threshold", self.high_threshold)?;
        if let (Some(medium), Some(high)) = (medium_threshold, high_threshold) {
            if medium >= high {
                return Err(PolicyError::ThresholdsOutOfOrder { medium, high });
            }
        }
        let challenge_levels = match &self.challenge_levels {
            None => None,
            Some(names) if names.is_empty() => return Err(PolicyError::NoChallengeLevel),
            Some(names) => {
                let mut levels = Vec::with_capacity(2);
                for name in names {
                    let level = ChallengeLevel::parse(name)
                        .ok_or_else(|| PolicyError::UnknownChallengeLevel(name.clone()))?;
                    if !levels.contains(&level) {
                        levels.push(level);
                    }
                }
                // One order however stated, so an equal policy compares equal (no new version).
                levels.sort_by_key(|level| matches!(level, ChallengeLevel::High));
                Some(levels)
            }
        };
        let trusted_networks = match &self.trusted_networks {
            None => None,
            Some(texts) if texts.len() > MAX_TRUSTED_NETWORKS => {
                return Err(PolicyError::TooManyNetworks(texts.len()))
            }
            Some(texts) => {
                let mut networks = Vec::with_capacity(texts.len());
                for text in texts {
                    let network = Cidr::parse(text).map_err(PolicyError::InvalidCidr)?;
                    let min = if network.network().is_ipv4() {
                        MIN_PREFIX_V4
                    } else {
                        MIN_PREFIX_V6
                    };
                    if network.prefix_len() < min {
                        return Err(PolicyError::NetworkTooBroad(network));
                    }
                    if !networks.contains(&network) {
                        networks.push(network);
                    }
                }
                Some(networks)
            }
        };
        let device_known_days = match self.device_known_days {
            None => None,
            Some(days) => match u32::try_from(days) {
                Ok(valid) if DEVICE_KNOWN_DAYS.contains(&days) => Some(valid),
                _ => return Err(PolicyError::DeviceKnownDaysOutOfRange(days)),
            },
        };
        Ok(CompanyRiskPolicy {
            medium_threshold,
            high_threshold,
            challenge_levels,
            trusted_networks,
            device_known_days,
            observe_only: self.observe_only,
            password_change_on_takeover_report: self.password_change_on_takeover_report,
        })
    }

    /// As `GET` shows a stored policy.
    pub fn of(policy: &CompanyRiskPolicy) -> Self {
        Self {
            medium_threshold: policy.medium_threshold,
            high_threshold: policy.high_threshold,
            challenge_levels: policy.challenge_levels.as_ref().map(|levels| {
                levels
                    .iter()
                    .map(|level| match level {
                        ChallengeLevel::Medium => "medium".to_owned(),
                        ChallengeLevel::High => "high".to_owned(),
                    })
                    .collect()
            }),
            trusted_networks: policy
                .trusted_networks
                .as_ref()
                .map(|networks| networks.iter().map(Cidr::to_string).collect()),
            device_known_days: policy.device_known_days.map(i64::from),
            observe_only: policy.observe_only,
            password_change_on_takeover_report: policy.password_change_on_takeover_report,
        }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RiskPolicyInfo {
    pub company_id: String,
    /// 0 while the company has none (every setting is the deployment's default); each change
    /// adds one. Every risk decision records the version it was made under
    /// (`risk.policy_version`).
    pub version: u64,
    /// The policy in force: its absent fields are the deployment's defaults.
    pub policy: RiskPolicyBody,
    /// When it was last changed; null while the company has none.
    pub updated_at: Option<DateTime<Utc>>,
}

/// An answer of the risk-policy routes besides success.
#[derive(Debug, thiserror::Error)]
pub enum RiskPolicyApiError {
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for RiskPolicyApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Api(error.into())
    }
}

impl IntoResponse for RiskPolicyApiError {
    fn into_response(self) -> Response {
        match self {
            RiskPolicyApiError::Invalid(error) => mfa_http::error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.code(),
                error.to_string(),
            ),
            RiskPolicyApiError::Api(error) => error.into_response(),
        }
    }
}

const PUT_422: &str = "The policy is refused, with the first problem's code: \
`invalid_request` (an invalid company id, an unknown field, a value of the wrong type), \
`threshold_out_of_range`, `thresholds_out_of_order`, `unknown_challenge_level`, \
`no_challenge_level`, `invalid_cidr`, `network_too_broad`, `too_many_networks`, \
`device_known_days_out_of_range`";

/// Replace a company's risk policy (creating the company if it is new). A policy equal to the
/// one in force changes nothing (same version, nothing announced); any other bumps the version
/// and is announced (`RiskPolicyChanged`). The risk worker applies it within moments (once it
/// consumed the event): the decisions say which version they were made under.
#[utoipa::path(
    put, path = "/v1/admin/companies/{company_id}/risk-policy", params(CompanyPath),
    request_body = RiskPolicyBody, security(("api_key" = [])),
    responses(
        (status = 200, body = RiskPolicyInfo),
        (status = 401, description = "Missing or invalid admin key", body = mfa_http::ErrorBody),
        (status = 422, description = PUT_422, body = mfa_http::ErrorBody),
    )
)]
pub async fn set_risk_policy(
    State(state): State<AppState>,
    Path(CompanyPath { company_id: raw }): Path<CompanyPath>,
    JsonBody(request): JsonBody<RiskPolicyBody>,
) -> Result<Json<RiskPolicyInfo>, RiskPolicyApiError> {
    let company = CompanyId::parse(&raw).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let policy = request.parse()?;
    let stored = store_policy(
        state.intake.store.pool(),
        &company,
        &policy,
        &state.intake.topics.accounts,
        Utc::now(),
    )
    .await?;
    tracing::info!(%company, version = stored.version, "company risk policy set");
    Ok(Json(stored.info(&company)))
}

/// A company's risk policy and its version (0 and an empty policy while it has none).
#[utoipa::path(
    get, path = "/v1/admin/companies/{company_id}/risk-policy", params(CompanyPath),
    security(("api_key" = [])),
    responses(
        (status = 200, body = RiskPolicyInfo),
        (status = 401, description = "Missing or invalid admin key", body = mfa_http::ErrorBody),
        (status = 404, description = "`unknown_company`", body = mfa_http::ErrorBody),
    )
)]
pub async fn get_risk_policy(
    State(state): State<AppState>,
    Path(CompanyPath { company_id: raw }): Path<CompanyPath>,
) -> Result<Json<RiskPolicyInfo>, RiskPolicyApiError> {
    let company = CompanyId::parse(&raw).map_err(|_| ApiError::UnknownCompany)?;
    let stored = read_policy(state.intake.store.pool(), &company)
        .await?
        .ok_or(ApiError::UnknownCompany)?;
    Ok(Json(stored.info(&company)))
}

/// A company's policy as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    pub version: u64,
    pub policy: CompanyRiskPolicy,
    pub updated_at: Option<DateTime<Utc>>,
}

impl StoredPolicy {
    fn info(&self, company: &CompanyId) -> RiskPolicyInfo {
        RiskPolicyInfo {
            company_id: company.to_string(),
            version: self.version,
            policy: RiskPolicyBody::of(&self.policy),
            updated_at: self.updated_at,
        }
    }
}

type PolicyRow = (i64, serde_json::Value, DateTime<Utc>);
/// A company's row joined with its policy's, if it has one.
type MaybePolicyRow = (
    Option<i64>,
    Option<serde_json::Value>,
    Option<DateTime<Utc>>,
);

/// Reads a stored policy. Rows are written from a parsed policy by this module; one that no
/// longer reads (a hand-edited row) is reported as the error it is rather than shown as
/// something it is not.
fn stored(row: Option<PolicyRow>) -> Result<StoredPolicy, sqlx::Error> {
    let Some((version, json, updated_at)) = row else {
        return Ok(StoredPolicy {
            version: 0,
            policy: CompanyRiskPolicy::default(),
            updated_at: None,
        });
    };
    Ok(StoredPolicy {
        version: u64::try_from(version).unwrap_or(0),
        policy: serde_json::from_value(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        updated_at: Some(updated_at),
    })
}

/// The company's policy; None when there is no such company.
pub async fn read_policy(
    pool: &PgPool,
    company: &CompanyId,
) -> Result<Option<StoredPolicy>, sqlx::Error> {
    let row: Option<MaybePolicyRow> = sqlx::query_as(
        "SELECT p.version, p.policy, p.updated_at FROM companies c
             LEFT JOIN company_risk_policies p ON p.company_id = c.company_id
             WHERE c.company_id = $1",
    )
    .bind(company.as_str())
    .fetch_optional(pool)
    .await?;
    let Some((version, policy, updated_at)) = row else {
        return Ok(None);
    };
    let row = match (version, policy, updated_at) {
        (Some(version), Some(policy), Some(updated_at)) => Some((version, policy, updated_at)),
        _ => None,
    };
    stored(row).map(Some)
}

#[expect(
    clippy::expect_used,
    reason = "a policy is plain data with string keys: serde_json cannot fail on it"
)]
fn to_json(policy: &CompanyRiskPolicy) -> serde_json::Value {
    serde_json::to_value(policy).expect("plain data serialises")
}

/// Stores `policy` as the company's (creating the company if it is new) and announces it on
/// `topic`, in one transaction, unless it equals the one in force. Returns what is in force.
pub async fn store_policy(
    pool: &PgPool,
    company: &CompanyId,
    policy: &CompanyRiskPolicy,
    topic: &str,
    now: DateTime<Utc>,
) -> Result<StoredPolicy, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The company's row, locked: concurrent changes of its policy take turns, so versions
    // are never skipped nor given twice.
    sqlx::query("INSERT INTO companies (company_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(company.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT 1 FROM companies WHERE company_id = $1 FOR UPDATE")
        .bind(company.as_str())
        .execute(&mut *tx)
        .await?;
    let current: Option<PolicyRow> = sqlx::query_as(
        "SELECT version, policy, updated_at FROM company_risk_policies WHERE company_id = $1",
    )
    .bind(company.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let current = stored(current)?;
    if current.version > 0 && current.policy == *policy {
        return Ok(current);
    }
    let version = current.version + 1;
    // Microseconds, as PostgreSQL keeps times: the answer and a later `GET` agree.
    let now = now.trunc_subsecs(6);
    sqlx::query(
        "INSERT INTO company_risk_policies (company_id, version, policy, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (company_id) DO UPDATE
           SET version = EXCLUDED.version, policy = EXCLUDED.policy, updated_at = EXCLUDED.updated_at",
    )
    .bind(company.as_str())
    .bind(i64::try_from(version).unwrap_or(i64::MAX))
    .bind(to_json(policy))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // The admin operation's own id, as for `AccountChanged`: there is no login.
    let event = Envelope::new(
        PRODUCER,
        AttemptId::new(),
        None,
        now,
        Event::RiskPolicyChanged(RiskPolicyChanged {
            company_id: company.clone(),
            version,
            policy: policy.clone(),
        }),
    );
    outbox::enqueue(&mut tx, PRODUCER, topic, company.as_str(), &event).await?;
    tx.commit().await?;
    Ok(StoredPolicy {
        version,
        policy: policy.clone(),
        updated_at: Some(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> RiskPolicyBody {
        serde_json::from_value(json).unwrap()
    }

    fn refused(json: serde_json::Value) -> &'static str {
        body(json).parse().unwrap_err().code()
    }

    #[test]
    fn a_full_policy_parses_and_shows_as_stated() {
        let stated = body(serde_json::json!({
            "medium_threshold": 0.5,
            "high_threshold": 3,
            "challenge_levels": ["high", "medium", "high"],
            "trusted_networks": ["198.51.100.0/24", "2001:db8::/32", "198.51.100.0/24"],
            "device_known_days": 30,
            "observe_only": true,
            "password_change_on_takeover_report": true,
        }));
        let policy = stated.parse().unwrap();
        assert_eq!(policy.medium_threshold, Some(0.5));
        assert_eq!(policy.high_threshold, Some(3.0));
        assert_eq!(
            policy.challenge_levels,
            Some(vec![ChallengeLevel::Medium, ChallengeLevel::High])
        );
        assert_eq!(policy.trusted_networks.as_ref().map(Vec::len), Some(2));
        assert_eq!(policy.device_known_days, Some(30));
        assert_eq!(policy.observe_only, Some(true));
        assert!(policy.requires_password_change_on_takeover_report());
        let shown = RiskPolicyBody::of(&policy);
        assert_eq!(shown.parse().unwrap(), policy);
        assert_eq!(
            serde_json::to_value(&shown).unwrap()["trusted_networks"],
            serde_json::json!(["198.51.100.0/24", "2001:db8::/32"])
        );
        // An empty policy (and nulls) is the deployment's defaults.
        let empty = body(serde_json::json!({"observe_only": null}));
        assert_eq!(empty.parse().unwrap(), CompanyRiskPolicy::default());
        assert_eq!(
            serde_json::to_value(RiskPolicyBody::of(&CompanyRiskPolicy::default())).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn each_problem_is_refused_with_its_own_code() {
        use serde_json::json;
        assert_eq!(
            refused(json!({"medium_threshold": 10.5})),
            "threshold_out_of_range"
        );
        assert_eq!(
            refused(json!({"high_threshold": -11})),
            "threshold_out_of_range"
        );
        assert_eq!(
            refused(json!({"medium_threshold": 2, "high_threshold": 2})),
            "thresholds_out_of_order"
        );
        assert_eq!(
            refused(json!({"challenge_levels": ["low"]})),
            "unknown_challenge_level"
        );
        assert_eq!(
            refused(json!({"challenge_levels": []})),
            "no_challenge_level"
        );
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "office", "10.0.0.0"] {
            assert_eq!(
                refused(json!({"trusted_networks": [bad]})),
                "invalid_cidr",
                "{bad}"
            );
        }
        assert_eq!(
            refused(json!({"trusted_networks": ["0.0.0.0/0"]})),
            "network_too_broad"
        );
        assert_eq!(
            refused(json!({"trusted_networks": ["2000::/3"]})),
            "network_too_broad"
        );
        let many: Vec<String> = (0..101).map(|i| format!("10.0.{i}.0/24")).collect();
        assert_eq!(
            refused(json!({"trusted_networks": many})),
            "too_many_networks"
        );
        for days in [0, -1, 3651, i64::MAX] {
            assert_eq!(
                refused(json!({"device_known_days": days})),
                "device_known_days_out_of_range"
            );
        }
        // Unknown fields are the body's own error (`invalid_request`, from the extractor), and
        // so is a value of the wrong type: a switch is a JSON boolean, never "yes" or 1.
        assert!(serde_json::from_value::<RiskPolicyBody>(json!({"observe": true})).is_err());
        for wrong in [json!("true"), json!(1), json!(["true"])] {
            assert!(
                serde_json::from_value::<RiskPolicyBody>(
                    json!({"password_change_on_takeover_report": wrong})
                )
                .is_err(),
                "{wrong}"
            );
        }
        // Absent, null or false: today's behaviour.
        for off in [
            json!({}),
            json!({"password_change_on_takeover_report": null}),
            json!({"password_change_on_takeover_report": false}),
        ] {
            assert!(!body(off)
                .parse()
                .unwrap()
                .requires_password_change_on_takeover_report());
        }
    }
}
