//! `seatline-callbench`: N simulated agents, each with a real WebRTC leg (a
//! str0m client, DTLS-SRTP, PCMU), call the sandbox echo number at once.
//! Measures call set-up (callOut to dialStatus 2), packet loss of the echoed
//! audio (every frame carries a counter), and the server's CPU and memory
//! per call. The sandbox carrier runs inside the server process, so its
//! echo work is counted in the server's figures too.

use anyhow::{bail, Context};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use seatline_loadtest::{
    cpu_time, percentile, raise_fd_limit, rss_kib, seed_agents, start_server, thread_cpu_time,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Barrier};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
struct Args {
    /// Concurrent calls (one agent each).
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Seconds of talk measured once every call is up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "target/release/seatline")]
    seatline: PathBuf,
    #[arg(long, default_value_t = 18490)]
    port: u16,
    #[arg(long, default_value_t = 240)]
    deadline_secs: u64,
    /// More of the server's configuration, appended to the file (TOML), for
    /// trying a setting: `--server-config $'[media]\nworkers = 1'`.
    #[arg(long, default_value = "")]
    server_config: String,
}

/// What one simulated agent reports.
#[derive(Debug, Default, Clone)]
struct Report {
    setup: Option<Duration>,
    sent_in_window: u64,
    received_in_window: u64,
    error: Option<String>,
}

/// The frame counter written into each 160-byte PCMU payload (4 bytes).
fn frame(counter: u32) -> Arc<[u8]> {
    let mut f = [0xffu8; 160];
    f[..4].copy_from_slice(&counter.to_be_bytes());
    // Keep the counter's bytes clear of the relay: G.711 passes bytes as they are.
    Arc::from(&f[..])
}

#[allow(clippy::too_many_arguments)]
async fn agent(
    ws_url: String,
    token: String,
    window: Arc<Barrier>,
    media_up: Arc<Barrier>,
    calls_up: Arc<Barrier>,
    seconds: u64,
    done: mpsc::UnboundedSender<Report>,
) {
    let r = run_agent(ws_url, token, window, media_up, calls_up, seconds).await;
    let _ = done.send(r.unwrap_or_else(|e| Report {
        error: Some(e.to_string()),
        ..Default::default()
    }));
}

