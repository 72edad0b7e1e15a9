//! The web-visit workload of `pipescope simulate visits`: one JSON event per finished visit,
//! with realistic distributions (pages, referrers and users Zipf-like, devices and countries
//! weighted, durations exponential) and defects injected on purpose — important fields sent
//! empty (`""`) or `null`, and records that are not JSON (truncated). Seeded: the same seed and
//! options make the same visits and the same defects; only `ts`/`started_at` follow the clock.
//!
//! The defects are drawn from their own random stream, so the visits themselves do not change
//! when only the fractions do. [`DefectTally`] counts what was sent: the ground truth a quality
//! monitor's counts are checked against.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Zipf};
use serde::Serialize;

use crate::EpochMillis;

/// The fields of a visit event, in the order the JSON has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VisitField {
    VisitId,
    UserId,
    Page,
    Referrer,
    Device,
    Country,
    StartedAt,
    DurationMs,
    Ts,
}

impl VisitField {
    pub const ALL: [VisitField; 9] = [
        Self::VisitId,
        Self::UserId,
        Self::Page,
        Self::Referrer,
        Self::Device,
        Self::Country,
        Self::StartedAt,
        Self::DurationMs,
        Self::Ts,
    ];

    /// The field's name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::VisitId => "visit_id",
            Self::UserId => "user_id",
            Self::Page => "page",
            Self::Referrer => "referrer",
            Self::Device => "device",
            Self::Country => "country",
            Self::StartedAt => "started_at",
            Self::DurationMs => "duration_ms",
            Self::Ts => "ts",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for VisitField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for VisitField {
    type Err = VisitsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                VisitsError(format!(
                    "no visit field {s:?}; the fields are {}",
                    Self::ALL.map(Self::name).join(", ")
                ))
            })
    }
}

/// Why a visit workload cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VisitsError(pub String);

/// The knobs of the visit workload.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitWorkload {
    pub seed: u64,
    /// Distinct users (Zipf-like: a few visit a lot).
    pub users: u32,
    /// Mean visit duration (exponentially distributed).
    pub mean_duration_ms: f64,
    /// Chance that an important field of a well-formed record is sent as `""`.
    pub empty_fraction: f64,
    /// Chance that an important field of a well-formed record is sent as `null`.
    pub null_fraction: f64,
    /// Chance that a record is truncated (not JSON); its fields are then not counted.
    pub malformed_fraction: f64,
    /// The fields the defects hit.
    pub important: Vec<VisitField>,
}

impl Default for VisitWorkload {
    fn default() -> Self {
        Self {
            seed: 1,
            users: 10_000,
            mean_duration_ms: 45_000.0,
            empty_fraction: 0.0,
            null_fraction: 0.0,
            malformed_fraction: 0.0,
            important: vec![VisitField::UserId, VisitField::Page],
        }
    }
}

/// Named pages, most visited first; the rest of the catalogue is product pages.
const NAMED_PAGES: [&str; 12] = [
    "/",
    "/products",
    "/search",
    "/cart",
    "/pricing",
    "/blog",
    "/login",
    "/checkout",
    "/account",
    "/help",
    "/about",
    "/contact",
];
/// Pages in the catalogue (named, then `/products/<n>`).
pub const PAGES: u32 = 200;
/// Referrers, most frequent first. A visit with none says `direct`: a real referrer is never
/// empty, so every empty or null one is an injected defect.
pub const REFERRERS: [&str; 12] = [
    "direct",
    "google.com",
    "facebook.com",
    "bing.com",
    "instagram.com",
    "newsletter",
    "twitter.com",
    "duckduckgo.com",
    "reddit.com",
    "linkedin.com",
    "news.ycombinator.com",
    "partner-blog.example",
];
/// Devices and their weights (per cent).
pub const DEVICES: [(&str, u32); 3] = [("mobile", 60), ("desktop", 36), ("tablet", 4)];
/// Countries (ISO 3166 codes) and their weights.
pub const COUNTRIES: [(&str, u32); 13] = [
    ("US", 30),
    ("IN", 12),
    ("DE", 8),
    ("GB", 8),
    ("BR", 7),
    ("FR", 6),
    ("JP", 6),
    ("CA", 5),
    ("ES", 4),
    ("IT", 4),
    ("MX", 4),
    ("AU", 3),
    ("NL", 3),
];

