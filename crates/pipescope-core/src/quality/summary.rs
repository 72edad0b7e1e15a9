//! A profile's figures as a report reads them (and `pipescope profile --json` prints them):
//! estimates resolved, quantiles and a histogram taken from the sketch, and the alerts.

use serde::Serialize;
use sketches_ddsketch::DDSketch;

use super::profile::{FieldProfile, InvalidRecord, Profile, ValueType};
use super::sketch::{DISTINCT_EXACT_UP_TO, DISTINCT_STANDARD_ERROR, QUANTILE_RELATIVE_ERROR};
use crate::EpochMillis;

/// MISSING: more than this share of valid records lack the field or hold null.
pub const MISSING_ALERT_RATIO: f64 = 0.05;
/// ZEROS: more than this share of a field's numbers are 0.
pub const ZEROS_ALERT_RATIO: f64 = 0.10;
/// SKEWED: |skewness| above this (ydata-profiling's default).
pub const SKEWED_ALERT_ABS: f64 = 20.0;
/// HIGH_CARDINALITY: a string field with more distinct values than this (and not UNIQUE).
pub const HIGH_CARDINALITY_ALERT: u64 = 50;
/// UNIQUE past the distinct sketch's exact range: distinct ≥ this share of the values
/// (three standard errors of the sketch below 1).
pub const UNIQUE_ALERT_RATIO: f64 = 1.0 - 3.0 * DISTINCT_STANDARD_ERROR;
/// Bins of a numeric field's histogram.
pub const HISTOGRAM_BINS: usize = 10;
/// Quantiles reported.
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// A field's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Alert {
    /// One distinct non-null value.
    Constant,
    /// Every non-null value differs.
    Unique,
    HighCardinality,
    Missing,
    Zeros,
    Skewed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSummary {
    /// Records offered, including those sampling skipped.
    pub records_offered: u64,
    /// Records profiled (valid + invalid).
    pub records: u64,
    pub sample_every: u64,
    pub valid: u64,
    pub invalid: u64,
    pub invalid_examples: Vec<InvalidRecord>,
    pub fields: usize,
    /// Σ over fields of (missing + null).
    pub missing_cells: u64,
    pub duplicates: u64,
    /// false: estimated from the distinct count of record hashes (past the exact set's cap).
    pub duplicates_exact: bool,
    /// Values of paths past the field cap.
    pub folded_values: u64,
    pub folded_paths_estimate: u64,
    pub depth_capped: u64,
    pub first_seen_ms: Option<EpochMillis>,
    pub last_seen_ms: Option<EpochMillis>,
    pub quantile_relative_error: f64,
    pub distinct_standard_error: f64,
    pub distinct_exact_up_to: u64,
    pub field_profiles: Vec<FieldSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldSummary {
    pub path: String,
    pub present: u64,
    pub missing: u64,
    pub values: u64,
    pub nulls: u64,
    pub empties: u64,
    pub types: Vec<TypeShare>,
    pub dominant_type: Option<ValueType>,
    pub distinct: u64,
    pub distinct_exact: bool,
    pub numbers: Option<NumberSummary>,
    pub string_lengths: Option<LengthSummary>,
    pub top_values: Vec<TopValue>,
    pub first_seen_ms: EpochMillis,
    pub last_seen_ms: EpochMillis,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TypeShare {
    #[serde(rename = "type")]
    pub kind: ValueType,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberSummary {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stddev: Option<f64>,
    pub skewness: Option<f64>,
    pub zeros: u64,
    /// (q, value) for [`QUANTILES`]; empty when unresolved.
    pub quantiles: Vec<(f64, f64)>,
    pub histogram: Vec<Bin>,
    /// The sketch's error (±[`QUANTILE_RELATIVE_ERROR`] of the values) is at least half the
    /// values' range (epoch timestamps: a narrow range far from 0), so quantiles and histogram
    /// would say nothing true and are left out.
    pub quantiles_unresolved: bool,
}

/// Numbers in [from, to] (the last bin) or [from, to); counts from the quantile sketch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bin {
    pub from: f64,
    pub to: f64,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LengthSummary {
    pub min: u64,
    pub max: u64,
    pub mean: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopValue {
    /// The value as JSON text.
    pub value: String,
    pub count: u64,
    /// How much of `count` may belong to other values (space-saving's bound; 0: exact).
    pub error: u64,
}

impl Profile {
    pub fn summary(&self) -> ProfileSummary {
        let fields: Vec<FieldSummary> = self
            .fields()
            .map(|(path, field)| field_summary(self, path, field))
            .collect();
        let (duplicates, duplicates_exact) = self.duplicates();
        ProfileSummary {
            records_offered: self.offered(),
            records: self.records(),
            sample_every: self.limits().sample_every,
            valid: self.valid(),
            invalid: self.invalid(),
            invalid_examples: self.invalid_examples().to_vec(),
            fields: fields.len(),
            missing_cells: fields.iter().map(|f| f.missing + f.nulls).sum(),
            duplicates,
            duplicates_exact,
            folded_values: self.folded().values,
            folded_paths_estimate: self.folded().paths.estimate() as u64,
            depth_capped: self.depth_capped(),
            first_seen_ms: self.first_seen_ms(),
            last_seen_ms: self.last_seen_ms(),
            quantile_relative_error: QUANTILE_RELATIVE_ERROR,
            distinct_standard_error: DISTINCT_STANDARD_ERROR,
            distinct_exact_up_to: DISTINCT_EXACT_UP_TO,
            field_profiles: fields,
        }
    }
}

fn field_summary(profile: &Profile, path: &str, field: &FieldProfile) -> FieldSummary {
    let distinct = field.distinct.estimate() as u64;
    let numbers = field.quantiles.as_deref().map(|quantiles| {
        let sketch = &quantiles.0;
        let m = &field.numbers;
        let unresolved = m.max > m.min
            && QUANTILE_RELATIVE_ERROR * m.min.abs().max(m.max.abs()) >= (m.max - m.min) / 2.0;
        NumberSummary {
            count: m.count,
            min: m.min,
            max: m.max,
            mean: m.mean(),
            stddev: m.stddev(),
            skewness: m.skewness(),
            zeros: field.zeros,
            // The exact min and max bound every quantile: the sketch's answer (within 1 % of
            // the value at its rank) can fall outside them, which no value does.
            quantiles: QUANTILES
                .iter()
                .filter(|_| !unresolved)
                .filter_map(|q| Some((*q, within(sketch.quantile(*q).ok()??, m.min, m.max))))
                .collect(),
            histogram: if unresolved {
                Vec::new()
            } else {
                histogram(sketch, m.min, m.max)
            },
            quantiles_unresolved: unresolved,
        }
    });
    let lengths = &field.string_lengths;
    let mut summary = FieldSummary {
        path: path.to_string(),
        present: field.present,
        missing: profile.missing(field),
        values: field.values,
        nulls: field.nulls,
        empties: field.empties,
        types: field
            .types
            .seen()
            .map(|(kind, count)| TypeShare { kind, count })
            .collect(),
        dominant_type: field.dominant_type(),
        distinct,
        distinct_exact: distinct <= DISTINCT_EXACT_UP_TO,
        numbers,
        string_lengths: (lengths.count > 0).then_some(LengthSummary {
            min: lengths.min as u64,
            max: lengths.max as u64,
            mean: lengths.mean(),
        }),
        top_values: field
            .top
            .ranked()
            .into_iter()
            .map(|(value, c)| TopValue {
                value,
                count: c.count,
                error: c.error,
            })
            .collect(),
        first_seen_ms: field.first_seen_ms,
        last_seen_ms: field.last_seen_ms,
        alerts: Vec::new(),
    };
    summary.alerts = alerts(&summary, profile.valid());
    summary
}

/// The alerts of a field over `records` valid records; thresholds are the consts above.
pub fn alerts(field: &FieldSummary, records: u64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let scalars = field.values.saturating_sub(field.nulls)
        - field
            .types
            .iter()
            .filter(|t| matches!(t.kind, ValueType::Object | ValueType::Array))
            .map(|t| t.count)
            .sum::<u64>();
    if scalars > 0 && field.distinct == 1 {
        alerts.push(Alert::Constant);
    }
    let unique = scalars > 1
        && if field.distinct_exact && scalars <= DISTINCT_EXACT_UP_TO {
            field.distinct == scalars
        } else {
            field.distinct as f64 >= scalars as f64 * UNIQUE_ALERT_RATIO
        };
    if unique {
        alerts.push(Alert::Unique);
    }
    if !unique
        && field.dominant_type == Some(ValueType::String)
        && field.distinct > HIGH_CARDINALITY_ALERT
    {
        alerts.push(Alert::HighCardinality);
    }
    if records > 0 && (field.missing + field.nulls) as f64 > records as f64 * MISSING_ALERT_RATIO {
        alerts.push(Alert::Missing);
    }
    if let Some(numbers) = &field.numbers {
        if numbers.count > 0 && numbers.zeros as f64 > numbers.count as f64 * ZEROS_ALERT_RATIO {
            alerts.push(Alert::Zeros);
        }
        if numbers.skewness.is_some_and(|s| s.abs() > SKEWED_ALERT_ABS) {
            alerts.push(Alert::Skewed);
        }
    }
    alerts
}

/// `v` bounded by `[min, max]` when that is a range (no numbers seen: min > max).
fn within(v: f64, min: f64, max: f64) -> f64 {
    if min <= max { v.clamp(min, max) } else { v }
}

/// The value at `rank` (0-based, ascending) as the sketch answers it.
fn value_at_rank(sketch: &DDSketch, rank: u64, count: u64) -> f64 {
    let q = if count <= 1 {
        0.0
    } else {
        ((rank as f64 + 0.5) / (count - 1) as f64).min(1.0)
    };
    sketch.quantile(q).ok().flatten().unwrap_or(f64::NAN)
}

/// Values < `edge` by the sketch: the ranks whose value is below it (bisection; the sketch's
/// values ascend with rank).
fn count_below(sketch: &DDSketch, edge: f64, count: u64) -> u64 {
    let (mut low, mut high) = (0u64, count);
    while low < high {
        let mid = low + (high - low) / 2;
        if value_at_rank(sketch, mid, count) < edge {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

/// [`HISTOGRAM_BINS`] equal bins from min to max (one bin when they are equal).
fn histogram(sketch: &DDSketch, min: f64, max: f64) -> Vec<Bin> {
    let count = sketch.count() as u64;
    if count == 0 {
        return Vec::new();
    }
    if max <= min {
        return vec![Bin {
            from: min,
            to: max,
            count,
        }];
    }
    let width = (max - min) / HISTOGRAM_BINS as f64;
    let mut bins = Vec::with_capacity(HISTOGRAM_BINS);
    let mut below = 0;
    for i in 0..HISTOGRAM_BINS {
        let from = min + width * i as f64;
        let last = i + 1 == HISTOGRAM_BINS;
        let to = if last { max } else { from + width };
        let upto = if last {
            count
        } else {
            // Values strictly below the next edge.
            count_below(sketch, to, count)
        };
        bins.push(Bin {
            from,
            to,
            count: upto - below,
        });
        below = upto;
    }
    bins
}
