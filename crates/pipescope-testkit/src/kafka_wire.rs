//! What the testkit's Kafka servers (the scripted broker and the synthetic cluster) share: the
//! framing of requests and answers, the ApiVersions answer, and the count of requests per API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Encodable, decode_request_header_from_buffer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Requests received per API, and connections accepted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts(Arc<Mutex<HashMap<Counted, usize>>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Counted {
    Connection,
    Request(ApiKey),
}

impl Counts {
    pub(crate) fn add(&self, what: Counted) {
        *self.0.lock().unwrap().entry(what).or_default() += 1;
    }

    pub(crate) fn get(&self, what: Counted) -> usize {
        self.0.lock().unwrap().get(&what).copied().unwrap_or(0)
    }
}

/// One request read off a connection: its header, its API and the body left to decode.
pub(crate) struct Request {
    pub header: RequestHeader,
    pub key: ApiKey,
    pub body: Bytes,
}

/// Reads the next request; None when the client closed the connection (or sent a frame that is
/// not a request: a test server drops such a connection).
pub(crate) async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Request> {
    let size = stream.read_i32().await.ok()?;
    let mut frame = BytesMut::zeroed(usize::try_from(size).ok()?);
    stream.read_exact(&mut frame).await.ok()?;
    let mut body = frame.freeze();
    let header = decode_request_header_from_buffer(&mut body).ok()?;
    let key = ApiKey::try_from(header.request_api_key).ok()?;
    Some(Request { header, key, body })
}

/// Writes the answer `body` (already encoded) to `request`; false when the connection is gone.
pub(crate) async fn write_answer<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &Request,
    body: &[u8],
) -> bool {
    let version = request.header.request_api_version;
    let mut response_header = ResponseHeader::default();
    response_header.correlation_id = request.header.correlation_id;
    let mut head = BytesMut::new();
    response_header
        .encode(&mut head, request.key.response_header_version(version))
        .unwrap();
    let mut framed = BytesMut::with_capacity(4 + head.len() + body.len());
    framed.put_i32((head.len() + body.len()) as i32);
    framed.put(head);
    framed.put_slice(body);
    stream.write_all(&framed).await.is_ok()
}

pub(crate) fn encode<T: Encodable>(message: T, version: i16, out: &mut BytesMut) {
    message.encode(out, version).unwrap();
}

/// The ApiVersions answer for the APIs served, each from its lowest valid version to `max`.
pub(crate) fn api_versions(served: &[(ApiKey, i16)], version: i16, out: &mut BytesMut) {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = served
        .iter()
        .map(|(k, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *k as i16;
            v.min_version = k.valid_versions().min;
            v.max_version = *max;
            v
        })
        .collect();
    encode(r, version, out);
}
