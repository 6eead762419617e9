//! Real address space for the simulated population: a curated table of real ISPs, mobile
//! carriers and hosting providers (by ASN), their address ranges read from the ip-location-db
//! ASN CSV, cut into blocks that each geolocate to one place in the GeoLite2 City mmdb.
//!
//! Blocks matter because the generator has to know where an address *appears* to be, exactly
//! as the risk engine will see it: "the victim's city" and "far from the user" are statements
//! about the GeoIP database, not about the world. A block is the intersection of an ASN range
//! with the mmdb network its sampled address fell in, so every address in it has the same ASN
//! and the same geolocation record.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

/// What an ISP's addresses are used for in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetKind {
    /// Home broadband (also office lines and hotels: businesses buy from the same ISPs).
    Residential,
    /// A mobile carrier: phones on cellular data, behind carrier-grade NAT.
    Mobile,
    /// Cloud and VPS providers: where attack tools and VPN exits run.
    Hosting,
}

#[derive(Debug, Clone, Copy)]
pub struct Isp {
    pub asn: u32,
    /// ISO 3166-1 alpha-2 of the market it serves; hosting providers serve everywhere.
    pub country: &'static str,
    pub kind: NetKind,
    pub name: &'static str,
}

const fn isp(asn: u32, country: &'static str, kind: NetKind, name: &'static str) -> Isp {
    Isp {
        asn,
        country,
        kind,
        name,
    }
}

use NetKind::{Hosting, Mobile, Residential};

