//! A login reduced to the values the model compares: one value per level of each feature's
//! hierarchy, from the finest (an exact address, a device id) to the coarsest (a country, a
//! device type). Built once per login from the event and the GeoIP facts; pure.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use shared::domain::DeviceId;
use shared::events::LoginClient;
use shared::personal::PseudonymKey;

use crate::geo::{Coordinates, GeoIp};

/// A level of a feature hierarchy. The `as_str` names are stored in PostgreSQL: never
/// rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The exact address.
    Ip,
    /// Its /24 (IPv4) or /48 (IPv6) network.
    Prefix,
    Asn,
    Country,
    /// Browser family + OS family + device type, without versions: a browser update is not
    /// a new client.
    Client,
    Browser,
    Os,
    DeviceType,
    /// The client's device id, or `absent`.
    Device,
    /// The whole user-agent string (the plain Freeman model's finest UA level).
    UserAgent,
    /// Browser family and major version.
    BrowserVersion,
    /// OS family and version.
    OsVersion,
}

impl Level {
    pub const ALL: [Level; 12] = [
        Level::Ip,
        Level::Prefix,
        Level::Asn,
        Level::Country,
        Level::Client,
        Level::Browser,
        Level::Os,
        Level::DeviceType,
        Level::Device,
        Level::UserAgent,
        Level::BrowserVersion,
        Level::OsVersion,
    ];

    /// Its position in `ALL`, for per-level tables.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ip => "ip",
            Level::Prefix => "prefix",
            Level::Asn => "asn",
            Level::Country => "country",
            Level::Client => "client",
            Level::Browser => "browser",
            Level::Os => "os",
            Level::DeviceType => "device_type",
            Level::Device => "device",
            Level::UserAgent => "user_agent",
            Level::BrowserVersion => "browser_version",
            Level::OsVersion => "os_version",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == name)
    }
}

pub const ABSENT_DEVICE: &str = "absent";

/// The values of one login, by level (a level is missing when nothing is known of it, e.g.
/// the ASN without an ASN database), plus its coordinates for the travel check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    values: Vec<(Level, String)>,
    pub location: Option<Location>,
}

/// Coordinates as kept in the history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_km: f64,
}

impl From<Coordinates> for Location {
    fn from(c: Coordinates) -> Self {
        Self {
            lat: c.latitude,
            lon: c.longitude,
            accuracy_km: c.accuracy_km,
        }
    }
}

/// A user agent as the model reads it: browser family and major version, OS family and
/// version, device type (`unknown` where the parser can't tell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFacts {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device_type: String,
}

impl ClientFacts {
    pub fn parse(user_agent: &str) -> Self {
        let parsed = woothee::parser::Parser::new().parse(user_agent);
        let field = |value: Option<&str>| value.unwrap_or("unknown").to_owned();
        match &parsed {
            Some(r) => Self {
                browser: field(known(r.name)),
                browser_version: known(r.version)
                    .map(major_version)
                    .unwrap_or("?")
                    .to_owned(),
                os: field(known(r.os)),
                os_version: known(&r.os_version).unwrap_or("?").to_owned(),
                device_type: field(known(r.category)),
            },
            None => Self {
                browser: field(None),
                browser_version: "?".into(),
                os: field(None),
                os_version: "?".into(),
                device_type: field(None),
            },
        }
    }
}

impl Features {
    /// The features of a login from `login` (its opened personal fields).
    pub fn of(login: &LoginClient, geo: &GeoIp) -> Self {
        let client = ClientFacts::parse(login.user_agent.as_str());
        Self::from_parts(login, geo, &client)
    }

    /// With the user agent already parsed (replay keeps the parses of the strings it saw).
    pub fn from_parts(login: &LoginClient, geo: &GeoIp, client: &ClientFacts) -> Self {
        let facts = geo.lookup(login.ip);
        let ClientFacts {
            browser,
            browser_version,
            os,
            os_version,
            device_type,
        } = client;
        let ip = login.ip.to_canonical();
        let mut values = vec![
            (Level::Ip, ip.to_string()),
            (Level::Prefix, prefix_of(ip)),
            (Level::Client, format!("{browser}/{os}/{device_type}")),
            (Level::Browser, browser.clone()),
            (Level::Os, os.clone()),
            (Level::DeviceType, device_type.clone()),
            (Level::Device, device_value(login.device_id.as_ref())),
            (Level::UserAgent, login.user_agent.as_str().to_owned()),
            (
                Level::BrowserVersion,
                format!("{browser} {browser_version}"),
            ),
            (Level::OsVersion, format!("{os} {os_version}")),
        ];
        if let Some(asn) = facts.asn {
            values.push((Level::Asn, format!("AS{asn}")));
        }
        if let Some(country) = facts.country {
            values.push((Level::Country, country));
        }
        values.sort();
        Self {
            values,
            location: facts.location.map(Location::from),
        }
    }

