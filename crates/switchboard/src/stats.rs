//! What an operator's metrics read of the call path: calls started and in
//! progress by direction, the carriers' final answers by trunk, each
//! trunk's health and every signed-in agent's status.
//!
//! The counting is the switchboard's (it decides that a call started or
//! that a trunk answered), kept as plain numbers; [`Switchboard::stats`]
//! hands a snapshot to the shell, which only renders it. Nothing here is
//! on the path of a packet: a counter is bumped once per call event.

use super::*;
use std::collections::BTreeMap;

/// Which way a call goes, as the metrics tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallDirection {
    /// An agent's call out (a `callOut`).
    Outbound,
    /// A carrier's call to a DID, rung at the agents of a group.
    Inbound,
    /// A carrier's call to a DID forwarded to a number through a trunk.
    Forwarded,
}

impl CallDirection {
    pub const ALL: [CallDirection; 3] = [Self::Outbound, Self::Inbound, Self::Forwarded];

    /// The `direction` label's value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
            Self::Forwarded => "forwarded",
        }
    }
}

/// A number per [`CallDirection`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByDirection([u64; 3]);

impl ByDirection {
    pub fn get(&self, d: CallDirection) -> u64 {
        self.0[d as usize]
    }

    fn add(&mut self, d: CallDirection) {
        self.0[d as usize] = self.0[d as usize].saturating_add(1);
    }
}

/// A trunk as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkState {
    pub name: String,
    /// Whose it is: a tenant's own, or (`None`) shared.
    pub tenant_id: Option<i64>,
    /// Its OPTIONS keepalive finds it there (always true without keepalive).
    pub up: bool,
    /// Whether its registration is bound; `None` for a trunk that does not
    /// register.
    pub registered: Option<bool>,
}

/// The call path's figures at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Calls in progress now (placed, ringing or connected).
    pub in_progress: ByDirection,
    /// Calls started since the process began: an agent's call placed on a
    /// trunk, an inbound call routed to a group, a forward placed on a trunk.
    pub started: ByDirection,
    /// Final responses to our INVITEs, by trunk name and SIP status, in
    /// name then code order. An INVITE nothing answered counts as 408 (the
    /// SIP stack's own timeout), any 2xx as 200.
    pub responses: Vec<(String, u16, u64)>,
    pub trunks: Vec<TrunkState>,
    /// Signed-in agents by the status their tabs show (the chosen one, or
    /// Busy while ringing, in a call or in wrap-up), in code order, every
    /// status present.
    pub agents: Vec<(Status, u64)>,
    /// Inbound calls to numbers no tenant owns (answered 404).
    pub unknown_dids: u64,
    /// `callOut`s refused before anything was placed (policy, no trunk up ...).
    pub refused_call_outs: u64,
    /// SIP datagrams dropped because their source is no trunk's.
    pub dropped_untrusted: u64,
}

/// The counters the switchboard keeps between snapshots.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    started: ByDirection,
    /// (trunk name, status) -> count; bounded by the trunks' names times
    /// the 200-699 statuses counted.
    responses: BTreeMap<(String, u16), u64>,
    refused_call_outs: u64,
}

impl Counters {
    pub(crate) fn started(&mut self, d: CallDirection) {
        self.started.add(d);
    }

    pub(crate) fn refused(&mut self) {
        self.refused_call_outs = self.refused_call_outs.saturating_add(1);
    }
}

impl Switchboard {
    /// A snapshot of the call path's figures (one pass over the calls and
    /// agents: for a scrape every few seconds, not for every call).
    pub fn stats(&self) -> Stats {
        let mut in_progress = ByDirection::default();
        for c in self.calls.values() {
            in_progress.add(match c.ctl.record().direction {
                Direction::Inbound => CallDirection::Inbound,
                _ => CallDirection::Outbound,
            });
        }
        for _ in self.forwards.values() {
            in_progress.add(CallDirection::Forwarded);
        }
        let trunks = self
            .settings
            .trunks
            .iter()
            .zip(&self.trunks)
            .map(|(t, h)| TrunkState {
                name: t.name.clone(),
                tenant_id: t.tenant_id,
                up: h.up,
                registered: t.register.then_some(h.registered),
            })
            .collect();
        let mut agents: Vec<(Status, u64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        for slot in self.agents.values().filter(|s| s.agent.is_signed_in()) {
            let shown = slot.agent.reported_code();
            if let Some(n) = agents.iter_mut().find(|(s, _)| *s == shown) {
                n.1 += 1;
            }
        }
        Stats {
            in_progress,
            started: self.counters.started,
            responses: self
                .counters
                .responses
                .iter()
                .map(|((trunk, code), n)| (trunk.clone(), *code, *n))
                .collect(),
            trunks,
            agents,
            unknown_dids: self.unknown_dids,
            refused_call_outs: self.counters.refused_call_outs,
            dropped_untrusted: self.ua.dropped_untrusted(),
        }
    }

    /// Counts a final response to one of our INVITEs (an agent's call out
    /// or a forward's leg toward the trunk) under the trunk it was sent to.
    /// Called before the event moves the call (failover changes its trunk).
    pub(crate) fn count_response(&mut self, ev: &UaEvent) {
        let (call, code) = match ev {
            UaEvent::Answered { call, .. } => (*call, 200),
            UaEvent::Failed { call, code, .. } => (*call, *code),
            _ => return,
        };
        // Only real final statuses: a code outside 200-699 is not one, and
        // must not make a new series.
        if !(200..=699).contains(&code) {
            return;
        }
        let trunk = match self.forward_legs.get(&call) {
            Some(id) => self
                .forwards
                .get(id)
                .filter(|f| f.is_outbound_leg(call))
                .and_then(|f| f.trunk_name()),
            None => self
                .calls
                .get(&call)
                .filter(|c| c.ctl.record().direction != Direction::Inbound)
                .and_then(|c| c.ctl.record().trunk.as_deref()),
        };
        let Some(trunk) = trunk else {
            return;
        };
        let key = (trunk.to_string(), code);
        let n = self.counters.responses.entry(key).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// The id of the call `seat` is in, for a log line about it.
    pub fn call_id_of_seat(&self, seat: SeatId) -> Option<String> {
        let call = self.call_of_seat(seat)?;
        self.calls
            .get(&call)
            .map(|c| c.ctl.record().call_id.clone())
    }

    /// The id of the forwarded call relayed as `relay`, for a log line about it.
    pub fn call_id_of_relay(&self, relay: u64) -> Option<String> {
        self.forwards.get(&relay).map(|f| f.call_id().to_string())
    }
}
