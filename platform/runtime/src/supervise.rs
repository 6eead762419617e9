//! Supervision of a service's long-running tasks (its consumers, relays, sweeps and server).
//!
//! A service is only whole while every one of its tasks runs: a login-intake whose decisions
//! consumer died keeps accepting logins that then stay `pending` forever. So the first task
//! to end on its own (with an error, a panic, or by returning while nobody asked it to stop)
//! is logged by name with its error's source chain, the others are stopped through their
//! shutdown so they finish the work in hand, and [`Supervisor::run`] returns the failure: the
//! binary exits non-zero and an orchestrator restarts it.
//!
//! Tasks come in two stages. [`Supervisor::spawn`] starts a *work* task, stopped first;
//! [`Supervisor::spawn_drain`] starts a *drain* task (an outbox relay), stopped only once every
//! work task ended, so what the work tasks wrote last still leaves.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;

use crate::config::{ConfigError, Env};
use crate::shutdown::{Shutdown, ShutdownTrigger};

/// A task's error, kept as a value so its source chain reaches the log.
pub type TaskError = Box<dyn Error + Send + Sync + 'static>;

/// What a supervised task may end with: nothing (it ran until stopped) or a `Result`.
pub trait TaskOutput: Send + 'static {
    fn into_result(self) -> Result<(), TaskError>;
}

impl TaskOutput for () {
    fn into_result(self) -> Result<(), TaskError> {
        Ok(())
    }
}

impl<E: Error + Send + Sync + 'static> TaskOutput for Result<(), E> {
    fn into_result(self) -> Result<(), TaskError> {
        self.map_err(|error| Box::new(error) as TaskError)
    }
}

