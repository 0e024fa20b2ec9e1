//! One media worker: a thread with its own single-threaded runtime that owns
//! a WebRTC socket, the legs answered on it and the carrier RTP sockets of
//! their calls. Its tasks (the WebRTC socket, each carrier socket, the
//! command queue, a 20 ms tick) share the worker's state without locks; none
//! holds it across an await, and every send is a non-blocking `try_send_to`
//! (a real-time packet that cannot leave now is better dropped than late).
//!
//! A datagram finds its leg in O(1): by its source address once a STUN
//! request from that address named the leg's ICE username fragment, and by
//! that fragment before.
//!
//! G.711 on both sides: packets are relayed, and only re-encoded (μ-law <->
//! A-law, a table step) when the two sides chose different ones. While an
//! outbound call rings with no early media, the agent hears a ringback tone
//! generated here.
//!
//! Toward an SRTP trunk (SDES) every packet to the carrier is protected
//! just before it leaves and every packet from it is checked and decrypted
//! before anything else reads it (a packet that fails is dropped and
//! latches nothing), in the worker's reused buffers.

use super::recorder::{Recorder, Tap};
use super::relay::{self, SharedRelays};
use super::{LegId, MediaCmd, MediaNote};
use crate::metrics::{RtpCounters, Tally};
use seatline_media::dtmf::{digit_packets, DigitReceiver};
use seatline_media::g711;
use seatline_media::latch::Latch;
use seatline_media::music::Music;
use seatline_media::quality::QualitySample;
use seatline_media::rewrite::{Header, RtpRewriter};
use seatline_media::rtcp::{self, ReceiverStats, Rtcp, SenderInfo};
use seatline_media::rtp::RtpPacket;
use seatline_media::srtp::SrtpLeg;
use seatline_media::tone::Tone;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A leg that never connects is dropped after this (ICE-lite never gives up by itself).
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Source addresses remembered per leg (ICE checks may come from several).
const MAX_ADDRS_PER_LEG: usize = 8;

/// How often RTCP reports go to the carrier, and quality to the switchboard.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// RTP clock of G.711.
const CLOCK: u32 = 8000;

/// Largest datagram read from a browser (an Ethernet MTU's worth).
const DATAGRAM: usize = 1500;

/// Datagrams read from one carrier socket per wake-up.
const READ_BATCH: usize = 16;

/// Packets str0m keeps queued (and for resends) toward a browser.
const SEND_BUFFER: usize = 4;

/// Starts worker `index` on its own thread.
pub(super) fn spawn(
    index: usize,
    sock: std::net::UdpSocket,
    candidate: SocketAddr,
    rx: mpsc::Receiver<MediaCmd>,
    notes: mpsc::UnboundedSender<MediaNote>,
    rtp_counters: Arc<RtpCounters>,
    recorder: Recorder,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("media-{index}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                if let Err(e) = run(sock, candidate, rx, notes, rtp_counters, recorder).await {
                    tracing::error!("media worker {index} stopped: {e}");
                }
            });
        })?;
    Ok(())
}

struct Leg {
    /// Boxed: an `Rtc` is several KiB, and the legs' table grows by doubling.
    rtc: Box<Rtc>,
    seat_id: i64,
    ufrag: String,
    /// Source addresses routed to this leg.
    addrs: Vec<SocketAddr>,
    mid: Option<Mid>,
    /// Our audio payload type toward the browser, and its G.711 kind (0 or 8).
    pt: Option<(Pt, u8)>,
    created: Instant,
    connected: bool,
    timeout: Instant,
    /// RTP time and extended sequence number of the next packet we write
    /// to the browser (RTP mode: we number our own stream).
    time: u64,
    seq: u64,
    /// What str0m last reported of the browser side: loss %, jitter ms, RTT ms.
    loss_pct: f64,
    jitter_ms: f64,
    rtt_ms: f64,
}

