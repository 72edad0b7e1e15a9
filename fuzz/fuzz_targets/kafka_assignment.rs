//! A consumer-group member's assignment and subscription bytes (DescribeGroups carries them
//! opaque): a version, then the message, decoded as `decode_assignment` in pipescope's
//! kafka::scrape::members does. It must not panic or allocate for counts the bytes cannot hold.
#![no_main]

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut bytes = Bytes::copy_from_slice(data);
    let version = bytes.get_i16();
    let _ = ConsumerProtocolAssignment::decode(&mut bytes.clone(), version.clamp(0, 3));
    let _ = ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3));
});
