//! MQTT v5 connection set-up shared by the machines simulator and the bridge: the broker's
//! address, credentials and TLS, from the same flags in both.

use std::path::PathBuf;

use rumqttc::Transport;
use rumqttc::v5::MqttOptions;

use crate::config::{MqttUrl, MqttUrlError, Secret, Tls};

/// How a part reaches its MQTT broker.
#[derive(Debug, Clone, clap::Args)]
pub struct MqttArgs {
    /// MQTT broker: mqtt://host[:port] (1883), or mqtts://host[:port] (8883) for TLS; tcp://
    /// and ssl:// say the same, IPv6 hosts go in brackets (mqtt://[::1]:1883).
    #[arg(id = "mqtt", long = "mqtt", default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,
    /// User name to connect with.
    #[arg(id = "mqtt_username", long = "mqtt-username", value_name = "USER")]
    pub username: Option<String>,
    /// Password to connect with (better from the environment than the command line).
    #[arg(
        id = "mqtt_password",
        long = "mqtt-password",
        value_name = "PASSWORD",
        env = "PIPESCOPE_MQTT_PASSWORD",
        hide_env_values = true,
        requires = "mqtt_username",
        value_parser = secret
    )]
    pub password: Option<Secret>,
    /// PEM file of the certificate authorities to trust for mqtts:// (default: the system's).
    #[arg(id = "mqtt_ca", long = "mqtt-ca", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for brokers that require mutual TLS (goes with --mqtt-key).
    #[arg(
        id = "mqtt_cert",
        long = "mqtt-cert",
        value_name = "FILE",
        requires = "mqtt_key"
    )]
    pub cert: Option<PathBuf>,
    #[arg(
        id = "mqtt_key",
        long = "mqtt-key",
        value_name = "FILE",
        requires = "mqtt_cert"
    )]
    pub key: Option<PathBuf>,
}

impl MqttArgs {
    /// A broker at `url` with neither credentials nor TLS files.
    pub fn plain(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            username: None,
            password: None,
            ca: None,
            cert: None,
            key: None,
        }
    }
}

/// A password that never shows in `Debug` output.
fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// Connection options for `client_id`. Errors say which flag is wrong and why.
pub fn options(args: &MqttArgs, client_id: &str) -> anyhow::Result<MqttOptions> {
    let url = args.url.as_str();
    let address: MqttUrl = url
        .parse()
        .map_err(|e| anyhow::anyhow!(address_error(url, e)))?;
    let mut options = MqttOptions::new(client_id, address.host, address.port);
    options.set_keep_alive(std::time::Duration::from_secs(30));
    if let Some(username) = &args.username {
        let password = args.password.as_ref().map_or("", Secret::expose);
        options.set_credentials(username.clone(), password);
    }
    if address.tls {
        let settings = Tls {
            ca: args.ca.clone(),
            cert: args.cert.clone(),
            key: args.key.clone(),
            skip_verify: false,
        };
        let config = crate::tls::client_config(&settings)
            .map_err(|e| anyhow::anyhow!("MQTT TLS for {url}: {e}"))?;
        options.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
    } else {
        anyhow::ensure!(
            args.ca.is_none() && args.cert.is_none(),
            "--mqtt-ca and --mqtt-cert are for TLS: use an mqtts:// address (got {url:?})"
        );
    }
    Ok(options)
}

