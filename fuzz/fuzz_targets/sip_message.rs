//! Message::parse, then to_bytes: never a panic; what we write parses again,
//! and writing is stable from then on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seatline_sip::message::{param, uri_of, uri_user, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else { return };
    // The accessors the user agent uses.
    let _ = (m.cseq(), m.branch(), m.from_tag(), m.to_tag(), m.contact_uri(), m.call_id());
    for (_, v) in &m.headers {
        let _ = (uri_of(v), param(v, "tag"));
        let _ = uri_user(&uri_of(v));
    }
    let bytes = m.to_bytes();
    let again = Message::parse(&bytes).expect("what we write parses");
    assert_eq!(again.start, m.start);
    assert_eq!(again.body, m.body);
    assert_eq!(Message::parse(&again.to_bytes()).expect("stable"), again);
});
