//! Removes PUBLISH packets bigger than a limit from an MQTT 3.1.1 byte stream (broker to client),
//! without holding them: only the fixed header and the topic are read, the rest is skipped as it
//! arrives. MQTT 3.1.1 has no way to tell the broker our limit, and a client that fails on such a
//! packet is disconnected and sent it again (a retained message) on every resubscribe.
//!
//! Dropping a QoS 1 or 2 PUBLISH still owes the broker its acknowledgements (else it stalls its
//! inflight window and redelivers): the filter gives the PUBACK / PUBREC to send, and swallows
//! the PUBREL of a dropped QoS 2 message (the client never saw that packet id), giving the
//! PUBCOMP to send.

use std::collections::BTreeSet;

/// One PUBLISH removed from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OversizedPublish {
    /// Topic, lossy UTF-8 (a broker may send anything).
    pub topic: String,
    /// Bytes after the fixed header (MQTT's remaining length).
    pub size: usize,
    pub qos: u8,
    pub retain: bool,
}

/// What one call to [`InboundFilter::feed`] produced besides the bytes to pass on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Publishes removed, in stream order.
    pub dropped: Vec<OversizedPublish>,
    /// Acknowledgements to send to the broker for the removed packets, whole packets in order.
    pub replies: Vec<u8>,
}

/// Packet ids of dropped QoS 2 publishes awaiting their PUBREL; bounded by MQTT's 16-bit ids.
type PendingReleases = BTreeSet<u16>;

#[derive(Debug)]
enum State {
    /// Reading a fixed header: type byte and up to four length bytes.
    Header,
    /// Passing on this many more bytes of the current packet.
    Pass(usize),
    /// Reading the topic (and packet id) of an oversized PUBLISH into `head`.
    DropHead { remaining: usize, flags: u8 },
    /// Skipping this many more bytes of a dropped packet.
    Skip(usize),
    /// Reading a PUBREL's two bytes: swallowed when it releases a dropped packet.
    PubRel,
    /// The stream is not MQTT as we know it: pass everything on, the client will say why.
    Raw,
}

/// Filters the bytes a broker sends to one connection.
#[derive(Debug)]
pub struct InboundFilter {
    max_packet_size: usize,
    state: State,
    head: Vec<u8>,
    pending_releases: PendingReleases,
}

const PUBLISH: u8 = 3;
const PUBREL: u8 = 6;

impl InboundFilter {
    /// Drops PUBLISH packets whose remaining length is above `max_packet_size` (the comparison
    /// rumqttc makes, so what passes is what it accepts).
    pub fn new(max_packet_size: usize) -> Self {
        Self {
            max_packet_size,
            state: State::Header,
            head: Vec::with_capacity(8),
            pending_releases: PendingReleases::new(),
        }
    }

