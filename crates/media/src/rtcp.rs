//! RTCP (RFC 3550): receiver statistics, sender and receiver reports with
//! SDES CNAME, parsing of compound packets, and the NTP arithmetic for
//! round-trip time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RFC 3550 A.1: larger forward jumps are a restart (or junk).
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: older packets than this are a restart (or junk).
const MAX_MISORDER: u16 = 100;
/// At most this many packets in one compound packet we parse.
const MAX_PACKETS: usize = 32;
/// The report count field has 5 bits.
const MAX_BLOCKS: usize = 31;
/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source descriptions (CNAME).
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// Packet type of application-defined packets.
pub const PT_APP: u8 = 204;

/// One reception report block (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost since the start; 24-bit signed on the wire, so written
    /// clamped to -8388608..=8388607.
    pub cumulative_lost: i32,
    /// Extended highest sequence number: wrap cycles in the high 16 bits.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from this source, 0 if none.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// The sender information of an SR (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP time the report was made (see [`ntp_from_system`]).
    pub ntp: u64,
    /// The RTP timestamp for the same instant.
    pub rtp_ts: u32,
    /// Packets sent since the start.
    pub packets: u32,
    /// Payload octets sent since the start.
    pub octets: u32,
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp {
    /// A sender report: who sends, what it sent, what it received.
    Sr {
        ssrc: u32,
        info: SenderInfo,
        reports: Vec<ReportBlock>,
    },
    /// A receiver report.
    Rr {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    /// These sources are leaving.
    Bye { ssrcs: Vec<u32> },
    /// SDES, APP, feedback and the rest, by packet type.
    Other { pt: u8 },
}

/// True when `b` looks like RTCP: version 2 and packet type 200 to 204
/// (how RTCP is told apart from RTP on a shared port, RFC 5761 4).
pub fn is_rtcp(b: &[u8]) -> bool {
    b.len() >= 4 && b[0] >> 6 == 2 && (PT_SR..=PT_APP).contains(&b[1])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_blocks(b: &[u8], count: usize) -> Vec<ReportBlock> {
    (0..count)
        .map(|i| {
            let o = i * 24;
            let lost = be32(b, o + 4);
            ReportBlock {
                ssrc: be32(b, o),
                fraction_lost: (lost >> 24) as u8,
                // Sign-extend the 24-bit field.
                cumulative_lost: ((lost << 8) as i32) >> 8,
                highest_seq: be32(b, o + 8),
                jitter: be32(b, o + 12),
                lsr: be32(b, o + 16),
                dlsr: be32(b, o + 20),
            }
        })
        .collect()
}

/// Parses a compound RTCP packet. `None` when anything is off: empty input,
/// a version other than 2, a length past the end, more report blocks or
/// BYE sources than the packet holds, bad padding (or padding before the
/// last packet), a packet type outside 192..=223, or more than 32 packets.
/// Reduced-size RTCP (not starting with SR or RR, RFC 5506) is accepted.
pub fn parse_compound(b: &[u8]) -> Option<Vec<Rtcp>> {
    if b.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = b;
    while !rest.is_empty() {
        if out.len() == MAX_PACKETS || rest.len() < 4 || rest[0] >> 6 != 2 {
            return None;
        }
        let count = (rest[0] & 0x1f) as usize;
        let pt = rest[1];
        let size = (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1) * 4;
        if size > rest.len() {
            return None;
        }
        let (pkt, next) = rest.split_at(size);
        let mut end = size;
        if pkt[0] & 0x20 != 0 {
            let pad = pkt[size - 1] as usize;
            if !next.is_empty() || pad == 0 || pad > size - 4 {
                return None;
            }
            end -= pad;
        }
        let body = &pkt[4..end];
        let p = match pt {
            PT_SR => {
                if body.len() < 24 + 24 * count {
                    return None;
                }
                Rtcp::Sr {
                    ssrc: be32(body, 0),
                    info: SenderInfo {
                        ntp: (be32(body, 4) as u64) << 32 | be32(body, 8) as u64,
                        rtp_ts: be32(body, 12),
                        packets: be32(body, 16),
                        octets: be32(body, 20),
                    },
                    reports: parse_blocks(&body[24..], count),
                }
            }
            PT_RR => {
                if body.len() < 4 + 24 * count {
                    return None;
                }
                Rtcp::Rr {
                    ssrc: be32(body, 0),
                    reports: parse_blocks(&body[4..], count),
                }
            }
            PT_BYE => {
                if body.len() < 4 * count {
                    return None;
                }
                Rtcp::Bye {
                    ssrcs: (0..count).map(|i| be32(body, 4 * i)).collect(),
                }
            }
            192..=223 => Rtcp::Other { pt },
            _ => return None,
        };
        out.push(p);
        rest = next;
    }
    Some(out)
}

fn push_header(out: &mut Vec<u8>, count: usize, pt: u8, bytes: usize) {
    out.push(0x80 | count as u8);
    out.push(pt);
    out.extend_from_slice(&((bytes / 4 - 1) as u16).to_be_bytes());
}

fn push_block(out: &mut Vec<u8>, r: &ReportBlock) {
    let lost = r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff;
    out.extend_from_slice(&r.ssrc.to_be_bytes());
    out.extend_from_slice(&((r.fraction_lost as u32) << 24 | lost).to_be_bytes());
    for v in [r.highest_seq, r.jitter, r.lsr, r.dlsr] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// An SDES packet with one chunk: our SSRC and CNAME (at most 255 bytes,
/// cut at a character boundary), ended by a null item and padded to 32 bits.
fn push_sdes(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let mut n = cname.len().min(255);
    while !cname.is_char_boundary(n) {
        n -= 1;
    }
    let used = 4 + 2 + n;
    let nulls = 4 - used % 4; // at least one: the end of the item list
    push_header(out, 1, PT_SDES, 4 + used + nulls);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1); // CNAME
    out.push(n as u8);
    out.extend_from_slice(&cname.as_bytes()[..n]);
    out.resize(out.len() + nulls, 0);
}

/// Writes (replacing `out`'s contents) a compound packet: an SR with up to
/// 31 report blocks (the rest are left out) and an SDES CNAME.
pub fn write_sr(
    out: &mut Vec<u8>,
    ssrc: u32,
    info: &SenderInfo,
    reports: &[ReportBlock],
    cname: &str,
) {
    out.clear();
    let reports = &reports[..reports.len().min(MAX_BLOCKS)];
    push_header(out, reports.len(), PT_SR, 4 + 24 + 24 * reports.len());
    for v in [
        ssrc,
        (info.ntp >> 32) as u32,
        info.ntp as u32,
        info.rtp_ts,
        info.packets,
        info.octets,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for r in reports {
        push_block(out, r);
    }
    push_sdes(out, ssrc, cname);
}

/// Writes (replacing `out`'s contents) a compound packet: an RR with up to
/// 31 report blocks (the rest are left out) and an SDES CNAME.
pub fn write_rr(out: &mut Vec<u8>, ssrc: u32, reports: &[ReportBlock], cname: &str) {
    out.clear();
    let reports = &reports[..reports.len().min(MAX_BLOCKS)];
    push_header(out, reports.len(), PT_RR, 4 + 4 + 24 * reports.len());
    out.extend_from_slice(&ssrc.to_be_bytes());
    for r in reports {
        push_block(out, r);
    }
    push_sdes(out, ssrc, cname);
}

/// The 64-bit NTP time of `t`: seconds since 1900 in the high 32 bits
/// (modulo 2^32, so it wraps in 2036 as NTP does), fraction in the low.
pub fn ntp_from_system(t: SystemTime) -> u64 {
    let (before, d) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (false, d),
        Err(e) => (true, e.duration()),
    };
    let units =
        ((d.as_secs() as u128) << 32) | (((d.subsec_nanos() as u128) << 32) / 1_000_000_000);
    let base = (NTP_UNIX_OFFSET as u128) << 32;
    let v = if before {
        base.wrapping_sub(units)
    } else {
        base.wrapping_add(units)
    };
    v as u64
}

/// The middle 32 bits of an NTP time, as LSR and round-trip times use.
pub fn middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block received at `now_ntp` (RFC 3550
/// 6.4.1: A - LSR - DLSR, in 1/65536 s). `None` when the peer has had no SR
/// from us (`lsr` 0) or the result is negative.
pub fn rtt(now_ntp: u64, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let d = middle32(now_ntp).wrapping_sub(lsr).wrapping_sub(dlsr) as i32;
    if d < 0 {
        return None;
    }
    Some(Duration::from_nanos(d as u64 * 1_000_000_000 / 65536))
}

/// Reception statistics of one incoming stream (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    /// Wrap count times 65536.
    cycles: u64,
    base_seq: u16,
    /// A.1: the sequence number that would confirm a restart.
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in timestamp units.
    jitter: f64,
    last: Option<(Instant, u32)>,
}

impl ReceiverStats {
    /// Statistics for a stream whose RTP clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter: 0.0,
            last: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.started = true;
        self.base_seq = seq;
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = None;
        self.received = 0;
        self.expected_prior = 0;
        self.received_prior = 0;
    }

    /// One packet with sequence number `seq` and timestamp `rtp_ts` arrived
    /// at `arrival`. A jump of more than 3000 ahead (or 100 back) is ignored
    /// unless the next packet follows it, which restarts the counts (A.1).
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival: Instant) {
        if !self.started {
            self.init_seq(seq);
        } else {
            let udelta = seq.wrapping_sub(self.max_seq);
            if udelta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                self.max_seq = seq;
            } else if udelta <= u16::MAX - MAX_MISORDER {
                if self.bad_seq == Some(seq) {
                    self.init_seq(seq);
                } else {
                    self.bad_seq = Some(seq.wrapping_add(1));
                    return;
                }
            }
            // Otherwise a duplicate or a reordered packet.
        }
        self.received += 1;
        self.jitter_update(rtp_ts, arrival);
    }

    /// A.8: J += (|D| - J) / 16, D the difference in transit times of this
    /// packet and the one before it, in timestamp units.
    fn jitter_update(&mut self, rtp_ts: u32, arrival: Instant) {
        if let Some((at, ts)) = self.last {
            let secs = if arrival >= at {
                (arrival - at).as_secs_f64()
            } else {
                -(at - arrival).as_secs_f64()
            };
            let d = secs * self.clock_rate as f64 - rtp_ts.wrapping_sub(ts) as i32 as f64;
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.last = Some((arrival, rtp_ts));
    }

    fn extended_max(&self) -> u64 {
        self.cycles + self.max_seq as u64
    }

    fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        self.extended_max() - self.base_seq as u64 + 1
    }

    /// Packets lost since the start; negative with duplicates (A.3).
    fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Packets lost since the start, 0 when duplicates outnumber them.
    pub fn lost_packets(&self) -> u64 {
        self.lost().max(0) as u64
    }

    /// Packets received (duplicates included, as RFC 3550 counts them).
    pub fn packets(&self) -> u64 {
        self.received
    }

    /// Percentage of the expected packets lost since the start (0 with
    /// more duplicates than losses).
    pub fn loss_pct(&self) -> f64 {
        match self.expected() {
            0 => 0.0,
            e => self.lost().max(0) as f64 * 100.0 / e as f64,
        }
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / self.clock_rate as f64
    }

    /// A report block about this stream, whose sender is `ssrc`, and the
    /// start of a new interval for the next block's fraction lost.
    pub fn report_block(&mut self, ssrc: u32, lsr: u32, dlsr: u32) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_max() as u32,
            jitter: self.jitter as u32,
            lsr,
            dlsr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32, cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: 25,
            cumulative_lost,
            highest_seq: 0x0003_fff0,
            jitter: 77,
            lsr: 0xb705_2000,
            dlsr: 0x0005_4000,
        }
    }

    #[test]
    fn sr_and_rr_round_trip_with_sdes_cname() {
        let info = SenderInfo {
            ntp: 0xe8f1_2345_8000_0001,
            rtp_ts: 0xffff_fff0,
            packets: 1234,
            octets: 197_440,
        };
        let blocks = [block(0x1111, 42), block(0x2222, -5)];
        let mut b = vec![9, 9, 9]; // replaced, not appended to
        write_sr(&mut b, 0xabcd, &info, &blocks, "agent7@seatline");
        assert_eq!(b.len() % 4, 0);
        assert!(is_rtcp(&b));
        assert_eq!(b[0], 0x82);
        assert_eq!(
            parse_compound(&b).unwrap(),
            vec![
                Rtcp::Sr {
                    ssrc: 0xabcd,
                    info,
                    reports: blocks.to_vec()
                },
                Rtcp::Other { pt: PT_SDES },
            ]
        );
        // SR is 4 + 24 + 48 bytes; then SDES: header, SSRC, CNAME item, nulls.
        let sdes = &b[76..];
        assert_eq!(&sdes[..4], &[0x81, 202, 0, 6]);
        assert_eq!(&sdes[4..8], &0xabcdu32.to_be_bytes());
        assert_eq!(&sdes[8..10], &[1, 15]);
        assert_eq!(&sdes[10..25], b"agent7@seatline");
        assert_eq!(&sdes[25..], &[0, 0, 0]);

        write_rr(&mut b, 0x5555, &blocks[1..], "x");
        assert_eq!(
            parse_compound(&b).unwrap(),
            vec![
                Rtcp::Rr {
                    ssrc: 0x5555,
                    reports: vec![blocks[1]]
                },
                Rtcp::Other { pt: PT_SDES },
            ]
        );
        // A one-letter CNAME: 4 + 2 + 1 = 7 bytes, one null ends it.
        assert_eq!(b.len(), 32 + 12);
        assert_eq!(
            &b[32..],
            &[0x81, 202, 0, 2, 0, 0, 0x55, 0x55, 1, 1, b'x', 0]
        );
        // A CNAME filling the word exactly still gets a full word of nulls.
        write_rr(&mut b, 1, &[], "ab");
        assert_eq!(b.len(), 8 + 4 + 8 + 4);
        assert_eq!(&b[8 + 4 + 4..], &[1, 2, b'a', b'b', 0, 0, 0, 0]);
        assert_eq!(
            parse_compound(&b).unwrap()[0],
            Rtcp::Rr {
                ssrc: 1,
                reports: vec![]
            }
        );
    }

    #[test]
    fn cumulative_lost_is_24_bit_signed_and_blocks_are_capped_at_31() {
        let blocks: Vec<ReportBlock> = (0..40)
            .map(|i| block(i, [10_000_000, -10_000_000, -1, 0x7f_ffff][i as usize % 4]))
            .collect();
        let mut b = Vec::new();
        write_rr(&mut b, 9, &blocks, "c");
        let Some(v) = parse_compound(&b) else {
            panic!("no parse")
        };
        let Rtcp::Rr { reports, .. } = &v[0] else {
            panic!("not an RR")
        };
        assert_eq!(reports.len(), 31);
        let lost: Vec<i32> = reports[..4].iter().map(|r| r.cumulative_lost).collect();
        assert_eq!(lost, vec![0x7f_ffff, -0x80_0000, -1, 0x7f_ffff]);
        assert!(reports.iter().all(|r| r.fraction_lost == 25));
        // -1 is 0xffffff on the wire next to the fraction.
        assert_eq!(&b[8 + 48 + 4..8 + 48 + 8], &[25, 0xff, 0xff, 0xff]);
        // A long or non-ASCII CNAME is cut at 255 bytes on a char boundary.
        let long = "é".repeat(200);
        write_rr(&mut b, 9, &[], &long);
        assert_eq!(b[8 + 9], 254);
        assert!(parse_compound(&b).is_some());
    }

    #[test]
    fn parses_bye_and_other_packets() {
        // BYE with two sources and a reason, then an APP packet, padded.
        let mut b = vec![0x82, 203, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 3, b'b', b'y', b'e'];
        b.extend_from_slice(&[
            0xa0, 204, 0, 3, 0, 0, 0, 1, b'n', b'a', b'm', b'e', 0, 0, 0, 4,
        ]);
        assert_eq!(
            parse_compound(&b).unwrap(),
            vec![Rtcp::Bye { ssrcs: vec![1, 2] }, Rtcp::Other { pt: PT_APP }]
        );
        // A lone transport feedback packet (reduced-size RTCP) is fine.
        let fb = [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(parse_compound(&fb).unwrap(), vec![Rtcp::Other { pt: 205 }]);
        assert!(!is_rtcp(&fb));
    }

    #[test]
    fn malformed_compounds_are_refused() {
        let mut good = Vec::new();
        write_sr(
            &mut good,
            1,
            &SenderInfo::default(),
            &[block(2, 3)],
            "cname",
        );
        assert!(parse_compound(&good).is_some());
        // Every cut that is not on a packet boundary fails, without panicking.
        let sr_len = 4 + 24 + 24;
        for n in 0..good.len() {
            assert_eq!(
                parse_compound(&good[..n]).is_some(),
                n == sr_len,
                "cut at {n}"
            );
        }
        assert!(parse_compound(&[]).is_none());
        // Bad version.
        let mut v = good.clone();
        v[0] = 0x42;
        assert!(parse_compound(&v).is_none());
        // Bad version in the second packet.
        let mut v = good.clone();
        v[sr_len] &= 0x3f;
        assert!(parse_compound(&v).is_none());
        // Length past the end.
        let mut v = good.clone();
        v[3] += 10;
        assert!(parse_compound(&v).is_none());
        // More report blocks than the packet holds.
        let mut v = good.clone();
        v[0] = 0x82;
        assert!(parse_compound(&v).is_none());
        // An SR too short for its sender info.
        assert!(parse_compound(&[0x80, 200, 0, 1, 0, 0, 0, 1]).is_none());
        // An RR without its SSRC.
        assert!(parse_compound(&[0x80, 201, 0, 0]).is_none());
        // A BYE with more sources than words.
        assert!(parse_compound(&[0x82, 203, 0, 1, 0, 0, 0, 1]).is_none());
        // Not an RTCP packet type (RTP payload type 0 without marker).
        assert!(parse_compound(&[0x80, 0, 0, 1, 0, 0, 0, 1]).is_none());
        // Padding: zero, longer than the packet, or not in the last packet.
        assert!(parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 0]).is_none());
        assert!(parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 5]).is_none());
        let mut v = good.clone();
        v[0] |= 0x20;
        assert!(parse_compound(&v).is_none());
        // Padding that eats into the RR's SSRC.
        assert!(parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 4]).is_none());
        assert!(parse_compound(&[0xa0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4]).is_some());
        // Too many packets.
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        let many: Vec<u8> = rr.iter().copied().cycle().take(8 * 33).collect();
        assert!(parse_compound(&many).is_none());
        assert_eq!(parse_compound(&many[..8 * 32]).unwrap().len(), 32);
        // Junk of every kind does not panic.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 8) as u8
                })
                .collect();
            let _ = parse_compound(&junk);
            let mut j2 = junk.clone();
            if j2.len() >= 4 {
                j2[0] = 0x80 | (j2[0] & 0x3f);
                j2[1] = 200 + j2[1] % 5;
                let _ = parse_compound(&j2);
            }
        }
    }

    #[test]
    fn is_rtcp_tells_rtcp_from_rtp() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 204, 0, 0]));
        assert!(!is_rtcp(&[0x80, 199, 0, 0]));
        assert!(!is_rtcp(&[0x80, 205, 0, 0]));
        assert!(!is_rtcp(&[0x40, 200, 0, 0]));
        assert!(!is_rtcp(&[0x80, 200, 0]));
        assert!(!is_rtcp(&[0x80, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn ntp_time_and_round_trip() {
        assert_eq!(ntp_from_system(UNIX_EPOCH), NTP_UNIX_OFFSET << 32);
        assert_eq!(
            ntp_from_system(UNIX_EPOCH + Duration::from_millis(1500)),
            (NTP_UNIX_OFFSET + 1) << 32 | 0x8000_0000
        );
        assert_eq!(
            ntp_from_system(UNIX_EPOCH - Duration::from_secs(1)),
            (NTP_UNIX_OFFSET - 1) << 32
        );
        // Era 1 starts on 2036-02-07 06:28:16 UTC.
        let era1 = UNIX_EPOCH + Duration::from_secs((1 << 32) - NTP_UNIX_OFFSET);
        assert_eq!(ntp_from_system(era1), 0);
        assert_eq!(middle32(0x1234_5678_9abc_def0), 0x5678_9abc);
        // RFC 3550 6.4.1's example: A 46864.500 s, LSR 46853.125, DLSR 5.250.
        let now = 0xb710_8000u64 << 16;
        assert_eq!(
            rtt(now, 0xb705_2000, 0x0005_4000),
            Some(Duration::from_millis(6125))
        );
        assert_eq!(rtt(now, 0, 0x0005_4000), None);
        assert_eq!(rtt(now, 0xb705_2000, 0x0010_0000), None);
        // Across the wrap of the middle 32 bits.
        let now = 0x0000_8000u64 << 16;
        assert_eq!(
            rtt(now, 0xffff_8000, 0x0000_8000),
            Some(Duration::from_millis(500))
        );
    }

    fn paced(stats: &mut ReceiverStats, t0: Instant, seqs: &[u16]) {
        // Packet n is sent at 20 ms * n and arrives 5 ms later.
        for &s in seqs {
            let n = s.wrapping_sub(seqs[0]) as u64;
            stats.on_packet(
                s,
                (n as u32).wrapping_mul(160).wrapping_add(u32::MAX - 300),
                t0 + Duration::from_millis(20 * n + 5),
            );
        }
    }

    #[test]
    fn a_perfectly_paced_stream_has_no_jitter_and_no_loss() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000);
        assert_eq!((s.loss_pct(), s.jitter_ms(), s.packets()), (0.0, 0.0, 0));
        assert_eq!(s.report_block(1, 0, 0).highest_seq, 0);
        let seqs: Vec<u16> = (0..100).map(|i| 65500u16.wrapping_add(i)).collect();
        paced(&mut s, t0, &seqs);
        assert_eq!(s.packets(), 100);
        assert!(s.jitter_ms() < 1e-6, "{}", s.jitter_ms());
        assert_eq!(s.loss_pct(), 0.0);
        let r = s.report_block(7, 1, 2);
        assert_eq!(
            r,
            ReportBlock {
                ssrc: 7,
                fraction_lost: 0,
                cumulative_lost: 0,
                highest_seq: 65536 + 63,
                jitter: 0,
                lsr: 1,
                dlsr: 2
            }
        );
    }

    #[test]
    fn jitter_matches_a_hand_computation() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000);
        // Sent every 20 ms (160 units); arrivals at 0, 25, 40, 70 ms.
        // D = +40, -40, +80 units: J = 2.5, then 4.84375, then 9.541015625.
        for (i, ms) in [0u64, 25, 40, 70].into_iter().enumerate() {
            s.on_packet(
                10 + i as u16,
                (u32::MAX - 100).wrapping_add(160 * i as u32),
                t0 + Duration::from_millis(ms),
            );
        }
        assert!(
            (s.jitter_ms() - 9.541015625 / 8.0).abs() < 1e-9,
            "{}",
            s.jitter_ms()
        );
        assert_eq!(s.report_block(1, 0, 0).jitter, 9);
        // Arrival times going backwards count as a negative difference.
        let mut s = ReceiverStats::new(8000);
        s.on_packet(1, 0, t0 + Duration::from_millis(10));
        s.on_packet(2, 160, t0);
        assert!((s.jitter_ms() - 240.0 / 16.0 / 8.0).abs() < 1e-9);
    }

    #[test]
    fn loss_with_gaps_across_the_wrap_and_fraction_per_interval() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000);
        // 65530..=65535, 0..=5 but 65533 and 2 lost: 12 expected, 10 received.
        let seqs: Vec<u16> = (0..12u16)
            .map(|i| 65530u16.wrapping_add(i))
            .filter(|&q| q != 65533 && q != 2)
            .collect();
        paced(&mut s, t0, &seqs);
        assert_eq!(s.packets(), 10);
        assert!((s.loss_pct() - 200.0 / 12.0).abs() < 1e-9);
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.highest_seq, 65536 + 5);
        assert_eq!(r.cumulative_lost, 2);
        assert_eq!(r.fraction_lost, (2 * 256 / 12) as u8);
        // Next interval: 6..=13 with 4 of 8 lost.
        for q in [6u16, 8, 10, 13] {
            s.on_packet(q, 0, t0);
        }
        let r = s.report_block(1, 0, 0);
        assert_eq!(
            (r.fraction_lost, r.cumulative_lost, r.highest_seq),
            (128, 6, 65536 + 13)
        );
        // An interval with nothing new reports no loss.
        let r = s.report_block(1, 0, 0);
        assert_eq!((r.fraction_lost, r.cumulative_lost), (0, 6));
        assert!((s.loss_pct() - 600.0 / 20.0).abs() < 1e-9);
    }

    #[test]
    fn reordering_and_duplicates_are_not_wraps_or_losses() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000);
        for q in [65534u16, 0, 65535, 1, 1, 1] {
            s.on_packet(q, 0, t0);
        }
        let r = s.report_block(1, 0, 0);
        assert_eq!(r.highest_seq, 65536 + 1);
        // 4 expected, 6 received: negative loss on the wire, 0 %.
        assert_eq!((r.cumulative_lost, r.fraction_lost), (-2, 0));
        assert_eq!(s.loss_pct(), 0.0);
    }

    #[test]
    fn a_big_jump_counts_only_when_the_next_packet_confirms_it() {
        let t0 = Instant::now();
        let mut s = ReceiverStats::new(8000);
        for q in 100..110u16 {
            s.on_packet(q, 0, t0);
        }
        s.on_packet(30_000, 0, t0); // a stray: ignored
        s.on_packet(110, 0, t0);
        assert_eq!(s.packets(), 11);
        assert_eq!(s.report_block(1, 0, 0).highest_seq, 110);
        // The sender restarted: two in a row restart the counts.
        s.on_packet(40_000, 0, t0);
        s.on_packet(40_001, 0, t0);
        s.on_packet(40_003, 0, t0);
        assert_eq!(s.packets(), 2);
        let r = s.report_block(1, 0, 0);
        assert_eq!((r.highest_seq, r.cumulative_lost), (40_003, 1));
        assert!((s.loss_pct() - 100.0 / 3.0).abs() < 1e-9);
    }
}
