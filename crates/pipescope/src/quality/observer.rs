//! One quality topic's observer: every record's payload profiled in the current window and
//! checked against the rules; at each window's end the window joins the longer views and its
//! field summaries go to the drift detector. No I/O and no clock of its own: the reader hands
//! each record in with its arrival time, the task ticks it.

use std::collections::{HashMap, VecDeque};

use pipescope_core::EpochMillis;
use pipescope_core::completeness::buckets::BucketRing;
use pipescope_core::quality::drift::{
    DriftConfig, DriftCounts, DriftDetector, DriftEvent, FieldSummary, WindowSummary,
};
use pipescope_core::quality::profile::{check_json, invalid_reason};
use pipescope_core::quality::rules::{
    FailingRecord, JsonType, PREVIEW_RECORD_BYTES, RuleSet, RulesFigures, TopicRules,
};
use pipescope_core::quality::{Observed, Profile, ProfileLimits, ProfileSummary, ValueType};
use pipescope_core::windows::WindowCounts;
use serde_json::Value;

/// The 15-minute view is the closed windows of the last 15 minutes.
const FIFTEEN_MINUTES_MS: u64 = 900_000;
/// The 1-hour view: the last four closed quarter hours and the current one.
const QUARTERS: usize = 4;
/// Invalid (not JSON) records kept as previews, the newest.
pub const INVALID_PREVIEWS: usize = 5;
/// New field paths per window whose first record is kept as the drift example.
const NEW_FIELD_EXAMPLES: usize = 64;
/// Windows closed one by one after an idle spell; older ones are skipped (they were empty).
const MAX_WINDOWS_CLOSED_AT_ONCE: u64 = 4;

/// Counters in the observer's 10-second buckets.
const RECORDS: usize = 0;
const INVALID: usize = 1;

/// How an observer keeps its windows.
#[derive(Debug, Clone, Copy)]
pub struct ObserverOptions {
    pub window_ms: u64,
    pub limits: ProfileLimits,
    /// Gather the closed windows for periodic reports ([`TopicObserver::take_report`]).
    pub reports: bool,
}

/// Records in a report's sample: the first of each window, the earliest windows'.
pub const REPORT_SAMPLE_RECORDS: usize = 10;

/// The windows closed since the last report.
#[derive(Debug)]
struct ReportWindows {
    profile: Profile,
    sample: Vec<String>,
    windows: u64,
}

impl ReportWindows {
    fn new(limits: ProfileLimits) -> Self {
        Self {
            profile: Profile::new(limits),
            sample: Vec::new(),
            windows: 0,
        }
    }
}

/// What a periodic report shows: the windows closed since the previous one, merged.
#[derive(Debug, Clone)]
pub struct ReportProfile {
    pub profile: ProfileSummary,
    pub sample: Vec<String>,
    pub windows: u64,
}

/// A quality topic's profiles, rule counts and drift.
#[derive(Debug)]
pub struct TopicObserver {
    options: ObserverOptions,
    since_ms: EpochMillis,
    current: Profile,
    current_start_ms: EpochMillis,
    /// A record of the current window, for the drift events' examples.
    current_example: Option<String>,
    /// Field paths the current window has profiled.
    current_fields: usize,
    /// The record that brought each new path into the current window (the first
    /// [`NEW_FIELD_EXAMPLES`]): an "appeared" event's example holds the field.
    new_field_examples: HashMap<String, String>,
    /// Closed windows of the last 15 minutes, by their end.
    closed: VecDeque<(EpochMillis, Profile)>,
    quarter: Profile,
    quarter_start_ms: EpochMillis,
    quarters: VecDeque<Profile>,
    rules: TopicRules,
    drift: DriftDetector,
    records_total: u64,
    invalid_total: u64,
    counts: BucketRing<2>,
    invalid_previews: VecDeque<FailingRecord>,
    report: Option<ReportWindows>,
}

