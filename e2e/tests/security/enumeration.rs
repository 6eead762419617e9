//! Telling known emails from unknown ones by the time the answer takes.

use std::time::{Duration, Instant};

use crate::capture_logs;
use crate::support::*;

/// An unknown email and a wrong password take the same time: both run one argon2id check and
/// the same path through the risk worker. Interleaved samples, compared by their medians (the
/// one timed test we keep, because the property is about time itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_take_the_same_time() {
    capture_logs();
    let system = spawn_system().await;
    let email = unique_email("timing");
    system
        .create_user(&email, Some(PASSWORD), "acme", false)
        .await;

    let mut wrong_password = Vec::new();
    let mut unknown_email = Vec::new();
    for round in 0..150 {
        // Alternate which goes first, so a slow patch of the machine hits both alike.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for known in order {
            let target = if known {
                email.clone()
            } else {
                unique_email("ghost")
            };
            let started = Instant::now();
            let answer = system
                .login(
                    &target,
                    "not the password",
                    Some("d1"),
                    HOME_IP,
                    CHROME_WINDOWS,
                )
                .await;
            let elapsed = started.elapsed();
            assert_eq!(answer.body["status"], "rejected");
            if known {
                wrong_password.push(elapsed)
            } else {
                unknown_email.push(elapsed)
            }
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64()
    };
    let (known, unknown) = (median(&mut wrong_password), median(&mut unknown_email));
    let gap = (known - unknown).abs() / known.min(unknown);
    println!(
        "median wrong password {:.1} ms, unknown email {:.1} ms, gap {:.1}%",
        known * 1e3,
        unknown * 1e3,
        gap * 100.0
    );
    assert!(gap <= 0.10, "the medians differ by {:.1}%", gap * 100.0);
}
