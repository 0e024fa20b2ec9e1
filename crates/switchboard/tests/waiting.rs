//! Callers waiting in a group's queue, in simulated time: answered once
//! with music while nobody is free, served first come first as agents
//! free up, put back in their place when an offer rings out, moved to the
//! overflow group when the wait runs out and then ended, and leaving an
//! unanswered record (never a ringing agent) when they hang up. The floor
//! is `common/mod.rs`.

mod common;

use common::*;
use seatline_agent::Status;
use seatline_calls::record::HungUpBy;
use seatline_switchboard::*;
use std::time::Duration;

const OVERFLOW: &str = "G002";

fn waits(secs: u32, overflow: Overflow) -> GroupRouting {
    GroupRouting {
        max_wait_secs: secs,
        overflow,
        ..GroupRouting::default()
    }
}

/// A floor whose group queues callers for two minutes, with agent 1
/// signed in and Busy.
fn busy_floor() -> (World, ConnId) {
    let mut w = World::routed(waits(120, Overflow::HangUp));
    let tab = w.sign_in(1);
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.step();
    (w, tab)
}

/// The waiting key of the call whose music started last.
fn music_key(w: &World) -> SeatId {
    w.media
        .iter()
        .rev()
        .find_map(|m| match m {
            MediaOut::Music { seat, on: true, .. } => Some(*seat),
            _ => None,
        })
        .expect("music for the waiting caller")
}

fn bridged_at(w: &World, key: SeatId) -> bool {
    w.media
        .iter()
        .any(|m| matches!(m, MediaOut::Bridge { seat, .. } if *seat == key))
}

fn unbridged_at(w: &World, key: SeatId) -> bool {
    w.media
        .iter()
        .any(|m| matches!(m, MediaOut::Unbridge { seat } if *seat == key))
}

#[test]
fn a_caller_nobody_can_take_waits_with_music_and_the_first_free_agent_takes_it() {
    let (mut w, tab) = busy_floor();
    let call = w.inbound();
    // Answered once, to wait, with music at the call's waiting key; no
    // agent rings and nobody is refused.
    assert_eq!(answered_by_us(&w, call), 1);
    assert!(!w.refused(call, 480));
    let key = music_key(&w);
    assert!(key < 0, "a waiting call's key is never a seat");
    assert!(bridged_at(&w, key));
    assert!(w.rung.is_empty());
    w.advance(Duration::from_secs(30));
    let board = w.sb.wallboard(1, w.now);
    assert_eq!(board.calls.len(), 1);
    assert_eq!(board.calls[0].state, "queued");
    assert_eq!(board.queues[0].waiting, 1);
    assert_eq!(board.queues[0].longest_wait_secs, 30);

    // The agent frees up: the caller rings them at once.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert_eq!(w.rung, vec![1]);
    assert_eq!(dial_codes(&w, tab), vec![1]);
    w.advance(Duration::from_secs(3));
    w.sb.answer(1, true, w.now);
    w.step();
    // No second answer to the carrier: the music stops (the waiting key
    // is unbridged) and the agent is bridged in its place.
    assert_eq!(answered_by_us(&w, call), 1);
    assert!(unbridged_at(&w, key));
    assert!(bridged_at(&w, 1));
    assert_eq!(dial_codes(&w, tab), vec![1, 2]);
    let unbridge = w
        .media
        .iter()
        .position(|m| matches!(m, MediaOut::Unbridge { seat } if *seat == key));
    let bridge = w
        .media
        .iter()
        .position(|m| matches!(m, MediaOut::Bridge { seat: 1, .. }));
    assert!(
        unbridge < bridge,
        "the waiting leg lets go before the agent's joins"
    );
    let board = w.sb.wallboard(1, w.now);
    assert_eq!(board.calls[0].state, "connected");
    assert!(board.queues.is_empty());
    w.carrier.hang_up(call, w.now);
    w.advance(Duration::from_secs(1));
    let r = w.saved.last().unwrap();
    assert_eq!(r.connected_ms.map(|c| c - r.start_ms), Some(33_000));
}

