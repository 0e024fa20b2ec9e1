//! The operator console's API against the real binary's server: the
//! wallboard snapshot and its Server-Sent Events stream follow an agent's
//! status change and a sandbox call from ringing to gone, each within a
//! second; a supervisor forces a status and signs an agent out; bad input
//! and the wrong caller get JSON errors and change nothing.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// A wallboard event stream, read chunk by chunk.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(base: &str, query_token: &str) -> Stream {
        let resp = reqwest::get(format!(
            "{base}/api/v1/admin/wallboard/stream?token={query_token}"
        ))
        .await
        .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            resp,
            buf: String::new(),
        }
    }

    /// The next `wallboard` event's data.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if !block.lines().any(|l| l == "event: wallboard") {
                    continue;
                }
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream goes on");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The first snapshot within `within` for which `ok` holds.
    async fn until(&mut self, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let b = self.next().await;
            if ok(&b) {
                return b;
            }
            assert!(start.elapsed() < within, "not within {within:?}: {b}");
        }
    }
}

fn agent<'a>(board: &'a Value, email: &str) -> &'a Value {
    board["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == email)
        .unwrap_or(&Value::Null)
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().post(format!("{base}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A request (path, token, body) and the status and `error` it must get.
type Case<'a> = (String, Option<&'a str>, Option<Value>, u16, &'a str);

#[tokio::test]
async fn the_stream_follows_a_status_change_and_a_call_within_a_second() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let admin = c.token("admin@demo.local").await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;

    let (code, board) = c.get("/api/v1/admin/wallboard", &admin).await;
    assert_eq!(code, 200, "{board}");
    let a = agent(&board, "agent1@demo.local");
    assert_eq!(
        (a["signedIn"].clone(), a["code"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(a["seat"], "8001");
    assert_eq!(board["today"]["answered"], 0);
    assert!(
        board["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["email"] != "broke@demo.local"),
        "only the admin's tenant"
    );

    let mut s = Stream::open(&c.base, &admin).await;
    let first = s.next().await;
    assert_eq!(agent(&first, "agent1@demo.local")["code"], 1);

    // The agent picks Meal in the softphone.
    let at = Instant::now();
    ws.send(Message::text(r#"{"op":"setStatus","code":4}"#))
        .await
        .unwrap();
    s.until(Duration::from_secs(1), |b| {
        agent(b, "agent1@demo.local")["code"] == 4
    })
    .await;
    assert!(at.elapsed() < Duration::from_secs(1));

    // A sandbox call: ringing (the echo number rings 1 s), connected, gone.
    ws.send(call_out("12025550100")).await.unwrap();
    let ringing = s
        .until(Duration::from_secs(1), |b| {
            b["calls"][0]["state"] == "ringing"
        })
        .await;
    let call = &ringing["calls"][0];
    assert_eq!(
        (call["direction"].clone(), call["number"].clone()),
        (json!("outbound"), json!("12025550100"))
    );
    assert_eq!(agent(&ringing, "agent1@demo.local")["activity"], "ringing");
    let connected = s
        .until(Duration::from_secs(2), |b| {
            b["calls"][0]["state"] == "connected"
        })
        .await;
    assert_eq!(connected["calls"][0]["callId"], call["callId"]);
    // While a call is shown, a snapshot comes each second and its seconds move.
    let later = s
        .until(Duration::from_secs(3), |b| {
            b["calls"][0]["secs"].as_u64().unwrap_or(0) >= 1
        })
        .await;
    assert_eq!(later["calls"][0]["callId"], call["callId"]);
    let at = Instant::now();
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let gone = s
        .until(Duration::from_secs(1), |b| {
            b["calls"].as_array().unwrap().is_empty()
        })
        .await;
    assert!(at.elapsed() < Duration::from_secs(1));
    assert_ne!(agent(&gone, "agent1@demo.local")["activity"], "inCall");
}

#[tokio::test]
async fn the_wallboard_is_for_admins_only_with_json_errors() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let agent = c.token("agent1@demo.local").await;
    let base = &c.base;

    for path in ["/api/v1/admin/wallboard", "/api/v1/admin/wallboard/stream"] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "tokenInvalid");
        let (code, e) = c.get(path, &agent).await;
        assert_eq!(
            (code, e["error"].as_str()),
            (403, Some("notAdmin")),
            "{path}"
        );
    }
    for q in [
        format!("token={agent}"),
        "token=nope".to_string(),
        "token=%zz".to_string(),
        "token=".to_string(),
    ] {
        let r = reqwest::get(format!("{base}/api/v1/admin/wallboard/stream?{q}"))
            .await
            .unwrap();
        let code = r.status().as_u16();
        assert!(code == 401 || code == 403, "{q}: {code}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].is_string() && e["message"].is_string());
    }
}

#[tokio::test]
async fn a_supervisor_forces_a_status_and_signs_an_agent_out() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let base = c.base.clone();
    let admin = c.token("admin@demo.local").await;
    let agent_token = c.token("agent2@demo.local").await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let agent1 = user_id(&running, "agent1@demo.local").await;
    let agent2 = user_id(&running, "agent2@demo.local").await;
    let broke = user_id(&running, "broke@demo.local").await;
    let noseat = user_id(&running, "noseat@demo.local").await;
    let status = |id: i64| format!("/api/v1/admin/agents/{id}/status");

    // Bad input and the wrong caller: JSON errors, nothing changes.
    let cases: Vec<Case> = vec![
        (
            status(agent1),
            None,
            Some(json!({"status": 3})),
            401,
            "tokenInvalid",
        ),
        (
            status(agent1),
            Some(&agent_token),
            Some(json!({"status": 3})),
            403,
            "notAdmin",
        ),
        (
            status(agent1),
            Some(&admin),
            Some(json!({"status": 9})),
            400,
            "badStatus",
        ),
        (
            status(agent1),
            Some(&admin),
            Some(json!({"status": 0})),
            400,
            "badStatus",
        ),
        (
            status(agent1),
            Some(&admin),
            Some(json!({"status": "meal"})),
            400,
            "badRequest",
        ),
        (
            status(agent1),
            Some(&admin),
            Some(json!({"status": 3, "x": 1})),
            400,
            "badRequest",
        ),
        (
            status(agent1),
            Some(&admin),
            None,
            415,
            "unsupportedMediaType",
        ),
        (
            "/api/v1/admin/agents/x1/status".into(),
            Some(&admin),
            Some(json!({"status": 3})),
            400,
            "badPath",
        ),
        (
            status(broke),
            Some(&admin),
            Some(json!({"status": 3})),
            404,
            "notFound",
        ),
        (
            status(noseat),
            Some(&admin),
            Some(json!({"status": 3})),
            404,
            "notFound",
        ),
        (
            status(99_999),
            Some(&admin),
            Some(json!({"status": 3})),
            404,
            "notFound",
        ),
        (
            format!("/api/v1/admin/agents/{broke}/sign-out"),
            Some(&admin),
            None,
            404,
            "notFound",
        ),
        // agent2 has a session but no tab: known to the switchboard, so the
        // status is forced; a user never signed in since the start is not.
    ];
    for (path, token, body, code, error) in cases {
        let (got, e) = post(&base, &path, token, body.clone()).await;
        assert_eq!(
            (got, e["error"].as_str()),
            (code, Some(error)),
            "{path} {body:?}: {e}"
        );
        assert!(e["message"].is_string());
    }
    let (_, board) = c.get("/api/v1/admin/wallboard", &admin).await;
    assert_eq!(agent(&board, "agent1@demo.local")["code"], 1, "unchanged");

    // Forced: the softphone is told exactly as if the agent had picked it.
    let (code, body) = post(
        &base,
        &status(agent1),
        Some(&admin),
        Some(json!({"status": 3})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    loop {
        let ev = next(&mut ws).await;
        if ev["ev"] == "agent" {
            assert_eq!(ev["agent"]["code"], 3);
            break;
        }
    }
    let (_, board) = c.get("/api/v1/admin/wallboard", &admin).await;
    assert_eq!(agent(&board, "agent1@demo.local")["code"], 3);

    // While a call is up the status waits: 409.
    ws.send(call_out("12025550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let (code, e) = post(
        &base,
        &status(agent1),
        Some(&admin),
        Some(json!({"status": 1})),
    )
    .await;
    assert_eq!((code, e["error"].as_str()), (409, Some("busyWithCall")));
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    while dial(&mut ws).await["code"] != 5 {}

    // Signed out: the tab gets tokenInvalid and closes; the session is gone.
    let agent1_token = sign_in(&base, "agent1@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/admin/agents/{agent1}/sign-out");
    let (code, body) = post(&base, &path, Some(&admin), None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["sessionsEnded"].as_u64().unwrap() >= 2, "{body}");
    let mut saw_invalid = false;
    loop {
        let ev = next(&mut ws).await;
        saw_invalid |= ev["ev"] == "tokenInvalid";
        if ev["ev"] == "closed" {
            break;
        }
    }
    assert!(saw_invalid);
    let (mut again, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", running.addr))
        .await
        .unwrap();
    again
        .send(Message::text(
            json!({"op": "auth", "token": agent1_token}).to_string(),
        ))
        .await
        .unwrap();
    let ev = next(&mut again).await;
    assert_ne!(ev["ev"], "ready", "{ev}");
    let (_, board) = c.get("/api/v1/admin/wallboard", &admin).await;
    assert_eq!(agent(&board, "agent1@demo.local")["signedIn"], false);
    let (code, e) = post(
        &base,
        &status(agent1),
        Some(&admin),
        Some(json!({"status": 1})),
    )
    .await;
    assert_eq!((code, e["error"].as_str()), (409, Some("notSignedIn")));
    // agent2's session (from sign-in) is known: forced too.
    let (code, _) = post(
        &base,
        &status(agent2),
        Some(&admin),
        Some(json!({"status": 5})),
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn consoles_of_one_tenant_share_a_snapshot_until_it_changes_or_ages() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let hub = &running.app.hub;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    // A console is open (its stream watches the tenant's changes).
    let mut changes = hub.watch_wallboard(1);
    let now = Instant::now();
    let a = hub.wallboard_shared(1, now);
    let b = hub.wallboard_shared(1, now + Duration::from_millis(100));
    assert!(
        std::sync::Arc::ptr_eq(&a.json, &b.json),
        "made once for both"
    );
    let board: Value = serde_json::from_str(&a.json).unwrap();
    assert_eq!(agent(&board, "agent1@demo.local")["code"], 1);
    assert!(a.ticking, "an agent is signed in: its timer moves");
    // Older than 200 ms: made again (the timers move on).
    let c = hub.wallboard_shared(1, now + Duration::from_millis(250));
    assert!(!std::sync::Arc::ptr_eq(&a.json, &c.json));
    // A change: the next console gets a new snapshot at once.
    changes.borrow_and_update();
    ws.send(Message::text(r#"{"op":"setStatus","code":4}"#))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), changes.changed())
        .await
        .expect("the change is announced")
        .unwrap();
    let d = hub.wallboard_shared(1, now + Duration::from_millis(260));
    assert!(!std::sync::Arc::ptr_eq(&c.json, &d.json));
    let board: Value = serde_json::from_str(&d.json).unwrap();
    assert_eq!(agent(&board, "agent1@demo.local")["code"], 4);
    // Another tenant's consoles never get this one.
    let other: Value = serde_json::from_str(&hub.wallboard_shared(2, now).json).unwrap();
    assert!(other["agents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["email"] != "agent1@demo.local"));
}