/// What is wrong with the `--mqtt` address, in the flag's words.
fn address_error(url: &str, error: MqttUrlError) -> String {
    match error {
        MqttUrlError::NoScheme { .. } | MqttUrlError::UnsupportedScheme { .. } => {
            format!("MQTT address {url:?} must start with mqtt:// or mqtts://")
        }
        MqttUrlError::NoHost { .. } => format!("MQTT address {url:?} has no host"),
        MqttUrlError::BadPort { port, .. } => {
            format!("MQTT address {url:?}: {port:?} is not a port number")
        }
        MqttUrlError::BadHost { host, .. } => format!(
            "MQTT address {url:?}: {host:?} is not a host name or address \
             (write mqtt://host[:port], IPv6 addresses in brackets: mqtt://[::1]:1883)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(args: &MqttArgs) -> String {
        options(args, "c").unwrap_err().to_string()
    }

    #[test]
    fn parses_addresses_and_says_what_is_wrong() {
        let o = options(&MqttArgs::plain("mqtt://127.0.0.1:1884"), "c").unwrap();
        assert_eq!(o.broker_address(), ("127.0.0.1".to_string(), 1884));
        assert!(matches!(o.transport(), Transport::Tcp));
        let o = options(&MqttArgs::plain("mqtt://broker/"), "c").unwrap();
        assert_eq!(o.broker_address(), ("broker".to_string(), 1883));
        let o = options(&MqttArgs::plain("mqtts://broker"), "c").unwrap();
        assert_eq!(o.broker_address(), ("broker".to_string(), 8883));
        assert!(matches!(o.transport(), Transport::Tls(_)));
        assert!(error(&MqttArgs::plain("http://x")).contains("mqtt:// or mqtts://"));
        assert!(error(&MqttArgs::plain("mqtt://x:y")).contains("port"));
        assert!(error(&MqttArgs::plain("mqtt://:1883")).contains("no host"));
    }

    /// The parts read `--mqtt` with the monitor's parser: tcp://, ssl:// and IPv6 in brackets
    /// too, and each refusal in the flag's words.
    #[test]
    fn takes_every_form_the_monitor_takes() {
        let address = |url: &str| {
            let o = options(&MqttArgs::plain(url), "c").unwrap();
            let tls = matches!(o.transport(), Transport::Tls(_));
            let (host, port) = o.broker_address();
            (tls, host, port)
        };
        assert_eq!(address("tcp://broker"), (false, "broker".into(), 1883));
        assert_eq!(address("tcp://broker:1884"), (false, "broker".into(), 1884));
        assert_eq!(address("ssl://broker"), (true, "broker".into(), 8883));
        assert_eq!(address("ssl://broker:9999"), (true, "broker".into(), 9999));
        assert_eq!(address("mqtt://[::1]"), (false, "::1".into(), 1883));
        assert_eq!(address("mqtt://[::1]:1884"), (false, "::1".into(), 1884));
        assert_eq!(address("mqtts://[::1]"), (true, "::1".into(), 8883));
        assert_eq!(
            error(&MqttArgs::plain("broker:1883")),
            "MQTT address \"broker:1883\" must start with mqtt:// or mqtts://"
        );
        assert_eq!(
            error(&MqttArgs::plain("http://broker")),
            "MQTT address \"http://broker\" must start with mqtt:// or mqtts://"
        );
        assert_eq!(
            error(&MqttArgs::plain("mqtt://")),
            "MQTT address \"mqtt://\" has no host"
        );
        assert_eq!(
            error(&MqttArgs::plain("mqtt://broker:70000")),
            "MQTT address \"mqtt://broker:70000\": \"70000\" is not a port number"
        );
        assert_eq!(
            error(&MqttArgs::plain("mqtt://[::1]:x")),
            "MQTT address \"mqtt://[::1]:x\": \"x\" is not a port number"
        );
        assert_eq!(
            error(&MqttArgs::plain("mqtt://::1:1883")),
            "MQTT address \"mqtt://::1:1883\": \"::1:1883\" is not a host name or address \
             (write mqtt://host[:port], IPv6 addresses in brackets: mqtt://[::1]:1883)"
        );
        assert_eq!(
            error(&MqttArgs::plain("mqtt://broker/path")),
            "MQTT address \"mqtt://broker/path\": \"broker/path\" is not a host name or address \
             (write mqtt://host[:port], IPv6 addresses in brackets: mqtt://[::1]:1883)"
        );
    }

    #[test]
    fn credentials_and_tls_files_are_used_and_checked() {
        let mut args = MqttArgs::plain("mqtt://h");
        args.username = Some("ops".into());
        args.password = Some(Secret::new("pw"));
        assert!(
            !format!("{args:?}").contains("pw"),
            "the password never shows"
        );
        let o = options(&args, "c").unwrap();
        assert_eq!(
            o.credentials(),
            Some(rumqttc::v5::mqttbytes::v5::Login {
                username: "ops".into(),
                password: "pw".into()
            })
        );
        // A CA only means something over TLS.
        args.ca = Some("/etc/ssl/ca.pem".into());
        assert!(error(&args).contains("use an mqtts:// address"));
        // Over TLS, a CA file that is not there is named.
        args.url = "mqtts://h".into();
        args.ca = Some("/nonexistent/ca.pem".into());
        let e = error(&args);
        assert!(e.contains("MQTT TLS for mqtts://h"), "{e}");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
