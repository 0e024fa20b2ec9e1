//! The lists the operator console's forms show (`GET /api/v1/admin/dids`,
//! `GET /api/v1/admin/blacklist`) against a real server on loopback: each
//! follows the changes made through the API, bad changes leave it as it was,
//! agents and keys without the scope are refused, other tenants' numbers
//! never show.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use serde_json::{json, Value};
use support::*;

/// The route of `number` in the tenant's DID list (`None`: not listed).
fn route_of(list: &Value, number: &str) -> Option<Value> {
    list["dids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["number"] == number)
        .map(|d| d["route"].clone())
}

#[tokio::test]
async fn the_did_list_follows_each_route_change_and_refuses_others() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;

    // The demo tenant's ten DIDs, by number, all to G001; 179 not in the pool.
    let (code, list) = api.get("/api/v1/admin/dids", &admin).await;
    assert_eq!(code, 200, "{list}");
    let dids = list["dids"].as_array().unwrap();
    let numbers: Vec<&str> = dids.iter().map(|d| d["number"].as_str().unwrap()).collect();
    let want: Vec<String> = (170..=179).map(|n| format!("12025550{n}")).collect();
    assert_eq!(numbers, want);
    assert!(
        dids.iter().all(|d| d["route"] == json!({"group": "G001"})),
        "{list}"
    );
    assert_eq!(dids[0]["pool"], true);
    assert_eq!(dids[9]["pool"], false);
    // Other tenants' DIDs (12025550180, ...181) are not listed.
    assert_eq!(route_of(&list, "12025550180"), None);

    let route = |n: &str| format!("/api/v1/admin/dids/{n}/route");
    for (body, shown) in [
        (
            json!({"forwardTo": "+14155550100"}),
            json!({"forwardTo": "14155550100"}),
        ),
        (json!({"reject": 486}), json!({"reject": 486})),
        (json!({"group": "G001"}), json!({"group": "G001"})),
    ] {
        let (code, b) = api.put(&route("12025550171"), &admin, body).await;
        assert_eq!(code, 204, "{b}");
        let (_, list) = api.get("/api/v1/admin/dids", &admin).await;
        assert_eq!(route_of(&list, "12025550171"), Some(shown));
    }

    // Refused changes leave the list as it was.
    api.put(&route("12025550172"), &admin, json!({"reject": 603}))
        .await;
    let (_, before) = api.get("/api/v1/admin/dids", &admin).await;
    for (number, body, error) in [
        ("12025550172", json!({"forwardTo": "12x"}), "badNumber"),
        ("12025550172", json!({"reject": 200}), "badCode"),
        (
            "12025550172",
            json!({"forwardTo": "+12025550172"}),
            "forwardLoop",
        ),
        (
            "12025550172",
            json!({"group": "G001", "reject": 486}),
            "badRoute",
        ),
        ("12025550172", json!({"group": "NOSUCH"}), "notFound"),
        ("12025550180", json!({"group": "G001"}), "notFound"),
    ] {
        let (code, b) = api.put(&route(number), &admin, body.clone()).await;
        assert!(code == 400 || code == 404, "{body}: {code} {b}");
        assert_eq!(b["error"], error, "{body}: {b}");
    }
    assert_eq!(api.get("/api/v1/admin/dids", &admin).await, (200, before));

    // An agent, no token, a key without users:write: refused; with it, listed.
    let agent = api.token("agent1@demo.local").await;
    let (code, b) = api.get("/api/v1/admin/dids", &agent).await;
    assert_eq!((code, b["error"].clone()), (403, json!("notAdmin")));
    assert_eq!(api.get("/api/v1/admin/dids", "").await.0, 401);
    let records = api.new_key(&admin, &["records:read"]).await.1["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, b) = api.get("/api/v1/admin/dids", &records).await;
    assert_eq!((code, b["error"].clone()), (403, json!("scopeMissing")));
    let writer = api.new_key(&admin, &["users:write"]).await.1["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, b) = api.get("/api/v1/admin/dids", &writer).await;
    assert_eq!(code, 200);
    assert_eq!(route_of(&b, "12025550172"), Some(json!({"reject": 603})));
}

#[tokio::test]
async fn the_blacklist_lists_what_was_added_and_not_what_was_removed() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let list = || async { api.get("/api/v1/admin/blacklist", &admin).await };

    // The demo tenant's one number.
    assert_eq!(list().await, (200, json!({"numbers": ["12025550166"]})));
    let at = |n: &str| format!("{}/api/v1/admin/blacklist/{n}", api.base);
    let r = api
        .http
        .put(at("+14155550123"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        list().await,
        (200, json!({"numbers": ["12025550166", "14155550123"]}))
    );
    // A bad number changes nothing.
    let r = api
        .http
        .put(at("12ab"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(list().await.1["numbers"].as_array().unwrap().len(), 2);
    let r = api
        .http
        .delete(at("12025550166"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(list().await, (200, json!({"numbers": ["14155550123"]})));

    // Agents and requests without a session do not see it.
    let agent = api.token("agent1@demo.local").await;
    assert_eq!(api.get("/api/v1/admin/blacklist", &agent).await.0, 403);
    assert_eq!(api.get("/api/v1/admin/blacklist", "").await.0, 401);
}

/// Group `no` as `GET /api/v1/admin/groups` lists it.
async fn group(api: &Api, admin: &str, no: &str) -> Value {
    let (_, list) = api.get("/api/v1/admin/groups", admin).await;
    list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == no)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn the_group_list_shows_each_groups_routing() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let g001 = || group(&api, &admin, "G001");
    let g = g001().await;
    assert_eq!(
        (g["strategy"].clone(), g["maxMissed"].clone()),
        (json!("longestIdle"), json!(3))
    );
    let body = json!({"strategy": "roundRobin", "maxMissed": 5});
    assert_eq!(
        api.put("/api/v1/admin/groups/G001/routing", &admin, body)
            .await
            .0,
        204
    );
    let g = g001().await;
    assert_eq!(
        (g["strategy"].clone(), g["maxMissed"].clone()),
        (json!("roundRobin"), json!(5))
    );
    // A refused change leaves it.
    let bad = json!({"strategy": "random", "maxMissed": 5});
    assert_eq!(
        api.put("/api/v1/admin/groups/G001/routing", &admin, bad)
            .await
            .0,
        400
    );
    assert_eq!(g001().await["strategy"], "roundRobin");
}

#[tokio::test]
async fn a_group_is_renamed_and_its_wrap_up_changed_or_the_change_refused() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let g001 = || group(&api, &admin, "G001");
    let before = g001().await;
    let (code, body) = api
        .put(
            "/api/v1/admin/groups/G001",
            &admin,
            json!({"name": "  Front desk ", "acwSecs": 45}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (body["name"].clone(), body["acwSecs"].clone()),
        (json!("Front desk"), json!(45))
    );
    let g = g001().await;
    assert_eq!(
        (g["name"].clone(), g["acwSecs"].clone()),
        (json!("Front desk"), json!(45))
    );
    assert_eq!(g["id"], before["id"], "the same group");
    // Refused, each with its reason, and nothing changed.
    for (path, body, status, error) in [
        (
            "/api/v1/admin/groups/G001",
            json!({"name": "X", "acwSecs": 3601}),
            400,
            "badGroup",
        ),
        (
            "/api/v1/admin/groups/G001",
            json!({"name": " ", "acwSecs": 0}),
            400,
            "badGroup",
        ),
        (
            "/api/v1/admin/groups/G001",
            json!({"name": "X"}),
            400,
            "badRequest",
        ),
        (
            "/api/v1/admin/groups/G999",
            json!({"name": "X", "acwSecs": 0}),
            404,
            "notFound",
        ),
    ] {
        let (code, e) = api.put(path, &admin, body.clone()).await;
        assert_eq!(
            (code, e["error"].as_str()),
            (status, Some(error)),
            "{body}: {e}"
        );
    }
    let agent = api.token("agent1@demo.local").await;
    let (code, _) = api
        .put(
            "/api/v1/admin/groups/G001",
            &agent,
            json!({"name": "X", "acwSecs": 0}),
        )
        .await;
    assert_eq!(code, 403);
    let g = g001().await;
    assert_eq!(
        (g["name"].clone(), g["acwSecs"].clone()),
        (json!("Front desk"), json!(45))
    );
}