/// One visit as drawn (before defects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub visit_id: String,
    pub user_id: String,
    pub page: String,
    pub referrer: &'static str,
    pub device: &'static str,
    pub country: &'static str,
    pub duration_ms: u64,
    /// When the event was sent (the visit ended): epoch milliseconds.
    pub ts: EpochMillis,
}

impl Visit {
    /// When the visit started: `ts - duration_ms`.
    pub fn started_at_ms(&self) -> EpochMillis {
        self.ts.saturating_sub(self.duration_ms)
    }
}

/// A set of visit fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    pub fn contains(self, field: VisitField) -> bool {
        self.0 & field.bit() != 0
    }

    pub fn insert(&mut self, field: VisitField) {
        self.0 |= field.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = VisitField> {
        VisitField::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

/// What is wrong with a record on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Defects {
    /// Sent cut short at this fraction of its length (in (0, 1)): not JSON.
    pub truncate_at: Option<f64>,
    /// Important fields sent as `""`.
    pub empty: FieldSet,
    /// Important fields sent as `null`.
    pub null: FieldSet,
}

/// A visit and the defects it is sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitEvent {
    pub visit: Visit,
    pub defects: Defects,
}

impl VisitEvent {
    /// The record's payload, defects applied, into `out` (cleared first). A well-formed record
    /// is one JSON object; a malformed one a proper prefix of it (at least one byte).
    pub fn write_payload(&self, out: &mut Vec<u8>) {
        out.clear();
        let v = &self.visit;
        out.push(b'{');
        for (i, field) in VisitField::ALL.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(out, field.name());
            out.push(b':');
            if self.defects.null.contains(field) {
                out.extend_from_slice(b"null");
                continue;
            }
            if self.defects.empty.contains(field) {
                out.extend_from_slice(b"\"\"");
                continue;
            }
            match field {
                VisitField::VisitId => write_json_str(out, &v.visit_id),
                VisitField::UserId => write_json_str(out, &v.user_id),
                VisitField::Page => write_json_str(out, &v.page),
                VisitField::Referrer => write_json_str(out, v.referrer),
                VisitField::Device => write_json_str(out, v.device),
                VisitField::Country => write_json_str(out, v.country),
                VisitField::StartedAt => {
                    let at = UNIX_EPOCH + Duration::from_millis(v.started_at_ms());
                    let text = humantime::format_rfc3339_millis(at).to_string();
                    write_json_str(out, &text);
                }
                VisitField::DurationMs => {
                    out.extend_from_slice(v.duration_ms.to_string().as_bytes())
                }
                VisitField::Ts => out.extend_from_slice(v.ts.to_string().as_bytes()),
            }
        }
        out.push(b'}');
        if let Some(at) = self.defects.truncate_at {
            out.truncate(truncated_len(out, at));
        }
    }
}

/// The length a record of `payload`'s length is cut to at fraction `at`: at least 1 byte, at
/// most all but the last (a proper prefix of a JSON object is never JSON), on a UTF-8 boundary.
fn truncated_len(payload: &[u8], at: f64) -> usize {
    let len = payload.len();
    let mut cut = ((len as f64 * at) as usize).clamp(1, len.saturating_sub(1).max(1));
    while cut > 1 && std::str::from_utf8(&payload[..cut]).is_err() {
        cut -= 1;
    }
    cut
}

fn write_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

/// Draws visits and their defects.
#[derive(Debug, Clone)]
pub struct VisitGenerator {
    content: StdRng,
    defects: StdRng,
    users: Zipf<f64>,
    pages: Zipf<f64>,
    referrers: Zipf<f64>,
    devices: WeightedIndex<u32>,
    countries: WeightedIndex<u32>,
    duration: Exp<f64>,
    important: FieldSet,
    empty_fraction: f64,
    null_fraction: f64,
    malformed_fraction: f64,
}

