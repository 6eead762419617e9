//! The whole scenario for one seed: catalogue, population, legitimate logins, attacks, merged
//! into one time-ordered stream of `LoginAttempted` envelopes exactly as login-intake
//! publishes them, each with its label.
//!
//! Reproducibility: every random choice comes from ChaCha8 generators derived from the seed
//! in a fixed order, collections are iterated in a fixed order (Vec, BTreeMap), and ids are
//! UUIDs v7 built from the event's time and seeded bits, never the clock or the OS.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shared::domain::{AttemptId, AuthMethod, DeviceId, Locale, PrimaryFactor, UserAgent};
use shared::events::{Envelope, Event, LoginAttempted, LoginClient, SCHEMA_VERSION};
use shared::personal::Personal;

use crate::attacks;
use crate::geoip_files::GeoIpFiles;
use crate::labels::Label;
use crate::networks::Catalogue;
use crate::population::{add_device_churn, company_id, make_user, uuid_v7, ScenarioConfig, User};
use crate::timeline::{simulate_user, PendingLogin, Trace};

/// A `LoginAttempted` and the truth about it.
#[derive(Debug, Clone)]
pub struct Login {
    pub envelope: Envelope,
    pub label: Label,
}

pub struct Scenario {
    pub config: ScenarioConfig,
    pub catalogue: Catalogue,
    /// Each user as they are at the end of the period (home address, device ids...).
    pub users: Vec<User>,
    pub traces: Vec<Trace>,
    /// Time-ordered.
    pub logins: Vec<Login>,
}

pub fn generate(config: ScenarioConfig, geoip: &GeoIpFiles) -> Result<Scenario> {
    let mut master = ChaCha8Rng::seed_from_u64(config.seed);
    let mut catalogue_rng = ChaCha8Rng::seed_from_u64(master.gen());
    let mut users_rng = ChaCha8Rng::seed_from_u64(master.gen());
    let mut attack_rng = ChaCha8Rng::seed_from_u64(master.gen());
    let mut ids_rng = ChaCha8Rng::seed_from_u64(master.gen());

    let catalogue = Catalogue::build(&geoip.city, &geoip.asn_v4, &mut catalogue_rng)?;

    let mut offices = BTreeMap::new();
    let mut users = Vec::with_capacity(config.users as usize);
    let mut traces = Vec::with_capacity(config.users as usize);
    let mut pending: Vec<PendingLogin> = Vec::new();
    for index in 0..config.users {
        // One generator per user, so a change in one user's story does not reshuffle the rest.
        let mut rng = ChaCha8Rng::seed_from_u64(users_rng.gen());
        let mut user = make_user(index, &config, &catalogue, &mut offices, &mut rng);
        // The churn draws from its own generator, derived from the seed and the user's index
        // alone, so adding it left every other draw of the population as it was.
        let mut churn_rng = ChaCha8Rng::seed_from_u64(
            config
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(u64::from(index))
                ^ 0xC4E5_D3A1_0B2F_7E69,
        );
        add_device_churn(&mut user, &config, &mut churn_rng);
        let (logins, trace) = simulate_user(&mut user, &config, &catalogue, &mut rng);
        pending.extend(logins);
        users.push(user);
        traces.push(trace);
    }
    pending.extend(attacks::generate(
        &config,
        &catalogue,
        &users,
        &traces,
        &mut attack_rng,
    ));
    // Stable: equal times keep generation order.
    pending.sort_by_key(|l| l.at);

    let logins = pending
        .into_iter()
        .map(|p| to_login(p, &users, &mut ids_rng))
        .collect::<Result<Vec<_>>>()?;
    Ok(Scenario {
        config,
        catalogue,
        users,
        traces,
        logins,
    })
}

fn to_login(p: PendingLogin, users: &[User], ids: &mut ChaCha8Rng) -> Result<Login> {
    let account = p.user.map(|u| &users[u as usize]);
    let event = LoginAttempted {
        user_id: account.map(|u| u.id),
        company_id: account.map(|u| company_id(u.company)),
        auth_method: AuthMethod::Password,
        primary_factor: if p.password_ok {
            PrimaryFactor::Succeeded
        } else {
            PrimaryFactor::Failed
        },
        privileged: account.is_some_and(|u| u.privileged),
        platform: p.platform,
        // A synthetic trace: nobody's personal data, so in the clear (replay reads both).
        client: Personal::Clear(LoginClient {
            ip: IpAddr::V4(p.ip),
            user_agent: UserAgent::parse(&p.user_agent)
                .map_err(|e| anyhow::anyhow!("user agent {:?}: {e}", p.user_agent))?,
            device_id: p
                .device_id
                .as_deref()
                .map(DeviceId::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("device id {:?}: {e}", p.device_id))?,
        }),
        locale: Locale::default(),
    };
    Ok(Login {
        envelope: login_envelope(p.at, event, ids),
        label: p.label,
    })
}

fn login_envelope(at: DateTime<Utc>, event: LoginAttempted, ids: &mut ChaCha8Rng) -> Envelope {
    Envelope {
        event_id: uuid_v7(at, ids),
        schema_version: SCHEMA_VERSION,
        occurred_at: at,
        attempt_id: AttemptId::from_uuid(uuid_v7(at, ids)),
        causation_id: None,
        producer: "login-intake".to_owned(),
        event: Event::LoginAttempted(event),
    }
}

/// Writes the stream as JSON lines, exactly the envelopes on the Kafka topic.
pub fn write_events(logins: &[Login], out: &mut impl Write) -> Result<()> {
    for login in logins {
        serde_json::to_writer(&mut *out, &login.envelope)?;
        out.write_all(b"\n")?;
    }
    out.flush().context("writing events")
}

/// Writes each login's label as a JSON line keyed by attempt id (same order as the events).
pub fn write_labels(logins: &[Login], out: &mut impl Write) -> Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        attempt_id: String,
        #[serde(flatten)]
        label: &'a Label,
    }
    for login in logins {
        serde_json::to_writer(
            &mut *out,
            &Line {
                attempt_id: login.envelope.attempt_id.to_string(),
                label: &login.label,
            },
        )?;
        out.write_all(b"\n")?;
    }
    out.flush().context("writing labels")
}
