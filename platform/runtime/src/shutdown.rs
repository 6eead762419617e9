//! One shutdown signal per process: SIGTERM or Ctrl-C in production, a dropped or fired
//! handle in tests.

use tokio::sync::watch;

/// Cloneable; resolves `wait` once shutdown was asked for.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// Fires the shutdown.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// A shutdown that fires on SIGTERM or Ctrl-C. The service then has `deadline` to stop
    /// taking work, finish what is in flight, commit offsets and flush its producer; past
    /// it the process exits with status 1 whatever is still running, so an orchestrator's
    /// grace period is never overrun by a stuck dependency.
    pub fn on_signals(deadline: std::time::Duration) -> Shutdown {
        let (trigger, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                // Only Ctrl-C stops the service then; say so rather than crash at start-up.
                Err(error) => {
                    tracing::error!(%error, "no SIGTERM handler: only Ctrl-C stops this process");
                    let _ = ctrl_c.await;
                }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
            tracing::info!(deadline_secs = deadline.as_secs_f64(), "shutdown requested");
            trigger.fire();
            // A thread of its own: it must fire even if every async worker is stuck.
            std::thread::spawn(move || {
                std::thread::sleep(deadline);
                tracing::error!("shutdown deadline passed with work still running: exiting");
                std::process::exit(1);
            });
        });
        shutdown
    }

    pub async fn wait(&mut self) {
        // An error means the trigger was dropped: treat that as shutdown too.
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }
}

impl ShutdownTrigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sigterm_fires_the_shutdown() {
        let mut shutdown = Shutdown::on_signals(std::time::Duration::from_secs(600));
        // Let the handler install before the signal is sent.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(5), shutdown.wait())
            .await
            .expect("SIGTERM fires the shutdown");
        assert!(shutdown.is_fired());
    }
}
