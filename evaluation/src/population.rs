//! The simulated customers: who they are (company, country, privilege), what they log in with
//! (browsers, the desktop app, phones) and where from (home ISP, office, carrier).

use std::net::Ipv4Addr;

use chrono::{DateTime, Duration, Utc};
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use shared::domain::{CompanyId, Platform, UserId};
use uuid::Uuid;

use crate::labels::Cause;
use crate::networks::{Catalogue, NetKind, HOME_COUNTRIES};
use crate::user_agents::{self, Browser, Os, ANDROID_MODELS};

/// What a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// The Dashboard in a computer's browser.
    Browser {
        browser: Browser,
        os: Os,
    },
    /// The Dashboard in the phone's browser.
    PhoneBrowser {
        browser: Browser,
        os: Os,
    },
    /// The Workspace desktop app.
    DesktopApp {
        os: Os,
    },
    IosApp,
    AndroidApp,
}

impl DeviceKind {
    pub fn platform(self) -> Platform {
        match self {
            DeviceKind::Browser { .. } | DeviceKind::PhoneBrowser { .. } => Platform::Dashboard,
            DeviceKind::DesktopApp { .. } => Platform::Workspace,
            DeviceKind::IosApp => Platform::Ios,
            DeviceKind::AndroidApp => Platform::Android,
        }
    }

    /// Phones move with their owner and use the carrier's network.
    pub fn on_phone(self) -> bool {
        matches!(
            self,
            DeviceKind::PhoneBrowser { .. } | DeviceKind::IosApp | DeviceKind::AndroidApp
        )
    }

    /// Browsers (not apps) get private windows and cleared cookies.
    pub fn is_browser(self) -> bool {
        matches!(
            self,
            DeviceKind::Browser { .. } | DeviceKind::PhoneBrowser { .. }
        )
    }
}

#[derive(Debug, Clone)]
pub struct Device {
    pub kind: DeviceKind,
    /// How often this device is used, relative to the user's other devices.
    pub weight: f64,
    /// Days behind each release train (auto-update delays, restarts postponed).
    pub lag_days: i64,
    /// The client's current device id; replaced on cleared cookies or a new phone.
    pub device_id: String,
    /// The phone's OS: iOS (major, minor) or Android major, and the Android model.
    pub ios: (i64, i64),
    pub android: u32,
    pub android_model: usize,
    /// When the phone's OS is updated during the period, if it is.
    pub os_update_at: Option<DateTime<Utc>>,
    /// When the user switches to a new phone, if they do.
    pub new_phone_at: Option<DateTime<Utc>>,
    /// When the phone app is deleted and installed again (a new app device id), if it is.
    pub reinstall_at: Option<DateTime<Utc>>,
    /// For a device the user only gets during the period (the desktop app installed later, a
    /// new computer): from when it exists, and the cause its first login is labelled with.
    /// `None` for the devices the user has from the start.
    pub arrives: Option<(DateTime<Utc>, Cause)>,
}

impl Device {
    /// Whether the user has this device at `at`.
    pub fn owned_at(&self, at: DateTime<Utc>) -> bool {
        self.arrives.is_none_or(|(from, _)| from <= at)
    }
}

impl Device {
    /// The User-Agent header this device sends at `at`.
    pub fn user_agent(&self, at: DateTime<Utc>) -> String {
        match self.kind {
            DeviceKind::Browser { browser, os } | DeviceKind::PhoneBrowser { browser, os } => {
                user_agents::browser_ua(browser, os, at, self.lag_days)
            }
            DeviceKind::DesktopApp { os } => user_agents::workspace_ua(os, at, self.lag_days),
            DeviceKind::IosApp => user_agents::ios_app_ua(self.ios, at, self.lag_days),
            DeviceKind::AndroidApp => {
                user_agents::android_app_ua(self.android_model, self.android, at, self.lag_days)
            }
        }
    }
}

/// A business trip: out, a stay, back. Times are UTC.
#[derive(Debug, Clone)]
pub struct Trip {
    pub depart: DateTime<Utc>,
    pub arrive: DateTime<Utc>,
    pub depart_back: DateTime<Utc>,
    pub arrive_home: DateTime<Utc>,
    /// Index into the catalogue's places.
    pub destination: usize,
    pub abroad: bool,
    /// The hotel's network there.
    pub hotel_block: usize,
    pub hotel_ip: Ipv4Addr,
}

