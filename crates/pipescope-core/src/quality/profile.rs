//! A topic's profile over a window: per field path (`user.id`, `items[].price`, `tags[]`) how
//! often it is present, null, empty, of which type, and summaries of its values. Profiles of
//! consecutive windows merge into a profile of the longer window ([`Profile::merge`]).

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use super::sketch::{Distinct, Moments, Quantiles, TopKey, TopValues};
use crate::EpochMillis;
use walk::{Scalar, Stage, Target};

mod walk;

/// Caps that bound a profile's memory, and the sampling rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLimits {
    /// Field paths kept; values of further paths are only counted (`_folded`).
    pub max_fields: usize,
    /// Nesting followed; deeper values are counted at the path of the level reached.
    pub max_depth: usize,
    /// Longer paths are folded.
    pub max_path_bytes: usize,
    /// Top values kept per field (space-saving's k).
    pub top_values: usize,
    /// Characters of a string kept as a top value (longer ones end in `…`).
    pub max_value_chars: usize,
    /// Profile one record in N (1: all).
    pub sample_every: u64,
    /// Records whose hash is kept to count duplicates exactly; past it, estimated.
    pub duplicate_set_cap: usize,
    /// Invalid records kept as examples.
    pub invalid_examples: usize,
    /// Bytes of an invalid record shown in its preview.
    pub preview_bytes: usize,
}

impl Default for ProfileLimits {
    fn default() -> Self {
        Self {
            max_fields: 256,
            max_depth: 32,
            max_path_bytes: 256,
            top_values: 20,
            max_value_chars: 64,
            sample_every: 1,
            duplicate_set_cap: 100_000,
            invalid_examples: 5,
            preview_bytes: 64,
        }
    }
}

/// A JSON value's type as the profile counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Null,
    Bool,
    Int,
    Float,
    /// A number with no finite f64 value (NaN, ±Inf: not from JSON text, whose parser rejects
    /// numbers past f64, but from other payload formats).
    NonFinite,
    String,
    Object,
    Array,
}

impl ValueType {
    pub const ALL: [ValueType; 8] = [
        ValueType::Null,
        ValueType::Bool,
        ValueType::Int,
        ValueType::Float,
        ValueType::NonFinite,
        ValueType::String,
        ValueType::Object,
        ValueType::Array,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ValueType::Null => "null",
            ValueType::Bool => "bool",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::NonFinite => "non_finite",
            ValueType::String => "string",
            ValueType::Object => "object",
            ValueType::Array => "array",
        }
    }
}

/// Values of each [`ValueType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeCounts([u64; 8]);

impl TypeCounts {
    pub fn get(&self, kind: ValueType) -> u64 {
        self.0[kind as usize]
    }

    fn add(&mut self, kind: ValueType) {
        self.0[kind as usize] += 1;
    }

    fn merge(&mut self, other: &TypeCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The most frequent type other than null (null when only nulls; `None` when nothing);
    /// ties go to the first in [`ValueType::ALL`].
    pub fn dominant(&self) -> Option<ValueType> {
        let best = ValueType::ALL[1..]
            .iter()
            .copied()
            .filter(|kind| self.get(*kind) > 0)
            .max_by(|a, b| self.get(*a).cmp(&self.get(*b)).then(b.cmp(a)));
        best.or((self.get(ValueType::Null) > 0).then_some(ValueType::Null))
    }

    /// (type, count) for the types seen.
    pub fn seen(&self) -> impl Iterator<Item = (ValueType, u64)> + '_ {
        ValueType::ALL
            .iter()
            .map(|kind| (*kind, self.get(*kind)))
            .filter(|(_, n)| *n > 0)
    }
}

