//! The mergeable summaries a field profile keeps: moments (Welford/Pébay), top values
//! (space-saving) and the distinct-count and quantile sketches' settings.

use std::collections::HashMap;

use cardinality_estimator::CardinalityEstimator;
use sketches_ddsketch::{Config, DDSketch};

/// DDSketch's relative accuracy: a quantile it answers is within ±1 % of the true value at
/// that rank (while the sketch holds fewer than [`QUANTILE_MAX_BINS`] bins per sign).
pub const QUANTILE_RELATIVE_ERROR: f64 = 0.01;
/// Bins per sign; past them the lowest bins collapse (the low quantiles lose the bound).
pub const QUANTILE_MAX_BINS: u32 = 2048;
/// The distinct-count sketch's standard error past [`DISTINCT_EXACT_UP_TO`]: HyperLogLog++
/// with 2^12 registers, 1.04 / √4096 ≈ 1.6 %.
pub const DISTINCT_STANDARD_ERROR: f64 = 0.0163;
/// Up to this many distinct values the sketch keeps them (as 32-bit hash codes): exact but for
/// hash collisions.
pub const DISTINCT_EXACT_UP_TO: u64 = 128;

/// Distinct values by hash: `cardinality-estimator` (HyperLogLog++, exact when small).
pub type Distinct = CardinalityEstimator<u64>;

/// A quantile sketch with [`QUANTILE_RELATIVE_ERROR`].
#[derive(Clone)]
pub struct Quantiles(pub DDSketch);

impl Default for Quantiles {
    fn default() -> Self {
        Self(DDSketch::new(Config::new(
            QUANTILE_RELATIVE_ERROR,
            QUANTILE_MAX_BINS,
            1.0e-9,
        )))
    }
}

impl std::fmt::Debug for Quantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quantiles")
            .field("count", &self.0.count())
            .finish_non_exhaustive()
    }
}

/// Count, min, max, mean, variance and skewness of numbers, mergeable (Chan et al., Pébay).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    /// Sum of cubed deviations from the mean.
    pub m3: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        if self.count == 0 {
            *self = Moments {
                count: 1,
                min: x,
                max: x,
                mean: x,
                m2: 0.0,
                m3: 0.0,
            };
            return;
        }
        let n1 = self.count as f64;
        self.count += 1;
        let n = self.count as f64;
        let delta = x - self.mean;
        let delta_n = delta / n;
        let term = delta * delta_n * n1;
        self.mean += delta_n;
        self.m3 += term * delta_n * (n - 2.0) - 3.0 * delta_n * self.m2;
        self.m2 += term;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        let m3 = self.m3
            + other.m3
            + delta.powi(3) * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * other.m2 - nb * self.m2) / n;
        let m2 = self.m2 + other.m2 + delta * delta * na * nb / n;
        self.mean += delta * nb / n;
        self.m2 = m2;
        self.m3 = m3;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Sample standard deviation (n − 1, as pandas): `None` below two values.
    pub fn stddev(&self) -> Option<f64> {
        (self.count >= 2).then(|| (self.m2 / (self.count as f64 - 1.0)).max(0.0).sqrt())
    }

    /// Adjusted Fisher–Pearson skewness (pandas' `skew()`): `None` below three values or when
    /// every value is the same.
    pub fn skewness(&self) -> Option<f64> {
        if self.count < 3 || self.m2 <= 0.0 {
            return None;
        }
        let n = self.count as f64;
        let g1 = n.sqrt() * self.m3 / self.m2.powf(1.5);
        Some(g1 * (n * (n - 1.0)).sqrt() / (n - 2.0))
    }
}

/// The most frequent values, space-saving (Metwally et al.): at most `k` kept; a value that
/// pushed out the least counted one inherits its count as its possible overcount (`error`).
/// Exact while fewer than `k` distinct values were seen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopValues {
    k: usize,
    entries: HashMap<Box<str>, TopCount, foldhash::fast::RandomState>,
}

/// A kept value's count and how much of it may belong to values it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopCount {
    pub count: u64,
    pub error: u64,
}

impl TopValues {
    pub fn new(k: usize) -> Self {
        Self {
            k: k.max(1),
            entries: HashMap::default(),
        }
    }

    pub fn add(&mut self, value: &str) {
        if let Some(entry) = self.entries.get_mut(value) {
            entry.count += 1;
            return;
        }
        if self.entries.len() < self.k {
            self.entries
                .insert(value.into(), TopCount { count: 1, error: 0 });
            return;
        }
        let (least, floor) = self.least();
        self.entries.remove(&least);
        self.entries.insert(
            value.into(),
            TopCount {
                count: floor + 1,
                error: floor,
            },
        );
    }