impl Trip {
    pub fn in_transit(&self, at: DateTime<Utc>) -> bool {
        (self.depart..self.arrive).contains(&at)
            || (self.depart_back..self.arrive_home).contains(&at)
    }

    pub fn away(&self, at: DateTime<Utc>) -> bool {
        (self.arrive..self.depart_back).contains(&at)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub index: u32,
    pub id: UserId,
    pub company: usize,
    pub privileged: bool,
    pub country: &'static str,
    /// The physical home: the place the first home address geolocates to.
    pub home_place: usize,
    pub home_isp: usize,
    pub home_block: usize,
    pub home_ip: Ipv4Addr,
    /// The first home address (the one the very targeted attacker's city and ISP are read
    /// from).
    pub first_home_ip: Ipv4Addr,
    /// When the ISP hands the home a new address (empty for static addresses).
    pub home_ip_changes: Vec<DateTime<Utc>>,
    /// The office network, when the user works from one.
    pub office_ip: Option<Ipv4Addr>,
    pub carrier: usize,
    pub devices: Vec<Device>,
    pub logins_per_day: f64,
    pub trip: Option<Trip>,
}

/// What the generator was asked for.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    pub seed: u64,
    pub users: u32,
    pub days: i64,
    pub start: DateTime<Utc>,
    pub companies: usize,
}

impl ScenarioConfig {
    pub fn end(&self) -> DateTime<Utc> {
        self.start + Duration::days(self.days)
    }

    /// Scales per-2,000-user, per-60-day counts (attack campaigns) to this population.
    pub fn scale(&self) -> f64 {
        f64::from(self.users) / 2000.0 * self.days as f64 / 60.0
    }
}

#[expect(
    clippy::expect_used,
    reason = "company-NNN is a valid slug for every index"
)]
pub fn company_id(index: usize) -> CompanyId {
    CompanyId::parse(&format!("company-{index:03}")).expect("a valid company slug")
}

/// A time-ordered UUID v7 whose random bits come from the seeded generator.
pub fn uuid_v7(at: DateTime<Utc>, rng: &mut ChaCha8Rng) -> Uuid {
    let bytes: [u8; 10] = rng.gen();
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &bytes)
        .into_uuid()
}

pub fn hex_id(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

/// A fresh device id in the style of each client: a browser cookie, the desktop app's
/// install id, iOS identifierForVendor, Android's ANDROID_ID.
pub fn new_device_id(kind: DeviceKind, rng: &mut ChaCha8Rng) -> String {
    match kind {
        DeviceKind::Browser { .. } | DeviceKind::PhoneBrowser { .. } => {
            format!("web-{}", hex_id(rng, 16))
        }
        DeviceKind::DesktopApp { .. } => format!("ws-{}", hex_id(rng, 16)),
        DeviceKind::IosApp => {
            let bytes: [u8; 16] = rng.gen();
            format!(
                "ios-{}",
                uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string()
                    .to_uppercase()
            )
        }
        DeviceKind::AndroidApp => format!("and-{}", hex_id(rng, 8)),
    }
}

#[expect(
    clippy::expect_used,
    reason = "the tables of weights are constants, every one positive"
)]
fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let index = WeightedIndex::new(items.iter().map(|(_, w)| *w)).expect("positive weights");
    items[index.sample(rng)].0
}

fn computer_os(rng: &mut ChaCha8Rng) -> Os {
    pick(rng, &[(Os::Windows, 60), (Os::MacOs, 32), (Os::Linux, 8)])
}

fn browser_for(os: Os, rng: &mut ChaCha8Rng) -> Browser {
    match os {
        Os::Windows => pick(
            rng,
            &[
                (Browser::Chrome, 65),
                (Browser::Edge, 25),
                (Browser::Firefox, 10),
            ],
        ),
        Os::MacOs => pick(
            rng,
            &[
                (Browser::Chrome, 50),
                (Browser::Safari, 40),
                (Browser::Firefox, 10),
            ],
        ),
        _ => pick(rng, &[(Browser::Chrome, 60), (Browser::Firefox, 40)]),
    }
}

fn uniform_time(from: DateTime<Utc>, to: DateTime<Utc>, rng: &mut ChaCha8Rng) -> DateTime<Utc> {
    let span = (to - from).num_seconds().max(1);
    from + Duration::seconds(rng.gen_range(0..span))
}

