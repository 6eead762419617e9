//! argon2id on a bounded pool of its own threads, never on the async workers: a password check
//! costs ~19 MiB and tens of milliseconds of CPU, and a flood of them must not stall the
//! runtime. When the queue is full the caller is refused at once (503) instead of waiting.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::metrics::Argon2Metrics;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, thiserror::Error)]
#[error("the password pool is full")]
pub struct PoolFull;

#[derive(Clone)]
pub struct PasswordPool {
    jobs: SyncSender<Job>,
    /// Verified against when the account is unknown or has no password, so that an unknown
    /// email costs the same time as a wrong password. Made on a pool thread (hashing is the
    /// pool's job, never the async runtime's), as the pool's first job.
    dummy_hash: Arc<OnceLock<String>>,
    metrics: Argon2Metrics,
}

/// argon2id's cost: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

/// OWASP's argon2id parameters, the ones this service hashes and verifies with: m = 19 MiB,
/// t = 2, p = 1. Public so the benchmark measures the same cost (`mfa-bench argon2`).
pub const OWASP_COST: Argon2Cost = Argon2Cost {
    memory_kib: 19 * 1024,
    passes: 2,
    lanes: 1,
};

impl Argon2Cost {
    /// The hasher of this cost, or why argon2 refuses it.
    pub fn hasher(self) -> Result<Argon2<'static>, argon2::Error> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, None)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

#[expect(
    clippy::expect_used,
    reason = "constant parameters within argon2's bounds: Params::new cannot refuse them"
)]
fn argon2() -> Argon2<'static> {
    OWASP_COST.hasher().expect("valid argon2 parameters")
}

#[expect(
    clippy::expect_used,
    reason = "argon2 fails only on invalid parameters or salt, and both are made here"
)]
fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing does not fail with valid parameters")
        .to_string()
}

fn verify_now(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(error) => {
            tracing::error!(%error, "stored password hash is unreadable");
            false
        }
    }
}

fn dummy_hash(cell: &OnceLock<String>) -> &str {
    cell.get_or_init(|| hash_now(&uuid::Uuid::new_v4().to_string()))
}

impl PasswordPool {
    /// Fails only if the operating system refuses a thread.
    pub fn new(threads: usize, queue: usize, metrics: Argon2Metrics) -> std::io::Result<Self> {
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver: Arc<Mutex<Receiver<Job>>> = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || loop {
                    let job = match receiver
                        .lock()
                        // A pool thread that panicked mid-hash holds no state in the queue.
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv()
                    {
                        Ok(job) => job,
                        Err(_) => return, // the pool was dropped
                    };
                    job();
                })?;
        }
        let pool = Self {
            jobs,
            dummy_hash: Arc::new(OnceLock::new()),
            metrics,
        };
        let warm_up = Arc::clone(&pool.dummy_hash);
        let _ = pool.jobs.try_send(Box::new(move || {
            dummy_hash(&warm_up);
        }));
        Ok(pool)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolFull> {
        let (done, result) = oneshot::channel();
        let metrics = self.metrics.clone();
        // Counted before it is queued, so a thread that takes it at once can't count it out
        // first; the guard goes with the job, and out of the depth when the job is done.
        let in_queue = metrics.queued();
        let queued_at = Instant::now();
        let job: Job = Box::new(move || {
            let in_queue = in_queue;
            metrics.started(queued_at.elapsed());
            let started = Instant::now();
            let output = work();
            metrics.hashed(started.elapsed());
            // Out of the depth before the answer: whoever got it sees the queue without it.
            drop(in_queue);
            let _ = done.send(output);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                // The refused job (and its guard) is dropped here: the depth is back.
                self.metrics.refused();
                return Err(PoolFull);
            }
        }
        result.await.map_err(|_| PoolFull)
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is none; the
    /// answer is false then, but it took the same time.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, PoolFull> {
        let dummy = Arc::clone(&self.dummy_hash);
        self.run(move || match hash {
            Some(hash) => verify_now(password.expose_secret(), &hash),
            None => {
                verify_now(password.expose_secret(), dummy_hash(&dummy));
                false
            }
        })
        .await
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, PoolFull> {
        self.run(move || hash_now(password.expose_secret())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_what_it_hashed() {
        let metrics = Argon2Metrics::unregistered();
        let pool = PasswordPool::new(1, 4, metrics.clone()).unwrap();
        let hash = pool
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(pool
            .verify(SecretString::from("correct horse"), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!pool
            .verify(SecretString::from("wrong"), Some(hash))
            .await
            .unwrap());
        assert!(!pool
            .verify(SecretString::from("anything"), None)
            .await
            .unwrap());
        assert_eq!(
            metrics.depth(),
            0,
            "every job is out of the queue once answered"
        );
        assert_eq!(metrics.refusals(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let metrics = Argon2Metrics::unregistered();
        let pool = PasswordPool::new(1, 1, metrics.clone()).unwrap();
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.verify(SecretString::from("x"), None).await })
            })
            .collect();
        let mut refused = 0;
        for check in checks {
            if check.await.unwrap().is_err() {
                refused += 1;
            }
        }
        assert!(
            refused >= 1,
            "one thread and a queue of one cannot take eight checks at once"
        );
        assert_eq!(metrics.refusals(), refused);
        assert_eq!(metrics.depth(), 0);
    }
}
