//! Queues per group in simulated time: each strategy's choice of agent,
//! and an agent who lets offers ring out set to Busy at exactly the Nth
//! ring timeout. The floor (agents, tabs, a simulated carrier placing
//! inbound calls) is `common/mod.rs`.

mod common;

use common::*;
use seatline_agent::Status;
use seatline_protocol::ServerEvent;
use seatline_sip::UaEvent;
use seatline_switchboard::*;
use std::time::Duration;

fn routing(strategy: Strategy, max_missed: u32) -> GroupRouting {
    GroupRouting {
        strategy,
        max_missed,
        ..GroupRouting::default()
    }
}

#[test]
fn a_group_without_routing_is_longest_idle_with_three_missed_offers() {
    let w = World::routed(routing(Strategy::RoundRobin, 0));
    assert_eq!(
        w.sb.group_routing(1, "G002"),
        routing(Strategy::LongestIdle, 3)
    );
    assert_eq!(w.sb.group_routing(2, GROUP), GroupRouting::default());
    assert_eq!(
        w.sb.group_routing(1, GROUP),
        routing(Strategy::RoundRobin, 0)
    );
    for s in [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
        Strategy::RingAll,
        Strategy::Skills,
    ] {
        assert_eq!(Strategy::parse(s.as_str()), Some(s));
    }
    assert_eq!(Strategy::parse("ringall"), None);
    assert_eq!(Strategy::parse("LONGESTIDLE"), None);
}

#[test]
fn longest_idle_rings_the_agent_available_the_longest() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 3));
    w.sign_in(2);
    w.advance(Duration::from_secs(1));
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 2, "seat 2 waited longest");
    // Seat 2 is available again only from the end of that call.
    assert_eq!(w.answered_call(), 1);
    assert_eq!(w.answered_call(), 2);
}

#[test]
fn round_robin_goes_on_after_the_last_seat_offered_skipping_unavailable_ones() {
    let mut w = World::routed(routing(Strategy::RoundRobin, 3));
    // Signed in 3, 2, 1: longest idle would ring 3 first.
    for seat in [3, 2, 1] {
        w.sign_in(seat);
        w.advance(Duration::from_secs(1));
    }
    assert_eq!(w.answered_call(), 1, "nobody offered yet: the lowest seat");
    assert_eq!(w.answered_call(), 2);
    w.sb.set_status(3, Status::Busy, w.now).unwrap();
    assert_eq!(w.answered_call(), 1, "seat 3 is busy: around to seat 1");
    w.sb.set_status(3, Status::Idle, w.now).unwrap();
    assert_eq!(w.answered_call(), 2);
    assert_eq!(w.answered_call(), 3);
    // An offer that rings out moves on in the same order.
    let call = w.inbound();
    assert_eq!(w.rung.last(), Some(&1));
    w.advance(RING);
    assert_eq!(
        w.rung.last(),
        Some(&2),
        "the ring timeout goes on to seat 2"
    );
    w.sb.answer(2, true, w.now);
    w.step();
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call)));
}

#[test]
fn fewest_calls_rings_the_agent_who_answered_fewest_and_ties_go_to_the_longest_idle() {
    let mut w = World::routed(routing(Strategy::FewestCalls, 3));
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 1);
    // Seat 2 comes after that call ended: longest idle would ring seat 1.
    w.sign_in(2);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 2, "seat 2 answered none yet");
    w.sign_in(3);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.answered_call(), 3);
    // One each: the longest idle (seat 1, free since its call ended first).
    assert_eq!(w.answered_call(), 1);
    assert_eq!(
        [1, 2, 3].map(|s| w.sb.answered_calls(s)),
        [2, 1, 1],
        "answered inbound calls per seat"
    );
    // A rejected offer or one that rang out is not an answered call.
    w.inbound();
    assert_eq!(w.rung.last(), Some(&2));
    w.sb.answer(2, false, w.now);
    w.step();
    assert_eq!(w.rung.last(), Some(&3), "seat 2 rejected: seat 3 next");
    w.advance(RING);
    assert_eq!(w.rung.last(), Some(&1), "seat 3 let it ring out: seat 1");
    assert_eq!([1, 2, 3].map(|s| w.sb.answered_calls(s)), [2, 1, 1]);
}

