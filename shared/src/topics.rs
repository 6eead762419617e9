//! Topic names. All live under one namespace (`MFA_TOPIC_NAMESPACE`, default `mfa`), so that
//! several deployments, or parallel test runs, can share one broker.

/// The topics of one deployment.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Narrow login requests that trusted client backends publish straight to Kafka
    /// (SSO and Google logins); login-intake turns each into a `LoginAttempted`.
    pub login_requests: String,
    /// `LoginAttempted`, from login-intake.
    pub login_attempts: String,
    /// `LoginApproved`, `MfaRequired`, `CodeThrottled`, `LoginRejected`, from the risk worker.
    pub risk_decisions: String,
    /// `CodeSent`, `CodeDeliveryFailed`, from the code worker.
    pub challenges: String,
    /// `MfaSucceeded`, `MfaFailed` and the final `LoginApproved`, from the verifier.
    pub verifications: String,
    /// `AccountChanged`, from login-intake's admin API.
    pub accounts: String,
    /// Messages a consumer could not read, with the reason (not events).
    pub dead_letters: String,
    /// The producers' signed checkpoints of their chains (`shared::audit::Checkpoint`).
    pub audit_checkpoints: String,
}

impl Topics {
    pub fn new(namespace: &str) -> Self {
        let name = |suffix: &str| format!("{namespace}.{suffix}");
        Self {
            login_requests: name("login-requests"),
            login_attempts: name("login-attempts"),
            risk_decisions: name("risk-decisions"),
            challenges: name("challenges"),
            verifications: name("verifications"),
            accounts: name("accounts"),
            dead_letters: name("dead-letters"),
            audit_checkpoints: name("audit-checkpoints"),
        }
    }

    pub fn all(&self) -> [&str; 8] {
        [
            &self.login_requests,
            &self.login_attempts,
            &self.risk_decisions,
            &self.challenges,
            &self.verifications,
            &self.accounts,
            &self.dead_letters,
            &self.audit_checkpoints,
        ]
    }

    /// The topics that carry events (the audit log), as opposed to requests and dead letters.
    pub fn event_topics(&self) -> [&str; 5] {
        [
            &self.login_attempts,
            &self.risk_decisions,
            &self.challenges,
            &self.verifications,
            &self.accounts,
        ]
    }
}
