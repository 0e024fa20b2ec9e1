//! The media shell: every agent's WebRTC leg (str0m, ICE-lite, one UDP
//! socket for all legs) and its bridge to the call's RTP leg toward the
//! carrier. G.711 on both sides: packets are relayed, and only re-encoded
//! (μ-law <-> A-law, a table step) when the two sides chose different ones.
//! While an outbound call rings with no early media, the agent hears a
//! ringback tone generated here.
//!
//! The agent leg belongs to the agent, not to the call: it is set up by the
//! tab that holds the audio and outlives calls. A new leg (a reload, another
//! tab taking over) is bridged into the call in progress, so the customer
//! leg never notices.

use seatline_media::dtmf::{digit_packets, DigitReceiver};
use seatline_media::g711;
use seatline_media::rtp::{RtpPacket, RtpSender};
use seatline_media::tone::Tone;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub type LegId = u64;

pub enum MediaCmd {
    /// A tab offers its audio (SDP offer); the answer comes back.
    AddLeg {
        seat_id: i64,
        leg: LegId,
        offer: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    RemoveLeg {
        leg: LegId,
    },
    /// The call's RTP leg toward the carrier (remote known once answered).
    Bridge {
        seat_id: i64,
        rtp: Arc<UdpSocket>,
        ringback: bool,
    },
    Remote {
        seat_id: i64,
        remote: SocketAddr,
        pt: u8,
        dtmf_pt: Option<u8>,
    },
    Ringback {
        seat_id: i64,
        on: bool,
    },
    Unbridge {
        seat_id: i64,
    },
    /// Ring the agent's ear for an inbound call (or stop).
    Ring {
        seat_id: i64,
        on: bool,
    },
    Dtmf {
        seat_id: i64,
        digits: String,
    },
    /// Stop sending the agent's audio (mute) or all audio (hold).
    Mute {
        seat_id: i64,
        on: bool,
    },
    Hold {
        seat_id: i64,
        on: bool,
    },
}

/// What media tells the rest of the server.
#[derive(Debug)]
pub enum MediaNote {
    LegConnected {
        seat_id: i64,
        leg: LegId,
    },
    LegGone {
        seat_id: i64,
        leg: LegId,
    },
    /// A DTMF digit from the carrier side.
    Digit {
        seat_id: i64,
        digit: char,
    },
    /// The agent's connected audio leg went away while it carried the audio.
    AudioLost {
        seat_id: i64,
    },
    /// Seats whose carrier leg sent RTP in the last second (the
    /// switchboard ends calls whose carrier went silent).
    RtpAlive {
        seats: Vec<i64>,
    },
}

#[derive(Clone)]
pub struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCmd>,
    pub addr: SocketAddr,
}

impl MediaHandle {
    /// A handle whose commands go to the returned receiver (tests of the shells).
    pub fn detached() -> (MediaHandle, mpsc::UnboundedReceiver<MediaCmd>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            MediaHandle {
                tx,
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            rx,
        )
    }

    pub fn send(&self, cmd: MediaCmd) {
        let _ = self.tx.send(cmd);
    }

    pub async fn add_leg(&self, seat_id: i64, leg: LegId, offer: String) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        self.send(MediaCmd::AddLeg {
            seat_id,
            leg,
            offer,
            reply,
        });
        rx.await.map_err(|_| "media is not running".to_string())?
    }
}

struct Leg {
    rtc: Rtc,
    seat_id: i64,
    mid: Option<Mid>,
    /// Our audio payload type toward the browser, and its G.711 kind (0 or 8).
    pt: Option<(Pt, u8)>,
    created: Instant,
    connected: bool,
    timeout: Instant,
    /// Media time of the next frame we write to the browser.
    time: u64,
}

struct CallMedia {
    rtp: Arc<UdpSocket>,
    remote: Option<SocketAddr>,
    pt: u8,
    dtmf_pt: Option<u8>,
    sender: RtpSender,
    ringback: Option<Tone>,
    muted: bool,
    held: bool,
    dtmf: VecDeque<(bool, [u8; 4])>,
    dtmf_ts: u32,
    digits_in: DigitReceiver,
    reader: JoinHandle<()>,
    /// RTP came from the carrier since the last liveness report.
    got_rtp: bool,
}

/// A leg that never connects is dropped after this (ICE-lite never gives up by itself).
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn start(
    listen: SocketAddr,
    public_ip: Option<std::net::IpAddr>,
) -> anyhow::Result<(MediaHandle, mpsc::UnboundedReceiver<MediaNote>)> {
    let sock = Arc::new(UdpSocket::bind(listen).await?);
    let local = sock.local_addr()?;
    let candidate = SocketAddr::new(public_ip.unwrap_or(local.ip()), local.port());
    let (tx, rx) = mpsc::unbounded_channel();
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(sock, local, candidate, rx, note_tx));
    Ok((
        MediaHandle {
            tx,
            addr: candidate,
        },
        note_rx,
    ))
}

