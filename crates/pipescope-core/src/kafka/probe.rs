//! The smallest "is a Kafka broker answering?" check: an ApiVersions v0 request, whose answer
//! every broker version gives before anything else (no authentication, no negotiation). The demo
//! and the test kit send it while a broker starts; the bytes and the check live here, once.

/// The correlation id of the probe ("ps"), so an answer to another request is not taken for ours.
const CORRELATION_ID: i32 = 0x7073;

/// Bytes of an answer's start that [`probe_answered`] reads: size, correlation id, error code.
pub const PROBE_ANSWER_HEAD: usize = 10;

/// The whole frame (length prefix included) of an ApiVersions v0 request from client "probe".
pub fn api_versions_probe() -> Vec<u8> {
    let client_id = b"probe";
    let mut request = Vec::with_capacity(20);
    request.extend_from_slice(&18i16.to_be_bytes()); // api key: ApiVersions
    request.extend_from_slice(&0i16.to_be_bytes()); // version 0
    request.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    request.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    request.extend_from_slice(client_id);
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    frame
}

/// Whether the first [`PROBE_ANSWER_HEAD`] bytes of an answer are our probe's, without error.
pub fn probe_answered(head: &[u8; PROBE_ANSWER_HEAD]) -> bool {
    i32::from_be_bytes([head[4], head[5], head[6], head[7]]) == CORRELATION_ID
        && i16::from_be_bytes([head[8], head[9]]) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_an_api_versions_v0_frame() {
        assert_eq!(
            api_versions_probe(),
            [
                0, 0, 0, 15, // length of what follows
                0, 18, // ApiVersions
                0, 0, // v0
                0, 0, 0x70, 0x73, // correlation id
                0, 5, b'p', b'r', b'o', b'b', b'e', // client id
            ]
        );
    }

    #[test]
    fn only_our_answer_without_error_counts() {
        assert!(probe_answered(&[0, 0, 1, 0, 0, 0, 0x70, 0x73, 0, 0]));
        assert!(
            !probe_answered(&[0, 0, 1, 0, 0, 0, 0x70, 0x74, 0, 0]),
            "another request's answer"
        );
        assert!(
            !probe_answered(&[0, 0, 1, 0, 0, 0, 0x70, 0x73, 0, 35]),
            "UNSUPPORTED_VERSION"
        );
    }
}
