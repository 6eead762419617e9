//! How cost grows with users and history (issue 12, `mfa-bench growth`): for each population
//! size, a fresh database and topic namespace, the population written straight into
//! PostgreSQL with `COPY` (users, and months of approved logins in the risk worker's own
//! tables, exactly as the live worker would have learned them), then the release services
//! started on it and the load generator driving those users' known-device logins: the
//! sustained rate (closed loop), the latency at half of it (open loop), the risk worker's
//! time per login, memory, and the database's size per user.
//!
//! Only PostgreSQL is generated, not the broker's event history: the services' consumers
//! start at their group's committed offsets (a fresh group here, at the end of empty topics),
//! so the events of past months would be read by nobody on the live path; they cost disk and
//! a replay's time, not a login's.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use risk_worker::geo::GeoIp;
use risk_worker::model::epochs::{Epoch, SeenChange, ValueCounts};
use risk_worker::model::features::{ClientFacts, Features};
use serde::Serialize;
use shared::domain::{DeviceId, UserAgent};
use shared::events::LoginClient;
use shared::personal::PseudonymKey;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;
use uuid::Uuid;

use crate::headline;
use crate::load::{
    self, Drive, LoadError, LoadReport, Mix, Pace, Percentiles, PremadeUser, Target,
};
use crate::system::{Deployment, ServiceMemory, Stack, System, SystemError, ADMIN_KEY};

#[derive(Debug, thiserror::Error)]
pub enum GrowthError {
    #[error("writing or reading the generated rows")]
    Database(#[from] sqlx::Error),
    #[error("migrating the run's database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("hashing the population's password")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("opening the GeoIP databases (MFA_GEOIP_CITY_DB, MFA_GEOIP_ASN_DB)")]
    GeoIp(#[source] risk_worker::geo::GeoIpError),
    #[error("a generated {what} is invalid")]
    Generated {
        what: &'static str,
        #[source]
        source: shared::domain::ParseError,
    },
    #[error("{0} users do not fit the generator's address plan (at most 16,777,216)")]
    TooMany(usize),
    #[error("the generator's thread")]
    Thread(#[source] tokio::task::JoinError),
    #[error("the generator stopped before the history was written")]
    GeneratorGone,
    #[error(transparent)]
    System(#[from] SystemError),
    #[error("the load")]
    Load(#[from] LoadError),
    #[error("writing {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Each user's approved logins before now.
#[derive(Debug, Clone, Copy)]
pub struct HistoryShape {
    pub days: u32,
    pub logins_per_week: f64,
}

/// A population to generate into a migrated database.
#[derive(Debug, Clone)]
pub struct Population {
    pub users: usize,
    pub history: HistoryShape,
    /// The users' company (created, accepting passwords, if it does not exist).
    pub company: String,
    /// The domain of the users' addresses, `@` included.
    pub email_domain: String,
    /// The history ends before this; the live logins come after it.
    pub now: DateTime<Utc>,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    pub users: usize,
    pub history_rows: u64,
    pub global_values: u64,
    pub seconds: f64,
    /// The users, as the load generator logs them in: their home address and known device.
    #[serde(skip)]
    pub premade: Vec<PremadeUser>,
}

/// The desktop browsers users have at home (spread so the global counts have more than one
/// browser), and the phones of their second device.
const DESKTOP_AGENTS: [&str; 4] = [
    load::USER_AGENT,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
];
const PHONE_AGENTS: [&str; 2] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
];
/// The share of a user's logins from the second device and network.
const SECOND_DEVICE_SHARE: f64 = 0.2;
/// Addresses: a home address a user in 10.0.0.0/8, the second network's in 100.64.0.0/10
/// (carrier-grade NAT, as phones on a mobile network). No GeoIP database knows either, as
/// none knows the suite's 198.18.0.0/15: the history has no ASN, country or place, and so
/// no travel check, like the suite's users.
const MAX_USERS: usize = 1 << 24;

/// Where one login came from: a user's address, browser and device.
struct Context {
    ip: IpAddr,
    user_agent: &'static str,
    device: String,
}

struct Person {
    email: String,
    home: Context,
    second: Context,
}

fn person(index: usize, domain: &str) -> Person {
    let home = u32::try_from(index).unwrap_or(u32::MAX) & 0x00ff_ffff;
    let second = u32::try_from(index).unwrap_or(u32::MAX) & 0x003f_ffff;
    Person {
        email: format!("user{index}{domain}").to_lowercase(),
        home: Context {
            ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | home)),
            user_agent: DESKTOP_AGENTS[index % DESKTOP_AGENTS.len()],
            device: format!("home-{index}"),
        },
        second: Context {
            ip: IpAddr::V4(Ipv4Addr::from(0x6440_0000 | second)),
            user_agent: PHONE_AGENTS[index % PHONE_AGENTS.len()],
            device: format!("phone-{index}"),
        },
    }
}

/// A login context's features as the live worker computes them (`Features::of`), its history
/// JSON, and its values in the global counts (by keyed hash, as the worker keeps them).
struct Learned {
    json: String,
    global: Vec<(&'static str, String)>,
}

struct Learner<'a> {
    geo: &'a GeoIp,
    pseudonyms: &'a PseudonymKey,
    /// Parsing a user agent is the costly part, and there are six.
    clients: HashMap<&'static str, ClientFacts>,
}

impl Learner<'_> {
    fn learned(&mut self, context: &Context) -> Result<Learned, GrowthError> {
        let invalid = |what| move |source| GrowthError::Generated { what, source };
        let login = LoginClient {
            ip: context.ip,
            user_agent: UserAgent::parse(context.user_agent).map_err(invalid("user agent"))?,
            device_id: Some(DeviceId::parse(&context.device).map_err(invalid("device id"))?),
        };
        let client = self
            .clients
            .entry(context.user_agent)
            .or_insert_with(|| ClientFacts::parse(context.user_agent));
        let features = Features::from_parts(&login, self.geo, client);
        debug_assert_eq!(features, Features::of(&login, self.geo));
        Ok(Learned {
            json: serde_json::to_string(&features).unwrap_or_default(),
            global: features
                .pseudonymous(self.pseudonyms)
                .values()
                .map(|(level, value)| (level.as_str(), value.to_owned()))
                .collect(),
        })
    }
}

/// The level of the global counts whose values are the users learned (the worker's
/// `USERS_LEVEL`: `crate::store` in risk-worker), by plain user id.
const USERS_LEVEL: &str = "user";

/// The global counts of the whole history, by value: its logins in each epoch the history
/// spans. Learning a value's logins epoch by epoch gives what learning them one by one in
/// time order gives (`ValueCounts::learn` only adds within an epoch), so the rows are those
/// the live worker would have left.
struct GlobalTally {
    epochs: Vec<Epoch>,
    /// By level, then value: its logins in each of `epochs`.
    values: HashMap<&'static str, HashMap<String, Vec<u64>>>,
    logins: Vec<u64>,
}

impl GlobalTally {
    fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let mut epochs = vec![Epoch::of(from)];
        while let Some(&last) = epochs.last() {
            if last >= Epoch::of(to) {
                break;
            }
            epochs.push(last.next());
        }
        let logins = vec![0; epochs.len()];
        Self {
            epochs,
            values: HashMap::new(),
            logins,
        }
    }

    /// The epoch `at` is in, as an index of `epochs` (None: outside the history).
    fn slot(&self, at: DateTime<Utc>) -> Option<usize> {
        let epoch = Epoch::of(at);
        self.epochs.iter().position(|e| *e == epoch)
    }

    /// `logins` approved logins in the epoch `slot`, each with `values`.
    fn learn<'v>(
        &mut self,
        slot: usize,
        logins: u64,
        values: impl Iterator<Item = (&'static str, &'v str)>,
    ) {
        self.logins[slot] += logins;
        let width = self.epochs.len();
        for (level, value) in values {
            let by_value = self.values.entry(level).or_default();
            match by_value.get_mut(value) {
                Some(counts) => counts[slot] += logins,
                None => {
                    let mut counts = vec![0; width];
                    counts[slot] = logins;
                    by_value.insert(value.to_owned(), counts);
                }
            }
        }
    }

