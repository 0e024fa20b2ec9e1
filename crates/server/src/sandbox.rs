//! The sandbox carrier: a real SIP endpoint on loopback that behaves as
//! `spec/sandbox-carrier.md` says (see `seatline_calls::sandbox`), with
//! real RTP: an echo of the caller's audio, or a 1 kHz tone.
//!
//! Seatline reaches it through the same trunk code as a real carrier.

use seatline_calls::sandbox::{behaviour, Behaviour, Media};
use seatline_media::dtmf::DigitReceiver;
use seatline_media::rtp::{RtpPacket, RtpSender};
use seatline_media::tone::Tone;
use seatline_sip::sdp::{AudioSdp, Codec};
use seatline_sip::{CallRef, Timers, UaEvent, UserAgent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What the sandbox heard, for tests and the demo: DTMF digits per call,
/// by the caller number's Call-ID-free key (callee), and the inbound calls
/// it placed (the last [`PLACED_KEPT`]) with what their caller heard.
#[derive(Default, Clone)]
pub struct SandboxLog {
    inner: Arc<Mutex<Vec<(String, String)>>>,
    placed: Arc<Mutex<std::collections::VecDeque<Placed>>>,
}

/// How many placed calls the log keeps.
pub const PLACED_KEPT: usize = 32;

/// An inbound call the sandbox placed, as its caller lived it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placed {
    /// Counts up from 1 for each call placed since the start.
    pub id: u64,
    pub from: String,
    pub to: String,
    /// `calling`, `answered`, `failed` or `ended`.
    pub state: &'static str,
    /// The final SIP status of a failed call.
    pub sip_code: Option<u16>,
    /// Audio packets the caller got (DTMF apart).
    pub heard_packets: u64,
    /// The loudest 20 ms the caller heard (RMS, dBFS; -96 for silence).
    pub heard_peak_dbfs: f64,
    /// Who ended it: `seatline` (a BYE from us) or `sandbox`.
    pub ended_by: Option<&'static str>,
}

impl SandboxLog {
    /// The inbound calls the sandbox placed, oldest first.
    pub fn placed(&self) -> Vec<Placed> {
        self.placed
            .lock()
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Placed)) {
        if let Ok(mut v) = self.placed.lock() {
            if let Some(p) = v.iter_mut().rev().find(|p| p.id == id) {
                f(p);
            }
        }
    }

    fn place(&self, p: Placed) {
        if let Ok(mut v) = self.placed.lock() {
            if v.len() >= PLACED_KEPT {
                v.pop_front();
            }
            v.push_back(p);
        }
    }

    /// A 20 ms frame of audio reached a placed call's caller.
    fn heard(&self, id: u64, pt: u8, payload: &[u8]) {
        if payload.is_empty() || (pt != 0 && pt != 8) {
            return;
        }
        let sum: f64 = payload
            .iter()
            .map(|&b| {
                let x = if pt == 0 {
                    seatline_media::g711::ulaw_to_linear(b)
                } else {
                    seatline_media::g711::alaw_to_linear(b)
                };
                f64::from(x) * f64::from(x)
            })
            .sum();
        let rms = (sum / payload.len() as f64).sqrt();
        let dbfs = if rms < 1.0 {
            -96.0
        } else {
            (20.0 * (rms / 32_768.0).log10()).max(-96.0)
        };
        self.update(id, |p| {
            p.heard_packets += 1;
            p.heard_peak_dbfs = p.heard_peak_dbfs.max(dbfs);
        });
    }

    /// (callee, digits) of every call that sent DTMF.
    pub fn digits(&self) -> Vec<(String, String)> {
        self.inner.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn push_digit(&self, callee: &str, d: char) {
        if let Ok(mut v) = self.inner.lock() {
            match v.iter_mut().rev().find(|(c, _)| c == callee) {
                Some((_, s)) => s.push(d),
                None => v.push((callee.to_string(), d.to_string())),
            }
        }
    }
}

pub struct Sandbox {
    pub addr: SocketAddr,
    pub log: SandboxLog,
    tx: tokio::sync::mpsc::UnboundedSender<PlaceCall>,
}

/// An inbound call the sandbox places toward a tenant's DID.
pub struct PlaceCall {
    pub from: String,
    pub to: String,
    /// Custom data the agent receives as `other`.
    pub other: String,
    /// Keys the caller presses once answered (1.5 s after, 0.3 s apart).
    pub keys: String,
    /// Where our trunk listens.
    pub target: SocketAddr,
}

