//! What a valid configuration still does unsafely: credentials sent over a connection without
//! TLS, and TLS that accepts any certificate. `pipescope run` logs each at start and
//! `pipescope check` prints them. (Serving the portal beyond loopback without auth is warned
//! about by `run` when it binds.)

use std::fmt;

use super::{Config, SaslMechanism, Tls};

/// One unsafe setting: where it is, what it exposes, and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The setting's path (`kafka.prod.sasl`).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every unsafe setting in `config`, in the file's order of sections.
pub fn security_warnings(config: &Config) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    let mut warn = |path: String, message: String| warnings.push(ConfigWarning { path, message });
    for (name, cluster) in &config.kafka {
        if let (Some(sasl), None) = (&cluster.sasl, &cluster.tls) {
            let exposed = match sasl.mechanism {
                SaslMechanism::Plain => "the password crosses the network in clear",
                SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                    "anyone on the path can capture the login and guess the password offline"
                }
            };
            warn(
                format!("kafka.{name}.sasl"),
                format!(
                    "SASL {} login as {:?} without TLS: {exposed} — add [kafka.{name}.tls] \
                     and use the brokers' SASL_SSL listener",
                    mechanism_name(sasl.mechanism),
                    sasl.username
                ),
            );
        }
        skip_verify(
            &format!("kafka.{name}.tls"),
            cluster.tls.as_ref(),
            &mut warn,
        );
    }
    for (name, broker) in &config.mqtt {
        if let Some(username) = &broker.username
            && !broker.url.tls
        {
            warn(
                format!("mqtt.{name}"),
                format!(
                    "user {username:?} logs in over {} without TLS: the password crosses the \
                     network in clear — use an mqtts:// url (the broker's TLS listener)",
                    broker.url
                ),
            );
        }
        skip_verify(&format!("mqtt.{name}.tls"), broker.tls.as_ref(), &mut warn);
    }
    if let Some(influx) = &config.export.influx
        && (influx.password.is_some() || influx.token.is_some())
        && influx
            .url
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("http://")
    {
        warn(
            "export.influx".to_string(),
            format!(
                "credentials sent to {} without TLS: they cross the network in clear — use an \
                 https:// url",
                influx.url
            ),
        );
    }
    warnings
}

fn skip_verify(path: &str, tls: Option<&Tls>, warn: &mut impl FnMut(String, String)) {
    if tls.is_some_and(|tls| tls.skip_verify) {
        warn(
            format!("{path}.skip_verify"),
            "any server certificate is accepted, so anyone on the path can pose as the broker \
             (and read what is sent, passwords included) — remove skip_verify and give the \
             broker's CA as ca = \"ca.pem\""
                .to_string(),
        );
    }
}

fn mechanism_name(mechanism: SaslMechanism) -> &'static str {
    match mechanism {
        SaslMechanism::Plain => "PLAIN",
        SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
        SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn warnings_of(text: &str) -> Vec<String> {
        let config = parse("t", text, []).unwrap_or_else(|e| panic!("{e}"));
        security_warnings(&config)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_safe_configuration_has_no_warning() {
        assert!(warnings_of("").is_empty());
        assert!(warnings_of(super::super::EXAMPLE).is_empty());
        let safe = "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.tls]\n\
                    [kafka.k.sasl]\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"p\"\n\
                    [kafka.open]\nbootstrap = \"b:1\"\n\
                    [mqtt.m]\nurl = \"mqtts://h\"\nusername = \"u\"\npassword = \"p\"\n\
                    [mqtt.anonymous]\nurl = \"mqtt://h\"\n\
                    [export.influx]\nurl = \"https://influx:8086\"\nusername = \"u\"\npassword = \"p\"\n";
        assert_eq!(warnings_of(safe), Vec::<String>::new());
    }

    #[test]
    fn each_plaintext_login_is_named_with_what_to_change() {
        let text = "[kafka.plain]\nbootstrap = \"a:1\"\n\
                    [kafka.plain.sasl]\nmechanism = \"PLAIN\"\nusername = \"svc\"\npassword = \"hunter2\"\n\
                    [kafka.scram]\nbootstrap = \"a:1\"\n\
                    [kafka.scram.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"svc\"\npassword = \"hunter2\"\n\
                    [mqtt.edge]\nurl = \"mqtt://edge:1883\"\nusername = \"watcher\"\npassword = \"hunter2\"\n\
                    [export.influx]\nurl = \"http://influx:8086\"\nversion = 2\norg = \"o\"\nbucket = \"b\"\ntoken = \"hunter2\"\n";
        let warnings = warnings_of(text);
        assert_eq!(
            warnings,
            [
                "kafka.plain.sasl: SASL PLAIN login as \"svc\" without TLS: the password crosses \
                 the network in clear — add [kafka.plain.tls] and use the brokers' SASL_SSL listener",
                "kafka.scram.sasl: SASL SCRAM-SHA-512 login as \"svc\" without TLS: anyone on the \
                 path can capture the login and guess the password offline — add \
                 [kafka.scram.tls] and use the brokers' SASL_SSL listener",
                "mqtt.edge: user \"watcher\" logs in over mqtt://edge:1883 without TLS: the \
                 password crosses the network in clear — use an mqtts:// url (the broker's TLS \
                 listener)",
                "export.influx: credentials sent to http://influx:8086 without TLS: they cross \
                 the network in clear — use an https:// url",
            ]
        );
        assert!(!warnings.concat().contains("hunter2"));
    }

    #[test]
    fn skip_verify_is_named_for_each_cluster_and_broker() {
        let text = "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.tls]\nskip_verify = true\n\
                    [mqtt.m]\nurl = \"mqtts://h\"\n[mqtt.m.tls]\nskip_verify = true\n\
                    [mqtt.checked]\nurl = \"mqtts://h\"\n[mqtt.checked.tls]\nskip_verify = false\n";
        let warnings = warnings_of(text);
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].starts_with("kafka.k.tls.skip_verify: any server certificate is accepted"),
            "{warnings:#?}"
        );
        assert!(
            warnings[1].starts_with("mqtt.m.tls.skip_verify: "),
            "{warnings:#?}"
        );
        assert!(
            warnings[1].ends_with("remove skip_verify and give the broker's CA as ca = \"ca.pem\"")
        );
    }
}
