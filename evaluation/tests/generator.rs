//! The scenario generator against the real GeoIP data: reproducible, time-ordered, with the
//! intended rates, and attackers where they are meant to be.
//!
//! These tests need the GeoIP files (`scripts/fetch-geoip` fetches them once into the cache,
//! or set MFA_GEOIP_CITY_DB and MFA_GEOIP_ASN_DB); without them they fail and say so.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use chrono::{Duration, NaiveDate};
use risk_evaluation::decision::Decision;
use risk_evaluation::generator::{self, Scenario};
use risk_evaluation::geoip_files::{default_fetch_script, GeoIpFiles};
use risk_evaluation::harness::mfa_events;
use risk_evaluation::labels::{Actor, AttackKind, Cause};
use risk_evaluation::networks::{NetKind, ISPS};
use risk_evaluation::population::ScenarioConfig;
use risk_evaluation::stats::Stats;
use shared::events::{Envelope, Event};

fn geoip() -> &'static GeoIpFiles {
    static FILES: OnceLock<GeoIpFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        GeoIpFiles::locate(&default_fetch_script()).unwrap_or_else(|e| {
            panic!(
                "these tests need the GeoIP data and could not get it ({e:#}). Run \
                 scripts/fetch-geoip (it needs npm and the network once), or set \
                 MFA_GEOIP_CITY_DB and MFA_GEOIP_ASN_DB to the files."
            )
        })
    })
}

fn config(seed: u64, users: u32, days: i64) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        users,
        days,
        start: NaiveDate::from_ymd_opt(2025, 10, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
        companies: 40,
    }
}

/// The default population (2,000 users, 60 days), generated once for the tests that read it.
fn default_scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(|| generator::generate(config(1, 2000, 60), geoip()).unwrap())
}

fn bytes(scenario: &Scenario) -> Vec<u8> {
    let mut out = Vec::new();
    generator::write_events(&scenario.logins, &mut out).unwrap();
    out
}

#[test]
fn the_same_seed_gives_a_byte_identical_stream_and_another_seed_does_not() {
    let a = generator::generate(config(7, 300, 20), geoip()).unwrap();
    let b = generator::generate(config(7, 300, 20), geoip()).unwrap();
    let c = generator::generate(config(8, 300, 20), geoip()).unwrap();
    assert!(!a.logins.is_empty());
    assert_eq!(bytes(&a), bytes(&b));
    assert_ne!(bytes(&a), bytes(&c));
    let labels = |s: &Scenario| {
        let mut out = Vec::new();
        generator::write_labels(&s.logins, &mut out).unwrap();
        out
    };
    assert_eq!(labels(&a), labels(&b));
}

#[test]
fn the_stream_is_time_ordered_envelopes_as_login_intake_publishes_them() {
    let scenario = default_scenario();
    let mut ids = BTreeSet::new();
    for pair in scenario.logins.windows(2) {
        assert!(pair[0].envelope.occurred_at <= pair[1].envelope.occurred_at);
    }
    for login in &scenario.logins {
        let e = &login.envelope;
        assert!(e.occurred_at >= scenario.config.start && e.occurred_at < scenario.config.end());
        assert_eq!(e.producer, "login-intake");
        assert_eq!(e.causation_id, None);
        assert!(ids.insert(e.event_id), "event ids are unique");
        assert!(ids.insert(e.attempt_id.as_uuid()), "attempt ids are unique");
        let Event::LoginAttempted(attempt) = &e.event else {
            panic!("only LoginAttempted in the generated stream");
        };
        assert_eq!(attempt.user_id.is_some(), attempt.company_id.is_some());
        assert_eq!(Envelope::from_json(&e.to_json()).unwrap(), *e);
    }
}

