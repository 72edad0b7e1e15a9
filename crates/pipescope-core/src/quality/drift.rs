//! Schema drift: a topic's field summaries compared window by window.
//!
//! The profile gives, at the end of each window, what every field path looked like in it
//! ([`FieldSummary`]); [`DriftDetector`] turns changes into events: a field appeared, a field
//! disappeared, a field's dominant type changed, a field's null ratio jumped. Each event has the
//! window's end as its time, the field before and after, and an example record.
//!
//! What keeps it quiet: windows without records change nothing (an idle topic has not lost its
//! fields); nothing is reported in the first `warm_up_windows` windows (what the topic looks
//! like is learned then, so a start is not a storm of "appeared"); types and null ratios are
//! compared only over windows with at least `min_count` values; each path reports each kind of
//! event at most once per `min_event_interval_ms` and a window at most
//! `max_events_per_window` events (the rest are counted as suppressed); at most `max_paths`
//! paths are followed (the rest are counted as folded).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::rules::{JsonType, PREVIEW_RECORD_BYTES, escape_for_display};
use crate::EpochMillis;

/// Longest path followed; longer ones are folded.
pub const MAX_DRIFT_PATH_LEN: usize = 256;
/// Events the detector keeps for the API (the newest).
pub const RECENT_EVENTS: usize = 100;

/// One field path over one window, as the profile counts it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSummary {
    pub path: String,
    /// Records in which the path had a value (null included).
    pub present: u64,
    /// Of those, the records where it was null.
    pub nulls: u64,
    /// The most frequent type of its non-null values; `None` when all were null.
    pub dominant_type: Option<JsonType>,
    /// A record holding the field (with its dominant type where the profile can tell).
    pub example: Option<String>,
}

/// One window of a topic: its end, its records and the fields seen in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindowSummary {
    pub end_ms: EpochMillis,
    pub records: u64,
    pub fields: Vec<FieldSummary>,
    /// Any record of the window: the example of a field that disappeared.
    pub example: Option<String>,
}

/// `drift = { … }` of a topic's quality config; every key has a default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// Windows learned silently at start.
    pub warm_up_windows: u32,
    /// Windows with records but without the field before it has disappeared.
    pub disappear_after_windows: u32,
    /// Change of the null ratio (nulls / present, 0 to 1) that is a jump.
    pub null_ratio_jump: f64,
    /// Values a window needs before its null ratio or dominant type is compared.
    pub min_count: u64,
    /// Least time between two events of one kind on one path.
    pub min_event_interval_ms: u64,
    pub max_paths: usize,
    pub max_events_per_window: usize,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            warm_up_windows: 3,
            disappear_after_windows: 3,
            null_ratio_jump: 0.2,
            min_count: 30,
            min_event_interval_ms: 600_000,
            max_paths: 1000,
            max_events_per_window: 20,
        }
    }
}

impl DriftConfig {
    /// What cannot be used, with what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.null_ratio_jump > 0.0 && self.null_ratio_jump <= 1.0) {
            return Err(format!(
                "drift.null_ratio_jump is {}; write a ratio above 0 and at most 1, such as 0.2",
                self.null_ratio_jump
            ));
        }
        if self.disappear_after_windows == 0 {
            return Err("drift.disappear_after_windows is 0; write 1 or more".into());
        }
        if self.max_paths == 0 || self.max_paths > 100_000 {
            return Err(format!(
                "drift.max_paths is {}; write 1 to 100000",
                self.max_paths
            ));
        }
        Ok(())
    }
}

/// What changed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// A new path, or one that had disappeared, has values again.
    Appeared,
    Disappeared,
    TypeChanged,
    NullRatioJump,
}

