//! `GET /v1/admin/users/{user_id}/export`: everything the services hold on one user, as
//! JSON (GDPR Art. 15, the right of access): the account, what the risk model learned
//! (the approved logins its scores read: devices, networks, browsers, places), the logins with their
//! context and decisions, the challenges, and the failures the velocity rules count.
//!
//! Each list is read from the table of the service that owns it, in one read-only
//! transaction so the parts agree with each other. What is left out, on purpose: the
//! password's hash, a code's hash and its sealed copy (secrets, not data about the person),
//! and the event log (`mfa-audit timeline --user ID` tells the same logins from it).
//! Rows are as the services keep them, so their retention applies: login decisions 7 days,
//! challenges a day, the risk history 180 days (README, "Database").

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use mfa_store::data_keys::{DataKeys, Opened};
use serde::Serialize;
use shared::domain::{AttemptId, UserId};
use shared::events::{EventType, LoginClient};
use shared::personal::Personal;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::admin::UserInfo;
use crate::error::ApiError;
use crate::startup::AppState;

/// One user's data. Each list is oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserExport {
    pub user_id: uuid::Uuid,
    pub exported_at: DateTime<Utc>,
    pub account: UserInfo,
    /// The approved logins the model learned, which its scores read: `attempt_id`,
    /// `occurred_at`, `features` (the devices, networks, browsers and places it knows).
    #[schema(value_type = Vec<Object>)]
    pub login_history: Vec<serde_json::Value>,
    /// Login attempts with their context and final state: `attempt_id`, `created_at`,
    /// `platform`, `auth_method`, `ip`, `user_agent`, `device_id`, `status`,
    /// `approved_after_mfa`, `challenge_id`, `reason`, `decided_at`.
    #[schema(value_type = Vec<Object>)]
    pub logins: Vec<serde_json::Value>,
    /// The risk worker's decisions: `attempt_id`, `created_at`, `decision` (the event it
    /// published), `features` (what it would learn once the login passes), `learned_at`.
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<serde_json::Value>,
    /// Codes emailed: `challenge_id`, `attempt_id`, `created_at`, `expires_at`, `status`,
    /// `failed_attempts`, `email_sent_at`, `finished_at` (never the code or its hash).
    #[schema(value_type = Vec<Object>)]
    pub challenges: Vec<serde_json::Value>,
    /// The risk worker's record of the codes it issued (for the caps): `challenge_id`,
    /// `issued_at`, `expires_at`, `closed_at`.
    #[schema(value_type = Vec<Object>)]
    pub issued_codes: Vec<serde_json::Value>,
    /// Wrong passwords (`attempt_id`, `ip`, `occurred_at`) and wrong codes (`occurred_at`)
    /// the velocity rules count.
    #[schema(value_type = Vec<Object>)]
    pub failed_passwords: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub failed_codes: Vec<serde_json::Value>,
    /// Whether the user's password logins are refused until the password is changed (they
    /// reported a login as not theirs under a company policy that requires it): one entry,
    /// `attempt_id` (the reported login) and `reported_at`, while it stands; none otherwise.
    #[schema(value_type = Vec<Object>)]
    pub password_change_required: Vec<serde_json::Value>,
}

// Each list's query: the columns given out (named), the user's rows, oldest first. The
// column lists are explicit, so a secret added to a table later is not exported by default.
const LOGIN_HISTORY: &str =
    "SELECT json_build_object('attempt_id', attempt_id, 'occurred_at', occurred_at,
                'features', features) AS row
         FROM risk_login_history WHERE user_id = $1 ORDER BY occurred_at, attempt_id";
const LOGINS: &str = "SELECT json_build_object('attempt_id', attempt_id, 'created_at', created_at,
                'platform', platform, 'auth_method', auth_method, 'ip', ip,
                'user_agent', user_agent, 'device_id', device_id, 'status', status,
                'approved_after_mfa', approved_after_mfa, 'challenge_id', challenge_id,
                'reason', reason, 'decided_at', decided_at) AS row
         FROM login_attempts WHERE user_id = $1 ORDER BY created_at, attempt_id";
const DECISIONS: &str =
    "SELECT json_build_object('attempt_id', attempt_id, 'created_at', created_at,
                'decision', decision_event, 'features', features, 'learned_at', learned_at) AS row
         FROM risk_decisions WHERE user_id = $1 ORDER BY created_at, attempt_id";
const CHALLENGES: &str =
    "SELECT json_build_object('challenge_id', challenge_id, 'attempt_id', attempt_id,
                'created_at', created_at, 'expires_at', expires_at, 'status', status,
                'failed_attempts', failed_attempts, 'email_sent_at', email_sent_at,
                'finished_at', finished_at) AS row
         FROM challenges WHERE user_id = $1 ORDER BY created_at, challenge_id";
