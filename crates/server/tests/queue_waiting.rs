//! Callers waiting in a group's queue, through the real binary's call path:
//! SIPp is the carrier delivering an inbound call, this test is the
//! caller's media. With nobody free the caller is answered and hears the
//! waiting music (real RTP, PCMU, not silence); when the agent frees up
//! their phone rings, they answer, the music stops; a caller who hangs up
//! while waiting leaves an unanswered record. The queue settings go
//! through the admin API, with bad ones refused.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_media::rtp::RtpPacket;
use seatline_server::config::TrunkConfig;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

const PATH: &str = "/api/v1/admin/groups/G001/routing";

async fn put(base: &str, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{base}{PATH}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// RTP packets that reach `sock` within `within`: (marker, payload).
async fn rtp_within(sock: &UdpSocket, within: Duration) -> Vec<(bool, Vec<u8>)> {
    let until = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until.into(), sock.recv_from(&mut buf)).await
    {
        if let Some(p) = RtpPacket::parse(&buf[..n]) {
            if p.payload_type == 0 {
                got.push((p.marker, p.payload.to_vec()));
            }
        }
    }
    got
}

/// A carrier (SIPp) calling the demo DID, its media at `rtp`, hanging up
/// `stay_ms` after the answer.
fn caller(
    running: &seatline_server::Running,
    sipp_port: u16,
    rtp: u16,
    stay_ms: u32,
) -> tokio::process::Child {
    let sip = running.app.calls.sip_addr.to_string();
    sipp(&[
        &sip,
        "-sf",
        scenario("caller_waits.xml").to_str().unwrap(),
        "-s",
        "12025550170",
        "-p",
        &sipp_port.to_string(),
        "-set",
        "rtp",
        &rtp.to_string(),
        "-d",
        &stay_ms.to_string(),
    ])
}

