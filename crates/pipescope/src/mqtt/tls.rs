//! TLS settings of an `mqtts://` broker, as rumqttc wants them.

use rumqttc::TlsConfiguration;

use crate::config::Tls;

/// Builds the TLS configuration; the error names the broker and says which file or setting is wrong.
pub fn configuration(broker: &str, tls: Option<&Tls>) -> Result<TlsConfiguration, String> {
    crate::tls::client_config(tls.unwrap_or(&Tls::default()))
        .map(TlsConfiguration::Rustls)
        .map_err(|e| format!("mqtt.{broker}.tls: {e}"))
}
