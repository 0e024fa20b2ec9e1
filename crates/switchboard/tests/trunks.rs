//! Several trunks in simulated time: failover for carrier-side failures
//! only, one call as the tabs see it, and OPTIONS keepalive taking a trunk
//! out of the rotation and back.

use seatline_agent::{AgentConfig, Status};
use seatline_calls::policy::{CallOut, PolicyFacts};
use seatline_calls::record::CallRecord;
use seatline_protocol::ServerEvent;
use seatline_sip::sdp::{AudioSdp, Codec, Direction as SdpDirection};
use seatline_sip::{CallRef, Timers, TrustedSource, UaEvent, UserAgent};
use seatline_switchboard::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SB: &str = "127.0.0.1:5060";
const A: &str = "127.0.0.1:5081";
const B: &str = "127.0.0.1:5082";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// What a carrier does with each INVITE it gets.
#[derive(Clone, Copy, Debug)]
enum Does {
    Refuse(u16),
    Answer,
    Ring,
}

struct Carrier {
    ua: UserAgent,
    does: Does,
    invites: Vec<CallRef>,
    events: Vec<UaEvent>,
    /// Deaf: nothing reaches it (a trunk that is gone).
    deaf: bool,
    /// Accepts REGISTERs (else its user agent refuses them 501).
    registrar: bool,
}

struct World {
    now: Instant,
    sb: Switchboard,
    carriers: HashMap<SocketAddr, Carrier>,
    dials: Vec<i64>,
    saved: Vec<CallRecord>,
    health: Vec<(String, bool)>,
    next_rtp: RtpPort,
}

fn trunk(name: &str, peer: &str, keepalive: Option<u64>) -> Trunk {
    Trunk {
        name: name.into(),
        peer: addr(peer),
        keepalive: keepalive.map(Duration::from_secs),
        register: false,
    }
}

fn registering(name: &str, peer: &str) -> Trunk {
    Trunk {
        register: true,
        ..trunk(name, peer, None)
    }
}

fn carrier_sdp() -> Vec<u8> {
    AudioSdp {
        addr: "127.0.0.1".parse().unwrap(),
        port: 40_000,
        codecs: vec![Codec::Pcmu],
        dtmf_pt: Some(101),
        direction: SdpDirection::SendRecv,
    }
    .to_string(7, 1)
    .into_bytes()
}

impl World {
    fn new(trunks: Vec<Trunk>, does: &[(&str, Does)]) -> Self {
        let now = Instant::now();
        let mut ua = UserAgent::with_seed(addr(SB), Timers::default(), 3);
        ua.set_trusted(trunks.iter().map(|t| TrustedSource::Addr(t.peer)).collect());
        for t in trunks.iter().filter(|t| t.register) {
            ua.register(t.peer, "trunk1", "carrier.test", 60, now);
        }
        let carriers = does
            .iter()
            .enumerate()
            .map(|(i, (a, d))| {
                let mut c = UserAgent::with_seed(addr(a), Timers::default(), 10 + i as u64);
                c.set_trusted(vec![TrustedSource::parse(SB).unwrap()]);
                (
                    addr(a),
                    Carrier {
                        ua: c,
                        does: *d,
                        invites: vec![],
                        events: vec![],
                        deaf: false,
                        registrar: false,
                    },
                )
            })
            .collect();
        let mut sb = Switchboard::new(Settings::with_trunks(trunks), ua, now, 1_700_000_000_000, 3);
        let spec = SeatSpec {
            id: 1,
            tenant_id: 1,
            group_no: "G001".into(),
            cfg: AgentConfig {
                initial_status: Status::Idle,
                acw: Some(Duration::from_secs(0)),
            },
            remembered: None,
        };
        sb.sign_in(&spec, true, now);
        sb.tab_opened(&spec, 1, now);
        let mut w = World {
            now,
            sb,
            carriers,
            dials: vec![],
            saved: vec![],
            health: vec![],
            next_rtp: 30_000,
        };
        w.step();
        w.dials.clear();
        w
    }

    fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.sb.poll_output() {
                moved = true;
                match o {
                    Output::Transmit(t) => {
                        let Some(c) = self.carriers.get_mut(&t.to).filter(|c| !c.deaf) else {
                            continue;
                        };
                        let m = seatline_sip::Message::parse(&t.bytes).unwrap();
                        if c.registrar && m.method() == Some(&seatline_sip::Method::Register) {
                            let ok = seatline_sip::transaction::response_to(&m, 200, Some("r"));
                            self.sb.handle_datagram(&ok.to_bytes(), t.to, self.now);
                        } else {
                            c.ua.handle_datagram(&t.bytes, addr(SB), self.now);
                        }
                    }
                    Output::ToAgent {
                        event: ServerEvent::Dial { content },
                        ..
                    } => self.dials.push(content.code),
                    Output::SaveCall { record, .. } => self.saved.push(record),
                    Output::TrunkHealth { name, up } => self.health.push((name, up)),
                    _ => {}
                }
            }
            for (a, c) in self.carriers.iter_mut() {
                while let Some(t) = c.ua.poll_transmit() {
                    moved = true;
                    if !c.deaf && t.to == addr(SB) {
                        self.sb.handle_datagram(&t.bytes, *a, self.now);
                    }
                }
                while let Some(ev) = c.ua.poll_event() {
                    moved = true;
                    if let UaEvent::Incoming { call, .. } = ev {
                        c.invites.push(call);
                        match c.does {
                            Does::Refuse(code) => c.ua.respond(call, code, None, self.now),
                            Does::Answer => c.ua.respond(call, 200, Some(&carrier_sdp()), self.now),
                            Does::Ring => c.ua.respond(call, 180, None, self.now),
                        }
                    }
                    c.events.push(ev);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.step();
            let next = std::iter::once(self.sb.poll_timeout())
                .chain(self.carriers.values().map(|c| c.ua.poll_timeout()))
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.sb.handle_timeout(now);
                    for c in self.carriers.values_mut() {
                        c.ua.handle_timeout(now);
                    }
                }
                _ => break,
            }
        }
        self.now = until;
        self.step();
    }

    fn call_out(&mut self) {
        self.next_rtp += 2;
        let facts = CallOutFacts {
            policy: PolicyFacts {
                balance_cents: 1_000,
                ..Default::default()
            },
            owned_dids: vec!["12025550170".into()],
            pool_dids: vec!["12025550170".into()],
        };
        let op = CallOut {
            caller: String::new(),
            callee: "12025550100".into(),
            country_code: String::new(),
            order_id: "o-1".into(),
            params: String::new(),
        };
        self.sb
            .call_out(1, op, true, Ok(facts), Some(self.next_rtp), self.now);
        self.step();
    }

    fn invites(&self, a: &str) -> usize {
        self.carriers[&addr(a)].invites.len()
    }

    fn last_record(&self) -> &CallRecord {
        self.saved.last().expect("a record")
    }
}

#[test]
fn a_503_on_the_first_trunk_is_carried_by_the_second_as_one_call() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Refuse(503)), (B, Does::Answer)],
    );
    w.call_out();
    assert_eq!((w.invites(A), w.invites(B)), (1, 1));
    assert_eq!(w.dials, vec![0, 2], "one call: placed, then answered");
    let r = w.last_record();
    assert_eq!(r.trunk.as_deref(), Some("b"));
    assert_eq!(r.hangup_code, None);
    w.sb.hang_up(1, w.now);
    w.step();
    assert_eq!(w.dials, vec![0, 2, 5]);
    assert!(w.carriers[&addr(B)]
        .events
        .iter()
        .any(|e| matches!(e, UaEvent::Ended { remote: true, .. })));
}

#[test]
fn a_trunk_that_never_answers_is_left_after_the_invite_times_out() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Answer), (B, Does::Answer)],
    );
    w.carriers.get_mut(&addr(A)).unwrap().deaf = true;
    w.call_out();
    assert_eq!(w.dials, vec![0]);
    w.advance(Duration::from_secs(31));
    assert_eq!(w.invites(B), 0, "still trying the first trunk");
    w.advance(Duration::from_secs(2));
    assert_eq!(w.invites(B), 1, "64*T1 later, the second trunk");
    assert_eq!(w.dials, vec![0, 2]);
    assert_eq!(w.last_record().trunk.as_deref(), Some("b"));
}

#[test]
fn when_the_last_trunk_fails_too_the_tabs_get_800_once() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Refuse(503)), (B, Does::Refuse(500))],
    );
    w.call_out();
    assert_eq!((w.invites(A), w.invites(B)), (1, 1));
    assert_eq!(w.dials, vec![0, 800, 5]);
    let r = w.last_record();
    assert_eq!((r.sip_code, r.hangup_code), (Some(500), Some(800)));
    assert_eq!(w.sb.call_count(), 0);
}