#[test]
fn callers_are_served_in_the_order_they_came() {
    let (mut w, _) = busy_floor();
    let first = w.inbound();
    w.advance(Duration::from_secs(5));
    let second = w.inbound();
    w.advance(Duration::from_secs(5));
    assert_eq!(w.sb.queue_position(first), Some(1));
    assert_eq!(w.sb.queue_position(second), Some(2));
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert_eq!(w.rung, vec![1]);
    // The first rings the agent; the second moves up.
    assert_eq!(w.sb.queue_position(first), None);
    assert_eq!(w.sb.queue_position(second), Some(1));
    w.sb.answer(1, true, w.now);
    w.step();
    let connected = w.sb.wallboard(1, w.now).calls;
    let first_id = connected
        .iter()
        .find(|c| c.state == "connected")
        .map(|c| c.secs);
    assert_eq!(first_id, Some(0));
    // The longest waiting one is still the one in line: 5 s younger.
    let waiting: Vec<u64> = connected
        .iter()
        .filter(|c| c.state == "queued")
        .map(|c| c.secs)
        .collect();
    assert_eq!(waiting, vec![5]);
}

#[test]
fn an_offer_that_rings_out_puts_the_caller_back_in_its_place() {
    let (mut w, _) = busy_floor();
    let first = w.inbound();
    w.advance(Duration::from_secs(1));
    let second = w.inbound();
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert_eq!(w.rung, vec![1]);
    assert_eq!(w.sb.queue_position(second), Some(1));
    // Nobody answers for the ring timeout: the first caller is first in
    // line again (never refused), and, the agent being free again, rings
    // them once more.
    w.advance(RING);
    assert!(!w.refused(first, 480));
    assert_eq!(w.rung, vec![1, 1]);
    assert_eq!(w.sb.queue_position(first), None);
    assert_eq!(w.sb.queue_position(second), Some(1));
    assert_eq!(answered_by_us(&w, first), 1);
}

#[test]
fn a_wait_that_runs_out_overflows_once_then_the_call_ends() {
    let mut w = World::routed(waits(60, Overflow::Group(OVERFLOW.into())));
    w.sb.set_group_routing(1, OVERFLOW, waits(30, Overflow::Group(GROUP.into())));
    w.sign_in(1);
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.step();
    let call = w.inbound();
    let key = music_key(&w);
    w.advance(Duration::from_millis(59_999));
    assert_eq!(w.sb.wallboard(1, w.now).queues[0].group, GROUP);
    w.advance(Duration::from_millis(1));
    // In the overflow group now, for that group's 30 s.
    let board = w.sb.wallboard(1, w.now);
    assert_eq!(board.queues.len(), 1);
    assert_eq!(board.queues[0].group, OVERFLOW);
    assert!(!ended_by_us(&w, call));
    // An agent of the first group freeing up does not take it any more.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert!(w.rung.is_empty());
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.step();
    w.advance(Duration::from_millis(29_999));
    assert!(!ended_by_us(&w, call));
    // Its overflow would lead back: a call overflows once, so it ends.
    w.advance(Duration::from_millis(1));
    assert!(ended_by_us(&w, call), "the caller gets a BYE");
    assert!(!w.refused(call, 480));
    assert!(unbridged_at(&w, key), "the music stops");
    let r = w.saved.last().unwrap();
    assert_eq!(r.connected_ms, None);
    assert_eq!(r.hangup_ms.map(|h| h - r.start_ms), Some(90_000));
    assert_eq!(r.hung_up_by, Some(HungUpBy::System));
    assert!(w.sb.wallboard(1, w.now).calls.is_empty());
}

#[test]
fn an_agent_of_the_overflow_group_takes_the_call_when_it_gets_there() {
    let mut w = World::routed(waits(60, Overflow::Group(OVERFLOW.into())));
    w.sb.set_group_routing(1, OVERFLOW, waits(30, Overflow::HangUp));
    w.sign_in(1);
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.sign_in_to(2, OVERFLOW);
    w.step();
    // Agent 2 (the overflow group) is free all along, but the call is the
    // first group's until its wait runs out.
    w.inbound();
    w.advance(Duration::from_secs(59));
    assert!(w.rung.is_empty());
    w.advance(Duration::from_secs(1));
    assert_eq!(w.rung, vec![2]);
}

