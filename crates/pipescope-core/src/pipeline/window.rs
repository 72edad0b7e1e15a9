//! Event-time tumbling windows that merge a machine's sensors into one record per window.
//!
//! Each input partition has its own watermark, the highest event time read from it; the
//! windower's watermark is the lowest of them (it never goes back). A window
//! `[start, start + size)` closes when the watermark reaches `start + size + allowed_lateness`;
//! a reading whose window has closed is late: counted and dropped. A partition read in
//! event-time order therefore never makes another one's readings late, however the consumer
//! interleaves them (librdkafka hands them over in runs of tens of thousands). A partition that
//! gave nothing for [`IDLE_PARTITION_MS`] of wall time (injected clock) no longer holds the
//! watermark back, so a partition without new data does not keep every window open.
//!
//! A reading stamped further ahead of the clock than [`MAX_AHEAD_MS`] (a producer's broken
//! clock, a corrupt timestamp) is refused as "from the future" and counted: taken, it would
//! move the watermark for good and make every later reading late. Time arithmetic saturates,
//! so timestamps up to `u64::MAX` do not overflow: a window whose end lies past `u64::MAX`
//! never closes by the watermark (only [`Windower::drain_all`] emits it).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lineage::{InputRef, Inputs};
use crate::{Clock, EpochMillis, SystemClock};

/// Wall time after which a partition that gave no reading stops holding the watermark back.
pub const IDLE_PARTITION_MS: u64 = 5_000;

/// How far ahead of the clock a reading's event time may be before it is refused (1 h).
pub const MAX_AHEAD_MS: u64 = 3_600_000;

/// One input partition's progress.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Highest event time read from it; None while assigned but not read yet.
    max_ts: Option<EpochMillis>,
    /// Wall time of its last reading.
    seen: EpochMillis,
}

/// One sensor state, as the machines simulator publishes it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    pub line: String,
    pub machine: String,
    pub sensor: String,
    pub value: f64,
    /// Event time, epoch milliseconds.
    pub ts: EpochMillis,
}

/// A sensor reading read without copying its names: they borrow from the JSON unless they hold
/// escapes. The same fields are required as for [`SensorReading`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SensorReadingRef<'a> {
    #[serde(borrow)]
    pub line: Cow<'a, str>,
    #[serde(borrow)]
    pub machine: Cow<'a, str>,
    #[serde(borrow)]
    pub sensor: Cow<'a, str>,
    pub value: f64,
    pub ts: EpochMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensorStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// One machine's window, as `machine.out` carries it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineWindow {
    pub line: String,
    pub machine: String,
    pub window_start: EpochMillis,
    pub window_end: EpochMillis,
    pub count: u64,
    pub sensors: BTreeMap<String, SensorStats>,
    /// The traced readings the window took in: not in the payload, but in the output record's
    /// `pipescope-inputs` header.
    #[serde(skip)]
    pub inputs: Inputs,
}

#[derive(Debug, Clone, Copy)]
struct Acc {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Open {
    sensors: BTreeMap<String, Acc>,
    /// Smallest input offset per partition that fed this window (for safe commits).
    min_offset: HashMap<i32, i64>,
    inputs: Inputs,
}

/// Whether a reading was taken into a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Accepted,
    Late,
    /// Stamped more than the allowed time ahead of the clock: dropped, the watermark unmoved.
    Future,
}

#[derive(Debug)]
pub struct Windower {
    size_ms: u64,
    lateness_ms: u64,
    watermark: Option<EpochMillis>,
    marks: HashMap<i32, Mark>,
    clock: Arc<dyn Clock>,
    /// window start → line → machine → accumulators. Nested, not keyed by a tuple, so that a
    /// reading finds its window by borrowed names (no copies per record); the order is the
    /// same as (start, line, machine).
    open: BTreeMap<EpochMillis, BTreeMap<String, BTreeMap<String, Open>>>,
    open_count: usize,
    late: u64,
    future: u64,
    max_ahead_ms: u64,
    next_offset: HashMap<i32, i64>,
}