/// One field path's figures. Read them; [`Profile`] keeps them up to date.
#[derive(Debug, Clone)]
pub struct FieldProfile {
    /// Records holding the path at least once.
    pub present: u64,
    /// Values at the path (an array field's element paths hold several per record).
    pub values: u64,
    pub nulls: u64,
    /// `""`, `[]` and `{}`.
    pub empties: u64,
    pub types: TypeCounts,
    /// Finite numbers.
    pub numbers: Moments,
    pub zeros: u64,
    pub quantiles: Option<Box<Quantiles>>,
    /// Distinct non-null scalar values (numbers by value: 1 and 1.0 are one).
    pub distinct: Distinct,
    /// Scalars as JSON text (`"a"`, `1.5`, `true`).
    pub top: TopValues,
    /// Lengths of strings, in characters.
    pub string_lengths: Moments,
    pub first_seen_ms: EpochMillis,
    pub last_seen_ms: EpochMillis,
    /// The last record counted in `present` (sequence within this profile; 0: none).
    last_record: u64,
}

impl FieldProfile {
    fn new(limits: &ProfileLimits, at_ms: EpochMillis) -> Self {
        Self {
            present: 0,
            values: 0,
            nulls: 0,
            empties: 0,
            types: TypeCounts::default(),
            numbers: Moments::default(),
            zeros: 0,
            quantiles: None,
            distinct: Distinct::new(),
            top: TopValues::new(limits.top_values),
            string_lengths: Moments::default(),
            first_seen_ms: at_ms,
            last_seen_ms: at_ms,
            last_record: 0,
        }
    }

    /// The most frequent non-null type.
    pub fn dominant_type(&self) -> Option<ValueType> {
        self.types.dominant()
    }

    fn merge(&mut self, other: &FieldProfile) {
        self.present += other.present;
        self.values += other.values;
        self.nulls += other.nulls;
        self.empties += other.empties;
        self.types.merge(&other.types);
        self.numbers.merge(&other.numbers);
        self.zeros += other.zeros;
        match (&mut self.quantiles, &other.quantiles) {
            (Some(mine), Some(theirs)) => {
                // Same configuration on both sides: merge cannot fail.
                let _ = mine.0.merge(&theirs.0);
            }
            (None, Some(theirs)) => self.quantiles = Some(theirs.clone()),
            _ => {}
        }
        self.distinct.merge(&other.distinct);
        self.top.merge(&other.top);
        self.string_lengths.merge(&other.string_lengths);
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
    }
}

/// A record that could not be profiled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidRecord {
    pub at_ms: EpochMillis,
    /// The parser's words.
    pub reason: String,
    /// The first bytes, non-printable ones and non-ASCII escaped (`\xff`, `\n`).
    pub preview: String,
}

/// What [`Profile::observe`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    SampledOut,
    Invalid,
    Profiled,
}

/// Values of paths past the field cap (or too long), counted not profiled.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    pub values: u64,
    pub paths: Distinct,
}

/// Duplicate records by hash of their bytes: exact while the set holds, then estimated.
#[derive(Debug, Clone, Default)]
struct Duplicates {
    exact: Option<HashSet<u64, foldhash::fast::RandomState>>,
    distinct: Distinct,
}

/// The profile of one topic's records over a window.
#[derive(Debug, Clone)]
pub struct Profile {
    limits: ProfileLimits,
    offered: u64,
    records: u64,
    invalid: u64,
    invalid_examples: Vec<InvalidRecord>,
    paths: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    fields: Vec<(Box<str>, FieldProfile)>,
    folded: Folded,
    depth_capped: u64,
    duplicates: Duplicates,
    first_seen_ms: Option<EpochMillis>,
    last_seen_ms: Option<EpochMillis>,
    /// The record being read (see [`walk`]).
    stage: walk::Stage,
}

/// Fixed seeds: the same value hashes alike in every profile, so sketches merge.
const VALUE_SEED: u64 = 0x7069_7065_7363_6f70;
const RECORD_SEED: u64 = 0x7265_636f_7264_7321;

fn value_hasher() -> foldhash::quality::FixedState {
    foldhash::quality::FixedState::with_seed(VALUE_SEED)
}

/// The path of a record that is not a JSON object (its elements: `$[]`).
pub const ROOT_PATH: &str = "$";

