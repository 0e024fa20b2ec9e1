//! RFC 3261 §17 transactions over UDP, as a sans-IO layer.
//!
//! Datagrams go in with [`Transactions::handle_datagram`]; what must be sent
//! comes out of [`Transactions::poll_transmit`], what the user agent must
//! know out of [`Transactions::poll_event`], and the layer asks to be woken
//! at [`Transactions::poll_timeout`]. Retransmissions (timers A, E, G),
//! timeouts (B, F, H) and the absorbing of late copies (D, I, J, K, and L of
//! RFC 6026 for a 2xx) all happen here, so the layers above see each request
//! and response once.
//!
//! Every transaction ends by itself: a server transaction the layer above
//! never answers is dropped after [`INVITE_PROCEEDING_LIMIT`] (INVITE) or
//! 64*T1 (others), and no more than [`MAX_SERVER_TRANSACTIONS`] live at once.
//! When the table is full, a new request takes the place of the oldest
//! transaction already answered (it only absorbs late retransmissions, and
//! the oldest is the next to expire anyway); only when every one is still
//! unanswered does a new request get no state, just a [`TxEvent::Rejected`]
//! so the user agent answers it 503 without state.

use crate::message::{reason_phrase, Message, Method};
use crate::timer::TimerSet;
use crate::trust::same_addr;
use rand::Rng;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
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
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// At most this many server transactions live at once.
pub const MAX_SERVER_TRANSACTIONS: usize = 4096;

/// An INVITE server transaction still unanswered (no final response) after
/// this long is dropped. The user agent ends an unanswered call before that.
pub const INVITE_PROCEEDING_LIMIT: Duration = Duration::from_secs(200);

/// RFC 3261 §8.1.1.5: a CSeq sequence number must be below 2^31.
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

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
    /// server transaction exists in Proceeding: answer it with
    /// [`Transactions::respond`] or [`Transactions::reject`].
    /// ACKs to 2xx and stray ACKs come here too, with no transaction.
    Request { msg: Message, from: SocketAddr },
    /// A response to a request we sent (each one once, and only from the
    /// address the request went to), or a 2xx retransmission for an INVITE
    /// whose transaction has ended (any source: check it).
    Response {
        branch: Branch,
        msg: Message,
        from: SocketAddr,
    },
    /// No final response came in time (timer B or F): treat it as a 408.
    Timeout { branch: Branch, method: Method },
    /// A request that opened no transaction: its CSeq is bad (`code` 400) or
    /// the table is full (503). Answer it with [`Transactions::reject`].
    Rejected {
        msg: Message,
        from: SocketAddr,
        code: u16,
    },
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
    /// INVITE: a 2xx was sent (RFC 6026); absorbs retransmitted INVITEs.
    Accepted,
    Completed,
    Confirmed,
}

#[derive(Debug)]
struct ServerTx {
    is_invite: bool,
    from: SocketAddr,
    state: ServerState,
    last_response: Option<Box<[u8]>>,
    interval: Duration,
    retransmit_at: Option<Instant>,
    deadline: Instant,
}

/// (method, branch) in one shared string, ACK counted as INVITE: the map,
/// the deadline index and the deadline order hold the same allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key(Arc<str>);

