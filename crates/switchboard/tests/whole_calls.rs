//! Whole calls through the switchboard in simulated time: a simulated
//! carrier (our own SIP user agent on the far side of a perfect network)
//! and simulated tabs (event logs per connection), coupled like quinn's
//! `Pair`. Every rule of a call is checked here, to the millisecond.

use seatline_agent::{AgentConfig, Status};
use seatline_calls::policy::{CallOut, PolicyFacts};
use seatline_calls::record::CallRecord;
use seatline_protocol::{CallQuality, ServerEvent};
use seatline_sip::sdp::{AudioSdp, Codec, Direction as SdpDirection};
use seatline_sip::{CallRef, Timers, TrustedSource, UaEvent, UserAgent};
use seatline_switchboard::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SB: &str = "127.0.0.1:5060";
const CARRIER: &str = "127.0.0.1:5080";
const T0_MS: i64 = 1_700_000_000_000;

struct World {
    start: Instant,
    now: Instant,
    sb: Switchboard,
    carrier: UserAgent,
    carrier_events: Vec<UaEvent>,
    /// Every event each tab received, in order.
    tabs: HashMap<ConnId, Vec<ServerEvent>>,
    seat_tabs: HashMap<SeatId, BTreeSet<ConnId>>,
    saved: Vec<(Option<SeatId>, CallRecord, Option<String>)>,
    statuses: Vec<(SeatId, i64)>,
    media: Vec<MediaOut>,
    released: Vec<RtpPort>,
    /// How inbound DIDs are routed.
    route: Route,
    next_rtp: RtpPort,
    next_conn: ConnId,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn settings() -> Settings {
    let mut s = Settings::new(addr(CARRIER));
    s.ring_timeout = Duration::from_secs(20);
    s.no_tab_grace = Duration::from_secs(10);
    s.rtp_timeout = Duration::from_secs(30);
    s
}

fn spec(id: SeatId, acw_secs: u64) -> SeatSpec {
    SeatSpec {
        id,
        tenant_id: 1,
        group_no: "G001".into(),
        cfg: AgentConfig {
            initial_status: Status::Idle,
            acw: Some(Duration::from_secs(acw_secs)),
        },
        remembered: None,
        skills: Vec::new(),
    }
}

fn facts() -> CallOutFacts {
    CallOutFacts {
        policy: PolicyFacts {
            balance_cents: 1_000,
            ..Default::default()
        },
        owned_dids: vec!["12025550170".into()],
        pool_dids: vec!["12025550170".into()],
    }
}

fn op(callee: &str) -> CallOut {
    CallOut {
        caller: String::new(),
        callee: callee.into(),
        country_code: String::new(),
        order_id: "o-1".into(),
        params: String::new(),
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
    fn new() -> Self {
        Self::with(settings(), 7)
    }

    fn with(settings: Settings, seed: u64) -> Self {
        let start = Instant::now();
        let mut ua = UserAgent::with_seed(addr(SB), Timers::default(), seed);
        ua.set_trusted(vec![TrustedSource::parse(CARRIER).unwrap()]);
        let mut carrier = UserAgent::with_seed(addr(CARRIER), Timers::default(), seed + 1);
        carrier.set_trusted(vec![TrustedSource::parse(SB).unwrap()]);
        World {
            start,
            now: start,
            sb: Switchboard::new(settings, ua, start, T0_MS, seed),
            carrier,
            carrier_events: Vec::new(),
            tabs: HashMap::new(),
            seat_tabs: HashMap::new(),
            saved: Vec::new(),
            statuses: Vec::new(),
            media: Vec::new(),
            released: Vec::new(),
            route: Route::Group {
                tenant_id: 1,
                group_no: "G001".into(),
                skill: None,
            },
            next_rtp: 30_000,
            next_conn: 0,
        }
    }

    fn ms(&self) -> i64 {
        T0_MS + self.now.duration_since(self.start).as_millis() as i64
    }

    /// Delivers everything in flight until the world is quiet.
    fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.sb.poll_output() {
                moved = true;
                match o {
                    Output::Transmit(t) => {
                        if t.to == addr(CARRIER) {
                            self.carrier.handle_datagram(&t.bytes, addr(SB), self.now);
                        }
                    }
                    Output::ToAgent { seat, event } => {
                        for conn in self.seat_tabs.get(&seat).cloned().unwrap_or_default() {
                            self.tabs.entry(conn).or_default().push(event.clone());
                        }
                    }
                    Output::ToTab { conn, event } => self.tabs.entry(conn).or_default().push(event),
                    Output::Media(m) => self.media.push(m),
                    Output::SaveCall {
                        seat,
                        record,
                        dialog,
                        ..
                    } => self.saved.push((seat, *record, dialog)),
                    Output::SaveStatus { seat, code } => self.statuses.push((seat, code)),
                    Output::RouteInbound { call, .. } => {
                        self.next_rtp += 2;
                        let route = self.route.clone();
                        let rtp = [self.next_rtp];
                        self.sb.route_inbound(call, route, &rtp, self.now);
                    }
                    Output::ReleaseRtp { rtp } => self.released.push(rtp),
                    Output::BindRtp { call } => {
                        self.next_rtp += 2;
                        self.sb.rtp_bound(call, Some(self.next_rtp), self.now);
                    }
                    Output::Compacted
                    | Output::TrunkHealth { .. }
                    | Output::SaveBalance { .. }
                    | Output::WallboardChanged { .. } => {}
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

    /// Lets simulated time pass, firing every timer on its due instant.
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

    /// Time passes in a call whose carrier keeps sending RTP.
    fn talk(&mut self, seat: SeatId, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            let step = (until - self.now).min(Duration::from_millis(500));
            self.advance(step);
            let now = self.now;
            self.sb.rtp_alive(&[seat], now);
        }
    }

    fn open_tab(&mut self, seat: SeatId, acw: u64) -> (ConnId, TabView) {
        self.next_conn += 1;
        let conn = self.next_conn;
        self.seat_tabs.entry(seat).or_default().insert(conn);
        let view = self.sb.tab_opened(&spec(seat, acw), conn, self.now);
        self.step();
        (conn, view)
    }

    fn close_tab(&mut self, seat: SeatId, conn: ConnId) {
        self.seat_tabs.entry(seat).or_default().remove(&conn);
        self.sb.tab_closed(seat, conn, self.now);
        self.step();
    }

    fn sign_in(&mut self, seat: SeatId, acw: u64) -> ConnId {
        self.sb.sign_in(&spec(seat, acw), true, self.now);
        self.open_tab(seat, acw).0
    }

    fn call_out(&mut self, seat: SeatId, callee: &str) {
        self.next_rtp += 2;
        let rtp = Some(self.next_rtp);
        self.sb
            .call_out(seat, op(callee), true, Ok(facts()), rtp, self.now);
        self.step();
    }

    /// dialStatus contents a tab received, in order.
    fn dials(&self, conn: ConnId) -> Vec<Value> {
        self.tabs
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                if let ServerEvent::Dial { content } = e {
                    Some(serde_json::to_value(content).unwrap())
                } else {
                    None
                }
            })
            .collect()
    }

    fn codes(&self, conn: ConnId) -> Vec<i64> {
        self.dials(conn)
            .iter()
            .map(|d| d["code"].as_i64().unwrap())
            .collect()
    }

    fn activities(&self, conn: ConnId) -> Vec<String> {
        self.tabs
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                if let ServerEvent::Agent { agent } = e {
                    Some(agent.activity.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Quality samples a tab received, in order.
    fn qualities(&self, conn: ConnId) -> Vec<CallQuality> {
        self.tabs
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                if let ServerEvent::Quality { content } = e {
                    Some(content.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// The media plane reports a quality sample for the seat's call.
    fn sample(&mut self, seat: SeatId, loss_pct: f64, jitter_ms: f64, rtt_ms: f64, mos: f64) {
        let figures = QualityFigures {
            packets: 250,
            loss_pct,
            jitter_ms,
            rtt_ms,
            mos,
        };
        self.sb.quality(seat, figures, self.now);
        self.step();
    }

    fn last_record(&self) -> CallRecord {
        self.saved.last().expect("a record").1.clone()
    }

    /// The carrier's newest inbound call (our INVITE).
    fn carrier_incoming(&self) -> CallRef {
        self.carrier_events
            .iter()
            .rev()
            .find_map(|e| {
                if let UaEvent::Incoming { call, .. } = e {
                    Some(*call)
                } else {
                    None
                }
            })
            .expect("an INVITE reached the carrier")
    }

    fn carrier_answers(&mut self) -> CallRef {
        let call = self.carrier_incoming();
        let now = self.now;
        self.carrier.respond(call, 180, None, now);
        self.carrier.respond(call, 200, Some(&carrier_sdp()), now);
        self.step();
        call
    }

    fn carrier_ended(&self, call: CallRef) -> bool {
        self.carrier_events
            .iter()
            .any(|e| matches!(e, UaEvent::Ended { call: c, .. } if *c == call))
    }
}

#[test]
fn outbound_call_rings_connects_and_ends_with_an_exact_record() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    assert_eq!(w.codes(tab), vec![0]);
    assert!(w.media.contains(&MediaOut::Bridge {
        seat: 1,
        rtp: 30_002,
        ringback: true
    }));
    w.advance(Duration::from_millis(1_500));
    let carrier_call = w.carrier_answers();
    let connected_ms = w.ms();
    assert_eq!(w.codes(tab), vec![0, 2]);
    let up = w.saved.last().unwrap();
    assert!(
        up.2.is_some(),
        "the dialog is kept while the call is up (crash recovery)"
    );
    w.advance(Duration::from_secs(5));
    w.sb.hang_up(1, w.now);
    w.step();
    let hangup_ms = w.ms();
    assert!(w.carrier_ended(carrier_call), "the carrier got our BYE");
    assert_eq!(w.codes(tab), vec![0, 2, 5]);
    let r = w.last_record();
    assert_eq!(
        (r.connected_ms, r.hangup_ms, r.hangup_code, r.sip_code),
        (Some(connected_ms), Some(hangup_ms), None, None)
    );
    assert_eq!(r.order_id, "o-1");
    assert!(
        w.saved.last().unwrap().2.is_none(),
        "an ended call keeps no dialog"
    );
    assert!(w.released.contains(&30_002), "the RTP port is given back");
    assert_eq!(w.sb.call_count(), 0);
    assert_eq!(w.activities(tab).last().map(String::as_str), Some("none"));
}

#[test]
fn every_carrier_failure_reaches_the_tabs_and_the_record() {
    for (sip, want, hangup) in [
        (404, vec![0, 812, 5], Some(812)),
        (486, vec![0, 5], None),
        (503, vec![0, 800, 5], Some(800)),
        (403, vec![0, 819, 5], Some(819)),
        (603, vec![0, 5], None),
    ] {
        let mut w = World::new();
        let tab = w.sign_in(1, 0);
        w.call_out(1, "12025550100");
        let call = w.carrier_incoming();
        let now = w.now;
        w.carrier.respond(call, sip, None, now);
        w.step();
        assert_eq!(w.codes(tab), want, "SIP {sip}");
        let end = w.dials(tab).last().unwrap().clone();
        assert_eq!(end["sipCode"].as_i64(), Some(sip as i64));
        let r = w.last_record();
        assert_eq!(
            (r.sip_code, r.hangup_code, r.hangup_ms),
            (Some(sip), hangup, Some(w.ms())),
            "SIP {sip}"
        );
    }
}

#[test]
fn a_carrier_that_never_answers_gives_408_then_800() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    // Nothing reaches the carrier: simulate a dead trunk by dropping its replies.
    w.sb.call_out(1, op("12025550100"), true, Ok(facts()), Some(31_000), w.now);
    while w.sb.poll_output().is_some() {}
    let mut t = 0;
    while w.sb.call_count() > 0 && t < 100 {
        w.now += Duration::from_secs(1);
        let now = w.now;
        w.sb.handle_timeout(now);
        while let Some(o) = w.sb.poll_output() {
            if let Output::ToAgent {
                event: ServerEvent::Dial { content },
                ..
            } = o
            {
                w.tabs
                    .entry(tab)
                    .or_default()
                    .push(ServerEvent::Dial { content });
            }
        }
        t += 1;
    }
    assert_eq!(t, 32, "Timer B: 64*T1");
    assert_eq!(w.codes(tab), vec![800, 5]);
}

#[test]
fn refused_call_outs_give_their_code_and_are_recorded_within_a_bound() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    let cases: Vec<(CallOut, bool, Result<CallOutFacts, ()>, i64)> = vec![
        (op("abc"), true, Ok(facts()), 812),
        (op("12025550100"), false, Ok(facts()), 813),
        (op("12025550100"), true, Err(()), 800),
        (
            op("12025550100"),
            true,
            Ok(CallOutFacts {
                policy: PolicyFacts {
                    balance_cents: 5,
                    blacklisted: true,
                    ..Default::default()
                },
                ..facts()
            }),
            814,
        ),
    ];
    for (o, ok, f, code) in cases {
        let before = w.codes(tab).len();
        w.sb.call_out(1, o, ok, f, Some(32_000), w.now);
        w.step();
        assert_eq!(&w.codes(tab)[before..], &[code, 5]);
        assert!(w.released.contains(&32_000));
    }
    // The balance is the switchboard's once it has seen the store's (5
    // cents above); an admin sets it to nothing: 810, whatever the store said.
    w.sb.set_balance(1, 0);
    let before = w.codes(tab).len();
    w.sb.call_out(1, op("12025550100"), true, Ok(facts()), Some(32_000), w.now);
    w.step();
    assert_eq!(&w.codes(tab)[before..], &[810, 5]);
    assert_eq!(w.saved.len(), 5);
    // A flood: every one is refused the same way, but only a bounded number is stored.
    for _ in 0..400 {
        w.sb.call_out(1, op("x"), true, Ok(facts()), None, w.now);
    }
    w.step();
    assert_eq!(w.codes(tab).len(), 10 + 800);
    assert_eq!(w.saved.len(), 30, "30 records per agent per minute");
    assert_eq!(w.sb.suppressed_refusals(), 375);
    w.advance(Duration::from_secs(60));
    w.sb.call_out(1, op("x"), true, Ok(facts()), None, w.now);
    w.step();
    assert_eq!(w.saved.len(), 31, "a new minute records again");
}

#[test]
fn a_second_call_out_during_a_call_is_801_and_the_first_call_is_untouched() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    w.carrier_answers();
    w.call_out(1, "12025550101");
    assert_eq!(w.codes(tab), vec![0, 2, 801, 5]);
    assert_eq!(w.sb.call_count(), 1);
}

fn place_inbound(w: &mut World, other: &str) -> CallRef {
    let headers = [("X-Custom-Data".to_string(), other.to_string())];
    let now = w.now;
    let call = w.carrier.invite(
        "14155550111",
        "12025550170",
        addr(SB),
        &carrier_sdp(),
        &headers,
        now,
    );
    w.step();
    call
}

#[test]
fn inbound_call_rings_the_longest_idle_agent_and_is_answered() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    w.advance(Duration::from_secs(1));
    let b = w.sign_in(2, 0);
    let call = place_inbound(&mut w, "{\"ticket\":1}");
    assert_eq!(w.codes(a), vec![1], "agent 1 is idle the longest");
    assert!(w.codes(b).is_empty());
    let ring = &w.dials(a)[0];
    assert_eq!(
        (
            ring["caller"].as_str(),
            ring["callee"].as_str(),
            ring["other"].as_str()
        ),
        (
            Some("14155550111"),
            Some("12025550170"),
            Some("{\"ticket\":1}")
        )
    );
    assert!(w.media.contains(&MediaOut::Ring { seat: 1, on: true }));
    w.sb.answer(1, true, w.now);
    w.step();
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call)));
    assert_eq!(w.codes(a), vec![1, 2]);
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.step();
    assert_eq!(w.codes(a), vec![1, 2, 5]);
    assert_eq!(
        w.last_record().direction,
        seatline_calls::record::Direction::Inbound
    );
}