impl Profile {
    pub fn new(limits: ProfileLimits) -> Self {
        let limits = ProfileLimits {
            sample_every: limits.sample_every.max(1),
            ..limits
        };
        Self {
            limits,
            offered: 0,
            records: 0,
            invalid: 0,
            invalid_examples: Vec::new(),
            paths: HashMap::default(),
            fields: Vec::new(),
            folded: Folded::default(),
            depth_capped: 0,
            duplicates: Duplicates {
                exact: (limits.duplicate_set_cap > 0).then(HashSet::default),
                distinct: Distinct::new(),
            },
            first_seen_ms: None,
            last_seen_ms: None,
            stage: walk::Stage::default(),
        }
    }

    pub fn limits(&self) -> &ProfileLimits {
        &self.limits
    }

    /// Records offered, sampled out ones included.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Records profiled (valid and invalid).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records profiled that parsed.
    pub fn valid(&self) -> u64 {
        self.records - self.invalid
    }

    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    pub fn invalid_examples(&self) -> &[InvalidRecord] {
        &self.invalid_examples
    }

    pub fn folded(&self) -> &Folded {
        &self.folded
    }

    /// Values whose nesting passed `max_depth` (counted at the deepest path kept).
    pub fn depth_capped(&self) -> u64 {
        self.depth_capped
    }

    pub fn first_seen_ms(&self) -> Option<EpochMillis> {
        self.first_seen_ms
    }

    pub fn last_seen_ms(&self) -> Option<EpochMillis> {
        self.last_seen_ms
    }

