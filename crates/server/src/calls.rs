//! The call path's async shell: one task owns the SIP trunk socket and the
//! user agent, places and ends calls for agents, and turns SIP events into
//! `dialStatus` messages (to every tab of the agent), agent state changes
//! and call records.

use crate::App;
use seatline_agent::AgentInput;
use seatline_calls::outcome::reason_for_sip;
use seatline_calls::policy::{check_callee, check_lengths, pick_caller, CallOut};
use seatline_calls::record::{CallRecord, Direction};
use seatline_sip::sdp::{AudioSdp, Codec, Direction as SdpDirection};
use seatline_sip::{CallRef, Timers, UaEvent, UserAgent};
use seatline_store::{now_ms, CallRow, Seat};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use crate::media::{MediaCmd, MediaHandle};
use seatline_protocol::ServerEvent;

pub enum Command {
    Place { seat: Seat, record: CallRecord },
    HangUp { seat_id: i64 },
    Control { seat_id: i64, control: Control },
    /// The agent answers (true) or rejects (false) the call ringing at them.
    Answer { seat_id: i64, accept: bool },
}

/// How long an inbound call rings at one agent before the next is tried.
pub const RING_TIMEOUT: Duration = Duration::from_secs(20);

/// In-call controls from the agent (any tab) or the host.
pub enum Control {
    Dtmf(String),
    Mute(bool),
    Hold(bool),
}

#[derive(Clone)]
pub struct Calls {
    tx: mpsc::UnboundedSender<Command>,
    turn: Arc<AtomicUsize>,
    pub sip_addr: SocketAddr,
    pub trunk: SocketAddr,
}

struct Active {
    record: CallRecord,
    seat_id: i64,
    tenant_id: i64,
    /// Our SDP offer, kept to re-offer it for hold and resume.
    offer: AudioSdp,
    muted: bool,
    held: bool,
    /// The hold state asked for, until the carrier accepts it.
    want_held: Option<bool>,
    version: u64,
    /// For an inbound call not yet answered: its routing state.
    inbound: Option<Inbound>,
}

struct Inbound {
    group_no: String,
    tried: Vec<i64>,
    ring_until: Instant,
    /// The carrier's offer, and our RTP socket for the answer.
    offer: AudioSdp,
    rtp: Option<UdpSocket>,
}

fn new_call_id() -> String {
    seatline_sip::random_token(24)
}

fn row(r: &CallRecord, tenant_id: i64, seat_id: Option<i64>) -> CallRow {
    CallRow {
        id: r.call_id.clone(),
        tenant_id,
        seat_id,
        direction: r.direction as i64,
        caller: r.caller.clone(),
        callee: r.callee.clone(),
        order_id: r.order_id.clone(),
        params: r.params.clone(),
        other: r.other.clone(),
        start_ms: r.start_ms,
        connected_ms: r.connected_ms,
        hangup_ms: r.hangup_ms,
        hangup_code: r.hangup_code.map(i64::from),
        sip_code: r.sip_code.map(i64::from),
    }
}

fn save(app: &App, r: &CallRecord, tenant_id: i64, seat_id: Option<i64>) {
    let store = app.store.clone();
    let row = row(r, tenant_id, seat_id);
    tokio::spawn(async move {
        if let Err(e) = store.save_call(&row).await {
            tracing::error!("cannot write a call record: {e}");
        }
    });
}

