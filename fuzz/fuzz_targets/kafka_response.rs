//! Every Kafka answer pipescope decodes, in every version it may ask for: the first byte picks
//! the request type and version, the rest is the answer (response header and body) as the
//! connection hands it to the decoder. Decoding may fail; it must not panic, and must not
//! allocate for a count the bytes cannot hold (libFuzzer's malloc limit catches that).
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
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
});
