//! The mergeable summaries a field profile keeps: moments (Welford/Pébay), top values
//! (space-saving) and the distinct-count and quantile sketches' settings.

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
/// The running mean is kept relative to the first value (`shift`): epoch-millisecond
/// timestamps near 1.8 × 10¹² would otherwise leave each update too few bits of its deviation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    shift: f64,
    /// The mean minus `shift`.
    shifted_mean: f64,
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
                shift: x,
                shifted_mean: 0.0,
                m2: 0.0,
                m3: 0.0,
            };
            return;
        }
        let n1 = self.count as f64;
        self.count += 1;
        let n = self.count as f64;
        let delta = (x - self.shift) - self.shifted_mean;
        let delta_n = delta / n;
        let term = delta * delta_n * n1;
        self.shifted_mean += delta_n;
        self.m3 += term * delta_n * (n - 2.0) - 3.0 * delta_n * self.m2;
        self.m2 += term;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn mean(&self) -> f64 {
        self.shift + self.shifted_mean
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
        // The other side's mean, relative to this side's shift.
        let other_mean = (other.shift - self.shift) + other.shifted_mean;
        let delta = other_mean - self.shifted_mean;
        let m3 = self.m3
            + other.m3
            + delta.powi(3) * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * other.m2 - nb * self.m2) / n;
        let m2 = self.m2 + other.m2 + delta * delta * na * nb / n;
        self.shifted_mean += delta * nb / n;
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
/// Exact while fewer than `k` distinct values were seen. Values are kept as they were read
/// ([`TopKey`]) and written as JSON text only when read out; they sit in a vector searched
/// linearly by hash (the values compared only when the hashes match): for the small k a profile
/// uses that beats a map, and a replaced string's buffer is reused.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopValues {
    k: usize,
    entries: Vec<TopEntry>,
}

/// A scalar value as the top values keep it. Numbers keep their JSON kind (`1` and `1.0` are
/// two values, as their texts are).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TopKey<'a> {
    Bool(bool),
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    Str(&'a str),
}

impl TopKey<'_> {
    fn hash(&self) -> u64 {
        use std::hash::BuildHasher as _;
        let hasher = foldhash::fast::FixedState::with_seed(0x746f_7076_616c_7565);
        match *self {
            TopKey::Bool(b) => hasher.hash_one((0u8, b)),
            TopKey::PosInt(u) => hasher.hash_one((1u8, u)),
            TopKey::NegInt(i) => hasher.hash_one((2u8, i)),
            TopKey::Float(x) => hasher.hash_one((3u8, x.to_bits())),
            TopKey::Str(s) => hasher.hash_one((4u8, s)),
        }
    }

    /// As JSON text (`"a"`, `1.5`, `true`), numbers as serde_json writes them.
    pub fn to_json(&self) -> String {
        match *self {
            TopKey::Bool(b) => b.to_string(),
            TopKey::PosInt(u) => itoa::Buffer::new().format(u).to_string(),
            TopKey::NegInt(i) => itoa::Buffer::new().format(i).to_string(),
            TopKey::Float(x) if x.is_finite() => ryu::Buffer::new().format_finite(x).to_string(),
            TopKey::Float(x) => x.to_string(),
            TopKey::Str(s) => serde_json::to_string(s).unwrap_or_default(),
        }
    }
}

/// A kept value: a [`TopKey`] whose string lives in `text`.
#[derive(Debug, Clone, PartialEq)]
struct TopEntry {
    hash: u64,
    key: TopKey<'static>,
    text: String,
    count: TopCount,
}

impl TopEntry {
    fn new(key: TopKey<'_>, hash: u64, count: TopCount) -> Self {
        let mut entry = TopEntry {
            hash,
            key: TopKey::Bool(false),
            text: String::new(),
            count,
        };
        entry.set(key, hash);
        entry
    }

    fn set(&mut self, key: TopKey<'_>, hash: u64) {
        self.hash = hash;
        self.text.clear();
        self.key = match key {
            TopKey::Str(s) => {
                self.text.push_str(s);
                TopKey::Str("")
            }
            TopKey::Bool(b) => TopKey::Bool(b),
            TopKey::PosInt(u) => TopKey::PosInt(u),
            TopKey::NegInt(i) => TopKey::NegInt(i),
            TopKey::Float(x) => TopKey::Float(x),
        };
    }

