//! The logins: a few users, each logging in again and again as a client backend would, most
//! often from their usual device and network (approved without a code once learned),
//! sometimes from a new device and network (a code is emailed; it is read from the SMTP
//! server and verified). Every call carries an `Idempotency-Key` and is retried with it on
//! a connection error or a 5xx, as the API asks clients to; what each login came to is
//! recorded for the audit.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::mailbox::Inbox;
use crate::system::{System, ADMIN_KEY};
use crate::HarnessError;

pub const PASSWORD: &str = "correct horse battery";
const HOME_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const TRAVEL_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// How long a client keeps retrying one call, and waits for a decision or an email. Longer
/// than any outage a scenario causes.
const CALL_DEADLINE: Duration = Duration::from_secs(60);
const DECISION_DEADLINE: Duration = Duration::from_secs(120);
const EMAIL_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct User {
    pub number: usize,
    pub email: String,
    pub user_id: Uuid,
}

/// What one login came to, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No answer but errors and 503s until the client gave up: not accepted, not lost.
    NotAccepted,
    /// A 4xx other than the ones the flow expects: a defect.
    Refused(String),
    Approved,
    Rejected(String),
    /// Accepted, but still `pending` when the client stopped asking.
    Undecided,
    ApprovedAfterMfa,
    /// MFA was asked for and did not end in approval: no email, or the code was refused.
    MfaUnfinished(String),
}

#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user: usize,
    /// The attempt login-intake answered with (200 or 202): the login was accepted.
    pub attempt_id: Option<Uuid>,
    pub challenge_id: Option<Uuid>,
    pub outcome: Outcome,
    /// Calls repeated after a connection error or a 5xx.
    pub retries: u32,
    /// After approval, the same code was tried again: was it refused (409)?
    pub code_reuse_refused: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub users: usize,
    /// The share of logins from a new device and network.
    pub new_context_share: f64,
    /// The share of MFA logins that first type a wrong code.
    pub wrong_code_share: f64,
    /// The share of approved codes tried a second time.
    pub code_reuse_share: f64,
    /// Between two logins of one user.
    pub pause: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            users: 8,
            new_context_share: 0.35,
            wrong_code_share: 0.1,
            code_reuse_share: 0.2,
            pause: Duration::from_millis(100),
        }
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    intake_url: String,
    verifier_url: String,
    api_key: String,
    inbox: Arc<Inbox>,
}

/// The logins in progress; [`Load::stop`] lets each user finish the login in hand.
pub struct Load {
    stop: watch::Sender<bool>,
    users: Vec<tokio::task::JoinHandle<Vec<LoginRecord>>>,
}