impl Key {
    fn branch(&self) -> &str {
        self.0.split_once(' ').map_or("", |(_, b)| b)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKey {
    Client(Key),
    Server(Key),
}

#[derive(Debug, Default)]
pub struct Transactions {
    timers: Timers,
    client: HashMap<Key, ClientTx>,
    server: HashMap<Key, ServerTx>,
    wake: TimerSet<TimerKey>,
    out: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
    misrouted: u64,
    shrunk: bool,
    /// Peers reached over a connection: nothing to them is retransmitted.
    reliable: std::collections::HashSet<SocketAddr>,
    /// Server transactions in the order they got their final answer: the
    /// first to give way when the table is full. Keys of transactions gone
    /// already are skipped (and dropped from the front as they come).
    answered: VecDeque<Key>,
}

pub(crate) use crate::timer::{shrink_map, COMPACT_FLOOR};

fn key_for(branch: &str, method: &Method) -> Key {
    let m = if *method == Method::Ack {
        "INVITE"
    } else {
        method.as_str()
    };
    Key(format!("{m} {branch}").into())
}

fn server_key(msg: &Message) -> Option<Key> {
    Some(key_for(msg.branch()?, msg.method()?))
}

/// A new branch id, with the RFC 3261 magic cookie.
pub fn new_branch(rng: &mut impl Rng) -> String {
    format!("z9hG4bK{}", crate::token(rng, 16))
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
        Some(tag) if crate::message::param(to, "tag").is_none() => {
            r.push("To", format!("{to};tag={tag}"))
        }
        _ => r.push("To", to),
    };
    r.push("Call-ID", req.call_id());
    r.push("CSeq", req.header("CSeq").unwrap_or(""));
    r
}

/// Is the CSeq of this request one we accept (a number below 2^31 and the
/// request's own method)?
pub fn valid_request_cseq(msg: &Message) -> bool {
    match (msg.cseq(), msg.method()) {
        (Some((n, m)), Some(method)) => n <= MAX_CSEQ && m == *method,
        _ => false,
    }
}

impl Transactions {
    pub fn new(timers: Timers) -> Self {
        Self {
            timers,
            ..Default::default()
        }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// The connection to `peer` could not be made or broke: every request
    /// waiting for its answer from `peer` fails now, as if timed out (RFC
    /// 3261 §8.1.3.1), instead of after 64*T1.
    pub fn fail_to(&mut self, peer: SocketAddr) {
        let keys: Vec<Key> = self
            .client
            .iter()
            .filter(|(_, t)| t.to == peer && t.state != ClientState::Completed)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            if let Some(tx) = self.client.remove(&key) {
                self.wake.set(&TimerKey::Client(key.clone()), None);
                let method = tx.request.method().cloned().unwrap_or(Method::Invite);
                self.events.push_back(TxEvent::Timeout {
                    branch: key.branch().to_string(),
                    method,
                });
            }
        }
    }

    /// Messages to `peer` travel over a connection (TCP, TLS): requests and
    /// final responses to it are sent once, timeouts still apply.
    pub fn set_reliable(&mut self, peer: SocketAddr, reliable: bool) {
        if reliable {
            self.reliable.insert(peer);
        } else {
            self.reliable.remove(&peer);
        }
    }

    fn schedule_client(&mut self, key: &Key) {
        let when = self
            .client
            .get(key)
            .map(|t| t.retransmit_at.map_or(t.deadline, |r| r.min(t.deadline)));
        self.wake.set(&TimerKey::Client(key.clone()), when);
    }

    fn schedule_server(&mut self, key: &Key) {
        let when = self
            .server
            .get(key)
            .map(|t| t.retransmit_at.map_or(t.deadline, |r| r.min(t.deadline)));
        self.wake.set(&TimerKey::Server(key.clone()), when);
    }

    /// Starts a client transaction for `request` (which carries its Via with a
    /// fresh branch). ACK is not a transaction: use [`Transactions::send_raw`].
    pub fn send_request(&mut self, request: Message, to: SocketAddr, now: Instant) -> Branch {
        let branch = request.branch().unwrap_or_default().to_string();
        let key = key_for(&branch, request.method().unwrap_or(&Method::Invite));
        let t1 = self.timers.t1;
        self.out.push_back(Transmit {
            to,
            bytes: request.to_bytes(),
        });
        // Over UDP, both kinds retransmit from T1 and give up after 64*T1;
        // over a connection they only give up.
        let retransmit_at = (!self.reliable.contains(&to)).then_some(now + t1);
        self.client.insert(
            key.clone(),
            ClientTx {
                request,
                to,
                state: ClientState::Calling,
                interval: t1,
                retransmit_at,
                deadline: now + 64 * t1,
                ack: None,
            },
        );
        self.schedule_client(&key);
        branch
    }

    /// Sends a message outside any transaction (ACK for a 2xx, 2xx retransmissions).
    pub fn send_raw(&mut self, msg: &Message, to: SocketAddr) {
        self.out.push_back(Transmit {
            to,
            bytes: msg.to_bytes(),
        });
    }