    /// The rows of `risk_global_values`, `risk_global_levels` and `risk_global_totals`.
    fn rows(&self) -> GlobalRows<'_> {
        let mut values = Vec::with_capacity(self.values.len());
        let mut levels: HashMap<(&'static str, Epoch), i64> = HashMap::new();
        let every = self.values.iter().flat_map(|(level, by_value)| {
            by_value.iter().map(move |(value, n)| (*level, value, n))
        });
        for (level, value, by_epoch) in every {
            let mut counts: Option<ValueCounts> = None;
            for (epoch, n) in self.epochs.iter().zip(by_epoch) {
                if *n == 0 {
                    continue;
                }
                let change = match &mut counts {
                    None => {
                        let (first, change) = ValueCounts::first(*epoch);
                        counts = Some(first);
                        change
                    }
                    Some(counts) => counts.learn(*epoch),
                };
                if let Some(counts) = &mut counts {
                    // The rest of the epoch's logins: `learn` within its epoch adds one.
                    counts.count += n - 1;
                }
                let SeenChange { entered, left } = change;
                if let Some(entered) = entered {
                    *levels.entry((level, entered)).or_default() += 1;
                }
                if let Some(left) = left {
                    *levels.entry((level, left)).or_default() -= 1;
                }
            }
            if let Some(counts) = counts {
                values.push((level, value.as_str(), counts));
            }
        }
        GlobalRows {
            values,
            levels: levels.into_iter().collect(),
            totals: self
                .epochs
                .iter()
                .copied()
                .zip(self.logins.iter().copied())
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

struct GlobalRows<'a> {
    values: Vec<(&'static str, &'a str, ValueCounts)>,
    levels: Vec<((&'static str, Epoch), i64)>,
    totals: Vec<(Epoch, u64)>,
}

/// A field of a `COPY ... FROM STDIN` text row.
fn copy_field(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn copy_row(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        copy_field(out, field);
    }
    out.push('\n');
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A time-ordered id made at `at`, as `AttemptId::new` and `UserId::new` make them then.
fn id_at(at: DateTime<Utc>, rng: &mut impl Rng) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rng.gen()).into_uuid()
}

/// The times of one user's logins over the history, oldest first, and whether each was from
/// the second device; the newest from home always, so every user's home device is known.
fn logins_of(
    rng: &mut impl Rng,
    shape: HistoryShape,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, bool)> {
    let per_day = (shape.logins_per_week / 7.0).clamp(0.0, 1.0);
    let mut logins = Vec::new();
    for day in (1..=i64::from(shape.days)).rev() {
        if rng.gen_bool(per_day) {
            let at = now - chrono::Duration::days(day)
                + chrono::Duration::seconds(rng.gen_range(0..86_400));
            logins.push((at, rng.gen_bool(SECOND_DEVICE_SHARE)));
        }
    }
    match logins.iter_mut().rev().find(|(_, second)| !second) {
        Some(_) => {}
        None => match logins.last_mut() {
            Some(last) => last.1 = false,
            None => logins.push((now - chrono::Duration::hours(12), false)),
        },
    }
    logins
}

/// One index or constraint of a table, with the statement that makes it again.
struct IndexDefinition {
    drop: String,
    create: String,
}

/// The indexes of `table` (its primary key included), to drop before a bulk load and make
/// again after it: PostgreSQL builds an index from sorted rows far faster than it inserts
/// millions of keys one by one into a tree larger than its buffers.
async fn indexes_of(pool: &PgPool, table: &str) -> Result<Vec<IndexDefinition>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
                c.conname::text, pg_get_constraintdef(c.oid)
         FROM pg_index i
         LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
         WHERE i.indrelid = $1::regclass",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(index, definition, constraint, constraint_definition)| {
            match (constraint, constraint_definition) {
                (Some(name), Some(constraint_definition)) => IndexDefinition {
                    drop: format!(r#"ALTER TABLE {table} DROP CONSTRAINT "{name}""#),
                    create: format!(
                        r#"ALTER TABLE {table} ADD CONSTRAINT "{name}" {constraint_definition}"#
                    ),
                },
                _ => IndexDefinition {
                    drop: format!("DROP INDEX {index}"),
                    create: definition,
                },
            }
        })
        .collect())
}

