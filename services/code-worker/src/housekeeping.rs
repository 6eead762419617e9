//! What the code worker prunes: challenges, once no reader needs them, and its published
//! outbox rows (the email outcomes).

use std::time::Duration;

use mfa_store::housekeeping::Sweep;
use mfa_store::outbox;

pub fn sweeps() -> Vec<Sweep> {
    vec![
        Sweep {
            table: "challenges",
            delete: "DELETE FROM challenges WHERE created_at < $1",
            // The verifier sums an account's wrong codes over the challenges of the last 24
            // hours; an hour more covers a challenge's lifetime.
            keep: Duration::from_secs(25 * 3600),
        },
        Sweep {
            table: "login_notifications",
            delete: "DELETE FROM login_notifications WHERE created_at < $1",
            // Past the links' life (7 days by default): a link followed later is refused by
            // its signed expiry anyway.
            keep: Duration::from_secs(31 * 24 * 3600),
        },
        outbox::sweep("DELETE FROM outbox WHERE producer = 'code-worker' AND published_at < $1"),
    ]
}