    /// Field paths in the order first seen, with their figures.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &FieldProfile)> {
        self.fields.iter().map(|(path, field)| (&**path, field))
    }

    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    pub fn field(&self, path: &str) -> Option<&FieldProfile> {
        self.paths.get(path).map(|i| &self.fields[*i].1)
    }

    /// Valid records without the path.
    pub fn missing(&self, field: &FieldProfile) -> u64 {
        self.valid().saturating_sub(field.present)
    }

    /// Duplicate records (same bytes), and whether the count is exact.
    pub fn duplicates(&self) -> (u64, bool) {
        match &self.duplicates.exact {
            Some(set) => (self.records - set.len() as u64, true),
            None => (
                self.records
                    .saturating_sub(self.duplicates.distinct.estimate() as u64),
                false,
            ),
        }
    }

    /// Whether the next record offered will be profiled (not sampled out): a caller that
    /// parses records for other uses can skip the parse for the profile's sake.
    pub fn takes_next(&self) -> bool {
        self.offered.is_multiple_of(self.limits.sample_every)
    }

    /// Counts a record offered; false when sampling skips it.
    fn admit(&mut self, payload: &[u8], at_ms: EpochMillis) -> bool {
        let taken = self.takes_next();
        self.offered += 1;
        if !taken {
            return false;
        }
        self.records += 1;
        self.first_seen_ms = Some(self.first_seen_ms.map_or(at_ms, |t| t.min(at_ms)));
        self.last_seen_ms = Some(self.last_seen_ms.map_or(at_ms, |t| t.max(at_ms)));
        self.count_duplicate(payload);
        true
    }

    fn count_invalid(&mut self, payload: &[u8], reason: impl FnOnce() -> String, at_ms: u64) {
        self.invalid += 1;
        if self.invalid_examples.len() < self.limits.invalid_examples {
            self.invalid_examples.push(InvalidRecord {
                at_ms,
                reason: reason(),
                preview: preview(payload, self.limits.preview_bytes),
            });
        }
    }

    /// Profiles one record's payload received at `at_ms`.
    pub fn observe(&mut self, payload: &[u8], at_ms: EpochMillis) -> Observed {
        self.observe_bytes(payload, at_ms)
            .unwrap_or(Observed::Invalid)
    }

    /// [`Profile::observe`], saying why a record is invalid (it is counted as such).
    pub fn observe_bytes(
        &mut self,
        payload: &[u8],
        at_ms: EpochMillis,
    ) -> Result<Observed, String> {
        if !self.admit(payload, at_ms) {
            return Ok(Observed::SampledOut);
        }
        match self.stage_bytes(payload, at_ms) {
            Ok(()) => {
                self.commit(at_ms);
                Ok(Observed::Profiled)
            }
            Err(e) => {
                let reason = invalid_reason(payload, &e);
                self.count_invalid(payload, || reason.clone(), at_ms);
                Err(reason)
            }
        }
    }

    /// [`Profile::observe`] for a record the caller parsed already (one parse for the rules
    /// and the profile); `payload` is its bytes, for the duplicate count.
    pub fn observe_parsed(&mut self, payload: &[u8], value: &Value, at_ms: u64) -> Observed {
        if !self.admit(payload, at_ms) {
            return Observed::SampledOut;
        }
        self.stage_value(value, at_ms);
        self.commit(at_ms);
        Observed::Profiled
    }

    /// Counts a record refused before parsing (too large, say) as invalid, sampled like
    /// [`Profile::observe`]; `head` is its start, for the preview.
    pub fn reject(&mut self, head: &[u8], reason: &str, at_ms: EpochMillis) -> Observed {
        if !self.admit(head, at_ms) {
            return Observed::SampledOut;
        }
        self.count_invalid(head, || reason.to_string(), at_ms);
        Observed::Invalid
    }

    fn count_duplicate(&mut self, payload: &[u8]) {
        let hash = foldhash::quality::FixedState::with_seed(RECORD_SEED).hash_one(payload);
        self.duplicates.distinct.insert_hash(hash);
        if let Some(set) = &mut self.duplicates.exact {
            set.insert(hash);
            if set.len() > self.limits.duplicate_set_cap {
                self.duplicates.exact = None;
            }
        }
    }

    /// The field's index, created while under the cap; `None`: folded.
    fn field_index(&mut self, path: &str, at: EpochMillis) -> Option<usize> {
        if let Some(index) = self.paths.get(path) {
            return Some(*index);
        }
        if self.fields.len() >= self.limits.max_fields || path.len() > self.limits.max_path_bytes {
            return None;
        }
        let index = self.fields.len();
        self.fields
            .push((path.into(), FieldProfile::new(&self.limits, at)));
        self.paths.insert(path.into(), index);
        Some(index)
    }

    /// Counts the staged record's values (see [`walk`]).
    fn commit(&mut self, at: EpochMillis) {
        let record = self.records;
        let stage = std::mem::take(&mut self.stage);
        self.depth_capped += stage.depth_capped;
        for (target, scalar) in &stage.values {
            match *target {
                Target::Field(index) => self.count_value(index, *scalar, &stage, record, at),
                Target::Folded(path_hash) => {
                    self.folded.values += 1;
                    self.folded.paths.insert_hash(path_hash);
                }
            }
        }
        self.stage = stage;
    }

    fn count_value(&mut self, index: usize, value: Scalar, stage: &Stage, record: u64, at: u64) {
        let max_chars = self.limits.max_value_chars;
        let field = &mut self.fields[index].1;
        if field.last_record != record {
            field.last_record = record;
            field.present += 1;
        }
        field.values += 1;
        field.first_seen_ms = field.first_seen_ms.min(at);
        field.last_seen_ms = field.last_seen_ms.max(at);
        let number = |field: &mut FieldProfile, x: f64, kind: ValueType, key: TopKey<'_>| {
            field.types.add(kind);
            if x.is_finite() {
                field.numbers.add(x);
                if x == 0.0 {
                    field.zeros += 1;
                }
                field.quantiles.get_or_insert_with(Box::default).0.add(x);
                // -0.0 and 0.0 are one value.
                let bits = if x == 0.0 { 0 } else { x.to_bits() };
                field
                    .distinct
                    .insert_hash(value_hasher().hash_one(('n', bits)));
            }
            field.top.add(key);
        };
        match value {
            Scalar::Null => {
                field.nulls += 1;
                field.types.add(ValueType::Null);
            }
            Scalar::Bool(b) => {
                field.types.add(ValueType::Bool);
                field
                    .distinct
                    .insert_hash(value_hasher().hash_one(('b', b)));
                field.top.add(TopKey::Bool(b));
            }
            Scalar::PosInt(u) => number(field, u as f64, ValueType::Int, TopKey::PosInt(u)),
            Scalar::NegInt(i) => number(field, i as f64, ValueType::Int, TopKey::NegInt(i)),
            Scalar::Float(x) if x.is_finite() => {
                number(field, x, ValueType::Float, TopKey::Float(x))
            }
            Scalar::Float(x) => number(field, x, ValueType::NonFinite, TopKey::Float(x)),
            Scalar::Str { start, end } => {
                let s = stage.str(start, end);
                field.types.add(ValueType::String);
                if s.is_empty() {
                    field.empties += 1;
                }
                let chars = s.chars().count();
                field.string_lengths.add(chars as f64);
                field
                    .distinct
                    .insert_hash(value_hasher().hash_one(('s', s)));
                if chars > max_chars {
                    let cut: String = s.chars().take(max_chars).chain(['…']).collect();
                    field.top.add(TopKey::Str(&cut));
                } else {
                    field.top.add(TopKey::Str(s));
                }
            }
            Scalar::Array { empty } => {
                field.types.add(ValueType::Array);
                field.empties += u64::from(empty);
            }
            Scalar::Object { empty } => {
                field.types.add(ValueType::Object);
                field.empties += u64::from(empty);
            }
        }
    }

    /// Adds `other` (another window of the same topic) into this profile. Paths new to this
    /// one beyond the field cap are folded. This profile's limits are kept.
    pub fn merge(&mut self, other: &Profile) {
        self.offered += other.offered;
        self.records += other.records;
        self.invalid += other.invalid;
        let room = self
            .limits
            .invalid_examples
            .saturating_sub(self.invalid_examples.len());
        self.invalid_examples
            .extend(other.invalid_examples.iter().take(room).cloned());
        for (path, field) in &other.fields {
            match self.field_index(path, field.first_seen_ms) {
                Some(index) => self.fields[index].1.merge(field),
                None => {
                    self.folded.values += field.values;
                    self.folded
                        .paths
                        .insert_hash(value_hasher().hash_one(&**path));
                }
            }
        }
        self.folded.values += other.folded.values;
        self.folded.paths.merge(&other.folded.paths);
        self.depth_capped += other.depth_capped;
        self.duplicates.distinct.merge(&other.duplicates.distinct);
        self.duplicates.exact = match (self.duplicates.exact.take(), &other.duplicates.exact) {
            (Some(mut mine), Some(theirs)) => {
                mine.extend(theirs.iter().copied());
                (mine.len() <= self.limits.duplicate_set_cap).then_some(mine)
            }
            _ => None,
        };
        self.first_seen_ms = min_option(self.first_seen_ms, other.first_seen_ms);
        self.last_seen_ms = match (self.last_seen_ms, other.last_seen_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

fn min_option(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why a payload is not a JSON record, in the words the profile and the observer show.
pub fn invalid_reason(payload: &[u8], error: &serde_json::Error) -> String {
    if payload.is_empty() {
        "empty payload".to_string()
    } else {
        format!("not JSON: {error}")
    }
}

/// Whether a payload is one JSON value, without reading it into anything (for records sampled
/// out of a profile). Lone UTF-16 surrogates in `\u` escapes, which a full parse refuses, pass.
pub fn check_json(payload: &[u8]) -> Result<(), String> {
    let checked = std::str::from_utf8(payload)
        .map_err(serde::de::Error::custom)
        .and_then(serde_json::from_str::<serde::de::IgnoredAny>);
    checked.map(drop).map_err(|e| invalid_reason(payload, &e))
}

/// The first `max` bytes, printable ASCII as is, the rest escaped; `…` when cut.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() > max;
    let mut text: String = bytes[..bytes.len().min(max)].escape_ascii().to_string();
    if cut {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests;
