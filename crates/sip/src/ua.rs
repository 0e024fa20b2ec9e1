//! A SIP user agent for trunk calls, sans-IO: dialogs (RFC 3261 §12) on top
//! of the transaction layer, for INVITE/ACK/BYE/CANCEL and re-INVITE.
//!
//! One [`UserAgent`] serves many calls. The call controller asks it to
//! place, answer, cancel, hang up or re-offer a call, and reads
//! [`UaEvent`]s back. The UA owns what RFC 3261 gives the "UA core": the
//! ACK for a 2xx (and again for each retransmitted 2xx), retransmitting our
//! own 2xx until its ACK, CANCEL only after a provisional response, and the
//! 491 glare retry of re-INVITEs.
//!
//! What it takes from the network, and what it refuses:
//!
//! - Requests only from trusted sources ([`UserAgent::set_trusted`]); any
//!   other request is dropped without an answer and counted
//!   ([`UserAgent::dropped_untrusted`]). Responses only from the address
//!   their request went to.
//! - In-dialog requests only when Call-ID, our tag (To) and theirs (From)
//!   all match (481 otherwise); CANCEL only for the transaction of its
//!   INVITE (RFC 3261 §9.2). Packets of a dialog always go to its `peer`
//!   (the trunk address); a Contact only changes the Request-URI.
//! - Refusals of requests that belong to no call (400, 481, 482, 491, 500,
//!   501, 503) are sent without state: one answer per request, no memory.
//! - Every state ends by itself: an inbound call unanswered for
//!   [`UNANSWERED_LIMIT`] is refused 480, a re-offer unanswered for 64*T1 is
//!   refused 500, and at most [`MAX_EARLY_INBOUND`] inbound calls ring at once.
//! - Caller data is checked before the application sees it (see
//!   [`UaEvent::Incoming`]).

use crate::auth::{self, Credentials};
use crate::message::{uri_of, uri_user, Message, Method, StartLine};
use crate::register::{Outcome, Registration};
use crate::timer::TimerSet;
use crate::transaction::{
    new_branch, response_to, Timers, Transactions, Transmit, TxEvent, MAX_CSEQ,
};
use crate::trust::{same_addr, TrustedSource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub type CallRef = u64;

/// A dialog to change (a field borrow, not all of `self`): its timer is
/// recomputed before the public method returns.
macro_rules! dialog {
    ($ua:ident, $call:expr) => {{
        $ua.touched.push($call);
        $ua.calls.get_mut(&$call)
    }};
}

/// At most this many inbound calls may be unanswered at once; more get 503.
pub const MAX_EARLY_INBOUND: usize = 1024;
/// An inbound call the application has not answered (>= 200) by then is refused 480.
pub const UNANSWERED_LIMIT: Duration = Duration::from_secs(180);
/// At most this many `X-` headers reach [`UaEvent::Incoming`]...
pub const MAX_X_HEADERS: usize = 8;
/// ...each with a name of at most this many characters...
pub const MAX_X_NAME: usize = 64;
/// ...and a value of at most this many bytes.
pub const MAX_X_VALUE: usize = 1024;
/// [`UserAgent::bye_from_snapshot`] numbers its BYE this far above the
/// snapshot's CSeq, so that re-INVITEs sent after the snapshot was taken do
/// not make the BYE look out of order (RFC 3261 §12.2.2).
pub const SNAPSHOT_BYE_CSEQ_MARGIN: u32 = 1000;
/// A request is sent again with credentials at most this many times in a
/// row; a trunk that keeps challenging has refused them.
pub const MAX_AUTH_TRIES: u8 = 2;
/// At most this many BYEs (and OPTIONS pings) are remembered for an
/// answer at once; beyond, the oldest is forgotten (its challenge goes
/// unanswered, its keepalive is not reported).
const MAX_PENDING: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub enum UaEvent {
    /// A new inbound call. Answer it with [`UserAgent::respond`].
    ///
    /// `from_user` and `to_user` are phone numbers: an optional leading `+`
    /// and 1 to 32 digits. Anything else (a name, `anonymous`, junk) comes
    /// as an empty string; the UA does not refuse the call for it, the
    /// application decides. `headers` are the request's `X-` headers, at
    /// most [`MAX_X_HEADERS`] with names of at most [`MAX_X_NAME`] token
    /// characters and values of at most [`MAX_X_VALUE`] bytes of printable
    /// UTF-8; any other `X-` header is left out.
    Incoming {
        call: CallRef,
        from_user: String,
        to_user: String,
        sdp: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    /// 180/183 for our call, with early media SDP if any.
    Progress {
        call: CallRef,
        code: u16,
        sdp: Option<Vec<u8>>,
    },
    /// Our call was answered (ACK already sent).
    Answered { call: CallRef, sdp: Vec<u8> },
    /// Our call failed: a final response >= 300, or 408 when nothing came.
    Failed {
        call: CallRef,
        code: u16,
        reason: String,
    },
    /// The ACK for our 2xx arrived: the inbound call is fully up.
    Confirmed { call: CallRef },
    /// The call ended: `remote` when the other side hung up or cancelled, or
    /// when the UA gave up on it (no ACK, or unanswered for [`UNANSWERED_LIMIT`]).
    Ended { call: CallRef, remote: bool },
    /// The other side re-offered (hold/resume). Answer with [`UserAgent::respond_reoffer`]
    /// within 64*T1, or the UA refuses it 500.
    Reoffer { call: CallRef, sdp: Vec<u8> },
    /// Our re-offer was accepted, with the answer.
    ReofferAnswered { call: CallRef, sdp: Vec<u8> },
    /// Our re-offer was refused (not 491: that one is retried by itself).
    ReofferFailed { call: CallRef, code: u16 },
    /// The answer to an OPTIONS ping of [`UserAgent::ping`]: `code` is the
    /// final response's, or `None` when nothing came back in time.
    Pong { peer: SocketAddr, code: Option<u16> },
    /// A registration of [`UserAgent::register`] succeeded (`expires`
    /// seconds granted) or failed (`code`: the final response, `None` when
    /// nothing came back); a failed one is tried again after a backoff.
    Registration {
        peer: SocketAddr,
        registered: bool,
        code: Option<u16>,
        expires: Option<u32>,
    },
}

impl UaEvent {
    /// The call an event is about (`None` for pings and registrations).
    pub fn call(&self) -> Option<CallRef> {
        match self {
            UaEvent::Incoming { call, .. }
            | UaEvent::Progress { call, .. }
            | UaEvent::Answered { call, .. }
            | UaEvent::Failed { call, .. }
            | UaEvent::Ended { call, .. }
            | UaEvent::Reoffer { call, .. }
            | UaEvent::ReofferAnswered { call, .. }
            | UaEvent::ReofferFailed { call, .. }
            | UaEvent::Confirmed { call } => Some(*call),
            UaEvent::Pong { .. } | UaEvent::Registration { .. } => None,
        }
    }
}

/// Which side of the dialog we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DialogRole {
    /// We placed the call.
    Uac,
    /// We received it.
    Uas,
}

/// What a later process needs to end a dialog this one left up: everything
/// an in-dialog request carries (RFC 3261 §12). Persist it when the call
/// connects; after a crash, [`UserAgent::bye_from_snapshot`] hangs it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogSnapshot {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From (as UAC) or To (as UAS) header value, without its tag.
    pub local_uri: String,
    pub remote_uri: String,
    /// The Request-URI of in-dialog requests (the remote Contact).
    pub remote_target: String,
    pub route_set: Vec<String>,
    /// Where the dialog's packets go: the trunk.
    pub peer: SocketAddr,
    pub local_cseq: u32,
    pub role: DialogRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// UAC: INVITE sent, no final answer. UAS: INVITE received, not answered.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Accepted,
    Confirmed,
}

#[derive(Debug)]
struct Retransmit {
    msg: Message,
    interval: Duration,
    at: Instant,
    deadline: Instant,
}

