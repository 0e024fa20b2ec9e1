//! The media plane: every agent's WebRTC leg (str0m, ICE-lite) and its
//! bridge to the call's RTP leg toward the carrier, spread over workers.
//!
//! Each worker is an OS thread with its own single-threaded runtime. It owns
//! its UDP socket for WebRTC (its own port, named in the SDP answers of its
//! legs), its legs, and the carrier RTP sockets of its calls, so no lock and
//! no cross-thread hop is on the path of a packet. An agent always lands on
//! the same worker (by seat), so the agent leg and the call's carrier leg
//! live together, and a leg that replaces another (a reload, another tab)
//! joins the call where it already is.
//!
//! The control side talks to workers through bounded queues of
//! [`MediaCmd`]s; workers answer with [`MediaNote`]s.

pub mod recorder;
mod relay;
mod worker;

pub use recorder::Recorder;

use crate::metrics::RtpCounters;
use seatline_media::srtp::SrtpKeys;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub type LegId = u64;

/// Commands a worker takes, at most this many waiting for it.
const CMD_QUEUE: usize = 4096;

pub enum MediaCmd {
    /// A tab offers its audio (SDP offer); the answer comes back.
    AddLeg {
        seat_id: i64,
        leg: LegId,
        offer: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    RemoveLeg {
        seat_id: i64,
        leg: LegId,
    },
    /// The call's RTP leg toward the carrier (remote known once answered).
    /// The sockets are handed over: the worker registers them with its own
    /// runtime.
    Bridge {
        seat_id: i64,
        rtp: RtpPair,
        ringback: bool,
    },
    Remote {
        seat_id: i64,
        remote: SocketAddr,
        pt: u8,
        dtmf_pt: Option<u8>,
        /// The leg's SDES keys when the trunk's media is SRTP.
        srtp: Option<SrtpKeys>,
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
    /// The waiting music toward the carrier of the call bridged at
    /// `seat_id` (a waiting call's key).
    Music {
        seat_id: i64,
        on: bool,
        /// The tenant's own music (8 kHz samples); none: the built-in tune.
        clip: Option<std::sync::Arc<[i16]>>,
    },
    /// Tell the waiting caller bridged at `seat_id` their place in the
    /// queue and expected wait, in `lang`, over its music, then the music
    /// again (the worker puts the words together, off the control side).
    Announce {
        seat_id: i64,
        lang: seatline_media::announce::Lang,
        position: u32,
        minutes: Option<u32>,
    },
    /// Record both legs of a forwarded call until its relay stops.
    RecordRelay {
        id: u64,
        tenant_id: i64,
        call_id: String,
    },
    /// Start (or pause) recording the seat's call.
    Record {
        seat_id: i64,
        tenant_id: i64,
        call_id: String,
        on: bool,
    },
    /// A forwarded call's two carrier legs: relay RTP between them.
    Relay {
        id: u64,
        a: RtpPair,
        b: RtpPair,
    },
    RelayRemote {
        id: u64,
        leg: u8,
        remote: SocketAddr,
        pt: u8,
        dtmf_pt: Option<u8>,
        srtp: Option<SrtpKeys>,
    },
    Unrelay {
        id: u64,
    },
}

impl MediaCmd {
    /// Which worker takes it: the agent's seat, or a relay's id.
    fn key(&self) -> i64 {
        match self {
            MediaCmd::Relay { id, .. }
            | MediaCmd::RelayRemote { id, .. }
            | MediaCmd::Unrelay { id }
            | MediaCmd::RecordRelay { id, .. } => *id as i64,
            MediaCmd::AddLeg { seat_id, .. }
            | MediaCmd::RemoveLeg { seat_id, .. }
            | MediaCmd::Bridge { seat_id, .. }
            | MediaCmd::Remote { seat_id, .. }
            | MediaCmd::Ringback { seat_id, .. }
            | MediaCmd::Unbridge { seat_id }
            | MediaCmd::Ring { seat_id, .. }
            | MediaCmd::Dtmf { seat_id, .. }
            | MediaCmd::Mute { seat_id, .. }
            | MediaCmd::Hold { seat_id, .. }
            | MediaCmd::Music { seat_id, .. }
            | MediaCmd::Announce { seat_id, .. }
            | MediaCmd::Record { seat_id, .. } => *seat_id,
        }
    }
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
    /// Forwarded calls whose relay passed RTP in the last second.
    RelayAlive {
        ids: Vec<u64>,
    },
    /// The call's quality over both legs, every few seconds while it lasts.
    Quality {
        seat_id: i64,
        sample: seatline_media::quality::QualitySample,
    },
}

/// A call's RTP socket toward the carrier and its RTCP socket, on adjacent
/// ports (RTP even, RTCP the next one: RFC 3550 §11).
#[derive(Debug)]
pub struct RtpPair {
    pub rtp: std::net::UdpSocket,
    pub rtcp: std::net::UdpSocket,
}

/// Where the next RTP port pair is tried: even ports of the system's usual
/// ephemeral range, in turn from a random start, so a pair is found in one
/// try unless that port is taken (the system's own choice of a port is odd
/// half the time, a wasted socket).
static NEXT_RTP_PORT: std::sync::OnceLock<std::sync::atomic::AtomicU32> =
    std::sync::OnceLock::new();
const RTP_PORTS: std::ops::Range<u32> = 32_768..61_000;

fn next_even_port() -> u16 {
    let span = (RTP_PORTS.end - RTP_PORTS.start) / 2;
    // From a random start, so that two processes on one machine do not
    // walk the same ports.
    let n = NEXT_RTP_PORT
        .get_or_init(|| std::sync::atomic::AtomicU32::new(rand::random::<u32>() % span))
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (RTP_PORTS.start + (n % span) * 2) as u16
}

impl RtpPair {
    /// Binds an even port and the odd one after it on `ip`.
    pub fn bind(ip: std::net::IpAddr) -> std::io::Result<RtpPair> {
        let mut last = None;
        for _ in 0..64 {
            let port = next_even_port();
            let rtp = match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => s,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match std::net::UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
                Ok(rtcp) => {
                    rtp.set_nonblocking(true)?;
                    rtcp.set_nonblocking(true)?;
                    return Ok(RtpPair { rtp, rtcp });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free pair of RTP ports")))
    }

    pub fn port(&self) -> std::io::Result<u16> {
        Ok(self.rtp.local_addr()?.port())
    }

    pub fn try_clone(&self) -> std::io::Result<RtpPair> {
        Ok(RtpPair {
            rtp: self.rtp.try_clone()?,
            rtcp: self.rtcp.try_clone()?,
        })
    }
}

#[derive(Clone)]
pub struct MediaHandle {
    workers: Vec<mpsc::Sender<MediaCmd>>,
    /// Carrier-side RTP packets, every worker's.
    rtp: Arc<RtpCounters>,
}

impl MediaHandle {
    /// A handle whose commands go to the returned receiver (tests of the shells).
    pub fn detached() -> (MediaHandle, mpsc::Receiver<MediaCmd>) {
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let rtp = Arc::default();
        (
            MediaHandle {
                workers: vec![tx],
                rtp,
            },
            rx,
        )
    }

    /// Carrier-side RTP packets so far, for the metrics.
    pub fn rtp_counters(&self) -> &RtpCounters {
        &self.rtp
    }

    /// The worker that owns this agent's legs and calls.
    fn worker_of(&self, seat_id: i64) -> &mpsc::Sender<MediaCmd> {
        let i = seat_id.rem_euclid(self.workers.len() as i64) as usize;
        &self.workers[i]
    }

    /// Queues a command for the agent's worker. The control side never
    /// waits on media: a worker so far behind that its queue is full has
    /// the command dropped, and that is logged.
    pub fn send(&self, cmd: MediaCmd) {
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.worker_of(cmd.key()).try_send(cmd) {
            tracing::error!(key = cmd.key(), "media worker queue full: command dropped");
        }
    }

    pub async fn add_leg(&self, seat_id: i64, leg: LegId, offer: String) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        let cmd = MediaCmd::AddLeg {
            seat_id,
            leg,
            offer,
            reply,
        };
        self.worker_of(seat_id)
            .send(cmd)
            .await
            .map_err(|_| "media is not running".to_string())?;
        rx.await.map_err(|_| "media is not running".to_string())?
    }
}

/// Starts `workers` media workers (0: one per core). Each binds its own UDP
/// port for WebRTC: `listen`'s port plus its index, or any free port when
/// `listen`'s port is 0.
pub async fn start(
    listen: SocketAddr,
    public_ip: Option<std::net::IpAddr>,
    workers: usize,
    recorder: Recorder,
) -> anyhow::Result<(MediaHandle, mpsc::UnboundedReceiver<MediaNote>)> {
    let n = if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        workers
    };
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    let mut txs = Vec::with_capacity(n);
    let rtp = Arc::<RtpCounters>::default();
    for i in 0..n {
        let port = if listen.port() == 0 {
            0
        } else {
            listen
                .port()
                .checked_add(i as u16)
                .ok_or_else(|| anyhow::anyhow!("media ports past 65535"))?
        };
        let sock = UdpSocket::bind(SocketAddr::new(listen.ip(), port))
            .await?
            .into_std()?;
        let local = sock.local_addr()?;
        let candidate = SocketAddr::new(public_ip.unwrap_or(local.ip()), local.port());
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        txs.push(tx);
        worker::spawn(
            i,
            sock,
            candidate,
            rx,
            note_tx.clone(),
            rtp.clone(),
            recorder.clone(),
        )?;
    }
    Ok((MediaHandle { workers: txs, rtp }, note_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_pairs_are_an_even_port_and_the_next_and_a_taken_port_is_passed_by() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let a = RtpPair::bind(ip).unwrap();
        let port = a.port().unwrap();
        assert_eq!(port % 2, 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), port + 1);
        // The next even port is taken by someone else: it is passed by.
        let next = next_even_port();
        // (Bound here, or held by another process: taken either way.)
        let _squatter = std::net::UdpSocket::bind((ip, next + 2)).ok();
        let b = RtpPair::bind(ip).unwrap();
        let got = b.port().unwrap();
        assert_eq!(got % 2, 0);
        assert_ne!(got, next + 2);
        assert_ne!(got, port);
    }
}
