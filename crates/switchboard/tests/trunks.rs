//! Several trunks in simulated time: failover for carrier-side failures
//! only, one call as the tabs see it, and OPTIONS keepalive taking a trunk
//! out of the rotation and back.

use seatline_agent::{AgentConfig, Status};
use seatline_calls::policy::{CallOut, PolicyFacts};
use seatline_calls::record::CallRecord;
use seatline_protocol::ServerEvent;
use seatline_sip::sdp::{
    AudioSdp, Codec, Crypto, Direction as SdpDirection, MasterKey, Profile, SrtpKeys, Suite,
};
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
    /// Answers an SDES offer with SDES (our tag and suite, its own key).
    AnswerSdes,
    Ring,
    /// 183 with SDP (early media), and no answer until the test gives it.
    Early,
}

/// The key an [`Does::AnswerSdes`] carrier sends with.
const CARRIER_KEY: [u8; 30] = [0x5a; 30];

struct Carrier {
    ua: UserAgent,
    does: Does,
    invites: Vec<CallRef>,
    events: Vec<UaEvent>,
    /// Deaf: nothing reaches it (a trunk that is gone).
    deaf: bool,
    /// Accepts REGISTERs (else its user agent refuses them 501).
    registrar: bool,
    /// The Expires of each REGISTER it got.
    registers: Vec<String>,
}

struct World {
    now: Instant,
    sb: Switchboard,
    carriers: HashMap<SocketAddr, Carrier>,
    dials: Vec<i64>,
    saved: Vec<CallRecord>,
    /// The dialogs saved with the last record that had any.
    saved_dialog: Option<String>,
    health: Vec<(String, bool)>,
    next_rtp: RtpPort,
    /// How inbound DIDs are routed.
    route: Route,
    media: Vec<MediaOut>,
    released: Vec<RtpPort>,
    /// Balances stored: (tenant, cents).
    /// Each balance the store would hold after each write: (tenant, cents).
    balances: Vec<(i64, i64)>,
    stored: std::collections::HashMap<i64, i64>,
    /// The shell cannot bind another RTP port ([`Output::BindRtp`]).
    no_ports: bool,
    /// The DIDs the switchboard asked the store to route.
    routed: Vec<String>,
}

fn trunk(name: &str, peer: &str, keepalive: Option<u64>) -> Trunk {
    Trunk {
        tenant_id: None,
        name: name.into(),
        peer: addr(peer),
        keepalive: keepalive.map(Duration::from_secs),
        register: false,
        numbers: Default::default(),
        srtp: Default::default(),
    }
}

fn registering(name: &str, peer: &str) -> Trunk {
    Trunk {
        register: true,
        ..trunk(name, peer, None)
    }
}

fn carrier_sdp() -> Vec<u8> {
    carrier_sdp_to(SdpDirection::SendRecv, 1)
}

/// The carrier's SDP with `direction`, at `version`.
fn carrier_sdp_to(direction: SdpDirection, version: u64) -> Vec<u8> {
    carrier_sdp_at("127.0.0.1", 40_000, direction, version)
}

/// The carrier's SDP with its media at `addr`:`port`.
fn carrier_sdp_at(addr: &str, port: u16, direction: SdpDirection, version: u64) -> Vec<u8> {
    AudioSdp {
        addr: addr.parse().unwrap(),
        port,
        codecs: vec![Codec::Pcmu],
        dtmf_pt: Some(101),
        direction,
        profile: seatline_sip::sdp::Profile::Avp,
        crypto: Vec::new(),
    }
    .to_string(7, version)
    .into_bytes()
}

/// The carrier's SDP as SDES with `tag`, `suite` and [`CARRIER_KEY`].
fn sdes_sdp(tag: u32, suite: Suite) -> Vec<u8> {
    AudioSdp::parse(&String::from_utf8_lossy(&carrier_sdp()))
        .unwrap()
        .secure(Crypto {
            tag,
            suite,
            key: MasterKey(CARRIER_KEY),
        })
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
                        registers: vec![],
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
            skills: Vec::new(),
        };
        sb.sign_in(&spec, true, now);
        sb.tab_opened(&spec, 1, now);
        let mut w = World {
            now,
            sb,
            carriers,
            dials: vec![],
            saved: vec![],
            saved_dialog: None,
            health: vec![],
            next_rtp: 30_000,
            route: Route::Unknown,
            media: vec![],
            released: vec![],
            balances: vec![],
            stored: Default::default(),
            no_ports: false,
            routed: vec![],
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
                        if m.method() == Some(&seatline_sip::Method::Register) {
                            let expires = m.header("Expires").unwrap_or("").to_string();
                            c.registers.push(expires);
                        }
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
                    Output::SaveCall { record, dialog, .. } => {
                        self.saved.push(*record);
                        if dialog.is_some() {
                            self.saved_dialog = dialog;
                        }
                    }
                    Output::TrunkHealth { name, up } => self.health.push((name, up)),
                    Output::RouteInbound { call, did } => {
                        self.routed.push(did);
                        let ports = [self.next_rtp + 2, self.next_rtp + 4];
                        self.next_rtp += 4;
                        let route = self.route.clone();
                        self.sb.route_inbound(call, route, &ports, self.now);
                    }
                    Output::Media(m) => self.media.push(m),
                    Output::ReleaseRtp { rtp } => self.released.push(rtp),
                    Output::BindRtp { call } => {
                        self.next_rtp += 2;
                        let port = (!self.no_ports).then_some(self.next_rtp);
                        self.sb.rtp_bound(call, port, self.now);
                    }
                    Output::SaveBalance { tenant_id, change } => {
                        let held = self.stored.entry(tenant_id).or_default();
                        match change {
                            BalanceChange::Set(cents) => *held = cents,
                            BalanceChange::Add(cents) => *held += cents,
                        }
                        self.balances.push((tenant_id, *held))
                    }
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
                    if let UaEvent::Incoming { call, sdp, .. } = &ev {
                        let call = *call;
                        c.invites.push(call);
                        match c.does {
                            Does::Refuse(code) => c.ua.respond(call, code, None, self.now),
                            Does::Answer => c.ua.respond(call, 200, Some(&carrier_sdp()), self.now),
                            Does::AnswerSdes => {
                                let offer = AudioSdp::parse(&String::from_utf8_lossy(sdp)).unwrap();
                                let ours = offer.usable_crypto().expect("an SDES offer");
                                let answer = sdes_sdp(ours.tag, ours.suite);
                                c.ua.respond(call, 200, Some(&answer), self.now)
                            }
                            Does::Ring => c.ua.respond(call, 180, None, self.now),
                            Does::Early => c.ua.respond(call, 183, Some(&carrier_sdp()), self.now),
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
        self.call_out_as(1);
    }

    /// Seat `seat` calls `callee`; the store's facts say `policy`.
    fn place(&mut self, seat: SeatId, callee: &str, policy: PolicyFacts) {
        self.next_rtp += 2;
        let facts = CallOutFacts {
            policy,
            owned_dids: vec!["12025550170".into()],
            pool_dids: vec!["12025550170".into()],
        };
        let op = CallOut {
            caller: String::new(),
            callee: callee.into(),
            country_code: String::new(),
            order_id: "o-1".into(),
            params: String::new(),
        };
        self.sb
            .call_out(seat, op, true, Ok(facts), Some(self.next_rtp), self.now);
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

// ---- forwarded calls -----------------------------------------------------------

const DID: &str = "12025550171";
const FORWARD_TO: &str = "14155550123";

fn forwarding(does_b: Does) -> World {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Answer), (B, does_b)],
    );
    w.route = Route::Forward {
        tenant_id: 1,
        number: FORWARD_TO.into(),
    };
    w
}

impl World {
    /// Carrier A calls our DID; returns A's call reference.
    fn inbound_from_a(&mut self) -> CallRef {
        let now = self.now;
        let c = self.carriers.get_mut(&addr(A)).unwrap();
        let call =
            c.ua.invite("12025550199", DID, addr(SB), &carrier_sdp(), &[], now);
        self.step();
        call
    }