#[test]
fn inbound_ring_timeout_moves_to_the_next_agent_exactly_then_480() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    w.advance(Duration::from_secs(1));
    let b = w.sign_in(2, 0);
    let call = place_inbound(&mut w, "");
    w.advance(Duration::from_millis(19_999));
    assert_eq!(w.codes(a), vec![1]);
    assert!(w.codes(b).is_empty());
    w.advance(Duration::from_millis(1));
    assert_eq!(w.codes(a), vec![1, 5]);
    assert_eq!(w.codes(b), vec![1]);
    w.sb.answer(2, false, w.now);
    w.step();
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Failed { call: c, code: 480, .. } if *c == call)));
    assert_eq!(w.last_record().sip_code, Some(480));
}

#[test]
fn an_unknown_did_gets_404_and_a_store_failure_503() {
    for (route, code) in [(Route::Unknown, 404), (Route::Unavailable, 503)] {
        let mut w = World::new();
        let tab = w.sign_in(1, 0);
        w.route = route;
        let call = place_inbound(&mut w, "");
        assert!(w.carrier_events.iter().any(
            |e| matches!(e, UaEvent::Failed { call: c, code: k, .. } if *c == call && *k == code)
        ));
        assert!(w.codes(tab).is_empty());
    }
}

#[test]
fn wrap_up_ends_at_its_deadline_to_the_millisecond() {
    let mut w = World::new();
    let tab = w.sign_in(1, 5);
    w.call_out(1, "12025550100");
    let call = w.carrier_answers();
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.step();
    assert_eq!(w.activities(tab).last().map(String::as_str), Some("wrapUp"));
    w.advance(Duration::from_millis(4_999));
    assert_eq!(w.activities(tab).last().map(String::as_str), Some("wrapUp"));
    w.advance(Duration::from_millis(1));
    assert_eq!(w.activities(tab).last().map(String::as_str), Some("none"));
}

