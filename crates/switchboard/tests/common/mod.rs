//! The floor the queue and wallboard tests share, in simulated time: one
//! tenant's group of agents, tabs that are event logs, and a simulated
//! carrier (our own SIP user agent on a perfect network) placing inbound
//! calls, each routed to the group.

#![allow(dead_code)] // each test file uses its own part

use seatline_agent::{AgentConfig, Status};
use seatline_calls::record::CallRecord;
use seatline_protocol::ServerEvent;
use seatline_sip::sdp::{AudioSdp, Codec, Direction as SdpDirection};
use seatline_sip::{CallRef, Timers, TrustedSource, UaEvent, UserAgent};
use seatline_switchboard::*;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const SB: &str = "127.0.0.1:5060";
pub const CARRIER: &str = "127.0.0.1:5080";
pub const T0_MS: i64 = 1_700_000_000_000;
pub const RING: Duration = Duration::from_secs(20);
pub const GROUP: &str = "G001";

pub struct World {
    pub now: Instant,
    pub sb: Switchboard,
    pub carrier: UserAgent,
    pub carrier_events: Vec<UaEvent>,
    pub tabs: HashMap<ConnId, Vec<ServerEvent>>,
    pub seat_tabs: HashMap<SeatId, BTreeSet<ConnId>>,
    pub statuses: Vec<(SeatId, i64)>,
    /// Seats an inbound call started ringing at, in order.
    pub rung: Vec<SeatId>,
    /// Tenants of each `WallboardChanged`, in order.
    pub changed: Vec<i64>,
    /// Every call record the switchboard asked to save, in order.
    pub saved: Vec<CallRecord>,
    /// Every media instruction, in order.
    pub media: Vec<MediaOut>,
    pub next_rtp: RtpPort,
    pub next_conn: ConnId,
    /// Keys whose audio is bridged to a carrier leg now.
    pub bridged: BTreeSet<SeatId>,
    /// The carrier stops sending RTP (else every bridged leg is heard
    /// from before each deadline of the switchboard).
    pub carrier_silent: bool,
    /// The skill the next inbound calls require (as their DID would).
    pub skill: Option<String>,
    /// The menu the next inbound calls' DID has (instead of the group).
    pub menu: Option<Menu>,
    /// Another node holding idle agents of the group (several nodes).
    pub elsewhere: Option<String>,
    /// Outputs taken from the switchboard, not handled yet.
    pending: VecDeque<Output>,
    /// Note each input's handling time (benchmarks).
    pub timing: bool,
    pub timed: Vec<Timed>,
}

/// One input to the switchboard, timed on the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// `route` (a new inbound call to its group), `sip` (a datagram from
    /// the carrier), `timer`, or what the caller of [`World::input`] named.
    pub kind: &'static str,
    pub took: Duration,
    /// Agents it started ringing (routing decisions that found one).
    pub offers: usize,
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn spec(id: SeatId) -> SeatSpec {
    spec_in(id, GROUP)
}

/// A seat of tenant 1 in `group`.
pub fn spec_in(id: SeatId, group: &str) -> SeatSpec {
    SeatSpec {
        id,
        tenant_id: 1,
        group_no: group.into(),
        cfg: AgentConfig {
            initial_status: Status::Idle,
            acw: None,
        },
        remembered: None,
        skills: Vec::new(),
    }
}