/// A topic's profile over the last window, the last 15 minutes and the last hour.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ProfileViews {
    /// The last closed window; absent before the first one closes.
    #[schema(value_type = Option<Object>)]
    pub window: Option<ProfileSummary>,
    /// The closed windows of the last 15 minutes.
    #[schema(value_type = Object)]
    pub fifteen_minutes: ProfileSummary,
    /// The last hour at 15-minute steps: up to four closed quarter hours and the current one.
    #[schema(value_type = Object)]
    pub one_hour: ProfileSummary,
}

impl TopicObserver {
    pub fn new(
        rules: RuleSet,
        drift: DriftConfig,
        options: ObserverOptions,
        now: EpochMillis,
    ) -> Self {
        let window_ms = options.window_ms.max(1);
        let options = ObserverOptions {
            window_ms,
            ..options
        };
        let start = now - now % window_ms;
        Self {
            options,
            since_ms: now,
            current: Profile::new(options.limits),
            current_start_ms: start,
            current_example: None,
            current_fields: 0,
            new_field_examples: HashMap::new(),
            closed: VecDeque::new(),
            quarter: Profile::new(options.limits),
            quarter_start_ms: start,
            quarters: VecDeque::new(),
            rules: TopicRules::new(rules, now),
            drift: DriftDetector::new(drift),
            records_total: 0,
            invalid_total: 0,
            counts: BucketRing::default(),
            invalid_previews: VecDeque::new(),
            report: options.reports.then(|| ReportWindows::new(options.limits)),
        }
    }

    /// One record: profiled (or sampled out) in the current window; when it is JSON, checked
    /// against every rule, otherwise counted invalid with a preview. `origin` says where it was
    /// read (`partition 2 offset 17`, an MQTT topic).
    pub fn observe(&mut self, payload: &[u8], origin: &str, arrival_ms: EpochMillis) {
        self.records_total += 1;
        self.counts.add(RECORDS, 1, arrival_ms);
        // One parse a record: into a tree when rules read it, else straight into the profile.
        let read = if !self.rules.rules().is_empty() {
            match serde_json::from_slice::<Value>(payload) {
                Ok(record) => {
                    self.current.observe_parsed(payload, &record, arrival_ms);
                    self.rules.observe(&record, payload, origin, arrival_ms);
                    Ok(())
                }
                Err(e) => {
                    let reason = invalid_reason(payload, &e);
                    self.current.reject(payload, &reason, arrival_ms);
                    Err(reason)
                }
            }
        } else {
            let read = match self.current.observe_bytes(payload, arrival_ms) {
                // Sampled out of the profile: still counted valid or not.
                Ok(Observed::SampledOut) => check_json(payload),
                Ok(_) => Ok(()),
                Err(reason) => Err(reason),
            };
            if read.is_ok() {
                self.rules.count_without_rules(arrival_ms);
            }
            read
        };
        match read {
            Ok(()) => {
                let head = || {
                    let head = &payload[..payload.len().min(PREVIEW_RECORD_BYTES)];
                    String::from_utf8_lossy(head).into_owned()
                };
                if self.current_example.is_none() {
                    self.current_example = Some(head());
                }
                let fields = self.current.field_count();
                if fields > self.current_fields {
                    for (path, _) in self.current.fields().skip(self.current_fields) {
                        if self.new_field_examples.len() < NEW_FIELD_EXAMPLES {
                            self.new_field_examples.insert(path.to_string(), head());
                        }
                    }
                    self.current_fields = fields;
                }
            }
            Err(reason) => {
                self.invalid_total += 1;
                self.counts.add(INVALID, 1, arrival_ms);
                if self.invalid_previews.len() == INVALID_PREVIEWS {
                    self.invalid_previews.pop_front();
                }
                self.invalid_previews.push_back(FailingRecord::new(
                    arrival_ms,
                    reason.as_str(),
                    origin,
                    payload,
                ));
            }
        }
    }

