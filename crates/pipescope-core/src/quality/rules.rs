//! Rules on the fields of a topic's records, the errors they count per minute and the previews
//! of failing records they keep.
//!
//! The config names, per topic, entries of checks on one field each:
//!
//! ```toml
//! [quality.visits]
//! kafka = "main"
//! topic = "visits"
//! rules = [
//!   { field = "user.id", required = true, not_null = true, not_empty = true, type = "string" },
//!   { field = "items[].price", type = "number", range = [0, 100] },
//!   { field = "page", regex = "^/[a-z/]*$" },
//!   { field = "device", one_of = ["mobile", "desktop"] },
//!   { field = "ts", fresh_within = "5m", future_skew = "30s" },
//! ]
//! ```
//!
//! Every check of an entry is one rule, named `<field>:<check>` (or `<name>:<check>` when the
//! entry has a `name`): rules are what errors are counted by. A record that breaks several rules
//! is one error record, and counts once for each rule it breaks. A rule on a path that reaches
//! several values (`items[].price`) is broken when any of them breaks it.
//!
//! `required` breaks on a missing field; `not_null` on a null; `not_empty` on `""`, `[]`, `{}`.
//! The other checks look only at values that are there and not null (so combine them with
//! `required`/`not_null` where those matter).

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io;
use std::ops::ControlFlow;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::drift::DriftConfig;
use crate::EpochMillis;
use crate::completeness::buckets::BucketRing;
use crate::windows::WindowCounts;

/// Entries of checks per topic: each becomes up to 8 rules, so rules (and series) stay bounded.
pub const MAX_ENTRIES: usize = 64;
/// Length of a field path's text.
pub const MAX_PATH_LEN: usize = 256;
/// Steps (`key` or `[]`) of a field path: the lookup's recursion depth.
pub const MAX_PATH_STEPS: usize = 32;
/// Values and array elements one lookup visits in one record; the rest are not looked at.
pub const MAX_VALUES_PER_LOOKUP: usize = 1024;
/// Length of a `regex` pattern, and the compiled program's size limit (regex's `size_limit`).
pub const MAX_REGEX_LEN: usize = 1024;
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Values of a `one_of`.
pub const MAX_ONE_OF: usize = 1024;
/// Failing records kept per rule (the newest), and the bytes of each record kept.
pub const PREVIEWS_PER_RULE: usize = 5;
pub const PREVIEW_RECORD_BYTES: usize = 512;
/// Bytes of a value quoted in a reason, and of a preview's origin text.
const QUOTE_BYTES: usize = 64;
const ORIGIN_BYTES: usize = 128;
/// How far in the future a timestamp may be before `fresh_within` breaks, unless `future_skew` says.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(60);

/// `[quality.<name>]`: the topic (a Kafka cluster's topic or an MQTT broker's filter) and its rules.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QualityTopicConfig {
    /// The Kafka cluster's name in `[kafka.<name>]`, with `topic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The MQTT broker's name in `[mqtt.<name>]`, with `filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Thresholds of the schema drift events.
    #[serde(default)]
    pub drift: DriftConfig,
}

impl QualityTopicConfig {
    /// Checks the table `[quality.<name>]` and compiles its rules: one source (`kafka` with
    /// `topic`, or `mqtt` with `filter`), usable drift thresholds and rules. Whether the named
    /// cluster or broker exists is the caller's to check.
    pub fn compile(&self, name: &str) -> Result<RuleSet, RuleConfigError> {
        let fail = |what: String| RuleConfigError {
            topic: name.to_owned(),
            what,
        };
        let kafka = (&self.kafka, &self.topic);
        let mqtt = (&self.mqtt, &self.filter);
        match (kafka, mqtt) {
            ((Some(_), Some(_)), (None, None)) | ((None, None), (Some(_), Some(_))) => {}
            _ => {
                return Err(fail(
                    "name one source: kafka = \"<cluster>\" with topic = \"<topic>\", or mqtt = \"<broker>\" with filter = \"<filter>\"".into(),
                ));
            }
        }
        self.drift.validate().map_err(fail)?;
        RuleSet::compile(name, &self.rules)
    }
}

/// One entry of `rules`: checks on one field. Absent checks are off.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The field's path: `user.id`, `items[].price` (every element), `tags[]`.
    pub field: String,
    /// Names the entry's rules instead of the field (two entries on one field need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub not_null: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub not_empty: bool,
    /// `string`, `integer` (`int`), `number` (`float`), `bool` (`boolean`), `object`, `array`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// `[min, max]`, both included; numbers and strings holding a number are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// Unanchored (write `^…$` for the whole value); strings, and numbers and bools as their JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// The field is a timestamp no older than this at arrival (`"5m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_within: Option<String>,
    /// With `fresh_within`: how far in the future it may be (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub future_skew: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A config that cannot be used, naming the topic, the entry and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quality.{topic}: {what}")]
pub struct RuleConfigError {
    pub topic: String,
    pub what: String,
}

/// A field path that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "field path {path:?}: {what}; write keys joined by dots, `[]` after a key for each element of an array (user.id, items[].price, tags[])"
)]
pub struct PathError {
    pub path: String,
    pub what: &'static str,
}

/// One step of a path: an object's key, or each element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(Box<str>),
    Each,
}

/// A parsed field path: `a.b`, `items[].price`, `tags[]`, `[].id` (records that are arrays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: Box<str>,
    steps: Vec<Step>,
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<FieldPath, PathError> {
        let err = |what| PathError {
            path: text.chars().take(MAX_PATH_LEN).collect(),
            what,
        };
        if text.is_empty() {
            return Err(err("is empty"));
        }
        if text.len() > MAX_PATH_LEN {
            return Err(err("is longer than 256 bytes"));
        }
        let mut steps = Vec::new();
        let mut rest = text;
        // A path may start with `[]` (the record is an array); after a `.` comes a key.
        if let Some(r) = rest.strip_prefix("[]") {
            steps.push(Step::Each);
            rest = r;
        } else {
            rest = push_key(&mut steps, rest).ok_or_else(|| err("has an empty key"))?;
        }
        loop {
            while let Some(r) = rest.strip_prefix("[]") {
                steps.push(Step::Each);
                rest = r;
            }
            if steps.len() > MAX_PATH_STEPS {
                return Err(err("has more than 32 steps"));
            }
            let Some(r) = rest.strip_prefix('.') else {
                if rest.is_empty() {
                    break;
                }
                return Err(err("has a `[` or `]` that is not `[]` after a key"));
            };
            rest = push_key(&mut steps, r).ok_or_else(|| err("has an empty key after a `.`"))?;
        }
        Ok(FieldPath {
            text: text.into(),
            steps,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Takes the key at the start of `rest` (up to `.`, `[` or `]`); `None` when it is empty.
fn push_key<'a>(steps: &mut Vec<Step>, rest: &'a str) -> Option<&'a str> {
    let end = rest.find(['.', '[', ']']).unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    steps.push(Step::Key(rest[..end].into()));
    Some(&rest[end..])
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a path reaches in a record: a value, or nothing where a value should be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot<'a> {
    Value(&'a Value),
    /// The path stops after `depth` steps at `at`, which has no such key (or is not an
    /// object, or not an array for `[]`).
    Missing {
        depth: usize,
        at: &'a Value,
    },
}

/// Every slot `path` reaches in `record`, at most [`MAX_VALUES_PER_LOOKUP`] (and `true` when
/// the lookup stopped there). An empty array reaches nothing: `items[].price` asks for a price
/// in each item, not for items.
pub fn values_at<'a>(record: &'a Value, path: &FieldPath) -> (Vec<Slot<'a>>, bool) {
    let mut out = Vec::new();
    let truncated = walk(record, path, &mut |slot, _| {
        out.push(slot);
        ControlFlow::Continue(())
    })
    .is_break();
    (out, truncated)
}

/// Calls `f` with each slot and the array indices that lead to it; breaks when `f` does or the
/// lookup budget runs out (then it returns `Break`).
fn walk<'a>(
    record: &'a Value,
    path: &FieldPath,
    f: &mut dyn FnMut(Slot<'a>, &[usize]) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut indices = Vec::new();
    let mut budget = MAX_VALUES_PER_LOOKUP;
    walk_from(record, &path.steps, 0, &mut indices, &mut budget, f)
}

fn walk_from<'a>(
    node: &'a Value,
    steps: &[Step],
    depth: usize,
    indices: &mut Vec<usize>,
    budget: &mut usize,
    f: &mut dyn FnMut(Slot<'a>, &[usize]) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if *budget == 0 {
        return ControlFlow::Break(());
    }
    *budget -= 1;
    let Some(step) = steps.get(depth) else {
        return f(Slot::Value(node), indices);
    };
    match (step, node) {
        (Step::Key(k), Value::Object(map)) => match map.get(&**k) {
            Some(v) => walk_from(v, steps, depth + 1, indices, budget, f),
            None => f(Slot::Missing { depth, at: node }, indices),
        },
        (Step::Each, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                indices.push(i);
                let flow = walk_from(item, steps, depth + 1, indices, budget, f);
                indices.pop();
                flow?;
            }
            ControlFlow::Continue(())
        }
        _ => f(Slot::Missing { depth, at: node }, indices),
    }
}

