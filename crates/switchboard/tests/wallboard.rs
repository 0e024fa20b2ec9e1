//! The wallboard in simulated time: an agent's status and time in it, a
//! call from ringing to connected to gone, the day's answered, abandoned
//! and service-level counts, the change notices the shell pushes on, and
//! the supervisor's actions. The floor (agents, tabs, a simulated carrier
//! placing inbound calls) is `common/mod.rs`, as in `queues.rs`.

mod common;

use common::*;
use seatline_agent::Status;
use seatline_protocol::ServerEvent;
use seatline_switchboard::*;
use std::time::Duration;

impl World {
    fn board(&self) -> Wallboard {
        self.sb.wallboard(1, self.now)
    }

    fn agent(&self, seat: SeatId) -> WallAgent {
        self.board()
            .agents
            .into_iter()
            .find(|a| a.seat_id == seat)
            .expect("the agent is on the wallboard")
    }

    /// The change notices since the last call, emptied.
    fn notices(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.changed)
    }

    fn agent_events(&self, conn: ConnId) -> Vec<AgentStatusCode> {
        self.tabs
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                ServerEvent::Agent { agent } => Some(agent.code),
                _ => None,
            })
            .collect()
    }
}

use seatline_protocol::AgentStatusCode;

fn label(user_id: i64) -> AgentLabel {
    AgentLabel {
        user_id,
        email: format!("agent{user_id}@example.com"),
        seat: format!("80{user_id}"),
    }
}

#[test]
fn a_status_change_shows_with_its_time_in_status_and_one_notice() {
    let mut w = World::new();
    w.sign_in(1);
    w.sb.set_agent_label(1, label(11));
    w.step();
    // Sign-in and label: two inputs, each batch with one notice for tenant 1.
    assert_eq!(w.notices(), vec![1, 1]);
    w.advance(Duration::from_secs(5));
    assert!(w.notices().is_empty(), "time passing is no change");
    let a = w.agent(1);
    assert_eq!(
        (a.agent_id, a.email.as_deref(), a.seat.as_deref()),
        (Some(11), Some("agent11@example.com"), Some("8011"))
    );
    assert!(a.signed_in);
    assert_eq!((a.code, a.status, a.tabs), (1, 1, 1));
    assert_eq!(a.secs_in_status, 5);

    let now = w.now;
    w.sb.set_status(1, Status::Meal, now).unwrap();
    w.step();
    assert_eq!(w.notices(), vec![1]);
    assert_eq!((w.agent(1).code, w.agent(1).secs_in_status), (4, 0));
    w.advance(Duration::from_secs(3));
    assert_eq!(w.agent(1).secs_in_status, 3);

    // Another tenant's wallboard does not show the agent.
    assert!(w.sb.wallboard(2, w.now).agents.is_empty());
    // Serialised in camelCase for the console.
    let json = serde_json::to_value(w.board()).unwrap();
    assert_eq!(json["agents"][0]["secsInStatus"], 3);
    assert_eq!(json["agents"][0]["agentId"], 11);
    assert_eq!(json["today"]["serviceLevelPct"], serde_json::Value::Null);

    // Signing out shows too.
    let now = w.now;
    w.sb.sign_out(1, now);
    w.step();
    assert_eq!(w.notices(), vec![1]);
    assert!(!w.agent(1).signed_in);
}

#[test]
fn a_call_shows_ringing_then_connected_then_is_gone() {
    let mut w = World::new();
    w.sign_in(1);
    w.sb.set_agent_label(1, label(11));
    w.notices();
    let call = w.inbound();
    // INVITE, routing, ringing: a few inputs, each with one notice at most.
    let notices = w.notices();
    assert!(!notices.is_empty() && notices.iter().all(|t| *t == 1));
    w.advance(Duration::from_secs(4));
    let b = w.board();
    assert_eq!(b.calls.len(), 1);
    let c = &b.calls[0];
    assert_eq!(
        (c.direction, c.state, c.number.as_str(), c.secs),
        ("inbound", "ringing", "14155550111", 4)
    );
    assert_eq!(
        (c.seat_id, c.agent_id, c.group.as_deref()),
        (Some(1), Some(11), Some(GROUP))
    );
    assert_eq!(b.queues.len(), 1);
    assert_eq!(
        (
            b.queues[0].group.as_str(),
            b.queues[0].waiting,
            b.queues[0].longest_wait_secs
        ),
        (GROUP, 1, 4)
    );
    assert_eq!(w.agent(1).activity, "ringing");

    let now = w.now;
    w.sb.answer(1, true, now);
    w.step();
    assert_eq!(w.notices(), vec![1], "connected: a notice");
    w.advance(Duration::from_secs(10));
    let b = w.board();
    assert_eq!(
        (b.calls[0].state, b.calls[0].secs, b.calls[0].mos),
        ("connected", 10, None)
    );
    assert!(b.queues.is_empty(), "an answered caller waits no more");
    assert_eq!(
        (w.agent(1).activity.as_str(), w.agent(1).code),
        ("inCall", 2)
    );
    assert_eq!(b.today.answered, 1);

    let now = w.now;
    w.sb.quality(
        1,
        QualityFigures {
            packets: 100,
            loss_pct: 0.0,
            jitter_ms: 2.0,
            rtt_ms: 20.0,
            mos: 4.3,
        },
        now,
    );
    w.step();
    assert_eq!(w.board().calls[0].mos, Some(4.3));

    w.carrier.hang_up(call, now);
    w.step();
    let notices = w.notices();
    assert!(
        !notices.is_empty() && notices.iter().all(|t| *t == 1),
        "gone: a notice"
    );
    let b = w.board();
    assert!(b.calls.is_empty());
    assert_eq!((b.today.answered, b.today.abandoned), (1, 0));
    assert_eq!(b.today.service_level_pct, Some(100.0));
}

