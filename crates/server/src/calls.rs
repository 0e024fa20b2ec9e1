//! The call path's async shell: one task owns the SIP trunk socket and the
//! user agent, places and ends calls for agents, and turns SIP events into
//! `dialStatus` messages (to every tab of the agent), agent state changes
//! and call records.

use crate::App;
use seatline_agent::AgentInput;
use seatline_calls::controller::{Action, AgentCommand, CallController, SipEvent};
use seatline_calls::policy::{calling_code, check_callee, check_lengths, check_policy, pick_caller, CallOut, PolicyFacts};
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

/// A call in progress: its controller (the decisions) and the shell's own
/// state for the carrier leg and the media.
struct Active {
    ctl: CallController,
    tenant_id: i64,
    /// Our SDP: the offer of an outbound call, the answer of an inbound one.
    offer: AudioSdp,
    muted: bool,
    held: bool,
    /// The hold state asked for, until the carrier accepts it.
    want_held: Option<bool>,
    version: u64,
    /// Inbound: the routing group, the carrier's offer and our RTP socket.
    inbound: Option<Inbound>,
}

struct Inbound {
    group_no: String,
    carrier: AudioSdp,
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
        match self.policy_facts(app, seat.tenant_id, &record.callee).await {
            Ok(facts) => {
                if let Err(reason) = check_policy(&calling_code(&record.callee), &facts) {
                    return self.refuse(app, &seat, record, reason as u16);
                }
            }
            Err(e) => {
                tracing::error!("cannot read the call policy: {e}");
                return self.refuse(app, &seat, record, seatline_protocol::HangupReason::NetworkCarrier as u16);
            }
        }
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

