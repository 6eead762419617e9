//! What an IP address says about a login: its network (ASN), country, region, city and
//! coordinates, from GeoIP databases loaded once at start-up.
//!
//! Two layouts are read, because users bring MaxMind's own files and our scripts fetch the
//! free ip-location-db packages:
//! - City: MaxMind GeoLite2/GeoIP2 City (`country.iso_code`, `subdivisions[0].iso_code`,
//!   `city.names.en`, `location.{latitude,longitude,accuracy_radius}`) or ip-location-db's
//!   flat mmdb (`country_code`, `state1`, `city`, `latitude`, `longitude`, no accuracy);
//! - ASN: MaxMind GeoLite2 ASN mmdb (`autonomous_system_number`) or ip-location-db's CSV
//!   ranges (`first,last,asn,organisation`).
//!
//! Every database is optional: with none configured the engine still decides, on fewer
//! signals, and the notification emails name no place. Lookups are pure reads of memory.
//!
//! Two services read them: the risk worker (the model's network, country and travel
//! signals) and the code worker (where a login came from, in the "someone has your
//! password" email).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mfa_runtime::config::{ConfigError, Env};
use serde::Deserialize;

/// Where the databases are: `MFA_GEOIP_CITY_DB` and `MFA_GEOIP_ASN_DB` (comma-separated
/// lists), and `MFA_GEOIP_DEFAULT_ACCURACY_KM`, alike for every service that reads them.
#[derive(Debug, Clone, Default)]
pub struct GeoIpConfig {
    /// City databases, tried in order (MaxMind's one file, or ip-location-db's IPv4 and
    /// IPv6 files).
    pub city: Vec<PathBuf>,
    /// ASN databases: mmdb, or ip-location-db CSV (by the `.csv` extension).
    pub asn: Vec<PathBuf>,
    /// For databases that give no accuracy radius.
    pub default_accuracy_km: f64,
}

impl GeoIpConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            city: paths("MFA_GEOIP_CITY_DB"),
            asn: paths("MFA_GEOIP_ASN_DB"),
            default_accuracy_km: Env::or("MFA_GEOIP_DEFAULT_ACCURACY_KM", 100.0)?,
        })
    }

    pub fn open(&self) -> Result<GeoIp, ConfigError> {
        GeoIp::open(&self.city, &self.asn, self.default_accuracy_km).map_err(|e| {
            ConfigError::Invalid {
                name: "MFA_GEOIP_CITY_DB / MFA_GEOIP_ASN_DB".into(),
                reason: e.to_string(),
            }
        })
    }
}