#[derive(Debug)]
struct Dialog {
    role: DialogRole,
    state: State,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our From/To header values without tags.
    local_uri: String,
    remote_uri: String,
    remote_target: String,
    route_set: Vec<String>,
    /// Where every packet of the dialog goes; never changed by the other side.
    peer: SocketAddr,
    local_cseq: u32,
    /// The highest CSeq the other side used in the dialog.
    remote_cseq: Option<u32>,
    /// The INVITE that opened the dialog (ours as UAC; theirs as UAS, only
    /// the headers a response or a CANCEL match needs).
    invite: Message,
    /// UAS: when an unanswered call is refused.
    answer_by: Option<Instant>,
    cancel_wanted: bool,
    got_provisional: bool,
    /// Our 2xx to their INVITE (or re-INVITE), until their ACK.
    pending_2xx: Option<Retransmit>,
    /// The ACK we sent for their 2xx, for its retransmissions.
    last_ack: Option<Message>,
    /// Our re-INVITE in flight: its CSeq, SDP and transaction branch.
    our_reoffer: Option<(u32, Vec<u8>, String)>,
    /// Our re-INVITE to send again after a 491.
    glare_retry: Option<(Instant, Vec<u8>)>,
    /// Their re-INVITE we still have to answer, and by when.
    their_reoffer: Option<(Message, Instant)>,
    /// Challenges answered in a row for the current INVITE or re-INVITE.
    auth_tries: u8,
}

