//! Menus (IVR) per DID, in simulated time: a caller to a DID with a menu is
//! answered once and hears the DID's prompt; a digit sends the call to its
//! option's group (with the option's skill), where it rings, waits or ends
//! as a call routed there directly would; wrong digits and silence lead to
//! the menu's default or to the end; a caller who hangs up in the menu
//! leaves an unanswered record; digits that are not a menu's change
//! nothing. The floor is `common/mod.rs`.

mod common;

use common::*;
use seatline_agent::Status;
use seatline_calls::record::HungUpBy;
use seatline_switchboard::*;
use std::time::Duration;

const SALES: &str = "G002";

fn choice(group: &str, skill: Option<&str>) -> MenuChoice {
    MenuChoice {
        group_no: group.into(),
        skill: skill.map(str::to_string),
    }
}

/// 1: support (G001), 2: sales (G002); 10 s to choose; no default.
fn menu() -> Menu {
    Menu {
        options: vec![('1', choice(GROUP, None)), ('2', choice(SALES, None))],
        timeout_secs: 10,
        default: None,
    }
}

/// Agent 1 in support, agent 2 in sales; the DID has `menu`.
fn floor(menu: Menu) -> (World, ConnId, ConnId) {
    let mut w = World::new();
    w.menu = Some(menu);
    let support = w.sign_in(1);
    let sales = w.sign_in_to(2, SALES);
    (w, support, sales)
}

/// The waiting key the prompt plays at (the last prompt started).
fn prompt_key(w: &World) -> SeatId {
    w.media
        .iter()
        .rev()
        .find_map(|m| match m {
            MediaOut::Prompt { seat, .. } => Some(*seat),
            _ => None,
        })
        .expect("a prompt for the caller")
}

fn music_at(w: &World, key: SeatId) -> bool {
    w.media
        .iter()
        .any(|m| matches!(m, MediaOut::Music { seat, on: true, .. } if *seat == key))
}

fn press(w: &mut World, key: SeatId, digits: &str) {
    for d in digits.chars() {
        w.input("digit", |sb, now| sb.carrier_digit(key, d, now));
        w.step();
    }
}

fn wall_state(w: &World) -> Vec<String> {
    w.sb.wallboard(1, w.now)
        .calls
        .iter()
        .map(|c| c.state.to_string())
        .collect()
}

#[test]
fn the_caller_is_answered_hears_the_prompt_and_a_digit_rings_that_options_group() {
    let (mut w, support, sales) = floor(menu());
    let call = w.inbound();
    // Answered at once, the DID's prompt at the call's waiting key, and
    // nobody rings while the caller chooses.
    assert_eq!(answered_by_us(&w, call), 1);
    assert!(w.media.iter().any(|m| matches!(m,
        MediaOut::Prompt { tenant_id: 1, did, .. } if did == "12025550170")));
    let key = prompt_key(&w);
    assert!(w.bridged.contains(&key));
    assert!(w.rung.is_empty());
    assert_eq!(wall_state(&w), vec!["menu"]);

    w.advance(Duration::from_secs(3));
    press(&mut w, key, "2");
    // Sales rings; the caller hears music in place of the prompt.
    assert_eq!(w.rung, vec![2]);
    assert!(music_at(&w, key));
    assert_eq!(dial_codes(&w, sales), vec![1]);
    assert!(dial_codes(&w, support).is_empty());
    assert_eq!(wall_state(&w), vec!["ringing"]);

    w.sb.answer(2, true, w.now);
    w.advance(Duration::from_secs(1));
    // Bridged to the agent without a second answer to the carrier.
    assert_eq!(answered_by_us(&w, call), 1);
    assert!(w.bridged.contains(&2) && !w.bridged.contains(&key));
    assert_eq!(dial_codes(&w, sales), vec![1, 2]);
    // A digit now is the customer's to the agent, not a menu choice.
    press(&mut w, key, "1");
    assert_eq!(w.rung, vec![2]);

    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(Duration::from_secs(1));
    let last = w.saved.last().unwrap();
    assert!(last.connected_ms.is_some() && last.hangup_ms.is_some());
    assert_eq!(last.hung_up_by, Some(HungUpBy::Customer));
}

#[test]
fn an_options_skill_is_required_of_the_agent() {
    let mut m = menu();
    m.options.push(('3', choice(GROUP, Some("es"))));
    let mut w = World::new();
    w.menu = Some(m);
    w.sign_in(1);
    w.advance(Duration::from_secs(5));
    // Agent 3 idled less long, but speaks Spanish.
    w.sign_in_skilled(3, &[("es", 4)]);
    w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "3");
    assert_eq!(w.rung, vec![3]);
}

#[test]
fn wrong_digits_are_ignored_twice_and_the_third_ends_the_call_without_a_default() {
    let (mut w, support, sales) = floor(menu());
    let call = w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "97");
    assert!(w.rung.is_empty() && !ended_by_us(&w, call));
    press(&mut w, key, "#");
    assert!(ended_by_us(&w, call), "BYE after the third wrong digit");
    assert!(w.rung.is_empty());
    assert!(dial_codes(&w, support).is_empty() && dial_codes(&w, sales).is_empty());
    let last = w.saved.last().unwrap();
    assert!(last.connected_ms.is_none() && last.hangup_ms.is_some());
    assert_eq!(last.hung_up_by, Some(HungUpBy::System));
    assert!(!w.bridged.contains(&key), "the prompt stops");
}