struct CallMedia {
    rtp: Rc<UdpSocket>,
    rtcp: Rc<UdpSocket>,
    /// The carrier's RTP and RTCP sources: latched to the first packet from
    /// the negotiated address (symmetric RTP); `None` until it is known.
    latch: Option<Latch>,
    rtcp_latch: Option<Latch>,
    pt: u8,
    dtmf_pt: Option<u8>,
    /// SRTP toward an SDES trunk; `None` for plain RTP.
    srtp: Option<SrtpLeg>,
    /// Our one stream toward the carrier, whatever leg feeds it.
    out: RtpRewriter,
    /// The carrier's stream toward us.
    stats: ReceiverStats,
    remote_ssrc: Option<u32>,
    /// The carrier's last sender report: its NTP middle 32 bits, and when.
    last_sr: Option<(u32, Instant)>,
    /// Round trip to the carrier, from its reports on our stream.
    rtt_ms: Option<f64>,
    next_report: Instant,
    ringback: Option<Tone>,
    /// The waiting music toward the carrier, while the caller waits.
    music: Option<Music>,
    muted: bool,
    held: bool,
    dtmf: VecDeque<(bool, [u8; 4])>,
    digits_in: DigitReceiver,
    readers: [JoinHandle<()>; 2],
    /// RTP came from the carrier since the last liveness report.
    got_rtp: bool,
    /// What of this call's packet counts the metrics have.
    tally: Tally,
    /// The call's recording, while it is recorded (or paused).
    rec: Option<Tap>,
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

impl CallMedia {
    /// Where our RTP goes: the carrier's latched source, else the negotiated address.
    fn remote(&self) -> Option<SocketAddr> {
        self.latch.as_ref().map(Latch::target)
    }
}

struct Worker {
    sock: Rc<UdpSocket>,
    local: SocketAddr,
    candidate: SocketAddr,
    legs: HashMap<LegId, Leg>,
    by_ufrag: HashMap<String, LegId>,
    by_addr: HashMap<SocketAddr, LegId>,
    /// The leg that plays and captures each agent's audio.
    current: HashMap<i64, LegId>,
    calls: HashMap<i64, CallMedia>,
    /// Inbound calls ringing at an agent: the ring we play them.
    rings: HashMap<i64, Tone>,
    notes: mpsc::UnboundedSender<MediaNote>,
    ticks: u32,
    /// One DTLS certificate for every leg of the worker: made once, not per
    /// leg (a key pair and a certificate each, in time and memory).
    cert: Option<str0m::config::DtlsCert>,
    /// Scratch buffers, reused for every packet.
    wire: Vec<u8>,
    /// What the carrier sockets' readers receive into.
    rbuf: Vec<u8>,
    pcm: Vec<u8>,
    /// An SRTP packet from the carrier, decrypted in place.
    clear: Vec<u8>,
    /// Forwarded calls' relays on this worker.
    relays: SharedRelays,
    rtp_counters: Arc<RtpCounters>,
    recorder: Recorder,
    /// Decoded audio for a recording, reused for every packet.
    lin: Vec<i16>,
}

type Shared = Rc<RefCell<Worker>>;

async fn run(
    sock: std::net::UdpSocket,
    candidate: SocketAddr,
    mut rx: mpsc::Receiver<MediaCmd>,
    notes: mpsc::UnboundedSender<MediaNote>,
    rtp_counters: Arc<RtpCounters>,
    recorder: Recorder,
) -> anyhow::Result<()> {
    let sock = Rc::new(UdpSocket::from_std(sock)?);
    let local = sock.local_addr()?;
    let relays = SharedRelays::default();
    let w: Shared = Rc::new(RefCell::new(Worker {
        sock: sock.clone(),
        local,
        candidate,
        legs: HashMap::new(),
        by_ufrag: HashMap::new(),
        by_addr: HashMap::new(),
        current: HashMap::new(),
        calls: HashMap::new(),
        rings: HashMap::new(),
        notes,
        ticks: 0,
        cert: str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate(),
        wire: Vec::with_capacity(1500),
        rbuf: vec![0u8; 2000],
        pcm: Vec::with_capacity(1500),
        clear: Vec::with_capacity(2000),
        relays: relays.clone(),
        rtp_counters,
        recorder,
        lin: Vec::with_capacity(1500),
    }));

    // The WebRTC socket: every browser leg of the worker sends here, so
    // a wake-up finds many datagrams waiting. One `recvmmsg` (quinn-udp)
    // reads up to `quinn_udp::BATCH_SIZE` of them.
    let reader = {
        let w = w.clone();
        let state = quinn_udp::UdpSocketState::new((&*sock).into())?;
        tune_webrtc_socket(&sock);
        tokio::task::spawn_local(async move {
            let mut bufs = Box::new([[0u8; DATAGRAM]; quinn_udp::BATCH_SIZE]);
            let mut meta = [quinn_udp::RecvMeta::default(); quinn_udp::BATCH_SIZE];
            loop {
                if sock.readable().await.is_err() {
                    continue;
                }
                loop {
                    let got = sock.try_io(tokio::io::Interest::READABLE, || {
                        let mut iovs = bufs
                            .each_mut()
                            .map(|b: &mut [u8; DATAGRAM]| std::io::IoSliceMut::new(b));
                        state.recv((&*sock).into(), &mut iovs, &mut meta)
                    });
                    let n = match got {
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        // An ICMP error from an earlier send, say: read on.
                        Err(_) => continue,
                    };
                    let now = Instant::now();
                    let mut w = w.borrow_mut();
                    for (m, b) in meta.iter().zip(bufs.iter()).take(n) {
                        // One datagram per buffer (GRO is off); should the
                        // kernel coalesce anyway, each `stride` is one.
                        let stride = m.stride.max(1);
                        for d in b[..m.len.min(DATAGRAM)].chunks(stride) {
                            w.on_datagram(d, m.addr, now);
                        }
                    }
                }
            }
        })
    };

    // The tick: tones, DTMF pacing, leg timers, liveness reports.
    let ticker = {
        let w = w.clone();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                w.borrow_mut().on_tick(Instant::now());
            }
        })
    };

    while let Some(cmd) = rx.recv().await {
        match cmd {
            MediaCmd::Bridge {
                seat_id,
                rtp,
                ringback,
            } => {
                let (rtp, rtcp) =
                    match (UdpSocket::from_std(rtp.rtp), UdpSocket::from_std(rtp.rtcp)) {
                        (Ok(a), Ok(b)) => (Rc::new(a), Rc::new(b)),
                        (Err(e), _) | (_, Err(e)) => {
                            tracing::error!("cannot take a call's RTP sockets: {e}");
                            continue;
                        }
                    };
                let readers = [
                    spawn_carrier_reader(w.clone(), seat_id, rtp.clone(), false),
                    spawn_carrier_reader(w.clone(), seat_id, rtcp.clone(), true),
                ];
                w.borrow_mut()
                    .bridge(seat_id, rtp, rtcp, readers, ringback, Instant::now());
            }
            MediaCmd::Relay { id, a, b } => relay::start(&relays, id, a, b),
            cmd => w.borrow_mut().on_cmd(cmd, Instant::now()),
        }
    }
    reader.abort();
    ticker.abort();
    Ok(())
}

