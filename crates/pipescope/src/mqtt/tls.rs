//! TLS settings of an `mqtts://` broker, as rumqttc wants them (rustls with the ring provider).

use std::sync::Arc;

use rumqttc::TlsConfiguration;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::Tls;

/// Builds the TLS configuration; the error says which file or setting is wrong.
pub fn configuration(broker: &str, tls: Option<&Tls>) -> Result<TlsConfiguration, String> {
    let default = Tls::default();
    let tls = tls.unwrap_or(&default);
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            format!(
                "cannot read mqtt.{broker}.tls.{key} {} ({e}) — give the path of a PEM file",
                path.display()
            )
        })
    };
    let client_auth = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some((read("cert", cert)?, read("key", key)?)),
        _ => None,
    };
    if tls.skip_verify {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up for mqtt.{broker} failed ({e})"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)));
        if client_auth.is_some() {
            return Err(format!(
                "mqtt.{broker}.tls: a client certificate with skip_verify is not supported — give ca instead of skip_verify"
            ));
        }
        return Ok(TlsConfiguration::Rustls(Arc::new(
            builder.with_no_client_auth(),
        )));
    }
    if let Some(ca) = &tls.ca {
        return Ok(TlsConfiguration::Simple {
            ca: read("ca", ca)?,
            alpn: None,
            client_auth,
        });
    }
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no trusted certificate authorities found on this system for mqtt.{broker} — give mqtt.{broker}.tls.ca"
        ));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// `skip_verify = true`: accepts any server certificate (tests only), still checking signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
