//! Attackers. Account takeovers (naive, targeted, very targeted) have the victim's right
//! password and differ only in how well they imitate the victim; stuffing and spraying mostly
//! have wrong passwords and differ in rhythm. Counts are per 2,000 users and 60 days, scaled.

use std::net::Ipv4Addr;

use chrono::{DateTime, Duration, Utc};
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use shared::domain::Platform;

use crate::labels::{Actor, AttackKind, Label};
use crate::networks::{Catalogue, NetKind, ISPS};
use crate::population::{hex_id, ScenarioConfig, User};
use crate::timeline::{PendingLogin, Trace};
use crate::user_agents::{self, Browser, Os, ANY_BROWSERS, COMMON_BROWSERS};

/// Account-takeover campaigns of each kind, per 2,000 users and 60 days; each campaign makes
/// one to five attempts (an attacker who gets a code request may retry).
const CAMPAIGNS_PER_KIND: f64 = 400.0;
const STUFFING_BURSTS: f64 = 4.0;
const SPRAYING_CAMPAIGNS: f64 = 2.0;

#[expect(
    clippy::expect_used,
    reason = "the tables of weights are constants, every one positive"
)]
fn weighted(rng: &mut ChaCha8Rng, items: &[(Browser, Os, u32)]) -> (Browser, Os) {
    let index = WeightedIndex::new(items.iter().map(|(_, _, w)| *w)).expect("positive weights");
    let (browser, os, _) = items[index.sample(rng)];
    (browser, os)
}

/// An attack tool's client: a new device id (one the victim never had), or none at all for a
/// third of tools.
fn attacker_device_id(platform: Platform, rng: &mut ChaCha8Rng) -> Option<String> {
    if rng.gen_bool(1.0 / 3.0) {
        return None;
    }
    Some(match platform {
        Platform::Dashboard => format!("web-{}", hex_id(rng, 16)),
        Platform::Workspace => format!("ws-{}", hex_id(rng, 16)),
        Platform::Ios => format!("ios-{}", hex_id(rng, 16).to_uppercase()),
        Platform::Android => format!("and-{}", hex_id(rng, 8)),
    })
}

fn random_address(catalogue: &Catalogue, isp: usize, rng: &mut ChaCha8Rng) -> Ipv4Addr {
    let block = catalogue.random_block(isp, rng);
    catalogue.address_in(block, rng)
}

/// Anywhere: a hosting range most of the time, else a consumer line in a random country.
fn anywhere(catalogue: &Catalogue, rng: &mut ChaCha8Rng) -> Ipv4Addr {
    let kind = if rng.gen_bool(0.55) {
        NetKind::Hosting
    } else if rng.gen_bool(0.8) {
        NetKind::Residential
    } else {
        NetKind::Mobile
    };
    let isps: Vec<usize> = (0..ISPS.len()).filter(|&i| ISPS[i].kind == kind).collect();
    random_address(catalogue, isps[rng.gen_range(0..isps.len())], rng)
}

/// In the victim's country: a residential proxy mostly, a local VPS otherwise.
fn in_country(catalogue: &Catalogue, country: &str, rng: &mut ChaCha8Rng) -> Ipv4Addr {
    if rng.gen_bool(0.25) {
        let hosting = catalogue.hosting_blocks_in(country);
        if !hosting.is_empty() {
            return catalogue.address_in(hosting[rng.gen_range(0..hosting.len())], rng);
        }
    }
    let isps = catalogue.isps(country, NetKind::Residential);
    random_address(catalogue, isps[rng.gen_range(0..isps.len())], rng)
}

/// The victim's ISP and city, but not an address the victim ever used; `None` when the
/// catalogue has no such address (a tiny block the victim has used up).
pub fn in_victims_city(
    catalogue: &Catalogue,
    victim: &User,
    trace: &Trace,
    rng: &mut ChaCha8Rng,
) -> Option<Ipv4Addr> {
    let home = catalogue.geo.locate(victim.first_home_ip.into())?;
    let place = catalogue.places.iter().position(|p| p.key == home.key)?;
    let blocks = catalogue.blocks_at(victim.home_isp, place);
    if blocks.is_empty() {
        return None;
    }
    (0..64).find_map(|_| {
        let block = blocks[rng.gen_range(0..blocks.len())];
        let ip = catalogue.address_in(block, rng);
        (!trace.ips.contains(&ip) && ip != victim.first_home_ip).then_some(ip)
    })
}

/// What the attacker's client sends.
struct Client {
    platform: Platform,
    ip: Ipv4Addr,
    user_agent: String,
    device_id: Option<String>,
}

