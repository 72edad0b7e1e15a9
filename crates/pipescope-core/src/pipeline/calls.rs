//! The phone-call workload: a Poisson number of calls per tick, each lasting an exponentially
//! distributed time. Seeded, so a run is reproducible.

use std::borrow::Cow;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Poisson};
use serde::{Deserialize, Serialize};

use crate::EpochMillis;

/// One call, as the calls topic carries it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    /// Epoch milliseconds.
    pub start: EpochMillis,
    /// Rounded to milliseconds, so totals over it can be kept exactly in integer milliseconds.
    pub duration_s: f64,
    pub region: String,
}

impl CallRecord {
    /// The duration in whole milliseconds.
    pub fn duration_ms(&self) -> u64 {
        duration_ms(self.duration_s)
    }
}

/// A duration in seconds as whole milliseconds (how totals add durations up).
pub fn duration_ms(duration_s: f64) -> u64 {
    (duration_s * 1000.0).round().max(0.0) as u64
}

/// A call record read without copying its text: the fields borrow from the JSON unless they
/// hold escapes. The same fields are required as for [`CallRecord`], and it serialises to the
/// same JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecordRef<'a> {
    #[serde(borrow)]
    pub call_id: Cow<'a, str>,
    #[serde(borrow)]
    pub caller: Cow<'a, str>,
    #[serde(borrow)]
    pub callee: Cow<'a, str>,
    pub start: EpochMillis,
    pub duration_s: f64,
    #[serde(borrow)]
    pub region: Cow<'a, str>,
}

impl CallRecordRef<'_> {
    pub fn to_owned(&self) -> CallRecord {
        CallRecord {
            call_id: self.call_id.clone().into_owned(),
            caller: self.caller.clone().into_owned(),
            callee: self.callee.clone().into_owned(),
            start: self.start,
            duration_s: self.duration_s,
            region: self.region.clone().into_owned(),
        }
    }
}

pub const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];

/// The knobs of the call workload.
#[derive(Debug, Clone, PartialEq)]
pub struct CallWorkload {
    pub calls_per_minute: f64,
    pub mean_duration_s: f64,
    /// Multiplies `calls_per_minute`.
    pub rate: f64,
    pub tick_ms: u64,
    /// How many distinct phone numbers make and receive calls.
    pub subscribers: u32,
    pub seed: u64,
}

/// Why a workload cannot run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadError(pub String);

impl std::fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkloadError {}

#[derive(Debug, Clone)]
pub struct CallGenerator {
    rng: StdRng,
    per_tick: Poisson<f64>,
    duration: Exp<f64>,
    subscribers: u32,
    next_id: u64,
    id_prefix: String,
}

impl CallGenerator {
    /// `id_prefix` makes call ids unique across simulator instances (for example the origin id).
    pub fn new(w: &CallWorkload, id_prefix: &str) -> Result<Self, WorkloadError> {
        let mean = w.calls_per_minute * w.rate * w.tick_ms as f64 / 60_000.0;
        let per_tick = Poisson::new(mean).map_err(|_| {
            WorkloadError(format!(
                "calls per tick must be a positive finite number, got {mean} \
                 (calls per minute {} × rate {} × tick {} ms) — raise --calls-per-minute or --rate",
                w.calls_per_minute, w.rate, w.tick_ms
            ))
        })?;
        let duration = Exp::new(1.0 / w.mean_duration_s)
            .ok()
            .filter(|_| w.mean_duration_s > 0.0 && w.mean_duration_s.is_finite())
            .ok_or_else(|| {
                WorkloadError(format!(
                    "the mean call duration must be more than 0 s, got {}",
                    w.mean_duration_s
                ))
            })?;
        if w.subscribers < 2 {
            return Err(WorkloadError(format!(
                "at least 2 subscribers are needed to make a call, got {}",
                w.subscribers
            )));
        }
        Ok(Self {
            rng: StdRng::seed_from_u64(w.seed),
            per_tick,
            duration,
            subscribers: w.subscribers,
            next_id: 0,
            id_prefix: id_prefix.to_owned(),
        })
    }

    /// The calls that start in the tick beginning at `tick_start`; their start times are spread
    /// over the tick.
    pub fn tick(&mut self, tick_start: EpochMillis, tick_ms: u64) -> Vec<CallRecord> {
        let n = self.calls_in_tick();
        (0..n)
            .map(|_| {
                let draw = self.draw(tick_start, tick_ms);
                draw.to_record(&self.id_prefix)
            })
            .collect()
    }

