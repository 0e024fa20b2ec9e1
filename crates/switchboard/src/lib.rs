//! The switchboard: the whole call path as one sans-IO core.
//!
//! Owns: the SIP user agent toward the trunk, every call (its controller and
//! the carrier leg's SDP, hold and mute), every agent (presence by tab, the
//! agent state machine, the audio tab, the ACD's choice) and every timer of
//! a call: ring timeout, wrap-up deadline, no-tab grace, RTP silence, and
//! the SIP timers. One clock (`now`, with the wall-clock milliseconds of the
//! records derived from it) and one seeded random source.
//!
//! Store reads come in as arguments ([`CallOutFacts`], [`Route`]); every
//! write goes out, in order, as an [`Output`]; so does every byte for the
//! network, every message for a tab and every command for the media plane.
//!
//! Must never: open a socket, read a clock, await, lock or log. The shell
//! (`seatline-server`) moves bytes and time; if a rule of a call cannot be
//! tested by driving this struct in simulated time, it is in the wrong place.

mod billing;
mod forward;
mod ivr;
pub use ivr::{is_key, Menu, MenuChoice, MAX_OPTIONS, MENU_TIMEOUT_LIMIT_SECS, WRONG_DIGITS_LIMIT};
mod queue;
pub use queue::{
    GroupRouting, Overflow, Strategy, ANNOUNCE_EVERY, MAX_MISSED_LIMIT, MAX_WAIT_LIMIT_SECS,
    RING_TIMEOUT_LIMIT_SECS,
};
mod recording;
pub use recording::{RecordError, RecordingMode, RecordingPolicy};
mod stats;

pub use stats::{ByDirection, CallDirection, Stats, TrunkState};
mod trunks;
mod wallboard;
pub use wallboard::{
    AgentLabel, Supervise, SuperviseError, Today, WallAgent, WallCall, WallQueue, Wallboard,
    SERVICE_LEVEL_SECS,
};

pub use billing::{rate_for, BalanceChange, Rate};

pub use trunks::TrunkSetup;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seatline_agent::{Agent, AgentConfig, AgentError, AgentEvent, AgentInput, Status};
use seatline_calls::controller::{Action, AgentCommand, CallController, SipEvent};
use seatline_calls::policy::{
    calling_code, check_callee, check_lengths, check_policy, pick_caller, CallOut, PolicyFacts,
};
use seatline_calls::record::{CallRecord, Direction, HungUpBy};
use seatline_protocol::DialStatus;
use seatline_protocol::{AgentView, CallQuality, HangupReason, ServerEvent};
use seatline_sip::sdp::{
    AudioSdp, Codec, Crypto, Direction as SdpDirection, MasterKey, Profile, SrtpKeys, Suite,
};
use seatline_sip::{CallRef, Transmit, UaEvent, UserAgent};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub type SeatId = i64;
/// One tab's connection.
pub type ConnId = u64;
/// A local RTP port the shell bound for a call's carrier leg.
pub type RtpPort = u16;

/// A carrier trunk as the switchboard needs it (the shell resolved its
/// address and gave the user agent its credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub name: String,
    /// Whose calls it carries: one tenant's, or (`None`) those of every
    /// tenant without trunks of its own.
    pub tenant_id: Option<i64>,
    pub peer: SocketAddr,
    /// How often an OPTIONS ping checks it is there; `None`: never, and
    /// the trunk is always taken for up.
    pub keepalive: Option<Duration>,
    /// The trunk wants us registered (the shell started the registration
    /// with the user agent): it carries calls only while registered.
    pub register: bool,
    /// How it wants the numbers written.
    pub numbers: seatline_calls::numbers::NumberRules,
    /// Whether its media must be SRTP keyed by SDES.
    pub srtp: Srtp,
}

/// A trunk's media security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Srtp {
    /// Plain RTP offered; an SDES offer from the carrier is still answered
    /// with SDES.
    #[default]
    Off,
    /// SDES offered (RTP/SAVP, AES_CM_128_HMAC_SHA1_80); an answer without
    /// an acceptable key ends the call (800), a plain offer is refused 488.
    Sdes,
}

/// The rules' numbers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where calls go, tried in this order: a call that fails on one for a
    /// carrier-side reason (408, 5xx, the trunk down) goes on to the next.
    pub trunks: Vec<Trunk>,
    /// How long an inbound call rings at one agent before the next is tried.
    pub ring_timeout: Duration,
    /// How long a call survives with no tab of its agent open (rule 10).
    pub no_tab_grace: Duration,
    /// A connected call whose carrier sends no RTP this long ends (800).
    pub rtp_timeout: Duration,
    /// Refused `callOut`s recorded per agent per minute; more are counted only.
    pub refusals_per_minute: u32,
    /// Bound of the custom data (`other`) a carrier may hand a tab.
    pub max_other_len: usize,
}

impl Settings {
    /// One trunk (named `trunk`) with no keepalive.
    pub fn new(trunk: SocketAddr) -> Self {
        Self::with_trunks(vec![Trunk {
            name: "trunk".into(),
            tenant_id: None,
            peer: trunk,
            keepalive: None,
            register: false,
            numbers: Default::default(),
            srtp: Srtp::Off,
        }])
    }

    pub fn with_trunks(trunks: Vec<Trunk>) -> Self {
        Self {
            trunks,
            ring_timeout: Duration::from_secs(20),
            no_tab_grace: Duration::from_secs(10),
            rtp_timeout: Duration::from_secs(30),
            refusals_per_minute: 30,
            max_other_len: 1024,
        }
    }
}

/// A seat as the switchboard needs it (read from the store by the shell).
#[derive(Debug, Clone)]
pub struct SeatSpec {
    pub id: SeatId,
    pub tenant_id: i64,
    pub group_no: String,
    pub cfg: AgentConfig,
    /// The status the store remembered (restarts keep it).
    pub remembered: Option<Status>,
    /// The agent's skills and their levels (1 to 10): calls that require a
    /// skill are offered only to agents who have it.
    pub skills: Vec<(String, u8)>,
}

/// What the store says for one `callOut`.
#[derive(Debug, Clone, Default)]
pub struct CallOutFacts {
    pub policy: PolicyFacts,
    pub owned_dids: Vec<String>,
    pub pool_dids: Vec<String>,
}

/// The store's answer to [`Output::RouteInbound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Group {
        tenant_id: i64,
        group_no: String,
        /// The skill an agent must have to be offered the call (the DID's).
        skill: Option<String>,
    },
    /// Answered, the caller chooses a group in the DID's menu (IVR).
    Menu { tenant_id: i64, menu: Menu },
    /// Forwarded to this number through the trunks (a SIP-to-SIP call,
    /// RTP relayed); the shell binds two RTP ports for it.
    Forward { tenant_id: i64, number: String },
    /// Refused with this SIP status (a DID routed nowhere on purpose).
    Reject { code: u16 },
    /// No tenant owns the number.
    Unknown,
    /// The store could not be read.
    Unavailable,
}

/// What the media plane must do for an agent's call audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOut {
    /// Join the agent's audio to the call's carrier leg on this RTP port.
    Bridge {
        seat: SeatId,
        rtp: RtpPort,
        ringback: bool,
    },
    /// Where the carrier's RTP goes, and in which payload types; `srtp`:
    /// the leg's SDES keys when it is SRTP.
    Remote {
        seat: SeatId,
        remote: SocketAddr,
        pt: u8,
        dtmf_pt: Option<u8>,
        srtp: Option<SrtpKeys>,
    },
    Ringback {
        seat: SeatId,
        on: bool,
    },
    Unbridge {
        seat: SeatId,
    },
    /// Relay RTP (and RTCP) between two carrier-side ports: a forwarded call.
    Relay {
        id: u64,
        a: RtpPort,
        b: RtpPort,
    },
    /// Where leg `leg` (0: A, 1: B) of relay `id` sends, its
    /// telephone-event payload type, and its SDES keys when it is SRTP
    /// (each leg its own).
    RelayRemote {
        id: u64,
        leg: u8,
        remote: SocketAddr,
        pt: u8,
        dtmf_pt: Option<u8>,
        srtp: Option<SrtpKeys>,
    },
    Unrelay {
        id: u64,
    },
    /// The inbound ring in the agent's ear.
    Ring {
        seat: SeatId,
        on: bool,
    },
    Dtmf {
        seat: SeatId,
        digits: String,
    },
    Mute {
        seat: SeatId,
        on: bool,
    },
    Hold {
        seat: SeatId,
        on: bool,
    },
    /// Play the prompt of the tenant's DID `did` (in a loop) toward the
    /// carrier of the call bridged at `seat` (a waiting key), until music
    /// replaces it or the call is unbridged.
    Prompt {
        seat: SeatId,
        tenant_id: i64,
        did: String,
    },
    /// Tell the waiting caller bridged at `seat` (a waiting key) their place
    /// in the queue and, when known, the expected wait in minutes (0:
    /// under a minute), in `lang`, over the music.
    Announce {
        seat: SeatId,
        lang: String,
        position: u32,
        minutes: Option<u32>,
    },
    /// Play (or stop) the waiting music toward the carrier of the call
    /// bridged at `seat` (a waiting call's key, see [`waiting_key`]).
    Music {
        seat: SeatId,
        on: bool,
        /// Whose music: a tenant may have its own.
        tenant_id: i64,
    },
    /// Record both legs of forwarded call (relay) `id` into the tenant's
    /// recording of `call_id`, until the relay stops.
    RecordRelay {
        id: u64,
        tenant_id: i64,
        call_id: String,
    },
    /// Start (or stop) recording the seat's call, both directions, into
    /// the tenant's recording of `call_id`.
    Record {
        seat: SeatId,
        tenant_id: i64,
        call_id: String,
        on: bool,
    },
}

/// The media plane's key for a call that waits in a queue, answered, with
/// no agent yet: minus its RTP port (agents' seat ids are positive), so
/// the music and the caller's audio have a place before an agent does.
pub fn waiting_key(rtp: RtpPort) -> SeatId {
    -i64::from(rtp)
}

