//! A SIP user agent for trunk calls, sans-IO: dialogs (RFC 3261 §12) on top
//! of the transaction layer, for INVITE/ACK/BYE/CANCEL and re-INVITE.
//!
//! One [`UserAgent`] serves many calls. The call controller asks it to
//! place, answer, cancel, hang up or re-offer a call, and reads
//! [`UaEvent`]s back. The UA owns what RFC 3261 gives the "UA core": the
//! ACK for a 2xx (and again for each retransmitted 2xx), retransmitting our
//! own 2xx until its ACK, CANCEL only after a provisional response, and the
//! 491 glare retry of re-INVITEs.

use crate::message::{uri_of, uri_user, Message, Method};
use crate::transaction::{new_branch, response_to, Timers, Transactions, Transmit, TxEvent};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub type CallRef = u64;

#[derive(Debug, Clone, PartialEq)]
pub enum UaEvent {
    /// A new inbound call. Answer it with [`UserAgent::respond`].
    Incoming { call: CallRef, from_user: String, to_user: String, sdp: Vec<u8>, headers: Vec<(String, String)> },
    /// 180/183 for our call, with early media SDP if any.
    Progress { call: CallRef, code: u16, sdp: Option<Vec<u8>> },
    /// Our call was answered (ACK already sent).
    Answered { call: CallRef, sdp: Vec<u8> },
    /// Our call failed: a final response >= 300, or 408 when nothing came.
    Failed { call: CallRef, code: u16, reason: String },
    /// The ACK for our 2xx arrived: the inbound call is fully up.
    Confirmed { call: CallRef },
    /// The call ended: `remote` when the other side hung up or cancelled.
    Ended { call: CallRef, remote: bool },
    /// The other side re-offered (hold/resume). Answer with [`UserAgent::respond_reoffer`].
    Reoffer { call: CallRef, sdp: Vec<u8> },
    /// Our re-offer was accepted, with the answer.
    ReofferAnswered { call: CallRef, sdp: Vec<u8> },
    /// Our re-offer was refused (not 491: that one is retried by itself).
    ReofferFailed { call: CallRef, code: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Uac,
    Uas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// UAC: INVITE sent, no final answer. UAS: INVITE received, not answered.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Accepted,
    Confirmed,
    Terminated,
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
    role: Role,
    state: State,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our From/To header values without tags.
    local_uri: String,
    remote_uri: String,
    remote_target: String,
    route_set: Vec<String>,
    peer: SocketAddr,
    local_cseq: u32,
    /// The INVITE that opened the dialog (ours as UAC, theirs as UAS).
    invite: Message,
    cancel_wanted: bool,
    got_provisional: bool,
    /// Our 2xx to their INVITE (or re-INVITE), until their ACK.
    pending_2xx: Option<Retransmit>,
    /// The ACK we sent for their 2xx, for its retransmissions.
    last_ack: Option<Message>,
    /// Our re-INVITE in flight: its CSeq and SDP.
    /// Our re-INVITE in flight: its CSeq, SDP and transaction branch.
    our_reoffer: Option<(u32, Vec<u8>, String)>,
    /// Our re-INVITE to send again after a 491.
    glare_retry: Option<(Instant, Vec<u8>)>,
    /// Their re-INVITE we still have to answer.
    their_reoffer: Option<Message>,
}

pub struct UserAgent {
    tx: Transactions,
    local: SocketAddr,
    user_agent: String,
    next_ref: CallRef,
    calls: HashMap<CallRef, Dialog>,
    by_call_id: HashMap<String, CallRef>,
    events: VecDeque<UaEvent>,
}

fn tag() -> String {
    crate::random_token(10)
}

impl UserAgent {
    /// `local`: the address we are reached at, written in Via and Contact.
    pub fn new(local: SocketAddr, timers: Timers) -> Self {
        Self {
            tx: Transactions::new(timers),
            local,
            user_agent: "Seatline".to_string(),
            next_ref: 0,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn contact(&self) -> String {
        format!("<sip:seatline@{}>", self.local)
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.local)
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
        let call_id = format!("{}@seatline", crate::random_token(20));
        let local_tag = tag();
        let remote_uri = format!("<sip:{to_user}@{peer}>");
        let local_uri = format!("<sip:{from_user}@{}>", self.local.ip());
        let target = format!("sip:{to_user}@{peer}");
        let mut m = Message::request(Method::Invite, target.clone());
        m.push("Via", self.via(&new_branch()));
        m.push("Max-Forwards", "70");
        m.push("From", format!("{local_uri};tag={local_tag}"));
        m.push("To", remote_uri.clone());
        m.push("Call-ID", call_id.clone());
        m.push("CSeq", "1 INVITE");
        m.push("Contact", self.contact());
        m.push("User-Agent", self.user_agent.clone());
        m.push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
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
                role: Role::Uac,
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
                invite: m,
                cancel_wanted: false,
                got_provisional: false,
                pending_2xx: None,
                last_ack: None,
                our_reoffer: None,
                glare_retry: None,
                their_reoffer: None,
            },
        );
        call
    }

