//! Whole SIP flows between two user agents in simulated time, over a
//! network that can lose any datagram.

use seatline_sip::message::Message;
use seatline_sip::{Timers, Transmit, UaEvent, UserAgent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SDP_A: &[u8] = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const SDP_B: &[u8] = b"v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

type Filter = Box<dyn FnMut(&Message, bool) -> bool>;

struct Net {
    a: UserAgent,
    b: UserAgent,
    now: Instant,
    start: Instant,
    ev_a: Vec<(Duration, UaEvent)>,
    ev_b: Vec<(Duration, UaEvent)>,
    /// Returns false to lose the datagram; `bool` is true for a -> b.
    filter: Filter,
    wire: Vec<(bool, Message)>,
}

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

impl Net {
    fn new() -> Self {
        let now = Instant::now();
        Net {
            a: UserAgent::new(addr(5060), Timers::default()),
            b: UserAgent::new(addr(5070), Timers::default()),
            now,
            start: now,
            ev_a: vec![],
            ev_b: vec![],
            filter: Box::new(|_, _| true),
            wire: vec![],
        }
    }

    fn deliver(&mut self) -> bool {
        let mut moved = false;
        loop {
            let mut any = false;
            while let Some(Transmit { to, bytes }) = self.a.poll_transmit() {
                any = true;
                let m = Message::parse(&bytes).unwrap();
                self.wire.push((true, m.clone()));
                if to == addr(5070) && (self.filter)(&m, true) {
                    self.b.handle_datagram(&bytes, addr(5060), self.now);
                }
            }
            while let Some(Transmit { to, bytes }) = self.b.poll_transmit() {
                any = true;
                let m = Message::parse(&bytes).unwrap();
                self.wire.push((false, m.clone()));
                if to == addr(5060) && (self.filter)(&m, false) {
                    self.a.handle_datagram(&bytes, addr(5070), self.now);
                }
            }
            let t = self.now - self.start;
            while let Some(e) = self.a.poll_event() {
                self.ev_a.push((t, e));
            }
            while let Some(e) = self.b.poll_event() {
                self.ev_b.push((t, e));
            }
            if !any {
                return moved;
            }
            moved = true;
        }
    }

    /// Runs the network and the timers for `d` of simulated time.
    fn run(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.deliver();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
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

    fn incoming_b(&self) -> u64 {
        self.ev_b
            .iter()
            .find_map(|(_, e)| match e {
                UaEvent::Incoming { call, .. } => Some(*call),
                _ => None,
            })
            .expect("b got the call")
    }

    fn sent(&self, from_a: bool, start: &str) -> usize {
        self.wire
            .iter()
            .filter(|(a, m)| {
                *a == from_a && String::from_utf8_lossy(&m.to_bytes()).starts_with(start)
            })
            .count()
    }
}

fn names(evs: &[(Duration, UaEvent)]) -> Vec<String> {
    evs.iter()
        .map(|(_, e)| match e {
            UaEvent::Incoming { .. } => "Incoming".to_string(),
            UaEvent::Progress { code, .. } => format!("Progress {code}"),
            UaEvent::Answered { .. } => "Answered".into(),
            UaEvent::Failed { code, .. } => format!("Failed {code}"),
            UaEvent::Confirmed { .. } => "Confirmed".into(),
            UaEvent::Ended { remote, .. } => format!("Ended remote={remote}"),
            UaEvent::Reoffer { .. } => "Reoffer".into(),
            UaEvent::ReofferAnswered { .. } => "ReofferAnswered".into(),
            UaEvent::ReofferFailed { code, .. } => format!("ReofferFailed {code}"),
            UaEvent::Pong { code, .. } => format!("Pong {code:?}"),
            UaEvent::Registration { registered, .. } => format!("Registration {registered}"),
        })
        .collect()
}

#[test]
fn a_call_rings_is_answered_and_hung_up() {
    let mut n = Net::new();
    let call =
        n.a.invite("8001", "12025550100", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    if let Some((
        _,
        UaEvent::Incoming {
            from_user,
            to_user,
            sdp,
            ..
        },
    )) = n.ev_b.first()
    {
        assert_eq!(
            (from_user.as_str(), to_user.as_str(), sdp.as_slice()),
            ("8001", "12025550100", SDP_A)
        );
    }
    n.b.respond(b, 180, None, n.now);
    n.run(Duration::from_millis(10));
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_millis(10));
    assert_eq!(names(&n.ev_a), ["Progress 180", "Answered"]);
    assert!(matches!(&n.ev_a[1].1, UaEvent::Answered { sdp, .. } if sdp == SDP_B));
    assert_eq!(names(&n.ev_b), ["Incoming", "Confirmed"]);
    n.a.hang_up(call, n.now);
    n.run(Duration::from_secs(40));
    assert_eq!(
        names(&n.ev_b),
        ["Incoming", "Confirmed", "Ended remote=true"]
    );
    assert_eq!(
        names(&n.ev_a),
        ["Progress 180", "Answered", "Ended remote=false"]
    );
    assert_eq!(
        n.sent(true, "INVITE"),
        1,
        "no retransmission on a clean network"
    );
    assert_eq!((n.a.call_count(), n.b.call_count()), (0, 0));
}

#[test]
fn a_lost_invite_is_retransmitted_after_t1_and_seen_once() {
    let mut n = Net::new();
    let mut lost = 0;
    n.filter = Box::new(move |m, _| {
        if m.method().is_some_and(|m| m.as_str() == "INVITE") && lost < 2 {
            lost += 1;
            return false;
        }
        true
    });
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(400));
    assert!(n.ev_b.is_empty());
    n.run(Duration::from_millis(1200));
    // Lost at 0 and 0.5 s, delivered at 1.5 s (T1, then 2*T1).
    assert_eq!(n.sent(true, "INVITE"), 3);
    assert_eq!(names(&n.ev_b), ["Incoming"]);
    assert_eq!(n.ev_b[0].0, Duration::from_millis(1500));
    n.run(Duration::from_secs(5));
    assert_eq!(
        n.sent(true, "INVITE"),
        3,
        "the 100 Trying stopped the retransmissions"
    );
}

#[test]
fn an_invite_nobody_answers_fails_with_408_after_64_t1() {
    let mut n = Net::new();
    n.filter = Box::new(|_, to_b| !to_b);
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_secs(31));
    assert!(n.ev_a.is_empty());
    n.run(Duration::from_secs(2));
    assert_eq!(names(&n.ev_a), ["Failed 408"]);
    assert_eq!(n.ev_a[0].0, Duration::from_secs(32));
    // Retransmitted at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
    assert_eq!(n.sent(true, "INVITE"), 7);
}

