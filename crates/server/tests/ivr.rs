//! Menus (IVR) per DID through the real binary: an admin gives a DID a
//! menu and a prompt (bad ones refused with JSON errors, changing
//! nothing); the sandbox carrier calls that DID, is answered at once and
//! hears the prompt (its level, not the waiting music's), presses 1
//! (RFC 4733), and the call rings the agent with the option's skill, who
//! answers it. The rules themselves are tested in simulated time in
//! `crates/switchboard/tests/ivr.rs`.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const DID: &str = "12025550172";

async fn route_of(c: &Api, admin: &str, did: &str) -> Value {
    let (_, list) = c.get("/api/v1/admin/dids", admin).await;
    list["dids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["number"] == did)
        .unwrap()["route"]
        .clone()
}

/// The sandbox's inbound call to `to`, as its caller lived it.
async fn placed(c: &Api, to: &str) -> Value {
    let r = c
        .http
        .get(format!("{}/api/v1/sandbox/calls", c.base))
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    b["calls"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|p| p["to"] == to)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_caller_hears_the_dids_prompt_presses_1_and_rings_the_agent_with_the_options_skill() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let admin = c.token("admin@demo.local").await;
    let route = format!("/api/v1/admin/dids/{DID}/route");
    let before = route_of(&c, &admin, DID).await;

    // Bad menus are refused with the protocol's JSON errors, and change nothing.
    let menu = |m: Value| json!({ "menu": m });
    for (body, code, error) in [
        (menu(json!({"options": {}})), 400, "badMenu"),
        (
            menu(json!({"options": {"12": {"group": "G001"}}})),
            400,
            "badMenu",
        ),
        (
            menu(json!({"options": {"x": {"group": "G001"}}})),
            400,
            "badMenu",
        ),
        (
            menu(json!({"options": {"1": {"group": "G001"}}, "timeoutSecs": 0})),
            400,
            "badMenu",
        ),
        (
            menu(json!({"options": {"1": {"group": "G001"}}, "timeoutSecs": 301})),
            400,
            "badMenu",
        ),
        (
            menu(json!({"options": {"1": {"group": "G001"}}, "default": "2"})),
            400,
            "badMenu",
        ),
        (
            menu(json!({"options": {"1": {"group": "G001", "skill": "no way"}}})),
            400,
            "badMenu",
        ),
        (
            menu(json!({"options": {"1": {"group": "G999"}}})),
            404,
            "notFound",
        ),
        (
            json!({"group": "G001", "menu": {"options": {"1": {"group": "G001"}}}}),
            400,
            "badRoute",
        ),
        (
            menu(json!({"options": {"1": {"group": "G001", "level": 3}}})),
            400,
            "badRequest",
        ),
    ] {
        let (got, b) = c.put(&route, &admin, body.clone()).await;
        assert_eq!(
            (got, b["error"].as_str()),
            (code, Some(error)),
            "{body}: {b}"
        );
        assert!(b["message"].is_string(), "{body}: {b}");
    }
    assert_eq!(route_of(&c, &admin, DID).await, before);
    let agent_token = c.token("agent1@demo.local").await;
    let good = menu(json!({
        "options": {"1": {"group": "G001", "skill": "es"}, "2": {"group": "G001"}},
        "timeoutSecs": 20
    }));
    let (got, _) = c.put(&route, &agent_token, good.clone()).await;
    assert_eq!(got, 403, "an agent is not an admin");
    let (got, b) = c.put(&route, &admin, good).await;
    assert_eq!(got, 204, "{b}");
    assert_eq!(
        route_of(&c, &admin, DID).await,
        json!({"menu": {"options": {"1": {"group": "G001", "skill": "es"}, "2": {"group": "G001"}}, "timeoutSecs": 20}})
    );

    // The prompt: a WAV file, for the tenant's own DIDs only.
    let prompt = format!("/api/v1/admin/dids/{DID}/prompt");
    let (got, _) = c.get(&prompt, &admin).await;
    assert_eq!(got, 404, "no prompt yet");
    let (got, b) = send(
        &c,
        reqwest::Method::PUT,
        &prompt,
        &admin,
        b"RIFF nonsense".to_vec(),
    )
    .await;
    assert_eq!((got, b["error"].as_str()), (400, Some("badPrompt")), "{b}");
    let (got, _) = send(
        &c,
        reqwest::Method::PUT,
        "/api/v1/admin/dids/19995550000/prompt",
        &admin,
        prompt_wav(),
    )
    .await;
    assert_eq!(got, 404, "not the tenant's DID");
    let (got, _) = send(
        &c,
        reqwest::Method::PUT,
        &prompt,
        &agent_token,
        prompt_wav(),
    )
    .await;
    assert_eq!(got, 403);
    let (got, b) = send(&c, reqwest::Method::PUT, &prompt, &admin, prompt_wav()).await;
    assert_eq!(got, 200, "{b}");
    assert_eq!(b["seconds"], json!(1.0));
    let (got, b) = c.get(&prompt, &admin).await;
    assert_eq!((got, b["seconds"].clone()), (200, json!(1.0)));

    // Spanish is agent2's; agent1 has been idle longer.
    let agent2 = user_id(&running, "agent2@demo.local").await;
    let (got, _) = c
        .put(
            &format!("/api/v1/admin/users/{agent2}/skills"),
            &admin,
            json!({"skills": {"es": 3}}),
        )
        .await;
    assert_eq!(got, 204);
    let mut a1 = tab_of(&running, "agent1@demo.local").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut a2 = tab_of(&running, "agent2@demo.local").await;

    // A key that is not a key is refused before any call is placed.
    let r = c
        .http
        .post(format!("{}/api/v1/sandbox/calls", c.base))
        .json(&json!({"to": DID, "from": "14155550123", "keys": "1a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let t0 = Instant::now();
    let r = c
        .http
        .post(format!("{}/api/v1/sandbox/calls", c.base))
        .json(&json!({"to": DID, "from": "14155550123", "keys": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let ring = dial(&mut a2).await;
    assert_eq!(
        (ring["code"].clone(), ring["callee"].clone()),
        (json!(1), json!(DID))
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1_400),
        "it rang only after the key (pressed 1.5 s after the answer), not at once"
    );
    // Before the key, the caller was answered and heard the prompt: about
    // -9 dBFS, where the built-in waiting music is near -24.
    let p = placed(&c, DID).await;
    assert_eq!(p["state"], "answered", "{p}");
    assert!(p["heardPackets"].as_u64().unwrap() >= 40, "{p}");
    let peak = p["heardPeakDbfs"].as_f64().unwrap();
    assert!((-12.0..=-6.0).contains(&peak), "the prompt's level: {p}");

    a2.send(Message::text(json!({"op": "answer"}).to_string()))
        .await
        .unwrap();
    assert_eq!(dial(&mut a2).await["code"], 2);
    // agent1 never rang.
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, a1.next()).await {
        if let Message::Text(t) = m {
            let ev: Value = serde_json::from_str(&t).unwrap();
            assert_ne!(ev["ev"], "dial", "agent1 rang: {ev}");
        }
    }
}