/// What the shell must carry out, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A SIP datagram.
    Transmit(Transmit),
    /// An event for every tab of the agent.
    ToAgent {
        seat: SeatId,
        event: ServerEvent,
    },
    /// An event for one tab.
    ToTab {
        conn: ConnId,
        event: ServerEvent,
    },
    Media(MediaOut),
    /// Write the call record (insert or update). `dialog`: the carrier
    /// dialog to end after a crash, while the call is up; `None` otherwise.
    /// (Boxed: outputs are moved around a lot, and most are small.)
    SaveCall {
        tenant_id: i64,
        seat: Option<SeatId>,
        record: Box<CallRecord>,
        dialog: Option<String>,
    },
    /// Remember the agent's chosen status (agentStatus code).
    SaveStatus {
        seat: SeatId,
        code: i64,
    },
    /// Look up who owns this DID; answer with [`Switchboard::route_inbound`].
    RouteInbound {
        call: CallRef,
        did: String,
    },
    /// Bind another RTP port for `call` (a waiting call overflowing to a
    /// number needs one toward it); answer with [`Switchboard::rtp_bound`].
    BindRtp {
        call: CallRef,
    },
    /// The RTP port is no longer needed.
    ReleaseRtp {
        rtp: RtpPort,
    },
    /// A burst drained and the tables gave back their room: the shell may
    /// return the freed pages to the system.
    Compacted,
    /// A tenant's balance changed (a call took a block, gave one back, or
    /// an admin set it): store it, in order with the records.
    SaveBalance {
        tenant_id: i64,
        change: BalanceChange,
    },
    /// A trunk's keepalive found it gone (`up: false`) or back.
    TrunkHealth {
        name: String,
        up: bool,
    },
    /// What [`Switchboard::wallboard`] shows for this tenant changed (an
    /// agent's status or presence, a call started, rang, connected or
    /// ended). At most one per tenant per batch of outputs: it comes after
    /// the batch's other outputs.
    WallboardChanged {
        tenant_id: i64,
    },
}

/// One quality sample of an agent's call, as the media plane measured it
/// over its last window (a few seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityFigures {
    /// Packets received in the window (not in the record: its figures are
    /// the call's, see [`Switchboard::quality`]).
    pub packets: u64,
    /// Packets lost, percent.
    pub loss_pct: f64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Mean opinion score estimate.
    pub mos: f64,
}

impl QualityFigures {
    /// The sample within sane bounds (loss 0-100 %, jitter and round trip
    /// 0-60 s, MOS 1-5); `None` when a figure is not a finite number (NaN,
    /// infinite): such a sample is not trusted at all.
    pub fn validated(&self) -> Option<Self> {
        let figures = [self.loss_pct, self.jitter_ms, self.rtt_ms, self.mos];
        if !figures.iter().all(|f| f.is_finite()) {
            return None;
        }
        Some(Self {
            packets: self.packets,
            loss_pct: self.loss_pct.clamp(0.0, 100.0),
            jitter_ms: self.jitter_ms.clamp(0.0, 60_000.0),
            rtt_ms: self.rtt_ms.clamp(0.0, 60_000.0),
            mos: self.mos.clamp(1.0, 5.0),
        })
    }
}

/// What a call remembers of its quality samples.
#[derive(Debug, Clone)]
struct QualityTrack {
    last: QualityFigures,
    worst_mos: f64,
    mos_sum: f64,
    samples: u32,
}

impl QualityTrack {
    fn new(first: QualityFigures) -> Self {
        Self {
            worst_mos: first.mos,
            mos_sum: first.mos,
            samples: 1,
            last: first,
        }
    }

    fn add(&mut self, q: QualityFigures) {
        self.worst_mos = self.worst_mos.min(q.mos);
        self.mos_sum += q.mos;
        self.samples = self.samples.saturating_add(1);
        self.last = q;
    }

    /// The record's figures: the last sample's loss, jitter and round trip,
    /// the mean MOS of every sample and the worst one.
    fn fill(&self, r: &mut CallRecord) {
        r.loss_pct = Some(self.last.loss_pct);
        r.jitter_ms = Some(self.last.jitter_ms);
        r.rtt_ms = Some(self.last.rtt_ms);
        r.mos = Some(self.mos_sum / f64::from(self.samples.max(1)));
        r.mos_min = Some(self.worst_mos);
    }
}

/// In-call controls from any tab of the agent or from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Dtmf(String),
    Mute(bool),
    Hold(bool),
}

/// What a tab that opens is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct TabView {
    pub agent: AgentView,
    /// Whether this tab holds the agent's audio.
    pub audio: bool,
    /// The call in progress, as its last `dialStatus` content.
    pub call: Option<Box<DialStatus>>,
    /// That call is being recorded.
    pub recording: bool,
}

/// A call a previous process left open in the store.
#[derive(Debug, Clone)]
pub struct OpenCall {
    pub tenant_id: i64,
    pub seat: Option<SeatId>,
    pub record: CallRecord,
    pub dialog: Option<String>,
}

struct AgentSlot {
    agent: Agent,
    tenant_id: i64,
    group_no: String,
    skills: Vec<(String, u8)>,
    /// Open tabs, oldest first (a few per agent: a list beats a tree).
    tabs: Vec<ConnId>,
    audio: Option<ConnId>,
    /// With no tab open (or no audio) during a call: when the call is given up.
    grace_until: Option<Instant>,
    /// The audio leg that carried the call failed and no other came up yet.
    audio_lost: bool,
    /// The call in progress as its last dialStatus content.
    call: Option<Box<DialStatus>>,
    /// How the last call ended, for a tab that was not there to see it.
    missed: Vec<DialStatus>,
    /// Refused callOuts in the current minute: (window start, count).
    refusals: (Instant, u32),
    /// Since when its tabs show what they show (the wallboard's time in
    /// status).
    since: Instant,
}

struct Call {
    ctl: CallController,
    tenant_id: i64,
    rtp: RtpPort,
    /// Our SDP: the offer of an outbound call, the answer of an inbound one.
    offer: AudioSdp,
    muted: bool,
    held: bool,
    want_held: Option<bool>,
    version: u64,
    /// Inbound: the group and the carrier's offer.
    group_no: Option<String>,
    /// Inbound: the skill an agent must have to be offered the call.
    skill: Option<String>,
    carrier: Option<AudioSdp>,
    /// When the call ends for lack of carrier RTP.
    rtp_deadline: Option<Instant>,
    /// Its quality samples while connected (boxed: most of a call's life
    /// has none yet, and a call stays small).
    quality: Option<Box<QualityTrack>>,
    /// Outbound: the id of the trunk it was placed on.
    trunk: u32,
    /// Outbound: our side asked the carrier leg to end (no failover then).
    cancelled: bool,
    /// Outbound to a destination with a rate: what it has taken.
    billing: Option<billing::Billing>,
    /// Being recorded now; was recorded at some time.
    recording: bool,
    recorded: bool,
    /// Answered to wait in a queue, and its media bridged at its waiting
    /// key (until an agent takes it).
    waiting_media: bool,
    /// Moved to its group's overflow group once (never twice).
    overflowed: bool,
    /// Overflowing to this number: waits for the RTP port of the leg
    /// toward it ([`Output::BindRtp`]).
    overflow_number: Option<String>,
    /// Inbound to a DID with a menu, while the caller chooses.
    menu: Option<Box<ivr::InMenu>>,
    /// Queued: when the caller is told their place (again).
    announce_at: Option<Instant>,
}

/// What the switchboard knows of a trunk's health.
#[derive(Debug, Clone, Copy)]
struct TrunkHealth {
    /// Stays with the trunk while [`Switchboard::set_trunks`] keeps it, so
    /// that a call in progress finds the trunk after it again.
    id: u32,
    /// Its keepalive finds it there (always, without keepalive).
    up: bool,
    /// Its registration is bound (meaningful when it registers).
    registered: bool,
    /// When the next OPTIONS ping goes (keepalive trunks only).
    next_ping: Option<Instant>,
    /// A ping is out, unanswered, and must be answered by then, or the
    /// trunk is down.
    ping_deadline: Option<Instant>,
}

/// A ping unanswered this long marks its trunk down, even when the
/// keepalive interval is longer (the SIP transaction itself gives up then).
const PING_ANSWER_LIMIT: Duration = Duration::from_secs(32);

/// Does this failure of an outbound call lie with the carrier, so that the
/// next trunk may carry the call? (No answer at all, or a server failure;
/// never busy, declined, not found or a refused caller ID.)
pub fn is_carrier_failure(code: u16) -> bool {
    code == 408 || (500..=599).contains(&code)
}

/// An inbound INVITE waiting for the store to say who owns its DID.
struct Routing {
    /// Where the INVITE came from (which trunk's carrier).
    source: Option<SocketAddr>,
    from_user: String,
    did: String,
    sdp: Vec<u8>,
    other: String,
    /// Another node sent it here ([`MOVED_HEADER`]): it is not sent on.
    moved: bool,
}

/// The header a proxy adds to a call another node redirected (see
/// `deploy/kamailio/kamailio.cfg`): the node it reaches keeps it, so a
/// call is moved once at most. A carrier that sends it only keeps its
/// call from being moved.
pub const MOVED_HEADER: &str = "X-Seatline-Moved";

pub struct Switchboard {
    settings: Settings,
    ua: UserAgent,
    rng: StdRng,
    /// SRTP master keys come from their own generator, seeded by the
    /// operating system: the seeded `rng` above is for reproducible
    /// choices (call ids, the ACD), and 64 bits of seed are no key.
    keys: StdRng,
    epoch: Instant,
    epoch_ms: i64,
    calls: HashMap<CallRef, Call>,
    routing: HashMap<CallRef, Routing>,
    agents: HashMap<SeatId, AgentSlot>,
    /// End notices for agents not signed in since a restart.
    orphan_ends: HashMap<SeatId, Vec<DialStatus>>,
    turn: usize,
    out: VecDeque<Output>,
    /// An agent's state changed at this time: the queues may have an
    /// agent for a waiting caller (served at the next poll, after that
    /// input's own outputs).
    serve_due: Option<Instant>,
    suppressed_refusals: u64,
    shutting_down: bool,
    /// The node drains: no new call, the calls in progress run on.
    draining: bool,
    trunks: Vec<TrunkHealth>,
    /// The next [`TrunkHealth::id`].
    next_trunk_id: u32,
    /// What the user agent was told of each trunk, by its address.
    trunk_setups: HashMap<SocketAddr, TrunkSetup>,
    /// Forwarded calls by relay id, and each leg's relay id.
    forwards: HashMap<u64, forward::Forward>,
    forward_legs: HashMap<CallRef, u64>,
    /// Inbound calls to numbers no tenant owns (answered 404).
    unknown_dids: u64,
    /// Inbound calls redirected to another node.
    moved_calls: u64,
    /// What the metrics count (see [`Switchboard::stats`]).
    counters: stats::Counters,
    /// Each tenant's balance in millicents, once seen (see `billing.rs`).
    balances: HashMap<i64, i64>,
    /// The cents the store holds of each tenant's balance, as this core
    /// last told it (or read it): changes are stored as differences.
    stored_balances: HashMap<i64, i64>,
    /// Each tenant's rates.
    rates: HashMap<i64, Vec<Rate>>,
    /// Each tenant's recording setting (none: off).
    recording: HashMap<i64, RecordingPolicy>,
    /// Each agent's attempts per callee in the last minute (815).
    attempts: HashMap<(SeatId, String), VecDeque<Instant>>,
    /// Each group's strategy and what it remembers (see `queue.rs`).
    queues: queue::Queues,
    /// The wallboard's labels, day counts and changed tenants (see
    /// `wallboard.rs`).
    wall: wallboard::WallState,
}

