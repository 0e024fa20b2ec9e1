//! The shell around the switchboard: sessions, the tabs' queues, and the
//! carrying-out of the switchboard's outputs.
//!
//! Every decision of the call path (agents, calls, timers, the ACD, SIP) is
//! in [`seatline_switchboard::Switchboard`]. This file keeps what is only
//! I/O: which WebSocket queue belongs to which tab, which session a tab
//! belongs to (and when an idle session expires), the RTP sockets bound for
//! calls, and the channels to the SIP sender, the media plane and the one
//! ordered store writer. The switchboard's outputs are taken under the same
//! lock as its inputs, so they leave in the order it made them.
//!
//! Must never: await while holding its lock, or block on a slow tab (a tab
//! whose queue is full is disconnected; it reconnects to the full state).

use crate::media::{MediaCmd, MediaHandle, RtpPair};
use axum::extract::ws::Utf8Bytes;
use seatline_agent::{AgentConfig, AgentError, Status};
use seatline_calls::policy::CallOut;
use seatline_calls::record::CallRecord;
use seatline_protocol::ServerEvent;
use seatline_sip::{CallRef, Transmit};
use seatline_store::{CallRow, Seat};
use seatline_switchboard::{
    AgentLabel, CallOutFacts, Control, MediaOut, OpenCall, Output, Route, RtpPort, SeatSpec,
    Supervise, SuperviseError, Switchboard, TabView, Wallboard,
};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// A message queued for one tab's WebSocket.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// Send a close frame and end the connection.
    Close,
}

pub type TabTx = mpsc::Sender<Outgoing>;

/// How many messages may wait for one tab before it counts as stuck.
pub const TAB_QUEUE: usize = 32;

pub type ConnId = u64;

/// What the store's one writer must do, in order.
#[derive(Debug)]
pub enum Persist {
    /// Remember an agent's chosen status: (seat id, agentStatus code).
    Status(i64, i64),
    /// Write a call record; the last write of a call is its final state.
    Call(Box<CallRow>),
    /// Store a tenant's balance: (tenant, its new figure or difference).
    Balance(i64, seatline_switchboard::BalanceChange),
    /// Answer once everything before it is written (shutdown, tests).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// What the SIP sender must do, in order.
#[derive(Debug)]
pub enum SipOut {
    Send(Transmit),
    /// Answer once everything before it is sent.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The channels the hub's outputs go to.
pub struct HubIo {
    pub persist: mpsc::UnboundedSender<Persist>,
    pub sip: mpsc::UnboundedSender<SipOut>,
    pub media: MediaHandle,
    /// Inbound calls whose DID must be looked up in the store.
    pub routes: mpsc::UnboundedSender<(CallRef, String)>,
}

/// An audio clip the media plane loops (8 kHz samples).
type Clip = std::sync::Arc<[i16]>;

pub struct Hub {
    inner: Mutex<Inner>,
    /// Each tenant's own waiting music (8 kHz samples), when it has one.
    music: std::sync::RwLock<HashMap<i64, std::sync::Arc<[i16]>>>,
    /// Each DID's menu prompt, by (tenant, DID), when it has one.
    prompts: std::sync::RwLock<HashMap<(i64, String), Clip>>,
    idle: Duration,
    io: HubIo,
    /// Wakes the timer task when the switchboard's next deadline may be earlier.
    pub timer: Notify,
}

struct Inner {
    sb: Switchboard,
    sessions: HashMap<String, SessionSlot>,
    conns: HashMap<ConnId, (i64, String)>,
    /// Each agent's live sessions and tab queues, by seat.
    agents: HashMap<i64, AgentConns>,
    /// RTP sockets bound for calls, by local port.
    rtp: HashMap<RtpPort, RtpPair>,
    next_conn: ConnId,
    /// Tabs disconnected because their queue was full.
    dropped_tabs: u64,
    /// Per tenant with a console open: bumped when its wallboard changed.
    walls: HashMap<i64, watch::Sender<u64>>,
    /// Per tenant with a console open: the last snapshot as JSON, shared
    /// by every console of the tenant while it is current.
    wall_json: HashMap<i64, SharedWall>,
}

/// A tenant's wallboard snapshot, serialised once for all its consoles.
#[derive(Debug, Clone)]
pub struct SharedWall {
    /// The tenant's change count when it was made.
    version: u64,
    made: Instant,
    pub json: std::sync::Arc<str>,
    /// It shows a timer (a call, or an agent signed in): refresh it each second.
    pub ticking: bool,
}

/// How long a snapshot with no change since may be handed to another
/// console: its timers are at most this late.
const WALL_SHARE_FOR: Duration = Duration::from_millis(200);

/// One agent's sessions and tab queues: a few of each, so lists, not maps.
#[derive(Default)]
struct AgentConns {
    sessions: Vec<String>,
    tabs: Vec<(ConnId, TabTx)>,
}

impl AgentConns {
    fn tab(&self, conn: ConnId) -> Option<&TabTx> {
        self.tabs.iter().find(|(c, _)| *c == conn).map(|(_, tx)| tx)
    }

    fn remove_tab(&mut self, conn: ConnId) -> Option<TabTx> {
        let i = self.tabs.iter().position(|(c, _)| *c == conn)?;
        Some(self.tabs.swap_remove(i).1)
    }
}

struct SessionSlot {
    seat_id: i64,
    /// The signed-in user (the seat's), so that all of a user's sessions
    /// can be ended at once.
    user_id: i64,
    last_seen: Instant,
    last_written: Instant,
    conns: HashSet<ConnId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("no agentStatus code {0}; codes are 1 to 7")]
    InvalidStatus(i64),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("this connection is not signed in")]
    NoConnection,
}

impl HubError {
    /// The `code` of the `error` event a tab receives.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::InvalidStatus(_) => "invalidStatus",
            HubError::Agent(AgentError::BusyWithCall) => "busyWithCall",
            HubError::Agent(AgentError::NotSignedIn) | HubError::NoConnection => "notSignedIn",
            HubError::Agent(_) => "notAvailable",
        }
    }
}

pub fn agent_config(seat: &Seat) -> AgentConfig {
    AgentConfig {
        initial_status: Status::from_code(seat.initial_status).unwrap_or(Status::Idle),
        acw: Some(Duration::from_secs(seat.acw_seconds.max(0) as u64)),
    }
}

