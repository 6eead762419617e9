//! What the page tells login-intake about the browser in front of it.

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
