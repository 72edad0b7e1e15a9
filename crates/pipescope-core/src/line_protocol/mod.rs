//! InfluxDB line protocol: `measurement,tag=v value=1.5 1700000000000` (timestamps in ms).
//!
//! Escaping follows InfluxDB's rules: in a measurement, commas and spaces; in tag keys, tag
//! values and field keys, commas, equals signs and spaces. InfluxDB (checked on 1.6) keeps other
//! backslashes as they are, so `p\,q` is written `p\\,q`; but a backslash at the very end would
//! escape the separator after it and no spelling avoids that, so trailing backslashes are left
//! out. Line protocol has no escape for a newline either: it is written as the two characters
//! `\n`.
//!
//! [`mapping`] turns JSON records into lines (`pipescope sink influx`); [`parse`] reads lines
//! back into samples (the `/write` endpoint); [`isolate`] finds the lines a write refused.

pub mod isolate;
pub mod mapping;
pub mod parse;
pub mod quota;

use std::fmt::Write;

use crate::clock::EpochMillis;
use crate::sample::{Labels, Sample};

/// The one field every line carries.
pub const FIELD: &str = "value";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleLineError {
    #[error(
        "metric {metric}{labels}: value {value} cannot be written (line protocol has no NaN or infinity)"
    )]
    NotFinite {
        metric: String,
        labels: String,
        value: String,
    },
    #[error("a sample has an empty metric name")]
    EmptyMeasurement,
}

fn escape(out: &mut String, text: &str, special: &[char]) {
    for c in text.trim_end_matches('\\').chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// True when `text` escapes to nothing (it is empty once its trailing backslashes are left out):
/// such a tag would read back as one without a value.
pub fn escapes_to_empty(text: &str) -> bool {
    text.trim_end_matches('\\').is_empty()
}

pub fn escape_measurement(out: &mut String, text: &str) {
    escape(out, text, &[',', ' ']);
}

/// For tag keys, tag values and field keys.
pub fn escape_key(out: &mut String, text: &str) {
    escape(out, text, &[',', '=', ' ']);
}

/// Appends one line (with its newline) for a sample: measurement = metric, tags = labels (empty
/// values left out: InfluxDB does not store them), field `value`, timestamp in milliseconds.
pub fn write_line(
    out: &mut String,
    metric: &str,
    labels: &Labels,
    time_ms: EpochMillis,
    value: f64,
) -> Result<(), SampleLineError> {
    if escapes_to_empty(metric) {
        return Err(SampleLineError::EmptyMeasurement);
    }
    if !value.is_finite() {
        return Err(SampleLineError::NotFinite {
            metric: metric.to_string(),
            labels: labels.to_string(),
            value: value.to_string(),
        });
    }
    escape_measurement(out, metric);
    for (k, v) in labels.iter() {
        if escapes_to_empty(v) || escapes_to_empty(k) {
            continue;
        }
        out.push(',');
        escape_key(out, k);
        out.push('=');
        escape_key(out, v);
    }
    out.push(' ');
    out.push_str(FIELD);
    // `{:?}` always writes a float InfluxDB reads back exactly: 1.0, 0.1, 1e300, -2.5e-8.
    let _ = write!(out, "={value:?} {time_ms}");
    out.push('\n');
    Ok(())
}

/// A string field value: quoted, with its quotes and backslashes escaped.
pub fn write_string_field(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

pub fn sample_line(out: &mut String, sample: &Sample) -> Result<(), SampleLineError> {
    write_line(
        out,
        &sample.metric,
        &sample.labels,
        sample.time_ms,
        sample.value,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(metric: &str, labels: &[(&str, &str)], value: f64) -> String {
        let mut out = String::new();
        write_line(
            &mut out,
            metric,
            &Labels::new(labels.iter().copied()),
            1_700_000_000_123,
            value,
        )
        .unwrap();
        out
    }

    #[test]
    fn plain_line() {
        assert_eq!(
            line(
                "pipescope_kafka_group_lag_offsets",
                &[("topic", "orders"), ("group", "g1")],
                15.0
            ),
            "pipescope_kafka_group_lag_offsets,group=g1,topic=orders value=15.0 1700000000123\n"
        );
        assert_eq!(line("m", &[], 0.1), "m value=0.1 1700000000123\n");
        assert_eq!(line("m", &[], 1e300), "m value=1e300 1700000000123\n");
        assert_eq!(line("m", &[], -2.5e-8), "m value=-2.5e-8 1700000000123\n");
    }

    #[test]
    fn measurement_escapes_comma_and_space_only() {
        assert_eq!(
            line("a b,c=d", &[], 1.0),
            "a\\ b\\,c=d value=1.0 1700000000123\n"
        );
    }

    #[test]
    fn tags_escape_comma_equals_and_space() {
        assert_eq!(
            line("m", &[("k ey", "a=b,c d")], 1.0),
            "m,k\\ ey=a\\=b\\,c\\ d value=1.0 1700000000123\n"
        );
    }

    #[test]
    fn backslashes_never_swallow_a_separator_and_newlines_are_spelled_out() {
        // trailing backslashes are left out, so the comma after them stays a separator
        assert_eq!(
            line("m", &[("a", "x\\\\"), ("b", "y")], 1.0),
            "m,a=x,b=y value=1.0 1700000000123\n"
        );
        // other backslashes stay as they are, before an escaped character too
        assert_eq!(
            line("m", &[("a", "p\\ q\\r\\\\s")], 1.0),
            "m,a=p\\\\ q\\r\\\\s value=1.0 1700000000123\n"
        );
        assert_eq!(
            line("m", &[("a", "two\nlines")], 1.0),
            "m,a=two\\nlines value=1.0 1700000000123\n"
        );
    }

    #[test]
    fn empty_tag_values_are_left_out() {
        assert_eq!(
            line("m", &[("a", ""), ("b", "1")], 2.0),
            "m,b=1 value=2.0 1700000000123\n"
        );
        // What escapes to nothing too: `m,a= value=2.0` would not parse.
        assert_eq!(
            line("m", &[("a", "\\\\"), ("\\", "x"), ("b", "1")], 2.0),
            "m,b=1 value=2.0 1700000000123\n"
        );
    }

    #[test]
    fn nan_infinity_and_empty_names_are_errors() {
        let mut out = String::new();
        let labels = Labels::new([("t", "x")]);
        assert_eq!(
            write_line(&mut out, "m", &labels, 1, f64::NAN)
                .unwrap_err()
                .to_string(),
            "metric m{t=\"x\"}: value NaN cannot be written (line protocol has no NaN or infinity)"
        );
        assert!(write_line(&mut out, "m", &labels, 1, f64::INFINITY).is_err());
        assert_eq!(
            write_line(&mut out, "", &labels, 1, 1.0),
            Err(SampleLineError::EmptyMeasurement)
        );
        assert!(out.is_empty(), "nothing is written for a bad sample");
    }
}
