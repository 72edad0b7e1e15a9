//! The one configuration file: its types, loading with environment overrides, and validation
//! that reports every error at once, each with its path and a hint.
//!
//! Loading works in three passes over a TOML tree:
//! 1. environment variables `PIPESCOPE__SECTION__KEY` are written into the tree;
//! 2. the tree is deserialized into [`Config`]; on an error the offending key is recorded and
//!    removed, and deserialization runs again, so one pass finds every structural error;
//! 3. the typed config is checked for what types cannot say (files exist, cert goes with key…).
//!
//! The pieces: [`types`] (the tables), [`values`] (secrets, addresses, MQTT URLs), `loader`
//! (passes 1 and 2), `validate` (pass 3). The pipeline parts' tables that may share the file
//! are read by [`parts`]; [`check()`] is what `pipescope check` reports.

use std::fmt;
use std::path::Path;

pub mod check;
mod loader;
pub mod parts;
#[cfg(test)]
mod proptests;
pub mod types;
mod validate;
pub mod values;
pub mod warnings;

pub use check::{CheckReport, check, check_sized, series_estimate};
pub use types::{
    AlertRuleConfig, AlertsConfig, BridgeProbe, CommittedOffsetsMode, Config, Export, FlowConfig,
    FlowHop, InfluxExport, KafkaCluster, KafkaProbe, MetricsGranularity, MqttBroker, MqttProbe,
    MqttProtocol, PartitionSeriesMode, QualityConfig, Sasl, SaslMechanism, SeriesConfig,
    StoreConfig, Tls, Web, WebAuth,
};
pub use values::{HostPort, MqttUrl, MqttUrlError, Secret};
pub use warnings::{ConfigWarning, security_warnings};

/// Prefix of environment variables that override the file, with `__` between path segments.
pub const ENV_PREFIX: &str = "PIPESCOPE__";

/// Top-level tables of the pipeline parts' options, which the monitor leaves alone.
pub const PART_TABLES: [&str; 4] = ["simulate", "bridge", "process", "sink"];

/// The commented example printed by `pipescope config example`; a test keeps it valid.
pub const EXAMPLE: &str = include_str!("example.toml");

/// The commented block of [`EXAMPLE`] that starts with `header`, uncommented: for the tests that
/// check each optional block is valid once a user uncomments it.
#[cfg(test)]
pub(crate) fn example_block(header: &str) -> String {
    let start = EXAMPLE.find(header).expect("the example has the block");
    EXAMPLE[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
        .collect()
}

/// One problem in the configuration, located by its path (`kafka.prod.bootstrap[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub source_name: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} error{} in the configuration:",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

/// Reads `path`, applies the `PIPESCOPE__…` variables of this process, and validates.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        source_name: source_name.clone(),
        errors: vec![
            ConfigError::new("", format!("cannot read the file ({e})"))
                .hint("give the path of a TOML file; `pipescope config example` prints one"),
        ],
    })?;
    parse(&source_name, &text, std::env::vars())
}

/// Parses `text` with the given environment (only `PIPESCOPE__…` variables are used).
pub fn parse(
    source_name: &str,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        source_name: source_name.to_string(),
        errors,
    };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        fail(vec![ConfigError::new(
            "",
            format!("invalid TOML: {}", e.to_string().trim_end()),
        )])
    })?;
    // The pipeline parts' tables (`pipescope bridge --config FILE`, ...) may share the file.
    for part in PART_TABLES {
        table.remove(part);
    }
    let env_paths = loader::apply_env(&mut table, env);
    let (config, mut errors) = loader::deserialize_collecting_errors(toml::Value::Table(table));
    for error in &mut errors {
        if let Some((_, var)) = env_paths
            .iter()
            .find(|(path, _)| error.path.starts_with(path.as_str()))
        {
            error
                .message
                .push_str(&format!(" (set by the environment variable {var})"));
        }
    }
    if let Some(config) = &config {
        // A value already reported as malformed is not reported again for what its removal left.
        let structural: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        errors.extend(validate::validate(config).into_iter().filter(|e| {
            !structural
                .iter()
                .any(|p| !p.is_empty() && e.path.starts_with(p.split('[').next().unwrap_or(p)))
        }));
    }
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(fail(errors)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(super) fn errors_of(text: &str) -> Vec<String> {
        errors_with_env(text, &[])
    }

    pub(super) fn errors_with_env(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        match parse("test.toml", text, env) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_example_is_valid_and_the_empty_file_gives_defaults() {
        parse("example", EXAMPLE, []).expect("example config is valid");
        let config = parse("empty", "", []).unwrap();
        assert_eq!(config.web.listen, "127.0.0.1:7575".parse().unwrap());
        assert!(config.kafka.is_empty() && config.mqtt.is_empty());
    }
}