#[test]
fn reload_keeps_the_call_and_twice_inside_the_grace_time_too() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    let call = w.carrier_answers();
    // Close at 0 s, back at 2 s, close again at 9 s, back at 11 s: an old
    // grace timer (due at 10 s) must not end the call.
    w.close_tab(1, tab);
    w.talk(1, Duration::from_secs(2));
    let (t2, view) = w.open_tab(1, 0);
    assert_eq!(
        view.call.as_ref().map(|c| c.code),
        Some(2),
        "the reloaded tab sees its call"
    );
    w.talk(1, Duration::from_secs(7));
    w.close_tab(1, t2);
    w.talk(1, Duration::from_secs(2));
    let (t3, _) = w.open_tab(1, 0);
    w.talk(1, Duration::from_secs(40));
    assert!(!w.carrier_ended(call), "the call survived both reloads");
    assert_eq!(w.sb.call_count(), 1);
    assert!(w.codes(t3).is_empty());
}

#[test]
fn a_call_whose_agent_vanished_ends_with_801_seen_by_the_next_tab() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    let call = w.carrier_answers();
    w.close_tab(1, tab);
    w.advance(Duration::from_millis(9_999));
    assert!(!w.carrier_ended(call));
    w.advance(Duration::from_millis(1));
    assert!(w.carrier_ended(call), "BYE at the end of the grace time");
    let r = w.last_record();
    assert_eq!(r.hangup_code, Some(801));
    let (back, view) = w.open_tab(1, 0);
    assert!(view.call.is_none());
    assert_eq!(w.codes(back), vec![801, 5]);
    assert_eq!(w.dials(back)[1]["hangupCode"], 801);
}