/// Reads one call's carrier RTP (or RTCP) socket for as long as the call
/// lasts. The task owns no buffer: once the socket is readable, what is
/// queued is read into the worker's one receive buffer (at most a batch per
/// wake, so one busy socket cannot starve the others).
fn spawn_carrier_reader(
    w: Shared,
    seat_id: i64,
    sock: Rc<UdpSocket>,
    rtcp: bool,
) -> JoinHandle<()> {
    tokio::task::spawn_local(async move {
        loop {
            if sock.readable().await.is_err() {
                return;
            }
            let mut w = w.borrow_mut();
            let mut buf = std::mem::take(&mut w.rbuf);
            for _ in 0..READ_BATCH {
                let (n, from) = match sock.try_recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // An ICMP error from an earlier send, say: read on.
                    Err(_) => continue,
                };
                let now = Instant::now();
                if rtcp {
                    w.on_rtcp(seat_id, &buf[..n], from, now);
                } else {
                    w.on_rtp(seat_id, &buf[..n], from, now);
                }
            }
            w.rbuf = buf;
        }
    })
}

/// The WebRTC socket's receive buffer: every leg of the worker sends to
/// it, and browsers whose 20 ms clocks happen to line up send together.
/// The default (208 KiB, about 160 small datagrams as the kernel counts
/// them) dropped such bursts at 250 legs a worker. Asked with the
/// privilege to pass `net.core.rmem_max` first, else within it.
const WEBRTC_RECV_BUFFER: libc::c_int = 4 << 20;

/// Turns UDP generic receive offload off on the WebRTC socket (quinn-udp
/// turns it on; coalesced datagrams would need 64 KiB buffers, ours hold
/// one datagram each) and gives it room for bursts.
fn tune_webrtc_socket(sock: &impl std::os::fd::AsRawFd) {
    let set = |level, name, value: libc::c_int| {
        // SAFETY: a valid socket and a c_int option of the right size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_UDP, libc::UDP_GRO, 0);
    if set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, WEBRTC_RECV_BUFFER) != 0
        && set(libc::SOL_SOCKET, libc::SO_RCVBUF, WEBRTC_RECV_BUFFER) != 0
    {
        tracing::warn!("cannot enlarge the WebRTC socket's receive buffer");
    }
}

/// Our payload type for G.711 in the leg's media `mid` and its law (0
/// μ-law, 8 A-law): the first the browser takes, or the one numbered `pt`.
fn law_of(rtc: &Rtc, mid: Mid, pt: Option<Pt>) -> Option<(Pt, u8)> {
    let remote = rtc.media(mid)?.remote_pts();
    rtc.codec_config()
        .params()
        .iter()
        .filter(|p| remote.contains(&p.pt()) && pt.is_none_or(|pt| pt == p.pt()))
        .find_map(|p| match p.spec().codec {
            Codec::PCMU => Some((p.pt(), 0)),
            Codec::PCMA => Some((p.pt(), 8)),
            _ => None,
        })
}

/// G.711 `payload` from law `from` into `out` in law `to` (0 μ-law, 8 A-law).
fn convert_into(out: &mut Vec<u8>, payload: &[u8], from: u8, to: u8) {
    out.clear();
    if from == to {
        out.extend_from_slice(payload);
        return;
    }
    out.extend(payload.iter().map(|b| {
        let lin = if from == 8 {
            g711::alaw_to_linear(*b)
        } else {
            g711::ulaw_to_linear(*b)
        };
        if to == 8 {
            g711::linear_to_alaw(lin)
        } else {
            g711::linear_to_ulaw(lin)
        }
    }));
}

/// The USERNAME of a STUN message, if it is one (RFC 8489 §5, §14.3).
fn stun_username(b: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    if b.len() < 20 || b[0] & 0xc0 != 0 || b[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let body = b.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[i], body[i + 1]]);
        let alen = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        let value = body.get(i + 4..i + 4 + alen)?;
        if kind == 0x0006 {
            return std::str::from_utf8(value).ok();
        }
        i += 4 + alen.div_ceil(4) * 4;
    }
    None
}

impl Worker {
    fn bridge(
        &mut self,
        seat_id: i64,
        rtp: Rc<UdpSocket>,
        rtcp: Rc<UdpSocket>,
        readers: [JoinHandle<()>; 2],
        ringback: bool,
        now: Instant,
    ) {
        let ssrc = crate::sandbox::rand_u32();
        let start = crate::sandbox::rand_u32();
        // Replacing a call's media drops (and so stops) the old readers.
        let old = self.calls.insert(
            seat_id,
            CallMedia {
                rtp,
                rtcp,
                latch: None,
                rtcp_latch: None,
                pt: 0,
                dtmf_pt: None,
                srtp: None,
                out: RtpRewriter::new(ssrc, (start >> 16) as u16, start.rotate_left(7), CLOCK),
                stats: ReceiverStats::new(CLOCK),
                remote_ssrc: None,
                last_sr: None,
                rtt_ms: None,
                next_report: now + REPORT_EVERY,
                ringback: ringback.then(Tone::ringback),
                muted: false,
                held: false,
                music: None,
                dtmf: VecDeque::new(),
                digits_in: DigitReceiver::default(),
                readers,
                got_rtp: false,
                tally: Tally::default(),
                rec: None,
            },
        );
        if let Some(mut old) = old {
            self.tally(&mut old);
        }
    }

