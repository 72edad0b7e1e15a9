use proptest::prelude::*;

use super::*;
use crate::quality::summary::Alert;

fn profile_of(records: &[&str]) -> Profile {
    let mut profile = Profile::new(ProfileLimits::default());
    for (i, record) in records.iter().enumerate() {
        profile.observe(record.as_bytes(), 1_000 + i as u64);
    }
    profile
}

#[test]
fn nested_fields_are_counted_per_path_with_hand_computed_figures() {
    let profile = profile_of(&[
        r#"{"user":{"id":1},"items":[{"price":2.5},{"price":0}],"tags":["a","b"],"name":"ann"}"#,
        r#"{"user":{"id":2},"items":[],"tags":[],"name":""}"#,
        r#"{"user":null,"name":null}"#,
        r#"{"user":{"id":2},"items":[{"price":-1}],"name":"bo"}"#,
    ]);
    assert_eq!(
        (profile.records(), profile.valid(), profile.invalid()),
        (4, 4, 0)
    );
    let paths: Vec<&str> = profile.fields().map(|(p, _)| p).collect();
    // In the order the records hold them.
    assert_eq!(
        paths,
        [
            "user",
            "user.id",
            "items",
            "items[]",
            "items[].price",
            "tags",
            "tags[]",
            "name"
        ]
    );
    let id = profile.field("user.id").unwrap();
    assert_eq!((id.present, profile.missing(id), id.values), (3, 1, 3));
    assert_eq!(id.types.get(ValueType::Int), 3);
    assert_eq!(id.distinct.estimate(), 2);
    assert_eq!((id.numbers.min, id.numbers.max), (1.0, 2.0));
    assert!((id.numbers.mean() - 5.0 / 3.0).abs() < 1e-12);

    let user = profile.field("user").unwrap();
    assert_eq!((user.present, user.nulls), (4, 1));
    assert_eq!(user.dominant_type(), Some(ValueType::Object));

    // Two prices in the first record: present once, two values.
    let price = profile.field("items[].price").unwrap();
    assert_eq!((price.present, price.values, price.zeros), (2, 3, 1));
    assert_eq!(price.types.get(ValueType::Float), 1);
    assert_eq!(price.types.get(ValueType::Int), 2);
    assert!((price.numbers.mean() - 0.5).abs() < 1e-12);
    assert_eq!(price.first_seen_ms, 1_000);
    assert_eq!(price.last_seen_ms, 1_003);

    let items = profile.field("items").unwrap();
    assert_eq!((items.present, items.empties), (3, 1));
    let tags = profile.field("tags[]").unwrap();
    assert_eq!((tags.present, tags.values), (1, 2));

    let name = profile.field("name").unwrap();
    assert_eq!((name.present, name.nulls, name.empties), (4, 1, 1));
    assert_eq!(
        (
            name.string_lengths.min,
            name.string_lengths.max,
            name.string_lengths.count
        ),
        (0.0, 3.0, 3)
    );
    let top: Vec<(String, u64)> = name
        .top
        .ranked()
        .into_iter()
        .map(|(v, c)| (v, c.count))
        .collect();
    let expected = [(r#""""#, 1), (r#""ann""#, 1), (r#""bo""#, 1)].map(|(v, c)| (v.to_string(), c));
    assert_eq!(top, expected);

    let summary = profile.summary();
    assert_eq!(summary.fields, 8);
    // Missing + null over fields: items 1+0, items[] 2, price 2, name 0+1, tags 2, tags[] 3,
    // user 0+1, user.id 1.
    assert_eq!(summary.missing_cells, 1 + 2 + 2 + 1 + 2 + 3 + 1 + 1);
    assert_eq!(summary.duplicates, 0);
}

#[test]
fn invalid_records_are_counted_with_an_escaped_preview() {
    let mut profile = Profile::new(ProfileLimits {
        preview_bytes: 8,
        ..ProfileLimits::default()
    });
    assert_eq!(
        profile.observe(b"{\"a\":\xff\n<script>", 5),
        Observed::Invalid
    );
    assert_eq!(profile.observe(b"", 6), Observed::Invalid);
    assert_eq!(profile.observe(b"[1, 2]", 7), Observed::Profiled);
    assert_eq!(
        (profile.records(), profile.invalid(), profile.valid()),
        (3, 2, 1)
    );
    let examples = profile.invalid_examples();
    assert_eq!(examples[0].preview, "{\\\"a\\\":\\xff\\n<…");
    assert!(
        examples[0].reason.starts_with("not JSON"),
        "{}",
        examples[0].reason
    );
    assert_eq!(examples[1].reason, "empty payload");
    assert_eq!(profile.reject(b"{\"big", "too large", 8), Observed::Invalid);
    assert_eq!(profile.invalid_examples()[2].reason, "too large");
    assert_eq!((profile.records(), profile.invalid()), (4, 3));
    // A record that is not an object is profiled at `$`.
    assert_eq!(profile.field("$").unwrap().types.get(ValueType::Array), 1);
    assert_eq!(profile.missing(profile.field("$").unwrap()), 0);
    assert_eq!(profile.field("$[]").unwrap().values, 2);
}

#[test]
fn a_record_found_invalid_half_way_leaves_only_its_count() {
    let mut profile = profile_of(&[r#"{"a":1,"b":"x"}"#]);
    let before = counts(&profile);
    // Read from its bytes, these records are invalid only after some values were read.
    let cuts: [&[u8]; 4] = [
        br#"{"a":2,"b":"y","new":{"deep":[1,2"#,
        br#"{"a":3,"b":"\ud800"}"#,
        br#"{"a":4} trailing"#,
        b"{\"a\":5,\"b\":\"\xff\"}",
    ];
    for cut in cuts {
        let shown = cut.escape_ascii().to_string();
        assert_eq!(profile.observe(cut, 9), Observed::Invalid, "{shown}");
    }
    assert_eq!(counts(&profile), before);
    assert_eq!(profile.fields().count(), 2);
    assert_eq!((profile.records(), profile.invalid()), (5, 4));
    assert_eq!(profile.field("a").unwrap().numbers.max, 1.0);
}

#[test]
fn a_number_past_f64_is_invalid_json() {
    let mut profile = Profile::new(ProfileLimits::default());
    assert_eq!(profile.observe(br#"{"x":1e400}"#, 0), Observed::Invalid);
    assert!(
        profile.invalid_examples()[0]
            .reason
            .contains("number out of range")
    );
}

#[test]
fn paths_past_the_cap_are_folded_and_nesting_past_the_depth_is_counted() {
    let mut profile = Profile::new(ProfileLimits {
        max_fields: 2,
        max_depth: 2,
        ..ProfileLimits::default()
    });
    profile.observe(br#"{"a":1,"b":2,"c":3,"d":4}"#, 0);
    profile.observe(br#"{"c":5}"#, 0);
    assert_eq!(profile.fields().count(), 2);
    assert_eq!(profile.folded().values, 3);
    assert_eq!(profile.folded().paths.estimate(), 2);

    let mut deep = Profile::new(ProfileLimits {
        max_depth: 2,
        ..ProfileLimits::default()
    });
    deep.observe(br#"{"a":{"b":{"c":{"d":1}}}}"#, 0);
    let paths: Vec<&str> = deep.fields().map(|(p, _)| p).collect();
    assert_eq!(paths, ["a", "a.b"]);
    assert_eq!(deep.depth_capped(), 1);
}

#[test]
fn sampling_profiles_one_record_in_n_and_says_so() {
    let mut profile = Profile::new(ProfileLimits {
        sample_every: 3,
        ..ProfileLimits::default()
    });
    assert!(profile.takes_next());
    let outcomes: Vec<Observed> = (0..7).map(|i| profile.observe(b"{}", i)).collect();
    assert!(!profile.takes_next());
    // A record parsed by the caller counts in the same sampling.
    let parsed = serde_json::json!({"a": 1});
    assert_eq!(
        profile.observe_parsed(b"{}", &parsed, 7),
        Observed::SampledOut
    );
    assert_eq!(
        profile.observe_parsed(b"{}", &parsed, 8),
        Observed::SampledOut
    );
    assert_eq!(
        profile.observe_parsed(b"{}", &parsed, 9),
        Observed::Profiled
    );
    assert_eq!(profile.field("a").unwrap().present, 1);
    let (offered, records) = (profile.offered(), profile.records());
    assert_eq!((offered, records), (10, 4));
    assert_eq!(outcomes[0], Observed::Profiled);
    assert_eq!(outcomes[1], Observed::SampledOut);
    assert_eq!(profile.summary().sample_every, 3);
}

#[test]
fn duplicates_are_exact_under_the_cap_then_estimated() {
    let records = [r#"{"a":1}"#, r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":1}"#];
    assert_eq!(profile_of(&records).duplicates(), (2, true));
    let mut capped = Profile::new(ProfileLimits {
        duplicate_set_cap: 1,
        ..ProfileLimits::default()
    });
    for r in records {
        capped.observe(r.as_bytes(), 0);
    }
    // The sketch is exact this small.
    assert_eq!(capped.duplicates(), (2, false));
}

#[test]
fn alerts_follow_their_thresholds() {
    let mut records = Vec::new();
    for i in 0..40 {
        let zero = if i < 5 { 0 } else { i };
        let city = if i % 10 == 0 {
            "null".to_string()
        } else {
            format!("\"c{i}\"")
        };
        records.push(format!(
            r#"{{"id":{i},"k":"same","z":{zero},"city":{city}}}"#
        ));
    }
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let summary = profile_of(&refs).summary();
    let alerts = |path: &str| {
        summary
            .field_profiles
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .alerts
            .clone()
    };
    // One zero in 40 (2.5 %) is under the ZEROS threshold.
    assert_eq!(alerts("id"), [Alert::Unique]);
    assert_eq!(alerts("k"), [Alert::Constant]);
    // 5 zeros in 40 = 12.5 % > 10 %.
    assert_eq!(alerts("z"), [Alert::Zeros]);
    // 4 nulls in 40 = 10 % > 5 %; its 36 strings all differ.
    assert_eq!(alerts("city"), [Alert::Unique, Alert::Missing]);
}

#[test]
fn quantiles_and_histogram_come_from_the_sketch_within_its_error() {
    let records: Vec<String> = (1..=1000).map(|i| format!(r#"{{"x":{i}}}"#)).collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let summary = profile_of(&refs).summary();
    let numbers = summary.field_profiles[0].numbers.clone().unwrap();
    for (q, value) in &numbers.quantiles {
        let truth = (q * 999.0).floor() + 1.0;
        assert!(
            (value - truth).abs() <= truth * 0.01 + 1e-9,
            "q{q}: {value} vs {truth}"
        );
    }
    assert_eq!(numbers.histogram.len(), 10);
    assert_eq!(numbers.histogram.iter().map(|b| b.count).sum::<u64>(), 1000);
    for bin in &numbers.histogram {
        // 99.9 wide bins: 100 values each, ± what the 1 % relative error moves over an edge.
        assert!(bin.count.abs_diff(100) <= 12, "{bin:?}");
    }
}

/// A record from a few fields and shapes, so windows share and differ in paths.
#[test]
fn quantiles_stay_within_the_exact_min_and_max() {
    // The sketch's bucket for 7 answers 7.03 (within its 1 %): the exact max bounds it.
    let records: Vec<String> = (0..1_000)
        .map(|i| format!(r#"{{"items":{}}}"#, i % 8))
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let summary = profile_of(&refs).summary();
    let numbers = summary.field_profiles[0].numbers.as_ref().unwrap();
    assert_eq!((numbers.min, numbers.max), (0.0, 7.0));
    for (q, v) in &numbers.quantiles {
        assert!((0.0..=7.0).contains(v), "p{q} = {v}");
    }
}

fn record() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..5).prop_map(|i| format!(r#"{{"a":{i},"b":"s{i}"}}"#)),
        (0i64..3).prop_map(|i| format!(r#"{{"a":null,"c":[{i},{{"d":""}}]}}"#)),
        Just(r#"{"b":{}}"#.to_string()),
        Just("not json".to_string()),
        (0i64..3).prop_map(|i| format!("[{i}]")),
    ]
}

/// Path, present, missing, nulls, empties, distinct, types.
type FieldCounts = (String, u64, u64, u64, u64, u64, Vec<(ValueType, u64)>);

fn counts(profile: &Profile) -> Vec<FieldCounts> {
    let mut all: Vec<_> = profile
        .fields()
        .map(|(path, f)| {
            (
                path.to_string(),
                f.present,
                profile.missing(f),
                f.nulls,
                f.empties,
                f.distinct.estimate() as u64,
                f.types.seen().collect(),
            )
        })
        .collect();
    all.sort();
    all
}

proptest! {
    #[test]
    fn merge_of_two_windows_counts_what_one_window_counts(
        a in prop::collection::vec(record(), 0..20),
        b in prop::collection::vec(record(), 0..20),
    ) {
        let mut left = Profile::new(ProfileLimits::default());
        let mut right = Profile::new(ProfileLimits::default());
        let mut whole = Profile::new(ProfileLimits::default());
        for (i, r) in a.iter().enumerate() {
            left.observe(r.as_bytes(), i as u64);
            whole.observe(r.as_bytes(), i as u64);
        }
        for (i, r) in b.iter().enumerate() {
            right.observe(r.as_bytes(), 100 + i as u64);
            whole.observe(r.as_bytes(), 100 + i as u64);
        }
        left.merge(&right);
        prop_assert_eq!(counts(&left), counts(&whole));
        prop_assert_eq!(
            (left.records(), left.invalid(), left.duplicates()),
            (whole.records(), whole.invalid(), whole.duplicates())
        );
        let (ls, ws) = (left.summary(), whole.summary());
        prop_assert_eq!(ls.missing_cells, ws.missing_cells);
        for (l, w) in ls.field_profiles.iter().zip(&ws.field_profiles) {
            prop_assert_eq!(&l.top_values, &w.top_values);
        }
        // Observing after a merge still counts each record once per path.
        left.observe(br#"{"a":1}"#, 500);
        whole.observe(br#"{"a":1}"#, 500);
        prop_assert_eq!(counts(&left), counts(&whole));
    }
}

proptest! {
    #[test]
    fn records_read_from_bytes_count_as_records_parsed_first(
        records in prop::collection::vec(record(), 0..30),
    ) {
        let mut from_bytes = Profile::new(ProfileLimits::default());
        let mut parsed = Profile::new(ProfileLimits::default());
        for (i, r) in records.iter().enumerate() {
            from_bytes.observe(r.as_bytes(), i as u64);
            match serde_json::from_slice::<Value>(r.as_bytes()) {
                Ok(value) => {
                    parsed.observe_parsed(r.as_bytes(), &value, i as u64);
                }
                Err(_) => {
                    parsed.observe(r.as_bytes(), i as u64);
                }
            }
        }
        prop_assert_eq!(counts(&from_bytes), counts(&parsed));
        let (b, p) = (from_bytes.summary(), parsed.summary());
        for (l, w) in b.field_profiles.iter().zip(&p.field_profiles) {
            prop_assert_eq!(&l.top_values, &w.top_values);
        }
    }
}

#[test]
fn a_profile_can_move_between_threads() {
    // The live observer keeps window profiles on its reader threads and hands them over.
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Profile>();
}

#[test]
fn quantiles_of_epoch_times_are_left_out_as_unresolved() {
    // 1.8e12 + 0 … 20,000 ms: ±1 % of the values is months, wider than the range.
    let records: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"ts":{},"n":{i}}}"#, 1_800_000_000_000u64 + i * 100))
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let summary = profile_of(&refs).summary();
    let numbers = |path: &str| {
        summary
            .field_profiles
            .iter()
            .find(|f| f.path == path)
            .and_then(|f| f.numbers.clone())
            .unwrap()
    };
    let ts = numbers("ts");
    assert!(ts.quantiles_unresolved);
    assert!(ts.quantiles.is_empty() && ts.histogram.is_empty());
    assert_eq!((ts.min, ts.max), (1.8e12, 1.8e12 + 19_900.0));
    let n = numbers("n");
    assert!(!n.quantiles_unresolved);
    assert_eq!(n.quantiles.len(), 7);
    assert!(!n.histogram.is_empty());
}