    /// The least counted kept value (ties: the greatest value, so the choice is stable).
    fn least(&self) -> (Box<str>, u64) {
        let (value, count) = self
            .entries
            .iter()
            .min_by(|a, b| a.1.count.cmp(&b.1.count).then_with(|| b.0.cmp(a.0)))
            .map(|(v, c)| (v.clone(), c.count))
            .unwrap_or_default();
        (value, count)
    }

    /// What a summary may have missed of a value it does not keep: its least count when full.
    fn floor(&self) -> u64 {
        if self.entries.len() < self.k {
            0
        } else {
            self.least().1
        }
    }

    /// Mergeable summaries (Agarwal et al.): counts added, a value missing from one side
    /// counted at that side's floor, then the `k` largest kept.
    pub fn merge(&mut self, other: &TopValues) {
        let (floor_a, floor_b) = (self.floor(), other.floor());
        let mut all: Vec<(Box<str>, TopCount)> = Vec::new();
        for (value, a) in &self.entries {
            let b = other.entries.get(value).copied().unwrap_or(TopCount {
                count: floor_b,
                error: floor_b,
            });
            all.push((
                value.clone(),
                TopCount {
                    count: a.count + b.count,
                    error: a.error + b.error,
                },
            ));
        }
        for (value, b) in &other.entries {
            if !self.entries.contains_key(value) {
                all.push((
                    value.clone(),
                    TopCount {
                        count: b.count + floor_a,
                        error: b.error + floor_a,
                    },
                ));
            }
        }
        all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        all.truncate(self.k);
        self.entries = all.into_iter().collect();
    }

    /// Kept values, most counted first (ties by value).
    pub fn ranked(&self) -> Vec<(&str, TopCount)> {
        let mut ranked: Vec<(&str, TopCount)> =
            self.entries.iter().map(|(v, c)| (&**v, *c)).collect();
        ranked.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        ranked
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_a_small_set_are_the_hand_computed_ones() {
        // 1, 2, 3, 10: mean 4, deviations -3 -2 -1 6 → m2 = 50, m3 = -27 - 8 - 1 + 216 = 180.
        let mut m = Moments::default();
        for x in [1.0, 2.0, 3.0, 10.0] {
            m.add(x);
        }
        assert_eq!((m.count, m.min, m.max, m.mean), (4, 1.0, 10.0, 4.0));
        assert!((m.m2 - 50.0).abs() < 1e-12);
        assert!((m.m3 - 180.0).abs() < 1e-9);
        assert!((m.stddev().unwrap() - (50.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // g1 = √4 · 180 / 50^1.5; G1 = g1 · √12 / 2.
        let g1 = 2.0 * 180.0 / 50f64.powf(1.5);
        assert!((m.skewness().unwrap() - g1 * 12f64.sqrt() / 2.0).abs() < 1e-12);
    }

    #[test]
    fn merged_moments_equal_the_moments_of_all_values() {
        let (mut a, mut b, mut all) = (Moments::default(), Moments::default(), Moments::default());
        for x in [1.0, 2.0, 3.0] {
            a.add(x);
            all.add(x);
        }
        for x in [10.0, -4.5] {
            b.add(x);
            all.add(x);
        }
        a.merge(&b);
        assert_eq!((a.count, a.min, a.max), (all.count, all.min, all.max));
        assert!((a.mean - all.mean).abs() < 1e-12);
        assert!((a.m2 - all.m2).abs() < 1e-9);
        assert!((a.m3 - all.m3).abs() < 1e-9);
        let mut empty = Moments::default();
        empty.merge(&a);
        assert_eq!(empty, a);
    }

    #[test]
    fn space_saving_is_exact_below_k_and_bounds_its_overcount_above() {
        let mut top = TopValues::new(2);
        for v in ["a", "b", "a"] {
            top.add(v);
        }
        assert_eq!(
            top.ranked(),
            [
                ("a", TopCount { count: 2, error: 0 }),
                ("b", TopCount { count: 1, error: 0 })
            ]
        );
        // "c" replaces "b" (the least, 1) and inherits its count as possible overcount.
        top.add("c");
        assert_eq!(
            top.ranked(),
            [
                ("a", TopCount { count: 2, error: 0 }),
                ("c", TopCount { count: 2, error: 1 })
            ]
        );
    }

    #[test]
    fn merged_top_values_add_counts() {
        let mut a = TopValues::new(3);
        let mut b = TopValues::new(3);
        for v in ["x", "y", "x"] {
            a.add(v);
        }
        for v in ["y", "z"] {
            b.add(v);
        }
        a.merge(&b);
        let counts: Vec<(&str, u64)> = a.ranked().iter().map(|(v, c)| (*v, c.count)).collect();
        assert_eq!(counts, [("x", 2), ("y", 2), ("z", 1)]);
    }
}
