//! Skills through the real binary: an admin gives agent2 Spanish and makes
//! a DID's calls require it (bad input refused with JSON errors, changing
//! nothing); an inbound sandbox call to that DID then rings agent2, not
//! agent1 who has been idle longer, while a call to another DID of the
//! same group rings agent1 as before. The skills survive a sign-in.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

async fn sandbox_call(c: &Api, to: &str) {
    let r = c
        .http
        .post(format!("{}/api/v1/sandbox/calls", c.base))
        .json(&json!({"to": to, "from": "14155550123", "other": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

#[tokio::test]
async fn a_did_that_requires_a_skill_rings_the_agent_who_has_it() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let admin = c.token("admin@demo.local").await;
    let agent2 = user_id(&running, "agent2@demo.local").await;
    let broke = user_id(&running, "broke@demo.local").await;
    let skills = format!("/api/v1/admin/users/{agent2}/skills");

    // Bad skills are refused and change nothing.
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("s{i}"), json!(1))).collect();
    for (body, error) in [
        (json!({"skills": {"es": 11}}), "badSkill"),
        (json!({"skills": {"es": 0}}), "badSkill"),
        (json!({"skills": {"es": -1}}), "badSkill"),
        (json!({"skills": {"no way": 1}}), "badSkill"),
        (json!({"skills": {"": 1}}), "badSkill"),
        (json!({"skills": many}), "badSkill"),
        (json!({"skills": {"es": "5"}}), "badRequest"),
        (json!({"es": 5}), "badRequest"),
    ] {
        let (code, b) = c.put(&skills, &admin, body.clone()).await;
        assert_eq!(
            (code, b["error"].as_str()),
            (400, Some(error)),
            "{body}: {b}"
        );
        assert!(b["message"].is_string(), "{body}: {b}");
    }
    let (code, b) = c.get(&skills, &admin).await;
    assert_eq!((code, &b), (200, &json!({"skills": {}})));
    let (code, _) = c
        .put(
            &format!("/api/v1/admin/users/{broke}/skills"),
            &admin,
            json!({"skills": {"es": 1}}),
        )
        .await;
    assert_eq!(code, 404, "another tenant's user");
    let agent_token = c.token("agent1@demo.local").await;
    let (code, _) = c
        .put(&skills, &agent_token, json!({"skills": {"es": 1}}))
        .await;
    assert_eq!(code, 403, "an agent is not an admin");

    let (code, b) = c
        .put(&skills, &admin, json!({"skills": {"es": 4, "vip": 1}}))
        .await;
    assert_eq!(code, 204, "{b}");
    let (_, b) = c.get(&skills, &admin).await;
    assert_eq!(b, json!({"skills": {"es": 4, "vip": 1}}));

    // The DID 12025550172 requires Spanish.
    let route = "/api/v1/admin/dids/12025550172/route";
    for (body, error) in [
        (
            json!({"forwardTo": "14155550100", "skill": "es"}),
            "badRoute",
        ),
        (json!({"group": "G001", "skill": "no way"}), "badSkill"),
    ] {
        let (code, b) = c.put(route, &admin, body.clone()).await;
        assert_eq!(
            (code, b["error"].as_str()),
            (400, Some(error)),
            "{body}: {b}"
        );
    }
    let (code, b) = c
        .put(route, &admin, json!({"group": "G001", "skill": "es"}))
        .await;
    assert_eq!(code, 204, "{b}");
    let (_, list) = c.get("/api/v1/admin/dids", &admin).await;
    let shown = list["dids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["number"] == "12025550172")
        .unwrap()["route"]
        .clone();
    assert_eq!(shown, json!({"group": "G001", "skill": "es"}));

    // agent1 signs in first: idle longest, the usual pick.
    let mut a = tab_of(&running, "agent1@demo.local").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut b = tab_of(&running, "agent2@demo.local").await;
    sandbox_call(&c, "12025550172").await;
    let ring = dial(&mut b).await;
    assert_eq!(
        (ring["code"].clone(), ring["callee"].clone()),
        (json!(1), json!("12025550172"))
    );
    // agent1 hears nothing of it: its next event is the other DID's call.
    sandbox_call(&c, "12025550170").await;
    let other = dial(&mut a).await;
    assert_eq!(
        (other["code"].clone(), other["callee"].clone()),
        (json!(1), json!("12025550170"))
    );
}