/// Why a supervised service stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    #[error("task {task} failed")]
    Failed {
        task: &'static str,
        #[source]
        cause: TaskError,
    },
    #[error("task {task} panicked: {message}")]
    Panicked { task: &'static str, message: String },
    #[error("task {task} ended while the service was not stopping")]
    Returned { task: &'static str },
    #[error("tasks {still_running:?} were still running {deadline:?} after the stop")]
    Overran {
        still_running: Vec<&'static str>,
        deadline: Duration,
    },
    #[error("{variable} names task {task:?}, but the service has only {known:?}")]
    UnknownFaultTarget {
        variable: &'static str,
        task: String,
        known: Vec<&'static str>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Work,
    Drain,
}

/// Runs a service's tasks and stops them all when one ends.
pub struct Supervisor {
    tasks: JoinSet<Result<(), TaskError>>,
    spawned: HashMap<Id, (&'static str, Stage)>,
    requested: Shutdown,
    stop_work: ShutdownTrigger,
    work: Shutdown,
    stop_drain: ShutdownTrigger,
    drain: Shutdown,
    deadline: Duration,
    fault: Option<InjectedFault>,
    fault_target_spawned: bool,
}

impl Supervisor {
    /// `requested` is the process's shutdown (SIGTERM); after a stop, whatever its reason,
    /// the tasks have `deadline` to end before they are abandoned.
    pub fn new(requested: Shutdown, deadline: Duration) -> Self {
        let (stop_work, work) = Shutdown::new();
        let (stop_drain, drain) = Shutdown::new();
        Self {
            tasks: JoinSet::new(),
            spawned: HashMap::new(),
            requested,
            stop_work,
            work,
            stop_drain,
            drain,
            deadline,
            fault: None,
            fault_target_spawned: false,
        }
    }

    /// Makes the task `fault` names fail (see [`InjectedFault`]); `None` changes nothing.
    pub fn inject(mut self, fault: Option<InjectedFault>) -> Self {
        self.fault = fault;
        self
    }

    /// Starts a work task; `task` gets the shutdown it must stop on.
    pub fn spawn<F, T>(&mut self, name: &'static str, task: impl FnOnce(Shutdown) -> F)
    where
        F: Future<Output = T> + Send + 'static,
        T: TaskOutput,
    {
        let future = task(self.work.clone());
        self.start(name, Stage::Work, future);
    }

    /// Starts a drain task: its shutdown fires only once every work task ended.
    pub fn spawn_drain<F, T>(&mut self, name: &'static str, task: impl FnOnce(Shutdown) -> F)
    where
        F: Future<Output = T> + Send + 'static,
        T: TaskOutput,
    {
        let future = task(self.drain.clone());
        self.start(name, Stage::Drain, future);
    }

    fn start<F, T>(&mut self, name: &'static str, stage: Stage, future: F)
    where
        F: Future<Output = T> + Send + 'static,
        T: TaskOutput,
    {
        let fault = self.fault.clone().filter(|fault| fault.task == name);
        self.fault_target_spawned |= fault.is_some();
        let handle = self.tasks.spawn(async move {
            match fault {
                None => future.await.into_result(),
                Some(fault) => fault.fail_after(name, future).await,
            }
        });
        self.spawned.insert(handle.id(), (name, stage));
    }

    /// Waits until every task ended: all of them because the shutdown was requested (`Ok`),
    /// or because one ended on its own (`Err` with the first such failure; the others were
    /// stopped and any later failure is only logged).
    pub async fn run(mut self) -> Result<(), TaskFailure> {
        if let Some(fault) = self.fault.take().filter(|_| !self.fault_target_spawned) {
            let known = self.spawned.values().map(|(name, _)| *name).collect();
            self.stop_work.fire();
            self.stop_drain.fire();
            return Err(TaskFailure::UnknownFaultTarget {
                variable: FAIL_TASK_VARIABLE,
                task: fault.task,
                known,
            });
        }
        let mut first_failure: Option<TaskFailure> = None;
        let mut stop_deadline: Option<Instant> = None;
        let mut requested = self.requested.clone();
        while !self.tasks.is_empty() {
            if stop_deadline.is_some() && !self.work_running() {
                self.stop_drain.fire();
            }
            let joined = tokio::select! {
                joined = self.tasks.join_next_with_id() => joined,
                () = requested.wait(), if stop_deadline.is_none() => {
                    tracing::info!("stopping every task");
                    stop_deadline = Some(Instant::now() + self.deadline);
                    self.stop_work.fire();
                    continue;
                }
                () = sleep_until_some(stop_deadline) => {
                    let still_running = self.spawned.values().map(|(name, _)| *name).collect();
                    let overran = TaskFailure::Overran { still_running, deadline: self.deadline };
                    tracing::error!(error = %error_chain(&overran), "abandoning the tasks still running");
                    // Dropping the set aborts what is left.
                    return Err(first_failure.unwrap_or(overran));
                }
            };
            let Some(joined) = joined else { break };
            let Some(failure) = self.failure_of(joined) else {
                continue;
            };
            tracing::error!(
                task = failure.task_name(),
                error = %error_chain(&failure),
                "task ended on its own: stopping the service"
            );
            if stop_deadline.is_none() {
                stop_deadline = Some(Instant::now() + self.deadline);
                self.stop_work.fire();
            }
            first_failure.get_or_insert(failure);
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Whether a work task is still running (the drain stage waits for none).
    fn work_running(&self) -> bool {
        self.spawned
            .values()
            .any(|(_, stage)| *stage == Stage::Work)
    }

    /// Forgets the ended task and says how its end was a failure, if it was.
    fn failure_of(
        &mut self,
        joined: Result<(Id, Result<(), TaskError>), JoinError>,
    ) -> Option<TaskFailure> {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let (task, stage) = self.spawned.remove(&id)?;
        match joined {
            Ok((_, Ok(()))) => {
                let asked = match stage {
                    Stage::Work => self.work.is_fired(),
                    Stage::Drain => self.drain.is_fired(),
                };
                if asked {
                    tracing::debug!(task, "task stopped");
                    None
                } else {
                    Some(TaskFailure::Returned { task })
                }
            }
            Ok((_, Err(cause))) => Some(TaskFailure::Failed { task, cause }),
            Err(error) => Some(TaskFailure::Panicked {
                task,
                message: panic_message(error),
            }),
        }
    }
}

impl TaskFailure {
    /// The task the failure is about (the first one, for an overrun).
    pub fn task_name(&self) -> &str {
        match self {
            Self::Failed { task, .. } | Self::Panicked { task, .. } | Self::Returned { task } => {
                task
            }
            Self::Overran { still_running, .. } => still_running.first().copied().unwrap_or(""),
            Self::UnknownFaultTarget { task, .. } => task,
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn panic_message(error: JoinError) -> String {
    if !error.is_panic() {
        // Only the supervisor could abort a task, and it never joins one it aborted.
        return error.to_string();
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// `error: cause: cause of the cause…`, for one log line.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Test hook: the task to fail, as `<task>` (it ends with an error) or `<task>:panic`.
pub const FAIL_TASK_VARIABLE: &str = "MFA_TEST_FAIL_TASK";
/// Test hook: how long the named task runs before it fails (default 1000 ms).
pub const FAIL_AFTER_VARIABLE: &str = "MFA_TEST_FAIL_TASK_AFTER_MS";

/// A fault to inject into one named task, so a test can watch a real process handle a task
/// that dies. Inert unless `MFA_TEST_FAIL_TASK` is set; never set it in production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    pub task: String,
    pub kind: FaultKind,
    pub after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Error,
    Panic,
}

/// The error an injected fault ends its task with.
#[derive(Debug, thiserror::Error)]
#[error("failure injected by {FAIL_TASK_VARIABLE}")]
pub struct InjectedFailure;

impl InjectedFault {
    /// `MFA_TEST_FAIL_TASK` and `MFA_TEST_FAIL_TASK_AFTER_MS`; `None` when the first is unset.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(value) = Env::optional(FAIL_TASK_VARIABLE) else {
            return Ok(None);
        };
        let after = Duration::from_millis(Env::or(FAIL_AFTER_VARIABLE, 1000)?);
        Self::parse(&value, after).map(Some)
    }

    pub fn parse(value: &str, after: Duration) -> Result<Self, ConfigError> {
        let (task, kind) = match value.trim().split_once(':') {
            None => (value.trim(), FaultKind::Error),
            Some((task, "panic")) => (task, FaultKind::Panic),
            Some((_, other)) => {
                return Err(ConfigError::Invalid {
                    name: FAIL_TASK_VARIABLE.into(),
                    reason: format!("unknown fault {other:?}: `<task>` or `<task>:panic`"),
                })
            }
        };
        Ok(Self {
            task: task.to_owned(),
            kind,
            after,
        })
    }

    async fn fail_after<T: TaskOutput>(
        self,
        name: &'static str,
        task: impl Future<Output = T>,
    ) -> Result<(), TaskError> {
        tokio::select! {
            output = task => output.into_result(),
            () = tokio::time::sleep(self.after) => {
                tracing::warn!(task = name, variable = FAIL_TASK_VARIABLE, "injecting a failure");
                match self.kind {
                    FaultKind::Error => Err(Box::new(InjectedFailure)),
                    FaultKind::Panic => panic_on_purpose(name),
                }
            }
        }
    }
}

#[expect(
    clippy::panic,
    reason = "the test hook's panic is the fault it injects"
)]
fn panic_on_purpose(task: &str) -> ! {
    panic!("panic injected into task {task} by {FAIL_TASK_VARIABLE}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("lost the broker")]
    struct Lost(#[source] std::io::Error);

    const DEADLINE: Duration = Duration::from_secs(5);

    /// A task that runs until stopped, and records that it saw the stop.
    fn until_stopped(stopped: &Arc<AtomicBool>) -> impl FnOnce(Shutdown) -> BoxedUnit {
        let stopped = stopped.clone();
        move |mut shutdown| {
            Box::pin(async move {
                shutdown.wait().await;
                stopped.store(true, Ordering::SeqCst);
            })
        }
    }

    type BoxedUnit = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    #[tokio::test]
    async fn a_failing_task_stops_the_others_and_is_named_with_its_cause() {
        let (_trigger, requested) = Shutdown::new();
        let mut supervisor = Supervisor::new(requested, DEADLINE);
        let other_stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn("server", until_stopped(&other_stopped));
        supervisor.spawn("consumer", |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<(), _>(Lost(std::io::Error::other("connection reset")))
        });
        let failure = supervisor.run().await.expect_err("a task failed");
        assert!(
            other_stopped.load(Ordering::SeqCst),
            "the server was stopped"
        );
        assert_eq!(failure.task_name(), "consumer");
        assert!(matches!(failure, TaskFailure::Failed { .. }), "{failure:?}");
        assert_eq!(
            error_chain(&failure),
            "task consumer failed: lost the broker: connection reset"
        );
    }

    async fn poisoned_relay() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        panic!("relay state is set")
    }

    #[tokio::test]
    async fn a_panicking_task_is_caught_and_named() {
        let (_trigger, requested) = Shutdown::new();
        let mut supervisor = Supervisor::new(requested, DEADLINE);
        let other_stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn("housekeeping", until_stopped(&other_stopped));
        supervisor.spawn("relay", |_| poisoned_relay());
        let failure = supervisor.run().await.expect_err("a task panicked");
        assert!(other_stopped.load(Ordering::SeqCst));
        match failure {
            TaskFailure::Panicked { task, message } => {
                assert_eq!(task, "relay");
                assert_eq!(message, "relay state is set");
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_task_returning_unasked_is_a_failure() {
        let (_trigger, requested) = Shutdown::new();
        let mut supervisor = Supervisor::new(requested, DEADLINE);
        let other_stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn("server", until_stopped(&other_stopped));
        supervisor.spawn("listener", |_| async {});
        let failure = supervisor.run().await.expect_err("a task returned");
        assert!(other_stopped.load(Ordering::SeqCst));
        assert!(
            matches!(failure, TaskFailure::Returned { task: "listener" }),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn a_requested_shutdown_ends_cleanly_and_drains_last() {
        let (trigger, requested) = Shutdown::new();
        let mut supervisor = Supervisor::new(requested, DEADLINE);
        let work_done = Arc::new(AtomicBool::new(false));
        let drained_after_work = Arc::new(AtomicBool::new(false));
        let done = work_done.clone();
        supervisor.spawn("consumer", move |mut shutdown| async move {
            shutdown.wait().await;
            // Work in hand still takes a moment after the stop.
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, Ordering::SeqCst);
        });
        let (done, drained) = (work_done.clone(), drained_after_work.clone());
        supervisor.spawn_drain("relay", move |mut shutdown| async move {
            shutdown.wait().await;
            drained.store(done.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok::<(), Lost>(())
        });
        let running = tokio::spawn(supervisor.run());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!running.is_finished(), "nothing ends before the shutdown");
        trigger.fire();
        let outcome = tokio::time::timeout(DEADLINE, running)
            .await
            .expect("the supervisor ends")
            .expect("the supervisor does not panic");
        assert!(outcome.is_ok(), "{outcome:?}");
        assert!(
            drained_after_work.load(Ordering::SeqCst),
            "the relay was stopped only after the consumer ended"
        );
    }

    #[tokio::test]
    async fn a_drain_task_ending_before_its_stop_is_a_failure() {
        let (_trigger, requested) = Shutdown::new();
        let mut supervisor = Supervisor::new(requested, DEADLINE);
        let consumer_stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn("consumer", until_stopped(&consumer_stopped));
        supervisor.spawn_drain("relay", |_| async {});
        let failure = supervisor.run().await.expect_err("the relay returned");
        assert!(consumer_stopped.load(Ordering::SeqCst));
        assert!(
            matches!(failure, TaskFailure::Returned { task: "relay" }),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn tasks_that_ignore_the_stop_are_abandoned_at_the_deadline() {
        let (_trigger, requested) = Shutdown::new();
        let deadline = Duration::from_millis(200);
        let mut supervisor = Supervisor::new(requested, deadline);
        supervisor.spawn("stuck", |_| std::future::pending::<()>());
        supervisor.spawn("consumer", |_| async {
            Err::<(), _>(Lost(std::io::Error::other("gone")))
        });
        let started = std::time::Instant::now();
        let failure = supervisor.run().await.expect_err("a task failed");
        let took = started.elapsed();
        assert!(took >= deadline && took < deadline * 5, "took {took:?}");
        // The first failure is what the service reports, not the overrun it caused.
        assert_eq!(failure.task_name(), "consumer");
    }

    #[tokio::test]
    async fn a_requested_shutdown_that_overruns_names_the_stuck_task() {
        let (trigger, requested) = Shutdown::new();
        let mut supervisor = Supervisor::new(requested, Duration::from_millis(100));
        supervisor.spawn("stuck", |_| std::future::pending::<()>());
        trigger.fire();
        match supervisor.run().await {
            Err(TaskFailure::Overran { still_running, .. }) => {
                assert_eq!(still_running, ["stuck"])
            }
            other => panic!("expected an overrun, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_injected_fault_fails_only_the_named_task() {
        for (value, expect_panic) in [("consumer", false), ("consumer:panic", true)] {
            let (_trigger, requested) = Shutdown::new();
            let fault = InjectedFault::parse(value, Duration::from_millis(30)).expect("valid");
            let mut supervisor = Supervisor::new(requested, DEADLINE).inject(Some(fault));
            let server_stopped = Arc::new(AtomicBool::new(false));
            supervisor.spawn("server", until_stopped(&server_stopped));
            supervisor.spawn(
                "consumer",
                |mut shutdown| async move { shutdown.wait().await },
            );
            let failure = supervisor.run().await.expect_err("the fault fires");
            assert!(server_stopped.load(Ordering::SeqCst));
            assert_eq!(failure.task_name(), "consumer");
            match failure {
                TaskFailure::Panicked { message, .. } => {
                    assert!(expect_panic, "{value}");
                    assert!(message.contains("MFA_TEST_FAIL_TASK"), "{message}");
                }
                TaskFailure::Failed { cause, .. } => {
                    assert!(!expect_panic, "{value}");
                    assert!(cause.is::<InjectedFailure>());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_injected_fault_naming_no_task_is_refused_at_once() {
        let (_trigger, requested) = Shutdown::new();
        let fault = InjectedFault::parse("consumr", Duration::ZERO).expect("valid");
        let mut supervisor = Supervisor::new(requested, DEADLINE).inject(Some(fault));
        let stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn("consumer", until_stopped(&stopped));
        match supervisor.run().await {
            Err(TaskFailure::UnknownFaultTarget { task, known, .. }) => {
                assert_eq!(task, "consumr");
                assert_eq!(known, ["consumer"]);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_fault_is_a_task_name_optionally_with_panic() {
        let after = Duration::from_millis(5);
        assert_eq!(
            InjectedFault::parse("relay:panic", after).expect("valid"),
            InjectedFault {
                task: "relay".into(),
                kind: FaultKind::Panic,
                after
            }
        );
        assert_eq!(
            InjectedFault::parse("relay", after).expect("valid").kind,
            FaultKind::Error
        );
        let bad = InjectedFault::parse("relay:explode", after).expect_err("unknown fault");
        assert!(bad.to_string().contains("MFA_TEST_FAIL_TASK"), "{bad}");
    }
}
