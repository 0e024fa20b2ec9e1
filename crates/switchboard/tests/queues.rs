//! Queues per group in simulated time: each strategy's choice of agent,
//! and an agent who lets offers ring out set to Busy at exactly the Nth
//! ring timeout. A simulated carrier (our own SIP user agent on a perfect
//! network) places inbound calls; tabs are event logs, as in
//! `whole_calls.rs`.

use seatline_agent::{AgentConfig, Status};
use seatline_protocol::ServerEvent;
use seatline_sip::sdp::{AudioSdp, Codec, Direction as SdpDirection};
use seatline_sip::{CallRef, Timers, TrustedSource, UaEvent, UserAgent};
use seatline_switchboard::*;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SB: &str = "127.0.0.1:5060";
const CARRIER: &str = "127.0.0.1:5080";
const T0_MS: i64 = 1_700_000_000_000;
const RING: Duration = Duration::from_secs(20);
const GROUP: &str = "G001";

struct World {
    now: Instant,
    sb: Switchboard,
    carrier: UserAgent,
    carrier_events: Vec<UaEvent>,
    tabs: HashMap<ConnId, Vec<ServerEvent>>,
    seat_tabs: HashMap<SeatId, BTreeSet<ConnId>>,
    statuses: Vec<(SeatId, i64)>,
    /// Seats an inbound call started ringing at, in order.
    rung: Vec<SeatId>,
    next_rtp: RtpPort,
    next_conn: ConnId,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn spec(id: SeatId) -> SeatSpec {
    SeatSpec {
        id,
        tenant_id: 1,
        group_no: GROUP.into(),
        cfg: AgentConfig {
            initial_status: Status::Idle,
            acw: None,
        },
        remembered: None,
    }
}

fn carrier_sdp() -> Vec<u8> {
    AudioSdp {
        addr: "127.0.0.1".parse().unwrap(),
        port: 40_000,
        codecs: vec![Codec::Pcmu],
        dtmf_pt: Some(101),
        direction: SdpDirection::SendRecv,
        profile: seatline_sip::sdp::Profile::Avp,
        crypto: Vec::new(),
    }
    .to_string(7, 1)
    .into_bytes()
}

impl World {
    fn new(routing: GroupRouting) -> Self {
        let start = Instant::now();
        let mut settings = Settings::new(addr(CARRIER));
        settings.ring_timeout = RING;
        let mut ua = UserAgent::with_seed(addr(SB), Timers::default(), 7);
        ua.set_trusted(vec![TrustedSource::parse(CARRIER).unwrap()]);
        let mut carrier = UserAgent::with_seed(addr(CARRIER), Timers::default(), 8);
        carrier.set_trusted(vec![TrustedSource::parse(SB).unwrap()]);
        let mut sb = Switchboard::new(settings, ua, start, T0_MS, 7);
        sb.set_group_routing(1, GROUP, routing);
        World {
            now: start,
            sb,
            carrier,
            carrier_events: Vec::new(),
            tabs: HashMap::new(),
            seat_tabs: HashMap::new(),
            statuses: Vec::new(),
            rung: Vec::new(),
            next_rtp: 30_000,
            next_conn: 0,
        }
    }

    fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.sb.poll_output() {
                moved = true;
                match o {
                    Output::Transmit(t) if t.to == addr(CARRIER) => {
                        self.carrier.handle_datagram(&t.bytes, addr(SB), self.now);
                    }
                    Output::ToAgent { seat, event } => {
                        for conn in self.seat_tabs.get(&seat).cloned().unwrap_or_default() {
                            self.tabs.entry(conn).or_default().push(event.clone());
                        }
                    }
                    Output::ToTab { conn, event } => self.tabs.entry(conn).or_default().push(event),
                    Output::Media(MediaOut::Ring { seat, on: true }) => self.rung.push(seat),
                    Output::SaveStatus { seat, code } => self.statuses.push((seat, code)),
                    Output::RouteInbound { call, .. } => {
                        self.next_rtp += 2;
                        let route = Route::Group {
                            tenant_id: 1,
                            group_no: GROUP.into(),
                        };
                        let rtp = [self.next_rtp];
                        self.sb.route_inbound(call, route, &rtp, self.now);
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.carrier.poll_transmit() {
                moved = true;
                if t.to == addr(SB) {
                    self.sb.handle_datagram(&t.bytes, addr(CARRIER), self.now);
                }
            }
            while let Some(ev) = self.carrier.poll_event() {
                moved = true;
                self.carrier_events.push(ev);
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
            let next = [self.sb.poll_timeout(), self.carrier.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.sb.handle_timeout(now);
                    self.carrier.handle_timeout(now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.step();
    }

    fn sign_in(&mut self, seat: SeatId) -> ConnId {
        self.sb.sign_in(&spec(seat), true, self.now);
        self.next_conn += 1;
        let conn = self.next_conn;
        self.seat_tabs.entry(seat).or_default().insert(conn);
        self.sb.tab_opened(&spec(seat), conn, self.now);
        self.step();
        conn
    }

    fn inbound(&mut self) -> CallRef {
        let now = self.now;
        let call = self.carrier.invite(
            "14155550111",
            "12025550170",
            addr(SB),
            &carrier_sdp(),
            &[],
            now,
        );
        self.step();
        call
    }

    /// An inbound call rings; the agent it rang answers; the caller hangs up.
    fn answered_call(&mut self) -> SeatId {
        let call = self.inbound();
        let seat = *self.rung.last().expect("an agent rang");
        self.sb.answer(seat, true, self.now);
        self.advance(Duration::from_secs(1));
        let now = self.now;
        self.carrier.hang_up(call, now);
        self.advance(Duration::from_secs(1));
        seat
    }

    fn refused(&self, call: CallRef, code: u16) -> bool {
        self.carrier_events.iter().any(
            |e| matches!(e, UaEvent::Failed { call: c, code: k, .. } if *c == call && *k == code),
        )
    }

    fn status(&self, seat: SeatId) -> Option<i64> {
        self.statuses
            .iter()
            .rev()
            .find(|(s, _)| *s == seat)
            .map(|(_, code)| *code)
    }

    /// `error` events a tab received: (code, message).
    fn errors(&self, conn: ConnId) -> Vec<(String, String)> {
        self.tabs
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                ServerEvent::Error { code, message } => Some((code.clone(), message.clone())),
                _ => None,
            })
            .collect()
    }
}

fn routing(strategy: Strategy, max_missed: u32) -> GroupRouting {
    GroupRouting {
        strategy,
        max_missed,
    }
}

#[test]
fn a_group_without_routing_is_longest_idle_with_three_missed_offers() {
    let w = World::new(routing(Strategy::RoundRobin, 0));
    assert_eq!(
        w.sb.group_routing(1, "G002"),
        routing(Strategy::LongestIdle, 3)
    );
    assert_eq!(w.sb.group_routing(2, GROUP), GroupRouting::default());
    assert_eq!(
        w.sb.group_routing(1, GROUP),
        routing(Strategy::RoundRobin, 0)
    );
    for s in [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
    ] {
        assert_eq!(Strategy::parse(s.as_str()), Some(s));
    }
    assert_eq!(Strategy::parse("ringAll"), None);
    assert_eq!(Strategy::parse("LONGESTIDLE"), None);
}

#[test]
fn longest_idle_rings_the_agent_available_the_longest() {
    let mut w = World::new(routing(Strategy::LongestIdle, 3));
    w.sign_in(2);
    w.advance(Duration::from_secs(1));
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 2, "seat 2 waited longest");
    // Seat 2 is available again only from the end of that call.
    assert_eq!(w.answered_call(), 1);
    assert_eq!(w.answered_call(), 2);
}

#[test]
fn round_robin_goes_on_after_the_last_seat_offered_skipping_unavailable_ones() {
    let mut w = World::new(routing(Strategy::RoundRobin, 3));
    // Signed in 3, 2, 1: longest idle would ring 3 first.
    for seat in [3, 2, 1] {
        w.sign_in(seat);
        w.advance(Duration::from_secs(1));
    }
    assert_eq!(w.answered_call(), 1, "nobody offered yet: the lowest seat");
    assert_eq!(w.answered_call(), 2);
    w.sb.set_status(3, Status::Busy, w.now).unwrap();
    assert_eq!(w.answered_call(), 1, "seat 3 is busy: around to seat 1");
    w.sb.set_status(3, Status::Idle, w.now).unwrap();
    assert_eq!(w.answered_call(), 2);
    assert_eq!(w.answered_call(), 3);
    // An offer that rings out moves on in the same order.
    let call = w.inbound();
    assert_eq!(w.rung.last(), Some(&1));
    w.advance(RING);
    assert_eq!(
        w.rung.last(),
        Some(&2),
        "the ring timeout goes on to seat 2"
    );
    w.sb.answer(2, true, w.now);
    w.step();
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call)));
}

