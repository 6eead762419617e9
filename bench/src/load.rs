//! The load: users created through the admin API and enrolled (a first login and its code,
//! so each has a known device), then logins in a realistic mix driven through the real
//! services, open-loop at a rate (latency) or closed-loop at a concurrency (throughput).
//!
//! Each login holds its user for its whole run (a pool hands users out), so one user's
//! codes arrive in the order its logins asked for them. Latency is measured from when a
//! login was due, not when it was sent: a generator that falls behind shows as latency
//! instead of hiding it (coordinated omission).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::inbox::Inbox;

/// What the generator talks to.
#[derive(Debug, Clone)]
pub struct Target {
    pub intake: String,
    pub verifier: String,
    pub maildev: String,
    pub admin_key: String,
}

/// The share of each kind of login, in percent (they need not add up to 100: they are
/// weights).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Mix {
    /// The user's own device, network and browser: approved.
    pub known: u32,
    /// A new device on a new network: a code, read from the SMTP server and verified.
    pub new_device: u32,
    /// A wrong password: rejected.
    pub wrong_password: u32,
    /// An SSO login (no password) in the user's known context: the event path alone.
    pub sso: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            known: 70,
            new_device: 10,
            wrong_password: 10,
            sso: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Known,
    NewDevice,
    WrongPassword,
    Sso,
}

impl Mix {
    fn pick(&self, rng: &mut impl Rng) -> Kind {
        let weights = [
            (Kind::Known, self.known),
            (Kind::NewDevice, self.new_device),
            (Kind::WrongPassword, self.wrong_password),
            (Kind::Sso, self.sso),
        ];
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        let mut roll = rng.gen_range(0..total.max(1));
        for (kind, weight) in weights {
            if roll < weight {
                return kind;
            }
            roll -= weight;
        }
        Kind::Known
    }
}

/// How the logins are offered.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// A login every 1/rate seconds, whatever the answers take.
    Open { per_sec: f64 },
    /// `concurrency` logins in flight, each followed at once by the next.
    Closed { concurrency: usize },
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    pub users: usize,
    pub mix: Mix,
    pub pace: Pace,
    pub duration: Duration,
    /// Logins that get no decision within this long count as lost.
    pub decision_timeout: Duration,
    /// Progress lines on standard error, once a second.
    pub progress: bool,
    /// How many admin and enrolment calls run at once while setting up.
    pub setup_concurrency: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{what}: HTTP {status}: {body}")]
    Setup {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("{what}")]
    Http {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("the set-up's code email to {0} never arrived")]
    NoCode(String),
}

struct User {
    email: String,
    ip: String,
    device: String,
    /// The browser of the user's known device.
    user_agent: String,
    /// Codes this user's logins consumed so far.
    codes_used: usize,
}

/// A user made without the API (`crate::growth` writes them straight into PostgreSQL, with
/// a history on this device): its address, its known device and browser. Its password is
/// [`PASSWORD`].
#[derive(Debug, Clone)]
pub struct PremadeUser {
    pub email: String,
    pub ip: String,
    pub device: String,
    pub user_agent: String,
}

/// Every benchmark user's password.
pub const PASSWORD: &str = "bench password 1234";
/// The browser of the users the generator enrols itself.
pub const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const NEW_USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const CODE_WAIT: Duration = Duration::from_secs(30);

/// The figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub pace: Pace,
    pub mix: Mix,
    pub users: usize,
    pub seconds: f64,
    pub started: u64,
    pub decided: u64,
    /// Logins without a decision (timed out, or an error before one).
    pub lost: u64,
    /// Decisions per second over the run.
    pub decisions_per_sec: f64,
    /// Password logins (known, new device, wrong password) decided per second.
    pub password_logins_per_sec: f64,
    /// Latency from `POST /v1/logins` (when it was due) to its decision, ms, by kind.
    pub decision_ms: BTreeMap<String, Percentiles>,
    /// From the login to the code verified: the login, the email's arrival, the verify.
    pub mfa_round_trip_ms: Percentiles,
    /// Each login's outcome (`approved`, `mfa_passed`, `rejected:<reason>`...).
    pub outcomes: BTreeMap<String, u64>,
    /// What went wrong, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Each decided login's times (not serialised: the hop analysis reads them).
    #[serde(skip)]
    pub timings: Vec<AttemptTiming>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        // Recorded in microseconds, reported in milliseconds.
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

#[derive(Default)]
struct Tally {
    started: u64,
    decided: u64,
    lost: u64,
    password_decided: u64,
    decision: BTreeMap<Kind, Histogram<u64>>,
    mfa: Option<Histogram<u64>>,
    outcomes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    timings: Vec<AttemptTiming>,
}

