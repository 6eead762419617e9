//! One login's risk: the Freeman score of its features against the user's approved history,
//! raised by the hard signals (impossible travel, bursts of failed passwords, a deny-listed
//! network, an unrecognised device away from the user's known addresses), then cut into a
//! level with stable reasons. Pure: the login's own time is the only clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::domain::Platform;
use shared::events::{RiskAssessment, RiskLevel, RiskReason};

use super::denylist::Denylist;
use super::features::{Features, Level, Location, ABSENT_DEVICE};
use super::freeman::{self, Counts, GlobalCounts, Spec};

/// Which model scores logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Freeman's score on address, client and device id, plus the hard signals.
    Full,
    /// Freeman's score on IP and user agent alone, as in the published studies; for
    /// comparison in the evaluation benchmark.
    Plain,
}

impl ModelKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "full" => Some(Self::Full),
            "freeman-plain" | "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    /// Changes whenever a change to the model can change a decision.
    pub fn version(self) -> &'static str {
        match self {
            ModelKind::Full => "adaptive-1",
            ModelKind::Plain => "freeman-plain-1",
        }
    }

    fn spec(self) -> &'static Spec {
        match self {
            ModelKind::Full => &freeman::FULL,
            ModelKind::Plain => &freeman::PLAIN,
        }
    }
}

/// What the deny-list does to a login from a listed network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenylistAction {
    /// High risk: a code is asked for.
    Challenge,
    /// The login is refused even with the right password.
    Reject,
}

/// The model's settings. Scores are in log10 units of Freeman's S.
#[derive(Debug, Clone)]
pub struct RiskPolicy {
    pub model: ModelKind,
    /// Score from which a login is medium risk.
    pub medium_threshold: f64,
    /// Score from which a login is high risk.
    pub high_threshold: f64,
    /// Subtracted from both thresholds for privileged users (admins).
    pub privileged_offset: f64,
    /// The levels that require a code (by default medium and high).
    pub challenge_medium: bool,
    pub challenge_high: bool,
    /// Approved logins older than this are forgotten.
    pub history_window: Duration,
    /// Faster than this between two approved logins' places is impossible travel.
    pub max_travel_speed_kmh: f64,
    /// Failed passwords on the account within `account_failures_window` that make a burst.
    pub account_failures_threshold: u32,
    pub account_failures_window: Duration,
    /// Failed passwords from one address, and distinct accounts failed from it, within
    /// `ip_window`, that make credential stuffing or password spraying.
    pub ip_failures_threshold: u32,
    pub ip_failed_accounts_threshold: u32,
    pub ip_window: Duration,
    pub denylist: Denylist,
    pub denylist_action: DenylistAction,
    /// Added to the score by each hard signal.
    pub unrecognised_device_elsewhere_penalty: f64,
    pub impossible_travel_penalty: f64,
    pub account_burst_penalty: f64,
    pub ip_burst_penalty: f64,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        Self {
            model: ModelKind::Full,
            medium_threshold: -0.5,
            high_threshold: 2.0,
            privileged_offset: 1.0,
            challenge_medium: true,
            challenge_high: true,
            history_window: Duration::from_secs(180 * 24 * 3600),
            max_travel_speed_kmh: 1000.0,
            account_failures_threshold: 5,
            account_failures_window: Duration::from_secs(15 * 60),
            ip_failures_threshold: 20,
            ip_failed_accounts_threshold: 5,
            ip_window: Duration::from_secs(3600),
            denylist: Denylist::default(),
            denylist_action: DenylistAction::Challenge,
            unrecognised_device_elsewhere_penalty: 1.5,
            impossible_travel_penalty: 2.0,
            account_burst_penalty: 1.5,
            ip_burst_penalty: 3.0,
        }
    }
}

impl RiskPolicy {
    pub fn requires_code(&self, level: RiskLevel) -> bool {
        match level {
            RiskLevel::Low => false,
            RiskLevel::Medium => self.challenge_medium,
            RiskLevel::High => self.challenge_high,
        }
    }
}

/// An approved login, as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub features: Features,
}

