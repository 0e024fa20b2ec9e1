//! The demo data shows every reason code from a real rule: the demo
//! tenant's countries, blacklist and per-minute limit, the `broke` tenant's
//! empty balance, the `trial` tenant's two calls a day, the sandbox numbers.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Places a call; the codes the tab saw up to its end (hanging up an
/// answered or ringing call), and the end.
async fn codes(ws: &mut Ws, callee: &str, cc: &str, caller: &str) -> (Vec<i64>, Value) {
    let op = json!({"op": "callOut", "caller": caller, "callee": callee, "countryCode": cc});
    ws.send(Message::text(op.to_string())).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let d = dial(ws).await;
        let code = d["code"].as_i64().expect("a dialStatus");
        seen.push(code);
        match code {
            2 => ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap(),
            5 => return (seen, d),
            _ => {}
        }
    }
}

#[tokio::test]
async fn every_reason_code_comes_from_a_rule_of_the_demo_data() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let refused = [
        ("12025550166", "1", "", 814),            // blacklisted
        ("4915112345678", "49", "", 811),         // Germany is not allowed
        ("12345", "1", "", 812),                  // not a number
        ("12025550100", "1", "12025550999", 816), // a caller ID the tenant does not own
    ];
    for (callee, cc, caller, code) in refused {
        let (seen, end) = codes(&mut ws, callee, cc, caller).await;
        assert_eq!(seen, vec![code, 5], "{callee}");
        assert_eq!(end["hangupCode"], code, "{callee}");
    }
    let (seen, end) = codes(&mut ws, "12025550150", "1", "").await;
    assert_eq!(
        (seen, end["hangupCode"].clone()),
        (vec![0, 800, 5], json!(800))
    );
    let (seen, _) = codes(&mut ws, "12025550100", "1", "12025550179").await;
    assert_eq!(seen, vec![0, 819, 5], "the carrier refuses that caller ID");
    // Five attempts a minute to one number, answered or not.
    for _ in 0..5 {
        let (seen, _) = codes(&mut ws, "12025550103", "1", "").await;
        assert_eq!(seen, vec![0, 5], "declined");
    }
    let (seen, end) = codes(&mut ws, "12025550103", "1", "").await;
    assert_eq!(
        (seen, end["hangupCode"].clone()),
        (vec![815, 5], json!(815))
    );

    // The broke tenant: no credit.
    let mut broke = tab_of(&running, "broke@demo.local").await;
    let (seen, _) = codes(&mut broke, "12025550101", "1", "").await;
    assert_eq!(seen, vec![810, 5]);

    // The trial tenant: two calls today, then 817.
    let mut trial = tab_of(&running, "trial@demo.local").await;
    for _ in 0..2 {
        let (seen, _) = codes(&mut trial, "12025550101", "1", "").await;
        assert_eq!(seen, vec![0, 2, 5]);
    }
    let (seen, _) = codes(&mut trial, "12025550101", "1", "").await;
    assert_eq!(seen, vec![817, 5]);
}