/// Makes one user. `offices` maps (company, home place) to the office's address, so
/// colleagues in one city share an office network.
pub fn make_user(
    index: u32,
    config: &ScenarioConfig,
    catalogue: &Catalogue,
    offices: &mut std::collections::BTreeMap<(usize, usize), Ipv4Addr>,
    rng: &mut ChaCha8Rng,
) -> User {
    let start = config.start;
    let end = config.end();
    let id = UserId::from_uuid(uuid_v7(
        start - Duration::days(rng.gen_range(30..1000)),
        rng,
    ));
    let company = rng.gen_range(0..config.companies);
    // 2% privileged is an assumption: no public figure for the share of an MFA vendor's
    // users with elevated rights was found, so it is not raised.
    let privileged = rng.gen_bool(0.02);
    let country = pick(rng, HOME_COUNTRIES);

    let residential = catalogue.isps(country, NetKind::Residential);
    let home_isp = residential[rng.gen_range(0..residential.len())];
    let home_block = catalogue.random_block(home_isp, rng);
    let home_place = catalogue.blocks[home_block].place;
    let home_ip = catalogue.address_in(home_block, rng);
    let carriers = catalogue.isps(country, NetKind::Mobile);
    let carrier = carriers[rng.gen_range(0..carriers.len())];

    // A third of homes keep their address (static or long DHCP leases); the others get a new
    // one every few weeks.
    let mut home_ip_changes = Vec::new();
    if rng.gen_bool(0.65) {
        let mut at = start - Duration::days(rng.gen_range(0..21));
        loop {
            let gap_days = -21.0 * (1.0 - rng.gen::<f64>()).ln();
            at += Duration::seconds((gap_days * 86_400.0) as i64 + 3600);
            if at >= end {
                break;
            }
            if at > start {
                home_ip_changes.push(at);
            }
        }
    }

    let office_ip = if rng.gen_bool(0.65) {
        let key = (company, home_place);
        let ip = match offices.get(&key) {
            Some(ip) => *ip,
            None => {
                let candidates = catalogue.residential_blocks_at(home_place);
                let block = candidates[rng.gen_range(0..candidates.len())];
                let ip = catalogue.address_in(block, rng);
                offices.insert(key, ip);
                ip
            }
        };
        Some(ip)
    } else {
        None
    };

    let devices = make_devices(config, rng);
    // Log-uniform between every few days and a few times a day.
    let logins_per_day = (0.3f64.ln() + rng.gen::<f64>() * (4.0f64 / 0.3).ln()).exp();

    // One user in ten travels in a two-month span.
    let trip = if rng.gen_bool((0.1 * config.days as f64 / 60.0).min(1.0)) {
        make_trip(config, catalogue, country, home_place, rng)
    } else {
        None
    };

    User {
        index,
        id,
        company,
        privileged,
        country,
        home_place,
        home_isp,
        home_block,
        home_ip,
        first_home_ip: home_ip,
        home_ip_changes,
        office_ip,
        carrier,
        devices,
        logins_per_day,
        trip,
    }
}

