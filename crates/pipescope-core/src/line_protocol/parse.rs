//! Line protocol read back into samples, as the InfluxDB 1.x `/write` endpoint takes it.
//!
//! Escapes are read as InfluxDB 1.x reads them (and as [`super::write_line`] writes them): a
//! backslash before a character special at that place (`,` and space in a measurement; `,`,
//! `=` and space in tag keys, tag values and field keys; `"` and `\` in a string value) stands
//! for that character, any other backslash is kept as it is. (InfluxData's
//! `influxdb-line-protocol` crate would do this too, but it brings a second, older
//! proc-macro stack — snafu 0.7 on syn 1 — into the build for some 150 lines.)
//!
//! Each numeric or boolean field of a line becomes one sample: metric `<measurement>_<field>`,
//! labels = the tags. Integers and floats are kept as f64, booleans as 1 and 0. String fields
//! cannot be stored: they are left out and their line is counted as rejected (its other fields
//! are kept). A line that does not parse is rejected whole. Nothing else is dropped.

use crate::clock::EpochMillis;
use crate::sample::{Labels, Sample};

/// Unit of the timestamps in a body (`precision=` of `/write`; nanoseconds when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "" | "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "µ" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            other => {
                return Err(format!(
                    "unknown precision {other:?}: use n, u, ms, s, m or h"
                ));
            }
        })
    }
}

impl Precision {
    /// A timestamp in this unit as epoch milliseconds (rounded down); None before 1970 or past
    /// what milliseconds can hold.
    pub fn to_millis(self, time: i64) -> Option<EpochMillis> {
        let time = u64::try_from(time).ok()?;
        match self {
            Precision::Nanoseconds => Some(time / 1_000_000),
            Precision::Microseconds => Some(time / 1_000),
            Precision::Milliseconds => Some(time),
            Precision::Seconds => time.checked_mul(1_000),
            Precision::Minutes => time.checked_mul(60_000),
            Precision::Hours => time.checked_mul(3_600_000),
        }
    }
}

/// Longest measurement, tag key and field key, in bytes (a metric name is
/// `<measurement>_<field>`, so at most twice this).
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE_BYTES: usize = 4096;
/// Most tags one line may carry.
pub const MAX_TAGS_PER_LINE: usize = 64;
/// Most fields one line may carry.
pub const MAX_FIELDS_PER_LINE: usize = 256;
/// Most samples one body may give.
pub const MAX_SAMPLES_PER_BODY: usize = 1_000_000;
/// What the samples of a body may take in memory: this many bytes per byte of body, plus
/// [`MEMORY_FLOOR_BYTES`]. Ordinary lines take 2 to 8 times their size (`m a=1,b=2`, the
/// densest, 14); a long measurement repeated in every field's metric name hundreds of times.
pub const MEMORY_PER_BODY_BYTE: usize = 16;
/// Memory any body may use for its samples whatever its size.
pub const MEMORY_FLOOR_BYTES: usize = 1 << 20;
/// Metric names that belong to pipescope's own series; samples named so are refused.
pub const RESERVED_PREFIX: &str = "pipescope_";
/// Rejected lines whose reason is kept (the count covers all of them).
pub const REASONS_KEPT: usize = 5;
/// Characters of a name or value quoted in a reason.
const QUOTED_CHARS: usize = 64;

/// A line that was not (or not wholly) stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number in the body.
    pub line: usize,
    pub reason: String,
}

/// What a body gave.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    /// Lines that held a point (blank lines and comments not counted).
    pub lines: usize,
    /// Lines not (or not wholly) stored.
    pub rejected_lines: usize,
    /// The first [`REASONS_KEPT`] of them, with why.
    pub rejected: Vec<Rejected>,
    /// Samples left out because their metric name starts with [`RESERVED_PREFIX`].
    pub reserved_samples: usize,
}

impl Parsed {
    fn reject(&mut self, line: usize, reason: String) {
        self.rejected_lines += 1;
        if self.rejected.len() < REASONS_KEPT {
            self.rejected.push(Rejected { line, reason });
        }
    }
}

