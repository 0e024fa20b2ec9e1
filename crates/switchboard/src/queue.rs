//! Queues (ACD) per group: which available agent an inbound call rings
//! next, and what happens to an agent who keeps letting offers ring out.
//!
//! Each (tenant, group) has a [`GroupRouting`] (given by the shell from the
//! store at start and each time an admin changes it; none: the default).
//! Every decision reads only what the switchboard holds in memory, never
//! the store, so one costs a pass over the signed-in agents.
//!
//! - `longestIdle` (default): the agent available for the longest time.
//! - `roundRobin`: the first available agent after the one this group
//!   offered a call to last, in seat id order, wrapping around.
//! - `fewestCalls`: the available agent who answered the fewest inbound
//!   calls since the switchboard started (a restart starts everyone from
//!   zero again); ties go to the longest idle.
//! - `skills`: the available agent with the highest level of the skill
//!   the call requires (its DID's), ties to the longest idle; a call that
//!   requires none goes to the longest idle.
//! - `ringAll`: every available agent of the group rings at once; the first
//!   to answer takes the call and it stops ringing at the others (who go
//!   back to the status they had, with no missed offer counted). A reject
//!   drops only that agent; when the ring timeout passes with no answer,
//!   each of them missed the offer, and the call rings whoever became
//!   available since (or waits, or gets 480).
//!
//! Skills: whatever the strategy, a call that requires a skill is offered
//! only to agents of the group who have it (level 1 to 10). A waiting
//! caller nobody free can take does not hold up the callers behind it.
//!
//! Waiting: a group with a maximum wait (`max_wait_secs` > 0) queues a
//! call nobody can take now instead of refusing it with 480: the caller is
//! answered and hears the group's music; callers are served in the order
//! they arrived, each time an agent of the group becomes available (after
//! every input, see [`Switchboard::serve_queues`]); an offer that rings out
//! puts the caller back in its place. When the wait runs out the call
//! overflows once, to another group (where it waits that group's maximum)
//! or, by default, ends (BYE). A caller who hangs up while waiting leaves
//! an unanswered record with the time it waited and rings nobody.
//!
//! Missed offers: an offer that rings out (the ring timeout passed) counts
//! against the agent; after `max_missed` in a row the agent is set to Busy
//! and every tab is told why (an `error` event with code `missedOffers`).
//! Answering an offer resets the count, and so does rejecting one: both
//! show someone is at the desk, which is what the rule is about. A caller
//! who hangs up while it rings changes nothing. Ties of every strategy go
//! to the lower seat id, so the same inputs always pick the same agent.

use crate::{Output, SeatId, Switchboard};
use seatline_agent::{AgentInput, Status};
use seatline_protocol::ServerEvent;
use seatline_sip::CallRef;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How a group picks the agent an inbound call rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    LongestIdle,
    RoundRobin,
    FewestCalls,
    RingAll,
    Skills,
}

impl Strategy {
    /// The name the admin API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongestIdle => "longestIdle",
            Self::RoundRobin => "roundRobin",
            Self::FewestCalls => "fewestCalls",
            Self::RingAll => "ringAll",
            Self::Skills => "skills",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "longestIdle" => Some(Self::LongestIdle),
            "roundRobin" => Some(Self::RoundRobin),
            "fewestCalls" => Some(Self::FewestCalls),
            "ringAll" => Some(Self::RingAll),
            "skills" => Some(Self::Skills),
            _ => None,
        }
    }
}

/// Where a call goes when its wait in a group's queue runs out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The call ends (BYE): the caller waited long enough.
    #[default]
    HangUp,
    /// The call waits in this group of the same tenant, for that group's
    /// maximum (or, if it does not queue, rings its agents once).
    Group(String),
    /// The call is placed to this number on a trunk and relayed, as a DID
    /// forwarded to it would be; the caller hears the music until the
    /// number answers.
    Number(String),
}

/// A group's queue settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRouting {
    pub strategy: Strategy,
    /// Offers in a row an agent may let ring out before being set to
    /// Busy; 0: never.
    pub max_missed: u32,
    /// How long a caller may wait for an agent; 0: no queue (a call nobody
    /// can take now is refused with 480).
    pub max_wait_secs: u32,
    /// What happens when the wait runs out.
    pub overflow: Overflow,
    /// How long each offer rings an agent before the next; 0: the
    /// switchboard's `ring_timeout`.
    pub ring_timeout_secs: u32,
    /// The language a waiting caller is told their place and expected
    /// wait in (`en-US`, `es-MX`, `zh-CN`: the shell has the prompts);
    /// none: music only.
    pub announce_lang: Option<String>,
}