impl Switchboard {
    /// The DID an inbound call asks for: the number it calls, rewritten
    /// by the rules of the first trunk (in the list's order) that trusts
    /// its source; empty when that is no number.
    fn did_of(&self, call: CallRef, to_user: &str) -> String {
        let peer = self.ua.peer_of(call);
        let rules = peer.and_then(|p| {
            self.settings.trunks.iter().find_map(|t| {
                let setup = self.trunk_setups.get(&t.peer)?;
                setup
                    .trusted
                    .iter()
                    .any(|s| s.matches(p))
                    .then_some(&t.numbers)
            })
        });
        match rules {
            Some(r) => r.did(to_user, 32).unwrap_or_default(),
            None => digits_only(to_user, 32),
        }
    }
}

fn digits_only(s: &str, max: usize) -> String {
    let s = s.trim_start_matches('+');
    if !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()) {
        s.to_string()
    } else {
        String::new()
    }
}

fn code_of(content: &DialStatus) -> i64 {
    content.code
}

impl Switchboard {
    /// `epoch`/`epoch_ms`: one instant and its wall-clock time, from which
    /// every record's timestamps are derived (one clock).
    pub fn new(
        settings: Settings,
        ua: UserAgent,
        epoch: Instant,
        epoch_ms: i64,
        seed: u64,
    ) -> Self {
        let trunks: Vec<TrunkHealth> = settings
            .trunks
            .iter()
            .zip(0..)
            .map(|(t, id)| TrunkHealth {
                id,
                up: true,
                registered: false,
                next_ping: t.keepalive.map(|_| epoch),
                ping_deadline: None,
            })
            .collect();
        Self {
            next_trunk_id: trunks.len() as u32,
            trunk_setups: HashMap::new(),
            trunks,
            forwards: HashMap::new(),
            forward_legs: HashMap::new(),
            unknown_dids: 0,
            moved_calls: 0,
            counters: Default::default(),
            balances: HashMap::new(),
            stored_balances: HashMap::new(),
            rates: HashMap::new(),
            recording: HashMap::new(),
            attempts: HashMap::new(),
            queues: Default::default(),
            wall: Default::default(),
            settings,
            ua,
            rng: StdRng::seed_from_u64(seed),
            keys: StdRng::from_entropy(),
            epoch,
            epoch_ms,
            calls: HashMap::new(),
            routing: HashMap::new(),
            agents: HashMap::new(),
            orphan_ends: HashMap::new(),
            turn: 0,
            out: VecDeque::new(),
            serve_due: None,
            suppressed_refusals: 0,
            shutting_down: false,
            draining: false,
        }
    }

    fn ms(&self, now: Instant) -> i64 {
        self.epoch_ms + now.saturating_duration_since(self.epoch).as_millis() as i64
    }