/// Why a whole body is refused (nothing of it stored): it must be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "the body holds more than {MAX_SAMPLES_PER_BODY} samples (the limit per write): split it into smaller writes"
    )]
    TooManySamples,
    #[error(
        "the body's samples would take more than {budget} bytes in memory (the limit is {MEMORY_PER_BODY_BYTE} bytes per byte of body, plus {MEMORY_FLOOR_BYTES}; each field's sample repeats the measurement name): split the body, or write shorter measurement names or fewer fields per line"
    )]
    OverMemoryBudget { budget: usize },
}

/// Bytes a sample takes besides its shared labels.
fn sample_bytes(metric: &str) -> usize {
    std::mem::size_of::<Sample>() + metric.len()
}

fn labels_bytes(tags: &[(String, String)]) -> usize {
    tags.iter()
        .map(|(k, v)| std::mem::size_of::<(String, String)>() + k.len() + v.len())
        .sum()
}

/// Reads a `/write` body. Lines without a timestamp get `now_ms`. Lines that break a per-line
/// limit are rejected; a body whose samples break [`MAX_SAMPLES_PER_BODY`] or the memory budget
/// is refused whole.
pub fn parse_body(
    body: &str,
    precision: Precision,
    now_ms: EpochMillis,
) -> Result<Parsed, BodyError> {
    let budget = body
        .len()
        .saturating_mul(MEMORY_PER_BODY_BYTE)
        .saturating_add(MEMORY_FLOOR_BYTES);
    let mut used = 0usize;
    let mut out = Parsed::default();
    for (index, text) in split_lines(body).enumerate() {
        let number = index + 1;
        let trimmed = text.trim_start_matches([' ', '\t', '\r']);
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        out.lines += 1;
        let line = match parse_line(trimmed.trim_end_matches(['\r', ' ', '\t'])) {
            Ok(line) => line,
            Err(reason) => {
                out.reject(number, reason);
                continue;
            }
        };
        let time_ms = match line.timestamp {
            None => now_ms,
            Some(t) => match precision.to_millis(t) {
                Some(ms) => ms,
                None => {
                    out.reject(number, format!("timestamp {t} is before 1970 or too large"));
                    continue;
                }
            },
        };
        used = used.saturating_add(labels_bytes(&line.tags));
        let labels = Labels::new(line.tags);
        let mut strings = Vec::new();
        let mut reserved = Vec::new();
        for (field, value) in line.fields {
            let value = match value {
                FieldValue::Number(v) => v,
                FieldValue::String => {
                    strings.push(field);
                    continue;
                }
            };
            let metric = format!("{}_{field}", line.measurement);
            if metric.starts_with(RESERVED_PREFIX) {
                out.reserved_samples += 1;
                reserved.push(metric);
                continue;
            }
            if out.samples.len() >= MAX_SAMPLES_PER_BODY {
                return Err(BodyError::TooManySamples);
            }
            used = used.saturating_add(sample_bytes(&metric));
            if used > budget {
                return Err(BodyError::OverMemoryBudget { budget });
            }
            out.samples
                .push(Sample::new(metric, labels.clone(), time_ms, value));
        }
        let mut reasons = Vec::new();
        if !strings.is_empty() {
            reasons.push(format!(
                "string field {} left out (only numbers and booleans are stored; its other fields are kept)",
                quoted_list(&strings)
            ));
        }
        if !reserved.is_empty() {
            reasons.push(format!(
                "{} left out: names starting with {RESERVED_PREFIX} are pipescope's own series (rename the measurement)",
                quoted_list(&reserved)
            ));
        }
        if !reasons.is_empty() {
            out.reject(number, reasons.join("; "));
        }
    }
    Ok(out)
}

/// Names joined with ", ", each shortened, the list too.
fn quoted_list(names: &[String]) -> String {
    let mut text: Vec<String> = names.iter().take(5).map(|n| short(n)).collect();
    if names.len() > 5 {
        text.push(format!("and {} more", names.len() - 5));
    }
    text.join(", ")
}