    fn events_of(&self, a: &str) -> Vec<String> {
        self.carriers[&addr(a)]
            .events
            .iter()
            .map(|e| match e {
                UaEvent::Incoming { to_user, .. } => format!("Incoming {to_user}"),
                UaEvent::Progress { code, .. } => format!("Progress {code}"),
                UaEvent::Answered { .. } => "Answered".into(),
                UaEvent::Failed { code, .. } => format!("Failed {code}"),
                UaEvent::Ended { .. } => "Ended".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }
}

#[test]
fn a_forwarded_did_is_placed_on_a_trunk_answered_relayed_and_recorded() {
    let mut w = forwarding(Does::Answer);
    // B is the number's carrier; A is also trunk "a", so the call goes out
    // on A first: make A refuse it so it fails over to B.
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    w.inbound_from_a();
    assert_eq!(
        w.events_of(B)[..2],
        [
            format!("Incoming {FORWARD_TO}"),
            "Confirmed { call: 1 }".to_string()
        ],
        "B answered and got our ACK"
    );
    assert_eq!(
        w.events_of(A),
        vec![format!("Incoming {FORWARD_TO}"), "Answered".to_string()],
        "A saw our INVITE to the number (refused 503), then its own call answered"
    );
    let relay = w
        .media
        .iter()
        .find_map(|m| match m {
            MediaOut::Relay { id, a, b } => Some((*id, *a, *b)),
            _ => None,
        })
        .expect("a relay");
    let remotes: Vec<(u8, u8)> = w
        .media
        .iter()
        .filter_map(|m| match m {
            MediaOut::RelayRemote { id, leg, pt, .. } if *id == relay.0 => Some((*leg, *pt)),
            _ => None,
        })
        .collect();
    assert_eq!(remotes, vec![(0, 0), (1, 0)], "both legs, PCMU");
    let r = w.last_record();
    assert_eq!(r.forwarded_to.as_deref(), Some(FORWARD_TO));
    assert_eq!((r.caller.as_str(), r.callee.as_str()), ("12025550199", DID));
    assert_eq!(r.trunk.as_deref(), Some("b"));
    assert!(r.connected_ms.is_some() && r.hangup_ms.is_none());
    assert!(w.dials.is_empty(), "no agent is involved");

    // B hangs up: A gets a BYE, the relay stops, both ports go back.
    let b_call = w.carriers[&addr(B)].invites[0];
    let now = w.now;
    w.carriers
        .get_mut(&addr(B))
        .unwrap()
        .ua
        .hang_up(b_call, now);
    w.step();
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Ended"));
    assert!(w.media.contains(&MediaOut::Unrelay { id: relay.0 }));
    assert!(w.released.contains(&relay.1) && w.released.contains(&relay.2));
    assert!(w.last_record().hangup_ms.is_some());
    assert_eq!(w.sb.forward_count(), 0);
}

#[test]
fn the_number_s_answer_reaches_the_caller_and_a_cancel_reaches_the_number() {
    let mut w = forwarding(Does::Refuse(486));
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    w.inbound_from_a();
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Failed 486")
    );
    assert_eq!(w.last_record().sip_code, Some(486));
    assert_eq!(w.sb.forward_count(), 0);

    let mut w = forwarding(Does::Ring);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    let a_call = w.inbound_from_a();
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Progress 180")
    );
    let now = w.now;
    w.carriers
        .get_mut(&addr(A))
        .unwrap()
        .ua
        .hang_up(a_call, now);
    w.step();
    assert_eq!(
        w.events_of(B).last().map(String::as_str),
        Some("Ended"),
        "the caller's CANCEL became ours toward the number"
    );
    assert_eq!(w.sb.forward_count(), 0);
}