/// How often a waiting caller is told their place again.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(30);

/// The handle time a group is assumed to have until it has answered calls
/// (seconds).
const DEFAULT_HANDLE_SECS: f64 = 180.0;

/// The longest an admin may let an offer ring one agent.
pub const RING_TIMEOUT_LIMIT_SECS: u32 = 300;

/// The largest `max_missed` an admin may set (more is "never" in practice).
pub const MAX_MISSED_LIMIT: u32 = 100;

/// The longest wait an admin may set: an hour.
pub const MAX_WAIT_LIMIT_SECS: u32 = 3_600;

impl Default for GroupRouting {
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            max_missed: 3,
            max_wait_secs: 0,
            overflow: Overflow::HangUp,
            ring_timeout_secs: 0,
            announce_lang: None,
        }
    }
}

impl GroupRouting {
    /// How long an offer rings an agent: the group's own time, else `default`.
    pub fn ring_timeout(&self, default: Duration) -> Duration {
        match self.ring_timeout_secs {
            0 => default,
            s => Duration::from_secs(u64::from(s)),
        }
    }

    /// The caller's wait, if the group queues.
    pub fn max_wait(&self) -> Option<Duration> {
        (self.max_wait_secs > 0).then(|| Duration::from_secs(u64::from(self.max_wait_secs)))
    }
}

/// What the queues remember between decisions.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    /// Per tenant, the groups whose routing is not the default.
    groups: HashMap<i64, HashMap<String, GroupRouting>>,
    /// Per tenant and group, the seat offered a call last (round robin).
    last_offered: HashMap<i64, HashMap<String, SeatId>>,
    /// Inbound calls each seat answered since the start (fewest calls).
    answered: HashMap<SeatId, u32>,
    /// Offers each seat let ring out in a row.
    missed_in_row: HashMap<SeatId, u32>,
    /// Per (tenant, group), the calls waiting for an agent, first come
    /// first: (when the call arrived, the call).
    waiting: HashMap<(i64, String), Vec<(i64, CallRef)>>,
    /// Per (tenant, group), the talk time of its answered inbound calls
    /// (seconds, a moving average), for the expected wait.
    handle_secs: HashMap<(i64, String), f64>,
}

/// A waiting caller's expected wait in whole minutes, rounded up (0:
/// under a minute): its place times the group's handle time, shared by
/// the group's signed-in agents; `None` with nobody signed in.
pub(crate) fn expected_minutes(position: usize, handle_secs: f64, staffed: usize) -> Option<u32> {
    if staffed == 0 {
        return None;
    }
    let secs = position as f64 * handle_secs / staffed as f64;
    Some(if secs < 60.0 {
        0
    } else {
        (secs / 60.0).ceil().min(999.0) as u32
    })
}