/// The concrete path of a slot: `items[3].price`; steps past `depth` as written.
fn concrete_path(path: &FieldPath, indices: &[usize], depth: usize) -> String {
    let mut out = String::new();
    let mut indices = indices.iter();
    for (n, step) in path.steps.iter().enumerate() {
        match step {
            Step::Key(k) => {
                if n > 0 {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Each => match indices.next().filter(|_| n < depth) {
                Some(i) => {
                    let _ = write!(out, "[{i}]");
                }
                None => out.push_str("[]"),
            },
        }
    }
    out
}

/// The JSON type of a value; numbers with a fraction or an exponent that serde_json keeps as
/// floats are `Float`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    Null,
    Bool,
    Integer,
    Float,
    String,
    Object,
    Array,
}

impl JsonType {
    pub fn of(v: &Value) -> JsonType {
        match v {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Bool,
            Value::Number(n) if n.is_f64() => JsonType::Float,
            Value::Number(_) => JsonType::Integer,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "bool",
            JsonType::Integer => "integer",
            JsonType::Float => "float",
            JsonType::String => "string",
            JsonType::Object => "object",
            JsonType::Array => "array",
        }
    }

    /// "an integer", "a string": for reasons.
    fn with_article(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "a bool",
            JsonType::Integer => "an integer",
            JsonType::Float => "a float",
            JsonType::String => "a string",
            JsonType::Object => "an object",
            JsonType::Array => "an array",
        }
    }
}

/// What `type = "…"` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeRule {
    String,
    /// A number with no fractional part: `7` and `7.0`.
    Integer,
    /// Any number.
    Number,
    Bool,
    Object,
    Array,
}

impl TypeRule {
    const NAMES: &'static str =
        "string, integer (int), number (float), bool (boolean), object or array";

