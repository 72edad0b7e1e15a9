//! The MQTT reading layer for payload readers ([`FilterReader`]): its own MQTT 5 client (so
//! user properties arrive), a clean start, a QoS 1 subscription to one filter, reconnects with
//! backoff. What is read goes to a [`MessageSink`]: the trace reader's is [`TraceMessages`];
//! the quality observer and the probes plug in their own.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipescope_core::backoff::Backoff;
use pipescope_core::pipeline::trace::TraceRef;
use pipescope_core::{Clock, EpochMillis};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

use super::{Seen, ToFlow};
use crate::config::MqttBroker;

/// A connection up this long starts the backoff over.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// `pipescope-trace-<flow>-<random>`: its own session, apart from the watcher's, and unique
/// when several monitors read one broker.
pub fn client_id(flow: &str) -> String {
    format!("pipescope-trace-{flow}-{:08x}", fastrand::u32(..))
}

/// What a payload reader does with what [`FilterReader`] reads.
pub trait MessageSink: Send {
    /// Subscribed (`connected`) or not, and the last error.
    fn status(&mut self, connected: bool, error: Option<String>);
    /// One message, read at `arrival_ms`.
    fn message(&mut self, publish: &Publish, arrival_ms: EpochMillis);
    /// Hands on what the sink holds; false stops the reader.
    fn flush(&mut self) -> impl Future<Output = bool> + Send;
}

/// The MQTT reading layer: one filter on one broker.
#[derive(Debug)]
pub struct FilterReader {
    pub client_id: String,
    pub broker_name: String,
    pub broker: MqttBroker,
    pub filter: String,
    pub clock: Arc<dyn Clock>,
}

impl FilterReader {
    /// Reads until the sink says stop.
    pub async fn run(self, sink: &mut impl MessageSink) {
        let mut options =
            match client_options(&self.broker_name, &self.broker, self.client_id.clone()) {
                Ok(options) => options,
                Err(message) => {
                    tracing::error!(broker = %self.broker_name, "{message}");
                    sink.status(false, Some(message));
                    sink.flush().await;
                    return;
                }
            };
        options.set_clean_start(true);
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let mut backoff = Backoff::new(self.broker.reconnect_min, self.broker.reconnect_max);
        let mut connected_at: Option<Instant> = None;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    sink.message(&p, self.clock.now_millis());
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected_at = Some(Instant::now());
                    tracing::info!(broker = %self.broker_name, filter = %self.filter, "reading");
                    // Connected once the subscription is granted: what is published after
                    // that is read.
                    if let Err(e) = client
                        .try_subscribe_many([Filter::new(self.filter.clone(), QoS::AtLeastOnce)])
                    {
                        sink.status(false, Some(format!("cannot send SUBSCRIBE: {e}")));
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => match ack.return_codes.first() {
                    Some(SubscribeReasonCode::Success(_)) | None => sink.status(true, None),
                    Some(code) => {
                        let message = format!(
                            "MQTT broker {} refused the subscription to {:?} ({code:?}) — check the broker's ACL for the monitor's user",
                            self.broker_name, self.filter
                        );
                        tracing::warn!(broker = %self.broker_name, "{message}");
                        sink.status(false, Some(message));
                    }
                },
                Ok(_) => continue,
                Err(e) => {
                    if connected_at
                        .take()
                        .is_some_and(|at| at.elapsed() >= STABLE_CONNECTION)
                    {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay_jittered(fastrand::f64());
                    let message = format!(
                        "cannot read MQTT broker {} at {} ({e}) — is the broker running? Retrying in {:.1}s",
                        self.broker_name,
                        self.broker.url,
                        delay.as_secs_f64()
                    );
                    tracing::debug!(broker = %self.broker_name, "{message}");
                    sink.status(false, Some(message));
                    if !sink.flush().await {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            if !sink.flush().await {
                return;
            }
        }
    }
}

/// Options for a client of `broker` (address, keep-alive, packet size, TLS, credentials), for
/// the readers and the probes' publishers.
pub fn client_options(
    broker_name: &str,
    broker: &MqttBroker,
    client_id: String,
) -> Result<MqttOptions, String> {
    let mut options = MqttOptions::new(client_id, broker.url.host.clone(), broker.url.port);
    options
        .set_keep_alive(broker.keep_alive)
        .set_max_packet_size(Some(
            u32::try_from(broker.max_packet_size).unwrap_or(u32::MAX),
        ));
    if broker.url.tls {
        let tls = crate::mqtt::tls::client_config(broker_name, broker.tls.as_ref())?;
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    if let Some(user) = &broker.username {
        let password = broker.password.as_ref().map_or("", |p| p.expose());
        options.set_credentials(user.clone(), password);
    }
    Ok(options)
}

/// The trace reader's sink: each message's trace (its user properties), stream = its topic.
#[derive(Debug)]
pub struct TraceMessages {
    pub hop: usize,
    pub to_flow: ToFlow,
    pub batch: Vec<Seen>,
}

impl MessageSink for TraceMessages {
    fn status(&mut self, connected: bool, error: Option<String>) {
        self.batch.push(Seen::Reader {
            hop: self.hop,
            connected,
            partitions: 0,
            error,
        });
    }

    fn message(&mut self, p: &Publish, arrival_ms: EpochMillis) {
        let hop = self.hop;
        let decoded = match &p.properties {
            Some(props) => TraceRef::decode_with(
                props
                    .user_properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_bytes())),
                |_, _| {},
            ),
            None => Ok(None),
        };
        self.batch.push(match decoded {
            Ok(Some(trace)) => Seen::Traced {
                hop,
                partition: None,
                origin: trace.origin.into(),
                stream: String::from_utf8_lossy(&p.topic).into(),
                seq: trace.seq,
                origin_ms: trace.ts,
                arrival_ms,
            },
            Ok(None) => Seen::Untraced { hop },
            Err(_) => Seen::Malformed { hop, arrival_ms },
        });
    }

    async fn flush(&mut self) -> bool {
        self.batch.is_empty() || self.to_flow.send(std::mem::take(&mut self.batch)).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_reader_has_its_own_client_id() {
        let a = super::client_id("machines");
        assert!(a.starts_with("pipescope-trace-machines-"), "{a}");
        assert_eq!(a.len(), "pipescope-trace-machines-".len() + 8);
        assert_ne!(a, super::client_id("machines"));
    }
}
