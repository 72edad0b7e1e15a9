//! Kafka answers, group assignments and record batches from the wire.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use pipescope_core::kafka::record_batch::record_time_within;

/// Every Kafka answer pipescope decodes, in every version it may ask for: the first byte picks
/// the request type and version, the rest is the answer (response header and body) as the
/// connection hands it to the decoder. Decoding may fail; it must not panic, and must not
/// allocate for a count the bytes cannot hold (libFuzzer's malloc limit catches that).
pub fn kafka_response(data: &[u8]) {
    let Some((&pick, answer)) = data.split_first() else {
        return;
    };
    let (key, max) = APIS[pick as usize % APIS.len()];
    let version = (pick as usize / APIS.len()) as i16 % (max + 1);
    let answer = Bytes::copy_from_slice(answer);
    match ApiKey::try_from(key).unwrap() {
        ApiKey::ApiVersions => decode::<ApiVersionsRequest>(answer, version),
        ApiKey::SaslHandshake => decode::<SaslHandshakeRequest>(answer, version),
        ApiKey::SaslAuthenticate => decode::<SaslAuthenticateRequest>(answer, version),
        ApiKey::Metadata => decode::<MetadataRequest>(answer, version),
        ApiKey::ListOffsets => decode::<ListOffsetsRequest>(answer, version),
        ApiKey::DescribeConfigs => decode::<DescribeConfigsRequest>(answer, version),
        ApiKey::ListGroups => decode::<ListGroupsRequest>(answer, version),
        ApiKey::FindCoordinator => decode::<FindCoordinatorRequest>(answer, version),
        ApiKey::DescribeGroups => decode::<DescribeGroupsRequest>(answer, version),
        ApiKey::OffsetFetch => decode::<OffsetFetchRequest>(answer, version),
        ApiKey::Fetch => decode::<FetchRequest>(answer, version),
        ApiKey::DescribeProducers => decode::<DescribeProducersRequest>(answer, version),
        _ => unreachable!("only the keys of APIS"),
    }
}

/// As `pipescope::kafka::conn::decode_response` does.
fn decode<R: Request>(mut answer: Bytes, version: i16) {
    if ResponseHeader::decode(&mut answer, R::Response::header_version(version)).is_ok() {
        let _ = R::Response::decode(&mut answer, version);
    }
}

/// The request types pipescope sends, with the highest version it asks for.
const APIS: [(i16, i16); 12] = [
    (ApiKey::ApiVersions as i16, 3),
    (ApiKey::SaslHandshake as i16, 1),
    (ApiKey::SaslAuthenticate as i16, 2),
    (ApiKey::Metadata as i16, 12),
    (ApiKey::ListOffsets as i16, 8),
    (ApiKey::DescribeConfigs as i16, 4),
    (ApiKey::ListGroups as i16, 4),
    (ApiKey::FindCoordinator as i16, 4),
    (ApiKey::DescribeGroups as i16, 5),
    (ApiKey::OffsetFetch as i16, 8),
    (ApiKey::Fetch as i16, 11),
    (ApiKey::DescribeProducers as i16, 0),
];

/// A consumer-group member's assignment and subscription bytes (DescribeGroups carries them
/// opaque): a version, then the message, decoded as `decode_assignment` in pipescope's
/// kafka::scrape::members does. It must not panic or allocate for counts the bytes cannot hold.
pub fn kafka_assignment(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let mut bytes = Bytes::copy_from_slice(data);
    let version = bytes.get_i16();
    let _ = ConsumerProtocolAssignment::decode(&mut bytes.clone(), version.clamp(0, 3));
    let _ = ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3));
}

/// The batch header (v2) up to the records: base offset .. record count.
const BATCH_HEADER: usize = 61;
/// Small, so that bombs are cheap to find and to refuse.
const BATCH_LIMIT: usize = 1024 * 1024;

/// The record batches of a Fetch answer, read for the timestamp at an offset with every codec
/// (`pipescope_core::kafka::record_batch`). The input is made a batch whose length and CRC are
/// right, so that the fuzzer reaches the decompressors and the record decoding instead of
/// stopping at the checksum. Nothing may panic, and no batch may decompress past the limit.
pub fn kafka_record_batch(data: &[u8]) {
    if data.len() < 8 + BATCH_HEADER {
        return;
    }
    let (offset, batch) = data.split_at(8);
    let offset = i64::from_be_bytes(offset.try_into().unwrap()) % 64;
    let mut batch = batch.to_vec();
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[16] = 2; // magic: record batch v2
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let _ = record_time_within(Some(&Bytes::from(batch)), offset, BATCH_LIMIT);
}

/// A record of `__consumer_offsets` (the first byte: where the key ends, and whether the value
/// is null), then the same bytes as the records of a Fetch answer: decoding and applying them
/// to the committed-offsets table may fail, never panic, and the table stays within its cap.
pub fn kafka_offsets_topic(data: &[u8]) {
    use pipescope_core::kafka::offsets_topic::{CommittedOffsets, decode_record};
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let split = (pick as usize >> 1).min(rest.len());
    let (key, value) = rest.split_at(split);
    let value = (pick & 1 == 0).then_some(value);
    let _ = decode_record(Some(key), value);
    let mut table = CommittedOffsets::new(&[0], &[1], 1);
    table.apply(0, 0, Some(key), value);
    table.apply(0, 1, Some(key), value);
    // As a Fetch answer's records (a valid CRC so the records are reached).
    if rest.len() >= BATCH_HEADER {
        let mut batch = rest.to_vec();
        let length = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[16] = 2;
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        table.apply_fetched(0, Some(&Bytes::from(batch)), 10);
    }
    assert!(table.len() <= 1, "the table holds more than its cap");
}
