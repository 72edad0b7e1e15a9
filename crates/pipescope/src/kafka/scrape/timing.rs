//! The timing of each stage of a scrape (each kind of request, all brokers together).

use std::future::Future;
use std::sync::Mutex as StdMutex;
use std::time::Instant;

use pipescope_core::EpochMillis;

use crate::kafka::state::{ScrapeStage, ScrapeTiming};

/// Times the stages of one scrape, in the order they finish.
pub(super) struct StageTimer {
    started: Instant,
    done: StdMutex<Vec<ScrapeStage>>,
}

impl StageTimer {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            done: StdMutex::new(Vec::new()),
        }
    }

    /// Runs `stage`, keeping when it started and how long it took.
    pub async fn time<T>(&self, name: &'static str, stage: impl Future<Output = T>) -> T {
        let start = self.started.elapsed();
        let out = stage.await;
        let end = self.started.elapsed();
        self.done.lock().expect("stages lock").push(ScrapeStage {
            name,
            start_ms: start.as_secs_f64() * 1000.0,
            duration_ms: (end - start).as_secs_f64() * 1000.0,
        });
        out
    }

    /// The timing of the whole scrape, which started at `scraped_at_ms`, ending now.
    pub fn finish(self, scraped_at_ms: EpochMillis) -> ScrapeTiming {
        ScrapeTiming {
            scraped_at_ms,
            duration_ms: self.started.elapsed().as_millis() as u64,
            stages: self.done.into_inner().expect("stages lock"),
        }
    }
}
