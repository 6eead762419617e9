//! The ceiling of password logins on this machine: how many argon2id verifications a
//! second `threads` threads do, with login-intake's own parameters (or another cost, such as
//! Keycloak's m = 7 MiB, t = 5, for a like-for-like comparison with its published sizing).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHash;
use login_intake::password::{self, Argon2Cost};
use serde::Serialize;

/// Keycloak's default argon2id cost (its sizing guide's 15 logins per second per vCPU).
pub const KEYCLOAK_COST: Argon2Cost = Argon2Cost {
    memory_kib: 7 * 1024,
    passes: 5,
    lanes: 1,
};

#[derive(Debug, thiserror::Error)]
pub enum Argon2RateError {
    #[error("hashing the benchmark's password")]
    Hash(#[from] argon2::password_hash::Error),
    #[error("a hashing thread could not start")]
    Thread(#[source] std::io::Error),
}

#[derive(Debug, Clone, Serialize)]
pub struct Argon2Rate {
    pub memory_kib: u32,
    pub passes: u32,
    pub threads: usize,
    pub verifications: u64,
    pub seconds: f64,
    /// Verifications per second, all threads together.
    pub per_sec: f64,
    /// Per thread: the rate one core gives.
    pub per_sec_per_thread: f64,
    /// Milliseconds one verification takes on one thread.
    pub ms_each: f64,
}

/// Verifies one password against its hash on `threads` threads for `duration`.
pub fn measure(
    cost: Argon2Cost,
    threads: usize,
    duration: Duration,
) -> Result<Argon2Rate, Argon2RateError> {
    // login-intake's own calls: each thread checks in a work area of its own.
    let hash = password::hash_at(cost, b"correct horse battery staple")?;
    let threads = threads.max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let (stop, done, hash) = (stop.clone(), done.clone(), hash.clone());
        let worker = std::thread::Builder::new()
            .name(format!("argon2-bench-{index}"))
            .spawn(move || {
                let Ok(parsed) = PasswordHash::new(&hash) else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    // The result is not the point; the work is.
                    let _ = password::matches(b"correct horse battery staple", &parsed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(Argon2RateError::Thread)?;
        workers.push(worker);
    }
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        // A thread that panicked counted what it did; nothing else to take from it.
        let _ = worker.join();
    }
    let seconds = started.elapsed().as_secs_f64();
    let verifications = done.load(Ordering::Relaxed);
    let per_sec = verifications as f64 / seconds;
    Ok(Argon2Rate {
        memory_kib: cost.memory_kib,
        passes: cost.passes,
        threads,
        verifications,
        seconds,
        per_sec,
        per_sec_per_thread: per_sec / threads as f64,
        ms_each: if per_sec > 0.0 {
            1000.0 * threads as f64 / per_sec
        } else {
            f64::INFINITY
        },
    })
}