/// The most logins of a user's history the model reads: the newest inside the window. So a
/// decision's read is bounded whatever the history's length (a service account logging in
/// every few minutes has thousands of logins in 180 days), and 500 logins are more than the
/// model's counts need to know a user's devices and networks.
pub const HISTORY_READ_LIMIT: usize = 500;

/// The user's approved logins inside the window, oldest first (the newest
/// `HISTORY_READ_LIMIT` of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserHistory {
    pub entries: Vec<HistoryEntry>,
}

/// What the model reads of the user's history for one login.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFacts {
    /// How many of the user's approved logins (in the window) share each of the login's
    /// values.
    pub counts: Counts,
    /// The newest approved login with a place: when, and where.
    pub last_location: Option<(DateTime<Utc>, Location)>,
    /// Whether the login's network and device are ones the user reported (`LoginFeedback`
    /// `wasnt_me`).
    pub reported: Reported,
    /// Whether the user must change their password first (they reported a login as not
    /// theirs under a company policy that requires it, and it has not changed since). Not
    /// scored: the decision refuses their password logins (`rules::password_must_change`).
    pub password_change_required: bool,
}

/// What the user reported that the login shares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    pub network: bool,
    pub device: bool,
}

impl UserFacts {
    /// From the history's entries (oldest first). `MemoryState` keeps the same counts
    /// incrementally, for speed; both must agree.
    pub fn from_history(history: &[HistoryEntry], login: &Features) -> Self {
        let mut counts = Counts {
            logins: history.len() as u64,
            ..Counts::default()
        };
        for entry in history {
            for (level, value) in login.values() {
                if entry.features.get(level) == Some(value) {
                    counts.matching.add(level, 1);
                }
            }
        }
        Self {
            counts,
            last_location: last_location(history),
            reported: Reported::default(),
            password_change_required: false,
        }
    }
}

pub fn last_location(history: &[HistoryEntry]) -> Option<(DateTime<Utc>, Location)> {
    history
        .iter()
        .rev()
        .find_map(|e| e.features.location.map(|l| (e.at, l)))
}

/// Failed passwords around this login, from the sliding windows of the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Velocity {
    pub account_failures: u32,
    pub ip_failures: u32,
    pub ip_failed_accounts: u32,
}

/// Everything one assessment reads.
pub struct Input<'a> {
    pub at: DateTime<Utc>,
    pub features: &'a Features,
    /// The user's approved history; None for an unknown account.
    pub user: Option<&'a UserFacts>,
    pub global: &'a GlobalCounts,
    pub velocity: Velocity,
    pub denylisted: bool,
    pub privileged: bool,
    pub platform: Platform,
}