#[test]
fn an_agent_who_lets_n_offers_ring_out_is_busy_at_exactly_the_nth_ring_timeout() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 2));
    let tab = w.sign_in(1);
    let first = w.inbound();
    w.advance(RING);
    assert!(w.refused(first, 480), "nobody else: 480");
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    let second = w.inbound();
    assert_eq!(w.rung, vec![1, 1]);
    w.advance(RING - Duration::from_millis(1));
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
    w.advance(Duration::from_millis(1));
    assert!(w.refused(second, 480));
    assert_eq!(w.status(1), Some(2), "Busy (agentStatus 2), saved");
    let errors = w.errors(tab);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "missedOffers");
    assert!(errors[0].1.contains("Busy"), "{}", errors[0].1);
    let last_view = w.tabs[&tab].iter().rev().find_map(|e| match e {
        ServerEvent::Agent { agent } => Some(agent.status),
        _ => None,
    });
    assert_eq!(last_view, Some(Status::Busy), "the tab shows Busy");
    // No more offers: the next caller gets 480 at once.
    let third = w.inbound();
    assert!(w.refused(third, 480));
    assert_eq!(w.rung, vec![1, 1]);
    // Back to Idle by choice, the count starts from zero again.
    w.sb.set_status(1, Status::Idle, w.now).unwrap();
    w.step();
    w.inbound();
    w.advance(RING);
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert_eq!(w.errors(tab).len(), 1);
}

#[test]
fn a_busy_agent_for_missed_offers_leaves_the_call_to_the_next_one() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 1));
    let a = w.sign_in(1);
    w.advance(Duration::from_secs(1));
    let b = w.sign_in(2);
    let call = w.inbound();
    w.advance(RING);
    assert_eq!(w.rung, vec![1, 2]);
    assert_eq!(w.status(1), Some(2));
    assert_eq!(w.errors(a).len(), 1);
    assert!(w.errors(b).is_empty(), "only the agent who missed is told");
    w.sb.answer(2, true, w.now);
    w.step();
    assert!(w
        .carrier_events
        .iter()
        .any(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call)));
}

#[test]
fn answering_or_rejecting_an_offer_resets_the_missed_count() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 2));
    let tab = w.sign_in(1);
    w.inbound();
    w.advance(RING); // missed 1
    w.answered_call(); // back to 0
    w.inbound();
    w.advance(RING); // missed 1
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    w.inbound();
    w.sb.answer(1, false, w.now); // a reject: back to 0
    w.advance(Duration::from_secs(1));
    w.inbound();
    w.advance(RING); // missed 1
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
    w.inbound();
    w.advance(RING); // missed 2 in a row
    assert_eq!(w.status(1), Some(2));
    assert_eq!(w.errors(tab).len(), 1);
}

#[test]
fn a_caller_who_hangs_up_while_it_rings_is_no_missed_offer() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 1));
    let tab = w.sign_in(1);
    let call = w.inbound();
    w.advance(Duration::from_secs(5));
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(RING);
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
}

#[test]
fn with_max_missed_zero_an_agent_is_never_set_busy() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 0));
    let tab = w.sign_in(1);
    for _ in 0..5 {
        w.inbound();
        w.advance(RING);
    }
    assert_eq!(w.rung, vec![1; 5]);
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    assert!(w.errors(tab).is_empty());
}

fn bridged_to(w: &World) -> Vec<SeatId> {
    w.media
        .iter()
        .filter_map(|m| match m {
            MediaOut::Bridge { seat, .. } => Some(*seat),
            _ => None,
        })
        .collect()
}

fn answered(w: &World, call: seatline_sip::CallRef) -> usize {
    w.carrier_events
        .iter()
        .filter(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call))
        .count()
}

