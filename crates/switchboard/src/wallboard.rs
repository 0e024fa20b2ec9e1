//! The supervisor's live wallboard: what one tenant's floor looks like now,
//! and the supervisor's two actions on it (force a status, sign out).
//!
//! Everything shown is what the switchboard holds in memory: the agents it
//! knows (signed in at some time since the process started), the calls in
//! progress, and the day's counts, kept here as a few numbers per tenant
//! and bumped where an inbound call is answered and where one ends. A
//! snapshot costs one pass over the agents and calls; it is made for a
//! console when the tenant's wallboard changed, never per packet.
//!
//! Change notice: every place that changes what a wallboard shows marks its
//! tenant; [`Switchboard::poll_output`] hands each marked tenant out once,
//! as [`Output::WallboardChanged`], after the batch's other outputs. That is
//! cheaper than a per-tenant version the shell would have to compare after
//! every input (a pass over tenants, and a second lock), and it is correct
//! by construction: the mark is set in the same two places every status
//! and every call state goes through (`flush_agent` and `apply`).
//!
//! Durations move without a change (a call's seconds); the shell refreshes
//! the console once a second while any timer is shown.
//!
//! The day's counts (UTC day of the records' clock): answered inbound
//! calls, abandoned ones (inbound calls that ended before any agent
//! answered, rung out or not), overflowed ones (callers whose wait ran out
//! and who were sent to a number), and those answered within
//! [`SERVICE_LEVEL_SECS`]; service level = answered within / (answered +
//! abandoned + overflowed), in percent.

use super::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Answered within this many seconds of arriving counts toward the service level.
pub const SERVICE_LEVEL_SECS: i64 = 20;

const DAY_MS: i64 = 86_400_000;

/// Who sits at a seat, as the shell read it from the store (the switchboard
/// itself knows seats by id only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLabel {
    /// The user's id: the `agentId` of the admin API.
    pub user_id: i64,
    pub email: String,
    /// The seat's SIP number.
    pub seat: String,
}