/// Real ASNs, each checked present in the pinned ASN CSV (`catalogue_covers_every_curated_asn`
/// test). Where a company runs fixed and mobile service on one ASN it is listed twice.
pub const ISPS: &[Isp] = &[
    // United States
    isp(7922, "US", Residential, "Comcast"),
    isp(20115, "US", Residential, "Charter"),
    isp(7018, "US", Residential, "AT&T"),
    isp(701, "US", Residential, "Verizon Fios"),
    isp(22773, "US", Residential, "Cox"),
    isp(21928, "US", Mobile, "T-Mobile US"),
    isp(22394, "US", Mobile, "Verizon Wireless"),
    isp(20057, "US", Mobile, "AT&T Mobility"),
    // Canada
    isp(577, "CA", Residential, "Bell Canada"),
    isp(812, "CA", Residential, "Rogers"),
    isp(6327, "CA", Residential, "Shaw"),
    isp(852, "CA", Mobile, "TELUS"),
    isp(36522, "CA", Mobile, "Bell Mobility"),
    // United Kingdom
    isp(2856, "GB", Residential, "BT"),
    isp(5607, "GB", Residential, "Sky"),
    isp(5089, "GB", Residential, "Virgin Media"),
    isp(35228, "GB", Mobile, "O2 UK"),
    isp(25135, "GB", Mobile, "Vodafone UK"),
    isp(206067, "GB", Mobile, "Three UK"),
    // Germany
    isp(3320, "DE", Residential, "Deutsche Telekom"),
    isp(3209, "DE", Residential, "Vodafone DE"),
    isp(8881, "DE", Residential, "1&1 Versatel"),
    isp(6805, "DE", Mobile, "Telefonica DE"),
    isp(3209, "DE", Mobile, "Vodafone DE"),
    // France
    isp(3215, "FR", Residential, "Orange"),
    isp(12322, "FR", Residential, "Free"),
    isp(15557, "FR", Residential, "SFR"),
    isp(5410, "FR", Mobile, "Bouygues Telecom"),
    isp(51207, "FR", Mobile, "Free Mobile"),
    isp(15557, "FR", Mobile, "SFR"),
    // Spain
    isp(3352, "ES", Residential, "Telefonica ES"),
    isp(12479, "ES", Residential, "Orange ES"),
    isp(12430, "ES", Mobile, "Vodafone ES"),
    isp(12479, "ES", Mobile, "Orange ES"),
    // Italy
    isp(3269, "IT", Residential, "TIM"),
    isp(8612, "IT", Residential, "Tiscali"),
    isp(30722, "IT", Mobile, "Vodafone IT"),
    isp(1267, "IT", Mobile, "WindTre"),
    // Netherlands
    isp(1136, "NL", Residential, "KPN"),
    isp(33915, "NL", Residential, "Ziggo"),
    isp(1136, "NL", Mobile, "KPN"),
    isp(33915, "NL", Mobile, "VodafoneZiggo"),
    // Sweden
    isp(3301, "SE", Residential, "Telia"),
    isp(1257, "SE", Residential, "Tele2"),
    isp(1257, "SE", Mobile, "Tele2"),
    isp(3301, "SE", Mobile, "Telia"),
    // Australia
    isp(7545, "AU", Residential, "TPG"),
    isp(1221, "AU", Residential, "Telstra"),
    isp(1221, "AU", Mobile, "Telstra"),
    isp(4804, "AU", Mobile, "Optus"),
    // Japan
    isp(4713, "JP", Residential, "NTT OCN"),
    isp(2516, "JP", Residential, "KDDI"),
    isp(2516, "JP", Mobile, "KDDI au"),
    isp(17676, "JP", Mobile, "SoftBank"),
    // Brazil
    isp(26599, "BR", Residential, "Vivo"),
    isp(28573, "BR", Residential, "Claro BR"),
    isp(26599, "BR", Mobile, "Vivo"),
    isp(28573, "BR", Mobile, "Claro BR"),
    // India
    isp(24560, "IN", Residential, "Airtel Broadband"),
    isp(9829, "IN", Residential, "BSNL"),
    isp(55836, "IN", Mobile, "Jio"),
    isp(45609, "IN", Mobile, "Airtel Mobile"),
    // Mexico
    isp(8151, "MX", Residential, "Telmex"),
    isp(13999, "MX", Residential, "Megacable"),
    isp(28403, "MX", Mobile, "Telcel"),
    // Where naive attackers sit besides the countries above (nobody lives there in the
    // simulated customer base).
    isp(12389, "RU", Residential, "Rostelecom"),
    isp(8359, "RU", Mobile, "MTS"),
    isp(4134, "CN", Residential, "Chinanet"),
    isp(4837, "CN", Residential, "China Unicom"),
    isp(7552, "VN", Residential, "Viettel"),
    isp(45899, "VN", Residential, "VNPT"),
    isp(4766, "KR", Residential, "Korea Telecom"),
    isp(9121, "TR", Residential, "Turk Telekom"),
    isp(29465, "NG", Mobile, "MTN Nigeria"),
    isp(8452, "EG", Residential, "TE Data"),
    // Hosting and VPN exits, in whatever countries their ranges geolocate to.
    isp(14061, "", Hosting, "DigitalOcean"),
    isp(16276, "", Hosting, "OVH"),
    isp(24940, "", Hosting, "Hetzner"),
    isp(16509, "", Hosting, "Amazon AWS"),
    isp(14618, "", Hosting, "Amazon AWS"),
    isp(8075, "", Hosting, "Microsoft Azure"),
    isp(396982, "", Hosting, "Google Cloud"),
    isp(63949, "", Hosting, "Linode/Akamai"),
    isp(20473, "", Hosting, "Vultr"),
    isp(9009, "", Hosting, "M247"),
    isp(212238, "", Hosting, "Datacamp/CDN77"),
];

/// Where the simulated customers live: (country, weight). Every country here has at least one
/// residential and one mobile entry in `ISPS`.
pub const HOME_COUNTRIES: &[(&str, u32)] = &[
    ("US", 30),
    ("GB", 9),
    ("DE", 9),
    ("FR", 7),
    ("CA", 5),
    ("ES", 4),
    ("IT", 4),
    ("NL", 4),
    ("AU", 4),
    ("JP", 3),
    ("BR", 4),
    ("IN", 4),
    ("SE", 2),
    ("MX", 2),
];

/// A geolocation record of the city mmdb, reduced to what the simulation compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlaceKey {
    pub country: String,
    pub region: String,
    pub city: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub key: PlaceKey,
    pub latitude: f64,
    pub longitude: f64,
}

impl Place {
    /// Great-circle distance in km.
    pub fn distance_km(&self, other: &Place) -> f64 {
        let (la1, lo1) = (self.latitude.to_radians(), self.longitude.to_radians());
        let (la2, lo2) = (other.latitude.to_radians(), other.longitude.to_radians());
        let h = ((la2 - la1) / 2.0).sin().powi(2)
            + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
        2.0 * 6371.0 * h.sqrt().asin()
    }

