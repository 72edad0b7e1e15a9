//! The line-protocol parser and encoders.

use pipescope_core::Labels;
use pipescope_core::line_protocol::mapping::LineMapping;
use pipescope_core::line_protocol::parse::{
    MAX_SAMPLES_PER_BODY, MEMORY_FLOOR_BYTES, MEMORY_PER_BODY_BYTE, Precision, REASONS_KEPT,
    RESERVED_PREFIX, parse_body,
};
use pipescope_core::line_protocol::write_line;

const PRECISIONS: [Precision; 6] = [
    Precision::Nanoseconds,
    Precision::Microseconds,
    Precision::Milliseconds,
    Precision::Seconds,
    Precision::Minutes,
    Precision::Hours,
];

fn check_body(body: &str, precision: Precision) {
    let Ok(parsed) = parse_body(body, precision, 1_700_000_000_000) else {
        return;
    };
    assert!(parsed.samples.len() <= MAX_SAMPLES_PER_BODY);
    let kept: usize = parsed
        .samples
        .iter()
        .map(|s| std::mem::size_of_val(s) + s.metric.len())
        .sum();
    assert!(kept <= body.len() * MEMORY_PER_BODY_BYTE + MEMORY_FLOOR_BYTES);
    assert!(parsed.rejected.len() <= REASONS_KEPT);
    assert!(parsed.rejected_lines <= parsed.lines);
    for s in &parsed.samples {
        assert!(!s.metric.starts_with(RESERVED_PREFIX), "{}", s.metric);
        assert!(s.value.is_finite());
    }
}

/// A refusal the parser may give to what an encoder wrote: over a limit, or a time before 1970.
fn allowed(reason: &str) -> bool {
    reason.contains("MAX_") || reason.contains("before 1970")
}

/// The `/write` parser on any text, and what the encoders write read back (a sample from any
/// names, and `sink influx`'s line from any JSON record): no panic, the limits hold, and what
/// pipescope writes parses.
pub fn line_protocol(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if let Ok(body) = std::str::from_utf8(rest) {
        check_body(body, PRECISIONS[usize::from(first) % PRECISIONS.len()]);
        // The same text as a metric and labels (parts split at \u{1}): written, then read back
        // as one sample of the same value.
        let mut parts = body.split('\u{1}');
        let metric = format!("m{}", parts.next().unwrap_or(""));
        let rest: Vec<&str> = parts.collect();
        let labels = Labels::new(rest.chunks(2).map(|p| (p[0], *p.get(1).unwrap_or(&"v"))));
        let mut line = String::new();
        if write_line(&mut line, &metric, &labels, 1, 2.5).is_ok() {
            let parsed = parse_body(&line, Precision::Milliseconds, 0).unwrap();
            assert!(
                parsed.rejected.iter().all(|r| allowed(&r.reason)),
                "{line:?}: {:?}",
                parsed.rejected
            );
            if parsed.rejected_lines == 0 {
                assert_eq!(parsed.samples.len(), 1, "{line:?}");
                assert_eq!(parsed.samples[0].value, 2.5);
            }
        }
    }
    // The same bytes as a JSON record for the sink's mapping: its line must parse.
    let mapping = LineMapping {
        measurement: "machine state".into(),
        tags: vec![
            ("machine".into(), "m".into()),
            ("site".into(), "w.s".into()),
        ],
        fields: vec![
            ("value".into(), "v".into()),
            ("n".into(), "a.0".into()),
            ("note".into(), "s".into()),
        ],
        time: Some("t".into()),
    };
    if let Ok(line) = mapping.to_line(rest, 5) {
        let Ok(parsed) = parse_body(&line, Precision::Milliseconds, 0) else {
            panic!("a mapped line is refused whole: {line:?}");
        };
        for r in &parsed.rejected {
            // A string field is left out by design; a JSON time before 1970 and values over
            // the limits are refused by the parser; nothing else may be.
            assert!(
                r.reason.starts_with("string field note") || allowed(&r.reason),
                "{line:?}: {}",
                r.reason
            );
        }
    }
}