    /// How many calls the next tick has. With [`CallGenerator::draw`] called that many times,
    /// the same calls as [`CallGenerator::tick`], without making their text.
    pub fn calls_in_tick(&mut self) -> u64 {
        self.per_tick.sample(&mut self.rng) as u64
    }

    /// The next call of a tick (see [`CallGenerator::calls_in_tick`]).
    pub fn draw(&mut self, tick_start: EpochMillis, tick_ms: u64) -> CallDraw {
        let caller = self.rng.random_range(0..self.subscribers);
        let mut callee = self.rng.random_range(0..self.subscribers - 1);
        if callee >= caller {
            callee += 1;
        }
        let duration_s = (self.duration.sample(&mut self.rng) * 1000.0).round() / 1000.0;
        let offset = if tick_ms == 0 {
            0
        } else {
            self.rng.random_range(0..tick_ms)
        };
        let region = REGIONS[self.rng.random_range(0..REGIONS.len())];
        let id = self.next_id;
        self.next_id += 1;
        CallDraw {
            id,
            caller,
            callee,
            start: tick_start + offset,
            duration_s,
            region,
        }
    }

    /// The prefix of the call ids.
    pub fn id_prefix(&self) -> &str {
        &self.id_prefix
    }
}

/// A call as drawn, before its text (id, phone numbers) is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallDraw {
    pub id: u64,
    pub caller: u32,
    pub callee: u32,
    pub start: EpochMillis,
    pub duration_s: f64,
    pub region: &'static str,
}

/// Reused buffers for the text of one call at a time (a simulator sends hundreds of thousands
/// a second: no allocation per call).
#[derive(Debug, Default)]
pub struct CallText {
    call_id: String,
    caller: String,
    callee: String,
}

impl CallDraw {
    pub fn to_record(&self, id_prefix: &str) -> CallRecord {
        CallRecord {
            call_id: format!("{id_prefix}-{}", self.id),
            caller: phone(self.caller),
            callee: phone(self.callee),
            start: self.start,
            duration_s: self.duration_s,
            region: self.region.to_owned(),
        }
    }

    /// The same record as [`CallDraw::to_record`], its text written into `text`.
    pub fn write<'a>(&self, id_prefix: &str, text: &'a mut CallText) -> CallRecordRef<'a> {
        use std::fmt::Write;
        text.call_id.clear();
        text.caller.clear();
        text.callee.clear();
        // Writing into a String cannot fail.
        let _ = write!(text.call_id, "{id_prefix}-{}", self.id);
        let _ = write!(text.caller, "+1555{:07}", self.caller);
        let _ = write!(text.callee, "+1555{:07}", self.callee);
        CallRecordRef {
            call_id: Cow::Borrowed(&text.call_id),
            caller: Cow::Borrowed(&text.caller),
            callee: Cow::Borrowed(&text.callee),
            start: self.start,
            duration_s: self.duration_s,
            region: Cow::Borrowed(self.region),
        }
    }
}