#[test]
fn label_rates_are_in_the_intended_ranges() {
    let s = Stats::of(default_scenario());
    let pct = |part, whole| Stats::share(part, whole);
    let private = pct(s.private_window, s.browser_logins);
    let cleared = pct(s.cleared_cookies, s.browser_logins);
    assert!(
        (1.5..4.0).contains(&private),
        "private windows {private:.2}% of browser logins"
    );
    assert!(
        (0.5..3.0).contains(&cleared),
        "cleared cookies {cleared:.2}% of browser logins"
    );
    let carrier = pct(s.phone_on_carrier, s.phone_app_logins);
    assert!(
        (60.0..90.0).contains(&carrier),
        "phone logins on the carrier {carrier:.1}%"
    );
    let travellers = pct(s.travellers, s.users);
    assert!(
        (6.0..14.0).contains(&travellers),
        "travellers {travellers:.1}%"
    );
    let new_phones = pct(s.new_phone_users, s.users);
    assert!(
        (6.0..20.0).contains(&new_phones),
        "new phones {new_phones:.1}% in 60 days"
    );
    let changes = s.home_ip_changes as f64 / s.users as f64;
    assert!(
        (1.0..3.0).contains(&changes),
        "{changes:.2} home address changes per user"
    );
    let per_day = s.legit_logins as f64 / s.users as f64 / s.days as f64;
    assert!(
        (0.5..3.0).contains(&per_day),
        "{per_day:.2} logins per user per day"
    );
    assert!(
        (1.0..5.0).contains(&(100.0 * s.attack_share)),
        "attacks {:.2}% of events",
        100.0 * s.attack_share
    );
    for kind in [
        AttackKind::Naive,
        AttackKind::Targeted,
        AttackKind::VeryTargeted,
    ] {
        let (all, right) = s.attacks[&kind];
        assert!(all >= 500, "{all} {kind:?} attempts");
        assert_eq!(all, right, "account takeovers have the password");
    }
    for kind in [AttackKind::Stuffing, AttackKind::Spraying] {
        let (all, right) = s.attacks[&kind];
        assert!(
            right > 0 && right * 10 < all,
            "{kind:?}: {right} of {all} right"
        );
    }
    for cause in [
        Cause::IspChurn,
        Cause::BrowserUpdate,
        Cause::NewPhone,
        Cause::Travel,
        Cause::OsUpdate,
    ] {
        assert!(
            s.causes.get(&cause).copied().unwrap_or(0) > 50,
            "{cause:?} is rare: {:?}",
            s.causes
        );
    }
}

#[test]
fn very_targeted_attackers_use_the_victims_isp_city_and_user_agent_but_not_its_address_or_device() {
    let scenario = default_scenario();
    let catalogue = &scenario.catalogue;
    let mut checked = 0;
    for login in &scenario.logins {
        let Actor::Attacker {
            kind: AttackKind::VeryTargeted,
            victim: Some(victim),
        } = login.label.actor
        else {
            continue;
        };
        let Event::LoginAttempted(attempt) = &login.envelope.event else {
            unreachable!()
        };
        let user = &scenario.users[victim as usize];
        let trace = &scenario.traces[victim as usize];
        let IpAddr::V4(ip) = attempt.client.in_clear().unwrap().ip else {
            panic!("IPv4 only")
        };
        let home_asn = ISPS[user.home_isp].asn;
        assert_eq!(
            catalogue.asn_ranges.asn_of(ip),
            Some(home_asn),
            "{ip} not in AS{home_asn}"
        );
        let here = catalogue.geo.locate(ip.into()).unwrap();
        let home = catalogue.geo.locate(user.first_home_ip.into()).unwrap();
        assert_eq!(here.key, home.key, "{ip} is not in the victim's city");
        assert!(!trace.ips.contains(&ip), "{ip} is the victim's own address");
        assert!(
            trace
                .agents
                .iter()
                .any(|(_, platform, ua)| *platform == attempt.platform
                    && ua == attempt.client.in_clear().unwrap().user_agent.as_str()),
            "not a user agent the victim sent: {}",
            attempt.client.in_clear().unwrap().user_agent
        );
        if let Some(device) = &attempt.client.in_clear().unwrap().device_id {
            assert!(!victim_device_ids(scenario, victim).contains(device.as_str()));
        }
        checked += 1;
    }
    assert!(checked > 500, "{checked} very targeted logins");
}