fn convert(payload: &[u8], from: u8, to: u8) -> Vec<u8> {
    if from == to {
        return payload.to_vec();
    }
    payload
        .iter()
        .map(|b| {
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
        })
        .collect()
}

struct Media {
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    candidate: SocketAddr,
    legs: HashMap<LegId, Leg>,
    /// The leg that plays and captures each agent's audio.
    current: HashMap<i64, LegId>,
    calls: HashMap<i64, CallMedia>,
    /// Inbound calls ringing at an agent: the ring we play them.
    rings: HashMap<i64, Tone>,
    rtp_tx: mpsc::UnboundedSender<(i64, Vec<u8>)>,
    notes: mpsc::UnboundedSender<MediaNote>,
    ticks: u32,
}

async fn run(
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    candidate: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<MediaCmd>,
    notes: mpsc::UnboundedSender<MediaNote>,
) {
    let (rtp_tx, mut rtp_rx) = mpsc::unbounded_channel::<(i64, Vec<u8>)>();
    let mut m = Media {
        sock: sock.clone(),
        local,
        candidate,
        legs: HashMap::new(),
        current: HashMap::new(),
        calls: HashMap::new(),
        rings: HashMap::new(),
        rtp_tx,
        notes,
        ticks: 0,
    };
    let mut buf = vec![0u8; 2000];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let next = m
            .legs
            .values()
            .map(|l| l.timeout)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, source)) = r {
                    m.on_datagram(&buf[..n], source).await;
                }
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                m.on_cmd(cmd).await;
            }
            pkt = rtp_rx.recv() => {
                if let Some((seat, p)) = pkt {
                    m.on_rtp(seat, &p).await;
                }
            }
            _ = tick.tick() => m.on_tick().await,
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                let ids: Vec<LegId> = m.legs.iter().filter(|(_, l)| l.timeout <= now).map(|(id, _)| *id).collect();
                for id in ids {
                    if let Some(l) = m.legs.get_mut(&id) {
                        let _ = l.rtc.handle_input(Input::Timeout(now));
                    }
                    m.drain(id).await;
                }
            }
        }
    }
}

