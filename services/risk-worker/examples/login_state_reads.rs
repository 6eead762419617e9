//! How long the risk worker takes to read a login's state from PostgreSQL: part by part
//! (`state::login_state_by_parts`, seven queries) and in one statement
//! (`RiskStore::login_state`, what the live worker reads with), on a database of its own on
//! the stack's PostgreSQL, filled through the live decision flow. Prints microseconds per
//! read, p50 and p99 of each.
//!
//! ```text
//! scripts/stack up
//! cargo run --release -p risk-worker --example login_state_reads -- --users 200 --reads 5000
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Parser;
use risk_worker::geo::GeoIp;
use risk_worker::model::features::{failure_ip_pseudonym, Features};
use risk_worker::model::state::AccountKey;
use risk_worker::rules::Policy;
use risk_worker::state::{self, DecisionIds, LoginStateQuery, OpenedAttempt, RiskState};
use risk_worker::store::RiskStore;
use secrecy::SecretString;
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, CompanyId, DeviceId, Locale, Platform, PrimaryFactor,
    UserAgent, UserId,
};
use shared::events::{Envelope, Event, LoginApproved, LoginAttempted, LoginClient, MfaSucceeded};
use shared::personal::{Personal, PseudonymKey};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

#[derive(Parser)]
struct Args {
    /// Users, each with a history.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Approved logins in each user's history (in the 180-day window).
    #[arg(long, default_value_t = 30)]
    history: usize,
    /// Reads timed each way, after as many untimed ones to warm up.
    #[arg(long, default_value_t = 2000)]
    reads: usize,
}

/// The live flow over `store`: the decision of a login at `at`.
struct Flow<'a> {
    store: &'a RiskStore,
    pseudonyms: &'a PseudonymKey,
    policy: Policy,
}

impl Flow<'_> {
    async fn login(
        &self,
        user: UserId,
        factor: PrimaryFactor,
        client: &LoginClient,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Envelope> {
        let attempt = LoginAttempted {
            user_id: Some(user),
            company_id: Some(CompanyId::parse("acme")?),
            auth_method: AuthMethod::Password,
            primary_factor: factor,
            privileged: false,
            platform: Platform::Dashboard,
            client: Personal::Clear(client.clone()),
            locale: Locale::En,
        };
        let envelope = Envelope::new(
            "login-intake",
            AttemptId::new(),
            None,
            at,
            Event::LoginAttempted(attempt.clone()),
        );
        let features = Features::of(client, &GeoIp::none());
        Ok(state::decide_login(
            &mut self.store.publishing("bench.risk-decisions", "key"),
            &envelope,
            OpenedAttempt {
                attempt: &attempt,
                client,
                features: &features,
            },
            self.pseudonyms,
            at,
            DecisionIds {
                event_id: Uuid::now_v7(),
                challenge_id: ChallengeId::new_random(),
            },
            &self.policy,
        )
        .await?)
    }

    /// What the verifier reports once the user passed the code `decision` asked for.
    async fn pass(&self, user: UserId, decision: &Envelope) -> anyhow::Result<()> {
        let Event::MfaRequired(required) = &decision.event else {
            bail!("a first login asks for a code: {:?}", decision.event);
        };
        let challenge_id = required.challenge_id;
        let at = decision.occurred_at + chrono::Duration::seconds(30);
        for event in [
            Event::MfaSucceeded(MfaSucceeded {
                user_id: user,
                challenge_id,
            }),
            Event::LoginApproved(LoginApproved {
                counted: None,
                user_id: user,
                approved_after_mfa: true,
                challenge_id: Some(challenge_id),
                risk: None,
            }),
        ] {
            let envelope = Envelope::new("verifier", decision.attempt_id, None, at, event);
            state::apply(
                &mut self.store.publishing("bench.risk-decisions", "key"),
                &envelope,
                None,
            )
            .await?;
        }
        Ok(())
    }
}

/// User `n`'s laptop at their office or at home: two addresses of their own.
fn client(n: usize, at_home: bool) -> anyhow::Result<LoginClient> {
    let (a, b) = (n / 250 % 250, n % 250);
    let ip = if at_home {
        format!("172.16.{a}.{b}")
    } else {
        format!("10.{a}.{b}.1")
    };
    Ok(LoginClient {
        ip: ip.parse()?,
        user_agent: UserAgent::parse(CHROME)?,
        device_id: Some(DeviceId::parse(&format!("laptop-{n}"))?),
    })
}

/// A user's next login, as its state is read.
struct NextLogin {
    user: UserId,
    account: AccountKey,
    features: Features,
    global: Features,
    ip: String,
}

/// `reads` reads of the queries in turn, each both ways, after as many untimed: the times
/// part by part and in one statement. Which way goes first alternates, so neither always
/// finds the other's pages warm.
async fn measure(
    store: &RiskStore,
    queries: &[LoginStateQuery<'_>],
    reads: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut live = store.publishing("bench.risk-decisions", "key");
    let (mut by_parts, mut one) = (Vec::with_capacity(reads), Vec::with_capacity(reads));
    for i in 0..2 * reads {
        let query = &queries[i % queries.len()];
        for parts_first in [i % 2 == 0, i % 2 == 1] {
            let began = Instant::now();
            let state = if parts_first {
                state::login_state_by_parts(&mut live, query).await?
            } else {
                live.login_state(query).await?
            };
            let took = began.elapsed();
            if state.user.counts.logins == 0 {
                bail!("a user without history: the population is not what it says");
            }
            if i >= reads {
                if parts_first {
                    by_parts.push(took)
                } else {
                    one.push(took)
                }
            }
        }
    }
    Ok((by_parts, one))
}

/// Microseconds at the `p` quantile of `times` (sorted).
fn micros_at(times: &[Duration], p: f64) -> f64 {
    let rank = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len());
    times[rank - 1].as_secs_f64() * 1e6
}