#[test]
fn the_audio_moves_to_the_oldest_other_tab() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    let (b, vb) = w.open_tab(1, 0);
    let (c, _) = w.open_tab(1, 0);
    assert!(!vb.audio && w.sb.holds_audio(1, a));
    w.close_tab(1, a);
    assert!(w.tabs[&b].contains(&ServerEvent::Audio { hold: true }));
    assert!(!w
        .tabs
        .get(&c)
        .into_iter()
        .flatten()
        .any(|e| matches!(e, ServerEvent::Audio { .. })));
    assert!(w.sb.holds_audio(1, b));
}

#[test]
fn a_silent_carrier_ends_the_call_with_800_and_a_bye() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    let call = w.carrier_answers();
    for _ in 0..5 {
        w.advance(Duration::from_secs(1));
        w.sb.rtp_alive(&[1], w.now);
    }
    w.advance(Duration::from_millis(29_999));
    assert!(!w.carrier_ended(call));
    w.advance(Duration::from_millis(1));
    assert!(w.carrier_ended(call));
    assert_eq!(w.codes(tab), vec![0, 2, 800, 5]);
    assert_eq!(w.last_record().hangup_code, Some(800));
}

#[test]
fn shutdown_ends_every_call_with_a_bye_and_5() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    let b = w.sign_in(2, 0);
    w.call_out(1, "12025550100");
    let up = w.carrier_answers();
    w.call_out(2, "12025550108");
    w.sb.shutdown(w.now);
    w.advance(Duration::from_secs(1));
    assert!(w.carrier_ended(up));
    assert_eq!(w.codes(a), vec![0, 2, 5]);
    assert_eq!(w.codes(b), vec![0, 5]);
    assert!(w
        .saved
        .iter()
        .rev()
        .take(2)
        .all(|(_, r, _)| r.hangup_ms.is_some()));
    w.call_out(1, "12025550100");
    assert_eq!(&w.codes(a)[3..], &[800, 5], "no new call while stopping");
}

