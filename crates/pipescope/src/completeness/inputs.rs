//! The reading of a processor's output topic (a hop with `inputs = true`): each record counts
//! as the input records its `pipescope-inputs` header names (docs/trace-headers.md), so the
//! edge from the processor's input topic tells which inputs never made it into an output, or
//! made it into two.

use pipescope_core::EpochMillis;
use std::sync::Arc;

use pipescope_core::pipeline::lineage::{INPUTS, InputStream, Inputs};
use rdkafka::message::{BorrowedMessage, Headers, Message};

use super::Seen;
use super::kafka::{RecordSink, TraceSink};

/// [`TraceSink`], but each record stands for the inputs it names.
#[derive(Debug)]
pub struct InputsSink(pub TraceSink);

impl RecordSink for InputsSink {
    fn open(&self) -> bool {
        self.0.open()
    }

    fn status(&mut self, connected: bool, partitions: u32, error: Option<String>) {
        self.0.status(connected, partitions, error);
    }

    fn skipped(&mut self, partition: u32) {
        self.0.skipped(partition);
    }

    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis) {
        let hop = self.0.hop;
        let header = message.headers().and_then(|headers| {
            headers
                .iter()
                .filter(|h| h.key == INPUTS)
                .last()
                .map(|h| h.value.unwrap_or_default())
        });
        let Some(value) = header else {
            self.0.batch.push(Seen::Untraced { hop });
            return;
        };
        let Ok(streams) = Inputs::decode(value) else {
            self.0.batch.push(Seen::Malformed { hop, arrival_ms });
            return;
        };
        for InputStream(origin, stream, ranges) in streams {
            let (origin, stream): (Arc<str>, Arc<str>) = (origin.into(), stream.into());
            for range in ranges {
                for seq in range.0..=range.1 {
                    self.0.batch.push(Seen::Traced {
                        hop,
                        partition: Some(partition),
                        origin: origin.clone(),
                        stream: stream.clone(),
                        seq,
                        // The range's first input: an upper bound on the latency of the rest,
                        // by at most the range's own span.
                        origin_ms: range.2,
                        arrival_ms,
                    });
                }
            }
        }
    }

    fn full(&self) -> bool {
        self.0.full()
    }

    fn flush(&mut self) -> bool {
        self.0.flush()
    }
}