pub fn seat_spec(seat: &Seat) -> SeatSpec {
    SeatSpec {
        id: seat.id,
        tenant_id: seat.tenant_id,
        group_no: seat.group_no.clone(),
        cfg: agent_config(seat),
        remembered: seat.agent_status.and_then(Status::from_code),
        skills: seat.skills.clone(),
    }
}

pub fn encode(ev: &ServerEvent) -> Utf8Bytes {
    // Serialising our own enum cannot fail.
    Utf8Bytes::from(serde_json::to_string(ev).unwrap_or_default())
}

pub fn call_row(
    tenant_id: i64,
    seat: Option<i64>,
    r: &CallRecord,
    dialog: Option<String>,
) -> CallRow {
    CallRow {
        id: r.call_id.clone(),
        tenant_id,
        seat_id: seat,
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
        dialog,
        loss_pct: r.loss_pct,
        jitter_ms: r.jitter_ms,
        rtt_ms: r.rtt_ms,
        mos: r.mos,
        mos_min: r.mos_min,
        trunk: r.trunk.clone(),
        forwarded_to: r.forwarded_to.clone(),
        hung_up_by: r.hung_up_by.map(|h| h.as_str().to_string()),
        billed_secs: r.billed_secs.map(i64::from),
        cost_millicents: r.cost_millicents,
        recorded: r.recorded,
    }
}

/// One line per change of a call's record (rung, connected, ended), with
/// the call's id, so that every line about a call can be found by it. No
/// phone number: the record has them, a log need not.
fn log_call(seat: Option<i64>, r: &CallRecord) {
    use seatline_calls::record::Direction;
    let direction = match r.direction {
        _ if r.forwarded_to.is_some() => "forwarded",
        Direction::Inbound => "inbound",
        _ => "outbound",
    };
    let call_id = r.call_id.as_str();
    let trunk = r.trunk.as_deref();
    match (r.connected_ms, r.hangup_ms) {
        (_, Some(hangup)) => {
            let talk_ms = r.connected_ms.map(|c| hangup.saturating_sub(c).max(0));
            tracing::info!(
                call_id,
                direction,
                trunk,
                seat,
                sip_code = r.sip_code,
                hangup_code = r.hangup_code,
                talk_ms,
                "call ended"
            );
        }
        (Some(_), None) => tracing::info!(call_id, direction, trunk, seat, "call connected"),
        // An inbound call is written each time it rings at an agent.
        (None, None) if direction == "inbound" => {
            tracing::info!(call_id, direction, seat, "call ringing at an agent")
        }
        (None, None) => tracing::info!(call_id, direction, trunk, seat, "call placed"),
    }
}

impl Hub {
    pub fn new(idle: Duration, sb: Switchboard, io: HubIo) -> Self {
        Self {
            music: std::sync::RwLock::new(HashMap::new()),
            prompts: std::sync::RwLock::new(HashMap::new()),
            inner: Mutex::new(Inner {
                sb,
                sessions: HashMap::new(),
                conns: HashMap::new(),
                agents: HashMap::new(),
                rtp: HashMap::new(),
                next_conn: 0,
                dropped_tabs: 0,
                walls: HashMap::new(),
                wall_json: HashMap::new(),
            }),
            idle,
            io,
            timer: Notify::new(),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere must not take presence down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the switchboard and carries out everything it output;
    /// then the timer task looks again at the next deadline.
    fn with_sb<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = self.with_sb_untimed(f);
        self.timer.notify_one();
        r
    }

    /// The same, for inputs that can set no new deadline (a status pick
    /// ends wrap-up at most): the hot path of status changes skips the
    /// timer task's look at every agent.
    fn with_sb_untimed<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.lock();
        let r = f(&mut inner);
        self.dispatch(&mut inner);
        r
    }