/// A name or value as a reason quotes it: its first characters.
fn short(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

/// [`short`], in quotes.
fn q(text: &str) -> String {
    format!("{:?}", short(text))
}

enum FieldValue {
    /// Floats, integers (`3i`, `3u`) and booleans (1 or 0).
    Number(f64),
    String,
}

struct Line {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue)>,
    timestamp: Option<i64>,
}

/// Where a character is in a line, for [`split_lines`].
#[derive(Clone, Copy, PartialEq)]
enum At {
    /// Measurement and tags.
    Head,
    /// A field key (`started` once past the spaces before it).
    Key {
        started: bool,
    },
    ValueStart,
    Value,
    /// Inside a string field value.
    Quoted,
    Time,
}

/// The body's lines, split at newlines that are not inside a string field value. It reads
/// escapes as [`parse_line`] does (a backslash escapes only what is special where it stands),
/// so that a quote or a backslash in a name never swallows the newline after it.
fn split_lines(body: &str) -> impl Iterator<Item = &str> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut at = At::Head;
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            if c == '\\' {
                let escapes = match at {
                    At::Head | At::Key { .. } => next.is_some_and(|n| KEY_SPECIALS.contains(&n)),
                    At::Quoted => next.is_some(),
                    _ => false,
                };
                if escapes {
                    chars.next();
                }
                if let At::Key { .. } = at {
                    at = At::Key { started: true };
                }
                continue;
            }
            if c == '\n' && at != At::Quoted {
                let line = &rest[..i];
                rest = &rest[i + 1..];
                return Some(line);
            }
            at = match (at, c) {
                (At::Head, ' ') => At::Key { started: false },
                (At::Key { started: false }, ' ') => At::Key { started: false },
                (At::Key { .. }, '=') => At::ValueStart,
                (At::Key { .. }, ' ') => At::Time,
                (At::Key { .. }, _) => At::Key { started: true },
                (At::ValueStart, '"') => At::Quoted,
                (At::ValueStart | At::Value, ',') => At::Key { started: false },
                (At::ValueStart | At::Value, ' ') => At::Time,
                (At::ValueStart, _) => At::Value,
                (At::Quoted, '"') => At::Value,
                (other, _) => other,
            };
        }
        Some(std::mem::take(&mut rest))
    })
}

/// A part longer than its limit.
struct TooLong;

/// Reads up to (not including) the first unescaped character of `stops`, unescaping the
/// characters of `specials`, keeping at most `max` bytes. Returns the text and the stop
/// character found (None at the end).
fn read_part(
    rest: &mut &str,
    stops: &[char],
    specials: &[char],
    max: usize,
) -> Result<(String, Option<char>), TooLong> {
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if out.len() > max {
            return Err(TooLong);
        }
        if c == '\\' {
            if let Some(&(_, next)) = chars.peek()
                && specials.contains(&next)
            {
                out.push(next);
                chars.next();
                continue;
            }
            out.push(c);
        } else if stops.contains(&c) {
            *rest = &rest[i + c.len_utf8()..];
            return Ok((out, Some(c)));
        } else {
            out.push(c);
        }
    }
    if out.len() > max {
        return Err(TooLong);
    }
    *rest = "";
    Ok((out, None))
}

/// Skips a string field value after its opening quote, up to its closing quote (without copying
/// it: it is not stored). False when it has none.
fn skip_string(rest: &mut &str) -> bool {
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            *rest = &rest[i + 1..];
            return true;
        }
    }
    false
}

const KEY_SPECIALS: &[char] = &[',', '=', ' '];

fn too_long(what: &str, limit: &str, max: usize) -> String {
    format!("{what} is longer than {max} bytes ({limit}): shorten it")
}

