//! The carrier side of a call's media: symmetric RTP (only the negotiated
//! address, then only the latched source) and RTCP reports both ways.
//! SIPp is the carrier's signalling; this test plays its media.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_media::rtcp::{self, Rtcp, SenderInfo};
use seatline_media::rtp::RtpPacket;
use seatline_server::config::{Config, TrunkConfig};
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;
use tokio::net::UdpSocket;
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

/// A media port whose next port (its RTCP) is free too; the RTCP socket is
/// returned bound, the media port left for SIPp.
fn media_ports() -> (u16, std::net::UdpSocket) {
    loop {
        let port = free_udp_port();
        if port.is_multiple_of(2) {
            if let Ok(rtcp) = std::net::UdpSocket::bind(("127.0.0.1", port + 1)) {
                return (port, rtcp);
            }
        }
    }
}

struct Call {
    _dir: tempfile::TempDir,
    _running: seatline_server::Running,
    ws: Ws,
    _sipp: Child,
    /// Our RTP port for this call.
    rtp: SocketAddr,
    rtcp: UdpSocket,
    connected: Instant,
}

/// A connected call to a SIPp carrier that sends no media itself.
async fn connected_call() -> Call {
    let carrier = free_udp_port();
    let (media, rtcp) = media_ports();
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
    let body = sign_in(&base, "agent1@demo.local").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", running.addr))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": body["token"]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["ev"], "ready");
    let sipp = sipp_carrier("carrier_answer.xml", carrier, media);
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(call_out("12025550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    let connected = Instant::now();
    let ports = running.app.hub.rtp_ports();
    assert_eq!(ports.len(), 1, "one call, one RTP port");
    rtcp.set_nonblocking(true).unwrap();
    Call {
        _dir: dir,
        _running: running,
        ws,
        _sipp: sipp,
        rtp: SocketAddr::from(([127, 0, 0, 1], ports[0])),
        rtcp: UdpSocket::from_std(rtcp).unwrap(),
        connected,
    }
}

/// Sends 20 ms PCMU packets from `from` to `to` for `secs`, starting after `delay`.
fn stream(from: &str, to: SocketAddr, ssrc: u32, delay: Duration, secs: u64) {
    let from = from.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let sock = UdpSocket::bind(from).await.unwrap();
        let mut wire = Vec::new();
        let payload = [0xffu8; 160];
        let end = Instant::now() + Duration::from_secs(secs);
        let mut i: u16 = 0;
        while Instant::now() < end {
            RtpPacket {
                marker: i == 0,
                payload_type: 0,
                seq: 1000u16.wrapping_add(i),
                timestamp: 160 * u32::from(i),
                ssrc,
                payload: &payload,
            }
            .write(&mut wire);
            let _ = sock.send_to(&wire, to).await;
            i = i.wrapping_add(1);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[tokio::test]
async fn rtp_from_another_address_than_the_negotiated_one_is_dropped() {
    let mut call = connected_call().await;
    // A stranger (another IP) streams into the call's RTP port for 6 s: it
    // does not count as the carrier's media, so the call still ends for
    // lack of carrier RTP.
    stream("127.0.0.2:0", call.rtp, 0x5757, Duration::ZERO, 6);
    let ended = dial(&mut call.ws).await;
    assert_eq!(ended["code"], 800, "{ended}");
    assert!(call.connected.elapsed() >= Duration::from_millis(1_500));
    assert!(
        call.connected.elapsed() < Duration::from_secs(6),
        "ended while the stranger was still sending"
    );
}

#[tokio::test]
async fn the_latched_source_keeps_the_call_and_rtcp_goes_both_ways() {
    let mut call = connected_call().await;
    let carrier_ssrc = 0x0c0ffee0;
    // The carrier's media comes from the negotiated IP for 12 s; a second
    // source on the same IP starts later and keeps going to 18 s.
    stream("127.0.0.1:0", call.rtp, carrier_ssrc, Duration::ZERO, 12);
    stream(
        "127.0.0.1:0",
        call.rtp,
        0xbad,
        Duration::from_millis(500),
        17,
    );
    let server_rtcp = SocketAddr::new(call.rtp.ip(), call.rtp.port() + 1);

    // Our first report: an RR (no agent leg, so nothing sent) with a block
    // on the carrier's stream, its CNAME in SDES.
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_secs(8), call.rtcp.recv_from(&mut buf))
        .await
        .expect("an RTCP report within 8 s")
        .unwrap();
    assert_eq!(from, server_rtcp, "RTCP comes from the RTP port plus one");
    let packets = rtcp::parse_compound(&buf[..n]).expect("a valid compound packet");
    let (our_ssrc, block) = match &packets[0] {
        Rtcp::Rr { ssrc, reports } => (*ssrc, reports[0]),
        other => panic!("expected RR first, got {other:?}"),
    };
    assert_eq!(
        block.ssrc, carrier_ssrc,
        "the report is on the latched source only"
    );
    assert_eq!(block.cumulative_lost, 0);
    assert!(block.highest_seq >= 1000, "{block:?}");
    assert_eq!(block.lsr, 0, "no SR from the carrier yet");

    // The carrier sends a sender report; the next report echoes it (LSR).
    let ntp = rtcp::ntp_from_system(std::time::SystemTime::now());
    let mut sr = Vec::new();
    let info = SenderInfo {
        ntp,
        rtp_ts: 1234,
        packets: 10,
        octets: 1600,
    };
    rtcp::write_sr(&mut sr, carrier_ssrc, &info, &[], "carrier@test");
    call.rtcp.send_to(&sr, server_rtcp).await.unwrap();
    let (n, _) = tokio::time::timeout(Duration::from_secs(7), call.rtcp.recv_from(&mut buf))
        .await
        .expect("a second RTCP report")
        .unwrap();
    let packets = rtcp::parse_compound(&buf[..n]).unwrap();
    let Rtcp::Rr { ssrc, reports } = &packets[0] else {
        panic!("expected RR, got {packets:?}");
    };
    assert_eq!(*ssrc, our_ssrc, "one SSRC for the call");
    assert_eq!(reports[0].lsr, rtcp::middle32(ntp));
    assert!(reports[0].dlsr > 0);

    // The call lived through the reports; when the latched source stops,
    // the other one does not keep it up.
    let ended = dial(&mut call.ws).await;
    assert_eq!(ended["code"], 800, "{ended}");
    let at = call.connected.elapsed();
    assert!(
        at >= Duration::from_secs(12) && at < Duration::from_secs(17),
        "ended {at:?} after connect: after the latched source stopped, before the other did"
    );
}