    /// Adds the call's packets since the last time to the metrics (every
    /// report, and when its media goes): from the counts RTCP keeps anyway.
    fn tally(&self, c: &mut CallMedia) {
        let (packets_in, lost) = (c.stats.packets(), c.stats.lost_packets());
        self.rtp_counters
            .catch_up(&mut c.tally, packets_in, c.out.packets_sent(), lost);
    }

    fn on_cmd(&mut self, cmd: MediaCmd, now: Instant) {
        match cmd {
            MediaCmd::AddLeg {
                seat_id,
                leg,
                offer,
                reply,
            } => {
                let r = self.add_leg(seat_id, leg, &offer, now);
                let ok = r.is_ok();
                let _ = reply.send(r);
                if ok {
                    self.drain(leg);
                }
            }
            MediaCmd::RemoveLeg { leg, .. } => self.remove_leg(leg),
            // Taken by the command loop, which owns the runtime's tasks.
            MediaCmd::Bridge { .. } | MediaCmd::Relay { .. } => {}
            MediaCmd::RelayRemote {
                id,
                leg,
                remote,
                pt,
                dtmf_pt,
                srtp,
            } => self
                .relays
                .borrow_mut()
                .remote(id, leg, remote, pt, dtmf_pt, srtp),
            MediaCmd::Unrelay { id } => self.relays.borrow_mut().stop(id),
            MediaCmd::RecordRelay {
                id,
                tenant_id,
                call_id,
            } => {
                if let Some(rec) = self.recorder.open(tenant_id, &call_id) {
                    let tap = Tap::new(self.recorder.clone(), rec, now);
                    self.relays.borrow_mut().record(id, tap);
                }
            }
            MediaCmd::Remote {
                seat_id,
                remote,
                pt,
                dtmf_pt,
                srtp,
            } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    let rtcp = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
                    match (&mut c.latch, &mut c.rtcp_latch) {
                        (Some(l), Some(r)) => {
                            if l.target() != remote {
                                // The far end moved its media (a re-INVITE).
                                l.set_negotiated(remote);
                                r.set_negotiated(rtcp);
                            }
                        }
                        _ => {
                            c.latch = Some(Latch::new(remote));
                            c.rtcp_latch = Some(Latch::new(rtcp));
                        }
                    }
                    c.pt = pt;
                    c.dtmf_pt = dtmf_pt;
                    SrtpLeg::update(&mut c.srtp, srtp);
                }
            }
            MediaCmd::Ringback { seat_id, on } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.ringback = on.then(Tone::ringback);
                }
            }
            MediaCmd::Unbridge { seat_id } => {
                if let Some(mut c) = self.calls.remove(&seat_id) {
                    self.tally(&mut c);
                }
            }
            MediaCmd::Ring { seat_id, on } => {
                if on {
                    self.rings.entry(seat_id).or_insert_with(Tone::ring);
                } else {
                    self.rings.remove(&seat_id);
                }
            }
            MediaCmd::Dtmf { seat_id, digits } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    for d in digits.chars() {
                        // A gap of silence (no packets) between digits: 3 empty slots.
                        c.dtmf.extend(digit_packets(d));
                        c.dtmf.extend(std::iter::repeat_n((false, [0xff; 4]), 3));
                    }
                }
            }
            MediaCmd::Mute { seat_id, on } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.muted = on;
                }
            }
            MediaCmd::Record {
                seat_id,
                tenant_id,
                call_id,
                on,
            } => self.record(seat_id, tenant_id, &call_id, on, now),
            MediaCmd::Hold { seat_id, on } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.held = on;
                }
            }
            MediaCmd::Music { seat_id, on, clip } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.music = on.then(|| Music::with_clip(clip));
                }
            }
            MediaCmd::Announce {
                seat_id,
                lang,
                position,
                minutes,
            } => {
                if let Some(m) = self.calls.get_mut(&seat_id).and_then(|c| c.music.as_mut()) {
                    m.announce(seatline_media::announce::samples(lang, position, minutes));
                }
            }
        }
    }

    fn add_leg(
        &mut self,
        seat_id: i64,
        leg: LegId,
        offer: &str,
        now: Instant,
    ) -> Result<String, String> {
        let mut config = RtcConfig::new();
        if let Some(cert) = &self.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        // Only the MID header extension (BUNDLE needs it): without
        // transport-wide sequence numbers str0m keeps no congestion-control
        // history (1,000 records, ~45 KiB a leg) and sends no TWCC feedback,
        // which a G.711 relay with no bandwidth estimation never reads.
        let mut exts = ExtensionMap::empty();
        exts.set(4, Extension::RtpMid);
        let rtc = config
            .set_ice_lite(true)
            .clear_codecs()
            // The answerer picks the codec: ours come in this order.
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .set_extension_map(exts)
            // RTP mode: packets in and out as they are, with no
            // depacketizing buffer, sample queue or payloader in between (a
            // G.711 relay has nothing to reassemble). A lost packet holds
            // nothing back; a late one is dropped by the rewriter.
            .set_rtp_mode(true)
            // Every write is one packet and is drained at once: a short
            // send buffer (and resend cache) is enough; G.711 has no NACK.
            .set_send_buffer_audio(SEND_BUFFER)
            .set_stats_interval(Some(REPORT_EVERY))
            .build(now);
        let mut rtc = Box::new(rtc);
        let cand = Candidate::host(self.candidate, "udp").map_err(|e| e.to_string())?;
        rtc.add_local_candidate(cand);
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| format!("bad SDP offer: {e}"))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| format!("cannot answer: {e}"))?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        // A leg id used again replaces its leg.
        self.remove_leg(leg);
        self.by_ufrag.insert(ufrag.clone(), leg);
        self.legs.insert(
            leg,
            Leg {
                rtc,
                seat_id,
                ufrag,
                addrs: Vec::new(),
                mid: None,
                pt: None,
                created: now,
                connected: false,
                timeout: now,
                time: u64::from(crate::sandbox::rand_u32()),
                seq: u64::from(crate::sandbox::rand_u32() & 0x7fff),
                loss_pct: 0.0,
                jitter_ms: 0.0,
                rtt_ms: 0.0,
            },
        );
        // The newest leg of an agent holds the audio.
        if let Some(old) = self.current.insert(seat_id, leg) {
            if old != leg {
                self.remove_leg(old);
                self.current.insert(seat_id, leg);
            }
        }
        Ok(answer.to_sdp_string())
    }

    fn remove_leg(&mut self, leg: LegId) {
        let Some(mut l) = self.legs.remove(&leg) else {
            return;
        };
        l.rtc.disconnect();
        self.by_ufrag.remove(&l.ufrag);
        for a in &l.addrs {
            if self.by_addr.get(a) == Some(&leg) {
                self.by_addr.remove(a);
            }
        }
        if self.current.get(&l.seat_id) == Some(&leg) {
            self.current.remove(&l.seat_id);
            if l.connected {
                let _ = self.notes.send(MediaNote::AudioLost { seat_id: l.seat_id });
            }
        }
        let _ = self.notes.send(MediaNote::LegGone {
            seat_id: l.seat_id,
            leg,
        });
    }

    /// The leg a datagram belongs to: by source once known, else by the
    /// ICE username fragment of a STUN request.
    fn leg_of(&self, data: &[u8], source: SocketAddr) -> Option<LegId> {
        if let Some(id) = self.by_addr.get(&source) {
            return Some(*id);
        }
        let user = stun_username(data)?;
        let ours = user.split(':').next()?;
        self.by_ufrag.get(ours).copied()
    }

    fn on_datagram(&mut self, data: &[u8], source: SocketAddr, now: Instant) {
        let Some(id) = self.leg_of(data, source) else {
            return;
        };
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let Some(l) = self.legs.get_mut(&id) else {
            return;
        };
        if !l.rtc.accepts(&input) {
            return;
        }
        if !self.by_addr.contains_key(&source) && l.addrs.len() < MAX_ADDRS_PER_LEG {
            l.addrs.push(source);
            self.by_addr.insert(source, id);
        }
        let _ = l.rtc.handle_input(input);
        self.drain(id);
    }

    /// Runs a leg's outputs until it asks to wait.
    fn drain(&mut self, id: LegId) {
        let mut gone = false;
        loop {
            let Some(l) = self.legs.get_mut(&id) else {
                return;
            };
            let out = match l.rtc.poll_output() {
                Ok(o) => o,
                Err(_) => {
                    gone = true;
                    break;
                }
            };
            match out {
                Output::Timeout(t) => {
                    l.timeout = if l.connected {
                        t
                    } else {
                        t.min(l.created + SETUP_TIMEOUT)
                    };
                    if !l.connected && Instant::now() >= l.created + SETUP_TIMEOUT {
                        gone = true;
                    }
                    break;
                }
                Output::Transmit(t) => {
                    let _ = self.sock.try_send_to(&t.contents, t.destination);
                }
                Output::Event(ev) => match ev {
                    Event::MediaAdded(added) => {
                        l.mid = Some(added.mid);
                        l.pt = law_of(&l.rtc, added.mid, None);
                    }
                    // Media may flow once DTLS is up (ICE-lite goes to Completed).
                    Event::Connected => {
                        l.connected = true;
                        let _ = self.notes.send(MediaNote::LegConnected {
                            seat_id: l.seat_id,
                            leg: id,
                        });
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        gone = true;
                        break;
                    }
                    Event::MediaIngressStats(st) => {
                        l.loss_pct = f64::from(st.loss.unwrap_or(0.0)) * 100.0;
                        l.jitter_ms = f64::from(st.jitter) * 1000.0 / f64::from(CLOCK);
                    }
                    Event::MediaEgressStats(st) => {
                        if let Some(rtt) = st.rtt {
                            l.rtt_ms = rtt.as_secs_f64() * 1000.0;
                        }
                    }
                    Event::RtpPacket(d) => {
                        let seat = l.seat_id;
                        // The law of the packet's payload type (the browser
                        // may send either of the two we answered); anything
                        // else (comfort noise, say) is not relayed.
                        let pt = d.header.payload_type;
                        let Some((_, from_pt)) =
                            l.pt.filter(|p| p.0 == pt)
                                .or_else(|| law_of(&l.rtc, l.mid?, Some(pt)))
                        else {
                            continue;
                        };
                        if self.current.get(&seat) != Some(&id) {
                            continue;
                        }
                        let Some(c) = self.calls.get_mut(&seat) else {
                            continue;
                        };
                        if c.muted || c.held || !c.dtmf.is_empty() {
                            continue;
                        }
                        let Some(remote) = c.remote() else {
                            continue;
                        };
                        let seq = d.header.sequence_number;
                        if c.out.is_late(id, seq) {
                            continue;
                        }
                        let ts = d.header.timestamp;
                        if let Some(tap) = c.rec.as_mut() {
                            tap.feed(0, ts, &d.payload, from_pt, Instant::now(), &mut self.lin);
                        }
                        // The browser's own timestamps: a lost packet leaves
                        // a gap toward the carrier, never a shift.
                        let h = c.out.forward(id, seq, ts, d.timestamp);
                        convert_into(&mut self.pcm, &d.payload, from_pt, c.pt);
                        RtpPacket {
                            marker: h.marker,
                            payload_type: c.pt,
                            seq: h.seq,
                            timestamp: h.ts,
                            ssrc: c.out.ssrc(),
                            payload: &self.pcm,
                        }
                        .write(&mut self.wire);
                        if c.srtp
                            .as_mut()
                            .is_some_and(|s| s.tx.protect_rtp(&mut self.wire).is_err())
                        {
                            continue;
                        }
                        if c.rtp.try_send_to(&self.wire, remote).is_ok() {
                            c.out.count(self.pcm.len());
                        }
                    }
                    _ => {}
                },
            }
        }
        if gone {
            self.remove_leg(id);
        }
    }

    /// Starts, pauses or resumes the recording of the seat's call.
    fn record(&mut self, seat_id: i64, tenant_id: i64, call_id: &str, on: bool, now: Instant) {
        let Some(c) = self.calls.get_mut(&seat_id) else {
            return;
        };
        match (c.rec.as_mut(), on) {
            (Some(tap), true) => {
                if let Some(since) = tap.paused_since.take() {
                    tap.paused += now.saturating_duration_since(since);
                }
            }
            (Some(tap), false) => {
                tap.paused_since.get_or_insert(now);
            }
            (None, true) => match self.recorder.open(tenant_id, call_id) {
                Some(id) => {
                    c.rec = Some(Tap::new(self.recorder.clone(), id, now));
                }
                None => tracing::error!(call_id, "a call id that cannot name a recording"),
            },
            (None, false) => {}
        }
    }

    /// Audio toward the agent's current leg; it goes out on the next drain.
    /// `marker` starts a talk spurt (the carrier's marker, passed on).
    fn write_to_agent(
        &mut self,
        seat_id: i64,
        payload: &[u8],
        payload_pt: u8,
        marker: bool,
    ) -> Option<LegId> {
        let id = self.current.get(&seat_id).copied()?;
        let l = self.legs.get_mut(&id)?;
        let (Some(mid), Some((pt, kind)), true) = (l.mid, l.pt, l.connected) else {
            return None;
        };
        convert_into(&mut self.pcm, payload, payload_pt, kind);
        let samples = self.pcm.len() as u64;
        if let Some(tx) = l.rtc.direct_api().stream_tx_by_mid(mid, None) {
            tx.write_rtp(
                RtpWrite::new(
                    pt,
                    SeqNo::from(l.seq),
                    l.time as u32,
                    Instant::now(),
                    self.pcm.as_slice(),
                )
                .marker(marker),
            );
        }
        l.seq += 1;
        l.time += samples;
        Some(id)
    }

    fn on_rtp(&mut self, seat_id: i64, packet: &[u8], from: SocketAddr, now: Instant) {
        let Some(c) = self.calls.get_mut(&seat_id) else {
            return;
        };
        // Only from the carrier's negotiated address; once latched, only
        // from that one source. An SRTP packet latches only once its tag
        // has proved it the carrier's.
        let Some(latch) = c.latch.as_mut() else {
            return;
        };
        let mut clear = std::mem::take(&mut self.clear);
        let packet = match c.srtp.as_mut() {
            Some(srtp) => {
                clear.clear();
                clear.extend_from_slice(packet);
                if !latch.allows(from) || srtp.rx.unprotect_rtp(&mut clear).is_err() {
                    self.clear = clear;
                    return;
                }
                clear.as_slice()
            }
            None => packet,
        };
        if !latch.accept(from) {
            self.clear = clear;
            return;
        }
        self.on_carrier_rtp(seat_id, packet, now);
        self.clear = clear;
    }

    /// A packet from the carrier, passed the latch (and decrypted).
    fn on_carrier_rtp(&mut self, seat_id: i64, packet: &[u8], now: Instant) {
        let Some(c) = self.calls.get_mut(&seat_id) else {
            return;
        };
        let Some(p) = RtpPacket::parse(packet) else {
            return;
        };
        c.got_rtp = true;
        c.stats.on_packet(p.seq, p.timestamp, now);
        c.remote_ssrc = Some(p.ssrc);
        if Some(p.payload_type) == c.dtmf_pt {
            if let Some(d) = c.digits_in.handle(p.timestamp, p.payload) {
                let _ = self.notes.send(MediaNote::Digit { seat_id, digit: d });
            }
            return;
        }
        if p.payload_type != 0 && p.payload_type != 8 {
            return;
        }
        // Audio from the far end (early media or the answer) replaces our ringback.
        c.ringback = None;
        if c.held {
            return;
        }
        if let Some(tap) = c.rec.as_mut() {
            tap.feed(
                1,
                p.timestamp,
                p.payload,
                p.payload_type,
                now,
                &mut self.lin,
            );
        }
        if let Some(id) = self.write_to_agent(seat_id, p.payload, p.payload_type, p.marker) {
            self.drain(id);
        }
    }

    /// An RTCP packet on the call's RTCP port: the carrier's reports.
    fn on_rtcp(&mut self, seat_id: i64, packet: &[u8], from: SocketAddr, now: Instant) {
        let Some(c) = self.calls.get_mut(&seat_id) else {
            return;
        };
        let Some(latch) = c.rtcp_latch.as_mut() else {
            return;
        };
        let packet = match c.srtp.as_mut() {
            Some(srtp) => {
                self.clear.clear();
                self.clear.extend_from_slice(packet);
                if !latch.allows(from) || srtp.rx.unprotect_rtcp(&mut self.clear).is_err() {
                    return;
                }
                self.clear.as_slice()
            }
            None => packet,
        };
        if !latch.accept(from) {
            return;
        }
        let Some(packets) = rtcp::parse_compound(packet) else {
            return;
        };
        let ours = c.out.ssrc();
        let now_ntp = rtcp::ntp_from_system(std::time::SystemTime::now());
        for p in packets {
            let reports = match p {
                Rtcp::Sr { info, reports, .. } => {
                    c.last_sr = Some((rtcp::middle32(info.ntp), now));
                    reports
                }
                Rtcp::Rr { reports, .. } => reports,
                _ => continue,
            };
            for b in reports.iter().filter(|b| b.ssrc == ours) {
                if let Some(rtt) = rtcp::rtt(now_ntp, b.lsr, b.dlsr) {
                    c.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                }
            }
        }
    }

    /// Every few seconds of a call: an RTCP report to the carrier (SR when
    /// we have sent, else RR) and the call's quality to the switchboard.
    fn report(&mut self, seat_id: i64, now: Instant) {
        let Some(c) = self.calls.get_mut(&seat_id) else {
            return;
        };
        if now < c.next_report {
            return;
        }
        c.next_report = now + REPORT_EVERY;
        let (packets_in, lost) = (c.stats.packets(), c.stats.lost_packets());
        self.rtp_counters
            .catch_up(&mut c.tally, packets_in, c.out.packets_sent(), lost);
        let Some(rtcp_to) = c.rtcp_latch.as_ref().map(Latch::target) else {
            return;
        };
        let block = c.remote_ssrc.map(|ssrc| {
            let (lsr, dlsr) = c.last_sr.map_or((0, 0), |(lsr, at)| {
                // Delay since the carrier's last SR, in 1/65536 s.
                let d = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
                (lsr, d.min(f64::from(u32::MAX)) as u32)
            });
            c.stats.report_block(ssrc, lsr, dlsr)
        });
        let blocks: &[rtcp::ReportBlock] = block.as_slice();
        let cname = format!("seatline@{}", self.local.ip());
        if c.out.packets_sent() > 0 {
            let info = SenderInfo {
                ntp: rtcp::ntp_from_system(std::time::SystemTime::now()),
                rtp_ts: c.out.ts_at(now),
                packets: c.out.packets_sent(),
                octets: c.out.octets_sent(),
            };
            rtcp::write_sr(&mut self.wire, c.out.ssrc(), &info, blocks, &cname);
        } else {
            rtcp::write_rr(&mut self.wire, c.out.ssrc(), blocks, &cname);
        }
        if c.srtp
            .as_mut()
            .is_none_or(|s| s.tx.protect_rtcp(&mut self.wire).is_ok())
        {
            let _ = c.rtcp.try_send_to(&self.wire, rtcp_to);
        }

        // The call's quality over both legs: the worse loss and jitter of
        // the two, and the two round trips added (agent, us, carrier).
        let mut loss = c.stats.loss_pct();
        let mut jitter = c.stats.jitter_ms();
        let mut rtt = c.rtt_ms.unwrap_or(0.0);
        if let Some(l) = self.current.get(&seat_id).and_then(|id| self.legs.get(id)) {
            loss = loss.max(l.loss_pct);
            jitter = jitter.max(l.jitter_ms);
            rtt += l.rtt_ms;
        }
        if c.stats.packets() > 0 {
            let sample = QualitySample::new(c.stats.packets(), loss, jitter, rtt);
            let _ = self.notes.send(MediaNote::Quality { seat_id, sample });
        }
    }

    fn on_tick(&mut self, now: Instant) {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(50) {
            let seats: Vec<i64> = self
                .calls
                .iter_mut()
                .filter_map(|(s, c)| std::mem::take(&mut c.got_rtp).then_some(*s))
                .collect();
            if !seats.is_empty() {
                let _ = self.notes.send(MediaNote::RtpAlive { seats });
            }
            let (ids, relayed) = self.relays.borrow_mut().take_alive();
            self.rtp_counters.relayed(relayed);
            if !ids.is_empty() {
                let _ = self.notes.send(MediaNote::RelayAlive { ids });
            }
        }
        let ringing: Vec<i64> = self.rings.keys().copied().collect();
        for seat in ringing {
            if let Some(frame) = self.rings.get_mut(&seat).map(|t| t.next_frame(0)) {
                if let Some(id) = self.write_to_agent(seat, &frame, 0, false) {
                    self.drain(id);
                }
            }
        }
        let seats: Vec<i64> = self.calls.keys().copied().collect();
        for seat in seats {
            let frame = self
                .calls
                .get_mut(&seat)
                .and_then(|c| c.ringback.as_mut())
                .map(|tone| tone.next_frame(0));
            if let Some(frame) = frame {
                if let Some(id) = self.write_to_agent(seat, &frame, 0, false) {
                    self.drain(id);
                }
            }
            if let Some(c) = self.calls.get_mut(&seat) {
                send_dtmf_slot(c, &mut self.wire, now);
                send_music_frame(c, &mut self.wire, now);
            }
            self.report(seat, now);
        }
        let due: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(_, l)| l.timeout <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(l) = self.legs.get_mut(&id) {
                let _ = l.rtc.handle_input(Input::Timeout(now));
            }
            self.drain(id);
        }
    }
}

