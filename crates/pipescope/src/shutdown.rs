//! One way to stop things. `main` makes a [`Stop`] that the first Ctrl-C or SIGTERM fires and
//! passes it to `monitor::run` or the part it runs; the demo passes its own to everything it
//! starts. Whatever ends, it ends by this handle — never by aborting a task from outside.
//!
//! [`Supervisor`] runs long-lived tasks (the watchers) until the stop: a task that panics or
//! ends by itself is started again with backoff, and `/health` says so (see [`TaskHealth`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use pipescope_core::Clock;
use pipescope_core::backoff::Backoff;
use pipescope_core::clock::EpochMillis;
use pipescope_core::health::{CRASH_LOOP_FAILURES, TaskLiveness};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sync::lock;

/// A stop request shared by every task of a run. Cloning shares it; [`Stop::child`] makes one
/// that stops with its parent or on its own.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    token: CancellationToken,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything holding this stop (or a child of it) to stop.
    pub fn stop(&self) {
        self.token.cancel();
    }

    /// A stop that fires with this one, and that can also be fired alone.
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a stop was requested.
    pub async fn stopped(&self) {
        self.token.cancelled().await;
    }

    /// Sleeps `d`, or less when a stop comes first; true when stopped.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => self.is_stopped(),
            () = self.stopped() => true,
        }
    }

    /// Runs `work` until it ends or the stop comes, whichever is first (`None`: stopped).
    pub async fn run_until_stopped<F: Future>(&self, work: F) -> Option<F::Output> {
        self.token.run_until_cancelled(work).await
    }
}

/// Fires `stop` on the first Ctrl-C or SIGTERM. A second one ends the process at once, for
/// when a broker keeps a graceful stop from finishing.
pub fn stop_on_signal(stop: Stop) {
    tokio::spawn(async move {
        signal().await;
        stop.stop();
        signal().await;
        eprintln!("pipescope: second stop signal, exiting now");
        std::process::exit(130);
    });
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C ({e}); stop pipescope with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM ({e}); stop pipescope with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, stopping"),
        () = terminate => tracing::info!("SIGTERM received, stopping"),
    }
}

/// A supervised task as `/health` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskHealth {
    /// What the task does, e.g. `kafka watcher demo`.
    pub name: String,
    /// False between a failure and the restart that follows it.
    pub running: bool,
    /// How many times it was started again after a panic or an early end.
    pub restarts: u32,
    /// The last failure (a panic's message, or "ended by itself"), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_ms: Option<EpochMillis>,
    /// `running`, `restarting` (between a failure and its restart), `crash_loop` (failed 5 times
    /// within 5 minutes) or `dead` (ended and not started again): the last two fail `/health`.
    pub liveness: TaskLiveness,
    /// Since when it fails `/health`: the first of its recent failures, or when it died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since_ms: Option<EpochMillis>,
    /// Gone for good (see [`TaskLiveness::Dead`]).
    #[serde(skip)]
    dead: bool,
    /// Its latest failures, oldest first, at most [`CRASH_LOOP_FAILURES`].
    #[serde(skip)]
    failures_ms: VecDeque<EpochMillis>,
}

impl TaskHealth {
    /// Fills `liveness` and `failing_since_ms` as of `now_ms`.
    fn judged(mut self, now_ms: EpochMillis) -> Self {
        let failures: Vec<EpochMillis> = self.failures_ms.iter().copied().collect();
        self.liveness = TaskLiveness::judge(self.running, self.dead, &failures, now_ms);
        self.failing_since_ms = match self.liveness {
            TaskLiveness::CrashLoop => failures.first().copied(),
            TaskLiveness::Dead => self.last_failure_ms,
            TaskLiveness::Running | TaskLiveness::Restarting => None,
        };
        self
    }
}

/// Marks its task dead when dropped before the stop: the supervising loop itself panicked (its
/// factory did) or was lost, so nothing will start the task again.
struct DeadUnlessStopped {
    supervisor: Supervisor,
    index: usize,
}