#[test]
fn a_forwarded_call_whose_relay_goes_silent_is_ended_on_both_legs() {
    let mut w = forwarding(Does::Answer);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    w.inbound_from_a();
    let relay = w
        .media
        .iter()
        .find_map(|m| match m {
            MediaOut::Relay { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap();
    for _ in 0..10 {
        w.advance(Duration::from_secs(5));
        let now = w.now;
        w.sb.relay_alive(&[relay], now);
    }
    assert_eq!(w.sb.forward_count(), 1, "alive while RTP flows");
    w.advance(Duration::from_secs(31));
    assert_eq!(w.sb.forward_count(), 0);
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Ended"));
    assert_eq!(w.events_of(B).last().map(String::as_str), Some("Ended"));
}

impl World {
    /// What carrier `a`'s user agent told of re-offers: ("Reoffer" or
    /// "ReofferAnswered", the direction of its SDP), or ("ReofferFailed",
    /// code), in order.
    fn reoffers_of(&self, a: &str) -> Vec<(String, String)> {
        let dir = |sdp: &[u8]| {
            format!(
                "{:?}",
                AudioSdp::parse(&String::from_utf8_lossy(sdp))
                    .unwrap()
                    .direction
            )
        };
        self.carriers[&addr(a)]
            .events
            .iter()
            .filter_map(|e| match e {
                UaEvent::Reoffer { sdp, .. } => Some(("Reoffer".into(), dir(sdp))),
                UaEvent::ReofferAnswered { sdp, .. } => Some(("ReofferAnswered".into(), dir(sdp))),
                UaEvent::ReofferFailed { code, .. } => {
                    Some(("ReofferFailed".into(), code.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    /// The SDP carrier `a` got in its last event of the kind `pick` takes.
    fn sdp_seen_by(&self, a: &str, pick: fn(&UaEvent) -> Option<&Vec<u8>>) -> AudioSdp {
        let sdp = self.carriers[&addr(a)]
            .events
            .iter()
            .rev()
            .find_map(pick)
            .expect("an SDP");
        AudioSdp::parse(&String::from_utf8_lossy(sdp)).unwrap()
    }
}

#[test]
fn the_number_s_early_media_reaches_the_caller_before_the_answer_and_billing_waits_for_it() {
    let mut w = forwarding(Does::Early);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    w.inbound_from_a();
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Progress 183"),
        "the caller got a 183, not a 180"
    );
    let early = w.sdp_seen_by(A, |e| match e {
        UaEvent::Progress { sdp: Some(sdp), .. } => Some(sdp),
        _ => None,
    });
    assert_eq!(early.codecs, vec![Codec::Pcmu]);
    // The relay knows both ends before the answer: the caller hears the
    // number's ringback.
    let legs: Vec<u8> = w
        .media
        .iter()
        .filter_map(|m| match m {
            MediaOut::RelayRemote { leg, .. } => Some(*leg),
            _ => None,
        })
        .collect();
    assert_eq!(legs, vec![0, 1]);
    assert!(w.last_record().connected_ms.is_none(), "not answered yet");
    // No RTP timeout before the answer.
    w.advance(Duration::from_secs(40));
    assert_eq!(w.sb.forward_count(), 1);

    let b_call = w.carriers[&addr(B)].invites[0];
    let now = w.now;
    w.carriers
        .get_mut(&addr(B))
        .unwrap()
        .ua
        .respond(b_call, 200, Some(&carrier_sdp()), now);
    w.step();
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Answered"));
    let answer = w.sdp_seen_by(A, |e| match e {
        UaEvent::Answered { sdp, .. } => Some(sdp),
        _ => None,
    });
    assert_eq!(answer, early, "the 200 repeats the 183's SDP");
    let r = w.last_record();
    let connected = r.connected_ms.expect("answered") - r.start_ms;
    assert!(
        connected >= 40_000,
        "connected from the 200: {connected} ms"
    );
    // From the answer, silence counts.
    w.advance(Duration::from_secs(31));
    assert_eq!(w.sb.forward_count(), 0);
}

#[test]
fn a_hold_on_either_leg_is_passed_across_and_answered_once_the_other_leg_has() {
    let mut w = forwarding(Does::Answer);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    let a_call = w.inbound_from_a();
    let b_call = w.carriers[&addr(B)].invites[0];
    let reoffer = |w: &mut World, a: &str, call: CallRef, dir: SdpDirection, v: u64| {
        let now = w.now;
        let c = w.carriers.get_mut(&addr(a)).unwrap();
        c.ua.reoffer(call, &carrier_sdp_to(dir, v), now);
        w.step();
    };
    let answer = |w: &mut World, a: &str, call: CallRef, code: u16, dir: SdpDirection, v: u64| {
        let now = w.now;
        let sdp = carrier_sdp_to(dir, v);
        let c = w.carriers.get_mut(&addr(a)).unwrap();
        c.ua.respond_reoffer(call, code, (code == 200).then_some(&sdp[..]), now);
        w.step();
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());

    // The caller holds: the number is offered sendonly, and the caller's
    // re-offer waits for its answer.
    reoffer(&mut w, A, a_call, SdpDirection::SendOnly, 2);
    assert_eq!(w.reoffers_of(B), vec![pair("Reoffer", "SendOnly")]);
    assert!(w.reoffers_of(A).is_empty(), "not answered before B has");
    answer(&mut w, B, b_call, 200, SdpDirection::RecvOnly, 2);
    assert_eq!(w.reoffers_of(A), vec![pair("ReofferAnswered", "RecvOnly")]);
    // On hold, no RTP flows and the call stays.
    w.advance(Duration::from_secs(45));
    assert_eq!(
        w.sb.forward_count(),
        1,
        "a held call is not ended for silence"
    );

    // The number resumes (its own re-offer, sendrecv): passed to the caller.
    reoffer(&mut w, B, b_call, SdpDirection::SendRecv, 3);
    assert_eq!(w.reoffers_of(A)[1], pair("Reoffer", "SendRecv"));
    answer(&mut w, A, a_call, 200, SdpDirection::SendRecv, 3);
    assert_eq!(w.reoffers_of(B)[1], pair("ReofferAnswered", "SendRecv"));

    // A refusal on the far leg is the answer on the near one.
    reoffer(&mut w, A, a_call, SdpDirection::Inactive, 4);
    assert_eq!(w.reoffers_of(B)[2], pair("Reoffer", "Inactive"));
    answer(&mut w, B, b_call, 488, SdpDirection::SendRecv, 4);
    assert_eq!(w.reoffers_of(A)[2], pair("ReofferFailed", "488"));
    assert_eq!(w.sb.forward_count(), 1);

    // Not held: 31 s without RTP ends it.
    w.advance(Duration::from_secs(31));
    assert_eq!(w.sb.forward_count(), 0);
}

#[test]
fn a_leg_that_moves_its_media_in_a_re_offer_or_its_answer_is_followed_by_the_relay() {
    let mut w = forwarding(Does::Answer);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    let a_call = w.inbound_from_a();
    let b_call = w.carriers[&addr(B)].invites[0];
    let remotes = |w: &World| -> Vec<(u8, SocketAddr)> {
        w.media
            .iter()
            .filter_map(|m| match m {
                MediaOut::RelayRemote { leg, remote, .. } => Some((*leg, *remote)),
                _ => None,
            })
            .collect()
    };
    let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(remotes(&w), vec![(0, at(40_000)), (1, at(40_000))]);
    let exchange = |w: &mut World, from: &str, to: &str, offer: Vec<u8>, answer: Vec<u8>| {
        let (call, other) = if from == A {
            (a_call, b_call)
        } else {
            (b_call, a_call)
        };
        let now = w.now;
        w.carriers
            .get_mut(&addr(from))
            .unwrap()
            .ua
            .reoffer(call, &offer, now);
        w.step();
        let now = w.now;
        w.carriers
            .get_mut(&addr(to))
            .unwrap()
            .ua
            .respond_reoffer(other, 200, Some(&answer), now);
        w.step();
    };
    let recv = SdpDirection::SendRecv;
    // The caller moves its media in a re-offer, the number in its answer.
    exchange(
        &mut w,
        A,
        B,
        carrier_sdp_at("127.0.0.1", 40_100, recv, 2),
        carrier_sdp_at("127.0.0.1", 40_200, recv, 2),
    );
    assert_eq!(
        remotes(&w)[2..],
        [(0, at(40_100)), (1, at(40_200))],
        "the relay follows both legs"
    );
    // An old-style hold (c=0.0.0.0) and an answer from where it already
    // is move nothing.
    exchange(
        &mut w,
        A,
        B,
        carrier_sdp_at("0.0.0.0", 40_100, SdpDirection::SendOnly, 3),
        carrier_sdp_at("127.0.0.1", 40_200, SdpDirection::RecvOnly, 3),
    );
    assert_eq!(remotes(&w).len(), 4);
    // The number moves in its own re-offer.
    exchange(
        &mut w,
        B,
        A,
        carrier_sdp_at("127.0.0.1", 40_300, recv, 4),
        carrier_sdp_at("127.0.0.1", 40_100, recv, 4),
    );
    assert_eq!(remotes(&w)[4..], [(1, at(40_300))]);
    // Every one went to the call's relay, in its codec.
    assert!(w.media.iter().all(|m| match m {
        MediaOut::RelayRemote { pt, .. } => *pt == 0,
        _ => true,
    }));
}

#[test]
fn after_a_crash_the_next_start_closes_a_forwarded_call_and_byes_both_legs() {
    let mut w = forwarding(Does::Answer);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    w.inbound_from_a();
    let record = w.last_record().clone();
    assert!(record.connected_ms.is_some() && record.hangup_ms.is_none());
    let dialog = w.saved_dialog.clone();
    assert!(dialog.is_some(), "both legs' dialogs are kept");
    // The next run, the same carriers; the process before it died.
    let mut w2 = forwarding(Does::Answer);
    w2.carriers = std::mem::take(&mut w.carriers);
    w2.now = w.now + Duration::from_secs(3);
    let now = w2.now;
    w2.sb.recover(
        vec![OpenCall {
            tenant_id: 1,
            seat: None,
            record,
            dialog,
        }],
        now,
    );
    w2.step();
    assert_eq!(w2.events_of(A).last().map(String::as_str), Some("Ended"));
    assert_eq!(w2.events_of(B).last().map(String::as_str), Some("Ended"));
    let r = w2.last_record();
    assert!(r.hangup_ms.is_some());
    assert_eq!(r.forwarded_to.as_deref(), Some(FORWARD_TO));
}

// ---- a waiting caller overflowing to a number -----------------------------------

/// The group of [`overflowing`]: nobody of it signs in, so its callers wait.
const EMPTY_GROUP: &str = "G002";

/// A DID routed to [`EMPTY_GROUP`], whose callers wait 10 s and then go to
/// [`FORWARD_TO`]; carrier A calls, carrier B (trunk "a" refuses 503, so
/// the number goes out on "b") does `does_b`.
fn overflowing(does_b: Does) -> World {
    let mut w = forwarding(does_b);
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(503);
    w.route = Route::Group {
        tenant_id: 1,
        group_no: EMPTY_GROUP.into(),
        skill: None,
    };
    w.sb.set_group_routing(
        1,
        EMPTY_GROUP,
        GroupRouting {
            max_wait_secs: 10,
            overflow: Overflow::Number(FORWARD_TO.into()),
            ..GroupRouting::default()
        },
    );
    w
}

impl World {
    /// The waiting key of the one caller answered to wait.
    /// Ports given back since the call came in (the route's spare one
    /// aside).
    fn released_since(&self, base: usize) -> usize {
        self.released.len() - base
    }

    fn waiting_seat(&self) -> SeatId {
        self.media
            .iter()
            .find_map(|m| match m {
                MediaOut::Music { seat, on: true, .. } => Some(*seat),
                _ => None,
            })
            .expect("music for a waiting caller")
    }
}

#[test]
fn a_caller_whose_wait_runs_out_is_placed_to_the_number_and_relayed_on_the_same_record() {
    let mut w = overflowing(Does::Ring);
    w.inbound_from_a();
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Answered"));
    let waiting = w.waiting_seat();
    w.advance(Duration::from_secs(9));
    assert_eq!(w.invites(B), 0, "still waiting");
    w.advance(Duration::from_secs(1));
    assert_eq!(w.invites(B), 1, "the number rings after the maximum wait");
    let board = |w: &World| {
        w.sb.wallboard(1, w.now)
            .calls
            .iter()
            .map(|c| {
                (
                    c.state,
                    c.forwarded_to.clone(),
                    c.group.clone(),
                    c.number.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let forwarding = (
        "forwarding",
        Some(FORWARD_TO.to_string()),
        Some(EMPTY_GROUP.to_string()),
        "12025550199".to_string(),
    );
    assert_eq!(board(&w), vec![forwarding.clone()], "on the wallboard");
    let today = w.sb.wallboard(1, w.now).today;
    assert_eq!(
        (today.answered, today.abandoned, today.overflowed),
        (0, 0, 1),
        "counted as overflowed, neither answered nor abandoned"
    );
    assert_eq!(today.service_level_pct, Some(0.0), "not served in time");
    assert_eq!(
        w.events_of(B)[0],
        format!("Incoming {FORWARD_TO}"),
        "on trunk b, to the number"
    );
    // While the number rings, the caller hears the music still: no relay,
    // no second answer toward A.
    assert!(!w.media.iter().any(|m| matches!(m, MediaOut::Relay { .. })));
    assert!(!w.media.contains(&MediaOut::Unbridge { seat: waiting }));
    assert_eq!(
        w.events_of(A)
            .iter()
            .filter(|e| e.as_str() == "Answered")
            .count(),
        1
    );
    // B was offered exactly A's codec.
    let b_call = w.carriers[&addr(B)].invites[0];
    let now = w.now;
    w.carriers
        .get_mut(&addr(B))
        .unwrap()
        .ua
        .respond(b_call, 200, Some(&carrier_sdp()), now);
    w.step();
    let music_off = w
        .media
        .iter()
        .position(|m| *m == MediaOut::Unbridge { seat: waiting })
        .expect("the music stops when the number answers");
    let (relay, a_port, b_port) = w
        .media
        .iter()
        .find_map(|m| match m {
            MediaOut::Relay { id, a, b } => Some((*id, *a, *b)),
            _ => None,
        })
        .expect("a relay once the number answered");
    let relay_at = w
        .media
        .iter()
        .position(|m| matches!(m, MediaOut::Relay { .. }))
        .unwrap();
    assert!(
        music_off < relay_at,
        "the waiting bridge lets go of A's socket first"
    );
    assert_eq!(waiting_key(a_port), waiting, "A keeps its RTP port");
    assert_ne!(a_port, b_port);
    let remotes: Vec<(u8, u8)> = w
        .media
        .iter()
        .filter_map(|m| match m {
            MediaOut::RelayRemote { id, leg, pt, .. } if *id == relay => Some((*leg, *pt)),
            _ => None,
        })
        .collect();
    assert_eq!(remotes, vec![(0, 0), (1, 0)], "both legs, PCMU");
    let r = w.last_record();
    let call_id = r.call_id.clone();
    assert!(
        w.saved.iter().all(|s| s.call_id == call_id),
        "one record: the caller's"
    );
    assert_eq!(r.forwarded_to.as_deref(), Some(FORWARD_TO));
    assert_eq!(r.trunk.as_deref(), Some("b"));
    assert!(r.connected_ms.is_some() && r.hangup_ms.is_none());
    assert_eq!(w.sb.forward_count(), 1);
    assert_eq!(
        board(&w),
        vec![("connected", forwarding.1, forwarding.2, forwarding.3)]
    );

    // The caller hangs up: B gets a BYE, the relay stops, both ports go back.
    let a_call = w.carriers[&addr(A)].events.iter().find_map(|e| match e {
        UaEvent::Answered { call, .. } => Some(*call),
        _ => None,
    });
    let now = w.now;
    w.carriers
        .get_mut(&addr(A))
        .unwrap()
        .ua
        .hang_up(a_call.unwrap(), now);
    w.step();
    assert_eq!(w.events_of(B).last().map(String::as_str), Some("Ended"));
    assert!(w.media.contains(&MediaOut::Unrelay { id: relay }));
    assert!(w.released.contains(&a_port) && w.released.contains(&b_port));
    let r = w.last_record();
    assert_eq!(r.call_id, call_id);
    assert!(r.hangup_ms.is_some());
    assert_eq!(w.sb.forward_count(), 0);
    assert!(board(&w).is_empty(), "gone from the wallboard");
}

#[test]
fn a_busy_number_ends_the_overflowed_caller_with_a_bye_and_a_hang_up_cancels_the_number() {
    let mut w = overflowing(Does::Refuse(486));
    w.inbound_from_a();
    let base = w.released.len();
    let waiting = w.waiting_seat();
    w.advance(Duration::from_secs(10));
    assert_eq!(w.invites(B), 1);
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Ended"),
        "answered already: a BYE, not a 486"
    );
    let r = w.last_record();
    assert_eq!(r.sip_code, Some(486));
    assert!(r.hangup_ms.is_some() && r.forwarded_to.is_some());
    assert!(w.media.contains(&MediaOut::Unbridge { seat: waiting }));
    assert_eq!(w.released_since(base), 2, "A's port and B's");
    assert_eq!(w.sb.forward_count(), 0);

    // The caller hangs up while the number rings: the number is cancelled.
    let mut w = overflowing(Does::Ring);
    let a_call = w.inbound_from_a();
    let base = w.released.len();
    let waiting = w.waiting_seat();
    w.advance(Duration::from_secs(10));
    let now = w.now;
    w.carriers
        .get_mut(&addr(A))
        .unwrap()
        .ua
        .hang_up(a_call, now);
    w.step();
    assert_eq!(w.events_of(B).last().map(String::as_str), Some("Ended"));
    assert!(w.media.contains(&MediaOut::Unbridge { seat: waiting }));
    assert!(!w.media.iter().any(|m| matches!(m, MediaOut::Relay { .. })));
    assert_eq!(w.released_since(base), 2);
    assert!(w.last_record().hangup_ms.is_some());
}

#[test]
fn an_overflow_with_no_port_no_trunk_or_a_hung_up_caller_places_nothing_and_loses_nothing() {
    // No port: the call ends as a wait that ran out does.
    let mut w = overflowing(Does::Answer);
    w.no_ports = true;
    w.inbound_from_a();
    let base = w.released.len();
    w.advance(Duration::from_secs(10));
    assert_eq!(w.invites(B), 0);
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Ended"));
    let r = w.last_record();
    assert!(r.hangup_ms.is_some() && r.forwarded_to.is_none());
    assert_eq!(w.released_since(base), 1, "A's port");

    // No trunk: the same, and the port bound for B goes back.
    let mut w = overflowing(Does::Answer);
    w.inbound_from_a();
    let base = w.released.len();
    // The admin removes every trunk while the caller waits.
    w.sb.set_trunks(Vec::new(), w.now);
    w.advance(Duration::from_secs(10));
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Ended"));
    assert_eq!(
        w.released_since(base),
        2,
        "A's port and the one bound for B"
    );

    // A port for a call that is gone (hung up, or a forged answer) is
    // given back, and changes nothing.
    let mut w = overflowing(Does::Answer);
    w.inbound_from_a();
    let now = w.now;
    w.sb.rtp_bound(424_242, Some(31_000), now);
    w.step();
    assert!(w.released.contains(&31_000));
    assert_eq!(w.invites(B), 0);
    assert_eq!(w.sb.forward_count(), 0);
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Answered"));
}

#[test]
fn rejected_and_unknown_dids_are_refused_with_their_codes_and_counted() {
    let mut w = forwarding(Does::Answer);
    w.route = Route::Reject { code: 603 };
    w.inbound_from_a();
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Failed 603")
    );
    w.route = Route::Unknown;
    w.inbound_from_a();
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Failed 404")
    );
    assert_eq!(w.sb.unknown_dids(), 1);
    assert_eq!(w.released.len(), 4, "no port kept for a refused call");
}

#[test]
fn each_trunk_gets_the_numbers_written_its_way_and_the_record_keeps_e164() {
    use seatline_calls::numbers::{CallerFormat, NumberRules};
    let mut a = trunk("a", A, None);
    a.numbers = NumberRules {
        strip: "1".into(),
        prefix: String::new(),
        caller: CallerFormat::National,
        ..NumberRules::default()
    };
    let mut b = trunk("b", B, None);
    b.numbers = NumberRules {
        strip: String::new(),
        prefix: "00".into(),
        caller: CallerFormat::Plus,
        ..NumberRules::default()
    };
    let mut w = World::new(vec![a, b], &[(A, Does::Refuse(503)), (B, Does::Answer)]);
    w.call_out();
    let users = |w: &World, at: &str| -> Vec<(String, String)> {
        w.carriers[&addr(at)]
            .events
            .iter()
            .filter_map(|e| match e {
                UaEvent::Incoming {
                    from_user, to_user, ..
                } => Some((from_user.clone(), to_user.clone())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        users(&w, A),
        vec![("2025550170".into(), "2025550100".into())]
    );
    assert_eq!(
        users(&w, B),
        vec![("+12025550170".into(), "0012025550100".into())]
    );
    let r = w.last_record();
    assert_eq!(
        (r.caller.as_str(), r.callee.as_str()),
        ("12025550170", "12025550100")
    );
}

// ---- trunks changed at run time ------------------------------------------------

const C: &str = "127.0.0.1:5083";

fn setup(t: Trunk) -> TrunkSetup {
    TrunkSetup {
        trusted: vec![TrustedSource::Addr(t.peer)],
        registration: t
            .register
            .then(|| ("trunk1".into(), "carrier.test".into(), 60)),
        trunk: t,
        transport: seatline_sip::Transport::Udp,
        credentials: None,
    }
}

#[test]
fn the_number_a_carrier_calls_is_made_a_did_by_the_rules_of_the_trunk_it_came_on() {
    use seatline_calls::numbers::NumberRules;
    let mut w = World::new(vec![], &[(A, Does::Answer), (B, Does::Answer)]);
    // Carrier A sends US numbers national; carrier B sends them whole.
    let mut a = trunk("a", A, None);
    a.numbers = NumberRules {
        did_prefix: "1".into(),
        ..NumberRules::default()
    };
    let now = w.now;
    w.sb.set_trunks(vec![setup(a), setup(trunk("b", B, None))], now);
    w.route = Route::Reject { code: 486 };
    for (from, called) in [(A, "2025550171"), (B, "+12025550172"), (A, "+2025550173")] {
        let now = w.now;
        let c = w.carriers.get_mut(&addr(from)).unwrap();
        c.ua.invite("14155550100", called, addr(SB), &carrier_sdp(), &[], now);
        w.step();
    }
    assert_eq!(
        w.routed,
        vec!["12025550171", "12025550172", "12025550173"],
        "A's national numbers get the 1; B's are taken as they come"
    );
    // What is no number after the rules is refused 404, and routed nowhere.
    let now = w.now;
    let c = w.carriers.get_mut(&addr(A)).unwrap();
    let call =
        c.ua.invite("14155550100", "sales", addr(SB), &carrier_sdp(), &[], now);
    w.step();
    assert_eq!(w.routed.len(), 3);
    assert!(w.carriers[&addr(A)]
        .events
        .iter()
        .any(|e| matches!(e, UaEvent::Failed { call: c, code: 404, .. } if *c == call)));
}

fn owned(t: Trunk, tenant_id: i64) -> Trunk {
    Trunk {
        tenant_id: Some(tenant_id),
        ..t
    }
}

impl World {
    /// Signs in seat 2, of tenant 2.
    fn second_tenant(&mut self) {
        let spec = SeatSpec {
            id: 2,
            tenant_id: 2,
            group_no: "G001".into(),
            cfg: AgentConfig {
                initial_status: Status::Idle,
                acw: Some(Duration::from_secs(0)),
            },
            remembered: None,
            skills: Vec::new(),
        };
        self.sb.sign_in(&spec, true, self.now);
        self.sb.tab_opened(&spec, 2, self.now);
        self.step();
    }

    fn call_out_as(&mut self, seat: SeatId) {
        let policy = PolicyFacts {
            balance_cents: 1_000,
            ..Default::default()
        };
        self.place(seat, "12025550100", policy);
    }

    fn set_trunks(&mut self, trunks: Vec<TrunkSetup>) {
        self.sb.set_trunks(trunks, self.now);
        self.step();
    }

    /// The REGISTERs carrier `a` was sent, by their Expires.
    fn registers(&self, a: &str) -> Vec<String> {
        self.carriers[&addr(a)].registers.clone()
    }
}

#[test]
fn a_tenant_s_own_trunks_carry_its_calls_and_the_shared_ones_every_other_tenant_s() {
    let mut w = World::new(
        vec![trunk("shared", A, None)],
        &[(A, Does::Answer), (B, Does::Answer)],
    );
    w.second_tenant();
    w.set_trunks(vec![
        setup(trunk("shared", A, None)),
        setup(owned(trunk("own", B, None), 1)),
    ]);
    w.call_out_as(1);
    assert_eq!((w.invites(A), w.invites(B)), (0, 1), "tenant 1: its own");
    assert_eq!(w.last_record().trunk.as_deref(), Some("own"));
    w.call_out_as(2);
    assert_eq!((w.invites(A), w.invites(B)), (1, 1), "tenant 2: the shared");
    assert_eq!(w.last_record().trunk.as_deref(), Some("shared"));
    assert_eq!(
        w.sb.trunk_peers(),
        vec![
            ("shared".into(), None, addr(A)),
            ("own".into(), Some(1), addr(B))
        ]
    );
}

#[test]
fn trunks_changed_while_a_call_rings_leave_it_its_failover_to_the_trunk_after_its_own() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Ring), (B, Does::Answer), (C, Does::Answer)],
    );
    w.call_out();
    assert_eq!(w.invites(A), 1);
    // An admin puts a new trunk first; "a" and "b" stay as they were.
    w.set_trunks(vec![
        setup(trunk("c", C, None)),
        setup(trunk("a", A, None)),
        setup(trunk("b", B, None)),
    ]);
    let now = w.now;
    let c = w.carriers.get_mut(&addr(A)).unwrap();
    let call = c.invites[0];
    c.ua.respond(call, 503, None, now);
    w.step();
    assert_eq!((w.invites(B), w.invites(C)), (1, 0), "after a: b, not c");
    assert_eq!(w.dials, vec![0, 2], "still one call");
    assert_eq!(w.last_record().trunk.as_deref(), Some("b"));
}

#[test]
fn a_trunk_removed_while_its_call_rings_is_not_failed_over_from() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Ring), (B, Does::Answer)],
    );
    w.call_out();
    w.set_trunks(vec![setup(trunk("b", B, None))]);
    let now = w.now;
    let c = w.carriers.get_mut(&addr(A)).unwrap();
    let call = c.invites[0];
    c.ua.respond(call, 503, None, now);
    w.step();
    assert_eq!(w.invites(B), 0, "its trunk is gone: no place in the list");
    assert_eq!(w.dials, vec![0, 800, 5]);
    w.advance(Duration::from_secs(1));
    w.call_out();
    assert_eq!(w.invites(B), 1, "new calls take the new list");
}

#[test]
fn a_trunk_added_at_run_time_registers_and_removed_unregisters_and_is_no_longer_trusted() {
    let mut w = World::new(vec![], &[(A, Does::Answer), (B, Does::Answer)]);
    w.carriers.get_mut(&addr(A)).unwrap().registrar = true;
    w.route = Route::Unknown;
    w.call_out();
    assert_eq!(w.dials, vec![800, 5], "no trunk at all: 800");
    // ... which leaves the agent free to dial again at once.
    w.set_trunks(vec![setup(registering("a", A))]);
    assert_eq!(w.registers(A), vec!["60"]);
    assert_eq!(w.sb.trunk_health(), vec![("a".into(), true)]);
    w.dials.clear();
    w.call_out();
    assert_eq!((w.invites(A), w.dials.clone()), (1, vec![0, 2]));
    w.sb.hang_up(1, w.now);
    w.advance(Duration::from_secs(1));
    // A request from A is taken (and refused 404: no such DID).
    w.inbound_from_a();
    assert!(w.events_of(A).iter().any(|e| e == "Failed 404"));
    w.carriers.get_mut(&addr(A)).unwrap().events.clear();

    w.set_trunks(vec![setup(trunk("b", B, None))]);
    assert_eq!(w.registers(A), vec!["60", "0"], "taken back at once");
    w.inbound_from_a();
    w.advance(Duration::from_secs(1));
    assert!(
        !w.events_of(A).iter().any(|e| e.starts_with("Failed")),
        "A is no longer trusted: its INVITE is dropped, not answered"
    );
    w.advance(Duration::from_secs(1));
    w.dials.clear();
    w.call_out();
    assert_eq!((w.invites(A), w.invites(B)), (1, 1));
}

#[test]
fn a_tenant_s_own_trunk_reaches_only_that_tenant_s_numbers() {
    let mut w = World::new(vec![], &[(A, Does::Answer), (B, Does::Answer)]);
    w.route = Route::Reject { code: 486 };
    // A is tenant 2's trunk, B is shared; the DID is tenant 1's.
    w.set_trunks(vec![
        setup(owned(trunk("t2", A, None), 2)),
        setup(trunk("shared", B, None)),
    ]);
    let did_of = |tenant_id| Route::Forward {
        tenant_id,
        number: FORWARD_TO.into(),
    };
    w.route = did_of(1);
    w.inbound_from_a();
    assert!(
        w.events_of(A).iter().any(|e| e == "Failed 404"),
        "{:?}",
        w.events_of(A)
    );
    assert_eq!(w.invites(B), 0, "not forwarded");
    assert_eq!(w.sb.unknown_dids(), 1);
    w.carriers.get_mut(&addr(A)).unwrap().events.clear();
    w.route = did_of(2);
    w.inbound_from_a();
    assert_eq!(
        (w.invites(A), w.invites(B)),
        (1, 0),
        "its own tenant's DID: forwarded, on the tenant's own trunk"
    );
}

#[test]
fn the_record_says_who_ended_the_call() {
    use seatline_calls::record::HungUpBy;
    let who = |does: Does, agent_hangs_up: bool| {
        let mut w = World::new(vec![trunk("a", A, None)], &[(A, does)]);
        w.call_out();
        if agent_hangs_up {
            w.sb.hang_up(1, w.now);
            w.step();
        }
        w.last_record().hung_up_by
    };
    assert_eq!(who(Does::Answer, true), Some(HungUpBy::Agent));
    assert_eq!(
        who(Does::Ring, true),
        Some(HungUpBy::Agent),
        "cancelled: 487"
    );
    assert_eq!(who(Does::Refuse(486), false), Some(HungUpBy::Customer));
    assert_eq!(who(Does::Refuse(503), false), Some(HungUpBy::Carrier));
    // The far end hangs up an answered call.
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    w.call_out();
    let now = w.now;
    let c = w.carriers.get_mut(&addr(A)).unwrap();
    let call = c.invites[0];
    c.ua.hang_up(call, now);
    w.step();
    assert_eq!(w.last_record().hung_up_by, Some(HungUpBy::Customer));
    // No trunk up: Seatline refused it.
    let mut w = World::new(vec![], &[]);
    w.call_out();
    assert_eq!(w.last_record().hung_up_by, Some(HungUpBy::System));
}

// ---- billing ----------------------------------------------------------------------

fn per_minute(cents: i64) -> Rate {
    Rate {
        prefix: "1".into(),
        millicents_per_minute: cents * 1000,
        first_secs: 60,
        next_secs: 60,
    }
}

impl World {
    /// Time passes on a connected call whose carrier keeps sending RTP.
    fn talk(&mut self, seat: SeatId, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.sb.rtp_alive(&[seat], self.now);
            self.advance(Duration::from_secs(5).min(until - self.now));
        }
    }
}

#[test]
fn a_balance_that_covers_ten_calls_places_ten_of_a_hundred_at_once() {
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Ring)]);
    for seat in 2..=100 {
        let spec = SeatSpec {
            id: seat,
            tenant_id: 1,
            group_no: "G001".into(),
            cfg: AgentConfig {
                initial_status: Status::Idle,
                acw: Some(Duration::from_secs(0)),
            },
            remembered: None,
            skills: Vec::new(),
        };
        w.sb.sign_in(&spec, true, w.now);
        w.sb.tab_opened(&spec, seat as u64, w.now);
    }
    w.step();
    w.sb.set_rates(1, vec![per_minute(1)]);
    w.sb.set_balance(1, 10); // ten first minutes at 1 cent
    w.dials.clear();
    for seat in 1..=100 {
        w.call_out_as(seat);
    }
    assert_eq!(w.invites(A), 10, "ten placed");
    assert_eq!(w.dials.iter().filter(|&&c| c == 810).count(), 90);
    assert_eq!(
        w.sb.balance_cents(1),
        Some(0),
        "each holds its first minute"
    );
}