    /// Whether every byte fed so far ends a whole packet (what was passed on can be followed by
    /// another packet).
    pub fn at_packet_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.head.is_empty()
    }

    /// Feeds bytes read from the broker; appends those to pass on to `forward`.
    pub fn feed(&mut self, mut input: &[u8], forward: &mut Vec<u8>) -> Filtered {
        let mut out = Filtered::default();
        while !input.is_empty() {
            match self.state {
                State::Raw => {
                    forward.extend_from_slice(input);
                    return out;
                }
                State::Header => {
                    self.head.push(input[0]);
                    input = &input[1..];
                    self.header_byte(forward);
                }
                State::Pass(left) => {
                    let n = left.min(input.len());
                    forward.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        State::Header
                    } else {
                        State::Pass(left - n)
                    };
                }
                State::Skip(left) => {
                    let n = left.min(input.len());
                    input = &input[n..];
                    self.state = if n == left {
                        State::Header
                    } else {
                        State::Skip(left - n)
                    };
                }
                State::DropHead { remaining, flags } => {
                    self.head.push(input[0]);
                    input = &input[1..];
                    if let Some(skip) = self.publish_head_done(remaining, flags, &mut out) {
                        self.head.clear();
                        self.state = if skip == 0 {
                            State::Header
                        } else {
                            State::Skip(skip)
                        };
                    }
                }
                State::PubRel => {
                    self.head.push(input[0]);
                    input = &input[1..];
                    if self.head.len() == 4 {
                        let id = u16::from_be_bytes([self.head[2], self.head[3]]);
                        if self.pending_releases.remove(&id) {
                            out.replies
                                .extend_from_slice(&[0x70, 2, self.head[2], self.head[3]]);
                        } else {
                            forward.extend_from_slice(&self.head);
                        }
                        self.head.clear();
                        self.state = State::Header;
                    }
                }
            }
        }
        out
    }

    /// A byte of the fixed header arrived; decides the packet's fate once its length is known.
    fn header_byte(&mut self, forward: &mut Vec<u8>) {
        let length_bytes = &self.head[1..];
        let Some(last) = length_bytes.last() else {
            return;
        };
        if last & 0x80 != 0 {
            if length_bytes.len() == 4 {
                // A fifth length byte is malformed: leave it to the client to refuse.
                forward.extend_from_slice(&self.head);
                self.head.clear();
                self.state = State::Raw;
            }
            return;
        }
        let remaining = length_bytes
            .iter()
            .rev()
            .fold(0usize, |n, b| (n << 7) | usize::from(b & 0x7f));
        let kind = self.head[0] >> 4;
        let flags = self.head[0] & 0x0f;
        if kind == PUBLISH && remaining > self.max_packet_size {
            self.head.clear();
            self.state = State::DropHead { remaining, flags };
        } else if kind == PUBREL && remaining == 2 && !self.pending_releases.is_empty() {
            self.state = State::PubRel;
        } else {
            forward.extend_from_slice(&self.head);
            self.head.clear();
            self.state = if remaining == 0 {
                State::Header
            } else {
                State::Pass(remaining)
            };
        }
    }

    /// `head` holds the first bytes of an oversized PUBLISH's body. Once its topic (and packet
    /// id) are read, records the drop and returns how many bytes are left to skip.
    fn publish_head_done(
        &mut self,
        remaining: usize,
        flags: u8,
        out: &mut Filtered,
    ) -> Option<usize> {
        let qos = (flags >> 1) & 0x03;
        let topic_end = match self.head.as_slice() {
            [hi, lo, ..] => 2 + usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => return None,
        };
        let id_bytes = if qos > 0 { 2 } else { 0 };
        // A topic that claims more than the packet holds ends where the packet does.
        let needed = (topic_end + id_bytes).min(remaining);
        if self.head.len() < needed {
            return None;
        }
        let topic_bytes = &self.head[2.min(needed)..topic_end.min(needed)];
        let topic = String::from_utf8_lossy(topic_bytes).into_owned();
        if needed == topic_end + id_bytes && qos > 0 {
            let id = [self.head[topic_end], self.head[topic_end + 1]];
            if qos == 1 {
                out.replies.extend_from_slice(&[0x40, 2, id[0], id[1]]);
            } else {
                out.replies.extend_from_slice(&[0x50, 2, id[0], id[1]]);
                self.pending_releases.insert(u16::from_be_bytes(id));
            }
        }
        out.dropped.push(OversizedPublish {
            topic,
            size: remaining,
            qos,
            retain: flags & 0x01 != 0,
        });
        Some(remaining - needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload_len: usize, qos: u8, retain: bool, id: u16) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            body.extend_from_slice(&id.to_be_bytes());
        }
        body.extend(std::iter::repeat_n(b'x', payload_len));
        let mut packet = vec![0x30 | (qos << 1) | u8::from(retain)];
        let mut len = body.len();
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            packet.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        packet.extend(body);
        packet
    }

    /// Feeds `stream` in chunks of `chunk` bytes, as a socket might deliver it.
    fn run(filter: &mut InboundFilter, stream: &[u8], chunk: usize) -> (Vec<u8>, Filtered) {
        let mut forward = Vec::new();
        let mut all = Filtered::default();
        for part in stream.chunks(chunk) {
            let got = filter.feed(part, &mut forward);
            all.dropped.extend(got.dropped);
            all.replies.extend(got.replies);
        }
        (forward, all)
    }

    #[test]
    fn small_packets_pass_untouched_whatever_the_chunking() {
        let mut stream = vec![0x20, 2, 0, 0]; // CONNACK
        stream.extend(publish("a/b", 100, 1, false, 7));
        stream.extend([0xd0, 0]); // PINGRESP
        stream.extend(publish("c", 300, 0, true, 0)); // two length bytes
        for chunk in [1, 2, 3, 7, 1000] {
            let (forward, filtered) = run(&mut InboundFilter::new(1024), &stream, chunk);
            assert_eq!(forward, stream, "chunk {chunk}");
            assert_eq!(filtered, Filtered::default());
        }
    }

    #[test]
    fn an_oversized_publish_is_removed_and_the_next_packet_passes() {
        let small = publish("ok", 10, 0, false, 0);
        let big = publish("big/retained", 5000, 0, true, 0);
        let mut stream = small.clone();
        stream.extend(&big);
        stream.extend(&small);
        for chunk in [1, 5, 4096] {
            let (forward, filtered) = run(&mut InboundFilter::new(1024), &stream, chunk);
            assert_eq!(
                forward,
                [small.clone(), small.clone()].concat(),
                "chunk {chunk}"
            );
            assert_eq!(
                filtered.dropped,
                vec![OversizedPublish {
                    topic: "big/retained".into(),
                    size: big.len() - 3,
                    qos: 0,
                    retain: true,
                }]
            );
            assert!(filtered.replies.is_empty());
        }
    }

    #[test]
    fn the_limit_is_the_remaining_length_as_rumqttc_compares_it() {
        let at_limit = publish("t", 1024 - 3, 0, false, 0);
        let over = publish("t", 1024 - 2, 0, false, 0);
        let (forward, _) = run(&mut InboundFilter::new(1024), &at_limit, 64);
        assert_eq!(forward, at_limit);
        let (forward, filtered) = run(&mut InboundFilter::new(1024), &over, 64);
        assert!(forward.is_empty());
        assert_eq!(filtered.dropped[0].size, 1025);
    }

    #[test]
    fn the_packet_boundary_is_known() {
        let mut filter = InboundFilter::new(usize::MAX);
        let packet = publish("t", 10, 0, false, 0);
        assert!(filter.at_packet_boundary());
        filter.feed(&packet[..1], &mut Vec::new());
        assert!(!filter.at_packet_boundary());
        filter.feed(&packet[1..5], &mut Vec::new());
        assert!(!filter.at_packet_boundary());
        filter.feed(&packet[5..], &mut Vec::new());
        assert!(filter.at_packet_boundary());
    }

    /// Found by the mqtt_oversize fuzz target (input `0a 2b fa 0a`): a fixed header is passed on
    /// once its length is known, so a stream that ends inside one passes on less than it got.
    #[test]
    fn a_fixed_header_is_held_until_its_length_is_known() {
        let mut filter = InboundFilter::new(usize::MAX);
        let mut forward = Vec::new();
        filter.feed(&[0x0a], &mut forward);
        filter.feed(&[0x81], &mut forward);
        assert!(forward.is_empty());
        filter.feed(&[0x01], &mut forward);
        assert_eq!(forward, vec![0x0a, 0x81, 0x01]);
    }

    #[test]
    fn a_dropped_qos1_publish_is_acknowledged_for_the_client() {
        let stream = publish("q1", 2000, 1, false, 0x0102);
        let (forward, filtered) = run(&mut InboundFilter::new(1024), &stream, 3);
        assert!(forward.is_empty());
        assert_eq!(filtered.replies, vec![0x40, 2, 1, 2]);
    }

    #[test]
    fn a_dropped_qos2_publish_is_received_and_its_release_completed_for_the_client() {
        let mut filter = InboundFilter::new(1024);
        let (forward, filtered) = run(&mut filter, &publish("q2", 2000, 2, false, 9), 100);
        assert!(forward.is_empty());
        assert_eq!(filtered.replies, vec![0x50, 2, 0, 9]);
        // The release of another id is the client's; the dropped one's is answered here.
        let releases = [0x62, 2, 0, 8, 0x62, 2, 0, 9];
        let (forward, filtered) = run(&mut filter, &releases, 1);
        assert_eq!(forward, vec![0x62, 2, 0, 8]);
        assert_eq!(filtered.replies, vec![0x70, 2, 0, 9]);
        assert!(filter.pending_releases.is_empty());
    }

    #[test]
    fn a_topic_longer_than_its_packet_ends_with_the_packet() {
        // Remaining length 1100, topic length claims 65535: the whole body is the "topic".
        let mut stream = vec![0x30, 0xcc, 0x08, 0xff, 0xff];
        stream.extend(std::iter::repeat_n(b'z', 1098));
        stream.extend([0xd0, 0]);
        let (forward, filtered) = run(&mut InboundFilter::new(1024), &stream, 50);
        assert_eq!(forward, vec![0xd0, 0]);
        assert_eq!(filtered.dropped[0].size, 1100);
        assert_eq!(filtered.dropped[0].topic.len(), 1098);
    }

    #[test]
    fn a_malformed_length_is_passed_on_for_the_client_to_refuse() {
        let stream = [0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0xaa];
        let (forward, filtered) = run(&mut InboundFilter::new(1024), &stream, 2);
        assert_eq!(forward, stream);
        assert!(filtered.dropped.is_empty());
    }
}