#[test]
fn ring_all_rings_every_available_agent_and_the_first_to_answer_takes_it() {
    let mut w = World::routed(routing(Strategy::RingAll, 3));
    let a = w.sign_in(1);
    let b = w.sign_in(2);
    let c = w.sign_in(3);
    w.sb.set_status(3, Status::Busy, w.now).unwrap();
    w.advance(Duration::from_secs(1));
    let call = w.inbound();
    let mut rung = w.rung.clone();
    rung.sort();
    assert_eq!(
        rung,
        vec![1, 2],
        "every available agent rings, not the busy one"
    );
    assert_eq!(dial_codes(&w, a), vec![1]);
    assert_eq!(dial_codes(&w, b), vec![1]);
    assert!(dial_codes(&w, c).is_empty());
    w.advance(Duration::from_secs(3));
    w.sb.answer(2, true, w.now);
    w.step();
    assert_eq!(answered(&w, call), 1);
    assert_eq!(
        bridged_to(&w),
        vec![2],
        "the audio goes to the agent who answered"
    );
    assert_eq!(dial_codes(&w, b), vec![1, 2]);
    assert_eq!(dial_codes(&w, a), vec![1, 5], "it stops ringing at seat 1");
    assert_eq!(w.status(1), Some(Status::Idle.code() as i64));
    // A late answer from seat 1 changes nothing.
    w.sb.answer(1, true, w.now);
    w.advance(Duration::from_secs(1));
    assert_eq!(answered(&w, call), 1);
    assert_eq!(bridged_to(&w), vec![2]);
    assert_eq!(dial_codes(&w, a), vec![1, 5]);
    // The record names the agent who answered; nobody missed an offer.
    let last = w.saved.last().unwrap();
    assert!(last.connected_ms.is_some());
    assert!(w.errors(a).is_empty() && w.errors(b).is_empty());
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(Duration::from_secs(1));
    assert_eq!(dial_codes(&w, b), vec![1, 2, 5]);
    assert_eq!(dial_codes(&w, a), vec![1, 5], "seat 1 hears nothing more");
    assert_eq!(w.sb.answered_calls(2), 1);
    assert_eq!(w.sb.answered_calls(1), 0);
}

#[test]
fn ring_all_a_reject_drops_only_that_agent_and_the_last_reject_moves_on() {
    let mut w = World::routed(routing(Strategy::RingAll, 3));
    let a = w.sign_in(1);
    let b = w.sign_in(2);
    let call = w.inbound();
    assert_eq!(w.rung.len(), 2);
    w.sb.answer(1, false, w.now);
    w.step();
    assert_eq!(dial_codes(&w, a), vec![1, 5]);
    assert_eq!(dial_codes(&w, b), vec![1], "still ringing at seat 2");
    assert!(!w.refused(call, 480));
    // A hang-up on a ringing offer is a reject too.
    w.sb.hang_up(2, w.now);
    w.step();
    assert_eq!(dial_codes(&w, b), vec![1, 5]);
    assert!(w.refused(call, 480), "nobody left who has not rung: 480");
}

#[test]
fn ring_all_nobody_answering_is_a_missed_offer_for_each_and_a_new_agent_rings_next() {
    let mut w = World::routed(routing(Strategy::RingAll, 1));
    let a = w.sign_in(1);
    let b = w.sign_in(2);
    let call = w.inbound();
    w.advance(RING - Duration::from_secs(1));
    // Seat 3 becomes available while the offer rings elsewhere.
    let c = w.sign_in(3);
    assert!(dial_codes(&w, c).is_empty());
    w.advance(Duration::from_secs(1));
    assert_eq!(w.status(1), Some(2), "missed once with maxMissed 1: Busy");
    assert_eq!(w.status(2), Some(2));
    assert_eq!(w.errors(a).len(), 1);
    assert_eq!(w.errors(b).len(), 1);
    assert_eq!(dial_codes(&w, a), vec![1, 5]);
    assert_eq!(
        dial_codes(&w, c),
        vec![1],
        "the ring timeout goes on to seat 3"
    );
    w.sb.answer(3, true, w.now);
    w.step();
    assert_eq!(answered(&w, call), 1);
}