#[test]
fn a_draining_node_keeps_its_calls_to_their_end_and_takes_no_new_one() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    let b = w.sign_in(2, 0);
    w.call_out(1, "12025550100");
    let up = w.carrier_answers();
    assert!(!w.sb.is_idle());
    assert!(w.sb.has_call(1) && !w.sb.has_call(2));
    w.sb.drain();
    w.talk(1, Duration::from_secs(60));
    assert!(!w.carrier_ended(up), "the call goes on");
    assert_eq!(w.codes(a), vec![0, 2]);
    // No new call: a callOut is refused, an inbound INVITE gets 503.
    w.call_out(2, "12025550100");
    assert_eq!(w.codes(b), vec![800, 5]);
    let inbound = place_inbound(&mut w, "");
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Failed { call, code: 503, .. } if *call == inbound)));
    assert!(w.codes(b).len() == 2, "nobody was offered it");
    assert!(!w.sb.is_idle());
    // The call ends as calls do: then the node is idle.
    w.sb.hang_up(1, w.now);
    w.advance(Duration::from_secs(1));
    assert!(w.carrier_ended(up));
    assert_eq!(w.codes(a), vec![0, 2, 5]);
    assert!(w.sb.is_idle());
}

/// After a crash, the next start closes the record (801) and sends the
/// carrier its BYE; a surviving node closing a dead node's call does the
/// same with 800 (the failure was on the carrier's side of the agent).
#[test]
fn after_a_crash_the_next_start_closes_the_record_and_byes_the_carrier() {
    for (lost_node, code) in [(false, 801), (true, 800)] {
        // The first run: a call connects, then the process dies (dropped).
        let mut w = World::new();
        w.sign_in(1, 0);
        w.call_out(1, "12025550100");
        let call = w.carrier_answers();
        let (seat, record, dialog) = w.saved.last().cloned().unwrap();
        assert!(record.hangup_ms.is_none());
        let mut carrier = std::mem::replace(
            &mut w.carrier,
            UserAgent::new(addr(CARRIER), Timers::default()),
        );
        // The next run (or another node), same carrier.
        let mut w2 = World::new();
        std::mem::swap(&mut w2.carrier, &mut carrier);
        w2.now = w.now + Duration::from_secs(3);
        let open = vec![OpenCall {
            tenant_id: 1,
            seat,
            record,
            dialog,
        }];
        if lost_node {
            w2.sb.recover_as(
                open,
                seatline_protocol::HangupReason::NetworkCarrier,
                w2.now,
            );
        } else {
            w2.sb.recover(open, w2.now);
        }
        w2.step();
        assert!(w2.carrier_ended(call), "the carrier's leg got a BYE");
        let r = w2.last_record();
        assert_eq!(r.hangup_code, Some(code));
        assert!(r.hangup_ms.is_some());
        let tab = w2.sign_in(1, 0);
        assert_eq!(w2.codes(tab), vec![i64::from(code), 5]);
    }
}