    /// Answers the server transaction that `request` opened. Does nothing when
    /// that transaction is gone or already has its final response.
    pub fn respond(&mut self, request: &Message, response: Message, now: Instant) {
        let Some(key) = server_key(request) else {
            return;
        };
        let Some(tx) = self.server.get_mut(&key) else {
            return;
        };
        if tx.state != ServerState::Proceeding {
            return;
        }
        let code = response.code().unwrap_or(500);
        let bytes = response.to_bytes();
        self.out.push_back(Transmit {
            to: tx.from,
            bytes: bytes.clone(),
        });
        tx.last_response = Some(bytes.into_boxed_slice());
        let t1 = self.timers.t1;
        if code >= 200 {
            if tx.is_invite && code < 300 {
                // RFC 6026 Accepted: the user agent retransmits the 2xx until
                // the ACK; this only answers retransmitted INVITEs, for 64*T1.
                tx.state = ServerState::Accepted;
                tx.retransmit_at = None;
            } else if tx.is_invite {
                tx.state = ServerState::Completed;
                tx.interval = t1;
                tx.retransmit_at = (!self.reliable.contains(&tx.from)).then_some(now + t1);
            } else {
                tx.state = ServerState::Completed;
                tx.retransmit_at = None;
            }
            tx.deadline = now + 64 * t1;
            // Forget keys at the front whose transactions ended already.
            while self
                .answered
                .front()
                .is_some_and(|k| !self.server.contains_key(k))
            {
                self.answered.pop_front();
            }
            self.answered.push_back(key.clone());
        }
        self.schedule_server(&key);
    }

    /// Answers `request` without keeping state: sends `response` to `to` once
    /// and ends the server transaction of `request`, if any. For refusals of
    /// requests that belong to no call (400, 481, 482, 503...): a flood of
    /// them then costs no memory and each gets one answer.
    pub fn reject(&mut self, request: &Message, response: Message, to: SocketAddr) {
        if let Some(key) = server_key(request) {
            if self
                .server
                .get(&key)
                .is_some_and(|t| t.state == ServerState::Proceeding)
            {
                self.server.remove(&key);
                self.schedule_server(&key);
            }
        }
        self.out.push_back(Transmit {
            to,
            bytes: response.to_bytes(),
        });
    }

    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        // Keep-alives (CRLF) are not messages.
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        match Message::parse(bytes) {
            Ok(msg) => self.handle_message(msg, from, now),
            Err(e) => self.events.push_back(TxEvent::Malformed {
                from,
                error: e.to_string(),
            }),
        }
    }

    /// Like [`Transactions::handle_datagram`], for a message already parsed.
    pub fn handle_message(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        if msg.code().is_some() {
            self.on_response(msg, from, now)
        } else {
            self.on_request(msg, from, now)
        }
    }

