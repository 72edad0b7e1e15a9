//! Counts per 10-second bucket of arrival time, for the 1, 5 and 15 minute windows, and the
//! bounded table of origin kinds every hop and edge splits its figures by.

use std::collections::HashMap;

use crate::EpochMillis;
use crate::windows::{Window, WindowCount, covered_ms};

use super::{FOLDED_KIND, origin_kind};

const BUCKET_MS: u64 = 10_000;
const BUCKETS: usize = (Window::LONGEST.millis() / BUCKET_MS) as usize + 1;

/// `F` counters per 10-second bucket over the last 15 minutes. A window's count is the sum of
/// its complete buckets: it ends at the last 10-second boundary, so it lags by less than 10 s
/// and always spans exactly the window (or since the start).
#[derive(Debug, Clone)]
pub struct BucketRing<const F: usize> {
    buckets: Box<[[u64; F]; BUCKETS]>,
    current: u64,
}

impl<const F: usize> Default for BucketRing<F> {
    fn default() -> Self {
        Self {
            buckets: Box::new([[0; F]; BUCKETS]),
            current: 0,
        }
    }
}

impl<const F: usize> BucketRing<F> {
    /// Adds `n` to counter `field` at time `now` (times before the current bucket count in it).
    #[inline]
    pub fn add(&mut self, field: usize, n: u64, now: EpochMillis) {
        self.rotate(now);
        let slot = &mut self.buckets[(self.current % BUCKETS as u64) as usize][field];
        // A hostile sequence jump can claim 2^64 lost numbers: saturate, never wrap.
        *slot = slot.saturating_add(n);
    }

    #[inline]
    pub fn rotate(&mut self, now: EpochMillis) {
        let bucket = now / BUCKET_MS;
        if bucket <= self.current {
            return;
        }
        let from = bucket
            .saturating_sub(BUCKETS as u64 - 1)
            .max(self.current + 1);
        for b in from..=bucket {
            self.buckets[(b % BUCKETS as u64) as usize] = [0; F];
        }
        self.current = bucket;
    }

    /// Counter `field` over `window`, as seen at `now`, watching since `since_ms`.
    pub fn window(
        &self,
        field: usize,
        window: Window,
        now: EpochMillis,
        since_ms: EpochMillis,
    ) -> WindowCount {
        let end_bucket = now / BUCKET_MS;
        let n = window.millis() / BUCKET_MS;
        let sum: u64 = (end_bucket.saturating_sub(n)..end_bucket)
            .filter(|b| *b <= self.current && b + (BUCKETS as u64) > self.current)
            .map(|b| self.buckets[(b % BUCKETS as u64) as usize][field])
            .fold(0u64, u64::saturating_add);
        WindowCount::new(
            window,
            sum as f64,
            covered_ms(window, end_bucket * BUCKET_MS, since_ms),
        )
    }
}

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Accumulators per origin kind, at most `max` kinds; origins of further kinds share the
/// [`FOLDED_KIND`] one.
#[derive(Debug, Clone)]
pub struct Kinds<A> {
    index: Map<Box<str>, usize>,
    entries: Vec<(Box<str>, A)>,
    max: usize,
    prefixes: Vec<String>,
}

impl<A: Default> Kinds<A> {
    pub fn new(max: usize, prefixes: Vec<String>) -> Self {
        Self {
            index: Map::default(),
            entries: Vec::new(),
            max: max.max(1),
            prefixes,
        }
    }

    /// The slot of `origin`'s kind, created if there is room.
    pub fn slot_of(&mut self, origin: &str) -> usize {
        let kind = origin_kind(origin, &self.prefixes);
        if let Some(&i) = self.index.get(kind) {
            return i;
        }
        let kind = if self.entries.len() + 1 < self.max {
            kind
        } else {
            // The last slot is kept for the fold.
            FOLDED_KIND
        };
        if let Some(&i) = self.index.get(kind) {
            return i;
        }
        self.entries.push((kind.into(), A::default()));
        self.index.insert(kind.into(), self.entries.len() - 1);
        self.entries.len() - 1
    }

    pub fn get_mut(&mut self, slot: usize) -> &mut A {
        &mut self.entries[slot].1
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &A)> {
        self.entries.iter().map(|(k, a)| (&**k, a))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut A> {
        self.entries.iter_mut().map(|(_, a)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000; // on a 10 s boundary

    #[test]
    fn a_window_sums_its_complete_buckets_and_says_what_it_covers() {
        let mut r = BucketRing::<2>::default();
        r.add(0, 5, T0); // bucket 0
        r.add(0, 7, T0 + 59_999); // bucket 5
        r.add(1, 1, T0 + 60_000); // bucket 6, current
        let at = T0 + 60_000;
        let w = r.window(0, Window::OneMinute, at, T0);
        assert_eq!(
            (w.count, w.covered_s, w.per_minute),
            (12.0, 60.0, Some(12.0))
        );
        assert_eq!(r.window(1, Window::OneMinute, at, T0).count, 0.0, "partial");
        let w = r.window(0, Window::FiveMinutes, at, T0);
        assert_eq!((w.count, w.covered_s, w.per_minute), (12.0, 60.0, None));
        // The 1 m window 70 s later holds only buckets 1..=6.
        let w = r.window(1, Window::OneMinute, T0 + 70_000, T0);
        assert_eq!(w.count, 1.0);
        assert_eq!(r.window(0, Window::OneMinute, T0 + 70_000, T0).count, 7.0);
    }

    #[test]
    fn buckets_older_than_the_longest_window_are_cleared_when_reused() {
        let mut r = BucketRing::<1>::default();
        r.add(0, 3, T0);
        r.add(0, 1, T0 + 16 * 60_000);
        let now = T0 + 16 * 60_000 + 10_000;
        assert_eq!(r.window(0, Window::FifteenMinutes, now, T0).count, 1.0);
        // A jump far ahead clears everything.
        r.rotate(now + 3_600_000);
        assert_eq!(
            r.window(0, Window::FifteenMinutes, now + 3_600_000, T0)
                .count,
            0.0
        );
    }

    #[test]
    fn kinds_past_the_cap_share_the_folded_slot() {
        let mut k = Kinds::<u64>::new(3, Vec::new());
        let a = k.slot_of("sim-1");
        assert_eq!(k.slot_of("sim-2"), a);
        let b = k.slot_of("bridge-9");
        let folded = k.slot_of("calls-1");
        assert_eq!(k.slot_of("sink-1"), folded);
        assert_eq!(k.slot_of("bridge-1"), b);
        let names: Vec<&str> = k.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["sim", "bridge", FOLDED_KIND]);
    }
}
