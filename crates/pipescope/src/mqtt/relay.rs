//! A relay between rumqttc and an MQTT 3.1.1 broker that removes PUBLISH packets over
//! `max_packet_size` from what the broker sends ([`InboundFilter`]).
//!
//! Why: 3.1.1 cannot tell the broker a maximum packet size. rumqttc fails the whole connection on
//! a packet over its limit, and the broker sends a retained one again on every resubscribe, so
//! one big retained message blinded the watcher for good. rumqttc takes no custom stream, so it
//! connects to this relay's Unix socket (in a private directory: the relay carries our TLS client
//! identity) and the relay makes the TCP / TLS connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pipescope_core::mqtt::oversize::{InboundFilter, OversizedPublish};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::sync::lock;

/// Where the relay connects.
#[derive(Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why the relay could not reach the broker; rumqttc only sees its socket close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    Io(String),
    Tls(String),
}

type Dropped = Arc<dyn Fn(OversizedPublish) + Send + Sync>;

pub struct Relay {
    _dir: tempfile::TempDir,
    path: PathBuf,
    last_error: Arc<Mutex<Option<UpstreamError>>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Listens on a fresh Unix socket; each connection to it is relayed to `upstream`.
    pub fn start(
        upstream: Upstream,
        max_packet_size: usize,
        dropped: impl Fn(OversizedPublish) + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pipescope-mqtt-")
            .tempdir()?;
        let path = dir.path().join("relay.sock");
        let listener = UnixListener::bind(&path)?;
        let last_error = Arc::new(Mutex::new(None));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            max_packet_size,
            Arc::new(dropped),
            last_error.clone(),
        ));
        Ok(Self {
            _dir: dir,
            path,
            last_error,
            task,
        })
    }

    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// The broker-side failure behind the last closed connection, if it was one.
    pub fn take_error(&self) -> Option<UpstreamError> {
        lock(&self.last_error).take()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: UnixListener,
    upstream: Upstream,
    max_packet_size: usize,
    dropped: Dropped,
    last_error: Arc<Mutex<Option<UpstreamError>>>,
) {
    // One connection at a time: a new one means rumqttc gave up the previous one.
    let mut current: Option<JoinHandle<()>> = None;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors, say: rumqttc's connection fails and is retried.
                tracing::debug!("the MQTT relay cannot accept ({e})");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(previous) = current.take() {
            previous.abort();
        }
        let (upstream, dropped, last_error) =
            (upstream.clone(), dropped.clone(), last_error.clone());
        current = Some(tokio::spawn(async move {
            *lock(&last_error) = None;
            if let Err(e) = serve(client, &upstream, max_packet_size, dropped).await {
                *lock(&last_error) = Some(e);
            }
        }));
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

async fn connect(upstream: &Upstream) -> Result<Box<dyn Stream>, UpstreamError> {
    let tcp = tokio::net::TcpStream::connect((upstream.host.as_str(), upstream.port))
        .await
        .map_err(|e| UpstreamError::Io(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = &upstream.tls else {
        return Ok(Box::new(tcp));
    };
    let name = rustls::pki_types::ServerName::try_from(upstream.host.clone())
        .map_err(|e| UpstreamError::Tls(format!("invalid server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| UpstreamError::Tls(e.to_string()))?;
    Ok(Box::new(tls))
}

/// Relays one connection until either side closes it. An error is only returned when the broker
/// could not be reached (a closed connection is rumqttc's to report).
async fn serve(
    client: UnixStream,
    upstream: &Upstream,
    max_packet_size: usize,
    dropped: Dropped,
) -> Result<(), UpstreamError> {
    let broker = connect(upstream).await?;
    let (mut broker_read, mut broker_write) = tokio::io::split(broker);
    let (mut client_read, mut client_write) = client.into_split();
    let (replies_tx, mut replies_rx) = mpsc::channel::<Vec<u8>>(64);

    let to_client = async move {
        let mut filter = InboundFilter::new(max_packet_size);
        let mut buffer = vec![0u8; 64 << 10];
        let mut forward = Vec::with_capacity(64 << 10);
        loop {
            let n = broker_read.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            forward.clear();
            let filtered = filter.feed(&buffer[..n], &mut forward);
            for publish in filtered.dropped {
                dropped(publish);
            }
            if !filtered.replies.is_empty() && replies_tx.send(filtered.replies).await.is_err() {
                return Ok(());
            }
            client_write.write_all(&forward).await?;
        }
    };

    // Acknowledgements of dropped packets go out between the client's own packets.
    let to_broker = async move {
        let mut framing = InboundFilter::new(usize::MAX);
        let mut buffer = vec![0u8; 16 << 10];
        let mut forward = Vec::with_capacity(16 << 10);
        let mut waiting: Vec<u8> = Vec::new();
        loop {
            tokio::select! {
                read = client_read.read(&mut buffer) => {
                    let n = read?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    forward.clear();
                    framing.feed(&buffer[..n], &mut forward);
                    broker_write.write_all(&forward).await?;
                    // TLS holds written bytes until flushed.
                    broker_write.flush().await?;
                }
                Some(reply) = replies_rx.recv() => waiting.extend(reply),
            }
            if !waiting.is_empty() && framing.at_packet_boundary() {
                broker_write.write_all(&waiting).await?;
                broker_write.flush().await?;
                waiting.clear();
            }
        }
    };

    // Either side ending ends both; rumqttc then sees its socket close and reconnects.
    tokio::select! {
        _ = to_client => {}
        _ = to_broker => {}
    }
    Ok(())
}