#[test]
fn the_day_counts_answered_abandoned_and_service_level() {
    let mut w = World::new();
    w.sign_in(1);
    w.sign_in(2);
    // A: answered after 3 s (within the service level).
    let a = w.inbound();
    w.advance(Duration::from_secs(3));
    let seat = *w.rung.last().unwrap();
    let now = w.now;
    w.sb.answer(seat, true, now);
    w.advance(Duration::from_secs(5));
    let now = w.now;
    w.carrier.hang_up(a, now);
    w.advance(Duration::from_secs(1));

    // B: rings out at one agent (20 s), answered by the other 5 s later.
    let b = w.inbound();
    let first = *w.rung.last().unwrap();
    w.advance(Duration::from_secs(21));
    let second = *w.rung.last().unwrap();
    assert_ne!(first, second, "the ring timeout moved the call on");
    w.advance(Duration::from_secs(4));
    let now = w.now;
    w.sb.answer(second, true, now);
    w.advance(Duration::from_secs(1));
    let now = w.now;
    w.carrier.hang_up(b, now);
    w.advance(Duration::from_secs(1));

    // C: the caller hangs up while it rings.
    let c = w.inbound();
    w.advance(Duration::from_secs(2));
    let now = w.now;
    w.carrier.hang_up(c, now);
    w.advance(Duration::from_secs(1));

    // D: nobody available: refused, and counted abandoned too.
    for seat in [1, 2] {
        let now = w.now;
        w.sb.set_status(seat, Status::Meeting, now).unwrap();
    }
    let d = w.inbound();
    w.advance(Duration::from_secs(1));
    assert!(w.refused(d, 480));

    let t = w.board().today;
    assert_eq!((t.answered, t.answered_within_sl, t.abandoned), (2, 1, 2));
    assert_eq!(t.service_level_pct, Some(25.0));
    assert!(w.board().calls.is_empty());
    assert_eq!(t.day, T0_MS / 86_400_000);
    // Another tenant's day is its own.
    assert_eq!(w.sb.wallboard(2, w.now).today.answered, 0);

    // The next day starts from zero.
    w.advance(Duration::from_secs(86_400));
    let t = w.board().today;
    assert_eq!((t.answered, t.abandoned, t.service_level_pct), (0, 0, None));
    assert_eq!(t.day, T0_MS / 86_400_000 + 1);
}

#[test]
fn a_supervisor_forces_a_status_like_the_agent_would_within_the_tenant_only() {
    let mut w = World::new();
    let conn = w.sign_in(1);
    w.notices();
    let now = w.now;
    // Another tenant's supervisor, or a seat nobody knows: not found, nothing moves.
    assert_eq!(
        w.sb.supervise(2, 1, Supervise::SetStatus(Status::Meal), now),
        Err(SuperviseError::NotFound)
    );
    assert_eq!(
        w.sb.supervise(1, 99, Supervise::SignOut, now),
        Err(SuperviseError::NotFound)
    );
    w.step();
    assert!(w.notices().is_empty());
    assert_eq!(w.agent(1).code, 1);

    w.sb.supervise(1, 1, Supervise::SetStatus(Status::Meal), now)
        .unwrap();
    w.step();
    assert_eq!(w.agent_events(conn).last(), Some(&AgentStatusCode::Meal));
    assert_eq!(w.status(1), Some(4), "saved like the agent's own pick");
    assert_eq!(w.notices(), vec![1]);
    assert_eq!(w.sb.supervise(1, 1, Supervise::SignOut, now), Ok(()));

    // Not while a call rings at the agent (the agent's own rule).
    w.sb.supervise(1, 1, Supervise::SetStatus(Status::Idle), now)
        .unwrap();
    w.step();
    w.inbound();
    let now = w.now;
    assert_eq!(
        w.sb.supervise(1, 1, Supervise::SetStatus(Status::Meal), now),
        Err(SuperviseError::Agent(
            seatline_agent::AgentError::BusyWithCall
        ))
    );
}
