//! Event-time tumbling windows that merge a machine's sensors into one record per window.
//!
//! The watermark is the highest event time seen. A window `[start, start + size)` closes when
//! the watermark reaches `start + size + allowed_lateness`; a reading whose window has closed
//! is late: counted and dropped. Closing depends only on event times, never on the wall clock,
//! so the same input gives the same windows.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

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
}

/// Whether a reading was taken into a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Accepted,
    Late,
}

#[derive(Debug)]
pub struct Windower {
    size_ms: u64,
    lateness_ms: u64,
    watermark: Option<EpochMillis>,
    /// (window start, line, machine) → accumulators.
    open: BTreeMap<(EpochMillis, String, String), Open>,
    late: u64,
    next_offset: HashMap<i32, i64>,
}

impl Windower {
    /// `size_ms` must be more than 0.
    pub fn new(size_ms: u64, lateness_ms: u64) -> Self {
        assert!(size_ms > 0, "a window lasts more than 0 ms");
        Self {
            size_ms,
            lateness_ms,
            watermark: None,
            open: BTreeMap::new(),
            late: 0,
            next_offset: HashMap::new(),
        }
    }

    pub fn window_start(&self, ts: EpochMillis) -> EpochMillis {
        ts - ts % self.size_ms
    }

    fn closed(&self, start: EpochMillis) -> bool {
        self.watermark
            .is_some_and(|wm| wm >= start + self.size_ms + self.lateness_ms)
    }

    /// Takes a reading read from `partition` at `offset`.
    pub fn push(&mut self, r: &SensorReading, partition: i32, offset: i64) -> Pushed {
        let next = self.next_offset.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        self.watermark = Some(self.watermark.map_or(r.ts, |wm| wm.max(r.ts)));
        let start = self.window_start(r.ts);
        if self.closed(start) {
            self.late += 1;
            return Pushed::Late;
        }
        let open = self
            .open
            .entry((start, r.line.clone(), r.machine.clone()))
            .or_default();
        open.min_offset
            .entry(partition)
            .and_modify(|o| *o = (*o).min(offset))
            .or_insert(offset);
        open.sensors
            .entry(r.sensor.clone())
            .and_modify(|a| {
                a.count += 1;
                a.min = a.min.min(r.value);
                a.max = a.max.max(r.value);
                a.sum += r.value;
            })
            .or_insert(Acc {
                count: 1,
                min: r.value,
                max: r.value,
                sum: r.value,
            });
        Pushed::Accepted
    }

    /// Readings dropped as late since start.
    pub fn late(&self) -> u64 {
        self.late
    }

    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// The windows the watermark has closed, oldest first, removed from the open set.
    pub fn drain_closed(&mut self) -> Vec<MachineWindow> {
        let closed: Vec<_> = self
            .open
            .keys()
            .take_while(|(start, _, _)| self.closed(*start))
            .cloned()
            .collect();
        closed.into_iter().map(|k| self.emit(k)).collect()
    }

    /// Every open window, closed or not (at shutdown).
    pub fn drain_all(&mut self) -> Vec<MachineWindow> {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        keys.into_iter().map(|k| self.emit(k)).collect()
    }

    fn emit(&mut self, key: (EpochMillis, String, String)) -> MachineWindow {
        let open = self.open.remove(&key).unwrap_or_default();
        let (start, line, machine) = key;
        MachineWindow {
            line,
            machine,
            window_start: start,
            window_end: start + self.size_ms,
            count: open.sensors.values().map(|a| a.count).sum(),
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

    /// Forgets a partition that moved to another instance: its open windows are dropped (the
    /// new owner reads their records again from the committed offset). A machine's readings
    /// all come from one partition (they are keyed by machine), so no other window loses data.
    pub fn drop_partition(&mut self, partition: i32) {
        self.open
            .retain(|_, open| !open.min_offset.contains_key(&partition));
        self.next_offset.remove(&partition);
    }

    /// Per partition, the offset that is safe to commit: every record below it is in an
    /// emitted window (or was late). Open windows hold their records' offsets back.
    pub fn safe_offsets(&self) -> HashMap<i32, i64> {
        let mut safe = self.next_offset.clone();
        for open in self.open.values() {
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