async fn copy_all(pool: &PgPool, statement: &str, text: String) -> Result<u64, sqlx::Error> {
    let mut copy = pool.copy_in_raw(statement).await?;
    copy.send(text.into_bytes()).await?;
    copy.finish().await
}

/// Writes `population` into the migrated database behind `pool`: its company (if new), its
/// users, each user's history in `risk_login_history` and the global counts of all of it,
/// as the live risk worker (`geo`, `pseudonyms`: its GeoIP databases and pseudonym key)
/// would have learned those logins. The users' next login from home on their known device
/// finds all the worker reads.
pub async fn generate(
    pool: &PgPool,
    population: &Population,
    geo: &Arc<GeoIp>,
    pseudonyms: &PseudonymKey,
) -> Result<Generated, GrowthError> {
    if population.users > MAX_USERS {
        return Err(GrowthError::TooMany(population.users));
    }
    let started = Instant::now();
    let now = population.now;
    let shape = population.history;
    let history_start = now - chrono::Duration::days(i64::from(shape.days) + 1);

    // One PHC string for every user: computing a million argon2id hashes would take hours
    // of the benchmark's cores, and the rows are generated data whose password is known
    // anyway. Each login still verifies it at the full cost, which is what is measured.
    let password_hash = tokio::task::spawn_blocking(|| {
        login_intake::password::hash_at(
            login_intake::password::OWASP_COST,
            load::PASSWORD.as_bytes(),
        )
    })
    .await
    .map_err(GrowthError::Thread)?
    .map_err(GrowthError::Hash)?;
    sqlx::query("INSERT INTO companies (company_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&population.company)
        .execute(pool)
        .await?;

    let mut rng = StdRng::seed_from_u64(population.users as u64);
    let mut user_ids = Vec::with_capacity(population.users);
    let mut users = String::new();
    let created = timestamp(history_start);
    for index in 0..population.users {
        let id = id_at(history_start, &mut rng);
        let person = person(index, &population.email_domain);
        copy_row(
            &mut users,
            &[
                &id.to_string(),
                &person.email,
                &password_hash,
                &population.company,
                &created,
            ],
        );
        user_ids.push(id);
    }
    copy_all(
        pool,
        "COPY users (user_id, email, password_hash, company_id, created_at) FROM STDIN",
        users,
    )
    .await?;

    // The history, made on a thread of its own while PostgreSQL takes the rows it made so
    // far: the two share the cores, neither waits for the whole.
    let indexes = indexes_of(pool, "risk_login_history").await?;
    for index in &indexes {
        sqlx::query(&index.drop).execute(pool).await?;
    }
    let (chunks, mut received) = tokio::sync::mpsc::channel::<String>(4);
    let maker = {
        let pseudonyms = pseudonyms.clone();
        let domain = population.email_domain.clone();
        let geo = geo.clone();
        tokio::task::spawn_blocking(move || {
            make_history(&user_ids, &domain, shape, now, &geo, &pseudonyms, &chunks)
        })
    };
    let mut copy = pool
        .copy_in_raw(
            "COPY risk_login_history (attempt_id, user_id, occurred_at, features) FROM STDIN",
        )
        .await?;
    while let Some(chunk) = received.recv().await {
        copy.send(chunk.into_bytes()).await?;
    }
    let made = maker.await.map_err(GrowthError::Thread)?;
    let (tally, history_rows) = match made {
        Ok(made) => made,
        Err(error) => {
            copy.abort("the generator failed").await?;
            return Err(error);
        }
    };
    copy.finish().await?;
    for index in &indexes {
        sqlx::query(&index.create).execute(pool).await?;
    }

    let rows = tally.rows();
    let mut text = String::new();
    for (level, value, counts) in &rows.values {
        copy_row(
            &mut text,
            &[
                level,
                value,
                &timestamp(counts.epoch.start()),
                &counts.count.to_string(),
                &counts.previous.to_string(),
            ],
        );
    }
    let global_values = copy_all(
        pool,
        "COPY risk_global_values (level, value, epoch, count, previous) FROM STDIN",
        text,
    )
    .await?;
    let mut text = String::new();
    for ((level, epoch), seen) in &rows.levels {
        copy_row(
            &mut text,
            &[level, &timestamp(epoch.start()), &seen.to_string()],
        );
    }
    copy_all(
        pool,
        "COPY risk_global_levels (level, epoch, values_seen) FROM STDIN",
        text,
    )
    .await?;
    let mut text = String::new();
    for (epoch, logins) in &rows.totals {
        copy_row(&mut text, &[&timestamp(epoch.start()), &logins.to_string()]);
    }
    copy_all(
        pool,
        "COPY risk_global_totals (epoch, logins) FROM STDIN",
        text,
    )
    .await?;

    let premade = (0..population.users)
        .map(|index| {
            let person = person(index, &population.email_domain);
            PremadeUser {
                email: person.email,
                ip: person.home.ip.to_string(),
                device: person.home.device,
                user_agent: person.home.user_agent.to_owned(),
            }
        })
        .collect();
    Ok(Generated {
        users: population.users,
        history_rows,
        global_values,
        seconds: started.elapsed().as_secs_f64(),
        premade,
    })
}

/// Rows of `COPY` text are sent to PostgreSQL in chunks of about this many bytes.
const CHUNK: usize = 1 << 20;

/// Each user's history as `COPY` rows of `risk_login_history`, sent in chunks on `chunks`,
/// and the global counts of all of it. The number of rows.
fn make_history(
    user_ids: &[Uuid],
    domain: &str,
    shape: HistoryShape,
    now: DateTime<Utc>,
    geo: &GeoIp,
    pseudonyms: &PseudonymKey,
    chunks: &tokio::sync::mpsc::Sender<String>,
) -> Result<(GlobalTally, u64), GrowthError> {
    let mut learner = Learner {
        geo,
        pseudonyms,
        clients: HashMap::new(),
    };
    let mut tally = GlobalTally::new(now - chrono::Duration::days(i64::from(shape.days) + 1), now);
    let mut rng = StdRng::seed_from_u64(!(user_ids.len() as u64));
    let mut chunk = String::with_capacity(CHUNK + 64 * 1024);
    let mut rows = 0;
    for (index, user_id) in user_ids.iter().enumerate() {
        let person = person(index, domain);
        let contexts = [
            learner.learned(&person.home)?,
            learner.learned(&person.second)?,
        ];
        let user = user_id.to_string();
        // This user's logins by context and epoch: added to the global counts once each.
        let mut logins = vec![[0u64; 2]; tally.epochs.len()];
        for (at, on_second) in logins_of(&mut rng, shape, now) {
            let context = usize::from(on_second);
            let attempt = id_at(at, &mut rng);
            copy_row(
                &mut chunk,
                &[
                    &attempt.to_string(),
                    &user,
                    &timestamp(at),
                    &contexts[context].json,
                ],
            );
            rows += 1;
            if let Some(slot) = tally.slot(at) {
                logins[slot][context] += 1;
            }
        }
        for (slot, by_context) in logins.iter().enumerate() {
            for (context, &n) in by_context.iter().enumerate() {
                if n > 0 {
                    let values = contexts[context]
                        .global
                        .iter()
                        .map(|(level, value)| (*level, value.as_str()))
                        .chain(std::iter::once((USERS_LEVEL, user.as_str())));
                    tally.learn(slot, n, values);
                }
            }
        }
        if chunk.len() >= CHUNK {
            chunks
                .blocking_send(std::mem::take(&mut chunk))
                .map_err(|_| GrowthError::GeneratorGone)?;
        }
    }
    if !chunk.is_empty() {
        chunks
            .blocking_send(chunk)
            .map_err(|_| GrowthError::GeneratorGone)?;
    }
    Ok((tally, rows))
}

/// The database's size, and its largest tables.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSize {
    pub bytes: i64,
    /// Of the database as migrated, before the population: what the population added, per
    /// user.
    pub bytes_per_user: f64,
    /// The largest tables, `pg_total_relation_size` (indexes and TOAST included).
    pub tables: Vec<(String, i64)>,
}