impl DriftKind {
    pub const ALL: [DriftKind; 4] = [
        DriftKind::Appeared,
        DriftKind::Disappeared,
        DriftKind::TypeChanged,
        DriftKind::NullRatioJump,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            DriftKind::Appeared => "appeared",
            DriftKind::Disappeared => "disappeared",
            DriftKind::TypeChanged => "type_changed",
            DriftKind::NullRatioJump => "null_ratio_jump",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// A field in one window: the before or after of an event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FieldSide {
    pub window_end_ms: EpochMillis,
    pub present: u64,
    pub nulls: u64,
    /// nulls / present.
    pub null_ratio: f64,
    pub dominant_type: Option<JsonType>,
}

impl FieldSide {
    fn of(f: &FieldSummary, end_ms: EpochMillis) -> FieldSide {
        let nulls = f.nulls.min(f.present);
        FieldSide {
            window_end_ms: end_ms,
            present: f.present,
            nulls,
            null_ratio: nulls as f64 / f.present.max(1) as f64,
            dominant_type: f.dominant_type,
        }
    }
}

/// A drift event.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftEvent {
    pub kind: DriftKind,
    pub path: String,
    /// The end of the window that showed the change.
    pub at_ms: EpochMillis,
    /// The field where it was last compared (absent for a new field).
    pub before: Option<FieldSide>,
    /// The field in the window that showed the change (absent when it disappeared).
    pub after: Option<FieldSide>,
    /// A record of that window, escaped and capped.
    pub example: Option<String>,
}

#[derive(Debug, Clone)]
struct PathState {
    /// The last window the path had values in.
    last_present: FieldSide,
    /// Windows with records without the path since.
    absent_windows: u32,
    gone: bool,
    /// The last window with `min_count` non-null values: the dominant type compared against.
    type_baseline: Option<FieldSide>,
    /// The last window with `min_count` values: the null ratio compared against.
    null_baseline: Option<FieldSide>,
    last_event_ms: [Option<EpochMillis>; 4],
    seen_in_window: u64,
}

/// Drift counts since start, as the API and `/metrics` show them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DriftCounts {
    /// Events per kind: `appeared`, `disappeared`, `type_changed`, `null_ratio_jump`.
    pub events_total: BTreeMap<&'static str, u64>,
    /// Events not reported because of the per-path interval or the per-window cap.
    pub suppressed_total: u64,
    pub paths_followed: usize,
    /// Field summaries of paths past `max_paths` (or too long), not followed.
    pub paths_folded_total: u64,
    pub windows_seen: u64,
}

/// A topic's drift detector: fed one [`WindowSummary`] per window, in time order.
#[derive(Debug, Clone)]
pub struct DriftDetector {
    config: DriftConfig,
    paths: BTreeMap<Box<str>, PathState>,
    windows_seen: u64,
    events_total: [u64; 4],
    suppressed_total: u64,
    paths_folded_total: u64,
    recent: VecDeque<DriftEvent>,
}

impl DriftDetector {
    pub fn new(config: DriftConfig) -> Self {
        Self {
            config,
            paths: BTreeMap::new(),
            windows_seen: 0,
            events_total: [0; 4],
            suppressed_total: 0,
            paths_folded_total: 0,
            recent: VecDeque::new(),
        }
    }