impl Queues {
    pub(crate) fn routing(&self, tenant_id: i64, group_no: &str) -> GroupRouting {
        self.groups
            .get(&tenant_id)
            .and_then(|g| g.get(group_no))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the group tells its waiting callers their place.
    pub(crate) fn announces(&self, tenant_id: i64, group_no: &str) -> bool {
        self.groups
            .get(&tenant_id)
            .and_then(|g| g.get(group_no))
            .is_some_and(|r| r.announce_lang.is_some())
    }

    /// The call waits in the group's queue, in the place its arrival gives
    /// it (a caller put back after an offer keeps its place).
    pub(crate) fn enqueue(&mut self, tenant_id: i64, group_no: &str, call: CallRef, since_ms: i64) {
        self.dequeue(call);
        let line = self
            .waiting
            .entry((tenant_id, group_no.to_string()))
            .or_default();
        let at = line.partition_point(|&(ms, _)| ms <= since_ms);
        line.insert(at, (since_ms, call));
    }

    /// The call waits nowhere any more (offered, overflowed or ended).
    pub(crate) fn dequeue(&mut self, call: CallRef) {
        self.waiting.retain(|_, line| {
            line.retain(|&(_, c)| c != call);
            !line.is_empty()
        });
    }

    /// The call's place in its queue, from 1; `None` when it is not waiting.
    pub(crate) fn position(&self, call: CallRef) -> Option<usize> {
        self.waiting
            .values()
            .find_map(|line| line.iter().position(|&(_, c)| c == call))
            .map(|i| i + 1)
    }

    /// An inbound call of the group was answered and talked `secs`.
    pub(crate) fn note_talk(&mut self, tenant_id: i64, group_no: &str, secs: f64) {
        let avg = self
            .handle_secs
            .entry((tenant_id, group_no.to_string()))
            .or_insert(secs);
        *avg = *avg * 0.7 + secs * 0.3;
    }

    /// The group's handle time (seconds), as far as it is known.
    pub(crate) fn handle_secs(&self, tenant_id: i64, group_no: &str) -> f64 {
        self.handle_secs
            .get(&(tenant_id, group_no.to_string()))
            .copied()
            .unwrap_or(DEFAULT_HANDLE_SECS)
    }

    /// The group rang this seat (round robin goes on from it).
    pub(crate) fn offered(&mut self, tenant_id: i64, group_no: &str, seat: SeatId) {
        let last = self.last_offered.entry(tenant_id).or_default();
        match last.get_mut(group_no) {
            Some(s) => *s = seat,
            None => {
                last.insert(group_no.to_string(), seat);
            }
        }
    }

    /// An inbound call's controller told the agent's state machine this.
    pub(crate) fn saw(&mut self, seat: SeatId, input: &AgentInput) {
        match input {
            AgentInput::Answered { .. } => {
                *self.answered.entry(seat).or_default() += 1;
                self.missed_in_row.remove(&seat);
            }
            AgentInput::Rejected { .. } => {
                self.missed_in_row.remove(&seat);
            }
            _ => {}
        }
    }
}

impl Switchboard {
    /// A group's after-call work changed: its agents signed in now use it
    /// for the calls that end from now on (a wrap-up under way keeps its
    /// length). Agents who sign in later read it from the store.
    pub fn set_group_acw(&mut self, tenant_id: i64, group_no: &str, acw: Option<Duration>) {
        for slot in self
            .agents
            .values_mut()
            .filter(|s| s.tenant_id == tenant_id && s.group_no == group_no)
        {
            slot.agent.set_acw(acw);
        }
    }

    /// A group's queue settings (from the store at start, and each time an
    /// admin changes them). Calls already ringing keep their agent.
    pub fn set_group_routing(&mut self, tenant_id: i64, group_no: &str, routing: GroupRouting) {
        self.queues
            .groups
            .entry(tenant_id)
            .or_default()
            .insert(group_no.to_string(), routing);
    }

    /// The agent's skills changed (an admin set them). A signed-out agent
    /// gets them from the store at the next sign-in.
    pub fn set_agent_skills(&mut self, seat: SeatId, skills: Vec<(String, u8)>) {
        if let Some(slot) = self.agents.get_mut(&seat) {
            slot.skills = skills;
        }
    }

    pub fn group_routing(&self, tenant_id: i64, group_no: &str) -> GroupRouting {
        self.queues.routing(tenant_id, group_no)
    }

    /// Where a waiting inbound call stands in its group's queue, from 1.
    pub fn queue_position(&self, call: CallRef) -> Option<usize> {
        self.queues.position(call)
    }

    /// Offers the first waiting callers of every group to the agents now
    /// available there, until a group has no caller or no agent left. Runs
    /// after each input that may free an agent, once that input's own
    /// outputs are out, so a call that just ended is unbridged before the
    /// agent's next call is. Costs nothing while nobody waits.
    pub(crate) fn serve_queues(&mut self, now: Instant) {
        if self.queues.waiting.is_empty() {
            return;
        }
        let groups: Vec<(i64, String)> = self.queues.waiting.keys().cloned().collect();
        for (tenant_id, group_no) in groups {
            // Callers ahead that no free agent can take (skills) are
            // passed over, in order; nobody free at all ends the group.
            let mut skip = 0;
            loop {
                let next = self
                    .queues
                    .waiting
                    .get(&(tenant_id, group_no.clone()))
                    .and_then(|line| line.get(skip))
                    .map(|&(_, call)| call);
                let Some(call) = next else { break };
                if self.pick_agent(tenant_id, &group_no, &[], None).is_none() {
                    break;
                }
                let skill = self.calls.get(&call).and_then(|c| c.skill.clone());
                if skill.is_some()
                    && self
                        .pick_agent(tenant_id, &group_no, &[], skill.as_deref())
                        .is_none()
                {
                    skip += 1;
                    continue;
                }
                self.queues.dequeue(call);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ctl.retry();
                }
                self.apply(call, now);
                if self.queues.position(call).is_some() {
                    // Back in line: nobody took it after all (the agent's
                    // state refused the offer); the next input tries again.
                    break;
                }
            }
        }
    }

