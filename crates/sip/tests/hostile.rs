//! What a hostile or broken network may send, in simulated time: forged
//! requests from untrusted and trusted addresses, wrong dialog tags,
//! retransmission storms, huge CSeqs, stray answers and junk caller data.
//! The trunk `a` (127.0.0.1:5060) calls our server `b` (127.0.0.1:5070),
//! which trusts only the trunk.

use seatline_sip::message::Message;
use seatline_sip::transaction::MAX_SERVER_TRANSACTIONS;
use seatline_sip::ua::{MAX_EARLY_INBOUND, UNANSWERED_LIMIT};
use seatline_sip::{DialogSnapshot, Timers, Transmit, TrustedSource, UaEvent, UserAgent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SDP: &[u8] = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn evil() -> SocketAddr {
    "10.66.66.66:5060".parse().unwrap()
}

const TRUNK: u16 = 5060;
const US: u16 = 5070;

struct Pair {
    a: UserAgent,
    b: UserAgent,
    now: Instant,
    ev_a: Vec<UaEvent>,
    ev_b: Vec<UaEvent>,
    /// Everything b sent: (to, message).
    from_b: Vec<(SocketAddr, Message)>,
}

impl Pair {
    fn new() -> Self {
        let mut b = UserAgent::with_seed(addr(US), Timers::default(), 2);
        b.set_trusted(vec![TrustedSource::parse("127.0.0.1:5060").unwrap()]);
        Pair {
            a: UserAgent::with_seed(addr(TRUNK), Timers::default(), 1),
            b,
            now: Instant::now(),
            ev_a: vec![],
            ev_b: vec![],
            from_b: vec![],
        }
    }

    fn deliver(&mut self) {
        loop {
            let mut any = false;
            while let Some(Transmit { to, bytes }) = self.a.poll_transmit() {
                any = true;
                if to == addr(US) {
                    self.b.handle_datagram(&bytes, addr(TRUNK), self.now);
                }
            }
            while let Some(Transmit { to, bytes }) = self.b.poll_transmit() {
                any = true;
                self.from_b.push((to, Message::parse(&bytes).unwrap()));
                if to == addr(TRUNK) {
                    self.a.handle_datagram(&bytes, addr(US), self.now);
                }
            }
            self.ev_a.extend(std::iter::from_fn(|| self.a.poll_event()));
            self.ev_b.extend(std::iter::from_fn(|| self.b.poll_event()));
            if !any {
                return;
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.deliver();
            match [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
            {
                Some(t) if t <= until => {
                    self.now = t.max(self.now);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => {
                    self.now = until;
                    self.deliver();
                    return;
                }
            }
        }
    }

    /// Feeds b one datagram from `src`; returns what b sent, to where.
    fn forge(&mut self, src: SocketAddr, text: &str) -> Vec<(SocketAddr, Message)> {
        self.b.handle_datagram(text.as_bytes(), src, self.now);
        let out: Vec<_> = std::iter::from_fn(|| self.b.poll_transmit())
            .map(|t| (t.to, Message::parse(&t.bytes).unwrap()))
            .collect();
        self.ev_b.extend(std::iter::from_fn(|| self.b.poll_event()));
        out
    }

    /// The trunk calls us and we answer: (a's call, b's call).
    fn call_up(&mut self) -> (u64, u64) {
        let ca = self
            .a
            .invite("12025550100", "18005550199", addr(US), SDP, &[], self.now);
        self.run(Duration::from_millis(10));
        let cb = incoming(&self.ev_b).expect("b got the call");
        self.b.respond(cb, 200, Some(SDP), self.now);
        self.run(Duration::from_millis(10));
        assert!(self.ev_b.contains(&UaEvent::Confirmed { call: cb }));
        self.ev_a.clear();
        self.ev_b.clear();
        self.from_b.clear();
        (ca, cb)
    }

    fn dialog_of(&self, cb: u64) -> DialogSnapshot {
        self.b.dialog_snapshot(cb).expect("b's call is up")
    }
}

fn incoming(evs: &[UaEvent]) -> Option<u64> {
    evs.iter().rev().find_map(|e| match e {
        UaEvent::Incoming { call, .. } => Some(*call),
        _ => None,
    })
}

fn code(m: &Message) -> Option<u16> {
    m.code()
}

/// A request as a forger writes it.
#[allow(clippy::too_many_arguments)]
fn request(
    method: &str,
    call_id: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    branch: &str,
    cseq: &str,
    extra: &str,
) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:18005550199@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:12025550100@127.0.0.1>;tag={from_tag}\r\n\
To: <sip:18005550199@127.0.0.1:5070>{to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq}\r\n\
Contact: <sip:evil@10.66.66.66:5060>\r\n\
{extra}\
Content-Type: application/sdp\r\n\
\r\n"
    )
}

#[test]
fn a_forged_invite_from_an_untrusted_source_makes_no_call_and_no_answer() {
    let mut p = Pair::new();
    let inv = request(
        "INVITE",
        "forged-1",
        "f1",
        None,
        "z9hG4bKf1",
        "1 INVITE",
        "",
    );
    assert!(
        p.forge(evil(), &inv).is_empty(),
        "no answer to an untrusted source"
    );
    assert!(p.ev_b.is_empty());
    assert_eq!(
        (
            p.b.call_count(),
            p.b.transaction_counts(),
            p.b.dropped_untrusted()
        ),
        (0, (0, 0), 1)
    );
    // Also from a trusted host on another port, and with a CIDR list.
    assert!(p.forge(addr(5999), &inv).is_empty());
    p.b.set_trusted(vec![TrustedSource::parse("127.0.0.0/8").unwrap()]);
    assert!(p.forge(evil(), &inv).is_empty());
    assert_eq!(p.b.dropped_untrusted(), 3);
    // The same INVITE from a trusted address is a call: the test can tell.
    let out = p.forge(addr(5999), &inv);
    assert_eq!(
        out.iter().map(|(to, m)| (*to, code(m))).collect::<Vec<_>>(),
        [(addr(5999), Some(100))]
    );
    assert!(incoming(&p.ev_b).is_some());
    // An empty list trusts no one.
    p.b.set_trusted(vec![]);
    let inv2 = request(
        "INVITE",
        "forged-2",
        "f1",
        None,
        "z9hG4bKf2",
        "1 INVITE",
        "",
    );
    assert!(p.forge(addr(TRUNK), &inv2).is_empty());
}

#[test]
fn forged_bye_and_reinvite_with_wrong_tags_leave_the_call_up() {
    let mut p = Pair::new();
    let (_, cb) = p.call_up();
    let before = p.dialog_of(cb);
    let baseline = p.b.transaction_counts();
    let (cid, ours, theirs) = (
        before.call_id.clone(),
        before.local_tag.clone(),
        before.remote_tag.clone(),
    );
    let wrong = [
        (theirs.as_str(), Some("nottag")),
        ("nottag", Some(ours.as_str())),
        (theirs.as_str(), None::<&str>),
        ("", Some(ours.as_str())),
    ];
    for (i, (from_tag, to_tag)) in wrong.into_iter().enumerate() {
        for (j, method) in ["BYE", "INVITE", "INFO"].into_iter().enumerate() {
            let branch = format!("z9hG4bKw{i}{j}");
            let r = request(
                method,
                &cid,
                from_tag,
                to_tag,
                &branch,
                &format!("{} {method}", 50 + i),
                "",
            );
            // From an untrusted address: nothing at all.
            assert!(
                p.forge(evil(), &r).is_empty(),
                "{method} {from_tag:?} {to_tag:?}"
            );
            // From the trunk's own address: refused, and only that.
            let out = p.forge(addr(TRUNK), &r);
            let codes: Vec<_> = out.iter().map(|(to, m)| (*to, code(m))).collect();
            let expect = if to_tag.is_none() && method == "INVITE" {
                482
            } else {
                481
            };
            assert_eq!(
                codes,
                [(addr(TRUNK), Some(expect))],
                "{method} {from_tag:?} {to_tag:?}"
            );
        }
    }
    assert!(p.ev_b.is_empty(), "no Ended, no Reoffer: {:?}", p.ev_b);
    assert_eq!(p.b.call_count(), 1);
    assert_eq!(p.dialog_of(cb), before, "peer, target and tags unchanged");
    assert_eq!(p.b.transaction_counts(), baseline, "refusals keep no state");

    // The real trunk re-offers naming another Contact: the Request-URI may
    // change, the packets still go to the trunk.
    let re = request(
        "INVITE",
        &cid,
        &theirs,
        Some(&ours),
        "z9hG4bKre",
        "9 INVITE",
        "",
    );
    let out = p.forge(addr(TRUNK), &re);
    assert_eq!(
        out.iter().map(|(to, m)| (*to, code(m))).collect::<Vec<_>>(),
        [(addr(TRUNK), Some(100))]
    );
    assert!(matches!(p.ev_b.last(), Some(UaEvent::Reoffer { .. })));
    p.b.respond_reoffer(cb, 200, Some(SDP), p.now);
    let after = p.dialog_of(cb);
    assert_eq!(after.peer, addr(TRUNK));
    assert_eq!(after.remote_target, "sip:evil@10.66.66.66:5060");
    p.b.hang_up(cb, p.now);
    let sent: Vec<_> = std::iter::from_fn(|| p.b.poll_transmit()).collect();
    let bye = sent
        .iter()
        .find(|t| t.bytes.starts_with(b"BYE "))
        .expect("a BYE");
    assert_eq!(
        bye.to,
        addr(TRUNK),
        "the BYE goes to the trunk, not to the Contact's host"
    );
}

#[test]
fn a_forged_bye_on_a_call_we_placed_is_refused() {
    let mut p = Pair::new();
    let cb =
        p.b.invite("18005550199", "12025550100", addr(TRUNK), SDP, &[], p.now);
    p.run(Duration::from_millis(10));
    let ca = incoming(&p.ev_a).unwrap();
    p.a.respond(ca, 200, Some(SDP), p.now);
    p.run(Duration::from_millis(10));
    let d = p.dialog_of(cb);
    let bye = request(
        "BYE",
        &d.call_id,
        "wrong",
        Some(&d.local_tag),
        "z9hG4bKx",
        "5 BYE",
        "",
    );
    assert_eq!(code(&p.forge(addr(TRUNK), &bye)[0].1), Some(481));
    assert!(p.ev_b.iter().all(|e| !matches!(e, UaEvent::Ended { .. })));
    let good = request(
        "BYE",
        &d.call_id,
        &d.remote_tag,
        Some(&d.local_tag),
        "z9hG4bKy",
        "5 BYE",
        "",
    );
    assert_eq!(code(&p.forge(addr(TRUNK), &good)[0].1), Some(200));
    assert!(p.ev_b.contains(&UaEvent::Ended {
        call: cb,
        remote: true
    }));
}

#[test]
fn a_cancel_must_name_the_invite_transaction() {
    let mut p = Pair::new();
    p.a.invite("12025550100", "18005550199", addr(US), SDP, &[], p.now);
    p.run(Duration::from_millis(10));
    let cb = incoming(&p.ev_b).unwrap();
    p.b.respond(cb, 180, None, p.now);
    p.run(Duration::from_millis(10));
    // Find the INVITE's branch and tags from what b answered.
    let ringing = p
        .from_b
        .iter()
        .find(|(_, m)| m.code() == Some(180))
        .unwrap()
        .1
        .clone();
    let (cid, from_tag, branch) = (
        ringing.call_id().to_string(),
        ringing.from_tag().unwrap().to_string(),
        ringing.branch().unwrap().to_string(),
    );
    let other = request(
        "CANCEL",
        &cid,
        &from_tag,
        None,
        "z9hG4bKother",
        "1 CANCEL",
        "",
    );
    assert_eq!(code(&p.forge(addr(TRUNK), &other)[0].1), Some(481));
    let wrong_seq = request("CANCEL", &cid, &from_tag, None, &branch, "2 CANCEL", "");
    assert_eq!(code(&p.forge(addr(TRUNK), &wrong_seq)[0].1), Some(481));
    assert!(p
        .forge(
            evil(),
            &request("CANCEL", &cid, &from_tag, None, &branch, "1 CANCEL", "")
        )
        .is_empty());
    assert!(
        p.ev_b.iter().all(|e| !matches!(e, UaEvent::Ended { .. })),
        "still ringing"
    );
    let right = request("CANCEL", &cid, &from_tag, None, &branch, "1 CANCEL", "");
    let codes: Vec<_> = p
        .forge(addr(TRUNK), &right)
        .iter()
        .map(|(_, m)| code(m))
        .collect();
    assert_eq!(codes, [Some(200), Some(487)]);
    assert!(p.ev_b.contains(&UaEvent::Ended {
        call: cb,
        remote: true
    }));
}

#[test]
fn a_storm_of_merged_invites_keeps_state_bounded_and_drains() {
    let mut p = Pair::new();
    let (_, cb) = p.call_up();
    let d = p.dialog_of(cb);
    p.run(Duration::from_secs(40));
    let baseline = p.b.transaction_counts();
    assert_eq!(baseline, (0, 0));
    // 200,000 INVITEs with the call's Call-ID, each with a new branch, one
    // every 50 us of simulated time, with the timers run as they fall due.
    let (mut max_server, mut answers) = (0, 0);
    for i in 0..200_000u32 {
        let inv = request(
            "INVITE",
            &d.call_id,
            &d.remote_tag,
            None,
            &format!("z9hG4bKs{i}"),
            "1 INVITE",
            "",
        );
        p.b.handle_datagram(inv.as_bytes(), addr(TRUNK), p.now);
        while let Some(t) = p.b.poll_transmit() {
            assert!(
                t.bytes.starts_with(b"SIP/2.0 482 "),
                "{}",
                String::from_utf8_lossy(&t.bytes)
            );
            answers += 1;
        }
        max_server = max_server.max(p.b.transaction_counts().1);
        p.now += Duration::from_micros(50);
        if p.b.poll_timeout().is_some_and(|t| t <= p.now) {
            p.b.handle_timeout(p.now);
        }
    }
    assert_eq!(answers, 200_000, "each gets one answer, no retransmissions");
    assert!(
        max_server <= 1,
        "refusals keep no server transaction (max {max_server})"
    );
    assert!(p.b.poll_event().is_none());
    assert_eq!(p.b.call_count(), 1, "the call is still up");

    // New Call-IDs: at most MAX_EARLY_INBOUND ring, the rest get 503.
    let mut refused = 0;
    for i in 0..3000u32 {
        let inv = request(
            "INVITE",
            &format!("new-{i}"),
            "t",
            None,
            &format!("z9hG4bKn{i}"),
            "1 INVITE",
            "",
        );
        p.b.handle_datagram(inv.as_bytes(), addr(TRUNK), p.now);
        while let Some(t) = p.b.poll_transmit() {
            refused += t.bytes.starts_with(b"SIP/2.0 503 ") as usize;
        }
    }
    assert_eq!(p.b.call_count(), 1 + MAX_EARLY_INBOUND);
    assert_eq!(refused, 3000 - MAX_EARLY_INBOUND);
    // Requests that each keep state (OPTIONS) fill the table to its cap, no further.
    for i in 0..6000u32 {
        let o = request(
            "OPTIONS",
            &format!("o-{i}"),
            "t",
            None,
            &format!("z9hG4bKo{i}"),
            "1 OPTIONS",
            "",
        );
        p.b.handle_datagram(o.as_bytes(), addr(TRUNK), p.now);
        while p.b.poll_transmit().is_some() {}
    }
    assert_eq!(p.b.transaction_counts().1, MAX_SERVER_TRANSACTIONS);
    // Unanswered, the ringing calls are refused 480 after UNANSWERED_LIMIT;
    // then every transaction ends and state is back to the baseline.
    let mut t = p.now;
    let end = p.now + UNANSWERED_LIMIT + Duration::from_secs(60);
    assert!(!p.b.take_shrunk(), "nothing to give back at the peak");
    let mut shrunk = false;
    while let Some(next) = p.b.poll_timeout().filter(|n| *n <= end) {
        t = next.max(t);
        p.b.handle_timeout(t);
        shrunk |= p.b.take_shrunk();
        while p.b.poll_transmit().is_some() {}
    }
    assert!(shrunk, "the drained tables gave back their room");
    assert!(!p.b.take_shrunk(), "the flag clears once read");
    let ended = std::iter::from_fn(|| p.b.poll_event())
        .filter(|e| matches!(e, UaEvent::Ended { remote: true, .. }))
        .count();
    assert_eq!(ended, MAX_EARLY_INBOUND);
    assert_eq!(p.b.transaction_counts(), baseline);
    assert_eq!(p.b.call_count(), 1);
}

#[test]
fn an_invite_retransmitted_after_the_200_gets_the_200() {
    let mut p = Pair::new();
    p.a.invite("12025550100", "18005550199", addr(US), SDP, &[], p.now);
    let invite = p.a.poll_transmit().unwrap();
    p.b.handle_datagram(&invite.bytes, addr(TRUNK), p.now);
    while p.b.poll_transmit().is_some() {}
    let cb = std::iter::from_fn(|| p.b.poll_event()).find_map(|e| match e {
        UaEvent::Incoming { call, .. } => Some(call),
        _ => None,
    });
    p.b.respond(cb.unwrap(), 200, Some(SDP), p.now);
    assert!(p
        .b
        .poll_transmit()
        .unwrap()
        .bytes
        .starts_with(b"SIP/2.0 200 "));
    for _ in 0..2 {
        p.now += Duration::from_millis(100);
        p.b.handle_datagram(&invite.bytes, addr(TRUNK), p.now);
        let again = p.b.poll_transmit().expect("an answer");
        assert!(
            again.bytes.starts_with(b"SIP/2.0 200 "),
            "{}",
            String::from_utf8_lossy(&again.bytes)
        );
        assert!(p.b.poll_transmit().is_none());
    }
    assert!(p.b.poll_event().is_none(), "not a new call");
    assert_eq!(p.b.call_count(), 1);
}

/// Meant for a debug build, where overflow checks are on.
#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "needs overflow checks (a debug build)"
)]
fn cseq_4294967295_does_not_panic_and_is_refused_400() {
    let mut p = Pair::new();
    let (_, cb) = p.call_up();
    let d = p.dialog_of(cb);
    for cseq in [
        "4294967295 INVITE",
        "2147483648 INVITE",
        "99999999999999 INVITE",
        "x INVITE",
        "1 BYE",
    ] {
        let inv = request("INVITE", "big", "t", None, "z9hG4bKbig", cseq, "");
        let out = p.forge(addr(TRUNK), &inv);
        assert_eq!(
            out.iter().map(|(_, m)| code(m)).collect::<Vec<_>>(),
            [Some(400)],
            "{cseq}"
        );
    }
    let bye = request(
        "BYE",
        &d.call_id,
        &d.remote_tag,
        Some(&d.local_tag),
        "z9hG4bKbb",
        "4294967295 BYE",
        "",
    );
    assert_eq!(code(&p.forge(addr(TRUNK), &bye)[0].1), Some(400));
    let ack = request(
        "ACK",
        &d.call_id,
        &d.remote_tag,
        Some(&d.local_tag),
        "z9hG4bKba",
        "4294967295 ACK",
        "",
    );
    assert!(p.forge(addr(TRUNK), &ack).is_empty());
    // The largest allowed CSeq works and does not overflow our own counters.
    let bye = request(
        "BYE",
        &d.call_id,
        &d.remote_tag,
        Some(&d.local_tag),
        "z9hG4bKbm",
        "2147483647 BYE",
        "",
    );
    assert_eq!(code(&p.forge(addr(TRUNK), &bye)[0].1), Some(200));
    assert!(p.ev_b.contains(&UaEvent::Ended {
        call: cb,
        remote: true
    }));
    // A stray 2xx and a snapshot at the top of the range.
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKz\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: gone\r\nCSeq: 4294967295 INVITE\r\n\r\n";
    let out = p.forge(addr(TRUNK), ok);
    assert_eq!(out.len(), 2);
    let snap = DialogSnapshot {
        local_cseq: u32::MAX,
        ..d
    };
    p.b.bye_from_snapshot(&snap, p.now);
    let bye = Message::parse(&p.b.poll_transmit().unwrap().bytes).unwrap();
    assert_eq!(bye.cseq().unwrap().0, (1 << 31) - 1);
}

