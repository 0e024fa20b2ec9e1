//! Carrier trunks against SIPp on loopback: digest challenges on INVITE and
//! BYE, failover from a failing trunk to a working one, OPTIONS keepalive
//! taking a trunk out and back, and the `seatline demo --trunk ...
//! --sip-listen ...` quick start of the real binary.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_server::config::TrunkConfig;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// SIPp with `scenario` on `port`, for `calls` calls.
fn sipp(name: &str, port: u16, calls: u32, extra: &[&str]) -> Child {
    sipp_in(std::env::temp_dir().as_path(), name, port, calls, extra)
}

/// The same, run in `dir` (where `-trace_logs` writes its log).
fn sipp_in(dir: &std::path::Path, name: &str, port: u16, calls: u32, extra: &[&str]) -> Child {
    Command::new("sipp")
        .current_dir(dir)
        .args(extra)
        .args(["-sf", scenario(name).to_str().unwrap()])
        .args(["-p", &port.to_string(), "-mp", &free_udp_port().to_string()])
        .args(["-i", "127.0.0.1", "-m", &calls.to_string(), "-nostdin"])
        .args(["-timeout", "40s", "-timeout_error"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)")
}

fn trunk(name: &str, port: u16) -> TrunkConfig {
    TrunkConfig::udp(name, &format!("sip:127.0.0.1:{port}"))
}

/// Places a call, expects it answered, hangs it up; returns its callId.
async fn answered_call(ws: &mut Ws) -> String {
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(ws).await["code"], 0);
    let up = dial(ws).await;
    assert_eq!(up["code"], 2, "answered, with nothing between: {up}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(ws).await["code"], 5);
    up["callId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_carrier_that_demands_digest_gets_it_on_invite_and_bye() {
    let port = free_udp_port();
    let carrier = sipp("carrier_digest.xml", port, 1, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t = trunk("carrier", port);
    t.username = Some("trunk1".into());
    t.password = Some("s3cret".into());
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let id = answered_call(&mut ws).await;
    // SIPp checked both Authorization headers (a bad one gets 403 and
    // stops it with an error).
    finished(carrier, Duration::from_secs(20)).await;
    let rec = running.app.store.call(&id).await.unwrap().unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("carrier"));
    assert_eq!(rec.hangup_code, None);
}

#[tokio::test]
async fn credentials_the_carrier_refuses_end_the_call_with_819() {
    let port = free_udp_port();
    let carrier = sipp("carrier_digest.xml", port, 1, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t = trunk("carrier", port);
    t.username = Some("trunk1".into());
    t.password = Some("wrong".into());
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 819);
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["sipCode"].as_i64()),
        (Some(5), Some(403))
    );
    finished(carrier, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_503_trunk_fails_over_to_the_next_and_the_tabs_see_one_call() {
    let (bad, good) = (free_udp_port(), free_udp_port());
    let failing = sipp("carrier_unavailable.xml", bad, 1, &[]);
    let working = sipp("carrier_answer.xml", good, 1, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_dir, running) =
        start_with(vec![trunk("primary", bad), trunk("backup", good)], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let id = answered_call(&mut ws).await;
    finished(failing, Duration::from_secs(20)).await;
    finished(working, Duration::from_secs(20)).await;
    let rec = running.app.store.call(&id).await.unwrap().unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("backup"));
    assert_eq!((rec.hangup_code, rec.sip_code), (None, None));
}

/// Waits until the trunk's health is `up`; how long it took.
async fn health_becomes(running: &seatline_server::Running, up: bool) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if running.app.hub.trunk_health() == vec![("carrier".to_string(), up)] {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the trunk never became up={up}");
}

#[tokio::test]
async fn keepalive_takes_a_silent_trunk_out_and_puts_it_back() {
    let port = free_udp_port();
    let pings = sipp("carrier_options.xml", port, 1000, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t = trunk("carrier", port);
    t.keepalive_secs = 1;
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    health_becomes(&running, true).await;

    drop(pings); // the carrier is gone
    health_becomes(&running, false).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 800, "refused at once");
    assert_eq!(dial(&mut ws).await["code"], 5);

    let _back = sipp("carrier_options.xml", port, 1000, &[]);
    health_becomes(&running, true).await;
}

#[tokio::test]
async fn a_trunk_registers_with_digest_and_refreshes_before_expiry() {
    let port = free_udp_port();
    let registrar = sipp("registrar.xml", port, 1, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t = trunk("carrier", port);
    t.username = Some("trunk1".into());
    t.password = Some("s3cret".into());
    t.register = true;
    t.domain = Some("carrier.test".into());
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    health_becomes(&running, true).await;
    // Granted 5 s: the refresh (challenged again) comes about 4 s later.
    finished(registrar, Duration::from_secs(15)).await;
    assert_eq!(
        running.app.hub.trunk_health(),
        vec![("carrier".to_string(), true)],
        "still registered after the refresh"
    );
}

#[tokio::test]
async fn seatline_demo_takes_a_trunk_and_a_sip_address_from_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (http, sip, carrier) = (free_tcp_port(), free_udp_port(), free_udp_port());
    let answer = sipp("carrier_answer.xml", carrier, 1, &[]);
    let _server = Command::new(env!("CARGO_BIN_EXE_seatline"))
        .args(["demo", "--listen", &format!("127.0.0.1:{http}")])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--trunk", &format!("sip:127.0.0.1:{carrier}")])
        .args(["--sip-listen", &format!("127.0.0.1:{sip}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{http}");
    let mut ws = tab_at(
        &base,
        &format!("ws://127.0.0.1:{http}/ws"),
        "agent1@demo.local",
    )
    .await;
    // Outbound: to the trunk, not to the sandbox.
    answered_call(&mut ws).await;
    finished(answer, Duration::from_secs(20)).await;
    // Inbound: the trunk's address calls a DID at --sip-listen.
    let caller = sipp(
        "caller_inbound.xml",
        carrier,
        1,
        &[&format!("127.0.0.1:{sip}"), "-s", "12025550170"],
    );
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 1, "{ringing}");
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(caller, Duration::from_secs(20)).await;
    // Another address is not the trunk: its call is dropped unanswered.
    let stranger = sipp(
        "caller_inbound.xml",
        free_udp_port(),
        1,
        &[&format!("127.0.0.1:{sip}"), "-s", "12025550170"],
    );
    let quiet = tokio::time::timeout(Duration::from_secs(3), dial(&mut ws)).await;
    assert!(quiet.is_err(), "no call from an untrusted source");
    drop(stranger);
}

/// The port SIPp logged as `ANSWER_PORT=` in a `-trace_logs` file in `dir`.
async fn answer_port(dir: &std::path::Path) -> u16 {
    logged_port(dir, "ANSWER_PORT=").await
}

/// The port SIPp logged after `key` in `dir`, once it has.
async fn logged_port(dir: &std::path::Path, key: &str) -> u16 {
    for _ in 0..100 {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if let Some(p) = text
                .split(key)
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|p| p.parse().ok())
            {
                return p;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("SIPp never logged {key}");
}

/// SIPp as a carrier calling the DID 12025550171 at `sip`, its media the
/// test's socket on `media_port`; its log (the answer's port) in `dir`.
fn forward_caller(dir: &std::path::Path, port: u16, sip: &str, media_port: &str) -> Child {
    did_caller(
        dir,
        "caller_forward.xml",
        port,
        sip,
        &[("rtp_port", media_port)],
    )
}

/// SIPp running `scenario` from `port` as a carrier calling the DID
/// 12025550171 at `sip`, each (key, value) set with `-key`; its log in `dir`.
fn did_caller(
    dir: &std::path::Path,
    scenario: &str,
    port: u16,
    sip: &str,
    keys: &[(&str, &str)],
) -> Child {
    let mut args = vec![sip, "-s", "12025550171", "-trace_logs"];
    for (key, value) in keys {
        args.extend(["-key", key, value]);
    }
    sipp_in(dir, scenario, port, 1, &args)
}

/// Sends the test's talk (packets `seqs`, 20 ms apart) from `media` to our
/// RTP `port`, and counts the echoes that come back to `media` whole: our
/// SSRC and payload, relayed twice.
async fn talk(media: &tokio::net::UdpSocket, port: u16, seqs: std::ops::Range<u16>) -> usize {
    let mut heard = 0;
    let mut buf = [0u8; 2000];
    for seq in seqs {
        media
            .send_to(&pcmu(seq), ("127.0.0.1", port))
            .await
            .unwrap();
        let until = tokio::time::Instant::now() + Duration::from_millis(20);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, media.recv_from(&mut buf)).await {
            if n == 172
                && buf[8..12] == 0x5ea7_u32.to_be_bytes()
                && buf[12..n].iter().all(|b| *b == 0x55)
            {
                heard += 1;
            }
        }
    }
    heard
}

/// RTP packet `seq` of the test's talk: PCMU, SSRC 0x5ea7, 160 bytes of 0x55.
fn pcmu(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x5ea7_u32.to_be_bytes());
    p.extend_from_slice(&[0x55; 160]);
    p
}

#[tokio::test]
async fn a_forwarded_did_connects_sipp_to_sipp_with_rtp_relayed_both_ways() {
    let (caller_port, number_port) = (free_udp_port(), free_udp_port());
    let echo = sipp("carrier_answer.xml", number_port, 1, &["-rtp_echo"]);
    let mut t = trunk("carrier", number_port);
    t.inbound_from = vec!["127.0.0.1".into()];
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let admin = sign_in(&base, "admin@demo.local").await;
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{base}/api/v1/admin/dids/12025550171/route"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .json(&json!({"forwardTo": "14155550123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let bad = http
        .put(format!("{base}/api/v1/admin/dids/12025550171/route"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .json(&json!({"forwardTo": "call me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The tenant records every call: a forwarded one too.
    let rec_setting = http
        .put(format!("{base}/api/v1/admin/recording"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .json(&json!({"mode": "all", "retentionDays": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(rec_setting.status(), 204);

    let media = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media_port = media.local_addr().unwrap().port().to_string();
    let logs = tempfile::tempdir().unwrap();
    let sip = running.app.calls.sip_addr.to_string();
    let caller = forward_caller(logs.path(), caller_port, &sip, &media_port);
    let port = answer_port(logs.path()).await;
    // Talk: 100 packets, 20 ms apart; the number's end echoes them.
    let heard = talk(&media, port, 0..100).await;
    assert!(
        heard >= 80,
        "only {heard} of 100 packets came back through both relays"
    );
    finished(caller, Duration::from_secs(20)).await;
    finished(echo, Duration::from_secs(20)).await;

    let calls: serde_json::Value = http
        .get(format!("{base}/api/v1/admin/calls"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rec = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["forwardedTo"] == "14155550123")
        .expect("the forwarded call's record")
        .clone();
    assert_eq!(rec["callee"], "12025550171");
    assert_eq!(rec["trunk"], "carrier");

    // Its recording: the number (left) and the caller (right) both carry
    // the test's audio (μ-law 0x55: -716), the number's by its echo.
    let api = Api::of(&running);
    let (_, key) = api
        .new_key(admin["token"].as_str().unwrap(), &["recordings:read"])
        .await;
    let path = format!(
        "/api/v1/calls/{}/recording",
        rec["callId"].as_str().unwrap()
    );
    let (code, wav) = api.get_bytes(&path, key["key"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    let mut r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let loud = |ch: usize| s.iter().skip(ch).step_by(2).filter(|v| **v == -716).count();
    assert!(
        loud(0) >= 80 * 160 && loud(1) >= 80 * 160,
        "both legs recorded: {} and {} samples of the test's audio",
        loud(0),
        loud(1)
    );

    // A DID no tenant owns: 404, and counted where an operator looks.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = running.app.calls.sip_addr;
    assert_eq!(final_status(&sock, target, "19995550100").await, 404);
    let status: serde_json::Value = http
        .get(format!("{base}/api/v1/admin/trunks"))
        .bearer_auth(admin["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["unknownDidCalls"], 1, "{status}");
    assert_eq!(
        status["trunks"],
        json!([{"name": "carrier", "shared": true, "up": true}])
    );
    assert!(rec["callConnectedTimestamp"].is_number(), "{rec}");
    assert!(rec["callHangUpTimestamp"].is_number(), "{rec}");
}

#[tokio::test]
async fn a_caller_that_moves_its_media_in_a_re_invite_is_followed_by_the_relay() {
    let (caller_port, number_port) = (free_udp_port(), free_udp_port());
    let echo = sipp("carrier_reinvited.xml", number_port, 1, &["-rtp_echo"]);
    let (_dir, running) = forwarding_to(number_port).await;
    let first = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (p1, p2) = (
        first.local_addr().unwrap().port().to_string(),
        second.local_addr().unwrap().port().to_string(),
    );
    let logs = tempfile::tempdir().unwrap();
    let sip = running.app.calls.sip_addr.to_string();
    let keys = [("rtp_port", p1.as_str()), ("new_rtp_port", p2.as_str())];
    let caller = did_caller(logs.path(), "caller_moves.xml", caller_port, &sip, &keys);
    let port = answer_port(logs.path()).await;
    // Talk from where the call began: echoed there.
    let heard = talk(&first, port, 0..40).await;
    assert!(heard >= 30, "{heard} of 40 echoed before the move");
    // The caller's re-INVITE names its other socket; once it is answered,
    // the echo goes there, and the old address is heard no more.
    assert_eq!(logged_port(logs.path(), "MOVED_PORT=").await, port);
    let heard = talk(&second, port, 40..80).await;
    assert!(heard >= 30, "{heard} of 40 echoed after the move");
    let mut buf = [0u8; 2000];
    let stale = tokio::time::timeout(Duration::from_millis(100), first.recv_from(&mut buf)).await;
    assert!(stale.is_err(), "nothing more reaches the old address");
    finished(caller, Duration::from_secs(20)).await;
    finished(echo, Duration::from_secs(20)).await;
}

/// Seatline with one trunk to the number's SIPp on `number_port`, the DID
/// 12025550171 forwarded to 14155550123.
async fn forwarding_to(number_port: u16) -> (tempfile::TempDir, seatline_server::Running) {
    let mut t = trunk("carrier", number_port);
    t.inbound_from = vec!["127.0.0.1".into()];
    let (dir, running) = start_with(vec![t], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let (code, _) = api
        .put(
            "/api/v1/admin/dids/12025550171/route",
            &admin,
            json!({"forwardTo": "14155550123"}),
        )
        .await;
    assert_eq!(code, 204);
    (dir, running)
}

#[tokio::test]
async fn the_number_s_early_media_reaches_the_caller_through_a_forwarded_did() {
    let (caller_port, number_port) = (free_udp_port(), free_udp_port());
    let number = sipp("carrier_early.xml", number_port, 1, &["-rtp_echo"]);
    let (_dir, running) = forwarding_to(number_port).await;
    let media = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media_port = media.local_addr().unwrap().port().to_string();
    let logs = tempfile::tempdir().unwrap();
    let sip = running.app.calls.sip_addr.to_string();
    let keys = [("rtp_port", media_port.as_str())];
    let caller = did_caller(logs.path(), "caller_early.xml", caller_port, &sip, &keys);
    // The 183 came with our SDP; the number answers 3 s after its 183, so
    // what we hear back in the next 1.2 s came before the answer.
    let port = logged_port(logs.path(), "EARLY_PORT=").await;
    let t0 = Instant::now();
    let heard = talk(&media, port, 0..60).await;
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        heard >= 40,
        "only {heard} of 60 packets came back before the answer"
    );
    finished(caller, Duration::from_secs(20)).await;
    finished(number, Duration::from_secs(20)).await;
    // The record counts the call from the number's answer, not its 183.
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let (_, calls) = api.get("/api/v1/admin/calls", &admin).await;
    let rec = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["forwardedTo"] == "14155550123")
        .expect("the forwarded call's record")
        .clone();
    let (start, connected) = (
        rec["callStartTimestamp"].as_i64().unwrap_or_default(),
        rec["callConnectedTimestamp"].as_i64().unwrap_or_default(),
    );
    assert!(connected - start >= 2900, "{rec}");
}

#[tokio::test]
async fn a_number_s_hold_and_resume_reach_the_caller_of_a_forwarded_did() {
    let (caller_port, number_port) = (free_udp_port(), free_udp_port());
    let number = sipp("carrier_holds.xml", number_port, 1, &[]);
    let (_dir, running) = forwarding_to(number_port).await;
    let sip = running.app.calls.sip_addr.to_string();
    let caller = sipp(
        "caller_held.xml",
        caller_port,
        1,
        &[&sip, "-s", "12025550171"],
    );
    // The caller's SIPp checks that each re-INVITE reached it with the
    // number's direction; the number's SIPp, that our answers mirror it.
    finished(caller, Duration::from_secs(30)).await;
    finished(number, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_caller_waiting_past_the_maximum_overflows_to_a_number_and_talks_to_it() {
    let (caller_port, number_port) = (free_udp_port(), free_udp_port());
    let echo = sipp("carrier_answer.xml", number_port, 1, &["-rtp_echo"]);
    let mut t = trunk("carrier", number_port);
    t.inbound_from = vec!["127.0.0.1".into()];
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let admin = sign_in(&base, "admin@demo.local").await;
    let token = admin["token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let put = |path: &str, body: serde_json::Value| {
        http.put(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let routing = "/api/v1/admin/groups/G001/routing";
    let with = |overflow: serde_json::Value| {
        let mut b = json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 1});
        b.as_object_mut()
            .unwrap()
            .extend(overflow.as_object().unwrap().clone());
        b
    };
    // Refused: not digits, both a group and a number, one of our DIDs.
    for (body, code) in [
        (json!({"overflowNumber": "call me"}), "badRouting"),
        (
            json!({"overflowNumber": "14155550123", "overflowGroup": "G001"}),
            "badRouting",
        ),
        (json!({"overflowNumber": "+12025550171"}), "forwardLoop"),
    ] {
        let r = put(routing, with(body.clone())).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], code, "{body}: {e}");
    }
    let r = put(routing, with(json!({"overflowNumber": "+14155550123"})))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let back: serde_json::Value = http
        .get(format!("{base}{routing}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back["overflowNumber"], "14155550123", "{back}");
    assert_eq!(back["overflowGroup"], serde_json::Value::Null);
    let r = put(
        "/api/v1/admin/dids/12025550171/route",
        json!({"group": "G001"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);

    // Nobody of G001 is signed in: the caller is answered to wait, hears
    // the music for a second, then the number (SIPp echoing) answers.
    let media = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media_port = media.local_addr().unwrap().port().to_string();
    let logs = tempfile::tempdir().unwrap();
    let sip = running.app.calls.sip_addr.to_string();
    let caller = forward_caller(logs.path(), caller_port, &sip, &media_port);
    let port = answer_port(logs.path()).await;
    let (mut music, mut echoed, mut first_echo) = (0, 0, None);
    let mut buf = [0u8; 2000];
    let started = Instant::now();
    for seq in 0..175u16 {
        media
            .send_to(&pcmu(seq), ("127.0.0.1", port))
            .await
            .unwrap();
        let until = tokio::time::Instant::now() + Duration::from_millis(20);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, media.recv_from(&mut buf)).await {
            if n == 172 && buf[8..12] == 0x5ea7_u32.to_be_bytes() {
                echoed += 1;
                first_echo.get_or_insert(started.elapsed());
            } else if n > 12 && first_echo.is_none() {
                music += 1;
            }
        }
    }
    assert!(music >= 25, "only {music} packets of music while waiting");
    assert!(
        echoed >= 60,
        "only {echoed} packets came back from the number after the overflow"
    );
    let first_echo = first_echo.unwrap();
    assert!(
        first_echo >= Duration::from_millis(900),
        "the number answered after {first_echo:?}, before the maximum wait"
    );
    finished(caller, Duration::from_secs(20)).await;
    finished(echo, Duration::from_secs(20)).await;

    let calls: serde_json::Value = http
        .get(format!("{base}/api/v1/admin/calls"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = calls["calls"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one record for the caller: {calls}");
    let rec = &list[0];
    assert_eq!(rec["forwardedTo"], "14155550123", "{rec}");
    assert_eq!(rec["callee"], "12025550171");
    assert_eq!(rec["trunk"], "carrier");
    assert!(rec["callConnectedTimestamp"].is_number(), "{rec}");
    assert!(rec["callHangUpTimestamp"].is_number(), "{rec}");
}

#[tokio::test]
async fn a_carrier_sending_national_dids_reaches_them_through_its_trunk_s_rules() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut t = trunk("national", port);
    t.did_add_prefix = "1".into();
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    assert_eq!(api.reject_did(&admin, "12025550171", 486).await, 204);
    let target = running.app.calls.sip_addr;
    // 2025550171 is our 12025550171 on this trunk: its route answers.
    assert_eq!(final_status(&sock, target, "2025550171").await, 486);
    // A new route holds from the next call (the route read for the first
    // one is not kept past the change).
    assert_eq!(api.reject_did(&admin, "12025550171", 603).await, 204);
    assert_eq!(final_status(&sock, target, "2025550171").await, 603);
    // 3025550171 becomes 13025550171, a DID nobody owns.
    assert_eq!(final_status(&sock, target, "3025550171").await, 404);
}

// ---- TCP and TLS ---------------------------------------------------------------

fn stream_trunk(port: u16, transport: seatline_server::config::Transport) -> TrunkConfig {
    let scheme = match transport {
        seatline_server::config::Transport::Tls => "sips",
        _ => "sip",
    };
    let mut t = TrunkConfig::udp("carrier", &format!("{scheme}:127.0.0.1:{port}"));
    t.transport = transport;
    t
}

#[tokio::test]
async fn a_tcp_trunk_carries_a_call_and_a_carrier_calls_in_over_tcp() {
    let port = free_tcp_port();
    let carrier = sipp("carrier_answer.xml", port, 1, &["-t", "t1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tcp = stream_trunk(port, seatline_server::config::Transport::Tcp);
    let (_dir, running) = start_with(vec![tcp], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    answered_call(&mut ws).await;
    finished(carrier, Duration::from_secs(20)).await;

    // The carrier connects to us (TCP on the SIP address) and calls a DID.
    let sip = running.app.calls.sip_addr.to_string();
    let caller = sipp(
        "caller_inbound.xml",
        free_tcp_port(),
        1,
        &[&sip, "-s", "12025550170", "-t", "t1"],
    );
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 1, "{ringing}");
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(caller, Duration::from_secs(20)).await;
}

/// A certificate authority and a certificate it signed for 127.0.0.1, in
/// PEM: (CA certificate, leaf certificate, leaf key).
fn test_pki() -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).unwrap();
    (ca.pem(), leaf_cert.pem(), leaf_key.serialize_pem())
}

/// The carrier's TLS end: terminates TLS on `listen` with `cert`/`key`
/// and carries the bytes to SIPp's TCP port (Debian's SIPp has no TLS).
async fn tls_front(cert: &str, key: &str, sipp_port: u16) -> (u16, tokio::task::JoinHandle<()>) {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let certs = vec![rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut inner) = tokio::net::TcpStream::connect(("127.0.0.1", sipp_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
            });
        }
    });
    (port, task)
}

/// The carrier's TLS client: takes SIPp's TCP connections on a port and
/// carries each over TLS to `to`, trusting the CA in `ca`.
async fn tls_back(ca: &std::path::Path, to: u16) -> (u16, tokio::task::JoinHandle<()>) {
    let config = seatline_server::sip_stream::tls_client(Some(ca)).unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut plain, _)) = listener.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else {
                    return;
                };
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let Ok(mut tls) = connector.connect(name, tcp).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn a_carrier_calls_in_over_tls_and_a_plain_connection_there_gets_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ca, cert, key) = test_pki();
    let pki = tempfile::tempdir().unwrap();
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(pki.path().join(name), pem).unwrap();
    }
    let tls_port = free_tcp_port();
    let mut trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{}", free_udp_port()));
    trunk.inbound_from = vec!["127.0.0.1".into()];
    let (_dir, running) = start_with(vec![trunk], |cfg| {
        cfg.sip.tls_listen = Some(([127, 0, 0, 1], tls_port).into());
        cfg.sip.tls_cert = Some(pki.path().join("cert.pem"));
        cfg.sip.tls_key = Some(pki.path().join("key.pem"));
    })
    .await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;

    // SIP in clear on the TLS port: the handshake fails, the connection
    // closes, and no SIP answer comes.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
        .await
        .unwrap();
    let invite = format!(
        "INVITE sip:12025550170@127.0.0.1:{tls_port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKplain\r\n\
         From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:12025550170@127.0.0.1>\r\nCall-ID: plain\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:x@127.0.0.1:9;transport=tcp>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    plain.write_all(invite.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "the server closes a connection that is not TLS"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("SIP/2.0"),
        "{got:?}"
    );

    // Over TLS (SIPp over TCP, carried through TLS that checks our
    // certificate), the DID's call reaches the agent and is answered.
    let (back_port, back) = tls_back(&pki.path().join("ca.pem"), tls_port).await;
    let caller = sipp(
        "caller_inbound.xml",
        free_tcp_port(),
        1,
        &[
            &format!("127.0.0.1:{back_port}"),
            "-s",
            "12025550170",
            "-t",
            "t1",
        ],
    );
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 1, "{ringing}");
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(caller, Duration::from_secs(20)).await;
    back.abort();
}

#[tokio::test]
async fn a_tls_trunk_carries_a_call_and_refuses_a_carrier_it_cannot_verify() {
    let (ca, cert, key) = test_pki();
    let pki = tempfile::tempdir().unwrap();
    std::fs::write(pki.path().join("ca.pem"), &ca).unwrap();
    let sipp_port = free_tcp_port();
    let carrier = sipp("carrier_answer.xml", sipp_port, 1, &["-t", "t1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (tls_port, front) = tls_front(&cert, &key, sipp_port).await;
    let mut t = stream_trunk(tls_port, seatline_server::config::Transport::Tls);
    t.tls_ca = Some(pki.path().join("ca.pem"));
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    answered_call(&mut ws).await;
    finished(carrier, Duration::from_secs(20)).await;

    // Trusting another authority, the handshake fails and so does the
    // call, at once (800), not after the INVITE's 32 s.
    let (other_ca, _, _) = test_pki();
    std::fs::write(pki.path().join("other.pem"), &other_ca).unwrap();
    let mut t = stream_trunk(tls_port, seatline_server::config::Transport::Tls);
    t.tls_ca = Some(pki.path().join("other.pem"));
    let (_dir2, running2) = start_with(vec![t], |_| {}).await;
    let mut ws2 = tab_of(&running2, "agent1@demo.local").await;
    let t0 = Instant::now();
    ws2.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws2).await["code"], 0);
    assert_eq!(dial(&mut ws2).await["code"], 800);
    assert_eq!(dial(&mut ws2).await["code"], 5);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    front.abort();
}
