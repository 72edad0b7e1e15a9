//! The bytes a broker sends to the 3.1.1 watcher, through the filter that skips messages over
//! max_packet_size: it must not panic, must give the same result however the bytes are split,
//! never passes on more than it got, and with no limit passes everything on untouched (but an
//! unfinished fixed header, held until its length is known).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescope_core::mqtt::oversize::InboundFilter;

fuzz_target!(|data: &[u8]| {
    let [max_hi, max_lo, chunk, stream @ ..] = data else {
        return;
    };
    let max_packet_size = usize::from(u16::from_be_bytes([*max_hi, *max_lo]));
    let chunk = usize::from(*chunk).max(1);

    let mut whole = Vec::new();
    let at_once = InboundFilter::new(max_packet_size).feed(stream, &mut whole);
    assert!(whole.len() <= stream.len());

    let mut filter = InboundFilter::new(max_packet_size);
    let mut pieces = Vec::new();
    let (mut dropped, mut replies) = (Vec::new(), Vec::new());
    for part in stream.chunks(chunk) {
        let got = filter.feed(part, &mut pieces);
        dropped.extend(got.dropped);
        replies.extend(got.replies);
    }
    assert_eq!(pieces, whole);
    assert_eq!(dropped, at_once.dropped);
    assert_eq!(replies, at_once.replies);

    // Untouched but for a fixed header whose length has not all arrived (at most 4 bytes:
    // the type and three length bytes that each say "more").
    let mut untouched = Vec::new();
    let none = InboundFilter::new(usize::MAX).feed(stream, &mut untouched);
    assert!(stream.starts_with(&untouched));
    assert!(stream.len() - untouched.len() <= 4);
    assert!(none.dropped.is_empty() && none.replies.is_empty());
});