#[test]
fn a_stray_2xx_is_acked_and_byed_only_from_the_trunk_and_only_to_it() {
    let mut p = Pair::new();
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKz\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: unknown\r\nCSeq: 7 INVITE\r\nContact: <sip:victim@192.0.2.9:5060>\r\n\r\n";
    assert!(p.forge(evil(), ok).is_empty());
    assert_eq!(p.b.dropped_untrusted(), 1);
    let out = p.forge(addr(TRUNK), ok);
    let sent: Vec<_> = out
        .iter()
        .map(|(to, m)| {
            (
                *to,
                m.method().unwrap().as_str().to_string(),
                m.cseq().unwrap().0,
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (addr(TRUNK), "ACK".to_string(), 7),
            (addr(TRUNK), "BYE".to_string(), 8)
        ]
    );
    assert_eq!(p.b.transaction_counts(), (0, 0));
}

#[test]
fn a_response_from_another_address_than_the_trunk_is_ignored() {
    let mut p = Pair::new();
    p.b.set_trusted(vec![TrustedSource::parse("127.0.0.1").unwrap()]);
    let cb =
        p.b.invite("18005550199", "12025550100", addr(TRUNK), SDP, &[], p.now);
    let inv = Message::parse(&p.b.poll_transmit().unwrap().bytes).unwrap();
    let mut ok = seatline_sip::transaction::response_to(&inv, 200, Some("x"));
    ok.push("Contact", "<sip:x@127.0.0.1:6000>");
    // From a trusted host, but not the address the INVITE went to.
    p.b.handle_datagram(&ok.to_bytes(), addr(6000), p.now);
    assert!(p.b.poll_event().is_none() && p.b.poll_transmit().is_none());
    assert_eq!(p.b.dropped_untrusted(), 1);
    p.b.handle_datagram(&ok.to_bytes(), addr(TRUNK), p.now);
    assert!(matches!(p.b.poll_event(), Some(UaEvent::Answered { call, .. }) if call == cb));
    // Its retransmission from elsewhere gets no ACK either.
    while p.b.poll_transmit().is_some() {}
    p.b.handle_datagram(&ok.to_bytes(), addr(6000), p.now);
    assert!(p.b.poll_transmit().is_none());
}

#[test]
fn caller_numbers_and_custom_headers_are_checked_before_the_application() {
    let mut p = Pair::new();
    let mut extra = String::new();
    extra.push_str(&format!("X-{}: long name\r\n", "n".repeat(63)));
    extra.push_str(&format!("X-Big: {}\r\n", "v".repeat(1025)));
    extra.push_str("X-Ctl: a\u{7}b\r\n");
    extra.push_str("X-Bad Name: x\r\n".replace(' ', "\u{0}").as_str());
    for i in 0..10 {
        extra.push_str(&format!("X-H{i}: value {i} é\r\n"));
    }
    let inv = request(
        "INVITE",
        "data-1",
        "t",
        None,
        "z9hG4bKd1",
        "1 INVITE",
        &extra,
    )
    .replace(
        "sip:12025550100@127.0.0.1",
        "\"Mallory\" <sip:anonymous@127.0.0.1>",
    )
    .replace(
        "<\"Mallory\" <sip:anonymous@127.0.0.1>>",
        "\"Mallory\" <sip:anonymous@127.0.0.1>",
    );
    p.forge(addr(TRUNK), &inv);
    let Some(UaEvent::Incoming {
        from_user,
        to_user,
        headers,
        ..
    }) = p.ev_b.pop()
    else {
        panic!("a call")
    };
    assert_eq!((from_user.as_str(), to_user.as_str()), ("", "18005550199"));
    let names: Vec<_> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["X-H0", "X-H1", "X-H2", "X-H3", "X-H4", "X-H5", "X-H6", "X-H7"]
    );
    assert_eq!(headers[7].1, "value 7 é");

    let long = format!("sip:+{}@127.0.0.1:5070", "1".repeat(33));
    let inv = request(
        "INVITE",
        "data-2",
        "t",
        None,
        "z9hG4bKd2",
        "1 INVITE",
        &format!("X-{}: ok\r\n", "n".repeat(62)),
    )
    .replace("sip:18005550199@127.0.0.1:5070", &long)
    .replace("sip:12025550100@127.0.0.1", "sip:+442071234567@127.0.0.1");
    p.forge(addr(TRUNK), &inv);
    let Some(UaEvent::Incoming {
        from_user,
        to_user,
        headers,
        ..
    }) = p.ev_b.pop()
    else {
        panic!("a call")
    };
    assert_eq!(
        (from_user.as_str(), to_user.as_str()),
        ("+442071234567", "")
    );
    assert_eq!(headers.len(), 1, "a 64-character name passes");
}

