//! Value types of the configuration: secrets, `host:port` addresses, MQTT broker URLs, and the
//! deserializers of listen addresses and broker lists.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A password or token: shown as `***` by Debug and Serialize, so it never reaches logs or the API.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

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

/// An MQTT broker address: `mqtt://` (plain TCP) or `mqtts://` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl FromStr for MqttUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("expected mqtt://host:port or mqtts://host:port, got {s:?}"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(format!(
                    "unsupported scheme {other:?} in {s:?}: use mqtt:// or mqtts://"
                ));
            }
        };
        let authority = rest.trim_end_matches('/');
        let default_port = if tls { 8883 } else { 1883 };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let HostPort { host, port } = with_port
            .parse()
            .map_err(|_| format!("expected mqtt://host:port or mqtts://host:port, got {s:?}"))?;
        Ok(Self { tls, host, port })
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
                .contains("unsupported scheme")
        );
        assert!("broker:1883".parse::<MqttUrl>().is_err());
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
