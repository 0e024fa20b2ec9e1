//! AudioSdp::parse, and the answer to what parsed: never a panic, and the
//! answer we write parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seatline_sip::sdp::{AudioSdp, Codec};
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(offer) = AudioSdp::parse(&text) else { return };
    let _ = offer.to_string(1, 1);
    let ours = [Codec::Pcmu, Codec::Pcma];
    if let Ok(ans) = offer.answer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40000, &ours) {
        let text = ans.to_string(u64::MAX, u64::MAX);
        AudioSdp::parse(&text).expect("our answer parses");
    }
});
