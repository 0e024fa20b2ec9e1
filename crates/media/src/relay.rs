//! One direction of an RTP relay between two carrier-side legs (a
//! forwarded call): which packets pass, and how they change on the way.
//!
//! A packet passes only from the sending leg's latched source (symmetric
//! RTP, see [`crate::latch`]) and only when it is RTP of the negotiated
//! audio or telephone-event payload types; the telephone-event payload
//! type is renumbered to the receiving leg's, since each leg negotiated its
//! own. Nothing else changes: sequence numbers, timestamps and SSRC pass
//! as the sender made them, so both ends see one stream.

use crate::latch::Latch;
use crate::rtp::RtpPacket;
use std::net::SocketAddr;

/// What one leg negotiated: where its media comes from and goes to, and
/// its telephone-event payload type.
#[derive(Debug)]
pub struct RelayLeg {
    pub latch: Latch,
    pub dtmf_pt: Option<u8>,
}

/// Why a packet did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// From an address other than the leg's latched (or negotiated) one.
    Source,
    /// Not RTP, or a payload type the call did not negotiate.
    NotMedia,
    /// The receiving leg does not know its address yet.
    NoTarget,
}

/// Checks a packet from leg `from_leg` and, if it passes, writes what
/// goes to `to_leg` into `out` (cleared first) and gives its destination.
/// `audio_pt`: the call's one audio payload type (both legs share it: the
/// relay does not transcode).
pub fn pass(
    packet: &[u8],
    source: SocketAddr,
    from_leg: &mut RelayLeg,
    to_leg: Option<&RelayLeg>,
    audio_pt: u8,
    out: &mut Vec<u8>,
) -> Result<SocketAddr, Refused> {
    if !from_leg.latch.accept(source) {
        return Err(Refused::Source);
    }
    let p = RtpPacket::parse(packet).ok_or(Refused::NotMedia)?;
    let to = to_leg.ok_or(Refused::NoTarget)?;
    let pt = if p.payload_type == audio_pt {
        audio_pt
    } else if from_leg.dtmf_pt == Some(p.payload_type) {
        to.dtmf_pt.ok_or(Refused::NotMedia)?
    } else {
        return Err(Refused::NotMedia);
    };
    out.clear();
    out.extend_from_slice(packet);
    out[1] = (out[1] & 0x80) | pt;
    Ok(to.latch.target())
}

/// An RTCP packet from leg `from_leg`: passes unchanged from its latched
/// RTCP source. Returns whether it may be sent on.
pub fn pass_rtcp(packet: &[u8], source: SocketAddr, from_leg_rtcp: &mut Latch) -> bool {
    // RTCP: version 2, a packet type of 200-204 (SR, RR, SDES, BYE, APP).
    packet.len() >= 8
        && packet[0] >> 6 == 2
        && (200..=204).contains(&packet[1])
        && from_leg_rtcp.accept(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn leg(remote: &str, dtmf: Option<u8>) -> RelayLeg {
        RelayLeg {
            latch: Latch::new(addr(remote)),
            dtmf_pt: dtmf,
        }
    }

    fn packet(pt: u8, marker: bool, seq: u16) -> Vec<u8> {
        let mut b = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&160u32.to_be_bytes());
        b.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        b.extend_from_slice(&[0xff; 160]);
        b
    }

    #[test]
    fn audio_passes_unchanged_to_the_other_leg() {
        let (mut a, b) = (
            leg("10.0.0.1:4000", Some(101)),
            leg("10.0.0.2:5000", Some(96)),
        );
        let mut out = Vec::new();
        let pkt = packet(0, true, 7);
        let to = pass(&pkt, addr("10.0.0.1:4000"), &mut a, Some(&b), 0, &mut out).unwrap();
        assert_eq!(to, addr("10.0.0.2:5000"));
        assert_eq!(out, pkt, "sequence, timestamp, SSRC and marker as sent");
    }

    #[test]
    fn telephone_events_take_the_receiving_leg_s_payload_type() {
        let (mut a, b) = (
            leg("10.0.0.1:4000", Some(101)),
            leg("10.0.0.2:5000", Some(96)),
        );
        let mut out = Vec::new();
        let pkt = packet(101, true, 8);
        pass(&pkt, addr("10.0.0.1:4000"), &mut a, Some(&b), 0, &mut out).unwrap();
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!((p.payload_type, p.marker, p.seq), (96, true, 8));
        // The other leg has none: the event cannot be carried.
        let none = leg("10.0.0.2:5000", None);
        assert_eq!(
            pass(
                &pkt,
                addr("10.0.0.1:4000"),
                &mut a,
                Some(&none),
                0,
                &mut out
            ),
            Err(Refused::NotMedia)
        );
    }

    #[test]
    fn foreign_sources_other_payloads_and_junk_are_refused() {
        let (mut a, b) = (leg("10.0.0.1:4000", None), leg("10.0.0.2:5000", None));
        let mut out = Vec::new();
        // Latches to the first packet from the negotiated IP (port 4002).
        pass(
            &packet(0, false, 1),
            addr("10.0.0.1:4002"),
            &mut a,
            Some(&b),
            0,
            &mut out,
        )
        .unwrap();
        for (pkt, from, why) in [
            (packet(0, false, 2), "10.0.0.9:4000", Refused::Source),
            (packet(0, false, 2), "10.0.0.1:4000", Refused::Source),
            (packet(8, false, 2), "10.0.0.1:4002", Refused::NotMedia),
            (vec![0u8; 5], "10.0.0.1:4002", Refused::NotMedia),
        ] {
            assert_eq!(
                pass(&pkt, addr(from), &mut a, Some(&b), 0, &mut out),
                Err(why)
            );
        }
        assert_eq!(
            pass(
                &packet(0, false, 3),
                addr("10.0.0.1:4002"),
                &mut a,
                None,
                0,
                &mut out
            ),
            Err(Refused::NoTarget)
        );
    }

    #[test]
    fn rtcp_passes_only_from_the_latched_source() {
        let mut l = Latch::new(addr("10.0.0.1:4001"));
        let rr = [0x81, 201, 0, 7, 0, 0, 0, 1];
        assert!(pass_rtcp(&rr, addr("10.0.0.1:4001"), &mut l));
        assert!(!pass_rtcp(&rr, addr("10.0.0.3:4001"), &mut l));
        assert!(!pass_rtcp(
            &[0x80, 0, 0, 0, 1, 2, 3, 4],
            addr("10.0.0.1:4001"),
            &mut l
        ));
    }
}
