//! A legitimate user's logins over the period, walked in time order so that every change
//! (a new home address, a trip, a browser update, a new phone, cleared cookies) happens when it
//! would and is labelled on the login where the risk engine first sees it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use shared::domain::Platform;

use crate::labels::{Actor, Cause, Label};
use crate::networks::Catalogue;
use crate::population::{new_device_id, ScenarioConfig, User};
use crate::user_agents::{apple_version, ANDROID_MODELS};

/// One login before it becomes an envelope.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub at: DateTime<Utc>,
    /// Index of the account; `None` for an email with no account.
    pub user: Option<u32>,
    pub password_ok: bool,
    pub platform: Platform,
    pub ip: Ipv4Addr,
    pub user_agent: String,
    pub device_id: Option<String>,
    pub label: Label,
}

/// What an attacker who studied the victim can copy: the user's own logins.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub ips: BTreeSet<Ipv4Addr>,
    /// (time, platform, user agent) of each successful login, in time order.
    pub agents: Vec<(DateTime<Utc>, Platform, String)>,
    pub first_login: Option<DateTime<Utc>>,
}

/// Poisson-distributed count (Knuth's method: rates here are a few per day).
fn poisson(rate: f64, rng: &mut ChaCha8Rng) -> u32 {
    let limit = (-rate).exp();
    let mut product = rng.gen::<f64>();
    let mut count = 0;
    while product > limit {
        product *= rng.gen::<f64>();
        count += 1;
    }
    count
}

/// When the user logs in: a Poisson number per day, fewer at weekends, at waking hours of the
/// user's local (mean solar) time.
fn login_times(
    user: &User,
    config: &ScenarioConfig,
    catalogue: &Catalogue,
    rng: &mut ChaCha8Rng,
) -> Vec<DateTime<Utc>> {
    let home = &catalogue.places[user.home_place];
    let mut times = Vec::new();
    for day in 0..config.days {
        let midnight = config.start + Duration::days(day);
        let weekend = matches!(midnight.weekday(), Weekday::Sat | Weekday::Sun);
        let rate = user.logins_per_day * if weekend { 0.5 } else { 1.15 };
        for _ in 0..poisson(rate, rng) {
            let local_minutes = if !weekend && rng.gen_bool(0.75) {
                rng.gen_range(8 * 60..18 * 60)
            } else {
                rng.gen_range(9 * 60..23 * 60)
            };
            let local = midnight
                + Duration::minutes(local_minutes)
                + Duration::seconds(rng.gen_range(0..60));
            let mut at = local - Duration::hours(home.utc_offset_hours());
            if let Some(trip) = &user.trip {
                if trip.away(at) {
                    at = local
                        - Duration::hours(catalogue.places[trip.destination].utc_offset_hours());
                }
            }
            if at >= config.start && at < config.end() {
                times.push(at);
            }
        }
    }
    times.sort();
    times
}

#[derive(Default, Clone)]
struct DeviceState {
    used: bool,
    last_agent: Option<String>,
    new_phone_done: bool,
    new_phone_pending: bool,
    reinstall_done: bool,
    reinstall_pending: bool,
    os_update_done: bool,
    os_updated_since_login: bool,
}