    pub fn parse(name: &str) -> Option<TypeRule> {
        Some(match name {
            "string" => TypeRule::String,
            "integer" | "int" => TypeRule::Integer,
            "number" | "float" => TypeRule::Number,
            "bool" | "boolean" => TypeRule::Bool,
            "object" => TypeRule::Object,
            "array" => TypeRule::Array,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            TypeRule::String => "a string",
            TypeRule::Integer => "an integer",
            TypeRule::Number => "a number",
            TypeRule::Bool => "a bool",
            TypeRule::Object => "an object",
            TypeRule::Array => "an array",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match (self, v) {
            (TypeRule::String, Value::String(_))
            | (TypeRule::Number, Value::Number(_))
            | (TypeRule::Bool, Value::Bool(_))
            | (TypeRule::Object, Value::Object(_))
            | (TypeRule::Array, Value::Array(_)) => true,
            (TypeRule::Integer, Value::Number(n)) => {
                !n.is_f64()
                    || n.as_f64()
                        .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// One check of a rule.
#[derive(Debug, Clone)]
pub enum Check {
    Required,
    NotNull,
    NotEmpty,
    Type(TypeRule),
    Range { min: f64, max: f64 },
    Regex(Regex),
    OneOf(Vec<Value>),
    Fresh { within_ms: u64, future_skew_ms: u64 },
}

impl Check {
    /// The check's name in the rule's name and the API.
    pub const fn kind(&self) -> &'static str {
        match self {
            Check::Required => "required",
            Check::NotNull => "not_null",
            Check::NotEmpty => "not_empty",
            Check::Type(_) => "type",
            Check::Range { .. } => "range",
            Check::Regex(_) => "regex",
            Check::OneOf(_) => "one_of",
            Check::Fresh { .. } => "fresh_within",
        }
    }
}

/// A check on a field: what errors are counted by.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `<field or name>:<check>`, unique in the topic.
    pub name: String,
    pub path: FieldPath,
    pub check: Check,
}

/// A topic's rules, checked and compiled.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The topic's entries as rules; the first entry that cannot be used is the error.
    pub fn compile(topic: &str, entries: &[RuleConfig]) -> Result<RuleSet, RuleConfigError> {
        let fail = |what: String| RuleConfigError {
            topic: topic.to_owned(),
            what,
        };
        if entries.len() > MAX_ENTRIES {
            return Err(fail(format!(
                "{} rule entries, at most {MAX_ENTRIES}: put several checks of one field in one entry",
                entries.len()
            )));
        }
        let mut rules: Vec<Rule> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("rules[{i}] (field {:?})", entry.field);
            let path = FieldPath::parse(&entry.field).map_err(|e| fail(format!("{at}: {e}")))?;
            let label = entry.name.as_deref().unwrap_or(&entry.field);
            if label.is_empty() || label.len() > MAX_PATH_LEN {
                return Err(fail(format!("{at}: name must be 1 to 256 bytes")));
            }
            let mut checks = Vec::new();
            if entry.required {
                checks.push(Check::Required);
            }
            if entry.not_null {
                checks.push(Check::NotNull);
            }
            if entry.not_empty {
                checks.push(Check::NotEmpty);
            }
            if let Some(t) = &entry.type_name {
                let rule = TypeRule::parse(t).ok_or_else(|| {
                    fail(format!(
                        "{at}: unknown type {t:?}; write one of {}",
                        TypeRule::NAMES
                    ))
                })?;
                checks.push(Check::Type(rule));
            }
            if let Some([min, max]) = entry.range {
                if min.is_nan() || max.is_nan() {
                    return Err(fail(format!("{at}: range bounds must be numbers")));
                }
                if min > max {
                    return Err(fail(format!(
                        "{at}: range [{min}, {max}] has its minimum above its maximum; write [{max}, {min}]"
                    )));
                }
                checks.push(Check::Range { min, max });
            }
            if let Some(pattern) = &entry.regex {
                if pattern.len() > MAX_REGEX_LEN {
                    return Err(fail(format!(
                        "{at}: regex is {} bytes, at most {MAX_REGEX_LEN}",
                        pattern.len()
                    )));
                }
                let regex = RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        // regex's message spans lines with a caret under the fault: keep it one line.
                        let msg = e
                            .to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ");
                        fail(format!("{at}: bad regex {pattern:?}: {msg}"))
                    })?;
                checks.push(Check::Regex(regex));
            }
            if let Some(values) = &entry.one_of {
                if values.is_empty() || values.len() > MAX_ONE_OF {
                    return Err(fail(format!(
                        "{at}: one_of needs 1 to {MAX_ONE_OF} values, has {}",
                        values.len()
                    )));
                }
                if let Some(v) = values.iter().find(|v| v.is_array() || v.is_object()) {
                    return Err(fail(format!(
                        "{at}: one_of holds {}, not a string, number, bool or null",
                        quote(v)
                    )));
                }
                checks.push(Check::OneOf(values.clone()));
            }
            match (&entry.fresh_within, &entry.future_skew) {
                (Some(within), skew) => {
                    let within_ms = parse_duration_ms(within)
                        .map_err(|e| fail(format!("{at}: fresh_within {within:?}: {e}")))?;
                    let future_skew_ms = match skew {
                        Some(s) => parse_duration_ms(s)
                            .map_err(|e| fail(format!("{at}: future_skew {s:?}: {e}")))?,
                        None => DEFAULT_FUTURE_SKEW.as_millis() as u64,
                    };
                    checks.push(Check::Fresh {
                        within_ms,
                        future_skew_ms,
                    });
                }
                (None, Some(_)) => {
                    return Err(fail(format!(
                        "{at}: future_skew without fresh_within; add fresh_within = \"5m\" or remove it"
                    )));
                }
                (None, None) => {}
            }
            if checks.is_empty() {
                return Err(fail(format!(
                    "{at}: no check; add required, not_null, not_empty, type, range, regex, one_of or fresh_within"
                )));
            }
            for check in checks {
                let name = format!("{label}:{}", check.kind());
                if rules.iter().any(|r| r.name == name) {
                    return Err(fail(format!(
                        "{at}: a second rule {name:?}; give one of the entries a name"
                    )));
                }
                rules.push(Rule {
                    name,
                    path: path.clone(),
                    check,
                });
            }
        }
        Ok(RuleSet { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules `record`, arrived at `arrival_ms`, breaks, each with the first reason found.
    /// Allocates only for broken rules.
    pub fn evaluate(&self, record: &Value, arrival_ms: EpochMillis) -> Vec<Broken> {
        let mut broken = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let mut reason = None;
            let _ = walk(record, &rule.path, &mut |slot, indices| match check_slot(
                &rule.check,
                slot,
                arrival_ms,
            ) {
                Ok(()) => ControlFlow::Continue(()),
                Err(fault) => {
                    reason = Some(fault.describe(&rule.path, indices, slot));
                    ControlFlow::Break(())
                }
            });
            if let Some(reason) = reason {
                broken.push(Broken {
                    rule: index,
                    reason,
                });
            }
        }
        broken
    }
}

/// A rule a record broke: the rule's index in its [`RuleSet`] and why (`user.id is null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub rule: usize,
    pub reason: String,
}

fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write a duration such as 30s, 5m or 1h"))?;
    if d.is_zero() && text.trim() != "0s" {
        return Err("is zero; write a duration such as 30s, 5m or 1h".into());
    }
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why one value broke a check, before it is written out with the value's concrete path.
enum Fault {
    Missing,
    Null,
    Empty,
    WrongType(TypeRule),
    NotANumber,
    OutOfRange { min: f64, max: f64 },
    NoMatch,
    NotOneOf(usize),
    NotATimestamp,
    Stale { age_ms: u128, within_ms: u64 },
    Future { ahead_ms: u128, skew_ms: u64 },
}

fn check_slot(check: &Check, slot: Slot<'_>, arrival_ms: EpochMillis) -> Result<(), Fault> {
    let v = match slot {
        Slot::Missing { .. } if matches!(check, Check::Required) => return Err(Fault::Missing),
        Slot::Missing { .. } => return Ok(()),
        Slot::Value(Value::Null) if matches!(check, Check::NotNull) => return Err(Fault::Null),
        Slot::Value(Value::Null) => return Ok(()),
        Slot::Value(v) => v,
    };
    match check {
        Check::Required | Check::NotNull => Ok(()),
        Check::NotEmpty => {
            let empty = match v {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if empty { Err(Fault::Empty) } else { Ok(()) }
        }
        Check::Type(t) => {
            if t.accepts(v) {
                Ok(())
            } else {
                Err(Fault::WrongType(*t))
            }
        }
        Check::Range { min, max } => {
            let n = as_number(v).ok_or(Fault::NotANumber)?;
            if n.cmp_f64(*min).is_lt() || n.cmp_f64(*max).is_gt() {
                Err(Fault::OutOfRange {
                    min: *min,
                    max: *max,
                })
            } else {
                Ok(())
            }
        }
        Check::Regex(re) => {
            let matched = match v {
                Value::String(s) => re.is_match(s),
                Value::Number(n) => re.is_match(&n.to_string()),
                Value::Bool(b) => re.is_match(if *b { "true" } else { "false" }),
                _ => return Err(Fault::WrongType(TypeRule::String)),
            };
            if matched { Ok(()) } else { Err(Fault::NoMatch) }
        }
        Check::OneOf(values) => {
            if values.iter().any(|allowed| same_value(allowed, v)) {
                Ok(())
            } else {
                Err(Fault::NotOneOf(values.len()))
            }
        }
        Check::Fresh {
            within_ms,
            future_skew_ms,
        } => {
            let ts = timestamp_ms(v).ok_or(Fault::NotATimestamp)?;
            let arrival = i128::from(arrival_ms);
            if ts < arrival - i128::from(*within_ms) {
                Err(Fault::Stale {
                    age_ms: (arrival - ts) as u128,
                    within_ms: *within_ms,
                })
            } else if ts > arrival + i128::from(*future_skew_ms) {
                Err(Fault::Future {
                    ahead_ms: (ts - arrival) as u128,
                    skew_ms: *future_skew_ms,
                })
            } else {
                Ok(())
            }
        }
    }
}

impl Fault {
    fn describe(&self, path: &FieldPath, indices: &[usize], slot: Slot<'_>) -> String {
        let (depth, value) = match slot {
            Slot::Missing { depth, at } => (depth, Err(at)),
            Slot::Value(v) => (path.steps.len(), Ok(v)),
        };
        let here = concrete_path(path, indices, depth);
        let shown = |v: &Value| format!("{here} is {}", quote(v));
        let mut out = match (self, value) {
            (Fault::Missing, Err(at)) => {
                let parent = if depth == 0 {
                    "the record".to_owned()
                } else {
                    concrete_path_prefix(path, indices, depth)
                };
                if at.is_object() {
                    format!("{here} is missing")
                } else {
                    format!(
                        "{here} is missing ({parent} is {})",
                        JsonType::of(at).with_article()
                    )
                }
            }
            (_, Err(_)) => format!("{here} is missing"),
            (Fault::Missing, Ok(v)) => shown(v),
            (Fault::Null, Ok(_)) => format!("{here} is null"),
            (Fault::Empty, Ok(v)) => format!("{here} is empty ({})", quote(v)),
            (Fault::WrongType(t), Ok(v)) => format!(
                "{here} is {}, not {}",
                JsonType::of(v).with_article(),
                t.name()
            ),
            (Fault::NotANumber, Ok(v)) => format!("{}, not a number", shown(v)),
            (Fault::OutOfRange { min, max }, Ok(v)) => {
                format!("{}, outside the range [{min}, {max}]", shown(v))
            }
            (Fault::NoMatch, Ok(v)) => format!("{}, which does not match the regex", shown(v)),
            (Fault::NotOneOf(n), Ok(v)) => {
                format!("{}, not one of the {n} allowed values", shown(v))
            }
            (Fault::NotATimestamp, Ok(v)) => format!(
                "{}, not a timestamp (epoch s, ms, µs or ns, or RFC 3339)",
                shown(v)
            ),
            (Fault::Stale { age_ms, within_ms }, Ok(v)) => format!(
                "{} at arrival, {} old (fresh_within {})",
                shown(v),
                human_ms(*age_ms),
                human_ms(u128::from(*within_ms))
            ),
            (Fault::Future { ahead_ms, skew_ms }, Ok(v)) => format!(
                "{} at arrival, {} in the future (future_skew {})",
                shown(v),
                human_ms(*ahead_ms),
                human_ms(u128::from(*skew_ms))
            ),
        };
        truncate_at_char(&mut out, 2 * MAX_PATH_LEN + 2 * QUOTE_BYTES);
        out
    }
}

fn concrete_path_prefix(path: &FieldPath, indices: &[usize], depth: usize) -> String {
    let prefix = FieldPath {
        text: Box::from(""),
        steps: path.steps[..depth].to_vec(),
    };
    concrete_path(&prefix, indices, depth)
}

fn human_ms(ms: u128) -> String {
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    // Whole seconds read better in a reason; under a second keeps its milliseconds.
    let d = if ms >= 1000 {
        Duration::from_secs(ms / 1000)
    } else {
        Duration::from_millis(ms)
    };
    humantime::format_duration(d).to_string()
}

/// A number read from a JSON number or a string holding one, compared exactly when whole.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn cmp_f64(self, bound: f64) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match self {
            Num::Float(f) => f.partial_cmp(&bound).unwrap_or(Ordering::Less),
            Num::Int(v) => {
                if bound.is_infinite() {
                    return if bound > 0.0 {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    };
                }
                let floor = bound.floor();
                // i128 holds every whole f64 below 2^127; past that the bound wins outright.
                if floor >= 1.7e38 {
                    return Ordering::Less;
                }
                if floor <= -1.7e38 {
                    return Ordering::Greater;
                }
                let whole = floor as i128;
                match v.cmp(&whole) {
                    Ordering::Equal if floor != bound => Ordering::Less,
                    o => o,
                }
            }
        }
    }
}