    fn new_call_id(&mut self) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..24)
            .map(|_| CHARS[self.rng.gen_range(0..CHARS.len())] as char)
            .collect()
    }

    pub fn user_agent(&self) -> &UserAgent {
        &self.ua
    }

    /// The connection to `peer` failed: what waited on it fails now.
    pub fn transport_failed(&mut self, peer: SocketAddr, now: Instant) {
        self.ua.transport_failed(peer, now);
        self.pump(now);
    }

    /// Messages to `peer` travel over a connection of this kind (see
    /// [`UserAgent::set_transport`]).
    pub fn set_transport(&mut self, peer: SocketAddr, transport: seatline_sip::Transport) {
        self.ua.set_transport(peer, transport);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(now) = self.serve_due.take() {
            self.serve_queues(now);
        }
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        if let Some(t) = self.ua.poll_transmit() {
            return Some(Output::Transmit(t));
        }
        self.wall.take_changed()
    }

    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The node drains (a rolling upgrade): no new call starts here (an
    /// inbound INVITE gets 503, so a dispatcher in front tries another
    /// node; a `callOut` is refused as in a shutdown) and the calls in
    /// progress run to their end.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// No call of any kind is in progress: agents' calls (waiting ones
    /// too), inbound calls being routed, forwarded calls.
    pub fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.routing.is_empty() && self.forwards.is_empty()
    }

    /// The agent has a call (ringing, up, or in after-call work's call).
    pub fn has_call(&self, seat: SeatId) -> bool {
        self.call_of_seat(seat).is_some()
    }

    /// Inbound calls to numbers no tenant owns, answered 404.
    pub fn unknown_dids(&self) -> u64 {
        self.unknown_dids
    }

    /// Inbound calls redirected to another node since the start.
    pub fn moved_calls(&self) -> u64 {
        self.moved_calls
    }

    /// Refused callOuts counted but not recorded (the per-agent bound).
    pub fn suppressed_refusals(&self) -> u64 {
        self.suppressed_refusals
    }

    // ---- agents -------------------------------------------------------

    fn slot_for(&mut self, spec: &SeatSpec, now: Instant) -> &mut AgentSlot {
        let orphan = self.orphan_ends.remove(&spec.id);
        let slot = self.agents.entry(spec.id).or_insert_with(|| AgentSlot {
            agent: Agent::new(spec.cfg, spec.remembered),
            tenant_id: spec.tenant_id,
            group_no: spec.group_no.clone(),
            skills: spec.skills.clone(),
            tabs: Vec::new(),
            audio: None,
            grace_until: None,
            audio_lost: false,
            call: None,
            missed: Vec::new(),
            refusals: (now, 0),
            since: now,
        });
        slot.agent.set_config(spec.cfg);
        slot.tenant_id = spec.tenant_id;
        slot.group_no = spec.group_no.clone();
        slot.skills = spec.skills.clone();
        if let Some(ends) = orphan {
            slot.missed = ends;
        }
        slot
    }

    /// A softphone session of this seat exists (`fresh`: a new sign-in).
    pub fn sign_in(&mut self, spec: &SeatSpec, fresh: bool, now: Instant) {
        let slot = self.slot_for(spec, now);
        let _ = slot.agent.handle(AgentInput::SignIn { fresh }, now);
        self.flush_agent(spec.id, now);
    }

    /// The agent's last session ended.
    pub fn sign_out(&mut self, seat: SeatId, now: Instant) {
        if let Some(slot) = self.agents.get_mut(&seat) {
            let _ = slot.agent.handle(AgentInput::SignOut, now);
        }
        self.flush_agent(seat, now);
    }

    /// A tab of a valid session connected.
    pub fn tab_opened(&mut self, spec: &SeatSpec, conn: ConnId, now: Instant) -> TabView {
        let slot = self.slot_for(spec, now);
        let _ = slot.agent.handle(AgentInput::SignIn { fresh: false }, now);
        if !slot.tabs.contains(&conn) {
            slot.tabs.push(conn);
        }
        slot.audio.get_or_insert(conn);
        // A tab is back: no grace timer from an earlier close may end the call.
        slot.grace_until = None;
        let tabs = slot.tabs.len();
        let _ = slot.agent.handle(AgentInput::TabsOnline(tabs), now);
        let mut view = TabView {
            agent: slot.agent.view(),
            audio: slot.audio == Some(conn),
            call: slot.call.clone(),
            recording: false,
        };
        let missed = std::mem::take(&mut slot.missed);
        view.recording = self.is_recording(spec.id);
        self.flush_agent(spec.id, now);
        for content in missed {
            self.out.push_back(Output::ToTab {
                conn,
                event: ServerEvent::Dial {
                    content: Box::new(content),
                },
            });
        }
        view
    }

    /// A tab's connection ended.
    pub fn tab_closed(&mut self, seat: SeatId, conn: ConnId, now: Instant) {
        let grace = self.settings.no_tab_grace;
        let in_call = self.call_of_seat(seat).is_some();
        let Some(slot) = self.agents.get_mut(&seat) else {
            return;
        };
        let Some(i) = slot.tabs.iter().position(|c| *c == conn) else {
            return;
        };
        slot.tabs.remove(i);
        if slot.audio == Some(conn) {
            // The oldest other tab takes the audio over.
            slot.audio = slot.tabs.first().copied();
            if let Some(next) = slot.audio {
                self.out.push_back(Output::ToTab {
                    conn: next,
                    event: ServerEvent::Audio { hold: true },
                });
            }
        }
        let tabs = slot.tabs.len();
        let _ = slot.agent.handle(AgentInput::TabsOnline(tabs), now);
        if tabs == 0 && in_call {
            slot.grace_until = Some(now + grace);
        }
        self.flush_agent(seat, now);
    }

    /// The agent's connected audio leg failed (or its tab went): unless a
    /// new leg connects within the grace time, the call is lost (801).
    pub fn audio_lost(&mut self, seat: SeatId, now: Instant) {
        let grace = self.settings.no_tab_grace;
        let in_call = self.call_of_seat(seat).is_some();
        if let Some(slot) = self.agents.get_mut(&seat) {
            if in_call {
                slot.audio_lost = true;
                slot.grace_until.get_or_insert(now + grace);
            }
        }
    }

    /// An audio leg of the agent connected: the call has its audio again.
    pub fn audio_up(&mut self, seat: SeatId) {
        if let Some(slot) = self.agents.get_mut(&seat) {
            if slot.audio_lost {
                slot.audio_lost = false;
                if !slot.tabs.is_empty() {
                    slot.grace_until = None;
                }
            }
        }
    }

    pub fn holds_audio(&self, seat: SeatId, conn: ConnId) -> bool {
        self.agents
            .get(&seat)
            .is_some_and(|s| s.audio == Some(conn))
    }

    pub fn current_call(&self, seat: SeatId) -> Option<DialStatus> {
        self.agents
            .get(&seat)
            .and_then(|s| s.call.as_deref().cloned())
    }

    /// The agent (or the host) picks a status.
    pub fn set_status(
        &mut self,
        seat: SeatId,
        status: Status,
        now: Instant,
    ) -> Result<(), AgentError> {
        self.agent_input(seat, AgentInput::Pick(status), now)
    }

    fn agent_input(
        &mut self,
        seat: SeatId,
        input: AgentInput,
        now: Instant,
    ) -> Result<(), AgentError> {
        let slot = self.agents.get_mut(&seat).ok_or(AgentError::NotSignedIn)?;
        slot.agent.handle(input, now)?;
        self.flush_agent(seat, now);
        Ok(())
    }

    fn flush_agent(&mut self, seat: SeatId, now: Instant) {
        let Some(slot) = self.agents.get_mut(&seat) else {
            return;
        };
        // Presence and tabs show on the wallboard even when the view stays.
        self.wall.changed(slot.tenant_id);
        self.serve_due = Some(now);
        while let Some(AgentEvent::Changed(view)) = slot.agent.poll_event() {
            slot.since = now;
            self.out.push_back(Output::SaveStatus {
                seat,
                code: view.status.code() as i64,
            });
            self.out.push_back(Output::ToAgent {
                seat,
                event: ServerEvent::Agent { agent: view },
            });
        }
    }

    fn call_of_seat(&self, seat: SeatId) -> Option<CallRef> {
        self.calls
            .iter()
            .find(|(_, c)| c.ctl.involves(seat))
            .map(|(r, _)| *r)
    }

    // ---- outbound -------------------------------------------------------

    /// A `callOut` from a tab of `seat`, with what the store said
    /// (`Err`: it could not be read) and an RTP port the shell bound (`None`:
    /// none was free). Every outcome reaches every tab as `dialStatus`.
    pub fn call_out(
        &mut self,
        seat: SeatId,
        op: CallOut,
        session_ok: bool,
        facts: Result<CallOutFacts, ()>,
        rtp: Option<RtpPort>,
        now: Instant,
    ) {
        let ms = self.ms(now);
        let Some(tenant_id) = self.agents.get(&seat).map(|s| s.tenant_id) else {
            if let Some(rtp) = rtp {
                self.out.push_back(Output::ReleaseRtp { rtp });
            }
            return;
        };
        let call_id = self.new_call_id();
        let mut record = CallRecord::new(
            call_id,
            Direction::Outbound,
            op.caller.clone(),
            op.callee.clone(),
            ms,
        );
        record.order_id = op.order_id.clone();
        record.params = op.params.clone();
        let decided = self.decide_call_out(seat, &op, session_ok, facts, rtp, &mut record, now);
        let (rtp, trunk, rate) = match decided {
            Ok(decided) => decided,
            Err(reason) => {
                if let Some(rtp) = rtp {
                    self.out.push_back(Output::ReleaseRtp { rtp });
                }
                return self.refuse(seat, tenant_id, record, reason as u16, now);
            }
        };
        let plain = AudioSdp::plain(
            self.ua.local_addr().ip(),
            rtp,
            vec![Codec::Pcmu, Codec::Pcma],
            Some(101),
            SdpDirection::SendRecv,
        );
        let offer = self.offer_for(trunk, plain);
        record.trunk = Some(self.settings.trunks[trunk].name.clone());
        let call = self.invite_on(trunk, &record.caller, &record.callee, &offer, now);
        self.counters.started(CallDirection::Outbound);
        // The agent hears our ringback until the far end sends audio.
        self.out.push_back(Output::Media(MediaOut::Bridge {
            seat,
            rtp,
            ringback: true,
        }));
        if let Some(slot) = self.agents.get_mut(&seat) {
            slot.missed.clear();
        }
        let ctl = CallController::outbound(record, seat);
        let billing = self.hold_first(tenant_id, rate);
        self.calls.insert(
            call,
            Call {
                ctl,
                tenant_id,
                rtp,
                offer,
                muted: false,
                held: false,
                want_held: None,
                version: 1,
                group_no: None,
                skill: None,
                carrier: None,
                rtp_deadline: None,
                quality: None,
                trunk: self.trunks[trunk].id,
                cancelled: false,
                billing,
                recording: false,
                recorded: false,
                waiting_media: false,
                overflowed: false,
                overflow_number: None,
                menu: None,
                announce_at: None,
            },
        );
        self.apply(call, now);
        self.pump(now);
    }

    /// Does trunk `i` carry calls now: its keepalive finds it, and it is
    /// registered if it registers.
    fn usable(&self, i: usize) -> bool {
        let h = &self.trunks[i];
        h.up && (!self.settings.trunks[i].register || h.registered)
    }

    /// Changes trunk `i`'s health; tells the shell when whether it carries
    /// calls changed.
    fn set_health(&mut self, i: usize, change: impl FnOnce(&mut TrunkHealth)) {
        let before = self.usable(i);
        change(&mut self.trunks[i]);
        let after = self.usable(i);
        if before != after {
            self.out.push_back(Output::TrunkHealth {
                name: self.settings.trunks[i].name.clone(),
                up: after,
            });
        }
    }

    /// Places a call on trunk `trunk`, from and to E.164 numbers written
    /// the trunk's way, offering `offer`.
    fn invite_on(
        &mut self,
        trunk: usize,
        caller: &str,
        callee: &str,
        offer: &AudioSdp,
        now: Instant,
    ) -> CallRef {
        let t = &self.settings.trunks[trunk];
        let (caller, callee) = (t.numbers.caller(caller), t.numbers.callee(callee));
        let peer = t.peer;
        self.ua.invite(
            &caller,
            &callee,
            peer,
            offer.to_string(1, 1).as_bytes(),
            &[],
            now,
        )
    }

    /// A crypto line with a fresh master key: one per leg and offer.
    fn fresh_crypto(&mut self, tag: u32, suite: Suite) -> Crypto {
        let mut key = [0u8; seatline_sip::sdp::MASTER_LEN];
        self.keys.fill(&mut key[..]);
        Crypto {
            tag,
            suite,
            key: MasterKey(key),
        }
    }

    /// `base` as trunk `trunk` wants it offered: with a fresh SDES key
    /// when it asks for SRTP, plain otherwise.
    fn offer_for(&mut self, trunk: usize, base: AudioSdp) -> AudioSdp {
        let plain = AudioSdp {
            profile: Profile::Avp,
            crypto: Vec::new(),
            ..base
        };
        match self.settings.trunks[trunk].srtp {
            Srtp::Off => plain,
            Srtp::Sdes => {
                let c = self.fresh_crypto(1, Suite::AesCm128HmacSha1_80);
                plain.secure(c)
            }
        }
    }

    /// Our answer to the carrier's `offer` on an inbound leg from `peer`,
    /// made from `answer` (address, port, codec): SDES with our own key
    /// when the carrier offered a suite we speak, plain when it offered
    /// plain RTP and its trunk does not require SRTP; `None` (488)
    /// otherwise.
    fn secure_answer(
        &mut self,
        offer: &AudioSdp,
        answer: AudioSdp,
        peer: Option<SocketAddr>,
    ) -> Option<AudioSdp> {
        match offer.profile {
            Profile::Savp => {
                let theirs = offer.usable_crypto()?;
                let (tag, suite) = (theirs.tag, theirs.suite);
                let ours = self.fresh_crypto(tag, suite);
                Some(answer.secure(ours))
            }
            Profile::Avp => {
                let required = peer.is_some_and(|p| {
                    self.settings
                        .trunks
                        .iter()
                        .any(|t| t.srtp == Srtp::Sdes && t.peer.ip() == p.ip())
                });
                (!required).then_some(answer)
            }
        }
    }

    /// The trunks that carry `tenant_id`'s calls, in their order: its
    /// own, or the shared ones when it has none.
    fn trunks_of(&self, tenant_id: i64) -> impl Iterator<Item = usize> + '_ {
        let own = self
            .settings
            .trunks
            .iter()
            .any(|t| t.tenant_id == Some(tenant_id));
        let whose = own.then_some(tenant_id);
        (0..self.trunks.len()).filter(move |&i| self.settings.trunks[i].tenant_id == whose)
    }

    /// The first of `tenant_id`'s trunks that is up, after the trunk
    /// with id `after` when given (none when that trunk is gone).
    fn next_trunk_up(&self, tenant_id: i64, after: Option<u32>) -> Option<usize> {
        let mut list = self.trunks_of(tenant_id);
        if let Some(id) = after {
            list.by_ref().find(|&i| self.trunks[i].id == id)?;
        }
        list.find(|&i| self.usable(i))
    }

    /// Places the outbound `call`, which failed with a carrier failure, on
    /// the next trunk that is up; false when there is none (or the call is
    /// not one to move). The tabs see one call throughout.
    fn fail_over(&mut self, call: CallRef, code: u16, now: Instant) -> bool {
        let Some(c) = self.calls.get(&call) else {
            return false;
        };
        let movable = c.ctl.record().direction == Direction::Outbound
            && !c.cancelled
            && !c.ctl.is_connected()
            && !c.ctl.is_ended()
            && is_carrier_failure(code);
        let Some(next) = movable
            .then(|| self.next_trunk_up(c.tenant_id, Some(c.trunk)))
            .flatten()
        else {
            return false;
        };
        let mut c = self.calls.remove(&call).expect("checked");
        // Each trunk its own offer: SDES or not, and never the same key twice.
        c.offer = self.offer_for(next, c.offer);
        let r = c.ctl.record();
        let again = self.invite_on(next, &r.caller.clone(), &r.callee.clone(), &c.offer, now);
        c.trunk = self.trunks[next].id;
        c.ctl.set_trunk(self.settings.trunks[next].name.clone());
        self.calls.insert(again, c);
        true
    }

    /// Counts an agent's attempt to call `callee`, or refuses it (815) when
    /// `limit` attempts were made in the last minute. Every counted attempt
    /// counts, answered or not.
    fn count_attempt(
        &mut self,
        seat: SeatId,
        callee: &str,
        limit: i64,
        now: Instant,
    ) -> Result<(), HangupReason> {
        const WINDOW: Duration = Duration::from_secs(60);
        if limit <= 0 {
            return Ok(());
        }
        // Bounded: whatever is a minute old goes when the map grows.
        if self.attempts.len() >= 10_000 {
            self.attempts.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < WINDOW)
            });
        }
        let q = self.attempts.entry((seat, callee.to_string())).or_default();
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            q.pop_front();
        }
        if q.len() as i64 >= limit {
            return Err(HangupReason::FrequencyLimit);
        }
        q.push_back(now);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_call_out(
        &mut self,
        seat: SeatId,
        op: &CallOut,
        session_ok: bool,
        facts: Result<CallOutFacts, ()>,
        rtp: Option<RtpPort>,
        record: &mut CallRecord,
        now: Instant,
    ) -> Result<(RtpPort, usize, Option<Rate>), HangupReason> {
        if self.shutting_down || self.draining {
            return Err(HangupReason::NetworkCarrier);
        }
        if !session_ok {
            return Err(HangupReason::SessionExpired);
        }
        check_lengths(op)?;
        record.callee = check_callee(&op.callee, &op.country_code)?;
        let mut facts = facts.map_err(|_| HangupReason::NetworkCarrier)?;
        // The balance is this core's own once it has seen the tenant's.
        let tenant = self
            .agents
            .get(&seat)
            .map(|s| s.tenant_id)
            .unwrap_or_default();
        // (check_policy refuses 810 at zero or below.)
        facts.policy.balance_cents =
            i64::from(self.balance(tenant, facts.policy.balance_cents) > 0);
        check_policy(&calling_code(&record.callee), &facts.policy)?;
        self.count_attempt(
            seat,
            &record.callee,
            facts.policy.max_calls_per_callee_per_minute,
            now,
        )?;
        let rate = self.can_pay(tenant, &record.callee)?;
        record.caller = pick_caller(&op.caller, &facts.owned_dids, &facts.pool_dids, self.turn)?;
        self.turn = self.turn.wrapping_add(1);
        let rtp = rtp.ok_or(HangupReason::NetworkCarrier)?;
        // Every trunk is down: the carrier cannot be reached (800). Asked
        // before the agent dials, so that the agent is left as it was.
        let tenant_id = self.agents.get(&seat).map(|s| s.tenant_id);
        let trunk = tenant_id
            .and_then(|t| self.next_trunk_up(t, None))
            .ok_or(HangupReason::NetworkCarrier)?;
        // The phone cannot take a second call: 801 (the agent side).
        let slot = self
            .agents
            .get_mut(&seat)
            .ok_or(HangupReason::NetworkAgent)?;
        if slot
            .agent
            .handle(
                AgentInput::Dial {
                    call: record.call_id.clone(),
                },
                now,
            )
            .is_err()
        {
            return Err(HangupReason::NetworkAgent);
        }
        self.flush_agent(seat, now);
        Ok((rtp, trunk, rate))
    }

    fn refuse(
        &mut self,
        seat: SeatId,
        tenant_id: i64,
        mut record: CallRecord,
        reason: u16,
        now: Instant,
    ) {
        let ms = self.ms(now);
        self.counters.refused();
        for content in record.failure_messages(reason, ms) {
            self.out.push_back(Output::ToAgent {
                seat,
                event: ServerEvent::Dial {
                    content: Box::new(content),
                },
            });
        }
        let limit = self.settings.refusals_per_minute;
        let Some(slot) = self.agents.get_mut(&seat) else {
            return;
        };
        if now.saturating_duration_since(slot.refusals.0) >= Duration::from_secs(60) {
            slot.refusals = (now, 0);
        }
        slot.refusals.1 += 1;
        if slot.refusals.1 <= limit {
            self.out.push_back(Output::SaveCall {
                tenant_id,
                seat: Some(seat),
                record: Box::new(record),
                dialog: None,
            });
        } else {
            self.suppressed_refusals += 1;
        }
    }

    // ---- agent commands ---------------------------------------------------

    pub fn hang_up(&mut self, seat: SeatId, now: Instant) {
        self.agent_command(seat, AgentCommand::HangUp, now);
    }

    /// The agent answers (true) or rejects (false) the call ringing at them.
    pub fn answer(&mut self, seat: SeatId, accept: bool, now: Instant) {
        self.agent_command(
            seat,
            if accept {
                AgentCommand::Answer
            } else {
                AgentCommand::Reject
            },
            now,
        );
    }

    fn agent_command(&mut self, seat: SeatId, cmd: AgentCommand, now: Instant) {
        let ms = self.ms(now);
        let Some(call) = self.call_of_seat(seat) else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.ctl.handle_agent_at(seat, cmd, ms);
        }
        self.apply(call, now);
        self.pump(now);
    }

    pub fn control(&mut self, seat: SeatId, control: Control, now: Instant) {
        let Some(call) = self.call_of_seat(seat) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let connected = c.ctl.is_connected();
        match control {
            Control::Dtmf(digits) => {
                if connected && !digits.is_empty() {
                    self.out
                        .push_back(Output::Media(MediaOut::Dtmf { seat, digits }));
                }
            }
            Control::Mute(on) => {
                c.muted = on;
                self.out
                    .push_back(Output::Media(MediaOut::Mute { seat, on }));
                self.out.push_back(Output::ToAgent {
                    seat,
                    event: ServerEvent::CallControl {
                        muted: c.muted,
                        held: c.held,
                    },
                });
            }
            Control::Hold(on) => {
                if !connected || c.held == on || c.want_held.is_some() {
                    return;
                }
                // Hold is a re-INVITE with sendonly (RFC 3264 §8.4); resume with sendrecv.
                c.want_held = Some(on);
                c.version += 1;
                let mut sdp = c.offer.clone();
                sdp.direction = if on {
                    SdpDirection::SendOnly
                } else {
                    SdpDirection::SendRecv
                };
                let body = sdp.to_string(1, c.version);
                self.ua.reoffer(call, body.as_bytes(), now);
                self.pump(now);
            }
        }
    }

    /// A quality sample of the seat's call, from the media plane. Passed
    /// to every tab of the agent (`quality`) and kept for the call's record
    /// when the seat has a connected call; otherwise, or when the sample is
    /// not made of numbers, nothing happens. (`now`: the input's time, like
    /// every input's; no rule of quality needs it yet.)
    pub fn quality(&mut self, seat: SeatId, sample: QualityFigures, _now: Instant) {
        let Some(q) = sample.validated() else {
            return;
        };
        let Some(call) = self.call_of_seat(seat) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !c.ctl.is_connected() {
            return;
        }
        let content = CallQuality {
            call_id: c.ctl.record().call_id.clone(),
            loss_pct: q.loss_pct,
            jitter_ms: q.jitter_ms,
            rtt_ms: q.rtt_ms,
            mos: q.mos,
        };
        match &mut c.quality {
            Some(track) => track.add(q),
            None => c.quality = Some(Box::new(QualityTrack::new(q))),
        }
        self.out.push_back(Output::ToAgent {
            seat,
            event: ServerEvent::Quality { content },
        });
    }

    /// A DTMF digit from the carrier of the call bridged at `seat`. Only a
    /// caller choosing in a menu is listened to (at its waiting key); any
    /// other digit, or one for no call at all, changes nothing.
    pub fn carrier_digit(&mut self, seat: SeatId, digit: char, now: Instant) {
        if !ivr::is_key(digit) {
            return;
        }
        let ms = self.ms(now);
        let Some((&call, c)) = self
            .calls
            .iter_mut()
            .find(|(_, c)| c.waiting_media && waiting_key(c.rtp) == seat && c.ctl.in_menu())
        else {
            return;
        };
        let Some(m) = c.menu.as_mut() else {
            return;
        };
        let choice = match m.press(digit) {
            ivr::Pressed::Wrong => return,
            ivr::Pressed::Chosen(choice) => Some(choice),
            ivr::Pressed::GaveUp(choice) => choice,
        };
        let ring = self.settings.ring_timeout;
        take_choice(c, choice, (&self.queues, ring), &mut self.out, ms);
        self.wall.changed(c.tenant_id);
        self.apply(call, now);
        self.pump(now);
    }

    /// Seats whose carrier leg sent RTP since the last report.
    pub fn rtp_alive(&mut self, seats: &[SeatId], now: Instant) {
        let timeout = self.settings.rtp_timeout;
        // Every call looks itself up: a set, not a scan of the list, for
        // thousands of calls reported at once.
        let seats: std::collections::HashSet<SeatId> = seats.iter().copied().collect();
        for c in self.calls.values_mut() {
            let agent_leg =
                c.ctl.is_connected() && !c.held && c.ctl.seat().is_some_and(|s| seats.contains(&s));
            // A caller waiting in a queue is heard at the waiting key.
            let waiting = c.waiting_media && seats.contains(&waiting_key(c.rtp));
            if agent_leg || waiting {
                c.rtp_deadline = Some(now + timeout);
            }
        }
    }

    // ---- SIP ----------------------------------------------------------------

    /// Our SIP address (RTP ports are bound on its IP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.ua.local_addr()
    }

    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        self.ua.handle_datagram(bytes, from, now);
        self.pump(now);
    }

    /// Runs the UA's events through the calls until none is left.
    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.ua.poll_event() {
            self.on_ua_event(ev, now);
        }
    }

    /// A keepalive's answer: any final response, even a refusal, means the
    /// trunk is there. Silence is judged by the ping's deadline instead
    /// (see [`Switchboard::handle_timeout`]), so a late `None` changes nothing.
    fn on_pong(&mut self, peer: SocketAddr, answered: bool, now: Instant) {
        if !answered {
            return;
        }
        for i in 0..self.trunks.len() {
            let t = &self.settings.trunks[i];
            let Some(every) = t.keepalive.filter(|_| t.peer == peer) else {
                continue;
            };
            self.set_health(i, |h| {
                if h.ping_deadline.take().is_some() {
                    h.next_ping = Some(now + every);
                }
                h.up = true;
            });
        }
    }

    fn on_registration(&mut self, peer: SocketAddr, registered: bool) {
        for i in 0..self.trunks.len() {
            let t = &self.settings.trunks[i];
            if t.register && t.peer == peer {
                self.set_health(i, |h| h.registered = registered);
            }
        }
    }

    /// Which trunks are up now, by name, in their order.
    pub fn trunk_health(&self) -> Vec<(String, bool)> {
        self.settings
            .trunks
            .iter()
            .zip(&self.trunks)
            .enumerate()
            .map(|(i, (t, _))| (t.name.clone(), self.usable(i)))
            .collect()
    }

    fn on_ua_event(&mut self, ev: UaEvent, now: Instant) {
        let ms = self.ms(now);
        let call = match &ev {
            UaEvent::Incoming {
                call,
                from_user,
                to_user,
                sdp,
                headers,
            } => {
                if self.shutting_down || self.draining {
                    // A dispatcher in front tries the next node.
                    self.ua.respond(*call, 503, None, now);
                    return;
                }
                let other = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("X-Custom-Data"))
                    .map(|(_, v)| v.clone())
                    .filter(|v| {
                        v.len() <= self.settings.max_other_len && !v.chars().any(char::is_control)
                    })
                    .unwrap_or_default();
                let did = self.did_of(*call, to_user);
                if did.is_empty() {
                    self.ua.respond(*call, 404, None, now);
                    return;
                }
                self.routing.insert(
                    *call,
                    Routing {
                        source: self.ua.peer_of(*call),
                        from_user: digits_only(from_user, 32),
                        did: did.clone(),
                        sdp: sdp.clone(),
                        other,
                        moved: headers
                            .iter()
                            .any(|(n, _)| n.eq_ignore_ascii_case(MOVED_HEADER)),
                    },
                );
                self.out
                    .push_back(Output::RouteInbound { call: *call, did });
                return;
            }
            UaEvent::Pong { peer, code } => {
                self.on_pong(*peer, code.is_some(), now);
                return;
            }
            UaEvent::Registration {
                peer, registered, ..
            } => {
                self.on_registration(*peer, *registered);
                return;
            }
            other => match other.call() {
                Some(call) => call,
                None => return,
            },
        };
        if self.routing.remove(&call).is_some() {
            // The caller gave up before the store answered.
            return;
        }
        self.count_response(&ev);
        if self.on_forward_event(&ev, now) {
            return;
        }
        let timeout = self.settings.rtp_timeout;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let seat = c.ctl.seat();
        match ev {
            UaEvent::Progress { sdp: Some(sdp), .. } => {
                // Early media (183): the carrier's own ringback or
                // announcement, if its keys (or their absence) fit our offer.
                if let (Some(seat), Ok(srtp)) = (seat, answer_keys(&c.offer, &sdp)) {
                    remote_media(&mut self.out, seat, &sdp, srtp);
                }
            }
            UaEvent::Answered { sdp, .. } => {
                let Ok(srtp) = answer_keys(&c.offer, &sdp) else {
                    // Answered without a key we offered (or with keys we
                    // did not ask for): no media could flow. The carrier
                    // failed the call; it is ended with a BYE.
                    self.end_call(call, Some(HangupReason::NetworkCarrier as u16), now);
                    return;
                };
                if let Some(seat) = seat {
                    remote_media(&mut self.out, seat, &sdp, srtp);
                    self.out
                        .push_back(Output::Media(MediaOut::Ringback { seat, on: false }));
                }
                c.rtp_deadline = Some(now + timeout);
                c.ctl.handle_sip(SipEvent::Answered, ms);
            }
            UaEvent::Failed { code, .. } => {
                if self.fail_over(call, code, now) {
                    return;
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ctl.handle_sip(SipEvent::Failed { code }, ms);
                }
            }
            UaEvent::Ended { .. } => c.ctl.handle_sip(SipEvent::Ended, ms),
            UaEvent::ReofferAnswered { sdp, .. } => {
                // The answer may carry a new key from the carrier.
                if let (Some(seat), Ok(srtp @ Some(_))) = (seat, answer_keys(&c.offer, &sdp)) {
                    remote_media(&mut self.out, seat, &sdp, srtp);
                }
                if let Some(on) = c.want_held.take() {
                    c.held = on;
                    // No RTP is owed while held; the clock starts again on resume.
                    c.rtp_deadline = if on { None } else { Some(now + timeout) };
                    if let Some(seat) = seat {
                        self.out
                            .push_back(Output::Media(MediaOut::Hold { seat, on }));
                    }
                }
                if let Some(seat) = seat {
                    self.out.push_back(Output::ToAgent {
                        seat,
                        event: ServerEvent::CallControl {
                            muted: c.muted,
                            held: c.held,
                        },
                    });
                }
            }
            UaEvent::ReofferFailed { .. } => {
                c.want_held = None;
                if let Some(seat) = seat {
                    self.out.push_back(Output::ToAgent {
                        seat,
                        event: ServerEvent::CallControl {
                            muted: c.muted,
                            held: c.held,
                        },
                    });
                }
            }
            UaEvent::Reoffer { sdp, .. } => {
                // The carrier re-offers (its hold, a media change): answer with
                // our address and the mirrored direction.
                c.version += 1;
                let parsed = AudioSdp::parse(&String::from_utf8_lossy(&sdp));
                let answer = parsed
                    .clone()
                    .and_then(|o| o.answer(c.offer.addr, c.offer.port, &c.offer.codecs))
                    .ok()
                    .zip(parsed.as_ref().ok())
                    .and_then(|(ans, offer)| reanswer(&c.offer, offer, ans));
                match answer {
                    Some((mut ans, srtp)) => {
                        ans.dtmf_pt = c.offer.dtmf_pt.and(ans.dtmf_pt);
                        let body = ans.to_string(1, c.version);
                        // The carrier holding us may stop its RTP.
                        let silent = matches!(
                            parsed.map(|p| p.direction),
                            Ok(SdpDirection::SendOnly | SdpDirection::Inactive)
                        );
                        if c.ctl.is_connected() {
                            c.rtp_deadline = if silent { None } else { Some(now + timeout) };
                        }
                        self.ua
                            .respond_reoffer(call, 200, Some(body.as_bytes()), now);
                        if let Some(seat) = seat {
                            remote_media(&mut self.out, seat, &sdp, srtp);
                        }
                    }
                    None => self.ua.respond_reoffer(call, 488, None, now),
                }
            }
            UaEvent::Confirmed { .. }
            | UaEvent::Progress { .. }
            | UaEvent::Incoming { .. }
            | UaEvent::Pong { .. }
            | UaEvent::Registration { .. } => {}
        }
        self.apply(call, now);
    }

    /// The store's answer to [`Output::RouteInbound`], with an RTP port the
    /// shell bound for the call (`None`: none free).
    /// `rtp`: the ports the shell bound for the call: one for a group,
    /// two for a forward, none otherwise (any not used are released).
    pub fn route_inbound(&mut self, call: CallRef, route: Route, rtp: &[RtpPort], now: Instant) {
        self.route_inbound_or_move(call, route, rtp, None, now)
    }

    /// Whether an agent of the group could be offered a call now (an
    /// inbound call to it would not wait).
    pub fn can_take(&self, tenant_id: i64, group_no: &str, skill: Option<&str>) -> bool {
        self.pick_agent(tenant_id, group_no, &[], skill).is_some()
    }

    /// As [`Self::route_inbound`]; with several nodes, `elsewhere` is the
    /// SIP URI (`sip:host:port`) of another node that holds idle agents
    /// of the route's group. A group call that no agent here can take now
    /// is redirected there (302, the DID kept), unless another node
    /// already moved it here: one node decides for each agent, and a call
    /// waits where agents are.
    pub fn route_inbound_or_move(
        &mut self,
        call: CallRef,
        route: Route,
        rtp: &[RtpPort],
        elsewhere: Option<&str>,
        now: Instant,
    ) {
        if let (
            Some(node),
            Route::Group {
                tenant_id,
                group_no,
                skill,
            },
        ) = (elsewhere, &route)
        {
            let target = self
                .routing
                .get(&call)
                .filter(|r| !r.moved && self.may_carry_for(r.source, *tenant_id))
                .zip(node.strip_prefix("sip:"))
                .map(|(r, host)| format!("sip:{}@{host}", r.did));
            if let Some(target) = target {
                if !self.can_take(*tenant_id, group_no, skill.as_deref()) {
                    self.routing.remove(&call);
                    for &rtp in rtp {
                        self.out.push_back(Output::ReleaseRtp { rtp });
                    }
                    self.moved_calls += 1;
                    self.ua.redirect(call, &target, now);
                    return;
                }
            }
        }
        let Some(r) = self.routing.remove(&call) else {
            for &rtp in rtp {
                self.out.push_back(Output::ReleaseRtp { rtp });
            }
            return;
        };
        let release_from = |out: &mut VecDeque<Output>, from: usize| {
            for &rtp in rtp.iter().skip(from) {
                out.push_back(Output::ReleaseRtp { rtp });
            }
        };
        let release = |out: &mut VecDeque<Output>| release_from(out, 0);
        // A tenant's own trunk carries calls to that tenant's numbers only.
        let route = match route {
            Route::Group { tenant_id, .. }
            | Route::Forward { tenant_id, .. }
            | Route::Menu { tenant_id, .. }
                if !self.may_carry_for(r.source, tenant_id) =>
            {
                Route::Unknown
            }
            route => route,
        };
        let (tenant_id, group_no, skill, menu) = match route {
            Route::Group {
                tenant_id,
                group_no,
                skill,
            } => {
                release_from(&mut self.out, 1);
                (tenant_id, Some(group_no), skill, None)
            }
            // A menu the store holds but a caller could not use (it was
            // checked when set) is a refusal, never a guess.
            Route::Menu { menu, .. } if menu.check().is_err() => {
                release(&mut self.out);
                self.ua.respond(call, 503, None, now);
                return;
            }
            Route::Menu { tenant_id, menu } => {
                release_from(&mut self.out, 1);
                (tenant_id, None, None, Some(menu))
            }
            Route::Forward { tenant_id, number } => {
                if let [a, b, ..] = *rtp {
                    release_from(&mut self.out, 2);
                    self.forward(call, r, tenant_id, number, (a, b), now);
                } else {
                    release(&mut self.out);
                    self.ua.respond(call, 503, None, now);
                }
                return;
            }
            Route::Reject { code } => {
                release(&mut self.out);
                let code = if (400..700).contains(&code) {
                    code
                } else {
                    403
                };
                self.ua.respond(call, code, None, now);
                return;
            }
            Route::Unknown => {
                release(&mut self.out);
                self.unknown_dids += 1;
                self.ua.respond(call, 404, None, now);
                return;
            }
            Route::Unavailable => {
                release(&mut self.out);
                self.ua.respond(call, 503, None, now);
                return;
            }
        };
        let Ok(carrier) = AudioSdp::parse(&String::from_utf8_lossy(&r.sdp)) else {
            release(&mut self.out);
            self.ua.respond(call, 488, None, now);
            return;
        };
        let Some(&port) = rtp.first() else {
            self.ua.respond(call, 503, None, now);
            return;
        };
        let peer = self.ua.peer_of(call);
        let Some(mut ours) = carrier
            .answer(self.ua.local_addr().ip(), port, &[Codec::Pcmu, Codec::Pcma])
            .ok()
            .and_then(|ans| self.secure_answer(&carrier, ans, peer))
        else {
            release(&mut self.out);
            self.ua.respond(call, 488, None, now);
            return;
        };
        ours.dtmf_pt = carrier.dtmf_pt;
        let id = self.new_call_id();
        let mut record = CallRecord::new(id, Direction::Inbound, r.from_user, r.did, self.ms(now));
        record.other = r.other;
        let did = record.callee.clone();
        let ctl = match (&menu, &group_no) {
            (Some(m), _) => CallController::inbound_menu(
                record,
                self.settings.ring_timeout,
                Duration::from_secs(u64::from(m.timeout_secs)),
                now,
            ),
            (None, group_no) => {
                let group = group_no.as_deref().unwrap_or_default();
                let routing = self.queues.routing(tenant_id, group);
                let mut ctl = CallController::inbound(
                    record,
                    routing.ring_timeout(self.settings.ring_timeout),
                );
                ctl.set_max_wait(routing.max_wait());
                ctl
            }
        };
        let menu = menu.map(|menu| {
            Box::new(ivr::InMenu {
                menu,
                did,
                wrong: 0,
            })
        });
        self.calls.insert(
            call,
            Call {
                ctl,
                tenant_id,
                rtp: port,
                offer: ours,
                muted: false,
                held: false,
                want_held: None,
                version: 1,
                group_no,
                skill,
                carrier: Some(carrier),
                rtp_deadline: None,
                quality: None,
                trunk: 0,
                cancelled: false,
                billing: None,
                recording: false,
                recorded: false,
                waiting_media: false,
                overflowed: false,
                overflow_number: None,
                menu,
                announce_at: None,
            },
        );
        self.counters.started(CallDirection::Inbound);
        self.apply(call, now);
        self.pump(now);
    }

    // ---- actions --------------------------------------------------------------

    /// Carries out what a call's controller decided; forgets ended calls.
    fn apply(&mut self, call: CallRef, now: Instant) {
        let ms = self.ms(now);
        loop {
            let Some(c) = self.calls.get_mut(&call) else {
                return;
            };
            let Some(action) = c.ctl.poll_action() else {
                break;
            };
            match action {
                Action::Dial { seat, content } => {
                    let code = code_of(&content);
                    self.wall.changed(c.tenant_id);
                    // The agent hears an inbound call ring in the tab holding the audio.
                    if code == 1 || code == 2 || code == 5 {
                        self.out.push_back(Output::Media(MediaOut::Ring {
                            seat,
                            on: code == 1,
                        }));
                    }
                    if let Some(slot) = self.agents.get_mut(&seat) {
                        if code == 5 {
                            slot.call = None;
                        } else if (0..=2).contains(&code) {
                            slot.call = Some(content.clone());
                        }
                        if slot.tabs.is_empty() && (code == 5 || code >= 800) {
                            // Nobody sees it now: the next tab that opens will.
                            slot.missed.push((*content).clone());
                            slot.missed.truncate(4);
                        }
                    }
                    self.out.push_back(Output::ToAgent {
                        seat,
                        event: ServerEvent::Dial { content },
                    });
                    if code == 2 {
                        self.on_connected(call, seat);
                        self.wall_answered(call);
                    }
                }
                Action::Agent { seat, input } => {
                    if c.ctl.record().direction == Direction::Inbound {
                        self.queues.saw(seat, &input);
                    }
                    let _ = self.agent_input(seat, input, now);
                }
                Action::PickAgent { mut tried } => {
                    let tenant = c.tenant_id;
                    let group = c.group_no.clone().unwrap_or_default();
                    let skill = c.skill.clone();
                    let call_id = c.ctl.record().call_id.clone();
                    let all = self.queues.routing(tenant, &group).strategy == Strategy::RingAll;
                    // Ring-all: everyone available at once (one pass);
                    // else the strategy's pick, then the next if the
                    // agent's state refuses the call.
                    let mut candidates = if all {
                        self.available_agents(tenant, &group, &tried, skill.as_deref())
                    } else {
                        Vec::new()
                    }
                    .into_iter();
                    let mut picked = Vec::new();
                    loop {
                        let next = if all {
                            candidates.next()
                        } else {
                            self.pick_agent(tenant, &group, &tried, skill.as_deref())
                        };
                        let Some(seat) = next else { break };
                        tried.push(seat);
                        if self
                            .agent_input(
                                seat,
                                AgentInput::Assign {
                                    call: call_id.clone(),
                                },
                                now,
                            )
                            .is_ok()
                        {
                            if let Some(slot) = self.agents.get_mut(&seat) {
                                slot.missed.clear();
                            }
                            self.queues.offered(tenant, &group, seat);
                            picked.push(seat);
                            if !all {
                                break;
                            }
                        }
                    }
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.ctl.agents_picked(picked, now, ms);
                    }
                }
                Action::RingCarrier => self.ua.respond(call, 180, None, now),
                Action::AnswerMenu => {
                    // Answered to choose: the caller hears the DID's prompt
                    // and must keep sending RTP, as a waiting caller does.
                    c.waiting_media = true;
                    c.rtp_deadline = Some(now + self.settings.rtp_timeout);
                    let body = c.offer.to_string(1, 1);
                    let key = waiting_key(c.rtp);
                    bridge_carrier(&mut self.out, c, key);
                    let did = c.menu.as_ref().map(|m| m.did.clone()).unwrap_or_default();
                    self.out.push_back(Output::Media(MediaOut::Prompt {
                        seat: key,
                        tenant_id: c.tenant_id,
                        did,
                    }));
                    self.ua.respond(call, 200, Some(body.as_bytes()), now);
                    self.wall.changed(c.tenant_id);
                }
                Action::MenuExpired => {
                    let choice = c.menu.as_ref().and_then(|m| m.fallback());
                    let ring = self.settings.ring_timeout;
                    take_choice(c, choice, (&self.queues, ring), &mut self.out, ms);
                    self.wall.changed(c.tenant_id);
                }
                Action::AnswerCarrier { seat } => {
                    let body = c.offer.to_string(1, 1);
                    c.rtp_deadline = Some(now + self.settings.rtp_timeout);
                    bridge_carrier(&mut self.out, c, seat);
                    self.ua.respond(call, 200, Some(body.as_bytes()), now);
                }
                Action::Queue => {
                    let (tenant_id, since) = (c.tenant_id, c.ctl.record().start_ms);
                    let group = c.group_no.clone().unwrap_or_default();
                    if !c.waiting_media {
                        // Answered once, to wait: the caller hears music
                        // until an agent takes it, and must keep sending
                        // RTP (a carrier gone silent ends the wait).
                        c.waiting_media = true;
                        c.rtp_deadline = Some(now + self.settings.rtp_timeout);
                        let body = c.offer.to_string(1, 1);
                        let key = waiting_key(c.rtp);
                        bridge_carrier(&mut self.out, c, key);
                        self.out.push_back(Output::Media(MediaOut::Music {
                            seat: key,
                            on: true,
                            tenant_id,
                        }));
                        self.ua.respond(call, 200, Some(body.as_bytes()), now);
                    }
                    self.queues.enqueue(tenant_id, &group, call, since);
                    // Told at once, then every ANNOUNCE_EVERY (a caller put
                    // back after an offer keeps the rhythm), if the group
                    // announces at all.
                    if self.queues.announces(tenant_id, &group) {
                        c.announce_at.get_or_insert(now);
                    }
                    self.wall.changed(tenant_id);
                }
                Action::BridgeWaiting { seat } => {
                    c.announce_at = None;
                    c.rtp_deadline = Some(now + self.settings.rtp_timeout);
                    if std::mem::take(&mut c.waiting_media) {
                        let key = waiting_key(c.rtp);
                        self.out
                            .push_back(Output::Media(MediaOut::Unbridge { seat: key }));
                    }
                    bridge_carrier(&mut self.out, c, seat);
                }
                Action::Overflow => {
                    self.queues.dequeue(call);
                    let (tenant_id, group) = (c.tenant_id, c.group_no.clone().unwrap_or_default());
                    self.wall.changed(tenant_id);
                    match self.queues.routing(tenant_id, &group).overflow {
                        Overflow::Group(next) if !c.overflowed && next != group => {
                            c.overflowed = true;
                            let routing = self.queues.routing(tenant_id, &next);
                            let wait = routing.max_wait();
                            c.ctl
                                .set_ring_timeout(routing.ring_timeout(self.settings.ring_timeout));
                            c.group_no = Some(next);
                            c.ctl.overflow_to(wait, now);
                        }
                        // Out of every queue, still hearing its music,
                        // until the leg toward the number has a port (also
                        // after an overflow to a group: no loop is possible).
                        Overflow::Number(number) if c.overflow_number.is_none() => {
                            c.overflowed = true;
                            c.overflow_number = Some(number);
                            self.out.push_back(Output::BindRtp { call });
                        }
                        // The caller waited long enough (or waited in the
                        // overflow group too): the call ends here.
                        _ => c.ctl.end_locally(None, ms),
                    }
                }
                Action::RefuseCarrier { code } => self.ua.respond(call, code, None, now),
                Action::HangUpCarrier => {
                    c.cancelled = true;
                    self.ua.hang_up(call, now)
                }
                Action::Unbridge { seat } => self
                    .out
                    .push_back(Output::Media(MediaOut::Unbridge { seat })),
                Action::Save => {
                    self.bill_on_save(call, now);
                    let Some(c) = self.calls.get(&call) else {
                        continue;
                    };
                    let dialog = if c.ctl.is_connected() {
                        self.ua
                            .dialog_snapshot(call)
                            .and_then(|d| serde_json::to_string(&d).ok())
                    } else {
                        None
                    };
                    let Some(c) = self.calls.get(&call) else {
                        continue;
                    };
                    let mut record = c.ctl.record().clone();
                    if let Some(q) = &c.quality {
                        q.fill(&mut record);
                    }
                    if let Some(b) = &c.billing {
                        b.fill(&mut record);
                    }
                    record.recorded = c.recorded;
                    self.out.push_back(Output::SaveCall {
                        tenant_id: c.tenant_id,
                        seat: c.ctl.seat(),
                        record: Box::new(record),
                        dialog,
                    });
                }
            }
        }
        if self.calls.get(&call).is_some_and(|c| c.ctl.is_ended()) {
            if let Some(c) = self.calls.remove(&call) {
                self.queues.dequeue(call);
                let r = c.ctl.record();
                if let (Direction::Inbound, Some(from), Some(to), Some(group)) = (
                    r.direction,
                    r.connected_ms,
                    r.hangup_ms,
                    c.group_no.as_deref(),
                ) {
                    let talk = (to - from).max(0) as f64 / 1_000.0;
                    self.queues.note_talk(c.tenant_id, group, talk);
                }
                if c.waiting_media {
                    let seat = waiting_key(c.rtp);
                    self.out
                        .push_back(Output::Media(MediaOut::Unbridge { seat }));
                }
                self.wall_call_gone(&c, ms);
                if let Some(seat) = c.ctl.seat() {
                    if let Some(slot) = self.agents.get_mut(&seat) {
                        slot.grace_until = None;
                        slot.audio_lost = false;
                    }
                }
                self.out.push_back(Output::ReleaseRtp { rtp: c.rtp });
            }
        }
    }

    /// Waiting callers whose turn to be told their place came: told, in
    /// their group's language, and told again in [`ANNOUNCE_EVERY`]. A
    /// caller ringing an agent now is skipped this time; one in a group
    /// that announces nothing is not told again.
    fn announce_due(&mut self, now: Instant) {
        for call in due_calls(&self.calls, now, |c| c.announce_at) {
            let Some(c) = self.calls.get(&call) else {
                continue;
            };
            let group = c.group_no.clone().unwrap_or_default();
            let lang = self.queues.routing(c.tenant_id, &group).announce_lang;
            let told = match (&lang, self.queues.position(call)) {
                (Some(lang), Some(position)) if c.ctl.is_queued() => {
                    let staffed = self
                        .agents
                        .values()
                        .filter(|s| {
                            s.tenant_id == c.tenant_id
                                && s.group_no == group
                                && s.agent.is_signed_in()
                        })
                        .count();
                    let handle = self.queues.handle_secs(c.tenant_id, &group);
                    Some(MediaOut::Announce {
                        seat: waiting_key(c.rtp),
                        lang: lang.clone(),
                        position: u32::try_from(position).unwrap_or(u32::MAX),
                        minutes: queue::expected_minutes(position, handle, staffed),
                    })
                }
                _ => None,
            };
            if let Some(m) = told {
                self.out.push_back(Output::Media(m));
            }
            if let Some(c) = self.calls.get_mut(&call) {
                c.announce_at = lang.map(|_| now + ANNOUNCE_EVERY);
            }
        }
    }

    fn end_call(&mut self, call: CallRef, reason: Option<u16>, now: Instant) {
        let ms = self.ms(now);
        if let Some(c) = self.calls.get_mut(&call) {
            c.ctl.end_locally(reason, ms);
        }
        self.apply(call, now);
        self.pump(now);
    }

    // ---- time -------------------------------------------------------------------

    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .flat_map(|c| {
                [
                    c.ctl.poll_timeout(),
                    c.rtp_deadline,
                    c.announce_at,
                    c.billing.as_ref().and_then(|b| b.next_at()),
                ]
            })
            .flatten();
        let agents = self
            .agents
            .values()
            .flat_map(|s| [s.agent.poll_timeout(), s.grace_until])
            .flatten();
        let pings = self
            .trunks
            .iter()
            .filter_map(|h| h.ping_deadline.or(h.next_ping));
        self.ua
            .poll_timeout()
            .into_iter()
            .chain(calls)
            .chain(agents)
            .chain(pings)
            .chain(self.forward_timeout())
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let ms = self.ms(now);
        self.ua.handle_timeout(now);
        self.pump(now);
        for i in 0..self.trunks.len() {
            let Some(every) = self.settings.trunks[i].keepalive else {
                continue;
            };
            if self.trunks[i].ping_deadline.is_some_and(|d| d <= now) {
                // Unanswered in time: the trunk is gone until a ping is answered.
                self.set_health(i, |h| {
                    h.ping_deadline = None;
                    h.next_ping = Some(now);
                    h.up = false;
                });
            }
            let (t, h) = (&self.settings.trunks[i], &mut self.trunks[i]);
            if h.ping_deadline.is_none() && h.next_ping.is_some_and(|p| p <= now) {
                h.next_ping = None;
                h.ping_deadline =
                    Some(now + every.clamp(Duration::from_secs(1), PING_ANSWER_LIMIT));
                self.ua.ping(t.peer, now);
            }
        }
        if self.ua.take_shrunk() {
            self.out.push_back(Output::Compacted);
        }
        let due = due_calls(&self.calls, now, |c| c.ctl.poll_timeout());
        for call in due {
            // A ringing call that leaves its agents on a timeout rang out
            // at each of them.
            let rang_out = self.calls.get_mut(&call).map_or_else(Vec::new, |c| {
                let seats = c.ctl.ringing_seats();
                c.ctl.handle_timeout(now, ms);
                if c.ctl.seat().is_none() {
                    seats
                } else {
                    Vec::new()
                }
            });
            self.apply(call, now);
            for seat in rang_out {
                self.offer_rang_out(seat, now);
            }
        }
        self.forward_silences(now);
        self.announce_due(now);
        self.bill_due(now);
        let silent = due_calls(&self.calls, now, |c| c.rtp_deadline);
        for call in silent {
            // The carrier went silent: it is gone, and so is the call.
            self.end_call(call, Some(HangupReason::NetworkCarrier as u16), now);
        }
        let wrap: Vec<SeatId> = self
            .agents
            .iter()
            .filter(|(_, s)| s.agent.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for seat in wrap {
            if let Some(slot) = self.agents.get_mut(&seat) {
                slot.agent.handle_timeout(now);
            }
            self.flush_agent(seat, now);
        }
        let lost: Vec<SeatId> = self
            .agents
            .iter()
            .filter(|(_, s)| s.grace_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for seat in lost {
            if let Some(slot) = self.agents.get_mut(&seat) {
                slot.grace_until = None;
                if !slot.tabs.is_empty() && !slot.audio_lost {
                    continue;
                }
                slot.audio_lost = false;
            }
            // Every tab stayed away, or the audio never came back: the
            // agent's side of the call is lost (801), unless the call is a
            // ring-all offer still ringing elsewhere (then it stops ringing
            // here only).
            if let Some(call) = self.call_of_seat(seat) {
                let ms = self.ms(now);
                let dropped = self
                    .calls
                    .get_mut(&call)
                    .is_some_and(|c| c.ctl.drop_seat(seat, ms));
                if dropped {
                    self.apply(call, now);
                } else {
                    self.end_call(call, Some(HangupReason::NetworkAgent as u16), now);
                }
            }
        }
        self.pump(now);
    }

    // ---- life of the process ----------------------------------------------------

    /// The server stops: every call ends now, with a BYE (or CANCEL, or a
    /// refusal) to the carrier and code 5 to the tabs; no new call starts.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.end_all_forwards(now);
        let calls: Vec<CallRef> = self.calls.keys().copied().collect();
        for call in calls {
            self.end_call(call, None, now);
        }
        let routing: Vec<CallRef> = self.routing.keys().copied().collect();
        for call in routing {
            self.routing.remove(&call);
            self.ua.respond(call, 503, None, now);
        }
    }

    /// Calls an earlier process left open (it crashed): each record is
    /// closed now, each carrier leg that may still be up gets a BYE, and the
    /// agent's next tab hears that the call ended.
    pub fn recover(&mut self, open: Vec<OpenCall>, now: Instant) {
        self.recover_as(open, HangupReason::NetworkAgent, now)
    }

    /// As [`Self::recover`], the records ended with `reason`: a node that
    /// died is a network failure toward the carrier (800) for the calls a
    /// surviving node closes for it.
    pub fn recover_as(&mut self, open: Vec<OpenCall>, reason: HangupReason, now: Instant) {
        let ms = self.ms(now);
        let reason = reason as u16;
        for mut c in open {
            let msgs = c.record.failure_messages(reason, ms);
            // An agent's call keeps one dialog, a forwarded call its two.
            let snaps: Vec<seatline_sip::DialogSnapshot> = match c.dialog.as_deref() {
                Some(d) => serde_json::from_str(d)
                    .map(|one| vec![one])
                    .or_else(|_| serde_json::from_str(d))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            for snap in snaps.iter().take(2) {
                self.ua.bye_from_snapshot(snap, now);
            }
            if let Some(seat) = c.seat {
                self.orphan_ends.entry(seat).or_default().extend(msgs);
            }
            self.out.push_back(Output::SaveCall {
                tenant_id: c.tenant_id,
                seat: c.seat,
                record: Box::new(c.record),
                dialog: None,
            });
        }
        self.pump(now);
    }
}