pub fn assess(input: &Input<'_>, policy: &RiskPolicy) -> RiskAssessment {
    let mut reasons = Vec::new();
    let mut score = 0.0;
    let mut floor = RiskLevel::Low;
    let full = policy.model == ModelKind::Full;
    match input.user {
        Some(user) if user.counts.logins > 0 => {
            let counts = &user.counts;
            let freeman = freeman::score(policy.model.spec(), input.features, counts, input.global);
            score += freeman.log10;
            let unseen = |level| input.features.get(level).is_some() && counts.of(level) == 0;
            // No device id identifies nobody: private windows and attack tools alike send
            // none, so "absent" is never a recognised device, even if the user had it before.
            let device_absent = input.features.get(Level::Device) == Some(ABSENT_DEVICE);
            let unrecognised_device = device_absent || unseen(Level::Device);
            if device_absent {
                reasons.push(RiskReason::MissingDeviceId);
            } else if unrecognised_device {
                reasons.push(RiskReason::NewDevice);
            }
            if unseen(Level::Prefix) {
                reasons.push(RiskReason::NewNetwork);
            }
            if unseen(Level::Asn) {
                reasons.push(RiskReason::NewAsn);
            }
            if unseen(Level::Country) {
                reasons.push(RiskReason::NewCountry);
            }
            if unseen(Level::Client) {
                reasons.push(RiskReason::NewBrowser);
            }
            // A private window or cleared cookies at the user's own address is the user; the
            // same from anywhere else (even the same ISP and city) may be an attacker.
            // Device ids are the one thing an attacker with the password cannot copy, so
            // this alone asks for a code, however familiar the rest looks.
            // An app has no private window: a device id it never sent is a new install, at
            // the user's own address too (an attacker on the user's home network with the
            // app's user agent was approved by the private-window rule, and its device then
            // learned from that approval).
            let new_install = input.platform.is_native_app() && unrecognised_device;
            if full && unrecognised_device && (new_install || unseen(Level::Ip)) {
                score += policy.unrecognised_device_elsewhere_penalty;
                floor = floor.max(RiskLevel::Medium);
            }
            if impossible_travel(user, input, policy) {
                reasons.push(RiskReason::ImpossibleTravel);
                // A known device on a known network that "jumps" is a mobile carrier's
                // gateway geolocating far away, not a journey.
                if full && (unrecognised_device || unseen(Level::Asn)) {
                    score += policy.impossible_travel_penalty;
                }
            }
        }
        Some(_) => {
            reasons.push(RiskReason::FirstLogin);
            floor = RiskLevel::Medium;
        }
        None => {}
    }
    if input.velocity.account_failures >= policy.account_failures_threshold {
        reasons.push(RiskReason::FailedAttemptsBurst);
        if full {
            score += policy.account_burst_penalty;
            floor = floor.max(RiskLevel::Medium);
        }
    }
    let ip_failures = input.velocity.ip_failures >= policy.ip_failures_threshold;
    let ip_accounts = input.velocity.ip_failed_accounts >= policy.ip_failed_accounts_threshold;
    if ip_failures {
        reasons.push(RiskReason::IpFailedAttemptsBurst);
    }
    if ip_accounts {
        reasons.push(RiskReason::ManyAccountsFromIp);
    }
    if full && (ip_failures || ip_accounts) {
        score += policy.ip_burst_penalty;
        floor = floor.max(RiskLevel::High);
    }
    // The user's own word: a network or device of a login they said was not theirs asks for
    // a code whatever else is familiar (an attacker's device may even have been learned from
    // an approval before the report).
    if let Some(user) = input.user {
        if user.reported.network {
            reasons.push(RiskReason::ReportedNetwork);
            floor = RiskLevel::High;
        }
        if user.reported.device {
            reasons.push(RiskReason::ReportedDevice);
            floor = RiskLevel::High;
        }
    }
    if input.denylisted {
        reasons.push(RiskReason::DenylistedNetwork);
        floor = RiskLevel::High;
    }
    let offset = if input.privileged {
        policy.privileged_offset
    } else {
        0.0
    };
    let by_score = if score >= policy.high_threshold - offset {
        RiskLevel::High
    } else if score >= policy.medium_threshold - offset {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    };
    RiskAssessment {
        // Rounded so the number reads well in events and survives any JSON round trip.
        score: (score * 1000.0).round() / 1000.0,
        level: by_score.max(floor),
        reasons,
        model_version: policy.model.version().to_owned(),
        // The company's policy, not the model: `crate::rules` sets them.
        policy_version: None,
        observed: None,
    }
}

/// The distance from the last approved login's place, less both places' accuracy radii,
/// covered faster than the policy allows.
fn impossible_travel(user: &UserFacts, input: &Input<'_>, policy: &RiskPolicy) -> bool {
    let (Some((then, from)), Some(to)) = (user.last_location, input.features.location) else {
        return false;
    };
    let distance = great_circle_km(from, to) - from.accuracy_km - to.accuracy_km;
    if distance <= 0.0 {
        return false;
    }
    let hours = (input.at - then).num_milliseconds().max(1) as f64 / 3_600_000.0;
    distance / hours > policy.max_travel_speed_kmh
}