/// One tenant's wallboard at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallboard {
    pub tenant_id: i64,
    /// Every agent of the tenant the switchboard knows, by seat id.
    pub agents: Vec<WallAgent>,
    /// Every call in progress, oldest first.
    pub calls: Vec<WallCall>,
    /// Per group with callers waiting, by group number.
    pub queues: Vec<WallQueue>,
    pub today: Today,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WallAgent {
    /// The user's id, when the shell labelled the seat.
    pub agent_id: Option<i64>,
    pub email: Option<String>,
    /// The seat's SIP number, when labelled.
    pub seat: Option<String>,
    pub seat_id: SeatId,
    pub group: String,
    pub signed_in: bool,
    /// Open softphone tabs.
    pub tabs: usize,
    /// What the tabs show (`agentStatus` code: Busy while in a call).
    pub code: u8,
    /// The status the agent chose.
    pub status: u8,
    /// `none`, `ringing`, `inCall` or `wrapUp`.
    pub activity: String,
    /// Seconds since the code, status or activity last changed.
    pub secs_in_status: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WallCall {
    pub call_id: String,
    pub seat_id: Option<SeatId>,
    pub agent_id: Option<i64>,
    /// The other party: the caller of an inbound call, the callee of an
    /// outbound one.
    pub number: String,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// `ringing`, `menu` (inbound, the caller choosing in its DID's menu),
    /// `queued` (inbound, waiting for an agent), `forwarding` (inbound, the
    /// number it is forwarded to rings) or `connected`.
    pub state: &'static str,
    /// Seconds in that state (ringing: since the call arrived or was placed).
    pub secs: u64,
    /// Inbound: the group it was routed to.
    pub group: Option<String>,
    /// The last quality sample's MOS, once one came.
    pub mos: Option<f64>,
    /// The number the call is forwarded to (a DID forwarded to it, or a
    /// waiting caller that overflowed to it): no agent takes part.
    pub forwarded_to: Option<String>,
}

/// A group's callers not answered yet: waiting in its queue, or ringing
/// agents (one at a time, or every available one for ring-all).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WallQueue {
    pub group: String,
    pub waiting: u32,
    pub longest_wait_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Today {
    /// Days since 1970-01-01 (UTC) of these counts.
    pub day: i64,
    pub answered: u64,
    pub abandoned: u64,
    /// Callers whose wait ran out and who were sent to a number.
    pub overflowed: u64,
    pub answered_within_sl: u64,
    /// Percent; `None` before any inbound call ended or was answered today.
    pub service_level_pct: Option<f64>,
}

/// A supervisor's action on an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervise {
    /// As if the agent had picked it in the softphone.
    SetStatus(Status),
    /// Every session of the agent ends (the shell closes the tabs with
    /// `tokenInvalid` and revokes the sessions).
    SignOut,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuperviseError {
    /// No such seat in this tenant (another tenant's is not told apart).
    #[error("no such agent")]
    NotFound,
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// What the wallboard remembers between snapshots.
#[derive(Debug, Default)]
pub(crate) struct WallState {
    labels: HashMap<SeatId, AgentLabel>,
    today: HashMap<i64, Today>,
    /// Tenants whose wallboard changed since the last [`Output::WallboardChanged`].
    changed: Vec<i64>,
}

impl WallState {
    /// Marks the tenant's wallboard changed (a few tenants per batch: a list).
    pub(crate) fn changed(&mut self, tenant_id: i64) {
        if !self.changed.contains(&tenant_id) {
            self.changed.push(tenant_id);
        }
    }

    pub(crate) fn take_changed(&mut self) -> Option<Output> {
        self.changed
            .pop()
            .map(|tenant_id| Output::WallboardChanged { tenant_id })
    }

    /// The tenant's counts of day `day`, started afresh on a new day.
    fn day_of(&mut self, tenant_id: i64, day: i64) -> &mut Today {
        let t = self.today.entry(tenant_id).or_default();
        if t.day != day {
            *t = Today {
                day,
                ..Today::default()
            };
        }
        t
    }
}

pub(crate) fn secs(ms: i64) -> u64 {
    (ms.max(0) / 1000) as u64
}

impl Switchboard {
    /// Who sits at `seat` (from the store, when a session of it starts).
    pub fn set_agent_label(&mut self, seat: SeatId, label: AgentLabel) {
        if self.wall.labels.get(&seat) == Some(&label) {
            return;
        }
        self.wall.labels.insert(seat, label);
        if let Some(slot) = self.agents.get(&seat) {
            self.wall.changed(slot.tenant_id);
        }
    }

    /// The seat the switchboard knows for user `agent_id`, when labelled.
    pub fn seat_of_agent(&self, agent_id: i64) -> Option<SeatId> {
        self.wall
            .labels
            .iter()
            .find(|(_, l)| l.user_id == agent_id)
            .map(|(s, _)| *s)
    }

    /// A supervisor of `tenant_id` acts on `seat`. A status is forced
    /// exactly as the agent's own pick (the same rules: not while ringing
    /// or in a call; the tabs and the store told the same way). Sign-out
    /// only checks here: the shell ends the sessions, and with the last
    /// one [`Switchboard::sign_out`] comes as for any sign-out.
    pub fn supervise(
        &mut self,
        tenant_id: i64,
        seat: SeatId,
        action: Supervise,
        now: Instant,
    ) -> Result<(), SuperviseError> {
        let slot = self.agents.get(&seat).ok_or(SuperviseError::NotFound)?;
        if slot.tenant_id != tenant_id {
            return Err(SuperviseError::NotFound);
        }
        match action {
            Supervise::SetStatus(status) => Ok(self.set_status(seat, status, now)?),
            Supervise::SignOut => Ok(()),
        }
    }

    /// The tenant's wallboard at `now`.
    pub fn wallboard(&self, tenant_id: i64, now: Instant) -> Wallboard {
        let ms = self.ms(now);
        let label = |seat: SeatId| self.wall.labels.get(&seat);
        let mut agents: Vec<WallAgent> = self
            .agents
            .iter()
            .filter(|(_, s)| s.tenant_id == tenant_id)
            .map(|(&seat_id, s)| {
                let view = s.agent.view();
                let l = label(seat_id);
                WallAgent {
                    agent_id: l.map(|l| l.user_id),
                    email: l.map(|l| l.email.clone()),
                    seat: l.map(|l| l.seat.clone()),
                    seat_id,
                    group: s.group_no.clone(),
                    signed_in: s.agent.is_signed_in(),
                    tabs: s.tabs.len(),
                    code: view.code.code(),
                    status: view.status.code(),
                    activity: view.activity,
                    secs_in_status: now.saturating_duration_since(s.since).as_secs(),
                }
            })
            .collect();
        agents.sort_by_key(|a| a.seat_id);
        let mut calls = Vec::new();
        let mut queues: BTreeMap<&str, WallQueue> = BTreeMap::new();
        for c in self.calls.values().filter(|c| c.tenant_id == tenant_id) {
            let r = c.ctl.record();
            let inbound = r.direction == Direction::Inbound;
            let seat_id = c.ctl.seat();
            let (state, since) = match r.connected_ms {
                Some(at) => ("connected", at),
                None if c.ctl.is_queued() => ("queued", r.start_ms),
                None if c.ctl.in_menu() => ("menu", r.start_ms),
                None => ("ringing", r.start_ms),
            };
            calls.push(WallCall {
                call_id: r.call_id.clone(),
                seat_id,
                agent_id: seat_id.and_then(label).map(|l| l.user_id),
                number: if inbound { &r.caller } else { &r.callee }.clone(),
                direction: if inbound { "inbound" } else { "outbound" },
                state,
                secs: secs(ms - since),
                group: c.group_no.clone(),
                mos: c.quality.as_ref().map(|q| q.last.mos),
                forwarded_to: None,
            });
            if let (true, None, Some(group)) = (inbound, r.connected_ms, c.group_no.as_deref()) {
                let q = queues.entry(group).or_insert_with(|| WallQueue {
                    group: group.to_string(),
                    waiting: 0,
                    longest_wait_secs: 0,
                });
                q.waiting += 1;
                q.longest_wait_secs = q.longest_wait_secs.max(secs(ms - r.start_ms));
            }
        }
        calls.extend(
            self.forwards
                .values()
                .filter(|f| f.tenant_id() == tenant_id)
                .map(|f| f.wall_call(ms)),
        );
        calls.sort_by(|a, b| b.secs.cmp(&a.secs).then(a.call_id.cmp(&b.call_id)));
        let day = ms.div_euclid(DAY_MS);
        let mut today = match self.wall.today.get(&tenant_id) {
            Some(t) if t.day == day => *t,
            _ => Today {
                day,
                ..Today::default()
            },
        };
        let ended = today.answered + today.abandoned + today.overflowed;
        today.service_level_pct =
            (ended > 0).then(|| today.answered_within_sl as f64 * 100.0 / ended as f64);
        Wallboard {
            tenant_id,
            agents,
            calls,
            queues: queues.into_values().collect(),
            today,
        }
    }

    /// An inbound call was answered: counted for its tenant's day.
    pub(crate) fn wall_answered(&mut self, call: CallRef) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let r = c.ctl.record();
        let Some(at) = r.connected_ms.filter(|_| r.direction == Direction::Inbound) else {
            return;
        };
        let within = at - r.start_ms <= SERVICE_LEVEL_SECS * 1000;
        let t = self.wall.day_of(c.tenant_id, at.div_euclid(DAY_MS));
        t.answered += 1;
        t.answered_within_sl += u64::from(within);
    }

    /// A waiting caller went to a number (its wait ran out): counted
    /// for its tenant's day, apart from answered and abandoned, and
    /// against the service level (no agent answered it in time).
    pub(crate) fn wall_overflowed(&mut self, tenant_id: i64, ms: i64) {
        self.wall.changed(tenant_id);
        self.wall
            .day_of(tenant_id, ms.div_euclid(DAY_MS))
            .overflowed += 1;
    }

    /// A call is gone: its tenant's wallboard changed, and an inbound call
    /// nobody answered counts as abandoned.
    pub(crate) fn wall_call_gone(&mut self, c: &Call, ms: i64) {
        self.wall.changed(c.tenant_id);
        let r = c.ctl.record();
        if r.direction == Direction::Inbound && r.connected_ms.is_none() {
            self.wall
                .day_of(c.tenant_id, ms.div_euclid(DAY_MS))
                .abandoned += 1;
        }
    }
}
