//! The call controller: one per call, sans-IO.
//!
//! It holds the call's record and decides, from what the carrier leg (SIP),
//! the agent (answer, reject, hang up), the ACD and the clock say, what must
//! happen: which `dialStatus` every tab of the agent gets, what the agent
//! state machine hears, what the carrier leg must do, when the record is
//! written. The shell (`seatline-server`'s call task) owns the sockets and
//! carries the actions out.

use crate::outcome::reason_for_sip;
use crate::record::{CallRecord, Direction, HungUpBy};
use seatline_agent::AgentInput;
use seatline_protocol::DialStatus;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the carrier leg reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipEvent {
    /// Our INVITE was answered (outbound).
    Answered,
    /// Our INVITE got a final failure, or no answer at all (408).
    Failed { code: u16 },
    /// The far end hung up or cancelled.
    Ended,
}

/// What the agent asked for, from a tab or the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCommand {
    Answer,
    Reject,
    HangUp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this `dialStatus` content to every tab of the seat.
    /// (Boxed: actions are queued and moved; most are small.)
    Dial { seat: i64, content: Box<DialStatus> },
    /// Feed the seat's agent state machine.
    Agent { seat: i64, input: AgentInput },
    /// Find the next available agent (not in `tried`) and assign the call
    /// to them (or, ring-all, every available agent of the group); answer
    /// with [`CallController::agents_picked`].
    PickAgent { tried: Vec<i64> },
    /// Inbound: tell the carrier the call is ringing (180).
    RingCarrier,
    /// Inbound to a DID with a menu (IVR): answer the carrier and play the
    /// menu's prompt; the switchboard reads the caller's digits and answers
    /// with [`CallController::menu_chosen`].
    AnswerMenu,
    /// Inbound: the caller chose nothing in the menu in time (or chose
    /// wrong too often); the switchboard takes the menu's default choice
    /// or ends the call.
    MenuExpired,
    /// Inbound: answer the carrier (200 with our SDP) and bridge the audio.
    AnswerCarrier { seat: i64 },
    /// Inbound: no agent can take the call now and its group queues: the
    /// caller waits (answered the first time, so it hears the group's
    /// music) until [`CallController::retry`] or the wait runs out.
    Queue,
    /// Inbound, answered to wait: the agent took it; stop the music and
    /// bridge the agent's audio (no second answer to the carrier).
    BridgeWaiting { seat: i64 },
    /// Inbound: the caller waited the group's whole maximum; the switchboard
    /// moves the call on ([`CallController::overflow_to`]) or ends it
    /// ([`CallController::end_locally`]).
    Overflow,
    /// Inbound: refuse the carrier's call with this final status.
    RefuseCarrier { code: u16 },
    /// End the carrier leg: CANCEL while it rings, BYE once up.
    HangUpCarrier,
    /// Take the agent's audio bridge down.
    Unbridge { seat: i64 },
    /// Write the call record (insert or update).
    Save,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inbound: answered, the caller is choosing in the DID's menu.
    Menu,
    /// Outbound: placed, not answered. Inbound: offered to an agent (or
    /// looking for one).
    Ringing,
    /// Inbound: waiting in its group's queue for an agent.
    Queued,
    Connected,
    Ended,
}

#[derive(Debug)]
pub struct CallController {
    record: CallRecord,
    seat: Option<i64>,
    /// Inbound, ring-all: the other seats the offer rings at the same time
    /// as `seat`. The first to answer takes the call; the rest stop ringing.
    also_ringing: Vec<i64>,
    state: State,
    tried: Vec<i64>,
    ring_timeout: Duration,
    ring_until: Option<Instant>,
    /// How long the caller may wait in the queue (`None`: no queue, 480
    /// when nobody can take the call), and until when it may, once queued.
    max_wait: Option<Duration>,
    wait_until: Option<Instant>,
    /// The carrier leg was answered so the caller could wait.
    answered_to_wait: bool,
    /// Inbound, in a menu: until when the caller may choose.
    menu_until: Option<Instant>,
    actions: VecDeque<Action>,
}

impl CallController {
    /// An outbound call the shell has just placed for `seat` (the agent
    /// state machine already heard `Dial`).
    pub fn outbound(record: CallRecord, seat: i64) -> Self {
        let mut c = Self::new(record, Some(seat), Duration::ZERO);
        c.dial(0);
        c.actions.push_back(Action::Save);
        c
    }

