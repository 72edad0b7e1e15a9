//! What `pipescope check` reports on one file: the monitor's configuration and the pipeline
//! parts' tables that may share the file, every error of both, or a one-line summary.

use std::path::Path;

use clap::CommandFactory;
use pipescope_core::series_budget::{ClusterSize, STORE_BYTES_PER_SAMPLE, estimate, human_bytes};

use super::{Config, KafkaCluster, PartitionSeriesMode};

/// What `pipescope check` found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Every error, one per line (for stderr): the monitor's, then the parts' tables'.
    pub errors: String,
    /// The summary line of a valid file (for stdout), without its newline; `None` when the
    /// file has errors.
    pub summary: Option<String>,
    /// What a valid file does unsafely (plaintext logins, `skip_verify`), one per line (for
    /// stderr); they do not make the file invalid.
    pub warnings: String,
    /// With `--cluster-size`, the series and disk per day of a valid file (for stdout), one
    /// line each; empty otherwise.
    pub estimate: String,
}

/// Checks the file at `path` as `pipescope run` would load it (with this process's
/// `PIPESCOPE__…` variables), and its parts' tables as the parts would read them.
pub fn check(path: &Path) -> CheckReport {
    check_sized(path, None)
}

/// [`check`], and with a cluster size the series estimate of the file's Kafka clusters.
pub fn check_sized(path: &Path, cluster_size: Option<ClusterSize>) -> CheckReport {
    let (parts, part_errors) = std::fs::read_to_string(path)
        .map(|text| super::parts::check_part_tables(&text, &crate::cli::Cli::command()))
        .unwrap_or_default();
    let monitor = super::load(path);
    let mut errors = match &monitor {
        Err(errors) => errors.to_string(),
        Ok(_) => String::new(),
    };
    for error in &part_errors {
        errors.push_str(&format!("{}: {error}\n", path.display()));
    }
    let mut warnings = String::new();
    if let Ok(config) = &monitor {
        for warning in super::security_warnings(config) {
            warnings.push_str(&format!("{}: warning: {warning}\n", path.display()));
        }
    }
    let estimate = match (&monitor, cluster_size) {
        (Ok(config), Some(size)) if part_errors.is_empty() => series_estimate(config, size),
        _ => String::new(),
    };
    let summary = match monitor {
        Ok(config) if part_errors.is_empty() => Some(format!(
            "{}: valid — {} Kafka cluster(s), {} MQTT broker(s), web on {}{}{}{}{}",
            path.display(),
            config.kafka.len(),
            config.mqtt.len(),
            config.web.listen,
            if config.flows.is_empty() {
                String::new()
            } else {
                format!(", {} observed flow(s)", config.flows.len())
            },
            if config.quality.is_empty() {
                String::new()
            } else {
                format!(", {} quality topic(s)", config.quality.len())
            },
            match (config.watched_parts.len(), config.alerts.rules.len()) {
                (0, 0) => String::new(),
                (parts, 0) => format!(", {parts} watched part(s)"),
                (0, rules) => format!(", {rules} alert rule(s)"),
                (parts, rules) => format!(", {parts} watched part(s), {rules} alert rule(s)"),
            },
            if parts.is_empty() {
                String::new()
            } else {
                format!("; pipeline parts: {}", parts.join(", "))
            }
        )),
        _ => None,
    };
    CheckReport {
        errors,
        summary,
        warnings,
        estimate,
    }
}