    /// Inbound calls this seat answered since the switchboard started.
    pub fn answered_calls(&self, seat: SeatId) -> u32 {
        self.queues.answered.get(&seat).copied().unwrap_or(0)
    }

    /// The ACD: the available agent of the group the group's strategy
    /// picks, among those this call has not rung yet (and who have the
    /// skill it requires, if any).
    pub(crate) fn pick_agent(
        &self,
        tenant_id: i64,
        group_no: &str,
        tried: &[SeatId],
        skill: Option<&str>,
    ) -> Option<SeatId> {
        let level = |s: &crate::AgentSlot| -> Option<u8> {
            match skill {
                None => Some(0),
                Some(k) => s.skills.iter().find(|(n, _)| n == k).map(|&(_, l)| l),
            }
        };
        let candidates = self.agents.iter().filter(|(id, s)| {
            s.tenant_id == tenant_id && s.group_no == group_no && !tried.contains(id)
        });
        let available = candidates
            .clone()
            .filter(|(_, s)| level(s).is_some())
            .filter_map(|(id, s)| s.agent.available_since().map(|since| (*id, since)));
        let q = &self.queues;
        match q.routing(tenant_id, group_no).strategy {
            // Ring-all takes every one of them, longest idle first.
            Strategy::LongestIdle | Strategy::RingAll => {
                available.min_by_key(|&(id, since)| (since, id))
            }
            Strategy::Skills => candidates
                .filter_map(|(id, s)| {
                    let since = s.agent.available_since()?;
                    Some((std::cmp::Reverse(level(s)?), since, *id))
                })
                .min()
                .map(|(_, since, id)| (id, since)),
            Strategy::FewestCalls => available
                .min_by_key(|&(id, since)| (q.answered.get(&id).copied().unwrap_or(0), since, id)),
            Strategy::RoundRobin => {
                let last = q
                    .last_offered
                    .get(&tenant_id)
                    .and_then(|g| g.get(group_no))
                    .copied();
                // Seats after the last one first, in order; then from the start.
                available.min_by_key(|&(id, _)| (last.is_some_and(|l| id <= l), id))
            }
        }
        .map(|(id, _)| id)
    }

    /// Ring-all: every available agent of the group this call has not rung
    /// yet, longest idle first, found in one pass.
    pub(crate) fn available_agents(
        &self,
        tenant_id: i64,
        group_no: &str,
        tried: &[SeatId],
        skill: Option<&str>,
    ) -> Vec<SeatId> {
        let mut all: Vec<(Instant, SeatId)> = self
            .agents
            .iter()
            .filter(|(id, s)| {
                s.tenant_id == tenant_id && s.group_no == group_no && !tried.contains(id)
            })
            .filter(|(_, s)| skill.is_none_or(|k| s.skills.iter().any(|(n, _)| n == k)))
            .filter_map(|(id, s)| s.agent.available_since().map(|since| (since, *id)))
            .collect();
        all.sort_unstable();
        all.into_iter().map(|(_, id)| id).collect()
    }

    /// An offer to `seat` rang out. At the group's limit the agent is set to
    /// Busy (saved and shown like any status change) and told why.
    pub(crate) fn offer_rang_out(&mut self, seat: SeatId, now: Instant) {
        let Some(slot) = self.agents.get(&seat) else {
            return;
        };
        let max = self
            .queues
            .routing(slot.tenant_id, &slot.group_no)
            .max_missed;
        let missed = self.queues.missed_in_row.entry(seat).or_default();
        *missed += 1;
        if max == 0 || *missed < max {
            return;
        }
        self.queues.missed_in_row.remove(&seat);
        if self.set_status(seat, Status::Busy, now).is_ok() {
            self.out.push_back(Output::ToAgent {
                seat,
                event: ServerEvent::Error {
                    code: "missedOffers".into(),
                    message: format!(
                        "{max} calls in a row rang out unanswered: your status is now Busy"
                    ),
                },
            });
        }
    }
}
