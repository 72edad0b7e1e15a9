//! How many series `/write` may create: [`MAX_WRITE_SERIES`] in all (the store's own series,
//! named `pipescope_*`, not counted), [`MAX_NEW_SERIES_PER_WRITE`] in one request. Series are
//! known by a hash of their metric and labels (8 bytes each; a collision only lets one series
//! pass as known).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::sample::{Labels, Sample};

/// Series that `/write` may have in the store at once.
pub const MAX_WRITE_SERIES: usize = 100_000;
/// Series one `/write` request may create.
pub const MAX_NEW_SERIES_PER_WRITE: usize = 10_000;

/// A request that would create more than its share of series: refused whole (nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the body would create {new} new series, more than {max} (MAX_NEW_SERIES_PER_WRITE): split it into smaller writes"
)]
pub struct TooManyNewSeries {
    pub new: usize,
    pub max: usize,
}

/// What a request may store.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub samples: Vec<Sample>,
    /// Samples of new series refused because the total is reached.
    pub refused: usize,
}

/// The series known to come from `/write`, and the caps.
#[derive(Debug, Clone)]
pub struct SeriesQuota {
    known: HashSet<u64>,
    max_total: usize,
    max_new: usize,
}

fn key(metric: &str, labels: &Labels) -> u64 {
    let mut hasher = DefaultHasher::new();
    metric.hash(&mut hasher);
    labels.hash(&mut hasher);
    hasher.finish()
}

impl Default for SeriesQuota {
    fn default() -> Self {
        Self::new(MAX_WRITE_SERIES, MAX_NEW_SERIES_PER_WRITE)
    }
}

impl SeriesQuota {
    pub fn new(max_total: usize, max_new: usize) -> Self {
        Self {
            known: HashSet::new(),
            max_total,
            max_new,
        }
    }

    /// Forgets what it knew and takes `series` (what the store holds) as known.
    pub fn reset<'a>(&mut self, series: impl IntoIterator<Item = (&'a str, &'a Labels)>) {
        self.known = series.into_iter().map(|(m, l)| key(m, l)).collect();
    }

    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// True when no new series can be admitted.
    pub fn is_full(&self) -> bool {
        self.known.len() >= self.max_total
    }

    /// The samples of known series, and of new series while the total allows; the samples of
    /// the others are counted as refused. Too many new series in one request refuse it whole.
    pub fn admit(&mut self, samples: Vec<Sample>) -> Result<Admitted, TooManyNewSeries> {
        let keys: Vec<u64> = samples.iter().map(|s| key(&s.metric, &s.labels)).collect();
        let new: HashSet<u64> = keys
            .iter()
            .copied()
            .filter(|k| !self.known.contains(k))
            .collect();
        if new.len() > self.max_new {
            return Err(TooManyNewSeries {
                new: new.len(),
                max: self.max_new,
            });
        }
        let mut refused = 0;
        let mut kept = Vec::with_capacity(samples.len());
        for (sample, key) in samples.into_iter().zip(keys) {
            if self.known.contains(&key)
                || (self.known.len() < self.max_total && self.known.insert(key))
            {
                kept.push(sample);
            } else {
                refused += 1;
            }
        }
        Ok(Admitted {
            samples: kept,
            refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(metric: &str, tag: &str) -> Sample {
        Sample::new(metric.to_string(), Labels::new([("t", tag)]), 1, 1.0)
    }

    #[test]
    fn new_series_are_admitted_up_to_the_total_and_known_ones_always() {
        let mut quota = SeriesQuota::new(2, 10);
        let admitted = quota
            .admit(vec![
                s("a", "1"),
                s("a", "1"),
                s("a", "2"),
                s("a", "3"),
                s("b", "1"),
            ])
            .unwrap();
        assert_eq!(
            admitted.samples,
            vec![s("a", "1"), s("a", "1"), s("a", "2")]
        );
        assert_eq!(admitted.refused, 2);
        assert!(quota.is_full());
        let again = quota.admit(vec![s("a", "2"), s("c", "1")]).unwrap();
        assert_eq!((again.samples, again.refused), (vec![s("a", "2")], 1));
    }

    #[test]
    fn too_many_new_series_in_one_request_refuse_it_whole() {
        let mut quota = SeriesQuota::new(100, 2);
        let err = quota
            .admit(vec![s("a", "1"), s("a", "2"), s("a", "3")])
            .unwrap_err();
        assert_eq!(err, TooManyNewSeries { new: 3, max: 2 });
        assert_eq!(quota.known(), 0, "nothing admitted");
        assert_eq!(
            err.to_string(),
            "the body would create 3 new series, more than 2 (MAX_NEW_SERIES_PER_WRITE): split it into smaller writes"
        );
    }

    #[test]
    fn a_reset_takes_what_the_store_holds() {
        let mut quota = SeriesQuota::new(1, 10);
        quota.admit(vec![s("a", "1")]).unwrap();
        assert!(quota.is_full());
        let labels = Labels::new([("t", "2")]);
        quota.reset([("a", &labels)]);
        assert_eq!(quota.admit(vec![s("a", "1")]).unwrap().refused, 1);
        assert_eq!(quota.admit(vec![s("a", "2")]).unwrap().refused, 0);
    }
}