#[test]
fn busy_is_acked_and_its_retransmissions_absorbed() {
    let mut n = Net::new();
    let mut ack_lost = false;
    n.filter = Box::new(move |m, _| {
        if m.method().is_some_and(|m| m.as_str() == "ACK") && !ack_lost {
            ack_lost = true;
            return false;
        }
        true
    });
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 486, None, n.now);
    n.run(Duration::from_secs(40));
    assert_eq!(names(&n.ev_a), ["Failed 486"]);
    // The first ACK was lost: b sent the 486 again, a acked again, once.
    assert_eq!(n.sent(false, "SIP/2.0 486"), 2);
    assert_eq!(n.sent(true, "ACK"), 2);
}

#[test]
fn cancel_waits_for_a_provisional_and_ends_the_call_with_487() {
    let mut n = Net::new();
    let call = n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.a.hang_up(call, n.now);
    n.run(Duration::from_millis(10));
    assert_eq!(
        n.sent(true, "CANCEL"),
        0,
        "no CANCEL before a provisional response"
    );
    n.b.respond(b, 180, None, n.now);
    n.run(Duration::from_secs(40));
    assert_eq!(n.sent(true, "CANCEL"), 1);
    assert_eq!(names(&n.ev_a), ["Failed 487"]);
    assert_eq!(names(&n.ev_b), ["Incoming", "Ended remote=true"]);
    assert_eq!(n.sent(false, "SIP/2.0 487"), 1);
}

