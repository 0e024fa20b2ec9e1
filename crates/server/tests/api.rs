//! The server's HTTP API and WebSocket, over real sockets on loopback.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

use futures_util::{SinkExt, StreamExt};
use seatline_server::config::Config;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

struct Server {
    base: String,
    ws: String,
    _dir: tempfile::TempDir,
}

async fn start(idle_secs: u64) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.demo.seed = true;
    cfg.sessions.idle_timeout_secs = idle_secs;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sandbox.listen = "127.0.0.1:0".parse().unwrap();
    cfg.calls.no_tab_grace_secs = 1;
    let running = seatline_server::start(cfg).await.unwrap();
    Server {
        base: format!("http://{}", running.addr),
        ws: format!("ws://{}/ws", running.addr),
        _dir: dir,
    }
}

async fn sign_in(s: &Server, email: &str, password: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions", s.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &Server, token: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(&s.ws).await.unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": token}).to_string(),
    ))
    .await
    .unwrap();
    let first = next(&mut ws).await;
    (ws, first)
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an event in time");
        match msg {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(_))) | None => return Value::Null,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error {e}"),
        }
    }
}

#[tokio::test]
async fn sign_in_answers_with_a_token_only_for_seated_agents() {
    let s = start(3600).await;
    let (code, body) = sign_in(&s, "agent1@demo.local", "demo1234").await;
    assert_eq!(code, 200);
    assert_eq!(body["agentExists"], 1);
    assert_eq!(body["seat"], json!({"sipNum": "8001", "groupNo": "G001"}));
    assert!(body["token"].as_str().unwrap().len() >= 43);

    let (code, body) = sign_in(&s, "noseat@demo.local", "demo1234").await;
    assert_eq!(
        (code, body["agentExists"].clone(), body.get("token")),
        (200, json!(2), None)
    );

    let (code, body) = sign_in(&s, "agent1@demo.local", "wrong").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (401, Some("invalidCredentials"))
    );

    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions", s.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "badRequest");

    let r = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = reqwest::get(format!("{}/no/such/page", s.base))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "notFound");
}