#[test]
fn ring_all_the_caller_hanging_up_stops_it_at_every_agent_without_a_miss() {
    let mut w = World::routed(routing(Strategy::RingAll, 1));
    let a = w.sign_in(1);
    let b = w.sign_in(2);
    let call = w.inbound();
    w.advance(Duration::from_secs(4));
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(RING);
    for (seat, tab) in [(1, a), (2, b)] {
        assert_eq!(dial_codes(&w, tab), vec![1, 5], "seat {seat}");
        assert_eq!(w.status(seat), Some(Status::Idle.code() as i64));
        assert!(w.errors(tab).is_empty());
    }
    let last = w.saved.last().unwrap();
    assert!(last.connected_ms.is_none() && last.hangup_ms.is_some());
}

#[test]
fn ring_all_an_agent_whose_tabs_all_close_stops_ringing_and_the_call_rings_on() {
    let mut w = World::routed(routing(Strategy::RingAll, 3));
    let a = w.sign_in(1);
    let b = w.sign_in(2);
    let call = w.inbound();
    let now = w.now;
    w.sb.tab_closed(1, a, now);
    w.seat_tabs.remove(&1);
    w.advance(Duration::from_secs(11));
    assert!(!w.refused(call, 480));
    assert_eq!(dial_codes(&w, b), vec![1]);
    w.sb.answer(1, true, w.now);
    w.step();
    assert_eq!(answered(&w, call), 0, "seat 1 no longer rings");
    w.sb.answer(2, true, w.now);
    w.step();
    assert_eq!(answered(&w, call), 1);
    assert_eq!(bridged_to(&w), vec![2]);
}

#[test]
fn skills_rings_the_highest_level_of_the_required_skill_and_ties_go_to_the_longest_idle() {
    let mut w = World::routed(routing(Strategy::Skills, 3));
    w.sign_in_skilled(1, &[("es", 3)]);
    w.advance(Duration::from_secs(1));
    w.sign_in_skilled(2, &[("es", 8), ("vip", 1)]);
    w.advance(Duration::from_secs(1));
    w.sign_in_skilled(3, &[("es", 8)]);
    w.advance(Duration::from_secs(1));
    w.sign_in(4);
    w.advance(Duration::from_secs(1));
    w.skill = Some("es".into());
    assert_eq!(w.answered_call(), 2, "level 8, idle longer than seat 3");
    assert_eq!(w.answered_call(), 3, "level 8");
    assert_eq!(w.answered_call(), 2, "level 8 again, now idle longer");
    // Seat 4 has no Spanish: never offered a call that requires it.
    w.sb.set_status(2, Status::Busy, w.now).unwrap();
    w.sb.set_status(3, Status::Busy, w.now).unwrap();
    w.step();
    assert_eq!(w.answered_call(), 1, "the only one left with es");
    // A call that requires nothing goes to the longest idle (seat 4).
    w.skill = None;
    assert_eq!(w.answered_call(), 4);
}

#[test]
fn any_strategy_offers_a_skilled_call_only_to_agents_with_the_skill() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 3));
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    w.sign_in_skilled(2, &[("vip", 1)]);
    w.advance(Duration::from_secs(1));
    w.skill = Some("vip".into());
    assert_eq!(w.answered_call(), 2, "seat 1 is idle longer but has no vip");
    // Seat 2 rejects: nobody else has vip, so 480 (the group does not queue).
    let call = w.inbound();
    assert_eq!(w.rung.last(), Some(&2));
    w.sb.answer(2, false, w.now);
    w.step();
    assert!(w.refused(call, 480));
    assert!(!w.rung.contains(&1), "seat 1 never rang");
    // Ring-all rings only the skilled ones too.
    let mut w = World::routed(routing(Strategy::RingAll, 3));
    w.sign_in(1);
    w.sign_in_skilled(2, &[("vip", 1)]);
    w.sign_in_skilled(3, &[("vip", 9)]);
    w.skill = Some("vip".into());
    w.inbound();
    let mut rung = w.rung.clone();
    rung.sort();
    assert_eq!(rung, vec![2, 3]);
    // An admin gives seat 1 the skill: the next call rings it too.
    w.sb.answer(2, true, w.now);
    w.step();
    w.sb.set_agent_skills(1, vec![("vip".into(), 2)]);
    w.inbound();
    assert_eq!(w.rung[2..], [1, 3], "the free ones, seat 1 included");
}