fn make_devices(config: &ScenarioConfig, rng: &mut ChaCha8Rng) -> Vec<Device> {
    let start = config.start;
    let end = config.end();
    let mut kinds: Vec<(DeviceKind, f64)> = Vec::new();
    let os = computer_os(rng);
    let uses_browser = rng.gen_bool(0.85);
    let uses_app = !uses_browser || rng.gen_bool(0.45);
    if uses_browser {
        kinds.push((
            DeviceKind::Browser {
                browser: browser_for(os, rng),
                os,
            },
            1.0,
        ));
    }
    if uses_app {
        kinds.push((DeviceKind::DesktopApp { os }, 1.0));
    }
    if rng.gen_bool(0.25) {
        // A second computer (at home, say), possibly another OS and browser.
        let os = computer_os(rng);
        kinds.push((
            DeviceKind::Browser {
                browser: browser_for(os, rng),
                os,
            },
            0.3,
        ));
    }
    let has_phone_app = rng.gen_bool(0.75);
    let ios = rng.gen_bool(0.5);
    if has_phone_app {
        kinds.push((
            if ios {
                DeviceKind::IosApp
            } else {
                DeviceKind::AndroidApp
            },
            1.0,
        ));
    }
    if rng.gen_bool(0.08) {
        let (browser, os) = if ios {
            (Browser::Safari, Os::Ios)
        } else {
            (Browser::Chrome, Os::Android)
        };
        kinds.push((DeviceKind::PhoneBrowser { browser, os }, 0.2));
    }

    // One phone per user: its OS and any change apply to the app and the phone browser.
    let ios_version = if rng.gen_bool(0.6) { (26, 0) } else { (18, 6) };
    let android = pick(rng, &[(14u32, 30), (15, 45), (16, 25)]);
    let android_model = rng.gen_range(0..ANDROID_MODELS.len());
    let os_update_at = rng.gen_bool(0.4).then(|| uniform_time(start, end, rng));
    // A new phone about once a year. Published holding times are longer: 2.75 years in the
    // US (Strategy Analytics' 2019 survey of 2,500 owners, reported by PCMag, "New iPhone?
    // Galaxy Note 10? Baby Boomers Say No Thanks", 2019-08-23), 2.83 years (HYLA Mobile trade-in
    // data, WSJ, 2018), about 29 months (Reviews.org's 2025 smartphone lifespan survey), i.e.
    // 0.35-0.41 a year. Kept at once a year for now, so the device-churn figures compare with
    // the runs before them; lowering it is a separate, stated change.
    let new_phone_at = rng
        .gen_bool((config.days as f64 / 365.0).min(1.0))
        .then(|| uniform_time(start + Duration::days(1), end, rng));

    kinds
        .into_iter()
        .map(|(kind, weight)| {
            let lag_days = if kind.on_phone() {
                rng.gen_range(0..10)
            } else {
                rng.gen_range(0..8)
            };
            Device {
                kind,
                weight,
                lag_days,
                device_id: new_device_id(kind, rng),
                ios: ios_version,
                android,
                android_model,
                os_update_at: kind.on_phone().then_some(os_update_at).flatten(),
                new_phone_at: kind.on_phone().then_some(new_phone_at).flatten(),
                reinstall_at: None,
                arrives: None,
            }
        })
        .collect()
}

/// Phone apps reinstalled on the same phone, per app and year: an assumption (no public
/// figure found for a business app's reinstall rate), set below the new-phone rate as the
/// brief's traces suggest. A reinstall gives a new device id on iOS because
/// identifierForVendor "changes when the user deletes all of that vendor's apps from the
/// device and subsequently reinstalls one or more of them" (Apple, UIDevice
/// identifierForVendor documentation) and this vendor ships one app; on Android, ANDROID_ID
/// survives a reinstall since Android 8, so this assumes the app keeps its own install id in
/// its data, which an uninstall or "clear storage" deletes.
const APP_REINSTALLS_PER_YEAR: f64 = 0.2;

/// Browser-only users who install the Workspace desktop app, per year: an assumption (no
/// public adoption figure for this product).
const DESKTOP_APP_INSTALLS_PER_YEAR: f64 = 0.6;

/// A new computer per user and year: organisations refresh their PCs "every three to four
/// years" (Intel, "Why the PC Refresh Cycle Is Critical to Your Business",
/// intel.com/content/www/us/en/business/enterprise-computers/resources/the-importance-of-pc-refresh-cycle.html),
/// so 1 / 3.5 years. Modelled as one more computer; the old one stays in use (kept at home,
/// say), which errs towards more first logins, not fewer.
const NEW_COMPUTERS_PER_YEAR: f64 = 1.0 / 3.5;