#[test]
fn a_caller_who_hangs_up_while_waiting_leaves_a_record_and_rings_nobody() {
    let (mut w, tab) = busy_floor();
    let call = w.inbound();
    let key = music_key(&w);
    w.advance(Duration::from_secs(42));
    w.carrier.hang_up(call, w.now);
    w.advance(Duration::from_secs(1));
    assert!(unbridged_at(&w, key), "the music stops");
    let r = w.saved.last().unwrap();
    assert_eq!(r.connected_ms, None);
    assert_eq!(r.hangup_ms.map(|h| h - r.start_ms), Some(42_000));
    assert_eq!(r.hung_up_by, Some(HungUpBy::Customer));
    assert_eq!(w.sb.queue_position(call), None);
    // The agent freeing up afterwards hears nothing of it.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert!(w.rung.is_empty());
    assert!(dial_codes(&w, tab).is_empty());
    let board = w.sb.wallboard(1, w.now);
    assert!(board.calls.is_empty() && board.queues.is_empty());
    assert_eq!(board.today.abandoned, 1);
}

#[test]
fn a_group_without_a_maximum_wait_still_refuses_with_480() {
    let mut w = World::new();
    w.sign_in(1);
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.step();
    let call = w.inbound();
    assert!(w.refused(call, 480));
    assert_eq!(answered_by_us(&w, call), 0);
    assert!(!w.media.iter().any(|m| matches!(m, MediaOut::Music { .. })));
}

#[test]
fn a_waiting_caller_whose_carrier_goes_silent_is_ended_after_the_rtp_timeout() {
    let (mut w, tab) = busy_floor();
    let call = w.inbound();
    let key = music_key(&w);
    // Heard from: still waiting well past one RTP timeout (30 s).
    w.advance(Duration::from_secs(45));
    assert_eq!(w.sb.queue_position(call), Some(1));
    w.carrier_silent = true;
    w.advance(Duration::from_secs(30) - Duration::from_millis(1));
    assert_eq!(w.sb.queue_position(call), Some(1), "not before the timeout");
    w.advance(Duration::from_millis(1));
    assert!(ended_by_us(&w, call), "a BYE to the carrier");
    assert_eq!(w.sb.queue_position(call), None);
    assert!(unbridged_at(&w, key), "the music stops");
    let r = w.saved.last().unwrap();
    assert_eq!(r.connected_ms, None);
    assert_eq!(r.hung_up_by, Some(HungUpBy::System));
    assert_eq!(r.hangup_code, Some(800), "the carrier's network went");
    // An agent freeing up afterwards rings for nothing.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert!(w.rung.is_empty());
    assert!(dial_codes(&w, tab).is_empty());
}

#[test]
fn a_waiting_caller_nobody_free_can_take_does_not_hold_up_the_callers_behind_it() {
    let (mut w, tab) = busy_floor();
    // First in line: a caller who needs Spanish; nobody has it.
    w.skill = Some("es".into());
    let first = w.inbound();
    w.advance(Duration::from_secs(2));
    w.skill = None;
    let second = w.inbound();
    assert_eq!(w.sb.queue_position(first), Some(1));
    assert_eq!(w.sb.queue_position(second), Some(2));
    // Agent 1 (no Spanish) frees up: the second caller rings at once.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert_eq!(w.rung, vec![1]);
    assert_eq!(dial_codes(&w, tab), vec![1]);
    assert_eq!(w.sb.queue_position(second), None);
    assert_eq!(
        w.sb.queue_position(first),
        Some(1),
        "still first, still waiting"
    );
    w.sb.answer(1, true, w.now);
    w.step();
    assert_eq!(answered_by_us(&w, second), 1);
    // A Spanish speaker signs in: the first caller is theirs.
    w.sign_in_skilled(5, &[("es", 4)]);
    assert_eq!(w.rung, vec![1, 5]);
    assert_eq!(w.sb.queue_position(first), None);
}

/// Every announcement so far: (waiting key, language, place, minutes).
fn told(w: &World) -> Vec<(SeatId, String, u32, Option<u32>)> {
    w.media
        .iter()
        .filter_map(|m| match m {
            MediaOut::Announce {
                seat,
                lang,
                position,
                minutes,
            } => Some((*seat, lang.clone(), *position, *minutes)),
            _ => None,
        })
        .collect()
}