/// Haversine distance on a sphere of the Earth's mean radius.
pub fn great_circle_km(a: Location, b: Location) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: Location = Location {
        lat: 52.52,
        lon: 13.405,
        accuracy_km: 20.0,
    };
    const NEW_YORK: Location = Location {
        lat: 40.7128,
        lon: -74.006,
        accuracy_km: 20.0,
    };

    fn features(device: &str, ip: &str, client: &str, location: Option<Location>) -> Features {
        Features::from_values([
            (Level::Device, device.to_owned()),
            (Level::Ip, ip.to_owned()),
            (Level::Prefix, format!("{ip}/24")),
            (Level::Asn, "AS3320".to_owned()),
            (Level::Country, "DE".to_owned()),
            (Level::Client, client.to_owned()),
            (Level::Browser, "Chrome".to_owned()),
            (Level::Os, "Windows 10".to_owned()),
            (Level::DeviceType, "pc".to_owned()),
        ])
        .with_location(location)
    }

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + hours * 3600, 0).unwrap()
    }

    /// A user with 20 logins from one device, address and client in Berlin, among 2,000
    /// logins of 100 users.
    fn regular_user() -> (UserHistory, GlobalCounts) {
        let home = features(
            "id:laptop",
            "10.0.0.1",
            "Chrome/Windows 10/pc",
            Some(BERLIN),
        );
        let history = UserHistory {
            entries: (0..20)
                .map(|i| HistoryEntry {
                    at: at(i * 24),
                    features: home.clone(),
                })
                .collect(),
        };
        let mut global = GlobalCounts {
            users: 100,
            ..GlobalCounts::default()
        };
        global.counts.logins = 2000;
        for (level, count, distinct) in [
            (Level::Asn, 300, 50),
            (Level::Country, 800, 10),
            (Level::Browser, 900, 6),
            (Level::Os, 1000, 8),
            (Level::DeviceType, 1500, 3),
            (Level::Client, 500, 40),
        ] {
            global.counts.matching.set(level, count);
            global.distinct.set(level, distinct);
        }
        (history, global)
    }

    fn assess_login(login: &Features, hours: i64) -> RiskAssessment {
        assess_login_on(login, hours, Platform::Dashboard)
    }

    fn assess_login_on(login: &Features, hours: i64, platform: Platform) -> RiskAssessment {
        let (history, mut global) = regular_user();
        // The global counts are of this login's values: the user's own share of the
        // finest levels, when the login repeats them.
        for level in [Level::Device, Level::Ip, Level::Prefix] {
            let count = UserFacts::from_history(&history.entries, login)
                .counts
                .of(level);
            global.counts.matching.set(level, count);
        }
        let user = UserFacts::from_history(&history.entries, login);
        let input = Input {
            at: at(hours),
            features: login,
            user: Some(&user),
            global: &global,
            velocity: Velocity::default(),
            denylisted: false,
            privileged: false,
            platform,
        };
        assess(&input, &RiskPolicy::default())
    }

    #[test]
    fn a_new_device_id_at_home_is_a_private_window_in_a_browser_and_a_new_install_in_an_app() {
        let new_id_at_home = features("id:new", "10.0.0.1", "Chrome/Windows 10/pc", Some(BERLIN));
        let browser = assess_login_on(&new_id_at_home, 500, Platform::Dashboard);
        assert_eq!(browser.level, RiskLevel::Low, "{browser:?}");
        for app in [Platform::Workspace, Platform::Ios, Platform::Android] {
            let install = assess_login_on(&new_id_at_home, 500, app);
            assert_ne!(install.level, RiskLevel::Low, "{app}: {install:?}");
            assert_eq!(install.reasons, vec![RiskReason::NewDevice], "{app}");
            // The app's own device id at home stays the usual login.
            let known = features(
                "id:laptop",
                "10.0.0.1",
                "Chrome/Windows 10/pc",
                Some(BERLIN),
            );
            assert_eq!(assess_login_on(&known, 500, app).level, RiskLevel::Low);
        }
    }

    #[test]
    fn the_usual_login_is_low_and_a_new_device_elsewhere_is_not() {
        let usual = assess_login(
            &features(
                "id:laptop",
                "10.0.0.1",
                "Chrome/Windows 10/pc",
                Some(BERLIN),
            ),
            500,
        );
        assert_eq!(usual.level, RiskLevel::Low, "{usual:?}");
        assert!(usual.reasons.is_empty());
        let stranger = assess_login(
            &features("id:other", "10.9.9.9", "Chrome/Windows 10/pc", Some(BERLIN)),
            500,
        );
        assert!(stranger.score > usual.score);
        assert_ne!(stranger.level, RiskLevel::Low, "{stranger:?}");
        assert_eq!(
            stranger.reasons,
            vec![RiskReason::NewDevice, RiskReason::NewNetwork]
        );
    }

    #[test]
    fn impossible_travel_trips_and_a_realistic_flight_does_not() {
        let stranger_in_new_york = features(
            "id:other",
            "10.9.9.9",
            "Chrome/Windows 10/pc",
            Some(NEW_YORK),
        );
        // Last login at hour 19·24 = 456; Berlin to New York is ~6,400 km.
        let one_hour_later = assess_login(&stranger_in_new_york, 457);
        assert!(one_hour_later
            .reasons
            .contains(&RiskReason::ImpossibleTravel));
        let after_a_flight = assess_login(&stranger_in_new_york, 456 + 12);
        assert!(!after_a_flight
            .reasons
            .contains(&RiskReason::ImpossibleTravel));
        assert!(one_hour_later.score > after_a_flight.score);
        assert_eq!(one_hour_later.level, RiskLevel::High, "{one_hour_later:?}");
    }

    #[test]
    fn a_known_device_on_its_network_jumping_is_explained_but_not_penalised() {
        // A phone on its carrier: the gateway geolocates far away, the device is the user's.
        let laptop_in_new_york = features(
            "id:laptop",
            "10.0.0.1",
            "Chrome/Windows 10/pc",
            Some(NEW_YORK),
        );
        let jump = assess_login(&laptop_in_new_york, 457);
        assert!(jump.reasons.contains(&RiskReason::ImpossibleTravel));
        assert_eq!(jump.level, RiskLevel::Low, "{jump:?}");
    }

    #[test]
    fn the_accuracy_radius_is_allowed_for() {
        let near = Location {
            lat: BERLIN.lat + 0.3, // ~33 km north
            ..BERLIN
        };
        let login = features("id:laptop", "10.0.0.1", "Chrome/Windows 10/pc", Some(near));
        let assessment = assess_login(&login, 456);
        assert!(!assessment.reasons.contains(&RiskReason::ImpossibleTravel));
    }

    #[test]
    fn a_first_login_is_at_least_medium() {
        let login = features("id:laptop", "10.0.0.1", "Chrome/Windows 10/pc", None);
        let input = Input {
            at: at(0),
            features: &login,
            user: Some(&UserFacts::default()),
            global: &GlobalCounts::default(),
            velocity: Velocity::default(),
            denylisted: false,
            privileged: false,
            platform: Platform::Dashboard,
        };
        let assessment = assess(&input, &RiskPolicy::default());
        assert_eq!(assessment.reasons, vec![RiskReason::FirstLogin]);
        assert!(assessment.level >= RiskLevel::Medium);
    }

    #[test]
    fn bursts_and_deny_lists_raise_the_level() {
        let login = features(
            "id:laptop",
            "10.0.0.1",
            "Chrome/Windows 10/pc",
            Some(BERLIN),
        );
        let (history, global) = regular_user();
        let user = UserFacts::from_history(&history.entries, &login);
        let base = Input {
            at: at(500),
            features: &login,
            user: Some(&user),
            global: &global,
            velocity: Velocity::default(),
            denylisted: false,
            privileged: false,
            platform: Platform::Dashboard,
        };
        let policy = RiskPolicy::default();
        let burst = assess(
            &Input {
                velocity: Velocity {
                    account_failures: 5,
                    ..Velocity::default()
                },
                ..base
            },
            &policy,
        );
        assert!(burst.reasons.contains(&RiskReason::FailedAttemptsBurst));
        assert!(burst.level >= RiskLevel::Medium);
        let stuffing = assess(
            &Input {
                velocity: Velocity {
                    ip_failed_accounts: 5,
                    ..Velocity::default()
                },
                features: &login,
                user: Some(&user),
                global: &global,
                ..base
            },
            &policy,
        );
        assert_eq!(stuffing.level, RiskLevel::High);
        assert!(stuffing.reasons.contains(&RiskReason::ManyAccountsFromIp));
        let listed = assess(
            &Input {
                denylisted: true,
                features: &login,
                user: Some(&user),
                global: &global,
                ..base
            },
            &policy,
        );
        assert_eq!(listed.level, RiskLevel::High);
        assert_eq!(listed.reasons, vec![RiskReason::DenylistedNetwork]);
    }

    #[test]
    fn a_browser_update_does_not_raise_the_score() {
        use shared::domain::{DeviceId, UserAgent, UserId};
        use shared::events::LoginClient;
        let login = |version: u32| {
            LoginClient {
            ip: "198.51.100.23".parse().unwrap(),
            user_agent: UserAgent::parse(&format!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version}.0.0.0 Safari/537.36"
            ))
            .unwrap(),
            device_id: Some(DeviceId::parse("laptop").unwrap()),
        }
        };
        let geo = crate::geo::GeoIp::none();
        let old = Features::of(&login(119), &geo);
        let new = Features::of(&login(120), &geo);
        let history = UserHistory {
            entries: (0..10)
                .map(|i| HistoryEntry {
                    at: at(i),
                    features: old.clone(),
                })
                .collect(),
        };
        let mut state = super::super::state::MemoryState::default();
        for entry in &history.entries {
            state.learn(
                UserId::new(),
                Some(&entry.features),
                &entry.features,
                entry.at,
            );
        }
        let score = |features: &Features| {
            assess(
                &Input {
                    at: at(20),
                    features,
                    user: Some(&UserFacts::from_history(&history.entries, features)),
                    global: &state.global(features, at(20)),
                    velocity: Velocity::default(),
                    denylisted: false,
                    privileged: false,
                    platform: Platform::Dashboard,
                },
                &RiskPolicy::default(),
            )
        };
        let (same, updated) = (score(&old), score(&new));
        assert!(updated.score <= same.score, "{updated:?} vs {same:?}");
        assert_eq!(updated.level, RiskLevel::Low);
        assert!(updated.reasons.is_empty(), "{updated:?}");
    }

    #[test]
    fn a_reported_network_or_device_is_high_risk_even_when_everything_else_is_known() {
        let (history, mut global) = regular_user();
        let home = features(
            "id:laptop",
            "10.0.0.1",
            "Chrome/Windows 10/pc",
            Some(BERLIN),
        );
        for level in [Level::Device, Level::Ip, Level::Prefix] {
            global.counts.matching.set(level, 20);
        }
        let policy = RiskPolicy::default();
        let with = |reported: Reported| {
            let user = UserFacts {
                reported,
                ..UserFacts::from_history(&history.entries, &home)
            };
            assess(
                &Input {
                    at: at(21 * 24),
                    features: &home,
                    user: Some(&user),
                    global: &global,
                    velocity: Velocity::default(),
                    denylisted: false,
                    privileged: false,
                    platform: Platform::Dashboard,
                },
                &policy,
            )
        };
        let usual = with(Reported::default());
        assert_eq!(
            (usual.level, usual.reasons.clone()),
            (RiskLevel::Low, vec![])
        );
        let network = with(Reported {
            network: true,
            device: false,
        });
        assert_eq!(network.level, RiskLevel::High);
        assert_eq!(network.reasons, vec![RiskReason::ReportedNetwork]);
        let both = with(Reported {
            network: true,
            device: true,
        });
        assert_eq!(
            both.reasons,
            vec![RiskReason::ReportedNetwork, RiskReason::ReportedDevice]
        );
        assert!(policy.requires_code(both.level));
    }

    #[test]
    fn great_circle_distance() {
        let d = great_circle_km(BERLIN, NEW_YORK);
        assert!((d - 6385.0).abs() < 15.0, "{d}");
    }
}