async fn database_bytes(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(pool)
        .await
}

async fn database_size(
    pool: &PgPool,
    empty: i64,
    users: usize,
) -> Result<DatabaseSize, sqlx::Error> {
    let bytes = database_bytes(pool).await?;
    let tables = sqlx::query_as(
        "SELECT c.relname::text, pg_total_relation_size(c.oid)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = current_schema()
         ORDER BY 2 DESC LIMIT 6",
    )
    .fetch_all(pool)
    .await?;
    Ok(DatabaseSize {
        bytes,
        bytes_per_user: (bytes - empty) as f64 / users.max(1) as f64,
        tables,
    })
}

/// The risk worker's handling of each `LoginAttempted` during a run, from its
/// `mfa_consumer_handle_duration` histogram: from receipt to its offset stored, which is its
/// database reads, the model, and the transaction that records the decision.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HandleTime {
    pub count: f64,
    pub mean_ms: f64,
    /// Interpolated within the histogram's buckets, as Prometheus' `histogram_quantile`.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One scrape of the histogram of `topic`: (upper bound, cumulative count), sum, count.
#[derive(Debug, Clone, Default)]
struct HandleHistogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

fn handle_histogram(text: &str, topic: &str) -> HandleHistogram {
    const NAME: &str = "mfa_consumer_handle_duration_seconds";
    let mut histogram = HandleHistogram::default();
    for line in text.lines().filter(|l| l.starts_with(NAME)) {
        if label(line, "topic") != Some(topic) {
            continue;
        }
        let Some(value) = line
            .rsplit_once(' ')
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        else {
            continue;
        };
        let suffix = &line[NAME.len()..];
        if suffix.starts_with("_bucket") {
            let bound = match label(line, "le") {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().unwrap_or(f64::INFINITY),
                None => continue,
            };
            histogram.buckets.push((bound, value));
        } else if suffix.starts_with("_sum") {
            histogram.sum = value;
        } else if suffix.starts_with("_count") {
            histogram.count = value;
        }
    }
    histogram
        .buckets
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    histogram
}