/// A floor like `busy_floor`, whose group tells callers their place in
/// Spanish, with agents 1 and 2 signed in and Busy.
fn announcing_floor() -> World {
    let mut w = World::routed(GroupRouting {
        max_wait_secs: 600,
        announce_lang: Some("es-MX".into()),
        ..GroupRouting::default()
    });
    for seat in [1, 2] {
        w.sign_in(seat);
        w.sb.set_status(seat, Status::Busy, w.now).unwrap();
    }
    w.step();
    w
}

#[test]
fn waiting_callers_are_told_their_place_and_wait_at_once_then_every_30_s() {
    let mut w = announcing_floor();
    let first = w.inbound();
    w.advance(Duration::from_millis(1));
    let k1 = music_key(&w);
    // Place 1; 180 s of handle time (none measured yet) shared by two
    // signed-in agents: 90 s, said as 2 minutes.
    assert_eq!(told(&w), vec![(k1, "es-MX".to_string(), 1, Some(2))]);
    w.advance(Duration::from_secs(5));
    w.inbound();
    w.advance(Duration::from_millis(1));
    let k2 = music_key(&w);
    assert_eq!(told(&w)[1], (k2, "es-MX".to_string(), 2, Some(3)));
    // Nothing more until each one's 30 s are up.
    w.advance(Duration::from_secs(24));
    assert_eq!(told(&w).len(), 2);
    w.advance(Duration::from_secs(1));
    assert_eq!(told(&w).len(), 3);
    assert_eq!(told(&w)[2].2, 1);
    // The first caller hangs up: the second is told it moved up.
    let now = w.now;
    w.carrier.hang_up(first, now);
    w.advance(Duration::from_secs(6));
    assert_eq!(told(&w)[3], (k2, "es-MX".to_string(), 1, Some(2)));
    // An agent frees up and takes it: nothing is said any more.
    w.sb.set_status(2, Status::Idle, w.now).unwrap();
    w.step();
    w.sb.answer(2, true, w.now);
    w.advance(Duration::from_secs(90));
    assert_eq!(told(&w).len(), 4);
}

#[test]
fn a_caller_ringing_an_agent_is_not_told_and_is_again_when_back_in_line() {
    let mut w = announcing_floor();
    w.inbound();
    w.advance(Duration::from_millis(1));
    assert_eq!(told(&w).len(), 1);
    // Agent 1 is free and rings, past the caller's next turn to be told.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    assert_eq!(w.rung, vec![1]);
    w.advance(Duration::from_secs(19));
    assert_eq!(told(&w).len(), 1, "nothing is said while it rings");
    // Agent 1 rejects it and goes Busy: back in line, it is told again
    // at its next turn.
    w.sb.answer(1, false, w.now);
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.step();
    w.advance(Duration::from_secs(31));
    assert_eq!(told(&w).len(), 2);
    assert_eq!(told(&w)[1].2, 1);
}

#[test]
fn a_group_without_a_language_says_nothing_and_nobody_signed_in_gives_no_wait() {
    let (mut w, _) = busy_floor();
    w.inbound();
    w.advance(Duration::from_secs(61));
    assert!(told(&w).is_empty());
    // A group that announces, with nobody signed in: the place only.
    let mut w = World::routed(GroupRouting {
        max_wait_secs: 600,
        announce_lang: Some("zh-CN".into()),
        ..GroupRouting::default()
    });
    w.inbound();
    w.advance(Duration::from_millis(1));
    assert_eq!(told(&w).len(), 1);
    assert_eq!((told(&w)[0].2, told(&w)[0].3), (1, None));
}

#[test]
fn the_expected_wait_follows_the_groups_talk_time() {
    let mut w = World::routed(GroupRouting {
        max_wait_secs: 600,
        announce_lang: Some("en-US".into()),
        ..GroupRouting::default()
    });
    w.sign_in(1);
    // One answered call of 10 minutes.
    let call = w.inbound();
    w.sb.answer(1, true, w.now);
    w.advance(Duration::from_secs(600));
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(Duration::from_secs(1));
    w.sb.set_status(1, Status::Busy, w.now).unwrap();
    w.step();
    w.inbound();
    w.advance(Duration::from_millis(1));
    assert_eq!(told(&w).last().unwrap().3, Some(10));
}