/// The calls whose deadline (as `deadline` reads it) has come.
fn due_calls(
    calls: &HashMap<CallRef, Call>,
    now: Instant,
    deadline: impl Fn(&Call) -> Option<Instant>,
) -> Vec<CallRef> {
    calls
        .iter()
        .filter(|(_, c)| deadline(c).is_some_and(|t| t <= now))
        .map(|(r, _)| *r)
        .collect()
}

/// Points the agent's media at the far end's address and codec from its
/// SDP, secured with `srtp` when the leg is SRTP.
fn remote_media(out: &mut VecDeque<Output>, seat: SeatId, sdp: &[u8], srtp: Option<SrtpKeys>) {
    if let Ok(s) = AudioSdp::parse(&String::from_utf8_lossy(sdp)) {
        if let Some(codec) = s.codecs.first() {
            out.push_back(Output::Media(MediaOut::Remote {
                seat,
                remote: SocketAddr::new(s.addr, s.port),
                pt: *codec as u8,
                dtmf_pt: s.dtmf_pt,
                srtp,
            }));
        }
    }
}

/// The leg's keys: ours from our SDP's one crypto line, theirs from `theirs`.
/// Joins `seat`'s audio (an agent, or a waiting call's key) to the call's
/// carrier leg: the bridge, then where the carrier's RTP goes.
/// A call in a menu goes to `choice` (the caller's, or the menu's default):
/// it looks for an agent in that group, hearing the tenant's music in
/// place of the prompt; with no choice, it ends (BYE).
fn take_choice(
    c: &mut Call,
    choice: Option<MenuChoice>,
    (queues, ring): (&queue::Queues, Duration),
    out: &mut VecDeque<Output>,
    now_ms: i64,
) {
    if !c.ctl.in_menu() {
        return;
    }
    c.menu = None;
    let Some(choice) = choice else {
        c.ctl.end_locally(None, now_ms);
        return;
    };
    let routing = queues.routing(c.tenant_id, &choice.group_no);
    c.ctl.set_max_wait(routing.max_wait());
    c.ctl.set_ring_timeout(routing.ring_timeout(ring));
    c.group_no = Some(choice.group_no);
    c.skill = choice.skill;
    out.push_back(Output::Media(MediaOut::Music {
        seat: waiting_key(c.rtp),
        on: true,
        tenant_id: c.tenant_id,
    }));
    c.ctl.menu_chosen();
}

