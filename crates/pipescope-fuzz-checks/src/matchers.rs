//! Label matchers as the store API reads them from `match`.

use pipescope_core::Labels;
use pipescope_core::tsdb::matcher::{matches_all, parse_selector};

/// A selector, then (after the first NUL) NUL-separated label names and values of a series.
/// Parsing any text must not panic; what parses matches the series without panicking, and the
/// matchers written back (`Display`) parse to the same matchers.
pub fn label_matchers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let selector = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let labels = Labels::new(rest.chunks(2).map(|p| (p[0], *p.get(1).unwrap_or(&""))));
    let Ok(matchers) = parse_selector(selector) else {
        return;
    };
    let all = matches_all(&matchers, &labels);
    assert_eq!(all, matchers.iter().all(|m| m.matches(&labels)));
    if matchers.is_empty() {
        assert!(all, "no matcher matches every series");
    }
    let written: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    let written = format!("{{{}}}", written.join(","));
    let again = parse_selector(&written)
        .unwrap_or_else(|e| panic!("{selector:?} written back as {written:?} is refused: {e}"));
    assert_eq!(again, matchers, "{selector:?} written back as {written:?}");
    assert_eq!(matches_all(&again, &labels), all);
}