/// What the store and InfluxDB receive from each configured Kafka cluster (or, with none, from
/// one with the default settings) were it of `size`: every series (before the bounds) and the
/// bounded ones, with the store's disk per day at [`STORE_BYTES_PER_SAMPLE`].
pub fn series_estimate(config: &Config, size: ClusterSize) -> String {
    let destinations = if config.export.influx.is_some() {
        "the store and InfluxDB"
    } else {
        "the store"
    };
    let mut out = format!(
        "series a Kafka cluster of {} partitions, {} topics, {} groups ({} group partitions) sends to {destinations} (/metrics is bounded by groups_allow/topics_allow instead; {STORE_BYTES_PER_SAMPLE} bytes per stored sample):\n",
        size.partitions, size.topics, size.groups, size.group_partitions
    );
    let default_cluster;
    let clusters: Vec<(&str, &KafkaCluster)> = if config.kafka.is_empty() {
        default_cluster = toml::from_str::<KafkaCluster>("bootstrap = \"localhost:9092\"")
            .expect("the default cluster table loads");
        vec![("(default settings)", &default_cluster)]
    } else {
        config.kafka.iter().map(|(n, c)| (n.as_str(), c)).collect()
    };
    let cap = config.series.max_per_source;
    for (name, cluster) in clusters {
        let interval = cluster.scrape_interval.as_millis() as u64;
        let bounds = crate::series::cluster_series(cluster);
        let before = estimate(size, interval, None);
        let after = estimate(size, interval, Some((&bounds, cap)));
        let mode = match cluster.partition_series {
            PartitionSeriesMode::Top => {
                format!("\"top\", partition_top_k = {}", cluster.partition_top_k)
            }
            PartitionSeriesMode::All => "\"all\"".to_string(),
            PartitionSeriesMode::None => "\"none\"".to_string(),
        };
        let allowed = if cluster.partition_series_allow.is_empty()
            && cluster.partition_series_groups_allow.is_empty()
        {
            ""
        } else {
            " (plus the partitions partition_series_allow lets in, not counted)"
        };
        out.push_str(&format!(
            "  kafka.{name} (scrape every {}, partition_series = {mode}, series.max_per_source = {cap}):\n    every series: {} series, {}/day\n    bounded:      {} series, {}/day{allowed}\n",
            humantime::format_duration(cluster.scrape_interval),
            before.series,
            human_bytes(before.bytes_per_day),
            after.series,
            human_bytes(after.bytes_per_day),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> (CheckReport, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.toml");
        std::fs::write(&path, text).unwrap();
        (check(&path), path.display().to_string())
    }

    #[test]
    fn a_valid_file_is_summed_up_with_its_parts() {
        let (report, path) = check_text(
            "[web]\nlisten = \"127.0.0.1:7000\"\n[mqtt.m]\nurl = \"tcp://h\"\n\
             [bridge]\nmqtt = \"ssl://[::1]\"\n[sink.influx]\ndatabase = \"d\"\n",
        );
        assert_eq!(report.errors, "");
        assert_eq!(
            report.summary.unwrap(),
            format!(
                "{path}: valid — 0 Kafka cluster(s), 1 MQTT broker(s), web on 127.0.0.1:7000; \
                 pipeline parts: bridge, sink influx"
            )
        );
        let (report, path) = check_text("");
        assert_eq!(
            report.summary.unwrap(),
            format!("{path}: valid — 0 Kafka cluster(s), 0 MQTT broker(s), web on 127.0.0.1:7575")
        );
    }

    #[test]
    fn observed_flows_are_counted_and_a_wrong_hop_is_reported() {
        let base = "[mqtt.m]\nurl = \"mqtt://h\"\n[kafka.k]\nbootstrap = \"a:1\"\n";
        let (report, path) = check_text(&format!(
            "{base}[flows.f]\nhops = [{{ mqtt = \"m\", filter = \"machine/#\" }}, {{ kafka = \"k\", topic = \"t\" }}]\n"
        ));
        assert_eq!(report.errors, "");
        assert_eq!(
            report.summary.unwrap(),
            format!(
                "{path}: valid — 1 Kafka cluster(s), 1 MQTT broker(s), web on 127.0.0.1:7575, 1 observed flow(s)"
            )
        );
        let (report, path) = check_text(&format!(
            "{base}[quality.q]\nmqtt = \"m\"\nfilter = \"visits/#\"\n"
        ));
        assert_eq!(
            report.summary.unwrap(),
            format!(
                "{path}: valid — 1 Kafka cluster(s), 1 MQTT broker(s), web on 127.0.0.1:7575, 1 quality topic(s)"
            )
        );
        let (report, path) = check_text(&format!(
            "{base}[watched_parts.bridge]\nurl = \"http://127.0.0.1:9101\"\n"
        ));
        assert_eq!(
            report.summary.unwrap(),
            format!(
                "{path}: valid — 1 Kafka cluster(s), 1 MQTT broker(s), web on 127.0.0.1:7575, 1 watched part(s)"
            )
        );
        let (report, path) = check_text(&format!(
            "{base}[alerts.rules.lag]\nkind = \"group_lag_offsets\"\nabove = 15\n"
        ));
        assert_eq!(
            report.summary.unwrap(),
            format!(
                "{path}: valid — 1 Kafka cluster(s), 1 MQTT broker(s), web on 127.0.0.1:7575, 1 alert rule(s)"
            )
        );
        let (report, _) = check_text(&format!(
            "{base}[watched_parts.bridge]\nurl = \"127.0.0.1:9101\"\ninterval = \"0s\"\n"
        ));
        assert!(report.summary.is_none());
        assert!(
            report.errors.contains("watched_parts.bridge.url: expected http://host:port (the part's --listen), got \"127.0.0.1:9101\"")
                && report.errors.contains("watched_parts.bridge: interval and timeout must be more than 0s"),
            "{}",
            report.errors
        );
        let (report, _) = check_text(&format!(
            "{base}[flows.f]\nhops = [{{ kafka = \"prod\", topic = \"t\" }}]\n"
        ));
        assert!(report.summary.is_none());
        assert!(
            report.errors.contains(
                "flows.f.hops[0].kafka: no Kafka cluster \"prod\" in this file — the file has k"
            ),
            "{}",
            report.errors
        );
    }

    #[test]
    fn the_monitors_errors_come_before_the_parts_tables() {
        let (report, path) =
            check_text("[web]\nlisten = \"x\"\n[sink.influx]\nbatch_size = \"many\"\n");
        assert_eq!(report.summary, None);
        assert_eq!(
            report.errors.lines().collect::<Vec<_>>()[..2],
            [
                format!("{path}: 1 error in the configuration:"),
                "  web.listen: expected ip:port such as 127.0.0.1:7575, got \"x\"".to_string(),
            ]
        );
        let last = report.errors.lines().nth(2).unwrap();
        assert!(
            last.starts_with(&format!(
                "{path}: [sink.influx] invalid value 'many' for '--batch-size"
            )),
            "{last}"
        );
        assert_eq!(report.errors.lines().count(), 3);
        assert!(report.errors.ends_with('\n'));
        // Errors in the parts' tables alone make the file invalid too.
        let (report, _) = check_text("[sink.influx]\ndatabse = \"x\"\n");
        assert_eq!(report.summary, None);
        assert!(report.errors.contains("databse: no such option"));
    }

    #[test]
    fn a_valid_file_that_logs_in_without_tls_is_valid_with_a_warning() {
        let (report, path) = check_text(
            "[mqtt.edge]\nurl = \"mqtt://edge\"\nusername = \"u\"\npassword = \"hunter2\"\n",
        );
        assert!(report.summary.is_some());
        assert_eq!(report.errors, "");
        assert!(
            report.warnings.starts_with(&format!(
                "{path}: warning: mqtt.edge: user \"u\" logs in over"
            )),
            "{}",
            report.warnings
        );
        assert_eq!(report.warnings.lines().count(), 1);
        assert!(!report.warnings.contains("hunter2"));
        let (report, _) = check_text("[mqtt.edge]\nurl = \"mqtt://edge\"\n");
        assert_eq!(report.warnings, "");
    }

    #[test]
    fn a_missing_file_is_one_error() {
        let report = check(Path::new("/nonexistent/pipescope.toml"));
        assert_eq!(report.summary, None);
        assert!(
            report.errors.starts_with(
                "/nonexistent/pipescope.toml: 1 error in the configuration:\n  cannot read the file ("
            ),
            "{}",
            report.errors
        );
    }

    #[test]
    fn the_estimate_follows_each_clusters_bounds_and_needs_a_size() {
        let size: ClusterSize = "partitions=1000,topics=100,groups=10".parse().unwrap();
        let config = crate::config::parse(
            "test",
            "[series]\nmax_per_source = 5000\n[kafka.a]\nbootstrap = \"k:1\"\nscrape_interval = \"1m\"\npartition_series = \"none\"\npartition_series_allow = [\"^x\"]\n",
            [],
        )
        .unwrap();
        let text = series_estimate(&config, size);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        // 3 x 100 + 3 x 10 + 2 = 332 fixed; 4 x 1000 + 6 x 100 more with every partition.
        assert_eq!(
            lines,
            [
                "  kafka.a (scrape every 1m, partition_series = \"none\", series.max_per_source = 5000):",
                "    every series: 4932 series, 10.7 MB/day",
                "    bounded:      332 series, 717.1 kB/day (plus the partitions partition_series_allow lets in, not counted)",
            ]
        );
        let defaults = series_estimate(&crate::config::parse("test", "", []).unwrap(), size);
        assert!(
            defaults.contains("  kafka.(default settings) (scrape every 10s, partition_series = \"top\", partition_top_k = 200"),
            "{defaults}"
        );
        assert!(
            defaults.contains("sends to the store (/metrics"),
            "{defaults}"
        );
        let (report, _) = check_text("[kafka.a]\nbootstrap = \"k:1\"\n");
        assert_eq!(report.estimate, "", "no size, no estimate");
    }
}