#[test]
fn an_answered_call_takes_a_block_each_minute_and_is_cut_with_810_when_the_balance_is_spent() {
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    w.sb.set_rates(1, vec![per_minute(1)]);
    w.sb.set_balance(1, 2);
    w.step();
    assert_eq!(w.balances, vec![(1, 2)], "an admin's balance is stored too");
    w.balances.clear();
    w.call_out();
    assert_eq!(w.dials, vec![0, 2]);
    assert_eq!(w.sb.balance_cents(1), Some(1), "the first minute is taken");
    w.talk(1, Duration::from_secs(61));
    assert_eq!(w.balances, vec![(1, 0)], "the second minute, stored");
    assert_eq!(w.dials, vec![0, 2], "still talking");
    w.talk(1, Duration::from_secs(60));
    assert_eq!(w.dials, vec![0, 2, 810, 5], "cut: the balance is spent");
    assert!(
        w.carriers[&addr(A)]
            .events
            .iter()
            .any(|e| matches!(e, UaEvent::Ended { remote: true, .. })),
        "a BYE to the carrier"
    );
    let r = w.last_record();
    assert_eq!((r.billed_secs, r.cost_millicents), (Some(120), Some(2_000)));
    assert_eq!(r.hangup_code, Some(810));
    assert_eq!(w.balances.last(), Some(&(1, 0)));
}