    /// Compares `window` with what came before; returns its events, in path order, with the
    /// disappeared ones last.
    pub fn observe(&mut self, window: &WindowSummary) -> Vec<DriftEvent> {
        if window.records == 0 {
            return Vec::new();
        }
        self.windows_seen += 1;
        let n = self.windows_seen;
        let mut out = Emitter {
            config: &self.config,
            reporting: n > u64::from(self.config.warm_up_windows),
            budget: self.config.max_events_per_window,
            events: Vec::new(),
            suppressed: 0,
            at_ms: window.end_ms,
        };
        for f in window.fields.iter().filter(|f| f.present > 0) {
            let side = FieldSide::of(f, window.end_ms);
            let example = f.example.as_deref().or(window.example.as_deref());
            let state = match self.paths.get_mut(f.path.as_str()) {
                Some(s) if s.seen_in_window == n => continue, // a duplicate summary
                Some(s) => s,
                None => {
                    if self.paths.len() >= self.config.max_paths
                        || f.path.len() > MAX_DRIFT_PATH_LEN
                    {
                        self.paths_folded_total += 1;
                        continue;
                    }
                    let mut state = PathState {
                        last_present: side,
                        absent_windows: 0,
                        gone: false,
                        type_baseline: None,
                        null_baseline: None,
                        last_event_ms: [None; 4],
                        seen_in_window: n,
                    };
                    out.emit(
                        &mut state,
                        DriftKind::Appeared,
                        &f.path,
                        None,
                        Some(side),
                        example,
                    );
                    self.paths.insert(f.path.as_str().into(), state);
                    self.paths
                        .get_mut(f.path.as_str())
                        .expect("just inserted")
                        .update_baselines(side, &self.config, &mut out, &f.path, example);
                    continue;
                }
            };
            state.seen_in_window = n;
            state.absent_windows = 0;
            if state.gone {
                state.gone = false;
                let before = state.last_present;
                out.emit(
                    state,
                    DriftKind::Appeared,
                    &f.path,
                    Some(before),
                    Some(side),
                    example,
                );
            }
            state.last_present = side;
            state.update_baselines(side, &self.config, &mut out, &f.path, example);
        }
        for (path, state) in &mut self.paths {
            if state.seen_in_window == n || state.gone {
                continue;
            }
            state.absent_windows += 1;
            if state.absent_windows >= self.config.disappear_after_windows {
                state.gone = true;
                let before = state.last_present;
                out.emit(
                    state,
                    DriftKind::Disappeared,
                    path,
                    Some(before),
                    None,
                    window.example.as_deref(),
                );
            }
        }
        self.suppressed_total += out.suppressed;
        for e in &out.events {
            self.events_total[e.kind.index()] += 1;
            if self.recent.len() == RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(e.clone());
        }
        out.events
    }

    pub fn counts(&self) -> DriftCounts {
        DriftCounts {
            events_total: DriftKind::ALL
                .iter()
                .map(|k| (k.label(), self.events_total[k.index()]))
                .collect(),
            suppressed_total: self.suppressed_total,
            paths_followed: self.paths.len(),
            paths_folded_total: self.paths_folded_total,
            windows_seen: self.windows_seen,
        }
    }

    /// The newest events, newest first, at most [`RECENT_EVENTS`].
    pub fn recent(&self) -> impl Iterator<Item = &DriftEvent> {
        self.recent.iter().rev()
    }
}

impl PathState {
    fn update_baselines(
        &mut self,
        side: FieldSide,
        config: &DriftConfig,
        out: &mut Emitter<'_>,
        path: &str,
        example: Option<&str>,
    ) {
        let non_null = side.present - side.nulls;
        if non_null >= config.min_count && side.dominant_type.is_some() {
            if let Some(before) = self.type_baseline
                && before.dominant_type != side.dominant_type
            {
                out.emit(
                    self,
                    DriftKind::TypeChanged,
                    path,
                    Some(before),
                    Some(side),
                    example,
                );
            }
            self.type_baseline = Some(side);
        }
        if side.present >= config.min_count {
            if let Some(before) = self.null_baseline
                && (side.null_ratio - before.null_ratio).abs() > config.null_ratio_jump
            {
                out.emit(
                    self,
                    DriftKind::NullRatioJump,
                    path,
                    Some(before),
                    Some(side),
                    example,
                );
            }
            self.null_baseline = Some(side);
        }
    }
}

/// The events of one window, with the warm-up, the per-window cap and the per-path interval.
struct Emitter<'a> {
    config: &'a DriftConfig,
    reporting: bool,
    budget: usize,
    events: Vec<DriftEvent>,
    suppressed: u64,
    at_ms: EpochMillis,
}