fn summary(name: &str, times: &mut [Duration]) -> String {
    times.sort_unstable();
    format!(
        "{name}: p50 {:.0} µs, p99 {:.0} µs",
        micros_at(times, 0.50),
        micros_at(times, 0.99)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.users == 0 || args.reads == 0 {
        bail!("--users and --reads must be at least 1");
    }
    let url = mfa_testkit::stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url)
        .await
        .context("the stack's PostgreSQL")?;
    mfa_store::db::migrate(&pool).await?;
    let pseudonyms = mfa_testkit::stack::data_protection().pseudonym_key;
    let store = RiskStore::new(pool.clone(), pseudonyms.clone());
    let flow = Flow {
        store: &store,
        pseudonyms: &pseudonyms,
        policy: Policy::default(),
    };

    // Each user: a first login on their laptop (a code, passed), then `history` approved
    // logins over 150 days from two addresses of their own, then two wrong passwords.
    let started = Instant::now();
    let end: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")?.into();
    let first = end - chrono::Duration::days(150);
    let step = chrono::Duration::days(150) / i32::try_from(args.history.max(1))?;
    let users: Vec<UserId> = (0..args.users).map(|_| UserId::new()).collect();
    for (n, user) in users.iter().enumerate() {
        let (office, home) = (client(n, false)?, client(n, true)?);
        let decision = flow
            .login(*user, PrimaryFactor::Succeeded, &office, first)
            .await?;
        flow.pass(*user, &decision).await?;
        for i in 0..args.history {
            let from = if i % 3 == 2 { &home } else { &office };
            let at = first + step * i32::try_from(i)? + chrono::Duration::hours(1);
            flow.login(*user, PrimaryFactor::Succeeded, from, at)
                .await?;
        }
        for minute in 1..=2 {
            let at = end - chrono::Duration::minutes(10 - minute);
            flow.login(*user, PrimaryFactor::Failed, &home, at).await?;
        }
    }
    let (learned,): (i64,) = sqlx::query_as("SELECT count(*) FROM risk_login_history")
        .fetch_one(&pool)
        .await?;
    println!(
        "populated in {:.1} s: {} users, {:.1} logins learned each in 150 days",
        started.elapsed().as_secs_f64(),
        args.users,
        learned as f64 / args.users as f64,
    );

    // The next login of each user in turn, from the office.
    let risk = &flow.policy.risk;
    let logins: Vec<NextLogin> = users
        .iter()
        .enumerate()
        .map(|(n, user)| {
            let login = client(n, false)?;
            let features = Features::of(&login, &GeoIp::none());
            Ok(NextLogin {
                user: *user,
                account: AccountKey(user.to_string()),
                global: features.pseudonymous(&pseudonyms),
                features,
                ip: failure_ip_pseudonym(&pseudonyms, login.ip),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let queries: Vec<LoginStateQuery<'_>> = logins
        .iter()
        .map(|login| LoginStateQuery {
            account: Some((login.user, &login.account)),
            login: &login.features,
            global: &login.global,
            ip: &login.ip,
            at: end,
            now: end,
            history_window: risk.history_window,
            account_failures_window: risk.account_failures_window,
            ip_window: risk.ip_window,
        })
        .collect();
    println!(
        "{} reads each way (after {} to warm up), µs per read:",
        args.reads, args.reads
    );
    // The service's pool (`mfa_store::db::connect`) keeps sqlx's default of pinging a
    // connection before each query hands it out: one more round trip per query.
    let service_pool = mfa_store::db::connect(&SecretString::from(url.clone()), 10).await?;
    let unpinged = PgPoolOptions::new()
        .max_connections(10)
        .test_before_acquire(false)
        .connect(&url)
        .await?;
    for (name, timed_pool) in [
        (
            "the service's pool (a ping before each query)",
            service_pool,
        ),
        (
            "a pool without that ping (test_before_acquire(false))",
            unpinged,
        ),
    ] {
        let store = RiskStore::new(timed_pool.clone(), pseudonyms.clone());
        let (mut by_parts, mut one) = measure(&store, &queries, args.reads).await?;
        println!(
            "  {name}\n    {}\n    {}",
            summary("part by part (7 queries)", &mut by_parts),
            summary("one statement           ", &mut one),
        );
        timed_pool.close().await;
    }
    pool.close().await;
    drop_database(&url).await
}

/// The benchmark's database, dropped once it is done (the connections to it closed).
async fn drop_database(url: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    let (_, name) = url.rsplit_once('/').context("a database URL")?;
    let server = mfa_testkit::stack::setting("MFA_DATABASE_URL");
    let mut connection = sqlx::PgConnection::connect(&server).await?;
    connection
        .execute(format!(r#"DROP DATABASE "{name}""#).as_str())
        .await?;
    Ok(())
}