    async fn policy_facts(&self, app: &App, tenant_id: i64, callee: &str) -> Result<PolicyFacts, seatline_store::StoreError> {
        let p = app.store.policy(tenant_id).await?;
        // "Today" is the UTC day.
        let day_start = now_ms() - now_ms().rem_euclid(86_400_000);
        Ok(PolicyFacts {
            balance_cents: p.balance_cents,
            allowed_countries: p.allowed_countries,
            trial: p.trial,
            trial_calls_per_day: p.trial_calls_per_day,
            calls_today: if p.trial { app.store.outbound_calls_since(tenant_id, None, day_start).await? } else { 0 },
            max_calls_per_callee_per_day: p.max_calls_per_callee_per_day,
            callee_calls_today: if p.max_calls_per_callee_per_day > 0 {
                app.store.outbound_calls_since(tenant_id, Some(callee), day_start).await?
            } else {
                0
            },
            blacklisted: app.store.is_blacklisted(tenant_id, callee).await?,
        })
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
        let ring = active.values().filter_map(|a| a.ctl.poll_timeout()).min();
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
                    Command::HangUp { seat_id } => agent_command(&app, &media, &mut ua, &mut active, seat_id, AgentCommand::HangUp),
                    Command::Answer { seat_id, accept } => {
                        let cmd = if accept { AgentCommand::Answer } else { AgentCommand::Reject };
                        agent_command(&app, &media, &mut ua, &mut active, seat_id, cmd);
                    }
                    Command::Control { seat_id, control } => {
                        if let Some((call, a)) = active.iter_mut().find(|(_, a)| a.ctl.seat() == Some(seat_id)) {
                            control_call(&app, &media, &mut ua, *call, a, control);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                ua.handle_timeout(now);
                // Rang too long at one agent: the next one.
                let due: Vec<CallRef> = active.iter().filter(|(_, a)| a.ctl.poll_timeout().is_some_and(|t| t <= now)).map(|(c, _)| *c).collect();
                for call in due {
                    if let Some(a) = active.get_mut(&call) {
                        a.ctl.handle_timeout(now, now_ms());
                    }
                    apply(&app, &media, &mut ua, &mut active, call);
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
                    incoming(&app, &media, &mut ua, &mut active, call, from_user, to_user, sdp, headers).await;
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
    let Some(seat_id) = a.ctl.seat() else { return };
    let connected = a.ctl.is_connected();
    match control {
        Control::Dtmf(digits) => {
            if connected && !digits.is_empty() {
                media.send(MediaCmd::Dtmf { seat_id, digits });
            }
        }
        Control::Mute(on) => {
            a.muted = on;
            media.send(MediaCmd::Mute { seat_id, on });
            app.hub.broadcast(seat_id, &ServerEvent::CallControl { muted: a.muted, held: a.held });
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

/// Carries out what a call's controller decided, then forgets ended calls.
fn apply(app: &App, media: &MediaHandle, ua: &mut UserAgent, active: &mut HashMap<CallRef, Active>, call: CallRef) {
    let Some(a) = active.get_mut(&call) else { return };
    while let Some(action) = a.ctl.poll_action() {
        let now = Instant::now();
        match action {
            Action::Dial { seat, content } => {
                // The agent hears an inbound call ring in the tab holding the audio.
                let ringing = content["code"] == 1;
                if ringing || content["code"] == 2 || content["code"] == 5 {
                    media.send(MediaCmd::Ring { seat_id: seat, on: ringing });
                }
                app.hub.dial(seat, content);
            }
            Action::Agent { seat, input } => {
                let _ = app.hub.agent_input(seat, input, now);
            }
            Action::PickAgent { mut tried } => {
                let group = a.inbound.as_ref().map(|i| i.group_no.clone()).unwrap_or_default();
                let mut picked = None;
                // Pick and assign together: an agent can become busy in between.
                while let Some(seat) = app.hub.pick_agent(a.tenant_id, &group, &tried) {
                    tried.push(seat);
                    let input = AgentInput::Assign { call: a.ctl.record().call_id.clone() };
                    if app.hub.agent_input(seat, input, now).is_ok() {
                        picked = Some(seat);
                        break;
                    }
                }
                a.ctl.agent_picked(picked, now, now_ms());
            }
            Action::RingCarrier => ua.respond(call, 180, None, now),
            Action::AnswerCarrier { seat } => {
                let Some(inb) = a.inbound.as_mut() else { continue };
                let Some(rtp) = inb.rtp.take() else { continue };
                ua.respond(call, 200, Some(a.offer.to_string(1, 1).as_bytes()), now);
                media.send(MediaCmd::Bridge { seat_id: seat, rtp: Arc::new(rtp), ringback: false });
                media.send(MediaCmd::Remote {
                    seat_id: seat,
                    remote: SocketAddr::new(inb.carrier.addr, inb.carrier.port),
                    pt: a.offer.codecs[0] as u8,
                    dtmf_pt: a.offer.dtmf_pt,
                });
            }
            Action::RefuseCarrier { code } => ua.respond(call, code, None, now),
            Action::HangUpCarrier => ua.hang_up(call, now),
            Action::Unbridge { seat } => media.send(MediaCmd::Unbridge { seat_id: seat }),
            Action::Save => save(app, a.ctl.record(), a.tenant_id, a.ctl.seat()),
        }
    }
    if a.ctl.is_ended() {
        active.remove(&call);
    }
}

fn agent_command(app: &App, media: &MediaHandle, ua: &mut UserAgent, active: &mut HashMap<CallRef, Active>, seat_id: i64, cmd: AgentCommand) {
    let Some((call, a)) = active.iter_mut().find(|(_, a)| a.ctl.seat() == Some(seat_id)) else { return };
    let call = *call;
    a.ctl.handle_agent(cmd, now_ms());
    apply(app, media, ua, active, call);
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
    let ctl = CallController::outbound(record, seat.id);
    active.insert(
        call,
        Active { ctl, tenant_id: seat.tenant_id, offer, muted: false, held: false, want_held: None, version: 1, inbound: None },
    );
    apply(app, media, ua, active, call);
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
    let call = match &ev {
        UaEvent::Progress { call, .. }
        | UaEvent::Answered { call, .. }
        | UaEvent::Failed { call, .. }
        | UaEvent::Ended { call, .. }
        | UaEvent::Reoffer { call, .. }
        | UaEvent::ReofferAnswered { call, .. }
        | UaEvent::ReofferFailed { call, .. }
        | UaEvent::Confirmed { call }
        | UaEvent::Incoming { call, .. } => *call,
    };
    let Some(a) = active.get_mut(&call) else { return };
    let seat = a.ctl.seat();
    match ev {
        UaEvent::Progress { sdp: Some(sdp), .. } => {
            // Early media (183): the carrier's own ringback or announcement.
            if let Some(seat) = seat {
                remote_media(media, seat, &sdp);
            }
        }
        UaEvent::Answered { sdp, .. } => {
            if let Some(seat) = seat {
                remote_media(media, seat, &sdp);
                media.send(MediaCmd::Ringback { seat_id: seat, on: false });
            }
            a.ctl.handle_sip(SipEvent::Answered, now_ms());
        }
        UaEvent::Failed { code, .. } => a.ctl.handle_sip(SipEvent::Failed { code }, now_ms()),
        UaEvent::Ended { .. } => a.ctl.handle_sip(SipEvent::Ended, now_ms()),
        UaEvent::ReofferAnswered { .. } => {
            if let Some(on) = a.want_held.take() {
                a.held = on;
                if let Some(seat) = seat {
                    media.send(MediaCmd::Hold { seat_id: seat, on });
                }
            }
            if let Some(seat) = seat {
                app.hub.broadcast(seat, &ServerEvent::CallControl { muted: a.muted, held: a.held });
            }
        }
        UaEvent::ReofferFailed { .. } => {
            a.want_held = None;
            if let Some(seat) = seat {
                app.hub.broadcast(seat, &ServerEvent::CallControl { muted: a.muted, held: a.held });
            }
        }
        UaEvent::Reoffer { sdp, .. } => {
            // The carrier re-offers (its own hold or a media change): answer
            // with our address and the mirrored direction.
            a.version += 1;
            match AudioSdp::parse(&String::from_utf8_lossy(&sdp)).and_then(|o| o.answer(a.offer.addr, a.offer.port, &a.offer.codecs)) {
                Ok(mut ans) => {
                    ans.dtmf_pt = a.offer.dtmf_pt.and(ans.dtmf_pt);
                    ua.respond_reoffer(call, 200, Some(ans.to_string(1, a.version).as_bytes()), now);
                    if let Some(seat) = seat {
                        remote_media(media, seat, &sdp);
                    }
                }
                Err(_) => ua.respond_reoffer(call, 488, None, now),
            }
        }
        _ => {}
    }
    apply(app, media, ua, active, call);
}

/// An inbound call from the carrier to one of our DIDs.
#[allow(clippy::too_many_arguments)]
async fn incoming(
    app: &App,
    media: &MediaHandle,
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
    let (tenant_id, group_no) = match app.store.did_route(&did).await {
        Ok(Some(r)) => r,
        Ok(None) => return ua.respond(call, 404, None, now),
        Err(e) => {
            tracing::error!("cannot route an inbound call: {e}");
            return ua.respond(call, 503, None, now);
        }
    };
    let Ok(carrier) = AudioSdp::parse(&String::from_utf8_lossy(&sdp)) else {
        return ua.respond(call, 488, None, now);
    };
    let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ua.local_addr().ip(), 0)).await else {
        return ua.respond(call, 503, None, now);
    };
    let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
    let Ok(mut ours) = carrier.answer(ua.local_addr().ip(), port, &[Codec::Pcmu, Codec::Pcma]) else {
        return ua.respond(call, 488, None, now);
    };
    ours.dtmf_pt = carrier.dtmf_pt;
    let mut record = CallRecord::new(new_call_id(), Direction::Inbound, from_user.trim_start_matches('+').to_string(), did, now_ms());
    record.other = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("X-Custom-Data"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let ctl = CallController::inbound(record, RING_TIMEOUT);
    active.insert(
        call,
        Active {
            ctl,
            tenant_id,
            offer: ours,
            muted: false,
            held: false,
            want_held: None,
            version: 1,
            inbound: Some(Inbound { group_no, carrier, rtp: Some(rtp) }),
        },
    );
    apply(app, media, ua, active, call);
}
