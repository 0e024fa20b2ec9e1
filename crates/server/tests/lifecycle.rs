//! No call outlives its carrier, its server or a crash, and every record
//! matches what the tabs were told. Real peers: SIPp (Debian's sip-tester)
//! as the carrier, the `seatline` binary itself for SIGTERM and kill -9.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_server::config::{Config, TrunkConfig};
use serde_json::json;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

async fn agent(base: &str, ws_url: &str, email: &str) -> Ws {
    let body = sign_in(base, email).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": body["token"]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["ev"], "ready");
    ws
}

#[tokio::test]
async fn a_carrier_that_sends_no_rtp_is_hung_up_with_800() {
    let carrier = free_udp_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.demo.seed = true;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.trunks = vec![TrunkConfig::udp(
        "carrier",
        &format!("sip:127.0.0.1:{carrier}"),
    )];
    cfg.calls.rtp_timeout_secs = 2;
    let running = seatline_server::start(cfg).await.unwrap();
    let base = format!("http://{}", running.addr);
    let mut ws = agent(
        &base,
        &format!("ws://{}/ws", running.addr),
        "agent1@demo.local",
    )
    .await;
    // SIPp answers and then stays silent: no RTP ever comes.
    let child = sipp_carrier("carrier_answer.xml", carrier, free_udp_port());
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(call_out("12025550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    let started = std::time::Instant::now();
    assert_eq!(dial(&mut ws).await["code"], 800);
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["hangupCode"].as_i64()),
        (Some(5), Some(800))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "not before the RTP timeout"
    );
    // SIPp's scenario only succeeds when our BYE reached it.
    finished(child, Duration::from_secs(10)).await;
    running.app.hub.flush_writes().await;
    let rec = running
        .app
        .store
        .call(end["callId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.hangup_code, Some(800));
}

#[tokio::test]
async fn every_record_matches_what_the_tabs_were_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.demo.seed = true;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sandbox.listen = "127.0.0.1:0".parse().unwrap();
    let running = seatline_server::start(cfg).await.unwrap();
    let base = format!("http://{}", running.addr);
    let mut ws = agent(
        &base,
        &format!("ws://{}/ws", running.addr),
        "agent1@demo.local",
    )
    .await;
    let mut finals = Vec::new();
    // Failed calls in a row (busy, unknown number) and answered ones.
    for callee in [
        "12025550186",
        "12025550104",
        "12025550186",
        "12025550104",
        "12025550101",
        "12025550186",
        "12025550101",
        "12025550104",
        "12025550101",
        "12025550186",
    ] {
        ws.send(call_out(callee)).await.unwrap();
        loop {
            let d = dial(&mut ws).await;
            if d["code"] == 2 {
                ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
            }
            if d["code"] == 5 {
                finals.push(d);
                break;
            }
        }
    }
    running.app.hub.flush_writes().await;
    let sips: Vec<Option<i64>> = finals.iter().map(|f| f["sipCode"].as_i64()).collect();
    assert_eq!(
        sips.iter().filter(|s| **s == Some(486)).count(),
        4,
        "{sips:?}"
    );
    assert_eq!(
        sips.iter().filter(|s| **s == Some(404)).count(),
        3,
        "{sips:?}"
    );
    assert_eq!(
        finals
            .iter()
            .filter(|f| f["callConnectedTimestamp"].as_i64().is_some())
            .count(),
        3
    );
    for f in finals {
        let rec = running
            .app
            .store
            .call(f["callId"].as_str().unwrap())
            .await
            .unwrap()
            .expect("a record for every call");
        assert_eq!(rec.hangup_ms, f["callHangUpTimestamp"].as_i64(), "{f}");
        assert_eq!(
            rec.connected_ms,
            f["callConnectedTimestamp"].as_i64(),
            "{f}"
        );
        assert_eq!(rec.sip_code, f["sipCode"].as_i64(), "{f}");
        assert_eq!(rec.hangup_code, f["hangupCode"].as_i64(), "{f}");
        assert!(rec.dialog.is_none());
    }
}

/// The real binary, on its own ports and data directory, with SIPp as trunk.
fn spawn_seatline(data: &Path, http: u16, sip: u16, trunk: u16) -> Child {
    let cfg = data.join("seatline.toml");
    std::fs::write(
        &cfg,
        format!("[sip]\nlisten = \"127.0.0.1:{sip}\"\n\n[media]\nlisten = \"127.0.0.1:0\"\n\n[[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{trunk}\"\n"),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_seatline"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{http}"),
            "--data-dir",
            data.join("data").to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn connected_call(base: &str, http: u16) -> (Ws, String) {
    let mut ws = agent(
        base,
        &format!("ws://127.0.0.1:{http}/ws"),
        "agent1@demo.local",
    )
    .await;
    ws.send(call_out("12025550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2);
    (ws, up["callId"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn sigterm_ends_the_call_with_a_bye_and_5() {
    let dir = tempfile::tempdir().unwrap();
    let (http, sip, carrier) = (free_tcp_port(), free_udp_port(), free_udp_port());
    let sipp = sipp_carrier("carrier_answer.xml", carrier, free_udp_port());
    let mut server = spawn_seatline(dir.path(), http, sip, carrier);
    let base = format!("http://127.0.0.1:{http}");
    let (mut ws, _) = connected_call(&base, http).await;
    let pid = server.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let end = dial(&mut ws).await;
    assert_eq!(
        end["code"], 5,
        "the tab hears the end before the server goes"
    );
    finished(sipp, Duration::from_secs(10)).await;
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sigusr1_drains_the_node_its_call_runs_to_the_end_then_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (http, sip, carrier) = (free_tcp_port(), free_udp_port(), free_udp_port());
    let sipp = sipp_carrier("carrier_answer.xml", carrier, free_udp_port());
    let mut server = spawn_seatline(dir.path(), http, sip, carrier);
    let base = format!("http://127.0.0.1:{http}");
    let ws_url = format!("ws://127.0.0.1:{http}/ws");
    let (mut ws, _) = connected_call(&base, http).await;
    let mut idle = agent(&base, &ws_url, "agent2@demo.local").await;
    let pid = server.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    // The idle agent's tab is closed (it reconnects elsewhere)...
    while next(&mut idle).await["ev"] != "closed" {}
    // ...the node says it drains and takes no new tab...
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 503);
    let refused = tokio_tungstenite::connect_async(&ws_url).await;
    assert!(refused.is_err(), "no new WebSocket while draining");
    // ...and the call goes on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.try_wait().unwrap().is_none(), "still running");
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(sipp, Duration::from_secs(10)).await;
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the drained node exits")
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn after_kill_9_the_next_start_closes_the_record_and_byes_the_carrier() {
    let dir = tempfile::tempdir().unwrap();
    let (http, sip, carrier) = (free_tcp_port(), free_udp_port(), free_udp_port());
    let sipp = sipp_carrier("carrier_answer.xml", carrier, free_udp_port());
    let mut server = spawn_seatline(dir.path(), http, sip, carrier);
    let base = format!("http://127.0.0.1:{http}");
    let (_ws, call_id) = connected_call(&base, http).await;
    // Let the ordered writer store the connected call and its dialog.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let open = admin_calls_offline(dir.path(), &call_id).await;
    assert!(open, "the crash left the record open");
    // The next start: the record is closed and SIPp gets its BYE.
    let _server = spawn_seatline(dir.path(), http, sip, carrier);
    finished(sipp, Duration::from_secs(20)).await;
    let calls = admin_calls(&base).await;
    let rec = calls
        .iter()
        .find(|c| c["callId"] == call_id.as_str())
        .expect("the record");
    assert_eq!(rec["hangupCode"], 801);
    assert!(rec["callHangUpTimestamp"].as_i64().is_some());
}

/// Whether the call's record is still open, read from the data directory.
async fn admin_calls_offline(dir: &Path, call_id: &str) -> bool {
    let store = seatline_store::Store::open_dir(&dir.join("data"))
        .await
        .unwrap();
    let rec = store
        .call(call_id)
        .await
        .unwrap()
        .expect("the record was written");
    rec.hangup_ms.is_none() && rec.dialog.is_some()
}
