//! The store API's `from`/`to` and `step` parameters.

use std::time::{Duration, UNIX_EPOCH};

use pipescope_core::tsdb::time_param::{parse_step, parse_time};

/// `now` as the API might see it: the first byte picks one, the rest is the parameter's text.
const NOWS: [u64; 4] = [0, 1_800_000_000_000, u64::MAX / 2, u64::MAX];

/// Any text as `from`/`to` and as `step`: no panic and no overflow; a number reads as itself,
/// `now-<d>` is never after now, a step is more than 0, and an RFC 3339 time written back
/// reads the same.
pub fn time_params(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let now = NOWS[usize::from(pick) % NOWS.len()];
    if let Ok(t) = parse_time("from", &text, now) {
        let trimmed = text.trim();
        if let Ok(ms) = trimmed.parse::<u64>() {
            assert_eq!(t, ms);
        } else if trimmed.starts_with("now") {
            assert!(t <= now, "{text:?} at {now} gave {t}");
        } else if let Some(at) = UNIX_EPOCH.checked_add(Duration::from_millis(t)) {
            let written = humantime::format_rfc3339_millis(at).to_string();
            assert_eq!(
                parse_time("to", &written, now),
                Ok(t),
                "{text:?} as {written}"
            );
        }
    }
    if let Ok(step) = parse_step(&text) {
        assert!(step > 0);
    }
}