#[test]
fn an_unanswered_call_gives_its_first_block_back_and_unrated_calls_are_free() {
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Refuse(486))]);
    w.sb.set_rates(1, vec![per_minute(1)]);
    w.sb.set_balance(1, 1);
    w.call_out();
    assert_eq!(w.dials, vec![0, 5]);
    assert_eq!(w.sb.balance_cents(1), Some(1), "given back");
    assert_eq!(w.last_record().billed_secs, None);
    // A destination without a rate costs nothing (the balance must only be
    // above zero).
    w.sb.set_rates(
        1,
        vec![Rate {
            prefix: "44".into(),
            ..per_minute(5)
        }],
    );
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Answer;
    w.dials.clear();
    w.call_out();
    w.talk(1, Duration::from_secs(90));
    w.sb.hang_up(1, w.now);
    w.step();
    assert_eq!(w.dials, vec![0, 2, 5]);
    assert_eq!(w.sb.balance_cents(1), Some(1));
    assert_eq!(w.last_record().cost_millicents, None);
}

#[test]
fn an_agent_may_call_one_number_five_times_a_minute_every_attempt_counted() {
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Refuse(486))]);
    let attempt = |w: &mut World, callee: &str| {
        let policy = PolicyFacts {
            balance_cents: 1_000,
            max_calls_per_callee_per_minute: 5,
            ..Default::default()
        };
        w.place(1, callee, policy);
    };
    for _ in 0..5 {
        attempt(&mut w, "12025550100");
        w.advance(Duration::from_secs(5));
    }
    assert_eq!(w.invites(A), 5, "busy every time: each attempt counts");
    w.dials.clear();
    attempt(&mut w, "12025550100");
    assert_eq!(w.dials, vec![815, 5], "the sixth within the minute");
    attempt(&mut w, "12025550101");
    assert_eq!(w.invites(A), 6, "another number is not limited");
    // A minute after the first attempt, one more may go.
    w.advance(Duration::from_secs(36));
    attempt(&mut w, "12025550100");
    assert_eq!(w.invites(A), 7);
}