/// 20 ms of waiting music toward the carrier, in the call's codec, on the
/// call's one outgoing stream (the marker where the music starts).
fn send_music_frame(c: &mut CallMedia, wire: &mut Vec<u8>, now: Instant) {
    let (Some(remote), Some(music)) = (c.remote(), c.music.as_mut()) else {
        return;
    };
    let marker = music.starting();
    let frame = music.next_frame(c.pt);
    let h = c.out.local(frame.len() as u32, now, marker);
    send_local(c, wire, remote, h, c.pt, &frame);
}

/// One packet of ours (not the agent's) on the call's stream toward the
/// carrier: written, protected when the trunk is SRTP, sent, counted.
fn send_local(
    c: &mut CallMedia,
    wire: &mut Vec<u8>,
    remote: SocketAddr,
    h: Header,
    payload_type: u8,
    payload: &[u8],
) {
    RtpPacket {
        marker: h.marker,
        payload_type,
        seq: h.seq,
        timestamp: h.ts,
        ssrc: c.out.ssrc(),
        payload,
    }
    .write(wire);
    if c.srtp
        .as_mut()
        .is_some_and(|s| s.tx.protect_rtp(wire).is_err())
    {
        return;
    }
    if c.rtp.try_send_to(wire, remote).is_ok() {
        c.out.count(payload.len());
    }
}

