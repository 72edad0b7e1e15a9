//! Kafka with security, for the tests of the watcher and of the pipeline parts: tansu started by
//! hand with SCRAM users, and a TLS terminator in front of it (tansu 0.6 cannot serve TLS,
//! docs/brokers.md).

use std::sync::Arc;
use std::time::Duration;

/// How long a hand-started broker may take to listen.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A tansu started by hand (the testkit's readiness probe cannot pass authentication), stopped
/// on drop.
pub struct HandTansu {
    child: std::process::Child,
    pub port: u16,
}

impl HandTansu {
    pub fn start(dir: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_on(dir, pipescope_testkit::free_port(), None, extra)
    }

    /// Listens on `port`, telling clients to connect to `advertised_port` (a proxy in front of
    /// it) when given.
    pub fn start_on(
        dir: &std::path::Path,
        port: u16,
        advertised_port: Option<u16>,
        extra: &[&str],
    ) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(port));
        let log = std::fs::File::create(dir.join(format!("tansu-{port}.log"))).unwrap();
        let child = std::process::Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(extra)
            .current_dir(dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        assert!(
            pipescope_testkit::wait_until(TIMEOUT, || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "tansu did not listen on {port}"
        );
        Self { child, port }
    }
}

impl Drop for HandTansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tansu_binary() -> std::path::PathBuf {
    pipescope_testkit::find_binary(
        "tansu",
        "cargo install tansu@0.6.0 --locked --features dynostore,libsql",
    )
}

/// Makes SCRAM users on a broker that does not require authentication yet (one that does
/// refuses `tansu user create`).
pub fn create_scram_users(open: &HandTansu, users: &[(&str, &str, &str)]) {
    for (user, password, mechanism) in users {
        let status = std::process::Command::new(tansu_binary())
            .args([
                "user",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{}", open.port),
            ])
            .args([user, password, "--mechanism", mechanism])
            .status()
            .unwrap();
        assert!(status.success(), "tansu user create {user}");
    }
}

pub fn tls_acceptor(ca: &pipescope_testkit::TestCa) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&ca.server_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&ca.server_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serves TLS on a free port and passes each connection's plain bytes on to `upstream_port`: a
/// TLS terminator in front of a broker, as clusters are often run.
pub async fn tls_terminator(acceptor: tokio_rustls::TlsAcceptor, upstream_port: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate ends here; that is the point.
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut upstream) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    port
}