/// When one decided login was sent and when its decision came back (wall clock, µs since
/// the Unix epoch).
#[derive(Debug, Clone, Serialize)]
pub struct AttemptTiming {
    pub attempt_id: String,
    pub kind: Kind,
    pub sent_unix_us: i64,
    pub decided_unix_us: i64,
}

fn unix_micros(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
    })
}

#[expect(
    clippy::expect_used,
    reason = "constant bounds that HdrHistogram accepts: 1 µs to 10 minutes, 3 digits"
)]
fn histogram() -> Histogram<u64> {
    let mut histogram =
        Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    // Longer than ten minutes is recorded as ten minutes rather than lost.
    histogram.auto(true);
    histogram
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

struct Bench {
    http: reqwest::Client,
    target: Target,
    api_key: String,
    company: String,
    inbox: Inbox,
    free: Mutex<VecDeque<User>>,
    users_free: Semaphore,
    tally: Mutex<Tally>,
    /// The current drive's: a login without a decision this long after it was sent is lost.
    decision_timeout: Mutex<Duration>,
}

/// Users created and enrolled once, then driven by as many runs as wanted (a benchmark
/// sweeps rates over the same users rather than creating new ones each time).
pub struct Prepared {
    bench: Arc<Bench>,
    users: usize,
}

/// What a set-up needs: where the services are and how many users to create.
#[derive(Debug, Clone)]
pub struct SetUp {
    pub target: Target,
    pub users: usize,
    /// How many admin and enrolment calls run at once.
    pub setup_concurrency: usize,
    /// Progress lines on standard error while enrolling.
    pub progress: bool,
}

/// One run over prepared users.
#[derive(Debug, Clone, Copy)]
pub struct Drive {
    pub mix: Mix,
    pub pace: Pace,
    pub duration: Duration,
    /// Logins that get no decision within this long count as lost.
    pub decision_timeout: Duration,
    /// Progress lines on standard error, once a second.
    pub progress: bool,
}

/// Creates `config.users` users, enrols them, and runs the load.
pub async fn run(config: LoadConfig) -> Result<LoadReport, LoadError> {
    let prepared = prepare(SetUp {
        target: config.target.clone(),
        users: config.users,
        setup_concurrency: config.setup_concurrency,
        progress: config.progress,
    })
    .await?;
    Ok(prepared
        .drive(Drive {
            mix: config.mix,
            pace: config.pace,
            duration: config.duration,
            decision_timeout: config.decision_timeout,
            progress: config.progress,
        })
        .await)
}

/// Creates a company's API key and `set_up.users` users, and enrols each (a first login and
/// its code, so each has a known device).
pub async fn prepare(set_up: SetUp) -> Result<Prepared, LoadError> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let company = format!("bench-{run_id}");
    let domain = format!("@{run_id}.bench.example.com");
    let bench = Bench::new(&set_up.target, company, domain.clone()).await?;
    bench.set_up_users(&set_up, &run_id, &domain).await?;
    Ok(Prepared {
        bench,
        users: set_up.users,
    })
}

/// Users that exist already, each with its known device (`crate::growth` made them): only
/// an API key of their `company` is created. `email_domain` (`@...`) is the domain of their
/// addresses, whose code emails the inbox reads.
pub async fn premade(
    target: &Target,
    company: &str,
    email_domain: &str,
    users: Vec<PremadeUser>,
) -> Result<Prepared, LoadError> {
    let bench = Bench::new(target, company.to_owned(), email_domain.to_owned()).await?;
    let count = users.len();
    bench
        .free
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(users.into_iter().map(|user| User {
            email: user.email,
            ip: user.ip,
            device: user.device,
            user_agent: user.user_agent,
            codes_used: 0,
        }));
    bench.users_free.add_permits(count);
    Ok(Prepared {
        bench,
        users: count,
    })
}

impl Prepared {
    /// Runs the load once over the prepared users; the figures are this run's alone.
    pub async fn drive(&self, drive: Drive) -> LoadReport {
        *self
            .bench
            .decision_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = drive.decision_timeout;
        *self
            .bench
            .tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Tally::default();
        self.bench.drive(&drive, self.users).await
    }

    pub fn users(&self) -> usize {
        self.users
    }
}