fn sdes(name: &str, peer: &str) -> Trunk {
    Trunk {
        srtp: Srtp::Sdes,
        ..trunk(name, peer, None)
    }
}

impl World {
    /// The SDP of the `i`-th INVITE carrier `a` got.
    fn offer_to(&self, a: &str, i: usize) -> AudioSdp {
        let sdp = self.carriers[&addr(a)]
            .events
            .iter()
            .filter_map(|e| match e {
                UaEvent::Incoming { sdp, .. } => Some(sdp),
                _ => None,
            })
            .nth(i)
            .expect("an INVITE");
        AudioSdp::parse(&String::from_utf8_lossy(sdp)).unwrap()
    }

    fn remote_keys(&self) -> Vec<Option<SrtpKeys>> {
        self.media
            .iter()
            .filter_map(|m| match m {
                MediaOut::Remote { srtp, .. } => Some(srtp.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn an_sdes_trunk_is_offered_srtp_and_both_keys_reach_the_media_plane() {
    let mut w = World::new(vec![sdes("a", A)], &[(A, Does::AnswerSdes)]);
    w.call_out();
    let offer = w.offer_to(A, 0);
    assert_eq!(offer.profile, Profile::Savp);
    let [ours] = offer.crypto.as_slice() else {
        panic!("one crypto line: {offer:?}");
    };
    assert_eq!((ours.tag, ours.suite), (1, Suite::AesCm128HmacSha1_80));
    assert_ne!(ours.key.0, [0; 30]);
    assert_eq!(w.dials, vec![0, 2]);
    assert_eq!(
        w.remote_keys(),
        vec![Some(SrtpKeys {
            suite: Suite::AesCm128HmacSha1_80,
            send: ours.key.clone(),
            recv: MasterKey(CARRIER_KEY),
        })]
    );
    // A plain trunk is offered plain RTP, and its media has no keys.
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    w.call_out();
    assert_eq!(w.offer_to(A, 0).profile, Profile::Avp);
    assert_eq!(w.remote_keys(), vec![None]);
}

#[test]
fn a_plain_answer_to_an_sdes_offer_ends_the_call_as_a_carrier_failure() {
    let mut w = World::new(vec![sdes("a", A)], &[(A, Does::Answer)]);
    w.call_out();
    assert_eq!(w.dials, vec![0, 800, 5]);
    assert_eq!(w.last_record().hangup_code, Some(800));
    assert_eq!(w.sb.call_count(), 0);
    assert!(w.remote_keys().is_empty(), "no media toward it");
    assert!(
        w.carriers[&addr(A)]
            .events
            .iter()
            .any(|e| matches!(e, UaEvent::Ended { remote: true, .. })),
        "the carrier's leg got a BYE"
    );
    // An SDES answer naming a tag we never offered is no better.
    let mut w = World::new(vec![sdes("a", A)], &[(A, Does::Ring)]);
    w.call_out();
    let call = w.carriers[&addr(A)].invites[0];
    let now = w.now;
    let c = w.carriers.get_mut(&addr(A)).unwrap();
    c.ua.respond(
        call,
        200,
        Some(&sdes_sdp(2, Suite::AesCm128HmacSha1_80)),
        now,
    );
    w.step();
    assert_eq!(w.dials, vec![0, 800, 5]);
}

#[test]
fn failover_offers_each_trunk_its_own_security_and_a_fresh_key() {
    let mut w = World::new(
        vec![sdes("a", A), sdes("b", B)],
        &[(A, Does::Refuse(503)), (B, Does::AnswerSdes)],
    );
    w.call_out();
    let (first, second) = (w.offer_to(A, 0), w.offer_to(B, 0));
    assert_ne!(first.crypto[0].key, second.crypto[0].key, "a key per leg");
    assert_eq!(w.dials, vec![0, 2]);
    assert_eq!(
        w.remote_keys()[0].as_ref().map(|k| &k.send),
        Some(&second.crypto[0].key)
    );

    let mut w = World::new(
        vec![sdes("a", A), trunk("b", B, None)],
        &[(A, Does::Refuse(503)), (B, Does::Answer)],
    );
    w.call_out();
    assert_eq!(w.offer_to(A, 0).profile, Profile::Savp);
    let plain = w.offer_to(B, 0);
    assert_eq!((plain.profile, plain.crypto.len()), (Profile::Avp, 0));
    assert_eq!(w.dials, vec![0, 2]);
}

impl World {
    /// Carrier A calls our DID with `sdp`, routed to the agents' group.
    fn inbound_with(&mut self, sdp: &[u8]) -> CallRef {
        self.route = Route::Group {
            tenant_id: 1,
            group_no: "G001".into(),
            skill: None,
        };
        let now = self.now;
        let c = self.carriers.get_mut(&addr(A)).unwrap();
        let call = c.ua.invite("12025550199", DID, addr(SB), sdp, &[], now);
        self.step();
        call
    }
}

#[test]
fn an_sdes_offer_from_a_carrier_is_answered_with_our_own_key() {
    // Whatever the trunk's setting: SDES offered is SDES answered. The
    // carrier prefers the 32-bit tag.
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Ring)]);
    w.inbound_with(&sdes_sdp(5, Suite::AesCm128HmacSha1_32));
    assert_eq!(w.dials, vec![1], "ringing at the agent");
    w.sb.answer(1, true, w.now);
    w.step();
    let answer = w.carriers[&addr(A)]
        .events
        .iter()
        .find_map(|e| match e {
            UaEvent::Answered { sdp, .. } => Some(sdp.clone()),
            _ => None,
        })
        .expect("answered");
    let answer = AudioSdp::parse(&String::from_utf8_lossy(&answer)).unwrap();
    assert_eq!(answer.profile, Profile::Savp);
    let [ours] = answer.crypto.as_slice() else {
        panic!("one crypto line: {answer:?}");
    };
    assert_eq!((ours.tag, ours.suite), (5, Suite::AesCm128HmacSha1_32));
    assert_ne!(ours.key.0, CARRIER_KEY, "our own key, not an echo");
    assert_eq!(
        w.remote_keys(),
        vec![Some(SrtpKeys {
            suite: Suite::AesCm128HmacSha1_32,
            send: ours.key.clone(),
            recv: MasterKey(CARRIER_KEY),
        })]
    );
}

#[test]
fn an_sdes_trunk_refuses_plain_rtp_and_offers_it_cannot_key() {
    for sdp in [
        carrier_sdp(),
        // SAVP, but only a suite we do not speak.
        String::from_utf8(sdes_sdp(1, Suite::AesCm128HmacSha1_80))
            .unwrap()
            .replace("AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80")
            .into_bytes(),
        // A malformed key.
        String::from_utf8(sdes_sdp(1, Suite::AesCm128HmacSha1_80))
            .unwrap()
            .replace("inline:", "inline:!!")
            .into_bytes(),
    ] {
        let mut w = World::new(vec![sdes("a", A)], &[(A, Does::Ring)]);
        w.inbound_with(&sdp);
        assert_eq!(
            w.events_of(A).last().map(String::as_str),
            Some("Failed 488"),
            "{}",
            String::from_utf8_lossy(&sdp)
        );
        assert!(w.dials.is_empty(), "no agent rings");
        assert_eq!(w.sb.call_count(), 0);
    }
}

// ---- what the metrics count ------------------------------------------------------

fn by_direction(b: &ByDirection) -> [u64; 3] {
    CallDirection::ALL.map(|d| b.get(d))
}

fn agents_shown(s: &Stats) -> Vec<(Status, u64)> {
    s.agents.iter().copied().filter(|(_, n)| *n > 0).collect()
}

#[test]
fn metrics_count_a_call_placed_answered_and_ended_in_each_direction() {
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    let s = w.sb.stats();
    assert_eq!(by_direction(&s.started), [0, 0, 0]);
    assert_eq!(by_direction(&s.in_progress), [0, 0, 0]);
    assert_eq!(s.agents.len(), 7, "every status, zeros included");
    assert_eq!(agents_shown(&s), vec![(Status::Idle, 1)]);

    // Outbound: placed and answered, then hung up.
    w.call_out();
    let s = w.sb.stats();
    assert_eq!(by_direction(&s.started), [1, 0, 0]);
    assert_eq!(by_direction(&s.in_progress), [1, 0, 0]);
    assert_eq!(s.responses, vec![("a".to_string(), 200, 1)]);
    assert_eq!(agents_shown(&s), vec![(Status::Busy, 1)], "in a call");
    w.sb.hang_up(1, w.now);
    w.step();
    let s = w.sb.stats();
    assert_eq!(by_direction(&s.in_progress), [0, 0, 0]);
    assert_eq!(by_direction(&s.started), [1, 0, 0], "a counter stays");
    assert_eq!(agents_shown(&s), vec![(Status::Idle, 1)]);

    // Inbound, rung at the agent: a call in progress from the routing on.
    w.route = Route::Group {
        tenant_id: 1,
        group_no: "G001".into(),
        skill: None,
    };
    let a_call = w.inbound_from_a();
    let s = w.sb.stats();
    assert_eq!(by_direction(&s.started), [1, 1, 0]);
    assert_eq!(by_direction(&s.in_progress), [0, 1, 0]);
    w.sb.answer(1, true, w.now);
    w.step();
    assert_eq!(by_direction(&w.sb.stats().in_progress), [0, 1, 0]);
    let now = w.now;
    w.carriers
        .get_mut(&addr(A))
        .unwrap()
        .ua
        .hang_up(a_call, now);
    w.step();
    let s = w.sb.stats();
    assert_eq!(by_direction(&s.in_progress), [0, 0, 0]);
    assert_eq!(
        s.responses,
        vec![("a".to_string(), 200, 1)],
        "our answers to the carrier are not its responses"
    );

    // Forwarded: placed on the trunk and answered there.
    w.route = Route::Forward {
        tenant_id: 1,
        number: FORWARD_TO.into(),
    };
    w.inbound_from_a();
    let s = w.sb.stats();
    assert_eq!(by_direction(&s.started), [1, 1, 1]);
    assert_eq!(by_direction(&s.in_progress), [0, 0, 1]);
    assert_eq!(s.responses, vec![("a".to_string(), 200, 2)]);
    w.sb.shutdown(w.now);
    w.step();
    assert_eq!(by_direction(&w.sb.stats().in_progress), [0, 0, 0]);
}

#[test]
fn metrics_count_a_503_and_a_timeout_under_the_trunk_that_gave_them() {
    let mut w = World::new(
        vec![trunk("a", A, None), trunk("b", B, None)],
        &[(A, Does::Refuse(503)), (B, Does::Answer)],
    );
    w.call_out();
    assert_eq!(
        w.sb.stats().responses,
        vec![("a".to_string(), 503, 1), ("b".to_string(), 200, 1)]
    );
    w.sb.hang_up(1, w.now);
    w.step();
    // A refused callOut places nothing: counted as refused, no response.
    w.sb.call_out(
        1,
        CallOut {
            caller: String::new(),
            callee: "12".into(),
            country_code: String::new(),
            order_id: String::new(),
            params: String::new(),
        },
        true,
        Ok(CallOutFacts::default()),
        None,
        w.now,
    );
    w.step();
    let s = w.sb.stats();
    assert_eq!(s.refused_call_outs, 1);
    assert_eq!(by_direction(&s.started), [1, 0, 0]);
    assert_eq!(s.responses.len(), 2);

    // A trunk that never answers: 408, the stack's own timeout, under its name.
    w.carriers.get_mut(&addr(A)).unwrap().deaf = true;
    w.call_out();
    w.advance(Duration::from_secs(33));
    assert_eq!(
        w.sb.stats().responses,
        vec![
            ("a".to_string(), 408, 1),
            ("a".to_string(), 503, 1),
            ("b".to_string(), 200, 2)
        ]
    );
}

#[test]
fn metrics_show_a_trunk_going_down_and_back_and_its_registration() {
    let mut w = World::new(
        vec![trunk("a", A, Some(10)), registering("b", B)],
        &[(A, Does::Answer), (B, Does::Answer)],
    );
    w.advance(Duration::from_secs(1));
    let state = |w: &World| -> Vec<(String, bool, Option<bool>)> {
        w.sb.stats()
            .trunks
            .into_iter()
            .map(|t| (t.name, t.up, t.registered))
            .collect()
    };
    assert_eq!(
        state(&w),
        vec![("a".into(), true, None), ("b".into(), true, Some(false)),],
        "b refused the REGISTER: up (no keepalive) but not registered"
    );
    w.carriers.get_mut(&addr(A)).unwrap().deaf = true;
    w.carriers.get_mut(&addr(B)).unwrap().registrar = true;
    w.advance(Duration::from_secs(20));
    assert_eq!(
        state(&w),
        vec![("a".into(), false, None), ("b".into(), true, Some(true))]
    );
    w.carriers.get_mut(&addr(A)).unwrap().deaf = false;
    w.advance(Duration::from_secs(45));
    assert_eq!(state(&w)[0], ("a".into(), true, None));
}

#[test]
fn forged_and_malformed_sip_counts_nothing_but_the_drop() {
    let mut w = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    w.call_out();
    let before = w.sb.stats();
    // A 503 and a call from a host that is no trunk, and junk.
    let forged = "SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let now = w.now;
    w.sb.handle_datagram(forged.as_bytes(), addr("127.0.0.1:5999"), now);
    let invite = "INVITE sip:12025550170@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKy\r\nFrom: <sip:1@x>;tag=1\r\nTo: <sip:12025550170@y>\r\nCall-ID: y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    w.sb.handle_datagram(invite.as_bytes(), addr("127.0.0.1:5999"), now);
    w.sb.handle_datagram(b"\x00\xffSIP/2.0 999", addr("127.0.0.1:5999"), now);
    w.sb.handle_datagram(b"SIP/2.0 999 Nonsense\r\n\r\n", addr(A), now);
    w.step();
    let after = w.sb.stats();
    assert_eq!(after.responses, before.responses);
    assert_eq!(after.started, before.started);
    assert_eq!(after.in_progress, before.in_progress);
    assert!(after.dropped_untrusted > before.dropped_untrusted);
}

impl World {
    /// Time passes on a forwarded call whose relay keeps passing RTP.
    fn relay_talk(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            let ids: Vec<u64> = self
                .media
                .iter()
                .filter_map(|m| match m {
                    MediaOut::Relay { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            self.sb.relay_alive(&ids, self.now);
            self.advance(Duration::from_secs(5).min(until - self.now));
        }
    }
}

#[test]
fn a_forwarded_call_is_billed_for_its_number_and_cut_with_810_when_the_balance_is_spent() {
    let mut w = forwarding(Does::Answer);
    w.sb.set_rates(1, vec![per_minute(1)]);
    w.sb.set_balance(1, 2);
    w.inbound_from_a();
    assert_eq!(w.sb.forward_count(), 1);
    assert_eq!(w.sb.balance_cents(1), Some(1), "the first minute is held");
    w.relay_talk(Duration::from_secs(61));
    assert_eq!(w.sb.balance_cents(1), Some(0), "the second minute is taken");
    assert_eq!(w.sb.forward_count(), 1, "still talking");
    w.relay_talk(Duration::from_secs(60));
    assert_eq!(w.sb.forward_count(), 0, "cut: the balance is spent");
    assert_eq!(w.events_of(A).last().map(String::as_str), Some("Ended"));
    let r = w.last_record();
    assert_eq!(r.hangup_code, Some(810));
    assert_eq!(r.hung_up_by, Some(seatline_calls::record::HungUpBy::System));
    assert_eq!((r.billed_secs, r.cost_millicents), (Some(120), Some(2000)));
}

#[test]
fn an_unanswered_forward_gives_its_block_back_and_no_credit_refuses_it_before_the_number_rings() {
    let mut w = forwarding(Does::Refuse(486));
    w.carriers.get_mut(&addr(A)).unwrap().does = Does::Refuse(486);
    w.sb.set_rates(1, vec![per_minute(1)]);
    w.sb.set_balance(1, 1);
    w.inbound_from_a();
    assert_eq!(w.sb.forward_count(), 0, "busy");
    assert_eq!(w.sb.balance_cents(1), Some(1), "the held minute came back");
    let r = w.last_record();
    assert_eq!((r.billed_secs, r.cost_millicents), (None, None));

    // No credit at all: 403 to the caller, no INVITE toward the number.
    w.sb.set_balance(1, 0);
    let invites_before = w.invites(A) + w.invites(B);
    w.inbound_from_a();
    assert_eq!(
        w.invites(A) + w.invites(B),
        invites_before,
        "the number never rang"
    );
    assert_eq!(
        w.events_of(A).last().map(String::as_str),
        Some("Failed 403")
    );
    assert_eq!(w.sb.forward_count(), 0);
}

#[test]
fn a_forwarded_call_is_recorded_from_its_answer_only_where_the_tenant_records_every_call() {
    for (mode, recorded) in [
        (RecordingMode::All, true),
        (RecordingMode::OnDemand, false),
        (RecordingMode::Off, false),
    ] {
        let mut w = forwarding(Does::Answer);
        w.sb.set_recording(
            1,
            RecordingPolicy {
                mode,
                groups: Default::default(),
            },
        );
        w.inbound_from_a();
        let asked: Vec<_> = w
            .media
            .iter()
            .filter(|m| matches!(m, MediaOut::RecordRelay { tenant_id: 1, .. }))
            .collect();
        assert_eq!(asked.len(), usize::from(recorded), "{mode:?}");
        assert_eq!(w.last_record().recorded, recorded, "{mode:?}");
    }
}

/// Two nodes bill one tenant: each stores what it took as a difference,
/// so the store ends with what both left (an absolute figure from each
/// would keep only the last writer's); each then reads the store's figure
/// again and goes on from it.
#[test]
fn two_nodes_billing_one_tenant_store_what_each_took() {
    let mut a = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    let mut b = World::new(vec![trunk("a", A, None)], &[(A, Does::Answer)]);
    for w in [&mut a, &mut b] {
        w.sb.set_rates(1, vec![per_minute(1)]);
        w.sb.know_balance(1, 10);
        w.call_out();
        assert_eq!(w.dials, vec![0, 2]);
        w.talk(1, Duration::from_secs(61));
        assert_eq!(w.sb.balance_cents(1), Some(8), "two minutes taken");
    }
    // Each node's writes are differences from the 10 it read.
    let took = |w: &World| w.stored.get(&1).copied().unwrap_or(0);
    assert_eq!((took(&a), took(&b)), (-2, -2));
    let store = 10 + took(&a) + took(&b);
    assert_eq!(store, 6, "both calls' minutes are gone from the store");
    // A heartbeat later each node holds the store's figure.
    a.sb.refresh_balance(1, store);
    assert_eq!(a.sb.balance_cents(1), Some(6));
    a.talk(1, Duration::from_secs(60));
    assert_eq!(a.sb.balance_cents(1), Some(5));
    assert_eq!(
        took(&a),
        -3,
        "the third minute, stored as a difference from 6"
    );
    // An admin's figure is stored as it is.
    a.sb.set_balance(1, 50);
    a.step();
    assert_eq!(a.balances.last(), Some(&(1, 50)));
}
