//! A service under benchmark as a child process (the chaos harness's approach): its output
//! appended to a log file, none of the shell's `MFA_*` settings inherited, killed with the
//! benchmark if the benchmark dies, stopped with SIGTERM at the end.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::rss::{self, Memory, RssError};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("opening the log {}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {name} ({})", .program.display())]
    Spawn {
        name: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} exited ({status}); its log: {}", .log.display())]
    Exited {
        name: String,
        status: ExitStatus,
        log: PathBuf,
    },
    #[error("{name}'s memory")]
    Memory {
        name: String,
        #[source]
        source: RssError,
    },
}

pub struct ServiceProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ServiceProcess {
    /// Starts `program` with exactly the `MFA_*` settings in `env` (the shell that runs
    /// scripts/bench has the stack's exported, which would point it at the shared topics).
    pub fn spawn(
        name: &str,
        program: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self, ProcessError> {
        let log_error = |source| ProcessError::Log {
            path: log.to_path_buf(),
            source,
        };
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(log_error)?;
        let errors = output.try_clone().map_err(log_error)?;
        let mut command = Command::new(program);
        command.stdin(Stdio::null()).stdout(output).stderr(errors);
        for (key, _) in std::env::vars() {
            if key.starts_with("MFA_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        mfa_testkit::services::die_with_parent(&mut command);
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            name: name.to_owned(),
            program: program.to_path_buf(),
            source,
        })?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if it exited (a bad setting, a panic): the benchmark's figures would be
    /// those of a system missing a part.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ProcessError::Exited {
                name: self.name.clone(),
                status,
                log: self.log.clone(),
            }),
            _ => Ok(()),
        }
    }

    pub fn memory(&self) -> Result<Memory, ProcessError> {
        rss::of_process(self.pid()).map_err(|source| ProcessError::Memory {
            name: self.name.clone(),
            source,
        })
    }

    /// SIGTERM, then SIGKILL if it still runs after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        while started.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