fn paths(name: &str) -> Vec<PathBuf> {
    Env::optional(name)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Where a login came from, as far as the databases know.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpFacts {
    pub asn: Option<u32>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub location: Option<Coordinates>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
    /// How far off the true position may be, in km: the database's own figure, or the
    /// configured default for databases without one.
    pub accuracy_km: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("cannot open GeoIP database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path}, line {line}: {reason}")]
    Csv {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The loaded databases. Several city files may be given (ip-location-db ships IPv4 and
/// IPv6 apart): the first that knows an address answers.
///
/// The mmdb files are memory-mapped, as MaxMind's own C library does by default, not read
/// into the heap: the free city files are 45 MB, which an idle worker held resident (77 MiB
/// in all, BENCHMARKS.md); mapped, only the pages lookups touch are read in, and the kernel
/// may drop them again. A mapped file must be replaced by a new file (a rename, as
/// `scripts/fetch-geoip` does with a folder per version), never rewritten in place.
#[derive(Default)]
pub struct GeoIp {
    cities: Vec<maxminddb::Reader<maxminddb::Mmap>>,
    asn_readers: Vec<maxminddb::Reader<maxminddb::Mmap>>,
    asn_ranges: AsnRanges,
    default_accuracy_km: f64,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("city_databases", &self.cities.len())
            .field("asn_databases", &self.asn_readers.len())
            .field("asn_ranges", &self.asn_ranges.len())
            .finish()
    }
}

impl GeoIp {
    /// No databases: every lookup knows nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// `city` and `asn` are lists of files; an ASN file ending in `.csv` is read as
    /// ip-location-db ranges, any other as an mmdb.
    pub fn open(
        city: &[PathBuf],
        asn: &[PathBuf],
        default_accuracy_km: f64,
    ) -> Result<Self, GeoIpError> {
        let open = |path: &Path| {
            maxminddb::Reader::open_mmap(path).map_err(|e| GeoIpError::Open {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        };
        let mut geo = Self {
            default_accuracy_km,
            ..Self::default()
        };
        for path in city {
            geo.cities.push(open(path)?);
        }
        for path in asn {
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                geo.asn_ranges.load_csv(path)?;
            } else {
                geo.asn_readers.push(open(path)?);
            }
        }
        geo.asn_ranges.sort();
        Ok(geo)
    }

    pub fn is_empty(&self) -> bool {
        self.cities.is_empty() && self.asn_readers.is_empty() && self.asn_ranges.len() == 0
    }

    pub fn lookup(&self, ip: IpAddr) -> IpFacts {
        let ip = ip.to_canonical();
        let mut facts = IpFacts::default();
        for reader in &self.cities {
            if let Ok(Some(record)) = reader.lookup::<CityRecord>(ip) {
                record.fill(&mut facts, self.default_accuracy_km);
                break;
            }
        }
        facts.asn = self
            .asn_readers
            .iter()
            .find_map(|reader| {
                reader
                    .lookup::<AsnRecord>(ip)
                    .ok()
                    .flatten()
                    .and_then(|r| r.autonomous_system_number)
            })
            .or_else(|| self.asn_ranges.find(ip));
        facts
    }
}

/// One record of either city layout; the fields of the other layout stay empty.
#[derive(Deserialize)]
struct CityRecord<'a> {
    // ip-location-db's flat layout
    #[serde(borrow)]
    country_code: Option<&'a str>,
    state1: Option<&'a str>,
    city: Option<CityField<'a>>,
    latitude: Option<Number>,
    longitude: Option<Number>,
    // MaxMind's layout
    country: Option<MaxMindCountry<'a>>,
    subdivisions: Option<Vec<MaxMindCountry<'a>>>,
    location: Option<MaxMindLocation>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CityField<'a> {
    Name(&'a str),
    Names {
        #[serde(borrow)]
        names: BTreeMap<&'a str, &'a str>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Float(f64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<f64> {
        match self {
            Number::Float(v) => Some(*v),
            Number::Text(s) => s.parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct MaxMindCountry<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct MaxMindLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
}

impl CityRecord<'_> {
    fn fill(&self, facts: &mut IpFacts, default_accuracy_km: f64) {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        facts.country = self
            .country_code
            .or_else(|| self.country.as_ref().and_then(|c| c.iso_code))
            .and_then(non_empty);
        facts.region = self
            .state1
            .or_else(|| {
                self.subdivisions
                    .as_ref()
                    .and_then(|s| s.first())
                    .and_then(|s| s.iso_code)
            })
            .and_then(non_empty);
        facts.city = match &self.city {
            Some(CityField::Name(name)) => non_empty(name),
            Some(CityField::Names { names }) => names.get("en").and_then(|n| non_empty(n)),
            None => None,
        };
        let flat = self
            .latitude
            .as_ref()
            .and_then(Number::value)
            .zip(self.longitude.as_ref().and_then(Number::value))
            .map(|(lat, lon)| (lat, lon, default_accuracy_km));
        let maxmind = self.location.as_ref().and_then(|l| {
            l.latitude.zip(l.longitude).map(|(lat, lon)| {
                let accuracy = l.accuracy_radius.map_or(default_accuracy_km, f64::from);
                (lat, lon, accuracy)
            })
        });
        facts.location = flat
            .or(maxmind)
            .map(|(latitude, longitude, accuracy_km)| Coordinates {
                latitude,
                longitude,
                accuracy_km,
            });
    }
}

#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<u32>,
}

/// ASN ranges from CSV, sorted by first address, for binary search.
#[derive(Default)]
struct AsnRanges {
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
}

impl AsnRanges {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn load_csv(&mut self, path: &Path) -> Result<(), GeoIpError> {
        let text = std::fs::read_to_string(path).map_err(|e| GeoIpError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: &str| GeoIpError::Csv {
                path: path.to_owned(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            // The organisation (4th field) may hold quoted commas; only the first three
            // fields are read.
            let mut fields = line.splitn(4, ',');
            let (Some(first), Some(last), Some(asn)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected first,last,asn[,organisation]"));
            };
            let asn: u32 = asn.trim().parse().map_err(|_| bad("ASN is not a number"))?;
            let first: IpAddr = first.trim().parse().map_err(|_| bad("bad first address"))?;
            let last: IpAddr = last.trim().parse().map_err(|_| bad("bad last address"))?;
            match (first, last) {
                (IpAddr::V4(a), IpAddr::V4(b)) => self.v4.push((a.into(), b.into(), asn)),
                (IpAddr::V6(a), IpAddr::V6(b)) => self.v6.push((a.into(), b.into(), asn)),
                _ => return Err(bad("first and last address of different families")),
            }
        }
        Ok(())
    }

    fn sort(&mut self) {
        self.v4.sort_unstable();
        self.v6.sort_unstable();
    }

    fn find(&self, ip: IpAddr) -> Option<u32> {
        fn search<T: Ord + Copy>(ranges: &[(T, T, u32)], ip: T) -> Option<u32> {
            let after = ranges.partition_point(|&(first, _, _)| first <= ip);
            let &(_, last, asn) = ranges.get(after.checked_sub(1)?)?;
            (ip <= last).then_some(asn)
        }
        match ip {
            IpAddr::V4(v4) => search(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => search(&self.v6, u128::from(v6)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_ranges_are_searched_by_address() {
        let dir = std::env::temp_dir().join(format!("asn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("asn.csv");
        std::fs::write(
            &path,
            "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n\
             5.182.186.0,5.182.186.255,33651,\"Comcast Cable Communications, LLC\"\n\
             2001:200::,2001:200:1b9:ffff:ffff:ffff:ffff:ffff,2500,WIDE Project\n",
        )
        .unwrap();
        let geo = GeoIp::open(&[], &[path], 100.0).unwrap();
        let asn = |ip: &str| geo.lookup(ip.parse().unwrap()).asn;
        assert_eq!(asn("1.0.0.7"), Some(13335));
        assert_eq!(asn("5.182.186.255"), Some(33651));
        assert_eq!(asn("5.182.187.0"), None);
        assert_eq!(asn("0.255.255.255"), None);
        assert_eq!(asn("::ffff:1.0.0.1"), Some(13335));
        assert_eq!(asn("2001:200:1b9::1"), Some(2500));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_malformed_csv_line_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("asn-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("asn.csv");
        std::fs::write(&path, "1.0.0.0,1.0.0.255,13335,x\n1.0.1.0,nope,1,y\n").unwrap();
        let error = GeoIp::open(&[], &[path], 100.0).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn facts_of(record: serde_json::Value) -> IpFacts {
        let json = record.to_string();
        let record: CityRecord = serde_json::from_str(&json).unwrap();
        let mut facts = IpFacts::default();
        record.fill(&mut facts, 100.0);
        facts
    }

    #[test]
    fn reads_maxminds_city_layout_with_its_accuracy_radius() {
        let facts = facts_of(serde_json::json!({
            "city": {"geoname_id": 2950159, "names": {"en": "Berlin", "de": "Berlin"}},
            "country": {"iso_code": "DE", "names": {"en": "Germany"}},
            "subdivisions": [{"iso_code": "BE", "names": {"en": "Land Berlin"}}],
            "location": {"latitude": 52.5196, "longitude": 13.4069, "accuracy_radius": 20,
                         "time_zone": "Europe/Berlin"}
        }));
        assert_eq!(facts.country.as_deref(), Some("DE"));
        assert_eq!(facts.region.as_deref(), Some("BE"));
        assert_eq!(facts.city.as_deref(), Some("Berlin"));
        let location = facts.location.unwrap();
        assert_eq!((location.latitude, location.accuracy_km), (52.5196, 20.0));
    }

    #[test]
    fn reads_the_flat_layout_with_the_default_accuracy() {
        let facts = facts_of(serde_json::json!({
            "country_code": "US", "state1": "California", "city": "San Jose",
            "latitude": 37.3388, "longitude": -121.8916, "timezone": "America/Los_Angeles"
        }));
        assert_eq!(facts.country.as_deref(), Some("US"));
        assert_eq!(facts.region.as_deref(), Some("California"));
        assert_eq!(facts.city.as_deref(), Some("San Jose"));
        assert_eq!(facts.location.unwrap().accuracy_km, 100.0);
    }

    #[test]
    fn without_databases_nothing_is_known() {
        let facts = GeoIp::none().lookup("8.8.8.8".parse().unwrap());
        assert_eq!(facts, IpFacts::default());
    }
}