#[test]
fn an_answer_that_crosses_the_cancel_is_acked_and_byed() {
    let mut n = Net::new();
    let call = n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 180, None, n.now);
    n.run(Duration::from_millis(10));
    // Both at once: a cancels while b answers.
    n.a.hang_up(call, n.now);
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_secs(40));
    assert_eq!(names(&n.ev_a), ["Progress 180", "Failed 487"]);
    assert_eq!(n.sent(true, "ACK"), 1);
    assert_eq!(n.sent(true, "BYE"), 1);
    assert_eq!(
        names(&n.ev_b),
        ["Incoming", "Confirmed", "Ended remote=true"]
    );
    assert_eq!((n.a.call_count(), n.b.call_count()), (0, 0));
}

#[test]
fn the_2xx_is_retransmitted_until_its_ack_arrives() {
    let mut n = Net::new();
    let mut acks = 0;
    n.filter = Box::new(move |m, to_b| {
        if to_b && m.method().is_some_and(|m| m.as_str() == "ACK") {
            acks += 1;
            return acks > 2;
        }
        true
    });
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_secs(10));
    assert_eq!(n.sent(false, "SIP/2.0 200"), 3, "sent, then at T1 and 3*T1");
    assert_eq!(n.sent(true, "ACK"), 3);
    assert_eq!(
        names(&n.ev_a),
        ["Answered"],
        "a retransmitted 2xx is not a new answer"
    );
    assert_eq!(names(&n.ev_b), ["Incoming", "Confirmed"]);
}

#[test]
fn a_2xx_never_acked_ends_the_call_with_a_bye() {
    let mut n = Net::new();
    n.filter = Box::new(|m, to_b| !(to_b && m.method().is_some_and(|m| m.as_str() == "ACK")));
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_secs(40));
    assert_eq!(names(&n.ev_b), ["Incoming", "Ended remote=true"]);
    assert_eq!(n.sent(false, "BYE"), 1);
    assert_eq!(names(&n.ev_a), ["Answered", "Ended remote=true"]);
}

#[test]
fn hold_by_reinvite_and_glare_resolved_by_491_and_retry() {
    let mut n = Net::new();
    let a_call = n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_millis(10));

    // A plain re-offer (hold).
    n.a.reoffer(a_call, b"hold", n.now);
    n.run(Duration::from_millis(10));
    assert_eq!(names(&n.ev_b).last().unwrap(), "Reoffer");
    n.b.respond_reoffer(b, 200, Some(b"held"), n.now);
    n.run(Duration::from_millis(10));
    assert!(
        matches!(&n.ev_a.last().unwrap().1, UaEvent::ReofferAnswered { sdp, .. } if sdp == b"held")
    );

    // Glare: both offer at the same moment.
    n.ev_a.clear();
    n.ev_b.clear();
    n.a.reoffer(a_call, b"resume-a", n.now);
    n.b.reoffer(b, b"resume-b", n.now);
    n.run(Duration::from_millis(10));
    assert_eq!(n.sent(false, "SIP/2.0 491"), 1);
    assert_eq!(n.sent(true, "SIP/2.0 491"), 1);
    assert!(
        n.ev_a.is_empty() && n.ev_b.is_empty(),
        "491 is retried, not reported"
    );
    // b (not the Call-ID owner) retries within 2 s and wins; a retries after 2.1 s.
    n.run(Duration::from_millis(2050));
    assert_eq!(names(&n.ev_a), ["Reoffer"]);
    n.a.respond_reoffer(a_call, 200, Some(b"ok-a"), n.now);
    n.run(Duration::from_secs(3));
    assert_eq!(names(&n.ev_b), ["ReofferAnswered", "Reoffer"]);
    n.b.respond_reoffer(b, 200, Some(b"ok-b"), n.now);
    n.run(Duration::from_millis(10));
    assert_eq!(names(&n.ev_a), ["Reoffer", "ReofferAnswered"]);
}