fn bridge_carrier(out: &mut VecDeque<Output>, c: &Call, seat: SeatId) {
    out.push_back(Output::Media(MediaOut::Bridge {
        seat,
        rtp: c.rtp,
        ringback: false,
    }));
    let Some(theirs) = c.carrier.as_ref() else {
        return;
    };
    out.push_back(Output::Media(MediaOut::Remote {
        seat,
        remote: SocketAddr::new(theirs.addr, theirs.port),
        pt: c.offer.codecs[0] as u8,
        dtmf_pt: c.offer.dtmf_pt,
        srtp: keys_of(&c.offer, theirs.usable_crypto()),
    }));
}

fn keys_of(ours: &AudioSdp, theirs: Option<&Crypto>) -> Option<SrtpKeys> {
    let (ours, theirs) = (ours.crypto.first()?, theirs?);
    Some(SrtpKeys {
        suite: theirs.suite,
        send: ours.key.clone(),
        recv: theirs.key.clone(),
    })
}

/// Whether the far end's answer `sdp` fits our `offer`: `Ok(None)` for
/// plain RTP both ways (or an answer we cannot read at all: no media is
/// set up from it), `Ok(Some)` with the leg's keys when an SDES offer got
/// one of its crypto lines back, `Err` when the security does not match.
pub(crate) fn answer_keys(offer: &AudioSdp, sdp: &[u8]) -> Result<Option<SrtpKeys>, ()> {
    let Ok(answer) = AudioSdp::parse(&String::from_utf8_lossy(sdp)) else {
        return match offer.profile {
            Profile::Avp => Ok(None),
            Profile::Savp => Err(()),
        };
    };
    match (offer.profile, answer.profile) {
        (Profile::Avp, Profile::Avp) => Ok(None),
        (Profile::Savp, Profile::Savp) => offer
            .answered_crypto(&answer)
            .map(|theirs| keys_of(offer, Some(theirs)))
            .ok_or(()),
        _ => Err(()),
    }
}

/// Our answer to the far end's re-offer `theirs` on a call where `ours` is
/// what we use: the same security as before (our key kept, their key as
/// they now give it), or `None` (488).
fn reanswer(
    ours: &AudioSdp,
    theirs: &AudioSdp,
    answer: AudioSdp,
) -> Option<(AudioSdp, Option<SrtpKeys>)> {
    match (ours.profile, theirs.profile) {
        (Profile::Avp, Profile::Avp) => Some((answer, None)),
        (Profile::Savp, Profile::Savp) => {
            let their = theirs.usable_crypto()?;
            let mine = ours.crypto.first()?;
            let keys = keys_of(ours, Some(their));
            let answer = answer.secure(Crypto {
                tag: their.tag,
                suite: their.suite,
                key: mine.key.clone(),
            });
            Some((answer, keys))
        }
        _ => None,
    }
}