fn parse_line(text: &str) -> Result<Line, String> {
    let mut rest = text;
    let (measurement, mut stop) = read_part(&mut rest, &[',', ' '], &[',', ' '], MAX_NAME_BYTES)
        .map_err(|_| too_long("the measurement", "MAX_NAME_BYTES", MAX_NAME_BYTES))?;
    if measurement.is_empty() {
        return Err("the measurement is missing".into());
    }
    let mut tags = Vec::new();
    while stop == Some(',') {
        if tags.len() == MAX_TAGS_PER_LINE {
            return Err(format!(
                "more than {MAX_TAGS_PER_LINE} tags (MAX_TAGS_PER_LINE): write fewer tags"
            ));
        }
        let (key, at) = read_part(&mut rest, KEY_SPECIALS, KEY_SPECIALS, MAX_NAME_BYTES)
            .map_err(|_| too_long("a tag key", "MAX_NAME_BYTES", MAX_NAME_BYTES))?;
        if at != Some('=') || key.is_empty() {
            return Err(format!(
                "malformed tag {}: write tags as ,key=value",
                q(&key)
            ));
        }
        let (value, at) = read_part(&mut rest, &[',', ' '], KEY_SPECIALS, MAX_TAG_VALUE_BYTES)
            .map_err(|_| {
                too_long(
                    &format!("the value of tag {}", q(&key)),
                    "MAX_TAG_VALUE_BYTES",
                    MAX_TAG_VALUE_BYTES,
                )
            })?;
        if value.is_empty() {
            return Err(format!("tag {} has no value", q(&key)));
        }
        tags.push((key, value));
        stop = at;
    }
    if stop != Some(' ') {
        return Err("no fields: write at least one field after a space, e.g. value=1".into());
    }
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    let at_end = loop {
        if fields.len() == MAX_FIELDS_PER_LINE {
            return Err(format!(
                "more than {MAX_FIELDS_PER_LINE} fields (MAX_FIELDS_PER_LINE): split the line"
            ));
        }
        rest = rest.trim_start_matches(' ');
        let (key, at) = read_part(&mut rest, KEY_SPECIALS, KEY_SPECIALS, MAX_NAME_BYTES)
            .map_err(|_| too_long("a field key", "MAX_NAME_BYTES", MAX_NAME_BYTES))?;
        if at != Some('=') || key.is_empty() {
            return Err(format!(
                "malformed field {}: write fields as key=value",
                q(&key)
            ));
        }
        let (value, at) = if let Some(quoted) = rest.strip_prefix('"') {
            rest = quoted;
            if !skip_string(&mut rest) {
                return Err(format!(
                    "field {}: the string has no closing quote",
                    q(&key)
                ));
            }
            let after = rest.chars().next();
            rest = rest.get(after.map_or(0, char::len_utf8)..).unwrap_or("");
            if !matches!(after, None | Some(',') | Some(' ')) {
                return Err(format!("field {}: text after the closing quote", q(&key)));
            }
            (FieldValue::String, after)
        } else {
            let (raw, at) = read_part(&mut rest, &[',', ' '], &[], MAX_NAME_BYTES)
                .map_err(|_| format!("field {}: the value is not a number", q(&key)))?;
            (FieldValue::Number(number(&key, &raw)?), at)
        };
        fields.push((key, value));
        match at {
            Some(',') => continue,
            Some(_) => break false,
            None => break true,
        }
    };
    // A key given twice keeps its last value, as InfluxDB does.
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<(String, FieldValue)> = Vec::with_capacity(fields.len());
    for (key, value) in fields.into_iter().rev() {
        if seen.insert(key.clone()) {
            unique.push((key, value));
        }
    }
    unique.reverse();
    let fields = unique;
    if at_end {
        return Ok(Line {
            measurement,
            tags,
            fields,
            timestamp: None,
        });
    }
    let time = rest.trim_matches(' ');
    let timestamp = if time.is_empty() {
        None
    } else {
        Some(
            time.parse::<i64>()
                .map_err(|_| format!("timestamp {} is not an integer", q(time)))?,
        )
    };
    Ok(Line {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// A field value that is not a string: float, integer (`i`, `u` suffix) or boolean.
fn number(key: &str, raw: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "field {}: {} is not a number, an integer or a boolean",
            q(key),
            q(raw)
        )
    };
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    if let Some(int) = raw.strip_suffix('i') {
        return int.parse::<i64>().map(|v| v as f64).map_err(|_| bad());
    }
    if let Some(int) = raw.strip_suffix('u') {
        return int.parse::<u64>().map(|v| v as f64).map_err(|_| bad());
    }
    // Rust also reads "inf" and "NaN"; line protocol has neither.
    if raw.is_empty()
        || !raw
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
    {
        return Err(bad());
    }
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_protocol::write_line;

    fn sample(metric: &str, labels: &[(&str, &str)], time_ms: u64, value: f64) -> Sample {
        Sample::new(
            metric.to_string(),
            Labels::new(labels.iter().copied()),
            time_ms,
            value,
        )
    }

    #[test]
    fn fields_become_metrics_and_tags_labels() {
        let body = "machine,site=a,line=l1 temp=21.5,count=3i,on=true,off=F 1700000000123\n";
        let parsed = parse_body(body, Precision::Milliseconds, 0).unwrap();
        assert_eq!(parsed.lines, 1);
        assert!(parsed.rejected.is_empty());
        let labels = [("line", "l1"), ("site", "a")];
        assert_eq!(
            parsed.samples,
            vec![
                sample("machine_temp", &labels, 1_700_000_000_123, 21.5),
                sample("machine_count", &labels, 1_700_000_000_123, 3.0),
                sample("machine_on", &labels, 1_700_000_000_123, 1.0),
                sample("machine_off", &labels, 1_700_000_000_123, 0.0),
            ]
        );
    }

    #[test]
    fn precision_and_missing_timestamps() {
        let at =
            |body: &str, precision| parse_body(body, precision, 42).unwrap().samples[0].time_ms;
        assert_eq!(
            at("m v=1 1700000000123456789", Precision::Nanoseconds),
            1_700_000_000_123
        );
        assert_eq!(
            at("m v=1 1700000000123456", Precision::Microseconds),
            1_700_000_000_123
        );
        assert_eq!(
            at("m v=1 1700000000", Precision::Seconds),
            1_700_000_000_000
        );
        assert_eq!(at("m v=1 2", Precision::Minutes), 120_000);
        assert_eq!(at("m v=1 2", Precision::Hours), 7_200_000);
        assert_eq!(at("m v=1", Precision::Milliseconds), 42);
        assert_eq!("u".parse(), Ok(Precision::Microseconds));
        assert_eq!("".parse(), Ok(Precision::Nanoseconds));
        assert_eq!(
            "d".parse::<Precision>(),
            Err("unknown precision \"d\": use n, u, ms, s, m or h".to_string())
        );
    }

    #[test]
    fn strings_and_bad_lines_are_rejected_per_line_and_nothing_else_is_lost() {
        let body = "a v=1 1000\n\
                    \n\
                    # a comment\n\
                    b note=\"hi\",v=2 2000\n\
                    c v= 3000\n\
                    d v=4 -5\n\
                    e v=5 5000\n";
        let parsed = parse_body(body, Precision::Milliseconds, 0).unwrap();
        assert_eq!(parsed.lines, 5);
        assert_eq!(
            parsed.samples,
            vec![
                sample("a_v", &[], 1000, 1.0),
                sample("b_v", &[], 2000, 2.0),
                sample("e_v", &[], 5000, 5.0),
            ]
        );
        let rejected: Vec<usize> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(rejected, vec![4, 5, 6]);
        assert_eq!(
            parsed.rejected[1].reason,
            "field \"v\": \"\" is not a number, an integer or a boolean"
        );
        assert_eq!(
            parsed.rejected[0].reason,
            "string field note left out (only numbers and booleans are stored; its other fields are kept)"
        );
        assert_eq!(
            parsed.rejected[2].reason,
            "timestamp -5 is before 1970 or too large"
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let reason = |line: &str| {
            let parsed = parse_body(line, Precision::Milliseconds, 0).unwrap();
            assert!(parsed.samples.is_empty(), "{line}");
            parsed.rejected[0].reason.clone()
        };
        assert_eq!(
            reason("m"),
            "no fields: write at least one field after a space, e.g. value=1"
        );
        assert_eq!(reason(",t=1 v=1"), "the measurement is missing");
        assert_eq!(
            reason("m,t v=1"),
            "malformed tag \"t\": write tags as ,key=value"
        );
        assert_eq!(reason("m,t= v=1"), "tag \"t\" has no value");
        assert_eq!(
            reason("m v"),
            "malformed field \"v\": write fields as key=value"
        );
        assert_eq!(
            reason("m v=inf"),
            "field \"v\": \"inf\" is not a number, an integer or a boolean"
        );
        assert_eq!(
            reason("m v=1.5i"),
            "field \"v\": \"1.5i\" is not a number, an integer or a boolean"
        );
        assert_eq!(reason("m v=1 12x"), "timestamp \"12x\" is not an integer");
        assert_eq!(
            reason("m s=\"open"),
            "field \"s\": the string has no closing quote"
        );
    }

    #[test]
    fn escapes_are_read_as_influxdb_reads_them() {
        let parsed = parse_body(
            "a\\ b\\,c,k\\=1=x\\ y\\,z,p=q\\r f\\,g=-1.5e3,s=\"say \\\"hi\\\" a,b=c\",u=7u 9\r\n",
            Precision::Milliseconds,
            0,
        )
        .unwrap();
        let labels = [("k=1", "x y,z"), ("p", "q\\r")];
        assert_eq!(
            parsed.samples,
            vec![
                sample("a b,c_f,g", &labels, 9, -1500.0),
                sample("a b,c_u", &labels, 9, 7.0),
            ]
        );
        assert_eq!(parsed.rejected.len(), 1);
    }

    #[test]
    fn a_quote_in_a_name_does_not_swallow_the_next_line() {
        // Found by the round-trip property test: `\\` before an escaped space, then a quote
        // in a tag value, once read as the start of a string running over the newline.
        let body = "e,\\\\ k=\"A value=0.0 0\nn v=2 8\nq,a\"b=c d\"e=1 9\n";
        let parsed = parse_body(body, Precision::Milliseconds, 0).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(
            parsed.samples,
            vec![
                sample("e_value", &[("\\ k", "\"A")], 0, 0.0),
                sample("n_v", &[], 8, 2.0),
                sample("q_d\"e", &[("a\"b", "c")], 9, 1.0),
            ]
        );
    }

    #[test]
    fn a_quoted_newline_does_not_split_a_line() {
        let parsed = parse_body(
            "m s=\"two\nlines\",v=1 7\nn v=2 8",
            Precision::Milliseconds,
            0,
        )
        .unwrap();
        assert_eq!(parsed.lines, 2);
        assert_eq!(parsed.samples.len(), 2);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].line, 1);
    }

    #[test]
    fn what_the_encoder_writes_reads_back_the_same() {
        let labels = Labels::new([("topic", "a b,c=d"), ("group", "g\\1")]);
        let mut body = String::new();
        write_line(&mut body, "lag offsets", &labels, 1_700_000_000_123, 0.1).unwrap();
        write_line(&mut body, "m", &Labels::default(), 5, -2.5e-8).unwrap();
        let parsed = parse_body(&body, Precision::Milliseconds, 0).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(
            parsed.samples,
            vec![
                Sample::new("lag offsets_value", labels, 1_700_000_000_123, 0.1),
                sample("m_value", &[], 5, -2.5e-8),
            ]
        );
    }

    /// Bytes the samples of a parse keep: what `/write` holds until the store has them.
    fn kept_bytes(parsed: &Parsed) -> usize {
        parsed.samples.len() * std::mem::size_of::<Sample>()
            + parsed.samples.iter().map(|s| s.metric.len()).sum::<usize>()
    }

    #[test]
    fn a_long_measurement_repeated_in_every_field_is_not_amplified() {
        // Before the limits: 64 KiB × 2,000 fields kept 131 MB for an 80 KB body.
        let mut body = "x".repeat(64 << 10);
        for i in 0..2000 {
            body.push(if i == 0 { ' ' } else { ',' });
            body.push_str(&format!("f{i}=1"));
        }
        let parsed = parse_body(&body, Precision::Milliseconds, 0).unwrap();
        assert!(
            kept_bytes(&parsed) <= MEMORY_PER_BODY_BYTE * body.len(),
            "{} bytes kept for a body of {}",
            kept_bytes(&parsed),
            body.len()
        );
        assert_eq!(parsed.rejected_lines, 1);
        assert_eq!(
            parsed.rejected[0].reason,
            "the measurement is longer than 1024 bytes (MAX_NAME_BYTES): shorten it"
        );

        // Within the name limit but many long-named fields per line: over the memory budget,
        // the body is refused whole.
        let measurement = "y".repeat(MAX_NAME_BYTES);
        let fields: Vec<String> = (0..MAX_FIELDS_PER_LINE)
            .map(|i| format!("f{i}=1"))
            .collect();
        let line = format!("{measurement} {}\n", fields.join(","));
        let body = line.repeat(8);
        let budget = body.len() * MEMORY_PER_BODY_BYTE + MEMORY_FLOOR_BYTES;
        assert_eq!(
            parse_body(&body, Precision::Milliseconds, 0),
            Err(BodyError::OverMemoryBudget { budget })
        );
        assert!(
            BodyError::OverMemoryBudget { budget }
                .to_string()
                .contains("split the body")
        );
    }

    #[test]
    fn a_field_given_many_times_is_one_sample_with_the_last_value() {
        // Before: one sample per repetition, ~20 times the body in memory.
        let body = format!("m a=1{},a=2", ",a=1".repeat(200));
        let parsed = parse_body(&body, Precision::Milliseconds, 7).unwrap();
        assert_eq!(parsed.samples, vec![sample("m_a", &[], 7, 2.0)]);
        assert!(parsed.rejected.is_empty());
    }

    #[test]
    fn per_line_limits_reject_the_line_and_say_which_limit() {
        let reason = |line: String| {
            let parsed = parse_body(&line, Precision::Milliseconds, 0).unwrap();
            assert!(parsed.samples.is_empty());
            parsed.rejected[0].reason.clone()
        };
        let long = "k".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            reason(format!("m,{long}=v f=1")),
            "a tag key is longer than 1024 bytes (MAX_NAME_BYTES): shorten it"
        );
        assert_eq!(
            reason(format!("m {long}=1")),
            "a field key is longer than 1024 bytes (MAX_NAME_BYTES): shorten it"
        );
        assert_eq!(
            reason(format!("m,t={} f=1", "v".repeat(MAX_TAG_VALUE_BYTES + 1))),
            "the value of tag \"t\" is longer than 4096 bytes (MAX_TAG_VALUE_BYTES): shorten it"
        );
        let tags: String = (0..=MAX_TAGS_PER_LINE)
            .map(|i| format!(",t{i}=v"))
            .collect();
        assert_eq!(
            reason(format!("m{tags} f=1")),
            "more than 64 tags (MAX_TAGS_PER_LINE): write fewer tags"
        );
        let fields: Vec<String> = (0..=MAX_FIELDS_PER_LINE)
            .map(|i| format!("f{i}=1"))
            .collect();
        assert_eq!(
            reason(format!("m {}", fields.join(","))),
            "more than 256 fields (MAX_FIELDS_PER_LINE): split the line"
        );
        // At the limits the line is stored.
        let at_limit = format!(
            "{},{}={} {}=1",
            "m".repeat(MAX_NAME_BYTES),
            "k".repeat(MAX_NAME_BYTES),
            "v".repeat(MAX_TAG_VALUE_BYTES),
            "f".repeat(MAX_NAME_BYTES)
        );
        let parsed = parse_body(&at_limit, Precision::Milliseconds, 0).unwrap();
        assert_eq!((parsed.samples.len(), parsed.rejected_lines), (1, 0));
        // A reason quotes at most the first 64 characters of what it names.
        assert_eq!(
            reason(format!("m {}", "z".repeat(500))),
            format!(
                "malformed field \"{}...\": write fields as key=value",
                "z".repeat(64)
            )
        );
    }

    #[test]
    fn too_many_samples_refuse_the_body() {
        let body =
            "m a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10\n".repeat(MAX_SAMPLES_PER_BODY / 10 + 1);
        let refused = parse_body(&body, Precision::Milliseconds, 0).unwrap_err();
        assert_eq!(refused, BodyError::TooManySamples);
        assert_eq!(
            refused.to_string(),
            "the body holds more than 1000000 samples (the limit per write): split it into smaller writes"
        );
    }

    #[test]
    fn only_the_first_reasons_are_kept_and_every_rejected_line_is_counted() {
        let body = "bad\n".repeat(100_000);
        let parsed = parse_body(&body, Precision::Milliseconds, 0).unwrap();
        assert_eq!(parsed.rejected_lines, 100_000);
        assert_eq!(parsed.rejected.len(), REASONS_KEPT);
        assert_eq!(parsed.lines, 100_000);
    }

    #[test]
    fn pipescope_own_names_are_refused_and_counted() {
        let body = "pipescope_kafka,group=g group_lag_offsets=1,x=2 5\n\
                    pipescope kafka_x=1 5\n\
                    pipescopes v=3 5\n";
        let parsed = parse_body(body, Precision::Milliseconds, 0).unwrap();
        assert_eq!(parsed.samples, vec![sample("pipescopes_v", &[], 5, 3.0)]);
        assert_eq!(parsed.reserved_samples, 3);
        assert_eq!(parsed.rejected_lines, 2);
        assert_eq!(
            parsed.rejected[0].reason,
            "pipescope_kafka_group_lag_offsets, pipescope_kafka_x left out: names starting \
             with pipescope_ are pipescope's own series (rename the measurement)"
        );
    }
}

