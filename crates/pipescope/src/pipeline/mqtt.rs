//! MQTT v5 connection set-up shared by the machines simulator and the bridge.

use anyhow::Context;
use rumqttc::v5::MqttOptions;

/// Parses `mqtt://host[:port]` (port 1883 when left out).
pub fn options(url: &str, client_id: &str) -> anyhow::Result<MqttOptions> {
    let rest = url.strip_prefix("mqtt://").with_context(|| {
        format!("MQTT address {url:?} must start with mqtt:// (TLS is not supported by the pipeline parts yet)")
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .with_context(|| format!("MQTT address {url:?}: {port:?} is not a port number"))?,
        ),
        None => (rest, 1883),
    };
    anyhow::ensure!(!host.is_empty(), "MQTT address {url:?} has no host");
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(std::time::Duration::from_secs(30));
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_says_what_is_wrong() {
        let o = options("mqtt://127.0.0.1:1884", "c").unwrap();
        assert_eq!(o.broker_address(), ("127.0.0.1".to_string(), 1884));
        let o = options("mqtt://broker/", "c").unwrap();
        assert_eq!(o.broker_address(), ("broker".to_string(), 1883));
        assert!(
            options("tcp://x", "c")
                .unwrap_err()
                .to_string()
                .contains("mqtt://")
        );
        assert!(
            options("mqtt://x:y", "c")
                .unwrap_err()
                .to_string()
                .contains("port")
        );
    }
}