    /// An inbound call the carrier delivered to one of our DIDs.
    pub fn inbound(record: CallRecord, ring_timeout: Duration) -> Self {
        let mut c = Self::new(record, None, ring_timeout);
        c.actions.push_back(Action::RingCarrier);
        c.actions.push_back(Action::PickAgent { tried: Vec::new() });
        c
    }

    /// An inbound call to a DID with a menu: answered at once; the caller
    /// has `menu_timeout` from `now` to choose.
    pub fn inbound_menu(
        record: CallRecord,
        ring_timeout: Duration,
        menu_timeout: Duration,
        now: Instant,
    ) -> Self {
        let mut c = Self::new(record, None, ring_timeout);
        c.state = State::Menu;
        c.answered_to_wait = true;
        c.menu_until = Some(now + menu_timeout);
        c.actions.push_back(Action::AnswerMenu);
        c.actions.push_back(Action::Save);
        c
    }

    /// Inbound: how long each offer rings an agent from now on (the group's
    /// time, once a menu or an overflow chose the group).
    pub fn set_ring_timeout(&mut self, ring_timeout: Duration) {
        self.ring_timeout = ring_timeout;
    }

    /// Whether the caller is choosing in a menu now.
    pub fn in_menu(&self) -> bool {
        self.state == State::Menu
    }

    /// The caller chose in the menu (the switchboard set the call's group):
    /// the call looks for an agent there as any inbound call does, having
    /// been answered already (a queue keeps it, an agent who answers is
    /// bridged without a second answer).
    pub fn menu_chosen(&mut self) {
        if self.state != State::Menu {
            return;
        }
        self.menu_until = None;
        self.state = State::Ringing;
        self.actions
            .push_back(Action::PickAgent { tried: Vec::new() });
    }

    fn new(record: CallRecord, seat: Option<i64>, ring_timeout: Duration) -> Self {
        Self {
            record,
            seat,
            also_ringing: Vec::new(),
            state: State::Ringing,
            tried: Vec::new(),
            ring_timeout,
            ring_until: None,
            max_wait: None,
            wait_until: None,
            answered_to_wait: false,
            menu_until: None,
            actions: VecDeque::new(),
        }
    }

    pub fn record(&self) -> &CallRecord {
        &self.record
    }

    /// The call moved to another trunk (failover): the record says which.
    pub fn set_trunk(&mut self, name: String) {
        self.record.trunk = Some(name);
    }

    pub fn seat(&self) -> Option<i64> {
        self.seat
    }

    /// Whether this call is the seat's: connected or placed there, or an
    /// offer ringing there (alone or among others).
    pub fn involves(&self, seat: i64) -> bool {
        self.seat == Some(seat) || self.also_ringing.contains(&seat)
    }