fn victim_device_ids(scenario: &Scenario, victim: u32) -> BTreeSet<String> {
    scenario
        .logins
        .iter()
        .filter(|l| l.label.actor == Actor::Legit { user: victim })
        .filter_map(|l| match &l.envelope.event {
            Event::LoginAttempted(a) => a
                .client
                .in_clear()
                .unwrap()
                .device_id
                .as_ref()
                .map(|d| d.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn naive_attackers_come_from_anywhere_and_targeted_ones_from_the_victims_country() {
    let scenario = default_scenario();
    let catalogue = &scenario.catalogue;
    let hosting: BTreeSet<u32> = ISPS
        .iter()
        .filter(|i| i.kind == NetKind::Hosting)
        .map(|i| i.asn)
        .collect();
    let (mut naive, mut naive_hosting, mut naive_abroad, mut targeted) = (0, 0, 0, 0);
    for login in &scenario.logins {
        let Actor::Attacker {
            kind,
            victim: Some(victim),
        } = login.label.actor
        else {
            continue;
        };
        let Event::LoginAttempted(attempt) = &login.envelope.event else {
            unreachable!()
        };
        let IpAddr::V4(ip) = attempt.client.in_clear().unwrap().ip else {
            panic!("IPv4 only")
        };
        let user = &scenario.users[victim as usize];
        let country = catalogue.geo.locate(ip.into()).map(|p| p.key.country);
        match kind {
            AttackKind::Naive => {
                naive += 1;
                naive_hosting += usize::from(
                    catalogue
                        .asn_ranges
                        .asn_of(ip)
                        .is_some_and(|a| hosting.contains(&a)),
                );
                naive_abroad += usize::from(country.as_deref() != Some(user.country));
            }
            AttackKind::Targeted => {
                targeted += 1;
                assert_eq!(country.as_deref(), Some(user.country), "{ip}");
                assert_eq!(attempt.platform, shared::domain::Platform::Dashboard);
            }
            _ => {}
        }
    }
    assert!(targeted > 500);
    assert!(
        naive_hosting * 3 > naive,
        "{naive_hosting} of {naive} naive logins from hosting"
    );
    assert!(
        naive_abroad * 2 > naive,
        "{naive_abroad} of {naive} naive logins abroad"
    );
}

#[test]
fn travellers_are_offline_for_the_flight_and_it_takes_realistic_time() {
    let scenario = default_scenario();
    let mut trips = 0;
    for (user, _) in scenario.users.iter().zip(&scenario.traces) {
        let Some(trip) = &user.trip else { continue };
        trips += 1;
        let home = &scenario.catalogue.places[user.home_place];
        let away = &scenario.catalogue.places[trip.destination];
        let hours = (trip.arrive - trip.depart).num_minutes() as f64 / 60.0;
        assert!(
            // Travel time is counted in whole minutes.
            hours + 1.0 / 60.0 >= home.distance_km(away) / 800.0 + 2.0,
            "{hours:.1} h for {:.0} km",
            home.distance_km(away)
        );
        assert!(trip.depart_back > trip.arrive + Duration::days(1));
        for login in &scenario.logins {
            if login.label.actor == (Actor::Legit { user: user.index }) {
                assert!(
                    !trip.in_transit(login.envelope.occurred_at),
                    "a login in flight"
                );
            }
        }
    }
    assert!(trips > 100);
}

#[test]
fn every_curated_asn_is_in_the_csv_and_geolocates_in_its_market() {
    let catalogue = &default_scenario().catalogue;
    for (i, isp) in ISPS.iter().enumerate() {
        let blocks = catalogue.blocks_of(i);
        assert!(!blocks.is_empty(), "AS{} {}", isp.asn, isp.name);
        for &b in blocks {
            let first = Ipv4Addr::from(catalogue.blocks[b].first);
            assert_eq!(catalogue.asn_ranges.asn_of(first), Some(isp.asn));
            if isp.kind != NetKind::Hosting {
                assert_eq!(catalogue.place_of_block(b).key.country, isp.country);
            }
        }
    }
}

#[test]
fn a_challenged_user_passes_mfa_and_an_attacker_does_not() {
    let scenario = default_scenario();
    let decision = |login: &risk_evaluation::generator::Login, event_type: &str| {
        Decision::parse(&format!(
            r#"{{"event_id":"0190a0b0-0000-7000-8000-00000000000a","attempt_id":"{}","event_type":"{event_type}","payload":{{"challenge_id":"0190a0b0-0000-7000-8000-00000000000c","risk":{{"score":3.0,"level":"high","reasons":["new_device"],"model_version":"m"}}}}}}"#,
            login.envelope.attempt_id
        ))
        .unwrap()
    };
    let legit = scenario
        .logins
        .iter()
        .find(|l| l.label.is_legit() && l.label.password_ok)
        .unwrap();
    let events = mfa_events(legit, &decision(legit, "MfaRequired"));
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0].event, Event::MfaSucceeded(_)));
    let Event::LoginApproved(approved) = &events[1].event else {
        panic!("the verifier's approval follows")
    };
    assert!(approved.approved_after_mfa);
    for e in &events {
        assert_eq!(e.attempt_id, legit.envelope.attempt_id);
        assert_eq!(e.producer, "verifier");
        assert_eq!(
            e.causation_id.unwrap().to_string(),
            "0190a0b0-0000-7000-8000-00000000000a"
        );
        assert!(e.occurred_at > legit.envelope.occurred_at);
    }
    assert_eq!(
        events,
        mfa_events(legit, &decision(legit, "MfaRequired")),
        "ids are derived, not random"
    );
    assert!(mfa_events(legit, &decision(legit, "LoginApproved")).is_empty());

    let attacker = scenario
        .logins
        .iter()
        .find(|l| l.label.attack_kind() == Some(AttackKind::VeryTargeted))
        .unwrap();
    let events = mfa_events(attacker, &decision(attacker, "MfaRequired"));
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0].event, Event::MfaFailed(_)));
}