    fn on_response(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        let code = msg.code().unwrap_or(0);
        let (Some(branch), Some((_, method))) = (msg.branch().map(str::to_string), msg.cseq())
        else {
            return;
        };
        let key = key_for(&branch, &method);
        let Some(tx) = self.client.get_mut(&key) else {
            // A 2xx retransmission after the INVITE transaction ended.
            if (200..300).contains(&code) && method == Method::Invite {
                self.events
                    .push_back(TxEvent::Response { branch, msg, from });
            }
            return;
        };
        if !same_addr(from, tx.to) {
            // Only the address we sent the request to may answer it.
            self.misrouted += 1;
            return;
        }
        if Some(&method) != tx.request.method() || method == Method::Ack {
            return;
        }
        let is_invite = method == Method::Invite;
        match (tx.state, code) {
            (ClientState::Completed, c) if c >= 300 => {
                // A retransmitted final response: ACK it again, tell no one.
                if let Some(ack) = &tx.ack {
                    self.out.push_back(Transmit {
                        to: tx.to,
                        bytes: ack.clone(),
                    });
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
                self.events
                    .push_back(TxEvent::Response { branch, msg, from });
            }
            (_, 200..=299) if is_invite => {
                self.client.remove(&key);
                self.events
                    .push_back(TxEvent::Response { branch, msg, from });
            }
            (_, _) => {
                tx.retransmit_at = None;
                tx.state = ClientState::Completed;
                if is_invite {
                    let ack = ack_for(&tx.request, &msg).to_bytes();
                    self.out.push_back(Transmit {
                        to: tx.to,
                        bytes: ack.clone(),
                    });
                    tx.ack = Some(ack);
                    tx.deadline = now + Duration::from_secs(32);
                } else {
                    tx.deadline = now + self.timers.t4;
                }
                self.events
                    .push_back(TxEvent::Response { branch, msg, from });
            }
        }
        self.schedule_client(&key);
    }

    fn on_request(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        let method = msg
            .method()
            .cloned()
            .unwrap_or(Method::Other(String::new()));
        let Some(key) = server_key(&msg) else {
            self.events.push_back(TxEvent::Malformed {
                from,
                error: "request without a Via branch".into(),
            });
            return;
        };
        if !valid_request_cseq(&msg) {
            if method == Method::Ack {
                self.events.push_back(TxEvent::Malformed {
                    from,
                    error: "ACK with a bad CSeq".into(),
                });
            } else {
                self.events.push_back(TxEvent::Rejected {
                    msg,
                    from,
                    code: 400,
                });
            }
            return;
        }
        if method == Method::Ack {
            if let Some(tx) = self.server.get_mut(&key) {
                if !same_addr(tx.from, from) {
                    return;
                }
                match tx.state {
                    // ACK for our 3xx-6xx: the transaction is confirmed.
                    ServerState::Completed => {
                        tx.state = ServerState::Confirmed;
                        tx.retransmit_at = None;
                        tx.deadline = now + self.timers.t4;
                        self.schedule_server(&key);
                        return;
                    }
                    // An ACK for a 2xx that reuses the INVITE's branch: the UA's.
                    ServerState::Accepted => {}
                    ServerState::Proceeding | ServerState::Confirmed => return,
                }
            }
            // ACK for a 2xx is end to end: the user agent takes it.
            self.events.push_back(TxEvent::Request { msg, from });
            return;
        }
        if let Some(tx) = self.server.get(&key) {
            // A retransmitted request: repeat our last answer, to the sender
            // of the original only.
            if same_addr(tx.from, from) {
                if let Some(last) = &tx.last_response {
                    self.out.push_back(Transmit {
                        to: tx.from,
                        bytes: last.to_vec(),
                    });
                }
            }
            return;
        }
        if self.server.len() >= MAX_SERVER_TRANSACTIONS && !self.evict_answered() {
            self.events.push_back(TxEvent::Rejected {
                msg,
                from,
                code: 503,
            });
            return;
        }
        let is_invite = method == Method::Invite;
        let limit = if is_invite {
            INVITE_PROCEEDING_LIMIT
        } else {
            64 * self.timers.t1
        };
        let tx = ServerTx {
            is_invite,
            from,
            state: ServerState::Proceeding,
            last_response: None,
            interval: self.timers.t1,
            retransmit_at: None,
            deadline: now + limit,
        };
        self.server.insert(key.clone(), tx);
        self.schedule_server(&key);
        self.events.push_back(TxEvent::Request { msg, from });
    }

    /// Makes room by dropping the oldest answered server transaction;
    /// false when every live one is still unanswered.
    fn evict_answered(&mut self) -> bool {
        while let Some(key) = self.answered.pop_front() {
            if self
                .server
                .get(&key)
                .is_some_and(|t| t.state != ServerState::Proceeding)
            {
                self.server.remove(&key);
                self.wake.set(&TimerKey::Server(key), None);
                return true;
            }
        }
        false
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wake.next()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let t2 = self.timers.t2;
        for due in self.wake.take_due(now) {
            match due {
                TimerKey::Client(key) => {
                    let Some(tx) = self.client.get_mut(&key) else {
                        continue;
                    };
                    if now >= tx.deadline {
                        if tx.state != ClientState::Completed {
                            let method = tx.request.method().cloned().unwrap_or(Method::Invite);
                            self.events.push_back(TxEvent::Timeout {
                                branch: key.branch().to_string(),
                                method,
                            });
                        }
                        self.client.remove(&key);
                    } else if tx.retransmit_at.is_some_and(|at| now >= at) {
                        self.out.push_back(Transmit {
                            to: tx.to,
                            bytes: tx.request.to_bytes(),
                        });
                        let is_invite = tx.request.method() == Some(&Method::Invite);
                        tx.interval = if is_invite {
                            tx.interval * 2
                        } else {
                            (tx.interval * 2).min(t2)
                        };
                        tx.retransmit_at = Some(now + tx.interval);
                    }
                    self.schedule_client(&key);
                }
                TimerKey::Server(key) => {
                    let Some(tx) = self.server.get_mut(&key) else {
                        continue;
                    };
                    if now >= tx.deadline {
                        self.server.remove(&key);
                    } else if let (Some(at), Some(last)) = (tx.retransmit_at, &tx.last_response) {
                        if now >= at {
                            self.out.push_back(Transmit {
                                to: tx.from,
                                bytes: last.to_vec(),
                            });
                            tx.interval = (tx.interval * 2).min(t2);
                            tx.retransmit_at = Some(now + tx.interval);
                        }
                    }
                    self.schedule_server(&key);
                }
            }
        }
        self.compact();
    }

    /// After a burst (a storm of requests, a busy hour) has drained, gives
    /// back the room its tables grew to, so a peak does not stay resident.
    fn compact(&mut self) {
        let mut shrunk = false;
        shrunk |= shrink_map(&mut self.server);
        shrunk |= shrink_map(&mut self.client);
        shrunk |= self.wake.shrink();
        if self.server.is_empty() && self.answered.capacity() > COMPACT_FLOOR {
            self.answered = VecDeque::new();
            shrunk = true;
        }
        if self.out.capacity() > COMPACT_FLOOR && self.out.is_empty() {
            self.out = VecDeque::new();
            shrunk = true;
        }
        if self.events.capacity() > COMPACT_FLOOR && self.events.is_empty() {
            self.events = VecDeque::new();
            shrunk = true;
        }
        self.shrunk |= shrunk;
    }

    /// Whether the tables gave back memory since the last call: the shell may
    /// then return freed pages to the system.
    pub fn take_shrunk(&mut self) -> bool {
        std::mem::take(&mut self.shrunk)
    }

    /// Number of live transactions (client, server), for tests and metrics.
    pub fn counts(&self) -> (usize, usize) {
        (self.client.len(), self.server.len())
    }

    /// Responses ignored because they came from another address than the
    /// one their request was sent to.
    pub fn misrouted(&self) -> u64 {
        self.misrouted
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    fn req(method: &str, branch: &str, cseq: &str) -> Vec<u8> {
        format!(
            "{method} sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: {cseq}\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn an_unanswered_server_transaction_expires() {
        let t0 = Instant::now();
        let mut t = Transactions::new(Timers::default());
        t.handle_datagram(&req("INVITE", "z9hG4bKa", "1 INVITE"), addr(1), t0);
        t.handle_datagram(&req("OPTIONS", "z9hG4bKb", "1 OPTIONS"), addr(1), t0);
        assert_eq!(t.counts(), (0, 2));
        t.handle_timeout(t0 + 64 * Timers::default().t1);
        assert_eq!(t.counts(), (0, 1), "the non-INVITE one is gone after 64*T1");
        let at = t.poll_timeout().unwrap();
        assert_eq!(at, t0 + INVITE_PROCEEDING_LIMIT);
        t.handle_timeout(at);
        assert_eq!((t.counts(), t.poll_timeout()), ((0, 0), None));
    }

    #[test]
    fn a_full_table_of_answered_transactions_makes_room_oldest_first() {
        let t0 = Instant::now();
        let mut t = Transactions::new(Timers::default());
        // A busy hour: every request answered, each transaction absorbing
        // retransmissions for 64*T1.
        for i in 0..MAX_SERVER_TRANSACTIONS + 100 {
            let r = req("BYE", &format!("z9hG4bK{i}"), "2 BYE");
            t.handle_datagram(&r, addr(1), t0);
            while let Some(e) = t.poll_event() {
                match e {
                    TxEvent::Request { msg, .. } => {
                        let ok = response_to(&msg, 200, None);
                        t.respond(&msg, ok, t0);
                    }
                    other => panic!("refused at {i}: {other:?}"),
                }
            }
        }
        assert_eq!(t.counts(), (0, MAX_SERVER_TRANSACTIONS));
        // The oldest gave way: its retransmission is a new request now;
        // a recent one's is still absorbed with our answer.
        while t.poll_transmit().is_some() {}
        t.handle_datagram(&req("BYE", "z9hG4bK4000", "2 BYE"), addr(1), t0);
        assert!(t.poll_event().is_none(), "absorbed");
        assert!(t.poll_transmit().is_some(), "our 200 again");
        t.handle_datagram(&req("BYE", "z9hG4bK0", "2 BYE"), addr(1), t0);
        assert!(
            matches!(t.poll_event(), Some(TxEvent::Request { .. })),
            "the oldest made room: its copy is new to us"
        );
        // Unanswered ones are never dropped for room: then 503.
        let mut t = Transactions::new(Timers::default());
        for i in 0..MAX_SERVER_TRANSACTIONS {
            t.handle_datagram(&req("BYE", &format!("z9hG4bK{i}"), "2 BYE"), addr(1), t0);
        }
        while t.poll_event().is_some() {}
        t.handle_datagram(&req("BYE", "z9hG4bKx", "2 BYE"), addr(1), t0);
        assert!(matches!(
            t.poll_event(),
            Some(TxEvent::Rejected { code: 503, .. })
        ));
    }

    #[test]
    fn the_table_is_bounded_and_bad_cseqs_open_nothing() {
        let t0 = Instant::now();
        let mut t = Transactions::new(Timers::default());
        for i in 0..MAX_SERVER_TRANSACTIONS + 10 {
            t.handle_datagram(
                &req("OPTIONS", &format!("z9hG4bK{i}"), "1 OPTIONS"),
                addr(1),
                t0,
            );
        }
        assert_eq!(t.counts(), (0, MAX_SERVER_TRANSACTIONS));
        let mut rejected = 0;
        while let Some(e) = t.poll_event() {
            if matches!(e, TxEvent::Rejected { code: 503, .. }) {
                rejected += 1;
            }
        }
        assert_eq!(rejected, 10);
        let mut t = Transactions::new(Timers::default());
        for cseq in [
            "4294967295 INVITE",
            "2147483648 INVITE",
            "1 BYE",
            "99999999999 INVITE",
            "x INVITE",
        ] {
            t.handle_datagram(&req("INVITE", "z9hG4bKx", cseq), addr(1), t0);
            assert!(
                matches!(t.poll_event(), Some(TxEvent::Rejected { code: 400, .. })),
                "{cseq}"
            );
        }
        t.handle_datagram(&req("INVITE", "z9hG4bKx", "2147483647 INVITE"), addr(1), t0);
        assert!(matches!(t.poll_event(), Some(TxEvent::Request { .. })));
        assert_eq!(t.counts(), (0, 1));
    }

    #[test]
    fn responses_only_count_from_where_the_request_went() {
        let t0 = Instant::now();
        let mut t = Transactions::new(Timers::default());
        let mut m = Message::request(Method::Options, "sip:x@127.0.0.1:5070");
        m.push("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo")
            .push("From", "<sip:a@h>;tag=1")
            .push("To", "<sip:b@h>")
            .push("Call-ID", "c")
            .push("CSeq", "1 OPTIONS");
        t.send_request(m.clone(), addr(5070), t0);
        let ok = response_to(&m, 200, Some("t")).to_bytes();
        t.handle_datagram(&ok, addr(6666), t0);
        assert_eq!((t.poll_event(), t.misrouted()), (None, 1));
        t.handle_datagram(&ok, addr(5070), t0);
        assert!(matches!(t.poll_event(), Some(TxEvent::Response { .. })));
    }
}
