//! Webhooks against a receiver the test runs: each ended call POSTed with a
//! signature the receiver checks, retried after the receiver fails, still
//! delivered after Seatline is killed (kill -9) and started again in the
//! middle of the retries, and never again once a 2xx came back.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use axum::http::{HeaderMap, StatusCode};
use futures_util::SinkExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "a-secret-of-the-crm-0123456789";

/// What the receiver got: each request's delivery id, body, whether its
/// signature held, and the status it answered.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(String, String, bool, u16)>>,
    /// Requests to refuse (500) before answering 200.
    fail: AtomicUsize,
}

impl Receiver {
    fn got(&self) -> Vec<(String, String, bool, u16)> {
        self.got.lock().unwrap().clone()
    }
}

fn verified(headers: &HeaderMap, body: &str) -> bool {
    let Some(sig) = headers
        .get("seatline-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|s| s.split_once(",v1=")) else {
        return false;
    };
    let Ok(t) = t.parse::<i64>() else {
        return false;
    };
    let now = seatline_store::now_ms() / 1000;
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap_or_default())
        .is_ok()
}

/// Runs the receiver on a free loopback port; its URL.
async fn receiver(state: Arc<Receiver>) -> String {
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(
            |axum::extract::State(s): axum::extract::State<Arc<Receiver>>,
             headers: HeaderMap,
             body: String| async move {
                let ok = verified(&headers, &body);
                let id = headers
                    .get("seatline-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let refuse = s
                    .fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let status = if refuse {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                s.got.lock().unwrap().push((id, body, ok, status.as_u16()));
                status
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app.with_state(state)).await });
    url
}

/// A call answered and hung up by agent1; its callId.
async fn one_call(base: &str, ws_url: &str) -> String {
    let mut ws = tab_at(base, ws_url, "agent1@demo.local").await;
    let op = json!({"op": "callOut", "caller": "", "callee": "12025550101",
                    "countryCode": "1", "orderId": "order-77"});
    ws.send(Message::text(op.to_string())).await.unwrap();
    loop {
        let d = dial(&mut ws).await;
        match d["code"].as_i64() {
            Some(2) => ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap(),
            Some(5) => return d["callId"].as_str().unwrap().to_string(),
            None => panic!("the tab closed"),
            _ => {}
        }
    }
}

async fn put_webhook(base: &str, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{base}/api/v1/admin/webhook"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}

#[tokio::test]
async fn a_call_s_record_is_signed_retried_after_failures_and_delivered_once() {
    let state = Arc::new(Receiver::default());
    state.fail.store(2, Ordering::SeqCst);
    let url = receiver(state.clone()).await;
    let (_dir, running) = start_with(vec![], |c| c.webhooks.first_retry_ms = 100).await;
    let base = format!("http://{}", running.addr);
    let admin = sign_in(&base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused: a bad URL, a short secret, a key without webhooks:write.
    for bad in [
        json!({"url": "ftp://127.0.0.1/x", "secret": SECRET}),
        json!({"url": url, "secret": "short"}),
        json!({"url": url}),
    ] {
        assert_eq!(
            put_webhook(&base, &admin, bad.clone()).await.0,
            400,
            "{bad}"
        );
    }
    let key = |scopes: Value| {
        let (base, admin) = (base.clone(), admin.clone());
        async move {
            let r: Value = reqwest::Client::new()
                .post(format!("{base}/api/v1/admin/api-keys"))
                .bearer_auth(admin)
                .json(&json!({"name": "crm", "scopes": scopes}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["key"].as_str().unwrap().to_string()
        }
    };
    let reader = key(json!(["records:read"])).await;
    let body = json!({"url": url, "secret": SECRET});
    assert_eq!(put_webhook(&base, &reader, body.clone()).await.0, 403);
    let writer = key(json!(["webhooks:write"])).await;
    let (code, set) = put_webhook(&base, &writer, body).await;
    assert_eq!(
        (code, set["hasSecret"].clone()),
        (200, json!(true)),
        "{set}"
    );
    assert!(!set.to_string().contains(SECRET));

    let call_id = one_call(&base, &format!("ws://{}/ws", running.addr)).await;
    wait_for("a 2xx", || state.got().iter().any(|g| g.3 == 200)).await;
    // A while longer: nothing comes again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = state.got();
    assert_eq!(
        got.iter().map(|g| g.3).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    assert!(got.iter().all(|g| g.2), "every signature holds");
    assert!(
        got.iter().all(|g| g.0 == got[0].0 && g.1 == got[0].1),
        "one delivery, one body"
    );
    let sent: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(sent["type"], "callEnded");
    assert_eq!(sent["deliveryId"], got[0].0.as_str());
    assert_eq!(sent["call"]["callId"], call_id.as_str());
    assert_eq!(sent["call"]["orderId"], "order-77");
    assert_eq!(sent["call"]["hungUpBy"], "agent");

    let log: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/admin/webhook/deliveries"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &log["deliveries"][0];
    assert_eq!(
        (d["state"].clone(), d["attempts"].clone()),
        (json!("delivered"), json!(3)),
        "{log}"
    );
    assert_eq!(d["lastStatus"], 200);
}

#[tokio::test]
async fn a_delivery_survives_kill_9_in_the_middle_of_its_retries() {
    let state = Arc::new(Receiver::default());
    state.fail.store(usize::MAX, Ordering::SeqCst);
    let url = receiver(state.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seatline.toml");
    std::fs::write(
        &config,
        "[sip]\nlisten = \"127.0.0.1:0\"\n[sandbox]\nlisten = \"127.0.0.1:0\"\n\
         [webhooks]\nfirst_retry_ms = 300\nmax_retry_ms = 300\n",
    )
    .unwrap();
    let http = free_tcp_port();
    let base = format!("http://127.0.0.1:{http}");
    let start = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_seatline"))
            .args(["demo", "--listen", &format!("127.0.0.1:{http}")])
            .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
            .args(["--config", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut server = start();
    let admin = sign_in(&base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = put_webhook(&base, &admin, json!({"url": url, "secret": SECRET})).await;
    assert_eq!(code, 200);
    let call_id = one_call(&base, &format!("ws://127.0.0.1:{http}/ws")).await;
    wait_for("two failed attempts", || state.got().len() >= 2).await;

    server.kill().await.unwrap(); // SIGKILL: no clean stop
    let before = state.got().len();
    state.fail.store(0, Ordering::SeqCst);
    let _server = start();
    wait_for("the delivery after the restart", || {
        state.got().iter().any(|g| g.3 == 200)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = state.got();
    assert_eq!(
        got.iter().filter(|g| g.3 == 200).count(),
        1,
        "once: {got:?}"
    );
    assert_eq!(got.last().unwrap().3, 200, "nothing after the 2xx");
    assert!(got.len() > before);
    assert!(got
        .iter()
        .all(|g| g.2 && g.0 == got[0].0 && g.1 == got[0].1));
    let sent: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(sent["call"]["callId"], call_id.as_str());
}