const ISSUED_CODES: &str =
    "SELECT json_build_object('challenge_id', challenge_id, 'issued_at', issued_at,
                'expires_at', expires_at, 'closed_at', closed_at) AS row
         FROM risk_challenges WHERE user_id = $1 ORDER BY issued_at, challenge_id";
const FAILED_PASSWORDS: &str = "SELECT json_build_object('attempt_id', attempt_id, 'ip', ip,
                'occurred_at', occurred_at) AS row
         FROM risk_failed_attempts WHERE account = $1::uuid::text ORDER BY occurred_at, attempt_id";
const FAILED_CODES: &str = "SELECT json_build_object('occurred_at', occurred_at) AS row
         FROM risk_failed_codes WHERE user_id = $1 ORDER BY occurred_at, event_id";
const PASSWORD_CHANGE_REQUIRED: &str =
    "SELECT json_build_object('attempt_id', attempt_id, 'reported_at', reported_at) AS row
         FROM risk_password_change_required WHERE user_id = $1 ORDER BY reported_at";

async fn list(
    tx: &mut PgConnection,
    query: &str,
    user_id: UserId,
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(query)
        .bind(user_id.as_uuid())
        .fetch_all(&mut *tx)
        .await
}

/// A decision event names its login's client sealed (as on the log): the user's export gives
/// it to them in the clear.
async fn open_sealed_client(
    keys: &DataKeys,
    decision: &mut serde_json::Value,
) -> Result<(), ApiError> {
    let Some(attempt_id) = decision["attempt_id"]
        .as_str()
        .and_then(|id| AttemptId::parse(id).ok())
    else {
        return Ok(());
    };
    let Some(payload) = decision.get_mut("payload").and_then(|p| p.as_object_mut()) else {
        return Ok(());
    };
    let Some(sealed) = payload.remove("sealed") else {
        return Ok(());
    };
    let personal: Personal<LoginClient> =
        serde_json::from_value(serde_json::json!({ "sealed": sealed })).map_err(|e| {
            ApiError::Unavailable(format!("a stored decision's sealed client: {e}"))
        })?;
    let context = EventType::LoginAttempted.seal_context(attempt_id);
    match keys
        .open(&personal, context)
        .await
        .map_err(|e| ApiError::Unavailable(format!("data keys: {e}")))?
    {
        Opened::Fields(client) => {
            if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(client) {
                payload.extend(fields);
            }
        }
        Opened::Erased(_) => {
            payload.insert("personal_data".into(), "erased".into());
        }
    }
    Ok(())
}

/// Everything held on `user_id`, or `None` when no account has that id.
pub async fn export_user(
    state: &AppState,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<Option<UserExport>, ApiError> {
    let store = &state.intake.store;
    let Some(account) = store.account(user_id).await? else {
        return Ok(None);
    };
    let mut tx = store.pool().begin().await?;
    // One snapshot for every list, and nothing written.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let login_history = list(&mut tx, LOGIN_HISTORY, user_id).await?;
    let logins = list(&mut tx, LOGINS, user_id).await?;
    let mut decisions = list(&mut tx, DECISIONS, user_id).await?;
    let challenges = list(&mut tx, CHALLENGES, user_id).await?;
    let issued_codes = list(&mut tx, ISSUED_CODES, user_id).await?;
    let failed_passwords = list(&mut tx, FAILED_PASSWORDS, user_id).await?;
    let failed_codes = list(&mut tx, FAILED_CODES, user_id).await?;
    let password_change_required = list(&mut tx, PASSWORD_CHANGE_REQUIRED, user_id).await?;
    tx.commit().await?;
    for row in &mut decisions {
        open_sealed_client(&state.intake.data_keys, &mut row["decision"]).await?;
    }
    Ok(Some(UserExport {
        user_id: user_id.as_uuid(),
        exported_at: now,
        account: account.into(),
        login_history,
        logins,
        decisions,
        challenges,
        issued_codes,
        failed_passwords,
        failed_codes,
        password_change_required,
    }))
}

/// A user's data, for an access request.
#[utoipa::path(
    get, path = "/v1/admin/users/{user_id}/export", params(("user_id" = Uuid, Path)),
    security(("api_key" = [])),
    responses(
        (status = 200, body = UserExport),
        (status = 404, description = "`unknown_user`: no account has this id", body = mfa_http::ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<UserExport>, ApiError> {
    let user_id = UserId::parse(&raw).map_err(|_| ApiError::UnknownUser)?;
    export_user(&state, user_id, Utc::now())
        .await?
        .map(Json)
        .ok_or(ApiError::UnknownUser)
}