#[test]
fn busy_declined_and_not_found_are_the_callee_s_answer_and_stay_on_one_trunk() {
    for (code, want) in [(486, vec![0, 5]), (603, vec![0, 5]), (404, vec![0, 812, 5])] {
        let mut w = World::new(
            vec![trunk("a", A, None), trunk("b", B, None)],
            &[(A, Does::Refuse(code)), (B, Does::Answer)],
        );
        w.call_out();
        assert_eq!(w.invites(B), 0, "SIP {code} is not failed over");
        assert_eq!(w.dials, want, "SIP {code}");
        assert_eq!(w.last_record().sip_code, Some(code));
    }
}

#[test]
fn a_call_the_agent_hung_up_is_not_moved_to_another_trunk() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Ring), (B, Does::Answer)],
    );
    w.call_out();
    w.sb.hang_up(1, w.now);
    w.step();
    assert_eq!(w.invites(B), 0);
    assert_eq!(w.dials, vec![0, 5]);
    // A trunk that answers our CANCEL with a server error does not get the
    // call moved either.
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Ring), (B, Does::Answer)],
    );
    w.carriers.get_mut(&addr(A)).unwrap().deaf = true;
    w.call_out();
    w.sb.hang_up(1, w.now);
    w.advance(Duration::from_secs(40));
    assert_eq!(
        w.invites(B),
        0,
        "the INVITE timed out after the agent hung up"
    );
    assert_eq!(w.dials, vec![0, 800, 5]);
}

#[test]
fn keepalive_takes_a_silent_trunk_out_and_puts_it_back_when_it_answers() {
    let mut w = World::new(
        vec![trunk("a", A, Some(10)), trunk("b", B, Some(10))],
        &[(A, Does::Answer), (B, Does::Answer)],
    );
    w.advance(Duration::from_secs(1));
    assert!(w.health.is_empty(), "both answer their first ping");
    w.carriers.get_mut(&addr(A)).unwrap().deaf = true;
    // The next ping goes at 10 s and must be answered within the interval.
    w.advance(Duration::from_secs(18));
    assert!(w.health.is_empty(), "not down before its ping is late");
    w.advance(Duration::from_secs(2));
    assert_eq!(w.health, vec![("a".to_string(), false)]);
    assert_eq!(
        w.sb.trunk_health(),
        vec![("a".into(), false), ("b".into(), true)]
    );
    w.call_out();
    assert_eq!(w.invites(B), 1, "straight to the trunk that is up");
    assert_eq!(w.dials, vec![0, 2]);
    w.sb.hang_up(1, w.now);
    w.step();

    w.carriers.get_mut(&addr(A)).unwrap().deaf = false;
    w.advance(Duration::from_secs(45));
    assert_eq!(
        w.health,
        vec![("a".to_string(), false), ("a".to_string(), true)]
    );
    w.call_out();
    assert_eq!(w.invites(A), 1, "back in its place");
}

#[test]
fn with_every_trunk_down_a_call_is_refused_800_without_an_invite() {
    let mut w = World::new(vec![trunk("a", A, Some(5))], &[(A, Does::Answer)]);
    w.carriers.get_mut(&addr(A)).unwrap().deaf = true;
    w.advance(Duration::from_secs(40));
    assert_eq!(w.health, vec![("a".to_string(), false)]);
    w.carriers.get_mut(&addr(A)).unwrap().deaf = false;
    w.call_out();
    assert_eq!(w.invites(A), 0);
    assert_eq!(w.dials, vec![800, 5]);
    assert_eq!(w.last_record().hangup_code, Some(800));
}

#[test]
fn a_registering_trunk_carries_calls_only_while_registered() {
    let mut w = World::new(
        vec![registering("a", A), trunk("b", B, None)],
        &[(A, Does::Answer), (B, Does::Answer)],
    );
    // A refuses the REGISTER (its user agent answers 501): not usable.
    assert_eq!(
        w.sb.trunk_health(),
        vec![("a".into(), false), ("b".into(), true)]
    );
    w.call_out();
    assert_eq!((w.invites(A), w.invites(B)), (0, 1));
    w.sb.hang_up(1, w.now);
    w.step();
    // A becomes a registrar; the retry after the backoff binds.
    w.carriers.get_mut(&addr(A)).unwrap().registrar = true;
    w.advance(Duration::from_secs(3));
    assert_eq!(w.health, vec![("a".to_string(), true)]);
    w.call_out();
    assert_eq!(w.invites(A), 1, "registered: first in line again");
}
