//! The four services as processes: which binary each is, in the order a system starts them.
//! The chaos harness and the benchmark both run them this way.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    LoginIntake,
    RiskWorker,
    CodeWorker,
    Verifier,
}

impl ServiceKind {
    /// In start order: login-intake's migrations create the tables the others use.
    pub const ALL: [ServiceKind; 4] = [
        ServiceKind::LoginIntake,
        ServiceKind::RiskWorker,
        ServiceKind::CodeWorker,
        ServiceKind::Verifier,
    ];

    pub fn binary(self) -> &'static str {
        match self {
            ServiceKind::LoginIntake => "login-intake",
            ServiceKind::RiskWorker => "risk-worker",
            ServiceKind::CodeWorker => "code-worker",
            ServiceKind::Verifier => "verifier",
        }
    }

    /// Whether it answers an HTTP API (and `/metrics` on its API port).
    pub fn serves_http(self) -> bool {
        matches!(self, ServiceKind::LoginIntake | ServiceKind::Verifier)
    }
}

/// Makes a child process die with this one (SIGKILL when the parent exits): a harness or a
/// benchmark stopped by Ctrl-C or killed takes its services with it, instead of leaving
/// them holding ports and consuming.
pub fn die_with_parent(command: &mut std::process::Command) {
    // SAFETY: prctl is async-signal-safe, as pre_exec requires.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