async fn run_agent(
    ws_url: String,
    token: String,
    window: Arc<Barrier>,
    media_up: Arc<Barrier>,
    calls_up: Arc<Barrier>,
    seconds: u64,
) -> anyhow::Result<Report> {
    let ws = seatline_loadtest::connect_tab(&ws_url).await?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(
        serde_json::json!({"op": "auth", "token": token}).to_string(),
    ))
    .await?;
    // As cheap as a browser leg can be: the MID extension only (no
    // transport-wide congestion control history), a short send buffer, and
    // RTP mode (packets as they are, no payloader or depacketizer: a
    // browser's audio is one 20 ms packet at a time too). The server
    // answers with what it supports either way.
    let mut exts = ExtensionMap::empty();
    exts.set(4, Extension::RtpMid);
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_pcmu(true, false)
        .set_extension_map(exts)
        .set_send_buffer_audio(4)
        .set_rtp_mode(true)
        .build(Instant::now());
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let local = sock.local_addr()?;
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    let mid: Mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = api.apply().context("an offer")?;
    let mut pending = Some(pending);
    let mut offered = false;
    let mut report = Report::default();
    let mut buf = vec![0u8; 2000];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut connected = false;
    let mut pt: Option<Pt> = None;
    let mut counter: u32 = 0;
    let mut media_time: u64 = 0;
    let mut seq: u64 = 1;
    let mut called_at: Option<Instant> = None;
    // Phases: 0 media setting up, 1 waiting for the call, 2 talking, 3 window open, 4 done.
    let mut phase = 0;
    let (phase_tx, mut phase_rx) = mpsc::unbounded_channel::<u8>();
    let mut window_first: Option<u32> = None;
    let mut window_end: Option<u32> = None;
    // Counters of the echoed frames seen since the window opened.
    let mut echoed: Vec<u32> = Vec::with_capacity(1024);
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    loop {
        // Run str0m until it waits. Its timeouts are served by the 20 ms
        // tick (one timer per client, never moved): ICE, DTLS and RTCP
        // need no finer clock.
        loop {
            match rtc.poll_output()? {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    sock.send_to(&t.contents, t.destination).await?;
                }
                Output::Event(Event::Connected) => {
                    connected = true;
                    let b = media_up.clone();
                    let tx = phase_tx.clone();
                    tokio::spawn(async move {
                        b.wait().await;
                        let _ = tx.send(1);
                    });
                }
                Output::Event(Event::RtpPacket(d)) => {
                    if phase >= 3 && d.payload.len() >= 4 {
                        let c = u32::from_be_bytes([
                            d.payload[0],
                            d.payload[1],
                            d.payload[2],
                            d.payload[3],
                        ]);
                        if window_first.is_some_and(|f| c >= f) {
                            echoed.push(c);
                        }
                    }
                }
                Output::Event(_) => {}
            }
        }
        if Instant::now() > deadline {
            bail!("agent deadline");
        }
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, source) = r?;
                let contents = buf[..n].try_into()?;
                rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents }))?;
            }
            m = stream.next() => {
                let Some(Ok(Message::Text(text))) = m else { bail!("websocket closed") };
                let v: serde_json::Value = serde_json::from_str(&text)?;
                match v["ev"].as_str() {
                    Some("ready") if !offered => {
                        offered = true;
                        sink.send(Message::text(serde_json::json!({"op": "rtcOffer", "sdp": offer.to_sdp_string()}).to_string())).await?;
                    }
                    Some("rtcAnswer") => {
                        let answer = SdpAnswer::from_sdp_string(v["sdp"].as_str().unwrap_or(""))?;
                        if let Some(p) = pending.take() {
                            rtc.sdp_api().accept_answer(p, answer)?;
                        }
                    }
                    Some("dial") if v["content"]["code"] == 2 => {
                        report.setup = called_at.map(|t| t.elapsed());
                        phase = 2;
                        let b = calls_up.clone();
                        let w = window.clone();
                        let tx = phase_tx.clone();
                        tokio::spawn(async move {
                            b.wait().await;
                            // Let every echo settle before counting.
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            let _ = tx.send(3);
                            tokio::time::sleep(Duration::from_secs(seconds)).await;
                            let _ = tx.send(4);
                            w.wait().await;
                            let _ = tx.send(5);
                        });
                    }
                    Some("dial") if v["content"]["code"] == 5
                        && phase < 4 => {
                            bail!("the call ended early: {}", v["content"]);
                        }
                    Some("error") => bail!("server error: {}", v),
                    _ => {}
                }
            }
            p = phase_rx.recv() => {
                match p {
                    Some(1) => {
                        called_at = Some(Instant::now());
                        sink.send(Message::text(r#"{"op":"callOut","caller":"","callee":"12025550100","countryCode":"1"}"#)).await?;
                    }
                    Some(3) => { phase = 3; window_first = Some(counter); }
                    Some(4) => {
                        phase = 4;
                        // The window's frames: echoes still on their way arrive before the hang-up,
                        // which waits for every agent to close its window.
                        // Leave out the last 100 ms: their echoes may still be on the way
                        // when the hang-up comes.
                        let last = counter.saturating_sub(5).max(window_first.unwrap_or(0));
                        report.sent_in_window = last.saturating_sub(window_first.unwrap_or(last)) as u64;
                        window_end = Some(last);
                    }
                    Some(5) => {
                        // Each frame of the window once, however often it came back.
                        let end = window_end.unwrap_or(0);
                        echoed.retain(|c| *c < end);
                        echoed.sort_unstable();
                        echoed.dedup();
                        report.received_in_window = echoed.len() as u64;
                        sink.send(Message::text(r#"{"op":"hangUp"}"#)).await?;
                        return Ok(report);
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                rtc.handle_input(Input::Timeout(Instant::now()))?;
                if connected {
                    if pt.is_none() {
                        if let Some(m) = rtc.media(mid) {
                            let remote = m.remote_pts().to_vec();
                            pt = rtc.codec_config().params().iter().find(|p| p.spec().codec == Codec::PCMU && remote.contains(&p.pt())).map(|p| p.pt());
                        }
                    }
                    if let (Some(pt), Some(tx)) = (pt, rtc.direct_api().stream_tx_by_mid(mid, None)) {
                        tx.write_rtp(RtpWrite::new(pt, SeqNo::from(seq), media_time as u32, Instant::now(), frame(counter)));
                        counter += 1;
                        seq += 1;
                        media_time += 160;
                    }
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit();
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let tokens = seed_agents(&data, args.calls).await?;
    let cfg = format!(
        "listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n[sip]\nlisten = \"127.0.0.1:0\"\n[sandbox]\nlisten = \"127.0.0.1:0\"\n{}\n",
        args.port,
        data.display(),
        args.server_config
    );
    let mut server = start_server(
        &args.seatline,
        &dir.path().join("seatline.toml"),
        &cfg,
        args.port,
        deadline,
    )
    .await?;
    let pid = server.id().context("pid")?;
    let rss0 = rss_kib(pid)?;
    let n = args.calls;
    let media_up = Arc::new(Barrier::new(n));
    // The main task joins the two barriers that frame the talk window.
    let calls_up = Arc::new(Barrier::new(n + 1));
    let window = Arc::new(Barrier::new(n + 1));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let url = format!("ws://127.0.0.1:{}/ws", args.port);
    for token in tokens {
        tokio::spawn(agent(
            url.clone(),
            token,
            window.clone(),
            media_up.clone(),
            calls_up.clone(),
            args.seconds,
            tx.clone(),
        ));
    }
    drop(tx);
    tokio::time::timeout_at(deadline.into(), calls_up.wait())
        .await
        .context("calls did not all connect in time")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let me = std::process::id();
    let (cpu0, sand0, gen0, at0) = (
        cpu_time(pid)?,
        thread_cpu_time(pid, "sandbox")?,
        cpu_time(me)?,
        Instant::now(),
    );
    tokio::time::timeout_at(deadline.into(), window.wait())
        .await
        .context("talk window")?;
    let (cpu1, sand1, gen1, at1) = (
        cpu_time(pid)?,
        thread_cpu_time(pid, "sandbox")?,
        cpu_time(me)?,
        Instant::now(),
    );
    let rss1 = rss_kib(pid)?;
    let mut reports = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        reports.push(r);
    }
    server.kill().await.ok();
    let errors: Vec<&String> = reports.iter().filter_map(|r| r.error.as_ref()).collect();
    let mut setups: Vec<Duration> = reports.iter().filter_map(|r| r.setup).collect();
    setups.sort();
    let sent: u64 = reports.iter().map(|r| r.sent_in_window).sum();
    let recv: u64 = reports.iter().map(|r| r.received_in_window).sum();
    let loss = if sent == 0 {
        1.0
    } else {
        1.0 - (recv.min(sent) as f64 / sent as f64)
    };
    println!(
        "calls={n} ok={} errors={}",
        reports.len() - errors.len(),
        errors.len()
    );
    if let Some(e) = errors.first() {
        println!("first_error={e}");
    }
    println!(
        "setup_ms median={:.1} p99={:.1} (callOut -> dialStatus 2; the echo number rings 1 s)",
        percentile(&setups, 0.5).as_secs_f64() * 1e3,
        percentile(&setups, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "echo_frames sent={sent} received={recv} loss_pct={:.3}",
        loss * 100.0
    );
    let secs = (at1 - at0).as_secs_f64();
    let sandbox = (sand1 - sand0).as_secs_f64() / secs;
    let cores = (cpu1 - cpu0).as_secs_f64() / secs - sandbox;
    println!(
        "server_cpu_during_talk cores={cores:.3} per_call_pct_of_a_core={:.3} window_s={secs:.1} (without the sandbox carrier's thread)",
        cores / n as f64 * 100.0,
    );
    println!(
        "sandbox_carrier_cpu cores={sandbox:.3} (the far end's echo, a thread of the server process)"
    );
    println!(
        "load_generator_cpu cores={:.3} ({n} WebRTC clients, this process)",
        (gen1 - gen0).as_secs_f64() / secs
    );
    println!(
        "server_rss_kib before={rss0} during_calls={rss1} per_call_kib={:.1}",
        (rss1.saturating_sub(rss0)) as f64 / n as f64
    );
    Ok(())
}
