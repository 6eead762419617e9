//! Loopback ports for servers a test starts itself.

use std::time::Duration;

use crate::TestkitError;

/// A free loopback port, for a server that is told its port (and keeps it across restarts).
pub fn free_port() -> Result<u16, TestkitError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(TestkitError::io("a free loopback port"))
}

/// Waits until something accepts connections on the port.
pub async fn wait_for_port(port: u16, within: Duration, what: &str) -> Result<(), TestkitError> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(TestkitError::NotListening {
        what: what.to_owned(),
        port,
        within,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_is_found_and_a_free_one_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listening = listener.local_addr().unwrap().port();
        wait_for_port(listening, Duration::from_secs(1), "listener")
            .await
            .unwrap();
        let free = free_port().unwrap();
        let error = wait_for_port(free, Duration::from_millis(100), "nobody")
            .await
            .unwrap_err();
        assert!(
            matches!(error, TestkitError::NotListening { port, .. } if port == free),
            "{error}"
        );
    }
}