pub async fn create_users(system: &System, count: usize) -> Result<Vec<User>, HarnessError> {
    let http = reqwest::Client::new();
    let run = Uuid::new_v4().simple().to_string();
    let mut users = Vec::new();
    for number in 0..count {
        let email = format!("chaos-{number}-{}@example.com", &run[..8]);
        let response: Value = http
            .post(format!("{}/v1/admin/users", system.intake_url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({
                "email": email, "password": PASSWORD, "company_id": "acme",
                "privileged": false, "company_uses_sso": false,
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let user_id = response["user_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| HarnessError::setup("create a user", &response))?;
        users.push(User {
            number,
            email,
            user_id,
        });
    }
    Ok(users)
}

impl Load {
    pub fn start(
        system: &System,
        users: &[User],
        options: &LoadOptions,
    ) -> Result<Self, HarnessError> {
        let client = Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            intake_url: system.intake_url.clone(),
            verifier_url: system.verifier_url.clone(),
            api_key: system.api_key.clone(),
            inbox: system.mailbox.inbox.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        let users = users
            .iter()
            .cloned()
            .map(|user| {
                let client = client.clone();
                let options = options.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move { user_loop(client, user, options, stopped).await })
            })
            .collect();
        Ok(Self { stop, users })
    }

    pub async fn stop(self) -> Vec<LoginRecord> {
        self.stop.send_replace(true);
        let mut records = Vec::new();
        for user in self.users {
            #[expect(
                clippy::expect_used,
                reason = "a user's loop records failures as outcomes: a panic there is a bug to see"
            )]
            let user_records = user.await.expect("a user's loop does not panic");
            records.extend(user_records);
        }
        records
    }
}

async fn user_loop(
    client: Client,
    user: User,
    options: LoadOptions,
    stopped: watch::Receiver<bool>,
) -> Vec<LoginRecord> {
    let mut records = Vec::new();
    while !*stopped.borrow() {
        let (travelling, wrong_first, reuse) = {
            let mut rng = rand::thread_rng();
            (
                rng.gen_bool(options.new_context_share),
                rng.gen_bool(options.wrong_code_share),
                rng.gen_bool(options.code_reuse_share),
            )
        };
        let context = if travelling {
            let mut rng = rand::thread_rng();
            json!({
                "ip": format!("203.0.113.{}", rng.gen_range(1..255)),
                "user_agent": TRAVEL_AGENT,
                "device_id": format!("travel-{}", Uuid::new_v4().simple()),
            })
        } else {
            json!({
                "ip": format!("198.51.100.{}", user.number % 250 + 1),
                "user_agent": HOME_AGENT,
                "device_id": format!("home-{}", user.number),
            })
        };
        records.push(client.login(&user, context, wrong_first, reuse).await);
        tokio::time::sleep(options.pause).await;
    }
    records
}

/// An answer, or why there was none worth keeping.
enum Call {
    Answer(u16, Value),
    GaveUp,
}

impl Client {
    /// Sends the request until it gets an answer that is not a 5xx nor "in progress",
    /// repeating it with the same `Idempotency-Key`, for at most [`CALL_DEADLINE`].
    async fn call(&self, request: impl Fn() -> reqwest::RequestBuilder, retries: &mut u32) -> Call {
        let key = Uuid::new_v4().to_string();
        let deadline = Instant::now() + CALL_DEADLINE;
        loop {
            let sent = request()
                .bearer_auth(&self.api_key)
                .header("Idempotency-Key", &key)
                .send()
                .await;
            if let Ok(response) = sent {
                let status = response.status().as_u16();
                if status < 500 {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    // The first try with this key is still marked in flight (or its process
                    // died with it): the API asks to retry shortly.
                    let in_flight = status == 409 && body["error"] == "request_in_progress";
                    if !in_flight {
                        return Call::Answer(status, body);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Call::GaveUp;
            }
            *retries += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn login(
        &self,
        user: &User,
        context: Value,
        wrong_first: bool,
        reuse: bool,
    ) -> LoginRecord {
        let mut record = LoginRecord {
            user: user.number,
            attempt_id: None,
            challenge_id: None,
            outcome: Outcome::NotAccepted,
            retries: 0,
            code_reuse_refused: None,
        };
        let body = json!({
            "email": user.email, "password": PASSWORD, "platform": "dashboard", "context": context,
        });
        let url = format!("{}/v1/logins", self.intake_url);
        let mut answer = match self
            .call(|| self.http.post(&url).json(&body), &mut record.retries)
            .await
        {
            Call::GaveUp => return record,
            Call::Answer(200 | 202, answer) => answer,
            Call::Answer(status, answer) => {
                record.outcome = Outcome::Refused(format!("{status} {answer}"));
                return record;
            }
        };
        record.attempt_id = answer["attempt_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok());
        let Some(attempt_id) = record.attempt_id else {
            record.outcome = Outcome::Refused(format!("no attempt id in {answer}"));
            return record;
        };
        let decided_by = Instant::now() + DECISION_DEADLINE;
        while answer["status"] == "pending" {
            if Instant::now() >= decided_by {
                record.outcome = Outcome::Undecided;
                return record;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let url = format!("{}/v1/logins/{attempt_id}", self.intake_url);
            if let Call::Answer(200 | 202, polled) =
                self.call(|| self.http.get(&url), &mut record.retries).await
            {
                answer = polled;
            }
        }
        match answer["status"].as_str() {
            Some("approved") => record.outcome = Outcome::Approved,
            Some("rejected") => {
                record.outcome = Outcome::Rejected(answer["reason"].as_str().unwrap_or("").into())
            }
            Some("mfa_required") => {
                record.challenge_id = answer["challenge_id"]
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok());
                match record.challenge_id {
                    Some(challenge) => {
                        self.pass_mfa(challenge, wrong_first, reuse, &mut record)
                            .await
                    }
                    None => record.outcome = Outcome::Refused(format!("no challenge in {answer}")),
                }
            }
            _ => record.outcome = Outcome::Refused(format!("unexpected answer {answer}")),
        }
        record
    }

    async fn verify(&self, challenge: Uuid, code: &str, retries: &mut u32) -> Call {
        let url = format!("{}/v1/challenges/{challenge}/verify", self.verifier_url);
        let body = json!({ "code": code });
        self.call(|| self.http.post(&url).json(&body), retries)
            .await
    }

    /// Err: what came instead of `expected`.
    async fn verify_expecting(
        &self,
        challenge: Uuid,
        code: &str,
        expected: u16,
        retries: &mut u32,
    ) -> Result<(), String> {
        match self.verify(challenge, code, retries).await {
            Call::Answer(status, _) if status == expected => Ok(()),
            Call::Answer(status, body) => Err(format!("{status} {body}")),
            Call::GaveUp => Err("verifier unreachable".into()),
        }
    }

    async fn pass_mfa(
        &self,
        challenge: Uuid,
        wrong_first: bool,
        reuse: bool,
        record: &mut LoginRecord,
    ) {
        let Some(code) = self.inbox.wait_for_code(challenge, EMAIL_DEADLINE).await else {
            record.outcome = Outcome::MfaUnfinished("no email".into());
            return;
        };
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let wrong_answered = if wrong_first {
            self.verify_expecting(challenge, wrong, 401, &mut record.retries)
                .await
                .map_err(|why| format!("wrong code: {why}"))
        } else {
            Ok(())
        };
        let verified = match wrong_answered {
            Ok(()) => {
                self.verify_expecting(challenge, &code, 200, &mut record.retries)
                    .await
            }
            Err(why) => Err(why),
        };
        if let Err(why) = verified {
            record.outcome = Outcome::MfaUnfinished(why);
            return;
        }
        record.outcome = Outcome::ApprovedAfterMfa;
        if reuse {
            // A new key: a second, distinct try with the code already used.
            if let Call::Answer(status, _) =
                self.verify(challenge, &code, &mut record.retries).await
            {
                record.code_reuse_refused = Some(status == 409);
            }
        }
    }
}