impl Dialog {
    fn wake(&self) -> Option<Instant> {
        let p = self.pending_2xx.as_ref().map(|p| p.at.min(p.deadline));
        let early = self
            .answer_by
            .filter(|_| self.role == DialogRole::Uas && self.state == State::Early);
        [
            p,
            self.glare_retry.as_ref().map(|g| g.0),
            early,
            self.their_reoffer.as_ref().map(|r| r.1),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

pub struct UserAgent {
    tx: Transactions,
    local: SocketAddr,
    user_agent: String,
    rng: StdRng,
    /// `None`: everyone (until [`UserAgent::set_trusted`] is called).
    trusted: Option<Vec<TrustedSource>>,
    dropped_untrusted: u64,
    next_ref: CallRef,
    calls: HashMap<CallRef, Dialog>,
    by_call_id: HashMap<String, CallRef>,
    /// The next timer of each dialog that has one.
    wake: TimerSet<CallRef>,
    /// Dialogs changed since their timer was last computed.
    touched: Vec<CallRef>,
    events: VecDeque<UaEvent>,
    /// Digest credentials per trunk address.
    credentials: HashMap<SocketAddr, Credentials>,
    /// BYEs to peers with credentials, by branch: (the BYE, its peer,
    /// challenges answered), to send again if challenged.
    byes: HashMap<String, (Message, SocketAddr, u8)>,
    /// OPTIONS pings by branch.
    pings: HashMap<String, SocketAddr>,
    /// Our registrations with trunks.
    regs: Vec<Registration>,
    /// Peers reached over a connection (TCP, TLS) rather than UDP.
    transports: HashMap<SocketAddr, Transport>,
    /// Where carriers reach us over TLS, when we listen for it.
    tls_local: Option<SocketAddr>,
}

/// How SIP messages to a peer travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The Via header's transport token.
    pub fn token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The URI `transport=` parameter.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO";

impl UserAgent {
    /// `local`: the address we are reached at, written in Via and Contact.
    /// Randomness is seeded from the operating system.
    ///
    /// A new UA takes requests from any source, for compatibility; the
    /// server always calls [`UserAgent::set_trusted`] with its trunks.
    pub fn new(local: SocketAddr, timers: Timers) -> Self {
        Self::with_rng(local, timers, StdRng::from_entropy())
    }

    /// Like [`UserAgent::new`], with every tag, branch, Call-ID and glare
    /// back-off drawn from a generator seeded with `seed`: the same seed and
    /// the same inputs give the same bytes out.
    pub fn with_seed(local: SocketAddr, timers: Timers, seed: u64) -> Self {
        Self::with_rng(local, timers, StdRng::seed_from_u64(seed))
    }

    fn with_rng(local: SocketAddr, timers: Timers, rng: StdRng) -> Self {
        Self {
            tx: Transactions::new(timers),
            local,
            user_agent: "Seatline".to_string(),
            rng,
            trusted: None,
            dropped_untrusted: 0,
            next_ref: 0,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            wake: TimerSet::default(),
            touched: Vec::new(),
            events: VecDeque::new(),
            credentials: HashMap::new(),
            byes: HashMap::new(),
            pings: HashMap::new(),
            regs: Vec::new(),
            transports: HashMap::new(),
            tls_local: None,
        }
    }

    /// We take TLS connections on `addr`: our Contact and Via toward peers
    /// over TLS name it (UDP and TCP share the SIP address).
    pub fn set_tls_local(&mut self, addr: SocketAddr) {
        self.tls_local = Some(addr);
    }

    /// Our address as peers over `transport` should see it.
    fn local_for(&self, transport: Transport) -> SocketAddr {
        match (transport, self.tls_local) {
            (Transport::Tls, Some(tls)) => tls,
            _ => self.local,
        }
    }

    /// Registers `user`@`domain` with the registrar at `peer`, for
    /// `expires` seconds, at once; refreshed before it expires, tried again
    /// after a failure (2 s, doubling up to 5 min). Outcomes come as
    /// [`UaEvent::Registration`]. Challenges are answered with the
    /// credentials of [`UserAgent::set_credentials`] for `peer`.
    pub fn register(
        &mut self,
        peer: SocketAddr,
        user: &str,
        domain: &str,
        expires: u32,
        now: Instant,
    ) {
        let reg = Registration {
            peer,
            aor: format!("sip:{user}@{domain}"),
            registrar: format!("sip:{domain}"),
            expires: expires.clamp(1, crate::register::MAX_EXPIRES),
            call_id: format!("{}@seatline", crate::token(&mut self.rng, 20)),
            tag: self.tag(),
            cseq: 0,
            in_flight: None,
            tries: 0,
            next_at: Some(now),
            failures: 0,
            registered: false,
        };
        self.regs.push(reg);
        self.send_register(self.regs.len() - 1, now);
    }

    /// Stops registering with `peer`. A bound registration is taken back
    /// at once (a REGISTER with `Expires: 0`; its answer is not awaited).
    pub fn unregister(&mut self, peer: SocketAddr, now: Instant) {
        while let Some(i) = self.regs.iter().position(|r| r.peer == peer) {
            if self.regs[i].registered {
                self.regs[i].expires = 0;
                self.send_register(i, now);
            }
            self.regs.remove(i);
        }
    }

    /// Whether each registration is bound now, by registrar address.
    pub fn registrations(&self) -> Vec<(SocketAddr, bool)> {
        self.regs.iter().map(|r| (r.peer, r.registered)).collect()
    }

    fn contact_user(&self, i: usize) -> String {
        let aor = &self.regs[i].aor;
        uri_user(aor).unwrap_or("seatline").to_string()
    }

    fn send_register(&mut self, i: usize, now: Instant) {
        let via = self.via(self.regs[i].peer);
        let user = self.contact_user(i);
        let local = self.local;
        let r = &mut self.regs[i];
        r.cseq = r.cseq.saturating_add(1).min(MAX_CSEQ);
        r.next_at = None;
        r.tries = 0;
        let mut m = Message::request(Method::Register, r.registrar.clone());
        m.push("Via", via);
        m.push("Max-Forwards", "70");
        m.push("From", format!("<{}>;tag={}", r.aor, r.tag));
        m.push("To", format!("<{}>", r.aor));
        m.push("Call-ID", r.call_id.clone());
        m.push("CSeq", format!("{} REGISTER", r.cseq));
        let transport = match self.transports.get(&r.peer) {
            Some(t) => format!(";transport={}", t.param()),
            None => String::new(),
        };
        m.push(
            "Contact",
            format!("<sip:{user}@{local}{transport}>;expires={}", r.expires),
        );
        m.push("Expires", r.expires.to_string());
        m.push("User-Agent", self.user_agent.clone());
        let peer = r.peer;
        let branch = self.tx.send_request(m.clone(), peer, now);
        self.regs[i].in_flight = Some((branch, m));
    }

    /// A REGISTER of ours got its final answer (`resp`) or none (`None`).
    fn on_register_done(&mut self, i: usize, resp: Option<&Message>, now: Instant) {
        let code = resp.and_then(Message::code);
        if let (Some(resp), Some(c)) = (resp, code) {
            let r = &self.regs[i];
            if auth::is_challenge(c) && r.tries < MAX_AUTH_TRIES {
                let (_, sent) = r.in_flight.clone().expect("in flight");
                let (peer, next, tries) = (r.peer, r.cseq.saturating_add(1).min(MAX_CSEQ), r.tries);
                if let Some(m) = self.authorized(&sent, resp, peer, next) {
                    let branch = self.tx.send_request(m.clone(), peer, now);
                    let r = &mut self.regs[i];
                    (r.cseq, r.tries, r.in_flight) = (next, tries + 1, Some((branch, m)));
                    return;
                }
            }
        }
        let user = self.contact_user(i);
        let outcome = match resp {
            Some(m) => self.regs[i].outcome(m, &user),
            None => Outcome::Failed,
        };
        let r = &mut self.regs[i];
        r.in_flight = None;
        match outcome {
            Outcome::Bound(secs) => {
                r.failures = 0;
                r.registered = true;
                r.next_at = Some(now + Registration::refresh_in(secs));
                let peer = r.peer;
                self.events.push_back(UaEvent::Registration {
                    peer,
                    registered: true,
                    code,
                    expires: Some(secs),
                });
            }
            Outcome::Longer(secs) => {
                r.expires = secs;
                self.send_register(i, now);
            }
            Outcome::Failed => {
                r.failures = r.failures.saturating_add(1);
                r.registered = false;
                r.next_at = Some(now + Registration::backoff(r.failures));
                let peer = r.peer;
                self.events.push_back(UaEvent::Registration {
                    peer,
                    registered: false,
                    code,
                    expires: None,
                });
            }
        }
    }

    /// Answers digest challenges (401/407) from `peer` with these
    /// credentials, on INVITE, re-INVITE and BYE. Without credentials a
    /// challenge fails the request like any other refusal.
    pub fn set_credentials(&mut self, peer: SocketAddr, creds: Credentials) {
        self.credentials.insert(peer, creds);
    }

    /// Forgets `peer`'s credentials: its challenges fail requests again.
    pub fn remove_credentials(&mut self, peer: SocketAddr) {
        self.credentials.remove(&peer);
    }

    /// Sends an OPTIONS ping to `peer` (a trunk keepalive); its outcome
    /// comes back as [`UaEvent::Pong`].
    pub fn ping(&mut self, peer: SocketAddr, now: Instant) {
        let mut m = Message::request(Method::Options, format!("sip:{peer}"));
        m.push("Via", self.via(peer));
        m.push("Max-Forwards", "70");
        let tag = self.tag();
        m.push(
            "From",
            format!("<sip:seatline@{}>;tag={tag}", self.local.ip()),
        );
        m.push("To", format!("<sip:{peer}>"));
        m.push(
            "Call-ID",
            format!("{}@seatline", crate::token(&mut self.rng, 20)),
        );
        m.push("CSeq", "1 OPTIONS");
        m.push("Contact", self.contact(peer));
        m.push("User-Agent", self.user_agent.clone());
        m.push("Accept", "application/sdp");
        let branch = self.tx.send_request(m, peer, now);
        bounded_insert(&mut self.pings, branch, peer);
    }

    /// `msg` again with a new branch and the next CSeq, answering the
    /// challenge in `challenge` with `peer`'s credentials; `None` when
    /// there are none or the challenge cannot be answered.
    fn authorized(
        &mut self,
        msg: &Message,
        challenge: &Message,
        peer: SocketAddr,
        cseq: u32,
    ) -> Option<Message> {
        let creds = self.credentials.get(&peer)?;
        let method = msg.method()?.as_str().to_string();
        let uri = msg.uri()?.to_string();
        let cnonce = crate::token(&mut self.rng, 16);
        let (name, value) = auth::answer(challenge, creds, &method, &uri, &msg.body, &cnonce)?;
        let mut m = msg.clone();
        m.remove("Authorization");
        m.remove("Proxy-Authorization");
        let via = self.via(peer);
        m.set("Via", via);
        m.set("CSeq", format!("{cseq} {method}"));
        m.push(name, value);
        Some(m)
    }

    /// Takes requests (and stray 2xx answers) only from these sources from
    /// now on. An empty list trusts no one.
    pub fn set_trusted(&mut self, trusted: Vec<TrustedSource>) {
        self.trusted = Some(trusted);
    }

    /// Would a request from `addr` be taken?
    pub fn is_trusted(&self, addr: SocketAddr) -> bool {
        match &self.trusted {
            None => true,
            Some(list) => list.iter().any(|t| t.matches(addr)),
        }
    }

    /// Datagrams dropped for their source: requests from untrusted sources,
    /// stray 2xx answers from them, and responses from another address than
    /// the one their request was sent to.
    pub fn dropped_untrusted(&self) -> u64 {
        self.dropped_untrusted + self.tx.misrouted()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How packets to `peer` travel (UDP unless the shell said otherwise).
    pub fn transport_to(&self, peer: SocketAddr) -> Transport {
        self.transports
            .get(&peer)
            .copied()
            .unwrap_or(Transport::Udp)
    }

    /// Packets to `peer` go over a connection of this kind (a TCP or TLS
    /// trunk, or a carrier that connected to us); `Udp` forgets it. Over a
    /// connection, requests are not retransmitted (RFC 3261 §17.1).
    pub fn set_transport(&mut self, peer: SocketAddr, transport: Transport) {
        if transport == Transport::Udp {
            self.transports.remove(&peer);
        } else if self.transports.len() < MAX_PENDING || self.transports.contains_key(&peer) {
            self.transports.insert(peer, transport);
        }
        self.tx.set_reliable(peer, transport != Transport::Udp);
    }

    /// The connection to `peer` failed: its pending requests fail now.
    pub fn transport_failed(&mut self, peer: SocketAddr, now: Instant) {
        self.tx.fail_to(peer);
        self.drain(now);
        self.sync_timers();
    }

    fn contact(&self, peer: SocketAddr) -> String {
        match self.transport_to(peer) {
            Transport::Udp => format!("<sip:seatline@{}>", self.local),
            t => format!(
                "<sip:seatline@{};transport={}>",
                self.local_for(t),
                t.param()
            ),
        }
    }

    fn via(&mut self, peer: SocketAddr) -> String {
        let transport = self.transport_to(peer);
        format!(
            "SIP/2.0/{} {};branch={};rport",
            transport.token(),
            self.local_for(transport),
            new_branch(&mut self.rng)
        )
    }

    fn tag(&mut self) -> String {
        crate::token(&mut self.rng, 10)
    }

    fn sync_timers(&mut self) {
        for call in std::mem::take(&mut self.touched) {
            let when = self.calls.get(&call).and_then(Dialog::wake);
            self.wake.set(&call, when);
        }
    }

    /// Places a call: INVITE `to_user` at `peer`, from `from_user`, with our SDP offer.
    pub fn invite(
        &mut self,
        from_user: &str,
        to_user: &str,
        peer: SocketAddr,
        sdp: &[u8],
        extra: &[(String, String)],
        now: Instant,
    ) -> CallRef {
        let call_id = format!("{}@seatline", crate::token(&mut self.rng, 20));
        let local_tag = self.tag();
        let remote_uri = format!("<sip:{to_user}@{peer}>");
        let local_uri = format!("<sip:{from_user}@{}>", self.local.ip());
        let target = format!("sip:{to_user}@{peer}");
        let mut m = Message::request(Method::Invite, target.clone());
        m.push("Via", self.via(peer));
        m.push("Max-Forwards", "70");
        m.push("From", format!("{local_uri};tag={local_tag}"));
        m.push("To", remote_uri.clone());
        m.push("Call-ID", call_id.clone());
        m.push("CSeq", "1 INVITE");
        m.push("Contact", self.contact(peer));
        m.push("User-Agent", self.user_agent.clone());
        m.push("Allow", ALLOW);
        for (n, v) in extra {
            m.push(n, v.clone());
        }
        m.push("Content-Type", "application/sdp");
        m.body = sdp.to_vec();
        self.next_ref += 1;
        let call = self.next_ref;
        self.tx.send_request(m.clone(), peer, now);
        self.by_call_id.insert(call_id.clone(), call);
        self.calls.insert(
            call,
            Dialog {
                role: DialogRole::Uac,
                state: State::Early,
                call_id,
                local_tag,
                remote_tag: None,
                local_uri,
                remote_uri,
                remote_target: target,
                route_set: Vec::new(),
                peer,
                local_cseq: 1,
                remote_cseq: None,
                invite: m,
                answer_by: None,
                cancel_wanted: false,
                got_provisional: false,
                pending_2xx: None,
                last_ack: None,
                our_reoffer: None,
                glare_retry: None,
                their_reoffer: None,
                auth_tries: 0,
            },
        );
        self.touched.push(call);
        self.sync_timers();
        call
    }

    /// Answers an inbound call: 180/183 (with early SDP), 200 with SDP, or a refusal (>= 300).
    pub fn respond(&mut self, call: CallRef, code: u16, sdp: Option<&[u8]>, now: Instant) {
        self.respond_inner(call, code, sdp, now);
        self.sync_timers();
    }

    fn respond_inner(&mut self, call: CallRef, code: u16, sdp: Option<&[u8]>, now: Instant) {
        let Some(peer) = self.calls.get(&call).map(|d| d.peer) else {
            return;
        };
        let contact = self.contact(peer);
        let t1 = self.tx.timers().t1;
        let code = if (100..700).contains(&code) {
            code
        } else {
            500
        };
        let Some(d) = dialog!(self, call) else { return };
        if d.role != DialogRole::Uas || d.state != State::Early {
            return;
        }
        let mut r = response_to(&d.invite, code, Some(&d.local_tag));
        if code < 300 {
            r.push("Contact", contact);
        }
        if (101..300).contains(&code) {
            // A proxy that record-routed stays in the dialog: the answer
            // carries its Record-Route, in the request's order (RFC 3261
            // 12.1.1), so the caller's ACK and BYE come back through it.
            for rr in &d.route_set {
                r.push("Record-Route", rr.clone());
            }
        }
        if let Some(sdp) = sdp {
            r.push("Content-Type", "application/sdp");
            r.body = sdp.to_vec();
        }
        self.tx.respond(&d.invite, r.clone(), now);
        if (200..300).contains(&code) {
            d.state = State::Accepted;
            d.pending_2xx = Some(Retransmit {
                msg: r,
                interval: t1,
                at: now + t1,
                deadline: now + 64 * t1,
            });
        } else if code >= 300 {
            self.forget(call, now);
        }
    }

    /// Sends an unanswered incoming call elsewhere: 302 with `target` as
    /// its Contact (RFC 3261 8.3; a proxy in front tries it). A target
    /// that is not a plain SIP URI is refused with 500 instead.
    pub fn redirect(&mut self, call: CallRef, target: &str, now: Instant) {
        if !valid_target(target) {
            self.respond(call, 500, None, now);
            return;
        }
        let Some(d) = dialog!(self, call) else { return };
        if d.role != DialogRole::Uas || d.state != State::Early {
            return;
        }
        let mut r = response_to(&d.invite, 302, Some(&d.local_tag));
        r.push("Contact", format!("<{target}>"));
        self.tx.respond(&d.invite, r, now);
        self.forget(call, now);
        self.sync_timers();
    }

    /// Hangs up: CANCEL before an answer, BYE after.
    pub fn hang_up(&mut self, call: CallRef, now: Instant) {
        let Some(d) = dialog!(self, call) else { return };
        match (d.role, d.state) {
            (DialogRole::Uac, State::Early) => {
                if !d.cancel_wanted && d.got_provisional {
                    let cancel = cancel_for(&d.invite);
                    let peer = d.peer;
                    self.tx.send_request(cancel, peer, now);
                }
                if let Some(d) = dialog!(self, call) {
                    d.cancel_wanted = true;
                }
            }
            (DialogRole::Uas, State::Early) => self.respond_inner(call, 486, None, now),
            (_, State::Accepted | State::Confirmed) => {
                self.send_bye(call, now);
                self.events.push_back(UaEvent::Ended {
                    call,
                    remote: false,
                });
                self.forget(call, now);
            }
        }
        self.sync_timers();
    }

    /// Sends a new offer in the dialog (hold, resume).
    pub fn reoffer(&mut self, call: CallRef, sdp: &[u8], now: Instant) {
        self.reoffer_inner(call, sdp, now);
        self.sync_timers();
    }

    fn reoffer_inner(&mut self, call: CallRef, sdp: &[u8], now: Instant) {
        let Some(d) = dialog!(self, call) else { return };
        if d.state != State::Confirmed && d.state != State::Accepted {
            return;
        }
        if d.our_reoffer.is_some() || d.their_reoffer.is_some() {
            // One offer at a time; this one goes after the current exchange.
            d.glare_retry = Some((now + Duration::from_millis(500), sdp.to_vec()));
            return;
        }
        let mut m = self.in_dialog(call, Method::Invite);
        m.push("Contact", self.contact(self.calls[&call].peer));
        m.push("Content-Type", "application/sdp");
        m.body = sdp.to_vec();
        let cseq = m.cseq().map(|c| c.0).unwrap_or(0);
        let peer = self.calls[&call].peer;
        let branch = self.tx.send_request(m, peer, now);
        if let Some(d) = dialog!(self, call) {
            d.our_reoffer = Some((cseq, sdp.to_vec(), branch));
        }
    }

    /// Answers the other side's re-offer with our SDP (200) or refuses it.
    pub fn respond_reoffer(&mut self, call: CallRef, code: u16, sdp: Option<&[u8]>, now: Instant) {
        let Some(peer) = self.calls.get(&call).map(|d| d.peer) else {
            return;
        };
        let contact = self.contact(peer);
        let t1 = self.tx.timers().t1;
        let code = if (200..700).contains(&code) {
            code
        } else {
            500
        };
        let Some(d) = dialog!(self, call) else { return };
        let Some((req, _)) = d.their_reoffer.take() else {
            self.sync_timers();
            return;
        };
        let mut r = response_to(&req, code, Some(&d.local_tag));
        if code < 300 {
            r.push("Contact", contact);
        }
        if let Some(sdp) = sdp {
            r.push("Content-Type", "application/sdp");
            r.body = sdp.to_vec();
        }
        self.tx.respond(&req, r.clone(), now);
        if (200..300).contains(&code) {
            // The accepted re-INVITE refreshes the target (RFC 3261 §12.2.2):
            // the Request-URI only; the packets still go to `peer`.
            if let Some(c) = req.contact_uri().filter(|c| valid_target(c)) {
                d.remote_target = c;
            }
            d.pending_2xx = Some(Retransmit {
                msg: r,
                interval: t1,
                at: now + t1,
                deadline: now + 64 * t1,
            });
        }
        self.sync_timers();
    }

    fn in_dialog(&mut self, call: CallRef, method: Method) -> Message {
        let via = self.via(self.calls[&call].peer);
        let d = self.calls.get_mut(&call).expect("caller checked");
        d.local_cseq = d.local_cseq.saturating_add(1).min(MAX_CSEQ);
        let mut m = Message::request(method.clone(), d.remote_target.clone());
        m.push("Via", via);
        for r in &d.route_set {
            m.push("Route", r.clone());
        }
        m.push("Max-Forwards", "70");
        m.push(
            "From",
            format!("{};tag={}", strip_tag(&d.local_uri), d.local_tag),
        );
        let remote = strip_tag(&d.remote_uri);
        match &d.remote_tag {
            Some(t) => m.push("To", format!("{remote};tag={t}")),
            None => m.push("To", remote),
        };
        m.push("Call-ID", d.call_id.clone());
        m.push("CSeq", format!("{} {}", d.local_cseq, method.as_str()));
        m
    }

    fn send_bye(&mut self, call: CallRef, now: Instant) {
        let bye = self.in_dialog(call, Method::Bye);
        let peer = self.calls[&call].peer;
        self.send_tracked_bye(bye, peer, 0, now);
    }

    /// Sends a BYE, remembered for a challenge when `peer` has credentials.
    fn send_tracked_bye(&mut self, bye: Message, peer: SocketAddr, tries: u8, now: Instant) {
        let keep = self.credentials.contains_key(&peer).then(|| bye.clone());
        let branch = self.tx.send_request(bye, peer, now);
        if let Some(bye) = keep {
            bounded_insert(&mut self.byes, branch, (bye, peer, tries));
        }
    }

    fn forget(&mut self, call: CallRef, now: Instant) {
        self.touched.push(call);
        let Some(d) = self.calls.remove(&call) else {
            return;
        };
        if self.by_call_id.get(&d.call_id) == Some(&call) {
            self.by_call_id.remove(&d.call_id);
        }
        // A re-INVITE of theirs still unanswered: the call is gone.
        if let Some((req, _)) = d.their_reoffer {
            let r = response_to(&req, 487, Some(&d.local_tag));
            self.tx.respond(&req, r, now);
        }
    }

    /// Where a call's messages come from and go to (for an inbound call:
    /// the source of its INVITE, which names the trunk it came over).
    pub fn peer_of(&self, call: CallRef) -> Option<SocketAddr> {
        self.calls.get(&call).map(|d| d.peer)
    }

    /// The current state of an established call's dialog (answered, in
    /// either direction), to persist; `None` for an unknown or unanswered call.
    pub fn dialog_snapshot(&self, call: CallRef) -> Option<DialogSnapshot> {
        let d = self.calls.get(&call)?;
        if d.state == State::Early {
            return None;
        }
        Some(DialogSnapshot {
            call_id: d.call_id.clone(),
            local_tag: d.local_tag.clone(),
            remote_tag: d.remote_tag.clone()?,
            local_uri: strip_tag(&d.local_uri),
            remote_uri: strip_tag(&d.remote_uri),
            remote_target: d.remote_target.clone(),
            route_set: d.route_set.clone(),
            peer: d.peer,
            local_cseq: d.local_cseq,
            role: d.role,
        })
    }

    /// Hangs up a dialog an earlier process left up: sends a BYE built from
    /// `snap` to its peer, in a client transaction of its own (retransmitted
    /// as usual; its answer, or its timeout, is absorbed without an event).
    /// The BYE's CSeq is [`SNAPSHOT_BYE_CSEQ_MARGIN`] above the snapshot's.
    /// A snapshot whose texts could not be sent as SIP is ignored.
    pub fn bye_from_snapshot(&mut self, snap: &DialogSnapshot, now: Instant) {
        let texts = [
            &snap.call_id,
            &snap.local_tag,
            &snap.remote_tag,
            &snap.local_uri,
            &snap.remote_uri,
        ];
        let sane = |s: &String| !s.is_empty() && !s.chars().any(char::is_control);
        if !texts.into_iter().all(sane)
            || !snap.route_set.iter().all(sane)
            || !valid_target(&snap.remote_target)
        {
            return;
        }
        let cseq = snap
            .local_cseq
            .saturating_add(SNAPSHOT_BYE_CSEQ_MARGIN)
            .min(MAX_CSEQ);
        let mut m = Message::request(Method::Bye, snap.remote_target.clone());
        m.push("Via", self.via(snap.peer));
        for r in &snap.route_set {
            m.push("Route", r.clone());
        }
        m.push("Max-Forwards", "70");
        m.push(
            "From",
            format!("{};tag={}", strip_tag(&snap.local_uri), snap.local_tag),
        );
        m.push(
            "To",
            format!("{};tag={}", strip_tag(&snap.remote_uri), snap.remote_tag),
        );
        m.push("Call-ID", snap.call_id.clone());
        m.push("CSeq", format!("{cseq} BYE"));
        m.push("User-Agent", self.user_agent.clone());
        self.tx.send_request(m, snap.peer, now);
    }

    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        // Keep-alives (CRLF) are not messages.
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let Ok(msg) = Message::parse(bytes) else {
            return;
        };
        if msg.code().is_none() && !self.is_trusted(from) {
            // No answer at all: an answer would make us an amplifier.
            self.dropped_untrusted += 1;
            return;
        }
        self.tx.handle_message(msg, from, now);
        self.drain(now);
        self.sync_timers();
    }

    fn drain(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                TxEvent::Request { msg, from } => self.on_request(msg, from, now),
                TxEvent::Response { msg, from, .. } => self.on_response(msg, from, now),
                TxEvent::Timeout { method, branch } => self.on_timeout(method, &branch, now),
                TxEvent::Rejected { msg, from, code } => self.reject(&msg, code, from),
                TxEvent::Malformed { .. } => {}
            }
        }
    }

    /// Refuses a request without keeping state (see [`Transactions::reject`]).
    fn reject(&mut self, msg: &Message, code: u16, to: SocketAddr) {
        if msg.method() == Some(&Method::Ack) {
            return;
        }
        let tag = self.tag();
        let mut r = response_to(msg, code, Some(&tag));
        if code == 503 || code == 500 {
            r.push("Retry-After", "5");
        }
        self.tx.reject(msg, r, to);
    }

    /// The dialog a request from the other side belongs to: same Call-ID,
    /// our tag in To, theirs in From.
    fn match_dialog(&self, msg: &Message) -> Option<CallRef> {
        let call = *self.by_call_id.get(msg.call_id())?;
        let d = self.calls.get(&call)?;
        let ours = msg.to_tag() == Some(d.local_tag.as_str());
        let theirs = d.remote_tag.is_some() && msg.from_tag() == d.remote_tag.as_deref();
        (ours && theirs).then_some(call)
    }

    /// The call a response belongs to: same Call-ID and our tag in From.
    fn call_of_response(&self, msg: &Message) -> Option<CallRef> {
        let call = *self.by_call_id.get(msg.call_id())?;
        let d = self.calls.get(&call)?;
        (msg.from_tag() == Some(d.local_tag.as_str())).then_some(call)
    }

    fn on_timeout(&mut self, method: Method, branch: &str, now: Instant) {
        if let Some(peer) = self.pings.remove(branch) {
            self.events.push_back(UaEvent::Pong { peer, code: None });
        }
        if let Some(i) = self
            .regs
            .iter()
            .position(|r| r.in_flight.as_ref().is_some_and(|(b, _)| b == branch))
        {
            self.on_register_done(i, None, now);
        }
        self.byes.remove(branch);
        if method != Method::Invite {
            return;
        }
        let initial = self.calls.iter().find(|(_, d)| {
            d.role == DialogRole::Uac
                && d.state == State::Early
                && d.invite.branch() == Some(branch)
        });
        if let Some(call) = initial.map(|(c, _)| *c) {
            self.events.push_back(UaEvent::Failed {
                call,
                code: 408,
                reason: "Request Timeout".into(),
            });
            self.forget(call, now);
            return;
        }
        // Our re-INVITE got no answer: the offer failed, the call stays as it was.
        let reoffer = self
            .calls
            .iter()
            .find(|(_, d)| d.our_reoffer.as_ref().is_some_and(|r| r.2 == branch));
        if let Some(call) = reoffer.map(|(c, _)| *c) {
            if let Some(d) = dialog!(self, call) {
                d.our_reoffer = None;
            }
            self.events
                .push_back(UaEvent::ReofferFailed { call, code: 408 });
        }
    }

    fn on_response(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        let code = msg.code().unwrap_or(0);
        let Some((cseq, method)) = msg.cseq() else {
            return;
        };
        let branch = msg.branch().unwrap_or("").to_string();
        if method == Method::Register {
            let mine = self
                .regs
                .iter()
                .position(|r| r.in_flight.as_ref().is_some_and(|(b, _)| *b == branch));
            if let (Some(i), true) = (mine, code >= 200) {
                self.on_register_done(i, Some(&msg), now);
            }
            return;
        }
        if method == Method::Options && code >= 200 {
            if let Some(peer) = self.pings.remove(&branch) {
                // Any final answer, even a refusal, shows the trunk is there.
                self.events.push_back(UaEvent::Pong {
                    peer,
                    code: Some(code),
                });
            }
            return;
        }
        if method == Method::Bye && code >= 200 {
            if let Some((bye, peer, tries)) = self.byes.remove(&branch) {
                if auth::is_challenge(code) && tries < MAX_AUTH_TRIES {
                    let next = bye
                        .cseq()
                        .map_or(1, |c| c.0.saturating_add(1))
                        .min(MAX_CSEQ);
                    if let Some(again) = self.authorized(&bye, &msg, peer, next) {
                        self.send_tracked_bye(again, peer, tries + 1, now);
                    }
                }
            }
            return;
        }
        let Some(call) = self.call_of_response(&msg) else {
            // A 2xx for a call we do not know: ACK and BYE it (RFC 3261 §15).
            if (200..300).contains(&code) && method == Method::Invite {
                self.stray_2xx(&msg, from);
            }
            return;
        };
        if !same_addr(from, self.calls[&call].peer) {
            self.dropped_untrusted += 1;
            return;
        }
        if method != Method::Invite {
            return; // BYE, CANCEL, INFO answers: nothing to do.
        }
        let local = self.local;
        let via = self.via(self.calls[&call].peer);
        let d = dialog!(self, call).expect("known");
        // A retransmitted 2xx that we have ACKed already: our ACK was lost.
        if (200..300).contains(&code)
            && d.last_ack
                .as_ref()
                .and_then(|a| a.cseq())
                .is_some_and(|c| c.0 == cseq)
        {
            if msg.to_tag().is_some() && msg.to_tag() == d.remote_tag.as_deref() {
                let (ack, peer) = (d.last_ack.clone().expect("checked"), d.peer);
                self.tx.send_raw(&ack, peer);
            } else {
                // A 2xx from another fork: that dialog is not wanted.
                self.stray_2xx(&msg, from);
            }
            return;
        }
        if d.our_reoffer.as_ref().is_some_and(|r| r.0 == cseq) {
            match code {
                100..=199 => {}
                200..=299 => {
                    let ack = ack_2xx(d, &msg, local, via);
                    self.tx.send_raw(&ack, d.peer);
                    d.last_ack = Some(ack);
                    d.our_reoffer = None;
                    d.auth_tries = 0;
                    self.events.push_back(UaEvent::ReofferAnswered {
                        call,
                        sdp: msg.body,
                    });
                }
                491 => {
                    // Glare: try again after a random wait (RFC 3261 §14.1).
                    let (_, sdp, _) = d.our_reoffer.take().expect("is_reoffer");
                    let ms = if d.role == DialogRole::Uac {
                        2100 + self.rng.gen_range(0..1900)
                    } else {
                        self.rng.gen_range(0..2000)
                    };
                    d.glare_retry = Some((now + Duration::from_millis(ms), sdp));
                }
                _ => {
                    if auth::is_challenge(code) && d.auth_tries < MAX_AUTH_TRIES {
                        if let Some(branch) = self.answer_challenge(call, &msg, now) {
                            if let Some(d) = dialog!(self, call) {
                                if let Some(r) = d.our_reoffer.as_mut() {
                                    (r.0, r.2) = (d.local_cseq, branch);
                                }
                            }
                            return;
                        }
                    }
                    let d = dialog!(self, call).expect("known");
                    d.our_reoffer = None;
                    d.auth_tries = 0;
                    self.events.push_back(UaEvent::ReofferFailed { call, code });
                }
            }
            return;
        }
        if d.role != DialogRole::Uac
            || d.state != State::Early
            || d.invite.cseq().map(|c| c.0) != Some(cseq)
        {
            return;
        }
        match code {
            100 => {}
            101..=199 => {
                if d.remote_tag.is_none() {
                    d.remote_tag = msg.to_tag().map(str::to_string);
                }
                let first = !d.got_provisional;
                d.got_provisional = true;
                if first && d.cancel_wanted {
                    let cancel = cancel_for(&d.invite);
                    let peer = d.peer;
                    self.tx.send_request(cancel, peer, now);
                    return;
                }
                let sdp = (!msg.body.is_empty()).then(|| msg.body.clone());
                self.events.push_back(UaEvent::Progress { call, code, sdp });
            }
            200..=299 => {
                d.remote_tag = msg.to_tag().map(str::to_string);
                if let Some(c) = msg.contact_uri().filter(|c| valid_target(c)) {
                    d.remote_target = c;
                }
                d.route_set = msg
                    .headers_named("Record-Route")
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                d.route_set.reverse();
                d.state = State::Confirmed;
                let ack = ack_2xx(d, &msg, local, via);
                self.tx.send_raw(&ack, d.peer);
                d.last_ack = Some(ack);
                if d.cancel_wanted {
                    // The answer crossed our CANCEL: the call is up, so end it.
                    self.send_bye(call, now);
                    self.events.push_back(UaEvent::Failed {
                        call,
                        code: 487,
                        reason: "Request Terminated".into(),
                    });
                    self.forget(call, now);
                } else {
                    self.events.push_back(UaEvent::Answered {
                        call,
                        sdp: msg.body,
                    });
                }
            }
            _ if auth::is_challenge(code)
                && d.auth_tries < MAX_AUTH_TRIES
                && !d.cancel_wanted
                && self.answer_challenge(call, &msg, now).is_some() =>
            {
                // The same call again with credentials: a new transaction,
                // so a CANCEL waits for its own provisional answer.
                if let Some(d) = dialog!(self, call) {
                    d.got_provisional = false;
                    d.remote_tag = None;
                }
            }
            _ => {
                let reason = match &msg.start {
                    StartLine::Response { reason, .. } => reason.clone(),
                    StartLine::Request { .. } => String::new(),
                };
                self.events
                    .push_back(UaEvent::Failed { call, code, reason });
                self.forget(call, now);
            }
        }
    }

    /// Sends the dialog's INVITE (the first, or the re-INVITE in flight)
    /// again answering `challenge`; the new transaction's branch, or `None`
    /// when it cannot be answered.
    fn answer_challenge(
        &mut self,
        call: CallRef,
        challenge: &Message,
        now: Instant,
    ) -> Option<String> {
        let d = self.calls.get(&call)?;
        let peer = d.peer;
        let (request, next) = match &d.our_reoffer {
            Some((_, sdp, _)) => {
                // Rebuilt from the dialog (a re-INVITE is not kept whole);
                // `in_dialog` takes the next CSeq.
                let sdp = sdp.clone();
                let mut m = self.in_dialog(call, Method::Invite);
                m.push("Contact", self.contact(peer));
                m.push("Content-Type", "application/sdp");
                m.body = sdp;
                let n = m.cseq().map_or(0, |c| c.0);
                (m, n)
            }
            None => (
                d.invite.clone(),
                d.local_cseq.saturating_add(1).min(MAX_CSEQ),
            ),
        };
        let m = self.authorized(&request, challenge, peer, next)?;
        let branch = self.tx.send_request(m.clone(), peer, now);
        let d = dialog!(self, call)?;
        d.local_cseq = next;
        d.auth_tries += 1;
        if d.our_reoffer.is_none() {
            d.invite = m;
        }
        Some(branch)
    }

    /// ACK and BYE a 2xx for no dialog of ours, only when it came from a
    /// trusted source, and only to that source: never to its Contact's host.
    fn stray_2xx(&mut self, msg: &Message, from: SocketAddr) {
        if !self.is_trusted(from) {
            self.dropped_untrusted += 1;
            return;
        }
        let target = msg
            .contact_uri()
            .filter(|c| valid_target(c))
            .unwrap_or_else(|| format!("sip:{from}"));
        let n = msg.cseq().map(|c| c.0).unwrap_or(1);
        for (method, seq) in [(Method::Ack, n), (Method::Bye, n.saturating_add(1))] {
            let mut m = Message::request(method.clone(), target.clone());
            m.push("Via", self.via(from));
            m.push("Max-Forwards", "70");
            m.push("From", msg.header("From").unwrap_or(""));
            m.push("To", msg.header("To").unwrap_or(""));
            m.push("Call-ID", msg.call_id());
            m.push("CSeq", format!("{seq} {}", method.as_str()));
            self.tx.send_raw(&m, from);
        }
    }

    fn on_request(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        let method = msg
            .method()
            .cloned()
            .unwrap_or(Method::Other(String::new()));
        match method {
            Method::Ack => self.on_ack(&msg),
            Method::Cancel => self.on_cancel(&msg, from, now),
            _ if msg.to_tag().is_some() => self.on_in_dialog(msg, method, from, now),
            Method::Invite => {
                if self.by_call_id.contains_key(msg.call_id()) {
                    // A known Call-ID without a To tag and with a new branch
                    // (a retransmission keeps its branch and never gets here):
                    // a merged or looped request (RFC 3261 §8.2.2.2), or a forgery.
                    self.reject(&msg, 482, from);
                } else if matches!(msg.from_tag(), None | Some("")) {
                    self.reject(&msg, 400, from);
                } else if self.early_inbound() >= MAX_EARLY_INBOUND {
                    self.reject(&msg, 503, from);
                } else {
                    self.new_incoming(msg, from, now);
                }
            }
            Method::Options => {
                let tag = self.tag();
                let mut r = response_to(&msg, 200, Some(&tag));
                r.push("Allow", ALLOW);
                self.tx.respond(&msg, r, now);
            }
            // Requests that need a dialog, without one.
            Method::Bye | Method::Info => self.reject(&msg, 481, from),
            _ => self.reject(&msg, 501, from),
        }
    }

    fn early_inbound(&self) -> usize {
        self.calls
            .values()
            .filter(|d| d.role == DialogRole::Uas && d.state == State::Early)
            .count()
    }

    fn on_ack(&mut self, msg: &Message) {
        let Some(call) = self.match_dialog(msg) else {
            return;
        };
        let n = msg.cseq().map(|c| c.0);
        let d = dialog!(self, call).expect("matched");
        if d.pending_2xx
            .as_ref()
            .is_some_and(|p| p.msg.cseq().map(|c| c.0) == n)
        {
            d.pending_2xx = None;
            if d.state == State::Accepted {
                d.state = State::Confirmed;
                self.events.push_back(UaEvent::Confirmed { call });
            }
        }
    }

    /// CANCEL names the server transaction of its INVITE (RFC 3261 §9.2):
    /// same top Via branch, Request-URI, Call-ID, From tag and CSeq number.
    fn on_cancel(&mut self, msg: &Message, from: SocketAddr, now: Instant) {
        let matched = self.by_call_id.get(msg.call_id()).copied().filter(|c| {
            let inv = &self.calls[c].invite;
            self.calls[c].role == DialogRole::Uas
                && inv.branch() == msg.branch()
                && inv.uri() == msg.uri()
                && inv.from_tag() == msg.from_tag()
                && inv.cseq().map(|c| c.0) == msg.cseq().map(|c| c.0)
        });
        let Some(call) = matched else {
            self.reject(msg, 481, from);
            return;
        };
        let d = dialog!(self, call).expect("matched");
        let r = response_to(msg, 200, Some(&d.local_tag));
        self.tx.respond(msg, r, now);
        // After a final response a CANCEL changes nothing.
        if d.state == State::Early {
            let r487 = response_to(&d.invite, 487, Some(&d.local_tag));
            self.tx.respond(&d.invite, r487, now);
            self.events.push_back(UaEvent::Ended { call, remote: true });
            self.forget(call, now);
        }
    }

    fn on_in_dialog(&mut self, msg: Message, method: Method, from: SocketAddr, now: Instant) {
        let Some(call) = self.match_dialog(&msg) else {
            self.reject(&msg, 481, from);
            return;
        };
        let n = msg.cseq().map(|c| c.0).unwrap_or(0);
        let t1 = self.tx.timers().t1;
        let d = dialog!(self, call).expect("matched");
        if d.remote_cseq.is_some_and(|r| n < r) {
            // Out of order (RFC 3261 §12.2.2): an old request, or a replay.
            self.reject(&msg, 500, from);
            return;
        }
        d.remote_cseq = Some(n);
        match method {
            Method::Invite => {
                if d.state == State::Early || d.our_reoffer.is_some() || d.their_reoffer.is_some() {
                    // Glare: both sides offered at once (RFC 3261 §14.2).
                    self.reject(&msg, 491, from);
                    return;
                }
                let trying = response_to(&msg, 100, None);
                self.tx.respond(&msg, trying, now);
                let sdp = msg.body.clone();
                d.their_reoffer = Some((kept_headers(&msg), now + 64 * t1));
                self.events.push_back(UaEvent::Reoffer { call, sdp });
            }
            Method::Bye => {
                let r = response_to(&msg, 200, Some(&d.local_tag));
                self.tx.respond(&msg, r, now);
                if d.role == DialogRole::Uas && d.state == State::Early {
                    let r487 = response_to(&d.invite, 487, Some(&d.local_tag));
                    self.tx.respond(&d.invite, r487, now);
                }
                self.events.push_back(UaEvent::Ended { call, remote: true });
                self.forget(call, now);
            }
            Method::Info | Method::Options => {
                let mut r = response_to(&msg, 200, Some(&d.local_tag));
                r.push("Allow", ALLOW);
                self.tx.respond(&msg, r, now);
            }
            _ => self.reject(&msg, 501, from),
        }
    }

    fn new_incoming(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        // 100 Trying at once stops the caller's retransmissions.
        self.tx.respond(&msg, response_to(&msg, 100, None), now);
        self.next_ref += 1;
        let call = self.next_ref;
        let user_of = |v: &str| uri_user(&uri_of(v)).map(str::to_string);
        let from_user = msg.header("From").and_then(user_of);
        // The DID: the Request-URI's user, unless it is not a number (a
        // registered trunk calls our Contact, `sip:ACCOUNT@us`), then To's.
        let to_user = msg
            .uri()
            .and_then(uri_user)
            .map(str::to_string)
            .filter(|u| valid_number(u))
            .or_else(|| msg.header("To").and_then(user_of));
        let from_user = from_user.filter(|u| valid_number(u)).unwrap_or_default();
        let to_user = to_user.filter(|u| valid_number(u)).unwrap_or_default();
        let headers = x_headers(&msg);
        let mut route_set: Vec<String> = msg
            .headers_named("Record-Route")
            .map(str::to_string)
            .collect();
        route_set.retain(|r| !r.is_empty());
        let d = Dialog {
            role: DialogRole::Uas,
            state: State::Early,
            call_id: msg.call_id().to_string(),
            local_tag: self.tag(),
            remote_tag: msg.from_tag().map(str::to_string),
            local_uri: strip_tag(msg.header("To").unwrap_or("")),
            remote_uri: strip_tag(msg.header("From").unwrap_or("")),
            remote_target: msg
                .contact_uri()
                .filter(|c| valid_target(c))
                .unwrap_or_else(|| format!("sip:{from}")),
            route_set,
            peer: from,
            local_cseq: 0,
            remote_cseq: msg.cseq().map(|c| c.0),
            invite: kept_headers(&msg),
            answer_by: Some(now + UNANSWERED_LIMIT),
            cancel_wanted: false,
            got_provisional: false,
            pending_2xx: None,
            last_ack: None,
            our_reoffer: None,
            glare_retry: None,
            their_reoffer: None,
            auth_tries: 0,
        };
        self.by_call_id.insert(d.call_id.clone(), call);
        self.calls.insert(call, d);
        self.touched.push(call);
        self.events.push_back(UaEvent::Incoming {
            call,
            from_user,
            to_user,
            sdp: msg.body,
            headers,
        });
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.wake.next(), self.tx.poll_timeout()]
            .into_iter()
            .chain(self.regs.iter().map(|r| r.next_at))
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain(now);
        for i in 0..self.regs.len() {
            if self.regs[i].next_at.is_some_and(|t| t <= now) {
                self.send_register(i, now);
            }
        }
        let t2 = self.tx.timers().t2;
        let mut retries = Vec::new();
        for call in self.wake.take_due(now) {
            self.touched.push(call);
            let Some(d) = self.calls.get_mut(&call) else {
                continue;
            };
            if let Some(p) = &mut d.pending_2xx {
                if now >= p.deadline {
                    // No ACK ever came: the call cannot stand (RFC 3261 §13.3.1.4).
                    self.send_bye(call, now);
                    self.events.push_back(UaEvent::Ended { call, remote: true });
                    self.forget(call, now);
                    continue;
                } else if now >= p.at {
                    self.tx.send_raw(&p.msg, d.peer);
                    p.interval = (p.interval * 2).min(t2);
                    p.at = now + p.interval;
                }
            }
            if d.role == DialogRole::Uas
                && d.state == State::Early
                && d.answer_by.is_some_and(|t| now >= t)
            {
                // Never answered: refuse it, so neither side waits for ever.
                self.respond_inner(call, 480, None, now);
                self.events.push_back(UaEvent::Ended { call, remote: true });
                continue;
            }
            if d.their_reoffer.as_ref().is_some_and(|r| now >= r.1) {
                let (req, _) = d.their_reoffer.take().expect("checked");
                let mut r = response_to(&req, 500, Some(&d.local_tag));
                r.push("Retry-After", "5");
                self.tx.respond(&req, r, now);
            }
            if d.glare_retry.as_ref().is_some_and(|g| now >= g.0) {
                let (_, sdp) = d.glare_retry.take().expect("checked");
                retries.push((call, sdp));
            }
        }
        for (call, sdp) in retries {
            self.reoffer_inner(call, &sdp, now);
        }
        self.sync_timers();
    }