#[test]
fn forged_requests_from_outside_the_trunk_change_nothing() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    // An INVITE from another address never rings anyone.
    let mut attacker = UserAgent::new(addr("127.0.0.2:5060"), Timers::default());
    attacker.invite("666", "12025550170", addr(SB), &carrier_sdp(), &[], w.now);
    while let Some(t) = attacker.poll_transmit() {
        w.sb.handle_datagram(&t.bytes, addr("127.0.0.2:5060"), w.now);
    }
    w.step();
    assert!(w.codes(tab).is_empty());
    // A BYE with the right Call-ID and wrong tags, even from the trunk, ends nothing.
    w.call_out(1, "12025550100");
    let call = w.carrier_answers();
    let invite_call_id = w.saved.last().map(|_| ()).is_some();
    assert!(invite_call_id);
    let snap = w.sb.user_agent().dialog_snapshot(1).expect("our dialog");
    let bye = format!(
        "BYE sip:seatline@{SB} SIP/2.0\r\nVia: SIP/2.0/UDP {CARRIER};branch=z9hG4bKforged1\r\nFrom: <sip:x@{CARRIER}>;tag=wrong\r\nTo: <sip:y@{SB}>;tag=alsowrong\r\nCall-ID: {}\r\nCSeq: 99 BYE\r\nContent-Length: 0\r\n\r\n",
        snap.call_id
    );
    w.sb.handle_datagram(bye.as_bytes(), addr(CARRIER), w.now);
    w.sb.handle_datagram(bye.as_bytes(), addr("127.0.0.2:5060"), w.now);
    w.step();
    assert_eq!(w.sb.call_count(), 1);
    assert_eq!(w.codes(tab), vec![0, 2]);
    assert!(!w.carrier_ended(call));
}

