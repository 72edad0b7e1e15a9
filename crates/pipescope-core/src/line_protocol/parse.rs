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
    pub rejected: Vec<Rejected>,
}

/// Reads a `/write` body. Lines without a timestamp get `now_ms`.
pub fn parse_body(body: &str, precision: Precision, now_ms: EpochMillis) -> Parsed {
    let mut out = Parsed::default();
    for (index, text) in split_lines(body).into_iter().enumerate() {
        let number = index + 1;
        let trimmed = text.trim_start_matches([' ', '\t', '\r']);
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        out.lines += 1;
        let line = match parse_line(trimmed.trim_end_matches(['\r', ' ', '\t'])) {
            Ok(line) => line,
            Err(reason) => {
                out.rejected.push(Rejected {
                    line: number,
                    reason,
                });
                continue;
            }
        };
        let time_ms = match line.timestamp {
            None => now_ms,
            Some(t) => match precision.to_millis(t) {
                Some(ms) => ms,
                None => {
                    out.rejected.push(Rejected {
                        line: number,
                        reason: format!("timestamp {t} is before 1970 or too large"),
                    });
                    continue;
                }
            },
        };
        let labels = Labels::new(line.tags);
        let mut strings = Vec::new();
        for (field, value) in line.fields {
            let value = match value {
                FieldValue::Number(v) => v,
                FieldValue::String => {
                    strings.push(field);
                    continue;
                }
            };
            out.samples.push(Sample::new(
                format!("{}_{field}", line.measurement),
                labels.clone(),
                time_ms,
                value,
            ));
        }
        if !strings.is_empty() {
            out.rejected.push(Rejected {
                line: number,
                reason: format!(
                    "string field {} left out (only numbers and booleans are stored; its other fields are kept)",
                    strings.join(", ")
                ),
            });
        }
    }
    out
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

/// Splits a body at newlines that are not inside a quoted string field value.
fn split_lines(body: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let (mut start, mut in_fields, mut quoted, mut escaped) = (0, false, false, false);
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ' ' if !quoted => in_fields = true,
            '"' if in_fields => quoted = !quoted,
            '\n' if !quoted => {
                lines.push(&body[start..i]);
                start = i + 1;
                in_fields = false;
            }
            _ => {}
        }
    }
    if start < body.len() {
        lines.push(&body[start..]);
    }
    lines
}

/// Reads up to (not including) the first unescaped character of `stops`, unescaping the
/// characters of `specials`. Returns the text and the stop character found (None at the end).
fn read_part(rest: &mut &str, stops: &[char], specials: &[char]) -> (String, Option<char>) {
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
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
            return (out, Some(c));
        } else {
            out.push(c);
        }
    }
    *rest = "";
    (out, None)
}

const KEY_SPECIALS: &[char] = &[',', '=', ' '];

fn parse_line(text: &str) -> Result<Line, String> {
    let mut rest = text;
    let (measurement, mut stop) = read_part(&mut rest, &[',', ' '], &[',', ' ']);
    if measurement.is_empty() {
        return Err("the measurement is missing".into());
    }
    let mut tags = Vec::new();
    while stop == Some(',') {
        let (key, at) = read_part(&mut rest, KEY_SPECIALS, KEY_SPECIALS);
        if at != Some('=') || key.is_empty() {
            return Err(format!("malformed tag {key:?}: write tags as ,key=value"));
        }
        let (value, at) = read_part(&mut rest, &[',', ' '], KEY_SPECIALS);
        if value.is_empty() {
            return Err(format!("tag {key:?} has no value"));
        }
        tags.push((key, value));
        stop = at;
    }
    if stop != Some(' ') {
        return Err("no fields: write at least one field after a space, e.g. value=1".into());
    }
    let mut fields = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        let (key, at) = read_part(&mut rest, KEY_SPECIALS, KEY_SPECIALS);
        if at != Some('=') || key.is_empty() {
            return Err(format!(
                "malformed field {key:?}: write fields as key=value"
            ));
        }
        let (value, at) = if let Some(quoted) = rest.strip_prefix('"') {
            rest = quoted;
            let (_, at) = read_part(&mut rest, &['"'], &['"', '\\']);
            if at.is_none() {
                return Err(format!("field {key:?}: the string has no closing quote"));
            }
            let after = rest.chars().next();
            rest = rest.get(after.map_or(0, char::len_utf8)..).unwrap_or("");
            if !matches!(after, None | Some(',') | Some(' ')) {
                return Err(format!("field {key:?}: text after the closing quote"));
            }
            (FieldValue::String, after)
        } else {
            let (raw, at) = read_part(&mut rest, &[',', ' '], &[]);
            (FieldValue::Number(number(&key, &raw)?), at)
        };
        fields.push((key, value));
        match at {
            Some(',') => continue,
            Some(_) => break,
            None => {
                return Ok(Line {
                    measurement,
                    tags,
                    fields,
                    timestamp: None,
                });
            }
        }
    }
    let time = rest.trim_matches(' ');
    let timestamp = if time.is_empty() {
        None
    } else {
        Some(
            time.parse::<i64>()
                .map_err(|_| format!("timestamp {time:?} is not an integer"))?,
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
    let bad = || format!("field {key:?}: {raw:?} is not a number, an integer or a boolean");
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
        let parsed = parse_body(body, Precision::Milliseconds, 0);
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
        let at = |body: &str, precision| parse_body(body, precision, 42).samples[0].time_ms;
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
        let parsed = parse_body(body, Precision::Milliseconds, 0);
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
            let parsed = parse_body(line, Precision::Milliseconds, 0);
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
        );
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
    fn a_quoted_newline_does_not_split_a_line() {
        let parsed = parse_body(
            "m s=\"two\nlines\",v=1 7\nn v=2 8",
            Precision::Milliseconds,
            0,
        );
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
        let parsed = parse_body(&body, Precision::Milliseconds, 0);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(
            parsed.samples,
            vec![
                Sample::new("lag offsets_value", labels, 1_700_000_000_123, 0.1),
                sample("m_value", &[], 5, -2.5e-8),
            ]
        );
    }
}