#[cfg(test)]
mod round_trip {
    use proptest::prelude::*;

    use super::*;
    use crate::line_protocol::write_line;

    /// Names and values with every character the escaping handles; none ends with a backslash
    /// (no spelling keeps it) or starts with a space.
    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9,= \"\\\\é_.-]{0,15}[a-zA-Z0-9,=\"é_.-]"
    }

    proptest! {
        #[test]
        fn what_write_line_writes_parses_back_the_same(
            metric in text().prop_filter("not pipescope's own", |m| !m.starts_with("pipescope")),
            pairs in prop::collection::vec((text(), text()), 0..6),
            time_ms in 0..i64::MAX as u64,
            value in any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ) {
            let labels = Labels::new(pairs);
            let mut body = String::new();
            write_line(&mut body, &metric, &labels, time_ms, value).unwrap();
            let parsed = parse_body(&body, Precision::Milliseconds, 0).unwrap();
            prop_assert!(parsed.rejected.is_empty(), "{body:?}: {:?}", parsed.rejected);
            prop_assert_eq!(
                parsed.samples,
                vec![Sample::new(format!("{metric}_value"), labels, time_ms, value)]
            );
        }

        #[test]
        fn any_text_parses_within_the_limits(body in any::<String>()) {
            let parsed = parse_body(&body, Precision::Nanoseconds, 0).unwrap();
            prop_assert!(parsed.rejected_lines <= parsed.lines);
            prop_assert!(parsed.rejected.len() <= REASONS_KEPT);
            for s in &parsed.samples {
                prop_assert!(!s.metric.starts_with(RESERVED_PREFIX));
            }
        }
    }
}