impl Emitter<'_> {
    fn emit(
        &mut self,
        state: &mut PathState,
        kind: DriftKind,
        path: &str,
        before: Option<FieldSide>,
        after: Option<FieldSide>,
        example: Option<&str>,
    ) {
        if !self.reporting {
            return;
        }
        let last = &mut state.last_event_ms[kind.index()];
        let too_soon =
            last.is_some_and(|t| self.at_ms.saturating_sub(t) < self.config.min_event_interval_ms);
        if too_soon || self.budget == 0 {
            self.suppressed += 1;
            return;
        }
        *last = Some(self.at_ms);
        self.budget -= 1;
        self.events.push(DriftEvent {
            kind,
            path: escape_for_display(path, MAX_DRIFT_PATH_LEN * 2),
            at_ms: self.at_ms,
            before,
            after,
            example: example.map(|e| escape_for_display(e, 2 * PREVIEW_RECORD_BYTES)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: EpochMillis = 1_800_000_000_000;
    const MIN: u64 = 60_000;

    fn field(path: &str, present: u64, nulls: u64, t: JsonType) -> FieldSummary {
        FieldSummary {
            path: path.into(),
            present,
            nulls,
            dominant_type: Some(t),
            example: Some(format!("{{\"{path}\": …}}")),
        }
    }

    fn window(i: u64, fields: Vec<FieldSummary>) -> WindowSummary {
        WindowSummary {
            end_ms: T0 + i * MIN,
            records: 100,
            fields,
            example: Some(format!("record of window {i}")),
        }
    }

    fn base(i: u64) -> WindowSummary {
        window(
            i,
            vec![
                field("id", 100, 0, JsonType::Integer),
                field("user", 100, 5, JsonType::String),
            ],
        )
    }

    /// Feeds the detector windows 0..n of `base`, checking they are quiet.
    fn warmed(config: DriftConfig, n: u64) -> DriftDetector {
        let mut d = DriftDetector::new(config);
        for i in 0..n {
            assert_eq!(d.observe(&base(i)), [], "window {i}");
        }
        d
    }

    fn kinds(events: &[DriftEvent]) -> Vec<(DriftKind, &str)> {
        events.iter().map(|e| (e.kind, e.path.as_str())).collect()
    }

    #[test]
    fn fields_seen_during_the_warm_up_are_learned_silently_and_a_new_one_after_it_appears() {
        let mut d = DriftDetector::new(DriftConfig::default());
        // Fields turning up one by one while warming up: no storm.
        assert_eq!(
            d.observe(&window(0, vec![field("id", 100, 0, JsonType::Integer)])),
            []
        );
        assert_eq!(d.observe(&base(1)), []);
        let mut w = base(2);
        w.fields.push(field("late", 100, 0, JsonType::Bool));
        assert_eq!(d.observe(&w), []);
        let mut w = base(3);
        w.fields.push(field("late", 100, 0, JsonType::Bool));
        w.fields.push(field("coupon", 40, 0, JsonType::String));
        let events = d.observe(&w);
        assert_eq!(
            events,
            [DriftEvent {
                kind: DriftKind::Appeared,
                path: "coupon".into(),
                at_ms: T0 + 3 * MIN,
                before: None,
                after: Some(FieldSide {
                    window_end_ms: T0 + 3 * MIN,
                    present: 40,
                    nulls: 0,
                    null_ratio: 0.0,
                    dominant_type: Some(JsonType::String),
                }),
                example: Some("{\"coupon\": …}".into()),
            }]
        );
        assert_eq!(d.counts().events_total["appeared"], 1);
    }

    #[test]
    fn a_field_disappears_after_the_set_number_of_windows_once_and_reappears() {
        let mut d = warmed(DriftConfig::default(), 4);
        let without_user = |i| window(i, vec![field("id", 100, 0, JsonType::Integer)]);
        assert_eq!(d.observe(&without_user(4)), []);
        assert_eq!(d.observe(&without_user(5)), []);
        let events = d.observe(&without_user(6));
        assert_eq!(kinds(&events), [(DriftKind::Disappeared, "user")]);
        let e = &events[0];
        assert_eq!(e.at_ms, T0 + 6 * MIN);
        assert_eq!(e.before.unwrap().window_end_ms, T0 + 3 * MIN, "last seen");
        assert_eq!(e.after, None);
        assert_eq!(e.example.as_deref(), Some("record of window 6"));
        assert_eq!(d.observe(&without_user(7)), [], "once");
        let events = d.observe(&base(8));
        assert_eq!(kinds(&events), [(DriftKind::Appeared, "user")]);
        assert_eq!(events[0].before.unwrap().window_end_ms, T0 + 3 * MIN);
    }

    #[test]
    fn idle_windows_are_not_absence_nor_warm_up() {
        let mut d = DriftDetector::new(DriftConfig::default());
        let idle = |i| WindowSummary {
            end_ms: T0 + i * MIN,
            records: 0,
            fields: Vec::new(),
            example: None,
        };
        assert_eq!(d.observe(&base(0)), []);
        for i in 1..10 {
            assert_eq!(d.observe(&idle(i)), []);
        }
        let mut w = base(10);
        w.fields.push(field("new", 100, 0, JsonType::Integer));
        assert_eq!(d.observe(&w), [], "still the second window seen");
        assert_eq!(d.counts().windows_seen, 2);
    }

    #[test]
    fn a_type_change_counts_only_over_windows_with_enough_values() {
        let mut d = warmed(DriftConfig::default(), 4);
        // 29 non-null strings (31 present, 2 null): under min_count 30.
        let mut w = base(4);
        w.fields[0] = field("id", 31, 2, JsonType::String);
        assert_eq!(d.observe(&w), []);
        let mut w = base(5);
        w.fields[0] = field("id", 100, 0, JsonType::String);
        let events = d.observe(&w);
        assert_eq!(kinds(&events), [(DriftKind::TypeChanged, "id")]);
        let e = &events[0];
        assert_eq!(e.before.unwrap().dominant_type, Some(JsonType::Integer));
        assert_eq!(e.before.unwrap().window_end_ms, T0 + 3 * MIN);
        assert_eq!(e.after.unwrap().dominant_type, Some(JsonType::String));
        // A window of nulls only has no type: not a change.
        let mut w = base(6);
        w.fields[0] = FieldSummary {
            dominant_type: None,
            ..field("id", 100, 100, JsonType::Null)
        };
        assert!(
            kinds(&d.observe(&w))
                .iter()
                .all(|(k, _)| *k != DriftKind::TypeChanged)
        );
    }

    #[test]
    fn a_null_ratio_jump_needs_the_threshold_and_enough_values() {
        let mut d = warmed(DriftConfig::default(), 4);
        // user: 5 % null. A small window all null: no event.
        let mut w = base(4);
        w.fields[1] = field("user", 10, 10, JsonType::String);
        assert_eq!(d.observe(&w), []);
        // A creep of 0.2 exactly is not more than the threshold.
        let mut w = base(5);
        w.fields[1] = field("user", 100, 25, JsonType::String);
        assert_eq!(d.observe(&w), []);
        let mut w = base(6);
        w.fields[1] = field("user", 100, 60, JsonType::String);
        let events = d.observe(&w);
        assert_eq!(kinds(&events), [(DriftKind::NullRatioJump, "user")]);
        assert_eq!(events[0].before.unwrap().null_ratio, 0.25);
        assert_eq!(events[0].after.unwrap().null_ratio, 0.6);
        // Back down is a jump too (a default filled in upstream is drift as well) — but within
        // the interval of the last one, so suppressed.
        assert_eq!(d.observe(&base(7)), []);
        assert_eq!(d.counts().suppressed_total, 1);
    }

    #[test]
    fn events_of_a_kind_on_a_path_are_rate_limited() {
        let config = DriftConfig {
            min_event_interval_ms: 10 * MIN,
            ..DriftConfig::default()
        };
        let mut d = warmed(config, 4);
        let typed = |i, t| {
            let mut w = base(i);
            w.fields[0] = field("id", 100, 0, t);
            w
        };
        assert_eq!(d.observe(&typed(4, JsonType::String)).len(), 1);
        assert_eq!(d.observe(&typed(5, JsonType::Integer)), []);
        assert_eq!(d.observe(&typed(6, JsonType::String)), []);
        assert_eq!(d.counts().suppressed_total, 2);
        // 10 minutes after the last reported one.
        assert_eq!(
            d.observe(&typed(13, JsonType::String)),
            [],
            "no change since"
        );
        assert_eq!(d.observe(&typed(14, JsonType::Float)).len(), 1);
        assert_eq!(d.counts().events_total["type_changed"], 2);
    }

    #[test]
    fn a_window_reports_at_most_its_cap_and_paths_past_the_cap_are_folded() {
        let config = DriftConfig {
            max_paths: 12,
            max_events_per_window: 5,
            ..DriftConfig::default()
        };
        let mut d = warmed(config, 4);
        let mut w = base(4);
        for i in 0..20 {
            w.fields
                .push(field(&format!("f{i:02}"), 100, 0, JsonType::Integer));
        }
        let events = d.observe(&w);
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].path, "f00");
        let c = d.counts();
        assert_eq!((c.paths_followed, c.paths_folded_total), (12, 10));
        assert_eq!(c.suppressed_total, 5);
        let long = "x".repeat(MAX_DRIFT_PATH_LEN + 1);
        let mut w = base(5);
        w.fields.push(field(&long, 100, 0, JsonType::Integer));
        d.observe(&w);
        assert_eq!(d.counts().paths_folded_total, 11);
    }

    #[test]
    fn a_path_listed_twice_in_a_window_counts_once_and_hostile_text_is_escaped() {
        let mut d = warmed(DriftConfig::default(), 4);
        let mut w = base(4);
        let mut evil = field("a\u{202e}b", 100, 0, JsonType::String);
        evil.example = Some("x\u{1b}[2J".into());
        w.fields.push(evil.clone());
        w.fields.push(evil);
        let events = d.observe(&w);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].path, "a\\u{202e}b");
        assert_eq!(events[0].example.as_deref(), Some("x\\u{1b}[2J"));
        assert_eq!(d.recent().count(), 1);
    }

    #[test]
    fn the_config_refuses_thresholds_that_cannot_work() {
        let bad = |c: DriftConfig| c.validate().unwrap_err();
        assert_eq!(
            bad(DriftConfig {
                null_ratio_jump: 0.0,
                ..DriftConfig::default()
            }),
            "drift.null_ratio_jump is 0; write a ratio above 0 and at most 1, such as 0.2"
        );
        assert!(
            bad(DriftConfig {
                null_ratio_jump: f64::NAN,
                ..DriftConfig::default()
            })
            .starts_with("drift.null_ratio_jump is NaN")
        );
        assert_eq!(
            bad(DriftConfig {
                disappear_after_windows: 0,
                ..DriftConfig::default()
            }),
            "drift.disappear_after_windows is 0; write 1 or more"
        );
        assert_eq!(
            bad(DriftConfig {
                max_paths: 0,
                ..DriftConfig::default()
            }),
            "drift.max_paths is 0; write 1 to 100000"
        );
        assert_eq!(DriftConfig::default().validate(), Ok(()));
        let c: DriftConfig = serde_json::from_str(r#"{"min_count": 5}"#).unwrap();
        assert_eq!((c.min_count, c.warm_up_windows), (5, 3));
    }
}