#[test]
fn the_same_seed_gives_the_same_calls() {
    let run = |seed| {
        let mut w = World::with(settings(), seed);
        w.sign_in(1, 0);
        w.call_out(1, "12025550100");
        w.last_record().call_id
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn a_failed_audio_path_with_no_tab_to_take_it_ends_with_801() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    let call = w.carrier_answers();
    // The audio leg fails but a new one connects in time: the call stays.
    w.sb.audio_lost(1, w.now);
    w.talk(1, Duration::from_secs(3));
    w.sb.audio_up(1);
    w.talk(1, Duration::from_secs(20));
    assert!(!w.carrier_ended(call));
    // It fails again and nothing takes it over: 801 at the end of the grace time.
    w.sb.audio_lost(1, w.now);
    w.talk(1, Duration::from_millis(9_999));
    assert!(!w.carrier_ended(call));
    w.talk(1, Duration::from_millis(1));
    assert!(w.carrier_ended(call));
    assert_eq!(w.codes(tab), vec![0, 2, 801, 5]);
    assert_eq!(w.last_record().hangup_code, Some(801));
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn quality_samples_of_a_connected_call_reach_every_tab_and_the_record() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    let (b, _) = w.open_tab(1, 0);
    w.call_out(1, "12025550100");
    // Ringing: there is nothing to measure yet.
    w.sample(1, 1.0, 5.0, 40.0, 4.4);
    assert!(
        w.qualities(a).is_empty(),
        "no sample before the call connects"
    );
    w.advance(Duration::from_millis(800));
    w.carrier_answers();
    let call_id = w.dials(a).last().unwrap()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let up = w.last_record();
    assert_eq!(
        (up.loss_pct, up.jitter_ms, up.rtt_ms, up.mos, up.mos_min),
        (None, None, None, None, None),
        "nothing measured yet at connect"
    );
    let saves = w.saved.len();

    w.talk(1, Duration::from_secs(5));
    w.sample(1, 0.5, 8.0, 60.0, 4.3);
    w.talk(1, Duration::from_secs(5));
    w.sample(1, 4.0, 30.0, 120.0, 3.1);
    // Not numbers: ignored whole.
    w.sample(1, f64::NAN, 8.0, 60.0, 4.0);
    w.sample(1, 1.0, 8.0, 60.0, f64::NAN);
    w.sample(1, 1.0, f64::INFINITY, 60.0, 4.0);
    // Out of range: held to the sane bounds.
    w.talk(1, Duration::from_secs(5));
    w.sample(1, 120.0, -3.0, 70_000.0, 7.0);

    let want = |loss_pct, jitter_ms, rtt_ms, mos| CallQuality {
        call_id: call_id.clone(),
        loss_pct,
        jitter_ms,
        rtt_ms,
        mos,
    };
    let seen = vec![
        want(0.5, 8.0, 60.0, 4.3),
        want(4.0, 30.0, 120.0, 3.1),
        want(100.0, 0.0, 60_000.0, 5.0),
    ];
    assert_eq!(w.qualities(a), seen, "the first tab");
    assert_eq!(w.qualities(b), seen, "every tab of the agent");
    assert_eq!(w.saved.len(), saves, "a sample writes nothing by itself");

    w.sb.hang_up(1, w.now);
    w.step();
    assert_eq!(w.codes(a), vec![0, 2, 5]);
    let r = w.last_record();
    assert_eq!(r.hangup_ms, Some(w.ms()));
    assert_eq!(
        (r.loss_pct, r.jitter_ms, r.rtt_ms),
        (Some(100.0), Some(0.0), Some(60_000.0)),
        "the last sample's loss, jitter and round trip"
    );
    assert!(
        close(r.mos.unwrap(), (4.3 + 3.1 + 5.0) / 3.0),
        "the mean MOS: {:?}",
        r.mos
    );
    assert_eq!(r.mos_min, Some(3.1), "the worst MOS");

    // After the hang-up (in wrap-up, then idle): nothing.
    let saves = w.saved.len();
    w.sample(1, 2.0, 10.0, 50.0, 4.0);
    w.advance(Duration::from_secs(3));
    w.sample(1, 2.0, 10.0, 50.0, 4.0);
    assert_eq!(w.qualities(a).len(), 3, "no sample after the hang-up");
    assert_eq!(w.saved.len(), saves);
}

#[test]
fn quality_of_an_inbound_call_counts_from_the_answer_and_other_seats_hear_nothing() {
    let mut w = World::new();
    let a = w.sign_in(1, 0);
    w.advance(Duration::from_secs(1));
    let b = w.sign_in(2, 0);
    let call = place_inbound(&mut w, "");
    assert_eq!(w.codes(a), vec![1]);
    w.sample(1, 0.0, 2.0, 20.0, 4.4);
    assert!(w.qualities(a).is_empty(), "ringing: no sample");
    w.sb.answer(1, true, w.now);
    w.step();
    assert_eq!(w.codes(a), vec![1, 2]);
    w.sample(1, 6.5, 40.0, 90.0, 2.9);
    w.sample(2, 0.0, 2.0, 20.0, 4.4);
    w.sample(99, 0.0, 2.0, 20.0, 4.4);
    let got = w.qualities(a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        Some(got[0].call_id.as_str()),
        w.dials(a)[1]["callId"].as_str()
    );
    assert!(
        w.qualities(b).is_empty(),
        "a seat with no call hears nothing"
    );
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.step();
    let r = w.last_record();
    assert_eq!(
        (r.loss_pct, r.jitter_ms, r.rtt_ms, r.mos, r.mos_min),
        (Some(6.5), Some(40.0), Some(90.0), Some(2.9), Some(2.9))
    );
}

#[test]
fn a_call_never_measured_keeps_empty_figures() {
    let mut w = World::new();
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    w.carrier_answers();
    w.sample(1, f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    w.sb.hang_up(1, w.now);
    w.step();
    assert_eq!(w.codes(tab), vec![0, 2, 5]);
    assert!(w.qualities(tab).is_empty());
    let r = w.last_record();
    assert_eq!(
        (r.loss_pct, r.jitter_ms, r.rtt_ms, r.mos, r.mos_min),
        (None, None, None, None, None)
    );
}

fn recordings_of(w: &World, conn: ConnId) -> Vec<bool> {
    w.tabs[&conn]
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Recording { on, .. } => Some(*on),
            _ => None,
        })
        .collect()
}