fn check_fraction(name: &str, value: f64) -> Result<(), VisitsError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(VisitsError(format!(
            "{name} must be from 0 to 1, got {value}"
        )))
    }
}

impl VisitGenerator {
    pub fn new(w: &VisitWorkload) -> Result<Self, VisitsError> {
        check_fraction("--empty-fraction", w.empty_fraction)?;
        check_fraction("--null-fraction", w.null_fraction)?;
        check_fraction("--malformed-fraction", w.malformed_fraction)?;
        if w.empty_fraction + w.null_fraction > 1.0 {
            return Err(VisitsError(format!(
                "--empty-fraction {} and --null-fraction {} add up to more than 1: a field is \
                 either empty or null — lower one of them",
                w.empty_fraction, w.null_fraction
            )));
        }
        if w.users == 0 {
            return Err(VisitsError("--users must be at least 1".into()));
        }
        let duration = Exp::new(1.0 / w.mean_duration_ms)
            .ok()
            .filter(|_| w.mean_duration_ms > 0.0 && w.mean_duration_ms.is_finite())
            .ok_or_else(|| {
                VisitsError(format!(
                    "the mean visit duration must be more than 0 ms, got {}",
                    w.mean_duration_ms
                ))
            })?;
        let mut important = FieldSet::default();
        for field in &w.important {
            if important.contains(*field) {
                return Err(VisitsError(format!("--important names {field} twice")));
            }
            important.insert(*field);
        }
        let zipf = |n: u32, s: f64| Zipf::new(f64::from(n), s).expect("valid Zipf parameters");
        let weights = |table: &[(&str, u32)]| {
            WeightedIndex::new(table.iter().map(|(_, w)| *w)).expect("positive weights")
        };
        Ok(Self {
            content: StdRng::seed_from_u64(w.seed),
            // Its own stream: changing a fraction does not change the visits.
            defects: StdRng::seed_from_u64(w.seed ^ 0x5eed_def3_c75a_11ed),
            users: zipf(w.users, 0.8),
            pages: zipf(PAGES, 1.1),
            referrers: zipf(REFERRERS.len() as u32, 1.2),
            devices: weights(&DEVICES),
            countries: weights(&COUNTRIES),
            duration,
            important,
            empty_fraction: w.empty_fraction,
            null_fraction: w.null_fraction,
            malformed_fraction: w.malformed_fraction,
        })
    }

    /// The next visit, sent at `now`.
    pub fn next_visit(&mut self, now: EpochMillis) -> VisitEvent {
        let rng = &mut self.content;
        let id: u128 = rng.random();
        // A version-4 UUID's layout: version nibble 4, variant bits 10.
        const VERSION: u128 = 0xf << 76;
        const VARIANT: u128 = 0x3 << 62;
        let id = (id & !VERSION) | (0x4 << 76);
        let id = (id & !VARIANT) | (0x2 << 62);
        let visit_id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            id >> 96,
            (id >> 80) & 0xffff,
            (id >> 64) & 0xffff,
            (id >> 48) & 0xffff,
            id & 0xffff_ffff_ffff
        );
        let user = self.users.sample(rng) as u32;
        let page = self.pages.sample(rng) as usize;
        let page = match NAMED_PAGES.get(page - 1) {
            Some(named) => (*named).to_owned(),
            None => format!("/products/{}", page - NAMED_PAGES.len()),
        };
        let referrer = REFERRERS[self.referrers.sample(rng) as usize - 1];
        let device = DEVICES[self.devices.sample(rng)].0;
        let country = COUNTRIES[self.countries.sample(rng)].0;
        let duration_ms = self.duration.sample(rng).round() as u64;
        let visit = Visit {
            visit_id,
            user_id: format!("user-{user:05}"),
            page,
            referrer,
            device,
            country,
            duration_ms,
            ts: now,
        };
        VisitEvent {
            visit,
            defects: self.draw_defects(),
        }
    }

    fn draw_defects(&mut self) -> Defects {
        let rng = &mut self.defects;
        let mut defects = Defects::default();
        if rng.random::<f64>() < self.malformed_fraction {
            // In (0, 1): a cut somewhere inside the record.
            defects.truncate_at = Some(rng.random_range(0.05..0.95));
            return defects;
        }
        for field in self.important.iter() {
            let draw: f64 = rng.random();
            if draw < self.null_fraction {
                defects.null.insert(field);
            } else if draw < self.null_fraction + self.empty_fraction {
                defects.empty.insert(field);
            }
        }
        defects
    }
}