/// Simulates the user's logins; mutates the user's evolving state (home address, device ids,
/// phone OS) as it goes.
#[expect(
    clippy::expect_used,
    reason = "the generator's invariants: every user has a device, a trip while away, an office when at the office"
)]
pub fn simulate_user(
    user: &mut User,
    config: &ScenarioConfig,
    catalogue: &Catalogue,
    rng: &mut ChaCha8Rng,
) -> (Vec<PendingLogin>, Trace) {
    let times = login_times(user, config, catalogue, rng);
    let mut logins = Vec::with_capacity(times.len() + times.len() / 40);
    let mut trace = Trace::default();
    let mut states = vec![DeviceState::default(); user.devices.len()];
    let mut next_ip_change = 0;
    let mut home_ip_fresh = false;
    let home_offset = catalogue.places[user.home_place].utc_offset_hours();

    for at in times {
        // The ISP renumbers the home line.
        while next_ip_change < user.home_ip_changes.len()
            && user.home_ip_changes[next_ip_change] <= at
        {
            next_ip_change += 1;
            // Usually the same city's pool; sometimes a pool that geolocates elsewhere.
            let same_city =
                catalogue.blocks_at(user.home_isp, catalogue.blocks[user.home_block].place);
            let block = if rng.gen_bool(0.85) && !same_city.is_empty() {
                same_city[rng.gen_range(0..same_city.len())]
            } else {
                catalogue.random_block(user.home_isp, rng)
            };
            let mut ip = catalogue.address_in(block, rng);
            if ip == user.home_ip {
                ip = catalogue.address_in(block, rng);
            }
            user.home_block = block;
            user.home_ip = ip;
            home_ip_fresh = true;
        }

        let (in_transit, away, abroad) = match &user.trip {
            Some(trip) => (trip.in_transit(at), trip.away(at), trip.abroad),
            None => (false, false, false),
        };
        if in_transit {
            continue; // on a plane
        }

        // Phone changes that happened since the last login.
        for (device, state) in user.devices.iter_mut().zip(states.iter_mut()) {
            if let Some(when) = device.new_phone_at {
                if when <= at && !state.new_phone_done {
                    state.new_phone_done = true;
                    state.new_phone_pending = true;
                    device.device_id = new_device_id(device.kind, rng);
                    device.ios = apple_version(at);
                    device.android = 16;
                    device.android_model = rng.gen_range(0..ANDROID_MODELS.len());
                    device.lag_days = 0;
                }
            }
            if let Some(when) = device.reinstall_at {
                if when <= at && !state.reinstall_done {
                    state.reinstall_done = true;
                    state.reinstall_pending = true;
                    device.device_id = new_device_id(device.kind, rng);
                    // Installed from the store just now: its current version.
                    device.lag_days = 0;
                }
            }
            if let Some(when) = device.os_update_at {
                if when <= at && !state.os_update_done {
                    state.os_update_done = true;
                    let latest = apple_version(at);
                    if latest > device.ios {
                        device.ios = latest;
                        state.os_updated_since_login = true;
                    }
                    if device.android < 16 {
                        device.android += 1;
                        state.os_updated_since_login = true;
                    }
                }
            }
        }

        let local_hour = (at + Duration::hours(home_offset)).hour();
        let weekday = !matches!(
            (at + Duration::hours(home_offset)).weekday(),
            Weekday::Sat | Weekday::Sun
        );
        let at_office = !away
            && user.office_ip.is_some()
            && weekday
            && (9..17).contains(&local_hour)
            && rng.gen_bool(0.8);

        // Which device: computers at work, the phone more in the evening.
        let weights: Vec<f64> = user
            .devices
            .iter()
            .map(|d| {
                let context = match (d.kind.on_phone(), at_office) {
                    (true, true) => 0.5,
                    (false, true) => 2.0,
                    (true, false) if !(9..17).contains(&local_hour) => 1.5,
                    _ => 1.0,
                };
                // A device the user does not have yet weighs nothing, and the draw below
                // takes one number whatever the weights: until it arrives, the same device
                // is picked as without it.
                let owned = if d.owned_at(at) { 1.0 } else { 0.0 };
                d.weight * context * owned
            })
            .collect();
        let device_index = rand::distributions::WeightedIndex::new(&weights)
            .expect("every user has a device")
            .sample(rng);
        let device = &mut user.devices[device_index];
        let state = &mut states[device_index];
        let mut causes = BTreeSet::new();

        // Where from.
        let carrier_ip = |rng: &mut ChaCha8Rng| {
            let block = catalogue.random_block(user.carrier, rng);
            catalogue.address_in(block, rng)
        };
        let mut home_network = false;
        let ip = if away {
            causes.insert(Cause::Travel);
            let trip = user.trip.as_ref().expect("away means on a trip");
            let on_carrier = if device.kind.on_phone() {
                // Abroad, roaming data is routed home: a home-country carrier address.
                rng.gen_bool(if abroad { 0.5 } else { 0.75 })
            } else {
                rng.gen_bool(0.15)
            };
            if on_carrier {
                causes.insert(if device.kind.on_phone() {
                    Cause::MobileNetwork
                } else {
                    Cause::Hotspot
                });
                carrier_ip(rng)
            } else {
                trip.hotel_ip
            }
        } else if device.kind.on_phone() && rng.gen_bool(0.75) {
            causes.insert(Cause::MobileNetwork);
            carrier_ip(rng)
        } else if at_office {
            causes.insert(Cause::Office);
            user.office_ip.expect("at the office means there is one")
        } else if !device.kind.on_phone() && rng.gen_bool(0.02) {
            causes.insert(Cause::PublicWifi);
            let blocks = catalogue.residential_blocks_at(user.home_place);
            let block = blocks[rng.gen_range(0..blocks.len())];
            catalogue.address_in(block, rng)
        } else if !device.kind.on_phone() && rng.gen_bool(0.01) {
            causes.insert(Cause::Hotspot);
            carrier_ip(rng)
        } else {
            causes.insert(Cause::Home);
            home_network = true;
            user.home_ip
        };
        if home_network && home_ip_fresh {
            causes.insert(Cause::IspChurn);
            home_ip_fresh = false;
        }

        // Which device id.
        let device_id = if device.kind.is_browser() && rng.gen_bool(0.025) {
            causes.insert(Cause::PrivateWindow);
            None
        } else {
            if device.kind.is_browser() && state.used && rng.gen_bool(0.015) {
                causes.insert(Cause::ClearedCookies);
                device.device_id = new_device_id(device.kind, rng);
            }
            Some(device.device_id.clone())
        };

        let user_agent = device.user_agent(at);
        if state.new_phone_pending {
            causes.insert(Cause::NewPhone);
        } else if state.reinstall_pending {
            causes.insert(Cause::AppReinstall);
        } else if !state.used {
            // A device got during the period is new to the user, not only to the replay's
            // history: its own cause, so "excluding each device's first login" (the cold
            // start) still counts it, as it counts a new phone.
            causes.insert(
                device
                    .arrives
                    .map_or(Cause::FirstUseOfDevice, |(_, cause)| cause),
            );
        } else if state.last_agent.as_deref() != Some(user_agent.as_str()) {
            causes.insert(if state.os_updated_since_login {
                Cause::OsUpdate
            } else if device.kind.is_browser() {
                Cause::BrowserUpdate
            } else {
                Cause::AppUpdate
            });
        }
        if device_id.is_some() {
            state.used = true;
            state.new_phone_pending = false;
            state.reinstall_pending = false;
        }
        state.last_agent = Some(user_agent.clone());
        state.os_updated_since_login = false;

        let platform = device.kind.platform();
        let login = PendingLogin {
            at,
            user: Some(user.index),
            password_ok: true,
            platform,
            ip,
            user_agent: user_agent.clone(),
            device_id,
            label: Label {
                actor: Actor::Legit { user: user.index },
                password_ok: true,
                causes: causes.into_iter().collect(),
            },
        };
        // A mistyped password now and then: a failed attempt just before the right one.
        if rng.gen_bool(0.02) {
            let mut typo = login.clone();
            typo.at = at - Duration::seconds(rng.gen_range(5..40));
            typo.password_ok = false;
            typo.label.password_ok = false;
            typo.label.causes = vec![Cause::Typo];
            logins.push(typo);
        }
        trace.ips.insert(ip);
        trace.agents.push((at, platform, user_agent));
        trace.first_login.get_or_insert(at);
        logins.push(login);
    }
    (logins, trace)
}
