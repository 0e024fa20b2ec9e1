//! What carriers do besides answering and hanging up, against SIPp on
//! loopback: a call cancelled while it rings, a hold and resume by
//! re-INVITE from the carrier, a DTMF digit and audio from a pcap, and an
//! inbound call whose INVITE, 200 and ACK all arrive or go more than once.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_server::config::TrunkConfig;
use serde_json::Value;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use support::*;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// SIPp with `scenario` on `port`, one call, given up after 30 s.
fn sipp(name: &str, port: u16, extra: &[&str]) -> Child {
    Command::new("sipp")
        .args(extra)
        .args(["-sf", scenario(name).to_str().unwrap()])
        .args(["-p", &port.to_string(), "-mp", &free_udp_port().to_string()])
        .args(["-i", "127.0.0.1", "-m", "1", "-nostdin"])
        .args(["-timeout", "30s", "-timeout_error"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)")
}

/// The tab's next event named `ev`, or the first `dial` before it (so that
/// a call that ends early is seen at once, not after a timeout).
async fn event_or_dial(ws: &mut Ws, ev: &str) -> Value {
    loop {
        let e = next(ws).await;
        if e["ev"] == ev || e["ev"] == "dial" || e["ev"] == "closed" {
            return e;
        }
    }
}

#[tokio::test]
async fn a_call_hung_up_while_ringing_is_cancelled_and_ends_with_487() {
    let port = free_udp_port();
    let carrier = sipp("carrier_cancelled.xml", port, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_dir, running) = start(port, 30).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    // Long enough for the 180: the CANCEL then goes at once, not after it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["sipCode"].as_i64()),
        (Some(5), Some(487)),
        "{end}"
    );
    assert!(end.get("hangupCode").is_none(), "{end}");
    // SIPp saw the CANCEL and the ACK of its 487 (else it times out).
    finished(carrier, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn the_carrier_holds_and_resumes_and_the_call_stays_up() {
    let port = free_udp_port();
    let carrier = sipp("carrier_holds.xml", port, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_dir, running) = start(port, 30).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    // The carrier's hold and resume change nothing the agent is told:
    // the next dialStatus is the end, by the carrier's BYE.
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}");
    assert!(end.get("hangupCode").is_none(), "{end}");
    assert!(end.get("sipCode").is_none(), "{end}");
    // SIPp checked a=recvonly in the answer to the hold and a=sendrecv in
    // the answer to the resume.
    finished(carrier, Duration::from_secs(20)).await;
}

/// What the server logs, for the one fact only its log shows: a DTMF
/// digit from the carrier (see the DTMF test).
fn server_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("seatline_server=debug")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        log
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_digit_and_audio_from_a_pcap_reach_seatline() {
    let log = server_log();
    let port = free_udp_port();
    let carrier = sipp("carrier_dtmf.xml", port, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The pcap's audio lasts about 7 s; without it reaching us the call
    // would end 2 s after the digit (dialStatus 800).
    let (_dir, running) = start(port, 2).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    let connected = Instant::now();

    // A digit from the carrier on an agent's call goes to no agent and no
    // API (only a menu reads digits): the media worker decodes it (RFC 4733
    // end event) and the server logs it.
    let heard =
        |l: &Mutex<Vec<u8>>| String::from_utf8_lossy(&l.lock().unwrap()).contains("digit: '1'");
    while !heard(&log) {
        assert!(
            connected.elapsed() < Duration::from_secs(5),
            "no DTMF digit 1 decoded from the carrier's RTP (SIPp plays \
             pcaps over a raw socket: it needs root or CAP_NET_RAW)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The first quality report (5 s after the answer) counts the pcap's
    // packets, and the call outlived the 2 s RTP timeout to send it.
    let q = event_or_dial(&mut ws, "quality").await;
    assert_eq!(
        q["ev"], "quality",
        "the call ended before its quality came: {q}"
    );
    assert!(connected.elapsed() > Duration::from_secs(3));
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}");
    assert!(end.get("hangupCode").is_none(), "{end}");
    finished(carrier, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_retransmitted_invite_is_one_call_and_our_200_repeats_until_acked() {
    let port = free_udp_port();
    let (_dir, running) = start(port, 30).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let target = running.app.calls.sip_addr.to_string();
    let caller = sipp(
        "caller_burst.xml",
        port,
        &[&target, "-s", "12025550170", "-nr", "-pause_msg_ign"],
    );
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 1, "{ringing}");
    // A second call from a copy of the INVITE would ring here first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "{up}");
    assert_eq!(up["callId"], ringing["callId"]);
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}");
    assert_eq!(end["callId"], ringing["callId"]);
    // SIPp got the 200 twice before its ACKs and the 200 for its BYE.
    finished(caller, Duration::from_secs(20)).await;
    let quiet = tokio::time::timeout(Duration::from_secs(1), dial(&mut ws)).await;
    assert!(quiet.is_err(), "nothing more for the agent: {quiet:?}");
    running.app.hub.flush_writes().await;
    let calls = running.app.store.recent_calls(1, 10).await.unwrap();
    assert_eq!(calls.len(), 1, "one call recorded: {calls:?}");
}

/// Seatline with SIPp on `carrier` as its one trunk.
async fn start(
    carrier: u16,
    rtp_timeout_secs: u64,
) -> (tempfile::TempDir, seatline_server::Running) {
    let trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{carrier}"));
    start_with(vec![trunk], |cfg| {
        cfg.calls.rtp_timeout_secs = rtp_timeout_secs
    })
    .await
}