#[test]
fn device_churn_is_a_new_device_id_on_the_right_platform_and_labelled_with_its_cause() {
    use shared::domain::Platform;
    let scenario = default_scenario();
    // Each user's device ids sent so far, and platforms logged in on so far.
    let mut seen_ids: std::collections::BTreeMap<u32, BTreeSet<String>> = Default::default();
    let mut seen_platforms: std::collections::BTreeMap<u32, BTreeSet<&str>> = Default::default();
    let mut counts: std::collections::BTreeMap<Cause, usize> = Default::default();
    for login in &scenario.logins {
        let Actor::Legit { user } = login.label.actor else {
            continue;
        };
        // A mistyped password goes just before the right one, with the same device id, and
        // is labelled a typo only.
        if !login.label.password_ok {
            continue;
        }
        let Event::LoginAttempted(attempt) = &login.envelope.event else {
            unreachable!()
        };
        let client = attempt.client.in_clear().unwrap();
        let device_id = client.device_id.as_ref().map(|d| d.as_str().to_owned());
        for cause in [
            Cause::AppReinstall,
            Cause::DesktopAppInstalled,
            Cause::NewComputer,
        ] {
            if !login.label.causes.contains(&cause) {
                continue;
            }
            *counts.entry(cause).or_default() += 1;
            if let Some(id) = &device_id {
                assert!(
                    !seen_ids.entry(user).or_default().contains(id),
                    "{cause:?}: user {user} sent device id {id} before"
                );
            }
            match cause {
                Cause::AppReinstall => assert!(
                    matches!(attempt.platform, Platform::Ios | Platform::Android),
                    "a reinstalled phone app on {:?}",
                    attempt.platform
                ),
                Cause::DesktopAppInstalled => {
                    assert_eq!(attempt.platform, Platform::Workspace);
                    assert!(
                        !seen_platforms
                            .entry(user)
                            .or_default()
                            .contains(Platform::Workspace.as_str()),
                        "user {user} had the desktop app before installing it"
                    );
                }
                _ => assert_eq!(attempt.platform, Platform::Dashboard),
            }
        }
        if let Some(id) = device_id {
            seen_ids.entry(user).or_default().insert(id);
        }
        seen_platforms
            .entry(user)
            .or_default()
            .insert(attempt.platform.as_str());
    }
    // 2,000 users over 60 days: about 75% have a phone app at 0.2 reinstalls a year, about
    // half are browser-only at 0.6 installs a year, everyone at 1/3.5 new computers a year,
    // each first login then (less the users who never log in on it before the end).
    for (cause, at_least) in [
        (Cause::AppReinstall, 25),
        (Cause::DesktopAppInstalled, 40),
        (Cause::NewComputer, 30),
    ] {
        let n = counts.get(&cause).copied().unwrap_or(0);
        assert!(n >= at_least, "{cause:?}: {n} logins ({counts:?})");
    }
}
