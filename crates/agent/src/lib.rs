//! The agent state machine of `spec/agent-states.md`, as a sans-IO core.
//!
//! Owns: an agent's chosen status (codes 1..7), the system activities layered
//! on top of it (ringing, in call, wrap-up), the pre-call status a call
//! returns to, the wrap-up (ACW) timer, and whether the agent may be offered
//! an inbound call.
//!
//! Must never: touch a socket, a clock or a lock. Time comes in as `now`;
//! what the shell must do comes out of [`Agent::poll_event`]. Every rule is
//! tested in simulated time below.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use seatline_protocol::AgentStatusCode as Status;
use seatline_protocol::AgentView;

/// Per-seat (or per-group) settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentConfig {
    /// What a fresh softphone sign-in starts from: Idle or Busy.
    pub initial_status: Status,
    /// After-call work length; `None` or zero means no wrap-up.
    pub acw: Option<Duration>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            initial_status: Status::Idle,
            acw: None,
        }
    }
}

/// Who started the call the agent is busy with; the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Routed to the agent by the system (inbound, or auto-dialed).
    Assigned,
    /// The agent's own outbound call.
    Outbound,
}

/// What the system has layered on top of the chosen status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    None,
    Ringing {
        call: String,
        kind: CallKind,
    },
    InCall {
        call: String,
        kind: CallKind,
    },
    /// After-call work. `until` is `None` when no timer runs.
    WrapUp {
        until: Option<Instant>,
    },
}

impl Activity {
    pub fn name(&self) -> &'static str {
        match self {
            Activity::None => "none",
            Activity::Ringing { .. } => "ringing",
            Activity::InCall { .. } => "inCall",
            Activity::WrapUp { .. } => "wrapUp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentInput {
    /// A softphone session of the agent exists. `fresh`: a new sign-in
    /// (rule 3 applies when the agent was signed out); otherwise a session
    /// that outlived a server restart, which keeps the remembered status.
    SignIn { fresh: bool },
    /// The agent's last softphone session signed out.
    SignOut,
    /// Number of live tabs of the agent changed (0 means all closed).
    TabsOnline(usize),
    /// The agent picks a status in the UI (or the host through an extension).
    Pick(Status),
    /// The system assigns an inbound or auto-dialed call.
    Assign { call: String },
    /// The agent placed an outbound call.
    Dial { call: String },
    /// The agent (assigned call) or the callee (outbound call) answered.
    Answered { call: String },
    /// The agent rejected an assigned call while it rang.
    Rejected { call: String },
    /// The call ended, whoever hung up, answered or not.
    Ended { call: String },
}

/// Why an input was refused; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("the agent is not signed in")]
    NotSignedIn,
    #[error("the status cannot be changed while a call rings or is in progress")]
    BusyWithCall,
    #[error("the agent cannot take an assigned call now")]
    NotAvailable,
    #[error("no such call at this agent")]
    UnknownCall,
}

/// What the shell must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// The state every tab shows changed. Send it to every tab.
    Changed(AgentView),
}

#[derive(Debug)]
pub struct Agent {
    cfg: AgentConfig,
    signed_in: bool,
    tabs: usize,
    status: Status,
    pre_call: Status,
    activity: Activity,
    /// Since when the agent has been available, for longest-idle routing.
    idle_since: Option<Instant>,
    events: VecDeque<AgentEvent>,
}

impl Agent {
    /// An agent that is signed out; `status` is what the store remembered.
    pub fn new(cfg: AgentConfig, status: Option<Status>) -> Self {
        let status = status.unwrap_or(cfg.initial_status);
        Self {
            cfg,
            signed_in: false,
            tabs: 0,
            status,
            pre_call: status,
            activity: Activity::None,
            idle_since: None,
            events: VecDeque::new(),
        }
    }

    pub fn set_config(&mut self, cfg: AgentConfig) {
        self.cfg = cfg;
    }

    /// A new after-call work length for the calls that end from now on
    /// (a wrap-up under way keeps the length it started with).
    pub fn set_acw(&mut self, acw: Option<Duration>) {
        self.cfg.acw = acw;
    }

    pub fn view(&self) -> AgentView {
        AgentView {
            code: self.reported_code(),
            status: self.status,
            activity: self.activity.name().to_string(),
        }
    }

