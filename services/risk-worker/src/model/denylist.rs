//! Networks whose logins are high risk whatever the history (anonymising proxies, known
//! attack infrastructure...), read from a file of CIDR blocks, one per line, `#` comments.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DenylistError {
    #[error("cannot read deny-list {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("deny-list {path}, line {line}: {text:?} is not an address or CIDR block")]
    Line {
        path: String,
        line: usize,
        text: String,
    },
}

/// Blocks kept as IPv6 (IPv4 mapped), grouped by prefix length: a lookup masks the address
/// once per length present, so a long list costs little per login.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Denylist {
    by_length: BTreeMap<u8, HashSet<u128>>,
}

impl Denylist {
    pub fn load(path: &Path) -> Result<Self, DenylistError> {
        let text = std::fs::read_to_string(path).map_err(|e| DenylistError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|(line, text)| DenylistError::Line {
            path: path.display().to_string(),
            line,
            text,
        })
    }

    /// On error: the 1-based line number and its text.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut list = Self::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (network, length) = parse_block(line).ok_or((index + 1, raw.to_owned()))?;
            list.by_length
                .entry(length)
                .or_default()
                .insert(mask(network, length));
        }
        Ok(list)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let address = as_v6_bits(ip);
        self.by_length
            .iter()
            .any(|(&length, networks)| networks.contains(&mask(address, length)))
    }

    pub fn len(&self) -> usize {
        self.by_length.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_block(text: &str) -> Option<(u128, u8)> {
    let (address, length) = match text.split_once('/') {
        Some((a, l)) => (a.trim(), Some(l.trim().parse::<u8>().ok()?)),
        None => (text, None),
    };
    let ip: IpAddr = address.parse().ok()?;
    let v4 = matches!(ip.to_canonical(), IpAddr::V4(_));
    let max = if v4 { 32 } else { 128 };
    let length = length.unwrap_or(max);
    if length > max {
        return None;
    }
    // An IPv4 block is a block of the IPv4-mapped range ::ffff:0:0/96.
    Some((as_v6_bits(ip), if v4 { length + 96 } else { length }))
}

fn as_v6_bits(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(address: u128, length: u8) -> u128 {
    if length == 0 {
        0
    } else {
        address & (u128::MAX << (128 - u32::from(length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_single_addresses_match() {
        let list = Denylist::parse(
            "# Tor exits and a VPS range\n185.220.101.0/24\n\n2a0b:f4c2::/40 # v6\n203.0.113.7\n",
        )
        .unwrap();
        let listed = |ip: &str| list.contains(ip.parse().unwrap());
        assert!(listed("185.220.101.47"));
        assert!(listed("::ffff:185.220.101.1"));
        assert!(!listed("185.220.102.1"));
        assert!(listed("2a0b:f4c2:1::5"));
        assert!(!listed("2a0b:f4c3::5"));
        assert!(listed("203.0.113.7"));
        assert!(!listed("203.0.113.8"));
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        assert_eq!(
            Denylist::parse("10.0.0.0/8\n10.0.0.0/33\n"),
            Err((2, "10.0.0.0/33".to_owned()))
        );
        assert!(Denylist::parse("not-an-ip").is_err());
    }
}