impl Calls {
    pub async fn start(
        app_cell: Arc<tokio::sync::OnceCell<App>>,
        listen: SocketAddr,
        trunk: SocketAddr,
        media: MediaHandle,
    ) -> anyhow::Result<Calls> {
        let sock = Arc::new(UdpSocket::bind(listen).await?);
        let sip_addr = sock.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(app_cell, sock, sip_addr, trunk, media, rx));
        Ok(Calls { tx, turn: Arc::new(AtomicUsize::new(0)), sip_addr, trunk })
    }

    /// A `callOut` from a tab of this agent. Checks it, then places it or
    /// reports why not; every outcome reaches every tab as `dialStatus`.
    pub async fn call_out(&self, app: &App, seat: Seat, op: CallOut, session_ok: bool) {
        let now = now_ms();
        let mut record = CallRecord::new(new_call_id(), Direction::Outbound, op.caller.clone(), op.callee.clone(), now);
        record.order_id = op.order_id.clone();
        record.params = op.params.clone();
        let checked = if !session_ok {
            Err(seatline_protocol::HangupReason::SessionExpired)
        } else {
            check_lengths(&op).and_then(|_| check_callee(&op.callee, &op.country_code))
        };
        let callee = match checked {
            Ok(c) => c,
            Err(reason) => return self.refuse(app, &seat, record, reason as u16),
        };
        record.callee = callee;
        let (owned, pool) = match app.store.dids(seat.tenant_id).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("cannot read DIDs: {e}");
                return self.refuse(app, &seat, record, seatline_protocol::HangupReason::NetworkCarrier as u16);
            }
        };
        match pick_caller(&op.caller, &owned, &pool, self.turn.fetch_add(1, Ordering::Relaxed)) {
            Ok(c) => record.caller = c,
            Err(reason) => return self.refuse(app, &seat, record, reason as u16),
        }
        if let Err(e) = app.hub.agent_input(seat.id, AgentInput::Dial { call: record.call_id.clone() }, Instant::now()) {
            tracing::info!("callOut refused: {e}");
            return self.refuse(app, &seat, record, seatline_protocol::HangupReason::NetworkAgent as u16);
        }
        let _ = self.tx.send(Command::Place { seat, record });
    }

    fn refuse(&self, app: &App, seat: &Seat, mut record: CallRecord, reason: u16) {
        for m in record.failure_messages(reason, now_ms()) {
            app.hub.dial(seat.id, m);
        }
        save(app, &record, seat.tenant_id, Some(seat.id));
    }

    pub fn hang_up(&self, seat_id: i64) {
        let _ = self.tx.send(Command::HangUp { seat_id });
    }

    pub fn answer(&self, seat_id: i64, accept: bool) {
        let _ = self.tx.send(Command::Answer { seat_id, accept });
    }

    pub fn control(&self, seat_id: i64, control: Control) {
        let _ = self.tx.send(Command::Control { seat_id, control });
    }
}