impl Windower {
    /// `size_ms` must be more than 0. Idle partitions are told by the system clock.
    pub fn new(size_ms: u64, lateness_ms: u64) -> Self {
        Self::with_clock(size_ms, lateness_ms, Arc::new(SystemClock))
    }

    pub fn with_clock(size_ms: u64, lateness_ms: u64, clock: Arc<dyn Clock>) -> Self {
        assert!(size_ms > 0, "a window lasts more than 0 ms");
        Self {
            size_ms,
            lateness_ms,
            watermark: None,
            marks: HashMap::new(),
            clock,
            open: BTreeMap::new(),
            open_count: 0,
            late: 0,
            future: 0,
            max_ahead_ms: MAX_AHEAD_MS,
            next_offset: HashMap::new(),
        }
    }

    /// Readings stamped more than `max_ahead_ms` after the clock are refused (default
    /// [`MAX_AHEAD_MS`]).
    pub fn with_max_ahead(mut self, max_ahead_ms: u64) -> Self {
        self.max_ahead_ms = max_ahead_ms;
        self
    }

    pub fn window_start(&self, ts: EpochMillis) -> EpochMillis {
        ts - ts % self.size_ms
    }

    /// A window ending past `u64::MAX` never closes by the watermark.
    fn closed(&self, start: EpochMillis) -> bool {
        let closes_at = start
            .checked_add(self.size_ms)
            .and_then(|end| end.checked_add(self.lateness_ms));
        self.watermark
            .zip(closes_at)
            .is_some_and(|(wm, at)| wm >= at)
    }

    /// Takes a reading read from `partition` at `offset`.
    pub fn push(&mut self, r: &SensorReading, partition: i32, offset: i64) -> Pushed {
        self.push_fields(
            &r.line, &r.machine, &r.sensor, r.value, r.ts, partition, offset, None,
        )
    }

    /// [`Windower::push`] for a reading read without copying its names.
    pub fn push_ref(&mut self, r: &SensorReadingRef<'_>, partition: i32, offset: i64) -> Pushed {
        self.push_traced(r, partition, offset, None)
    }