#[tokio::test]
async fn every_tab_of_the_agent_hears_a_status_change_and_the_sign_out() {
    let s = start(3600).await;
    let (_, body) = sign_in(&s, "agent1@demo.local", "demo1234").await;
    let token = body["token"].as_str().unwrap().to_string();
    let (mut a, ready) = connect(&s, &token).await;
    assert_eq!(ready["ev"], "ready");
    assert_eq!(ready["email"], "agent1@demo.local");
    assert_eq!(ready["agent"]["code"], 1);
    let (mut b, _) = connect(&s, &token).await;

    a.send(Message::text(r#"{"op":"setStatus","code":3}"#))
        .await
        .unwrap();
    for ws in [&mut a, &mut b] {
        let ev = next(ws).await;
        assert_eq!(ev["ev"], "agent");
        assert_eq!(ev["agent"]["code"], 3);
    }
    a.send(Message::text(r#"{"op":"setStatus","code":8}"#))
        .await
        .unwrap();
    let ev = next(&mut a).await;
    assert_eq!(
        (ev["ev"].as_str(), ev["code"].as_str()),
        (Some("error"), Some("invalidStatus"))
    );
    a.send(Message::text("garbage")).await.unwrap();
    assert_eq!(next(&mut a).await["code"], "badMessage");
    a.send(Message::text(r#"{"op":"ping"}"#)).await.unwrap();
    assert_eq!(next(&mut a).await["ev"], "pong");

    let r = reqwest::Client::new()
        .delete(format!("{}/api/v1/sessions/current", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    for ws in [&mut a, &mut b] {
        assert_eq!(next(ws).await["ev"], "loggedOut");
    }
    // The token is dead now.
    let (_, first) = connect(&s, &token).await;
    assert_eq!(first["ev"], "tokenInvalid");
}

#[tokio::test]
async fn unknown_tokens_and_idle_sessions_get_token_invalid() {
    let s = start(1).await;
    let (_, first) = connect(&s, "made-up-token").await;
    assert_eq!(first["ev"], "tokenInvalid");

    let (_, body) = sign_in(&s, "agent2@demo.local", "demo1234").await;
    let token = body["token"].as_str().unwrap().to_string();
    let (mut ws, ready) = connect(&s, &token).await;
    assert_eq!(ready["ev"], "ready");
    // A ping is not activity: the session still ends after its idle time.
    ws.send(Message::text(r#"{"op":"ping"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await["ev"], "pong");
    let ev = tokio::time::timeout(Duration::from_secs(5), next(&mut ws))
        .await
        .unwrap();
    assert_eq!(ev["ev"], "tokenInvalid");
}

#[tokio::test]
async fn a_socket_from_another_site_is_refused() {
    let s = start(3600).await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        s.ws.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

async fn dial(ws: &mut Ws) -> Value {
    loop {
        let ev = next(ws).await;
        if ev["ev"] == "dial" {
            return ev["content"].clone();
        }
        assert_ne!(ev, Value::Null, "the socket closed");
    }
}

async fn agent_socket(s: &Server, email: &str) -> Ws {
    let (_, body) = sign_in(s, email, "demo1234").await;
    let (ws, ready) = connect(s, body["token"].as_str().unwrap()).await;
    assert_eq!(ready["ev"], "ready");
    ws
}

fn call_out(callee: &str, caller: &str) -> Message {
    Message::text(
        json!({"op": "callOut", "caller": caller, "callee": callee, "countryCode": "1", "orderId": "o-7", "params": "{\"k\":1}"})
            .to_string(),
    )
}

#[tokio::test]
async fn an_outbound_call_to_the_sandbox_rings_connects_and_hangs_up() {
    let s = start(3600).await;
    let mut ws = agent_socket(&s, "agent1@demo.local").await;
    ws.send(call_out("12025550100", "")).await.unwrap();
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 0);
    assert_eq!(ringing["direction"], 1);
    assert_eq!(
        (ringing["orderId"].as_str(), ringing["params"].as_str()),
        (Some("o-7"), Some("{\"k\":1}"))
    );
    assert_eq!(ringing["callee"], "12025550100");
    assert!(
        ringing["caller"].as_str().unwrap().starts_with("120255501"),
        "a DID from the pool"
    );
    assert_eq!(ringing["callConnectedTimestamp"], "");
    let connected = dial(&mut ws).await;
    assert_eq!(connected["code"], 2);
    assert_eq!(connected["callId"], ringing["callId"]);
    let rang_ms = connected["callConnectedTimestamp"].as_i64().unwrap()
        - connected["callStartTimestamp"].as_i64().unwrap();
    assert!(
        (900..3000).contains(&rang_ms),
        "the echo number rings 1 s, rang {rang_ms} ms"
    );
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let ended = dial(&mut ws).await;
    assert_eq!(ended["code"], 5);
    assert!(ended.get("hangupCode").is_none());
    assert!(ended["callHangUpTimestamp"].as_i64().is_some());
}

#[tokio::test]
async fn failed_calls_give_their_reason_then_5_with_hangup_code() {
    let s = start(3600).await;
    let mut ws = agent_socket(&s, "agent2@demo.local").await;
    for (callee, caller, reason, sip) in [
        ("12025550104", "", Some(812), Some(404)),
        ("12025550150", "", Some(800), Some(503)),
        ("12025550100", "12025550179", Some(819), Some(403)),
        ("12025550186", "", None, Some(486)),
        ("12025550103", "", None, Some(603)),
        ("123", "", Some(812), None),
        ("12025550100", "19995550100", Some(816), None),
    ] {
        ws.send(call_out(callee, caller)).await.unwrap();
        let mut first = dial(&mut ws).await;
        if sip.is_some() {
            assert_eq!(first["code"], 0, "{callee}: placed first");
            first = dial(&mut ws).await;
        }
        match reason {
            Some(r) => {
                assert_eq!(first["code"], r, "{callee}");
                let end = dial(&mut ws).await;
                assert_eq!(
                    (end["code"].as_i64(), end["hangupCode"].as_i64()),
                    (Some(5), Some(r)),
                    "{callee}"
                );
                assert_eq!(end["sipCode"].as_i64(), sip.map(i64::from), "{callee}");
                assert_eq!(end["callId"], first["callId"]);
            }
            None => {
                assert_eq!(first["code"], 5, "{callee}");
                assert!(first.get("hangupCode").is_none());
                assert_eq!(first["sipCode"].as_i64(), sip.map(i64::from));
            }
        }
    }
}

#[tokio::test]
async fn the_far_end_hangs_up_and_the_ringing_call_can_be_cancelled() {
    let s = start(3600).await;
    let mut ws = agent_socket(&s, "agent1@demo.local").await;
    ws.send(call_out("12025550120", "")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    let end = tokio::time::timeout(Duration::from_secs(6), dial(&mut ws))
        .await
        .unwrap();
    assert_eq!(end["code"], 5);

    ws.send(call_out("12025550108", "")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["sipCode"].as_i64()),
        (Some(5), Some(487))
    );
}

#[tokio::test]
async fn a_call_ends_when_every_tab_is_gone_past_the_grace_but_not_on_a_quick_return() {
    let s = start(3600).await;
    let (_, body) = sign_in(&s, "agent1@demo.local", "demo1234").await;
    let token = body["token"].as_str().unwrap().to_string();
    let (mut ws, _) = connect(&s, &token).await;
    ws.send(call_out("12025550101", "")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2);
    // A reload: gone for 300 ms, back with the call still up.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ws, ready) = connect(&s, &token).await;
    assert_eq!(ready["call"]["callId"], up["callId"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Closed for good: after the grace the call ends.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (mut ws, ready) = connect(&s, &token).await;
    assert!(ready.get("call").is_none(), "the call ended: {ready}");
    // The agent's side was lost: the tab that comes back hears 801, then 5.
    assert_eq!(dial(&mut ws).await["code"], 801);
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["hangupCode"].as_i64()),
        (Some(5), Some(801))
    );
    ws.send(Message::text(r#"{"op":"ping"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await["ev"], "pong");
}

async fn admin_token(s: &Server) -> String {
    let (code, body) = sign_in(s, "admin@demo.local", "demo1234").await;
    assert_eq!((code, body["agentExists"].as_i64()), (200, Some(2)));
    body["token"]
        .as_str()
        .expect("an admin gets a session")
        .to_string()
}

async fn put_policy(s: &Server, token: &str, policy: Value) -> u16 {
    reqwest::Client::new()
        .put(format!("{}/api/v1/admin/policy", s.base))
        .bearer_auth(token)
        .json(&policy)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn policy(
    balance: i64,
    countries: &[&str],
    trial: bool,
    trial_per_day: i64,
    per_callee: i64,
) -> Value {
    json!({"balanceCents": balance, "allowedCountries": countries, "trial": trial, "trialCallsPerDay": trial_per_day, "maxCallsPerCalleePerDay": per_callee})
}

/// The first dialStatus of a callOut and the code-5 that follows it.
async fn outcome(ws: &mut Ws, callee: &str) -> (i64, Option<i64>) {
    ws.send(Message::text(
        json!({"op": "callOut", "caller": "", "callee": callee, "countryCode": ""}).to_string(),
    ))
    .await
    .unwrap();
    let first = dial(ws).await;
    if first["code"] == 0 {
        ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
        loop {
            let d = dial(ws).await;
            if d["code"] == 5 {
                break;
            }
        }
        return (0, None);
    }
    let end = dial(ws).await;
    assert_eq!(end["code"], 5);
    assert_eq!(end["callId"], first["callId"]);
    (first["code"].as_i64().unwrap(), end["hangupCode"].as_i64())
}

#[tokio::test]
async fn the_tenant_policy_refuses_calls_with_810_811_814_815_817() {
    let s = start(3600).await;
    let admin = admin_token(&s).await;
    let mut ws = agent_socket(&s, "agent1@demo.local").await;
    let client = reqwest::Client::new();

    // Not an admin: refused.
    let (_, agent) = sign_in(&s, "agent2@demo.local", "demo1234").await;
    assert_eq!(
        put_policy(
            &s,
            agent["token"].as_str().unwrap(),
            policy(1, &[], false, 1, 0)
        )
        .await,
        403
    );
    assert_eq!(
        put_policy(&s, &admin, json!({"balanceCents": 1})).await,
        400
    );

    assert_eq!(
        put_policy(&s, &admin, policy(0, &[], false, 10, 0)).await,
        204
    );
    assert_eq!(outcome(&mut ws, "12025550101").await, (810, Some(810)));

    assert_eq!(
        put_policy(&s, &admin, policy(500, &["1"], false, 10, 0)).await,
        204
    );
    assert_eq!(outcome(&mut ws, "85221234567").await, (811, Some(811)));
    assert_eq!(
        outcome(&mut ws, "12025550101").await,
        (0, None),
        "a US number is allowed"
    );

    let r = client
        .put(format!("{}/api/v1/admin/blacklist/12025550101", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(outcome(&mut ws, "12025550101").await, (814, Some(814)));
    let r = client
        .delete(format!("{}/api/v1/admin/blacklist/12025550101", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    // One call a day to one number: the second (12025550101 was called once above) is refused.
    assert_eq!(
        put_policy(&s, &admin, policy(500, &[], false, 10, 1)).await,
        204
    );
    assert_eq!(outcome(&mut ws, "12025550101").await, (815, Some(815)));
    assert_eq!(outcome(&mut ws, "12025550110").await, (0, None));

    // A trial tenant with 2 calls a day has used them (the two that went through).
    assert_eq!(
        put_policy(&s, &admin, policy(500, &[], true, 2, 0)).await,
        204
    );
    assert_eq!(outcome(&mut ws, "12025550111").await, (817, Some(817)));

    // Every one of them, placed or refused, is on record (written just after the messages).
    let mut codes: Vec<Option<i64>> = Vec::new();
    for _ in 0..20 {
        let calls: Value = client
            .get(format!("{}/api/v1/admin/calls?limit=20", s.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        codes = calls["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["hangupCode"].as_i64())
            .collect();
        if codes.len() == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for want in [810, 811, 814, 815, 817] {
        assert!(codes.contains(&Some(want)), "record of {want} in {codes:?}");
    }
    assert_eq!(
        codes.len(),
        7,
        "810, 811, a US call, 814, 815, another call, 817"
    );
    // No call was measured (refused, or no media sample): quality is null.
    let calls: Value = client
        .get(format!("{}/api/v1/admin/calls?limit=20", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for c in calls["calls"].as_array().unwrap() {
        for k in ["lossPct", "jitterMs", "rttMs", "mos", "mosMin"] {
            assert!(c.get(k).is_some_and(Value::is_null), "{k} in {c}");
        }
    }
}

#[tokio::test]
async fn a_call_out_on_a_session_expired_but_not_yet_swept_gets_813() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.demo.seed = true;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sandbox.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sessions.idle_timeout_secs = 1;
    // The sweep that would close the tab comes much later than the expiry.
    cfg.sessions.sweep_interval_ms = Some(60_000);
    let running = seatline_server::start(cfg).await.unwrap();
    let s = Server {
        base: format!("http://{}", running.addr),
        ws: format!("ws://{}/ws", running.addr),
        _dir: dir,
    };
    let mut ws = agent_socket(&s, "agent1@demo.local").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ws.send(call_out("12025550100", "")).await.unwrap();
    let first = dial(&mut ws).await;
    assert_eq!(first["code"], 813);
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["hangupCode"].as_i64()),
        (Some(5), Some(813))
    );
}