#[test]
fn wrong_digits_then_a_right_one_choose_and_too_many_take_the_default() {
    let mut m = menu();
    m.default = Some('1');
    let (mut w, _, _) = floor(m.clone());
    w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "*2");
    assert_eq!(w.rung, vec![2]);

    let (mut w, _, _) = floor(m);
    let call = w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "555");
    assert_eq!(w.rung, vec![1], "the default, support");
    assert!(!ended_by_us(&w, call));
}

#[test]
fn silence_until_the_timeout_takes_the_default_or_ends_the_call() {
    let mut m = menu();
    m.default = Some('2');
    let (mut w, _, _) = floor(m);
    w.inbound();
    w.advance(Duration::from_millis(9_900));
    assert!(w.rung.is_empty());
    w.advance(Duration::from_millis(200));
    assert_eq!(w.rung, vec![2]);

    let (mut w, _, _) = floor(menu());
    let call = w.inbound();
    w.advance(Duration::from_millis(9_900));
    assert!(!ended_by_us(&w, call));
    w.advance(Duration::from_millis(200));
    assert!(ended_by_us(&w, call));
    assert!(w.rung.is_empty());
}

#[test]
fn a_caller_who_hangs_up_in_the_menu_leaves_an_unanswered_record() {
    let (mut w, _, _) = floor(menu());
    let call = w.inbound();
    let key = prompt_key(&w);
    w.advance(Duration::from_secs(4));
    let now = w.now;
    w.carrier.hang_up(call, now);
    w.advance(Duration::from_secs(1));
    let last = w.saved.last().unwrap();
    assert!(last.connected_ms.is_none());
    assert_eq!(last.hung_up_by, Some(HungUpBy::Customer));
    assert!(!w.bridged.contains(&key));
    assert!(wall_state(&w).is_empty());
    // A digit after the end changes nothing, and nothing rings later.
    press(&mut w, key, "1");
    w.advance(Duration::from_secs(30));
    assert!(w.rung.is_empty());
}

#[test]
fn digits_from_nowhere_or_not_keys_change_nothing() {
    let (mut w, _, _) = floor(menu());
    let call = w.inbound();
    let key = prompt_key(&w);
    let saved = w.saved.len();
    // Another key, a seat's id, and characters that are no key.
    press(&mut w, key - 2, "1");
    press(&mut w, 1, "2");
    for d in ['x', 'A', '\u{0}', '١'] {
        w.input("digit", |sb, now| sb.carrier_digit(key, d, now));
        w.step();
    }
    assert!(w.rung.is_empty() && !ended_by_us(&w, call));
    assert_eq!(w.saved.len(), saved);
    // The caller still chooses after that (no wrong digit was counted).
    press(&mut w, key, "1");
    assert_eq!(w.rung, vec![1]);
}

#[test]
fn an_option_whose_group_queues_keeps_the_caller_waiting_with_music() {
    let (mut w, _, _) = floor(menu());
    w.sb.set_group_routing(
        1,
        SALES,
        GroupRouting {
            max_wait_secs: 60,
            ..GroupRouting::default()
        },
    );
    w.sb.set_status(2, Status::Busy, w.now).unwrap();
    w.step();
    let call = w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "2");
    assert!(w.rung.is_empty());
    assert!(music_at(&w, key));
    assert_eq!(wall_state(&w), vec!["queued"]);
    assert_eq!(answered_by_us(&w, call), 1);
    w.advance(Duration::from_secs(5));
    w.sb.set_status(2, Status::Idle, w.now).unwrap();
    w.step();
    assert_eq!(w.rung, vec![2]);
    w.sb.answer(2, true, w.now);
    w.advance(Duration::from_secs(1));
    assert_eq!(answered_by_us(&w, call), 1);
    assert!(w.bridged.contains(&2));
}

#[test]
fn an_option_nobody_can_take_and_that_does_not_queue_ends_the_call() {
    let (mut w, _, _) = floor(menu());
    w.sb.set_status(2, Status::Busy, w.now).unwrap();
    w.step();
    let call = w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "2");
    assert!(ended_by_us(&w, call));
    assert_eq!(w.saved.last().unwrap().hung_up_by, Some(HungUpBy::System));
}

#[test]
fn a_stored_menu_a_caller_could_not_use_is_refused() {
    let mut m = menu();
    m.options.clear();
    let (mut w, _, _) = floor(m);
    let call = w.inbound();
    assert!(w.refused(call, 503));
    assert!(w.rung.is_empty() && w.bridged.is_empty());
}

#[test]
fn the_chosen_groups_ring_time_applies() {
    let (mut w, _, _) = floor(menu());
    w.sb.set_group_routing(
        1,
        SALES,
        GroupRouting {
            ring_timeout_secs: 3,
            ..GroupRouting::default()
        },
    );
    let call = w.inbound();
    let key = prompt_key(&w);
    press(&mut w, key, "2");
    assert_eq!(w.rung, vec![2]);
    w.advance(Duration::from_millis(2_900));
    assert!(!ended_by_us(&w, call));
    // Rung out at its only agent, in a group that does not queue: the end.
    w.advance(Duration::from_millis(200));
    assert!(ended_by_us(&w, call));
}