    /// Closes the windows that ended by `now`; returns their drift events.
    pub fn tick(&mut self, now: EpochMillis) -> Vec<DriftEvent> {
        let window_ms = self.options.window_ms;
        let mut events = Vec::new();
        let behind = now.saturating_sub(self.current_start_ms) / window_ms;
        if behind > MAX_WINDOWS_CLOSED_AT_ONCE {
            // Idle (or the clock jumped): the windows between hold nothing.
            self.close_window(&mut events);
            self.current_start_ms = now - now % window_ms - window_ms;
        }
        while now >= self.current_start_ms + window_ms {
            self.close_window(&mut events);
        }
        events
    }

    fn close_window(&mut self, events: &mut Vec<DriftEvent>) {
        let end = self.current_start_ms + self.options.window_ms;
        let closed = std::mem::replace(&mut self.current, Profile::new(self.options.limits));
        let example = self.current_example.take();
        if let Some(report) = &mut self.report {
            report.profile.merge(&closed);
            report.windows += 1;
            if let Some(e) = &example
                && report.sample.len() < REPORT_SAMPLE_RECORDS
            {
                report.sample.push(e.clone());
            }
        }
        let mut summary = window_summary(&closed, end, example);
        for f in &mut summary.fields {
            f.example = self.new_field_examples.remove(&f.path);
        }
        self.new_field_examples.clear();
        self.current_fields = 0;
        events.extend(self.drift.observe(&summary));
        self.quarter.merge(&closed);
        if end >= self.quarter_start_ms + FIFTEEN_MINUTES_MS {
            let quarter = std::mem::replace(&mut self.quarter, Profile::new(self.options.limits));
            if self.quarters.len() == QUARTERS {
                self.quarters.pop_front();
            }
            self.quarters.push_back(quarter);
            self.quarter_start_ms = end;
        }
        self.closed.push_back((end, closed));
        while self
            .closed
            .front()
            .is_some_and(|(e, _)| *e + FIFTEEN_MINUTES_MS <= end)
        {
            self.closed.pop_front();
        }
        self.current_start_ms = end;
    }

    /// The windows closed since the last call, merged, and a fresh start; `None` when the
    /// observer gathers no reports.
    pub fn take_report(&mut self) -> Option<ReportProfile> {
        let limits = self.options.limits;
        let report = std::mem::replace(self.report.as_mut()?, ReportWindows::new(limits));
        Some(ReportProfile {
            profile: report.profile.summary(),
            sample: report.sample,
            windows: report.windows,
        })
    }

    pub fn records_total(&self) -> u64 {
        self.records_total
    }

    pub fn invalid_total(&self) -> u64 {
        self.invalid_total
    }

    /// Records read and invalid records, per window, at `now`.
    pub fn record_counts(&self, now: EpochMillis) -> (WindowCounts, WindowCounts) {
        let windowed =
            |field| WindowCounts::from_fn(|w| self.counts.window(field, w, now, self.since_ms));
        (windowed(RECORDS), windowed(INVALID))
    }

    pub fn rules(&self, now: EpochMillis) -> RulesFigures {
        self.rules.figures(now)
    }

    pub fn drift_counts(&self) -> DriftCounts {
        self.drift.counts()
    }

    /// The newest drift events, newest first.
    pub fn drift_events(&self) -> Vec<DriftEvent> {
        self.drift.recent().cloned().collect()
    }

    /// The newest invalid records, newest first.
    pub fn invalid_previews(&self) -> Vec<FailingRecord> {
        self.invalid_previews.iter().rev().cloned().collect()
    }

    pub fn sample_every(&self) -> u64 {
        self.options.limits.sample_every
    }

    /// Null ratio (nulls / values present) of each field that has a rule, over the last closed
    /// window; fields absent from it have none.
    pub fn rule_field_null_ratios(&self) -> Vec<(String, f64)> {
        let Some((_, last)) = self.closed.back() else {
            return Vec::new();
        };
        let mut fields: Vec<&str> = self
            .rules
            .rules()
            .rules()
            .iter()
            .map(|r| r.path.as_str())
            .collect();
        fields.sort_unstable();
        fields.dedup();
        fields
            .into_iter()
            .filter_map(|path| {
                let f = last.field(path)?;
                (f.present > 0).then(|| {
                    (
                        path.to_string(),
                        f.nulls.min(f.present) as f64 / f.present as f64,
                    )
                })
            })
            .collect()
    }