fn record_outs(w: &World) -> Vec<bool> {
    w.media
        .iter()
        .filter_map(|m| match m {
            MediaOut::Record { on, .. } => Some(*on),
            _ => None,
        })
        .collect()
}

#[test]
fn a_group_that_records_every_call_records_from_the_answer_and_cannot_stop() {
    let mut w = World::new();
    w.sb.set_recording(
        1,
        RecordingPolicy {
            mode: RecordingMode::Off,
            groups: [("G001".to_string(), RecordingMode::All)].into(),
        },
    );
    let tab = w.sign_in(1, 0);
    w.call_out(1, "12025550100");
    w.advance(Duration::from_millis(800));
    assert!(
        record_outs(&w).is_empty(),
        "nothing is recorded while it rings"
    );
    w.carrier_answers();
    let call_id = w.dials(tab)[0]["callId"].as_str().unwrap().to_string();
    assert!(w.media.contains(&MediaOut::Record {
        seat: 1,
        tenant_id: 1,
        call_id: call_id.clone(),
        on: true
    }));
    assert_eq!(recordings_of(&w, tab), vec![true]);
    assert_eq!(w.sb.record(1, false), Err(RecordError::Required));
    assert_eq!(w.sb.record(1, true), Ok(()), "already on: nothing changes");
    w.step();
    assert_eq!(record_outs(&w), vec![true]);
    // A tab opened now is shown the recording.
    let (_, view) = w.open_tab(1, 0);
    assert!(view.recording);
    w.advance(Duration::from_secs(3));
    w.sb.hang_up(1, w.now);
    w.step();
    assert!(w.last_record().recorded);
    let (_, view) = w.open_tab(1, 0);
    assert!(!view.recording, "no call, no recording");
}

#[test]
fn on_demand_records_between_start_and_stop_and_elsewhere_it_is_refused() {
    let mut w = World::new();
    w.sb.set_recording(
        1,
        RecordingPolicy {
            mode: RecordingMode::OnDemand,
            groups: Default::default(),
        },
    );
    let tab = w.sign_in(1, 0);
    assert_eq!(w.sb.record(1, true), Err(RecordError::NotConnected));
    w.call_out(1, "12025550100");
    w.advance(Duration::from_millis(800));
    assert_eq!(
        w.sb.record(1, true),
        Err(RecordError::NotConnected),
        "not while it rings"
    );
    w.carrier_answers();
    assert!(record_outs(&w).is_empty(), "on demand: not from the answer");
    assert_eq!(w.sb.record(1, true), Ok(()));
    w.advance(Duration::from_secs(2));
    assert_eq!(w.sb.record(1, false), Ok(()));
    w.step();
    assert_eq!(record_outs(&w), vec![true, false]);
    assert_eq!(recordings_of(&w, tab), vec![true, false]);
    w.sb.hang_up(1, w.now);
    w.step();
    assert!(w.last_record().recorded, "it was recorded for a while");

    // Another tenant's agent: recording is off there (no setting at all).
    let mut other = spec(2, 0);
    other.tenant_id = 2;
    w.sb.sign_in(&other, true, w.now);
    w.next_conn += 1;
    let tab2 = w.next_conn;
    w.seat_tabs.entry(2).or_default().insert(tab2);
    w.sb.tab_opened(&other, tab2, w.now);
    w.step();
    w.call_out(2, "12025550100");
    w.advance(Duration::from_millis(800));
    w.carrier_answers();
    assert_eq!(w.sb.record(2, true), Err(RecordError::Off));
    w.sb.hang_up(2, w.now);
    w.step();
    assert!(!w.last_record().recorded);
    assert!(w.tabs[&tab2]
        .iter()
        .all(|e| !matches!(e, ServerEvent::Recording { .. })));
    assert_eq!(record_outs(&w), vec![true, false], "nothing for tenant 2");
}
