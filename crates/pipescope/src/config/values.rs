//! Value types of the configuration: secrets, `host:port` addresses, MQTT broker URLs, and the
//! deserializers of listen addresses and broker lists.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A password or token: shown as `***` by Debug and Serialize, so it never reaches logs or the API,
/// and never quoted in an error (a value of the wrong type is refused without being shown).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

/// Keys whose values are secrets: an environment variable sets them as written (`12345` stays
/// the string "12345", not a number).
pub(super) const SECRET_KEYS: [&str; 2] = ["password", "token"];

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        // serde's own "invalid type: integer `12345`" would quote the secret.
        fn refuse<E: de::Error>() -> E {
            E::custom(
                "a password or token must be a string in quotes (its value is not shown here)",
            )
        }
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a password or token in quotes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(refuse())
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(refuse())
            }
        }
        // `any`: a tagged enum's buffered fields answer `string` with serde's own quoting error.
        d.deserialize_any(SecretVisitor)
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it to a broker.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// A `host:port` address of a broker; IPv6 hosts in brackets (`[::1]:9092`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected host:port, got {s:?}");
        let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['[', ']', '/']) {
            return Err(bad());
        }
        // A bare IPv6 address without brackets would split at its last colon.
        if host.contains(':') && !s.trim().starts_with('[') {
            return Err(format!(
                "expected host:port, got {s:?} (write IPv6 hosts as [addr]:port)"
            ));
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(format!(
                "expected host:port with a port from 1 to 65535, got {s:?}"
            ));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An MQTT broker address, the one form the monitor's `[mqtt.X] url` and the parts' `--mqtt`
/// both take: `mqtt://` or `tcp://` (plain TCP, port 1883 by default), `mqtts://` or `ssl://`
/// (TLS, port 8883 by default), then `host[:port]`, IPv6 hosts in brackets
/// (`mqtt://[::1]:1883`). A trailing `/` is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub tls: bool,
    /// A name or an IP address; an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
}

/// Why a string is not an [`MqttUrl`]. Its `Display` is the configuration's wording; the parts
/// word the same cases for their `--mqtt` flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttUrlError {
    /// No `scheme://` in front.
    #[error("expected mqtt://host:port or mqtts://host:port, got {url:?}")]
    NoScheme { url: String },
    /// A scheme other than mqtt, tcp, mqtts and ssl.
    #[error("unsupported scheme {scheme:?} in {url:?}: use mqtt:// or mqtts://")]
    UnsupportedScheme { url: String, scheme: String },
    /// Nothing where the host goes.
    #[error("expected mqtt://host:port or mqtts://host:port, got {url:?}")]
    NoHost { url: String },
    /// What follows the host's ':' is not a port from 1 to 65535.
    #[error("expected mqtt://host:port or mqtts://host:port, got {url:?}")]
    BadPort { url: String, port: String },
    /// Spaces, slashes or brackets in the host, or an IPv6 address without brackets.
    #[error("expected mqtt://host:port or mqtts://host:port, got {url:?}")]
    BadHost { url: String, host: String },
}

impl FromStr for MqttUrl {
    type Err = MqttUrlError;

    fn from_str(s: &str) -> Result<Self, MqttUrlError> {
        let url = || s.to_string();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| MqttUrlError::NoScheme { url: url() })?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(MqttUrlError::UnsupportedScheme {
                    url: url(),
                    scheme: other.to_string(),
                });
            }
        };
        let authority = rest.trim_end_matches('/');
        let bad_host = || MqttUrlError::BadHost {
            url: url(),
            host: authority.to_string(),
        };
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']').ok_or_else(bad_host)?;
                match after {
                    "" => (host, None),
                    _ => (host, Some(after.strip_prefix(':').ok_or_else(bad_host)?)),
                }
            }
            None => match authority.split_once(':') {
                // More than one ':' is an IPv6 address without its brackets.
                Some((_, port)) if port.contains(':') => return Err(bad_host()),
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(MqttUrlError::NoHost { url: url() });
        }
        if host.contains(char::is_whitespace) || host.contains(['[', ']', '/']) {
            return Err(MqttUrlError::BadHost {
                url: url(),
                host: host.to_string(),
            });
        }
        let port = match port {
            None if tls => 8883,
            None => 1883,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&port| port != 0)
                .ok_or_else(|| MqttUrlError::BadPort {
                    url: url(),
                    port: port.to_string(),
                })?,
        };
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let address = HostPort {
            host: self.host.clone(),
            port: self.port,
        };
        write!(f, "{scheme}://{address}")
    }
}

