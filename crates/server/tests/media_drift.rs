//! What a carrier's RTP analysis sees of our stream: one SSRC for the whole
//! call, sequence numbers without a jump, timestamps that follow the wall
//! clock (a gap in the agent's audio leaves a gap, never a shift), the
//! marker bit where talk starts again, through a silence and through the
//! agent's audio leg being replaced mid-call (a reload).
//!
//! The agent's legs are real WebRTC peers (str0m clients: ICE, DTLS-SRTP,
//! PCMU); SIPp is the carrier's signalling and this test is its media.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_media::rtp::RtpPacket;
use seatline_server::config::TrunkConfig;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use support::*;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// One 20 ms tick of an agent leg: 160 samples of PCMU.
const FRAME: u64 = 160;

/// An agent's WebRTC leg, driven by its own task; it sends a frame every
/// 20 ms while `talk` is on, and its media clock runs on either way.
struct Leg {
    talk: mpsc::UnboundedSender<bool>,
    connected: oneshot::Receiver<()>,
}

/// Offers a leg on the tab, takes the answer and starts driving it.
async fn leg(ws: &mut Ws) -> Leg {
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(Instant::now());
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    ws.send(Message::text(
        json!({"op": "rtcOffer", "sdp": offer.to_sdp_string()}).to_string(),
    ))
    .await
    .unwrap();
    let answer = loop {
        let ev = next(ws).await;
        if ev["ev"] == "rtcAnswer" {
            break ev["sdp"].as_str().unwrap().to_string();
        }
        assert!(ev["ev"] != "closed" && ev["ev"] != "error", "{ev}");
    };
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    let (talk, mut talk_rx) = mpsc::unbounded_channel();
    let (up_tx, connected) = oneshot::channel();
    tokio::spawn(async move {
        let mut up = Some(up_tx);
        let mut talking = false;
        let mut time: u64 = 0;
        let mut buf = vec![0u8; 2000];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut connected = false;
        loop {
            let timeout = loop {
                match rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = sock.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(Event::Connected)) => {
                        connected = true;
                        if let Some(tx) = up.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Output::Event(_)) => {}
                    // The server dropped this leg (replaced): stop.
                    Err(_) => return,
                }
            };
            tokio::select! {
                r = sock.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { return };
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp, source, destination: local, contents,
                    });
                    if rtc.handle_input(input).is_err() {
                        return;
                    }
                }
                t = talk_rx.recv() => match t {
                    Some(on) => talking = on,
                    None => return,
                },
                _ = tick.tick() => {
                    if connected && talking {
                        let pt = rtc.writer(mid).and_then(|w| w.payload_params().next().map(|p| p.pt()));
                        if let (Some(pt), Some(w)) = (pt, rtc.writer(mid)) {
                            let _ = w.write(pt, Instant::now(), MediaTime::new(time, Frequency::EIGHT_KHZ), vec![0xffu8; 160]);
                        }
                    }
                    time += FRAME;
                }
                _ = tokio::time::sleep_until(timeout.into()) => {
                    if rtc.handle_input(Input::Timeout(Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Leg { talk, connected }
}

/// What arrived at the carrier from us.
struct Seen {
    at: Instant,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
}

/// The carrier's media: sends PCMU to `to` every 20 ms from one socket (so
/// we latch to it) and keeps every RTP packet that comes back, until `stop`.
fn carrier_media(
    to: SocketAddr,
    mut stop: oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut seen = Vec::new();
        let mut wire = Vec::new();
        let mut buf = [0u8; 1500];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut i: u16 = 0;
        loop {
            tokio::select! {
                _ = &mut stop => return seen,
                _ = tick.tick() => {
                    RtpPacket {
                        marker: i == 0,
                        payload_type: 0,
                        seq: 7000u16.wrapping_add(i),
                        timestamp: 160 * u32::from(i),
                        ssrc: 0xca11e4,
                        payload: &[0xffu8; 160],
                    }
                    .write(&mut wire);
                    let _ = sock.send_to(&wire, to).await;
                    i = i.wrapping_add(1);
                }
                r = sock.recv_from(&mut buf) => {
                    let (n, _) = r.unwrap();
                    if let Some(p) = RtpPacket::parse(&buf[..n]) {
                        seen.push(Seen { at: Instant::now(), seq: p.seq, ts: p.timestamp, ssrc: p.ssrc, marker: p.marker });
                    }
                }
            }
        }
    })
}

