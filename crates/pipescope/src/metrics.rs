//! Prometheus exposition. Each subsystem registers its metrics (or a collector that reads its
//! live state at scrape time) into one [`Registry`], which `/metrics` encodes.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::bus::Bus;

pub use pipescope_core::exposition::openmetrics_to_prometheus_text;

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

#[cfg(test)]
mod tests {
    use super::*;

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
