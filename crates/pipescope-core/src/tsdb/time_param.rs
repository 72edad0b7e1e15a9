//! The store API's time parameters: `from`/`to` (epoch milliseconds, RFC 3339, `now`,
//! `now-<duration>`) and `step` (a duration or milliseconds). The texts of the errors are the
//! API's 400 answers.

use std::time::{Duration, UNIX_EPOCH};

use crate::clock::EpochMillis;

/// Why a time parameter was refused; its text names the parameter and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeParamError(pub String);

/// Milliseconds of `d`, saturating: a duration past `u64::MAX` ms must not wrap to a small one.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Epoch milliseconds, RFC 3339, `now`, or `now-<duration>`; `name` is the parameter's name.
pub fn parse_time(name: &str, text: &str, now: EpochMillis) -> Result<EpochMillis, TimeParamError> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let d = humantime::parse_duration(ago).map_err(|e| {
            TimeParamError(format!(
                "parameter {name}: bad duration {ago:?} in {text:?} ({e}); write now-1h or now-15m"
            ))
        })?;
        return Ok(now.saturating_sub(millis(d)));
    }
    match humantime::parse_rfc3339_weak(text) {
        Ok(t) => Ok(t.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)),
        Err(_) => Err(TimeParamError(format!(
            "parameter {name}: cannot read {text:?} as a time; use epoch milliseconds, RFC 3339 (2026-01-31T12:00:00Z), now or now-1h"
        ))),
    }
}

/// A step in milliseconds, more than 0: a duration (`1m`, `30s`) or milliseconds.
pub fn parse_step(text: &str) -> Result<u64, TimeParamError> {
    let text = text.trim();
    let ms = match text.parse::<u64>() {
        Ok(ms) => ms,
        Err(_) => humantime::parse_duration(text).map(millis).map_err(|e| {
            TimeParamError(format!(
                "parameter step: cannot read {text:?} ({e}); write 1m, 30s or milliseconds"
            ))
        })?,
    };
    if ms == 0 {
        return Err(TimeParamError(
            "parameter step: must be more than 0".to_string(),
        ));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: EpochMillis = 1_800_000_000_000;

    #[test]
    fn times_read_as_millis_rfc3339_now_and_now_minus() {
        assert_eq!(
            parse_time("from", "1700000000000", NOW),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_time("from", " now ", NOW), Ok(NOW));
        assert_eq!(parse_time("from", "now-1h", NOW), Ok(NOW - 3_600_000));
        assert_eq!(
            parse_time("to", "2026-01-31T12:00:00Z", NOW),
            Ok(1_769_860_800_000)
        );
        assert!(parse_time("to", "1969-12-31T23:59:59Z", NOW).is_err());
        assert_eq!(
            parse_time("to", "9999-12-31T23:59:59.999Z", NOW),
            Ok(253_402_300_799_999)
        );
    }

    #[test]
    fn a_duration_past_u64_millis_saturates_instead_of_wrapping() {
        // 18446744073709552 s is 2^64 + 384 ms: it wrapped to 384 ms before.
        assert_eq!(parse_time("from", "now-18446744073709552s", NOW), Ok(0));
        assert_eq!(parse_step("18446744073709552s"), Ok(u64::MAX));
        assert!(parse_time("from", "now-584942417355y", NOW).is_err());
    }

    #[test]
    fn errors_name_the_parameter_and_say_what_to_write() {
        assert_eq!(
            parse_time("from", "yesterday", NOW)
                .unwrap_err()
                .to_string(),
            "parameter from: cannot read \"yesterday\" as a time; use epoch milliseconds, RFC 3339 (2026-01-31T12:00:00Z), now or now-1h"
        );
        let e = parse_time("to", "now-soon", NOW).unwrap_err().to_string();
        assert!(
            e.starts_with("parameter to: bad duration \"soon\" in \"now-soon\" (")
                && e.ends_with("); write now-1h or now-15m"),
            "{e}"
        );
        assert_eq!(
            parse_step("0").unwrap_err().to_string(),
            "parameter step: must be more than 0"
        );
        assert_eq!(
            parse_step("0s").unwrap_err().to_string(),
            "parameter step: must be more than 0"
        );
        let e = parse_step("fast").unwrap_err().to_string();
        assert!(
            e.starts_with("parameter step: cannot read \"fast\" (")
                && e.ends_with("); write 1m, 30s or milliseconds"),
            "{e}"
        );
    }

    #[test]
    fn steps_read_as_durations_or_millis() {
        assert_eq!(parse_step("1m"), Ok(60_000));
        assert_eq!(parse_step(" 1500 "), Ok(1_500));
        assert_eq!(parse_step("30s"), Ok(30_000));
    }
}