async fn run(
    app_cell: Arc<tokio::sync::OnceCell<App>>,
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    trunk: SocketAddr,
    media: MediaHandle,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut ua = UserAgent::new(local, Timers::default());
    let mut active: HashMap<CallRef, Active> = HashMap::new();
    let mut buf = vec![0u8; 65_535];
    let app = loop {
        if let Some(app) = app_cell.get() {
            break app.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    loop {
        let ring = active.values().filter_map(|a| a.inbound.as_ref().map(|i| i.ring_until)).min();
        let next = ua.poll_timeout().into_iter().chain(ring).min().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    ua.handle_datagram(&buf[..n], from, Instant::now());
                }
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                match cmd {
                    Command::Place { seat, record } => place(&app, &media, &mut ua, &mut active, trunk, seat, record).await,
                    Command::HangUp { seat_id } => {
                        if let Some((call, a)) = active.iter().find(|(_, a)| a.seat_id == seat_id) {
                            if a.inbound.is_some() {
                                // Hanging up a ringing inbound call is rejecting it.
                                let call = *call;
                                reject(&app, &mut ua, &mut active, call, Instant::now());
                            } else {
                                ua.hang_up(*call, Instant::now());
                            }
                        }
                    }
                    Command::Answer { seat_id, accept } => {
                        let found = active.iter().find(|(_, a)| a.seat_id == seat_id && a.inbound.is_some()).map(|(c, _)| *c);
                        if let Some(call) = found {
                            if accept {
                                answer(&app, &media, &mut ua, &mut active, call);
                            } else {
                                reject(&app, &mut ua, &mut active, call, Instant::now());
                            }
                        }
                    }
                    Command::Control { seat_id, control } => {
                        if let Some((call, a)) = active.iter_mut().find(|(_, a)| a.seat_id == seat_id) {
                            control_call(&app, &media, &mut ua, *call, a, control);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                ua.handle_timeout(now);
                // Rang too long at one agent: the next one.
                let due: Vec<CallRef> = active
                    .iter()
                    .filter(|(_, a)| a.inbound.as_ref().is_some_and(|i| i.ring_until <= now))
                    .map(|(c, _)| *c)
                    .collect();
                for call in due {
                    unassign(&app, &mut active, call, now, false);
                    offer_next(&app, &mut ua, &mut active, call, now);
                }
            }
        }
        let mut events = Vec::new();
        while let Some(ev) = ua.poll_event() {
            events.push(ev);
        }
        for ev in events {
            match ev {
                UaEvent::Incoming { call, from_user, to_user, sdp, headers } => {
                    incoming(&app, &mut ua, &mut active, call, from_user, to_user, sdp, headers).await;
                }
                ev => on_event(&app, &media, &mut ua, &mut active, ev),
            }
        }
        while let Some(t) = ua.poll_transmit() {
            let _ = sock.send_to(&t.bytes, t.to).await;
        }
    }
}

fn control_call(app: &App, media: &MediaHandle, ua: &mut UserAgent, call: CallRef, a: &mut Active, control: Control) {
    let connected = a.record.connected_ms.is_some();
    match control {
        Control::Dtmf(digits) => {
            if connected && !digits.is_empty() {
                media.send(MediaCmd::Dtmf { seat_id: a.seat_id, digits });
            }
        }
        Control::Mute(on) => {
            a.muted = on;
            media.send(MediaCmd::Mute { seat_id: a.seat_id, on });
            app.hub.broadcast(a.seat_id, &ServerEvent::CallControl { muted: a.muted, held: a.held });
        }
        Control::Hold(on) => {
            if !connected || a.held == on || a.want_held.is_some() {
                return;
            }
            // Hold is a re-INVITE with sendonly (RFC 3264 §8.4); resume with sendrecv.
            a.want_held = Some(on);
            a.version += 1;
            let mut sdp = a.offer.clone();
            sdp.direction = if on { SdpDirection::SendOnly } else { SdpDirection::SendRecv };
            ua.reoffer(call, sdp.to_string(1, a.version).as_bytes(), Instant::now());
        }
    }
}

async fn place(
    app: &App,
    media: &MediaHandle,
    ua: &mut UserAgent,
    active: &mut HashMap<CallRef, Active>,
    trunk: SocketAddr,
    seat: Seat,
    record: CallRecord,
) {
    let rtp = match UdpSocket::bind(SocketAddr::new(ua.local_addr().ip(), 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("no RTP port: {e}");
            let mut record = record;
            for m in record.failure_messages(seatline_protocol::HangupReason::NetworkCarrier as u16, now_ms()) {
                app.hub.dial(seat.id, m);
            }
            let _ = app.hub.agent_input(seat.id, AgentInput::Ended { call: record.call_id.clone() }, Instant::now());
            save(app, &record, seat.tenant_id, Some(seat.id));
            return;
        }
    };
    let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
    let offer = AudioSdp {
        addr: ua.local_addr().ip(),
        port,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        dtmf_pt: Some(101),
        direction: SdpDirection::SendRecv,
    };
    let call = ua.invite(&record.caller, &record.callee, trunk, offer.to_string(1, 1).as_bytes(), &[], Instant::now());
    // The agent hears our ringback until the far end sends audio.
    media.send(MediaCmd::Bridge { seat_id: seat.id, rtp: Arc::new(rtp), ringback: true });
    app.hub.dial(seat.id, record.dial_status(0));
    save(app, &record, seat.tenant_id, Some(seat.id));
    active.insert(
        call,
        Active {
            record,
            seat_id: seat.id,
            tenant_id: seat.tenant_id,
            offer,
            muted: false,
            held: false,
            want_held: None,
            version: 1,
            inbound: None,
        },
    );
}

/// Points the media bridge at the far end's address and codec from its SDP.
fn remote_media(media: &MediaHandle, seat_id: i64, sdp: &[u8]) {
    if let Ok(s) = AudioSdp::parse(&String::from_utf8_lossy(sdp)) {
        media.send(MediaCmd::Remote {
            seat_id,
            remote: SocketAddr::new(s.addr, s.port),
            pt: s.codecs[0] as u8,
            dtmf_pt: s.dtmf_pt,
        });
    }
}

fn on_event(app: &App, media: &MediaHandle, ua: &mut UserAgent, active: &mut HashMap<CallRef, Active>, ev: UaEvent) {
    let now = Instant::now();
    match ev {
        UaEvent::Progress { call, sdp: Some(sdp), .. } => {
            // Early media (183): the carrier's own ringback or announcement.
            if let Some(a) = active.get(&call) {
                remote_media(media, a.seat_id, &sdp);
            }
        }
        UaEvent::ReofferAnswered { call, .. } => {
            let Some(a) = active.get_mut(&call) else { return };
            if let Some(on) = a.want_held.take() {
                a.held = on;
                media.send(MediaCmd::Hold { seat_id: a.seat_id, on });
            }
            app.hub.broadcast(a.seat_id, &ServerEvent::CallControl { muted: a.muted, held: a.held });
        }
        UaEvent::ReofferFailed { call, .. } => {
            let Some(a) = active.get_mut(&call) else { return };
            a.want_held = None;
            app.hub.broadcast(a.seat_id, &ServerEvent::CallControl { muted: a.muted, held: a.held });
        }
        UaEvent::Reoffer { call, sdp } => {
            // The carrier re-offers (its own hold or a media change): answer
            // with our address and the mirrored direction.
            let Some(a) = active.get_mut(&call) else { return };
            a.version += 1;
            match AudioSdp::parse(&String::from_utf8_lossy(&sdp)).and_then(|o| o.answer(a.offer.addr, a.offer.port, &a.offer.codecs)) {
                Ok(mut ans) => {
                    ans.dtmf_pt = a.offer.dtmf_pt.and(ans.dtmf_pt);
                    ua.respond_reoffer(call, 200, Some(ans.to_string(1, a.version).as_bytes()), now);
                    remote_media(media, a.seat_id, &sdp);
                }
                Err(_) => ua.respond_reoffer(call, 488, None, now),
            }
        }
        UaEvent::Answered { call, sdp } => {
            let Some(a) = active.get_mut(&call) else { return };
            remote_media(media, a.seat_id, &sdp);
            media.send(MediaCmd::Ringback { seat_id: a.seat_id, on: false });
            a.record.connected_ms = Some(now_ms());
            let _ = app.hub.agent_input(a.seat_id, AgentInput::Answered { call: a.record.call_id.clone() }, now);
            app.hub.dial(a.seat_id, a.record.dial_status(2));
            save(app, &a.record, a.tenant_id, Some(a.seat_id));
        }
        UaEvent::Failed { call, code, .. } => {
            let Some(mut a) = active.remove(&call) else { return };
            media.send(MediaCmd::Unbridge { seat_id: a.seat_id });
            a.record.sip_code = Some(code);
            match reason_for_sip(code) {
                Some(reason) => {
                    for m in a.record.failure_messages(reason as u16, now_ms()) {
                        app.hub.dial(a.seat_id, m);
                    }
                }
                None => {
                    a.record.hangup_ms = Some(now_ms());
                    app.hub.dial(a.seat_id, a.record.dial_status(5));
                }
            }
            let _ = app.hub.agent_input(a.seat_id, AgentInput::Ended { call: a.record.call_id.clone() }, now);
            save(app, &a.record, a.tenant_id, Some(a.seat_id));
        }
        UaEvent::Ended { call, .. } => {
            let Some(mut a) = active.remove(&call) else { return };
            media.send(MediaCmd::Unbridge { seat_id: a.seat_id });
            a.record.hangup_ms = Some(now_ms());
            if a.seat_id == 0 {
                save(app, &a.record, a.tenant_id, None);
                return;
            }
            app.hub.dial(a.seat_id, a.record.dial_status(5));
            let _ = app.hub.agent_input(a.seat_id, AgentInput::Ended { call: a.record.call_id.clone() }, now);
            save(app, &a.record, a.tenant_id, Some(a.seat_id));
        }
        _ => {}
    }
}

/// An inbound call from the carrier to one of our DIDs.
#[allow(clippy::too_many_arguments)]
async fn incoming(
    app: &App,
    ua: &mut UserAgent,
    active: &mut HashMap<CallRef, Active>,
    call: CallRef,
    from_user: String,
    to_user: String,
    sdp: Vec<u8>,
    headers: Vec<(String, String)>,
) {
    let now = Instant::now();
    let did = to_user.trim_start_matches('+').to_string();
    let route = match app.store.did_route(&did).await {
        Ok(Some(r)) => r,
        Ok(None) => return ua.respond(call, 404, None, now),
        Err(e) => {
            tracing::error!("cannot route an inbound call: {e}");
            return ua.respond(call, 503, None, now);
        }
    };
    let offer = match AudioSdp::parse(&String::from_utf8_lossy(&sdp)) {
        Ok(o) => o,
        Err(_) => return ua.respond(call, 488, None, now),
    };
    let rtp = match UdpSocket::bind(SocketAddr::new(ua.local_addr().ip(), 0)).await {
        Ok(s) => s,
        Err(_) => return ua.respond(call, 503, None, now),
    };
    let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
    let ours = match offer.answer(ua.local_addr().ip(), port, &[Codec::Pcmu, Codec::Pcma]) {
        Ok(mut a) => {
            a.dtmf_pt = offer.dtmf_pt;
            a
        }
        Err(_) => return ua.respond(call, 488, None, now),
    };
    let mut record = CallRecord::new(new_call_id(), Direction::Inbound, from_user.trim_start_matches('+').to_string(), did, now_ms());
    record.other = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("X-Custom-Data"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    ua.respond(call, 180, None, now);
    active.insert(
        call,
        Active {
            record,
            seat_id: 0,
            tenant_id: route.0,
            offer: ours,
            muted: false,
            held: false,
            want_held: None,
            version: 1,
            inbound: Some(Inbound { group_no: route.1, tried: Vec::new(), ring_until: now + RING_TIMEOUT, offer, rtp: Some(rtp) }),
        },
    );
    offer_next(app, ua, active, call, now);
}

/// Rings the next available agent of the call's group, or gives up with 480.
fn offer_next(app: &App, ua: &mut UserAgent, active: &mut HashMap<CallRef, Active>, call: CallRef, now: Instant) {
    let Some(a) = active.get_mut(&call) else { return };
    let Some(inb) = a.inbound.as_mut() else { return };
    loop {
        let Some(seat) = app.hub.pick_agent(a.tenant_id, &inb.group_no, &inb.tried) else { break };
        inb.tried.push(seat);
        if app.hub.agent_input(seat, AgentInput::Assign { call: a.record.call_id.clone() }, now).is_ok() {
            a.seat_id = seat;
            inb.ring_until = now + RING_TIMEOUT;
            app.hub.dial(seat, a.record.dial_status(1));
            save(app, &a.record, a.tenant_id, Some(seat));
            return;
        }
    }
    // Nobody can take it: the carrier hears 480 and the record says so.
    ua.respond(call, 480, None, now);
    if let Some(mut a) = active.remove(&call) {
        a.record.hangup_ms = Some(now_ms());
        a.record.sip_code = Some(480);
        save(app, &a.record, a.tenant_id, None);
    }
}

/// Takes the ringing call away from its agent (timeout or reject).
fn unassign(app: &App, active: &mut HashMap<CallRef, Active>, call: CallRef, now: Instant, rejected: bool) {
    let Some(a) = active.get_mut(&call) else { return };
    if a.seat_id == 0 {
        return;
    }
    let input = if rejected { AgentInput::Rejected { call: a.record.call_id.clone() } } else { AgentInput::Ended { call: a.record.call_id.clone() } };
    let _ = app.hub.agent_input(a.seat_id, input, now);
    let mut gone = a.record.clone();
    gone.hangup_ms = Some(now_ms());
    app.hub.dial(a.seat_id, gone.dial_status(5));
    a.seat_id = 0;
}

fn reject(app: &App, ua: &mut UserAgent, active: &mut HashMap<CallRef, Active>, call: CallRef, now: Instant) {
    unassign(app, active, call, now, true);
    offer_next(app, ua, active, call, now);
}

fn answer(app: &App, media: &MediaHandle, ua: &mut UserAgent, active: &mut HashMap<CallRef, Active>, call: CallRef) {
    let now = Instant::now();
    let Some(a) = active.get_mut(&call) else { return };
    let Some(mut inb) = a.inbound.take() else { return };
    let Some(rtp) = inb.rtp.take() else { return };
    ua.respond(call, 200, Some(a.offer.to_string(1, 1).as_bytes()), now);
    media.send(MediaCmd::Bridge { seat_id: a.seat_id, rtp: Arc::new(rtp), ringback: false });
    media.send(MediaCmd::Remote {
        seat_id: a.seat_id,
        remote: SocketAddr::new(inb.offer.addr, inb.offer.port),
        pt: a.offer.codecs[0] as u8,
        dtmf_pt: a.offer.dtmf_pt,
    });
    a.record.connected_ms = Some(now_ms());
    let _ = app.hub.agent_input(a.seat_id, AgentInput::Answered { call: a.record.call_id.clone() }, now);
    app.hub.dial(a.seat_id, a.record.dial_status(2));
    save(app, &a.record, a.tenant_id, Some(a.seat_id));
}