    /// Calls the UA still tracks, for tests and metrics.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Live (client, server) transactions, for tests and metrics.
    /// Whether the transaction tables gave back memory after a burst drained
    /// (see [`Transactions::take_shrunk`]); reading it clears it.
    pub fn take_shrunk(&mut self) -> bool {
        let mut shrunk = self.tx.take_shrunk();
        shrunk |= crate::timer::shrink_map(&mut self.calls);
        shrunk |= crate::timer::shrink_map(&mut self.by_call_id);
        shrunk |= self.wake.shrink();
        shrunk
    }

    pub fn transaction_counts(&self) -> (usize, usize) {
        self.tx.counts()
    }
}

/// Inserts into a bounded map: when full, some entry (whichever the hash
/// order gives first, not the oldest) is forgotten to make room.
fn bounded_insert<V>(map: &mut HashMap<String, V>, key: String, value: V) {
    if map.len() >= MAX_PENDING {
        if let Some(old) = map.keys().next().cloned() {
            map.remove(&old);
        }
    }
    map.insert(key, value);
}

fn strip_tag(v: &str) -> String {
    v.split(";tag=").next().unwrap_or(v).to_string()
}

/// A phone number: an optional `+`, then 1 to 32 digits.
pub fn valid_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (1..=32).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The `X-` headers the application may see (see [`UaEvent::Incoming`]).
fn x_headers(msg: &Message) -> Vec<(String, String)> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
    msg.headers
        .iter()
        .filter(|(n, v)| {
            n.len() > 2
                && n.as_bytes()[..2].eq_ignore_ascii_case(b"x-")
                && n.len() <= MAX_X_NAME
                && n.bytes().all(token)
                && v.len() <= MAX_X_VALUE
                && !v.chars().any(char::is_control)
        })
        .take(MAX_X_HEADERS)
        .cloned()
        .collect()
}