    /// Features from explicit values, for tests and hand-made histories.
    pub fn from_values(values: impl IntoIterator<Item = (Level, String)>) -> Self {
        let mut values: Vec<_> = values.into_iter().collect();
        values.sort();
        values.dedup_by_key(|(level, _)| *level);
        Self {
            values,
            location: None,
        }
    }

    pub fn with_location(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn get(&self, level: Level) -> Option<&str> {
        self.values
            .binary_search_by_key(&level, |(l, _)| *l)
            .ok()
            .map(|i| self.values[i].1.as_str())
    }

    pub fn values(&self) -> impl Iterator<Item = (Level, &str)> {
        self.values.iter().map(|(l, v)| (*l, v.as_str()))
    }

    /// The same login with each value replaced by its keyed hash: what the state shared by
    /// all users (the global counts) keys it by. The model compares values only for equality,
    /// so the counts, and the decisions, are the same as by value.
    pub fn pseudonymous(&self, key: &PseudonymKey) -> Features {
        Features {
            values: self
                .values
                .iter()
                .map(|(level, value)| (*level, key.pseudonym(level.as_str(), value)))
                .collect(),
            location: None,
        }
    }

    /// Pseudonymous features as a decision records them (`CountedAs.values`).
    pub fn to_counted(&self) -> std::collections::BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(level, value)| (level.as_str().to_owned(), value.clone()))
            .collect()
    }

    /// Back from a recorded `CountedAs.values` (levels this build does not know are left out).
    pub fn from_counted(values: &std::collections::BTreeMap<String, String>) -> Features {
        Features::from_values(
            values
                .iter()
                .filter_map(|(level, value)| Some((Level::from_name(level)?, value.clone()))),
        )
    }
}

/// The address a failed first factor counts against, as the shared failure counts key it.
pub fn failure_ip_pseudonym(key: &PseudonymKey, ip: std::net::IpAddr) -> String {
    key.pseudonym("failure_ip", &ip.to_canonical().to_string())
}

/// A parsed field, unless the parser could not tell.
fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN).then_some(value)
}

fn major_version(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

pub fn device_value(device_id: Option<&DeviceId>) -> String {
    match device_id {
        Some(id) => format!("id:{}", id.as_str()),
        None => ABSENT_DEVICE.to_owned(),
    }
}

/// The address's network: /24 for IPv4, /48 for IPv6 (IPv4-mapped IPv6 counts as IPv4).
pub fn prefix_of(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{prefix}/48")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::UserAgent;

    pub const CHROME_119: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36";
    pub const CHROME_120: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

    fn login(ua: &str, device: Option<&str>) -> LoginClient {
        LoginClient {
            ip: "198.51.100.23".parse().unwrap(),
            user_agent: UserAgent::parse(ua).unwrap(),
            device_id: device.map(|d| DeviceId::parse(d).unwrap()),
        }
    }

    #[test]
    fn a_browser_update_keeps_the_client_and_changes_only_versions() {
        let old = Features::of(&login(CHROME_119, Some("d1")), &GeoIp::none());
        let new = Features::of(&login(CHROME_120, Some("d1")), &GeoIp::none());
        assert_eq!(old.get(Level::Client), Some("Chrome/Windows 10/pc"));
        assert_eq!(old.get(Level::Client), new.get(Level::Client));
        assert_eq!(old.get(Level::BrowserVersion), Some("Chrome 119"));
        assert_eq!(new.get(Level::BrowserVersion), Some("Chrome 120"));
        assert_ne!(old.get(Level::UserAgent), new.get(Level::UserAgent));
    }

    #[test]
    fn without_geoip_the_network_levels_stop_at_the_prefix() {
        let features = Features::of(&login(CHROME_120, None), &GeoIp::none());
        assert_eq!(features.get(Level::Ip), Some("198.51.100.23"));
        assert_eq!(features.get(Level::Prefix), Some("198.51.100.0/24"));
        assert_eq!(features.get(Level::Asn), None);
        assert_eq!(features.get(Level::Country), None);
        assert_eq!(features.get(Level::Device), Some(ABSENT_DEVICE));
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            prefix_of("::ffff:198.51.100.23".parse().unwrap()),
            "198.51.100.0/24"
        );
        assert_eq!(
            prefix_of("2001:db8:abcd:12::1".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
    }
}
