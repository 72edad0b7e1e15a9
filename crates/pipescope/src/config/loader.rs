//! The collect-every-error loader: environment overrides (`PIPESCOPE__SECTION__KEY`) written
//! into the TOML tree, then deserialization that records each error, removes the offending
//! value and tries again, so one pass reports every structural error.

use std::collections::{HashMap, HashSet};

use super::values::SECRET_KEYS;
use super::{Config, ConfigError, ENV_PREFIX};

/// Writes `PIPESCOPE__SECTION__KEY=value` variables into the tree, returning which path each set.
///
/// A value is read as a TOML literal when it is one (`5`, `true`, `["a:1", "b:2"]`) and as a
/// string otherwise; where the file already has a string there, or the key is a password or
/// token, the variable stays a string.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let segments: Vec<&str> = var[ENV_PREFIX.len()..].split("__").collect();
        if segments.iter().any(|s| s.is_empty()) {
            continue;
        }
        let mut node = &mut *table;
        let mut path = Vec::new();
        for segment in &segments[..segments.len() - 1] {
            let key = existing_key(node, segment);
            path.push(key.clone());
            let entry = node
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            node = entry.as_table_mut().expect("made a table above");
        }
        let key = existing_key(node, segments[segments.len() - 1]);
        path.push(key.clone());
        let is_secret = SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s));
        let value = match node.get(&key) {
            Some(toml::Value::String(_)) => toml::Value::String(raw),
            // Read as TOML, `1_000` would become 1000: a secret is taken as written.
            _ if is_secret => toml::Value::String(raw),
            _ => parse_env_literal(&raw),
        };
        node.insert(key, value);
        applied.push((path.join("."), var));
    }
    applied
}

/// The key in `table` that matches `segment` ignoring case, or `segment` lower-cased.
fn existing_key(table: &toml::Table, segment: &str) -> String {
    table
        .keys()
        .find(|k| k.eq_ignore_ascii_case(segment))
        .cloned()
        .unwrap_or_else(|| segment.to_ascii_lowercase())
}

fn parse_env_literal(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Deserializes, and on each error records it, removes the offending value and tries again,
/// so that one run reports every structural error instead of only the first.
pub(super) fn deserialize_collecting_errors(
    mut value: toml::Value,
) -> (Option<Config>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut removed: HashSet<Vec<PathSegment>> = HashSet::new();
    // Elements removed from each list so far, to report later errors at their original index.
    let mut removed_from_list: HashMap<Vec<PathSegment>, usize> = HashMap::new();
    // Each round removes one value, so the number of values in the file bounds the rounds.
    for _ in 0..10_000 {
        let error = match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) => return (Some(config), errors),
            Err(error) => error,
        };
        let mut path = to_segments(error.path());
        let message = error.inner().to_string();
        // toml appends "in `a.b`" lines; our path already says where.
        let message = message
            .split("\nin `")
            .next()
            .unwrap_or(&message)
            .trim()
            .to_string();
        let mut record = true;
        if let Some(field) = quoted_name(&message, "unknown field `") {
            // serde_path_to_error may or may not have entered the unknown key already.
            if path.last() != Some(&PathSegment::Key(field.clone())) {
                path.push(PathSegment::Key(field));
            }
        } else if let Some(field) = quoted_name(&message, "missing field `") {
            // A value we removed for being wrong is now missing: that was already reported.
            let mut child = path.clone();
            child.push(PathSegment::Key(field));
            record = !removed.contains(&child);
        }
        let original = original_indices(&path, &removed_from_list);
        if record {
            errors.push(describe(&original, &message));
        }
        if path.is_empty() || !remove_at(&mut value, &path) {
            return (None, errors);
        }
        if let Some((PathSegment::Index(_), list)) = path.split_last() {
            *removed_from_list.entry(list.to_vec()).or_default() += 1;
        }
        removed.insert(original);
    }
    (None, errors)
}