/// What happened between two scrapes.
fn handle_time(before: &HandleHistogram, after: &HandleHistogram) -> HandleTime {
    let count = after.count - before.count;
    if count <= 0.0 {
        return HandleTime::default();
    }
    let earlier = |bound: f64| {
        before
            .buckets
            .iter()
            .find(|(b, _)| *b == bound)
            .map_or(0.0, |(_, n)| *n)
    };
    let buckets: Vec<(f64, f64)> = after
        .buckets
        .iter()
        .map(|(bound, n)| (*bound, n - earlier(*bound)))
        .collect();
    let quantile = |q: f64| {
        let rank = q * count;
        let mut lower = (0.0, 0.0);
        for &(bound, cumulative) in &buckets {
            if cumulative >= rank {
                if !bound.is_finite() {
                    return lower.0 * 1000.0;
                }
                let within = cumulative - lower.1;
                let share = if within > 0.0 {
                    (rank - lower.1) / within
                } else {
                    1.0
                };
                return (lower.0 + (bound - lower.0) * share) * 1000.0;
            }
            lower = (bound, cumulative);
        }
        lower.0 * 1000.0
    };
    HandleTime {
        count,
        mean_ms: (after.sum - before.sum) / count * 1000.0,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    }
}

#[derive(Debug, Clone)]
pub struct GrowthConfig {
    pub binaries: PathBuf,
    pub folder: PathBuf,
    /// The population sizes, in order.
    pub sizes: Vec<usize>,
    pub history: HistoryShape,
    /// Closed-loop concurrencies tried in order, until the rate stops growing.
    pub concurrency_levels: Vec<usize>,
    pub step: Duration,
    pub latency_run: Duration,
}

/// One closed-loop level.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthLevel {
    pub concurrency: usize,
    pub logins_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
}

/// The figures of one population size.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthRun {
    pub users: usize,
    pub generated: Generated,
    /// `VACUUM (ANALYZE)` of the generated tables, as autovacuum would leave them.
    pub vacuum_seconds: f64,
    pub database: DatabaseSize,
    pub history_rows_per_user: f64,
    pub closed_loop: Vec<GrowthLevel>,
    pub sustained_per_s: f64,
    pub half_rate_per_s: f64,
    pub half_load: LoadReport,
    pub risk_handle: HandleTime,
    pub peak: Vec<ServiceMemory>,
    pub lost: u64,
    pub load_average: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrowthReport {
    pub days: u32,
    pub logins_per_week: f64,
    pub runs: Vec<GrowthRun>,
}

