//! Figures over the last 1, 5 and 15 minutes: what every "per minute" number of pipescope is.
//!
//! A window's figure is a count over real time, never a short rate scaled up: until the monitor
//! has watched for the whole window, the count covers only what it saw (`covered_s` says how
//! long) and there is no per-minute figure. How the count is taken depends on the source (Kafka:
//! log end offsets at the window's ends, interpolated between scrapes; MQTT: messages counted in
//! buckets); this module is what they all answer with.

use serde::Serialize;

use crate::clock::EpochMillis;

/// The windows figures are given over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    OneMinute,
    FiveMinutes,
    FifteenMinutes,
}

impl Window {
    pub const ALL: [Window; 3] = [
        Window::OneMinute,
        Window::FiveMinutes,
        Window::FifteenMinutes,
    ];

    pub const fn millis(self) -> u64 {
        match self {
            Window::OneMinute => 60_000,
            Window::FiveMinutes => 300_000,
            Window::FifteenMinutes => 900_000,
        }
    }

    /// The label the API, `/metrics` (`window="1m"`) and the store use.
    pub const fn label(self) -> &'static str {
        match self {
            Window::OneMinute => "1m",
            Window::FiveMinutes => "5m",
            Window::FifteenMinutes => "15m",
        }
    }

    /// The longest window: how much history a source keeps to answer all of them.
    pub const LONGEST: Window = Window::FifteenMinutes;
}

/// What was counted in one window.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct WindowCount {
    /// Messages counted over the covered part of the window (fractional where the window's
    /// start falls between two readings and is interpolated).
    pub count: f64,
    /// Seconds of the window the count covers: the window's length once the monitor has watched
    /// that long, less before ("since start", or since a reset of the source).
    pub covered_s: f64,
    /// `count` per minute over the whole window; absent until the window is covered.
    pub per_minute: Option<f64>,
}

impl WindowCount {
    /// The counts of several sources (a cluster's topics) together: counts add up, the covered
    /// time is the least covered source's, and the rate is known only when every source's is.
    /// `None` when no source has a count.
    pub fn sum(counts: impl IntoIterator<Item = WindowCount>) -> Option<WindowCount> {
        counts.into_iter().fold(None, |total, w| {
            Some(match total {
                None => w,
                Some(t) => WindowCount {
                    count: t.count + w.count,
                    covered_s: t.covered_s.min(w.covered_s),
                    per_minute: t.per_minute.zip(w.per_minute).map(|(a, b)| a + b),
                },
            })
        })
    }

    /// `count` over `covered_ms` of `window` (`covered_ms` above the window is taken as the window).
    pub fn new(window: Window, count: f64, covered_ms: u64) -> Self {
        let covered_ms = covered_ms.min(window.millis());
        let per_minute =
            (covered_ms == window.millis()).then(|| count * 60_000.0 / window.millis() as f64);
        Self {
            count,
            covered_s: covered_ms as f64 / 1000.0,
            per_minute,
        }
    }

    /// Nothing counted yet: nothing covered.
    pub const EMPTY: WindowCount = WindowCount {
        count: 0.0,
        covered_s: 0.0,
        per_minute: None,
    };

    /// The sum of two counts over the same window (partitions of a topic, topics of a subtree):
    /// counts add; it covers what both cover; a per-minute figure only when both have one.
    pub fn plus(self, other: WindowCount) -> WindowCount {
        WindowCount {
            count: self.count + other.count,
            covered_s: self.covered_s.min(other.covered_s),
            per_minute: self.per_minute.zip(other.per_minute).map(|(a, b)| a + b),
        }
    }
}

/// The counts of the three windows, as the API shows them: `{"1m": …, "5m": …, "15m": …}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct WindowCounts {
    #[serde(rename = "1m")]
    pub one_minute: WindowCount,
    #[serde(rename = "5m")]
    pub five_minutes: WindowCount,
    #[serde(rename = "15m")]
    pub fifteen_minutes: WindowCount,
}

impl WindowCounts {
    /// Counts from a function of the window.
    pub fn from_fn(mut count: impl FnMut(Window) -> WindowCount) -> Self {
        Self {
            one_minute: count(Window::OneMinute),
            five_minutes: count(Window::FiveMinutes),
            fifteen_minutes: count(Window::FifteenMinutes),
        }
    }

    pub fn get(&self, window: Window) -> WindowCount {
        match window {
            Window::OneMinute => self.one_minute,
            Window::FiveMinutes => self.five_minutes,
            Window::FifteenMinutes => self.fifteen_minutes,
        }
    }

