//! What the page tells login-intake about the browser in front of it.

use std::net::IpAddr;

use crate::config::MAX_USER_AGENT_BYTES;

/// The browser's `User-Agent`, as login-intake takes it (1 to 1024 bytes, no control
/// characters); a browser that sends none, or one the API would refuse, is "unknown", which
/// the risk model scores as a client never seen before.
pub fn user_agent(header: Option<&str>) -> String {
    header
        .map(str::trim)
        .filter(|agent| {
            !agent.is_empty()
                && agent.len() <= MAX_USER_AGENT_BYTES
                && !agent.chars().any(char::is_control)
        })
        .unwrap_or("unknown")
        .to_owned()
}

/// The user's address when `trusted_proxies` proxies (0: none) stand between them and the
/// page, each appending the address it was reached from to `X-Forwarded-For`: the entry that
/// many places from the right, counting the connection's own address as the last. Entries
/// left of what the trusted proxies wrote are the client's to forge, so never read; an entry
/// that is not an address ends the walk at the last good one.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: usize) -> IpAddr {
    let mut client = peer;
    let written_by_proxies = forwarded_for
        .unwrap_or_default()
        .rsplit(',')
        .map(str::trim)
        .take(trusted_proxies);
    for entry in written_by_proxies {
        match entry.parse::<IpAddr>() {
            Ok(ip) => client = ip,
            Err(_) => break,
        }
    }
    client
}

/// Whether the page is being reached on the loopback interface (`localhost`, `127.0.0.1`,
/// `[::1]`, with or without a port), where development runs over plain HTTP and a `Secure`
/// cookie would be dropped.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browsers_user_agent_is_passed_on_trimmed() {
        assert_eq!(
            user_agent(Some(" Mozilla/5.0 (X11; Linux x86_64) ")),
            "Mozilla/5.0 (X11; Linux x86_64)"
        );
    }

    #[test]
    fn none_or_one_the_api_would_refuse_is_unknown() {
        let long = "a".repeat(MAX_USER_AGENT_BYTES + 1);
        for header in [
            None,
            Some(""),
            Some("  "),
            Some("bad\u{7}agent"),
            Some(long.as_str()),
        ] {
            assert_eq!(user_agent(header), "unknown", "{header:?}");
        }
    }

    #[test]
    fn without_trusted_proxies_the_connection_is_the_client() {
        let peer: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(client_ip(peer, None, 0), peer);
        assert_eq!(
            client_ip(peer, Some("203.0.113.9"), 0),
            peer,
            "forged header"
        );
    }

    #[test]
    fn each_trusted_proxy_vouches_for_one_entry_from_the_right() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let header = Some("192.0.2.1, 203.0.113.9, 10.0.0.1");
        assert_eq!(
            client_ip(peer, header, 1),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, header, 2),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // More proxies configured than entries: the leftmost is as far as it goes.
        assert_eq!(
            client_ip(peer, Some("203.0.113.9"), 3),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // No header where one was expected: the connection's address.
        assert_eq!(client_ip(peer, None, 1), peer);
    }

    #[test]
    fn an_entry_that_is_not_an_address_stops_the_walk() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_ip(peer, Some("203.0.113.9, unknown, 10.0.0.1"), 3),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, Some("garbage"), 1), peer);
        assert_eq!(
            client_ip(peer, Some("2001:db8::1"), 1),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn loopback_hosts_with_or_without_ports() {
        for host in [
            "localhost",
            "LOCALHOST:8082",
            "127.0.0.1",
            "127.0.0.1:8082",
            "[::1]:8082",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "login.example.com:443",
            "10.0.0.1:80",
            "[2001:db8::1]:443",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
