//! RtpPacket::parse: never a panic; what parsed writes and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seatline_media::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    let Some(p) = RtpPacket::parse(data) else { return };
    let mut out = Vec::new();
    p.write(&mut out);
    let q = RtpPacket::parse(&out).expect("what we write parses");
    assert_eq!(p, q);
});
