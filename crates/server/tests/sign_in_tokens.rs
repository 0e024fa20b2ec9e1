//! Token sign-in and revocation against a real server on loopback: a CRM's
//! back end gets a one-time token with its API key, the softphone trades it
//! for a session; an admin ends a user's sessions (every tab of every
//! browser hears `tokenInvalid`), changes a password, disables an account.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

async fn post(api: &Api, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = api.http.post(format!("{}{path}", api.base)).json(&body);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn delete(api: &Api, path: &str, bearer: &str) -> (u16, Value) {
    let r = api
        .http
        .delete(format!("{}{path}", api.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A `users:write` key of the demo tenant.
async fn crm_key(api: &Api) -> String {
    let admin = api.token("admin@demo.local").await;
    let (status, key) = api.new_key(&admin, &["users:write"]).await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

async fn issue(api: &Api, key: &str, body: Value) -> (u16, Value) {
    post(api, "/api/v1/sign-in-tokens", Some(key), body).await
}

async fn redeem(api: &Api, token: &str) -> (u16, Value) {
    post(api, "/api/v1/sessions", None, json!({"token": token})).await
}

async fn user_id(api: &Api, key: &str, email: &str) -> i64 {
    let (_, users) = api.get("/api/v1/admin/users", key).await;
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// A tab authenticated with `token`: `ready` seen.
async fn tab_with(running: &seatline_server::Running, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", running.addr))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": token}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["ev"], "ready");
    ws
}

/// The events up to the end of the socket, within `within`.
async fn until_closed(ws: &mut Ws, within: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("not closed within {within:?}: {seen:?}"),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                seen.push(v["ev"].as_str().unwrap_or_default().to_string());
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return seen,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// What a fresh tab presenting `token` hears first.
async fn first_event(running: &seatline_server::Running, token: &str) -> Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", running.addr))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": token}).to_string(),
    ))
    .await
    .unwrap();
    next(&mut ws).await
}

#[tokio::test]
async fn a_token_signs_in_once_like_a_password_and_is_refused_after() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let key = crm_key(&api).await;
    let (status, body) = issue(&api, &key, json!({"email": "Agent1@demo.local "})).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 43, "32 bytes, base64url");
    let expires = body["expiresAt"].as_i64().unwrap();
    let now = seatline_store::now_ms();
    assert!(expires > now + 55_000 && expires <= now + 60_000, "60 s");

    let (status, session) = redeem(&api, &token).await;
    assert_eq!(status, 200, "{session}");
    let by_password = sign_in(&api.base, "agent1@demo.local").await;
    for field in ["email", "agentExists", "seat", "idleTimeoutSecs"] {
        assert_eq!(session[field], by_password[field], "{field}");
    }
    // The session works: a tab opens with it.
    let _tab = tab_with(&running, session["token"].as_str().unwrap()).await;

    let (status, again) = redeem(&api, &token).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (401, Some("tokenInvalid"))
    );
    for bad in ["", "made-up", &"x".repeat(10_000)] {
        let (status, body) = redeem(&api, bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("tokenInvalid"))
        );
    }
    let (status, _) = post(
        &api,
        "/api/v1/sessions",
        None,
        json!({"token": token, "email": "agent1@demo.local", "password": "demo1234"}),
    )
    .await;
    assert_eq!(status, 400, "a token or a password, not both");
}

#[tokio::test]
async fn a_token_expires_with_its_ttl() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let key = crm_key(&api).await;
    let (status, body) = issue(
        &api,
        &key,
        json!({"email": "agent1@demo.local", "ttlSeconds": 1}),
    )
    .await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = redeem(&api, body["token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("tokenInvalid"))
    );
}

#[tokio::test]
async fn two_redemptions_at_once_give_exactly_one_session() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let key = crm_key(&api).await;
    for _ in 0..5 {
        let (_, body) = issue(&api, &key, json!({"email": "agent2@demo.local"})).await;
        let token = body["token"].as_str().unwrap();
        let tries: Vec<_> = (0..8).map(|_| redeem(&api, token)).collect();
        let results = futures_util::future::join_all(tries).await;
        let ok = results.iter().filter(|(s, _)| *s == 200).count();
        let refused = results
            .iter()
            .filter(|(s, b)| *s == 401 && b["error"] == "tokenInvalid")
            .count();
        assert_eq!((ok, refused), (1, 7), "{results:?}");
    }
}