/// Serde reports positions in lists we already removed elements from; this maps them back.
/// Errors inside one list arrive in order, so every removed element stood before this one.
fn original_indices(
    path: &[PathSegment],
    removed_from_list: &HashMap<Vec<PathSegment>, usize>,
) -> Vec<PathSegment> {
    let mut out = Vec::with_capacity(path.len());
    for (i, segment) in path.iter().enumerate() {
        match segment {
            PathSegment::Index(index) => {
                let shift = removed_from_list.get(&path[..i]).copied().unwrap_or(0);
                out.push(PathSegment::Index(index + shift));
            }
            key => out.push(key.clone()),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PathSegment {
    Key(String),
    Index(usize),
}

fn to_segments(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn path_string(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Removes the value at `path`; false when there is nothing there to remove.
fn remove_at(value: &mut toml::Value, path: &[PathSegment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        node = match (segment, node) {
            (PathSegment::Key(k), toml::Value::Table(t)) => match t.get_mut(k) {
                Some(child) => child,
                None => return false,
            },
            (PathSegment::Index(i), toml::Value::Array(a)) => match a.get_mut(*i) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (PathSegment::Key(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        (PathSegment::Index(i), toml::Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// The name between `prefix` and the next backtick in a serde message.
fn quoted_name(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// Turns a serde message into ours, with a "did you mean" for a near-miss name.
fn describe(path: &[PathSegment], message: &str) -> ConfigError {
    let at = path_string(path);
    if let Some(name) = quoted_name(message, "unknown field `") {
        let error = ConfigError::new(at, format!("unknown key {name:?}"));
        return match closest(&name, &expected_names(message)) {
            Some(suggestion) => error.hint(format!("did you mean {suggestion:?}?")),
            None => error.hint(format!(
                "known keys here: {}",
                expected_names(message).join(", ")
            )),
        };
    }
    if let Some(name) = quoted_name(message, "unknown variant `") {
        let expected = expected_names(message);
        let error = ConfigError::new(at, format!("unknown value {name:?}"));
        return match closest(&name, &expected) {
            Some(suggestion) => error.hint(format!("did you mean {suggestion:?}?")),
            None => error.hint(format!("use one of: {}", expected.join(", "))),
        };
    }
    if let Some(name) = quoted_name(message, "missing field `") {
        let error = ConfigError::new(at, format!("missing key {name:?}"));
        return match name.as_str() {
            "bootstrap" => error.hint("list the cluster's brokers: bootstrap = [\"host:9092\"]"),
            "url" if path.first() == Some(&PathSegment::Key("mqtt".into())) => {
                error.hint("give the broker's address: url = \"mqtt://host:1883\"")
            }
            _ => error,
        };
    }
    let error = ConfigError::new(at, message.to_string());
    if message.contains("time unit") || message.contains("expected number") {
        error.hint("write durations like \"10s\", \"500ms\" or \"2m\"")
    } else {
        error
    }
}

/// The names serde lists after "expected" in an unknown-field or unknown-variant message.
fn expected_names(message: &str) -> Vec<String> {
    let Some(start) = message.find("expected") else {
        return Vec::new();
    };
    message[start..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn closest(name: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::parse;
    use super::super::tests::{errors_of, errors_with_env};

    #[test]
    fn bad_bootstrap_entry_is_reported_with_its_index() {
        let errors = errors_of("[kafka.prod]\nbootstrap = [\"ok:9092\", \"localhost\"]\n");
        assert_eq!(
            errors,
            vec!["kafka.prod.bootstrap[1]: expected host:port, got \"localhost\""]
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = r#"
[web]
listen = "nowhere"

[kafka.prod]
bootstrp = ["a:9092"]
scrape_interval = "10 parsecs"

[kafka.prod.sasl]
mechanism = "SCRAM-SHA256"
username = "svc"
password = "hunter2"

[mqtt.edge]
url = "http://broker"
filters = ["a/#/b"]

[mqtt.plant]
url = "mqtt://plant"
filters = ["ok/#", "bad+"]
password = "secret"

[exprot.influx]
url = "http://x"
"#;
        let errors = errors_of(text);
        let expected_fragments = [
            "web.listen: expected ip:port such as 127.0.0.1:7575, got \"nowhere\"",
            "kafka.prod.bootstrp: unknown key \"bootstrp\" — did you mean \"bootstrap\"?",
            "kafka.prod.scrape_interval:",
            "kafka.prod.sasl.mechanism: unknown value \"SCRAM-SHA256\" — did you mean \"SCRAM-SHA-256\"?",
            "mqtt.edge.url: unsupported scheme \"http\"",
            "mqtt.plant.filters[1]: '+' must fill a whole level",
            "mqtt.plant.password: a password needs a username",
            ": unknown key \"exprot\" — did you mean \"export\"?",
        ];
        for fragment in expected_fragments {
            assert!(
                errors.iter().any(|e| e.contains(fragment)),
                "missing {fragment:?} in {errors:#?}"
            );
        }
        // the kafka.prod entry lost its bootstrap key to the typo: that is reported too.
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.prod: missing key \"bootstrap\"")),
            "{errors:#?}"
        );
        assert!(!errors.iter().any(|e| e.contains("hunter2")));
    }

    #[test]
    fn unknown_key_error_path_includes_the_key() {
        let errors =
            errors_of("[kafka.prod]\nbootstrap = \"a:1\"\n[kafka.prod.tls]\nskip_verfy = true\n");
        assert_eq!(
            errors,
            vec![
                "kafka.prod.tls.skip_verfy: unknown key \"skip_verfy\" — did you mean \"skip_verify\"?"
            ]
        );
    }

    #[test]
    fn a_wrong_enum_value_is_not_also_reported_as_missing() {
        let errors = errors_of(
            "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.sasl]\nmechanism = \"GSSAPI\"\nusername = \"u\"\npassword = \"p\"\n",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("kafka.k.sasl.mechanism: unknown value \"GSSAPI\" — use one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"), "{errors:#?}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let errors = errors_of("[kafka.prod\nbootstrap = 1\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("invalid TOML"), "{errors:?}");
        assert!(errors[0].contains("line 1"), "{errors:?}");
    }

    #[test]
    fn env_overrides_set_and_replace_values() {
        let text = "[kafka.Prod]\nbootstrap = [\"a:1\"]\n[kafka.Prod.sasl]\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"from-file\"\n";
        let env = [
            ("PIPESCOPE__WEB__LISTEN", "0.0.0.0:8080"),
            ("PIPESCOPE__KAFKA__PROD__BOOTSTRAP", "b:2,c:3"),
            ("PIPESCOPE__KAFKA__PROD__SASL__PASSWORD", "12345"),
            ("PIPESCOPE__KAFKA__PROD__SCRAPE_INTERVAL", "30s"),
            ("OTHER__WEB__LISTEN", "ignored"),
        ];
        let config = parse(
            "t",
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(config.web.listen, "0.0.0.0:8080".parse().unwrap());
        let prod = &config.kafka["Prod"];
        assert_eq!(
            prod.bootstrap
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["b:2", "c:3"]
        );
        assert_eq!(prod.sasl.as_ref().unwrap().password.expose(), "12345");
        assert_eq!(prod.scrape_interval, Duration::from_secs(30));
    }

    #[test]
    fn a_secret_from_the_environment_is_taken_as_written_even_when_it_reads_as_a_number() {
        let text = "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.sasl]\nmechanism = \"PLAIN\"\nusername = \"u\"\n\
                    [mqtt.m]\nurl = \"mqtt://h\"\nusername = \"u\"\n";
        let env = [
            ("PIPESCOPE__KAFKA__K__SASL__PASSWORD", "12345"),
            ("PIPESCOPE__MQTT__M__PASSWORD", "1_000"),
            ("PIPESCOPE__WEB__AUTH__TYPE", "bearer"),
            ("PIPESCOPE__WEB__AUTH__TOKEN", "0x1F"),
        ];
        let config = parse(
            "t",
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.kafka["k"].sasl.as_ref().unwrap().password.expose(),
            "12345"
        );
        let mqtt_password = config.mqtt["m"].password.as_ref().unwrap();
        assert_eq!(mqtt_password.expose(), "1_000");
        match &config.web.auth {
            crate::config::WebAuth::Bearer { token } => assert_eq!(token.expose(), "0x1F"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        // In the file, or as part of a table an environment variable sets.
        let file = errors_of("[web.auth]\ntype = \"bearer\"\ntoken = 987654321\n");
        let env = errors_with_env(
            "",
            &[(
                "PIPESCOPE__WEB__AUTH",
                "{ type = \"basic\", user = \"u\", password = 987654321 }",
            )],
        );
        // serde reports a field of a tagged enum at the enum.
        for errors in [file, env] {
            assert_eq!(errors.len(), 1, "{errors:#?}");
            assert!(
                errors[0].starts_with("web.auth: a password or token must be a string"),
                "{errors:#?}"
            );
            assert!(errors[0].contains("not shown"), "{errors:#?}");
            assert!(!errors[0].contains("987654321"), "{errors:#?}");
        }
    }

    #[test]
    fn env_errors_name_the_variable() {
        let errors = errors_with_env("", &[("PIPESCOPE__WEB__LISTEN", "nope")]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("PIPESCOPE__WEB__LISTEN"), "{errors:?}");
    }
}