fn number_of(n: &Number) -> Option<Num> {
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = n.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        n.as_f64().filter(|f| f.is_finite()).map(Num::Float)
    }
}

/// A JSON number, or a string holding a finite decimal number (`"42"`, `" -1.5e3 "`); `"NaN"`
/// and `"inf"` are not numbers.
fn as_number(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => number_of(n),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i128>() {
                return Some(Num::Int(i));
            }
            let decimal = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
            if !decimal {
                return None;
            }
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Num::Float)
        }
        _ => None,
    }
}

/// Equal as values, numbers by their value (`1` is `1.0`).
fn same_value(allowed: &Value, v: &Value) -> bool {
    match (allowed, v) {
        (Value::Number(a), Value::Number(b)) => match (number_of(a), number_of(b)) {
            (Some(Num::Int(a)), Some(Num::Int(b))) => a == b,
            (Some(Num::Float(a)), Some(Num::Float(b))) => a == b,
            (Some(Num::Int(i)), Some(Num::Float(f))) | (Some(Num::Float(f)), Some(Num::Int(i))) => {
                Num::Int(i).cmp_f64(f).is_eq()
            }
            _ => false,
        },
        _ => allowed == v,
    }
}

/// Largest timestamp accepted, in ms: year 9999.
const MAX_TS_MS: f64 = 253_402_300_800_000.0;

/// A timestamp in epoch milliseconds: a number (or a string of digits) in seconds, ms, µs or
/// ns told apart by size (below 1e11 seconds, 1e14 ms, 1e17 µs), or an RFC 3339 string.
fn timestamp_ms(v: &Value) -> Option<i128> {
    let epoch = |n: f64| -> Option<i128> {
        let a = n.abs();
        let ms = if a < 1e11 {
            n * 1000.0
        } else if a < 1e14 {
            n
        } else if a < 1e17 {
            n / 1000.0
        } else {
            n / 1e6
        };
        (ms.is_finite() && ms.abs() <= MAX_TS_MS).then_some(ms.round() as i128)
    };
    match v {
        Value::Number(n) => n.as_f64().and_then(epoch),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return s.parse::<f64>().ok().and_then(epoch);
            }
            rfc3339_ms(s)
        }
        _ => None,
    }
}

/// RFC 3339 (`2026-01-31T12:00:00.250+01:00`, `…Z`) in epoch ms. humantime reads the UTC form;
/// a numeric offset is taken off here.
fn rfc3339_ms(s: &str) -> Option<i128> {
    if !s.is_ascii() || s.len() < 20 {
        return None;
    }
    let (local, offset_ms) = if let Some(local) = s.strip_suffix(['Z', 'z']) {
        (local, 0)
    } else {
        let (local, offset) = s.split_at(s.len() - 6);
        let b = offset.as_bytes();
        let sign = match b[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits = |x: &[u8]| -> Option<i128> {
            x.iter().try_fold(0i128, |acc, d| {
                d.is_ascii_digit().then(|| acc * 10 + i128::from(d - b'0'))
            })
        };
        if b[3] != b':' {
            return None;
        }
        let (h, m) = (digits(&b[1..3])?, digits(&b[4..6])?);
        if h > 23 || m > 59 {
            return None;
        }
        (local, sign * (h * 3_600_000 + m * 60_000))
    };
    let utc = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    let ms = utc.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(ms as i128 - offset_ms)
}

/// A value for a reason: its JSON text, cut at [`QUOTE_BYTES`] with `…`.
fn quote(v: &Value) -> String {
    let mut out = CappedWriter::new(QUOTE_BYTES);
    let _ = serde_json::to_writer(&mut out, v);
    let mut text = String::from_utf8_lossy(&out.buf).into_owned();
    if out.full {
        truncate_at_char(&mut text, QUOTE_BYTES);
        text.push('…');
    }
    escape_for_display(&text, QUOTE_BYTES + 3)
}

/// Keeps the first `cap` bytes written and says whether more came: a huge value is never
/// serialized whole for a reason.
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    full: bool,
}