fn login(
    at: DateTime<Utc>,
    victim: Option<u32>,
    kind: AttackKind,
    password_ok: bool,
    client: Client,
) -> PendingLogin {
    PendingLogin {
        at,
        user: victim,
        password_ok,
        platform: client.platform,
        ip: client.ip,
        user_agent: client.user_agent,
        device_id: client.device_id,
        label: Label {
            actor: Actor::Attacker { kind, victim },
            password_ok,
            causes: Vec::new(),
        },
    }
}

/// Generates every attack of the period against `users` (whose `traces` say what an attacker
/// who watched them could copy).
pub fn generate(
    config: &ScenarioConfig,
    catalogue: &Catalogue,
    users: &[User],
    traces: &[Trace],
    rng: &mut ChaCha8Rng,
) -> Vec<PendingLogin> {
    let mut out = Vec::new();
    let scale = config.scale();
    let end = config.end();
    let victims: Vec<usize> = (0..users.len())
        .filter(|&i| {
            traces[i]
                .first_login
                .is_some_and(|t| t + Duration::days(1) < end)
        })
        .collect();
    if victims.is_empty() {
        return out;
    }

    for kind in [
        AttackKind::Naive,
        AttackKind::Targeted,
        AttackKind::VeryTargeted,
    ] {
        let campaigns = (CAMPAIGNS_PER_KIND * scale).round() as usize;
        for _ in 0..campaigns {
            let v = victims[rng.gen_range(0..victims.len())];
            let (victim, trace) = (&users[v], &traces[v]);
            // The very targeted attacker's address is fixed per campaign: the victim's
            // ISP and city, if the catalogue has a free address there (else another victim
            // is drawn next time round).
            let local_ip = if kind == AttackKind::VeryTargeted {
                match in_victims_city(catalogue, victim, trace, rng) {
                    Some(ip) => Some(ip),
                    None => continue,
                }
            } else {
                None
            };
            // After the victim has some history: an account nobody uses is not the point.
            #[expect(
                clippy::expect_used,
                reason = "victims are drawn among users who have logged in"
            )]
            let from = trace.first_login.expect("victims have logged in") + Duration::days(1);
            let span = (end - from).num_seconds().max(1);
            let mut at = from + Duration::seconds(rng.gen_range(0..span));
            let attempts = 1 + (0..4).take_while(|_| rng.gen_bool(0.5)).count();
            let mut client = None;
            for _ in 0..attempts {
                // Most retries come from the same set-up; some attackers switch exit or tool.
                if client.is_none() || rng.gen_bool(0.3) {
                    client = Some(match kind {
                        AttackKind::Naive => {
                            let (platform, ua) = if rng.gen_bool(0.15) {
                                let model = rng.gen_range(0..user_agents::ANDROID_MODELS.len());
                                (
                                    Platform::Android,
                                    user_agents::android_app_ua(
                                        model,
                                        14,
                                        at,
                                        rng.gen_range(0..200),
                                    ),
                                )
                            } else {
                                let (browser, os) = weighted(rng, ANY_BROWSERS);
                                (
                                    Platform::Dashboard,
                                    user_agents::browser_ua(browser, os, at, rng.gen_range(0..400)),
                                )
                            };
                            (anywhere(catalogue, rng), platform, ua)
                        }
                        AttackKind::Targeted => {
                            let (browser, os) = weighted(rng, COMMON_BROWSERS);
                            (
                                in_country(catalogue, victim.country, rng),
                                Platform::Dashboard,
                                user_agents::browser_ua(browser, os, at, rng.gen_range(0..14)),
                            )
                        }
                        _ => {
                            // Copy a user agent the victim really sent, with its platform.
                            let seen: Vec<&(DateTime<Utc>, Platform, String)> =
                                trace.agents.iter().filter(|(t, _, _)| *t <= at).collect();
                            let (_, platform, ua) = seen[rng.gen_range(0..seen.len())];
                            #[expect(
                                clippy::expect_used,
                                reason = "a very targeted campaign is only started with an address in the victim's city"
                            )]
                            let ip = in_victims_city(catalogue, victim, trace, rng)
                                .or(local_ip)
                                .expect("checked for the campaign");
                            (ip, *platform, ua.clone())
                        }
                    });
                }
                #[expect(
                    clippy::expect_used,
                    reason = "the client is chosen on the campaign's first attempt, just above"
                )]
                let (ip, platform, ua) = client.clone().expect("set above");
                let device_id = attacker_device_id(platform, rng);
                if at < end {
                    let client = Client {
                        platform,
                        ip,
                        user_agent: ua,
                        device_id,
                    };
                    out.push(login(at, Some(victim.index), kind, true, client));
                }
                at += Duration::seconds(rng.gen_range(30..6 * 3600));
            }
        }
    }

    // Credential stuffing: one address, a leaked list, a fast tool.
    let bursts = (STUFFING_BURSTS * scale).round().max(1.0) as usize;
    for _ in 0..bursts {
        let mut at = config.start
            + Duration::seconds(rng.gen_range(0..(end - config.start).num_seconds().max(1)));
        let ip = anywhere(catalogue, rng);
        let (browser, os) = weighted(rng, ANY_BROWSERS);
        let ua = user_agents::browser_ua(browser, os, at, rng.gen_range(0..400));
        let sends_ids = rng.gen_bool(0.2);
        for _ in 0..rng.gen_range(150..400) {
            let (victim, password_ok) = if rng.gen_bool(0.6) {
                let v = rng.gen_range(0..users.len());
                // Reused passwords: a few leaked credentials are right.
                (Some(users[v].index), rng.gen_bool(0.04))
            } else {
                (None, false)
            };
            let device_id = sends_ids.then(|| format!("web-{}", hex_id(rng, 16)));
            if at < end {
                let client = Client {
                    platform: Platform::Dashboard,
                    ip,
                    user_agent: ua.clone(),
                    device_id,
                };
                out.push(login(at, victim, AttackKind::Stuffing, password_ok, client));
            }
            at += Duration::milliseconds(rng.gen_range(1000..15_000));
        }
    }

    // Password spraying: a few common passwords across many accounts, slowly, from a few
    // rotating residential proxies, to stay under per-account limits.
    let campaigns = (SPRAYING_CAMPAIGNS * scale).round().max(1.0) as usize;
    for _ in 0..campaigns {
        let mut at = config.start
            + Duration::seconds(rng.gen_range(0..(end - config.start).num_seconds().max(1)));
        let exits: Vec<Ipv4Addr> = (0..rng.gen_range(4..9))
            .map(|_| anywhere(catalogue, rng))
            .collect();
        let (browser, os) = weighted(rng, COMMON_BROWSERS);
        for _password in 0..rng.gen_range(2..4) {
            for _ in 0..rng.gen_range(80..200) {
                let v = rng.gen_range(0..users.len());
                let ip = exits[rng.gen_range(0..exits.len())];
                let ua = user_agents::browser_ua(browser, os, at, 0);
                if at < end {
                    let client = Client {
                        platform: Platform::Dashboard,
                        ip,
                        user_agent: ua,
                        device_id: None,
                    };
                    let password_ok = rng.gen_bool(0.015);
                    out.push(login(
                        at,
                        Some(users[v].index),
                        AttackKind::Spraying,
                        password_ok,
                        client,
                    ));
                }
                at += Duration::seconds(rng.gen_range(30..300));
            }
        }
    }

    // On the victim's own network, with the victim's app: the exact home address and the
    // app's user agent, a device id of its own. A browser's new device id at home reads as
    // a private window or cleared cookies; an app has neither, so this must never pass as
    // the user. Generated last, so the other campaigns' draws (and their figures) stay
    // what they were.
    let campaigns = (CAMPAIGNS_PER_KIND * scale).round() as usize;
    for _ in 0..campaigns {
        let v = victims[rng.gen_range(0..victims.len())];
        let (victim, trace) = (&users[v], &traces[v]);
        let home = victim.first_home_ip;
        if !trace.ips.contains(&home) {
            continue;
        }
        #[expect(
            clippy::expect_used,
            reason = "victims are drawn among users who have logged in"
        )]
        let from = trace.first_login.expect("victims have logged in") + Duration::days(1);
        let span = (end - from).num_seconds().max(1);
        let mut at = from + Duration::seconds(rng.gen_range(0..span));
        // The app the victim used last before the attack: a victim with none is not a
        // target of this kind.
        let Some((_, platform, ua)) = trace
            .agents
            .iter()
            .rev()
            .find(|(t, p, _)| *t <= at && p.is_native_app())
            .cloned()
        else {
            continue;
        };
        for _ in 0..1 + (0..4).take_while(|_| rng.gen_bool(0.5)).count() {
            let device_id = attacker_device_id(platform, rng);
            if at < end {
                let client = Client {
                    platform,
                    ip: home,
                    user_agent: ua.clone(),
                    device_id,
                };
                out.push(login(
                    at,
                    Some(victim.index),
                    AttackKind::HomeNetwork,
                    true,
                    client,
                ));
            }
            at += Duration::seconds(rng.gen_range(30..6 * 3600));
        }
    }
    out
}