#[tokio::test]
async fn our_rtp_keeps_one_ssrc_and_the_wall_clock_through_silence_and_a_new_agent_leg() {
    let carrier = free_udp_port();
    let media = free_udp_port();
    let (_dir, running) = start_with(
        vec![TrunkConfig::udp(
            "carrier",
            &format!("sip:127.0.0.1:{carrier}"),
        )],
        |_| {},
    )
    .await;
    let mut tab = tab_of(&running, "agent1@demo.local").await;
    let first = leg(&mut tab).await;
    tokio::time::timeout(Duration::from_secs(10), first.connected)
        .await
        .expect("the first leg connects")
        .unwrap();

    let sipp = sipp_carrier("carrier_answer.xml", carrier, media);
    tokio::time::sleep(Duration::from_millis(200)).await;
    tab.send(call_out("12025550100")).await.unwrap();
    assert_eq!(dial(&mut tab).await["code"], 0);
    assert_eq!(dial(&mut tab).await["code"], 2);
    let ports = running.app.hub.rtp_ports();
    assert_eq!(ports.len(), 1, "one call, one RTP port");
    let (stop, stopped) = oneshot::channel();
    let capture = carrier_media(SocketAddr::from(([127, 0, 0, 1], ports[0])), stopped);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The agent talks 1.5 s, is silent 0.6 s (no packets, its clock runs
    // on), talks 1 s; then the page reloads: a new leg with its own SSRC,
    // sequence and timestamps, which stays silent 0.6 s once connected and
    // talks 1.5 s.
    first.talk.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.talk.send(false).unwrap();
    let silence_from = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    first.talk.send(true).unwrap();
    let silence_to = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The reload: the old page's socket closes, the new page offers.
    tab.close(None).await.unwrap();
    drop(tab);
    let mut reloaded = tab_of(&running, "agent1@demo.local").await;
    let second = leg(&mut reloaded).await;
    tokio::time::timeout(Duration::from_secs(10), second.connected)
        .await
        .expect("the new leg connects")
        .unwrap();
    let switch_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    second.talk.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    reloaded
        .send(Message::text(r#"{"op":"hangUp"}"#))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let seen = capture.await.unwrap();
    finished(sipp, Duration::from_secs(10)).await;

    // About 4 s of audio (200 packets) at 20 ms.
    assert!(
        seen.len() >= 150,
        "only {} packets reached the carrier",
        seen.len()
    );
    let ssrc = seen[0].ssrc;
    assert!(
        seen.iter().all(|s| s.ssrc == ssrc),
        "one SSRC for the whole call"
    );
    for w in seen.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence numbers without a jump or a repeat"
        );
    }
    // Timestamps against arrival: their difference stays put (within the
    // jitter of a busy test machine) across the silence and the new leg,
    // each of which lasts 600 ms or more: a stream that counted packets
    // would shift by that much.
    let t0 = seen[0].at;
    let ts0 = seen[0].ts;
    let drift: Vec<f64> = seen
        .iter()
        .map(|s| f64::from(s.ts.wrapping_sub(ts0)) / 8000.0 - s.at.duration_since(t0).as_secs_f64())
        .collect();
    let (lo, hi) = drift
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
    assert!(
        hi - lo < 0.25,
        "timestamps drift from the wall clock by {:.0} ms",
        (hi - lo) * 1000.0
    );
    // The marker bit where talk starts again: after the silence and on the
    // new leg's first packet, and nowhere within a talk spurt.
    let after = |t: Instant| seen.iter().position(|s| s.at > t).unwrap();
    let resumed = after(silence_to - Duration::from_millis(10));
    assert!(seen[resumed].at >= silence_from, "no packet in the silence");
    assert!(seen[resumed].marker, "marker where talk resumes");
    let new_leg = after(switch_at);
    assert!(seen[new_leg].marker, "marker on the new leg's first packet");
    let markers = seen.iter().filter(|s| s.marker).count();
    assert!(markers <= 4, "{markers} markers: only at talk-spurt starts");
}
