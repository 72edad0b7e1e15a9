//! The record batches of a Fetch answer, read for the timestamp at an offset with every codec
//! (`pipescope_core::kafka::record_batch`). The harness makes the input a batch whose length
//! and CRC are right, so that the fuzzer reaches the decompressors and the record decoding
//! instead of stopping at the checksum. Nothing may panic, and no batch may decompress past the
//! limit (a small one here, so that bombs are cheap to find and to refuse).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pipescope_core::kafka::record_batch::record_time_within;

/// The batch header (v2) up to the records: base offset .. record count.
const HEADER: usize = 61;
const LIMIT: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 + HEADER {
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
    let _ = record_time_within(Some(&Bytes::from(batch)), offset, LIMIT);
});