    fn key(&self) -> TopKey<'_> {
        match self.key {
            TopKey::Str(_) => TopKey::Str(&self.text),
            other => other,
        }
    }

    fn is(&self, key: &TopKey<'_>, hash: u64) -> bool {
        self.hash == hash
            && match (self.key(), key) {
                // Floats by their bits, as their texts differ (-0.0 and 0.0; NaN is one value).
                (TopKey::Float(a), TopKey::Float(b)) => a.to_bits() == b.to_bits(),
                (a, b) => a == *b,
            }
    }
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
            entries: Vec::new(),
        }
    }

    pub fn add(&mut self, key: TopKey<'_>) {
        let hash = key.hash();
        if let Some(entry) = self.entries.iter_mut().find(|e| e.is(&key, hash)) {
            entry.count.count += 1;
            return;
        }
        if self.entries.len() < self.k {
            let count = TopCount { count: 1, error: 0 };
            self.entries.push(TopEntry::new(key, hash, count));
            return;
        }
        let least = self.least();
        let entry = &mut self.entries[least];
        let floor = entry.count.count;
        entry.set(key, hash);
        entry.count = TopCount {
            count: floor + 1,
            error: floor,
        };
    }

    /// The index of the least counted kept value (ties: the first kept, so the choice depends
    /// only on the order values came in).
    fn least(&self) -> usize {
        let mut least = 0;
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.count.count < self.entries[least].count.count {
                least = index;
            }
        }
        least
    }

    /// What a summary may have missed of a value it does not keep: its least count when full.
    fn floor(&self) -> u64 {
        if self.entries.len() < self.k {
            0
        } else {
            self.entries[self.least()].count.count
        }
    }

    fn get(&self, entry: &TopEntry) -> Option<TopCount> {
        self.entries
            .iter()
            .find(|e| e.is(&entry.key(), entry.hash))
            .map(|e| e.count)
    }

    /// Mergeable summaries (Agarwal et al.): counts added, a value missing from one side
    /// counted at that side's floor, then the `k` largest kept.
    pub fn merge(&mut self, other: &TopValues) {
        let (floor_a, floor_b) = (self.floor(), other.floor());
        let mut all: Vec<(String, TopEntry)> = Vec::new();
        for mine in &self.entries {
            let b = other.get(mine).unwrap_or(TopCount {
                count: floor_b,
                error: floor_b,
            });
            let count = TopCount {
                count: mine.count.count + b.count,
                error: mine.count.error + b.error,
            };
            all.push((
                mine.key().to_json(),
                TopEntry {
                    count,
                    ..mine.clone()
                },
            ));
        }
        for theirs in &other.entries {
            if self.get(theirs).is_none() {
                let count = TopCount {
                    count: theirs.count.count + floor_a,
                    error: theirs.count.error + floor_a,
                };
                all.push((
                    theirs.key().to_json(),
                    TopEntry {
                        count,
                        ..theirs.clone()
                    },
                ));
            }
        }
        all.sort_by(|(a_text, a), (b_text, b)| {
            b.count
                .count
                .cmp(&a.count.count)
                .then_with(|| a_text.cmp(b_text))
        });
        all.truncate(self.k);
        self.entries = all.into_iter().map(|(_, entry)| entry).collect();
    }

    /// Kept values as JSON text, most counted first (ties by text).
    pub fn ranked(&self) -> Vec<(String, TopCount)> {
        let mut ranked: Vec<(String, TopCount)> = self
            .entries
            .iter()
            .map(|e| (e.key().to_json(), e.count))
            .collect();
        ranked.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
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
        assert_eq!((m.count, m.min, m.max, m.mean()), (4, 1.0, 10.0, 4.0));
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
        assert!((a.mean() - all.mean()).abs() < 1e-12);
        assert!((a.m2 - all.m2).abs() < 1e-9);
        assert!((a.m3 - all.m3).abs() < 1e-9);
        let mut empty = Moments::default();
        empty.merge(&a);
        assert_eq!(empty, a);
    }

    #[test]
    fn moments_of_epoch_milliseconds_keep_their_precision() {
        // Timestamps 1.8e12 + 0 … 2e7 ms, seeded; the exact figures from the offsets alone.
        let mut rng = crate::test_rng::Lcg(17);
        let offsets: Vec<f64> = (0..100_000).map(|_| rng.below(20_000_000) as f64).collect();
        let (mut m, mut a, mut b) = (Moments::default(), Moments::default(), Moments::default());
        for (i, d) in offsets.iter().enumerate() {
            let x = 1.8e12 + d;
            m.add(x);
            if i < 30_000 { a.add(x) } else { b.add(x) }
        }
        a.merge(&b);
        let n = offsets.len() as f64;
        let mean = offsets.iter().sum::<f64>() / n;
        let m2: f64 = offsets.iter().map(|d| (d - mean).powi(2)).sum();
        let m3: f64 = offsets.iter().map(|d| (d - mean).powi(3)).sum();
        let stddev = (m2 / (n - 1.0)).sqrt();
        let skewness = n.sqrt() * m3 / m2.powf(1.5) * (n * (n - 1.0)).sqrt() / (n - 2.0);
        for m in [m, a] {
            assert!((m.mean() - (1.8e12 + mean)).abs() < 1e-3, "{}", m.mean());
            assert!(
                (m.stddev().unwrap() / stddev - 1.0).abs() < 1e-12,
                "{:?}",
                m.stddev()
            );
            assert!(
                (m.skewness().unwrap() - skewness).abs() < 1e-9,
                "{:?} {skewness}",
                m.skewness()
            );
        }
    }

    #[test]
    fn space_saving_is_exact_below_k_and_bounds_its_overcount_above() {
        let mut top = TopValues::new(2);
        for v in ["a", "b", "a"] {
            top.add(TopKey::Str(v));
        }
        assert_eq!(
            top.ranked(),
            [
                (r#""a""#.to_string(), TopCount { count: 2, error: 0 }),
                (r#""b""#.to_string(), TopCount { count: 1, error: 0 })
            ]
        );
        // "c" replaces "b" (the least, 1) and inherits its count as possible overcount.
        top.add(TopKey::Str("c"));
        assert_eq!(
            top.ranked(),
            [
                (r#""a""#.to_string(), TopCount { count: 2, error: 0 }),
                (r#""c""#.to_string(), TopCount { count: 2, error: 1 })
            ]
        );
    }

    #[test]
    fn merged_top_values_add_counts() {
        let mut a = TopValues::new(3);
        let mut b = TopValues::new(3);
        for v in ["x", "y", "x"] {
            a.add(TopKey::Str(v));
        }
        for v in ["y", "z"] {
            b.add(TopKey::Str(v));
        }
        a.merge(&b);
        let counts: Vec<(String, u64)> =
            a.ranked().into_iter().map(|(v, c)| (v, c.count)).collect();
        let expected =
            [(r#""x""#, 2), (r#""y""#, 2), (r#""z""#, 1)].map(|(v, c)| (v.to_string(), c));
        assert_eq!(counts, expected);
    }
}