    /// Every seat an inbound offer rings now (one, or several for ring-all).
    pub fn ringing_seats(&self) -> Vec<i64> {
        if self.state != State::Ringing {
            return Vec::new();
        }
        self.seat
            .into_iter()
            .chain(self.also_ringing.iter().copied())
            .collect()
    }

    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether an inbound call is still looking for (or ringing, or
    /// waiting for) an agent.
    pub fn is_offering(&self) -> bool {
        self.record.direction == Direction::Inbound
            && matches!(self.state, State::Ringing | State::Queued)
    }

    /// Whether the caller waits in a queue now (no agent is ringing).
    pub fn is_queued(&self) -> bool {
        self.state == State::Queued
    }

    /// Inbound: how long the caller may wait for an agent of its group
    /// once none is free (`None` or zero: no waiting, 480 at once). Set
    /// before the first pick, and again by [`Self::overflow_to`].
    pub fn set_max_wait(&mut self, max_wait: Option<Duration>) {
        self.max_wait = max_wait.filter(|d| !d.is_zero());
    }

    /// A queued call's turn may have come (an agent of its group is free):
    /// the ACD is asked again, every agent eligible anew.
    pub fn retry(&mut self) {
        if self.state != State::Queued {
            return;
        }
        self.state = State::Ringing;
        self.tried.clear();
        self.actions
            .push_back(Action::PickAgent { tried: Vec::new() });
    }

    /// After [`Action::Overflow`]: the call waits again, in another group,
    /// for that group's maximum (`None`: not at all) from `now`.
    pub fn overflow_to(&mut self, max_wait: Option<Duration>, now: Instant) {
        if self.state != State::Queued {
            return;
        }
        self.set_max_wait(max_wait);
        self.wait_until = self.max_wait.map(|d| now + d);
        self.retry();
    }

    fn call(&self) -> String {
        self.record.call_id.clone()
    }

    fn dial(&mut self, code: i64) {
        if let Some(seat) = self.seat {
            self.actions.push_back(Action::Dial {
                seat,
                content: Box::new(self.record.dial_status(code)),
            });
        }
    }

    fn agent(&mut self, input: AgentInput) {
        if let Some(seat) = self.seat {
            self.actions.push_back(Action::Agent { seat, input });
        }
    }

    /// The ACD's answer to [`Action::PickAgent`]: the agent now ringing, or none.
    pub fn agent_picked(&mut self, seat: Option<i64>, now: Instant, now_ms: i64) {
        self.agents_picked(seat.into_iter().collect(), now, now_ms);
    }

    /// The ACD's answer to [`Action::PickAgent`]: the agents now ringing
    /// (several when the group rings all), or none. The first one is the
    /// record's agent until someone answers.
    pub fn agents_picked(&mut self, seats: Vec<i64>, now: Instant, now_ms: i64) {
        if self.state != State::Ringing {
            return;
        }
        match seats.split_first() {
            Some((&first, rest)) => {
                self.tried.extend(&seats);
                self.seat = Some(first);
                self.also_ringing = rest.to_vec();
                self.ring_until = Some(now + self.ring_timeout);
                for seat in seats {
                    self.actions.push_back(Action::Dial {
                        seat,
                        content: Box::new(self.record.dial_status(1)),
                    });
                }
                self.actions.push_back(Action::Save);
            }
            None if self.max_wait.is_some() => {
                self.state = State::Queued;
                let until = *self
                    .wait_until
                    .get_or_insert_with(|| now + self.max_wait.unwrap_or_default());
                if now >= until {
                    self.wait_until = None;
                    self.actions.push_back(Action::Overflow);
                } else {
                    self.answered_to_wait = true;
                    self.actions.push_back(Action::Queue);
                }
            }
            None if self.answered_to_wait => {
                // Overflowed to nowhere that queues: the waiting ends here.
                self.state = State::Queued;
                self.actions.push_back(Action::Overflow);
            }
            None => {
                // Nobody can take it: the carrier hears 480, the record says so.
                self.record.hangup_ms = Some(now_ms);
                self.record.ended_by(HungUpBy::System);
                self.record.sip_code = Some(480);
                self.state = State::Ended;
                self.actions.push_back(Action::RefuseCarrier { code: 480 });
                self.actions.push_back(Action::Save);
            }
        }
    }

    /// The offer stops ringing at every seat but the one that keeps it
    /// (answered, or the call ended there): each hears the call ended
    /// (`dialStatus` 5, back to the status before it rang).
    fn release_others(&mut self, now_ms: i64) {
        let call = self.call();
        let mut gone = self.record.clone();
        gone.hangup_ms.get_or_insert(now_ms);
        for seat in std::mem::take(&mut self.also_ringing) {
            self.actions.push_back(Action::Agent {
                seat,
                input: AgentInput::Ended { call: call.clone() },
            });
            self.actions.push_back(Action::Dial {
                seat,
                content: Box::new(gone.dial_status(5)),
            });
        }
    }

    /// Ring-all: one of several ringing seats drops out (rejected, or its
    /// agent's side was lost); the offer rings on at the others. False when
    /// the seat is the only one ringing (the caller moves on instead).
    fn drop_ringing(&mut self, seat: i64, input: AgentInput, now_ms: i64) -> bool {
        if self.state != State::Ringing || self.also_ringing.is_empty() {
            return false;
        }
        if self.seat == Some(seat) {
            self.seat = Some(self.also_ringing.remove(0));
        } else if let Some(i) = self.also_ringing.iter().position(|&s| s == seat) {
            self.also_ringing.remove(i);
        } else {
            return false;
        }
        let mut gone = self.record.clone();
        gone.hangup_ms = Some(now_ms);
        self.actions.push_back(Action::Agent { seat, input });
        self.actions.push_back(Action::Dial {
            seat,
            content: Box::new(gone.dial_status(5)),
        });
        true
    }

    /// Ring-all: the agent of a seat that rings can no longer take the call
    /// (every tab gone): it stops ringing there. False when that seat is the
    /// only one ringing, or not ringing at all.
    pub fn drop_seat(&mut self, seat: i64, now_ms: i64) -> bool {
        let call = self.call();
        self.drop_ringing(seat, AgentInput::Ended { call }, now_ms)
    }

    /// The ringing inbound call leaves its agent (rejected or not answered in time).
    fn next_agent(&mut self, rejected: bool, now_ms: i64) {
        self.release_others(now_ms);
        let call = self.call();
        self.agent(if rejected {
            AgentInput::Rejected { call }
        } else {
            AgentInput::Ended { call }
        });
        if let Some(seat) = self.seat {
            let mut gone = self.record.clone();
            gone.hangup_ms = Some(now_ms);
            self.actions.push_back(Action::Dial {
                seat,
                content: Box::new(gone.dial_status(5)),
            });
        }
        self.seat = None;
        self.ring_until = None;
        self.actions.push_back(Action::PickAgent {
            tried: self.tried.clone(),
        });
    }

    pub fn handle_sip(&mut self, ev: SipEvent, now_ms: i64) {
        if self.state == State::Ended {
            return;
        }
        match ev {
            SipEvent::Answered if self.state == State::Ringing => {
                self.state = State::Connected;
                self.record.connected_ms = Some(now_ms);
                self.agent(AgentInput::Answered { call: self.call() });
                self.dial(2);
                self.actions.push_back(Action::Save);
            }
            SipEvent::Answered => {}
            SipEvent::Failed { code } => {
                self.record.sip_code = Some(code);
                self.record
                    .ended_by(if code == 408 || (500..600).contains(&code) {
                        HungUpBy::Carrier
                    } else {
                        HungUpBy::Customer
                    });
                self.hang_up_with(reason_for_sip(code).map(|r| r as u16), now_ms);
                self.end();
            }
            SipEvent::Ended => {
                self.record.hangup_ms = Some(now_ms);
                self.record.ended_by(HungUpBy::Customer);
                self.dial(5);
                self.end();
            }
        }
    }

    /// The call is over: the tabs get the reason (if any) then 5 with it as
    /// `hangupCode`, or just 5; the record keeps the time.
    fn hang_up_with(&mut self, reason: Option<u16>, now_ms: i64) {
        match reason {
            Some(reason) => {
                let msgs = self.record.failure_messages(reason, now_ms);
                if let Some(seat) = self.seat {
                    for content in msgs {
                        self.actions.push_back(Action::Dial {
                            seat,
                            content: Box::new(content),
                        });
                    }
                }
            }
            None => {
                self.record.hangup_ms = Some(now_ms);
                self.dial(5);
            }
        }
    }

    fn end(&mut self) {
        let now_ms = self.record.hangup_ms.unwrap_or(self.record.start_ms);
        self.release_others(now_ms);
        let call = self.call();
        self.agent(AgentInput::Ended { call });
        if let Some(seat) = self.seat {
            self.actions.push_back(Action::Unbridge { seat });
        }
        self.state = State::Ended;
        self.actions.push_back(Action::Save);
    }

    /// Ends the call from our side at once, whatever its state: the server
    /// stops (no reason), the carrier went silent (800), the agent's side was
    /// lost (801). The tabs get the reason (if any) then 5, the record is
    /// closed, and the carrier leg is ended (CANCEL/BYE, or a refusal while
    /// an inbound call still looks for an agent).
    pub fn end_locally(&mut self, reason: Option<u16>, now_ms: i64) {
        if self.state == State::Ended {
            return;
        }
        let carrier = match (self.record.direction, self.state) {
            (Direction::Inbound, State::Ringing | State::Queued) if !self.answered_to_wait => {
                Action::RefuseCarrier { code: 480 }
            }
            _ => Action::HangUpCarrier,
        };
        self.actions.push_back(carrier);
        self.record.ended_by(HungUpBy::System);
        self.hang_up_with(reason, now_ms);
        self.ring_until = None;
        self.wait_until = None;
        self.menu_until = None;
        self.end();
    }

    pub fn handle_agent(&mut self, cmd: AgentCommand, now_ms: i64) {
        if let Some(seat) = self.seat {
            self.handle_agent_at(seat, cmd, now_ms);
        }
    }

    /// A command from the agent of `seat`: the call's agent, or, while a
    /// ring-all offer rings, any of the seats it rings.
    pub fn handle_agent_at(&mut self, from: i64, cmd: AgentCommand, now_ms: i64) {
        if !self.involves(from) {
            return;
        }
        let ringing = self.record.direction == Direction::Inbound && self.state == State::Ringing;
        if ringing && matches!(cmd, AgentCommand::Reject | AgentCommand::HangUp) {
            let call = self.call();
            if self.drop_ringing(from, AgentInput::Rejected { call }, now_ms) {
                return;
            }
        }
        if ringing && cmd == AgentCommand::Answer && self.seat != Some(from) {
            // Ring-all: the seat that answers first becomes the call's.
            let i = self.also_ringing.iter().position(|&s| s == from);
            if let (Some(i), Some(first)) = (i, self.seat) {
                self.also_ringing[i] = first;
                self.seat = Some(from);
            }
        }
        if self.seat != Some(from) {
            return;
        }
        match (cmd, self.record.direction, self.state) {
            (AgentCommand::Answer, Direction::Inbound, State::Ringing) => {
                let Some(seat) = self.seat else { return };
                self.release_others(now_ms);
                self.state = State::Connected;
                self.ring_until = None;
                self.record.connected_ms = Some(now_ms);
                self.actions.push_back(if self.answered_to_wait {
                    Action::BridgeWaiting { seat }
                } else {
                    Action::AnswerCarrier { seat }
                });
                self.agent(AgentInput::Answered { call: self.call() });
                self.dial(2);
                self.actions.push_back(Action::Save);
            }
            // Hanging up a ringing inbound call is rejecting it.
            (AgentCommand::Reject | AgentCommand::HangUp, Direction::Inbound, State::Ringing)
                if self.seat.is_some() =>
            {
                self.next_agent(true, now_ms);
            }
            (AgentCommand::HangUp, _, State::Ringing | State::Connected) => {
                self.record.ended_by(HungUpBy::Agent);
                // The carrier leg reports the end (487 after CANCEL, or at once after BYE).
                self.actions.push_back(Action::HangUpCarrier);
            }
            _ => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Queued => self.wait_until,
            State::Menu => self.menu_until,
            _ => self.ring_until,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, now_ms: i64) {
        if self.ring_until.is_some_and(|t| now >= t) && self.state == State::Ringing {
            self.next_agent(false, now_ms);
        }
        // The wait ran out while nobody rang: the switchboard moves it on.
        // (Ringing an agent then, it waits for that offer's end first.)
        if self.state == State::Queued && self.wait_until.is_some_and(|t| now >= t) {
            self.wait_until = None;
            self.actions.push_back(Action::Overflow);
        }
        if self.state == State::Menu && self.menu_until.is_some_and(|t| now >= t) {
            self.menu_until = None;
            self.actions.push_back(Action::MenuExpired);
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(c: &mut CallController) -> Vec<Action> {
        std::iter::from_fn(|| c.poll_action()).collect()
    }

    fn dial_codes(a: &[Action]) -> Vec<(i64, i64)> {
        a.iter()
            .filter_map(|a| match a {
                Action::Dial { seat, content } => Some((*seat, content.code)),
                _ => None,
            })
            .collect()
    }

    fn outbound() -> CallController {
        let r = CallRecord::new(
            "c1".into(),
            Direction::Outbound,
            "12025550170".into(),
            "12025550100".into(),
            1_000,
        );
        CallController::outbound(r, 7)
    }

    fn inbound() -> CallController {
        let mut r = CallRecord::new(
            "c2".into(),
            Direction::Inbound,
            "14155550111".into(),
            "12025550170".into(),
            1_000,
        );
        r.other = "{\"ticket\":1}".into();
        CallController::inbound(r, Duration::from_secs(20))
    }

    #[test]
    fn outbound_rings_connects_and_ends() {
        let mut c = outbound();
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(7, 0)]);
        assert!(a.contains(&Action::Save));
        c.handle_sip(SipEvent::Answered, 2_000);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(7, 2)]);
        assert!(a.contains(&Action::Agent {
            seat: 7,
            input: AgentInput::Answered { call: "c1".into() }
        }));
        c.handle_agent(AgentCommand::HangUp, 3_000);
        assert_eq!(actions(&mut c), vec![Action::HangUpCarrier]);
        c.handle_sip(SipEvent::Ended, 3_010);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(7, 5)]);
        assert!(a.contains(&Action::Unbridge { seat: 7 }));
        assert!(c.is_ended());
        assert_eq!(
            (c.record().connected_ms, c.record().hangup_ms),
            (Some(2_000), Some(3_010))
        );
        // Late news changes nothing.
        c.handle_sip(SipEvent::Ended, 4_000);
        assert!(actions(&mut c).is_empty());
    }

    #[test]
    fn outbound_failures_give_the_reason_then_5_or_just_5() {
        for (code, want, hangup) in [
            (404, vec![812, 5], Some(812)),
            (503, vec![800, 5], Some(800)),
            (403, vec![819, 5], Some(819)),
            (486, vec![5], None),
            (487, vec![5], None),
        ] {
            let mut c = outbound();
            actions(&mut c);
            c.handle_sip(SipEvent::Failed { code }, 2_000);
            let a = actions(&mut c);
            let codes: Vec<i64> = dial_codes(&a).into_iter().map(|d| d.1).collect();
            assert_eq!(codes, want, "SIP {code}");
            assert_eq!(c.record().hangup_code, hangup);
            assert_eq!(c.record().sip_code, Some(code));
            assert!(a.contains(&Action::Agent {
                seat: 7,
                input: AgentInput::Ended { call: "c1".into() }
            }));
        }
    }

    #[test]
    fn inbound_rings_an_agent_and_is_answered() {
        let mut c = inbound();
        assert_eq!(
            actions(&mut c),
            vec![Action::RingCarrier, Action::PickAgent { tried: vec![] }]
        );
        let t = Instant::now();
        c.agent_picked(Some(3), t, 1_100);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 1)]);
        if let Action::Dial { content, .. } = &a[0] {
            assert_eq!(
                (content.direction, content.other.as_str()),
                (0, "{\"ticket\":1}")
            );
        }
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(20)));
        c.handle_agent(AgentCommand::Answer, 1_500);
        let a = actions(&mut c);
        assert_eq!(a[0], Action::AnswerCarrier { seat: 3 });
        assert_eq!(dial_codes(&a), vec![(3, 2)]);
        assert_eq!(c.poll_timeout(), None);
        c.handle_sip(SipEvent::Ended, 9_000);
        assert_eq!(dial_codes(&actions(&mut c)), vec![(3, 5)]);
    }

    #[test]
    fn inbound_goes_to_the_next_agent_on_ring_timeout_and_on_reject_then_480() {
        let mut c = inbound();
        actions(&mut c);
        let t = Instant::now();
        c.agent_picked(Some(3), t, 0);
        actions(&mut c);
        // Not answered in time: agent 3 hears 5 and goes back to idle; the next is asked for.
        c.handle_timeout(t + Duration::from_secs(19), 0);
        assert!(actions(&mut c).is_empty(), "not before the ring timeout");
        c.handle_timeout(t + Duration::from_secs(20), 0);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 5)]);
        assert!(a.contains(&Action::Agent {
            seat: 3,
            input: AgentInput::Ended { call: "c2".into() }
        }));
        assert_eq!(a.last(), Some(&Action::PickAgent { tried: vec![3] }));
        c.agent_picked(Some(4), t, 0);
        actions(&mut c);
        // Agent 4 rejects: wrap-up for them (Rejected), and the ACD is asked again.
        c.handle_agent(AgentCommand::Reject, 0);
        let a = actions(&mut c);
        assert!(a.contains(&Action::Agent {
            seat: 4,
            input: AgentInput::Rejected { call: "c2".into() }
        }));
        assert_eq!(a.last(), Some(&Action::PickAgent { tried: vec![3, 4] }));
        c.agent_picked(None, t, 5_000);
        let a = actions(&mut c);
        assert_eq!(a[0], Action::RefuseCarrier { code: 480 });
        assert!(c.is_ended());
        assert_eq!(c.record().sip_code, Some(480));
    }

    #[test]
    fn the_caller_giving_up_while_it_rings_ends_it_for_the_agent() {
        let mut c = inbound();
        actions(&mut c);
        c.agent_picked(Some(3), Instant::now(), 0);
        actions(&mut c);
        c.handle_sip(SipEvent::Ended, 2_000);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 5)]);
        assert!(c.is_ended());
        // An answer that comes too late does nothing.
        c.handle_agent(AgentCommand::Answer, 2_100);
        assert!(actions(&mut c).is_empty());
    }

    fn queued_inbound() -> CallController {
        let mut c = inbound();
        c.set_max_wait(Some(Duration::from_secs(60)));
        actions(&mut c);
        c
    }

    #[test]
    fn a_call_nobody_can_take_waits_in_the_queue_and_the_next_free_agent_takes_it() {
        let mut c = queued_inbound();
        let t = Instant::now();
        c.agent_picked(None, t, 1_000);
        assert_eq!(actions(&mut c), vec![Action::Queue]);
        assert!(c.is_queued() && c.is_offering() && !c.is_ended());
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(60)));
        // Nothing happens before its turn or the end of its wait.
        c.handle_timeout(t + Duration::from_secs(59), 0);
        assert!(actions(&mut c).is_empty());
        c.retry();
        assert_eq!(actions(&mut c), vec![Action::PickAgent { tried: vec![] }]);
        c.agent_picked(Some(3), t + Duration::from_secs(30), 31_000);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 1)]);
        // Ringing an agent, the ring timeout counts, not the wait.
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(50)));
        c.handle_agent(AgentCommand::Answer, 35_000);
        let a = actions(&mut c);
        // Already answered to wait: only the bridge, never a second 200.
        assert_eq!(a[0], Action::BridgeWaiting { seat: 3 });
        assert!(!a.iter().any(|a| matches!(a, Action::AnswerCarrier { .. })));
        assert_eq!(dial_codes(&a), vec![(3, 2)]);
        assert_eq!(c.record().connected_ms, Some(35_000));
    }

    #[test]
    fn an_offer_that_rings_out_puts_the_caller_back_with_its_deadline_then_overflow() {
        let mut c = queued_inbound();
        let t = Instant::now();
        c.agent_picked(None, t, 0);
        actions(&mut c);
        c.retry();
        actions(&mut c);
        c.agent_picked(Some(3), t + Duration::from_secs(50), 0);
        actions(&mut c);
        // The wait ends while agent 3 rings: the offer runs its course.
        c.handle_timeout(t + Duration::from_secs(60), 0);
        assert!(dial_codes(&actions(&mut c)).is_empty());
        c.handle_timeout(t + Duration::from_secs(70), 0);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 5)]);
        assert_eq!(a.last(), Some(&Action::PickAgent { tried: vec![3] }));
        c.agent_picked(None, t + Duration::from_secs(70), 0);
        assert_eq!(actions(&mut c), vec![Action::Overflow]);
        // To a group that does not queue: nobody there either, so the
        // switchboard is asked again and ends it; the caller, answered to
        // wait, gets a BYE, never a 480.
        c.overflow_to(None, t + Duration::from_secs(70));
        assert_eq!(actions(&mut c), vec![Action::PickAgent { tried: vec![] }]);
        c.agent_picked(None, t + Duration::from_secs(70), 0);
        assert_eq!(actions(&mut c), vec![Action::Overflow]);
        c.end_locally(None, 70_000);
        let a = actions(&mut c);
        assert_eq!(a[0], Action::HangUpCarrier);
        assert!(c.is_ended());
        assert_eq!(c.record().hung_up_by, Some(HungUpBy::System));
        assert_eq!(c.record().connected_ms, None);
    }

    #[test]
    fn the_wait_running_out_in_the_queue_asks_for_overflow_once() {
        let mut c = queued_inbound();
        let t = Instant::now();
        c.agent_picked(None, t, 0);
        actions(&mut c);
        c.handle_timeout(t + Duration::from_secs(60), 0);
        assert_eq!(actions(&mut c), vec![Action::Overflow]);
        assert_eq!(c.poll_timeout(), None, "no deadline left to spin on");
        c.handle_timeout(t + Duration::from_secs(61), 0);
        assert!(actions(&mut c).is_empty());
        // Into a group that queues 30 s: a fresh deadline from now.
        c.overflow_to(Some(Duration::from_secs(30)), t + Duration::from_secs(61));
        actions(&mut c);
        c.agent_picked(None, t + Duration::from_secs(61), 0);
        assert_eq!(actions(&mut c), vec![Action::Queue]);
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(91)));
    }

    #[test]
    fn a_caller_who_hangs_up_in_the_queue_leaves_an_unanswered_record() {
        let mut c = queued_inbound();
        let t = Instant::now();
        c.agent_picked(None, t, 1_000);
        actions(&mut c);
        c.handle_sip(SipEvent::Ended, 43_000);
        let a = actions(&mut c);
        assert!(a.contains(&Action::Save));
        assert!(dial_codes(&a).is_empty(), "no agent hears of it");
        assert!(c.is_ended());
        let r = c.record();
        assert_eq!((r.connected_ms, r.hangup_ms), (None, Some(43_000)));
        assert_eq!(r.hung_up_by, Some(HungUpBy::Customer));
        // Its turn coming late changes nothing.
        c.retry();
        assert!(actions(&mut c).is_empty());
    }

    #[test]
    fn without_a_queue_nobody_free_is_still_480() {
        let mut c = inbound();
        c.set_max_wait(Some(Duration::ZERO));
        actions(&mut c);
        c.agent_picked(None, Instant::now(), 0);
        assert_eq!(actions(&mut c)[0], Action::RefuseCarrier { code: 480 });
    }

    #[test]
    fn ring_all_the_first_seat_to_answer_takes_it_and_the_others_stop_ringing() {
        let mut c = inbound();
        actions(&mut c);
        let t = Instant::now();
        c.agents_picked(vec![3, 4, 5], t, 1_100);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 1), (4, 1), (5, 1)]);
        assert_eq!(c.ringing_seats(), vec![3, 4, 5]);
        assert!(c.involves(4) && !c.involves(6));
        c.handle_agent_at(4, AgentCommand::Answer, 2_000);
        let a = actions(&mut c);
        assert!(a.contains(&Action::AnswerCarrier { seat: 4 }));
        let codes = dial_codes(&a);
        assert!(codes.contains(&(4, 2)) && codes.contains(&(3, 5)) && codes.contains(&(5, 5)));
        for seat in [3, 5] {
            assert!(a.contains(&Action::Agent {
                seat,
                input: AgentInput::Ended { call: "c2".into() }
            }));
        }
        assert_eq!(c.seat(), Some(4));
        assert!(!c.involves(3));
        // Late commands from the others change nothing.
        c.handle_agent_at(3, AgentCommand::Answer, 2_100);
        c.handle_agent_at(5, AgentCommand::HangUp, 2_100);
        assert!(actions(&mut c).is_empty());
    }

    #[test]
    fn ring_all_rejects_drop_seats_until_the_last_then_the_acd_is_asked_again() {
        let mut c = inbound();
        actions(&mut c);
        let t = Instant::now();
        c.agents_picked(vec![3, 4], t, 1_100);
        actions(&mut c);
        // The record's agent (the first seat) rejects: the other keeps ringing.
        c.handle_agent_at(3, AgentCommand::Reject, 1_500);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(3, 5)]);
        assert!(a.contains(&Action::Agent {
            seat: 3,
            input: AgentInput::Rejected { call: "c2".into() }
        }));
        assert_eq!(c.ringing_seats(), vec![4]);
        c.handle_agent_at(4, AgentCommand::Reject, 1_600);
        let a = actions(&mut c);
        assert_eq!(dial_codes(&a), vec![(4, 5)]);
        assert!(a.contains(&Action::PickAgent { tried: vec![3, 4] }));
        // A ring timeout with several ringing releases them all.
        c.agents_picked(vec![6, 7], t, 1_700);
        actions(&mut c);
        c.handle_timeout(t + Duration::from_secs(20), 21_700);
        let a = actions(&mut c);
        let mut codes = dial_codes(&a);
        codes.sort();
        assert_eq!(codes, vec![(6, 5), (7, 5)]);
        assert!(a.contains(&Action::PickAgent {
            tried: vec![3, 4, 6, 7]
        }));
    }
}
