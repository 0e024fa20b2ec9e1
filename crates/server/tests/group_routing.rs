//! A group's queue settings through the admin API: bad input is refused
//! with a JSON error and changes nothing, and a stored setting rules the
//! real call path: with `maxMissed` 1, an agent who lets one inbound call
//! (from SIPp, the carrier) ring out is set to Busy and told why.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use seatline_server::config::TrunkConfig;
use serde_json::{json, Value};
use support::*;

async fn put(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .put(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn token(base: &str, email: &str) -> String {
    sign_in(base, email).await["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_group_routing_is_validated_and_a_missed_offer_sets_the_agent_busy() {
    let sipp_port = free_udp_port();
    let trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{sipp_port}"));
    let (_dir, running) = start_with(vec![trunk], |c| c.calls.ring_timeout_secs = 1).await;
    let base = format!("http://{}", running.addr);
    let admin = token(&base, "admin@demo.local").await;
    let agent = token(&base, "agent1@demo.local").await;
    const PATH: &str = "/api/v1/admin/groups/G001/routing";

    for (body, why) in [
        (json!({"strategy": "ringall", "maxMissed": 3}), "strategy"),
        (json!({"strategy": "LONGESTIDLE", "maxMissed": 3}), "case"),
        (
            json!({"strategy": "roundRobin", "maxMissed": -1}),
            "negative",
        ),
        (
            json!({"strategy": "roundRobin", "maxMissed": 101}),
            "too many",
        ),
        (
            json!({"strategy": "roundRobin", "maxMissed": 1.5}),
            "fraction",
        ),
        (json!({"strategy": "roundRobin"}), "missing"),
        (
            json!({"strategy": "roundRobin", "maxMissed": 1, "x": 1}),
            "unknown field",
        ),
        (json!([1, 2]), "not an object"),
    ] {
        let (code, err) = put(&base, PATH, Some(&admin), body).await;
        assert_eq!(code, 400, "{why}: {err}");
        assert!(
            err["error"].is_string() && err["message"].is_string(),
            "{why}: {err}"
        );
    }
    let long = format!("/api/v1/admin/groups/{}/routing", "G".repeat(33));
    let ok = json!({"strategy": "fewestCalls", "maxMissed": 1});
    let (code, err) = put(&base, &long, Some(&admin), ok.clone()).await;
    assert_eq!((code, err["error"].as_str()), (400, Some("badRouting")));
    let (code, err) = put(
        &base,
        "/api/v1/admin/groups/G999/routing",
        Some(&admin),
        ok.clone(),
    )
    .await;
    assert_eq!((code, err["error"].as_str()), (404, Some("notFound")));
    let (code, _) = put(&base, PATH, Some(&agent), ok.clone()).await;
    assert_eq!(code, 403, "an agent is not an admin");
    let (code, _) = put(&base, PATH, None, ok.clone()).await;
    assert_eq!(code, 401);
    let (code, _) = put(&base, PATH, Some(&admin), ok).await;
    assert_eq!(code, 204);
    let stored = running.app.store.group_routings().await.unwrap();
    let g = stored
        .iter()
        .find(|g| g.group_no == "G001" && g.strategy != "longestIdle")
        .expect("the setting is stored");
    assert_eq!((g.strategy.as_str(), g.max_missed), ("fewestCalls", 1));

    // One inbound call rings agent1 for 1 s and rings out: agent1 is Busy.
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let media = free_udp_port().to_string();
    let sip = running.app.calls.sip_addr.to_string();
    let port = sipp_port.to_string();
    let mut sipp = sipp(&[
        &sip,
        "-sf",
        scenario("caller_inbound.xml").to_str().unwrap(),
        "-s",
        "12025550170",
        "-p",
        &port,
        "-mp",
        &media,
    ]);
    assert_eq!(dial(&mut ws).await["code"], 1, "agent1 rings");
    let mut busy = false;
    let error = loop {
        let ev = next(&mut ws).await;
        match ev["ev"].as_str() {
            Some("agent") => busy = ev["agent"]["status"] == 2,
            Some("error") => break ev,
            Some("closed") => panic!("the tab closed: {ev}"),
            _ => {}
        }
    };
    assert_eq!(error["code"], "missedOffers", "{error}");
    assert!(busy, "agentStatus 2 before the reason");
    let _ = sipp.kill().await;
}
