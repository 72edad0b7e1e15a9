//! The internal bus: watchers publish batches of samples; the store and exporters subscribe.
//!
//! Every sample the monitor takes in goes through it, once. The InfluxDB write endpoint commits
//! its samples to the store before it answers, then publishes them marked as stored: exporters
//! get them like any other, and the store's feeder ([`BusReceiver::recv_unstored`]) skips them.
//!
//! A subscriber that falls more than `capacity` batches behind loses the oldest ones; every lost
//! batch is counted (never silent) and the count is exported as a metric.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pipescope_core::Sample;
use tokio::sync::broadcast;

pub type Batch = Arc<Vec<Sample>>;

/// A batch as it travels on the bus.
#[derive(Debug, Clone)]
struct Published {
    batch: Batch,
    /// Already committed to the store by whoever published it.
    stored: bool,
}

#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Published>,
    dropped_batches: Arc<AtomicU64>,
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            dropped_batches: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends a batch to every subscriber; with no subscriber the batch is simply not kept.
    pub fn publish(&self, batch: Vec<Sample>) {
        if !batch.is_empty() {
            let _ = self.sender.send(Published {
                batch: Arc::new(batch),
                stored: false,
            });
        }
    }

    /// Sends a batch that is already in the store: exporters take it, the store's feeder not.
    pub fn publish_stored(&self, batch: Batch) {
        if !batch.is_empty() {
            let _ = self.sender.send(Published {
                batch,
                stored: true,
            });
        }
    }

    /// A second bus fed from this one (the series stage's output), whose subscribers' losses
    /// count in the same `pipescope_bus_dropped_batches_total`.
    pub fn downstream(&self, capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            dropped_batches: self.dropped_batches.clone(),
        }
    }

    pub fn subscribe(&self) -> BusReceiver {
        BusReceiver {
            receiver: self.sender.subscribe(),
            dropped_batches: self.dropped_batches.clone(),
        }
    }

    /// Batches lost by subscribers that fell behind, since start.
    pub fn dropped_batches(&self) -> u64 {
        self.dropped_batches.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct BusReceiver {
    receiver: broadcast::Receiver<Published>,
    dropped_batches: Arc<AtomicU64>,
}

impl BusReceiver {
    /// The next batch; `None` once every publisher is gone.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.next().await.map(|published| published.batch)
    }

    /// The next batch that is not in the store yet (what the store's feeder takes).
    pub async fn recv_unstored(&mut self) -> Option<Batch> {
        loop {
            let published = self.next().await?;
            if !published.stored {
                return Some(published.batch);
            }
        }
    }

    /// The next batch and whether it is already in the store (what a relay passes on).
    pub async fn recv_marked(&mut self) -> Option<(Batch, bool)> {
        self.next()
            .await
            .map(|published| (published.batch, published.stored))
    }

    async fn next(&mut self) -> Option<Published> {
        loop {
            match self.receiver.recv().await {
                Ok(published) => return Some(published),
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    self.dropped_batches.fetch_add(lost, Ordering::Relaxed);
                    tracing::warn!(lost, "a bus subscriber fell behind and lost sample batches");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipescope_core::Labels;

    fn sample(v: f64) -> Vec<Sample> {
        vec![Sample::new("m", Labels::default(), 0, v)]
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_batch_in_order() {
        let bus = Bus::new(8);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        bus.publish(sample(1.0));
        bus.publish(Vec::new()); // empty batches are not sent
        bus.publish(sample(2.0));
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await.unwrap()[0].value, 1.0);
            assert_eq!(rx.recv().await.unwrap()[0].value, 2.0);
        }
        assert_eq!(bus.dropped_batches(), 0);
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_batches_and_they_are_counted() {
        let bus = Bus::new(2);
        let mut rx = bus.subscribe();
        for v in 0..5 {
            bus.publish(sample(v as f64));
        }
        assert_eq!(rx.recv().await.unwrap()[0].value, 3.0);
        assert_eq!(bus.dropped_batches(), 3);
        drop(bus);
        assert_eq!(rx.recv().await.unwrap()[0].value, 4.0);
        assert!(rx.recv().await.is_none());
    }
}
