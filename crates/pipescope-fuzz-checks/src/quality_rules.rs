//! A topic's quality rules (config from the operator, records from any producer).

use pipescope_core::quality::rules::{
    MAX_VALUES_PER_LOOKUP, PREVIEW_RECORD_BYTES, PREVIEWS_PER_RULE, RuleConfig, RuleSet,
    TopicRules, values_at,
};
use serde_json::{Value, json};

/// Arrival times: the epoch, now-ish, and the end of time.
const ARRIVALS: [u64; 3] = [0, 1_800_000_000_000, u64::MAX];

/// The first line as the rules (a JSON array of entries, or else a field path given every
/// check), the rest as the record: compiling never panics; evaluating a record at any arrival
/// never panics, names each rule at most once in order, and stays within the lookup's and the
/// previews' bounds.
pub fn quality_rules(data: &[u8]) {
    let (head, record) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let rules = match serde_json::from_slice::<Vec<RuleConfig>>(head) {
        Ok(entries) => match RuleSet::compile("fuzz", &entries) {
            Ok(rules) => rules,
            Err(e) => {
                assert!(e.to_string().starts_with("quality.fuzz: "));
                return;
            }
        },
        Err(_) => {
            let field = String::from_utf8_lossy(head);
            let entry: RuleConfig = serde_json::from_value(json!({
                "field": field, "required": true, "not_null": true, "not_empty": true,
                "type": "integer", "range": [-1.5, 1e19], "regex": "^[a-f0-9]+$",
                "one_of": ["a", 1, null], "fresh_within": "5m",
            }))
            .expect("a valid entry");
            match RuleSet::compile("fuzz", &[entry]) {
                Ok(rules) => rules,
                Err(_) => return, // not a field path
            }
        }
    };
    let Ok(value) = serde_json::from_slice::<Value>(record) else {
        return;
    };
    for rule in rules.rules() {
        assert!(values_at(&value, &rule.path).0.len() <= MAX_VALUES_PER_LOOKUP);
    }
    let mut topic = TopicRules::new(rules.clone(), 0);
    for at in ARRIVALS {
        let broken = topic.observe(&value, record, "fuzz", at);
        assert!(broken.windows(2).all(|w| w[0].rule < w[1].rule));
        assert!(
            broken
                .iter()
                .all(|b| b.rule < rules.len() && !b.reason.is_empty())
        );
    }
    let figures = topic.figures(u64::MAX);
    assert_eq!(figures.records_total, ARRIVALS.len() as u64);
    for rule in &figures.rules {
        assert!(rule.broken_total <= figures.error_records_total);
        assert!(rule.previews.len() <= PREVIEWS_PER_RULE);
        for p in &rule.previews {
            assert!(p.record.len() <= 2 * PREVIEW_RECORD_BYTES);
            assert!(!p.record.chars().any(char::is_control));
            assert!(!p.reason.chars().any(char::is_control));
        }
    }
}