    /// The profile views (merging up to 15 windows and 5 quarter hours: called per API request).
    pub fn profiles(&self) -> ProfileViews {
        let merged = |parts: &mut dyn Iterator<Item = &Profile>| {
            let mut all = Profile::new(self.options.limits);
            for p in parts {
                all.merge(p);
            }
            all.summary()
        };
        ProfileViews {
            window: self.closed.back().map(|(_, p)| p.summary()),
            fifteen_minutes: merged(&mut self.closed.iter().map(|(_, p)| p)),
            one_hour: merged(&mut self.quarters.iter().chain([&self.quarter])),
        }
    }
}

/// What the drift detector compares of a window: per field path, present, nulls, dominant type.
pub fn window_summary(
    profile: &Profile,
    end_ms: EpochMillis,
    example: Option<String>,
) -> WindowSummary {
    WindowSummary {
        end_ms,
        records: profile.valid(),
        fields: profile
            .fields()
            .map(|(path, f)| FieldSummary {
                path: path.to_string(),
                present: f.present,
                nulls: f.nulls,
                dominant_type: f.dominant_type().and_then(json_type),
                example: None,
            })
            .collect(),
        example,
    }
}

fn json_type(t: ValueType) -> Option<JsonType> {
    Some(match t {
        ValueType::Null => return None,
        ValueType::Bool => JsonType::Bool,
        ValueType::Int => JsonType::Integer,
        ValueType::Float | ValueType::NonFinite => JsonType::Float,
        ValueType::String => JsonType::String,
        ValueType::Object => JsonType::Object,
        ValueType::Array => JsonType::Array,
    })
}

#[cfg(test)]
mod tests {
    use pipescope_core::quality::drift::DriftKind;
    use pipescope_core::quality::rules::RuleConfig;

    use super::*;

    const T0: EpochMillis = 1_800_000_000_000; // on a minute boundary
    const MIN: u64 = 60_000;

    fn observer(rules: serde_json::Value) -> TopicObserver {
        let entries: Vec<RuleConfig> = serde_json::from_value(rules).unwrap();
        TopicObserver::new(
            RuleSet::compile("t", &entries).unwrap(),
            DriftConfig {
                min_count: 1,
                ..DriftConfig::default()
            },
            ObserverOptions {
                window_ms: MIN,
                limits: ProfileLimits::default(),
                reports: true,
            },
            T0,
        )
    }

