//! RTP (RFC 3550) fixed header: read and write.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP packet; `None` for anything else (RTCP, STUN, junk).
    pub fn parse(b: &'a [u8]) -> Option<RtpPacket<'a>> {
        if b.len() < 12 || b[0] >> 6 != 2 {
            return None;
        }
        let pt = b[1] & 0x7f;
        // RTCP shares the port when muxed: payload types 72-76 are RTCP.
        if (72..=76).contains(&pt) {
            return None;
        }
        let cc = (b[0] & 0x0f) as usize;
        let mut start = 12 + 4 * cc;
        if b[0] & 0x10 != 0 {
            if b.len() < start + 4 {
                return None;
            }
            let words = u16::from_be_bytes([b[start + 2], b[start + 3]]) as usize;
            start += 4 + 4 * words;
        }
        let mut end = b.len();
        if b[0] & 0x20 != 0 {
            let pad = *b.last()? as usize;
            end = end.checked_sub(pad)?;
        }
        if start > end {
            return None;
        }
        Some(RtpPacket {
            marker: b[1] & 0x80 != 0,
            payload_type: pt,
            seq: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            payload: &b[start..end],
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push(((self.marker as u8) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// The sending side of one RTP stream: our SSRC, sequence and clock.
#[derive(Debug, Clone)]
pub struct RtpSender {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
}

impl RtpSender {
    pub fn new(ssrc: u32, seq: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            seq,
            timestamp,
        }
    }

    /// The next packet of `samples` samples (160 for 20 ms of G.711).
    pub fn next<'a>(
        &mut self,
        pt: u8,
        marker: bool,
        payload: &'a [u8],
        samples: u32,
    ) -> RtpPacket<'a> {
        let p = RtpPacket {
            marker,
            payload_type: pt,
            seq: self.seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            payload,
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let mut s = RtpSender::new(0xdead_beef, 65535, 4_294_967_200);
        let payload = [0xffu8; 160];
        let mut buf = Vec::new();
        s.next(0, true, &payload, 160).write(&mut buf);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(
            (p.marker, p.payload_type, p.seq, p.ssrc),
            (true, 0, 65535, 0xdead_beef)
        );
        assert_eq!(p.payload.len(), 160);
        let q = s.next(0, false, &payload, 160);
        assert_eq!(
            (q.seq, q.timestamp),
            (0, 4_294_967_200u32.wrapping_add(160))
        );
    }

    #[test]
    fn skips_csrc_extension_and_padding_and_refuses_non_rtp() {
        let mut b = vec![0xb1, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        b.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]); // extension, one word
        b.extend_from_slice(&[1, 2, 3, 0, 0, 3]); // payload 1,2,3 + 3 bytes padding
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.payload, &[1, 2, 3]);
        assert!(RtpPacket::parse(&[0x80, 200, 0, 0]).is_none());
        assert!(RtpPacket::parse(&[0x00; 20]).is_none());
        let mut rtcp = vec![0x80, 0xc8];
        rtcp.extend_from_slice(&[0; 26]);
        assert!(RtpPacket::parse(&rtcp).is_none());
    }
}