#[test]
fn the_same_seed_gives_the_same_tags_branches_and_call_ids() {
    let sent = |seed: u64| {
        let mut ua = UserAgent::with_seed(addr(US), Timers::default(), seed);
        let now = Instant::now();
        ua.invite("1", "2", addr(TRUNK), SDP, &[], now);
        ua.invite("1", "3", addr(TRUNK), SDP, &[], now);
        std::iter::from_fn(|| ua.poll_transmit())
            .map(|t| t.bytes)
            .collect::<Vec<_>>()
    };
    assert_eq!(sent(7), sent(7));
    assert_ne!(sent(7), sent(8));
    let m = Message::parse(&sent(7)[0]).unwrap();
    assert_ne!(
        m.from_tag(),
        Message::parse(&sent(7)[1]).unwrap().from_tag()
    );
}

#[test]
fn a_snapshot_outlives_the_process_and_its_bye_ends_the_call() {
    let mut p = Pair::new();
    let (ca, cb) = p.call_up();
    let snap = p.dialog_of(cb);
    assert_eq!(p.b.dialog_snapshot(999), None);
    let json = serde_json::to_string(&snap).unwrap();
    let back: DialogSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    // The process dies; a new one at the same address sends the BYE.
    p.b = UserAgent::with_seed(addr(US), Timers::default(), 3);
    p.b.set_trusted(vec![TrustedSource::parse("127.0.0.1:5060").unwrap()]);
    p.b.bye_from_snapshot(&back, p.now);
    assert_eq!(p.b.transaction_counts(), (1, 0));
    p.run(Duration::from_millis(10));
    assert_eq!(
        p.ev_a,
        [UaEvent::Ended {
            call: ca,
            remote: true
        }]
    );
    assert!(p.ev_b.is_empty(), "the 200 is absorbed");
    p.run(Duration::from_secs(10));
    assert_eq!(
        (p.a.call_count(), p.b.call_count(), p.b.transaction_counts()),
        (0, 0, (0, 0))
    );
}