impl<'de> Deserialize<'de> for MqttUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for MqttUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

pub(super) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        de::Error::custom(format!(
            "expected ip:port such as 127.0.0.1:7575, got {s:?}"
        ))
    })
}

/// Accepts a list of `host:port` strings, or one string with commas (handy in an env variable).
pub(super) fn host_port_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HostPort>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<HostPort>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of \"host:port\" strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| part.parse().map_err(E::custom))
                .collect()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<HostPort>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(ListVisitor)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            "kafka-1:9092".parse::<HostPort>(),
            Ok(HostPort {
                host: "kafka-1".into(),
                port: 9092
            })
        );
        assert_eq!("[::1]:9092".parse::<HostPort>().unwrap().host, "::1");
        assert_eq!(
            "[::1]:9092".parse::<HostPort>().unwrap().to_string(),
            "[::1]:9092"
        );
        assert_eq!(
            "localhost".parse::<HostPort>(),
            Err("expected host:port, got \"localhost\"".to_string())
        );
        assert!("host:0".parse::<HostPort>().is_err());
        assert!("host:70000".parse::<HostPort>().is_err());
        assert!(":9092".parse::<HostPort>().is_err());
        assert!("::1:9092".parse::<HostPort>().is_err());
    }

    #[test]
    fn mqtt_url_parsing_with_default_ports() {
        let plain: MqttUrl = "mqtt://broker".parse().unwrap();
        assert_eq!(
            (plain.tls, plain.host.as_str(), plain.port),
            (false, "broker", 1883)
        );
        let tls: MqttUrl = "mqtts://broker:9999".parse().unwrap();
        assert_eq!((tls.tls, tls.port), (true, 9999));
        assert_eq!("mqtts://[::1]".parse::<MqttUrl>().unwrap().port, 8883);
        assert!(
            "http://broker"
                .parse::<MqttUrl>()
                .unwrap_err()
                .to_string()
                .contains("unsupported scheme")
        );
        assert!("broker:1883".parse::<MqttUrl>().is_err());
    }

    #[test]
    fn mqtt_url_takes_each_scheme_default_ports_and_ipv6_in_brackets() {
        let url = |s: &str| s.parse::<MqttUrl>().map(|u| (u.tls, u.host, u.port));
        let ok = |tls, host: &str, port| Ok((tls, host.to_string(), port));
        assert_eq!(url("mqtt://broker"), ok(false, "broker", 1883));
        assert_eq!(url("mqtt://broker:1884"), ok(false, "broker", 1884));
        assert_eq!(url("tcp://broker"), ok(false, "broker", 1883));
        assert_eq!(url("tcp://10.0.0.1:1884"), ok(false, "10.0.0.1", 1884));
        assert_eq!(url("mqtts://broker"), ok(true, "broker", 8883));
        assert_eq!(url("mqtts://broker:9999"), ok(true, "broker", 9999));
        assert_eq!(url("ssl://broker"), ok(true, "broker", 8883));
        assert_eq!(url("ssl://broker:9999"), ok(true, "broker", 9999));
        assert_eq!(url("mqtt://[::1]"), ok(false, "::1", 1883));
        assert_eq!(url("mqtt://[::1]:1884"), ok(false, "::1", 1884));
        assert_eq!(url("tcp://[::1]:1884"), ok(false, "::1", 1884));
        assert_eq!(url("mqtts://[::1]"), ok(true, "::1", 8883));
        assert_eq!(url("ssl://[fd00::2]:8884"), ok(true, "fd00::2", 8884));
        assert_eq!(url("mqtt://broker/"), ok(false, "broker", 1883));
        assert_eq!(url("mqtts://[::1]:8884/"), ok(true, "::1", 8884));
        assert_eq!(url("mqtt://broker:65535"), ok(false, "broker", 65535));
    }

    #[test]
    fn mqtt_url_is_shown_with_its_canonical_scheme() {
        let shown = |s: &str| s.parse::<MqttUrl>().unwrap().to_string();
        assert_eq!(shown("tcp://broker"), "mqtt://broker:1883");
        assert_eq!(shown("ssl://broker:9999/"), "mqtts://broker:9999");
        assert_eq!(shown("mqtts://[::1]"), "mqtts://[::1]:8883");
    }

    #[test]
    fn mqtt_url_refuses_each_malformed_form_saying_which() {
        let error = |s: &str| s.parse::<MqttUrl>().unwrap_err();
        let url = |s: &str| s.to_string();
        assert_eq!(
            error("broker:1883"),
            MqttUrlError::NoScheme {
                url: url("broker:1883")
            }
        );
        for (s, scheme) in [
            ("http://broker", "http"),
            ("MQTT://broker", "MQTT"),
            ("ws://broker:8080", "ws"),
            ("://broker", ""),
        ] {
            assert_eq!(
                error(s),
                MqttUrlError::UnsupportedScheme {
                    url: url(s),
                    scheme: scheme.to_string()
                }
            );
        }
        for s in ["mqtt://", "mqtt:///", "mqtt://:1883", "mqtts://[]:8883"] {
            assert_eq!(error(s), MqttUrlError::NoHost { url: url(s) }, "{s}");
        }
        for (s, port) in [
            ("mqtt://broker:x", "x"),
            ("mqtt://broker:", ""),
            ("mqtt://broker:0", "0"),
            ("mqtt://broker:65536", "65536"),
            ("mqtt://broker:-1", "-1"),
            ("mqtts://[::1]:x", "x"),
            ("mqtt://[::1]:", ""),
        ] {
            assert_eq!(
                error(s),
                MqttUrlError::BadPort {
                    url: url(s),
                    port: port.to_string()
                },
                "{s}"
            );
        }
        for (s, host) in [
            ("mqtt://::1", "::1"),
            ("mqtt://::1:1883", "::1:1883"),
            ("mqtt://broker:1883:1883", "broker:1883:1883"),
            ("mqtt://[::1", "[::1"),
            ("mqtt://[::1]1883", "[::1]1883"),
            ("mqtt://[::1]]", "[::1]]"),
            ("mqtt://broker]", "broker]"),
            ("mqtt://broker/path", "broker/path"),
            ("mqtt://bro ker", "bro ker"),
            ("mqtt:// broker:1883", " broker"),
        ] {
            assert_eq!(
                error(s),
                MqttUrlError::BadHost {
                    url: url(s),
                    host: host.to_string()
                },
                "{s}"
            );
        }
    }

    #[test]
    fn mqtt_url_errors_read_as_before_in_the_configuration() {
        let message = |s: &str| s.parse::<MqttUrl>().unwrap_err().to_string();
        assert_eq!(
            message("http://broker"),
            "unsupported scheme \"http\" in \"http://broker\": use mqtt:// or mqtts://"
        );
        for s in ["broker:1883", "mqtt://", "mqtt://broker:x", "mqtt://::1"] {
            assert_eq!(
                message(s),
                format!("expected mqtt://host:port or mqtts://host:port, got {s:?}")
            );
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_serialize() {
        let text = "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"u\"\npassword = \"hunter2\"\n[mqtt.m]\nurl = \"mqtt://h\"\nusername = \"u\"\npassword = \"s3cret\"\n";
        let config = parse("t", text, []).unwrap();
        let debug = format!("{config:?}");
        let json = serde_json::to_string(&config).unwrap();
        for shown in [&debug, &json] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("s3cret"),
                "{shown}"
            );
            assert!(shown.contains("***"));
        }
    }
}

/// A size in bytes: a number of bytes, or a string of a number and a unit ("512MiB", "2GiB",
/// "1.5GB"; KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000, B is bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = (text[..split].trim(), text[split..].trim());
        let factor: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(format!("unknown unit {unit:?} in {text:?}")),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a number of bytes with a unit"))?;
        let bytes = value * factor as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
            return Err(format!("{text:?} is out of range"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"2GiB\" or \"500MB\", or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod byte_size_tests {
    use super::ByteSize;

    #[test]
    fn sizes_read_with_binary_and_decimal_units() {
        let parse = |t: &str| t.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(parse("2GiB"), Ok(2 << 30));
        assert_eq!(parse("512 MiB"), Ok(512 << 20));
        assert_eq!(parse("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("10kb"), Ok(10_000));
        assert!(parse("2 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse("GiB").is_err());
        assert!(parse("1e30TiB").is_err());
        let toml: toml::Value = toml::from_str("a = 7\nb = \"1MiB\"").unwrap();
        let read = |k: &str| toml[k].clone().try_into::<ByteSize>().unwrap().0;
        assert_eq!((read("a"), read("b")), (7, 1 << 20));
    }
}