pub fn carrier_sdp() -> Vec<u8> {
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
    /// A floor whose group routes with the default settings.
    pub fn new() -> Self {
        Self::routed(GroupRouting::default())
    }

    pub fn routed(routing: GroupRouting) -> Self {
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
            changed: Vec::new(),
            saved: Vec::new(),
            media: Vec::new(),
            next_rtp: 30_000,
            next_conn: 0,
            bridged: BTreeSet::new(),
            carrier_silent: false,
            skill: None,
            menu: None,
            elsewhere: None,
            pending: VecDeque::new(),
            timing: false,
            timed: Vec::new(),
        }
    }

    /// Hands the switchboard one input (`f`) and takes what it decided
    /// (its outputs, with the work deferred to `poll_output` such as
    /// serving the queues); with `timing` on, notes how long that took
    /// and how many agents it started ringing.
    pub fn input(&mut self, kind: &'static str, f: impl FnOnce(&mut Switchboard, Instant)) {
        let t0 = Instant::now();
        f(&mut self.sb, self.now);
        let before = self.pending.len();
        while let Some(o) = self.sb.poll_output() {
            self.pending.push_back(o);
        }
        let took = t0.elapsed();
        if self.timing {
            let offers = self
                .pending
                .iter()
                .skip(before)
                .filter(|o| matches!(o, Output::Media(MediaOut::Ring { on: true, .. })))
                .count();
            self.timed.push(Timed { kind, took, offers });
        }
    }

    pub fn step(&mut self) {
        loop {
            let mut moved = false;
            // What direct calls of the test (set_status, answer, ...) left.
            while let Some(o) = self.sb.poll_output() {
                self.pending.push_back(o);
            }
            while let Some(o) = self.pending.pop_front() {
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
                    Output::Media(m) => {
                        match m {
                            MediaOut::Ring { seat, on: true } => self.rung.push(seat),
                            MediaOut::Bridge { seat, .. } => {
                                self.bridged.insert(seat);
                            }
                            MediaOut::Unbridge { seat } => {
                                self.bridged.remove(&seat);
                            }
                            _ => {}
                        }
                        self.media.push(m);
                    }
                    Output::SaveCall { record, .. } => self.saved.push(*record),
                    Output::SaveStatus { seat, code } => self.statuses.push((seat, code)),
                    Output::WallboardChanged { tenant_id } => self.changed.push(tenant_id),
                    Output::RouteInbound { call, .. } => {
                        self.next_rtp += 2;
                        let route = match self.menu.clone() {
                            Some(menu) => Route::Menu { tenant_id: 1, menu },
                            None => Route::Group {
                                tenant_id: 1,
                                group_no: GROUP.into(),
                                skill: self.skill.clone(),
                            },
                        };
                        let rtp = [self.next_rtp];
                        let elsewhere = self.elsewhere.clone();
                        self.input("route", |sb, now| {
                            sb.route_inbound_or_move(call, route, &rtp, elsewhere.as_deref(), now)
                        });
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.carrier.poll_transmit() {
                moved = true;
                if t.to == addr(SB) {
                    self.input("sip", |sb, now| {
                        sb.handle_datagram(&t.bytes, addr(CARRIER), now)
                    });
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

    pub fn advance(&mut self, d: Duration) {
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
                    self.heard_carrier();
                    self.input("timer", |sb, now| sb.handle_timeout(now));
                    self.carrier.handle_timeout(now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.heard_carrier();
        self.step();
    }

    /// Unless the carrier went silent, every bridged leg sent RTP just now.
    fn heard_carrier(&mut self) {
        if !self.carrier_silent && !self.bridged.is_empty() {
            let keys: Vec<SeatId> = self.bridged.iter().copied().collect();
            self.sb.rtp_alive(&keys, self.now);
        }
    }

    pub fn sign_in(&mut self, seat: SeatId) -> ConnId {
        self.sign_in_to(seat, GROUP)
    }

    /// Signs seat `seat` of `group` in, with one tab.
    pub fn sign_in_to(&mut self, seat: SeatId, group: &str) -> ConnId {
        self.sign_in_spec(spec_in(seat, group))
    }

    /// Signs seat `seat` of the group in, with these skills and levels.
    pub fn sign_in_skilled(&mut self, seat: SeatId, skills: &[(&str, u8)]) -> ConnId {
        let mut spec = spec(seat);
        spec.skills = skills.iter().map(|&(n, l)| (n.to_string(), l)).collect();
        self.sign_in_spec(spec)
    }

    fn sign_in_spec(&mut self, spec: SeatSpec) -> ConnId {
        let seat = spec.id;
        self.sb.sign_in(&spec, true, self.now);
        self.next_conn += 1;
        let conn = self.next_conn;
        self.seat_tabs.entry(seat).or_default().insert(conn);
        self.sb.tab_opened(&spec, conn, self.now);
        self.step();
        conn
    }

    pub fn inbound(&mut self) -> CallRef {
        self.inbound_with(&[])
    }

    /// An inbound call with these extra headers.
    pub fn inbound_with(&mut self, headers: &[(String, String)]) -> CallRef {
        let now = self.now;
        let call = self.carrier.invite(
            "14155550111",
            "12025550170",
            addr(SB),
            &carrier_sdp(),
            headers,
            now,
        );
        self.step();
        call
    }

    /// An inbound call rings; the agent it rang answers; the caller hangs up.
    pub fn answered_call(&mut self) -> SeatId {
        let call = self.inbound();
        let seat = *self.rung.last().expect("an agent rang");
        self.sb.answer(seat, true, self.now);
        self.advance(Duration::from_secs(1));
        let now = self.now;
        self.carrier.hang_up(call, now);
        self.advance(Duration::from_secs(1));
        seat
    }

    pub fn refused(&self, call: CallRef, code: u16) -> bool {
        self.carrier_events.iter().any(
            |e| matches!(e, UaEvent::Failed { call: c, code: k, .. } if *c == call && *k == code),
        )
    }

    pub fn status(&self, seat: SeatId) -> Option<i64> {
        self.statuses
            .iter()
            .rev()
            .find(|(s, _)| *s == seat)
            .map(|(_, code)| *code)
    }

    /// `error` events a tab received: (code, message).
    pub fn errors(&self, conn: ConnId) -> Vec<(String, String)> {
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

/// How many times our side answered the carrier's call `call`.
pub fn answered_by_us(w: &World, call: CallRef) -> usize {
    w.carrier_events
        .iter()
        .filter(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call))
        .count()
}

/// Whether our side ended the carrier's call `call` (a BYE).
pub fn ended_by_us(w: &World, call: CallRef) -> bool {
    w.carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Ended { call: c, remote: true } if *c == call))
}

/// The `dialStatus` codes a tab received, in order.
pub fn dial_codes(w: &World, conn: ConnId) -> Vec<i64> {
    w.tabs
        .get(&conn)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            ServerEvent::Dial { content } => Some(content.code),
            _ => None,
        })
        .collect()
}
