//! Agent presence: which agents are signed in, their tabs (one WebSocket
//! each), their sessions, and the agent state machine that every tab views.
//!
//! The server holds the truth; a tab is a view. Every change of an agent's
//! state is serialised once and pushed to every tab of that agent, in every
//! browser. Sessions expire here when idle, and their tabs are told at once.
//!
//! Must never: await while holding its lock, or block on a slow tab (a tab
//! whose queue is full is dropped and reconnects to a fresh state).

use axum::extract::ws::Utf8Bytes;
use seatline_agent::{Agent, AgentConfig, AgentError, AgentEvent, AgentInput, Status};
use seatline_protocol::{AgentView, ServerEvent};
use seatline_store::Seat;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A message queued for one tab's WebSocket.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// Send a close frame and end the connection.
    Close,
}

pub type TabTx = mpsc::Sender<Outgoing>;

/// How many messages may wait for one tab before it counts as stuck.
pub const TAB_QUEUE: usize = 32;

pub type ConnId = u64;

/// What the store's writer must do, in order.
#[derive(Debug)]
pub enum Persist {
    /// Remember an agent's chosen status: (seat id, agentStatus code).
    Status(i64, i64),
    /// Answer once everything before it is written (shutdown).
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub struct Hub {
    inner: Mutex<Inner>,
    idle: Duration,
    persist: mpsc::UnboundedSender<Persist>,
}

#[derive(Default)]
struct Inner {
    agents: HashMap<i64, AgentSlot>,
    sessions: HashMap<String, SessionSlot>,
    conns: HashMap<ConnId, (i64, String)>,
    /// Each agent's call in progress: its last dialStatus content.
    calls: HashMap<i64, serde_json::Value>,
    next_conn: ConnId,
}

struct AgentSlot {
    agent: Agent,
    tenant_id: i64,
    group_no: String,
    tabs: HashMap<ConnId, TabTx>,
    sessions: HashSet<String>,
    /// The tab that plays and captures the call audio.
    audio: Option<ConnId>,
}

struct SessionSlot {
    seat_id: i64,
    last_seen: Instant,
    last_written: Instant,
    conns: HashSet<ConnId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("no agentStatus code {0}; codes are 1 to 7")]
    InvalidStatus(i64),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("this connection is not signed in")]
    NoConnection,
}

impl HubError {
    /// The `code` of the `error` event a tab receives.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::InvalidStatus(_) => "invalidStatus",
            HubError::Agent(AgentError::BusyWithCall) => "busyWithCall",
            HubError::Agent(AgentError::NotSignedIn) | HubError::NoConnection => "notSignedIn",
            HubError::Agent(_) => "notAvailable",
        }
    }
}

pub fn agent_config(seat: &Seat) -> AgentConfig {
    AgentConfig {
        initial_status: Status::from_code(seat.initial_status).unwrap_or(Status::Idle),
        acw: Some(Duration::from_secs(seat.acw_seconds.max(0) as u64)),
    }
}

pub fn encode(ev: &ServerEvent) -> Utf8Bytes {
    // Serialising our own enum cannot fail.
    Utf8Bytes::from(serde_json::to_string(ev).unwrap_or_default())
}