    /// The `agentStatus` code: the chosen status, or Busy during any activity.
    pub fn reported_code(&self) -> Status {
        if self.activity == Activity::None {
            self.status
        } else {
            Status::Busy
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    pub fn is_signed_in(&self) -> bool {
        self.signed_in
    }

    /// Rule 11 and rule 10: only a present, signed-in, idle agent is offered calls.
    pub fn available_since(&self) -> Option<Instant> {
        if self.signed_in
            && self.tabs > 0
            && self.activity == Activity::None
            && self.status == Status::Idle
        {
            self.idle_since
        } else {
            None
        }
    }

    pub fn handle(&mut self, input: AgentInput, now: Instant) -> Result<(), AgentError> {
        let before = self.view();
        self.apply(input, now)?;
        self.after_change(before, now);
        Ok(())
    }

    fn apply(&mut self, input: AgentInput, now: Instant) -> Result<(), AgentError> {
        match input {
            AgentInput::SignIn { fresh } => {
                if !self.signed_in {
                    // Rule 3: a fresh softphone sign-in starts from the initial status.
                    self.signed_in = true;
                    if fresh && self.activity == Activity::None {
                        self.status = self.cfg.initial_status;
                    }
                }
            }
            AgentInput::SignOut => {
                self.signed_in = false;
                if !matches!(
                    self.activity,
                    Activity::InCall { .. } | Activity::Ringing { .. }
                ) {
                    self.activity = Activity::None;
                }
                self.status = self.cfg.initial_status;
            }
            AgentInput::TabsOnline(n) => {
                // Rule 10: with no tab, the shown state stays; routing skips the agent.
                self.tabs = n;
                if n > 0 && self.idle_since.is_none() {
                    self.idle_since = Some(now);
                }
            }
            AgentInput::Pick(status) => {
                // Rule 1: any status, also out of wrap-up; not while ringing or in a call.
                self.require_signed_in()?;
                match self.activity {
                    Activity::Ringing { .. } | Activity::InCall { .. } => {
                        return Err(AgentError::BusyWithCall)
                    }
                    Activity::None | Activity::WrapUp { .. } => {}
                }
                self.activity = Activity::None;
                self.status = status;
            }
            AgentInput::Assign { call } => {
                // Rule 4 and 11: assigned calls only reach an available agent.
                if self.available_since().is_none() {
                    return Err(AgentError::NotAvailable);
                }
                self.pre_call = self.status;
                self.activity = Activity::Ringing {
                    call,
                    kind: CallKind::Assigned,
                };
            }
            AgentInput::Dial { call } => {
                // Rule 4: the agent's own call may start from any status, and from wrap-up.
                self.require_signed_in()?;
                if matches!(
                    self.activity,
                    Activity::Ringing { .. } | Activity::InCall { .. }
                ) {
                    return Err(AgentError::BusyWithCall);
                }
                self.pre_call = self.status;
                self.activity = Activity::Ringing {
                    call,
                    kind: CallKind::Outbound,
                };
            }
            AgentInput::Answered { call } => {
                // Rule 6.
                let kind = match &self.activity {
                    Activity::Ringing { call: c, kind } if *c == call => *kind,
                    _ => return Err(AgentError::UnknownCall),
                };
                self.activity = Activity::InCall { call, kind };
            }
            AgentInput::Rejected { call } => {
                // Rule 7: rejecting an assigned call goes to wrap-up when ACW is on.
                match &self.activity {
                    Activity::Ringing {
                        call: c,
                        kind: CallKind::Assigned,
                    } if *c == call => {}
                    _ => return Err(AgentError::UnknownCall),
                }
                self.end_call(true, now);
            }
            AgentInput::Ended { call } => {
                let connected = match &self.activity {
                    Activity::Ringing { call: c, .. } if *c == call => false,
                    Activity::InCall { call: c, .. } if *c == call => true,
                    _ => return Err(AgentError::UnknownCall),
                };
                // Rule 5 (unanswered: back to the pre-call status) and rule 7
                // (connected: wrap-up when ACW is on).
                self.end_call(connected, now);
            }
        }
        Ok(())
    }

    fn end_call(&mut self, to_wrap_up: bool, now: Instant) {
        self.status = self.pre_call;
        self.activity = match self.cfg.acw.filter(|d| !d.is_zero()) {
            Some(acw) if to_wrap_up => Activity::WrapUp {
                until: Some(now + acw),
            },
            _ => Activity::None,
        };
        if !self.signed_in {
            // The softphone signed out during the call: the call ends at the initial status.
            self.status = self.cfg.initial_status;
            self.activity = Activity::None;
        }
    }

    fn require_signed_in(&self) -> Result<(), AgentError> {
        if self.signed_in {
            Ok(())
        } else {
            Err(AgentError::NotSignedIn)
        }
    }

    fn after_change(&mut self, before: AgentView, now: Instant) {
        let after = self.view();
        let was_available = before.activity == "none" && before.status == Status::Idle;
        let available = self.activity == Activity::None && self.status == Status::Idle;
        if available && (!was_available || self.idle_since.is_none()) {
            self.idle_since = Some(now);
        }
        if after != before {
            self.events.push_back(AgentEvent::Changed(after));
        }
    }

    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }

    /// When [`Agent::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.activity {
            Activity::WrapUp { until } => until,
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        // Rule 8: wrap-up ends by itself when its time has passed. We keep the
        // timer on the server, so a reload does not stop it (the vendor's does).
        if let Activity::WrapUp { until: Some(until) } = self.activity {
            if now >= until {
                let before = self.view();
                self.activity = Activity::None;
                self.after_change(before, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACW: Duration = Duration::from_secs(30);

    fn signed_in(cfg: AgentConfig) -> (Agent, Instant) {
        let t0 = Instant::now();
        let mut a = Agent::new(cfg, None);
        a.handle(AgentInput::SignIn { fresh: true }, t0).unwrap();
        a.handle(AgentInput::TabsOnline(1), t0).unwrap();
        (a, t0)
    }

    fn events(a: &mut Agent) -> Vec<Status> {
        std::iter::from_fn(|| a.poll_event())
            .map(|AgentEvent::Changed(v)| v.code)
            .collect()
    }

    fn with_acw() -> AgentConfig {
        AgentConfig {
            initial_status: Status::Idle,
            acw: Some(ACW),
        }
    }

    #[test]
    fn rule1_any_status_may_be_picked_but_not_during_a_call() {
        let (mut a, t) = signed_in(AgentConfig::default());
        for s in Status::ALL {
            a.handle(AgentInput::Pick(s), t).unwrap();
            assert_eq!(a.reported_code(), s);
        }
        a.handle(AgentInput::Dial { call: "c1".into() }, t).unwrap();
        assert_eq!(
            a.handle(AgentInput::Pick(Status::Idle), t),
            Err(AgentError::BusyWithCall)
        );
        a.handle(AgentInput::Answered { call: "c1".into() }, t)
            .unwrap();
        assert_eq!(
            a.handle(AgentInput::Pick(Status::Idle), t),
            Err(AgentError::BusyWithCall)
        );
    }

    #[test]
    fn a_signed_out_agent_cannot_pick() {
        let mut a = Agent::new(AgentConfig::default(), None);
        assert_eq!(
            a.handle(AgentInput::Pick(Status::Busy), Instant::now()),
            Err(AgentError::NotSignedIn)
        );
    }

    #[test]
    fn picking_the_same_status_emits_nothing() {
        let (mut a, t) = signed_in(AgentConfig::default());
        events(&mut a);
        a.handle(AgentInput::Pick(Status::Idle), t).unwrap();
        assert!(events(&mut a).is_empty());
        a.handle(AgentInput::Pick(Status::Meeting), t).unwrap();
        assert_eq!(events(&mut a), vec![Status::Meeting]);
    }

    #[test]
    fn rule2_tabs_coming_and_going_keep_the_status() {
        let (mut a, t) = signed_in(AgentConfig::default());
        a.handle(AgentInput::Pick(Status::Sleep), t).unwrap();
        a.handle(AgentInput::TabsOnline(0), t).unwrap();
        a.handle(AgentInput::TabsOnline(1), t).unwrap();
        // A second sign-in of an already signed-in agent (a new tab) keeps it too.
        a.handle(AgentInput::SignIn { fresh: true }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Sleep);
    }

    #[test]
    fn rule2_a_reload_in_wrap_up_keeps_wrap_up_and_our_timer_still_ends_it() {
        let (mut a, t) = signed_in(with_acw());
        a.handle(AgentInput::Dial { call: "c".into() }, t).unwrap();
        a.handle(AgentInput::Answered { call: "c".into() }, t)
            .unwrap();
        a.handle(AgentInput::Ended { call: "c".into() }, t).unwrap();
        a.handle(AgentInput::TabsOnline(0), t).unwrap();
        a.handle(AgentInput::TabsOnline(1), t + Duration::from_secs(1))
            .unwrap();
        assert_eq!(a.activity().name(), "wrapUp");
        a.handle_timeout(t + ACW);
        assert_eq!(a.activity(), &Activity::None);
    }

    #[test]
    fn rule3_sign_out_then_in_starts_from_the_initial_status() {
        let cfg = AgentConfig {
            initial_status: Status::Busy,
            acw: None,
        };
        let (mut a, t) = signed_in(cfg);
        assert_eq!(a.reported_code(), Status::Busy);
        a.handle(AgentInput::Pick(Status::Meeting), t).unwrap();
        a.handle(AgentInput::SignOut, t).unwrap();
        a.handle(AgentInput::SignIn { fresh: true }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Busy);
    }

    #[test]
    fn a_remembered_status_survives_a_server_restart() {
        let t = Instant::now();
        let mut a = Agent::new(AgentConfig::default(), Some(Status::Meal));
        a.handle(AgentInput::SignIn { fresh: false }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Meal);
        a.handle(AgentInput::SignOut, t).unwrap();
        a.handle(AgentInput::SignIn { fresh: true }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Idle);
    }

    #[test]
    fn rule4_and_11_only_idle_agents_are_assigned_calls() {
        let (mut a, t) = signed_in(AgentConfig::default());
        for s in Status::ALL.into_iter().filter(|s| *s != Status::Idle) {
            a.handle(AgentInput::Pick(s), t).unwrap();
            assert_eq!(
                a.handle(AgentInput::Assign { call: "x".into() }, t),
                Err(AgentError::NotAvailable)
            );
        }
        a.handle(AgentInput::Pick(Status::Idle), t).unwrap();
        a.handle(AgentInput::Assign { call: "x".into() }, t)
            .unwrap();
        assert_eq!(a.reported_code(), Status::Busy);
        assert_eq!(
            a.handle(AgentInput::Assign { call: "y".into() }, t),
            Err(AgentError::NotAvailable)
        );
    }

    #[test]
    fn rule4_outbound_calls_start_from_any_status() {
        let (mut a, t) = signed_in(AgentConfig::default());
        for s in Status::ALL {
            a.handle(AgentInput::Pick(s), t).unwrap();
            a.handle(AgentInput::Dial { call: "c".into() }, t).unwrap();
            assert_eq!(a.reported_code(), Status::Busy);
            a.handle(AgentInput::Ended { call: "c".into() }, t).unwrap();
            assert_eq!(a.reported_code(), s, "rule 5: back to the pre-call status");
        }
    }

    #[test]
    fn rule5_an_unanswered_assigned_call_returns_to_idle_even_with_acw() {
        let (mut a, t) = signed_in(with_acw());
        a.handle(AgentInput::Assign { call: "c".into() }, t)
            .unwrap();
        a.handle(AgentInput::Ended { call: "c".into() }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Idle);
        assert_eq!(a.activity(), &Activity::None);
    }

    #[test]
    fn rule6_answer_moves_ringing_to_in_call() {
        let (mut a, t) = signed_in(AgentConfig::default());
        a.handle(AgentInput::Assign { call: "c".into() }, t)
            .unwrap();
        assert_eq!(
            a.handle(
                AgentInput::Answered {
                    call: "other".into()
                },
                t
            ),
            Err(AgentError::UnknownCall)
        );
        a.handle(AgentInput::Answered { call: "c".into() }, t)
            .unwrap();
        assert_eq!(a.activity().name(), "inCall");
    }

    #[test]
    fn rule7_reject_and_connected_calls_go_to_wrap_up() {
        let (mut a, t) = signed_in(with_acw());
        a.handle(AgentInput::Assign { call: "c".into() }, t)
            .unwrap();
        a.handle(AgentInput::Rejected { call: "c".into() }, t)
            .unwrap();
        assert_eq!(a.activity().name(), "wrapUp");
        assert_eq!(a.reported_code(), Status::Busy);
        assert_eq!(a.available_since(), None, "wrap-up is not available");

        a.handle(AgentInput::Pick(Status::Meeting), t).unwrap();
        a.handle(AgentInput::Dial { call: "d".into() }, t).unwrap();
        a.handle(AgentInput::Answered { call: "d".into() }, t)
            .unwrap();
        a.handle(AgentInput::Ended { call: "d".into() }, t).unwrap();
        assert_eq!(a.activity().name(), "wrapUp");
        assert_eq!(a.poll_timeout(), Some(t + ACW));
    }

    #[test]
    fn rule7_without_acw_calls_end_at_the_pre_call_status() {
        let (mut a, t) = signed_in(AgentConfig {
            initial_status: Status::Idle,
            acw: Some(Duration::ZERO),
        });
        a.handle(AgentInput::Pick(Status::Other), t).unwrap();
        a.handle(AgentInput::Dial { call: "d".into() }, t).unwrap();
        a.handle(AgentInput::Answered { call: "d".into() }, t)
            .unwrap();
        a.handle(AgentInput::Ended { call: "d".into() }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Other);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn rule8_wrap_up_ends_by_timer_or_by_a_pick() {
        let (mut a, t) = signed_in(with_acw());
        a.handle(AgentInput::Pick(Status::Meal), t).unwrap();
        a.handle(AgentInput::Dial { call: "d".into() }, t).unwrap();
        a.handle(AgentInput::Answered { call: "d".into() }, t)
            .unwrap();
        a.handle(AgentInput::Ended { call: "d".into() }, t).unwrap();
        events(&mut a);
        a.handle_timeout(t + ACW - Duration::from_millis(1));
        assert_eq!(a.reported_code(), Status::Busy, "not before its time");
        a.handle_timeout(t + ACW);
        assert_eq!(a.reported_code(), Status::Meal);
        assert_eq!(events(&mut a), vec![Status::Meal]);

        a.handle(AgentInput::Dial { call: "e".into() }, t).unwrap();
        a.handle(AgentInput::Answered { call: "e".into() }, t)
            .unwrap();
        a.handle(AgentInput::Ended { call: "e".into() }, t).unwrap();
        a.handle(AgentInput::Pick(Status::Idle), t).unwrap();
        assert_eq!(a.reported_code(), Status::Idle);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn rule10_no_tabs_means_no_assignments_but_the_state_stays() {
        let (mut a, t) = signed_in(AgentConfig::default());
        a.handle(AgentInput::TabsOnline(0), t).unwrap();
        assert_eq!(a.reported_code(), Status::Idle);
        assert_eq!(
            a.handle(AgentInput::Assign { call: "c".into() }, t),
            Err(AgentError::NotAvailable)
        );
        a.handle(AgentInput::TabsOnline(2), t).unwrap();
        a.handle(AgentInput::Assign { call: "c".into() }, t)
            .unwrap();
    }

    #[test]
    fn longest_idle_is_measured_from_becoming_available() {
        let (mut a, t) = signed_in(AgentConfig::default());
        let t1 = t + Duration::from_secs(10);
        a.handle(AgentInput::Dial { call: "c".into() }, t1).unwrap();
        assert_eq!(a.available_since(), None);
        let t2 = t + Duration::from_secs(20);
        a.handle(AgentInput::Ended { call: "c".into() }, t2)
            .unwrap();
        assert_eq!(a.available_since(), Some(t2));
    }

    #[test]
    fn sign_out_during_a_call_ends_at_the_initial_status() {
        let cfg = AgentConfig {
            initial_status: Status::Busy,
            acw: Some(ACW),
        };
        let (mut a, t) = signed_in(cfg);
        a.handle(AgentInput::Pick(Status::Meeting), t).unwrap();
        a.handle(AgentInput::Dial { call: "c".into() }, t).unwrap();
        a.handle(AgentInput::Answered { call: "c".into() }, t)
            .unwrap();
        a.handle(AgentInput::SignOut, t).unwrap();
        a.handle(AgentInput::Ended { call: "c".into() }, t).unwrap();
        assert_eq!(a.reported_code(), Status::Busy);
        assert_eq!(a.activity(), &Activity::None);
    }
}
