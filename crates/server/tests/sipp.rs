//! The SIP trunk against a peer written by no one here: SIPp (Debian's
//! `sip-tester`) as the carrier (answer, busy, far-end hang-up) and as the
//! caller of an inbound call.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_server::config::{Config, TrunkConfig};
use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use tokio_tungstenite::tungstenite::Message;

struct Server {
    base: String,
    ws: String,
    sip: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start(trunk: Option<u16>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.demo.seed = true;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.trunks = trunk
        .map(|p| TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{p}")))
        .into_iter()
        .collect();
    cfg.sandbox.listen = "127.0.0.1:0".parse().unwrap();
    let running = seatline_server::start(cfg).await.unwrap();
    Server {
        base: format!("http://{}", running.addr),
        ws: format!("ws://{}/ws", running.addr),
        sip: running.app.calls.sip_addr,
        _dir: dir,
    }
}

async fn agent(s: &Server, email: &str) -> Ws {
    let body: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions", s.base))
        .json(&json!({"email": email, "password": "demo1234"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(&s.ws).await.unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": body["token"]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["ev"], "ready");
    ws
}

#[tokio::test]
async fn sipp_carrier_answers_and_we_hang_up() {
    let port = free_udp_port();
    let media = free_udp_port().to_string();
    let child = sipp(&[
        "-sf",
        scenario("carrier_answer.xml").to_str().unwrap(),
        "-p",
        &port.to_string(),
        "-mp",
        &media,
    ]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = start(Some(port)).await;
    let mut ws = agent(&s, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(child, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn sipp_carrier_busy_gives_5_with_sip_code_486() {
    let port = free_udp_port();
    let media = free_udp_port().to_string();
    let child = sipp(&[
        "-sf",
        scenario("carrier_busy.xml").to_str().unwrap(),
        "-p",
        &port.to_string(),
        "-mp",
        &media,
    ]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = start(Some(port)).await;
    let mut ws = agent(&s, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["sipCode"].as_i64()),
        (Some(5), Some(486))
    );
    finished(child, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn sipp_carrier_hangs_up_and_the_agent_gets_5() {
    let port = free_udp_port();
    let media = free_udp_port().to_string();
    let child = sipp(&[
        "-sf",
        scenario("carrier_hangup.xml").to_str().unwrap(),
        "-p",
        &port.to_string(),
        "-mp",
        &media,
    ]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = start(Some(port)).await;
    let mut ws = agent(&s, "agent2@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5);
    assert!(end.get("hangupCode").is_none());
    finished(child, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn sipp_calls_a_did_and_the_agent_answers() {
    // SIPp is the trunk: only the trunk's address may place calls.
    let sipp_port = free_udp_port();
    let s = start(Some(sipp_port)).await;
    let mut ws = agent(&s, "agent1@demo.local").await;
    let port = sipp_port.to_string();
    let media = free_udp_port().to_string();
    let target = s.sip.to_string();
    let child = sipp(&[
        &target,
        "-sf",
        scenario("caller_inbound.xml").to_str().unwrap(),
        "-s",
        "12025550170",
        "-p",
        &port,
        "-mp",
        &media,
    ]);
    let ringing = dial(&mut ws).await;
    assert_eq!(
        (ringing["code"].as_i64(), ringing["direction"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(ringing["caller"], "14155550177");
    assert_eq!(ringing["other"], "{\"via\":\"sipp\"}");
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5);
    finished(child, Duration::from_secs(30)).await;
}
