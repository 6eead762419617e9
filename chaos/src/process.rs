//! A server or service as a child process, its output appended to a log file, that can be
//! killed (SIGKILL: a crash at whatever line it was on) or stopped (SIGTERM).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::HarnessError;

pub struct Process {
    name: String,
    child: Child,
}

/// Variables a child must not inherit from the shell that started the harness: the stack's
/// `MFA_*` settings (scripts/test exports them) would point a service at the shared stack,
/// and generic ones change how Tansu and maildev start.
fn inherited_settings() -> Vec<String> {
    const GENERIC: [&str; 7] = [
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "RUST_LOG",
    ];
    std::env::vars()
        .map(|(key, _)| key)
        .filter(|key| {
            key.starts_with("MFA_")
                || key.starts_with("MAILDEV_")
                || GENERIC.contains(&key.as_str())
        })
        .collect()
}

impl Process {
    /// Starts `program` from `/` (Tansu reads a `.env` from its working folder).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(HarnessError::io(format!("open {}", log.display())))?;
        let errors = output
            .try_clone()
            .map_err(HarnessError::io("duplicate a log handle"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors);
        for key in inherited_settings() {
            command.env_remove(key);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        mfa_testkit::services::die_with_parent(&mut command);
        let child = command.spawn().map_err(HarnessError::io(format!(
            "start {name} ({})",
            program.display()
        )))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, if it has (it may exit by itself: a bad setting, a panic).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`; how long it took.
    pub fn terminate(&mut self, grace: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        while started.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A folder of this run's own under /tmp (the `postgres` user must be able to reach it).
pub fn run_folder(label: &str) -> Result<PathBuf, HarnessError> {
    let folder = PathBuf::from(format!(
        "/tmp/adaptive-mfa-chaos-{label}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&folder)
        .map_err(HarnessError::io(format!("create {}", folder.display())))?;
    Ok(folder)
}
