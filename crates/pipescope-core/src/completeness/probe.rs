//! A probe's produce side (docs/completeness.md "Probes"): per partition, how many probe records
//! were sent and how many the broker acknowledged within the timeout, over 1, 5 and 15 minutes,
//! and the produce-ack latency. What the probe reads back is judged by a [`super::Hop`] like any
//! traced traffic.

use serde::Serialize;

use super::buckets::BucketRing;
use super::latency::{LatencyFigures, WindowedLatency};
use crate::EpochMillis;
use crate::windows::Window;

const SENT: usize = 0;
const ACKED: usize = 1;

/// Acknowledged within the timeout over sent, per window; absent while nothing was settled.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Availability {
    #[serde(rename = "1m")]
    pub one_minute: Option<f64>,
    #[serde(rename = "5m")]
    pub five_minutes: Option<f64>,
    #[serde(rename = "15m")]
    pub fifteen_minutes: Option<f64>,
}

/// A probe's produce figures for one partition.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ProduceFigures {
    /// Probe records whose outcome is known (acknowledged or failed).
    pub sent: u64,
    /// Acknowledged within the timeout.
    pub acked: u64,
    /// Failed or acknowledged after the timeout.
    pub failed: u64,
    pub availability: Availability,
    /// Send to acknowledgement, acknowledged records only.
    pub ack_latency: LatencyFigures,
}

/// Outcomes of one partition's probe records, counted when they are settled (at the
/// acknowledgement, or the failure), so records still in flight never lower availability.
#[derive(Debug, Clone, Default)]
pub struct ProduceAccount {
    windows: BucketRing<2>,
    sent: u64,
    acked: u64,
    ack_latency: WindowedLatency,
}

impl ProduceAccount {
    /// A record sent at `sent_ms` was acknowledged at `acked_ms`; it counts as available when
    /// that took at most `timeout_ms`.
    pub fn acked(&mut self, sent_ms: EpochMillis, acked_ms: EpochMillis, timeout_ms: u64) {
        self.settle(acked_ms, acked_ms.saturating_sub(sent_ms) <= timeout_ms);
        self.ack_latency.record(sent_ms, acked_ms);
    }

    /// A record's produce failed (or timed out), as learnt at `now`.
    pub fn failed(&mut self, now: EpochMillis) {
        self.settle(now, false);
    }

    fn settle(&mut self, now: EpochMillis, available: bool) {
        self.sent += 1;
        self.windows.add(SENT, 1, now);
        if available {
            self.acked += 1;
            self.windows.add(ACKED, 1, now);
        }
    }

    pub fn figures(&mut self, now: EpochMillis, since_ms: EpochMillis) -> ProduceFigures {
        self.windows.rotate(now);
        self.ack_latency.rotate(now);
        let ratio = |window| {
            let sent = self.windows.window(SENT, window, now, since_ms).count;
            let acked = self.windows.window(ACKED, window, now, since_ms).count;
            (sent > 0.0).then(|| acked / sent)
        };
        ProduceFigures {
            sent: self.sent,
            acked: self.acked,
            failed: self.sent - self.acked,
            availability: Availability {
                one_minute: ratio(Window::OneMinute),
                five_minutes: ratio(Window::FiveMinutes),
                fifteen_minutes: ratio(Window::FifteenMinutes),
            },
            ack_latency: self.ack_latency.figures(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_is_acked_in_time_over_settled_per_window() {
        let mut p = ProduceAccount::default();
        let t0 = 1_000_000;
        assert_eq!(p.figures(t0, t0).availability, Availability::default());
        for i in 0..8 {
            p.acked(t0 + i * 1_000, t0 + i * 1_000 + 5, 2_000);
        }
        // One acknowledged too late, one failed.
        p.acked(t0 + 8_000, t0 + 8_500 + 2_000, 2_000);
        p.failed(t0 + 9_000);
        let f = p.figures(t0 + 20_000, t0);
        assert_eq!((f.sent, f.acked, f.failed), (10, 8, 2));
        assert_eq!(f.availability.one_minute, Some(0.8));
        assert_eq!(f.availability.fifteen_minutes, Some(0.8));
        assert_eq!(f.ack_latency.all.count, 9);
        // A minute later only what followed counts in the 1-minute window.
        p.acked(t0 + 90_000, t0 + 90_010, 2_000);
        let f = p.figures(t0 + 110_000, t0);
        assert_eq!(f.availability.one_minute, Some(1.0));
        assert_eq!(f.availability.five_minutes, Some(9.0 / 11.0));
    }
}