impl GrowthReport {
    /// The last line: each size's headline figures.
    pub fn json_line(&self) -> String {
        let sizes: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|run| {
                let known = known(&run.half_load);
                serde_json::json!({
                    "users": run.users,
                    "generation_s": round(run.generated.seconds, 1),
                    "db_mib": round(run.database.bytes as f64 / MIB, 1),
                    "db_kib_per_user": round(run.database.bytes_per_user / 1024.0, 2),
                    "logins_per_s": round(run.sustained_per_s, 1),
                    "half_load_p50_ms": round(known.p50, 1),
                    "half_load_p99_ms": round(known.p99, 1),
                    "risk_handle_mean_ms": round(run.risk_handle.mean_ms, 2),
                    "risk_handle_p99_ms": round(run.risk_handle.p99_ms, 2),
                    "peak_rss_mb_max": round(run.peak.iter().map(|s| s.memory.peak_mib()).fold(0.0, f64::max), 1),
                    "lost": run.lost,
                })
            })
            .collect();
        serde_json::json!({ "days": self.days, "logins_per_week": self.logins_per_week, "growth": sizes })
            .to_string()
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn known(report: &LoadReport) -> Percentiles {
    report.decision_ms.get("known").cloned().unwrap_or_default()
}

const KNOWN_ONLY: Mix = Mix {
    known: 1,
    new_device: 0,
    wrong_password: 0,
    sso: 0,
};

fn say(line: &str) {
    eprintln!("[growth] {line} (load average {})", load_average());
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The GeoIP databases the risk worker of a deployment opens (the stack's settings).
fn open_geoip(stack: &Stack) -> Result<GeoIp, GrowthError> {
    let paths = |list: &Option<String>| -> Vec<PathBuf> {
        list.iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect()
    };
    // The worker's default for databases without an accuracy radius (MFA_GEOIP_DEFAULT_ACCURACY_KM).
    GeoIp::open(&paths(&stack.geoip_city), &paths(&stack.geoip_asn), 100.0)
        .map_err(GrowthError::GeoIp)
}

pub async fn run(config: GrowthConfig) -> Result<GrowthReport, GrowthError> {
    let stack = Stack::from_env()?;
    let geo = {
        let stack = stack.clone();
        Arc::new(
            tokio::task::spawn_blocking(move || open_geoip(&stack))
                .await
                .map_err(GrowthError::Thread)??,
        )
    };
    let mut runs = Vec::new();
    for &users in &config.sizes {
        let deployment = Deployment::fresh(
            &stack,
            &format!("growth{users}"),
            2,
            &config.binaries,
            &config.folder.join(format!("{users}-users")),
        )
        .await?;
        let database = deployment.database_name.clone();
        let outcome = measure(&config, &stack, deployment, users, &geo).await;
        // A failed run leaves its database behind otherwise; a successful one dropped it.
        if outcome.is_err() {
            if let Err(error) = stack.drop_database(&database).await {
                say(&format!("could not drop {database}: {error}"));
            }
        }
        let run = outcome?;
        print_run(&run);
        runs.push(run);
    }
    let report = GrowthReport {
        days: config.history.days,
        logins_per_week: config.history.logins_per_week,
        runs,
    };
    let results = config.folder.join("results.json");
    std::fs::write(
        &results,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(|source| GrowthError::Write {
        path: results.clone(),
        source,
    })?;
    println!("all figures: {}", results.display());
    Ok(report)
}

async fn measure(
    config: &GrowthConfig,
    stack: &Stack,
    deployment: Deployment,
    users: usize,
    geo: &Arc<GeoIp>,
) -> Result<GrowthRun, GrowthError> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&deployment.database_url)
        .await?;
    mfa_store::db::migrate(&pool).await?;
    let empty = database_bytes(&pool).await?;
    let run_id = &deployment.namespace;
    let population = Population {
        users,
        history: config.history,
        company: format!("growth-{run_id}"),
        email_domain: format!("@{run_id}.growth.example.com"),
        now: Utc::now(),
    };
    say(&format!(
        "{users} users, {} days of history at {} logins a week: generating",
        config.history.days, config.history.logins_per_week
    ));
    let pseudonyms = deployment.data_keys.config().pseudonym_key;
    let generated = generate(&pool, &population, geo, &pseudonyms).await?;
    println!(
        "{users} users: generated in {:.1} s: {} history rows ({:.1} a user), {} global values",
        generated.seconds,
        generated.history_rows,
        generated.history_rows as f64 / users.max(1) as f64,
        generated.global_values
    );
    let vacuuming = Instant::now();
    for table in [
        "users",
        "risk_login_history",
        "risk_global_values",
        "risk_global_levels",
        "risk_global_totals",
    ] {
        sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
            .execute(&pool)
            .await?;
    }
    let vacuum_seconds = vacuuming.elapsed().as_secs_f64();
    let database = database_size(&pool, empty, users).await?;
    pool.close().await;
    println!(
        "{users} users: database {:.1} MiB, {:.2} KiB a user (vacuumed in {vacuum_seconds:.1} s); largest: {}",
        database.bytes as f64 / MIB,
        database.bytes_per_user / 1024.0,
        database
            .tables
            .iter()
            .map(|(table, bytes)| format!("{table} {:.1} MiB", *bytes as f64 / MIB))
            .collect::<Vec<_>>()
            .join(", ")
    );

    say(&format!(
        "{users} users: starting the four release services"
    ));
    let topic = deployment.kafka().topics().login_attempts;
    let mut system = System::start(deployment).await?;
    let risk_port = system.risk_metrics_port;
    let target = Target {
        intake: system.intake_url.clone(),
        verifier: system.verifier_url.clone(),
        maildev: stack.maildev_url.clone(),
        admin_key: ADMIN_KEY.to_owned(),
    };
    let history_rows = generated.history_rows;
    let prepared = load::premade(
        &target,
        &population.company,
        &population.email_domain,
        generated.premade.clone(),
    )
    .await?;
    let drive = |pace, duration| Drive {
        mix: KNOWN_ONLY,
        pace,
        duration,
        decision_timeout: Duration::from_secs(30),
        progress: true,
    };
    // A few seconds first, not counted: connection pools and the services' first requests.
    let _ = prepared
        .drive(drive(
            Pace::Closed { concurrency: 4 },
            Duration::from_secs(3),
        ))
        .await;

    let mut lost = 0;
    let mut levels: Vec<GrowthLevel> = Vec::new();
    for &concurrency in &config.concurrency_levels {
        say(&format!(
            "{users} users: closed loop, {concurrency} in flight"
        ));
        let report = prepared
            .drive(drive(Pace::Closed { concurrency }, config.step))
            .await;
        system.check_running()?;
        lost += report.lost;
        let p = known(&report);
        println!(
            "{users} users, closed loop {concurrency}: {:.1} logins/s, p50 {:.1} ms, p99 {:.1} ms, lost {}, outcomes {:?}, errors {:?}, load average {}",
            report.password_logins_per_sec, p.p50, p.p99, report.lost, report.outcomes, report.errors, load_average()
        );
        levels.push(GrowthLevel {
            concurrency,
            logins_per_s: report.password_logins_per_sec,
            p50_ms: p.p50,
            p99_ms: p.p99,
            lost: report.lost,
        });
        let rates: Vec<f64> = levels.iter().map(|l| l.logins_per_s).collect();
        if let [.., a, b, c] = rates.as_slice() {
            if headline::stopped_growing(*a, *b) && headline::stopped_growing(a.max(*b), *c) {
                break;
            }
        }
    }
    let (_, sustained) = headline::saturation(
        &levels
            .iter()
            .map(|l| (l.concurrency, l.logins_per_s))
            .collect::<Vec<_>>(),
    )
    .unwrap_or((0, 0.0));

    let half_rate = (sustained / 2.0).max(1.0);
    say(&format!(
        "{users} users: open loop at half load, {half_rate:.1}/s"
    ));
    let metrics = format!("http://127.0.0.1:{risk_port}/metrics");
    let http = reqwest::Client::new();
    let scrape = || async {
        let text = match http.get(&metrics).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        handle_histogram(&text, &topic)
    };
    let before = scrape().await;
    let half_load = prepared
        .drive(drive(Pace::Open { per_sec: half_rate }, config.latency_run))
        .await;
    let after = scrape().await;
    lost += half_load.lost;
    let risk_handle = handle_time(&before, &after);
    let peak = system.memory()?;
    let load_average = load_average();
    system.stop().await?;
    Ok(GrowthRun {
        users,
        history_rows_per_user: history_rows as f64 / users.max(1) as f64,
        generated,
        vacuum_seconds,
        database,
        closed_loop: levels,
        sustained_per_s: sustained,
        half_rate_per_s: half_rate,
        half_load,
        risk_handle,
        peak,
        lost,
        load_average,
    })
}

fn print_run(run: &GrowthRun) {
    let known = known(&run.half_load);
    println!(
        "{} users: sustained {:.1} logins/s; at half load ({:.1}/s) p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms, decided {}, lost {}, outcomes {:?}; risk worker per login (receipt to offset stored) \
         mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms over {} logins; load average {}",
        run.users,
        run.sustained_per_s,
        run.half_rate_per_s,
        known.p50,
        known.p90,
        known.p99,
        known.max,
        run.half_load.decided,
        run.half_load.lost,
        run.half_load.outcomes,
        run.risk_handle.mean_ms,
        run.risk_handle.p50_ms,
        run.risk_handle.p99_ms,
        run.risk_handle.count,
        run.load_average
    );
    for service in &run.peak {
        println!(
            "{} users: {:<13} resident {:>6.1} MiB, peak {:>6.1} MiB",
            run.users,
            service.service,
            service.memory.rss_mib(),
            service.memory.peak_mib()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(n: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(n * 86_400, 0).single().unwrap()
    }

    #[test]
    fn the_tally_leaves_the_rows_learning_each_login_in_time_order_leaves() {
        // Logins over three epochs (90 days each from the Unix epoch), in time order.
        let logins: Vec<(DateTime<Utc>, &str)> = vec![
            (day(10), "a"),
            (day(20), "a"),
            (day(50), "b"),
            (day(100), "a"),
            (day(120), "b"),
            (day(130), "b"),
            (day(200), "a"),
            (day(210), "c"),
        ];
        let mut tally = GlobalTally::new(day(10), day(210));
        assert_eq!(tally.epochs.len(), 3);
        for (at, value) in &logins {
            let slot = tally.slot(*at).unwrap();
            tally.learn(slot, 1, std::iter::once(("ip", *value)));
        }
        let rows = tally.rows();

        // The live rules, one login at a time.
        let mut live: HashMap<&str, ValueCounts> = HashMap::new();
        let mut seen: HashMap<Epoch, i64> = HashMap::new();
        for (at, value) in &logins {
            let epoch = Epoch::of(*at);
            let change = match live.get_mut(value) {
                Some(counts) => counts.learn(epoch),
                None => {
                    let (counts, change) = ValueCounts::first(epoch);
                    live.insert(value, counts);
                    change
                }
            };
            if let Some(entered) = change.entered {
                *seen.entry(entered).or_default() += 1;
            }
            if let Some(left) = change.left {
                *seen.entry(left).or_default() -= 1;
            }
        }
        let mut values: Vec<(&str, ValueCounts)> =
            rows.values.iter().map(|(_, v, c)| (*v, *c)).collect();
        values.sort_by_key(|(v, _)| *v);
        let mut expected: Vec<(&str, ValueCounts)> = live.into_iter().collect();
        expected.sort_by_key(|(v, _)| *v);
        assert_eq!(values, expected);
        let levels: HashMap<Epoch, i64> = rows
            .levels
            .iter()
            .map(|((_, epoch), n)| (*epoch, *n))
            .collect();
        seen.retain(|_, n| *n != 0);
        let mut levels = levels;
        levels.retain(|_, n| *n != 0);
        assert_eq!(levels, seen);
        assert_eq!(rows.totals.iter().map(|(_, n)| n).sum::<u64>(), 8);
    }

    #[test]
    fn every_user_has_its_newest_login_at_home() {
        let mut rng = StdRng::seed_from_u64(7);
        let now = day(400);
        for _ in 0..200 {
            let shape = HistoryShape {
                days: 14,
                logins_per_week: 1.0,
            };
            let logins = logins_of(&mut rng, shape, now);
            assert!(!logins.is_empty());
            assert!(logins.windows(2).all(|w| w[0].0 <= w[1].0), "oldest first");
            assert!(logins.iter().all(|(at, _)| *at < now && *at >= day(386)));
            assert!(logins.iter().any(|(_, second)| !second));
        }
    }

    #[test]
    fn copy_text_escapes_its_delimiters() {
        let mut out = String::new();
        copy_row(&mut out, &["a\tb", "c\\d\ne"]);
        assert_eq!(out, "a\\tb\tc\\\\d\\ne\n");
    }

    #[test]
    fn the_handling_time_is_the_difference_of_two_scrapes() {
        let scrape = |n: [u64; 3], sum: f64| {
            format!(
                "mfa_consumer_handle_duration_seconds_bucket{{group=\"g\",topic=\"t\",le=\"0.005\"}} {}\n\
                 mfa_consumer_handle_duration_seconds_bucket{{group=\"g\",topic=\"t\",le=\"0.01\"}} {}\n\
                 mfa_consumer_handle_duration_seconds_bucket{{group=\"g\",topic=\"t\",le=\"+Inf\"}} {}\n\
                 mfa_consumer_handle_duration_seconds_sum{{group=\"g\",topic=\"t\"}} {sum}\n\
                 mfa_consumer_handle_duration_seconds_count{{group=\"g\",topic=\"t\"}} {}\n\
                 mfa_consumer_handle_duration_seconds_count{{group=\"g\",topic=\"other\"}} 99\n",
                n[0], n[1], n[2], n[2]
            )
        };
        let before = handle_histogram(&scrape([10, 10, 10], 0.03), "t");
        let after = handle_histogram(&scrape([10, 110, 110], 0.83), "t");
        let time = handle_time(&before, &after);
        assert_eq!(time.count, 100.0);
        assert!((time.mean_ms - 8.0).abs() < 1e-9, "{time:?}");
        // All 100 fell between 5 and 10 ms: the median halfway.
        assert!((time.p50_ms - 7.5).abs() < 1e-9, "{time:?}");
        assert!((time.p99_ms - 9.95).abs() < 1e-9, "{time:?}");
    }
}