/// How many events are due `elapsed` into a run at `rate` per second with `sent` sent so far:
/// the pace follows the clock, so a late tick is caught up at the next.
pub fn events_due(rate: f64, elapsed: Duration, sent: u64) -> u64 {
    ((rate * elapsed.as_secs_f64()) as u64).saturating_sub(sent)
}

/// What was sent, defect by defect: the ground truth a quality monitor is checked against.
/// Every important field is named in `empty` and `null`, with 0 when none was sent so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DefectTally {
    /// Records sent, malformed ones included.
    pub visits: u64,
    /// Records that are not JSON.
    pub malformed: u64,
    /// Well-formed records with at least one empty or null field.
    pub defective: u64,
    /// Per important field: records that had it as `""`.
    pub empty: BTreeMap<String, u64>,
    /// Per important field: records that had it as `null`.
    pub null: BTreeMap<String, u64>,
}

impl DefectTally {
    pub fn new(important: &[VisitField]) -> Self {
        let zeros: BTreeMap<String, u64> =
            important.iter().map(|f| (f.name().to_owned(), 0)).collect();
        Self {
            empty: zeros.clone(),
            null: zeros,
            ..Self::default()
        }
    }

    /// Counts one record sent with `defects`.
    pub fn add(&mut self, defects: &Defects) {
        self.visits += 1;
        if defects.truncate_at.is_some() {
            self.malformed += 1;
            return;
        }
        if !(defects.empty.is_empty() && defects.null.is_empty()) {
            self.defective += 1;
        }
        for field in defects.empty.iter() {
            *self.empty.entry(field.name().to_owned()).or_default() += 1;
        }
        for field in defects.null.iter() {
            *self.null.entry(field.name().to_owned()).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(empty: f64, null: f64, malformed: f64) -> VisitWorkload {
        VisitWorkload {
            seed: 7,
            empty_fraction: empty,
            null_fraction: null,
            malformed_fraction: malformed,
            ..VisitWorkload::default()
        }
    }

    fn payload(event: &VisitEvent) -> Vec<u8> {
        let mut out = Vec::new();
        event.write_payload(&mut out);
        out
    }

    /// What a reader of the topic counts from the payloads alone, in a tally's shape.
    fn count_from_payloads(payloads: &[Vec<u8>], important: &[VisitField]) -> DefectTally {
        let mut seen = DefectTally::new(important);
        for p in payloads {
            seen.visits += 1;
            let Ok(serde_json::Value::Object(record)) = serde_json::from_slice(p) else {
                seen.malformed += 1;
                continue;
            };
            let mut defective = false;
            for field in important {
                match &record[field.name()] {
                    serde_json::Value::Null => {
                        *seen.null.get_mut(field.name()).unwrap() += 1;
                        defective = true;
                    }
                    serde_json::Value::String(s) if s.is_empty() => {
                        *seen.empty.get_mut(field.name()).unwrap() += 1;
                        defective = true;
                    }
                    _ => {}
                }
            }
            seen.defective += u64::from(defective);
        }
        seen
    }

    #[test]
    fn a_visit_is_one_json_object_with_every_field_and_realistic_values() {
        let mut generator = VisitGenerator::new(&workload(0.0, 0.0, 0.0)).unwrap();
        let event = generator.next_visit(1_700_000_000_000);
        assert_eq!(event.defects, Defects::default());
        let record: serde_json::Value = serde_json::from_slice(&payload(&event)).unwrap();
        let names: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = VisitField::ALL.map(VisitField::name).to_vec();
        expected.sort_unstable();
        let mut names_sorted = names.clone();
        names_sorted.sort_unstable();
        assert_eq!(names_sorted, expected);
        let id = record["visit_id"].as_str().unwrap();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert!("89ab".contains(&id[19..20]), "variant: {id}");
        assert!(record["user_id"].as_str().unwrap().starts_with("user-"));
        assert!(record["page"].as_str().unwrap().starts_with('/'));
        assert_eq!(record["ts"], 1_700_000_000_000u64);
        let duration = record["duration_ms"].as_u64().unwrap();
        let started = humantime::parse_rfc3339(record["started_at"].as_str().unwrap()).unwrap();
        let started_ms = started.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert_eq!(started_ms + duration, 1_700_000_000_000);
    }

    #[test]
    fn the_same_seed_makes_the_same_visits_and_defects_and_fractions_leave_the_visits_alone() {
        let run = |w: &VisitWorkload| {
            let mut generator = VisitGenerator::new(w).unwrap();
            (0..500)
                .map(|i| generator.next_visit(1_000 + i))
                .collect::<Vec<_>>()
        };
        let defective = workload(0.1, 0.1, 0.05);
        assert_eq!(run(&defective), run(&defective));
        let clean = run(&workload(0.0, 0.0, 0.0));
        let visits =
            |events: Vec<VisitEvent>| events.into_iter().map(|e| e.visit).collect::<Vec<_>>();
        assert_eq!(visits(run(&defective)), visits(clean));
        let other_seed = VisitWorkload {
            seed: 8,
            ..defective.clone()
        };
        assert_ne!(run(&other_seed), run(&defective));
    }

    #[test]
    fn the_tally_equals_what_a_reader_counts_in_the_payloads() {
        let important = vec![VisitField::UserId, VisitField::Page, VisitField::DurationMs];
        let w = VisitWorkload {
            important: important.clone(),
            ..workload(0.05, 0.05, 0.02)
        };
        let mut generator = VisitGenerator::new(&w).unwrap();
        let mut tally = DefectTally::new(&important);
        let mut payloads = Vec::new();
        for i in 0..20_000 {
            let event = generator.next_visit(1_700_000_000_000 + i);
            tally.add(&event.defects);
            payloads.push(payload(&event));
        }
        assert_eq!(tally, count_from_payloads(&payloads, &important));
        // Near the fractions asked for (exact for this seed, so not flaky).
        assert!((350..450).contains(&tally.malformed), "{tally:?}");
        let well_formed = (tally.visits - tally.malformed) as f64;
        for field in ["user_id", "page", "duration_ms"] {
            for counts in [&tally.empty, &tally.null] {
                let ratio = counts[field] as f64 / well_formed;
                assert!(
                    (0.045..0.055).contains(&ratio),
                    "{field}: {ratio} {tally:?}"
                );
            }
        }
    }

    #[test]
    fn a_malformed_record_is_a_proper_prefix_of_its_json_and_never_parses() {
        let mut generator = VisitGenerator::new(&workload(0.0, 0.0, 1.0)).unwrap();
        for i in 0..2_000 {
            let event = generator.next_visit(1_000 + i);
            let cut = payload(&event);
            let whole = payload(&VisitEvent {
                defects: Defects::default(),
                ..event.clone()
            });
            assert!(!cut.is_empty() && cut.len() < whole.len());
            assert!(whole.starts_with(&cut));
            assert!(serde_json::from_slice::<serde_json::Value>(&cut).is_err());
            assert!(std::str::from_utf8(&cut).is_ok());
        }
        assert_eq!(truncated_len(b"{}", 0.01), 1);
        assert_eq!(truncated_len(b"{}", 0.99), 1);
        assert_eq!(
            truncated_len("{\"é\"}".as_bytes(), 0.5),
            2,
            "not inside the é"
        );
    }

    #[test]
    fn every_important_field_can_be_null_or_empty_and_the_others_never_are() {
        let important = vec![VisitField::Referrer, VisitField::Ts];
        let all_empty = VisitWorkload {
            important: important.clone(),
            ..workload(1.0, 0.0, 0.0)
        };
        let event = VisitGenerator::new(&all_empty).unwrap().next_visit(5);
        let record: serde_json::Value = serde_json::from_slice(&payload(&event)).unwrap();
        assert_eq!(record["referrer"], "");
        assert_eq!(record["ts"], "", "a number sent empty is \"\"");
        assert!(!record["page"].as_str().unwrap().is_empty());
        let all_null = VisitWorkload {
            important,
            ..workload(0.0, 1.0, 0.0)
        };
        let event = VisitGenerator::new(&all_null).unwrap().next_visit(5);
        let record: serde_json::Value = serde_json::from_slice(&payload(&event)).unwrap();
        assert!(record["referrer"].is_null() && record["ts"].is_null());
        assert!(record["user_id"].is_string());
    }

    #[test]
    fn distributions_favour_the_head_and_durations_have_the_mean_asked_for() {
        let mut generator = VisitGenerator::new(&workload(0.0, 0.0, 0.0)).unwrap();
        let mut pages: BTreeMap<String, u64> = BTreeMap::new();
        let mut devices: BTreeMap<&str, u64> = BTreeMap::new();
        let mut referrers: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total_ms = 0u64;
        let n = 50_000;
        for i in 0..n {
            let v = generator.next_visit(i).visit;
            assert!(!v.user_id.is_empty() && !v.referrer.is_empty());
            *pages.entry(v.page).or_default() += 1;
            *devices.entry(v.device).or_default() += 1;
            *referrers.entry(v.referrer).or_default() += 1;
            total_ms += v.duration_ms;
        }
        fn most<K>(m: &BTreeMap<K, u64>) -> u64 {
            *m.values().max().unwrap()
        }
        assert_eq!(pages["/"], most(&pages), "the home page leads");
        assert!(pages["/"] > 5 * pages["/about"]);
        assert_eq!(referrers["direct"], most(&referrers));
        let mobile = devices["mobile"] as f64 / n as f64;
        assert!((0.59..0.61).contains(&mobile), "{mobile}");
        let mean = total_ms as f64 / n as f64;
        assert!((44_000.0..46_000.0).contains(&mean), "{mean}");
    }

    #[test]
    fn the_pace_follows_the_clock() {
        assert_eq!(events_due(100.0, Duration::from_millis(0), 0), 0);
        assert_eq!(events_due(100.0, Duration::from_millis(100), 0), 10);
        assert_eq!(events_due(100.0, Duration::from_millis(250), 10), 15);
        assert_eq!(
            events_due(100.0, Duration::from_millis(250), 30),
            0,
            "ahead: wait"
        );
        assert_eq!(events_due(3.0, Duration::from_millis(500), 1), 0);
    }

    #[test]
    fn bad_options_are_refused_with_what_to_change() {
        let err = |w: VisitWorkload| VisitGenerator::new(&w).unwrap_err().0;
        assert!(err(workload(1.5, 0.0, 0.0)).contains("--empty-fraction must be from 0 to 1"));
        assert!(err(workload(0.0, -0.1, 0.0)).contains("--null-fraction"));
        assert!(err(workload(0.0, 0.0, 2.0)).contains("--malformed-fraction"));
        assert!(err(workload(0.6, 0.6, 0.0)).contains("add up to more than 1"));
        let twice = VisitWorkload {
            important: vec![VisitField::Page, VisitField::Page],
            ..VisitWorkload::default()
        };
        assert!(err(twice).contains("--important names page twice"));
        let unknown = "user".parse::<VisitField>().unwrap_err().0;
        assert!(unknown.contains("no visit field \"user\"") && unknown.contains("user_id"));
        assert_eq!(" page ".parse::<VisitField>(), Ok(VisitField::Page));
    }
}