#[test]
fn an_inbound_call_never_answered_is_refused_and_forgotten() {
    let mut p = Pair::new();
    p.a.invite("12025550100", "18005550199", addr(US), SDP, &[], p.now);
    p.run(Duration::from_millis(10));
    let cb = incoming(&p.ev_b).unwrap();
    p.b.respond(cb, 180, None, p.now);
    p.run(UNANSWERED_LIMIT);
    assert!(p.from_b.iter().any(|(_, m)| m.code() == Some(480)));
    assert!(p.ev_b.contains(&UaEvent::Ended {
        call: cb,
        remote: true
    }));
    assert!(matches!(
        p.ev_a.last(),
        Some(UaEvent::Failed { code: 480, .. })
    ));
    p.run(Duration::from_secs(40));
    assert_eq!(
        (
            p.b.call_count(),
            p.b.transaction_counts(),
            p.a.transaction_counts()
        ),
        (0, (0, 0), (0, 0))
    );
}

#[test]
fn a_reoffer_the_application_never_answers_is_refused_500() {
    let mut p = Pair::new();
    let (ca, cb) = p.call_up();
    p.a.reoffer(ca, SDP, p.now);
    p.run(Duration::from_secs(40));
    assert!(matches!(p.ev_b.as_slice(), [UaEvent::Reoffer { .. }]));
    assert_eq!(
        p.ev_a,
        [UaEvent::ReofferFailed {
            call: ca,
            code: 500
        }]
    );
    assert_eq!(p.b.transaction_counts(), (0, 0));
    // The dialog is usable again.
    p.b.reoffer(cb, SDP, p.now);
    p.run(Duration::from_millis(10));
    assert!(matches!(p.ev_a.last(), Some(UaEvent::Reoffer { .. })));
}