/// A URI we may put in a Request-URI: `sip:`/`sips:`, printable ASCII, short.
fn valid_target(uri: &str) -> bool {
    let lower = uri.get(..5).unwrap_or("").to_ascii_lowercase();
    (lower.starts_with("sip:") || lower == "sips:")
        && uri.len() <= 256
        && uri
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>\"".contains(&b))
}

/// The headers of their INVITE we answer or match a CANCEL with; the rest
/// (body, other headers) is not kept for the life of the call.
fn kept_headers(msg: &Message) -> Message {
    const KEEP: [&str; 6] = ["Via", "From", "To", "Call-ID", "CSeq", "Contact"];
    Message {
        start: msg.start.clone(),
        headers: msg
            .headers
            .iter()
            .filter(|(n, _)| KEEP.iter().any(|k| k.eq_ignore_ascii_case(n)))
            .cloned()
            .collect(),
        body: Vec::new(),
    }
}

/// `sip:user@1.2.3.4:5060;x` -> 1.2.3.4:5060 (5060 when no port).
pub fn sip_uri_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:")?;
    let host = rest.rsplit('@').next()?.split(';').next()?;
    host.parse()
        .ok()
        .or_else(|| format!("{host}:5060").parse().ok())
}

/// CANCEL for our INVITE (RFC 3261 §9.1): same branch, URI, Call-ID, From, To, CSeq number.
fn cancel_for(invite: &Message) -> Message {
    let mut c = Message::request(Method::Cancel, invite.uri().unwrap_or(""));
    if let Some(v) = invite.header("Via") {
        c.push("Via", v);
    }
    for r in invite.headers_named("Route") {
        c.push("Route", r);
    }
    c.push("Max-Forwards", "70");
    c.push("From", invite.header("From").unwrap_or(""));
    c.push("To", invite.header("To").unwrap_or(""));
    c.push("Call-ID", invite.call_id());
    c.push(
        "CSeq",
        format!("{} CANCEL", invite.cseq().map(|c| c.0).unwrap_or(1)),
    );
    c
}

