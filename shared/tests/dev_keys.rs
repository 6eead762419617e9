//! The development signing keys in docker-compose.yml and the auditor's key file next to them
//! (ops/audit-public-keys.dev.json) belong together: a log from `docker compose up` verifies
//! with that file.

// A failed step fails the test loudly, where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shared::audit::{AuditSigner, KeyFile};

fn repository_file(path: &str) -> String {
    let path = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[test]
fn the_compose_signing_keys_match_the_dev_key_file() {
    let compose = repository_file("docker-compose.yml");
    let file: KeyFile =
        serde_json::from_str(&repository_file("ops/audit-public-keys.dev.json")).unwrap();
    // `  audit-key-<service>: &dev-audit-key-<service> <key id>:<seed>`
    let configured: Vec<(String, String)> = compose
        .lines()
        .filter_map(|line| line.trim().strip_prefix("audit-key-"))
        .map(|rest| {
            let (producer, rest) = rest.split_once(':').unwrap();
            let value = rest.split_whitespace().nth(1).unwrap();
            (producer.to_owned(), value.to_owned())
        })
        .collect();
    let mut producers: Vec<&str> = configured.iter().map(|(p, _)| p.as_str()).collect();
    producers.sort_unstable();
    assert_eq!(
        producers,
        ["code-worker", "login-intake", "risk-worker", "verifier"]
    );
    for (producer, value) in &configured {
        let signer = AuditSigner::parse(producer, value).unwrap();
        assert!(
            file.keys.contains(&signer.public_key()),
            "{producer}'s key is not in the dev key file"
        );
        assert!(
            compose.contains(&format!("MFA_AUDIT_SIGNING_KEY: *dev-audit-key-{producer}")),
            "{producer} is given its key"
        );
    }
    assert_eq!(file.keys.len(), configured.len());
}
