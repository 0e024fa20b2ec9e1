//! ACD benchmark (issue 10): routing decision time with many agents and
//! callers arriving faster than they are answered, and the cost of the
//! wallboard snapshots the open consoles get (one shared by all of a
//! tenant's consoles, as the server does, and one made per console).
//!
//! Runs the switchboard's sans-IO core on the test floor
//! (`tests/common/mod.rs`: agents with one tab each, a simulated carrier
//! on a perfect network) in simulated time; each input's handling is timed
//! on the wall clock, including the work the switchboard defers to
//! `poll_output` (serving the queues). Every agent answers 2 s after it
//! starts ringing and hangs up after the talk time; callers wait in the
//! group's queue (maximum wait one hour) and never give up.
//!
//! ```text
//! cargo run --release -p seatline-switchboard --example acd_bench -- \
//!     [--agents 500] [--callers 2000] [--rate 20] [--talk 60] [--consoles 20] \
//!     [--strategy longestIdle|roundRobin|fewestCalls|ringAll|all]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use seatline_switchboard::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

struct Args {
    agents: i64,
    callers: usize,
    rate: f64,
    talk: Duration,
    consoles: usize,
    strategies: Vec<Strategy>,
}

fn args() -> Args {
    let mut a = Args {
        agents: 500,
        callers: 2_000,
        rate: 20.0,
        talk: Duration::from_secs(60),
        consoles: 20,
        strategies: vec![
            Strategy::LongestIdle,
            Strategy::RoundRobin,
            Strategy::FewestCalls,
            Strategy::RingAll,
        ],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--agents" => a.agents = num(&flag, &value),
            "--callers" => a.callers = num(&flag, &value),
            "--rate" => a.rate = num(&flag, &value),
            "--talk" => a.talk = Duration::from_secs(num(&flag, &value)),
            "--consoles" => a.consoles = num(&flag, &value),
            "--strategy" if value == "all" => {}
            "--strategy" => {
                let s = Strategy::parse(&value);
                a.strategies = vec![s.unwrap_or_else(|| panic!("bad value for {flag}: {value}"))];
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    assert!(a.agents > 0 && a.agents <= 10_000, "--agents 1 to 10000");
    assert!(a.callers > 0 && a.callers <= 20_000, "--callers 1 to 20000");
    assert!(
        a.rate > 0.0 && a.rate <= 1_000.0,
        "--rate up to 1000 a second"
    );
    assert!(a.consoles <= 1_000, "--consoles up to 1000");
    a
}

fn num<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| panic!("bad value for {flag}: {value}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrive,
    Answer(SeatId),
    HangUp(SeatId),
    /// Once a simulated second: what every open console would get.
    Sample,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn show(label: &str, mut d: Vec<Duration>) {
    d.sort();
    println!(
        "  {label:<34} n={:>6}  median {:>7.1} us  p99 {:>8.1} us  max {:>8.1} us",
        d.len(),
        percentile(&d, 0.5).as_secs_f64() * 1e6,
        percentile(&d, 0.99).as_secs_f64() * 1e6,
        d.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

fn run(a: &Args, strategy: Strategy) {
    let mut w = World::routed(GroupRouting {
        strategy,
        max_missed: 0,
        max_wait_secs: 3_600,
        overflow: Overflow::HangUp,
        ring_timeout_secs: 0,
        announce_lang: None,
    });
    for seat in 1..=a.agents {
        w.sign_in(seat);
    }
    w.timing = true;
    let start = w.now;
    let mut events: BinaryHeap<Reverse<(Instant, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<_>, at: Instant, e: Event| {
        seq += 1;
        events.push(Reverse((at, seq, e)));
    };
    for i in 0..a.callers {
        let at = start + Duration::from_secs_f64(i as f64 / a.rate);
        push(&mut events, at, Event::Arrive);
    }
    push(&mut events, start, Event::Sample);
    let (mut rung_seen, mut media_seen) = (0, w.media.len());
    let (mut answered, mut max_waiting) = (0usize, 0usize);
    let (mut snapshots, mut shared) = (Vec::new(), Vec::new());
    let wall = Instant::now();
    while let Some(Reverse((at, _, ev))) = events.pop() {
        if at > w.now {
            w.advance(at - w.now);
        }
        match ev {
            Event::Arrive => {
                w.inbound();
            }
            Event::Answer(seat) => {
                w.input("answer", |sb, now| sb.answer(seat, true, now));
                w.step();
            }
            Event::HangUp(seat) => {
                w.input("hangUp", |sb, now| sb.hang_up(seat, now));
                w.step();
            }
            Event::Sample => {
                // The server shares one snapshot among a tenant's consoles
                // (made and serialised once); made per console it would cost
                // the second figure.
                let t0 = Instant::now();
                let board = w.sb.wallboard(1, w.now);
                std::hint::black_box(serde_json::to_string(&board).unwrap());
                shared.push(t0.elapsed());
                let t0 = Instant::now();
                for _ in 0..a.consoles {
                    let board = w.sb.wallboard(1, w.now);
                    std::hint::black_box(serde_json::to_string(&board).unwrap());
                }
                snapshots.push(t0.elapsed());
                let waiting: usize = board.queues.iter().map(|q| q.waiting as usize).sum();
                max_waiting = max_waiting.max(waiting);
                if !events.is_empty() {
                    push(&mut events, w.now + Duration::from_secs(1), Event::Sample);
                }
            }
        }
        for &seat in &w.rung[rung_seen..] {
            push(
                &mut events,
                w.now + Duration::from_secs(2),
                Event::Answer(seat),
            );
        }
        rung_seen = w.rung.len();
        // An agent's audio joined a call: it talks, then hangs up.
        for m in &w.media[media_seen..] {
            if let MediaOut::Bridge { seat, .. } = m {
                if *seat > 0 {
                    answered += 1;
                    push(&mut events, w.now + a.talk, Event::HangUp(*seat));
                }
            }
        }
        media_seen = w.media.len();
    }
    w.advance(Duration::from_secs(5));
    let wall = wall.elapsed();
    let decisions: Vec<Duration> = w
        .timed
        .iter()
        .filter(|t| t.offers > 0)
        .map(|t| t.took)
        .collect();
    let routes: Vec<Duration> = w
        .timed
        .iter()
        .filter(|t| t.kind == "route")
        .map(|t| t.took)
        .collect();
    let served: Vec<Duration> = w
        .timed
        .iter()
        .filter(|t| t.kind != "route" && t.offers > 0)
        .map(|t| t.took)
        .collect();
    let all: Vec<Duration> = w.timed.iter().map(|t| t.took).collect();
    println!(
        "strategy {}: {} agents, {} callers at {}/s, talk {} s; answered {answered}, \
         most waiting at once {max_waiting}, simulated {:.0} s in {:.2} s of wall time",
        strategy.as_str(),
        a.agents,
        a.callers,
        a.rate,
        a.talk.as_secs(),
        (w.now - start).as_secs_f64(),
        wall.as_secs_f64(),
    );
    show("routing decisions (offers made)", decisions);
    show("  a new caller routed (offer/queue)", routes);
    show("  an agent freed, queue served", served);
    show("every input (SIP, timers, agents)", all);
    show(
        &format!("wallboard shared by {} consoles", a.consoles),
        shared,
    );
    show(
        &format!("wallboard made for each of {}", a.consoles),
        snapshots,
    );
}

fn main() {
    let a = args();
    for &s in &a.strategies {
        run(&a, s);
    }
}
