//! TLS settings of an `mqtts://` broker.

use std::sync::Arc;

use crate::config::Tls;

/// Builds the TLS client configuration; the error names the broker and says which file or
/// setting is wrong.
pub fn client_config(broker: &str, tls: Option<&Tls>) -> Result<Arc<rustls::ClientConfig>, String> {
    crate::tls::client_config(tls.unwrap_or(&Tls::default()))
        .map_err(|e| format!("mqtt.{broker}.tls: {e}"))
}
