//! A login's state read in one round trip (`RiskStore::login_state`, what the live worker
//! decides with) equals the same state read part by part (`state::login_state_by_parts`, the
//! trait's separate reads) on a populated database: six users with histories over three
//! epochs (some of it older than the history window), wrong passwords on a known and on
//! unknown accounts, challenges open, closed and failed, a reported network and device, and a
//! user who must change their password.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use mfa_testkit::stack;
use risk_worker::decision::LoginState;
use risk_worker::geo::GeoIp;
use risk_worker::model::epochs::Epoch;
use risk_worker::model::features::{
    device_value, failure_ip_pseudonym, prefix_of, Features, Location,
};
use risk_worker::model::state::AccountKey;
use risk_worker::rules::Policy;
use risk_worker::state::{
    self, DecisionIds, LoginStateQuery, OpenedAttempt, PasswordChangeRequired, ReportedLogin,
    RiskState,
};
use risk_worker::store::RiskStore;
use shared::domain::{
    AttemptId, AuthMethod, ChallengeId, DeviceId, Locale, Platform, PrimaryFactor, UserAgent,
    UserId,
};
use shared::events::{
    CodeDeliveryFailed, Envelope, Event, LoginApproved, LoginAttempted, LoginClient, MfaFailed,
    MfaFailureReason, MfaSucceeded,
};
use shared::personal::{Personal, PseudonymKey};
use uuid::Uuid;

use crate::log::{acme, CHROME};

const OFFICE: &str = "203.0.113.40";
const HOME: &str = "81.2.69.142";
const CAFE: &str = "198.51.100.7";

fn laptop(n: usize) -> String {
    format!("laptop-{n}")
}

/// The client of a login from `ip` on `device`.
fn client(ip: &str, device: &str) -> LoginClient {
    LoginClient {
        ip: ip.parse().unwrap(),
        user_agent: UserAgent::parse(CHROME).unwrap(),
        device_id: Some(DeviceId::parse(device).unwrap()),
    }
}

/// A login's features, with a place for the office and home (as GeoIP would give), so the
/// history's last location is read too.
fn features(client: &LoginClient) -> Features {
    let location = match client.ip.to_string().as_str() {
        OFFICE => Some(Location {
            lat: 48.85,
            lon: 2.35,
            accuracy_km: 20.0,
        }),
        HOME => Some(Location {
            lat: 51.5,
            lon: -0.12,
            accuracy_km: 50.0,
        }),
        _ => None,
    };
    Features::of(client, &GeoIp::none()).with_location(location)
}

/// The risk worker's state over PostgreSQL, fed events one at a time through the live
/// flow, a minute apart.
struct Population {
    pool: sqlx::PgPool,
    store: RiskStore,
    pseudonyms: PseudonymKey,
    at: DateTime<Utc>,
    n: u128,
}

impl Population {
    fn state(&self) -> risk_worker::store::Publishing<'_> {
        self.store.publishing("t.risk-decisions", "key")
    }

    fn envelope(&mut self, attempt_id: AttemptId, event: Event) -> Envelope {
        self.n += 1;
        self.at += chrono::Duration::minutes(1);
        Envelope::new("test", attempt_id, None, self.at, event)
    }

    /// A login decided; its decision.
    async fn login(
        &mut self,
        user: Option<UserId>,
        factor: PrimaryFactor,
        ip: &str,
        device: &str,
    ) -> Envelope {
        let client = client(ip, device);
        let attempt = LoginAttempted {
            user_id: user,
            company_id: Some(acme()),
            auth_method: AuthMethod::Password,
            primary_factor: factor,
            privileged: false,
            platform: Platform::Dashboard,
            client: Personal::Clear(client.clone()),
            locale: Locale::En,
        };
        let attempt_id = AttemptId::from_uuid(Uuid::from_u128(0x10_000 + self.n));
        let envelope = self.envelope(attempt_id, Event::LoginAttempted(attempt.clone()));
        let features = features(&client);
        let pseudonyms = self.pseudonyms.clone();
        state::decide_login(
            &mut self.state(),
            &envelope,
            OpenedAttempt {
                attempt: &attempt,
                client: &client,
                features: &features,
            },
            &pseudonyms,
            envelope.occurred_at,
            DecisionIds {
                event_id: Uuid::now_v7(),
                challenge_id: ChallengeId::new_random(),
            },
            &Policy::default(),
        )
        .await
        .unwrap()
    }

    /// What the verifier or the code worker reports about `attempt_id`.
    async fn report(&mut self, attempt_id: AttemptId, event: Event) {
        let envelope = self.envelope(attempt_id, event);
        state::apply(&mut self.state(), &envelope, None)
            .await
            .unwrap();
    }

    /// A login of a known user that asks for a code: its challenge.
    async fn challenged(
        &mut self,
        user: UserId,
        ip: &str,
        device: &str,
    ) -> (AttemptId, ChallengeId) {
        let decision = self
            .login(Some(user), PrimaryFactor::Succeeded, ip, device)
            .await;
        let Event::MfaRequired(required) = &decision.event else {
            panic!("a new device asks for a code: {:?}", decision.event);
        };
        (decision.attempt_id, required.challenge_id)
    }

    /// A login that asks for a code, passed: learned.
    async fn passes(&mut self, user: UserId, ip: &str, device: &str) {
        let (attempt_id, challenge_id) = self.challenged(user, ip, device).await;
        self.report(
            attempt_id,
            Event::MfaSucceeded(MfaSucceeded {
                user_id: user,
                challenge_id,
            }),
        )
        .await;
        self.report(
            attempt_id,
            Event::LoginApproved(LoginApproved {
                counted: None,
                user_id: user,
                approved_after_mfa: true,
                challenge_id: Some(challenge_id),
                risk: None,
            }),
        )
        .await;
    }

    async fn approved(&mut self, user: UserId, ip: &str, device: &str) {
        let decision = self
            .login(Some(user), PrimaryFactor::Succeeded, ip, device)
            .await;
        assert_eq!(
            decision.event.event_type().name(),
            "LoginApproved",
            "{ip} {device}"
        );
    }

    fn wait(&mut self, days: i64) {
        self.at += chrono::Duration::days(days);
    }

    /// The rows of the user's history older than `window` before `at`: what reading their
    /// state at `at` forgets.
    async fn rows_before(&self, user: UserId, at: DateTime<Utc>, window: Duration) -> i64 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM risk_login_history WHERE user_id = $1 AND occurred_at < $2",
        )
        .bind(user.as_uuid())
        .bind(shared::time::saturating_sub(at, window))
        .fetch_one(&self.pool)
        .await
        .unwrap();
        n
    }
}