    #[test]
    fn every_record_is_counted_invalid_ones_apart_and_rules_see_the_valid_ones() {
        let mut o =
            observer(serde_json::json!([{ "field": "user", "not_null": true, "not_empty": true }]));
        o.observe(br#"{"user":"a"}"#, "partition 0 offset 0", T0 + 1);
        o.observe(br#"{"user":null}"#, "partition 0 offset 1", T0 + 2);
        o.observe(br#"{"user":""}"#, "partition 0 offset 2", T0 + 3);
        o.observe(br#"{"user":"#, "partition 1 offset 0", T0 + 4);
        o.observe(b"", "partition 1 offset 1", T0 + 5);
        assert_eq!((o.records_total(), o.invalid_total()), (5, 2));
        let rules = o.rules(T0 + MIN);
        assert_eq!(rules.records_total, 3);
        assert_eq!(rules.error_records_total, 2);
        let broken: Vec<(&str, u64)> = rules
            .rules
            .iter()
            .map(|r| (r.rule.as_str(), r.broken_total))
            .collect();
        assert_eq!(broken, [("user:not_null", 1), ("user:not_empty", 1)]);
        let previews = o.invalid_previews();
        assert_eq!(previews[0].reason, "empty payload");
        assert_eq!(previews[1].origin, "partition 1 offset 0");
        assert!(
            previews[1].reason.starts_with("not JSON: EOF"),
            "{previews:?}"
        );
        let (records, invalid) = o.record_counts(T0 + 10_000);
        assert_eq!(
            (records.one_minute.count, invalid.one_minute.count),
            (5.0, 2.0)
        );
    }

    #[test]
    fn windows_close_on_time_into_the_views_and_a_new_field_after_the_warm_up_is_drift() {
        let mut o = observer(serde_json::json!([{ "field": "user", "not_null": true }]));
        for w in 0..4 {
            o.observe(br#"{"user":"a"}"#, "o", T0 + w * MIN + 5);
            assert_eq!(o.tick(T0 + (w + 1) * MIN - 1), [], "window {w} still open");
            assert_eq!(o.tick(T0 + (w + 1) * MIN), [], "warm-up: window {w}");
        }
        o.observe(br#"{"user":"b"}"#, "o", T0 + 4 * MIN + 4);
        o.observe(br#"{"user":null,"coupon":"x"}"#, "o", T0 + 4 * MIN + 5);
        let events = o.tick(T0 + 5 * MIN + 500);
        let kinds: Vec<(DriftKind, &str)> =
            events.iter().map(|e| (e.kind, e.path.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (DriftKind::NullRatioJump, "user"),
                (DriftKind::Appeared, "coupon")
            ]
        );
        assert_eq!(events[1].at_ms, T0 + 5 * MIN);
        // Not the window's first record: the one that brought the new field.
        assert_eq!(
            events[1].example.as_deref(),
            Some(r#"{"user":null,"coupon":"x"}"#)
        );
        assert_eq!(events[0].example.as_deref(), Some(r#"{"user":"b"}"#));
        assert_eq!(o.drift_events().len(), 2);
        assert_eq!(o.rule_field_null_ratios(), [("user".to_string(), 0.5)]);
        let views = o.profiles();
        assert_eq!(views.window.unwrap().records, 2);
        assert_eq!(views.fifteen_minutes.records, 6);
        assert_eq!(views.one_hour.records, 6);
    }

    #[test]
    fn the_views_keep_15_minutes_and_an_hour_at_quarter_steps_and_idle_spells_are_skipped() {
        let mut o = observer(serde_json::json!([]));
        for m in 0..90 {
            o.observe(b"{}", "o", T0 + m * MIN + 1);
            o.tick(T0 + (m + 1) * MIN);
        }
        let views = o.profiles();
        assert_eq!(views.window.unwrap().records, 1);
        assert_eq!(views.fifteen_minutes.records, 15);
        // Four closed quarters (minutes 30–89) and an empty current one.
        assert_eq!(views.one_hour.records, 60);
        // A day idle closes a few windows, not 1440.
        assert_eq!(o.tick(T0 + 90 * MIN + 24 * 60 * MIN), []);
        assert!(o.closed.len() <= 15);
        assert_eq!(o.profiles().window.unwrap().records, 0);
    }

    #[test]
    fn a_report_merges_the_windows_closed_since_the_last_one() {
        let mut o = observer(serde_json::json!([]));
        for m in 0..3 {
            o.tick(T0 + m * MIN);
            o.observe(format!(r#"{{"n":{m}}}"#).as_bytes(), "o", T0 + m * MIN + 1);
            o.observe(br#"{"n":null}"#, "o", T0 + m * MIN + 2);
        }
        // The third window is still open: the next report holds it.
        let first = o.take_report().unwrap();
        assert_eq!((first.windows, first.profile.records), (2, 4));
        assert_eq!(first.sample, [r#"{"n":0}"#, r#"{"n":1}"#]);
        o.tick(T0 + 3 * MIN);
        let second = o.take_report().unwrap();
        assert_eq!((second.windows, second.profile.records), (1, 2));
        assert_eq!(second.sample, [r#"{"n":2}"#]);
        let empty = o.take_report().unwrap();
        assert_eq!((empty.windows, empty.profile.records), (0, 0));
        let off = TopicObserver::new(
            RuleSet::compile("t", &[]).unwrap(),
            DriftConfig::default(),
            ObserverOptions {
                window_ms: MIN,
                limits: ProfileLimits::default(),
                reports: false,
            },
            T0,
        );
        assert!(off.report.is_none());
    }
}