impl Sandbox {
    pub fn place_call(&self, call: PlaceCall) {
        let _ = self.tx.send(call);
    }
}

enum Action {
    Answer(CallRef),
    HangUp(CallRef),
}

struct Pending {
    offer: Vec<u8>,
    media: Media,
    callee: String,
}

/// Starts the sandbox carrier on its own thread ("sandbox") with its own
/// runtime: it stands for a carrier outside Seatline, so its work (the echo
/// of every sandbox call) stays apart from the server's and can be measured
/// apart.
pub async fn start(listen: SocketAddr) -> anyhow::Result<Sandbox> {
    let std_sock = std::net::UdpSocket::bind(listen)?;
    std_sock.set_nonblocking(true)?;
    let addr = std_sock.local_addr()?;
    let log = SandboxLog::default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread_log = log.clone();
    std::thread::Builder::new()
        .name("sandbox".into())
        .spawn(move || {
            rt.block_on(async move {
                match UdpSocket::from_std(std_sock) {
                    Ok(sock) => run(Arc::new(sock), addr, thread_log, rx).await,
                    Err(e) => tracing::error!("sandbox carrier: {e}"),
                }
            })
        })?;
    Ok(Sandbox { addr, log, tx })
}

async fn run(
    sock: Arc<UdpSocket>,
    addr: SocketAddr,
    log: SandboxLog,
    mut place: tokio::sync::mpsc::UnboundedReceiver<PlaceCall>,
) {
    // Our own calls toward a tenant: their RTP socket until answered.
    let mut outgoing: HashMap<CallRef, (UdpSocket, String, u64, String)> = HashMap::new();
    // Every call we placed, to its entry in the log, until it ends.
    let mut placed: HashMap<CallRef, u64> = HashMap::new();
    let mut placed_count = 0u64;
    let mut ua = UserAgent::new(addr, Timers::default());
    let mut timers: Vec<(Instant, Action)> = Vec::new();
    let mut calls: HashMap<CallRef, Pending> = HashMap::new();
    let mut media: HashMap<CallRef, (u16, JoinHandle<()>)> = HashMap::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        let next = ua
            .poll_timeout()
            .into_iter()
            .chain(timers.iter().map(|t| t.0))
            .min();
        let sleep = tokio::time::sleep_until(
            next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                .into(),
        );
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    ua.handle_datagram(&buf[..n], from, Instant::now());
                }
            }
            p = place.recv() => {
                let Some(p) = p else { return };
                if let Ok(rtp) = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await {
                    let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
                    let offer = AudioSdp {
                        addr: addr.ip(),
                        port,
                        codecs: vec![Codec::Pcmu, Codec::Pcma],
                        dtmf_pt: Some(101),
                        direction: seatline_sip::sdp::Direction::SendRecv,
                        profile: seatline_sip::sdp::Profile::Avp,
                        crypto: Vec::new(),
                    };
                    let extra = if p.other.is_empty() { vec![] } else { vec![("X-Custom-Data".to_string(), p.other.clone())] };
                    let call = ua.invite(&p.from, &p.to, p.target, offer.to_string(3, 1).as_bytes(), &extra, Instant::now());
                    placed_count += 1;
                    log.place(Placed {
                        id: placed_count,
                        from: p.from.clone(),
                        to: p.to.clone(),
                        state: "calling",
                        sip_code: None,
                        heard_packets: 0,
                        heard_peak_dbfs: -96.0,
                        ended_by: None,
                    });
                    placed.insert(call, placed_count);
                    outgoing.insert(call, (rtp, p.to, placed_count, p.keys));
                }
            }
            _ = sleep => {
                let now = Instant::now();
                ua.handle_timeout(now);
                let due: Vec<Action> = {
                    let (due, keep): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(t, _)| *t <= now);
                    timers = keep;
                    due.into_iter().map(|(_, a)| a).collect()
                };
                for a in due {
                    match a {
                        Action::Answer(call) => {
                            if let Some(p) = calls.get(&call) {
                                match answer(&p.offer, p.media, &p.callee, log.clone()).await {
                                    Ok((sdp, port, task)) => {
                                        ua.respond(call, 200, Some(sdp.as_bytes()), Instant::now());
                                        media.insert(call, (port, task));
                                    }
                                    Err(_) => ua.respond(call, 488, None, Instant::now()),
                                }
                            }
                        }
                        Action::HangUp(call) => ua.hang_up(call, now),
                    }
                }
            }
        }
        let now = Instant::now();
        while let Some(ev) = ua.poll_event() {
            match ev {
                UaEvent::Incoming {
                    call,
                    from_user,
                    to_user,
                    sdp,
                    ..
                } => match behaviour(&from_user, &to_user) {
                    Behaviour::Refuse(code) => ua.respond(call, code, None, now),
                    Behaviour::RingForever => ua.respond(call, 180, None, now),
                    Behaviour::Answer {
                        ring,
                        media: m,
                        hangup_after,
                    } => {
                        if !ring.is_zero() {
                            ua.respond(call, 180, None, now);
                        }
                        calls.insert(
                            call,
                            Pending {
                                offer: sdp,
                                media: m,
                                callee: to_user,
                            },
                        );
                        timers.push((now + ring, Action::Answer(call)));
                        if let Some(after) = hangup_after {
                            timers.push((now + ring + after, Action::HangUp(call)));
                        }
                    }
                },
                UaEvent::Answered { call, sdp } => {
                    // The customer of an inbound call: a 1 kHz tone toward the agent.
                    if let Some((rtp, to, id, keys)) = outgoing.remove(&call) {
                        log.update(id, |p| p.state = "answered");
                        if let Ok(ans) = AudioSdp::parse(&String::from_utf8_lossy(&sdp)) {
                            let remote = SocketAddr::new(ans.addr, ans.port);
                            let task = tokio::spawn(play(
                                rtp,
                                Media::Tone,
                                remote,
                                ans.codecs[0] as u8,
                                ans.dtmf_pt,
                                to,
                                (log.clone(), Some(id), keys),
                            ));
                            media.insert(call, (0, task));
                        }
                    }
                }
                UaEvent::Ended { call, .. } | UaEvent::Failed { call, .. } => {
                    if let Some(id) = placed.remove(&call) {
                        match ev {
                            UaEvent::Failed { code, .. } => log.update(id, |p| {
                                p.state = "failed";
                                p.sip_code = Some(code);
                            }),
                            UaEvent::Ended { remote, .. } => log.update(id, |p| {
                                p.state = "ended";
                                p.ended_by = Some(if remote { "seatline" } else { "sandbox" });
                            }),
                            _ => {}
                        }
                    }
                    outgoing.remove(&call);
                    calls.remove(&call);
                    timers.retain(
                        |(_, a)| !matches!(a, Action::Answer(c) | Action::HangUp(c) if *c == call),
                    );
                    if let Some((_, t)) = media.remove(&call) {
                        t.abort();
                    }
                }
                UaEvent::Reoffer { call, sdp } => {
                    // Hold and resume: accept, same port, mirrored direction.
                    let port = media.get(&call).map(|m| m.0).unwrap_or(0);
                    let answer = AudioSdp::parse(&String::from_utf8_lossy(&sdp))
                        .and_then(|o| o.answer(addr.ip(), port, &[Codec::Pcmu, Codec::Pcma]));
                    match answer {
                        Ok(a) => {
                            ua.respond_reoffer(call, 200, Some(a.to_string(2, 2).as_bytes()), now)
                        }
                        Err(_) => ua.respond_reoffer(call, 488, None, now),
                    }
                }
                _ => {}
            }
        }
        while let Some(t) = ua.poll_transmit() {
            let _ = sock.send_to(&t.bytes, t.to).await;
        }
    }
}