/// Logins probed for every user: their own laptop at the office, home on the first user's
/// laptop, and the café on a phone and on the reported laptop.
fn probes(user: usize) -> [(&'static str, String); 4] {
    [
        (OFFICE, laptop(user)),
        (HOME, laptop(0)),
        (CAFE, "phone-new".to_owned()),
        (CAFE, laptop(4)),
    ]
}

/// Reads the state of `user`'s login from `ip` on `device` a minute after the newest event,
/// both ways (the one statement first, so its forgetting is what both read after), and
/// checks they agree; the state.
async fn read_both(
    population: &Population,
    user: Option<UserId>,
    (ip, device): (&str, &str),
    history_window: Duration,
) -> LoginState {
    let client = client(ip, device);
    let features = features(&client);
    let global = features.pseudonymous(&population.pseudonyms);
    let failure_ip = failure_ip_pseudonym(&population.pseudonyms, client.ip);
    let account = user.map(|user| AccountKey(user.to_string()));
    let at = population.at + chrono::Duration::minutes(1);
    let risk = Policy::default().risk;
    let query = LoginStateQuery {
        account: user.zip(account.as_ref()),
        login: &features,
        global: &global,
        ip: &failure_ip,
        at,
        now: at,
        history_window,
        account_failures_window: risk.account_failures_window,
        ip_window: risk.ip_window,
    };
    let mut live = population.state();
    let one = live.login_state(&query).await.unwrap();
    let by_parts = state::login_state_by_parts(&mut live, &query)
        .await
        .unwrap();
    assert_eq!(one, by_parts, "{user:?} from {ip} on {device} at {at}");
    one
}

/// Every probe of every user (and of an unknown account) read both ways.
async fn read_all(population: &Population, users: &[UserId], window: Duration) {
    for (n, user) in users.iter().enumerate() {
        for (ip, device) in &probes(n) {
            read_both(population, Some(*user), (ip, device), window).await;
        }
    }
    for (ip, device) in &probes(0) {
        let unknown = read_both(population, None, (ip, device), window).await;
        assert_eq!(unknown.user, Default::default());
        assert_eq!(unknown.codes, Default::default());
    }
}

#[tokio::test]
async fn one_round_trip_reads_what_the_separate_reads_read() {
    let url = stack::create_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    mfa_store::db::migrate(&pool).await.unwrap();
    let pseudonyms = stack::data_protection().pseudonym_key;
    let mut population = Population {
        store: RiskStore::new(pool.clone(), pseudonyms.clone()),
        pool,
        pseudonyms,
        // Epoch 228 of 90 days, which ends on 2026-06-06.
        at: DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        n: 0,
    };
    let users: Vec<UserId> = (0..6)
        .map(|n| UserId::from_uuid(Uuid::from_u128(0x5e_000 + n)))
        .collect();
    let window = Policy::default().risk.history_window;

    // Everyone at the office on their laptop (a code, then known), the first user at home
    // too (a known laptop).
    for (n, user) in users.iter().enumerate() {
        population.passes(*user, OFFICE, &laptop(n)).await;
        population.approved(*user, OFFICE, &laptop(n)).await;
    }
    population.approved(users[0], HOME, &laptop(0)).await;
    read_all(&population, &users, window).await;

    // 100 days later (epoch 230), again.
    population.wait(100);
    for (n, user) in users.iter().enumerate() {
        population.approved(*user, OFFICE, &laptop(n)).await;
    }
    population.approved(users[0], HOME, &laptop(0)).await;
    read_all(&population, &users, window).await;

    // 90 days later (epoch 231): the first logins are past the 180-day window.
    population.wait(90);
    for (n, user) in users.iter().enumerate().take(4) {
        population.approved(*user, OFFICE, &laptop(n)).await;
    }
    population.approved(users[0], HOME, &laptop(0)).await;
    // Wrong passwords from the café: three on the second user, one each on three unknown
    // accounts.
    for _ in 0..3 {
        population
            .login(Some(users[1]), PrimaryFactor::Failed, CAFE, &laptop(1))
            .await;
    }
    for _ in 0..3 {
        population
            .login(None, PrimaryFactor::Failed, CAFE, "phone-new")
            .await;
    }
    // The third user's code could not be emailed; the fourth's is pending, one wrong code in.
    let (attempt, challenge_id) = population.challenged(users[2], CAFE, "phone-new").await;
    population
        .report(
            attempt,
            Event::CodeDeliveryFailed(CodeDeliveryFailed {
                user_id: users[2],
                challenge_id,
                reason: "mailbox full".into(),
            }),
        )
        .await;
    let (attempt, challenge_id) = population.challenged(users[3], CAFE, "phone-new").await;
    population
        .report(
            attempt,
            Event::MfaFailed(MfaFailed {
                user_id: users[3],
                challenge_id,
                reason: MfaFailureReason::InvalidCode,
                attempts_remaining: 4,
            }),
        )
        .await;
    // The fifth user said a login from the café on their laptop was not theirs.
    let reported = ReportedLogin {
        user: users[4],
        attempt_id: AttemptId::from_uuid(Uuid::from_u128(0xbad)),
        network: Some(prefix_of(CAFE.parse().unwrap())),
        device: Some(device_value(Some(&DeviceId::parse(&laptop(4)).unwrap()))),
        at: population.at,
    };
    population.state().record_reported(&reported).await.unwrap();
    // ... under a policy that then requires a new password.
    population
        .state()
        .require_password_change(&PasswordChangeRequired {
            user: users[4],
            attempt_id: reported.attempt_id,
            at: population.at,
        })
        .await
        .unwrap();

    // The window of global counts holds logins of both its epochs.
    let epoch = Epoch::of(population.at);
    let (epochs,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM risk_global_totals WHERE epoch IN ($1, $2) AND logins > 0",
    )
    .bind(epoch.start())
    .bind(epoch.previous().start())
    .fetch_one(&population.pool)
    .await
    .unwrap();
    assert_eq!(epochs, 2);

    // The sixth user has not logged in since: their first logins are still kept, and the
    // one-statement read forgets them as the separate reads do.
    let probe_at = population.at + chrono::Duration::minutes(1);
    assert!(population.rows_before(users[5], probe_at, window).await > 0);
    read_all(&population, &users, window).await;
    assert_eq!(population.rows_before(users[5], probe_at, window).await, 0);

    // What was read, so the comparison compared something.
    let state_of = |n: usize, ip: &'static str, device: String| {
        let population = &population;
        let user = users[n];
        async move { read_both(population, Some(user), (ip, &device), window).await }
    };
    let at_home = state_of(0, HOME, laptop(0)).await;
    assert_eq!(
        at_home.user.counts.logins, 4,
        "the first user's logins of 180 days"
    );
    assert!(at_home.user.last_location.is_some());
    assert!(at_home.global.counts.logins > 0 && at_home.global.users == 6);
    let stuffed = state_of(1, CAFE, laptop(1)).await;
    assert_eq!(
        (
            stuffed.velocity.account_failures,
            stuffed.velocity.ip_failures,
            stuffed.velocity.ip_failed_accounts
        ),
        (3, 6, 4)
    );
    let undelivered = state_of(2, CAFE, "phone-new".into()).await;
    assert_eq!(undelivered.codes.issued_last_hour.len(), 1);
    assert!(
        undelivered.codes.pending.is_none(),
        "its challenge is closed"
    );
    let pending = state_of(3, CAFE, "phone-new".into()).await;
    let code = pending
        .codes
        .pending
        .expect("the fourth user's code is pending");
    assert_eq!(code.device, Some(DeviceId::parse("phone-new").unwrap()));
    assert_eq!(pending.codes.failed_codes_last_day.len(), 1);
    let reported = state_of(4, CAFE, laptop(4)).await;
    assert!(reported.user.reported.network && reported.user.reported.device);
    assert!(reported.user.password_change_required);
    assert!(!at_home.user.password_change_required);

    // A shorter window (a company's policy) reads and forgets alike.
    read_all(&population, &users, Duration::from_secs(30 * 86_400)).await;
    let recent = state_of(0, HOME, laptop(0)).await;
    assert_eq!(
        recent.user.counts.logins, 2,
        "the first user's logins of 30 days"
    );
}
