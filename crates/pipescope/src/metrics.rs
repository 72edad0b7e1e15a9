//! Prometheus exposition. Each subsystem registers its metrics (or a collector that reads its
//! live state at scrape time) into one [`Registry`], which `/metrics` encodes.

use std::collections::HashMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::bus::Bus;

/// `Content-Type` of the OpenMetrics text format that [`encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text format 0.0.4 that [`encode_prometheus_text`] writes.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A registry holding what every pipescope process exports about itself.
pub fn new_registry() -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "pipescope_build",
        "pipescope's version",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry
}

/// The registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; an Err here would be a collector's own bug.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!("a metrics collector failed to encode ({e}); /metrics is incomplete");
    }
    out
}

/// Registers `pipescope_bus_dropped_batches_total`, read from the bus at scrape time.
pub fn register_bus(registry: &mut Registry, bus: &Bus) {
    registry.register_collector(Box::new(BusCollector { bus: bus.clone() }));
}

#[derive(Debug)]
struct BusCollector {
    bus: Bus,
}

impl Collector for BusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_const(
            &mut encoder,
            "pipescope_bus_dropped_batches",
            "Sample batches lost by bus subscribers that fell behind.",
            &ConstCounter::new(self.bus.dropped_batches()),
        )
    }
}

/// Writes `metric` (a `ConstCounter` or `ConstGauge`) as the family `name` with `help` and no
/// unit: for collectors that read their numbers at scrape time.
pub(crate) fn encode_const(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// True when an `Accept` header asks for OpenMetrics (Prometheus itself does); everything else
/// (curl, promtool, older scrapers) gets the Prometheus text format 0.0.4.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// The registry in the Prometheus text format 0.0.4, which `promtool check metrics` reads.
pub fn encode_prometheus_text(registry: &Registry) -> String {
    openmetrics_to_prometheus_text(&encode(registry))
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: counter families are named with their
/// `_total` suffix, info families become gauges named `_info`, `_created` samples, units,
/// exemplars and `# EOF` are left out.
pub fn openmetrics_to_prometheus_text(text: &str) -> String {
    let mut types: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            types.insert(name, kind);
        }
    }
    let family_name = |name: &str| -> String {
        match types.get(name) {
            Some(&"counter") => format!("{name}_total"),
            Some(&"info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // Prometheus text escapes only backslash and newline in help.
            let help = help.replace("\\\"", "\"");
            out.push_str(&format!("# HELP {} {help}\n", family_name(name)));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let kind = match kind {
                "counter" | "gauge" | "histogram" | "summary" => kind,
                "info" => "gauge",
                _ => "untyped",
            };
            out.push_str(&format!("# TYPE {} {kind}\n", family_name(name)));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if line[..name_end].ends_with("_created") {
            continue;
        }
        // An exemplar follows " # " after the value; a label value may hold " # " too, so
        // look for it only after the label set's closing brace.
        let body_start = labels_end(line, name_end);
        let sample = match line[body_start..].find(" # ") {
            Some(i) => &line[..body_start + i],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

/// Index just after the label set that starts at `from` (or `from` when there is none).
fn labels_end(line: &str, from: usize) -> usize {
    if !line[from..].starts_with('{') {
        return from;
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[from..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return from + i + 1,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_rewritten_as_prometheus_text() {
        let om = "# HELP a_requests Requests \\\"served\\\".\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3 # {trace=\"t\"} 1.0\na_requests_created 1.7e9\n# HELP b_build Build.\n# TYPE b_build info\nb_build_info{version=\"1 # 2\"} 1\n# HELP c_bytes Size.\n# TYPE c_bytes gauge\n# UNIT c_bytes bytes\nc_bytes 42\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP a_requests_total Requests \"served\".\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n# HELP b_build_info Build.\n# TYPE b_build_info gauge\nb_build_info{version=\"1 # 2\"} 1\n# HELP c_bytes Size.\n# TYPE c_bytes gauge\nc_bytes 42\n"
        );
    }

    #[test]
    fn only_an_openmetrics_accept_gets_openmetrics() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }

    #[test]
    fn bus_drops_are_exported() {
        let mut registry = new_registry();
        let bus = Bus::new(1);
        let _rx = bus.subscribe();
        register_bus(&mut registry, &bus);
        let text = encode_prometheus_text(&registry);
        assert!(text.contains("# TYPE pipescope_bus_dropped_batches_total counter\npipescope_bus_dropped_batches_total 0\n"), "{text}");
    }

    #[test]
    fn build_info_is_exported() {
        let text = encode(&new_registry());
        assert!(
            text.contains(&format!(
                "pipescope_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