#[test]
fn a_groups_own_ring_time_moves_an_unanswered_offer_on_sooner() {
    let mut w = World::routed(GroupRouting {
        ring_timeout_secs: 5,
        ..GroupRouting::default()
    });
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    w.sign_in(2);
    w.inbound();
    assert_eq!(w.rung, vec![1]);
    w.advance(Duration::from_millis(4_900));
    assert_eq!(w.rung, vec![1]);
    w.advance(Duration::from_millis(200));
    assert_eq!(w.rung, vec![1, 2], "the next agent after 5 s, not {RING:?}");
    // 0 is the switchboard's own ring time.
    let mut w = World::new();
    w.sign_in(1);
    w.advance(Duration::from_secs(1));
    w.sign_in(2);
    w.inbound();
    w.advance(RING - Duration::from_millis(100));
    assert_eq!(w.rung, vec![1]);
    w.advance(Duration::from_millis(200));
    assert_eq!(w.rung, vec![1, 2]);
}

#[test]
fn a_group_s_new_wrap_up_holds_its_signed_in_agents_after_their_next_call() {
    let mut w = World::routed(routing(Strategy::LongestIdle, 3));
    w.sign_in(1);
    w.sign_in_to(2, "G002");
    assert_eq!(w.answered_call(), 1);
    // No wrap-up: free again at once.
    assert_eq!(w.answered_call(), 1);
    // The admin gives the group 60 s of wrap-up; another group's agent
    // keeps none.
    w.sb.set_group_acw(1, GROUP, Some(Duration::from_secs(60)));
    w.sb.set_group_acw(1, "G002", None);
    assert_eq!(
        w.answered_call(),
        1,
        "the change holds from the next call's end"
    );
    let call = w.inbound();
    assert!(
        w.refused(call, 480),
        "seat 1 wraps up: nobody of the group is free"
    );
    // answered_call lets 1 s pass after the hang-up.
    w.advance(Duration::from_secs(57));
    let call = w.inbound();
    assert!(w.refused(call, 480), "still in wrap-up after 58 s");
    w.advance(Duration::from_secs(2));
    assert_eq!(w.answered_call(), 1, "free after the 60 s");
}

/// Several nodes: a group call that no agent here can take is sent (302)
/// to the node that holds idle agents of the group; one an agent here can
/// take stays; a call another node already moved here is never moved on,
/// it waits here. So one node decides for each agent.
#[test]
fn a_call_no_agent_here_can_take_moves_once_to_the_node_with_idle_agents() {
    let mut w = World::routed(GroupRouting {
        max_wait_secs: 60,
        ..GroupRouting::default()
    });
    w.elsewhere = Some("sip:127.0.0.1:5099".into());
    // No agent signed in here.
    let call = w.inbound();
    assert!(w.refused(call, 302), "{:?}", w.carrier_events);
    assert_eq!(w.sb.moved_calls(), 1);
    assert!(w.sb.is_idle(), "nothing kept of it here");

    // An idle agent here takes it here.
    w.sign_in(1);
    let call = w.inbound();
    assert_eq!(w.rung, vec![1]);
    assert!(!w.refused(call, 302));
    // That agent is now ringing: the next call moves.
    let next = w.inbound();
    assert!(w.refused(next, 302));
    assert_eq!(w.sb.moved_calls(), 2);

    // A call moved here already waits here, and rings the agent once free.
    let moved = w.inbound_with(&[(MOVED_HEADER.into(), "a".into())]);
    assert!(!w.refused(moved, 302), "{:?}", w.carrier_events);
    assert_eq!(w.sb.moved_calls(), 2);
    // The first call's caller gives up: the agent is free for the moved one.
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(Duration::from_secs(1));
    assert_eq!(w.rung, vec![1, 1], "the moved call rang the agent here");

    // A forged target is no header: the call is answered 500.
    w.elsewhere = Some("sip:x@h>\r\nVia: forged".into());
    let forged = w.inbound();
    assert!(w.refused(forged, 500), "{:?}", w.carrier_events);
}
