//! Periodic profile reports' file names and which of them to keep: `<quality>-<UTC time>.html`,
//! the time as `20261205T020800Z` (sorts as it is written, no characters a file system refuses).

use std::time::{Duration, UNIX_EPOCH};

use crate::EpochMillis;

/// `YYYYMMDDTHHMMSSZ`.
const STAMP_LEN: usize = 16;
const EXTENSION: &str = ".html";

/// A quality name as a file name's start: letters, digits, '-' and '_' kept, anything else
/// (path separators, dots) becomes '_'.
pub fn file_stem(quality: &str) -> String {
    quality
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn stamp(at_ms: EpochMillis) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(at_ms);
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace(['-', ':'], "")
}

fn parse_stamp(stamp: &str) -> Option<EpochMillis> {
    let b = stamp.as_bytes();
    let shaped = b.len() == STAMP_LEN
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shaped {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    let time = humantime::parse_rfc3339(&rfc3339).ok()?;
    let ms = time.duration_since(UNIX_EPOCH).ok()?.as_millis();
    EpochMillis::try_from(ms).ok()
}

/// The report file of `quality` written at `at_ms` (to the second).
pub fn file_name(quality: &str, at_ms: EpochMillis) -> String {
    format!("{}-{}{EXTENSION}", file_stem(quality), stamp(at_ms))
}

/// When the report `file` of `quality` was written (to the second), if `file` is exactly such
/// a name; anything else (another topic's report, `../x`, a temporary file) is `None`.
pub fn written_at(quality: &str, file: &str) -> Option<EpochMillis> {
    let stamp = file
        .strip_prefix(file_stem(quality).as_str())?
        .strip_prefix('-')?
        .strip_suffix(EXTENSION)?;
    parse_stamp(stamp)
}

/// The reports to delete so that at most `keep` remain: the oldest, by the time in their name.
pub fn to_delete(mut reports: Vec<(String, EpochMillis)>, keep: usize) -> Vec<String> {
    reports.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    reports.into_iter().skip(keep).map(|(f, _)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2027-01-15T08:00:00Z
    const T0: EpochMillis = 1_800_000_000_000;

    #[test]
    fn a_name_holds_the_sanitized_quality_and_the_utc_second_and_reads_back() {
        assert_eq!(
            file_name("visits", T0 + 999),
            "visits-20270115T080000Z.html"
        );
        assert_eq!(
            written_at("visits", "visits-20270115T080000Z.html"),
            Some(T0)
        );
        assert_eq!(file_stem("../a/b\\c.d"), "___a_b_c_d");
        let hostile = file_name("../../etc/passwd", T0);
        assert!(
            !hostile.contains('/') && !hostile.contains(".."),
            "{hostile}"
        );
        assert_eq!(written_at("../../etc/passwd", &hostile), Some(T0));
    }

    #[test]
    fn only_exact_report_names_of_the_topic_are_read() {
        for file in [
            "../visits-20270115T080000Z.html",
            "visits-20270115T080000Z.html/..",
            "visits-20270115T080000Z.htm",
            "visits-20270115T080000Z.html.tmp",
            ".visits-20270115T080000Z.html.tmp",
            "visits-2027011XT080000Z.html",
            "visits-20271315T080000Z.html",
            "visits-20270115T080000.html",
            "visits20270115T080000Z.html",
            "other-20270115T080000Z.html",
            "visits-x-20270115T080000Z.html",
            "visits-",
            "",
        ] {
            assert_eq!(written_at("visits", file), None, "{file:?}");
        }
        // A topic whose name extends another's is not mistaken for it.
        assert_eq!(written_at("a", "a-b-20270115T080000Z.html"), None);
        assert_eq!(written_at("a-b", "a-b-20270115T080000Z.html"), Some(T0));
    }

    #[test]
    fn the_oldest_reports_past_the_cap_are_deleted() {
        let reports = vec![
            ("b".to_string(), T0 + 2_000),
            ("a".to_string(), T0),
            ("d".to_string(), T0 + 3_000),
            ("c".to_string(), T0 + 1_000),
        ];
        assert_eq!(to_delete(reports.clone(), 2), ["c", "a"]);
        assert_eq!(to_delete(reports.clone(), 4), Vec::<String>::new());
        assert_eq!(to_delete(reports, 0).len(), 4);
    }
}