impl Media {
    async fn on_cmd(&mut self, cmd: MediaCmd) {
        match cmd {
            MediaCmd::AddLeg {
                seat_id,
                leg,
                offer,
                reply,
            } => {
                let r = self.add_leg(seat_id, leg, &offer);
                let ok = r.is_ok();
                let _ = reply.send(r);
                if ok {
                    self.drain(leg).await;
                }
            }
            MediaCmd::RemoveLeg { leg } => self.remove_leg(leg),
            MediaCmd::Bridge {
                seat_id,
                rtp,
                ringback,
            } => {
                let tx = self.rtp_tx.clone();
                let reader_sock = rtp.clone();
                let reader = tokio::spawn(async move {
                    let mut buf = vec![0u8; 2000];
                    loop {
                        let Ok((n, _)) = reader_sock.recv_from(&mut buf).await else {
                            return;
                        };
                        if tx.send((seat_id, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                });
                let seed = crate::sandbox::rand_u32();
                let old = self.calls.insert(
                    seat_id,
                    CallMedia {
                        rtp,
                        remote: None,
                        pt: 0,
                        dtmf_pt: None,
                        sender: RtpSender::new(seed, (seed >> 16) as u16, seed.rotate_left(7)),
                        ringback: ringback.then(Tone::ringback),
                        muted: false,
                        held: false,
                        dtmf: VecDeque::new(),
                        dtmf_ts: 0,
                        digits_in: DigitReceiver::default(),
                        reader,
                        got_rtp: false,
                    },
                );
                if let Some(old) = old {
                    old.reader.abort();
                }
            }
            MediaCmd::Remote {
                seat_id,
                remote,
                pt,
                dtmf_pt,
            } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.remote = Some(remote);
                    c.pt = pt;
                    c.dtmf_pt = dtmf_pt;
                }
            }
            MediaCmd::Ringback { seat_id, on } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.ringback = on.then(Tone::ringback);
                }
            }
            MediaCmd::Unbridge { seat_id } => {
                if let Some(c) = self.calls.remove(&seat_id) {
                    c.reader.abort();
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
            MediaCmd::Hold { seat_id, on } => {
                if let Some(c) = self.calls.get_mut(&seat_id) {
                    c.held = on;
                }
            }
        }
    }

    fn add_leg(&mut self, seat_id: i64, leg: LegId, offer: &str) -> Result<String, String> {
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            // The answerer picks the codec: ours come in this order.
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        let cand = Candidate::host(self.candidate, "udp").map_err(|e| e.to_string())?;
        rtc.add_local_candidate(cand);
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| format!("bad SDP offer: {e}"))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| format!("cannot answer: {e}"))?;
        self.legs.insert(
            leg,
            Leg {
                rtc,
                seat_id,
                mid: None,
                pt: None,
                created: now,
                connected: false,
                timeout: now,
                time: 0,
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
        if let Some(mut l) = self.legs.remove(&leg) {
            l.rtc.disconnect();
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
    }

    async fn on_datagram(&mut self, data: &[u8], source: SocketAddr) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let Some(id) = self
            .legs
            .iter()
            .find(|(_, l)| l.rtc.accepts(&input))
            .map(|(id, _)| *id)
        else {
            return;
        };
        if let Some(l) = self.legs.get_mut(&id) {
            let _ = l.rtc.handle_input(input);
        }
        self.drain(id).await;
    }

    /// Runs a leg's outputs until it asks to wait.
    async fn drain(&mut self, id: LegId) {
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
                    let _ = self.sock.send_to(&t.contents, t.destination).await;
                }
                Output::Event(ev) => match ev {
                    Event::MediaAdded(added) => {
                        l.mid = Some(added.mid);
                        if let Some(w) = l.rtc.writer(added.mid) {
                            l.pt = w.payload_params().find_map(|p| match p.spec().codec {
                                Codec::PCMU => Some((p.pt(), 0)),
                                Codec::PCMA => Some((p.pt(), 8)),
                                _ => None,
                            });
                        }
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
                    Event::MediaData(d) => {
                        let seat = l.seat_id;
                        let from_pt = l.pt.map(|p| p.1).unwrap_or(0);
                        if self.current.get(&seat) != Some(&id) {
                            continue;
                        }
                        if let Some(c) = self.calls.get_mut(&seat) {
                            if c.muted || c.held || !c.dtmf.is_empty() {
                                continue;
                            }
                            if let Some(remote) = c.remote {
                                let payload = convert(&d.data, from_pt, c.pt);
                                let mut wire = Vec::with_capacity(12 + payload.len());
                                c.sender
                                    .next(c.pt, false, &payload, payload.len() as u32)
                                    .write(&mut wire);
                                let _ = c.rtp.send_to(&wire, remote).await;
                            }
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

    /// Audio toward the agent's current leg.
    fn write_to_agent(&mut self, seat_id: i64, payload: &[u8], payload_pt: u8) {
        let Some(id) = self.current.get(&seat_id).copied() else {
            return;
        };
        let Some(l) = self.legs.get_mut(&id) else {
            return;
        };
        let (Some(mid), Some((pt, kind)), true) = (l.mid, l.pt, l.connected) else {
            return;
        };
        let data = convert(payload, payload_pt, kind);
        let samples = data.len() as u64;
        if let Some(w) = l.rtc.writer(mid) {
            let _ = w.write(
                pt,
                Instant::now(),
                MediaTime::new(l.time, Frequency::EIGHT_KHZ),
                data,
            );
        }
        l.time += samples;
    }

    async fn on_rtp(&mut self, seat_id: i64, packet: &[u8]) {
        let Some(c) = self.calls.get_mut(&seat_id) else {
            return;
        };
        let Some(p) = RtpPacket::parse(packet) else {
            return;
        };
        c.got_rtp = true;
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
        let (payload, pt) = (p.payload.to_vec(), p.payload_type);
        self.write_to_agent(seat_id, &payload, pt);
        // Only this agent's leg got something to send; the others are
        // drained on their own packets and on the tick.
        if let Some(id) = self.current.get(&seat_id).copied() {
            self.drain(id).await;
        }
    }

    async fn on_tick(&mut self) {
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
        }
        let ringing: Vec<i64> = self.rings.keys().copied().collect();
        for seat in ringing {
            if let Some(frame) = self.rings.get_mut(&seat).map(|t| t.next_frame(0)) {
                self.write_to_agent(seat, &frame, 0);
            }
        }
        let seats: Vec<i64> = self.calls.keys().copied().collect();
        for seat in seats {
            let Some(c) = self.calls.get_mut(&seat) else {
                continue;
            };
            if let Some(tone) = c.ringback.as_mut() {
                let frame = tone.next_frame(0);
                self.write_to_agent(seat, &frame, 0);
            }
            let Some(c) = self.calls.get_mut(&seat) else {
                continue;
            };
            if let (Some(remote), Some(dpt)) = (c.remote, c.dtmf_pt) {
                if let Some((marker, payload)) = c.dtmf.pop_front() {
                    if payload != [0xff; 4] {
                        if marker {
                            c.dtmf_ts = c.sender.timestamp;
                        }
                        // All packets of one event share its start timestamp.
                        let mut wire = Vec::with_capacity(16);
                        let pkt = RtpPacket {
                            marker,
                            payload_type: dpt,
                            seq: c.sender.seq,
                            timestamp: c.dtmf_ts,
                            ssrc: c.sender.ssrc,
                            payload: &payload,
                        };
                        pkt.write(&mut wire);
                        c.sender.seq = c.sender.seq.wrapping_add(1);
                        let _ = c.rtp.send_to(&wire, remote).await;
                    }
                    c.sender.timestamp = c.sender.timestamp.wrapping_add(160);
                }
            } else {
                c.dtmf.clear();
            }
        }
        let ids: Vec<LegId> = self.current.values().copied().collect();
        for id in ids {
            self.drain(id).await;
        }
    }
}