fn phone(n: u32) -> String {
    format!("+1555{n:07}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_calls_written_into_reused_text_are_the_ticks_calls() {
        let w = CallWorkload {
            calls_per_minute: 600_000.0,
            mean_duration_s: 30.0,
            rate: 1.0,
            tick_ms: 100,
            subscribers: 50,
            seed: 9,
        };
        let mut a = CallGenerator::new(&w, "sim").unwrap();
        let mut b = CallGenerator::new(&w, "sim").unwrap();
        let mut text = CallText::default();
        let mut total = 0;
        for tick in 0..5u64 {
            let calls = a.tick(tick * 100, 100);
            assert_eq!(b.calls_in_tick(), calls.len() as u64);
            for call in &calls {
                let drawn = b.draw(tick * 100, 100);
                let written = drawn.write(b.id_prefix(), &mut text);
                assert_eq!(written.to_owned(), *call);
                assert_eq!(
                    serde_json::to_string(&written).unwrap(),
                    serde_json::to_string(call).unwrap()
                );
                total += 1;
            }
        }
        // About 1,000 calls a tick at 600,000 a minute and 100 ms ticks.
        assert!((4_500..5_500).contains(&total), "{total}");
    }

    fn workload(seed: u64) -> CallWorkload {
        CallWorkload {
            calls_per_minute: 600.0,
            mean_duration_s: 30.0,
            rate: 1.0,
            tick_ms: 100,
            subscribers: 1000,
            seed,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_calls() {
        let mut a = CallGenerator::new(&workload(7), "s").unwrap();
        let mut b = CallGenerator::new(&workload(7), "s").unwrap();
        let mut c = CallGenerator::new(&workload(8), "s").unwrap();
        let run = |g: &mut CallGenerator| {
            (0..50)
                .flat_map(|i| g.tick(i * 100, 100))
                .collect::<Vec<_>>()
        };
        let (ra, rb, rc) = (run(&mut a), run(&mut b), run(&mut c));
        assert_eq!(ra, rb);
        assert_ne!(ra, rc);
        assert_eq!(ra[0].call_id, "s-0");
    }

    #[test]
    fn counts_and_durations_have_the_configured_means() {
        // 600/min at 100 ms ticks = mean 1 call per tick; 20,000 ticks → about 20,000 calls.
        let mut g = CallGenerator::new(&workload(1), "s").unwrap();
        let calls: Vec<_> = (0..20_000).flat_map(|i| g.tick(i * 100, 100)).collect();
        let n = calls.len() as f64;
        assert!((n - 20_000.0).abs() < 20_000.0 * 0.03, "{n} calls");
        let mean = calls.iter().map(|c| c.duration_s).sum::<f64>() / n;
        assert!((mean - 30.0).abs() < 30.0 * 0.03, "mean duration {mean}");
        // Exponential: about e^-2 = 13.5 % of calls last more than twice the mean.
        let long = calls.iter().filter(|c| c.duration_s > 60.0).count() as f64 / n;
        assert!((long - (-2f64).exp()).abs() < 0.01, "{long}");
        for c in &calls {
            assert_ne!(c.caller, c.callee);
            assert_eq!(c.duration_ms() as f64, (c.duration_s * 1000.0).round());
        }
    }

    #[test]
    fn rate_multiplies_the_load() {
        let mut w = workload(3);
        w.rate = 3.0;
        let mut g = CallGenerator::new(&w, "s").unwrap();
        let n: usize = (0..10_000).map(|i| g.tick(i * 100, 100).len()).sum();
        assert!((n as f64 - 30_000.0).abs() < 30_000.0 * 0.03, "{n}");
    }

    #[test]
    fn calls_start_inside_their_tick() {
        let mut g = CallGenerator::new(&workload(2), "s").unwrap();
        for i in 0..1000 {
            for c in g.tick(1_000_000 + i * 100, 100) {
                assert!((1_000_000 + i * 100..1_000_000 + (i + 1) * 100).contains(&c.start));
            }
        }
    }

    #[test]
    fn impossible_workloads_are_refused_with_the_reason() {
        let mut w = workload(1);
        w.rate = 0.0;
        assert!(
            CallGenerator::new(&w, "s")
                .unwrap_err()
                .0
                .contains("calls per tick")
        );
        let mut w = workload(1);
        w.mean_duration_s = 0.0;
        assert!(
            CallGenerator::new(&w, "s")
                .unwrap_err()
                .0
                .contains("mean call duration")
        );
        let mut w = workload(1);
        w.subscribers = 1;
        assert!(
            CallGenerator::new(&w, "s")
                .unwrap_err()
                .0
                .contains("2 subscribers")
        );
    }

    #[test]
    fn records_round_trip_as_json() {
        let c = CallRecord {
            call_id: "s-1".into(),
            caller: "+15550000001".into(),
            callee: "+15550000002".into(),
            start: 1_700_000_000_000,
            duration_s: 61.5,
            region: "north".into(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"call_id":"s-1","caller":"+15550000001","callee":"+15550000002","start":1700000000000,"duration_s":61.5,"region":"north"}"#
        );
        assert_eq!(serde_json::from_str::<CallRecord>(&json).unwrap(), c);
        let borrowed: CallRecordRef<'_> = serde_json::from_str(&json).unwrap();
        assert!(matches!(borrowed.caller, Cow::Borrowed("+15550000001")));
        assert_eq!(borrowed.to_owned(), c);
        assert_eq!(serde_json::to_string(&borrowed).unwrap(), json);
        let escaped = json.replace("north", "nor\\u0074h");
        let borrowed: CallRecordRef<'_> = serde_json::from_str(&escaped).unwrap();
        assert!(matches!(borrowed.region, Cow::Owned(_)));
        assert_eq!(borrowed.to_owned(), c);
        let missing = json.replace(r#","region":"north""#, "");
        assert!(serde_json::from_str::<CallRecordRef<'_>>(&missing).is_err());
    }
}