#[tokio::test]
async fn issuing_needs_the_scope_a_user_of_the_tenant_and_good_input() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let key = crm_key(&api).await;
    let admin = api.token("admin@demo.local").await;
    let (_, reader) = api.new_key(&admin, &["records:read"]).await;
    let reader = reader["key"].as_str().unwrap();
    let body = json!({"email": "agent1@demo.local"});

    let (status, b) = post(&api, "/api/v1/sign-in-tokens", None, body.clone()).await;
    assert_eq!((status, b["error"].as_str()), (401, Some("keyInvalid")));
    let (status, b) = issue(&api, "slk_nosuchkey", body.clone()).await;
    assert_eq!((status, b["error"].as_str()), (401, Some("keyInvalid")));
    let (status, b) = issue(&api, reader, body.clone()).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("scopeMissing")));
    let (status, b) = issue(&api, &admin, body.clone()).await;
    assert_eq!(status, 401, "an admin's session is not a key: {b}");

    let (status, b) = issue(&api, &key, json!({"email": "nobody@demo.local"})).await;
    assert_eq!((status, b["error"].as_str()), (404, Some("unknownUser")));
    // Another tenant's user is unknown to this key.
    let store = &running.app.store;
    let other = store.create_tenant("Other").await.unwrap();
    let hash = seatline_store::hash_password("other-pass").unwrap();
    store
        .create_user(other, "someone@other.example", &hash, "agent")
        .await
        .unwrap();
    let (status, b) = issue(&api, &key, json!({"email": "someone@other.example"})).await;
    assert_eq!((status, b["error"].as_str()), (404, Some("unknownUser")));

    for bad in [
        json!({"email": "agent1@demo.local", "ttlSeconds": 0}),
        json!({"email": "agent1@demo.local", "ttlSeconds": 61}),
        json!({"email": "agent1@demo.local", "ttlSeconds": "5"}),
        json!({"email": ""}),
        json!({"email": "agent1@demo.local", "extra": 1}),
        json!({}),
        json!([1]),
    ] {
        let (status, b) = issue(&api, &key, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert!(b["error"].is_string());
    }
}

#[tokio::test]
async fn a_disabled_user_gets_no_token_no_session_and_is_signed_out_everywhere() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let key = crm_key(&api).await;
    let id = user_id(&api, &key, "agent1@demo.local").await;
    let (_, pending) = issue(&api, &key, json!({"email": "agent1@demo.local"})).await;
    let mut tab = tab_of(&running, "agent1@demo.local").await;

    let path = format!("/api/v1/admin/users/{id}");
    let (status, b) = api.put(&path, &key, json!({"disabled": true})).await;
    assert_eq!((status, b["enabled"].as_bool()), (200, Some(false)), "{b}");
    let seen = until_closed(&mut tab, Duration::from_secs(2)).await;
    assert_eq!(seen, vec!["loggedOut"]);

    let (status, b) = issue(&api, &key, json!({"email": "agent1@demo.local"})).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("userDisabled")));
    let (status, b) = redeem(&api, pending["token"].as_str().unwrap()).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("userDisabled")));
    let r = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": "agent1@demo.local", "password": "demo1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the right password, a disabled account");
    let r = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": "agent1@demo.local", "password": "wrong-one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a wrong password learns nothing");

    for bad in [
        json!({}),
        json!({"disabled": "yes"}),
        json!({"disabled": true, "enabled": true}),
    ] {
        let (status, _) = api.put(&path, &key, bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, b) = api.put(&path, &key, json!({"enabled": true})).await;
    assert_eq!((status, b["enabled"].as_bool()), (200, Some(true)));
    let (status, _) = issue(&api, &key, json!({"email": "agent1@demo.local"})).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn revoking_reaches_every_tab_within_two_seconds_and_kills_the_token() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let key = crm_key(&api).await;
    let id = user_id(&api, &key, "agent1@demo.local").await;
    // Two browsers (two sessions), one with two tabs; another agent.
    let first = api.token("agent1@demo.local").await;
    let second = api.token("agent1@demo.local").await;
    let mut tabs = vec![
        tab_with(&running, &first).await,
        tab_with(&running, &first).await,
        tab_with(&running, &second).await,
    ];
    let mut bystander = tab_of(&running, "agent2@demo.local").await;

    let path = format!("/api/v1/admin/users/{id}/sessions");
    let (status, b) = delete(&api, "/api/v1/admin/users/999999/sessions", &key).await;
    assert_eq!((status, b["error"].as_str()), (404, Some("unknownUser")));
    let (status, _) = delete(&api, "/api/v1/admin/users/x/sessions", &key).await;
    assert_eq!(status, 400);
    let (status, _) = delete(&api, &path, "slk_nosuchkey").await;
    assert_eq!(status, 401);
    let agent = api.token("agent2@demo.local").await;
    let (status, _) = delete(&api, &path, &agent).await;
    assert_eq!(status, 403, "an agent is not an admin");

    let t0 = Instant::now();
    let (status, _) = delete(&api, &path, &key).await;
    assert_eq!(status, 204);
    for tab in &mut tabs {
        let seen = until_closed(tab, Duration::from_secs(2)).await;
        assert_eq!(seen, vec!["tokenInvalid"]);
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
    for token in [&first, &second] {
        assert_eq!(first_event(&running, token).await["ev"], "tokenInvalid");
    }
    // The other agent is untouched.
    bystander
        .send(Message::text(r#"{"op":"setStatus","code":3}"#))
        .await
        .unwrap();
    assert_ne!(next(&mut bystander).await["ev"], "tokenInvalid");

    // An admin of another tenant cannot reach this tenant's user.
    let store = &running.app.store;
    let other = store.create_tenant("Other").await.unwrap();
    let hash = seatline_store::hash_password("other-pass").unwrap();
    store
        .create_user(other, "boss@other.example", &hash, "admin")
        .await
        .unwrap();
    let r: Value = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": "boss@other.example", "password": "other-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let boss = r["token"].as_str().unwrap();
    let (status, b) = delete(&api, &path, boss).await;
    assert_eq!((status, b["error"].as_str()), (404, Some("unknownUser")));
}

#[tokio::test]
async fn a_password_change_keeps_the_callers_session_and_ends_the_others() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin_a = api.token("admin@demo.local").await;
    let admin_b = api.token("admin@demo.local").await;
    let key = crm_key(&api).await;
    let admin_id = user_id(&api, &key, "admin@demo.local").await;
    let agent_id = user_id(&api, &key, "agent1@demo.local").await;
    let mut agent_tab = tab_of(&running, "agent1@demo.local").await;

    // The admin changes their own password: their other session ends.
    let path = format!("/api/v1/admin/users/{admin_id}/password");
    let (status, _) = api.put(&path, &admin_a, json!({"password": "short"})).await;
    assert_eq!(status, 400);
    let (status, b) = api
        .put(&path, &admin_a, json!({"password": "a-new-password"}))
        .await;
    assert_eq!(status, 204, "{b}");
    let (status, _) = api.get("/api/v1/admin/users", &admin_a).await;
    assert_eq!(status, 200, "the caller's session stays");
    let (status, b) = api.get("/api/v1/admin/users", &admin_b).await;
    assert_eq!((status, b["error"].as_str()), (401, Some("tokenInvalid")));

    // The agent's password, changed by the admin: every tab of theirs ends.
    let path = format!("/api/v1/admin/users/{agent_id}/password");
    let t0 = Instant::now();
    let (status, _) = api
        .put(&path, &admin_a, json!({"password": "agent-new-pass"}))
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        until_closed(&mut agent_tab, Duration::from_secs(2)).await,
        vec!["tokenInvalid"]
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    let r = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": "agent1@demo.local", "password": "demo1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the old password is gone");
    let r = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": "agent1@demo.local", "password": "agent-new-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Collects a child's output lines until it closes.
fn lines_of(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        let mut out = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            out.push(l);
        }
        out
    })
}