impl CappedWriter {
    fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap,
            full: false,
        }
    }
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.cap - self.buf.len();
        if data.len() > room {
            self.buf.extend_from_slice(&data[..room]);
            self.full = true;
            return Err(io::Error::other("preview full"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Text safe to show anywhere as is: control characters, invisible and bidirectional format
/// characters are written as `\u{…}` escapes (HTML escaping is the page's own job).
pub fn escape_for_display(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    for c in text.chars() {
        let hidden = c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}');
        let before = out.len();
        if hidden {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        if out.len() > max_bytes {
            out.truncate(before);
            break;
        }
    }
    out
}

/// A failing record kept for a rule: when, why, from where, and its first bytes, escaped.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingRecord {
    pub at_ms: EpochMillis,
    /// Why the record broke the rule: `user.id is null`.
    pub reason: String,
    /// Where the record was read (`partition 3 offset 1200`, an MQTT topic), escaped and capped.
    pub origin: String,
    /// The record's first [`PREVIEW_RECORD_BYTES`] bytes, invalid UTF-8 replaced, escaped.
    pub record: String,
    /// The record's full size: more than `record` shows when it was cut.
    pub record_bytes: usize,
}

impl FailingRecord {
    pub fn new(at_ms: EpochMillis, reason: &str, origin: &str, payload: &[u8]) -> FailingRecord {
        let head = &payload[..payload.len().min(PREVIEW_RECORD_BYTES)];
        FailingRecord {
            at_ms,
            reason: escape_for_display(reason, 2 * PREVIEW_RECORD_BYTES),
            origin: escape_for_display(origin, ORIGIN_BYTES),
            record: escape_for_display(&String::from_utf8_lossy(head), 2 * PREVIEW_RECORD_BYTES),
            record_bytes: payload.len(),
        }
    }
}

/// Counts of one rule: broken records in 10-second buckets (for the 1, 5 and 15 minute
/// windows), their total since start, and the newest failing records.
#[derive(Debug, Clone, Default)]
struct RuleCounter {
    ring: BucketRing<1>,
    total: u64,
    previews: VecDeque<FailingRecord>,
}

/// A topic's rules with their counts: what the quality observer feeds each parsed record.
#[derive(Debug, Clone)]
pub struct TopicRules {
    set: RuleSet,
    since_ms: EpochMillis,
    /// 0: records checked, 1: error records (breaking at least one rule).
    records: BucketRing<2>,
    records_total: u64,
    error_records_total: u64,
    counters: Vec<RuleCounter>,
}

impl TopicRules {
    pub fn new(set: RuleSet, since_ms: EpochMillis) -> Self {
        let counters = vec![RuleCounter::default(); set.len()];
        Self {
            set,
            since_ms,
            records: BucketRing::default(),
            records_total: 0,
            error_records_total: 0,
            counters,
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.set
    }

    /// Counts a record checked against no rule at all (the set is empty): no parse needed.
    pub fn count_without_rules(&mut self, arrival_ms: EpochMillis) {
        debug_assert!(self.set.is_empty());
        self.records.add(0, 1, arrival_ms);
        self.records_total += 1;
    }

    /// Checks one record (`payload` is its bytes, for the preview; `origin` says where it was
    /// read) and counts it; returns the rules it broke.
    pub fn observe(
        &mut self,
        record: &Value,
        payload: &[u8],
        origin: &str,
        arrival_ms: EpochMillis,
    ) -> Vec<Broken> {
        let broken = self.set.evaluate(record, arrival_ms);
        self.records.add(0, 1, arrival_ms);
        self.records_total += 1;
        if !broken.is_empty() {
            self.records.add(1, 1, arrival_ms);
            self.error_records_total += 1;
        }
        for b in &broken {
            let c = &mut self.counters[b.rule];
            c.ring.add(0, 1, arrival_ms);
            c.total += 1;
            if c.previews.len() == PREVIEWS_PER_RULE {
                c.previews.pop_front();
            }
            c.previews
                .push_back(FailingRecord::new(arrival_ms, &b.reason, origin, payload));
        }
        broken
    }

    /// The figures at `now`: records and error records, and per rule its errors and previews
    /// (newest first).
    pub fn figures(&self, now: EpochMillis) -> RulesFigures {
        let windowed = |ring: &BucketRing<2>, field| {
            WindowCounts::from_fn(|w| ring.window(field, w, now, self.since_ms))
        };
        RulesFigures {
            records_total: self.records_total,
            error_records_total: self.error_records_total,
            records: windowed(&self.records, 0),
            error_records: windowed(&self.records, 1),
            rules: self
                .set
                .rules
                .iter()
                .zip(&self.counters)
                .map(|(rule, c)| RuleFigures {
                    rule: rule.name.clone(),
                    field: rule.path.as_str().to_owned(),
                    check: rule.check.kind(),
                    broken_total: c.total,
                    errors: WindowCounts::from_fn(|w| c.ring.window(0, w, now, self.since_ms)),
                    previews: c.previews.iter().rev().cloned().collect(),
                })
                .collect(),
        }
    }
}

/// A topic's rule figures, as the API shows them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesFigures {
    /// Records checked since start.
    pub records_total: u64,
    /// Records that broke at least one rule since start (each counted once).
    pub error_records_total: u64,
    pub records: WindowCounts,
    pub error_records: WindowCounts,
    pub rules: Vec<RuleFigures>,
}

/// One rule's figures: a record breaking several rules counts once in each.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFigures {
    /// `<field or name>:<check>`.
    pub rule: String,
    pub field: String,
    /// `required`, `not_null`, `not_empty`, `type`, `range`, `regex`, `one_of` or `fresh_within`.
    pub check: &'static str,
    pub broken_total: u64,
    /// Records that broke the rule, per window (`per_minute` is the errors per minute).
    pub errors: WindowCounts,
    /// The newest failing records, newest first, at most [`PREVIEWS_PER_RULE`].
    pub previews: Vec<FailingRecord>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::windows::Window;

    const T0: EpochMillis = 1_800_000_000_000; // on a 10 s boundary

    fn entry(v: Value) -> RuleConfig {
        serde_json::from_value(v).unwrap()
    }

    fn set(entries: Value) -> RuleSet {
        let entries: Vec<RuleConfig> = serde_json::from_value(entries).unwrap();
        RuleSet::compile("t", &entries).unwrap()
    }

    fn compile_err(entries: Value) -> String {
        let entries: Vec<RuleConfig> = serde_json::from_value(entries).unwrap();
        RuleSet::compile("t", &entries).unwrap_err().to_string()
    }

    /// The reasons `record` breaks `rules` with, at T0.
    fn reasons(rules: &RuleSet, record: Value) -> Vec<String> {
        reasons_at(rules, record, T0)
    }

    fn reasons_at(rules: &RuleSet, record: Value, at: EpochMillis) -> Vec<String> {
        rules
            .evaluate(&record, at)
            .into_iter()
            .map(|b| format!("{}: {}", rules.rules()[b.rule].name, b.reason))
            .collect()
    }

    fn path(text: &str) -> FieldPath {
        FieldPath::parse(text).unwrap()
    }

    #[test]
    fn paths_read_keys_and_each_element() {
        assert_eq!(
            path("user.id").steps,
            [Step::Key("user".into()), Step::Key("id".into())]
        );
        assert_eq!(
            path("items[].price").steps,
            [
                Step::Key("items".into()),
                Step::Each,
                Step::Key("price".into())
            ]
        );
        assert_eq!(path("m[][]").steps.len(), 3);
        assert_eq!(path("[].id").steps, [Step::Each, Step::Key("id".into())]);
        assert_eq!(path("ünïcode key-1").as_str(), "ünïcode key-1");
    }

    #[test]
    fn bad_paths_say_what_is_wrong_and_how_to_write_one() {
        let what = |p: &str| FieldPath::parse(p).unwrap_err().what;
        assert_eq!(what(""), "is empty");
        assert_eq!(what("a..b"), "has an empty key after a `.`");
        assert_eq!(what("a."), "has an empty key after a `.`");
        assert_eq!(what(".a"), "has an empty key");
        assert_eq!(what("a.[]"), "has an empty key after a `.`");
        assert_eq!(
            what("a[0]"),
            "has a `[` or `]` that is not `[]` after a key"
        );
        assert_eq!(what("a]"), "has a `[` or `]` that is not `[]` after a key");
        assert_eq!(what("[]x"), "has a `[` or `]` that is not `[]` after a key");
        assert_eq!(what(&"a.".repeat(32).add("a")), "has more than 32 steps");
        assert!(FieldPath::parse(&"a.".repeat(31).add("a")).is_ok());
        assert_eq!(what(&"k".repeat(257)), "is longer than 256 bytes");
        assert_eq!(
            FieldPath::parse("a[1]").unwrap_err().to_string(),
            "field path \"a[1]\": has a `[` or `]` that is not `[]` after a key; write keys joined by dots, `[]` after a key for each element of an array (user.id, items[].price, tags[])"
        );
    }

    trait Add {
        fn add(self, s: &str) -> String;
    }
    impl Add for String {
        fn add(mut self, s: &str) -> String {
            self.push_str(s);
            self
        }
    }

    #[test]
    fn a_lookup_reaches_every_element_and_says_where_values_are_missing() {
        let r = json!({"items": [{"price": 1}, {}, {"price": null}], "user": "x"});
        let (slots, truncated) = values_at(&r, &path("items[].price"));
        assert!(!truncated);
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[0], Slot::Value(&json!(1)));
        assert!(matches!(slots[1], Slot::Missing { depth: 2, .. }));
        assert_eq!(slots[2], Slot::Value(&Value::Null));
        // An empty array reaches nothing; a missing or non-array one is one missing slot.
        assert_eq!(
            values_at(&json!({"items": []}), &path("items[].price")).0,
            []
        );
        assert!(matches!(
            values_at(&json!({}), &path("items[].price")).0[..],
            [Slot::Missing { depth: 0, .. }]
        ));
        assert!(matches!(
            values_at(&r, &path("user.id")).0[..],
            [Slot::Missing {
                depth: 1,
                at: Value::String(_)
            }]
        ));
        // Records that are not objects.
        assert!(matches!(
            values_at(&json!(5), &path("a")).0[..],
            [Slot::Missing { depth: 0, .. }]
        ));
        assert_eq!(
            values_at(&json!([{"id": 1}, {"id": 2}]), &path("[].id")).0,
            [Slot::Value(&json!(1)), Slot::Value(&json!(2))]
        );
    }

    #[test]
    fn a_lookup_stops_at_its_budget() {
        let r = json!({"items": vec![json!({"p": 1}); 5000]});
        let (slots, truncated) = values_at(&r, &path("items[].p"));
        assert!(truncated);
        // The root, the array and each item visited cost one each; each item's price one more.
        assert_eq!(slots.len(), (MAX_VALUES_PER_LOOKUP - 2) / 2);
        let nested = json!({"a": vec![json!({"b": vec![1; 100]}); 100]});
        let (slots, truncated) = values_at(&nested, &path("a[].b[]"));
        assert!(truncated && slots.len() < MAX_VALUES_PER_LOOKUP);
    }

    #[test]
    fn required_not_null_and_not_empty_tell_missing_null_and_empty_apart() {
        let rules =
            set(json!([{"field": "v", "required": true, "not_null": true, "not_empty": true}]));
        assert_eq!(reasons(&rules, json!({"v": "x"})), [] as [String; 0]);
        assert_eq!(reasons(&rules, json!({"v": 0})), [] as [String; 0]);
        assert_eq!(reasons(&rules, json!({"v": false})), [] as [String; 0]);
        assert_eq!(reasons(&rules, json!({})), ["v:required: v is missing"]);
        assert_eq!(
            reasons(&rules, json!({"v": null})),
            ["v:not_null: v is null"]
        );
        assert_eq!(
            reasons(&rules, json!({"v": ""})),
            ["v:not_empty: v is empty (\"\")"]
        );
        assert_eq!(
            reasons(&rules, json!({"v": []})),
            ["v:not_empty: v is empty ([])"]
        );
        assert_eq!(
            reasons(&rules, json!({"v": {}})),
            ["v:not_empty: v is empty ({})"]
        );
        // A whitespace string is not empty.
        assert_eq!(reasons(&rules, json!({"v": " "})), [] as [String; 0]);
    }

    #[test]
    fn a_field_under_a_null_or_a_scalar_is_missing_and_the_reason_says_why() {
        let rules = set(json!([{"field": "user.id", "required": true, "not_null": true}]));
        assert_eq!(
            reasons(&rules, json!({"user": null})),
            ["user.id:required: user.id is missing (user is null)"]
        );
        assert_eq!(
            reasons(&rules, json!({"user": "bob"})),
            ["user.id:required: user.id is missing (user is a string)"]
        );
        for (record, kind) in [
            (json!(5), "an integer"),
            (json!("x"), "a string"),
            (json!([1]), "an array"),
            (json!(null), "null"),
        ] {
            assert_eq!(
                reasons(&rules, record),
                [format!(
                    "user.id:required: user.id is missing (the record is {kind})"
                )]
            );
        }
    }

    #[test]
    fn one_element_breaking_a_rule_breaks_it_for_the_record_and_is_named_by_index() {
        let rules = set(json!([{"field": "items[].price", "required": true, "range": [0, 100]}]));
        assert_eq!(
            reasons(
                &rules,
                json!({"items": [{"price": 5}, {"price": 500}, {"price": 700}]})
            ),
            ["items[].price:range: items[1].price is 500, outside the range [0, 100]"]
        );
        assert_eq!(
            reasons(&rules, json!({"items": [{"price": 5}, {"cost": 1}]})),
            ["items[].price:required: items[1].price is missing"]
        );
        assert_eq!(reasons(&rules, json!({"items": []})), [] as [String; 0]);
        assert_eq!(
            reasons(&rules, json!({"items": "none"})),
            ["items[].price:required: items[].price is missing (items is a string)"]
        );
        let tags = set(json!([{"field": "tags[]", "type": "string", "not_empty": true}]));
        assert_eq!(
            reasons(&tags, json!({"tags": ["a", 3, ""]})),
            [
                "tags[]:not_empty: tags[2] is empty (\"\")",
                "tags[]:type: tags[1] is an integer, not a string"
            ]
        );
    }

    #[test]
    fn types_are_json_types_and_skip_null_and_missing() {
        let cases = [
            (
                "string",
                json!("s"),
                json!(1),
                "is an integer, not a string",
            ),
            (
                "integer",
                json!(7.0),
                json!(7.5),
                "is a float, not an integer",
            ),
            ("int", json!(-7), json!("7"), "is a string, not an integer"),
            ("number", json!(1.5), json!(true), "is a bool, not a number"),
            ("float", json!(1), json!("1.5"), "is a string, not a number"),
            (
                "bool",
                json!(false),
                json!("false"),
                "is a string, not a bool",
            ),
            (
                "boolean",
                json!(true),
                json!(0),
                "is an integer, not a bool",
            ),
            ("object", json!({}), json!([]), "is an array, not an object"),
            ("array", json!([]), json!({}), "is an object, not an array"),
        ];
        for (name, good, bad, why) in cases {
            let rules = set(json!([{"field": "v", "type": name}]));
            assert_eq!(
                reasons(&rules, json!({"v": good})),
                [] as [String; 0],
                "{name}"
            );
            assert_eq!(
                reasons(&rules, json!({"v": bad})),
                [format!("v:type: v {why}")]
            );
            assert_eq!(reasons(&rules, json!({"v": null})), [] as [String; 0]);
            assert_eq!(reasons(&rules, json!({})), [] as [String; 0]);
        }
        // u64 past i64 is an integer too.
        let rules = set(json!([{"field": "v", "type": "integer"}]));
        assert_eq!(reasons(&rules, json!({"v": u64::MAX})), [] as [String; 0]);
    }

    #[test]
    fn ranges_include_their_bounds_and_read_numbers_in_strings() {
        let rules = set(json!([{"field": "v", "range": [0, 100]}]));
        let ok = |v: Value| assert_eq!(reasons(&rules, json!({"v": v})), [] as [String; 0]);
        let broken = |v: Value, why: &str| {
            assert_eq!(
                reasons(&rules, json!({"v": v})),
                [format!("v:range: v is {why}")]
            );
        };
        ok(json!(0));
        ok(json!(100));
        ok(json!(99.999));
        ok(json!("42"));
        ok(json!(" 1e2 "));
        ok(json!(null));
        broken(json!(-1), "-1, outside the range [0, 100]");
        broken(json!(100.5), "100.5, outside the range [0, 100]");
        broken(json!("101"), "\"101\", outside the range [0, 100]");
        broken(
            json!(u64::MAX),
            "18446744073709551615, outside the range [0, 100]",
        );
        broken(json!(1e300), "1e+300, outside the range [0, 100]");
        broken(json!("NaN"), "\"NaN\", not a number");
        broken(json!("inf"), "\"inf\", not a number");
        broken(json!("-infinity"), "\"-infinity\", not a number");
        broken(json!("1e999"), "\"1e999\", not a number");
        broken(json!(""), "\"\", not a number");
        broken(json!("12abc"), "\"12abc\", not a number");
        broken(json!(true), "true, not a number");
        broken(json!([1]), "[1], not a number");
    }

    #[test]
    fn whole_numbers_past_two_to_the_53_compare_exactly() {
        // 2^53 + 1 is not an f64: as a float it would round to the bound and pass.
        let rules = set(json!([{"field": "v", "range": [0, 9_007_199_254_740_992u64]}]));
        assert_eq!(
            reasons(&rules, json!({"v": 9_007_199_254_740_992u64})),
            [] as [String; 0]
        );
        assert_eq!(
            reasons(&rules, json!({"v": 9_007_199_254_740_993u64})).len(),
            1
        );
        assert_eq!(reasons(&rules, json!({"v": "9007199254740993"})).len(), 1);
        // Integers far past any i128 bound, and bounds past i128.
        let wide = set(json!([{"field": "v", "range": [-1e300, 1e300]}]));
        assert_eq!(reasons(&wide, json!({"v": i64::MIN})), [] as [String; 0]);
        assert_eq!(
            reasons(
                &wide,
                json!({"v": "-170141183460469231731687303715884105728"})
            ),
            [] as [String; 0]
        );
        let frac = set(json!([{"field": "v", "range": [-0.5, 2.5]}]));
        assert_eq!(reasons(&frac, json!({"v": 2})), [] as [String; 0]);
        assert_eq!(reasons(&frac, json!({"v": 0})), [] as [String; 0]);
        assert_eq!(reasons(&frac, json!({"v": 3})).len(), 1);
        assert_eq!(reasons(&frac, json!({"v": -1})).len(), 1);
    }

    #[test]
    fn json_has_no_nan_and_numbers_past_f64_are_not_json() {
        // serde_json refuses both: such payloads are invalid JSON, counted by the profile.
        assert!(serde_json::from_str::<Value>("{\"v\": NaN}").is_err());
        assert!(serde_json::from_str::<Value>("{\"v\": 1e400}").is_err());
        // A long integer past u64 reads as a float.
        let v: Value = serde_json::from_str("{\"v\": 123456789012345678901234567890}").unwrap();
        let rules = set(json!([{"field": "v", "type": "integer", "range": [0, 1e40]}]));
        assert_eq!(reasons(&rules, v), [] as [String; 0]);
    }

    #[test]
    fn regexes_match_strings_and_the_text_of_numbers_and_bools() {
        let rules = set(json!([{"field": "zip", "regex": "^[0-9]{5}$"}]));
        assert_eq!(reasons(&rules, json!({"zip": "01234"})), [] as [String; 0]);
        assert_eq!(reasons(&rules, json!({"zip": 12345})), [] as [String; 0]);
        assert_eq!(
            reasons(&rules, json!({"zip": "1234"})),
            ["zip:regex: zip is \"1234\", which does not match the regex"]
        );
        assert_eq!(
            reasons(&rules, json!({"zip": {"a": 1}})),
            ["zip:regex: zip is an object, not a string"]
        );
        let unanchored = set(json!([{"field": "s", "regex": "b"}]));
        assert_eq!(reasons(&unanchored, json!({"s": "abc"})), [] as [String; 0]);
        let bools = set(json!([{"field": "s", "regex": "^true$"}]));
        assert_eq!(reasons(&bools, json!({"s": true})), [] as [String; 0]);
    }

    #[test]
    fn one_of_compares_values_and_numbers_by_value() {
        let rules = set(json!([{"field": "d", "one_of": ["mobile", "desktop", 1, null]}]));
        for ok in [json!("mobile"), json!(1), json!(1.0), json!(null)] {
            assert_eq!(reasons(&rules, json!({"d": ok})), [] as [String; 0], "{ok}");
        }
        assert_eq!(
            reasons(&rules, json!({"d": "tv"})),
            ["d:one_of: d is \"tv\", not one of the 4 allowed values"]
        );
        assert_eq!(
            reasons(&rules, json!({"d": "Mobile"})).len(),
            1,
            "case counts"
        );
        assert_eq!(
            reasons(&rules, json!({"d": "1"})).len(),
            1,
            "a string is not a number"
        );
        assert_eq!(reasons(&rules, json!({"d": 1.5})).len(), 1);
    }

    #[test]
    fn freshness_reads_epoch_seconds_millis_micros_nanos_and_rfc3339() {
        let rules = set(json!([{"field": "ts", "fresh_within": "5m"}]));
        let at = T0;
        let ms = T0 - 60_000; // a minute old
        for ok in [
            json!(ms),
            json!(ms / 1000),
            json!(ms as f64 / 1000.0),
            json!(ms * 1000),
            json!(ms * 1_000_000),
            json!(ms.to_string()),
            json!("2027-01-15T07:59:00Z"),
            json!("2027-01-15T08:59:00.000+01:00"),
            json!("2027-01-15T02:29:00-05:30"),
            json!(null),
        ] {
            assert_eq!(
                reasons_at(&rules, json!({"ts": ok}), 1_800_000_000_000),
                [] as [String; 0],
                "{ok}"
            );
        }
        assert_eq!(T0, 1_800_000_000_000, "2027-01-15T08:00:00Z");
        assert_eq!(reasons_at(&rules, json!({}), at), [] as [String; 0]);
        assert_eq!(
            reasons_at(&rules, json!({"ts": T0 - 301_000}), at),
            [format!(
                "ts:fresh_within: ts is {} at arrival, 5m 1s old (fresh_within 5m)",
                T0 - 301_000
            )]
        );
        assert_eq!(
            reasons_at(&rules, json!({"ts": "2027-01-15T07:50:00Z"}), at),
            [
                "ts:fresh_within: ts is \"2027-01-15T07:50:00Z\" at arrival, 10m old (fresh_within 5m)"
            ]
        );
        // Exactly at the limit is fresh; the future is allowed up to the skew (1 m).
        assert_eq!(
            reasons_at(&rules, json!({"ts": T0 - 300_000}), at),
            [] as [String; 0]
        );
        assert_eq!(
            reasons_at(&rules, json!({"ts": T0 + 60_000}), at),
            [] as [String; 0]
        );
        assert_eq!(
            reasons_at(&rules, json!({"ts": T0 + 61_000}), at),
            [format!(
                "ts:fresh_within: ts is {} at arrival, 1m 1s in the future (future_skew 1m)",
                T0 + 61_000
            )]
        );
        for bad in [
            json!("yesterday"),
            json!(true),
            json!("2027-01-15T07:59:00+25:00"),
            json!(1e300),
            json!(-1e300),
            json!({}),
        ] {
            assert_eq!(
                reasons_at(&rules, json!({"ts": bad.clone()}), at),
                [format!(
                    "ts:fresh_within: ts is {}, not a timestamp (epoch s, ms, µs or ns, or RFC 3339)",
                    quote(&bad)
                )]
            );
        }
        let skewed = set(json!([{"field": "ts", "fresh_within": "1h", "future_skew": "0s"}]));
        assert_eq!(reasons_at(&skewed, json!({"ts": T0 + 1}), at).len(), 1);
        // Arrival far before the epoch's limits does not overflow.
        assert_eq!(reasons_at(&rules, json!({"ts": 0}), u64::MAX).len(), 1);
        assert_eq!(
            reasons_at(&rules, json!({"ts": 253_402_300_799_999u64}), 0).len(),
            1
        );
    }

    #[test]
    fn a_record_breaking_several_rules_lists_each_once() {
        let rules = set(json!([
            {"field": "user.id", "required": true, "type": "string"},
            {"field": "page", "not_empty": true},
        ]));
        assert_eq!(
            reasons(&rules, json!({"user": {}, "page": ""})),
            [
                "user.id:required: user.id is missing",
                "page:not_empty: page is empty (\"\")"
            ]
        );
    }

    #[test]
    fn config_errors_name_the_topic_the_entry_and_the_fix() {
        assert_eq!(
            compile_err(json!([{"field": "v", "regex": "(a"}])),
            "quality.t: rules[0] (field \"v\"): bad regex \"(a\": regex parse error: (a ^ error: unclosed group"
        );
        assert_eq!(
            compile_err(json!([{"field": "v", "range": [10, 1]}])),
            "quality.t: rules[0] (field \"v\"): range [10, 1] has its minimum above its maximum; write [1, 10]"
        );
        assert_eq!(
            compile_err(json!([{"field": "a", "required": true}, {"field": "v", "type": "text"}])),
            "quality.t: rules[1] (field \"v\"): unknown type \"text\"; write one of string, integer (int), number (float), bool (boolean), object or array"
        );
        assert_eq!(
            compile_err(json!([{"field": "v"}])),
            "quality.t: rules[0] (field \"v\"): no check; add required, not_null, not_empty, type, range, regex, one_of or fresh_within"
        );
        assert_eq!(
            compile_err(json!([{"field": "v", "regex": "a"}, {"field": "v", "regex": "b"}])),
            "quality.t: rules[1] (field \"v\"): a second rule \"v:regex\"; give one of the entries a name"
        );
        assert!(
            RuleSet::compile(
                "t",
                &[
                    entry(json!({"field": "v", "regex": "a"})),
                    entry(json!({"field": "v", "name": "v2", "regex": "b"})),
                ]
            )
            .is_ok()
        );
        assert_eq!(
            compile_err(json!([{"field": "ts", "future_skew": "1m"}])),
            "quality.t: rules[0] (field \"ts\"): future_skew without fresh_within; add fresh_within = \"5m\" or remove it"
        );
        assert!(
            compile_err(json!([{"field": "ts", "fresh_within": "soon"}]))
                .starts_with("quality.t: rules[0] (field \"ts\"): fresh_within \"soon\": ")
        );
        assert_eq!(
            compile_err(json!([{"field": "v", "one_of": []}])),
            "quality.t: rules[0] (field \"v\"): one_of needs 1 to 1024 values, has 0"
        );
        assert_eq!(
            compile_err(json!([{"field": "v", "one_of": [[1]]}])),
            "quality.t: rules[0] (field \"v\"): one_of holds [1], not a string, number, bool or null"
        );
        assert!(
            compile_err(json!([{"field": "a..b", "required": true}])).starts_with(
                "quality.t: rules[0] (field \"a..b\"): field path \"a..b\": has an empty key"
            )
        );
        let many = vec![json!({"field": "v", "required": true}); MAX_ENTRIES + 1];
        assert!(compile_err(json!(many)).starts_with("quality.t: 65 rule entries, at most 64"));
    }

    #[test]
    fn regexes_are_bounded_in_length_and_compiled_size() {
        let e = compile_err(json!([{"field": "v", "regex": "a".repeat(MAX_REGEX_LEN + 1)}]));
        assert_eq!(
            e,
            "quality.t: rules[0] (field \"v\"): regex is 1025 bytes, at most 1024"
        );
        // Short, but compiles to far more than 1 MiB.
        let e = compile_err(json!([{"field": "v", "regex": "\\w{1000}\\w{1000}"}]));
        assert!(e.contains("exceeds size limit"), "{e}");
    }

    #[test]
    fn the_documented_toml_reads_and_compiles() {
        // The example of the module's documentation and docs/quality-rules.md.
        let text = r#"
            kafka = "main"
            topic = "visits"
            rules = [
              { field = "user.id", required = true, not_null = true, not_empty = true, type = "string" },
              { field = "items[].price", type = "number", range = [0, 100] },
              { field = "page", regex = "^/[a-z/]*$" },
              { field = "device", one_of = ["mobile", "desktop", "tablet"] },
              { field = "ts", fresh_within = "5m", future_skew = "30s" },
              { field = "page", name = "page_short", regex = "^.{0,64}$" },
            ]
            drift = { min_count = 50, null_ratio_jump = 0.1 }
        "#;
        let table: QualityTopicConfig = toml::from_str(text).unwrap();
        let rules = table.compile("visits").unwrap();
        let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "user.id:required",
                "user.id:not_null",
                "user.id:not_empty",
                "user.id:type",
                "items[].price:type",
                "items[].price:range",
                "page:regex",
                "device:one_of",
                "ts:fresh_within",
                "page_short:regex",
            ]
        );
        assert!(matches!(
            rules.rules()[8].check,
            Check::Fresh {
                within_ms: 300_000,
                future_skew_ms: 30_000
            }
        ));
        assert_eq!(table.drift.min_count, 50);
    }

    #[test]
    fn a_quality_table_names_one_source() {
        let table = |v: Value| serde_json::from_value::<QualityTopicConfig>(v).unwrap();
        let rules = json!([{"field": "a", "required": true}]);
        let kafka = table(json!({"kafka": "main", "topic": "t", "rules": rules}));
        assert_eq!(kafka.compile("v").unwrap().len(), 1);
        assert!(
            table(json!({"mqtt": "edge", "filter": "a/#"}))
                .compile("v")
                .is_ok()
        );
        let one_source = "quality.v: name one source: kafka = \"<cluster>\" with topic = \"<topic>\", or mqtt = \"<broker>\" with filter = \"<filter>\"";
        for bad in [
            json!({}),
            json!({"kafka": "main"}),
            json!({"mqtt": "edge", "topic": "t"}),
            json!({"kafka": "main", "topic": "t", "mqtt": "edge", "filter": "#"}),
        ] {
            assert_eq!(table(bad).compile("v").unwrap_err().to_string(), one_source);
        }
        let drift =
            table(json!({"mqtt": "e", "filter": "#", "drift": {"disappear_after_windows": 0}}));
        assert_eq!(
            drift.compile("v").unwrap_err().to_string(),
            "quality.v: drift.disappear_after_windows is 0; write 1 or more"
        );
        let bad_rule = table(json!({"mqtt": "e", "filter": "#", "rules": [{"field": "a"}]}));
        assert!(
            bad_rule
                .compile("v")
                .unwrap_err()
                .to_string()
                .starts_with("quality.v: rules[0]")
        );
    }

    #[test]
    fn unknown_keys_in_an_entry_are_refused() {
        let e = serde_json::from_value::<RuleConfig>(json!({"field": "v", "requried": true}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("unknown field `requried`"), "{e}");
        let topic: QualityTopicConfig = serde_json::from_value(json!({
            "kafka": "main", "topic": "visits",
            "rules": [{"field": "user.id", "required": true, "range": [0, 100]}],
        }))
        .unwrap();
        assert_eq!(topic.rules[0].range, Some([0.0, 100.0]));
        assert_eq!(topic.mqtt, None);
        assert_eq!(topic.drift, DriftConfig::default());
        let topic: QualityTopicConfig = serde_json::from_value(json!({
            "mqtt": "edge", "filter": "visits/#", "drift": {"min_count": 5},
        }))
        .unwrap();
        assert_eq!((topic.drift.min_count, topic.drift.warm_up_windows), (5, 3));
    }

    #[test]
    fn errors_are_counted_per_rule_and_a_record_once_as_an_error_record() {
        let rules = set(json!([
            {"field": "a", "required": true},
            {"field": "b", "not_null": true},
        ]));
        let mut topic = TopicRules::new(rules, T0);
        let both = json!({"b": null});
        topic.observe(&both, b"{\"b\":null}", "p0@1", T0 + 1_000);
        topic.observe(&json!({"a": 1, "b": 2}), b"{}", "p0@2", T0 + 2_000);
        topic.observe(&json!({"a": 1, "b": null}), b"{}", "p0@3", T0 + 61_000);
        let f = topic.figures(T0 + 70_000);
        assert_eq!((f.records_total, f.error_records_total), (3, 2));
        assert_eq!(f.rules[0].rule, "a:required");
        assert_eq!(f.rules[0].check, "required");
        assert_eq!((f.rules[0].broken_total, f.rules[1].broken_total), (1, 2));
        // The 1 m window ending at the last 10 s boundary (70 s) holds 10 s..70 s.
        let one = f.rules[1].errors.get(Window::OneMinute);
        assert_eq!((one.count, one.per_minute), (1.0, Some(1.0)));
        assert_eq!(f.error_records.get(Window::OneMinute).count, 1.0);
        assert_eq!(f.records.get(Window::FiveMinutes).count, 3.0);
        assert_eq!(
            f.records.get(Window::FiveMinutes).per_minute,
            None,
            "not covered yet"
        );
        assert_eq!(f.rules[1].previews[0].origin, "p0@3", "newest first");
        assert_eq!(f.rules[0].previews[0].reason, "a is missing");
        assert_eq!(f.rules[0].previews[0].record, "{\"b\":null}");
    }

    #[test]
    fn previews_keep_the_newest_few_cut_and_escaped() {
        let rules = set(json!([{"field": "a", "required": true}]));
        let mut topic = TopicRules::new(rules, T0);
        for i in 0..8u64 {
            topic.observe(&json!({}), format!("r{i}").as_bytes(), "o", T0 + i);
        }
        let mut big = b"\x1b[31m\xff\xe2\x80\xae".to_vec();
        big.extend(vec![b'x'; 2000]);
        topic.observe(&json!({}), &big, "evil\norigin", T0 + 9);
        let previews = &topic.figures(T0 + 10).rules[0].previews;
        assert_eq!(previews.len(), PREVIEWS_PER_RULE);
        let records: Vec<&str> = previews[1..].iter().map(|p| p.record.as_str()).collect();
        assert_eq!(records, ["r7", "r6", "r5", "r4"]);
        let p = &previews[0];
        assert!(
            p.record.starts_with("\\u{1b}[31m\u{fffd}\\u{202e}xx"),
            "{}",
            p.record
        );
        assert_eq!(
            p.record.len(),
            "\\u{1b}[31m\u{fffd}\\u{202e}".len() + PREVIEW_RECORD_BYTES - 9
        );
        assert_eq!(p.record_bytes, 2009);
        assert_eq!(p.origin, "evil\\u{a}origin");
    }

    #[test]
    fn the_display_escape_caps_and_hides_invisible_characters() {
        assert_eq!(
            escape_for_display("a\u{0}b\u{200b}c\u{feff}", 100),
            "a\\u{0}b\\u{200b}c\\u{feff}"
        );
        assert_eq!(escape_for_display("ééé", 4), "éé");
        assert_eq!(escape_for_display("a\u{7}", 3), "a");
    }

    #[test]
    fn reasons_quote_a_huge_value_cut_short() {
        let rules =
            set(json!([{"field": "v", "type": "string", "not_empty": true, "range": [0, 1]}]));
        let huge = json!({"v": vec!["x".repeat(100); 10_000]});
        let r = reasons(&rules, huge);
        assert_eq!(r[0], "v:type: v is an array, not a string");
        assert!(
            r[1].starts_with("v:range: v is [\"xxx") && r[1].ends_with("…, not a number"),
            "{}",
            r[1]
        );
        assert!(r[1].len() < 200);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-c0-9 .:TZ+-]{0,30}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 200, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn evaluation_never_panics_and_lookups_stay_bounded(
            record in arb_json(),
            field in "(\\[\\]\\.)?[a-c]{1,2}(\\[\\]){0,2}(\\.[a-c](\\[\\]){0,2}){0,4}",
            arrival in any::<u64>(),
        ) {
            let (slots, _) = values_at(&record, &path(&field));
            prop_assert!(slots.len() <= MAX_VALUES_PER_LOOKUP);
            let rules = RuleSet::compile("t", &[entry(json!({
                "field": field, "required": true, "not_null": true, "not_empty": true,
                "type": "integer", "range": [-1.5, 1e19], "regex": "^[ab]", "one_of": ["a", 1, null],
                "fresh_within": "5m",
            }))]).unwrap();
            let broken = rules.evaluate(&record, arrival);
            prop_assert!(broken.len() <= rules.len());
            for b in &broken {
                prop_assert!(b.reason.len() <= 2 * MAX_PATH_LEN + 2 * QUOTE_BYTES);
            }
        }

        #[test]
        fn any_path_text_parses_or_is_refused_without_panicking(text in ".{0,300}") {
            if let Ok(p) = FieldPath::parse(&text) {
                prop_assert!(p.steps.len() <= MAX_PATH_STEPS && !p.steps.is_empty());
            }
        }
    }
}