#[test]
fn a_lost_bye_is_retransmitted_and_the_far_end_hangs_up() {
    let mut n = Net::new();
    let mut lost = false;
    n.filter = Box::new(move |m, _| {
        if m.method().is_some_and(|m| m.as_str() == "BYE") && !lost {
            lost = true;
            return false;
        }
        true
    });
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_millis(10));
    n.b.hang_up(b, n.now);
    n.run(Duration::from_secs(1));
    assert_eq!(n.sent(false, "BYE"), 2);
    assert_eq!(names(&n.ev_a), ["Answered", "Ended remote=true"]);
}

#[test]
fn garbage_and_unknown_dialogs_are_answered_without_harm() {
    let mut n = Net::new();
    n.b.handle_datagram(b"\x00\xffnot sip\r\n\r\n", addr(5060), n.now);
    n.b.handle_datagram(b"\r\n\r\n", addr(5060), n.now);
    let bye = "BYE sip:x@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKq\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: nope\r\nCSeq: 2 BYE\r\n\r\n";
    n.b.handle_datagram(bye.as_bytes(), addr(5060), n.now);
    let out = n.b.poll_transmit().unwrap();
    assert!(String::from_utf8_lossy(&out.bytes).starts_with("SIP/2.0 481"));
    assert!(n.b.poll_event().is_none());
}

#[test]
fn an_unanswered_reinvite_fails_on_its_own_call_only() {
    let mut n = Net::new();
    let first = n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b1 = n.incoming_b();
    n.b.respond(b1, 200, Some(SDP_B), n.now);
    let second = n.a.invite("1", "3", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b2 = n
        .ev_b
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::Incoming { call, .. } => Some(*call),
            _ => None,
        })
        .next_back()
        .unwrap();
    n.b.respond(b2, 200, Some(SDP_B), n.now);
    n.run(Duration::from_millis(10));
    // From now on b hears nothing: a's re-INVITE on the second call times out.
    n.filter = Box::new(|_, to_b| !to_b);
    n.a.reoffer(second, b"hold", n.now);
    n.run(Duration::from_secs(40));
    let failed: Vec<u64> = n
        .ev_a
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::ReofferFailed { call, code: 408 } => Some(*call),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![second]);
    assert_ne!(first, second);
    assert_eq!(n.a.call_count(), 2, "both calls stand");
}

#[test]
fn a_call_that_rings_for_a_minute_is_not_timed_out() {
    let mut n = Net::new();
    n.a.invite("1", "2", addr(5070), SDP_A, &[], n.now);
    n.run(Duration::from_millis(10));
    let b = n.incoming_b();
    n.b.respond(b, 180, None, n.now);
    n.run(Duration::from_secs(60));
    assert_eq!(
        names(&n.ev_a),
        ["Progress 180"],
        "still ringing after 60 s (Timer B stops at the 180)"
    );
    n.b.respond(b, 200, Some(SDP_B), n.now);
    n.run(Duration::from_millis(10));
    assert_eq!(names(&n.ev_a), ["Progress 180", "Answered"]);
}