/// Adds the device churn of the period to a user made by `make_user`: the phone app
/// reinstalled, the desktop app installed by a browser-only user, a new computer. Its draws
/// come from a generator of their own, and the devices it adds come after the user's others
/// and are not chosen before they arrive, so every login before a change is exactly what it
/// was without the churn.
pub fn add_device_churn(user: &mut User, config: &ScenarioConfig, rng: &mut ChaCha8Rng) {
    let start = config.start + Duration::days(1);
    let end = config.end();
    let years = config.days as f64 / 365.0;
    let chance = |per_year: f64| (per_year * years).min(1.0);
    for device in &mut user.devices {
        if matches!(device.kind, DeviceKind::IosApp | DeviceKind::AndroidApp)
            && rng.gen_bool(chance(APP_REINSTALLS_PER_YEAR))
        {
            device.reinstall_at = Some(uniform_time(start, end, rng));
        }
    }
    let browser_os = user.devices.iter().find_map(|d| match d.kind {
        DeviceKind::Browser { os, .. } => Some(os),
        _ => None,
    });
    let has_desktop_app = user
        .devices
        .iter()
        .any(|d| matches!(d.kind, DeviceKind::DesktopApp { .. }));
    if let (Some(os), false) = (browser_os, has_desktop_app) {
        if rng.gen_bool(chance(DESKTOP_APP_INSTALLS_PER_YEAR)) {
            // Installed on the computer whose browser the user had used: the same OS.
            let kind = DeviceKind::DesktopApp { os };
            let window = (start, end, Cause::DesktopAppInstalled);
            user.devices.push(arriving_computer(kind, 0, window, rng));
        }
    }
    if rng.gen_bool(chance(NEW_COMPUTERS_PER_YEAR)) {
        let os = computer_os(rng);
        let kind = DeviceKind::Browser {
            browser: browser_for(os, rng),
            os,
        };
        let lag_days = rng.gen_range(0..8);
        let window = (start, end, Cause::NewComputer);
        user.devices
            .push(arriving_computer(kind, lag_days, window, rng));
    }
}

/// A computer's browser or desktop app first used at a uniform time of `(from, to)`, labelled
/// with the cause: a device id of its own, and none of a phone's OS state. The id is drawn
/// before the time, so that a seed's population stays what it was.
fn arriving_computer(
    kind: DeviceKind,
    lag_days: i64,
    (from, to, cause): (DateTime<Utc>, DateTime<Utc>, Cause),
    rng: &mut ChaCha8Rng,
) -> Device {
    let device_id = new_device_id(kind, rng);
    let arrives = (uniform_time(from, to, rng), cause);
    Device {
        kind,
        weight: 1.0,
        lag_days,
        device_id,
        ios: (0, 0),
        android: 0,
        android_model: 0,
        os_update_at: None,
        new_phone_at: None,
        reinstall_at: None,
        arrives: Some(arrives),
    }
}

fn make_trip(
    config: &ScenarioConfig,
    catalogue: &Catalogue,
    country: &'static str,
    home_place: usize,
    rng: &mut ChaCha8Rng,
) -> Option<Trip> {
    let abroad = rng.gen_bool(0.35);
    let destination_country = if abroad {
        let others: Vec<(&str, u32)> = HOME_COUNTRIES
            .iter()
            .copied()
            .filter(|(c, _)| *c != country)
            .collect();
        pick(rng, &others)
    } else {
        country
    };
    let isps = catalogue.isps(destination_country, NetKind::Residential);
    // Another city: try a few blocks for one that geolocates elsewhere, with a city name.
    let home = &catalogue.places[home_place];
    let mut destination = None;
    for _ in 0..20 {
        let isp = isps[rng.gen_range(0..isps.len())];
        let block = catalogue.random_block(isp, rng);
        let place = catalogue.blocks[block].place;
        if place != home_place
            && catalogue.places[place].key.city != home.key.city
            && catalogue.places[place].distance_km(home) > 50.0
        {
            destination = Some(place);
            break;
        }
    }
    let destination = destination?;
    let hotels = catalogue.residential_blocks_at(destination);
    let hotel_block = hotels[rng.gen_range(0..hotels.len())];
    let hotel_ip = catalogue.address_in(hotel_block, rng);

    let days = config.days.max(12);
    let start_day = rng.gen_range(3..days - 9);
    let depart = config.start
        + Duration::days(start_day)
        + Duration::minutes(rng.gen_range(5 * 60..14 * 60))
        - Duration::hours(home.utc_offset_hours());
    // Realistic travel time: the flight at ~800 km/h plus getting to and from airports.
    let distance = catalogue.places[destination].distance_km(home);
    let travel = Duration::minutes((distance / 800.0 * 60.0) as i64 + rng.gen_range(120..240));
    let arrive = depart + travel;
    let depart_back =
        arrive + Duration::days(rng.gen_range(2..8)) + Duration::hours(rng.gen_range(0..10));
    let arrive_home = depart_back + travel;
    Some(Trip {
        depart,
        arrive,
        depart_back,
        arrive_home,
        destination,
        abroad,
        hotel_block,
        hotel_ip,
    })
}