#[test]
fn fewest_calls_rings_the_agent_who_answered_fewest_and_ties_go_to_the_longest_idle() {
    let mut w = World::new(routing(Strategy::FewestCalls, 3));
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 1);
    // Seat 2 comes after that call ended: longest idle would ring seat 1.
    w.sign_in(2);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 2, "seat 2 answered none yet");
    w.sign_in(3);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 3);
    // One each: the longest idle (seat 1, free since its call ended first).
    assert_eq!(w.answered_call(), 1);
    assert_eq!(
        [1, 2, 3].map(|s| w.sb.answered_calls(s)),
        [2, 1, 1],
        "answered inbound calls per seat"
    );
    // A rejected offer or one that rang out is not an answered call.
    w.inbound();
    assert_eq!(w.rung.last(), Some(&2));
    w.sb.answer(2, false, w.now);
    w.step();
    assert_eq!(w.rung.last(), Some(&3), "seat 2 rejected: seat 3 next");
    w.advance(RING);
    assert_eq!(w.rung.last(), Some(&1), "seat 3 let it ring out: seat 1");
    assert_eq!([1, 2, 3].map(|s| w.sb.answered_calls(s)), [2, 1, 1]);
}

#[test]
fn an_agent_who_lets_n_offers_ring_out_is_busy_at_exactly_the_nth_ring_timeout() {
    let mut w = World::new(routing(Strategy::LongestIdle, 2));
    let tab = w.sign_in(1);
    let first = w.inbound();
    w.advance(RING);
    assert!(w.refused(first, 480), "nobody else: 480");
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    let second = w.inbound();
    assert_eq!(w.rung, vec![1, 1]);
    w.advance(RING - Duration::from_millis(1));
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
    w.advance(Duration::from_millis(1));
    assert!(w.refused(second, 480));
    assert_eq!(w.status(1), Some(2), "Busy (agentStatus 2), saved");
    let errors = w.errors(tab);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "missedOffers");
    assert!(errors[0].1.contains("Busy"), "{}", errors[0].1);
    let last_view = w.tabs[&tab].iter().rev().find_map(|e| match e {
        ServerEvent::Agent { agent } => Some(agent.status),
        _ => None,
    });
    assert_eq!(last_view, Some(Status::Busy), "the tab shows Busy");
    // No more offers: the next caller gets 480 at once.
    let third = w.inbound();
    assert!(w.refused(third, 480));
    assert_eq!(w.rung, vec![1, 1]);
    // Back to Idle by choice, the count starts from zero again.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    w.inbound();
    w.advance(RING);
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert_eq!(w.errors(tab).len(), 1);
}

#[test]
fn a_busy_agent_for_missed_offers_leaves_the_call_to_the_next_one() {
    let mut w = World::new(routing(Strategy::LongestIdle, 1));
    let a = w.sign_in(1);
    w.advance(Duration::from_secs(1));
    let b = w.sign_in(2);
    let call = w.inbound();
    w.advance(RING);
    assert_eq!(w.rung, vec![1, 2]);
    assert_eq!(w.status(1), Some(2));
    assert_eq!(w.errors(a).len(), 1);
    assert!(w.errors(b).is_empty(), "only the agent who missed is told");
    w.sb.answer(2, true, w.now);
    w.step();
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call)));
}

#[test]
fn answering_or_rejecting_an_offer_resets_the_missed_count() {
    let mut w = World::new(routing(Strategy::LongestIdle, 2));
    let tab = w.sign_in(1);
    w.inbound();
    w.advance(RING); // missed 1
    w.answered_call(); // back to 0
    w.inbound();
    w.advance(RING); // missed 1
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    w.inbound();
    w.sb.answer(1, false, w.now); // a reject: back to 0
    w.advance(Duration::from_secs(1));
    w.inbound();
    w.advance(RING); // missed 1
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
    w.inbound();
    w.advance(RING); // missed 2 in a row
    assert_eq!(w.status(1), Some(2));
    assert_eq!(w.errors(tab).len(), 1);
}

#[test]
fn a_caller_who_hangs_up_while_it_rings_is_no_missed_offer() {
    let mut w = World::new(routing(Strategy::LongestIdle, 1));
    let tab = w.sign_in(1);
    let call = w.inbound();
    w.advance(Duration::from_secs(5));
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(RING);
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
}

#[test]
fn with_max_missed_zero_an_agent_is_never_set_busy() {
    let mut w = World::new(routing(Strategy::LongestIdle, 0));
    let tab = w.sign_in(1);
    for _ in 0..5 {
        w.inbound();
        w.advance(RING);
    }
    assert_eq!(w.rung, vec![1; 5]);
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
}
