//! What the verifier prunes: its idempotency keys, and its own published outbox rows.

use mfa_http::idempotency;
use mfa_store::housekeeping::Sweep;
use mfa_store::outbox;

pub fn sweeps() -> Vec<Sweep> {
    vec![
        idempotency::sweep(
            "DELETE FROM idempotency_keys WHERE scope LIKE 'verifier:%' AND created_at < $1",
        ),
        outbox::sweep("DELETE FROM outbox WHERE producer = 'verifier' AND published_at < $1"),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_outbox_sweep_prunes_only_this_services_rows() {
        let sweeps = super::sweeps();
        let outbox = sweeps.iter().find(|s| s.table == "outbox").unwrap();
        let own = format!("producer = '{}' AND", crate::verify::PRODUCER);
        assert!(outbox.delete.contains(&own), "{}", outbox.delete);
    }
}
