//! argon2id on a bounded pool of its own threads, never on the async workers: a password check
//! costs ~19 MiB and tens of milliseconds of CPU, and a flood of them must not stall the
//! runtime. When the queue is full the caller is refused at once (503) instead of waiting.
//!
//! Each hashing thread keeps one argon2 work area (`m` KiB) for its life. Allocating one per
//! check, as the argon2 crate's own calls do, left glibc's per-thread arenas holding the
//! freed 19 MiB areas: login-intake grew to 360 MiB under load (BENCHMARKS.md). With one area
//! a thread its memory is bounded by the hashing threads times `m`, plus the rest.

use std::cell::RefCell;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

thread_local! {
    /// This thread's argon2 work area: as large as the largest cost it has hashed at.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` and `salt` into `out`, in this thread's work area. Each pass
/// overwrites the blocks it reads before reading them, so nothing of an earlier check
/// leaks into this one.
fn hash_in_work_area(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    WORK_AREA.with_borrow_mut(|area| {
        let blocks = argon2.params().block_count();
        if area.len() < blocks {
            area.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut area[..blocks])
    })
}

/// A PHC string of `password` hashed at `cost` with a fresh salt.
pub fn hash_at(cost: Argon2Cost, password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let argon2 = cost.hasher()?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(hash_in_work_area(&argon2, password, salt_bytes, out)?)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` matches `hash`, at the hash's own cost (an older cost verifies too),
/// compared in constant time. An error is a hash this cannot check.
pub fn matches(
    password: &[u8],
    hash: &PasswordHash<'_>,
) -> Result<bool, argon2::password_hash::Error> {
    use argon2::password_hash::Error;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Err(Error::PhcStringField);
    };
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let argon2 = Argon2::new(
        Algorithm::try_from(hash.algorithm)?,
        version,
        Params::try_from(hash)?,
    );
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let computed = Output::init_with(expected.len(), |out| {
        Ok(hash_in_work_area(&argon2, password, salt_bytes, out)?)
    })?;
    // `Output`'s equality is constant-time.
    Ok(computed == *expected)
}

#[expect(
    clippy::expect_used,
    reason = "argon2 fails only on invalid parameters or salt, and both are made here"
)]
fn hash_now(password: &str) -> String {
    hash_at(OWASP_COST, password.as_bytes())
        .expect("argon2 hashing does not fail with valid parameters")
}

fn verify_now(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash).and_then(|parsed| matches(password.as_bytes(), &parsed)) {
        Ok(matched) => matched,
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

    #[test]
    fn hashes_from_the_work_area_are_argon2s_own_both_ways_and_other_costs_verify() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_at(OWASP_COST, b"correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        OWASP_COST
            .hasher()
            .unwrap()
            .verify_password(b"correct horse", &parsed)
            .unwrap();
        // A hash made by the crate's allocating calls, at another (older) cost, checked in
        // the work area, which has to grow for it and then serves the smaller cost again.
        let older = Argon2Cost {
            memory_kib: 32 * 1024,
            passes: 1,
            lanes: 2,
        };
        let salt = SaltString::generate(&mut OsRng);
        let theirs = older
            .hasher()
            .unwrap()
            .hash_password(b"tr0ub4dor", &salt)
            .unwrap()
            .to_string();
        let theirs = PasswordHash::new(&theirs).unwrap();
        assert!(matches(b"tr0ub4dor", &theirs).unwrap());
        assert!(!matches(b"tr0ub4dor!", &theirs).unwrap());
        assert!(matches(b"correct horse", &parsed).unwrap());
        assert!(!matches(b"correct horsf", &parsed).unwrap());
        let unsalted = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1").unwrap();
        assert!(matches(b"x", &unsalted).is_err());
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