impl Drop for DeadUnlessStopped {
    fn drop(&mut self) {
        if self.supervisor.stop.is_stopped() {
            return;
        }
        let now = self.supervisor.clock.now_millis();
        let why = if std::thread::panicking() {
            "its supervisor panicked while starting it; it is not started again"
        } else {
            "its supervisor ended; it is not started again"
        };
        tracing::error!(task = %lock(&self.supervisor.tasks)[self.index].name, "{why}");
        self.supervisor.mark(self.index, |task| {
            task.running = false;
            task.dead = true;
            task.last_failure = Some(why.to_owned());
            task.last_failure_ms = Some(now);
        });
    }
}

/// Starts long-lived tasks, restarts them when they fail, and waits for them at the stop.
#[derive(Debug, Clone)]
pub struct Supervisor {
    stop: Stop,
    tracker: TaskTracker,
    tasks: Arc<Mutex<Vec<TaskHealth>>>,
    clock: Arc<dyn Clock>,
}

/// Makes a task's future, again for every restart.
pub type TaskFactory = Box<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A task that ran this long before failing starts over from the shortest restart delay.
const STABLE_RUN: Duration = Duration::from_secs(60);

impl Supervisor {
    pub fn new(stop: Stop, clock: Arc<dyn Clock>) -> Self {
        Self {
            stop,
            tracker: TaskTracker::new(),
            tasks: Arc::default(),
            clock,
        }
    }

    /// Runs `make()` until the stop; when it panics or ends first, logs it, marks it on
    /// [`Supervisor::health`] and starts it again with backoff.
    pub fn spawn(&self, name: impl Into<String>, make: TaskFactory) {
        let name = name.into();
        let index = {
            let mut tasks = lock(&self.tasks);
            tasks.push(TaskHealth {
                name: name.clone(),
                running: true,
                restarts: 0,
                last_failure: None,
                last_failure_ms: None,
                liveness: TaskLiveness::Running,
                failing_since_ms: None,
                dead: false,
                failures_ms: VecDeque::new(),
            });
            tasks.len() - 1
        };
        let this = self.clone();
        self.tracker.spawn(async move {
            let _dead_unless_stopped = DeadUnlessStopped {
                supervisor: this.clone(),
                index,
            };
            let mut backoff = Backoff::default();
            loop {
                let started = tokio::time::Instant::now();
                // Its own task, so that a panic is caught here as a JoinError.
                let (stop, work) = (this.stop.clone(), make());
                let run = tokio::spawn(async move { stop.run_until_stopped(work).await });
                let failure = match run.await {
                    Ok(None) => return,
                    Ok(Some(())) => "ended by itself".to_owned(),
                    Err(e) => panic_message(e),
                };
                if this.stop.is_stopped() {
                    return;
                }
                tracing::error!(task = %name, "{failure}; starting it again");
                if started.elapsed() > STABLE_RUN {
                    backoff.reset();
                }
                this.mark(index, |task| {
                    let now = this.clock.now_millis();
                    task.running = false;
                    task.last_failure = Some(failure.clone());
                    task.last_failure_ms = Some(now);
                    if task.failures_ms.len() == CRASH_LOOP_FAILURES {
                        task.failures_ms.pop_front();
                    }
                    task.failures_ms.push_back(now);
                });
                if this.stop.sleep(backoff.next_delay()).await {
                    return;
                }
                this.mark(index, |task| {
                    task.running = true;
                    task.restarts += 1;
                });
            }
        });
    }

