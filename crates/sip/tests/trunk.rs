//! The user agent toward a trunk, in simulated time: digest authentication,
//! OPTIONS keepalive and registration. The carrier here is hand-driven, so
//! each challenge and each answer is exactly the one a test wants.

use md5::Digest;
use seatline_sip::message::{param, Message};
use seatline_sip::transaction::response_to;
use seatline_sip::{Credentials, Timers, Transmit, UaEvent, UserAgent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CARRIER: u16 = 5080;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn md5_hex(s: &str) -> String {
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Rig {
    ua: UserAgent,
    now: Instant,
}

impl Rig {
    fn new(creds: Option<(&str, &str)>) -> Self {
        let mut ua = UserAgent::with_seed(addr(5060), Timers::default(), 7);
        if let Some((u, p)) = creds {
            ua.set_credentials(
                addr(CARRIER),
                Credentials {
                    username: u.into(),
                    password: p.into(),
                },
            );
        }
        Rig {
            ua,
            now: Instant::now(),
        }
    }

    /// Everything the UA sent since the last call, parsed.
    fn sent(&mut self) -> Vec<Message> {
        let mut out = vec![];
        while let Some(Transmit { to, bytes }) = self.ua.poll_transmit() {
            assert_eq!(to, addr(CARRIER), "everything goes to the trunk");
            out.push(Message::parse(&bytes).unwrap());
        }
        out
    }

    fn events(&mut self) -> Vec<UaEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    fn reply(&mut self, m: Message) {
        self.ua
            .handle_datagram(&m.to_bytes(), addr(CARRIER), self.now);
    }

    fn invite(&mut self) -> (u64, Message) {
        let call = self.ua.invite(
            "12025550170",
            "12025550100",
            addr(CARRIER),
            b"v=0\r\n",
            &[],
            self.now,
        );
        let sent = self.sent();
        assert_eq!(sent.len(), 1);
        (call, sent.into_iter().next().unwrap())
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = self.ua.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.ua.handle_timeout(self.now);
        }
        self.now = until;
    }
}

fn challenge(req: &Message, code: u16, nonce: &str) -> Message {
    let mut r = response_to(req, code, Some("carrier-tag"));
    let name = if code == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    r.push(name, format!(r#"Digest realm="carrier", nonce="{nonce}""#));
    r
}

/// The digest (no qop) a carrier expects for this request.
fn expected(req: &Message, user: &str, pass: &str, nonce: &str) -> String {
    let method = req.method().unwrap().as_str();
    let uri = req.uri().unwrap();
    let ha1 = md5_hex(&format!("{user}:carrier:{pass}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
}

fn response_field(header: &str) -> String {
    param(header, "response")
        .or_else(|| {
            header
                .split(',')
                .find_map(|p| p.trim().strip_prefix("response="))
        })
        .unwrap()
        .trim_matches('"')
        .to_string()
}

#[test]
fn a_challenged_invite_goes_again_with_credentials_in_the_same_call() {
    let mut rig = Rig::new(Some(("trunk1", "s3cret")));
    let (call, first) = rig.invite();
    assert!(first.header("Authorization").is_none());
    rig.reply(challenge(&first, 401, "n1"));
    let sent = rig.sent();
    // The 401 is ACKed by its transaction, then the INVITE goes again.
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].method().unwrap().as_str(), "ACK");
    let second = &sent[1];
    assert_eq!(second.method().unwrap().as_str(), "INVITE");
    assert_eq!(second.call_id(), first.call_id(), "same call");
    assert_eq!(second.from_tag(), first.from_tag());
    assert_ne!(second.branch(), first.branch(), "a new transaction");
    assert_eq!(second.cseq().unwrap().0, 2);
    assert_eq!(second.body, first.body, "the same offer");
    let auth = second.header("Authorization").unwrap();
    assert_eq!(
        response_field(auth),
        expected(second, "trunk1", "s3cret", "n1")
    );
    assert!(!String::from_utf8_lossy(&second.to_bytes()).contains("s3cret"));
    assert!(rig.events().is_empty(), "the application sees no failure");

    // Answered; then our BYE is challenged with a 407 and goes again.
    let mut ok = response_to(second, 200, Some("carrier-tag"));
    ok.push("Contact", "<sip:carrier@127.0.0.1:5080>");
    rig.reply(ok);
    assert!(matches!(rig.events()[..], [UaEvent::Answered { .. }]));
    rig.sent();
    rig.ua.hang_up(call, rig.now);
    let bye = rig.sent().pop().unwrap();
    assert_eq!(bye.method().unwrap().as_str(), "BYE");
    rig.reply(challenge(&bye, 407, "n2"));
    let again = rig.sent().pop().expect("the BYE again");
    assert_eq!(again.method().unwrap().as_str(), "BYE");
    assert_eq!(again.cseq().unwrap().0, bye.cseq().unwrap().0 + 1);
    assert_eq!(again.call_id(), bye.call_id());
    let pa = again.header("Proxy-Authorization").unwrap();
    assert_eq!(
        response_field(pa),
        expected(&again, "trunk1", "s3cret", "n2")
    );
    rig.reply(response_to(&again, 200, None));
    assert!(rig.sent().is_empty());
}

#[test]
fn credentials_the_trunk_keeps_refusing_fail_the_call_with_its_code() {
    let mut rig = Rig::new(Some(("trunk1", "wrong")));
    let (call, mut req) = rig.invite();
    for _ in 0..2 {
        rig.reply(challenge(&req, 407, "n"));
        req = rig.sent().pop().unwrap();
        assert!(req.header("Proxy-Authorization").is_some());
    }
    rig.reply(challenge(&req, 407, "n"));
    assert_eq!(rig.sent().len(), 1, "only the ACK: no third try");
    match &rig.events()[..] {
        [UaEvent::Failed { call: c, code, .. }] => assert_eq!((*c, *code), (call, 407)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_credentials_a_challenge_fails_the_call_at_once() {
    let mut rig = Rig::new(None);
    let (_, req) = rig.invite();
    rig.reply(challenge(&req, 401, "n"));
    assert_eq!(rig.sent().len(), 1, "the ACK only");
    assert!(matches!(
        rig.events()[..],
        [UaEvent::Failed { code: 401, .. }]
    ));
}

#[test]
fn a_challenged_reinvite_goes_again_with_credentials() {
    let mut rig = Rig::new(Some(("trunk1", "s3cret")));
    let (call, req) = rig.invite();
    let mut ok = response_to(&req, 200, Some("carrier-tag"));
    ok.push("Contact", "<sip:carrier@127.0.0.1:5080>");
    rig.reply(ok);
    rig.events();
    rig.sent();
    rig.ua.reoffer(call, b"v=0 hold\r\n", rig.now);
    let re = rig.sent().pop().unwrap();
    rig.reply(challenge(&re, 401, "n3"));
    let again = rig.sent().pop().unwrap();
    assert_eq!(again.method().unwrap().as_str(), "INVITE");
    assert!(again.to_tag().is_some(), "in the dialog");
    assert_eq!(again.cseq().unwrap().0, re.cseq().unwrap().0 + 1);
    assert_eq!(again.body, b"v=0 hold\r\n".to_vec());
    let auth = again.header("Authorization").unwrap();
    assert_eq!(
        response_field(auth),
        expected(&again, "trunk1", "s3cret", "n3")
    );
    rig.reply(response_to(&again, 200, None));
    assert!(matches!(
        rig.events()[..],
        [UaEvent::ReofferAnswered { .. }]
    ));
}

#[test]
fn options_pings_report_an_answer_or_silence() {
    let mut rig = Rig::new(None);
    rig.ua.ping(addr(CARRIER), rig.now);
    let ping = rig.sent().pop().unwrap();
    assert_eq!(ping.method().unwrap().as_str(), "OPTIONS");
    rig.reply(response_to(&ping, 404, Some("x")));
    assert_eq!(
        rig.events(),
        vec![UaEvent::Pong {
            peer: addr(CARRIER),
            code: Some(404)
        }]
    );
    rig.ua.ping(addr(CARRIER), rig.now);
    rig.sent();
    rig.advance(Duration::from_secs(40));
    assert_eq!(
        rig.events(),
        vec![UaEvent::Pong {
            peer: addr(CARRIER),
            code: None
        }]
    );
}

#[test]
fn a_forged_challenge_from_elsewhere_changes_nothing() {
    let mut rig = Rig::new(Some(("trunk1", "s3cret")));
    let (_, req) = rig.invite();
    let forged = challenge(&req, 401, "evil");
    rig.ua
        .handle_datagram(&forged.to_bytes(), addr(6666), rig.now);
    assert!(rig.sent().is_empty(), "no answer, no credentials sent");
    assert!(rig.events().is_empty());
}

fn register_ok(req: &Message, expires: Option<&str>) -> Message {
    let mut r = response_to(req, 200, Some("reg-tag"));
    if let Some(e) = expires {
        r.push(
            "Contact",
            format!(
                "{};expires={e}",
                req.header("Contact").unwrap().split(';').next().unwrap()
            ),
        );
    }
    r
}

fn registrations(rig: &mut Rig) -> Vec<(bool, Option<u16>, Option<u32>)> {
    rig.events()
        .into_iter()
        .map(|e| match e {
            UaEvent::Registration {
                peer,
                registered,
                code,
                expires,
            } => {
                assert_eq!(peer, addr(CARRIER));
                (registered, code, expires)
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_registration_answers_its_challenge_and_refreshes_before_expiry() {
    let mut rig = Rig::new(Some(("trunk1", "s3cret")));
    rig.ua
        .register(addr(CARRIER), "trunk1", "carrier.test", 120, rig.now);
    let first = rig.sent().pop().unwrap();
    assert_eq!(first.method().unwrap().as_str(), "REGISTER");
    assert_eq!(first.uri(), Some("sip:carrier.test"));
    assert!(first
        .header("To")
        .unwrap()
        .contains("sip:trunk1@carrier.test"));
    assert!(first
        .header("Contact")
        .unwrap()
        .contains("sip:trunk1@127.0.0.1:5060"));
    assert_eq!(first.header("Expires"), Some("120"));
    rig.reply(challenge(&first, 401, "r1"));
    let second = rig.sent().pop().unwrap();
    assert_eq!(second.call_id(), first.call_id());
    assert_eq!(second.cseq().unwrap().0, first.cseq().unwrap().0 + 1);
    let auth = second.header("Authorization").unwrap();
    assert_eq!(
        response_field(auth),
        expected(&second, "trunk1", "s3cret", "r1")
    );
    rig.reply(register_ok(&second, Some("100")));
    assert_eq!(registrations(&mut rig), vec![(true, Some(200), Some(100))]);
    assert_eq!(rig.ua.registrations(), vec![(addr(CARRIER), true)]);

    // The refresh goes at 80 s of the 100 granted, in the same Call-ID.
    rig.advance(Duration::from_secs(79));
    assert!(rig.sent().is_empty());
    rig.advance(Duration::from_secs(1));
    let refresh = rig.sent().pop().expect("a refresh");
    assert_eq!(refresh.call_id(), first.call_id());
    assert!(refresh.cseq().unwrap().0 > second.cseq().unwrap().0);
    rig.reply(register_ok(&refresh, None));
    assert_eq!(registrations(&mut rig), vec![(true, Some(200), Some(120))]);
}

#[test]
fn a_refused_registration_backs_off_and_succeeds_later() {
    let mut rig = Rig::new(Some(("trunk1", "s3cret")));
    rig.ua
        .register(addr(CARRIER), "trunk1", "carrier.test", 600, rig.now);
    let req = rig.sent().pop().unwrap();
    rig.reply(response_to(&req, 503, Some("x")));
    assert_eq!(registrations(&mut rig), vec![(false, Some(503), None)]);
    assert_eq!(rig.ua.registrations(), vec![(addr(CARRIER), false)]);
    // 2 s later, again; then silence (a timeout), then 4 s after that.
    rig.advance(Duration::from_millis(1999));
    assert!(rig.sent().is_empty(), "not before the backoff");
    rig.advance(Duration::from_millis(1));
    let again = rig.sent();
    assert_eq!(again.len(), 1);
    rig.advance(Duration::from_secs(32));
    let retransmits = rig.sent();
    assert!(retransmits.iter().all(|m| m.cseq() == again[0].cseq()));
    assert_eq!(registrations(&mut rig), vec![(false, None, None)]);
    rig.advance(Duration::from_secs(4));
    let third = rig.sent().pop().expect("after 4 s");
    rig.reply(register_ok(&third, Some("600")));
    assert_eq!(registrations(&mut rig), vec![(true, Some(200), Some(600))]);
}

#[test]
fn a_registrar_that_keeps_challenging_or_wants_longer_is_handled() {
    let mut rig = Rig::new(Some(("trunk1", "wrong")));
    rig.ua
        .register(addr(CARRIER), "trunk1", "carrier.test", 60, rig.now);
    let mut req = rig.sent().pop().unwrap();
    let mut mi = response_to(&req, 423, Some("x"));
    mi.push("Min-Expires", "300");
    rig.reply(mi);
    req = rig.sent().pop().unwrap();
    assert_eq!(req.header("Expires"), Some("300"), "asks again for longer");
    for _ in 0..2 {
        rig.reply(challenge(&req, 407, "n"));
        req = rig.sent().pop().unwrap();
        assert!(req.header("Proxy-Authorization").is_some());
    }
    rig.reply(challenge(&req, 407, "n"));
    assert!(rig.sent().is_empty(), "no third answer");
    assert_eq!(registrations(&mut rig), vec![(false, Some(407), None)]);
}

#[test]
fn over_tcp_requests_name_the_transport_and_are_sent_once() {
    let mut rig = Rig::new(None);
    rig.ua
        .set_transport(addr(CARRIER), seatline_sip::Transport::Tcp);
    let (call, invite) = rig.invite();
    assert!(invite.header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert!(invite.header("Contact").unwrap().contains(";transport=tcp"));
    rig.advance(Duration::from_secs(31));
    assert!(rig.sent().is_empty(), "no retransmission over a connection");
    rig.advance(Duration::from_secs(2));
    match &rig.events()[..] {
        [UaEvent::Failed {
            call: c, code: 408, ..
        }] => assert_eq!(*c, call),
        other => panic!("{other:?}"),
    }
    // Back to UDP: retransmitted again.
    rig.ua
        .set_transport(addr(CARRIER), seatline_sip::Transport::Udp);
    let (_, invite) = rig.invite();
    assert!(invite.header("Via").unwrap().starts_with("SIP/2.0/UDP "));
    rig.advance(Duration::from_millis(600));
    assert_eq!(rig.sent().len(), 1, "T1 later, again");
}

#[test]
fn over_tls_requests_name_our_tls_address_and_the_others_our_sip_address() {
    let mut rig = Rig::new(None);
    let sip = rig.ua.local_addr();
    let tls: std::net::SocketAddr = "127.0.0.1:5061".parse().unwrap();
    rig.ua.set_tls_local(tls);
    rig.ua
        .set_transport(addr(CARRIER), seatline_sip::Transport::Tls);
    let (_, invite) = rig.invite();
    let via = invite.header("Via").unwrap();
    assert!(via.starts_with(&format!("SIP/2.0/TLS {tls};")), "{via}");
    let contact = invite.header("Contact").unwrap();
    assert!(
        contact.contains(&format!("@{tls};transport=tls")),
        "{contact}"
    );
    // Over TCP, the SIP address (TCP shares it).
    rig.ua
        .set_transport(addr(CARRIER), seatline_sip::Transport::Tcp);
    let (_, invite) = rig.invite();
    let via = invite.header("Via").unwrap();
    assert!(via.starts_with(&format!("SIP/2.0/TCP {sip};")), "{via}");
}
