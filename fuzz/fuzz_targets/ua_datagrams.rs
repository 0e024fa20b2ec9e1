//! A UserAgent fed datagrams (raw bytes, and requests and responses built
//! from what it said so far, so the fuzzer reaches dialogs) from trusted
//! and untrusted sources, application actions, and simulated time with its
//! timeouts. Must hold: no panic; at most MAX_SERVER_TRANSACTIONS server
//! transactions; nothing is ever sent in answer to an untrusted source, and
//! nothing goes anywhere but to trusted addresses; everything we send parses;
//! after handle_timeout(now) the next timeout is in the future.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seatline_sip::message::Message;
use seatline_sip::transaction::MAX_SERVER_TRANSACTIONS;
use seatline_sip::{CallRef, Timers, TrustedSource, UaEvent, UserAgent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SOURCES: [&str; 4] = ["127.0.0.1:5060", "10.1.2.3:5060", "10.1.2.3:7000", "192.0.2.66:5060"];
const UNTRUSTED: usize = 3;
const METHODS: [&str; 8] = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REGISTER", "UPDATE"];
const CODES: [u16; 12] = [100, 180, 183, 200, 202, 400, 481, 486, 487, 491, 500, 603];
const CSEQS: [u32; 9] = [0, 1, 2, 3, 1000, (1 << 31) - 1, 1 << 31, u32::MAX, 7];
const USERS: [&str; 5] = ["12025550100", "anonymous", "+1", "+123456789012345678901234567890123", "a%0d%0ab"];
const SDP: &str = "v=0\r\no=x 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }
    fn pick<'p, T>(&mut self, items: &'p [T]) -> &'p T {
        &items[self.byte() as usize % items.len()]
    }
}

/// What the UA said: Call-IDs, tags, branches, to build plausible messages.
#[derive(Default)]
struct Seen {
    call_ids: Vec<String>,
    tags: Vec<String>,
    branches: Vec<String>,
    calls: Vec<CallRef>,
}

fn remember(list: &mut Vec<String>, v: Option<&str>) {
    if let Some(v) = v {
        if !list.iter().any(|x| x == v) {
            if list.len() >= 16 {
                list.remove(0);
            }
            list.push(v.to_string());
        }
    }
}

struct Harness {
    ua: UserAgent,
    now: Instant,
    seen: Seen,
    sources: Vec<SocketAddr>,
    /// In a burst: check where packets go, skip reading them.
    quick: bool,
}