async fn create_api_key(
    http: &reqwest::Client,
    target: &Target,
    company: &str,
) -> Result<String, LoadError> {
    let (status, body) = post(
        http,
        &format!("{}/v1/admin/api-keys", target.intake),
        &target.admin_key,
        json!({ "company_id": company, "name": "mfa-bench" }),
        "creating the API key",
    )
    .await?;
    let key = body["api_key"].as_str().filter(|_| status == 201);
    key.map(str::to_owned).ok_or(LoadError::Setup {
        what: "creating the API key",
        status,
        body: body.to_string(),
    })
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: Value,
    what: &'static str,
) -> Result<(u16, Value), LoadError> {
    let response = http
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|source| LoadError::Http { what, source })?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

impl Bench {
    /// A generator for `company`'s users (its API key created), no user in its pool yet.
    async fn new(target: &Target, company: String, domain: String) -> Result<Arc<Self>, LoadError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|source| LoadError::Http {
                what: "building the HTTP client",
                source,
            })?;
        let inbox = Inbox::start(
            http.clone(),
            target.maildev.clone(),
            move |address: &str| address.ends_with(&domain),
        );
        let api_key = create_api_key(&http, target, &company).await?;
        Ok(Arc::new(Self {
            http,
            target: target.clone(),
            api_key,
            company,
            inbox,
            free: Mutex::new(VecDeque::new()),
            users_free: Semaphore::new(0),
            tally: Mutex::new(Tally::default()),
            // The enrolment's logins: as patient as a run's default.
            decision_timeout: Mutex::new(Duration::from_secs(30)),
        }))
    }

    async fn set_up_users(
        self: &Arc<Self>,
        config: &SetUp,
        run_id: &str,
        domain: &str,
    ) -> Result<(), LoadError> {
        let gate = Arc::new(Semaphore::new(config.setup_concurrency.max(1)));
        let mut tasks = Vec::with_capacity(config.users);
        for index in 0..config.users {
            let bench = self.clone();
            let gate = gate.clone();
            let user = User {
                email: format!("user{index}-{run_id}{domain}"),
                // RFC 2544's benchmarking range: one address a user, never a real network.
                ip: format!("198.18.{}.{}", (index / 250) % 256, 1 + index % 250),
                device: format!("device-{index}-{run_id}"),
                user_agent: USER_AGENT.to_owned(),
                codes_used: 0,
            };
            tasks.push(tokio::spawn(async move {
                let _turn = gate.acquire().await;
                bench.enrol(user).await
            }));
        }
        let started = std::time::Instant::now();
        for (done, task) in tasks.into_iter().enumerate() {
            let user = match task.await {
                Ok(user) => user?,
                Err(_) => {
                    return Err(LoadError::Setup {
                        what: "enrolling a user",
                        status: 0,
                        body: "the task panicked".into(),
                    })
                }
            };
            self.free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_back(user);
            self.users_free.add_permits(1);
            if config.progress && (done + 1) % 100 == 0 {
                eprintln!(
                    "[bench] {} of {} users created and enrolled ({:.0} s)",
                    done + 1,
                    config.users,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }

    /// Creates the user, and makes its device known: a first login, its code, verified.
    async fn enrol(&self, mut user: User) -> Result<User, LoadError> {
        let (status, body) = post(
            &self.http,
            &format!("{}/v1/admin/users", self.target.intake),
            &self.target.admin_key,
            json!({ "email": user.email, "password": PASSWORD, "company_id": self.company,
                    "company_uses_sso": true }),
            "creating a user",
        )
        .await?;
        if status != 201 {
            return Err(LoadError::Setup {
                what: "creating a user",
                status,
                body: body.to_string(),
            });
        }
        let body = json!({ "email": user.email, "password": PASSWORD, "platform": "dashboard",
            "context": { "ip": user.ip, "user_agent": user.user_agent, "device_id": user.device } });
        let (_, decision) = self.decide(body).await.map_err(|error| LoadError::Setup {
            what: "the enrolling login",
            status: 0,
            body: error,
        })?;
        if decision["status"] == "mfa_required" {
            let challenge = decision["challenge_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            user.codes_used += 1;
            let code = self
                .inbox
                .code(&user.email, user.codes_used, CODE_WAIT)
                .await
                .ok_or_else(|| LoadError::NoCode(user.email.clone()))?;
            let (status, body) = self.verify(&challenge, &code).await;
            if status != 200 {
                return Err(LoadError::Setup {
                    what: "verifying the enrolling code",
                    status,
                    body: body.to_string(),
                });
            }
        }
        Ok(user)
    }

    /// `POST /v1/logins`, then `GET` until decided: the decision, or what went wrong.
    async fn decide(&self, body: Value) -> Result<(u16, Value), String> {
        let timeout = *self
            .decision_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let deadline = Instant::now() + timeout;
        let response = self
            .http
            .post(format!("{}/v1/logins", self.target.intake))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|_| "login_request_failed".to_owned())?;
        let status = response.status().as_u16();
        let mut answer: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 && status != 202 {
            let code = answer["error"].as_str().unwrap_or("no_error_code");
            return Err(format!("http_{status}_{code}"));
        }
        while answer["status"] == "pending" {
            if Instant::now() >= deadline {
                return Err("no_decision_in_time".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            let attempt = answer["attempt_id"].as_str().unwrap_or_default().to_owned();
            let polled = self
                .http
                .get(format!("{}/v1/logins/{attempt}", self.target.intake))
                .bearer_auth(&self.api_key)
                .send()
                .await
                .map_err(|_| "poll_failed".to_owned())?;
            let polled_status = polled.status().as_u16();
            let polled_body: Value = polled.json().await.unwrap_or(Value::Null);
            if polled_status == 200 || polled_status == 202 {
                answer = polled_body;
                if polled_status == 202 && answer["status"].is_null() {
                    answer["status"] = "pending".into();
                    answer["attempt_id"] = attempt.into();
                }
            } else {
                return Err(format!("poll_http_{polled_status}"));
            }
        }
        Ok((status, answer))
    }

    async fn verify(&self, challenge: &str, code: &str) -> (u16, Value) {
        let sent = self
            .http
            .post(format!(
                "{}/v1/challenges/{challenge}/verify",
                self.target.verifier
            ))
            .bearer_auth(&self.api_key)
            .json(&json!({ "code": code }))
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// One login of `kind`, due at `due`.
    async fn login(&self, kind: Kind, due: Instant) {
        let Ok(permit) = self.users_free.acquire().await else {
            return;
        };
        permit.forget();
        let Some(mut user) = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
        else {
            return;
        };
        self.with_tally(|tally| tally.started += 1);
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let body = match kind {
            Kind::Known => {
                json!({ "email": user.email, "password": PASSWORD, "platform": "dashboard",
                "context": { "ip": user.ip, "user_agent": user.user_agent, "device_id": user.device } })
            }
            Kind::WrongPassword => json!({ "email": user.email, "password": "not the password",
                "platform": "dashboard",
                "context": { "ip": user.ip, "user_agent": user.user_agent, "device_id": user.device } }),
            Kind::Sso => {
                json!({ "email": user.email, "auth_method": "sso", "platform": "dashboard",
                "context": { "ip": user.ip, "user_agent": user.user_agent, "device_id": user.device } })
            }
            Kind::NewDevice => {
                let ip = format!(
                    "198.19.{}.{}",
                    rand::thread_rng().gen_range(0..=255),
                    rand::thread_rng().gen_range(1..=254)
                );
                json!({ "email": user.email, "password": PASSWORD, "platform": "dashboard",
                    "context": { "ip": ip, "user_agent": NEW_USER_AGENT, "device_id": format!("new-{fresh}") } })
            }
        };
        // Wall-clock times, comparable with the events' own: where the time went (each hop)
        // is read from both afterwards.
        let sent = unix_micros(std::time::SystemTime::now());
        let outcome = match self.decide(body).await {
            Err(error) => {
                self.with_tally(|tally| {
                    tally.lost += 1;
                    *tally.errors.entry(error).or_default() += 1;
                });
                None
            }
            Ok((_, decision)) => {
                let elapsed = due.elapsed();
                let decided = unix_micros(std::time::SystemTime::now());
                self.with_tally(|tally| {
                    if let Some(attempt_id) = decision["attempt_id"].as_str() {
                        tally.timings.push(AttemptTiming {
                            attempt_id: attempt_id.to_owned(),
                            kind,
                            sent_unix_us: sent,
                            decided_unix_us: decided,
                        });
                    }
                    tally.decided += 1;
                    if kind != Kind::Sso {
                        tally.password_decided += 1;
                    }
                    let _ = tally
                        .decision
                        .entry(kind)
                        .or_insert_with(histogram)
                        .record(micros(elapsed));
                });
                Some(decision)
            }
        };
        if let Some(decision) = outcome {
            let label = self.follow(&mut user, &decision, due).await;
            self.with_tally(|tally| *tally.outcomes.entry(label).or_default() += 1);
        }
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(user);
        self.users_free.add_permits(1);
    }

    /// What the login came to: for a code, reads it from the SMTP server and verifies it.
    async fn follow(&self, user: &mut User, decision: &Value, due: Instant) -> String {
        match decision["status"].as_str() {
            Some("approved") => "approved".into(),
            Some("rejected") => format!(
                "rejected:{}",
                decision["reason"].as_str().unwrap_or("no_reason")
            ),
            Some("mfa_required") => {
                let challenge = decision["challenge_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                // A code emailed a moment ago is reused, and no new email comes.
                let nth = if decision["code_recently_sent"] == true {
                    user.codes_used.max(1)
                } else {
                    user.codes_used + 1
                };
                let Some(code) = self.inbox.code(&user.email, nth, CODE_WAIT).await else {
                    self.with_tally(|tally| {
                        *tally.errors.entry("code_never_arrived".into()).or_default() += 1
                    });
                    return "mfa_no_email".into();
                };
                user.codes_used = user.codes_used.max(nth);
                let (status, body) = self.verify(&challenge, &code).await;
                if status == 200 {
                    let elapsed = due.elapsed();
                    self.with_tally(|tally| {
                        let _ = tally
                            .mfa
                            .get_or_insert_with(histogram)
                            .record(micros(elapsed));
                    });
                    "mfa_passed".into()
                } else {
                    let error = body["error"].as_str().unwrap_or("no_error_code");
                    self.with_tally(|tally| {
                        *tally
                            .errors
                            .entry(format!("verify_http_{status}_{error}"))
                            .or_default() += 1;
                    });
                    format!("mfa_failed:{error}")
                }
            }
            other => format!("unexpected:{}", other.unwrap_or("no_status")),
        }
    }

    fn with_tally(&self, change: impl FnOnce(&mut Tally)) {
        change(&mut self.tally.lock().unwrap_or_else(PoisonError::into_inner));
    }

    async fn drive(self: &Arc<Self>, config: &Drive, users: usize) -> LoadReport {
        let started = Instant::now();
        let until = started + config.duration;
        let progress = config.progress.then(|| {
            let bench = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let line = bench.progress_line(started.elapsed());
                    eprintln!("{line}");
                }
            })
        });
        let mut tasks = tokio::task::JoinSet::new();
        match config.pace {
            Pace::Open { per_sec } => {
                let interval = Duration::from_secs_f64(1.0 / per_sec.max(0.001));
                let mut due = started;
                while due < until {
                    tokio::time::sleep_until(due).await;
                    let kind = config.mix.pick(&mut rand::thread_rng());
                    let bench = self.clone();
                    tasks.spawn(async move { bench.login(kind, due).await });
                    due += interval;
                }
            }
            Pace::Closed { concurrency } => {
                for _ in 0..concurrency.max(1) {
                    let bench = self.clone();
                    let mix = config.mix;
                    tasks.spawn(async move {
                        while Instant::now() < until {
                            let kind = mix.pick(&mut rand::thread_rng());
                            bench.login(kind, Instant::now()).await;
                        }
                    });
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        if let Some(progress) = progress {
            progress.abort();
        }
        let seconds = started.elapsed().as_secs_f64();
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        LoadReport {
            pace: config.pace,
            mix: config.mix,
            users,
            seconds,
            started: tally.started,
            decided: tally.decided,
            lost: tally.lost,
            decisions_per_sec: tally.decided as f64 / seconds,
            password_logins_per_sec: tally.password_decided as f64 / seconds,
            decision_ms: tally
                .decision
                .iter()
                .map(|(kind, histogram)| (kind_name(*kind).to_owned(), Percentiles::of(histogram)))
                .chain(std::iter::once((
                    "all".to_owned(),
                    Percentiles::of(&tally.decision.values().fold(histogram(), |mut all, one| {
                        let _ = all.add(one);
                        all
                    })),
                )))
                .collect(),
            mfa_round_trip_ms: tally.mfa.as_ref().map(Percentiles::of).unwrap_or_default(),
            outcomes: tally.outcomes.clone(),
            errors: tally.errors.clone(),
            timings: tally.timings.clone(),
        }
    }

    fn progress_line(&self, elapsed: Duration) -> String {
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let all = tally.decision.values().fold(histogram(), |mut all, one| {
            let _ = all.add(one);
            all
        });
        format!(
            "[bench] {:>4.0} s  started {}  decided {}  lost {}  errors {}  p50 {:.1} ms  p99 {:.1} ms",
            elapsed.as_secs_f64(),
            tally.started,
            tally.decided,
            tally.lost,
            tally.errors.values().sum::<u64>(),
            all.value_at_quantile(0.5) as f64 / 1000.0,
            all.value_at_quantile(0.99) as f64 / 1000.0,
        )
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Known => "known",
        Kind::NewDevice => "new_device",
        Kind::WrongPassword => "wrong_password",
        Kind::Sso => "sso",
    }
}