    /// Answers an inbound call: 180/183 (with early SDP), 200 with SDP, or a refusal (>= 300).
    pub fn respond(&mut self, call: CallRef, code: u16, sdp: Option<&[u8]>, now: Instant) {
        let contact = self.contact();
        let t1 = self.tx.timers().t1;
        let Some(d) = self.calls.get_mut(&call) else { return };
        if d.role != Role::Uas || d.state != State::Early {
            return;
        }
        let mut r = response_to(&d.invite, code, Some(&d.local_tag));
        if code < 300 {
            r.push("Contact", contact);
        }
        if let Some(sdp) = sdp {
            r.push("Content-Type", "application/sdp");
            r.body = sdp.to_vec();
        }
        self.tx.respond(&d.invite, r.clone(), now);
        if (200..300).contains(&code) {
            d.state = State::Accepted;
            d.pending_2xx = Some(Retransmit { msg: r, interval: t1, at: now + t1, deadline: now + 64 * t1 });
        } else if code >= 300 {
            d.state = State::Terminated;
            self.forget(call);
        }
    }

    /// Hangs up: CANCEL before an answer, BYE after.
    pub fn hang_up(&mut self, call: CallRef, now: Instant) {
        let Some(d) = self.calls.get_mut(&call) else { return };
        match (d.role, d.state) {
            (Role::Uac, State::Early) => {
                d.cancel_wanted = true;
                if d.got_provisional {
                    let cancel = cancel_for(&d.invite);
                    self.tx.send_request(cancel, d.peer, now);
                }
            }
            (Role::Uas, State::Early) => self.respond(call, 486, None, now),
            (_, State::Accepted | State::Confirmed) => {
                self.send_bye(call, now);
                self.events.push_back(UaEvent::Ended { call, remote: false });
                self.forget(call);
            }
            (_, State::Terminated) => {}
        }
    }

    /// Sends a new offer in the dialog (hold, resume).
    pub fn reoffer(&mut self, call: CallRef, sdp: &[u8], now: Instant) {
        let Some(d) = self.calls.get(&call) else { return };
        if d.state != State::Confirmed && d.state != State::Accepted {
            return;
        }
        if d.our_reoffer.is_some() || d.their_reoffer.is_some() {
            // One offer at a time; this one goes after the current exchange.
            let at = now + Duration::from_millis(500);
            if let Some(d) = self.calls.get_mut(&call) {
                d.glare_retry = Some((at, sdp.to_vec()));
            }
            return;
        }
        let mut m = self.in_dialog(call, Method::Invite);
        m.push("Contact", self.contact());
        m.push("Content-Type", "application/sdp");
        m.body = sdp.to_vec();
        let cseq = m.cseq().map(|c| c.0).unwrap_or(0);
        let peer = self.calls[&call].peer;
        let branch = self.tx.send_request(m, peer, now);
        if let Some(d) = self.calls.get_mut(&call) {
            d.our_reoffer = Some((cseq, sdp.to_vec(), branch));
        }
    }

