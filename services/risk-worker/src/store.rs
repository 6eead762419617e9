//! The risk worker's tables: each user's approved logins (the model's history), the global
//! value counts, failed attempts, the decisions, and the challenges it issued (code caps).
//! The rules of what counts mirror `crate::model::state::MemoryState`, which `replay` uses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::{AttemptId, CompanyId, DeviceId, UserId};
use shared::events::{CompanyRiskPolicy, Envelope, RiskPolicyChanged};
use shared::personal::PseudonymKey;
use sqlx::{PgPool, Postgres, Transaction};

use shared::domain::ChallengeId;
use uuid::Uuid;

use crate::consumer::PRODUCER;
use crate::decision::{Failure, Learning, LoginState};
use crate::model::assess::{
    HistoryEntry, Reported, UserFacts, UserHistory, Velocity, HISTORY_READ_LIMIT,
};
use crate::model::epochs::Epoch;
use crate::model::features::{Features, Level};
use crate::model::freeman::GlobalCounts;
use crate::rules::{CodeHistory, CompanyPolicy, PendingCode};
use crate::state::{
    ClosedChallenge, Decided, HistoryQuery, LoginStateQuery, Outcome, PasswordChangeRequired,
    ReportedLogin, RiskState, VelocityQuery, WrongCode,
};

#[derive(Clone)]
pub struct RiskStore {
    pool: PgPool,
    /// The global counts and the failures by address are kept by keyed hash, never by value:
    /// they outlive the users whose logins they count (issue 14).
    pseudonyms: PseudonymKey,
}

#[expect(
    clippy::expect_used,
    reason = "features and events are plain data with string keys: serde_json cannot fail on them"
)]
fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).expect("plain data serialises")
}

/// The rows of `risk_global_values` a login counts in: its pseudonymous features' levels and
/// values (keyed hashes, never values).
fn global_keys(global: &Features) -> (Vec<&'static str>, Vec<&str>) {
    global.values().map(|(l, v)| (l.as_str(), v)).unzip()
}

fn since(at: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    shared::time::saturating_sub(at, window)
}

/// The history's rows (time and features), oldest first.
fn history_of(rows: impl IntoIterator<Item = (DateTime<Utc>, serde_json::Value)>) -> UserHistory {
    UserHistory {
        entries: rows
            .into_iter()
            // Rows are written from `Features` by this service; one that no longer parses (a
            // downgrade) is skipped rather than blocking every login.
            .filter_map(|(at, json)| {
                serde_json::from_value(json)
                    .ok()
                    .map(|features| HistoryEntry { at, features })
            })
            .collect(),
    }
}

/// The global counts from their rows: the login's values' counts by level, the distinct
/// values by level (with the users learned as the level `USERS_LEVEL`), and the logins.
fn global_of(
    matching: Vec<(String, i64)>,
    mut distinct: Vec<(String, i64)>,
    logins: i64,
) -> GlobalCounts {
    let users = distinct
        .iter()
        .position(|(level, _)| level == USERS_LEVEL)
        .map_or(0, |at| distinct.swap_remove(at).1);
    let by_level = |rows: Vec<(String, i64)>| {
        rows.into_iter()
            .filter_map(|(level, n)| Some((Level::from_name(&level)?, n.max(0) as u64)))
            .collect()
    };
    let mut global = GlobalCounts {
        distinct: by_level(distinct),
        users: users.max(0) as u64,
        ..GlobalCounts::default()
    };
    global.counts.logins = logins.max(0) as u64;
    global.counts.matching = by_level(matching);
    global
}

fn velocity_of(account_failures: i64, ip_failures: i64, ip_failed_accounts: i64) -> Velocity {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    Velocity {
        account_failures: count(account_failures),
        ip_failures: count(ip_failures),
        ip_failed_accounts: count(ip_failed_accounts),
    }
}

impl RiskStore {
    pub fn new(pool: PgPool, pseudonyms: PseudonymKey) -> Self {
        Self { pool, pseudonyms }
    }