impl Harness {
    fn drain(&mut self) {
        while let Some(t) = self.ua.poll_transmit() {
            assert!(self.ua.is_trusted(t.to), "sent to an untrusted address {}", t.to);
            if self.quick {
                continue;
            }
            let m = Message::parse(&t.bytes).expect("everything we send parses");
            remember(&mut self.seen.call_ids, Some(m.call_id()));
            remember(&mut self.seen.tags, m.from_tag());
            remember(&mut self.seen.tags, m.to_tag());
            remember(&mut self.seen.branches, m.branch());
        }
        while let Some(e) = self.ua.poll_event() {
            if let UaEvent::Incoming { call, from_user, to_user, headers, .. } = &e {
                for u in [from_user, to_user] {
                    let d = u.strip_prefix('+').unwrap_or(u);
                    assert!(u.is_empty() || (d.len() <= 32 && !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())));
                }
                assert!(headers.len() <= 8 && headers.iter().all(|(n, v)| n.len() <= 64 && v.len() <= 1024));
                self.seen.calls.push(*call);
            }
        }
        assert!(self.ua.transaction_counts().1 <= MAX_SERVER_TRANSACTIONS);
    }

    fn feed(&mut self, src: usize, bytes: &[u8]) {
        self.ua.handle_datagram(bytes, self.sources[src], self.now);
        if src == UNTRUSTED {
            assert!(self.ua.poll_transmit().is_none(), "an answer to an untrusted source");
        }
        self.drain();
    }

    fn pick_string(&self, inp: &mut Input, pool: &[String], fresh: &str) -> String {
        let b = inp.byte();
        if (b as usize) < pool.len() * 16 && !pool.is_empty() {
            pool[b as usize % pool.len()].clone()
        } else {
            format!("{fresh}{}", b % 8)
        }
    }

    fn message(&self, inp: &mut Input, response: bool) -> Vec<u8> {
        let method = *inp.pick(&METHODS);
        let cseq_method = if inp.byte() % 8 == 0 { *inp.pick(&METHODS) } else { method };
        let call_id = self.pick_string(inp, &self.seen.call_ids, "cid");
        let from_tag = self.pick_string(inp, &self.seen.tags, "t");
        let to_tag = self.pick_string(inp, &self.seen.tags, "t");
        let branch = self.pick_string(inp, &self.seen.branches, "z9hG4bK");
        let cseq = *inp.pick(&CSEQS);
        let user = *inp.pick(&USERS);
        let flags = inp.byte();
        let mut m = if response {
            let code = *inp.pick(&CODES);
            format!("SIP/2.0 {code} X\r\n")
        } else {
            format!("{method} sip:{user}@127.0.0.1:5070 SIP/2.0\r\n")
        };
        m.push_str(&format!("Via: SIP/2.0/UDP 10.1.2.3:5060;branch={branch}\r\n"));
        m.push_str(&format!("From: <sip:{user}@10.1.2.3>{}\r\n", if flags & 1 != 0 { format!(";tag={from_tag}") } else { String::new() }));
        m.push_str(&format!("To: <sip:18005550199@127.0.0.1>{}\r\n", if flags & 2 != 0 { format!(";tag={to_tag}") } else { String::new() }));
        m.push_str(&format!("Call-ID: {call_id}\r\nCSeq: {cseq} {cseq_method}\r\n"));
        if flags & 4 != 0 {
            m.push_str("Contact: <sip:x@192.0.2.66:5060>\r\n");
        }
        if flags & 8 != 0 {
            m.push_str("Record-Route: <sip:10.1.2.3;lr>\r\n");
        }
        if flags & 16 != 0 {
            for i in 0..(inp.byte() % 12) {
                m.push_str(&format!("X-H{i}: v{i}\r\n"));
            }
        }
        if flags & 32 != 0 {
            m.push_str(&format!("Content-Type: application/sdp\r\n\r\n{SDP}"));
        } else {
            m.push_str("\r\n");
        }
        m.into_bytes()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.ua.poll_timeout().is_some_and(|t| t <= self.now) {
            self.ua.handle_timeout(self.now);
            assert!(self.ua.poll_timeout().map_or(true, |t| t > self.now), "a timeout left in the past");
        }
        self.drain();
    }

    fn act(&mut self, inp: &mut Input) {
        let call = if self.seen.calls.is_empty() { 1 } else { *inp.pick(&self.seen.calls) };
        let now = self.now;
        let sdp = SDP.as_bytes();
        match inp.byte() % 8 {
            0 => self.ua.respond(call, *inp.pick(&[100u16, 180, 183, 200, 486, 603, 0, 999]), Some(sdp), now),
            1 => self.ua.hang_up(call, now),
            2 => self.ua.reoffer(call, sdp, now),
            3 => self.ua.respond_reoffer(call, *inp.pick(&[200u16, 488, 0]), Some(sdp), now),
            4 => {
                let c = self.ua.invite("12025550100", "18005550199", self.sources[0], sdp, &[], now);
                self.seen.calls.push(c);
            }
            5 => {
                if let Some(snap) = self.ua.dialog_snapshot(call) {
                    self.ua.bye_from_snapshot(&snap, now);
                }
            }
            6 => self.ua.set_trusted(vec![TrustedSource::parse("127.0.0.1:5060").unwrap(), TrustedSource::parse("10.0.0.0/8").unwrap()]),
            _ => {
                let _ = self.ua.call_count();
            }
        }
        self.drain();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input { data, pos: 0 };
    let seed = u64::from(inp.byte());
    let storm = seed == 0xA5;
    let mut ua = UserAgent::with_seed("127.0.0.1:5070".parse().unwrap(), Timers::default(), seed);
    ua.set_trusted(vec![TrustedSource::parse("127.0.0.1:5060").unwrap(), TrustedSource::parse("10.0.0.0/8").unwrap()]);
    let mut h = Harness {
        ua,
        now: Instant::now(),
        seen: Seen::default(),
        sources: SOURCES.iter().map(|s| s.parse().unwrap()).collect(),
        quick: false,
    };
    let mut ops = 0;
    let mut burst_budget = 6000usize;
    while !inp.done() && ops < 400 {
        ops += 1;
        let src = inp.byte() as usize % SOURCES.len();
        match inp.byte() % 8 {
            0 => {
                let n = inp.byte() as usize * 4;
                let raw = inp.take(n).to_vec();
                h.feed(src, &raw);
            }
            1 | 2 => {
                let m = h.message(&mut inp, false);
                h.feed(src, &m);
            }
            3 => {
                let m = h.message(&mut inp, true);
                h.feed(src, &m);
            }
            4 => {
                let b = inp.byte() as u64;
                let d = if b < 128 { Duration::from_millis(b * 10) } else { Duration::from_secs((b - 128) * 2) };
                h.advance(d);
            }
            5 => h.act(&mut inp),
            6 => h.advance(Duration::from_secs(301)),
            _ => {
                // A burst: the same template with new branches, a few times,
                // or, in an input whose first byte is 0xA5, up to 5000 times:
                // past the cap (such inputs are slow, so they are rare).
                let b = inp.byte() as usize;
                let n = if storm && b >= 128 { 5000 } else { b % 8 }.min(burst_budget);
                burst_budget -= n;
                let m = String::from_utf8(h.message(&mut inp, false)).unwrap();
                let branch = m.split("branch=").nth(1).and_then(|r| r.split("\r\n").next()).unwrap_or("").to_string();
                for i in 0..n {
                    let again = m.replacen(&format!("branch={branch}"), &format!("branch=z9hG4bKburst{i}"), 1);
                    h.quick = i > 0;
                    h.feed(src, again.as_bytes());
                }
                h.quick = false;
            }
        }
    }
    // Long after, every transaction has ended.
    for _ in 0..10 {
        h.advance(Duration::from_secs(301));
    }
    assert_eq!(h.ua.transaction_counts().1, 0, "a server transaction outlived every timer");
});