    /// Answers the other side's re-offer with our SDP (200) or refuses it.
    pub fn respond_reoffer(&mut self, call: CallRef, code: u16, sdp: Option<&[u8]>, now: Instant) {
        let contact = self.contact();
        let t1 = self.tx.timers().t1;
        let Some(d) = self.calls.get_mut(&call) else { return };
        let Some(req) = d.their_reoffer.take() else { return };
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
            d.pending_2xx = Some(Retransmit { msg: r, interval: t1, at: now + t1, deadline: now + 64 * t1 });
        }
    }

    fn in_dialog(&mut self, call: CallRef, method: Method) -> Message {
        let via = self.via(&new_branch());
        let d = self.calls.get_mut(&call).expect("caller checked");
        d.local_cseq += 1;
        let mut m = Message::request(method.clone(), d.remote_target.clone());
        m.push("Via", via);
        for r in &d.route_set {
            m.push("Route", r.clone());
        }
        m.push("Max-Forwards", "70");
        m.push("From", format!("{};tag={}", local_side(d), d.local_tag));
        let remote = remote_side(d);
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
        self.tx.send_request(bye, peer, now);
    }

    fn forget(&mut self, call: CallRef) {
        // Keep the dialog a moment for late retransmissions? The transaction
        // layer absorbs those; a stray 2xx for a forgotten call gets a BYE.
        if let Some(d) = self.calls.remove(&call) {
            self.by_call_id.remove(&d.call_id);
        }
    }

    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        self.tx.handle_datagram(bytes, from, now);
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                TxEvent::Request { msg, from } => self.on_request(msg, from, now),
                TxEvent::Response { msg, .. } => self.on_response(msg, now),
                TxEvent::Timeout { method, branch } => self.on_timeout(method, &branch),
                TxEvent::Malformed { .. } => {}
            }
        }
    }

    fn call_of(&self, msg: &Message) -> Option<CallRef> {
        self.by_call_id.get(msg.call_id()).copied()
    }

    fn on_timeout(&mut self, method: Method, branch: &str) {
        if method != Method::Invite {
            return;
        }
        let initial = self.calls.iter().find(|(_, d)| d.state == State::Early && d.invite.branch() == Some(branch));
        if let Some(call) = initial.map(|(c, _)| *c) {
            self.events.push_back(UaEvent::Failed { call, code: 408, reason: "Request Timeout".into() });
            self.forget(call);
            return;
        }
        // Our re-INVITE got no answer: the offer failed, the call stays as it was.
        let reoffer = self.calls.iter().find(|(_, d)| d.our_reoffer.as_ref().is_some_and(|r| r.2 == branch));
        if let Some(call) = reoffer.map(|(c, _)| *c) {
            if let Some(d) = self.calls.get_mut(&call) {
                d.our_reoffer = None;
            }
            self.events.push_back(UaEvent::ReofferFailed { call, code: 408 });
        }
    }

    fn on_response(&mut self, msg: Message, now: Instant) {
        let code = msg.code().unwrap_or(0);
        let Some((cseq, method)) = msg.cseq() else { return };
        let Some(call) = self.call_of(&msg) else {
            // A 2xx for a call we no longer know: ACK and BYE it (RFC 3261 §15).
            if (200..300).contains(&code) && method == Method::Invite {
                self.stray_2xx(&msg);
            }
            return;
        };
        if method != Method::Invite {
            return; // BYE, CANCEL, INFO answers: nothing to do.
        }
        let d = self.calls.get_mut(&call).expect("known");
        let is_reoffer = d.our_reoffer.as_ref().is_some_and(|r| r.0 == cseq);
        if is_reoffer {
            match code {
                100..=199 => {}
                200..=299 => {
                    let ack = ack_2xx(d, &msg, self.local);
                    self.tx.send_raw(&ack, d.peer);
                    d.last_ack = Some(ack);
                    d.our_reoffer = None;
                    self.events.push_back(UaEvent::ReofferAnswered { call, sdp: msg.body });
                }
                491 => {
                    // Glare: try again after a random wait (RFC 3261 §14.1).
                    let (_, sdp, _) = d.our_reoffer.take().expect("is_reoffer");
                    let ms = if d.role == Role::Uac { 2100 + rand_ms(1900) } else { rand_ms(2000) };
                    d.glare_retry = Some((now + Duration::from_millis(ms), sdp));
                }
                _ => {
                    d.our_reoffer = None;
                    self.events.push_back(UaEvent::ReofferFailed { call, code });
                }
            }
            return;
        }
        if d.role != Role::Uac {
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
                if first && d.cancel_wanted && d.state == State::Early {
                    let cancel = cancel_for(&d.invite);
                    let peer = d.peer;
                    self.tx.send_request(cancel, peer, now);
                    return;
                }
                let sdp = (!msg.body.is_empty()).then(|| msg.body.clone());
                if d.state == State::Early {
                    self.events.push_back(UaEvent::Progress { call, code, sdp });
                }
            }
            200..=299 => {
                if d.state == State::Confirmed {
                    // A retransmitted 2xx: our ACK was lost.
                    if let Some(ack) = &d.last_ack {
                        self.tx.send_raw(ack, d.peer);
                    }
                    return;
                }
                d.remote_tag = msg.to_tag().map(str::to_string);
                if let Some(c) = msg.contact_uri() {
                    d.remote_target = c;
                }
                d.route_set = msg.headers_named("Record-Route").map(str::to_string).collect::<Vec<_>>();
                d.route_set.reverse();
                d.state = State::Confirmed;
                let ack = ack_2xx(d, &msg, self.local);
                self.tx.send_raw(&ack, d.peer);
                d.last_ack = Some(ack);
                if d.cancel_wanted {
                    // The answer crossed our CANCEL: the call is up, so end it.
                    self.send_bye(call, now);
                    self.events.push_back(UaEvent::Failed { call, code: 487, reason: "Request Terminated".into() });
                    self.forget(call);
                } else {
                    self.events.push_back(UaEvent::Answered { call, sdp: msg.body });
                }
            }
            _ => {
                if d.state == State::Early {
                    let reason = match &msg.start {
                        crate::message::StartLine::Response { reason, .. } => reason.clone(),
                        _ => String::new(),
                    };
                    self.events.push_back(UaEvent::Failed { call, code, reason });
                    self.forget(call);
                }
            }
        }
    }

    fn stray_2xx(&mut self, msg: &Message) {
        let Some(contact) = msg.contact_uri() else { return };
        let Some(addr) = sip_uri_addr(&contact) else { return };
        let n = msg.cseq().map(|c| c.0).unwrap_or(1);
        for (method, seq) in [(Method::Ack, n), (Method::Bye, n + 1)] {
            let mut m = Message::request(method.clone(), contact.clone());
            m.push("Via", self.via(&new_branch()));
            m.push("Max-Forwards", "70");
            m.push("From", msg.header("From").unwrap_or(""));
            m.push("To", msg.header("To").unwrap_or(""));
            m.push("Call-ID", msg.call_id());
            m.push("CSeq", format!("{seq} {}", method.as_str()));
            self.tx.send_raw(&m, addr);
        }
    }

    fn on_request(&mut self, msg: Message, from: SocketAddr, now: Instant) {
        let method = msg.method().cloned().unwrap_or(Method::Other(String::new()));
        let known = self.call_of(&msg);
        match (method, known) {
            (Method::Invite, None) if msg.to_tag().is_none() => self.new_incoming(msg, from),
            (Method::Invite, Some(call)) => {
                let d = self.calls.get_mut(&call).expect("known");
                if msg.to_tag().is_none() {
                    return; // a retransmission of the initial INVITE, absorbed below us
                }
                if d.our_reoffer.is_some() || d.their_reoffer.is_some() || d.state == State::Early {
                    // Glare: both sides offered at once (RFC 3261 §14.2).
                    let r = response_to(&msg, 491, Some(&d.local_tag));
                    self.tx.respond(&msg, r, now);
                    return;
                }
                if let Some(c) = msg.contact_uri() {
                    d.remote_target = c;
                }
                d.their_reoffer = Some(msg.clone());
                self.events.push_back(UaEvent::Reoffer { call, sdp: msg.body });
            }
            (Method::Ack, Some(call)) => {
                let d = self.calls.get_mut(&call).expect("known");
                if d.pending_2xx.take().is_some() && d.state == State::Accepted {
                    d.state = State::Confirmed;
                    self.events.push_back(UaEvent::Confirmed { call });
                }
            }
            (Method::Ack, None) => {}
            (Method::Bye, Some(call)) => {
                let tag = self.calls[&call].local_tag.clone();
                let r = response_to(&msg, 200, Some(&tag));
                self.tx.respond(&msg, r, now);
                self.events.push_back(UaEvent::Ended { call, remote: true });
                self.forget(call);
            }
            (Method::Cancel, Some(call)) => {
                let r = response_to(&msg, 200, None);
                self.tx.respond(&msg, r, now);
                let d = &self.calls[&call];
                if d.role == Role::Uas && d.state == State::Early {
                    let invite = d.invite.clone();
                    let r487 = response_to(&invite, 487, Some(&d.local_tag));
                    self.tx.respond(&invite, r487, now);
                    self.events.push_back(UaEvent::Ended { call, remote: true });
                    self.forget(call);
                }
            }
            (Method::Options | Method::Info, _) => {
                let mut r = response_to(&msg, 200, Some(&tag()));
                r.push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
                self.tx.respond(&msg, r, now);
            }
            (_, _) => {
                let code = if msg.to_tag().is_some() { 481 } else { 501 };
                let r = response_to(&msg, code, Some(&tag()));
                self.tx.respond(&msg, r, now);
            }
        }
    }

    fn new_incoming(&mut self, msg: Message, from: SocketAddr) {
        self.next_ref += 1;
        let call = self.next_ref;
        let from_user = msg.header("From").map(uri_of).and_then(|u| uri_user(&u).map(str::to_string)).unwrap_or_default();
        let to_user = msg
            .uri()
            .and_then(uri_user)
            .map(str::to_string)
            .or_else(|| msg.header("To").map(uri_of).and_then(|u| uri_user(&u).map(str::to_string)))
            .unwrap_or_default();
        let headers = msg.headers.iter().filter(|(n, _)| n.starts_with("X-")).cloned().collect();
        let remote_with_tag = msg.header("From").unwrap_or("").to_string();
        let remote_uri = remote_with_tag.split(";tag=").next().unwrap_or("").to_string();
        let local_uri = msg.header("To").unwrap_or("").to_string();
        let mut route_set: Vec<String> = msg.headers_named("Record-Route").map(str::to_string).collect();
        route_set.retain(|r| !r.is_empty());
        let d = Dialog {
            role: Role::Uas,
            state: State::Early,
            call_id: msg.call_id().to_string(),
            local_tag: tag(),
            remote_tag: msg.from_tag().map(str::to_string),
            local_uri,
            remote_uri,
            remote_target: msg.contact_uri().unwrap_or_else(|| format!("sip:{from}")),
            route_set,
            peer: from,
            local_cseq: 0,
            invite: msg.clone(),
            cancel_wanted: false,
            got_provisional: false,
            pending_2xx: None,
            last_ack: None,
            our_reoffer: None,
            glare_retry: None,
            their_reoffer: None,
        };
        self.by_call_id.insert(d.call_id.clone(), call);
        self.calls.insert(call, d);
        self.events.push_back(UaEvent::Incoming { call, from_user, to_user, sdp: msg.body, headers });
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = self
            .calls
            .values()
            .flat_map(|d| [d.pending_2xx.as_ref().map(|p| p.at.min(p.deadline)), d.glare_retry.as_ref().map(|g| g.0)])
            .flatten();
        own.chain(self.tx.poll_timeout()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain(now);
        let t2 = self.tx.timers().t2;
        let mut dead = Vec::new();
        let mut retries = Vec::new();
        for (call, d) in self.calls.iter_mut() {
            if let Some(p) = &mut d.pending_2xx {
                if now >= p.deadline {
                    // No ACK ever came: the call cannot stand (RFC 3261 §13.3.1.4).
                    dead.push(*call);
                } else if now >= p.at {
                    self.tx.send_raw(&p.msg, d.peer);
                    p.interval = (p.interval * 2).min(t2);
                    p.at = now + p.interval;
                }
            }
            if let Some((at, _)) = &d.glare_retry {
                if now >= *at {
                    let (_, sdp) = d.glare_retry.take().expect("checked");
                    retries.push((*call, sdp));
                }
            }
        }
        for call in dead {
            self.send_bye(call, now);
            self.events.push_back(UaEvent::Ended { call, remote: true });
            self.forget(call);
        }
        for (call, sdp) in retries {
            self.reoffer(call, &sdp, now);
        }
    }

    /// Calls the UA still tracks, for tests and metrics.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }
}

fn local_side(d: &Dialog) -> String {
    strip_tag(&d.local_uri)
}

fn remote_side(d: &Dialog) -> String {
    strip_tag(&d.remote_uri)
}

fn strip_tag(v: &str) -> String {
    v.split(";tag=").next().unwrap_or(v).to_string()
}

fn rand_ms(max: u64) -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..max.max(1))
}

/// `sip:user@1.2.3.4:5060;x` -> 1.2.3.4:5060 (5060 when no port).
pub fn sip_uri_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:")?;
    let host = rest.rsplit('@').next()?.split(';').next()?;
    host.parse().ok().or_else(|| format!("{host}:5060").parse().ok())
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
    c.push("CSeq", format!("{} CANCEL", invite.cseq().map(|c| c.0).unwrap_or(1)));
    c
}

/// The ACK for a 2xx: a new transaction-less request in the dialog.
fn ack_2xx(d: &Dialog, resp: &Message, local: SocketAddr) -> Message {
    let n = resp.cseq().map(|c| c.0).unwrap_or(1);
    let mut ack = Message::request(Method::Ack, d.remote_target.clone());
    ack.push("Via", format!("SIP/2.0/UDP {local};branch={};rport", new_branch()));
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
