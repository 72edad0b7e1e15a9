//! A consumer made to fall behind now and then, so the monitor's lag verdicts have something to
//! show: it keeps up with `calls` for a while, then stops reading and committing for a while
//! (its lag grows with the producer's rate), then catches up, and so on.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};

use crate::pipeline::{KafkaArgs, Stop};

/// The laggard's consumer group.
pub const GROUP: &str = "pipescope-demo-laggard";
/// How long it keeps up, and how long it then stops reading and committing.
pub const KEEP_UP: Duration = Duration::from_secs(60);
pub const PAUSE: Duration = Duration::from_secs(45);
/// How often it commits while keeping up.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

pub async fn run(kafka: String, topic: String, stop: Stop) -> anyhow::Result<()> {
    let kafka = KafkaArgs::plain(kafka);
    let consumer: StreamConsumer = kafka
        .client_config()?
        .set("group.id", GROUP)
        .set("client.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .with_context(|| {
            format!(
                "the demo's lagging consumer: cannot make a Kafka consumer for {}",
                kafka.kafka
            )
        })?;
    consumer
        .subscribe(&[&topic])
        .with_context(|| format!("the demo's lagging consumer cannot subscribe to {topic}"))?;
    tracing::info!(
        group = GROUP,
        topic,
        "demo: lagging consumer keeps up for {KEEP_UP:?}, then pauses for {PAUSE:?}, in turn"
    );
    loop {
        let mut consumed = 0u64;
        let phase_end = tokio::time::Instant::now() + KEEP_UP;
        let mut commit = tokio::time::interval(COMMIT_EVERY);
        loop {
            tokio::select! {
                () = stop.stopped() => {
                    commit_now(&consumer);
                    return Ok(());
                }
                () = tokio::time::sleep_until(phase_end) => break,
                _ = commit.tick() => {
                    if consumed > 0 {
                        commit_now_async(&consumer);
                    }
                }
                message = consumer.recv() => match message {
                    Ok(_) => consumed += 1,
                    Err(e) => tracing::warn!(group = GROUP, "demo: lagging consumer: {e}"),
                },
            }
        }
        commit_now(&consumer);
        tracing::info!(
            group = GROUP,
            consumed,
            "demo: lagging consumer pauses for {PAUSE:?}"
        );
        // Not reading and not committing: the group's lag grows with the producer.
        if stop.sleep(PAUSE).await {
            return Ok(());
        }
        tracing::info!(group = GROUP, "demo: lagging consumer catches up");
    }
}

fn commit_now_async(consumer: &StreamConsumer) {
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
        tracing::debug!(group = GROUP, "demo: lagging consumer: commit: {e}");
    }
}

fn commit_now(consumer: &StreamConsumer) {
    // A synchronous commit waits for the broker; the demo runs on the multi-threaded runtime.
    let result = tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync));
    match result {
        Ok(()) => {}
        // Nothing consumed since the last commit.
        Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => {}
        Err(e) => tracing::warn!(group = GROUP, "demo: lagging consumer: commit: {e}"),
    }
}
