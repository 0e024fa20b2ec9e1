//! RFC 3261 §17 transactions over UDP, as a sans-IO layer.
//!
//! Datagrams go in with [`Transactions::handle_datagram`]; what must be sent
//! comes out of [`Transactions::poll_transmit`], what the user agent must
//! know out of [`Transactions::poll_event`], and the layer asks to be woken
//! at [`Transactions::poll_timeout`]. Retransmissions (timers A, E, G),
//! timeouts (B, F, H) and the absorbing of late copies (D, I, J, K) all
//! happen here, so the layers above see each request and response once.

use crate::message::{reason_phrase, Message, Method};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 3261 timer values.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Client transactions are known by their branch; server ones by branch and
/// method (ACK counts as INVITE; CANCEL has its own).
pub type Branch = String;

#[derive(Debug, Clone, PartialEq)]
pub enum TxEvent {
    /// A new request (not a retransmission). For INVITE and other methods a
    /// server transaction exists: answer with [`Transactions::respond`].
    /// ACKs to 2xx and stray ACKs come here too, with no transaction.
    Request { msg: Message, from: SocketAddr },
    /// A response to a request we sent (each one once), or a 2xx
    /// retransmission for an INVITE whose transaction has ended.
    Response { branch: Branch, msg: Message },
    /// No final response came in time (timer B or F): treat it as a 408.
    Timeout { branch: Branch, method: Method },
    /// A datagram that is not a SIP message we can read.
    Malformed { from: SocketAddr, error: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
}

#[derive(Debug)]
struct ClientTx {
    request: Message,
    to: SocketAddr,
    state: ClientState,
    interval: Duration,
    retransmit_at: Option<Instant>,
    deadline: Instant,
    ack: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Proceeding,
    Completed,
    Confirmed,
}

#[derive(Debug)]
struct ServerTx {
    is_invite: bool,
    from: SocketAddr,
    state: ServerState,
    last_response: Option<Vec<u8>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    deadline: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Transactions {
    timers: Timers,
    /// Keyed by (branch, is-CANCEL): a CANCEL shares its INVITE's branch.
    client: HashMap<(Branch, bool), ClientTx>,
    server: HashMap<(Branch, bool), ServerTx>,
    out: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

/// Server transactions are keyed by (branch, is-CANCEL).
fn server_key(msg: &Message) -> Option<(Branch, bool)> {
    let branch = msg.branch()?.to_string();
    Some((branch, msg.method() == Some(&Method::Cancel)))
}

/// A new branch id, with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("z9hG4bK{}", crate::random_token(16))
}

/// A response to `req` that copies the headers RFC 3261 §8.2.6 says to copy.
pub fn response_to(req: &Message, code: u16, to_tag: Option<&str>) -> Message {
    let mut r = Message::response(code, reason_phrase(code));
    for via in req.headers_named("Via") {
        r.push("Via", via);
    }
    r.push("From", req.header("From").unwrap_or(""));
    let to = req.header("To").unwrap_or("");
    match to_tag {
        Some(tag) if crate::message::param(to, "tag").is_none() => r.push("To", format!("{to};tag={tag}")),
        _ => r.push("To", to),
    };
    r.push("Call-ID", req.call_id());
    r.push("CSeq", req.header("CSeq").unwrap_or(""));
    r
}

impl Transactions {
    pub fn new(timers: Timers) -> Self {
        Self { timers, ..Default::default() }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Starts a client transaction for `request` (which carries its Via with a
    /// fresh branch). ACK is not a transaction: use [`Transactions::send_raw`].
    pub fn send_request(&mut self, request: Message, to: SocketAddr, now: Instant) -> Branch {
        let branch = request.branch().unwrap_or_default().to_string();
        let key = (branch.clone(), request.method() == Some(&Method::Cancel));
        let t1 = self.timers.t1;
        self.out.push_back(Transmit { to, bytes: request.to_bytes() });
        // Over UDP, both kinds retransmit from T1 and give up after 64*T1.
        self.client.insert(
            key,
            ClientTx {
                request,
                to,
                state: ClientState::Calling,
                interval: t1,
                retransmit_at: Some(now + t1),
                deadline: now + 64 * t1,
                ack: None,
            },
        );
        branch
    }

    /// Sends a message outside any transaction (ACK for a 2xx, 2xx retransmissions).
    pub fn send_raw(&mut self, msg: &Message, to: SocketAddr) {
        self.out.push_back(Transmit { to, bytes: msg.to_bytes() });
    }

    /// Answers the server transaction that `request` opened.
    pub fn respond(&mut self, request: &Message, response: Message, now: Instant) {
        let Some(key) = server_key(request) else { return };
        let Some(tx) = self.server.get_mut(&key) else { return };
        let code = response.code().unwrap_or(500);
        let bytes = response.to_bytes();
        self.out.push_back(Transmit { to: tx.from, bytes: bytes.clone() });
        tx.last_response = Some(bytes);
        let t1 = self.timers.t1;
        if code < 200 {
            return;
        }
        if tx.is_invite {
            if code < 300 {
                // The user agent retransmits the 2xx until the ACK comes.
                self.server.remove(&key);
            } else {
                tx.state = ServerState::Completed;
                tx.interval = t1;
                tx.retransmit_at = Some(now + t1);
                tx.deadline = Some(now + 64 * t1);
            }
        } else {
            tx.state = ServerState::Completed;
            tx.deadline = Some(now + 64 * t1);
        }
    }

    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        // Keep-alives (CRLF) are not messages.
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        match Message::parse(bytes) {
            Ok(msg) if msg.code().is_some() => self.on_response(msg, now),
            Ok(msg) => self.on_request(msg, from, now),
            Err(e) => self.events.push_back(TxEvent::Malformed { from, error: e.to_string() }),
        }
    }

    fn on_response(&mut self, msg: Message, now: Instant) {
        let code = msg.code().unwrap_or(0);
        let Some(branch) = msg.branch().map(str::to_string) else { return };
        let key = (branch.clone(), msg.cseq().map(|c| c.1) == Some(Method::Cancel));
        let Some(tx) = self.client.get_mut(&key) else {
            // A 2xx retransmission after the INVITE transaction ended.
            if (200..300).contains(&code) && msg.cseq().map(|c| c.1) == Some(Method::Invite) {
                self.events.push_back(TxEvent::Response { branch, msg });
            }
            return;
        };
        if msg.cseq().map(|c| c.1) != tx.request.cseq().map(|c| c.1) {
            return;
        }
        let is_invite = tx.request.method() == Some(&Method::Invite);
        match (tx.state, code) {
            (ClientState::Completed, c) if c >= 300 => {
                // A retransmitted final response: ACK it again, tell no one.
                if let Some(ack) = &tx.ack {
                    self.out.push_back(Transmit { to: tx.to, bytes: ack.clone() });
                }
            }
            (ClientState::Completed, _) => {}
            (_, 100..=199) => {
                if is_invite {
                    // Ringing: no more retransmissions, and Timer B no longer
                    // applies (RFC 3261 §17.1.1.2); a call may ring for minutes.
                    // Three minutes (Timer C's floor) bound a peer that forgets us.
                    tx.retransmit_at = None;
                    tx.deadline = now + Duration::from_secs(180);
                } else {
                    // Proceeding: keep retransmitting, every T2.
                    tx.interval = self.timers.t2;
                    tx.retransmit_at = Some(now + self.timers.t2);
                }
                tx.state = ClientState::Proceeding;
                self.events.push_back(TxEvent::Response { branch, msg });
            }
            (_, 200..=299) if is_invite => {
                self.client.remove(&key);
                self.events.push_back(TxEvent::Response { branch, msg });
            }
            (_, _) => {
                tx.retransmit_at = None;
                tx.state = ClientState::Completed;
                if is_invite {
                    let ack = ack_for(&tx.request, &msg).to_bytes();
                    self.out.push_back(Transmit { to: tx.to, bytes: ack.clone() });
                    tx.ack = Some(ack);
                    tx.deadline = now + Duration::from_secs(32);
                } else {
                    tx.deadline = now + self.timers.t4;
                }
                self.events.push_back(TxEvent::Response { branch, msg });
            }
        }
    }

    fn on_request(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        let method = msg.method().cloned().unwrap_or(Method::Other(String::new()));
        let Some(key) = server_key(&msg) else {
            self.events.push_back(TxEvent::Malformed { from, error: "request without a Via branch".into() });
            return;
        };
        if method == Method::Ack {
            if let Some(tx) = self.server.get_mut(&key) {
                // ACK for our 3xx-6xx: the transaction is confirmed.
                if tx.is_invite && tx.state == ServerState::Completed {
                    tx.state = ServerState::Confirmed;
                    tx.retransmit_at = None;
                    tx.deadline = Some(now + self.timers.t4);
                }
                return;
            }
            // ACK for a 2xx is end to end: the user agent takes it.
            self.events.push_back(TxEvent::Request { msg, from });
            return;
        }
        if let Some(tx) = self.server.get(&key) {
            // A retransmitted request: repeat our last answer.
            if let Some(last) = &tx.last_response {
                self.out.push_back(Transmit { to: tx.from, bytes: last.clone() });
            }
            return;
        }
        let is_invite = method == Method::Invite;
        let mut tx = ServerTx {
            is_invite,
            from,
            state: ServerState::Proceeding,
            last_response: None,
            interval: self.timers.t1,
            retransmit_at: None,
            deadline: None,
        };
        if is_invite {
            // 100 Trying at once stops the caller's retransmissions.
            let trying = response_to(&msg, 100, None).to_bytes();
            self.out.push_back(Transmit { to: from, bytes: trying.clone() });
            tx.last_response = Some(trying);
        }
        self.server.insert(key, tx);
        self.events.push_back(TxEvent::Request { msg, from });
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let client = self.client.values().flat_map(|t| [t.retransmit_at, Some(t.deadline)]).flatten();
        let server = self.server.values().flat_map(|t| [t.retransmit_at, t.deadline]).flatten();
        client.chain(server).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let t2 = self.timers.t2;
        let mut ended = Vec::new();
        for (key, tx) in self.client.iter_mut() {
            if now >= tx.deadline {
                ended.push(key.clone());
                if tx.state != ClientState::Completed {
                    let method = tx.request.method().cloned().unwrap_or(Method::Invite);
                    self.events.push_back(TxEvent::Timeout { branch: key.0.clone(), method });
                }
                continue;
            }
            if let Some(at) = tx.retransmit_at {
                if now >= at {
                    self.out.push_back(Transmit { to: tx.to, bytes: tx.request.to_bytes() });
                    let is_invite = tx.request.method() == Some(&Method::Invite);
                    tx.interval = if is_invite { tx.interval * 2 } else { (tx.interval * 2).min(t2) };
                    tx.retransmit_at = Some(now + tx.interval);
                }
            }
        }
        for b in ended {
            self.client.remove(&b);
        }
        let mut ended = Vec::new();
        for (key, tx) in self.server.iter_mut() {
            if tx.deadline.is_some_and(|d| now >= d) {
                ended.push(key.clone());
                continue;
            }
            if let (Some(at), Some(last)) = (tx.retransmit_at, &tx.last_response) {
                if now >= at {
                    self.out.push_back(Transmit { to: tx.from, bytes: last.clone() });
                    tx.interval = (tx.interval * 2).min(t2);
                    tx.retransmit_at = Some(now + tx.interval);
                }
            }
        }
        for k in ended {
            self.server.remove(&k);
        }
    }

    /// Number of live transactions (client, server), for tests and metrics.
    pub fn counts(&self) -> (usize, usize) {
        (self.client.len(), self.server.len())
    }
}

/// The ACK a client INVITE transaction sends for a 3xx-6xx (RFC 3261 §17.1.1.3).
fn ack_for(invite: &Message, response: &Message) -> Message {
    let mut ack = Message::request(Method::Ack, invite.uri().unwrap_or("sip:invalid"));
    if let Some(via) = invite.header("Via") {
        ack.push("Via", via);
    }
    for r in invite.headers_named("Route") {
        ack.push("Route", r);
    }
    ack.push("Max-Forwards", "70");
    ack.push("From", invite.header("From").unwrap_or(""));
    ack.push("To", response.header("To").unwrap_or(""));
    ack.push("Call-ID", invite.call_id());
    let n = invite.cseq().map(|c| c.0).unwrap_or(1);
    ack.push("CSeq", format!("{n} ACK"));
    ack
}