    /// [`Windower::push_ref`] for a reading whose record carried a trace: the window it goes
    /// into names it among its inputs.
    pub fn push_traced(
        &mut self,
        r: &SensorReadingRef<'_>,
        partition: i32,
        offset: i64,
        input: Option<InputRef<'_>>,
    ) -> Pushed {
        self.push_fields(
            &r.line, &r.machine, &r.sensor, r.value, r.ts, partition, offset, input,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn push_fields(
        &mut self,
        line: &str,
        machine: &str,
        sensor: &str,
        value: f64,
        ts: EpochMillis,
        partition: i32,
        offset: i64,
        input: Option<InputRef<'_>>,
    ) -> Pushed {
        // Refused readings too: their offsets are done with.
        let after = offset.saturating_add(1);
        let next = self.next_offset.entry(partition).or_insert(after);
        *next = (*next).max(after);
        let now = self.clock.now_millis();
        if ts > now.saturating_add(self.max_ahead_ms) {
            self.future += 1;
            return Pushed::Future;
        }
        let mark = self.marks.entry(partition).or_insert(Mark {
            max_ts: None,
            seen: now,
        });
        mark.max_ts = Some(mark.max_ts.map_or(ts, |m| m.max(ts)));
        mark.seen = now;
        self.advance_watermark(now);
        let start = self.window_start(ts);
        if self.closed(start) {
            self.late += 1;
            return Pushed::Late;
        }
        let lines = self.open.entry(start).or_default();
        // Look up by &str first: the names are copied only when a window opens.
        if !lines.contains_key(line) {
            lines.insert(line.to_owned(), BTreeMap::new());
        }
        let machines = lines.get_mut(line).expect("just inserted");
        if !machines.contains_key(machine) {
            machines.insert(machine.to_owned(), Open::default());
            self.open_count += 1;
        }
        let open = machines.get_mut(machine).expect("just inserted");
        open.min_offset
            .entry(partition)
            .and_modify(|o| *o = (*o).min(offset))
            .or_insert(offset);
        if let Some(i) = input {
            open.inputs.add(i.origin, i.stream, i.seq, i.ts);
        }
        match open.sensors.get_mut(sensor) {
            Some(a) => {
                a.count += 1;
                a.min = a.min.min(value);
                a.max = a.max.max(value);
                a.sum += value;
            }
            None => {
                open.sensors.insert(
                    sensor.to_owned(),
                    Acc {
                        count: 1,
                        min: value,
                        max: value,
                        sum: value,
                    },
                );
            }
        }
        Pushed::Accepted
    }

    /// The lowest watermark of the partitions not idle (of all when every one is idle); the
    /// watermark only moves forward. Evaluated at each reading (no reading, no new windows).
    fn advance_watermark(&mut self, now: EpochMillis) {
        let mut active = self
            .marks
            .values()
            .filter(|m| now.saturating_sub(m.seen) < IDLE_PARTITION_MS)
            .peekable();
        let candidate = if active.peek().is_some() {
            // An assigned partition not read yet (None) holds the watermark where it is.
            active.map(|m| m.max_ts).min().flatten()
        } else {
            self.marks.values().filter_map(|m| m.max_ts).max()
        };
        if let Some(c) = candidate {
            self.watermark = Some(self.watermark.map_or(c, |wm| wm.max(c)));
        }
    }

    /// A partition assigned to this instance: until its first reading (or until it is idle for
    /// [`IDLE_PARTITION_MS`]) it holds the watermark back, so that the partitions read first
    /// do not make its readings late.
    pub fn assign(&mut self, partition: i32) {
        let now = self.clock.now_millis();
        self.marks.entry(partition).or_insert(Mark {
            max_ts: None,
            seen: now,
        });
    }

    /// The event time up to which windows are complete, if any reading came yet.
    pub fn watermark(&self) -> Option<EpochMillis> {
        self.watermark
    }

    /// Readings dropped as late since start.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Readings refused as from the future since start.
    pub fn future(&self) -> u64 {
        self.future
    }

    pub fn open_windows(&self) -> usize {
        self.open_count
    }

    /// The windows the watermark has closed, oldest first, removed from the open set.
    pub fn drain_closed(&mut self) -> Vec<MachineWindow> {
        let mut out = Vec::new();
        while let Some(start) = self.open.keys().next().copied() {
            if !self.closed(start) {
                break;
            }
            let lines = self.open.remove(&start).unwrap_or_default();
            self.emit_start(start, lines, &mut out);
        }
        out
    }

    /// Every open window, closed or not (at shutdown).
    pub fn drain_all(&mut self) -> Vec<MachineWindow> {
        let mut out = Vec::new();
        for (start, lines) in std::mem::take(&mut self.open) {
            self.emit_start(start, lines, &mut out);
        }
        out
    }

    fn emit_start(
        &mut self,
        start: EpochMillis,
        lines: BTreeMap<String, BTreeMap<String, Open>>,
        out: &mut Vec<MachineWindow>,
    ) {
        for (line, machines) in lines {
            for (machine, open) in machines {
                self.open_count -= 1;
                out.push(self.emit(start, line.clone(), machine, open));
            }
        }
    }

    fn emit(&self, start: EpochMillis, line: String, machine: String, open: Open) -> MachineWindow {
        MachineWindow {
            line,
            machine,
            window_start: start,
            window_end: start.saturating_add(self.size_ms),
            count: open.sensors.values().map(|a| a.count).sum(),
            inputs: open.inputs,
            sensors: open
                .sensors
                .into_iter()
                .map(|(name, a)| {
                    (
                        name,
                        SensorStats {
                            count: a.count,
                            min: a.min,
                            max: a.max,
                            mean: a.sum / a.count as f64,
                        },
                    )
                })
                .collect(),
        }
    }

    fn open_values(&self) -> impl Iterator<Item = &Open> {
        self.open
            .values()
            .flat_map(|lines| lines.values())
            .flat_map(|machines| machines.values())
    }

    /// Forgets a partition that moved to another instance: its open windows are dropped (the
    /// new owner reads their records again from the committed offset). A machine's readings
    /// all come from one partition (they are keyed by machine), so no other window loses data.
    pub fn drop_partition(&mut self, partition: i32) {
        let mut dropped = 0;
        for lines in self.open.values_mut() {
            for machines in lines.values_mut() {
                machines.retain(|_, open| {
                    let keep = !open.min_offset.contains_key(&partition);
                    dropped += usize::from(!keep);
                    keep
                });
            }
            lines.retain(|_, machines| !machines.is_empty());
        }
        self.open.retain(|_, lines| !lines.is_empty());
        self.open_count -= dropped;
        self.next_offset.remove(&partition);
        self.marks.remove(&partition);
    }

    /// Per partition, the offset that is safe to commit: every record below it is in an
    /// emitted window (or was late). Open windows hold their records' offsets back.
    pub fn safe_offsets(&self) -> HashMap<i32, i64> {
        let mut safe = self.next_offset.clone();
        for open in self.open_values() {
            for (p, o) in &open.min_offset {
                if let Some(s) = safe.get_mut(p) {
                    *s = (*s).min(*o);
                }
            }
        }
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_holds_the_watermark_back_until_it_is_idle() {
        use crate::ManualClock;
        let clock = ManualClock::at(1_000_000);
        let mut w = Windower::with_clock(10_000, 0, Arc::new(clock.clone()));
        // Partition 0 runs 30 s of event time ahead before partition 1 is read (as librdkafka
        // hands over partitions in runs): nothing of partition 1 is late, as it was assigned.
        w.assign(0);
        w.assign(1);
        for (i, ts) in [1_000, 5_000, 15_000, 25_000, 31_000]
            .into_iter()
            .enumerate()
        {
            w.push(&r("a", "s", 1.0, ts), 0, i as i64);
        }
        assert_eq!(w.watermark(), None);
        assert!(w.drain_closed().is_empty());
        w.push(&r("b", "s", 1.0, 1_000), 1, 0);
        assert_eq!(w.watermark(), Some(1_000));
        assert!(w.drain_closed().is_empty());
        assert_eq!(w.push(&r("b", "s", 2.0, 2_000), 1, 1), Pushed::Accepted);
        assert_eq!(w.push(&r("b", "s", 3.0, 12_000), 1, 2), Pushed::Accepted);
        // Watermark min(31 s, 12 s): [0, 10 s) of both machines closes, not [10 s, 20 s).
        assert_eq!(w.watermark(), Some(12_000));
        let closed = w.drain_closed();
        assert_eq!(
            closed
                .iter()
                .map(|c| (c.machine.as_str(), c.window_start, c.count))
                .collect::<Vec<_>>(),
            [("a", 0, 2), ("b", 0, 2)]
        );
        assert_eq!(w.late(), 0);
        // Partition 1 gives nothing for the idle time: partition 0 alone moves the watermark.
        clock.advance(std::time::Duration::from_millis(IDLE_PARTITION_MS - 1));
        assert_eq!(w.drain_closed().len(), 0);
        clock.advance(std::time::Duration::from_millis(1));
        w.push(&r("a", "s", 1.0, 32_000), 0, 5);
        assert_eq!(w.watermark(), Some(32_000));
        let closed = w.drain_closed();
        assert_eq!(
            closed
                .iter()
                .map(|c| (c.machine.as_str(), c.window_start))
                .collect::<Vec<_>>(),
            [("a", 10_000), ("b", 10_000), ("a", 20_000)]
        );
        // Partition 1 back with an old reading: late now; the watermark does not go back.
        assert_eq!(w.push(&r("b", "s", 4.0, 13_000), 1, 3), Pushed::Late);
        assert_eq!(w.watermark(), Some(32_000));
        // A dropped partition no longer counts.
        w.drop_partition(1);
        assert_eq!(w.marks.len(), 1);
    }

    #[test]
    fn borrowed_readings_make_the_same_windows_and_the_open_count_follows() {
        let json = |machine: &str, sensor: &str, value: f64, ts: u64| {
            format!(
                r#"{{"line":"l1","machine":"{machine}","sensor":"{sensor}","value":{value},"ts":{ts}}}"#
            )
        };
        let input = [
            json("m1", "temp", 20.0, 1_000),
            json("m1", "rpm", 1500.0, 2_000),
            json("m2", "temp", 30.0, 3_000),
            json("m1", "temp", 24.0, 9_000),
            json("m1", "temp", 25.0, 11_000),
        ];
        let mut owned = Windower::new(10_000, 0);
        let mut borrowed = Windower::new(10_000, 0);
        for (offset, text) in input.iter().enumerate() {
            let r: SensorReading = serde_json::from_str(text).unwrap();
            let b: SensorReadingRef<'_> = serde_json::from_str(text).unwrap();
            assert!(matches!(b.machine, Cow::Borrowed(_)));
            assert_eq!(
                owned.push(&r, 0, offset as i64),
                borrowed.push_ref(&b, 0, offset as i64)
            );
        }
        // [0, 10,000) for m1 and m2, and [10,000, 20,000) for m1.
        assert_eq!(borrowed.open_windows(), 3);
        assert_eq!(borrowed.safe_offsets()[&0], 0);
        let closed = borrowed.drain_closed();
        assert_eq!(closed, owned.drain_closed());
        assert_eq!(
            closed
                .iter()
                .map(|w| (w.machine.as_str(), w.count))
                .collect::<Vec<_>>(),
            [("m1", 3), ("m2", 1)]
        );
        assert_eq!(closed[0].sensors["temp"].mean, 22.0);
        assert_eq!(borrowed.open_windows(), 1);
        assert_eq!(borrowed.safe_offsets()[&0], 4);
        borrowed.drop_partition(0);
        assert_eq!(borrowed.open_windows(), 0);
        assert!(borrowed.drain_all().is_empty());
        assert_eq!(owned.drain_all().len(), 1);
        assert_eq!(owned.open_windows(), 0);
    }

    fn r(machine: &str, sensor: &str, value: f64, ts: EpochMillis) -> SensorReading {
        SensorReading {
            line: "l1".into(),
            machine: machine.into(),
            sensor: sensor.into(),
            value,
            ts,
        }
    }

    #[test]
    fn a_window_names_the_traced_readings_it_took_in_and_not_the_late_ones() {
        let mut w = Windower::new(10_000, 0);
        let traced = |seq: u64| {
            Some(InputRef {
                origin: "sim-1",
                stream: "machine/l1/a",
                seq,
                ts: 1_000 + seq,
            })
        };
        for seq in 0..5u64 {
            let reading = r("a", "s", 1.0, 1_000 + seq);
            let reading = SensorReadingRef {
                line: reading.line.as_str().into(),
                machine: reading.machine.as_str().into(),
                sensor: reading.sensor.as_str().into(),
                value: reading.value,
                ts: reading.ts,
            };
            assert_eq!(
                w.push_traced(&reading, 0, seq as i64, traced(seq)),
                Pushed::Accepted
            );
        }
        w.push(&r("a", "s", 1.0, 12_000), 0, 5);
        let late = SensorReadingRef {
            line: "l1".into(),
            machine: "a".into(),
            sensor: "s".into(),
            value: 1.0,
            ts: 2_000,
        };
        assert_eq!(w.push_traced(&late, 0, 6, traced(6)), Pushed::Late);
        let closed = w.drain_closed();
        assert_eq!(closed.len(), 1);
        assert_eq!(
            closed[0].inputs.encode(),
            r#"[["sim-1","machine/l1/a",[[0,4,1000]]]]"#
        );
        // Not in the payload.
        let payload = serde_json::to_string(&closed[0]).unwrap();
        assert!(!payload.contains("inputs"), "{payload}");
    }

    #[test]
    fn windows_merge_sensors_per_machine_and_close_by_event_time() {
        let mut w = Windower::new(10_000, 2_000);
        let mut offset = 0;
        let mut push = |w: &mut Windower, reading: SensorReading| {
            offset += 1;
            w.push(&reading, 0, offset - 1)
        };
        assert_eq!(push(&mut w, r("m1", "temp", 20.0, 1_000)), Pushed::Accepted);
        assert_eq!(push(&mut w, r("m1", "temp", 22.0, 9_999)), Pushed::Accepted);
        assert_eq!(
            push(&mut w, r("m1", "rpm", 1500.0, 5_000)),
            Pushed::Accepted
        );
        assert_eq!(push(&mut w, r("m2", "temp", 30.0, 3_000)), Pushed::Accepted);
        // Next window; watermark 11,000 < 10,000 + 2,000: the first window stays open.
        assert_eq!(
            push(&mut w, r("m1", "temp", 25.0, 11_000)),
            Pushed::Accepted
        );
        assert!(w.drain_closed().is_empty());
        // Within lateness: still accepted into [0, 10,000).
        assert_eq!(push(&mut w, r("m1", "temp", 18.0, 9_000)), Pushed::Accepted);
        assert_eq!(w.safe_offsets()[&0], 0);
        // Watermark 12,000 closes [0, 10,000).
        assert_eq!(
            push(&mut w, r("m2", "temp", 31.0, 12_000)),
            Pushed::Accepted
        );
        let closed = w.drain_closed();
        assert_eq!(closed.len(), 2);
        let m1 = &closed[0];
        assert_eq!(
            (m1.machine.as_str(), m1.window_start, m1.window_end),
            ("m1", 0, 10_000)
        );
        assert_eq!(m1.count, 4);
        assert_eq!(
            m1.sensors["temp"],
            SensorStats {
                count: 3,
                min: 18.0,
                max: 22.0,
                mean: 20.0
            }
        );
        assert_eq!(
            m1.sensors["rpm"],
            SensorStats {
                count: 1,
                min: 1500.0,
                max: 1500.0,
                mean: 1500.0
            }
        );
        assert_eq!(closed[1].machine, "m2");
        assert_eq!(closed[1].sensors["temp"].count, 1);
        // Too late now.
        assert_eq!(push(&mut w, r("m1", "temp", 99.0, 9_500)), Pushed::Late);
        assert_eq!(w.late(), 1);
        // Offsets 4 (m1 @ 11,000) and 6 (m2 @ 12,000) are in open windows: commit up to 4.
        assert_eq!(w.safe_offsets()[&0], 4);
        let rest = w.drain_all();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].window_start, 10_000);
        assert_eq!(w.safe_offsets()[&0], 8);
        assert_eq!(w.open_windows(), 0);
    }

    #[test]
    fn a_reading_from_the_far_future_does_not_move_the_watermark() {
        use crate::ManualClock;
        let now = 1_700_000_000_000;
        let clock = ManualClock::at(now);
        let mut w = Windower::with_clock(10_000, 0, Arc::new(clock.clone()));
        assert_eq!(w.push(&r("m", "s", 1.0, now), 0, 0), Pushed::Accepted);
        let far = now + 365 * 24 * 3_600_000;
        assert_ne!(w.push(&r("m", "s", 2.0, far), 0, 1), Pushed::Accepted);
        assert_eq!(w.watermark(), Some(now));
        // the readings after it still land, and the offsets move past it
        assert_eq!(
            w.push(&r("m", "s", 3.0, now + 1_000), 0, 2),
            Pushed::Accepted
        );
        assert_eq!(
            w.push(&r("m", "s", 4.0, now + 10_000), 0, 3),
            Pushed::Accepted
        );
        assert_eq!(w.drain_closed().len(), 1);
        assert_eq!(w.safe_offsets()[&0], 3);
        assert_eq!((w.late(), w.future()), (0, 1));
        // the bound is inclusive, and a smaller one can be set
        let mut w = Windower::with_clock(10_000, 0, Arc::new(clock.clone())).with_max_ahead(0);
        assert_eq!(w.push(&r("m", "s", 1.0, now), 0, 0), Pushed::Accepted);
        assert_eq!(w.push(&r("m", "s", 1.0, now + 1), 0, 1), Pushed::Future);
        let mut w = Windower::with_clock(10_000, 0, Arc::new(clock));
        let edge = now + MAX_AHEAD_MS;
        assert_eq!(w.push(&r("m", "s", 1.0, edge), 0, 0), Pushed::Accepted);
        assert_eq!(w.push(&r("m", "s", 1.0, edge + 1), 0, 1), Pushed::Future);
    }

    #[test]
    fn readings_at_the_ends_of_time_neither_overflow_nor_panic() {
        use crate::ManualClock;
        for lateness in [0, 1, u64::MAX] {
            let clock = ManualClock::at(u64::MAX);
            let mut w = Windower::with_clock(10_000, lateness, Arc::new(clock.clone()));
            w.assign(0);
            w.assign(1);
            assert_eq!(
                w.push(&r("m", "s", 1.0, u64::MAX), 0, i64::MAX),
                Pushed::Accepted
            );
            assert_eq!(w.push(&r("m", "s", 1.0, 0), 1, 0), Pushed::Accepted);
            // the window holding u64::MAX ends past the range: only a drain at the end emits it
            assert_eq!(w.drain_closed().len(), 0);
            let all = w.drain_all();
            assert_eq!(all.len(), 2);
            assert_eq!(all[1].window_end, u64::MAX);
            assert_eq!(w.safe_offsets()[&0], i64::MAX);

            let clock = ManualClock::at(0);
            let mut w = Windower::with_clock(1, lateness, Arc::new(clock.clone()));
            assert_eq!(w.push(&r("m", "s", 1.0, 0), 0, 0), Pushed::Accepted);
            assert_eq!(w.push(&r("m", "s", 1.0, u64::MAX), 0, 1), Pushed::Future);
            assert_eq!(w.watermark(), Some(0));
            assert_eq!(w.future(), 1);
        }
    }

    #[test]
    fn dropping_a_partition_drops_its_windows_only() {
        let mut w = Windower::new(1_000, 0);
        w.push(&r("a", "s", 1.0, 10), 0, 5);
        w.push(&r("b", "s", 1.0, 10), 1, 7);
        w.drop_partition(0);
        assert_eq!(w.open_windows(), 1);
        assert_eq!(w.safe_offsets().get(&0), None);
        assert_eq!(w.safe_offsets()[&1], 7);
    }

    #[test]
    fn zero_lateness_closes_at_the_window_end() {
        let mut w = Windower::new(1_000, 0);
        w.push(&r("m", "s", 1.0, 999), 3, 10);
        assert!(w.drain_closed().is_empty());
        w.push(&r("m", "s", 2.0, 1_000), 3, 11);
        assert_eq!(w.drain_closed().len(), 1);
        assert_eq!(w.push(&r("m", "s", 3.0, 0), 3, 12), Pushed::Late);
        assert_eq!(w.safe_offsets()[&3], 11);
    }
}
