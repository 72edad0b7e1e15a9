//! Prometheus exposition. Each subsystem registers its metrics (or a collector that reads its
//! live state at scrape time) into one [`Registry`], which `/metrics` encodes.

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// `Content-Type` of the OpenMetrics text format that [`encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

#[cfg(test)]
mod tests {
    use super::*;

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