/// The ACK for a 2xx: a new transaction-less request in the dialog.
fn ack_2xx(d: &Dialog, resp: &Message, _local: SocketAddr, via: String) -> Message {
    let n = resp.cseq().map(|c| c.0).unwrap_or(1);
    let mut ack = Message::request(Method::Ack, d.remote_target.clone());
    ack.push("Via", via);
    for r in &d.route_set {
        ack.push("Route", r.clone());
    }
    ack.push("Max-Forwards", "70");
    ack.push("From", resp.header("From").unwrap_or(""));
    ack.push("To", resp.header("To").unwrap_or(""));
    ack.push("Call-ID", d.call_id.clone());
    ack.push("CSeq", format!("{n} ACK"));
    ack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_targets() {
        for ok in [
            "1",
            "+12025550100",
            &"9".repeat(32),
            &format!("+{}", "9".repeat(32)),
        ] {
            assert!(valid_number(ok), "{ok}");
        }
        for bad in [
            "",
            "+",
            "++1",
            "anonymous",
            "12 34",
            "1-202",
            &"9".repeat(33),
            "١٢٣",
            "1;x",
        ] {
            assert!(!valid_number(bad), "{bad}");
        }
        assert!(valid_target("sip:a@1.2.3.4:5060;transport=udp"));
        assert!(valid_target("SIPS:a@h"));
        for bad in [
            "tel:+1",
            "sip:a b@h",
            "sip:a@h>",
            "http://x",
            &format!("sip:{}", "a".repeat(300)),
        ] {
            assert!(!valid_target(bad), "{bad}");
        }
    }
}