    /// The run's stop, for work that must finish after it (a shared flow's hand-over).
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    /// Runs `work` to its end even past the stop; [`Supervisor::wait`] waits for it too.
    pub fn spawn_past_stop<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(work)
    }

    /// Every supervised task's state, in the order they were started.
    pub fn health(&self) -> Vec<TaskHealth> {
        let now = self.clock.now_millis();
        let tasks = lock(&self.tasks).clone();
        tasks.into_iter().map(|task| task.judged(now)).collect()
    }

    /// Waits until every task has seen the stop and ended.
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn mark(&self, index: usize, change: impl FnOnce(&mut TaskHealth)) {
        if let Some(task) = lock(&self.tasks).get_mut(index) {
            change(task);
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            format!("panicked: {message}")
        }
        Err(error) => format!("was cancelled ({error})"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use pipescope_core::SystemClock;

    use super::*;

    /// Waits (with a deadline) until `check` holds.
    async fn eventually(check: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "condition not met");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_is_started_again_and_health_says_so() {
        let stop = Stop::new();
        let supervisor = Supervisor::new(stop.clone(), Arc::new(SystemClock));
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        supervisor.spawn(
            "flaky watcher",
            Box::new(move || {
                let run = counted.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    if run == 0 {
                        panic!("broken answer");
                    }
                    std::future::pending::<()>().await;
                })
            }),
        );
        eventually(|| starts.load(Ordering::SeqCst) == 2).await;
        let health = supervisor.health();
        assert_eq!(health.len(), 1);
        assert_eq!(health[0].name, "flaky watcher");
        assert!(health[0].running);
        assert_eq!(health[0].restarts, 1);
        assert_eq!(
            health[0].last_failure.as_deref(),
            Some("panicked: broken answer")
        );
        assert!(health[0].last_failure_ms.is_some());

        stop.stop();
        tokio::time::timeout(Duration::from_secs(2), supervisor.wait())
            .await
            .expect("every task ends at the stop");
    }

    #[tokio::test]
    async fn a_task_that_keeps_failing_is_in_a_crash_loop_and_one_never_restarted_is_dead() {
        let stop = Stop::new();
        let supervisor = Supervisor::new(stop.clone(), Arc::new(SystemClock));
        supervisor.spawn("always ends", Box::new(|| Box::pin(async {})));
        supervisor.spawn(
            "factory panics",
            Box::new(|| panic!("cannot make the watcher")),
        );
        supervisor.spawn("fine", Box::new(|| Box::pin(std::future::pending::<()>())));
        eventually(|| {
            let health = supervisor.health();
            health[0].liveness == TaskLiveness::CrashLoop
                && health[1].liveness == TaskLiveness::Dead
        })
        .await;
        let health = supervisor.health();
        assert_eq!(
            health[0].failing_since_ms,
            health[0].failures_ms.front().copied()
        );
        assert!(health[0].failing_since_ms.is_some());
        assert_eq!(health[1].failing_since_ms, health[1].last_failure_ms);
        assert_eq!(
            health[1].last_failure.as_deref(),
            Some("its supervisor panicked while starting it; it is not started again")
        );
        assert_eq!(health[2].liveness, TaskLiveness::Running);

        stop.stop();
        tokio::time::timeout(Duration::from_secs(2), supervisor.wait())
            .await
            .expect("every task ends at the stop");
        assert_eq!(
            supervisor.health()[2].liveness,
            TaskLiveness::Running,
            "a stop is no death"
        );
    }

    #[tokio::test]
    async fn a_stop_ends_tasks_that_never_look_at_it() {
        let stop = Stop::new();
        let supervisor = Supervisor::new(stop.clone(), Arc::new(SystemClock));
        for i in 0..3 {
            supervisor.spawn(
                format!("busy {i}"),
                Box::new(|| Box::pin(std::future::pending::<()>())),
            );
        }
        stop.stop();
        tokio::time::timeout(Duration::from_secs(2), supervisor.wait())
            .await
            .expect("every task ends at the stop");
        assert!(supervisor.health().iter().all(|t| t.restarts == 0));
    }

    #[tokio::test]
    async fn a_child_stop_fires_with_its_parent_and_alone() {
        let parent = Stop::new();
        let alone = parent.child();
        alone.stop();
        assert!(alone.is_stopped() && !parent.is_stopped());
        let with_parent = parent.child();
        parent.stop();
        assert!(with_parent.sleep(Duration::from_secs(60)).await);
    }
}