#[tokio::test]
async fn a_waiting_caller_hears_music_until_the_freed_agent_answers() {
    let sipp_port = free_udp_port();
    let trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{sipp_port}"));
    let (_dir, running) = start_with(vec![trunk], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let admin = sign_in(&base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Bad queue settings are refused and change nothing.
    for (body, why) in [
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": -1}),
            "negative",
        ),
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 3601}),
            "too long",
        ),
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60, "overflowGroup": "G001"}),
            "itself",
        ),
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60, "overflowGroup": "G999"}),
            "no such group",
        ),
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": "60"}),
            "a string",
        ),
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "ringTimeoutSecs": 301}),
            "rings too long",
        ),
        (
            json!({"strategy": "longestIdle", "maxMissed": 3, "ringTimeoutSecs": -1}),
            "negative ring",
        ),
    ] {
        let (code, err) = put(&base, &admin, body).await;
        assert_eq!(code, 400, "{why}: {err}");
        assert!(
            err["error"].is_string() && err["message"].is_string(),
            "{why}: {err}"
        );
    }
    let got = reqwest::Client::new()
        .get(format!("{base}{PATH}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    let got: Value = got.json().await.unwrap();
    assert_eq!(
        (
            got["maxWaitSecs"].as_i64(),
            got["overflowGroup"].is_null(),
            got["ringTimeoutSecs"].as_i64()
        ),
        (Some(0), true, Some(0))
    );
    let (code, err) = put(
        &base,
        &admin,
        json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60, "ringTimeoutSecs": 15}),
    )
    .await;
    assert_eq!(code, 204, "{err}");
    let (_, got) = Api::of(&running).get(PATH, &admin).await;
    assert_eq!(got["ringTimeoutSecs"], 15);

    // The only agent of the group is Busy: the caller waits, answered,
    // hearing the music.
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    set_status(&mut ws, 2).await;
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = media.local_addr().unwrap().port();
    let sipp = caller(&running, sipp_port, rtp, 6_000);
    let music = rtp_within(&media, Duration::from_millis(1_500)).await;
    assert!(
        music.len() >= 30,
        "only {} music packets in 1.5 s",
        music.len()
    );
    assert!(music[0].0, "the marker where the music starts");
    let loud = music
        .iter()
        .filter(|(_, p)| p.iter().any(|&b| b != 0xff && b != 0x7f))
        .count();
    assert!(
        loud * 2 > music.len(),
        "music, not silence ({loud} of {})",
        music.len()
    );

    // The agent frees up: their phone rings at once; they answer.
    set_status(&mut ws, 1).await;
    let ringing = dial(&mut ws).await;
    assert_eq!(ringing["code"], 1, "{ringing}");
    ws.send(Message::text(r#"{"op":"answer"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 2);
    // The music stops (no tab has an audio leg here, so nothing else
    // goes to the caller either).
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(1), media.recv_from(&mut [0u8; 1500])).await
    {
    }
    let after = rtp_within(&media, Duration::from_millis(600)).await;
    assert!(
        after.is_empty(),
        "{} packets of music after the answer",
        after.len()
    );
    // The caller hangs up 6 s after being answered by the queue.
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(sipp, Duration::from_secs(20)).await;
    let id = ringing["callId"].as_str().unwrap();
    let mut row = None;
    for _ in 0..50 {
        row = running
            .app
            .store
            .call(id)
            .await
            .unwrap()
            .filter(|r| r.hangup_ms.is_some());
        if row.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = row.expect("the call's record is closed");
    let waited = row.connected_ms.expect("answered by the agent") - row.start_ms;
    assert!(waited >= 1_000, "the record counts the wait: {waited} ms");
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_waiting_leaves_an_unanswered_record() {
    let sipp_port = free_udp_port();
    let trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{sipp_port}"));
    let (_dir, running) = start_with(vec![trunk], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let admin = sign_in(&base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = put(
        &base,
        &admin,
        json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60}),
    )
    .await;
    assert_eq!(code, 204);
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    set_status(&mut ws, 2).await;
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = media.local_addr().unwrap().port();
    let sipp = caller(&running, sipp_port, rtp, 1_000);
    finished(sipp, Duration::from_secs(20)).await;
    // Freed afterwards, the agent is offered nothing.
    set_status(&mut ws, 1).await;
    let quiet = tokio::time::timeout(Duration::from_millis(800), dial(&mut ws)).await;
    assert!(
        quiet.is_err(),
        "a call that is gone rang the agent: {quiet:?}"
    );
    let rows = running.app.store.recent_calls(1, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.connected_ms, None, "never answered by an agent");
    let waited = r.hangup_ms.expect("closed") - r.start_ms;
    assert!((900..5_000).contains(&waited), "waited {waited} ms");
}

/// The RMS level of PCMU payloads, as a fraction of full scale.
fn level(packets: &[(bool, Vec<u8>)]) -> f64 {
    let samples: Vec<f64> = packets
        .iter()
        .flat_map(|(_, p)| p.iter())
        .map(|&b| f64::from(seatline_media::g711::ulaw_to_linear(b)) / 32_768.0)
        .collect();
    (samples.iter().map(|v| v * v).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// A WAV file: 2 s of a 440 Hz sine at half scale, 16 kHz stereo (so it is
/// converted), 128 KB (over the API's usual 64 KiB body limit).
fn loud_wav() -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..32_000 {
        let v = (0.5
            * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 16_000.0).sin()
            * 32_767.0) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_tenant_music_file_is_what_the_waiting_caller_hears_until_it_is_removed() {
    let sipp_port = free_udp_port();
    let trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{sipp_port}"));
    let (_dir, running) = start_with(vec![trunk], |_| {}).await;
    let c = Api::of(&running);
    let admin = c.token("admin@demo.local").await;
    let (code, _) = put(
        &c.base,
        &admin,
        json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60}),
    )
    .await;
    assert_eq!(code, 204);
    let music = format!("{}/api/v1/admin/music", c.base);
    let send = |body: Vec<u8>, token: &str| {
        c.http
            .put(&music)
            .bearer_auth(token)
            .header("content-type", "audio/wav")
            .body(body)
            .send()
    };
    // Not a WAV, or not an admin: refused, nothing changes.
    let r = send(b"RIFF....WAVEnope".to_vec(), &admin).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "badMusic", "{err}");
    let agent = c.token("agent1@demo.local").await;
    assert_eq!(
        send(loud_wav(), &agent).await.unwrap().status().as_u16(),
        403
    );
    let (code, got) = c.get("/api/v1/admin/music", &admin).await;
    assert_eq!((code, got["source"].as_str()), (200, Some("builtin")));
    let r = send(loud_wav(), &admin).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got: Value = r.json().await.unwrap();
    assert_eq!(
        (got["source"].as_str(), got["seconds"].as_f64()),
        (Some("tenant"), Some(2.0))
    );

    // Nobody free: the caller waits and hears the tenant's file, at its
    // level (a half-scale sine: RMS 0.35 of full scale; the tune's is ~0.06).
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    set_status(&mut ws, 2).await;
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = media.local_addr().unwrap().port();
    let sipp = caller(&running, sipp_port, rtp, 2_000);
    let heard = rtp_within(&media, Duration::from_millis(1_200)).await;
    assert!(heard.len() >= 25, "only {} packets", heard.len());
    let own = level(&heard);
    assert!(
        (0.30..0.40).contains(&own),
        "the tenant's music at {own:.3}"
    );
    finished(sipp, Duration::from_secs(20)).await;

    // What the first call left in the socket is not the second call's.
    let mut junk = [0u8; 1500];
    while media.try_recv_from(&mut junk).is_ok() {}

    // Removed: the next caller hears the built-in tune again.
    let r = c
        .http
        .delete(&music)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let sipp = caller(&running, sipp_port, rtp, 2_000);
    let heard = rtp_within(&media, Duration::from_millis(1_200)).await;
    assert!(heard.len() >= 25, "only {} packets", heard.len());
    let tune = level(&heard);
    assert!(tune > 0.01 && tune < 0.15, "the built-in tune at {tune:.3}");
    finished(sipp, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_waiting_caller_hears_their_place_in_the_groups_language_before_the_music() {
    let sipp_port = free_udp_port();
    let trunk = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{sipp_port}"));
    let (_dir, running) = start_with(vec![trunk], |_| {}).await;
    let c = Api::of(&running);
    let admin = c.token("admin@demo.local").await;
    let (code, err) = put(
        &c.base,
        &admin,
        json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60, "announceLang": "fr-FR"}),
    )
    .await;
    assert_eq!((code, err["error"].as_str()), (400, Some("badRouting")));
    let (code, err) = put(
        &c.base,
        &admin,
        json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 60, "announceLang": "en-US"}),
    )
    .await;
    assert_eq!(code, 204, "{err}");
    let (_, got) = c.get(PATH, &admin).await;
    assert_eq!(got["announceLang"], "en-US");

    let mut ws = tab_of(&running, "agent1@demo.local").await;
    set_status(&mut ws, 2).await;
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = media.local_addr().unwrap().port();
    let sipp = caller(&running, sipp_port, rtp, 3_000);
    let heard = rtp_within(&media, Duration::from_millis(2_500)).await;
    let linear: Vec<i16> = heard
        .iter()
        .flat_map(|(_, p)| p.iter())
        .map(|&b| seatline_media::g711::ulaw_to_linear(b))
        .collect();
    // "You are caller number" "one" "in the queue": the recorded words,
    // sample for sample, within the first packets (a music frame or two may
    // go before the announcement reaches the media plane).
    let words: Vec<i16> =
        seatline_media::announce::sentence(seatline_media::announce::Lang::EnUs, 1, None)
            .into_iter()
            .flatten()
            .map(|&b| seatline_media::g711::ulaw_to_linear(b))
            .collect();
    let head = &words[..800];
    let at = linear
        .windows(head.len())
        .position(|w| w == head)
        .expect("the announcement's first 100 ms among what the caller heard");
    assert!(at <= 160 * 10, "it starts within 200 ms, at sample {at}");
    let said = &linear[at..(at + words.len()).min(linear.len())];
    assert_eq!(said, &words[..said.len()], "the whole place, as recorded");
    assert!(
        said.len() >= words.len() / 2,
        "heard {} of {} samples",
        said.len(),
        words.len()
    );
    finished(sipp, Duration::from_secs(20)).await;
}