    /// The decision already made for this attempt, if any.
    pub async fn decision(&self, attempt_id: AttemptId) -> Result<Option<Envelope>, sqlx::Error> {
        let row: Option<(serde_json::Value,)> =
            sqlx::query_as("SELECT decision_event FROM risk_decisions WHERE attempt_id = $1")
                .bind(attempt_id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(json,)| serde_json::from_value(json).ok()))
    }

    /// The user's approved logins of the `window` before `at`, oldest first. Older ones are
    /// forgotten for good, as `MemoryState` forgets them: a company's policy may make the
    /// window shorter than housekeeping's, and a window made longer again must find in
    /// PostgreSQL what replay still has, no more.
    pub async fn history(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
        window: Duration,
    ) -> Result<UserHistory, sqlx::Error> {
        // One round trip; the SELECT reads the rows as they were, and keeps none the DELETE
        // removes.
        let rows: Vec<(DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
            "WITH forgotten AS (
               DELETE FROM risk_login_history WHERE user_id = $1 AND occurred_at < $2
             )
             SELECT occurred_at, features FROM (
               SELECT occurred_at, attempt_id, features FROM risk_login_history
               WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at <= $3
               ORDER BY occurred_at DESC, attempt_id DESC LIMIT $4
             ) AS newest
             ORDER BY occurred_at, attempt_id",
        )
        .bind(user_id.as_uuid())
        .bind(since(at, window))
        .bind(at)
        .bind(HISTORY_READ_LIMIT as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(history_of(rows))
    }

    /// The global counts of `login`'s values, as a login at `at` reads them: of `at`'s epoch
    /// and the one before (`ValueCounts::count_at`, in SQL).
    pub async fn global(
        &self,
        login: &Features,
        at: DateTime<Utc>,
    ) -> Result<GlobalCounts, sqlx::Error> {
        let epoch = Epoch::of(at);
        let (levels, values) = global_keys(login);
        let matching: Vec<(String, i64)> = sqlx::query_as(
            "SELECT g.level,
                    CASE g.epoch WHEN $3 THEN g.count + g.previous
                                 WHEN $4 THEN g.count
                                 WHEN $5 THEN g.previous
                                 ELSE 0 END
             FROM risk_global_values g
             JOIN unnest($1::text[], $2::text[]) AS wanted (level, value)
               ON g.level = wanted.level AND g.value = wanted.value",
        )
        .bind(&levels)
        .bind(&values)
        .bind(epoch.start())
        .bind(epoch.previous().start())
        .bind(epoch.next().start())
        .fetch_all(&self.pool)
        .await?;
        // The `user` level counts the users learned, not a feature of the model.
        let distinct: Vec<(String, i64)> = sqlx::query_as(
            "SELECT level, sum(values_seen)::bigint FROM risk_global_levels
             WHERE epoch IN ($1, $2) GROUP BY level",
        )
        .bind(epoch.start())
        .bind(epoch.previous().start())
        .fetch_all(&self.pool)
        .await?;
        let (logins,): (i64,) = sqlx::query_as(
            "SELECT coalesce(sum(logins), 0)::bigint FROM risk_global_totals
             WHERE epoch IN ($1, $2)",
        )
        .bind(epoch.start())
        .bind(epoch.previous().start())
        .fetch_one(&self.pool)
        .await?;
        Ok(global_of(matching, distinct, logins))
    }

    pub async fn velocity(&self, query: &VelocityQuery<'_>) -> Result<Velocity, sqlx::Error> {
        let at = query.at;
        let (account_failures, ip_failures, ip_failed_accounts): (i64, i64, i64) = sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM risk_failed_attempts
                 WHERE account = $1 AND occurred_at >= $2 AND occurred_at < $5),
               (SELECT count(*) FROM risk_failed_attempts
                 WHERE ip = $3 AND occurred_at >= $4 AND occurred_at < $5),
               (SELECT count(DISTINCT account) FROM risk_failed_attempts
                 WHERE ip = $3 AND occurred_at >= $4 AND occurred_at < $5)",
        )
        .bind(query.account.map(|a| a.0.as_str()))
        .bind(since(at, query.account_window))
        .bind(query.ip)
        .bind(since(at, query.ip_window))
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok(velocity_of(
            account_failures,
            ip_failures,
            ip_failed_accounts,
        ))
    }

    /// Stores the decision and its effects in one transaction, with the decision in the
    /// outbox for `topic` under the partition `key`. Returns false when another delivery of
    /// the same attempt stored one first (then nothing was changed).
    pub async fn record(
        &self,
        decided: &Decided<'_>,
        topic: &str,
        key: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let effects = decided.effects;
        let features = to_json(decided.features);
        let learn_now = effects.learning == Learning::Now;
        // The features are kept only for a login learned once its code is passed: the
        // others can never be learned later.
        let kept_features = (effects.learning == Learning::AfterMfa).then_some(&features);
        let inserted = sqlx::query(
            "INSERT INTO risk_decisions
               (attempt_id, user_id, decision_event, features, occurred_at, learned_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (attempt_id) DO NOTHING",
        )
        .bind(decided.attempt_id.as_uuid())
        .bind(decided.user_id.map(|u| u.as_uuid()))
        .bind(to_json(decided.event))
        .bind(kept_features)
        .bind(decided.occurred_at)
        .bind(learn_now.then_some(decided.occurred_at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        mfa_store::outbox::enqueue(&mut tx, PRODUCER, topic, key, decided.event).await?;
        if let Some(Failure { account, ip }) = &effects.failure {
            sqlx::query(
                "INSERT INTO risk_failed_attempts (attempt_id, account, ip, occurred_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(decided.attempt_id.as_uuid())
            .bind(&account.0)
            .bind(ip)
            .bind(decided.occurred_at)
            .execute(&mut *tx)
            .await?;
        }
        if let (Some(user_id), true) = (decided.user_id, learn_now) {
            learn(
                &mut tx,
                decided.attempt_id,
                user_id,
                &features,
                decided.global,
                decided.occurred_at,
            )
            .await?;
        }
        if let Some(challenge) = &effects.issued_challenge {
            sqlx::query(
                "INSERT INTO risk_challenges (challenge_id, user_id, issued_at, expires_at, device_id)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(challenge.challenge_id.as_uuid())
            .bind(challenge.user_id.as_uuid())
            .bind(challenge.issued_at)
            .bind(challenge.expires_at)
            .bind(challenge.device.as_ref().map(DeviceId::as_str))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The user passed MFA for `attempt_id`: the login joins their history, if its decision
    /// waited for that (only those keep their features). Idempotent.
    pub async fn learn_after_mfa(
        &self,
        attempt_id: AttemptId,
        at: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(Uuid, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE risk_decisions SET learned_at = $2
             WHERE attempt_id = $1 AND learned_at IS NULL AND user_id IS NOT NULL
               AND features IS NOT NULL AND occurred_at IS NOT NULL
             RETURNING user_id, features, occurred_at",
        )
        .bind(attempt_id.as_uuid())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((user_id, json, occurred_at)) = row else {
            return Ok(false);
        };
        let Ok(features) = serde_json::from_value::<Features>(json.clone()) else {
            return Ok(false);
        };
        learn(
            &mut tx,
            attempt_id,
            UserId::from_uuid(user_id),
            &json,
            &features.pseudonymous(&self.pseudonyms),
            occurred_at,
        )
        .await?;
        // A code passed from a network the user reported: they are there themselves (an
        // attacker on their own home network, reported), so it stops counting against them.
        // The reported device still does.
        if let Some(network) = features.get(Level::Prefix) {
            sqlx::query(
                "DELETE FROM risk_reported WHERE user_id = $1 AND level = 'prefix' AND value = $2",
            )
            .bind(user_id)
            .bind(network)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The login joins the user's history and the global counts, once per attempt.
/// `json`: the login's features as its history keeps them; `global`: by keyed hash, as the
/// global counts keep them.
async fn learn(
    tx: &mut Transaction<'_, Postgres>,
    attempt_id: AttemptId,
    user_id: UserId,
    json: &serde_json::Value,
    global: &Features,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO risk_login_history (attempt_id, user_id, occurred_at, features)
         VALUES ($1, $2, $3, $4) ON CONFLICT (attempt_id) DO NOTHING",
    )
    .bind(attempt_id.as_uuid())
    .bind(user_id.as_uuid())
    .bind(at)
    .bind(json)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(());
    }
    learn_global(tx, user_id, global, at).await
}

/// The level of `risk_global_values` whose values are the users learned: counted like the
/// others, so a user counts once per window and is deleted with the account.
const USERS_LEVEL: &str = "user";

/// The global counts learn a login at `at`: `ValueCounts::learn` for each of its values and
/// its user, in SQL, and the per-epoch tallies of `SeenChange`.
async fn learn_global(
    tx: &mut Transaction<'_, Postgres>,
    user_id: UserId,
    global: &Features,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let epoch = Epoch::of(at);
    sqlx::query(
        "INSERT INTO risk_global_totals (epoch, logins) VALUES ($1, 1)
         ON CONFLICT (epoch) DO UPDATE SET logins = risk_global_totals.logins + 1",
    )
    .bind(epoch.start())
    .execute(&mut **tx)
    .await?;
    let user = user_id.to_string();
    let (mut levels, mut values) = global_keys(global);
    levels.push(USERS_LEVEL);
    values.push(&user);
    // Rows in one order for every transaction, so concurrent learners never deadlock. The
    // SET expressions read the row as it was; the row as it is now tells which epochs the
    // value entered and left: count 1 in `$3` means it entered `$3`, and a non-zero
    // `previous` beside it that it came from `$4`, the epoch just before (a value back after
    // a gap starts with `previous` 0).
    sqlx::query(
        "WITH upserted AS (
           INSERT INTO risk_global_values AS g (level, value, epoch, count, previous)
           SELECT level, value, $3, 1, 0 FROM unnest($1::text[], $2::text[]) AS seen (level, value)
           ORDER BY level, value
           ON CONFLICT (level, value) DO UPDATE SET
             epoch = CASE WHEN g.epoch < $3 THEN $3 ELSE g.epoch END,
             count = CASE WHEN g.epoch = $3 THEN g.count + 1
                          WHEN g.epoch < $3 THEN 1
                          ELSE g.count END,
             previous = CASE WHEN g.epoch = $4 THEN g.count
                             WHEN g.epoch < $4 THEN 0
                             WHEN g.epoch = $5 THEN g.previous + 1
                             ELSE g.previous END
           RETURNING level, epoch, count, previous, (xmax = 0) AS inserted
         ),
         moves AS (
           SELECT level, $3::timestamptz AS epoch, 1 AS seen
           FROM upserted WHERE epoch = $3 AND count = 1
           UNION ALL
           SELECT level, $4::timestamptz, -1
           FROM upserted WHERE epoch = $3 AND count = 1 AND previous > 0 AND NOT inserted
         )
         INSERT INTO risk_global_levels (level, epoch, values_seen)
         SELECT level, epoch, sum(seen) FROM moves GROUP BY level, epoch ORDER BY level, epoch
         ON CONFLICT (level, epoch) DO UPDATE
           SET values_seen = risk_global_levels.values_seen + EXCLUDED.values_seen",
    )
    .bind(&levels)
    .bind(&values)
    .bind(epoch.start())
    .bind(epoch.previous().start())
    .bind(epoch.next().start())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CodeHistoryRow {
    issued_last_hour: Vec<DateTime<Utc>>,
    last_issued_at: Option<DateTime<Utc>>,
    newest_id: Option<Uuid>,
    newest_expires_at: Option<DateTime<Utc>>,
    newest_closed_at: Option<DateTime<Utc>>,
    newest_device_id: Option<String>,
    failed_codes_last_day: Vec<DateTime<Utc>>,
}

impl CodeHistoryRow {
    /// The code history as it stands at `now`.
    fn at(self, now: DateTime<Utc>) -> CodeHistory {
        let pending = match (
            self.newest_id,
            self.newest_expires_at,
            self.newest_closed_at,
        ) {
            (Some(id), Some(expires_at), None) if expires_at > now => Some(PendingCode {
                challenge_id: ChallengeId::from_uuid(id),
                expires_at,
                // Stored from a parsed DeviceId; one that no longer parses is no device's.
                device: self
                    .newest_device_id
                    .and_then(|raw| DeviceId::parse(&raw).ok()),
            }),
            _ => None,
        };
        CodeHistory {
            issued_last_hour: self.issued_last_hour,
            last_issued_at: self.last_issued_at,
            pending,
            failed_codes_last_day: self.failed_codes_last_day,
        }
    }
}

/// The code caps' view of an account: what the risk worker issued, and what the verifier and
/// code worker reported back.
impl RiskStore {
    pub async fn code_history(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<CodeHistory, sqlx::Error> {
        // One round trip: every known account's login reads this. The times are few: the
        // caps refuse new challenges (and so new wrong codes) once their windows are full.
        let row: CodeHistoryRow = sqlx::query_as(
            "SELECT
               ARRAY(SELECT issued_at FROM risk_challenges WHERE user_id = $1 AND issued_at > $2
                     ORDER BY issued_at) AS issued_last_hour,
               (SELECT max(issued_at) FROM risk_challenges WHERE user_id = $1)
                 AS last_issued_at,
               newest.challenge_id AS newest_id, newest.expires_at AS newest_expires_at,
               newest.closed_at AS newest_closed_at, newest.device_id AS newest_device_id,
               ARRAY(SELECT occurred_at FROM risk_failed_codes WHERE user_id = $1 AND occurred_at > $3
                     ORDER BY occurred_at) AS failed_codes_last_day
             FROM (SELECT 1) AS one
             -- Only the newest challenge can be pending: issuing one supersedes the others.
             LEFT JOIN LATERAL (
               SELECT challenge_id, expires_at, closed_at, device_id FROM risk_challenges
               WHERE user_id = $1 ORDER BY issued_at DESC LIMIT 1
             ) AS newest ON true",
        )
        .bind(user_id.as_uuid())
        .bind(now - chrono::Duration::hours(1))
        .bind(now - chrono::Duration::hours(24))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.at(now))
    }

    /// The challenge can no longer be passed. Idempotent.
    pub async fn close_challenge(
        &self,
        challenge_id: ChallengeId,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE risk_challenges SET closed_at = COALESCE(closed_at, $2) WHERE challenge_id = $1")
            .bind(challenge_id.as_uuid())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A wrong code was entered (one `MfaFailed` event). Idempotent by event id.
    pub async fn record_failed_code(&self, code: WrongCode) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO risk_failed_codes (event_id, user_id, occurred_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(code.event_id)
            .bind(code.user.as_uuid())
            .bind(code.at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Admin changes to an account (`AccountChanged`). Each is idempotent.
impl RiskStore {
    /// Forgets what the user has logged in from: the next login asks for a code.
    pub async fn forget_history(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM risk_login_history WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user's open challenges can no longer be passed (password changed, disabled).
    pub async fn close_challenges_of(
        &self,
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE risk_challenges SET closed_at = $2 WHERE user_id = $1 AND closed_at IS NULL",
        )
        .bind(user_id.as_uuid())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes every row the risk worker keeps about the user.
    pub async fn delete_user(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "risk_login_history",
            "risk_decisions",
            "risk_challenges",
            "risk_failed_codes",
            "risk_reported",
            "risk_password_change_required",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_id.as_uuid())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM risk_failed_attempts WHERE account = $1")
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        // Their user row of the global counts; what their logins counted for stays counted.
        sqlx::query("DELETE FROM risk_global_values WHERE level = $1 AND value = $2")
            .bind(USERS_LEVEL)
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

/// Company risk policies (`RiskPolicyChanged`).
impl RiskStore {
    /// The newest policy recorded for the company.
    pub async fn company_policy(
        &self,
        company: &CompanyId,
    ) -> Result<Option<CompanyPolicy>, sqlx::Error> {
        let row: Option<(i64, serde_json::Value)> = sqlx::query_as(
            "SELECT version, policy FROM risk_company_policies WHERE company_id = $1",
        )
        .bind(company.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(version, json)| {
            // Written from a parsed event by this service; a row that no longer parses (a
            // downgrade) leaves the company on the deployment's defaults rather than
            // blocking its logins, and says so.
            match serde_json::from_value::<CompanyRiskPolicy>(json) {
                Ok(policy) => Some(CompanyPolicy {
                    version: u64::try_from(version).unwrap_or(0),
                    policy,
                }),
                Err(error) => {
                    tracing::error!(%company, version, %error, "stored risk policy unreadable");
                    None
                }
            }
        }))
    }

    /// Keeps the policy unless a newer version is kept already. Idempotent.
    pub async fn record_company_policy(
        &self,
        changed: &RiskPolicyChanged,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO risk_company_policies (company_id, version, policy) VALUES ($1, $2, $3)
             ON CONFLICT (company_id) DO UPDATE SET version = EXCLUDED.version, policy = EXCLUDED.policy
             WHERE risk_company_policies.version < EXCLUDED.version",
        )
        .bind(changed.company_id.as_str())
        .bind(i64::try_from(changed.version).unwrap_or(i64::MAX))
        .bind(to_json(&changed.policy))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The user's own word (`LoginFeedback`): what they reported as not theirs.
impl RiskStore {
    /// Whether `login`'s network and device are among those the user reported.
    pub async fn reported(
        &self,
        user_id: UserId,
        login: &Features,
    ) -> Result<Reported, sqlx::Error> {
        let (network, device): (bool, bool) = sqlx::query_as(
            "SELECT
               EXISTS (SELECT 1 FROM risk_reported WHERE user_id = $1 AND level = 'prefix' AND value = $2),
               EXISTS (SELECT 1 FROM risk_reported WHERE user_id = $1 AND level = 'device' AND value = $3)",
        )
        .bind(user_id.as_uuid())
        .bind(login.get(Level::Prefix))
        .bind(login.get(Level::Device))
        .fetch_one(&self.pool)
        .await?;
        Ok(Reported { network, device })
    }

    /// As `MemoryState` records it: the network and device kept for the user, and the login
    /// never learned (its kept features dropped). Idempotent.
    pub async fn record_reported(&self, reported: &ReportedLogin) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (level, value) in [
            (Level::Prefix, &reported.network),
            (Level::Device, &reported.device),
        ] {
            let Some(value) = value else { continue };
            sqlx::query(
                "INSERT INTO risk_reported (user_id, level, value, attempt_id, reported_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(reported.user.as_uuid())
            .bind(level.as_str())
            .bind(value)
            .bind(reported.attempt_id.as_uuid())
            .bind(reported.at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE risk_decisions SET features = NULL WHERE attempt_id = $1 AND learned_at IS NULL",
        )
        .bind(reported.attempt_id.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

/// The users who must change their password first (`LoginFeedback` `wasnt_me` under a
/// company policy that asks for it), as `MemoryState` keeps them.
impl RiskStore {
    pub async fn password_change_required(&self, user_id: UserId) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM risk_password_change_required WHERE user_id = $1)",
        )
        .bind(user_id.as_uuid())
        .fetch_one(&self.pool)
        .await
    }

    /// Idempotent: the first report is kept.
    pub async fn require_password_change(
        &self,
        required: &PasswordChangeRequired,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO risk_password_change_required (user_id, attempt_id, reported_at)
             VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(required.user.as_uuid())
        .bind(required.attempt_id.as_uuid())
        .bind(required.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The password changed: the mark goes. Idempotent.
    pub async fn password_changed(&self, user_id: UserId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM risk_password_change_required WHERE user_id = $1")
            .bind(user_id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Everything one login's decision reads, in one statement (`RiskState::login_state`).
#[derive(sqlx::FromRow)]
struct LoginStateRow {
    history_at: Vec<DateTime<Utc>>,
    history_features: Vec<serde_json::Value>,
    reported_network: bool,
    reported_device: bool,
    password_change_required: bool,
    #[sqlx(flatten)]
    codes: CodeHistoryRow,
    matching_levels: Vec<String>,
    matching_counts: Vec<i64>,
    distinct_levels: Vec<String>,
    distinct_counts: Vec<i64>,
    logins: i64,
    account_failures: i64,
    ip_failures: i64,
    ip_failed_accounts: i64,
}

impl RiskStore {
    /// What `history` (with `reported`), `code_history`, `global` and `velocity` read, in one
    /// round trip instead of eight: every login waits for these reads before its decision.
    /// The same queries as those, as parts of one statement, parsed by the same functions;
    /// the history's DELETE of rows before the window is a part too, and (as in `history`)
    /// the rest of the statement reads the rows as they were before it, keeping none it
    /// removes. The aggregates come back as arrays, each pair in one order.
    pub async fn login_state(
        &self,
        query: &LoginStateQuery<'_>,
    ) -> Result<LoginState, sqlx::Error> {
        let (at, now) = (query.at, query.now);
        let epoch = Epoch::of(at);
        let (levels, values) = global_keys(query.global);
        let row: LoginStateRow = sqlx::query_as(
            "WITH forgotten AS (
               DELETE FROM risk_login_history WHERE user_id = $1 AND occurred_at < $2
             ),
             history AS (
               SELECT coalesce(array_agg(occurred_at ORDER BY occurred_at, attempt_id), '{}')
                        AS history_at,
                      coalesce(array_agg(features ORDER BY occurred_at, attempt_id), '{}')
                        AS history_features
               FROM (
                 SELECT occurred_at, attempt_id, features FROM risk_login_history
                 WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at <= $3
                 ORDER BY occurred_at DESC, attempt_id DESC LIMIT $17
               ) AS newest
             ),
             matching AS (
               SELECT coalesce(array_agg(g.level ORDER BY g.level, g.value), '{}')
                        AS matching_levels,
                      coalesce(array_agg(CASE g.epoch WHEN $10 THEN g.count + g.previous
                                                      WHEN $11 THEN g.count
                                                      WHEN $12 THEN g.previous
                                                      ELSE 0 END
                                         ORDER BY g.level, g.value), '{}')
                        AS matching_counts
               FROM risk_global_values g
               JOIN unnest($8::text[], $9::text[]) AS wanted (level, value)
                 ON g.level = wanted.level AND g.value = wanted.value
             ),
             distinct_values AS (
               SELECT coalesce(array_agg(level ORDER BY level), '{}') AS distinct_levels,
                      coalesce(array_agg(seen ORDER BY level), '{}') AS distinct_counts
               FROM (SELECT level, sum(values_seen)::bigint AS seen FROM risk_global_levels
                     WHERE epoch IN ($10, $11) GROUP BY level) AS per_level
             )
             SELECT history.history_at, history.history_features,
               EXISTS (SELECT 1 FROM risk_reported
                       WHERE user_id = $1 AND level = 'prefix' AND value = $4) AS reported_network,
               EXISTS (SELECT 1 FROM risk_reported
                       WHERE user_id = $1 AND level = 'device' AND value = $5) AS reported_device,
               EXISTS (SELECT 1 FROM risk_password_change_required WHERE user_id = $1)
                 AS password_change_required,
               ARRAY(SELECT issued_at FROM risk_challenges WHERE user_id = $1 AND issued_at > $6
                     ORDER BY issued_at) AS issued_last_hour,
               (SELECT max(issued_at) FROM risk_challenges WHERE user_id = $1)
                 AS last_issued_at,
               newest.challenge_id AS newest_id, newest.expires_at AS newest_expires_at,
               newest.closed_at AS newest_closed_at, newest.device_id AS newest_device_id,
               ARRAY(SELECT occurred_at FROM risk_failed_codes WHERE user_id = $1 AND occurred_at > $7
                     ORDER BY occurred_at) AS failed_codes_last_day,
               matching.matching_levels, matching.matching_counts,
               distinct_values.distinct_levels, distinct_values.distinct_counts,
               (SELECT coalesce(sum(logins), 0)::bigint FROM risk_global_totals
                 WHERE epoch IN ($10, $11)) AS logins,
               (SELECT count(*) FROM risk_failed_attempts
                 WHERE account = $13 AND occurred_at >= $14 AND occurred_at < $3)
                 AS account_failures,
               (SELECT count(*) FROM risk_failed_attempts
                 WHERE ip = $15 AND occurred_at >= $16 AND occurred_at < $3) AS ip_failures,
               (SELECT count(DISTINCT account) FROM risk_failed_attempts
                 WHERE ip = $15 AND occurred_at >= $16 AND occurred_at < $3)
                 AS ip_failed_accounts
             FROM history CROSS JOIN matching CROSS JOIN distinct_values
             -- Only the newest challenge can be pending: issuing one supersedes the others.
             LEFT JOIN LATERAL (
               SELECT challenge_id, expires_at, closed_at, device_id FROM risk_challenges
               WHERE user_id = $1 ORDER BY issued_at DESC LIMIT 1
             ) AS newest ON true",
        )
        .bind(query.account.map(|(user, _)| user.as_uuid()))
        .bind(since(at, query.history_window))
        .bind(at)
        .bind(query.login.get(Level::Prefix))
        .bind(query.login.get(Level::Device))
        .bind(now - chrono::Duration::hours(1))
        .bind(now - chrono::Duration::hours(24))
        .bind(&levels)
        .bind(&values)
        .bind(epoch.start())
        .bind(epoch.previous().start())
        .bind(epoch.next().start())
        .bind(query.account.map(|(_, key)| key.0.as_str()))
        .bind(since(at, query.account_failures_window))
        .bind(query.ip)
        .bind(since(at, query.ip_window))
        .bind(HISTORY_READ_LIMIT as i64)
        .fetch_one(&self.pool)
        .await?;
        let pairs = |names: Vec<String>, counts: Vec<i64>| names.into_iter().zip(counts).collect();
        let global = global_of(
            pairs(row.matching_levels, row.matching_counts),
            pairs(row.distinct_levels, row.distinct_counts),
            row.logins,
        );
        let velocity = velocity_of(
            row.account_failures,
            row.ip_failures,
            row.ip_failed_accounts,
        );
        // An unknown account's parts read nothing (no user id matches NULL): as
        // `login_state_by_parts`, it has none.
        let (user, codes) = match query.account {
            Some(_) => {
                let history = history_of(row.history_at.into_iter().zip(row.history_features));
                let user = UserFacts {
                    reported: Reported {
                        network: row.reported_network,
                        device: row.reported_device,
                    },
                    password_change_required: row.password_change_required,
                    ..UserFacts::from_history(&history.entries, query.login)
                };
                (user, row.codes.at(now))
            }
            None => (UserFacts::default(), CodeHistory::default()),
        };
        Ok(LoginState {
            user,
            global,
            velocity,
            codes,
        })
    }
}

/// The store as the decision flows use it (`crate::state`): decisions are published through
/// the outbox on `topic`, under the partition `key` of the message being handled.
pub struct Publishing<'a> {
    pub store: &'a RiskStore,
    pub topic: &'a str,
    pub key: &'a str,
    /// Set once `record` committed a decision of its own (not one another delivery of the
    /// same attempt stored first): only such a decision is counted.
    pub stored_decision: bool,
}

impl RiskStore {
    pub fn publishing<'a>(&'a self, topic: &'a str, key: &'a str) -> Publishing<'a> {
        Publishing {
            store: self,
            topic,
            key,
            stored_decision: false,
        }
    }
}

impl RiskState for Publishing<'_> {
    type Error = sqlx::Error;

    async fn login_state(&mut self, query: &LoginStateQuery<'_>) -> Outcome<Self, LoginState> {
        self.store.login_state(query).await
    }

    async fn user_facts(&mut self, query: &HistoryQuery<'_>) -> Outcome<Self, UserFacts> {
        let history = self
            .store
            .history(query.user, query.at, query.window)
            .await?;
        Ok(UserFacts {
            reported: self.store.reported(query.user, query.login).await?,
            password_change_required: self.store.password_change_required(query.user).await?,
            ..UserFacts::from_history(&history.entries, query.login)
        })
    }

    async fn global(&mut self, login: &Features, at: DateTime<Utc>) -> Outcome<Self, GlobalCounts> {
        self.store.global(login, at).await
    }

    async fn velocity(&mut self, query: &VelocityQuery<'_>) -> Outcome<Self, Velocity> {
        self.store.velocity(query).await
    }

    async fn code_history(
        &mut self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Outcome<Self, CodeHistory> {
        self.store.code_history(user, now).await
    }

    async fn record(&mut self, decided: &Decided<'_>) -> Outcome<Self> {
        // A concurrent delivery that stored its decision first leaves nothing to do.
        self.stored_decision = self.store.record(decided, self.topic, self.key).await?;
        Ok(())
    }

    async fn learn_after_mfa(&mut self, attempt_id: AttemptId, at: DateTime<Utc>) -> Outcome<Self> {
        self.store.learn_after_mfa(attempt_id, at).await?;
        Ok(())
    }

    /// By its id: the live worker issued it.
    async fn close_challenge(&mut self, closed: &ClosedChallenge) -> Outcome<Self> {
        self.store
            .close_challenge(closed.challenge, closed.at)
            .await
    }

    async fn record_wrong_code(&mut self, code: WrongCode) -> Outcome<Self> {
        self.store.record_failed_code(code).await
    }

    async fn forget_history(&mut self, user: UserId) -> Outcome<Self> {
        self.store.forget_history(user).await
    }

    async fn close_challenges_of(&mut self, user: UserId, at: DateTime<Utc>) -> Outcome<Self> {
        self.store.close_challenges_of(user, at).await
    }

    async fn record_reported(&mut self, reported: &ReportedLogin) -> Outcome<Self> {
        self.store.record_reported(reported).await
    }

    async fn delete_user(&mut self, user: UserId) -> Outcome<Self> {
        self.store.delete_user(user).await
    }

    async fn require_password_change(
        &mut self,
        required: &PasswordChangeRequired,
    ) -> Outcome<Self> {
        self.store.require_password_change(required).await
    }

    async fn password_changed(&mut self, user: UserId) -> Outcome<Self> {
        self.store.password_changed(user).await
    }

    async fn company_policy(
        &mut self,
        company: &CompanyId,
    ) -> Outcome<Self, Option<CompanyPolicy>> {
        self.store.company_policy(company).await
    }

    async fn record_company_policy(&mut self, changed: &RiskPolicyChanged) -> Outcome<Self> {
        self.store.record_company_policy(changed).await
    }
}
