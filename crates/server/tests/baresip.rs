//! Baresip (Debian's `baresip`, v1.0.0 on Debian 12) as a real SIP phone on
//! loopback: the customer's phone answering a call out with audio from a
//! WAV file, RTCP checked against its RTP stack (libre) in both directions,
//! and a caller dialling one of the demo tenant's DIDs.
//!
//! Baresip runs with a config directory of its own in a tempdir, only the
//! modules it needs (no sound card: no player module at all, so it plays
//! nothing), `ctrl_tcp` as the control interface (netstring JSON commands
//! and events), `rtcpsummary` to print its RTCP statistics when a call
//! closes, and `-s` so the SIP messages are in its log for a failing test.
//!
//! With SRTP, baresip's `srtp` module and `mediaenc=srtp-mand` make it a
//! carrier that takes only RTP/SAVP with SDES keys (and offers only that
//! when it calls); SIPp answering plain RTP plays a carrier that ignores
//! our SDES offer.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_media::dtmf::digit_packets;
use seatline_server::config::{SrtpMode, TrunkConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// 8 kHz mono 16-bit PCM WAV of a 440 Hz tone, `secs` long.
fn tone_wav(path: &Path, secs: u32) {
    let samples = 8000 * secs;
    let data_len = samples * 2;
    let mut w = Vec::with_capacity(44 + data_len as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes()); // bytes per second
    w.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / 8000.0;
        let s = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
        w.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, w).unwrap();
}

struct Baresip {
    child: Child,
    /// Its SIP address: where it listens, and where it sends from.
    sip: SocketAddr,
    ctrl: Ctrl,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip as `user` with `secs` of tone as its microphone, and
    /// connects to its control interface. Its calls end by themselves when
    /// the file has been played (aufile reports end of file, the call closes).
    async fn start(user: &str, secs: u32) -> Baresip {
        Self::start_with(user, secs, false).await
    }

