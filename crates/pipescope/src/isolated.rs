//! Work on a runtime of its own. A big Kafka cluster's scrape and analysis take seconds of CPU
//! (100,000 partitions, docs/scale.md); on the runtime that serves the API they would hold its
//! worker threads, and requests would wait behind them. On threads of their own, the operating
//! system shares the cores between them and the API's workers, a few milliseconds at a time.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// Runs `work` on a new multi-threaded runtime with `workers` threads named `name`, and ends
/// when it does; a panic in `work` is resumed here, so a supervisor sees it. Dropping this
/// future stops `work` (at its next await) and the runtime. When no runtime can be made, `work`
/// runs here instead, with a warning.
pub async fn on_own_runtime<F>(name: &str, workers: usize, work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = match Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name(name)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(
                task = name,
                "cannot start a runtime of its own ({e}); running it beside the API"
            );
            return work.await;
        }
    };
    let handle = runtime.spawn(work);
    let mut own = Own {
        runtime: Some(runtime),
        handle,
    };
    if let Err(e) = (&mut own.handle).await
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The runtime and its one task, stopped together when dropped.
struct Own {
    runtime: Option<Runtime>,
    handle: JoinHandle<()>,
}

impl Drop for Own {
    fn drop(&mut self) {
        self.handle.abort();
        // Not a plain drop: that would block, which an async context must not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn work_runs_on_its_own_threads_and_ends_the_future() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        on_own_runtime("own-test", 1, async move {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        })
        .await;
        assert_eq!(rx.await.unwrap().as_deref(), Some("own-test"));
    }

    #[tokio::test]
    async fn dropping_the_future_stops_the_work() {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = SetOnDrop(dropped.clone());
        let running = tokio::spawn(on_own_runtime("own-test", 1, async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!dropped.load(Ordering::SeqCst));
        running.abort();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dropped.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the work was not stopped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_panic_in_the_work_reaches_the_caller() {
        let ended = tokio::spawn(on_own_runtime("own-test", 1, async { panic!("boom") })).await;
        let panic = ended.expect_err("the panic was lost").into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
    }
}