    /// The UTC offset, in hours, of mean solar time here: close enough to decide whether a
    /// person is awake, without a time-zone database.
    pub fn utc_offset_hours(&self) -> i64 {
        (self.longitude / 15.0).round() as i64
    }
}

/// The flat record layout of ip-location-db's mmdb files.
#[derive(Deserialize)]
struct FlatRecord<'a> {
    #[serde(borrow)]
    country_code: Option<&'a str>,
    state1: Option<&'a str>,
    city: Option<&'a str>,
    latitude: Option<Number>,
    longitude: Option<Number>,
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

/// The city databases (IPv4 and IPv6 files; the first that knows an address answers).
pub struct GeoDb {
    readers: Vec<maxminddb::Reader<Vec<u8>>>,
}

impl GeoDb {
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let readers = paths
            .iter()
            .map(|p| {
                maxminddb::Reader::open_readfile(p)
                    .with_context(|| format!("opening city database {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { readers })
    }

    /// The place of `ip` and the prefix length of the mmdb network holding it (counted in the
    /// address's own family).
    pub fn locate_prefix(&self, ip: IpAddr) -> Option<(Place, u8)> {
        for reader in &self.readers {
            let Ok((Some(record), prefix)) = reader.lookup_prefix::<FlatRecord>(ip) else {
                continue;
            };
            let country = record.country_code.filter(|c| !c.is_empty())?;
            let prefix = match ip {
                // An IPv4 address in a database with an IPv6 tree sits under ::/96.
                IpAddr::V4(_) if prefix > 32 => prefix.saturating_sub(96),
                _ => prefix,
            };
            let place = Place {
                key: PlaceKey {
                    country: country.to_owned(),
                    region: record.state1.unwrap_or("").to_owned(),
                    city: record.city.unwrap_or("").to_owned(),
                },
                latitude: record.latitude.and_then(|n| n.value())?,
                longitude: record.longitude.and_then(|n| n.value())?,
            };
            return Some((place, prefix as u8));
        }
        None
    }

    pub fn locate(&self, ip: IpAddr) -> Option<Place> {
        self.locate_prefix(ip).map(|(place, _)| place)
    }
}

/// The ip-location-db ASN ranges of the curated ASNs only (the file holds ~500k ranges; the
/// simulation needs a few thousand).
pub struct AsnRanges {
    /// asn -> sorted, inclusive IPv4 ranges.
    by_asn: BTreeMap<u32, Vec<(u32, u32)>>,
    /// Every loaded range, sorted by first address, for address -> ASN checks.
    sorted: Vec<(u32, u32, u32)>,
}

impl AsnRanges {
    pub fn load(csv: &Path, wanted: &BTreeSet<u32>) -> Result<Self> {
        let file = File::open(csv).with_context(|| format!("opening {}", csv.display()))?;
        let mut by_asn: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", csv.display()))?;
            // first_ip,last_ip,asn,"organisation, possibly with commas"
            let mut fields = line.splitn(4, ',');
            let (Some(first), Some(last), Some(asn)) =
                (fields.next(), fields.next(), fields.next())
            else {
                bail!("{}, line {}: too few fields", csv.display(), n + 1);
            };
            let Ok(asn) = asn.parse::<u32>() else {
                continue; // a header line, if any
            };
            if !wanted.contains(&asn) {
                continue;
            }
            let (Ok(first), Ok(last)) = (first.parse::<Ipv4Addr>(), last.parse::<Ipv4Addr>())
            else {
                bail!("{}, line {}: not an IPv4 range", csv.display(), n + 1);
            };
            by_asn
                .entry(asn)
                .or_default()
                .push((u32::from(first), u32::from(last)));
        }
        let mut sorted = Vec::new();
        for (asn, ranges) in &mut by_asn {
            ranges.sort_unstable();
            sorted.extend(ranges.iter().map(|&(f, l)| (f, l, *asn)));
        }
        sorted.sort_unstable();
        Ok(Self { by_asn, sorted })
    }

    pub fn ranges(&self, asn: u32) -> &[(u32, u32)] {
        self.by_asn.get(&asn).map_or(&[], Vec::as_slice)
    }

    /// The ASN of a loaded range holding `ip`, if any.
    pub fn asn_of(&self, ip: Ipv4Addr) -> Option<u32> {
        let ip = u32::from(ip);
        let i = self.sorted.partition_point(|&(first, _, _)| first <= ip);
        self.sorted[..i]
            .iter()
            .rev()
            .take(64)
            .find(|&&(first, last, _)| first <= ip && ip <= last)
            .map(|&(_, _, asn)| asn)
    }
}

/// Addresses with one ASN and one geolocation.
#[derive(Debug, Clone)]
pub struct Block {
    /// Index into `ISPS`.
    pub isp: usize,
    pub first: u32,
    pub last: u32,
    /// Index into `Catalogue::places`.
    pub place: usize,
}

impl Block {
    pub fn size(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }
}

/// The sampled blocks of every curated ISP, indexed the ways the generator asks for them.
pub struct Catalogue {
    pub geo: GeoDb,
    pub asn_ranges: AsnRanges,
    pub places: Vec<Place>,
    pub blocks: Vec<Block>,
    /// isp index -> its blocks.
    by_isp: Vec<Vec<usize>>,
    /// (isp index, place index) -> blocks of that ISP that geolocate there.
    by_isp_place: BTreeMap<(usize, usize), Vec<usize>>,
    /// place index -> residential blocks there (any ISP): hotels, cafés, offices.
    residential_by_place: BTreeMap<usize, Vec<usize>>,
}

/// How many addresses are sampled per ISP to find its blocks: enough to cover the big cities
/// of a national ISP several times over.
const SAMPLES_PER_ISP: usize = 1500;

impl Catalogue {
    /// Loads the ranges of the curated ASNs and geolocates a sample of each. Sampling uses
    /// `rng`, so a seed fixes the catalogue too.
    pub fn build(city_dbs: &[PathBuf], asn_csv: &Path, rng: &mut ChaCha8Rng) -> Result<Self> {
        let geo = GeoDb::open(city_dbs)?;
        let wanted: BTreeSet<u32> = ISPS.iter().map(|i| i.asn).collect();
        let asn_ranges = AsnRanges::load(asn_csv, &wanted)?;
        let mut places: Vec<Place> = Vec::new();
        let mut place_index: BTreeMap<PlaceKey, usize> = BTreeMap::new();
        let mut blocks = Vec::new();
        let mut by_isp = vec![Vec::new(); ISPS.len()];
        let mut by_isp_place: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        let mut residential_by_place: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (isp_idx, isp) in ISPS.iter().enumerate() {
            let ranges = asn_ranges.ranges(isp.asn);
            if ranges.is_empty() {
                bail!(
                    "AS{} ({}) has no IPv4 range in {}: the curated table is out of date",
                    isp.asn,
                    isp.name,
                    asn_csv.display()
                );
            }
            // Cumulative sizes, to sample addresses uniformly over the whole ASN.
            let mut cumulative = Vec::with_capacity(ranges.len());
            let mut total = 0u64;
            for &(f, l) in ranges {
                total += u64::from(l - f) + 1;
                cumulative.push(total);
            }
            // Blocks found for this ISP, keyed by first address so repeats collapse.
            let mut found: BTreeMap<u32, (u32, usize)> = BTreeMap::new();
            for _ in 0..SAMPLES_PER_ISP {
                let pick = rng.gen_range(0..total);
                let r = cumulative.partition_point(|&c| c <= pick);
                let (rf, rl) = ranges[r];
                let before = if r == 0 { 0 } else { cumulative[r - 1] };
                let ip = rf + (pick - before) as u32;
                let Some((place, prefix)) = geo.locate_prefix(IpAddr::V4(Ipv4Addr::from(ip)))
                else {
                    continue;
                };
                // Residential and mobile addresses must be in their market: a few ranges of
                // national ISPs geolocate abroad (transit, corporate), which no home user has.
                if isp.kind != Hosting && place.key.country != isp.country {
                    continue;
                }
                if isp.kind == Residential && place.key.city.is_empty() {
                    continue;
                }
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix.min(32)))
                };
                let first = (ip & mask).max(rf);
                let last = (ip | !mask).min(rl);
                if found.contains_key(&first) {
                    continue;
                }
                let place_idx = *place_index.entry(place.key.clone()).or_insert_with(|| {
                    places.push(place.clone());
                    places.len() - 1
                });
                found.insert(first, (last, place_idx));
            }
            for (first, (last, place)) in found {
                let idx = blocks.len();
                blocks.push(Block {
                    isp: isp_idx,
                    first,
                    last,
                    place,
                });
                by_isp[isp_idx].push(idx);
                by_isp_place.entry((isp_idx, place)).or_default().push(idx);
                if isp.kind == Residential {
                    residential_by_place.entry(place).or_default().push(idx);
                }
            }
            if by_isp[isp_idx].is_empty() {
                bail!(
                    "AS{} ({}) has no address that geolocates to {}",
                    isp.asn,
                    isp.name,
                    isp.country
                );
            }
        }
        Ok(Self {
            geo,
            asn_ranges,
            places,
            blocks,
            by_isp,
            by_isp_place,
            residential_by_place,
        })
    }

    /// ISPs of one kind serving `country` (any country for `Hosting`).
    pub fn isps(&self, country: &str, kind: NetKind) -> Vec<usize> {
        ISPS.iter()
            .enumerate()
            .filter(|(_, i)| i.kind == kind && (kind == Hosting || i.country == country))
            .map(|(idx, _)| idx)
            .collect()
    }

    pub fn blocks_of(&self, isp: usize) -> &[usize] {
        &self.by_isp[isp]
    }

    pub fn blocks_at(&self, isp: usize, place: usize) -> &[usize] {
        self.by_isp_place
            .get(&(isp, place))
            .map_or(&[], Vec::as_slice)
    }

    pub fn residential_blocks_at(&self, place: usize) -> &[usize] {
        self.residential_by_place
            .get(&place)
            .map_or(&[], Vec::as_slice)
    }

    /// Hosting blocks that geolocate to `country`.
    pub fn hosting_blocks_in(&self, country: &str) -> Vec<usize> {
        self.blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                ISPS[b.isp].kind == Hosting && self.places[b.place].key.country == country
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub fn place_of_block(&self, block: usize) -> &Place {
        &self.places[self.blocks[block].place]
    }

    pub fn isp_of_block(&self, block: usize) -> &'static Isp {
        &ISPS[self.blocks[block].isp]
    }

    /// A host address in the block, avoiding the .0 and .255 ends where the block allows, as
    /// those are rarely given to customers.
    pub fn address_in(&self, block: usize, rng: &mut ChaCha8Rng) -> Ipv4Addr {
        let b = &self.blocks[block];
        for _ in 0..8 {
            let ip = rng.gen_range(b.first..=b.last);
            let last_octet = ip & 0xff;
            if b.size() < 4 || (last_octet != 0 && last_octet != 255) {
                return Ipv4Addr::from(ip);
            }
        }
        Ipv4Addr::from(b.first)
    }

    /// A random block of `isp`, optionally restricted to ones with a city name.
    pub fn random_block(&self, isp: usize, rng: &mut ChaCha8Rng) -> usize {
        let blocks = &self.by_isp[isp];
        blocks[rng.gen_range(0..blocks.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_between_two_cities_is_about_right() {
        let place = |lat, lon| Place {
            key: PlaceKey {
                country: String::new(),
                region: String::new(),
                city: String::new(),
            },
            latitude: lat,
            longitude: lon,
        };
        // Paris - London, ~344 km.
        let d = place(48.8566, 2.3522).distance_km(&place(51.5074, -0.1278));
        assert!((330.0..360.0).contains(&d), "{d}");
    }

    #[test]
    fn every_home_country_has_residential_and_mobile_networks() {
        for (country, _) in HOME_COUNTRIES {
            for kind in [Residential, Mobile] {
                assert!(
                    ISPS.iter().any(|i| i.country == *country && i.kind == kind),
                    "{country} has no {kind:?} ISP"
                );
            }
        }
    }
}
