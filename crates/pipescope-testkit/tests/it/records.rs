//! The record-batch builder: what it encodes decodes back, in every codec, one batch per record
//! or all in one.

use kafka_protocol::records::RecordBatchDecoder;
use pipescope_testkit::records::{Compression, RecordBatchBuilder};

fn five(base_ms: i64) -> RecordBatchBuilder {
    (10..15).fold(RecordBatchBuilder::new(), |batch, offset| {
        batch.record(
            offset,
            base_ms + offset * 1000,
            format!("{{\"o\":{offset}}}"),
        )
    })
}

#[test]
fn batches_decode_back_to_their_records_in_every_codec() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        for one_batch in [false, true] {
            let builder = five(1_000).compression(compression);
            let builder = if one_batch {
                builder.one_batch()
            } else {
                builder
            };
            assert_eq!(builder.len(), 5);
            let mut data = builder.build();
            let info = RecordBatchDecoder::decode_batch_info(&mut data.clone()).unwrap();
            assert_eq!(
                info.len(),
                if one_batch { 1 } else { 5 },
                "{compression:?}, one batch: {one_batch}"
            );
            assert!(info.iter().all(|b| b.compression == compression));
            let mut sets = Vec::new();
            while !data.is_empty() {
                let set = match compression {
                    Compression::Lz4 | Compression::Zstd => {
                        RecordBatchDecoder::decode_with_custom_compression(
                            &mut data,
                            Some(decompress),
                        )
                    }
                    _ => RecordBatchDecoder::decode(&mut data),
                };
                sets.push(set.unwrap());
            }
            let got: Vec<(i64, i64, String)> = sets
                .iter()
                .flat_map(|set| set.records.iter())
                .map(|r| {
                    let value = r.value.as_ref().unwrap();
                    (
                        r.offset,
                        r.timestamp,
                        String::from_utf8(value.to_vec()).unwrap(),
                    )
                })
                .collect();
            let want: Vec<(i64, i64, String)> = (10..15)
                .map(|o| (o, 1_000 + o * 1000, format!("{{\"o\":{o}}}")))
                .collect();
            assert_eq!(got, want, "{compression:?}, one batch: {one_batch}");
        }
    }
}

/// The two codecs kafka-protocol is built without, in pure Rust, as pipescope reads them.
fn decompress(bytes: &mut bytes::Bytes, compression: Compression) -> anyhow::Result<bytes::Bytes> {
    use std::io::Read;
    let mut out = Vec::new();
    match compression {
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(&bytes[..]).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            ruzstd::decoding::StreamingDecoder::new(&bytes[..])
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .read_to_end(&mut out)?;
        }
        other => anyhow::bail!("not a codec of this test: {other:?}"),
    }
    Ok(out.into())
}