    fn dispatch(&self, inner: &mut Inner) {
        while let Some(out) = inner.sb.poll_output() {
            match out {
                Output::Transmit(t) => {
                    let _ = self.io.sip.send(SipOut::Send(t));
                }
                Output::ToAgent { seat, event } => {
                    if let ServerEvent::Dial { content } = &event {
                        tracing::debug!(call_id = %content.call_id, seat, code = content.code, "dialStatus");
                    }
                    let msg = encode(&event);
                    let mut stuck = Vec::new();
                    if let Some(a) = inner.agents.get(&seat) {
                        for (conn, tx) in &a.tabs {
                            if tx.try_send(Outgoing::Text(msg.clone())).is_err() {
                                stuck.push(*conn);
                            }
                        }
                    }
                    for conn in stuck {
                        // Dropping the sender ends that tab's connection: it
                        // reconnects and gets the whole state, never a gap.
                        if let Some(a) = inner.agents.get_mut(&seat) {
                            a.remove_tab(conn);
                        }
                        inner.dropped_tabs += 1;
                    }
                }
                Output::ToTab { conn, event } => {
                    let seat = inner.conns.get(&conn).map(|c| c.0);
                    if let Some(tx) = seat
                        .and_then(|s| inner.agents.get(&s))
                        .and_then(|a| a.tab(conn))
                    {
                        if tx.try_send(Outgoing::Text(encode(&event))).is_err() {
                            if let Some(a) = seat.and_then(|s| inner.agents.get_mut(&s)) {
                                a.remove_tab(conn);
                            }
                            inner.dropped_tabs += 1;
                        }
                    }
                }
                Output::Media(m) => {
                    let cmd = match m {
                        MediaOut::Bridge {
                            seat,
                            rtp,
                            ringback,
                        } => match inner.rtp.get(&rtp).map(|s| s.try_clone()) {
                            Some(Ok(sock)) => MediaCmd::Bridge {
                                seat_id: seat,
                                rtp: sock,
                                ringback,
                            },
                            Some(Err(e)) => {
                                let call_id = inner.sb.call_id_of_seat(seat);
                                tracing::error!(
                                    call_id = call_id.as_deref().unwrap_or(""),
                                    seat,
                                    "cannot hand a call's RTP socket to media: {e}"
                                );
                                continue;
                            }
                            None => continue,
                        },
                        MediaOut::Remote {
                            seat,
                            remote,
                            pt,
                            dtmf_pt,
                            srtp,
                        } => MediaCmd::Remote {
                            seat_id: seat,
                            remote,
                            pt,
                            dtmf_pt,
                            srtp,
                        },
                        MediaOut::Ringback { seat, on } => MediaCmd::Ringback { seat_id: seat, on },
                        MediaOut::Unbridge { seat } => MediaCmd::Unbridge { seat_id: seat },
                        MediaOut::Ring { seat, on } => MediaCmd::Ring { seat_id: seat, on },
                        MediaOut::Dtmf { seat, digits } => MediaCmd::Dtmf {
                            seat_id: seat,
                            digits,
                        },
                        MediaOut::Mute { seat, on } => MediaCmd::Mute { seat_id: seat, on },
                        MediaOut::Hold { seat, on } => MediaCmd::Hold { seat_id: seat, on },
                        // With no prompt of its own, the menu plays the
                        // tenant's music (or the built-in tune).
                        MediaOut::Prompt {
                            seat,
                            tenant_id,
                            did,
                        } => MediaCmd::Music {
                            seat_id: seat,
                            on: true,
                            clip: self
                                .did_prompt(tenant_id, &did)
                                .or_else(|| self.music_of(tenant_id)),
                        },
                        MediaOut::Announce {
                            seat,
                            lang,
                            position,
                            minutes,
                        } => match seatline_media::announce::Lang::parse(&lang) {
                            Some(lang) => MediaCmd::Announce {
                                seat_id: seat,
                                lang,
                                position,
                                minutes,
                            },
                            None => continue,
                        },
                        MediaOut::Music {
                            seat,
                            on,
                            tenant_id,
                        } => MediaCmd::Music {
                            seat_id: seat,
                            on,
                            clip: self.music_of(tenant_id),
                        },
                        MediaOut::RecordRelay {
                            id,
                            tenant_id,
                            call_id,
                        } => MediaCmd::RecordRelay {
                            id,
                            tenant_id,
                            call_id,
                        },
                        MediaOut::Record {
                            seat,
                            tenant_id,
                            call_id,
                            on,
                        } => MediaCmd::Record {
                            seat_id: seat,
                            tenant_id,
                            call_id,
                            on,
                        },
                        MediaOut::Relay { id, a, b } => {
                            // Handed over, not duplicated: a relayed call
                            // holds 4 descriptors, not 8. The worker's drop
                            // at Unrelay frees the ports (its ReleaseRtp
                            // then finds nothing here).
                            match (inner.rtp.remove(&a), inner.rtp.remove(&b)) {
                                (Some(a), Some(b)) => MediaCmd::Relay { id, a, b },
                                (pa, pb) => {
                                    for (port, pair) in [(a, pa), (b, pb)] {
                                        if let Some(pair) = pair {
                                            inner.rtp.insert(port, pair);
                                        }
                                    }
                                    let call_id = inner.sb.call_id_of_relay(id);
                                    tracing::error!(
                                        call_id = call_id.as_deref().unwrap_or(""),
                                        "cannot hand a forwarded call's RTP sockets to media"
                                    );
                                    continue;
                                }
                            }
                        }
                        MediaOut::RelayRemote {
                            id,
                            leg,
                            remote,
                            pt,
                            dtmf_pt,
                            srtp,
                        } => MediaCmd::RelayRemote {
                            id,
                            leg,
                            remote,
                            pt,
                            dtmf_pt,
                            srtp,
                        },
                        MediaOut::Unrelay { id } => MediaCmd::Unrelay { id },
                    };
                    self.io.media.send(cmd);
                }
                Output::SaveCall {
                    tenant_id,
                    seat,
                    record,
                    dialog,
                } => {
                    log_call(seat, &record);
                    let _ = self.io.persist.send(Persist::Call(Box::new(call_row(
                        tenant_id, seat, &record, dialog,
                    ))));
                }
                Output::SaveStatus { seat, code } => {
                    let _ = self.io.persist.send(Persist::Status(seat, code));
                }
                Output::RouteInbound { call, did } => {
                    let _ = self.io.routes.send((call, did));
                }
                Output::BindRtp { call } => {
                    let pair = match RtpPair::bind(inner.sb.sip_addr().ip()) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            tracing::error!("no RTP port: {e}");
                            None
                        }
                    };
                    let port = Self::keep_rtp(inner, pair);
                    inner.sb.rtp_bound(call, port, Instant::now());
                }
                Output::ReleaseRtp { rtp } => {
                    inner.rtp.remove(&rtp);
                }
                Output::TrunkHealth { name, up } => {
                    if up {
                        tracing::info!(trunk = %name, "trunk is up again (OPTIONS answered)");
                    } else {
                        tracing::warn!(trunk = %name, "trunk is down (OPTIONS unanswered); calls skip it");
                    }
                }
                Output::SaveBalance { tenant_id, change } => {
                    let _ = self.io.persist.send(Persist::Balance(tenant_id, change));
                }
                Output::WallboardChanged { tenant_id } => {
                    if let Some(tx) = inner.walls.get(&tenant_id) {
                        if tx.receiver_count() == 0 {
                            inner.walls.remove(&tenant_id);
                            inner.wall_json.remove(&tenant_id);
                        } else {
                            tx.send_modify(|v| *v = v.wrapping_add(1));
                        }
                    }
                }
                Output::Compacted => {
                    if let Ok(rt) = tokio::runtime::Handle::try_current() {
                        rt.spawn_blocking(crate::memory::give_back);
                    }
                }
            }
        }
    }

    /// The call path's figures for the metrics.
    pub fn stats(&self) -> seatline_switchboard::Stats {
        self.lock().sb.stats()
    }

    /// Each trunk by name, and whether its keepalive finds it up.
    pub fn trunk_health(&self) -> Vec<(String, bool)> {
        self.lock().sb.trunk_health()
    }

    // ---- the wallboard ---------------------------------------------------------

    /// The tenant's wallboard now.
    pub fn wallboard(&self, tenant_id: i64, now: Instant) -> Wallboard {
        self.lock().sb.wallboard(tenant_id, now)
    }

    /// The tenant's wallboard as the consoles' streams send it: made and
    /// serialised once, then handed to every console of the tenant that
    /// asks while nothing changed and it is under 200 ms old (20 consoles
    /// cost one snapshot, not 20). Serialising happens outside the lock.
    pub fn wallboard_shared(&self, tenant_id: i64, now: Instant) -> SharedWall {
        let (version, board) = {
            let inner = self.lock();
            let version = inner.walls.get(&tenant_id).map(|tx| *tx.borrow());
            if let (Some(v), Some(c)) = (version, inner.wall_json.get(&tenant_id)) {
                if c.version == v && now.saturating_duration_since(c.made) < WALL_SHARE_FOR {
                    return c.clone();
                }
            }
            (version, inner.sb.wallboard(tenant_id, now))
        };
        let ticking = !board.calls.is_empty() || board.agents.iter().any(|a| a.signed_in);
        let json = serde_json::to_string(&board).unwrap_or_else(|_| "{}".into());
        let shared = SharedWall {
            version: version.unwrap_or(0),
            made: now,
            json: json.into(),
            ticking,
        };
        if version.is_some() {
            self.lock().wall_json.insert(tenant_id, shared.clone());
        }
        shared
    }

    /// A receiver that sees a new value each time the tenant's wallboard
    /// changes (what a console's stream waits on).
    pub fn watch_wallboard(&self, tenant_id: i64) -> watch::Receiver<u64> {
        let mut inner = self.lock();
        inner
            .walls
            .entry(tenant_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// The tenant's own waiting music (none: the built-in tune), for the
    /// callers who start waiting from now on.
    pub fn set_tenant_music(&self, tenant_id: i64, samples: Option<std::sync::Arc<[i16]>>) {
        if let Ok(mut m) = self.music.write() {
            match samples {
                Some(s) => m.insert(tenant_id, s),
                None => m.remove(&tenant_id),
            };
        }
    }

    fn music_of(&self, tenant_id: i64) -> Option<std::sync::Arc<[i16]>> {
        self.music.read().ok()?.get(&tenant_id).cloned()
    }

    /// The prompt of the tenant's DID (none: its menu plays the music),
    /// for the callers who reach its menu from now on.
    pub fn set_did_prompt(
        &self,
        tenant_id: i64,
        did: &str,
        samples: Option<std::sync::Arc<[i16]>>,
    ) {
        if let Ok(mut m) = self.prompts.write() {
            let key = (tenant_id, did.to_string());
            match samples {
                Some(s) => m.insert(key, s),
                None => m.remove(&key),
            };
        }
    }

    pub fn did_prompt(&self, tenant_id: i64, did: &str) -> Option<std::sync::Arc<[i16]>> {
        self.prompts
            .read()
            .ok()?
            .get(&(tenant_id, did.to_string()))
            .cloned()
    }

    /// The agent's skills changed (an admin set them): the next routing
    /// decision counts them.
    pub fn set_agent_skills(&self, seat_id: i64, skills: Vec<(String, u8)>) {
        self.with_sb_untimed(|inner| inner.sb.set_agent_skills(seat_id, skills));
    }

    /// Who sits at the seat, for the wallboard (when a session starts).
    pub fn label_agent(&self, seat: &Seat, email: &str) {
        let label = AgentLabel {
            user_id: seat.user_id,
            email: email.to_string(),
            seat: seat.sip_num.clone(),
        };
        self.with_sb_untimed(|inner| inner.sb.set_agent_label(seat.id, label));
    }

    /// A supervisor of the tenant forces the seat's status.
    pub fn force_status(
        &self,
        tenant_id: i64,
        seat_id: i64,
        status: Status,
        now: Instant,
    ) -> Result<(), SuperviseError> {
        self.with_sb_untimed(|inner| {
            inner
                .sb
                .supervise(tenant_id, seat_id, Supervise::SetStatus(status), now)
        })
    }

    /// A supervisor of the tenant signs the seat's agent out: every session
    /// ends, every tab gets `tokenInvalid`. Returns the ended sessions, for
    /// the store to revoke.
    pub fn force_sign_out(
        &self,
        tenant_id: i64,
        seat_id: i64,
        now: Instant,
    ) -> Result<Vec<String>, SuperviseError> {
        self.with_sb(|inner| {
            inner
                .sb
                .supervise(tenant_id, seat_id, Supervise::SignOut, now)?;
            let sessions = inner
                .agents
                .get(&seat_id)
                .map(|a| a.sessions.clone())
                .unwrap_or_default();
            for id in &sessions {
                Self::end_session(inner, id, &ServerEvent::TokenInvalid, now);
            }
            if sessions.is_empty() {
                // No session here (all ended): the agent is shown signed out.
                inner.sb.sign_out(seat_id, now);
            }
            Ok(sessions)
        })
    }

    // ---- sessions and tabs -----------------------------------------------------

    /// A user with this seat just signed in with their password.
    pub fn signed_in(&self, session_id: &str, seat: &Seat, now: Instant) {
        self.with_sb(|inner| {
            Self::join(inner, session_id, seat, now);
            inner.sb.sign_in(&seat_spec(seat), true, now);
        });
    }

    fn join(inner: &mut Inner, session_id: &str, seat: &Seat, now: Instant) {
        let a = inner.agents.entry(seat.id).or_default();
        if !a.sessions.iter().any(|s| s == session_id) {
            a.sessions.push(session_id.to_string());
        }
        inner
            .sessions
            .entry(session_id.to_string())
            .or_insert(SessionSlot {
                seat_id: seat.id,
                user_id: seat.user_id,
                last_seen: now,
                last_written: now,
                conns: HashSet::new(),
            });
    }

    /// A tab of a valid session connected. Returns its id and what to show.
    pub fn attach(
        &self,
        session_id: &str,
        seat: &Seat,
        tx: TabTx,
        now: Instant,
    ) -> (ConnId, TabView) {
        self.with_sb(|inner| {
            Self::join(inner, session_id, seat, now);
            inner.next_conn += 1;
            let conn = inner.next_conn;
            inner.conns.insert(conn, (seat.id, session_id.to_string()));
            if let Some(s) = inner.sessions.get_mut(session_id) {
                s.conns.insert(conn);
                s.last_seen = now;
            }
            inner
                .agents
                .entry(seat.id)
                .or_default()
                .tabs
                .push((conn, tx));
            let view = inner.sb.tab_opened(&seat_spec(seat), conn, now);
            (conn, view)
        })
    }

    pub fn holds_audio(&self, conn: ConnId) -> bool {
        let inner = self.lock();
        let Some((seat, _)) = inner.conns.get(&conn) else {
            return false;
        };
        inner.sb.holds_audio(*seat, conn)
    }

    /// A tab's connection ended.
    pub fn detach(&self, conn: ConnId, now: Instant) {
        self.with_sb(|inner| {
            let Some((seat_id, session_id)) = inner.conns.remove(&conn) else {
                return;
            };
            if let Some(s) = inner.sessions.get_mut(&session_id) {
                s.conns.remove(&conn);
            }
            if let Some(a) = inner.agents.get_mut(&seat_id) {
                a.remove_tab(conn);
            }
            inner.sb.tab_closed(seat_id, conn, now);
        })
    }

    /// The agent picked a status in one tab.
    pub fn set_status(&self, conn: ConnId, code: i64, now: Instant) -> Result<(), HubError> {
        let status = Status::from_code(code).ok_or(HubError::InvalidStatus(code))?;
        self.with_sb_untimed(|inner| {
            let (seat_id, _) = inner
                .conns
                .get(&conn)
                .cloned()
                .ok_or(HubError::NoConnection)?;
            inner.sb.set_status(seat_id, status, now)?;
            Ok(())
        })
    }

    /// Renews the idle expiry of the connection's session. Returns the
    /// session id when the store should be told too (not on every click).
    pub fn touch(&self, conn: ConnId, now: Instant) -> Option<String> {
        let mut inner = self.lock();
        let (_, session_id) = inner.conns.get(&conn)?.clone();
        let write_every = (self.idle / 4).min(Duration::from_secs(60));
        let s = inner.sessions.get_mut(&session_id)?;
        s.last_seen = now;
        if now.duration_since(s.last_written) >= write_every {
            s.last_written = now;
            return Some(session_id);
        }
        None
    }

    /// The session signed out: its tabs are told and closed. When it was the
    /// agent's last session, the agent is signed out (rule 3).
    pub fn logout(&self, session_id: &str, now: Instant) {
        self.with_sb(|inner| Self::end_session(inner, session_id, &ServerEvent::LoggedOut, now));
    }

    /// The session was found revoked: its tabs get `tokenInvalid` and close.
    pub fn revoked(&self, session_id: &str, now: Instant) {
        self.with_sb(|inner| Self::end_session(inner, session_id, &ServerEvent::TokenInvalid, now));
    }

    /// Ends every session idle for longer than the expiry; their tabs get
    /// `tokenInvalid`. Returns the ended sessions, for the store to revoke.
    pub fn expire_idle(&self, now: Instant) -> Vec<String> {
        let idle = self.idle;
        self.with_sb(|inner| {
            let expired: Vec<String> = inner
                .sessions
                .iter()
                .filter(|(_, s)| now.saturating_duration_since(s.last_seen) > idle)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                Self::end_session(inner, id, &ServerEvent::TokenInvalid, now);
            }
            expired
        })
    }

    /// Ends every session of a user (revoked by an admin, the user disabled):
    /// every tab of each, in every browser, gets `tokenInvalid` and is
    /// closed. Returns the ended sessions. The store's rows are the caller's
    /// to delete (before calling this, so that no tab can come back).
    pub fn end_user_sessions(&self, user_id: i64, now: Instant) -> Vec<String> {
        self.end_user_sessions_except(user_id, None, now)
    }

    /// [`Hub::end_user_sessions`] but for `keep` (the caller's own session,
    /// when a user's password changes).
    pub fn end_user_sessions_except(
        &self,
        user_id: i64,
        keep: Option<&str>,
        now: Instant,
    ) -> Vec<String> {
        self.end_user_where(user_id, keep, &ServerEvent::TokenInvalid, now)
    }

    /// Signs a disabled user out everywhere: like [`Hub::end_user_sessions`]
    /// but the tabs get `loggedOut` (the host `logout`, as the embed
    /// protocol says for a disabled account).
    pub fn sign_user_out(&self, user_id: i64, now: Instant) -> Vec<String> {
        self.end_user_where(user_id, None, &ServerEvent::LoggedOut, now)
    }

    fn end_user_where(
        &self,
        user_id: i64,
        keep: Option<&str>,
        ev: &ServerEvent,
        now: Instant,
    ) -> Vec<String> {
        self.with_sb(|inner| {
            let ended: Vec<String> = inner
                .sessions
                .iter()
                .filter(|(id, s)| s.user_id == user_id && Some(id.as_str()) != keep)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ended {
                Self::end_session(inner, id, ev, now);
            }
            ended
        })
    }

    fn end_session(inner: &mut Inner, session_id: &str, ev: &ServerEvent, now: Instant) {
        let Some(session) = inner.sessions.remove(session_id) else {
            return;
        };
        let msg = encode(ev);
        let seat_id = session.seat_id;
        for conn in &session.conns {
            inner.conns.remove(conn);
            if let Some(tx) = inner
                .agents
                .get_mut(&seat_id)
                .and_then(|a| a.remove_tab(*conn))
            {
                let _ = tx.try_send(Outgoing::Text(msg.clone()));
                let _ = tx.try_send(Outgoing::Close);
            }
            inner.sb.tab_closed(seat_id, *conn, now);
        }
        let last = match inner.agents.get_mut(&seat_id) {
            Some(a) => {
                a.sessions.retain(|s| s != session_id);
                a.sessions.is_empty()
            }
            None => true,
        };
        if last {
            if inner
                .agents
                .get(&seat_id)
                .is_some_and(|a| a.tabs.is_empty())
            {
                inner.agents.remove(&seat_id);
            }
            inner.sb.sign_out(seat_id, now);
        }
    }

    /// Waits until every status change and call record so far is in the store.
    pub async fn flush_writes(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.io.persist.send(Persist::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Waits until every SIP message so far has been sent.
    pub async fn flush_sip(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.io.sip.send(SipOut::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Whether the tab's session is still within its idle time.
    pub fn session_alive(&self, conn: ConnId, now: Instant) -> bool {
        let inner = self.lock();
        let Some((_, session)) = inner.conns.get(&conn) else {
            return false;
        };
        inner
            .sessions
            .get(session)
            .is_some_and(|s| now.saturating_duration_since(s.last_seen) <= self.idle)
    }

    /// Number of live tabs, for metrics and benchmarks.
    pub fn tab_count(&self) -> usize {
        self.lock().conns.len()
    }

    /// The RTP ports of calls in progress (each one's RTCP port is the next).
    pub fn rtp_ports(&self) -> Vec<u16> {
        self.lock().rtp.keys().copied().collect()
    }

    /// Tabs disconnected because they could not keep up.
    pub fn dropped_tabs(&self) -> u64 {
        self.lock().dropped_tabs
    }

    // ---- the call path ------------------------------------------------------------

    fn keep_rtp(inner: &mut Inner, rtp: Option<RtpPair>) -> Option<RtpPort> {
        let pair = rtp?;
        let port = pair.port().ok()?;
        inner.rtp.insert(port, pair);
        Some(port)
    }

    /// A checked `callOut` with what the store said and an RTP socket.
    pub fn call_out(
        &self,
        seat_id: i64,
        op: CallOut,
        session_ok: bool,
        facts: Result<CallOutFacts, ()>,
        rtp: Option<RtpPair>,
        now: Instant,
    ) {
        self.with_sb(|inner| {
            let port = Self::keep_rtp(inner, rtp);
            inner.sb.call_out(seat_id, op, session_ok, facts, port, now);
        })
    }

    /// The store's answer for an inbound call's DID; `elsewhere`: the
    /// node with idle agents of its group, when there are several.
    pub fn route_inbound(
        &self,
        call: CallRef,
        route: Route,
        rtp: Vec<RtpPair>,
        elsewhere: Option<&str>,
        now: Instant,
    ) {
        self.with_sb(|inner| {
            let ports: Vec<RtpPort> = rtp
                .into_iter()
                .filter_map(|p| Self::keep_rtp(inner, Some(p)))
                .collect();
            inner
                .sb
                .route_inbound_or_move(call, route, &ports, elsewhere, now);
        })
    }

    /// Inbound calls redirected to another node since the start.
    pub fn moved_calls(&self) -> u64 {
        self.lock().sb.moved_calls()
    }

    /// Whether an agent of the group here could be offered a call now.
    pub fn can_take(&self, tenant_id: i64, group_no: &str, skill: Option<&str>) -> bool {
        self.lock().sb.can_take(tenant_id, group_no, skill)
    }

    pub fn hang_up(&self, seat_id: i64, now: Instant) {
        self.with_sb(|inner| inner.sb.hang_up(seat_id, now))
    }

    pub fn answer(&self, seat_id: i64, accept: bool, now: Instant) {
        self.with_sb(|inner| inner.sb.answer(seat_id, accept, now))
    }

    pub fn control(&self, seat_id: i64, control: Control, now: Instant) {
        self.with_sb(|inner| inner.sb.control(seat_id, control, now))
    }

    /// `startRecording`/`stopRecording` from a tab of the seat.
    pub fn record(&self, seat_id: i64, on: bool) -> Result<(), seatline_switchboard::RecordError> {
        self.with_sb_untimed(|inner| inner.sb.record(seat_id, on))
    }

    /// A tenant's recording setting changed (or was read at start).
    pub fn set_recording(&self, tenant_id: i64, policy: seatline_switchboard::RecordingPolicy) {
        self.lock().sb.set_recording(tenant_id, policy)
    }

    /// A group's queue settings changed (or were read at start).
    /// A group's after-call work changed (seconds; 0: none).
    pub fn set_group_acw(&self, tenant_id: i64, group_no: &str, secs: u64) {
        let acw = (secs > 0).then(|| std::time::Duration::from_secs(secs));
        self.lock().sb.set_group_acw(tenant_id, group_no, acw);
    }

    pub fn set_group_routing(
        &self,
        tenant_id: i64,
        group_no: &str,
        routing: seatline_switchboard::GroupRouting,
    ) {
        self.lock()
            .sb
            .set_group_routing(tenant_id, group_no, routing)
    }

    /// A group's queue settings as the switchboard uses them now.
    pub fn group_routing(
        &self,
        tenant_id: i64,
        group_no: &str,
    ) -> seatline_switchboard::GroupRouting {
        self.lock().sb.group_routing(tenant_id, group_no)
    }

    pub fn sip_datagram(&self, bytes: &[u8], from: std::net::SocketAddr, now: Instant) {
        self.with_sb(|inner| inner.sb.handle_datagram(bytes, from, now))
    }

    /// A quality sample of the agent's call, from its media worker.
    pub fn quality(&self, seat_id: i64, s: seatline_media::quality::QualitySample, now: Instant) {
        let figures = seatline_switchboard::QualityFigures {
            packets: s.packets,
            loss_pct: s.loss_pct,
            jitter_ms: s.jitter_ms,
            rtt_ms: s.rtt_ms,
            mos: s.mos,
        };
        self.with_sb_untimed(|inner| inner.sb.quality(seat_id, figures, now))
    }

    pub fn rtp_alive(&self, seats: &[i64], now: Instant) {
        self.with_sb(|inner| inner.sb.rtp_alive(seats, now))
    }

    /// A DTMF digit from the carrier side of the call bridged at `seat`.
    pub fn carrier_digit(&self, seat: i64, digit: char, now: Instant) {
        self.with_sb(|inner| inner.sb.carrier_digit(seat, digit, now))
    }

    /// An admin set a tenant's balance (cents).
    pub fn set_balance(&self, tenant_id: i64, cents: i64) {
        self.with_sb_untimed(|inner| inner.sb.set_balance(tenant_id, cents))
    }

    /// A tenant's rates from now on.
    /// The store's balances read again (several nodes): for the tenants
    /// the switchboard holds one of.
    pub fn refresh_balances(&self, stored: &[(i64, i64)]) {
        self.with_sb_untimed(|inner| {
            for &(tenant_id, cents) in stored {
                if inner.sb.balance_cents(tenant_id).is_some() {
                    inner.sb.refresh_balance(tenant_id, cents);
                }
            }
        })
    }

    /// The tenant's stored balance, unless the switchboard already holds it.
    pub fn know_balance(&self, tenant_id: i64, cents: i64) {
        self.lock().sb.know_balance(tenant_id, cents)
    }

    pub fn set_rates(&self, tenant_id: i64, rates: Vec<seatline_switchboard::Rate>) {
        self.lock().sb.set_rates(tenant_id, rates)
    }

    /// A tenant's balance as the call path holds it, once it has seen it.
    pub fn balance_cents(&self, tenant_id: i64) -> Option<i64> {
        self.lock().sb.balance_cents(tenant_id)
    }

    /// From now on, calls use these trunks (see `Switchboard::set_trunks`).
    pub fn set_trunks(&self, trunks: Vec<seatline_switchboard::TrunkSetup>, now: Instant) {
        self.with_sb(|inner| inner.sb.set_trunks(trunks, now))
    }

    /// Each trunk: its name, whose it is (`None`: shared) and whether it
    /// carries calls now.
    pub fn trunks(&self) -> Vec<(String, Option<i64>, bool)> {
        let inner = self.lock();
        inner
            .sb
            .trunk_peers()
            .into_iter()
            .zip(inner.sb.trunk_health())
            .map(|((name, tenant, _), (_, up))| (name, tenant, up))
            .collect()
    }

    /// Each trunk's name, whose it is and its address.
    pub fn trunk_peers(&self) -> Vec<(String, Option<i64>, std::net::SocketAddr)> {
        self.lock().sb.trunk_peers()
    }

    /// Messages to `peer` travel over a connection of this kind.
    pub fn set_transport(&self, peer: std::net::SocketAddr, t: seatline_sip::Transport) {
        self.lock().sb.set_transport(peer, t);
    }

    /// The connection to `peer` could not be made or broke.
    pub fn transport_failed(&self, peer: std::net::SocketAddr, now: Instant) {
        self.with_sb(|inner| inner.sb.transport_failed(peer, now))
    }

    /// The SIP side as an operator sees it: each trunk and whether it is
    /// up, calls to DIDs no tenant owns, and datagrams dropped for their
    /// source.
    pub fn sip_status(&self) -> (Vec<(String, bool)>, u64, u64) {
        let inner = self.lock();
        (
            inner.sb.trunk_health(),
            inner.sb.unknown_dids(),
            inner.sb.user_agent().dropped_untrusted(),
        )
    }

    /// Would SIP requests from `peer` be taken?
    pub fn sip_trusted(&self, peer: std::net::SocketAddr) -> bool {
        self.lock().sb.user_agent().is_trusted(peer)
    }

    pub fn relay_alive(&self, ids: &[u64], now: Instant) {
        self.with_sb(|inner| inner.sb.relay_alive(ids, now))
    }

    pub fn audio_lost(&self, seat_id: i64, now: Instant) {
        self.with_sb(|inner| inner.sb.audio_lost(seat_id, now))
    }

    pub fn audio_up(&self, seat_id: i64) {
        self.with_sb(|inner| inner.sb.audio_up(seat_id))
    }

    pub fn recover(&self, open: Vec<OpenCall>, now: Instant) {
        self.with_sb(|inner| inner.sb.recover(open, now))
    }

    /// Closes the calls a dead node carried (hangupCode 800).
    pub fn recover_lost_node(&self, open: Vec<OpenCall>, now: Instant) {
        let reason = seatline_protocol::HangupReason::NetworkCarrier;
        self.with_sb(|inner| inner.sb.recover_as(open, reason, now))
    }

    /// The node drains: no new call; the calls in progress run on.
    pub fn drain(&self) {
        self.with_sb(|inner| inner.sb.drain())
    }

    /// No call of any kind is in progress.
    pub fn is_idle(&self) -> bool {
        self.lock().sb.is_idle()
    }

    /// The agents with a tab here and no call.
    pub fn seats_without_call(&self) -> Vec<i64> {
        let inner = self.lock();
        inner
            .agents
            .iter()
            .filter(|(seat, a)| !a.tabs.is_empty() && !inner.sb.has_call(**seat))
            .map(|(seat, _)| *seat)
            .collect()
    }

    /// Closes every tab whose agent has no call (a draining node): the
    /// softphone reconnects with its session, through the proxy to another
    /// node; the tab's own task then detaches it. How many were closed.
    pub fn close_tabs_without_call(&self) -> usize {
        self.with_sb_untimed(|inner| {
            let mut n = 0;
            for (seat, a) in &inner.agents {
                if inner.sb.has_call(*seat) {
                    continue;
                }
                for (_, tx) in &a.tabs {
                    let _ = tx.try_send(Outgoing::Close);
                    n += 1;
                }
            }
            n
        })
    }

    /// Ends every call (BYE to the carrier, code 5 to the tabs) and takes no new one.
    pub fn shutdown(&self, now: Instant) {
        self.with_sb(|inner| inner.sb.shutdown(now))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock().sb.poll_timeout()
    }

    pub fn handle_timeout(&self, now: Instant) {
        let mut inner = self.lock();
        inner.sb.handle_timeout(now);
        self.dispatch(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seatline_sip::{Timers, UserAgent};
    use seatline_switchboard::Settings;

    fn seat(id: i64) -> Seat {
        Seat {
            id,
            tenant_id: 1,
            user_id: id,
            sip_num: format!("80{id:02}"),
            group_no: "G001".into(),
            enabled: true,
            acw_seconds: 0,
            initial_status: 1,
            agent_status: None,
            skills: Vec::new(),
        }
    }

    struct Rig {
        hub: Hub,
        persist: mpsc::UnboundedReceiver<Persist>,
    }

    fn rig() -> Rig {
        let local = "127.0.0.1:5060".parse().unwrap();
        let sb = Switchboard::new(
            Settings::new("127.0.0.1:5080".parse().unwrap()),
            UserAgent::with_seed(local, Timers::default(), 1),
            Instant::now(),
            0,
            1,
        );
        let (persist, persist_rx) = mpsc::unbounded_channel();
        let (sip, _) = mpsc::unbounded_channel();
        let (routes, _) = mpsc::unbounded_channel();
        let (media, _) = MediaHandle::detached();
        Rig {
            hub: Hub::new(
                Duration::from_secs(10),
                sb,
                HubIo {
                    persist,
                    sip,
                    media,
                    routes,
                },
            ),
            persist: persist_rx,
        }
    }

    fn tab() -> (TabTx, mpsc::Receiver<Outgoing>) {
        mpsc::channel(TAB_QUEUE)
    }

    fn texts(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(match m {
                Outgoing::Text(t) => t.to_string(),
                Outgoing::Close => "<close>".into(),
            });
        }
        out
    }

    #[test]
    fn a_status_change_reaches_every_tab_of_the_agent_only_and_the_store() {
        let Rig { hub, mut persist } = rig();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        hub.signed_in("s2", &seat(2), t);
        let (tx_a, mut rx_a) = tab();
        let (tx_b, mut rx_b) = tab();
        let (tx_c, mut rx_c) = tab();
        let (a, view) = hub.attach("s1", &seat(1), tx_a, t);
        assert_eq!(view.agent.code, Status::Idle);
        hub.attach("s1", &seat(1), tx_b, t);
        hub.attach("s2", &seat(2), tx_c, t);
        hub.set_status(a, 3, t).unwrap();
        let expect = r#"{"ev":"agent","agent":{"code":3,"status":3,"activity":"none"}}"#;
        assert_eq!(texts(&mut rx_a), vec![expect]);
        assert_eq!(texts(&mut rx_b), vec![expect]);
        assert!(texts(&mut rx_c).is_empty());
        let mut saved = Vec::new();
        while let Ok(p) = persist.try_recv() {
            if let Persist::Status(seat, code) = p {
                saved.push((seat, code));
            }
        }
        assert!(saved.contains(&(1, 3)));
        assert_eq!(hub.set_status(a, 9, t), Err(HubError::InvalidStatus(9)));
        assert_eq!(hub.set_status(999, 1, t), Err(HubError::NoConnection));
    }

    #[test]
    fn logout_closes_every_tab_of_the_session_and_resets_the_agent() {
        let Rig { hub, .. } = rig();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (tx_a, mut rx_a) = tab();
        let (tx_b, mut rx_b) = tab();
        let (a, _) = hub.attach("s1", &seat(1), tx_a, t);
        hub.attach("s1", &seat(1), tx_b, t);
        hub.set_status(a, 5, t).unwrap();
        texts(&mut rx_a);
        texts(&mut rx_b);
        hub.logout("s1", t);
        assert_eq!(texts(&mut rx_a), vec![r#"{"ev":"loggedOut"}"#, "<close>"]);
        assert_eq!(texts(&mut rx_b), vec![r#"{"ev":"loggedOut"}"#, "<close>"]);
        assert_eq!(hub.tab_count(), 0);
        hub.signed_in("s3", &seat(1), t);
        let (tx, _rx) = tab();
        assert_eq!(
            hub.attach("s3", &seat(1), tx, t).1.agent.code,
            Status::Idle,
            "rule 3"
        );
    }

    #[test]
    fn idle_sessions_expire_with_token_invalid_and_activity_renews_them() {
        let Rig { hub, .. } = rig();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        hub.signed_in("s2", &seat(2), t);
        let (tx1, mut rx1) = tab();
        let (tx2, mut rx2) = tab();
        hub.attach("s1", &seat(1), tx1, t);
        let (c2, _) = hub.attach("s2", &seat(2), tx2, t);
        assert_eq!(
            hub.touch(c2, t + Duration::from_secs(8)),
            Some("s2".to_string())
        );
        assert!(hub.expire_idle(t + Duration::from_secs(10)).is_empty());
        assert_eq!(
            hub.expire_idle(t + Duration::from_secs(11)),
            vec!["s1".to_string()]
        );
        assert_eq!(texts(&mut rx1), vec![r#"{"ev":"tokenInvalid"}"#, "<close>"]);
        assert!(texts(&mut rx2).is_empty());
        assert!(!hub.session_alive(999, t));
    }

    #[test]
    fn ending_a_users_sessions_reaches_every_tab_of_every_session_but_the_kept_one() {
        let Rig { hub, .. } = rig();
        let t = Instant::now();
        // User 1 in two browsers (two tabs in the first), user 2 elsewhere.
        for s in ["a", "b"] {
            hub.signed_in(s, &seat(1), t);
        }
        hub.signed_in("other", &seat(2), t);
        let (tx1, mut rx1) = tab();
        let (tx2, mut rx2) = tab();
        let (tx3, mut rx3) = tab();
        let (tx4, mut rx4) = tab();
        hub.attach("a", &seat(1), tx1, t);
        hub.attach("a", &seat(1), tx2, t);
        let (c3, _) = hub.attach("b", &seat(1), tx3, t);
        hub.attach("other", &seat(2), tx4, t);
        for rx in [&mut rx1, &mut rx2, &mut rx3, &mut rx4] {
            texts(rx);
        }
        assert_eq!(hub.end_user_sessions_except(1, Some("b"), t), vec!["a"]);
        let ended = [
            r#"{"ev":"tokenInvalid"}"#.to_string(),
            "<close>".to_string(),
        ];
        for rx in [&mut rx1, &mut rx2] {
            // (A tab may hear first that the audio moved to another.)
            assert!(texts(rx).ends_with(&ended));
        }
        assert!(hub.session_alive(c3, t), "the kept session stays");
        assert_eq!(hub.end_user_sessions(1, t), vec!["b"]);
        assert!(texts(&mut rx3).ends_with(&ended));
        assert!(!texts(&mut rx4).contains(&ended[0]));
        assert!(hub.end_user_sessions(1, t).is_empty());
    }

    #[test]
    fn a_tab_that_cannot_keep_up_is_disconnected_never_left_with_a_gap() {
        let Rig { hub, .. } = rig();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (slow, mut slow_rx) = mpsc::channel(1);
        let (fast, mut rx) = tab();
        let (a, _) = hub.attach("s1", &seat(1), slow, t);
        hub.attach("s1", &seat(1), fast, t);
        for code in [3, 4, 5] {
            hub.set_status(a, code, t).unwrap();
        }
        assert_eq!(texts(&mut rx).len(), 3, "the others get everything");
        assert_eq!(hub.dropped_tabs(), 1);
        // The slow tab got what fit, then its queue was closed: it reconnects
        // and is sent the whole state (ready), so nothing is silently missed.
        assert_eq!(texts(&mut slow_rx).len(), 1);
        assert!(slow_rx.try_recv().is_err() && slow_rx.is_closed());
    }
}