    /// Window by window [`WindowCount::plus`].
    pub fn plus(&self, other: &WindowCounts) -> WindowCounts {
        WindowCounts::from_fn(|w| self.get(w).plus(other.get(w)))
    }

    /// The sum of many (partitions of a topic, topics of a subtree); `None` for none.
    pub fn sum<'a>(counts: impl IntoIterator<Item = &'a WindowCounts>) -> Option<WindowCounts> {
        counts.into_iter().fold(None, |sum, c| {
            Some(sum.map_or(*c, |s: WindowCounts| s.plus(c)))
        })
    }
}

/// Milliseconds of the window ending at `end` that lie after `since` (when watching started).
pub fn covered_ms(window: Window, end: EpochMillis, since: EpochMillis) -> u64 {
    end.saturating_sub(since).min(window.millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_covered_window_has_a_per_minute_figure_over_its_whole_length() {
        let c = WindowCount::new(Window::FiveMinutes, 1_500.0, 300_000);
        assert_eq!(c.per_minute, Some(300.0));
        assert_eq!(c.covered_s, 300.0);
        // Coverage beyond the window is the window.
        assert_eq!(
            WindowCount::new(Window::OneMinute, 30.0, 90_000).per_minute,
            Some(30.0)
        );
    }

    #[test]
    fn a_window_not_yet_covered_gives_its_count_and_span_and_no_rate() {
        // 5 messages seen in the 2 s since the monitor started: not 150 per minute.
        let c = WindowCount::new(Window::OneMinute, 5.0, 2_000);
        assert_eq!(
            c,
            WindowCount {
                count: 5.0,
                covered_s: 2.0,
                per_minute: None
            }
        );
    }

    #[test]
    fn sums_add_counts_and_cover_what_all_cover() {
        let a = WindowCount::new(Window::OneMinute, 30.0, 60_000);
        let b = WindowCount::new(Window::OneMinute, 10.0, 60_000);
        let young = WindowCount::new(Window::OneMinute, 4.0, 20_000);
        assert_eq!(a.plus(b).per_minute, Some(40.0));
        let with_young = a.plus(young);
        assert_eq!((with_young.count, with_young.covered_s), (34.0, 20.0));
        assert_eq!(with_young.per_minute, None);
        let counts = [
            WindowCounts::from_fn(|w| WindowCount::new(w, 1.0, w.millis())),
            WindowCounts::from_fn(|w| WindowCount::new(w, 2.0, w.millis())),
        ];
        let sum = WindowCounts::sum(&counts).unwrap();
        assert_eq!(sum.get(Window::FifteenMinutes).count, 3.0);
        assert_eq!(sum.get(Window::FifteenMinutes).per_minute, Some(0.2));
        assert_eq!(WindowCounts::sum(&[]), None);
    }

    #[test]
    fn serialized_with_the_window_labels() {
        let counts = WindowCounts::from_fn(|w| WindowCount::new(w, 6.0, 60_000));
        let json = serde_json::to_value(counts).unwrap();
        assert_eq!(json["1m"]["per_minute"], 6.0);
        assert_eq!(json["5m"]["covered_s"], 60.0);
        assert!(json["15m"]["per_minute"].is_null());
        assert_eq!(
            Window::ALL.map(Window::label),
            ["1m", "5m", "15m"],
            "the labels /metrics and the store use"
        );
    }

    #[test]
    fn coverage_is_the_part_of_the_window_after_watching_started() {
        assert_eq!(covered_ms(Window::OneMinute, 100_000, 70_000), 30_000);
        assert_eq!(covered_ms(Window::OneMinute, 100_000, 0), 60_000);
        assert_eq!(covered_ms(Window::OneMinute, 100_000, 200_000), 0);
    }

    #[test]
    fn sums_add_counts_keep_the_least_coverage_and_a_rate_only_when_all_have_one() {
        let w = |count, covered_s, per_minute| WindowCount {
            count,
            covered_s,
            per_minute,
        };
        assert_eq!(WindowCount::sum([]), None);
        assert_eq!(
            WindowCount::sum([w(10.0, 60.0, Some(10.0)), w(5.0, 60.0, Some(5.0))]),
            Some(w(15.0, 60.0, Some(15.0)))
        );
        assert_eq!(
            WindowCount::sum([w(10.0, 60.0, Some(10.0)), w(2.0, 30.0, None)]),
            Some(w(12.0, 30.0, None))
        );
    }
}
