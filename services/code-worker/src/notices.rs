//! "Someone has your password": a password login that was asked for a code and never used
//! it (the code expired, or the challenge locked after too many wrong codes) gets one email,
//! with the place, device and time of the login and two signed links ("this was me", "this
//! wasn't me"; `mfa_code_hash::feedback_link`), which the verifier answers.
//!
//! Why the code worker detects it: it owns the challenges and their expiry, and it is the
//! one service with a mailer. An expiry is no event anybody sees (nobody tries an expired
//! code); a lock is the verifier's, but it lands in the same `challenges` row, so one
//! statement over that table sees both ends, and the verifier stays free of SMTP. A
//! challenge superseded by a newer login's code, revoked by a password change, used, or
//! whose code email never went out ends otherwise and is never notified; nor is a login with
//! no password (SSO, Google): `login_attempts.auth_method` says which.
//!
//! Exactly once: the notification row is created, and the challenge's `notice_due` cleared,
//! by one statement keyed by the challenge (a second run or a restart finds nothing due, a
//! concurrent replica's insert conflicts). The email then goes out as the code emails do:
//! claimed for a lease, retried with back-off, recorded; a crash right after the SMTP server
//! accepted it resends it with the same Message-ID, which mail systems drop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mfa_code_hash::feedback_link::{FeedbackLink, LinkSigner};
use mfa_geoip::GeoIp;
use mfa_runtime::shutdown::Shutdown;
use serde::Deserialize;
use shared::domain::{Locale, Platform, UserAgent};
use shared::events::FeedbackVerdict;
use sqlx::PgPool;
use uuid::Uuid;

use crate::email::Mailer;
use crate::notice_email::{Ending, NoticeEmail, Place};
use crate::sender::{after_failure, RetryPolicy};

/// How notifications are made and linked.
#[derive(Clone)]
pub struct NoticeConfig {
    pub signer: LinkSigner,
    /// Where the links point: the verifier's public address (`MFA_FEEDBACK_LINK_BASE_URL`),
    /// to which `/v1/login-feedback/{token}` is appended.
    pub link_base_url: String,
    /// How long the links work (`MFA_FEEDBACK_LINK_TTL_SECS`, 7 days by default).
    pub link_ttl: Duration,
    /// Where the login's address is, for the email (`MFA_GEOIP_CITY_DB`; none configured:
    /// the email says the place is not known).
    pub geo: Arc<GeoIp>,
}

#[derive(Clone)]
pub struct NoticeStore {
    pool: PgPool,
}

/// A notification email to send now.
#[derive(Debug, Clone)]
pub struct DueNotice {
    pub challenge_id: Uuid,
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
    pub ending: Ending,
    pub login_at: DateTime<Utc>,
    pub context: NoticeContext,
    pub token_id: Uuid,
    pub token_expires_at: DateTime<Utc>,
    /// None when the account is gone.
    pub recipient: Option<String>,
}

/// What the email says about the login: the challenge's code-email context.
#[derive(Debug, Clone, Deserialize)]
pub struct NoticeContext {
    pub platform: Platform,
    pub ip: std::net::IpAddr,
    pub user_agent: UserAgent,
    #[serde(default)]
    pub locale: Locale,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    challenge_id: Uuid,
    email_attempts: i32,
    created_at: DateTime<Utc>,
    ended: String,
    login_at: DateTime<Utc>,
    context: serde_json::Value,
    token_id: Uuid,
    token_expires_at: DateTime<Utc>,
    recipient: Option<String>,
}

