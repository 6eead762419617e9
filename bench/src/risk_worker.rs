//! The risk worker alone: `LoginAttempted` envelopes published straight onto the
//! login-attempts topic of a fresh namespace, then release risk-workers started on that
//! backlog, and their decisions counted on the decisions topic as the outbox relay publishes
//! them: events consumed, decided and published per second.
//!
//! The population is a few thousand users, each with a home address, a device and a
//! browser, and some history: each user's first login is decided (a code, as for any first
//! login) and passed (`MfaSucceeded`), so the user's device is known before the measured
//! backlog. The backlog is mostly those known logins, with some new devices, wrong passwords
//! and SSO logins, a user picked at random for each.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mfa_store::data_keys::DataKeys;
use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, Locale, Platform, PrimaryFactor,
    UserAgent, UserId,
};
use shared::events::{Envelope, Event, EventType, LoginAttempted, LoginClient, MfaSucceeded};
use shared::personal::{DataKey, DataKeyId, Personal, Subject};
use shared::topics::Topics;

use crate::process::ServiceProcess;
use crate::system::{Deployment, ServiceKind, SystemError};

#[derive(Debug, thiserror::Error)]
pub enum RiskBenchError {
    #[error("the broker")]
    Kafka(#[from] KafkaError),
    #[error("creating the namespace's topics")]
    Topics(#[source] KafkaError),
    #[error(transparent)]
    System(#[from] SystemError),
    #[error("{what}: {got} of {wanted} decisions on the decisions topic, none new for {idle:?}")]
    Stalled {
        what: &'static str,
        got: usize,
        wanted: usize,
        idle: Duration,
    },
    #[error("{series} stopped at {got} of {wanted}")]
    MetricStalled {
        series: String,
        got: f64,
        wanted: f64,
    },
    #[error("the decision watcher's thread")]
    Watcher(#[source] std::io::Error),
    #[error("a constant of the population does not parse: {0}")]
    Population(String),
    #[error("creating the users' data keys")]
    DataKey(#[source] mfa_store::data_keys::DataKeyError),
    #[error("no data key was created for {0}")]
    NoSealingKey(String),
    #[error("the deployment's database")]
    Database(#[from] sqlx::Error),
    #[error("migrating the deployment's database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// One benchmark user, as the risk worker sees it in its events.
#[derive(Debug, Clone)]
pub struct BenchUser {
    pub user_id: UserId,
    pub home_ip: IpAddr,
    pub device_id: DeviceId,
    pub user_agent: UserAgent,
}

/// Where a login comes from: the personal fields of a `LoginAttempted`.
#[derive(Debug, Clone)]
pub struct LoginContext {
    pub ip: IpAddr,
    pub user_agent: UserAgent,
    pub device_id: Option<DeviceId>,
}

/// The kinds of login in the backlog, and their weights in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BacklogKind {
    Known,
    NewDevice,
    WrongPassword,
    Sso,
}

const BACKLOG_MIX: [(BacklogKind, u32); 4] = [
    (BacklogKind::Known, 85),
    (BacklogKind::NewDevice, 5),
    (BacklogKind::WrongPassword, 5),
    (BacklogKind::Sso, 5),
];

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const OTHER_BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const COMPANY: &str = "bench-risk";

/// The users' data keys for the months the benchmark's logins fall in, created in the
/// deployment's `data_keys` as login-intake creates them: the backlog is sealed as live
/// logins are, so the worker opens each one (with its key cache) as it would in production.
pub struct SealingKeys(HashMap<DataKeyId, DataKey>);

impl SealingKeys {
    pub async fn for_users(
        keys: &DataKeys,
        users: &[BenchUser],
        months: &[DateTime<Utc>],
    ) -> Result<Self, RiskBenchError> {
        let mut sealing = HashMap::new();
        for user in users {
            for at in months {
                let (id, key) = keys
                    .sealing_key(Subject::User(user.user_id), *at)
                    .await
                    .map_err(RiskBenchError::DataKey)?;
                sealing.insert(id, key);
            }
        }
        Ok(Self(sealing))
    }
}

/// The one place a benchmark `LoginAttempted` envelope is built, its personal fields (the
/// address, the browser, the device) sealed under the user's key for the month.
pub fn login_attempted(
    user: &BenchUser,
    company: &CompanyId,
    auth_method: AuthMethod,
    primary_factor: PrimaryFactor,
    context: &LoginContext,
    at: DateTime<Utc>,
    keys: &SealingKeys,
) -> Result<Envelope, RiskBenchError> {
    let attempt_id = AttemptId::new();
    let key_id = DataKeyId::new(Subject::User(user.user_id), at);
    let key = keys
        .0
        .get(&key_id)
        .ok_or_else(|| RiskBenchError::NoSealingKey(key_id.to_string()))?;
    let client = Personal::seal(
        &LoginClient {
            ip: context.ip,
            user_agent: context.user_agent.clone(),
            device_id: context.device_id.clone(),
        },
        key_id,
        key,
        EventType::LoginAttempted.seal_context(attempt_id),
    );
    Ok(Envelope::new(
        "login-intake",
        attempt_id,
        None,
        at,
        Event::LoginAttempted(LoginAttempted {
            user_id: Some(user.user_id),
            company_id: Some(company.clone()),
            auth_method,
            primary_factor,
            privileged: false,
            platform: Platform::Dashboard,
            client,
            locale: Locale::default(),
        }),
    ))
}

/// The verifier's word that the code of `decision` was passed.
fn mfa_succeeded(decision: &SeenDecision, user_id: UserId, at: DateTime<Utc>) -> Envelope {
    Envelope::new(
        "verifier",
        decision.attempt_id,
        Some(decision.event_id),
        at,
        Event::MfaSucceeded(MfaSucceeded {
            user_id,
            challenge_id: decision
                .challenge_id
                .unwrap_or_else(ChallengeId::new_random),
        }),
    )
}

pub struct Population {
    pub company: CompanyId,
    pub users: Vec<BenchUser>,
}

impl Population {
    pub fn new(users: usize) -> Result<Self, RiskBenchError> {
        let company =
            CompanyId::parse(COMPANY).map_err(|e| RiskBenchError::Population(e.to_string()))?;
        let user_agent =
            UserAgent::parse(BROWSER).map_err(|e| RiskBenchError::Population(e.to_string()))?;
        let users = (0..users)
            .map(|index| {
                let device_id = DeviceId::parse(&format!("risk-bench-device-{index}"))
                    .map_err(|e| RiskBenchError::Population(e.to_string()))?;
                Ok(BenchUser {
                    user_id: UserId::new(),
                    // RFC 2544's benchmarking range: one address a user, never a real network.
                    home_ip: IpAddr::V4(Ipv4Addr::new(
                        198,
                        18,
                        ((index / 250) % 256) as u8,
                        (1 + index % 250) as u8,
                    )),
                    device_id,
                    user_agent: user_agent.clone(),
                })
            })
            .collect::<Result<_, RiskBenchError>>()?;
        Ok(Self { company, users })
    }

    fn at_home(user: &BenchUser) -> LoginContext {
        LoginContext {
            ip: user.home_ip,
            user_agent: user.user_agent.clone(),
            device_id: Some(user.device_id.clone()),
        }
    }

    /// A login of every user, from home.
    fn logins_from_home(
        &self,
        at: DateTime<Utc>,
        keys: &SealingKeys,
    ) -> Result<Vec<(String, Envelope)>, RiskBenchError> {
        self.users
            .iter()
            .map(|user| {
                let login = login_attempted(
                    user,
                    &self.company,
                    AuthMethod::Password,
                    PrimaryFactor::Succeeded,
                    &Self::at_home(user),
                    at,
                    keys,
                )?;
                Ok((user.user_id.to_string(), login))
            })
            .collect()
    }

    /// `count` logins of the backlog's mix, a random user each, `spacing` apart in event
    /// time from `start`.
    fn backlog(
        &self,
        count: usize,
        start: DateTime<Utc>,
        spacing: chrono::Duration,
        keys: &SealingKeys,
    ) -> Result<Vec<(String, Envelope)>, RiskBenchError> {
        let mut rng = rand::thread_rng();
        let other_browser = UserAgent::parse(OTHER_BROWSER)
            .map_err(|e| RiskBenchError::Population(e.to_string()))?;
        let total: u32 = BACKLOG_MIX.iter().map(|(_, weight)| weight).sum();
        let mut logins = Vec::with_capacity(count);
        for index in 0..count {
            let user = &self.users[rng.gen_range(0..self.users.len().max(1))];
            let mut roll = rng.gen_range(0..total);
            let kind = BACKLOG_MIX
                .iter()
                .find(|(_, weight)| {
                    let hit = roll < *weight;
                    roll = roll.saturating_sub(*weight);
                    hit
                })
                .map_or(BacklogKind::Known, |(kind, _)| *kind);
            let at = start + spacing * i32::try_from(index).unwrap_or(i32::MAX);
            let home = Self::at_home(user);
            let (method, factor, context) = match kind {
                BacklogKind::Known => (AuthMethod::Password, PrimaryFactor::Succeeded, home),
                BacklogKind::WrongPassword => (AuthMethod::Password, PrimaryFactor::Failed, home),
                BacklogKind::Sso => (AuthMethod::Sso, PrimaryFactor::Succeeded, home),
                BacklogKind::NewDevice => {
                    let device = DeviceId::parse(&format!("new-{}", uuid::Uuid::new_v4().simple()))
                        .map_err(|e| RiskBenchError::Population(e.to_string()))?;
                    (
                        AuthMethod::Password,
                        PrimaryFactor::Succeeded,
                        LoginContext {
                            ip: IpAddr::V4(Ipv4Addr::new(
                                198,
                                19,
                                rng.gen_range(0..=255),
                                rng.gen_range(1..=254),
                            )),
                            user_agent: other_browser.clone(),
                            device_id: Some(device),
                        },
                    )
                }
            };
            let login = login_attempted(user, &self.company, method, factor, &context, at, keys)?;
            logins.push((user.user_id.to_string(), login));
        }
        Ok(logins)
    }
}

/// A decision as read from the decisions topic.
#[derive(Debug, Clone)]
pub struct SeenDecision {
    pub attempt_id: AttemptId,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub challenge_id: Option<ChallengeId>,
    pub seen_at: Instant,
}

/// Only what the benchmark reads of a decision: it must not depend on the personal fields.
#[derive(Deserialize)]
struct DecisionFields {
    event_id: uuid::Uuid,
    attempt_id: AttemptId,
    event_type: String,
    #[serde(default)]
    payload: DecisionPayload,
}

#[derive(Deserialize, Default)]
struct DecisionPayload {
    #[serde(default)]
    challenge_id: Option<ChallengeId>,
}

/// Reads the decisions topic from its start on a thread of its own, keeping the first copy
/// of each attempt's decision and when it arrived.
struct DecisionWatch {
    seen: Arc<Mutex<HashMap<AttemptId, SeenDecision>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DecisionWatch {
    fn start(brokers: &str, topic: &str, partitions: i32) -> Result<Self, RiskBenchError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("bench-watch-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            // Tansu answers a fetch only after this wait: short, so arrivals are timed to
            // within it.
            .set("fetch.wait.max.ms", "10")
            .set("isolation.level", "read_uncommitted")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            // An explicit offset: no ListOffsets, which Tansu on PostgreSQL answers unreliably.
            assignment.add_partition_offset(topic, partition, Offset::Offset(0))?;
        }
        consumer.assign(&assignment)?;
        let seen: Arc<Mutex<HashMap<AttemptId, SeenDecision>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::Builder::new()
                .name("decision-watch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                            continue;
                        };
                        let seen_at = Instant::now();
                        let Some(Ok(fields)) = message
                            .payload()
                            .map(serde_json::from_slice::<DecisionFields>)
                        else {
                            continue;
                        };
                        seen.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .entry(fields.attempt_id)
                            .or_insert(SeenDecision {
                                attempt_id: fields.attempt_id,
                                event_id: fields.event_id,
                                event_type: fields.event_type,
                                challenge_id: fields.payload.challenge_id,
                                seen_at,
                            });
                    }
                })
                .map_err(RiskBenchError::Watcher)?
        };
        Ok(Self {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Waits until every attempt of `wanted` has its decision; fails when none new arrives
    /// for `idle`. The decisions of `wanted`.
    async fn wait_for(
        &self,
        what: &'static str,
        wanted: &HashSet<AttemptId>,
        idle: Duration,
    ) -> Result<Vec<SeenDecision>, RiskBenchError> {
        let mut last_count = 0;
        let mut last_progress = Instant::now();
        loop {
            let count = {
                let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                wanted.iter().filter(|id| seen.contains_key(id)).count()
            };
            if count == wanted.len() {
                let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                return Ok(wanted
                    .iter()
                    .filter_map(|id| seen.get(id).cloned())
                    .collect());
            }
            if count > last_count {
                last_count = count;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > idle {
                return Err(RiskBenchError::Stalled {
                    what,
                    got: count,
                    wanted: wanted.len(),
                    idle,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for DecisionWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Publishes `messages` (key, envelope) onto `topic`, acknowledged, as fast as the broker
/// takes them.
async fn publish_all(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, Envelope)],
) -> Result<(), RiskBenchError> {
    // Acknowledged in chunks: librdkafka batches within a chunk, and its queue never fills.
    for chunk in messages.chunks(2000) {
        let mut pending = Vec::with_capacity(chunk.len());
        for (key, envelope) in chunk {
            let payload = envelope.to_json();
            let record = FutureRecord::to(topic).key(key).payload(&payload);
            pending.push(producer.send_result(record).map_err(|(error, _)| error)?);
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => return Err(error.into()),
                Err(_canceled) => return Err(KafkaError::Canceled.into()),
            }
        }
    }
    Ok(())
}

/// The figures of one measured backlog.
#[derive(Debug, Clone, Serialize)]
pub struct RiskWorkerRun {
    pub replicas: usize,
    pub events: usize,
    /// From the first to the last decision of the backlog on the decisions topic.
    pub seconds: f64,
    pub events_per_s: f64,
    /// From the workers' start (GeoIP loading, joining the group) to the last decision.
    pub seconds_from_start: f64,
    pub decisions: HashMap<String, usize>,
    /// Attempts of the backlog without a decision when the wait gave up (0 on success).
    pub missing: usize,
    pub peak_rss_mib: Vec<(String, f64)>,
    /// How long publishing the backlog took (before the workers started).
    pub publish_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskWorkerReport {
    pub users: usize,
    pub partitions: i32,
    pub history_seconds: f64,
    /// Of the users' second logins from home, how many were approved: the history is in
    /// place when this is every user.
    pub approved_from_history: usize,
    pub runs: Vec<RiskWorkerRun>,
}

/// How long the decisions may stop coming before the benchmark gives up.
const STALL: Duration = Duration::from_secs(90);

pub struct RiskBench {
    pub deployment: Deployment,
    pub users: usize,
    pub events: usize,
}

impl RiskBench {
    /// The history, then one backlog for each replica count of `replica_counts`.
    pub async fn run(self, replica_counts: &[usize]) -> Result<RiskWorkerReport, RiskBenchError> {
        let deployment = &self.deployment;
        let kafka = deployment.kafka();
        mfa_bus::kafka::ensure_topics(&kafka)
            .await
            .map_err(RiskBenchError::Topics)?;
        let topics = Topics::new(&deployment.namespace);
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("acks", "all")
            // One record per batch, as login-intake's relay sends its events one by one. And
            // Tansu 0.6.0 answers a fetch from an offset inside a batch with the next batch:
            // a replica that takes a partition over mid-batch (a rebalance) would skip the
            // rest of it (found here with 1 MB batches: BENCHMARKS.md).
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "120000")
            .create()?;
        let watch = DecisionWatch::start(
            &kafka.brokers,
            &topics.risk_decisions,
            deployment.partitions,
        )?;
        let population = Population::new(self.users)?;
        let now = Utc::now();
        // The history is two days old and the backlogs follow it in event time, before now:
        // keys for each month those days fall in.
        let keys = {
            let pool = sqlx::PgPool::connect(&deployment.database_url).await?;
            mfa_store::db::migrate(&pool).await?;
            let keys = DataKeys::new(pool, deployment.data_keys.config().master_keys);
            let months = [now - chrono::Duration::days(2), now];
            SealingKeys::for_users(&keys, &population.users, &months).await?
        };

        // The history: each user's first login decided (a code) and passed, then a second
        // login from home, approved and learned.
        let history_started = Instant::now();
        let mut worker = self.start_workers(1, "history")?;
        // In event time the history is days old, and the backlog comes after it: the model
        // reads a user's history as of each login's time.
        let firsts = population.logins_from_home(now - chrono::Duration::days(2), &keys)?;
        publish_all(&producer, &topics.login_attempts, &firsts).await?;
        let wanted: HashSet<AttemptId> = firsts.iter().map(|(_, e)| e.attempt_id).collect();
        let decided = watch.wait_for("the first logins", &wanted, STALL).await?;
        let user_of: HashMap<AttemptId, (String, UserId)> = firsts
            .iter()
            .filter_map(|(key, envelope)| match &envelope.event {
                Event::LoginAttempted(LoginAttempted {
                    user_id: Some(user),
                    ..
                }) => Some((envelope.attempt_id, (key.clone(), *user))),
                _ => None,
            })
            .collect();
        let passed: Vec<(String, Envelope)> = decided
            .iter()
            .filter(|decision| decision.event_type == "MfaRequired")
            .filter_map(|decision| {
                let (key, user) = user_of.get(&decision.attempt_id)?;
                let passed_at = now - chrono::Duration::days(2) + chrono::Duration::minutes(1);
                Some((key.clone(), mfa_succeeded(decision, *user, passed_at)))
            })
            .collect();
        publish_all(&producer, &topics.verifications, &passed).await?;
        // Another topic than the logins': the second logins wait until the worker has read
        // every MfaSucceeded, or they would find no history yet.
        let handled = format!(
            r#"mfa_consumer_messages_total{{group="{}",topic="{}",outcome="handled"}}"#,
            kafka.group_id("risk-worker"),
            topics.verifications
        );
        wait_for_metric(&mut worker, &handled, passed.len() as f64).await?;
        let seconds = population.logins_from_home(now - chrono::Duration::days(1), &keys)?;
        publish_all(&producer, &topics.login_attempts, &seconds).await?;
        let wanted: HashSet<AttemptId> = seconds.iter().map(|(_, e)| e.attempt_id).collect();
        let second = watch.wait_for("the second logins", &wanted, STALL).await?;
        let approved_from_history = second
            .iter()
            .filter(|decision| decision.event_type == "LoginApproved")
            .count();
        for (process, _) in &mut worker {
            process.stop(Duration::from_secs(15));
        }
        let history_seconds = history_started.elapsed().as_secs_f64();

        let mut runs = Vec::new();
        // The backlogs follow each other in event time, after the history and before now.
        let spacing = chrono::Duration::milliseconds(20);
        let mut event_time = now
            - spacing * i32::try_from(self.events * replica_counts.len()).unwrap_or(i32::MAX)
            - chrono::Duration::minutes(1);
        for &replicas in replica_counts {
            let backlog = population.backlog(self.events, event_time, spacing, &keys)?;
            event_time += spacing * i32::try_from(self.events).unwrap_or(i32::MAX);
            let publishing = Instant::now();
            publish_all(&producer, &topics.login_attempts, &backlog).await?;
            let publish_seconds = publishing.elapsed().as_secs_f64();
            let wanted: HashSet<AttemptId> = backlog.iter().map(|(_, e)| e.attempt_id).collect();
            let started = Instant::now();
            let mut workers = self.start_workers(replicas, &format!("{replicas}-replicas"))?;
            let outcome = watch.wait_for("the backlog", &wanted, STALL).await;
            let peak_rss_mib = workers
                .iter()
                .filter_map(|(w, _)| Some((w.name().to_owned(), w.memory().ok()?.peak_mib())))
                .collect();
            for (process, _) in &mut workers {
                process.stop(Duration::from_secs(15));
            }
            let decided = match outcome {
                Ok(decided) => decided,
                Err(RiskBenchError::Stalled { got, .. }) => {
                    runs.push(RiskWorkerRun {
                        replicas,
                        events: self.events,
                        seconds: 0.0,
                        events_per_s: 0.0,
                        seconds_from_start: started.elapsed().as_secs_f64(),
                        decisions: HashMap::new(),
                        missing: wanted.len() - got,
                        peak_rss_mib,
                        publish_seconds,
                    });
                    continue;
                }
                Err(other) => return Err(other),
            };
            runs.push(RiskWorkerRun {
                publish_seconds,
                ..measured(replicas, started, &decided, peak_rss_mib)
            });
        }
        Ok(RiskWorkerReport {
            users: self.users,
            partitions: deployment.partitions,
            history_seconds,
            approved_from_history,
            runs,
        })
    }

    /// `replicas` risk workers, each with its `/metrics` port.
    fn start_workers(
        &self,
        replicas: usize,
        label: &str,
    ) -> Result<Vec<(ServiceProcess, u16)>, RiskBenchError> {
        (0..replicas)
            .map(|replica| {
                let port = mfa_testkit::net::free_port().map_err(SystemError::Port)?;
                let process = self.deployment.spawn(
                    ServiceKind::RiskWorker,
                    &format!("risk-worker-{label}-{replica}"),
                    None,
                    Some(port),
                )?;
                Ok((process, port))
            })
            .collect()
    }
}

/// Scrapes the workers' `/metrics` until the sample `series` adds up to `at_least`.
async fn wait_for_metric(
    workers: &mut [(ServiceProcess, u16)],
    series: &str,
    at_least: f64,
) -> Result<(), RiskBenchError> {
    let http = reqwest::Client::new();
    let mut last = (0.0, Instant::now());
    loop {
        let mut total = 0.0;
        for (process, port) in workers.iter_mut() {
            process.check_running().map_err(SystemError::from)?;
            let text = match http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
            {
                Ok(response) => response.text().await.unwrap_or_default(),
                // Not listening yet: still starting.
                Err(_) => String::new(),
            };
            total += sample(&text, series).unwrap_or(0.0);
        }
        if total >= at_least {
            return Ok(());
        }
        if total > last.0 {
            last = (total, Instant::now());
        } else if last.1.elapsed() > STALL {
            return Err(RiskBenchError::MetricStalled {
                series: series.to_owned(),
                got: total,
                wanted: at_least,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the Prometheus sample line that starts with `series` (labels included).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The rate of one backlog: its decisions over the time from the first to the last.
fn measured(
    replicas: usize,
    started: Instant,
    decided: &[SeenDecision],
    peak_rss_mib: Vec<(String, f64)>,
) -> RiskWorkerRun {
    let first = decided.iter().map(|d| d.seen_at).min().unwrap_or(started);
    let last = decided.iter().map(|d| d.seen_at).max().unwrap_or(started);
    let seconds = last.duration_since(first).as_secs_f64();
    let mut decisions = HashMap::new();
    for decision in decided {
        *decisions.entry(decision.event_type.clone()).or_default() += 1;
    }
    RiskWorkerRun {
        replicas,
        events: decided.len(),
        seconds,
        events_per_s: if seconds > 0.0 {
            decided.len().saturating_sub(1) as f64 / seconds
        } else {
            0.0
        },
        seconds_from_start: last.duration_since(started).as_secs_f64(),
        decisions,
        missing: 0,
        peak_rss_mib,
        publish_seconds: 0.0,
    }
}