impl Hub {
    pub fn new(idle: Duration, persist: mpsc::UnboundedSender<Persist>) -> Self {
        Self { inner: Mutex::new(Inner::default()), idle, persist }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere must not take presence down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A user with this seat just signed in with their password.
    pub fn signed_in(&self, session_id: &str, seat: &Seat, now: Instant) {
        let mut inner = self.lock();
        self.join(&mut inner, session_id, seat, true, now);
    }

    fn join(&self, inner: &mut Inner, session_id: &str, seat: &Seat, fresh: bool, now: Instant) {
        let slot = inner.agents.entry(seat.id).or_insert_with(|| AgentSlot {
            agent: Agent::new(agent_config(seat), seat.agent_status.and_then(Status::from_code)),
            tenant_id: seat.tenant_id,
            group_no: seat.group_no.clone(),
            tabs: HashMap::new(),
            sessions: HashSet::new(),
            audio: None,
        });
        slot.agent.set_config(agent_config(seat));
        slot.sessions.insert(session_id.to_string());
        let _ = slot.agent.handle(AgentInput::SignIn { fresh }, now);
        inner.sessions.entry(session_id.to_string()).or_insert(SessionSlot {
            seat_id: seat.id,
            last_seen: now,
            last_written: now,
            conns: HashSet::new(),
        });
        self.flush(inner, seat.id);
    }

    /// A tab of a valid session connected. Returns its id, the state to
    /// show, and whether it holds the audio (the first tab does).
    pub fn attach(&self, session_id: &str, seat: &Seat, tx: TabTx, now: Instant) -> (ConnId, AgentView, bool) {
        let mut inner = self.lock();
        self.join(&mut inner, session_id, seat, false, now);
        inner.next_conn += 1;
        let conn = inner.next_conn;
        inner.conns.insert(conn, (seat.id, session_id.to_string()));
        if let Some(s) = inner.sessions.get_mut(session_id) {
            s.conns.insert(conn);
            s.last_seen = now;
        }
        let slot = inner.agents.get_mut(&seat.id).expect("joined above");
        slot.tabs.insert(conn, tx);
        if slot.audio.is_none() {
            slot.audio = Some(conn);
        }
        let holds = slot.audio == Some(conn);
        let tabs = slot.tabs.len();
        let _ = slot.agent.handle(AgentInput::TabsOnline(tabs), now);
        let view = slot.agent.view();
        self.flush(&mut inner, seat.id);
        (conn, view, holds)
    }

    /// The audio moves to the oldest other tab when its holder is gone.
    fn hand_over_audio(slot: &mut AgentSlot, gone: ConnId) {
        if slot.audio != Some(gone) {
            return;
        }
        slot.audio = slot.tabs.keys().min().copied();
        if let Some(next) = slot.audio {
            if let Some(tx) = slot.tabs.get(&next) {
                let _ = tx.try_send(Outgoing::Text(encode(&ServerEvent::Audio { hold: true })));
            }
        }
    }

    pub fn holds_audio(&self, conn: ConnId) -> bool {
        let inner = self.lock();
        let Some((seat, _)) = inner.conns.get(&conn) else { return false };
        inner.agents.get(seat).is_some_and(|s| s.audio == Some(conn))
    }

    /// Sends an event to every tab of the agent.
    pub fn broadcast(&self, seat_id: i64, ev: &ServerEvent) {
        let inner = self.lock();
        let msg = encode(ev);
        if let Some(slot) = inner.agents.get(&seat_id) {
            for tx in slot.tabs.values() {
                let _ = tx.try_send(Outgoing::Text(msg.clone()));
            }
        }
    }

    /// A tab's connection ended.
    pub fn detach(&self, conn: ConnId, now: Instant) {
        let mut inner = self.lock();
        let Some((seat_id, session_id)) = inner.conns.remove(&conn) else { return };
        if let Some(s) = inner.sessions.get_mut(&session_id) {
            s.conns.remove(&conn);
        }
        if let Some(slot) = inner.agents.get_mut(&seat_id) {
            slot.tabs.remove(&conn);
            Self::hand_over_audio(slot, conn);
            let tabs = slot.tabs.len();
            let _ = slot.agent.handle(AgentInput::TabsOnline(tabs), now);
            self.flush(&mut inner, seat_id);
        }
    }

    /// The agent picked a status in one tab.
    pub fn set_status(&self, conn: ConnId, code: i64, now: Instant) -> Result<(), HubError> {
        let status = Status::from_code(code).ok_or(HubError::InvalidStatus(code))?;
        let mut inner = self.lock();
        let (seat_id, _) = inner.conns.get(&conn).cloned().ok_or(HubError::NoConnection)?;
        let slot = inner.agents.get_mut(&seat_id).ok_or(HubError::NoConnection)?;
        slot.agent.handle(AgentInput::Pick(status), now)?;
        self.flush(&mut inner, seat_id);
        Ok(())
    }

    /// Renews the idle expiry of the connection's session. Returns the
    /// session id when the store should be told too (not on every click).
    pub fn touch(&self, conn: ConnId, now: Instant) -> Option<String> {
        let mut inner = self.lock();
        let (_, session_id) = inner.conns.get(&conn)?.clone();
        let write_every = (self.idle / 4).min(Duration::from_secs(60));
        let s = inner.sessions.get_mut(&session_id)?;
        s.last_seen = now;
        if now.duration_since(s.last_written) >= write_every {
            s.last_written = now;
            return Some(session_id);
        }
        None
    }

    /// The session signed out: its tabs are told and closed. When it was the
    /// agent's last session, the agent is signed out (rule 3).
    pub fn logout(&self, session_id: &str, now: Instant) {
        let mut inner = self.lock();
        self.end_session(&mut inner, session_id, &ServerEvent::LoggedOut, now);
    }

    /// The ACD's choice for an inbound call to a group: the available agent
    /// idle the longest, skipping those already tried for this call.
    pub fn pick_agent(&self, tenant_id: i64, group_no: &str, tried: &[i64]) -> Option<i64> {
        let inner = self.lock();
        inner
            .agents
            .iter()
            .filter(|(id, s)| s.tenant_id == tenant_id && s.group_no == group_no && !tried.contains(id))
            .filter_map(|(id, s)| s.agent.available_since().map(|since| (since, *id)))
            .min()
            .map(|(_, id)| id)
    }

    /// Number of tabs the agent has open.
    pub fn tabs_of(&self, seat_id: i64) -> usize {
        self.lock().agents.get(&seat_id).map(|s| s.tabs.len()).unwrap_or(0)
    }

    /// Runs the agents' timers (wrap-up ends by itself).
    pub fn tick_agents(&self, now: Instant) {
        let mut inner = self.lock();
        let due: Vec<i64> = inner
            .agents
            .iter()
            .filter(|(_, s)| s.agent.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(slot) = inner.agents.get_mut(&id) {
                slot.agent.handle_timeout(now);
            }
            self.flush(&mut inner, id);
        }
    }

    /// Ends every session idle for longer than the expiry; their tabs get
    /// `tokenInvalid`. Returns the ended sessions, for the store to revoke.
    pub fn expire_idle(&self, now: Instant) -> Vec<String> {
        let mut inner = self.lock();
        let expired: Vec<String> = inner
            .sessions
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_seen) > self.idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.end_session(&mut inner, id, &ServerEvent::TokenInvalid, now);
        }
        expired
    }

    fn end_session(&self, inner: &mut Inner, session_id: &str, ev: &ServerEvent, now: Instant) {
        let Some(session) = inner.sessions.remove(session_id) else { return };
        let msg = encode(ev);
        let seat_id = session.seat_id;
        for conn in &session.conns {
            inner.conns.remove(conn);
        }
        let Some(slot) = inner.agents.get_mut(&seat_id) else { return };
        for conn in &session.conns {
            if let Some(tx) = slot.tabs.remove(conn) {
                let _ = tx.try_send(Outgoing::Text(msg.clone()));
                let _ = tx.try_send(Outgoing::Close);
            }
        }
        if let Some(holder) = slot.audio.filter(|h| session.conns.contains(h)) {
            Self::hand_over_audio(slot, holder);
        }
        slot.sessions.remove(session_id);
        let tabs = slot.tabs.len();
        let _ = slot.agent.handle(AgentInput::TabsOnline(tabs), now);
        if slot.sessions.is_empty() {
            let _ = slot.agent.handle(AgentInput::SignOut, now);
        }
        self.flush(inner, seat_id);
    }

    /// Pushes the agent's pending changes to all its tabs and to the store.
    fn flush(&self, inner: &mut Inner, seat_id: i64) {
        let Some(slot) = inner.agents.get_mut(&seat_id) else { return };
        let mut stuck = Vec::new();
        while let Some(AgentEvent::Changed(view)) = slot.agent.poll_event() {
            let _ = self.persist.send(Persist::Status(seat_id, view.status.code() as i64));
            let msg = encode(&ServerEvent::Agent { agent: view });
            for (conn, tx) in &slot.tabs {
                if tx.try_send(Outgoing::Text(msg.clone())).is_err() {
                    stuck.push(*conn);
                }
            }
        }
        for conn in stuck {
            // Dropping the sender ends that tab's connection; it reconnects.
            slot.tabs.remove(&conn);
        }
    }

    /// Waits until every status change so far is in the store.
    pub async fn flush_writes(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.persist.send(Persist::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The seat and session of a tab.
    pub fn conn_seat(&self, conn: ConnId) -> Option<(i64, String)> {
        self.lock().conns.get(&conn).cloned()
    }

    /// Whether the tab's session is still within its idle time.
    pub fn session_alive(&self, conn: ConnId, now: Instant) -> bool {
        let inner = self.lock();
        let Some((_, session)) = inner.conns.get(&conn) else { return false };
        inner.sessions.get(session).is_some_and(|s| now.saturating_duration_since(s.last_seen) <= self.idle)
    }

    /// A call event for the agent's state machine (dial, answer, end).
    pub fn agent_input(&self, seat_id: i64, input: AgentInput, now: Instant) -> Result<(), AgentError> {
        let mut inner = self.lock();
        let slot = inner.agents.get_mut(&seat_id).ok_or(AgentError::NotSignedIn)?;
        slot.agent.handle(input, now)?;
        self.flush(&mut inner, seat_id);
        Ok(())
    }

    /// Sends a dialStatus to every tab of the agent, and remembers it as the
    /// agent's current call until the call ends (code 5), for tabs that
    /// connect in the meantime.
    pub fn dial(&self, seat_id: i64, content: serde_json::Value) {
        let mut inner = self.lock();
        if content["code"] == 5 {
            inner.calls.remove(&seat_id);
        } else if content["code"].as_i64().is_some_and(|c| (0..=2).contains(&c)) {
            inner.calls.insert(seat_id, content.clone());
        }
        let msg = encode(&ServerEvent::Dial { content });
        if let Some(slot) = inner.agents.get_mut(&seat_id) {
            for tx in slot.tabs.values() {
                let _ = tx.try_send(Outgoing::Text(msg.clone()));
            }
        }
    }

    pub fn current_call(&self, seat_id: i64) -> Option<serde_json::Value> {
        self.lock().calls.get(&seat_id).cloned()
    }

    /// Number of live tabs, for metrics and benchmarks.
    pub fn tab_count(&self) -> usize {
        self.lock().conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(id: i64) -> Seat {
        Seat {
            id,
            tenant_id: 1,
            user_id: id,
            sip_num: format!("80{id:02}"),
            group_no: "G001".into(),
            enabled: true,
            acw_seconds: 0,
            initial_status: 1,
            agent_status: None,
        }
    }

    fn hub() -> (Hub, mpsc::UnboundedReceiver<Persist>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Hub::new(Duration::from_secs(10), tx), rx)
    }

    fn tab() -> (TabTx, mpsc::Receiver<Outgoing>) {
        mpsc::channel(TAB_QUEUE)
    }

    fn texts(rx: &mut mpsc::Receiver<Outgoing>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(match m {
                Outgoing::Text(t) => t.to_string(),
                Outgoing::Close => "<close>".into(),
            });
        }
        out
    }

    #[test]
    fn a_status_change_reaches_every_tab_of_the_agent_only() {
        let (hub, mut writes) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        hub.signed_in("s2", &seat(2), t);
        let (tx_a, mut rx_a) = tab();
        let (tx_b, mut rx_b) = tab();
        let (tx_c, mut rx_c) = tab();
        let (a, view, _) = hub.attach("s1", &seat(1), tx_a, t);
        assert_eq!(view.code, Status::Idle);
        hub.attach("s1", &seat(1), tx_b, t);
        hub.attach("s2", &seat(2), tx_c, t);
        hub.set_status(a, 3, t).unwrap();
        let expect = r#"{"ev":"agent","agent":{"code":3,"status":3,"activity":"none"}}"#;
        assert_eq!(texts(&mut rx_a), vec![expect]);
        assert_eq!(texts(&mut rx_b), vec![expect]);
        assert!(texts(&mut rx_c).is_empty());
        let mut saved = Vec::new();
        while let Ok(Persist::Status(seat, code)) = writes.try_recv() {
            saved.push((seat, code));
        }
        assert!(saved.contains(&(1, 3)));
    }

    #[test]
    fn bad_codes_are_refused_without_a_change() {
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (tx, mut rx) = tab();
        let (a, _, _) = hub.attach("s1", &seat(1), tx, t);
        assert_eq!(hub.set_status(a, 9, t), Err(HubError::InvalidStatus(9)));
        assert_eq!(hub.set_status(a, 0, t).unwrap_err().code(), "invalidStatus");
        assert_eq!(hub.set_status(999, 1, t), Err(HubError::NoConnection));
        assert!(texts(&mut rx).is_empty());
    }

    #[test]
    fn logout_closes_every_tab_of_the_session_and_resets_the_agent() {
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (tx_a, mut rx_a) = tab();
        let (tx_b, mut rx_b) = tab();
        let (a, _, _) = hub.attach("s1", &seat(1), tx_a, t);
        hub.attach("s1", &seat(1), tx_b, t);
        hub.set_status(a, 5, t).unwrap();
        texts(&mut rx_a);
        texts(&mut rx_b);
        hub.logout("s1", t);
        assert_eq!(texts(&mut rx_a), vec![r#"{"ev":"loggedOut"}"#, "<close>"]);
        assert_eq!(texts(&mut rx_b), vec![r#"{"ev":"loggedOut"}"#, "<close>"]);
        assert_eq!(hub.tab_count(), 0);
        // Signing in again starts from the initial status (rule 3).
        hub.signed_in("s3", &seat(1), t);
        let (tx, _rx) = tab();
        assert_eq!(hub.attach("s3", &seat(1), tx, t).1.code, Status::Idle);
    }

    #[test]
    fn the_first_tab_holds_the_audio_and_hands_it_over_when_it_goes() {
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (tx_a, _rx_a) = tab();
        let (tx_b, mut rx_b) = tab();
        let (tx_c, mut rx_c) = tab();
        let (a, _, a_holds) = hub.attach("s1", &seat(1), tx_a, t);
        let (b, _, b_holds) = hub.attach("s1", &seat(1), tx_b, t);
        let (c, _, c_holds) = hub.attach("s1", &seat(1), tx_c, t);
        assert_eq!((a_holds, b_holds, c_holds), (true, false, false));
        assert!(hub.holds_audio(a) && !hub.holds_audio(b));
        hub.detach(a, t);
        assert_eq!(texts(&mut rx_b), vec![r#"{"ev":"audio","hold":true}"#]);
        assert!(texts(&mut rx_c).is_empty(), "only one tab takes over");
        assert!(hub.holds_audio(b));
        hub.detach(c, t);
        assert!(texts(&mut rx_b).is_empty(), "a non-holder leaving changes nothing");
    }

    #[test]
    fn the_acd_picks_the_longest_idle_available_agent_of_the_group() {
        let (hub, _w) = hub();
        let t = Instant::now();
        let mut seats = Vec::new();
        for id in 1..=3 {
            let s = seat(id);
            hub.signed_in(&format!("s{id}"), &s, t);
            let (tx, rx) = tab();
            std::mem::forget(rx);
            hub.attach(&format!("s{id}"), &s, tx, t + Duration::from_secs(id as u64));
            seats.push(s);
        }
        assert_eq!(hub.pick_agent(1, "G001", &[]), Some(1));
        assert_eq!(hub.pick_agent(1, "G001", &[1]), Some(2));
        assert_eq!(hub.pick_agent(1, "G002", &[]), None);
        assert_eq!(hub.pick_agent(2, "G001", &[]), None);
        // Agent 1 takes a call: agent 2 is now the longest idle.
        hub.agent_input(1, AgentInput::Assign { call: "c".into() }, t).unwrap();
        assert_eq!(hub.pick_agent(1, "G001", &[]), Some(2));
        // A break is not available.
        hub.agent_input(2, AgentInput::Pick(Status::Meal), t).unwrap();
        assert_eq!(hub.pick_agent(1, "G001", &[]), Some(3));
    }

    #[test]
    fn a_reload_keeps_the_status() {
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (tx, _rx) = tab();
        let (a, _, _) = hub.attach("s1", &seat(1), tx, t);
        hub.set_status(a, 6, t).unwrap();
        hub.detach(a, t);
        let (tx, _rx) = tab();
        assert_eq!(hub.attach("s1", &seat(1), tx, t).1.code, Status::Sleep);
    }

    #[test]
    fn idle_sessions_expire_with_token_invalid_and_activity_renews_them() {
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        hub.signed_in("s2", &seat(2), t);
        let (tx1, mut rx1) = tab();
        let (tx2, mut rx2) = tab();
        hub.attach("s1", &seat(1), tx1, t);
        let (c2, _, _) = hub.attach("s2", &seat(2), tx2, t);
        let t8 = t + Duration::from_secs(8);
        assert_eq!(hub.touch(c2, t8), Some("s2".to_string()), "written after idle/4");
        assert!(hub.expire_idle(t + Duration::from_secs(10)).is_empty());
        let ended = hub.expire_idle(t + Duration::from_secs(11));
        assert_eq!(ended, vec!["s1".to_string()]);
        assert_eq!(texts(&mut rx1), vec![r#"{"ev":"tokenInvalid"}"#, "<close>"]);
        assert!(texts(&mut rx2).is_empty());
    }

    #[test]
    fn a_session_past_its_idle_time_is_not_alive_even_before_the_sweep() {
        // The basis of 813: a callOut that races the expiry sweep is refused.
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (tx, _rx) = tab();
        let (c, _, _) = hub.attach("s1", &seat(1), tx, t);
        assert!(hub.session_alive(c, t + Duration::from_secs(10)));
        assert!(!hub.session_alive(c, t + Duration::from_secs(11)));
        assert!(!hub.session_alive(999, t));
    }

    #[test]
    fn a_stuck_tab_is_dropped_instead_of_blocking_the_others() {
        let (hub, _w) = hub();
        let t = Instant::now();
        hub.signed_in("s1", &seat(1), t);
        let (slow, _keep) = mpsc::channel(1);
        let (fast, mut rx) = tab();
        let (a, _, _) = hub.attach("s1", &seat(1), slow, t);
        hub.attach("s1", &seat(1), fast, t);
        for code in [3, 4, 5] {
            hub.set_status(a, code, t).unwrap();
        }
        assert_eq!(texts(&mut rx).len(), 3);
    }
}