    /// As [`Baresip::start`]; `srtp`: it requires SRTP with SDES keys.
    async fn start_with(user: &str, secs: u32, srtp: bool) -> Baresip {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("tone.wav");
        tone_wav(&wav, secs);
        let sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let ctrl_port = free_tcp_port();
        // net_interface: the SDP names 127.0.0.1, where its RTP comes from
        // (by default it names the host's first interface, and our latch
        // would then drop its loopback RTP). menu: the `dial` and `hangup`
        // commands are the menu's, ctrl_tcp only carries them.
        let config = format!(
            "poll_method epoll\n\
             sip_listen {sip}\n\
             net_interface 127.0.0.1\n\
             audio_source aufile,{wav}\n\
             rtcp_mux no\n\
             statmode_default off\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             {srtp_module}\
             module_tmp account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             module_app rtcpsummary.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n",
            wav = wav.display(),
            srtp_module = if srtp { "module srtp.so\n" } else { "" },
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        // No registration (regint=0): Seatline trusts the trunk address, not a
        // registration. PCMU only: the call is μ-law whatever an offer lists first.
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:{user}@{sip}>;regint=0;answermode=auto;audio_codecs=pcmu{}\n",
                if srtp { ";mediaenc=srtp-mand" } else { "" }
            ),
        )
        .unwrap();
        let log = dir.path().join("baresip.log");
        let out = std::fs::File::create(&log).unwrap();
        // stdbuf: baresip logs through stdio, block-buffered into a file
        // otherwise, and the test reads the log while baresip runs.
        let child = Command::new("stdbuf")
            .args(["-oL", "baresip", "-s", "-f"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip is installed (Debian package baresip)");
        let ctrl = Ctrl::connect(ctrl_port, &log).await;
        Baresip {
            child,
            sip,
            ctrl,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first log line containing `needle`, waiting up to `within`.
    async fn log_line(&self, needle: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < end,
                "no {needle:?} in baresip's log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the whole baresip process.
    fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("baresip is running").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }
}

/// Baresip's `ctrl_tcp`: JSON in netstrings both ways.
struct Ctrl {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Ctrl {
    async fn connect(port: u16, log: &Path) -> Ctrl {
        for _ in 0..100 {
            if let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await {
                return Ctrl {
                    tcp,
                    buf: Vec::new(),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "baresip's ctrl_tcp did not come up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    async fn command(&mut self, command: &str, params: &str) {
        let body = json!({"command": command, "params": params, "token": command}).to_string();
        let frame = format!("{}:{body},", body.len());
        self.tcp.write_all(frame.as_bytes()).await.unwrap();
    }

    /// The next message: an event, or the response to a command.
    async fn next(&mut self) -> Value {
        loop {
            if let Some((msg, used)) = netstring(&self.buf) {
                let v = serde_json::from_slice(msg).expect("JSON from ctrl_tcp");
                self.buf.drain(..used);
                return v;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(20), self.tcp.read(&mut chunk))
                .await
                .expect("a message from baresip in time")
                .unwrap();
            assert!(n > 0, "baresip closed its control connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next event of type `kind` (e.g. `CALL_ESTABLISHED`), skipping others.
    async fn event(&mut self, kind: &str) -> Value {
        loop {
            let m = self.next().await;
            if m["event"] == true && m["type"] == kind {
                return m;
            }
        }
    }

    /// The response to the last command named `command`.
    async fn response(&mut self, command: &str) -> Value {
        loop {
            let m = self.next().await;
            if m["response"] == true && m["token"] == command {
                return m;
            }
        }
    }
}

/// One netstring (`<len>:<bytes>,`) at the start of `buf`, and its length.
fn netstring(buf: &[u8]) -> Option<(&[u8], usize)> {
    let colon = buf.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&buf[..colon]).ok()?.parse().ok()?;
    let end = colon + 1 + len;
    if buf.len() <= end {
        return None;
    }
    assert_eq!(buf[end], b',', "a netstring ends with a comma");
    Some((&buf[colon + 1..end], end + 1))
}

/// The fields of rtcpsummary's line (`EX=BareSip;CS=..;PR=..;DL=..;`).
fn summary_fields(line: &str) -> HashMap<String, String> {
    line.trim()
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `i`-th of a comma-separated pair of numbers in a summary field.
fn pair(fields: &HashMap<String, String>, key: &str, i: usize) -> f64 {
    fields[key].split(',').nth(i).unwrap().parse().unwrap()
}

/// The tab's next `callQuality` sample.
async fn quality(ws: &mut Ws) -> Value {
    loop {
        let ev = next(ws).await;
        assert_ne!(ev["ev"], "closed", "{ev}");
        assert_ne!(ev["ev"], "dial", "the call changed before a sample: {ev}");
        if ev["ev"] == "quality" {
            return ev["content"].clone();
        }
    }
}

/// The call's record once it is closed (it is written just after the
/// closing `dialStatus`).
async fn closed_record(
    running: &seatline_server::Running,
    call_id: &str,
) -> seatline_store::CallRow {
    for _ in 0..50 {
        if let Some(row) = running.app.store.call(call_id).await.unwrap() {
            if row.hangup_ms.is_some() {
                return row;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("call {call_id} was not recorded as closed");
}

#[tokio::test]
async fn baresip_answers_a_call_out_and_its_audio_keeps_the_call_up() {
    // 6 s of tone; RTP silence would end the call after 2 s.
    let mut phone = Baresip::start("12025550100", 6).await;
    let (_dir, running) = seatline(phone.sip, 2).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("12025550100")).await.unwrap();
    let trying = dial(&mut ws).await;
    assert_eq!(
        (trying["code"].as_i64(), trying["direction"].as_i64()),
        (Some(0), Some(1)),
        "{trying}"
    );
    let call_id = trying["callId"].as_str().unwrap().to_string();
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "{up}\n{}", phone.log());

    // Baresip's side: the call came in and it answered it by itself (in
    // auto answer mode there is no CALL_INCOMING event).
    let answered = phone.ctrl.event("CALL_ESTABLISHED").await;
    assert_eq!(answered["direction"], "incoming", "{answered}");
    phone
        .log_line(
            "audio tx pipeline:      aufile ---> PCMU",
            Duration::from_secs(5),
        )
        .await;

    // Its RTP reaches the call: a quality sample (made only from packets
    // that passed the latch on the negotiated address) with no loss.
    let q = quality(&mut ws).await;
    assert_eq!(q["callId"], call_id.as_str());
    assert!(q["lossPct"].as_f64().unwrap() < 1.0, "{q}");

    // The file ends, baresip hangs up: a normal end, not our RTP timeout.
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}\n{}", phone.log());
    assert!(end.get("hangupCode").is_none(), "{end}");
    let connected = end["callConnectedTimestamp"].as_i64().unwrap();
    let hung_up = end["callHangUpTimestamp"].as_i64().unwrap();
    assert!(
        (5_000..9_000).contains(&(hung_up - connected)),
        "the call lasted as long as the file: {} ms",
        hung_up - connected
    );
    phone.ctrl.event("CALL_CLOSED").await;

    let row = closed_record(&running, &call_id).await;
    assert_eq!(row.direction, 1);
    assert_eq!(row.hangup_code, None);
    assert!(row.loss_pct.is_some_and(|l| l < 1.0), "{row:?}");
    assert!(row.mos.is_some_and(|m| m > 4.0), "{row:?}");
}

#[tokio::test]
async fn rtcp_reports_are_read_both_ways_with_baresip() {
    // Both sides report every 5 s; the call needs a few reports.
    let mut phone = Baresip::start("12025550100", 40).await;
    let (_dir, running) = seatline(phone.sip, 30).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("12025550100")).await.unwrap();
    let trying = dial(&mut ws).await;
    let call_id = trying["callId"].as_str().unwrap().to_string();
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "{up}\n{}", phone.log());
    phone.ctrl.event("CALL_ESTABLISHED").await;

    // With no agent audio leg we send the carrier nothing, and a side that
    // sends nothing reports with RR only: baresip takes its statistics from
    // our SRs. DTMF is RTP of our stream, so after it we send SRs.
    ws.send(Message::text(r#"{"op":"dtmf","digits":"5"}"#))
        .await
        .unwrap();
    let digit = phone.ctrl.event("CALL_DTMF_START").await;
    assert_eq!(digit["param"], "5", "{digit}");

    // On loopback a round trip is tens of microseconds, and baresip counts
    // DLSR in whole milliseconds: a measured RTT would be noise around 0.
    // So each of our reports is held up on the way: baresip is stopped
    // from shortly before our report (we know when: our quality sample
    // leaves with it) to ~400 ms after it, and it reads the report late.
    // The round trip each side computes from the other's answer is then
    // that delay, which the test knows.
    let mut q = quality(&mut ws).await;
    let mut last = Instant::now();
    let mut delays: Vec<f64> = Vec::new();
    let rtt_ms = loop {
        assert!(
            delays.len() < 5,
            "no RTT from baresip's reports: {delays:?} {q}"
        );
        tokio::time::sleep_until((last + Duration::from_millis(4_600)).into()).await;
        phone.signal("-STOP");
        let stopped = Instant::now();
        let sample = tokio::time::timeout(Duration::from_secs(3), quality(&mut ws)).await;
        let reported = Instant::now();
        last = reported;
        tokio::time::sleep(Duration::from_millis(400)).await;
        phone.signal("-CONT");
        let q_next = sample.expect("our next report 5 s after the last");
        delays.push((Instant::now() - reported).as_secs_f64() * 1000.0);
        assert!(
            reported - stopped < Duration::from_millis(1_500),
            "our report came {:?} after the stop",
            reported - stopped
        );
        // The sample taken with this report shows the RTT of baresip's
        // last answer, to one of the reports held up before.
        let rtt = q_next["rttMs"].as_f64().unwrap();
        q = q_next;
        if delays[..delays.len() - 1]
            .iter()
            .any(|d| (rtt - d).abs() < 50.0)
        {
            break rtt;
        }
    };

    // Baresip has just read our last report, late by the last delay: it
    // computed its RTT from the report block on its stream in it. Hang up
    // and read its summary of the call's RTCP.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}");
    phone.ctrl.event("CALL_CLOSED").await;
    let line = phone.log_line("EX=BareSip;", Duration::from_secs(5)).await;
    eprintln!("held {delays:?} ms; our RTT {rtt_ms} ms; baresip: {line}");
    let fields = summary_fields(&line);
    assert!(
        !fields.contains_key("ERROR"),
        "baresip took no statistics from our RTCP: {line}\n{}",
        phone.log()
    );
    // PR: packets of our stream it received (counted when our SR came):
    // the digit's, every one.
    let pr: usize = fields["PR"].parse().unwrap();
    assert_eq!(pr, digit_packets('5').len(), "{line}");
    // DL: its RTT in ms, from our report block's LSR and DLSR.
    let baresip_rtt = fields["DL"].parse::<f64>().unwrap();
    let last_delay = *delays.last().unwrap();
    assert!(
        (baresip_rtt - last_delay).abs() < 50.0,
        "baresip's RTT {baresip_rtt} ms, our report was held {last_delay:.0} ms: {line}"
    );
    // PL: lost of our stream, and (second) what our report block said of
    // its stream; JI, second: the jitter our report block gave it.
    assert_eq!(pair(&fields, "PL", 0), 0.0, "{line}");
    assert_eq!(pair(&fields, "PL", 1), 0.0, "{line}");
    let their_jitter = pair(&fields, "JI", 1);

    // Our side: the record keeps the last sample, with the RTT from
    // baresip's report on our SR and the jitter we reported to it.
    let row = closed_record(&running, &call_id).await;
    let rec_rtt = row.rtt_ms.unwrap();
    assert!((rec_rtt - rtt_ms).abs() < 1e-6, "{row:?} vs {rtt_ms}");
    assert_eq!(row.loss_pct, Some(0.0), "{row:?}");
    let jitter = row.jitter_ms.unwrap();
    // Never 0: aufile paces its frames with 4 ms sleeps.
    assert!(jitter > 0.0, "{row:?}");
    // Whole timestamp units (1/8 ms) in the block, printed to 0.1 ms.
    assert!(
        (jitter - their_jitter).abs() < 0.2,
        "we reported {jitter} ms to baresip, it read {their_jitter} ms: {line}"
    );
}

#[tokio::test]
async fn baresip_calls_a_did_and_the_agent_answers() {
    let mut phone = Baresip::start("14155550123", 30).await;
    let (_dir, running) = seatline(phone.sip, 30).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let did = format!("sip:12025550170@{}", running.app.calls.sip_addr);
    phone.ctrl.command("dial", &did).await;
    let ok = phone.ctrl.response("dial").await;
    assert_eq!(ok["ok"], true, "{ok}");

    let ringing = dial(&mut ws).await;
    assert_eq!(
        (ringing["code"].as_i64(), ringing["direction"].as_i64()),
        (Some(1), Some(0)),
        "{ringing}\n{}",
        phone.log()
    );
    assert_eq!(ringing["caller"], "14155550123");
    assert_eq!(ringing["callee"], "12025550170");
    let call_id = ringing["callId"].as_str().unwrap().to_string();
    phone.ctrl.event("CALL_RINGING").await;

    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    let up = phone.ctrl.event("CALL_ESTABLISHED").await;
    assert_eq!(up["direction"], "outgoing");
    assert_eq!(up["peeruri"], did.as_str());

    // Its audio reaches the call, then the caller hangs up.
    let q = quality(&mut ws).await;
    assert_eq!(q["callId"], call_id.as_str());
    phone.ctrl.command("hangup", "").await;
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}\n{}", phone.log());
    assert!(end.get("hangupCode").is_none(), "{end}");
    phone.ctrl.event("CALL_CLOSED").await;

    let row = closed_record(&running, &call_id).await;
    assert_eq!((row.direction, row.hangup_code), (0, None));
    assert!(row.mos.is_some(), "{row:?}");
}

/// Seatline with baresip at `trunk` as its one trunk.
async fn seatline(
    trunk: SocketAddr,
    rtp_timeout_secs: u64,
) -> (tempfile::TempDir, seatline_server::Running) {
    seatline_with(trunk, rtp_timeout_secs, SrtpMode::Off).await
}

async fn seatline_with(
    trunk: SocketAddr,
    rtp_timeout_secs: u64,
    srtp: SrtpMode,
) -> (tempfile::TempDir, seatline_server::Running) {
    let mut t = TrunkConfig::udp("baresip", &format!("sip:{trunk}"));
    t.srtp = srtp;
    start_with(vec![t], |cfg| cfg.calls.rtp_timeout_secs = rtp_timeout_secs).await
}

#[tokio::test]
async fn an_sdes_trunk_carries_srtp_both_ways_with_baresip() {
    // Baresip takes SRTP only. 6 s of its tone, and an RTP timeout of 2 s:
    // the call stays up only if its SRTP passes our tag check.
    let mut phone = Baresip::start_with("12025550100", 6, true).await;
    let (_dir, running) = seatline_with(phone.sip, 2, SrtpMode::Sdes).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("12025550100")).await.unwrap();
    let trying = dial(&mut ws).await;
    assert_eq!(trying["code"], 0, "{trying}");
    let call_id = trying["callId"].as_str().unwrap().to_string();
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "{up}\n{}", phone.log());
    let answered = phone.ctrl.event("CALL_ESTABLISHED").await;
    assert_eq!(answered["direction"], "incoming", "{answered}");
    // What it was offered, and what it answered, in its SIP trace.
    let log = phone.log();
    assert!(
        log.contains("RTP/SAVP 0 8 101")
            && log.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "our INVITE offered SDES:\n{log}"
    );

    // Its SRTP reaches the call: decrypted, counted, no loss.
    let q = quality(&mut ws).await;
    assert_eq!(q["callId"], call_id.as_str());
    assert!(q["lossPct"].as_f64().unwrap() < 1.0, "{q}");

    // Ours reaches it: a digit is RTP of our stream, which baresip must
    // authenticate and decrypt to see it.
    ws.send(Message::text(r#"{"op":"dtmf","digits":"7"}"#))
        .await
        .unwrap();
    let digit = phone.ctrl.event("CALL_DTMF_START").await;
    assert_eq!(digit["param"], "7", "{digit}");

    // The file ends and baresip hangs up: a normal end, not our RTP timeout.
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}\n{}", phone.log());
    assert!(end.get("hangupCode").is_none(), "{end}");
    let row = closed_record(&running, &call_id).await;
    assert_eq!(row.hangup_code, None);
    assert!(row.loss_pct.is_some_and(|l| l < 1.0), "{row:?}");
}

#[tokio::test]
async fn a_plain_answer_to_our_sdes_offer_ends_the_call_as_a_carrier_failure() {
    // SIPp answers every INVITE with plain RTP/AVP, whatever was offered.
    let carrier = free_udp_port();
    let sipp = sipp_carrier("carrier_answer.xml", carrier, free_udp_port());
    let trunk = SocketAddr::from(([127, 0, 0, 1], carrier));
    let (_dir, running) = seatline_with(trunk, 30, SrtpMode::Sdes).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(call_out("12025550100")).await.unwrap();
    let trying = dial(&mut ws).await;
    assert_eq!(trying["code"], 0, "{trying}");
    let call_id = trying["callId"].as_str().unwrap().to_string();
    let failed = dial(&mut ws).await;
    assert_eq!(failed["code"], 800, "{failed}");
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["hangupCode"].as_i64()),
        (Some(5), Some(800)),
        "{end}"
    );
    // SIPp's scenario succeeds only once our BYE reached it.
    finished(sipp, Duration::from_secs(10)).await;
    let row = closed_record(&running, &call_id).await;
    assert_eq!((row.hangup_code, row.connected_ms), (Some(800), None));
}

#[tokio::test]
async fn baresip_requiring_srtp_calls_a_did_and_is_answered_with_sdes() {
    let mut phone = Baresip::start_with("14155550123", 30, true).await;
    let (_dir, running) = seatline_with(phone.sip, 2, SrtpMode::Sdes).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let did = format!("sip:12025550170@{}", running.app.calls.sip_addr);
    phone.ctrl.command("dial", &did).await;
    let ok = phone.ctrl.response("dial").await;
    assert_eq!(ok["ok"], true, "{ok}");
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 1, "{ringing}\n{}", phone.log());
    let call_id = ringing["callId"].as_str().unwrap().to_string();
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    phone.ctrl.event("CALL_ESTABLISHED").await;
    let log = phone.log();
    assert!(
        log.matches("RTP/SAVP").count() >= 2,
        "its offer and our answer are both SDES:\n{log}"
    );
    // Its SRTP passes our checks (the 2 s RTP timeout would end the call
    // otherwise), and ours reaches it.
    let q = quality(&mut ws).await;
    assert_eq!(q["callId"], call_id.as_str());
    ws.send(Message::text(r#"{"op":"dtmf","digits":"3"}"#))
        .await
        .unwrap();
    let digit = phone.ctrl.event("CALL_DTMF_START").await;
    assert_eq!(digit["param"], "3", "{digit}");
    phone.ctrl.command("hangup", "").await;
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}\n{}", phone.log());
    assert!(end.get("hangupCode").is_none(), "{end}");
}
