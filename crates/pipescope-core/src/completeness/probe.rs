//! A probe's produce side (docs/completeness.md "Probes"): per partition, how many probe records
//! were sent and how many the broker acknowledged within the timeout, over 1, 5 and 15 minutes,
//! and the produce-ack latency. What the probe reads back is judged by a [`super::Hop`] like any
//! traced traffic.

use std::collections::{HashMap, VecDeque};

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

/// What became of an MQTT probe message (see [`PublishTracker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Its PUBACK came at `at_ms`, within the timeout.
    Acked {
        seq: u64,
        sent_ms: EpochMillis,
        at_ms: EpochMillis,
    },
    /// No PUBACK within the timeout, as learnt at `at_ms`. The connection still holds it, so it
    /// may yet be delivered: unavailability, and its number stays judged.
    TimedOut { seq: u64, at_ms: EpochMillis },
    /// The connection ended (or the broker refused it) before its PUBACK: it may never have been
    /// published, so its number is not judged. `counted` when it had timed out already (its
    /// unavailability is counted).
    Dropped {
        seq: u64,
        at_ms: EpochMillis,
        counted: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    seq: u64,
    sent_ms: EpochMillis,
    timed_out: bool,
}

/// An MQTT probe's messages between the publish call and the PUBACK. An MQTT client numbers a
/// QoS 1 message (its packet id) only when it writes it, and writes them in the order they were
/// handed to it: [`PublishTracker::queued`] in that order, [`PublishTracker::written`] with the
/// packet id, [`PublishTracker::acked`] with the PUBACK's. Messages that timed out stay until
/// their PUBACK or the end of the connection, so packet ids keep matching. Bounded by the
/// client's request queue (queued) and the 65,535 packet ids (written).
#[derive(Debug, Clone, Default)]
pub struct PublishTracker {
    queued: VecDeque<Waiting>,
    written: HashMap<u16, Waiting>,
}

impl PublishTracker {
    /// Message `seq`, sent at `sent_ms`, was handed to the client.
    pub fn queued(&mut self, seq: u64, sent_ms: EpochMillis) {
        self.queued.push_back(Waiting {
            seq,
            sent_ms,
            timed_out: false,
        });
    }

    /// The client wrote the oldest queued message with packet id `pkid`.
    pub fn written(&mut self, pkid: u16) {
        if let Some(w) = self.queued.pop_front() {
            self.written.insert(pkid, w);
        }
    }

    /// The PUBACK of `pkid` came at `at_ms`; `success` unless the broker refused the message.
    /// None when the message had timed out (already settled) or is unknown.
    pub fn acked(&mut self, pkid: u16, success: bool, at_ms: EpochMillis) -> Option<Settled> {
        let w = self.written.remove(&pkid)?;
        match (success, w.timed_out) {
            (true, false) => Some(Settled::Acked {
                seq: w.seq,
                sent_ms: w.sent_ms,
                at_ms,
            }),
            (true, true) => None,
            (false, counted) => Some(Settled::Dropped {
                seq: w.seq,
                at_ms,
                counted,
            }),
        }
    }

    /// Messages sent more than `timeout_ms` before `now` without a PUBACK, once each.
    pub fn expire(&mut self, now: EpochMillis, timeout_ms: u64) -> Vec<Settled> {
        let mut out = Vec::new();
        for w in self.queued.iter_mut().chain(self.written.values_mut()) {
            if !w.timed_out && now.saturating_sub(w.sent_ms) > timeout_ms {
                w.timed_out = true;
                out.push(Settled::TimedOut {
                    seq: w.seq,
                    at_ms: now,
                });
            }
        }
        out.sort_by_key(|s| match s {
            Settled::TimedOut { seq, .. } => *seq,
            _ => 0,
        });
        out
    }

    /// The connection ended at `now`: every message still waiting, in order of its number.
    pub fn connection_lost(&mut self, now: EpochMillis) -> Vec<Settled> {
        let mut out: Vec<Settled> = self
            .queued
            .drain(..)
            .chain(self.written.drain().map(|(_, w)| w))
            .map(|w| Settled::Dropped {
                seq: w.seq,
                at_ms: now,
                counted: w.timed_out,
            })
            .collect();
        out.sort_by_key(|s| match s {
            Settled::Dropped { seq, .. } => *seq,
            _ => 0,
        });
        out
    }

    /// Messages waiting for their PUBACK (timed out or not).
    pub fn waiting(&self) -> usize {
        self.queued.len() + self.written.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubacks_match_messages_by_the_packet_id_they_were_written_with() {
        let mut t = PublishTracker::default();
        t.queued(0, 1_000);
        t.queued(1, 2_000);
        t.written(7);
        t.written(8);
        assert_eq!(
            t.acked(8, true, 2_010),
            Some(Settled::Acked {
                seq: 1,
                sent_ms: 2_000,
                at_ms: 2_010
            })
        );
        assert_eq!(t.acked(8, true, 2_020), None, "a PUBACK counts once");
        // Message 0 times out once; its late PUBACK is not counted again.
        assert_eq!(
            t.expire(3_000, 1_500),
            vec![Settled::TimedOut {
                seq: 0,
                at_ms: 3_000
            }]
        );
        assert_eq!(t.expire(4_000, 1_500), vec![]);
        assert_eq!(t.acked(7, true, 4_100), None);
        assert_eq!(t.waiting(), 0);
        // A message queued while the client could not write it times out in the queue, and
        // still takes the next packet id when written.
        t.queued(2, 5_000);
        t.queued(3, 9_000);
        assert_eq!(
            t.expire(7_000, 1_500),
            vec![Settled::TimedOut {
                seq: 2,
                at_ms: 7_000
            }]
        );
        t.written(9);
        t.written(10);
        assert_eq!(t.acked(9, true, 9_001), None);
        assert_eq!(
            t.acked(10, false, 9_002),
            Some(Settled::Dropped {
                seq: 3,
                at_ms: 9_002,
                counted: false
            }),
            "refused by the broker: maybe never published"
        );
    }

    #[test]
    fn a_lost_connection_drops_what_waited_in_order_and_says_what_had_timed_out() {
        let mut t = PublishTracker::default();
        for seq in 0..4 {
            t.queued(seq, seq * 1_000);
        }
        t.written(2);
        t.written(1);
        t.expire(2_500, 1_000);
        assert_eq!(
            t.connection_lost(3_000),
            vec![
                Settled::Dropped {
                    seq: 0,
                    at_ms: 3_000,
                    counted: true
                },
                Settled::Dropped {
                    seq: 1,
                    at_ms: 3_000,
                    counted: true
                },
                Settled::Dropped {
                    seq: 2,
                    at_ms: 3_000,
                    counted: false
                },
                Settled::Dropped {
                    seq: 3,
                    at_ms: 3_000,
                    counted: false
                },
            ]
        );
        assert_eq!(t.waiting(), 0);
    }

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
