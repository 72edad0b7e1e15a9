//! `/metrics`: label values from outside (topics, group ids, client ids) in the exposition.

use std::collections::BTreeSet;

use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::prometheus::parse_prometheus;
use pipescope_core::exposition::openmetrics_to_prometheus_text;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

type Labelled<M> = Family<Vec<(String, String)>, M>;

/// NUL-separated label values, put in a gauge, a counter and an info family as pipescope's
/// registry does, encoded as OpenMetrics (what Prometheus asks for) and rewritten as the
/// Prometheus text format (`/metrics` for everyone else). Both texts must parse with a real
/// text-format parser, and every sample must carry exactly the label value that went in.
pub fn metrics_exposition(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let values: BTreeSet<&str> = text.split('\0').take(8).collect();
    let first = values.first().copied().unwrap_or_default();
    let mut registry = Registry::default();
    let gauge = Labelled::<Gauge>::default();
    let counter = Labelled::<Counter>::default();
    registry.register("fuzz_topic_bytes", "Bytes per topic.", gauge.clone());
    registry.register("fuzz_group_commits", "Commits per group.", counter.clone());
    registry.register(
        "fuzz_build",
        "Build.",
        Info::new(vec![("version".to_string(), first.to_string())]),
    );
    for v in &values {
        gauge
            .get_or_create(&vec![("topic".into(), v.to_string())])
            .set(7);
        counter
            .get_or_create(&vec![
                ("group".into(), v.to_string()),
                ("kind".into(), "x".into()),
            ])
            .inc();
    }
    let mut openmetrics = String::new();
    encode(&mut openmetrics, &registry).expect("encoding into a String");
    let prometheus_text = openmetrics_to_prometheus_text(&openmetrics);

    // openmetrics-parser's grammar refuses a raw carriage return, which the text format allows
    // in a label value (only \, " and line feed are escaped) and Prometheus reads: stand a
    // character absent from the input in for it on both sides.
    let cr_stand_in = ('\u{E000}'..='\u{F8FF}')
        .find(|c| !text.contains(*c))
        .expect("an input of at most 8 values leaves a private-use character free");
    let unreturned = |s: &str| s.replace('\r', &cr_stand_in.to_string());
    let parsed = parse_prometheus(&unreturned(&prometheus_text)).unwrap_or_else(|e| {
        panic!("the Prometheus text does not parse ({e:?}):\n{prometheus_text}")
    });
    let values_of = |family: &str, label: &str| -> BTreeSet<String> {
        let family = parsed
            .families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family} in\n{prometheus_text}"));
        family
            .iter_samples()
            .map(|s| {
                let labels = s.get_labelset().expect("a sample's label set");
                labels
                    .get_label_value(label)
                    .unwrap_or_else(|| panic!("a {label} label in\n{prometheus_text}"))
                    .to_string()
            })
            .collect()
    };
    let openmetrics_parsed = parse_openmetrics(&unreturned(&openmetrics))
        .unwrap_or_else(|e| panic!("the OpenMetrics text does not parse ({e:?}):\n{openmetrics}"));
    for (family, label) in [
        ("fuzz_topic_bytes", "topic"),
        ("fuzz_group_commits", "group"),
        ("fuzz_build", "version"),
    ] {
        let parsed: BTreeSet<String> = openmetrics_parsed.families[family]
            .iter_samples()
            .map(|s| {
                s.get_labelset()
                    .unwrap()
                    .get_label_value(label)
                    .unwrap()
                    .to_string()
            })
            .collect();
        let put: BTreeSet<String> = match family {
            "fuzz_build" => BTreeSet::from([unreturned(first)]),
            _ => values.iter().map(|v| unreturned(v)).collect(),
        };
        assert_eq!(parsed, put, "\n{openmetrics}");
    }
    let expected: BTreeSet<String> = values.iter().map(|v| unreturned(v)).collect();
    assert_eq!(
        values_of("fuzz_topic_bytes", "topic"),
        expected,
        "\n{prometheus_text}"
    );
    assert_eq!(
        values_of("fuzz_group_commits_total", "group"),
        expected,
        "\n{prometheus_text}"
    );
    assert_eq!(
        values_of("fuzz_build_info", "version"),
        BTreeSet::from([unreturned(first)]),
        "\n{prometheus_text}"
    );
}