impl NoticeStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates the notification of every challenge that ended unused since the last run,
    /// and clears `notice_due` of every challenge that ended at all, in one statement.
    /// Returns how many notifications were created.
    pub async fn notice_ended(&self, link_ttl: Duration) -> Result<u64, sqlx::Error> {
        let created = sqlx::query(
            "WITH ended AS (
               UPDATE challenges c SET notice_due = FALSE
               WHERE c.notice_due
                 AND (c.status IN ('used', 'locked', 'superseded', 'revoked')
                      OR (c.status = 'pending' AND c.expires_at <= now()))
               RETURNING c.challenge_id, c.attempt_id, c.user_id, c.company_id, c.status,
                         c.email_context, c.email_sent_at, c.created_at, c.mfa_required_at
             )
             INSERT INTO login_notifications
               (challenge_id, attempt_id, user_id, company_id, ended, login_at, context,
                device_id, token_id, token_expires_at, email_next_attempt_at)
             SELECT e.challenge_id, e.attempt_id, e.user_id, e.company_id,
                    CASE WHEN e.status = 'locked' THEN 'locked' ELSE 'expired' END,
                    COALESCE(e.mfa_required_at, e.created_at), e.email_context, a.device_id,
                    gen_random_uuid(), now() + make_interval(secs => $1), now()
             FROM ended e JOIN login_attempts a ON a.attempt_id = e.attempt_id
             WHERE e.status IN ('pending', 'locked')
               -- The user got the code: a login whose email never went out proves nothing.
               AND e.email_sent_at IS NOT NULL
               AND e.email_context IS NOT NULL AND e.company_id IS NOT NULL
               -- The right password was typed: SSO and Google logins have none.
               AND a.auth_method = 'password'
             ON CONFLICT (challenge_id) DO NOTHING",
        )
        .bind(link_ttl.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(created)
    }

    /// Takes up to `limit` due notification emails for `lease`, as the code emails are taken.
    pub async fn claim_due(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<DueNotice>, sqlx::Error> {
        let rows: Vec<DueRow> = sqlx::query_as(
            "UPDATE login_notifications n
             SET email_next_attempt_at = now() + make_interval(secs => $2),
                 email_attempts = n.email_attempts + 1
             FROM (SELECT challenge_id FROM login_notifications
                   WHERE email_next_attempt_at <= now()
                   ORDER BY email_next_attempt_at
                   LIMIT $1 FOR UPDATE SKIP LOCKED) due
             WHERE n.challenge_id = due.challenge_id
             RETURNING n.challenge_id, n.email_attempts, n.created_at, n.ended, n.login_at,
                       n.context, n.token_id, n.token_expires_at,
                       (SELECT email FROM users u WHERE u.user_id = n.user_id) AS recipient",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(DueNotice {
                    challenge_id: row.challenge_id,
                    attempt: row.email_attempts,
                    created_at: row.created_at,
                    ending: match row.ended.as_str() {
                        "locked" => Ending::Locked,
                        _ => Ending::Expired,
                    },
                    login_at: row.login_at,
                    // Written by this service from a challenge's context.
                    context: serde_json::from_value(row.context).ok()?,
                    token_id: row.token_id,
                    token_expires_at: row.token_expires_at,
                    recipient: row.recipient,
                })
            })
            .collect())
    }

    /// Sent, or given up (`error`): nothing more to do for it.
    pub async fn finish(&self, challenge_id: Uuid, error: Option<&str>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE login_notifications SET email_next_attempt_at = NULL,
               email_sent_at = CASE WHEN $2::text IS NULL THEN now() END,
               email_given_up_at = CASE WHEN $2::text IS NOT NULL THEN now() END,
               email_last_error = COALESCE($2, email_last_error)
             WHERE challenge_id = $1",
        )
        .bind(challenge_id)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn retry_later(
        &self,
        challenge_id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE login_notifications SET email_next_attempt_at = $2, email_last_error = $3
             WHERE challenge_id = $1 AND email_next_attempt_at IS NOT NULL",
        )
        .bind(challenge_id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The notification loop: detects ended challenges and emails their notifications.
pub struct Notifier {
    pub store: NoticeStore,
    pub mailer: Mailer,
    pub config: NoticeConfig,
    pub retry: RetryPolicy,
}

const BATCH: i64 = 16;
const LEASE: Duration = Duration::from_secs(60);
/// How soon after a code expires its notification is looked for.
const POLL: Duration = Duration::from_secs(1);
/// A notification email is retried for this long, then given up.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(1);

impl Notifier {
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "login notifications failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    async fn pass(&self) -> Result<(), sqlx::Error> {
        let created = self.store.notice_ended(self.config.link_ttl).await?;
        if created > 0 {
            tracing::info!(
                notifications = created,
                "unused codes of password logins noticed"
            );
        }
        loop {
            let due = self.store.claim_due(BATCH, LEASE).await?;
            if due.is_empty() {
                return Ok(());
            }
            for notice in due {
                self.send(notice).await?;
            }
        }
    }

    /// The link of `verdict` for the notification's token.
    pub fn link(&self, notice: &DueNotice, verdict: FeedbackVerdict) -> String {
        let token = self.config.signer.sign(&FeedbackLink {
            token_id: notice.token_id,
            verdict,
            expires_at: notice.token_expires_at,
        });
        format!(
            "{}/v1/login-feedback/{token}",
            self.config.link_base_url.trim_end_matches('/')
        )
    }

    async fn send(&self, notice: DueNotice) -> Result<(), sqlx::Error> {
        let Some(to) = notice.recipient.as_deref() else {
            return self
                .store
                .finish(notice.challenge_id, Some("the account no longer exists"))
                .await;
        };
        let email = NoticeEmail {
            to,
            challenge_id: notice.challenge_id,
            ending: notice.ending,
            login_at: notice.login_at,
            platform: notice.context.platform,
            user_agent: &notice.context.user_agent,
            ip: notice.context.ip,
            place: Place::of(&self.config.geo.lookup(notice.context.ip)),
            locale: notice.context.locale,
            was_me_link: self.link(&notice, FeedbackVerdict::WasMe),
            wasnt_me_link: self.link(&notice, FeedbackVerdict::WasntMe),
            links_expire_at: notice.token_expires_at,
        };
        match self
            .mailer
            .send_message(email.message(self.mailer.from()))
            .await
        {
            Ok(()) => {
                tracing::info!(challenge_id = %notice.challenge_id, "login notification sent");
                self.store.finish(notice.challenge_id, None).await
            }
            Err(error) => {
                let error = error.to_string();
                let give_up_at = notice.created_at + GIVE_UP_AFTER;
                match after_failure(&self.retry, notice.attempt, give_up_at, Utc::now()) {
                    Some(next) => {
                        tracing::warn!(challenge_id = %notice.challenge_id, %error, "login notification not sent; retrying");
                        self.store
                            .retry_later(notice.challenge_id, next, &error)
                            .await
                    }
                    None => {
                        tracing::warn!(challenge_id = %notice.challenge_id, %error, "login notification given up");
                        self.store.finish(notice.challenge_id, Some(&error)).await
                    }
                }
            }
        }
    }
}