/// Opens the media of an answered call; returns our SDP answer and the task.
async fn answer(
    offer: &[u8],
    m: Media,
    callee: &str,
    log: SandboxLog,
) -> anyhow::Result<(String, u16, JoinHandle<()>)> {
    let offer = AudioSdp::parse(&String::from_utf8_lossy(offer))?;
    let rtp = UdpSocket::bind("127.0.0.1:0").await?;
    let local = rtp.local_addr()?;
    let ans = offer.answer(local.ip(), local.port(), &[Codec::Pcmu, Codec::Pcma])?;
    let remote = SocketAddr::new(offer.addr, offer.port);
    let task = tokio::spawn(play(
        rtp,
        m,
        remote,
        ans.codecs[0] as u8,
        ans.dtmf_pt,
        callee.to_string(),
        (log, None, String::new()),
    ));
    Ok((ans.to_string(1, 1), local.port(), task))
}

/// The far end's media: echo what comes in, or play a tone; note DTMF,
/// and (a call we placed: its id in the log) how loud what came in was.
async fn play(
    rtp: UdpSocket,
    m: Media,
    remote: SocketAddr,
    pt: u8,
    dtmf_pt: Option<u8>,
    callee: String,
    (log, placed, keys): (SandboxLog, Option<u64>, String),
) {
    {
        let mut out = RtpSender::new(rand_u32(), 1, rand_u32());
        let mut buf = vec![0u8; 2048];
        let mut wire = Vec::with_capacity(200);
        let mut digits = DigitReceiver::default();
        match m {
            Media::Echo => {
                // Like a real phone, the far end never goes quiet on the wire:
                // when nothing came to echo for 100 ms it sends silence every
                // 20 ms, until audio comes again. A packet only notes the
                // time it came (no timer is touched per packet); one sleep
                // wakes every 100 ms while audio flows.
                const QUIET: Duration = Duration::from_millis(100);
                const FRAME: Duration = Duration::from_millis(20);
                let silence = if pt == 8 { 0xd5 } else { 0xff };
                let mut to = remote;
                let mut last_rx = tokio::time::Instant::now();
                let sleep = tokio::time::sleep_until(last_rx + QUIET);
                tokio::pin!(sleep);
                loop {
                    let (n, from) = tokio::select! {
                        biased;
                        r = rtp.recv_from(&mut buf) => match r {
                            Ok(r) => r,
                            Err(_) => return,
                        },
                        () = &mut sleep => {
                            let now = tokio::time::Instant::now();
                            if now >= last_rx + QUIET {
                                out.next(pt, false, &[silence; 160], 160).write(&mut wire);
                                let _ = rtp.send_to(&wire, to).await;
                                sleep.as_mut().reset(now + FRAME);
                            } else {
                                sleep.as_mut().reset(last_rx + QUIET);
                            }
                            continue;
                        }
                    };
                    let Some(p) = RtpPacket::parse(&buf[..n]) else {
                        continue;
                    };
                    to = from;
                    if Some(p.payload_type) == dtmf_pt {
                        if let Some(d) = digits.handle(p.timestamp, p.payload) {
                            log.push_digit(&callee, d);
                        }
                        continue;
                    }
                    last_rx = tokio::time::Instant::now();
                    out.next(p.payload_type, p.marker, p.payload, p.payload.len() as u32)
                        .write(&mut wire);
                    let _ = rtp.send_to(&wire, from).await;
                }
            }
            Media::Tone => {
                let mut tone = Tone::steady(1000.0);
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                // The keys' events, each in place of the tone's frames
                // (one RTP timestamp per digit, RFC 4733), from 1.5 s on,
                // 0.3 s apart.
                let mut frames = 0u32;
                let mut presses = keys
                    .chars()
                    .enumerate()
                    .map(|(i, d)| (75 + 15 * i as u32, d));
                let mut next_press = presses.next();
                let mut sending: std::collections::VecDeque<(bool, [u8; 4])> = Default::default();
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            frames += 1;
                            if let (Some((at, d)), Some(_)) = (next_press, dtmf_pt) {
                                if frames >= at && sending.is_empty() {
                                    sending.extend(seatline_media::dtmf::digit_packets(d));
                                    next_press = presses.next();
                                }
                            }
                            match (sending.pop_front(), dtmf_pt) {
                                (Some((marker, payload)), Some(dpt)) => {
                                    // One timestamp for the whole event; the
                                    // clock moves on by its length after it.
                                    out.next(dpt, marker, &payload, 0).write(&mut wire);
                                    if sending.is_empty() {
                                        out.timestamp = out.timestamp.wrapping_add(160 * 8);
                                    }
                                }
                                _ => {
                                    let frame = tone.next_frame(pt);
                                    out.next(pt, false, &frame, frame.len() as u32).write(&mut wire);
                                }
                            }
                            let _ = rtp.send_to(&wire, remote).await;
                        }
                        r = rtp.recv_from(&mut buf) => {
                            let Ok((n, _)) = r else { return };
                            if let Some(p) = RtpPacket::parse(&buf[..n]) {
                                if Some(p.payload_type) == dtmf_pt {
                                    if let Some(d) = digits.handle(p.timestamp, p.payload) {
                                        log.push_digit(&callee, d);
                                    }
                                } else if let Some(id) = placed {
                                    log.heard(id, p.payload_type, p.payload);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    t.wrapping_mul(2_654_435_761) ^ std::process::id()
}
