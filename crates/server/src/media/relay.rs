//! The RTP relay of forwarded calls, on a media worker: four sockets per
//! call (each leg's RTP and RTCP), read by one task each. Which packet
//! passes and how it changes is `seatline_media::relay`'s; this only moves
//! the bytes, and unprotects and protects them on the way for a leg that is
//! SRTP (each leg with its own keys, or none).

use super::recorder::Tap;
use super::RtpPair;
use seatline_media::latch::Latch;
use seatline_media::relay::{pass, pass_rtcp, RelayLeg};
use seatline_media::rtp::RtpPacket;
use seatline_media::srtp::{SrtpKeys, SrtpLeg};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

struct Side {
    rtp: Rc<UdpSocket>,
    rtcp: Rc<UdpSocket>,
    /// Known once the call is answered.
    media: Option<RelayLeg>,
    rtcp_latch: Option<Latch>,
    srtp: Option<SrtpLeg>,
}

struct Relay {
    sides: [Side; 2],
    audio_pt: u8,
    readers: Vec<JoinHandle<()>>,
    /// Packets passed, for liveness.
    passed: u64,
    /// Its recording: leg B (the number) on the left, leg A (the caller)
    /// on the right.
    rec: Option<Tap>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

#[derive(Default)]
pub(super) struct Relays {
    relays: HashMap<u64, Relay>,
    wire: Vec<u8>,
    /// A packet from an SRTP leg, decrypted in place.
    clear: Vec<u8>,
    /// Decoded audio for a recording, reused for every packet.
    lin: Vec<i16>,
}

pub(super) type SharedRelays = Rc<RefCell<Relays>>;

fn take(pair: RtpPair) -> std::io::Result<(Rc<UdpSocket>, Rc<UdpSocket>)> {
    Ok((
        Rc::new(UdpSocket::from_std(pair.rtp)?),
        Rc::new(UdpSocket::from_std(pair.rtcp)?),
    ))
}

/// Starts relaying between two legs' sockets (nothing passes until
/// [`remote`] tells each leg's address).
pub(super) fn start(relays: &SharedRelays, id: u64, a: RtpPair, b: RtpPair) {
    let (Ok((a_rtp, a_rtcp)), Ok((b_rtp, b_rtcp))) = (take(a), take(b)) else {
        tracing::error!("cannot take a forwarded call's RTP sockets");
        return;
    };
    let mut readers = Vec::with_capacity(4);
    for (leg, sock, rtcp) in [
        (0, a_rtp.clone(), false),
        (0, a_rtcp.clone(), true),
        (1, b_rtp.clone(), false),
        (1, b_rtcp.clone(), true),
    ] {
        let relays = relays.clone();
        readers.push(tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 2000];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                relays
                    .borrow_mut()
                    .on_packet(id, leg, rtcp, &buf[..n], from);
            }
        }));
    }
    let side = |rtp, rtcp| Side {
        rtp,
        rtcp,
        media: None,
        rtcp_latch: None,
        srtp: None,
    };
    relays.borrow_mut().relays.insert(
        id,
        Relay {
            sides: [side(a_rtp, a_rtcp), side(b_rtp, b_rtcp)],
            audio_pt: 0,
            readers,
            passed: 0,
            rec: None,
        },
    );
}

impl Relays {
    /// Leg `leg` of relay `id` sends to `remote` (RTCP to the next port).
    pub fn remote(
        &mut self,
        id: u64,
        leg: u8,
        remote: SocketAddr,
        pt: u8,
        dtmf_pt: Option<u8>,
        srtp: Option<SrtpKeys>,
    ) {
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        r.audio_pt = pt;
        let side = &mut r.sides[usize::from(leg.min(1))];
        side.media = Some(RelayLeg {
            latch: Latch::new(remote),
            dtmf_pt,
        });
        let rtcp = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        side.rtcp_latch = Some(Latch::new(rtcp));
        SrtpLeg::update(&mut side.srtp, srtp);
    }

    /// Records relay `id` from now until it stops.
    pub fn record(&mut self, id: u64, tap: Tap) {
        if let Some(r) = self.relays.get_mut(&id) {
            r.rec = Some(tap);
        }
    }

    pub fn stop(&mut self, id: u64) {
        self.relays.remove(&id);
    }

    /// Relays that passed packets since the last call, and how many
    /// packets they passed in all; clears the counts.
    pub fn take_alive(&mut self) -> (Vec<u64>, u64) {
        let mut total = 0;
        let ids = self
            .relays
            .iter_mut()
            .filter_map(|(id, r)| {
                let passed = std::mem::take(&mut r.passed);
                total += passed;
                (passed > 0).then_some(*id)
            })
            .collect();
        (ids, total)
    }

    fn on_packet(&mut self, id: u64, leg: usize, rtcp: bool, data: &[u8], from: SocketAddr) {
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        let (this, other) = if leg == 0 {
            let (a, b) = r.sides.split_at_mut(1);
            (&mut a[0], &mut b[0])
        } else {
            let (a, b) = r.sides.split_at_mut(1);
            (&mut b[0], &mut a[0])
        };
        // From an SRTP leg: only an authentic packet from the latched (or
        // negotiated) source goes on, in clear, to the checks below.
        let data = match this.srtp.as_mut() {
            Some(srtp) => {
                let latch = if rtcp {
                    this.rtcp_latch.as_ref()
                } else {
                    this.media.as_ref().map(|m| &m.latch)
                };
                if !latch.is_some_and(|l| l.allows(from)) {
                    return;
                }
                self.clear.clear();
                self.clear.extend_from_slice(data);
                let ok = if rtcp {
                    srtp.rx.unprotect_rtcp(&mut self.clear)
                } else {
                    srtp.rx.unprotect_rtp(&mut self.clear)
                };
                if ok.is_err() {
                    return;
                }
                self.clear.as_slice()
            }
            None => data,
        };
        if rtcp {
            let (Some(latch), Some(target)) = (this.rtcp_latch.as_mut(), other.rtcp_latch.as_ref())
            else {
                return;
            };
            if pass_rtcp(data, from, latch) {
                self.wire.clear();
                self.wire.extend_from_slice(data);
                if other
                    .srtp
                    .as_mut()
                    .is_none_or(|s| s.tx.protect_rtcp(&mut self.wire).is_ok())
                {
                    let _ = other.rtcp.try_send_to(&self.wire, target.target());
                }
            }
            return;
        }
        let Some(media) = this.media.as_mut() else {
            return;
        };
        if let Ok(to) = pass(
            data,
            from,
            media,
            other.media.as_ref(),
            r.audio_pt,
            &mut self.wire,
        ) {
            r.passed += 1;
            if let Some(tap) = r.rec.as_mut() {
                if let Some(p) =
                    RtpPacket::parse(&self.wire).filter(|p| p.payload_type == r.audio_pt)
                {
                    let ch = if leg == 0 { 1 } else { 0 };
                    tap.feed(
                        ch,
                        p.timestamp,
                        p.payload,
                        p.payload_type,
                        std::time::Instant::now(),
                        &mut self.lin,
                    );
                }
            }
            if other
                .srtp
                .as_mut()
                .is_some_and(|s| s.tx.protect_rtp(&mut self.wire).is_err())
            {
                return;
            }
            let _ = other.rtp.try_send_to(&self.wire, to);
        }
    }
}