/// One 20 ms slot of a queued DTMF event toward the carrier (RFC 4733).
fn send_dtmf_slot(c: &mut CallMedia, wire: &mut Vec<u8>, now: Instant) {
    let (Some(remote), Some(dpt)) = (c.remote(), c.dtmf_pt) else {
        c.dtmf.clear();
        return;
    };
    let Some((marker, payload)) = c.dtmf.pop_front() else {
        return;
    };
    // The silent slots between digits send nothing: the next digit's first
    // packet starts where the wall clock is by then.
    if payload == [0xff; 4] {
        return;
    }
    // Every packet of one event carries the event's start timestamp.
    let h = if marker {
        c.out.local(160, now, true)
    } else {
        let duration = u16::from_be_bytes([payload[2], payload[3]]);
        c.out.local_same_ts(u32::from(duration), now)
    };
    send_local(c, wire, remote, h, dpt, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun(user: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(user.len() as u16).to_be_bytes());
        attr.extend_from_slice(user.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn a_burst_from_a_thousand_legs_at_once_waits_in_the_webrtc_socket() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tune_webrtc_socket(&sock);
        sock.set_nonblocking(true).unwrap();
        let to = sock.local_addr().unwrap();
        let browser = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // An SRTP packet of 20 ms of G.711, from each of 1,000 legs whose
        // clocks line up, before the worker reads any.
        let packet = [0x80u8; 200];
        for _ in 0..1000 {
            browser.send_to(&packet, to).unwrap();
        }
        let mut buf = [0u8; DATAGRAM];
        let mut got = 0;
        while sock.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        assert_eq!(got, 1000, "datagrams dropped by the socket");
    }

    #[test]
    fn the_stun_username_names_the_leg() {
        assert_eq!(stun_username(&stun("abcd:efgh")), Some("abcd:efgh"));
        assert_eq!(stun_username(&stun("x:y")), Some("x:y"));
    }

    #[test]
    fn anything_else_has_no_username() {
        let m = stun("abcd:efgh");
        // Truncated, not STUN (RTP, DTLS), wrong cookie, attribute past the end.
        assert_eq!(stun_username(&m[..m.len() - 4]), None);
        assert_eq!(stun_username(&[0x80; 40]), None);
        assert_eq!(stun_username(&[22; 40]), None);
        let mut bad = m.clone();
        bad[4] = 0;
        assert_eq!(stun_username(&bad), None);
        let mut long = m.clone();
        long[23] = 200;
        assert_eq!(stun_username(&long), None);
        assert_eq!(stun_username(&[]), None);
    }

    #[test]
    fn laws_convert_into_a_reused_buffer() {
        let mut out = Vec::new();
        convert_into(&mut out, &[0xff, 0x7f], 0, 0);
        assert_eq!(out, vec![0xff, 0x7f]);
        convert_into(&mut out, &[0xff], 0, 8);
        assert_eq!(out, vec![g711::linear_to_alaw(g711::ulaw_to_linear(0xff))]);
    }
}