#[tokio::test]
async fn the_binary_logs_no_token_password_or_key_through_issue_redeem_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_tcp_port();
    let cfg = dir.path().join("seatline.toml");
    std::fs::write(
        &cfg,
        "[sip]\nlisten = \"127.0.0.1:0\"\n\n[sandbox]\nlisten = \"127.0.0.1:0\"\n\n[media]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_seatline"))
        .args(["demo", "--listen", &format!("127.0.0.1:{http}")])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = lines_of(server.stdout.take().unwrap());
    let stderr = lines_of(server.stderr.take().unwrap());

    let base = format!("http://127.0.0.1:{http}");
    let admin = sign_in(&base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };
    let key = crm_key(&api).await;
    let (status, body) = issue(&api, &key, json!({"email": "agent1@demo.local"})).await;
    assert_eq!(status, 201);
    let sign_in_token = body["token"].as_str().unwrap().to_string();
    let (status, session) = redeem(&api, &sign_in_token).await;
    assert_eq!(status, 200);
    let session_token = session["token"].as_str().unwrap().to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{http}/ws"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": session_token}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["ev"], "ready");
    let (status, _) = redeem(&api, &sign_in_token).await;
    assert_eq!(status, 401);
    let id = user_id(&api, &key, "agent1@demo.local").await;
    let new_password = "a-secret-new-password";
    let (status, _) = api
        .put(
            &format!("/api/v1/admin/users/{id}/password"),
            &admin,
            json!({"password": new_password}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        until_closed(&mut ws, Duration::from_secs(2)).await,
        vec!["tokenInvalid"]
    );
    let (status, _) = delete(&api, &format!("/api/v1/admin/users/{id}/sessions"), &key).await;
    assert_eq!(status, 204);

    let pid = server.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    let mut lines = stdout.await.unwrap();
    lines.extend(stderr.await.unwrap());
    assert!(
        lines.iter().any(|l| l.contains("sign-in token redeemed")),
        "the logs were read"
    );
    assert!(lines.iter().any(|l| l.contains("sign-in token issued")));
    let key_secret = &key[seatline_store::KEY_PREFIX.len()..];
    for line in &lines {
        for secret in [
            sign_in_token.as_str(),
            session_token.as_str(),
            admin.as_str(),
            key_secret,
            "demo1234",
            new_password,
        ] {
            assert!(!line.contains(secret), "a secret in the logs: {line}");
        }
    }
}
