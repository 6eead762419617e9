//! What a generated scenario contains: population and label rates, to check the generator
//! against the rates the issue calls plausible before any model sees it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shared::domain::Platform;
use shared::events::Event;

use crate::generator::Scenario;
use crate::labels::{Actor, AttackKind, Cause};

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub users: usize,
    pub users_with_logins: usize,
    pub events: usize,
    pub legit_logins: usize,
    pub legit_typos: usize,
    /// kind -> (attempts, attempts with the right password)
    pub attacks: BTreeMap<AttackKind, (usize, usize)>,
    pub attack_share: f64,
    pub platforms: BTreeMap<&'static str, usize>,
    pub browser_logins: usize,
    pub private_window: usize,
    pub cleared_cookies: usize,
    pub phone_app_logins: usize,
    pub phone_on_carrier: usize,
    pub travellers: usize,
    pub travellers_abroad: usize,
    pub new_phone_users: usize,
    pub home_ip_changes: usize,
    pub days: i64,
    pub causes: BTreeMap<Cause, usize>,
    /// Attacker attempts without a device id, over all attacker attempts.
    pub attacker_without_device_id: f64,
    pub countries: BTreeMap<&'static str, usize>,
    /// Distances (km) of carrier addresses from the user's home, for phone logins on the
    /// carrier's network: carrier-grade NAT puts them anywhere in the country.
    pub carrier_distance_median_km: f64,
    pub carrier_far_share: f64,
}

impl Stats {
    pub fn of(scenario: &Scenario) -> Self {
        let mut s = Stats {
            users: scenario.users.len(),
            events: scenario.logins.len(),
            days: scenario.config.days,
            ..Stats::default()
        };
        let (mut attacker, mut attacker_no_id) = (0usize, 0usize);
        let mut carrier_distances = Vec::new();
        for login in &scenario.logins {
            let Event::LoginAttempted(attempt) = &login.envelope.event else {
                continue;
            };
            match &login.label.actor {
                Actor::Legit { .. } if !login.label.password_ok => s.legit_typos += 1,
                Actor::Legit { .. } => {
                    s.legit_logins += 1;
                    *s.platforms.entry(attempt.platform.as_str()).or_default() += 1;
                    for cause in &login.label.causes {
                        *s.causes.entry(*cause).or_default() += 1;
                    }
                    let has = |c| login.label.causes.contains(&c);
                    match attempt.platform {
                        Platform::Dashboard => {
                            s.browser_logins += 1;
                            s.private_window += usize::from(has(Cause::PrivateWindow));
                            s.cleared_cookies += usize::from(has(Cause::ClearedCookies));
                        }
                        Platform::Ios | Platform::Android => {
                            s.phone_app_logins += 1;
                            s.phone_on_carrier += usize::from(has(Cause::MobileNetwork));
                            if let (true, Actor::Legit { user }) =
                                (has(Cause::MobileNetwork), &login.label.actor)
                            {
                                let home = &scenario.catalogue.places
                                    [scenario.users[*user as usize].home_place];
                                let ip = attempt.client.in_clear().map(|c| c.ip);
                                if let Some(place) =
                                    ip.and_then(|ip| scenario.catalogue.geo.locate(ip))
                                {
                                    carrier_distances.push(place.distance_km(home));
                                }
                            }
                        }
                        Platform::Workspace => {}
                    }
                }
                Actor::Attacker { kind, .. } => {
                    let entry = s.attacks.entry(*kind).or_default();
                    entry.0 += 1;
                    entry.1 += usize::from(login.label.password_ok);
                    attacker += 1;
                    attacker_no_id += usize::from(
                        attempt
                            .client
                            .in_clear()
                            .is_some_and(|c| c.device_id.is_none()),
                    );
                }
            }
        }
        carrier_distances.sort_by(f64::total_cmp);
        if !carrier_distances.is_empty() {
            s.carrier_distance_median_km = carrier_distances[carrier_distances.len() / 2];
            s.carrier_far_share = carrier_distances.iter().filter(|d| **d > 100.0).count() as f64
                / carrier_distances.len() as f64;
        }
        s.attack_share = attacker as f64 / s.events.max(1) as f64;
        s.attacker_without_device_id = attacker_no_id as f64 / attacker.max(1) as f64;
        for (user, trace) in scenario.users.iter().zip(&scenario.traces) {
            s.users_with_logins += usize::from(trace.first_login.is_some());
            if let Some(trip) = &user.trip {
                s.travellers += 1;
                s.travellers_abroad += usize::from(trip.abroad);
            }
            s.new_phone_users += usize::from(user.devices.iter().any(|d| d.new_phone_at.is_some()));
            s.home_ip_changes += user.home_ip_changes.len();
            *s.countries.entry(user.country).or_default() += 1;
        }
        s
    }

    pub fn share(part: usize, whole: usize) -> f64 {
        100.0 * part as f64 / whole.max(1) as f64
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let pct = Self::share;
        let _ = writeln!(
            out,
            "users                         {:>8} ({} logged in)",
            self.users, self.users_with_logins
        );
        let _ = writeln!(out, "login events                  {:>8}", self.events);
        let _ = writeln!(
            out,
            "legit logins (right password) {:>8}  ({:.2} per user per day)",
            self.legit_logins,
            self.legit_logins as f64 / self.users.max(1) as f64 / self.days.max(1) as f64
        );
        let _ = writeln!(out, "legit typos (wrong password)  {:>8}", self.legit_typos);
        let _ = writeln!(
            out,
            "attack attempts               {:>8}  ({:.2}% of events; {:.0}% send no device id)",
            self.attacks.values().map(|a| a.0).sum::<usize>(),
            100.0 * self.attack_share,
            100.0 * self.attacker_without_device_id
        );
        for (kind, (all, right)) in &self.attacks {
            let _ = writeln!(
                out,
                "  {:<27} {:>8}  ({right} with the right password)",
                kind.as_str(),
                all
            );
        }
        let _ = writeln!(
            out,
            "platforms (legit)             {}",
            self.platforms
                .iter()
                .map(|(p, n)| format!("{p} {:.1}%", pct(*n, self.legit_logins)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            out,
            "browser logins: private window {:.2}%, after cleared cookies {:.2}%",
            pct(self.private_window, self.browser_logins),
            pct(self.cleared_cookies, self.browser_logins)
        );
        let _ = writeln!(
            out,
            "phone app logins on the carrier network {:.1}% (median {:.0} km from home, {:.0}% over 100 km)",
            pct(self.phone_on_carrier, self.phone_app_logins),
            self.carrier_distance_median_km,
            100.0 * self.carrier_far_share
        );
        let _ = writeln!(out, "travellers {:.1}% of users ({} abroad); new phone {:.1}%; home address changes {:.2} per user",
            pct(self.travellers, self.users), self.travellers_abroad, pct(self.new_phone_users, self.users),
            self.home_ip_changes as f64 / self.users.max(1) as f64);
        let _ = writeln!(
            out,
            "home countries                {}",
            self.countries
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "legit logins by cause (a login may have several):");
        for (cause, n) in &self.causes {
            let _ = writeln!(
                out,
                "  {:<27} {:>8}  {:>6.2}%",
                cause.as_str(),
                n,
                pct(*n, self.legit_logins)
            );
        }
        out
    }
}