/// Behind a record-routing proxy (Kamailio's dispatcher): our answers carry
/// the request's Record-Route in its order (RFC 3261 12.1.1), so the
/// caller's ACK and BYE come back through the proxy, and our own BYE takes
/// the same route.
#[test]
fn answers_carry_the_record_route_and_our_bye_follows_it() {
    let now = Instant::now();
    let mut b = UserAgent::new(addr(5070), Timers::default());
    let invite = "INVITE sip:12025550170@127.0.0.1:5070 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy1\r\n\
        Via: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKcarrier1\r\n\
        Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
        Record-Route: <sip:10.9.9.9;lr>\r\n\
        From: <sip:14155550177@10.1.1.1>;tag=c1\r\n\
        To: <sip:12025550170@127.0.0.1>\r\n\
        Call-ID: rr-test\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:carrier@10.1.1.1:5060>\r\n\
        Max-Forwards: 69\r\n\
        Content-Length: 0\r\n\r\n";
    b.handle_datagram(invite.as_bytes(), addr(5060), now);
    let call = match b.poll_event() {
        Some(UaEvent::Incoming { call, .. }) => call,
        other => panic!("{other:?}"),
    };
    b.respond(call, 180, None, now);
    b.respond(call, 200, Some(SDP_B), now);
    let mut answers = Vec::new();
    while let Some(Transmit { to, bytes }) = b.poll_transmit() {
        assert_eq!(to, addr(5060), "answers go back the way the request came");
        answers.push(Message::parse(&bytes).unwrap());
    }
    let routes = |m: &Message| -> Vec<String> {
        m.headers_named("Record-Route")
            .map(str::to_string)
            .collect()
    };
    let want = vec!["<sip:127.0.0.1:5060;lr>", "<sip:10.9.9.9;lr>"];
    let dialog_answers: Vec<&Message> = answers
        .iter()
        .filter(|m| matches!(m.code(), Some(180 | 200)))
        .collect();
    assert_eq!(dialog_answers.len(), 2);
    for m in dialog_answers {
        assert_eq!(routes(m), want, "{:?}", m.code());
    }
    b.hang_up(call, now);
    let bye = std::iter::from_fn(|| b.poll_transmit())
        .map(|t| Message::parse(&t.bytes).unwrap())
        .find(|m| m.method() == Some(&seatline_sip::message::Method::Bye))
        .expect("a BYE");
    let route: Vec<&str> = bye.headers_named("Route").collect();
    assert_eq!(
        route, want,
        "the UAS route set is the Record-Route in order"
    );
}

/// An incoming call sent elsewhere: a 302 whose Contact is the target,
/// the caller's ACK absorbed, and the call forgotten; a target that is no
/// SIP URI is a 500, never a header built from it.
#[test]
fn a_redirect_is_a_302_with_the_target_as_contact() {
    let now = Instant::now();
    for (target, code, contact) in [
        (
            "sip:12025550170@127.0.0.1:5080",
            302,
            Some("<sip:12025550170@127.0.0.1:5080>"),
        ),
        ("sip:x@h>\r\nVia: forged", 500, None),
        ("http://example.com", 500, None),
    ] {
        let mut b = UserAgent::new(addr(5070), Timers::default());
        let invite = "INVITE sip:12025550170@127.0.0.1:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKredir1\r\n\
            From: <sip:14155550177@10.1.1.1>;tag=c1\r\n\
            To: <sip:12025550170@127.0.0.1>\r\n\
            Call-ID: redirect-test\r\n\
            CSeq: 1 INVITE\r\n\
            Contact: <sip:carrier@127.0.0.1:5060>\r\n\
            Max-Forwards: 69\r\n\
            Content-Length: 0\r\n\r\n";
        b.handle_datagram(invite.as_bytes(), addr(5060), now);
        let call = match b.poll_event() {
            Some(UaEvent::Incoming { call, .. }) => call,
            other => panic!("{other:?}"),
        };
        b.redirect(call, target, now);
        let finals: Vec<Message> = std::iter::from_fn(|| b.poll_transmit())
            .map(|t| Message::parse(&t.bytes).unwrap())
            .filter(|m| m.code().is_some_and(|c| c >= 300))
            .collect();
        assert_eq!(finals.len(), 1, "{target}");
        assert_eq!(finals[0].code(), Some(code), "{target}");
        assert_eq!(finals[0].header("Contact"), contact, "{target}");
        assert_eq!(finals[0].headers_named("Via").count(), 1, "{target}");
        let ack = "ACK sip:12025550170@127.0.0.1:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKredir1\r\n\
            From: <sip:14155550177@10.1.1.1>;tag=c1\r\n\
            To: <sip:12025550170@127.0.0.1>\r\n\
            Call-ID: redirect-test\r\n\
            CSeq: 1 ACK\r\n\
            Max-Forwards: 69\r\n\
            Content-Length: 0\r\n\r\n";
        b.handle_datagram(ack.as_bytes(), addr(5060), now);
        assert!(b.poll_event().is_none(), "nothing more of that call");
        assert!(b.poll_transmit().is_none(), "the ACK is absorbed");
    }
}
