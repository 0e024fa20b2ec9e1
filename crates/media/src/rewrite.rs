//! One outgoing RTP stream (one SSRC, one sequence, one clock) made from
//! packets of changing sources: forwarded legs that come and go, and
//! packets we generate ourselves (DTMF events, silence, ringback).
//!
//! Within one source the offsets stay fixed, so a lost packet leaves a gap
//! in both sequence number and timestamp and a reordered packet keeps its
//! place. On a change of source the stream is rebased: the next sequence
//! number, and the last timestamp advanced by the wall-clock time elapsed.

use std::time::{Duration, Instant};

/// A forward jump in sequence numbers larger than this is taken as a
/// restart of the source (RFC 3550 A.1 uses the same bound).
const MAX_DROPOUT: i32 = 3000;
/// A packet older than this many sequence numbers is taken as a restart too.
const MAX_MISORDER: i32 = 100;

/// The header fields chosen for one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Outgoing sequence number.
    pub seq: u16,
    /// Outgoing RTP timestamp.
    pub ts: u32,
    /// The marker bit: first packet of a talk-spurt, source or event.
    pub marker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Nothing sent yet.
    Start,
    Local,
    Forwarded(u64),
}

/// The stream toward a carrier for one call: rewrites sequence numbers and
/// timestamps so the far end sees one continuous source.
///
/// Counting for RTCP is separate: call [`RtpRewriter::count`] for each
/// packet actually sent, with its payload length.
#[derive(Debug, Clone)]
pub struct RtpRewriter {
    ssrc: u32,
    clock_rate: u32,
    source: Source,
    /// Newest packet sent (highest sequence number): its number, its
    /// timestamp and the wall-clock time that timestamp stands for.
    out_seq: u16,
    out_ts: u32,
    out_at: Option<Instant>,
    /// The forwarded source: offsets, first and newest input packet.
    seq_off: u16,
    ts_off: u32,
    in_first: u16,
    in_seq: u16,
    in_ts: u32,
    /// Timestamp step of consecutive packets, and the last step seen.
    frame: Option<u32>,
    last_step: Option<u32>,
    /// The local source: timestamp of the last local packet and how many
    /// samples it covers from there.
    local_ts: u32,
    local_span: u32,
    packets: u32,
    octets: u32,
}

impl RtpRewriter {
    /// A stream with SSRC `ssrc` whose first packet gets sequence number
    /// `seq` and timestamp `ts`; `clock_rate` is the RTP clock in Hz.
    pub fn new(ssrc: u32, seq: u16, ts: u32, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            source: Source::Start,
            out_seq: seq.wrapping_sub(1),
            out_ts: ts,
            out_at: None,
            seq_off: 0,
            ts_off: 0,
            in_first: 0,
            in_seq: 0,
            in_ts: 0,
            frame: None,
            last_step: None,
            local_ts: ts,
            local_span: 0,
            packets: 0,
            octets: 0,
        }
    }

    /// The SSRC of the whole call.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// A packet from source `src` (an opaque id of the leg that produced
    /// it) with its own `seq` and `ts`, arriving at `now`.
    ///
    /// The marker is set on the first packet of a source and when the
    /// timestamp jumps further than the sequence numbers explain (the
    /// source stopped sending in silence): past the frame times the
    /// sequence advance. The frame is the timestamp step between
    /// consecutive packets, learned from the first pair; a smaller step
    /// replaces it, a larger one is a jump and leaves it alone, unless the
    /// same larger step comes twice in a row (a new packet time). OR the incoming marker bit into
    /// the result if the source sets it. A jump of more than 3000 sequence
    /// numbers ahead or 100 back is taken as a new source. Check
    /// [`RtpRewriter::is_late`] first: a packet it refuses would repeat a
    /// sequence number already sent.
    pub fn forward(&mut self, src: u64, seq: u16, ts: u32, now: Instant) -> Header {
        if self.source != Source::Forwarded(src) {
            return self.rebase_forward(src, seq, ts, now);
        }
        let d = seq.wrapping_sub(self.in_seq) as i16 as i32;
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&d) {
            return self.rebase_forward(src, seq, ts, now);
        }
        let out = Header {
            seq: seq.wrapping_add(self.seq_off),
            ts: ts.wrapping_add(self.ts_off),
            marker: false,
        };
        if d <= 0 {
            // Late or repeated: mapped like the others, no marker.
            return out;
        }
        let step = ts.wrapping_sub(self.in_ts) as i32 as i64;
        let mut marker = false;
        if d == 1 && step > 0 {
            let step = step as u32;
            match self.frame {
                None => self.frame = Some(step),
                Some(f) if step <= f || self.last_step == Some(step) => self.frame = Some(step),
                Some(_) => marker = true,
            }
            self.last_step = Some(step);
        } else {
            if let Some(f) = self.frame {
                marker = step > d as i64 * f as i64;
            }
            self.last_step = None;
        }
        self.in_seq = seq;
        self.in_ts = ts;
        self.out_seq = out.seq;
        self.out_ts = out.ts;
        self.out_at = Some(now);
        Header { marker, ..out }
    }

    /// True when `forward(src, seq, ..)` would map to a sequence number
    /// already used by an earlier source: a straggler from before the
    /// current source took over. Drop such packets.
    pub fn is_late(&self, src: u64, seq: u16) -> bool {
        if self.source != Source::Forwarded(src) {
            return false;
        }
        let from_newest = seq.wrapping_sub(self.in_seq) as i16 as i32;
        let from_first = seq.wrapping_sub(self.in_first) as i16 as i32;
        from_newest >= -MAX_MISORDER && from_first < 0
    }

    /// A packet we make ourselves, `samples` long, at `now`; `marker` marks
    /// the start of an event or talk-spurt.
    ///
    /// Consecutive local packets follow each other exactly (timestamp +
    /// samples of the previous one). With `marker` set, the timestamp also
    /// catches up with wall-clock time if there was a pause. The first
    /// local packet after forwarded ones is rebased and always marked.
    pub fn local(&mut self, samples: u32, now: Instant, marker: bool) -> Header {
        let (seq, ts, marker) = if self.source == Source::Local {
            let advance = if marker {
                self.elapsed_samples(now).max(self.local_span)
            } else {
                self.local_span
            };
            (
                self.out_seq.wrapping_add(1),
                self.local_ts.wrapping_add(advance),
                marker,
            )
        } else {
            let (seq, ts) = self.next_start(now);
            (seq, ts, true)
        };
        self.source = Source::Local;
        self.local_ts = ts;
        self.local_span = samples;
        self.out_seq = seq;
        self.out_ts = ts;
        self.out_at = Some(now);
        Header { seq, ts, marker }
    }

    /// Another packet of the same local event (RFC 4733: every packet of a
    /// DTMF event carries the event's start timestamp): the next sequence
    /// number, the previous local packet's timestamp, no marker.
    /// `samples` is the event's duration so far, so the packet after the
    /// event starts that far after it. Without a local packet just before,
    /// this is `local(samples, now, true)`.
    pub fn local_same_ts(&mut self, samples: u32, now: Instant) -> Header {
        if self.source != Source::Local {
            return self.local(samples, now, true);
        }
        self.out_seq = self.out_seq.wrapping_add(1);
        self.local_span = samples;
        Header {
            seq: self.out_seq,
            ts: self.local_ts,
            marker: false,
        }
    }

    /// Counts one packet actually sent with `payload_len` payload octets,
    /// for the sender report (both counters wrap, as RFC 3550 allows).
    pub fn count(&mut self, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
    }

    /// Packets counted with [`RtpRewriter::count`].
    pub fn packets_sent(&self) -> u32 {
        self.packets
    }

    /// Payload octets counted with [`RtpRewriter::count`].
    pub fn octets_sent(&self) -> u32 {
        self.octets
    }

    /// The RTP timestamp of the newest packet sent (the initial timestamp
    /// before any).
    pub fn last_ts(&self) -> u32 {
        self.out_ts
    }

    /// The RTP timestamp that stands for wall-clock time `now`: the newest
    /// packet's timestamp plus the time since. This is what a sender
    /// report made at `now` carries.
    pub fn ts_at(&self, now: Instant) -> u32 {
        match self.out_at {
            Some(at) => self.out_ts.wrapping_add(samples_in(
                now.saturating_duration_since(at),
                self.clock_rate,
            )),
            None => self.out_ts,
        }
    }

    fn rebase_forward(&mut self, src: u64, seq: u16, ts: u32, now: Instant) -> Header {
        let (out_seq, out_ts) = self.next_start(now);
        self.source = Source::Forwarded(src);
        self.seq_off = out_seq.wrapping_sub(seq);
        self.ts_off = out_ts.wrapping_sub(ts);
        self.in_first = seq;
        self.in_seq = seq;
        self.in_ts = ts;
        self.frame = None;
        self.last_step = None;
        self.out_seq = out_seq;
        self.out_ts = out_ts;
        self.out_at = Some(now);
        Header {
            seq: out_seq,
            ts: out_ts,
            marker: true,
        }
    }

    /// Sequence number and timestamp for the first packet of a new source.
    fn next_start(&self, now: Instant) -> (u16, u32) {
        let seq = self.out_seq.wrapping_add(1);
        if self.out_at.is_none() {
            return (seq, self.out_ts);
        }
        let mut advance = self.elapsed_samples(now).max(1);
        if self.source == Source::Local {
            // Do not start inside the last local packet or event.
            advance = advance.max(self.local_span);
        }
        (seq, self.out_ts.wrapping_add(advance))
    }

    fn elapsed_samples(&self, now: Instant) -> u32 {
        match self.out_at {
            Some(at) => samples_in(now.saturating_duration_since(at), self.clock_rate),
            None => 0,
        }
    }
}

/// `d` in samples at `rate` Hz, rounded to the nearest sample (modulo 2^32,
/// like RTP timestamps).
fn samples_in(d: Duration, rate: u32) -> u32 {
    ((d.as_nanos() * rate as u128 + 500_000_000) / 1_000_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Feeds `n` paced packets of source `src` starting at input seq/ts,
    /// 20 ms apart from `start_ms`, and returns the headers.
    fn feed(
        r: &mut RtpRewriter,
        t0: Instant,
        src: u64,
        seq: u16,
        ts: u32,
        start_ms: u64,
        n: u16,
    ) -> Vec<Header> {
        (0..n)
            .map(|i| {
                r.forward(
                    src,
                    seq.wrapping_add(i),
                    ts.wrapping_add(160 * i as u32),
                    at(t0, start_ms + 20 * i as u64),
                )
            })
            .collect()
    }

    #[test]
    fn first_packet_gets_the_initial_numbers_and_a_marker() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(7, 1000, 5000, 8000);
        assert_eq!(r.ssrc(), 7);
        assert_eq!(r.last_ts(), 5000);
        let h = feed(&mut r, t0, 1, 40000, 123_456, 0, 3);
        assert_eq!(
            h,
            vec![
                Header {
                    seq: 1000,
                    ts: 5000,
                    marker: true
                },
                Header {
                    seq: 1001,
                    ts: 5160,
                    marker: false
                },
                Header {
                    seq: 1002,
                    ts: 5320,
                    marker: false
                },
            ]
        );
        assert_eq!(r.last_ts(), 5320);
    }

    #[test]
    fn a_lost_packet_leaves_a_gap_in_both_not_a_shift() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 10, 0, 8000);
        r.forward(1, 500, 8000, at(t0, 0));
        r.forward(1, 501, 8160, at(t0, 20));
        // 502 and 503 lost.
        let h = r.forward(1, 504, 8000 + 4 * 160, at(t0, 80));
        assert_eq!(
            h,
            Header {
                seq: 14,
                ts: 640,
                marker: false
            }
        );
        let h = r.forward(1, 505, 8000 + 5 * 160, at(t0, 100));
        assert_eq!(
            h,
            Header {
                seq: 15,
                ts: 800,
                marker: false
            }
        );
    }

    #[test]
    fn wraps_input_and_output_sequence_and_timestamp() {
        let t0 = Instant::now();
        // Input wraps: seq 65534.. and ts near u32::MAX.
        let mut r = RtpRewriter::new(1, 100, 1000, 8000);
        let h = feed(&mut r, t0, 9, 65534, u32::MAX - 200, 0, 4);
        let seqs: Vec<u16> = h.iter().map(|h| h.seq).collect();
        let tss: Vec<u32> = h.iter().map(|h| h.ts).collect();
        assert_eq!(seqs, vec![100, 101, 102, 103]);
        assert_eq!(tss, vec![1000, 1160, 1320, 1480]);
        assert!(h[1..].iter().all(|h| !h.marker));

        // Output wraps: starts at 65535 and u32::MAX - 100.
        let mut r = RtpRewriter::new(1, 65535, u32::MAX - 100, 8000);
        let h = feed(&mut r, t0, 9, 10, 0, 0, 3);
        assert_eq!(
            h,
            vec![
                Header {
                    seq: 65535,
                    ts: u32::MAX - 100,
                    marker: true
                },
                Header {
                    seq: 0,
                    ts: 59,
                    marker: false
                },
                Header {
                    seq: 1,
                    ts: 219,
                    marker: false
                },
            ]
        );

        // Both wrap at once, with a loss across the wrap.
        let mut r = RtpRewriter::new(1, 65535, u32::MAX, 8000);
        r.forward(3, 65535, u32::MAX - 159, at(t0, 0));
        let h = r.forward(3, 1, 160, at(t0, 40)); // 0 lost
        assert_eq!(
            h,
            Header {
                seq: 1,
                ts: 319,
                marker: false
            }
        );
    }

    #[test]
    fn reordered_packets_keep_their_order_relation() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        let a = r.forward(1, 65534, 1000, at(t0, 0));
        let c = r.forward(1, 0, 1320, at(t0, 40));
        let b = r.forward(1, 65535, 1160, at(t0, 41)); // late, across the wrap
        assert_eq!((a.seq, b.seq, c.seq), (0, 1, 2));
        assert_eq!((a.ts, b.ts, c.ts), (0, 160, 320));
        assert!(!b.marker && !c.marker);
        assert!(!r.is_late(1, 65535));
        // The late one did not move the newest packet.
        assert_eq!(r.last_ts(), 320);
        let d = r.forward(1, 1, 1480, at(t0, 60));
        assert_eq!((d.seq, d.ts, d.marker), (3, 480, false));
        // A duplicate maps to the same numbers again.
        assert_eq!(
            r.forward(1, 1, 1480, at(t0, 61)),
            Header { marker: false, ..d }
        );
    }

    #[test]
    fn a_source_replaced_mid_talk_spurt_continues_seq_and_advances_ts_by_elapsed() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 65534, u32::MAX - 100, 8000);
        feed(&mut r, t0, 1, 7, 70_000, 0, 2); // out seq 65534, 65535
        let last = (u32::MAX - 100).wrapping_add(160);
        assert_eq!(r.last_ts(), last);
        // A reload: the new leg starts from unrelated numbers 130 ms later.
        let h = r.forward(2, 31_000, 9, at(t0, 20 + 130));
        assert_eq!(h.seq, 0);
        assert_eq!(h.ts, last.wrapping_add(130 * 8));
        assert!(h.marker);
        // Then it continues from there, one to one.
        let g = r.forward(2, 31_001, 169, at(t0, 170));
        assert_eq!((g.seq, g.ts.wrapping_sub(h.ts), g.marker), (1, 160, false));
        // Elapsed time is rounded to samples, and is at least one.
        let h2 = r.forward(3, 5, 5, at(t0, 170));
        assert_eq!((h2.seq, h2.ts.wrapping_sub(g.ts), h2.marker), (2, 1, true));
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        r.forward(1, 0, 0, t0);
        let h = r.forward(2, 0, 0, t0 + Duration::from_micros(20_062));
        assert_eq!(h.ts, 160); // 20.062 ms = 160.496 samples -> 160
        let h = r.forward(1, 0, 0, t0 + Duration::from_micros(20_062 + 63));
        assert_eq!(h.ts, 161); // 0.504 samples -> 1
    }

    #[test]
    fn a_straggler_of_the_old_leg_is_a_change_of_source_and_late_ones_are_flagged() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        feed(&mut r, t0, 1, 100, 0, 0, 3);
        feed(&mut r, t0, 2, 500, 0, 60, 2); // out 3, 4
                                            // Packet 499 of the new leg, older than its first: would reuse seq 2.
        assert!(r.is_late(2, 499));
        assert!(!r.is_late(2, 501));
        assert!(!r.is_late(2, 502));
        assert!(!r.is_late(1, 99)); // not the current source
        assert_eq!(r.forward(2, 499, 0u32.wrapping_sub(160), at(t0, 85)).seq, 2);
        // Back to leg 1: rebased again, no repeat of earlier numbers.
        let h = r.forward(1, 103, 480, at(t0, 100));
        assert_eq!((h.seq, h.marker), (5, true));
    }

    #[test]
    fn a_sequence_jump_past_the_bounds_is_a_restart_of_the_source() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        feed(&mut r, t0, 1, 100, 0, 0, 2);
        let h = r.forward(1, 100 + 1 + 3001, 9999, at(t0, 40));
        assert_eq!((h.seq, h.ts, h.marker), (2, 160 + 160, true));
        let h = r.forward(1, 100 + 1 + 3001 - 101, 0, at(t0, 60));
        assert_eq!((h.seq, h.ts, h.marker), (3, 320 + 160, true));
        // Within bounds: a plain gap.
        let h = r.forward(1, 3001 + 3000, 160 * 3000, at(t0, 80));
        assert_eq!((h.seq, h.marker), (3 + 3000, false));
    }

    #[test]
    fn a_timestamp_jump_in_silence_sets_the_marker_once() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        feed(&mut r, t0, 1, 10, 0, 0, 3); // frame learned: 160
                                          // DTX: consecutive seq, timestamp one second further.
        let h = r.forward(1, 13, 320 + 8000, at(t0, 1040));
        assert_eq!((h.seq, h.ts, h.marker), (3, 8320, true));
        let h = r.forward(1, 14, 8480, at(t0, 1060));
        assert_eq!((h.seq, h.ts, h.marker), (4, 8480, false));
        // A loss of two packets: gap in ts matches, no marker.
        let h = r.forward(1, 17, 8480 + 480, at(t0, 1120));
        assert!(!h.marker);
        // A loss and a silence together: marker.
        let h = r.forward(1, 19, 8960 + 320 + 4000, at(t0, 2000));
        assert!(h.marker);
        // The source changes its packet time to 40 ms: one marker, then
        // the new frame is learned.
        let h = r.forward(1, 20, 13_280 + 320, at(t0, 2040));
        assert!(h.marker);
        let h = r.forward(1, 21, 13_600 + 320, at(t0, 2080));
        assert!(!h.marker);
        let h = r.forward(1, 22, 13_920 + 320, at(t0, 2120));
        assert!(!h.marker);
        // Before any frame is known there is nothing to compare with.
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        r.forward(1, 0, 0, t0);
        assert!(!r.forward(1, 2, 50_000, at(t0, 40)).marker);
    }

    #[test]
    fn local_packets_interleaved_with_forwarded_ones() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 200, 10_000, 8000);
        feed(&mut r, t0, 1, 50, 0, 0, 2); // out 200@10000, 201@10160
                                          // Ringback from us 20 ms later.
        let a = r.local(160, at(t0, 40), false);
        assert_eq!(
            a,
            Header {
                seq: 202,
                ts: 10_320,
                marker: true
            }
        );
        let b = r.local(160, at(t0, 61), false); // paced by samples, not clock
        assert_eq!(
            b,
            Header {
                seq: 203,
                ts: 10_480,
                marker: false
            }
        );
        // The leg comes back 20 ms later: rebased after the local packets.
        let c = r.forward(1, 52, 320, at(t0, 81));
        assert_eq!(
            c,
            Header {
                seq: 204,
                ts: 10_640,
                marker: true
            }
        );
        let d = r.forward(1, 53, 480, at(t0, 101));
        assert_eq!(
            d,
            Header {
                seq: 205,
                ts: 10_800,
                marker: false
            }
        );
        // Local again right away: at least one sample further.
        let e = r.local(160, at(t0, 101), true);
        assert_eq!(
            e,
            Header {
                seq: 206,
                ts: 10_801,
                marker: true
            }
        );
        // Output seq and ts only grew.
        let mut prev = (201u16, 10_160u32);
        for h in [a, b, c, d, e] {
            assert_eq!(h.seq, prev.0.wrapping_add(1));
            assert!(h.ts.wrapping_sub(prev.1) as i32 > 0);
            prev = (h.seq, h.ts);
        }
    }

    #[test]
    fn a_dtmf_event_shares_one_timestamp_and_the_next_packet_follows_it() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        feed(&mut r, t0, 1, 0, 0, 0, 1); // out 0@0
        let first = r.local(160, at(t0, 20), true);
        assert_eq!(
            first,
            Header {
                seq: 1,
                ts: 160,
                marker: true
            }
        );
        let mut seqs = vec![first.seq];
        for i in 2..=5u32 {
            let h = r.local_same_ts(160 * i, at(t0, 20 * i as u64));
            assert_eq!((h.ts, h.marker), (160, false));
            seqs.push(h.seq);
        }
        for _ in 0..3 {
            let h = r.local_same_ts(800, at(t0, 100));
            assert_eq!(h.ts, 160);
            seqs.push(h.seq);
        }
        assert_eq!(seqs, (1..=8).collect::<Vec<u16>>());
        assert_eq!(r.last_ts(), 160);
        assert_eq!(r.ts_at(at(t0, 120)), 160 + 800);
        // Audio right after the end packets starts after the whole event.
        let h = r.forward(1, 1, 160, at(t0, 101));
        assert_eq!((h.seq, h.ts, h.marker), (9, 960, true));
        // local_same_ts with no local packet before is a marked local packet.
        let h = r.local_same_ts(160, at(t0, 200));
        assert_eq!((h.seq, h.ts, h.marker), (10, 960 + 99 * 8, true));
    }

    #[test]
    fn a_marked_local_packet_catches_up_with_the_clock_after_a_pause() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        r.local(160, t0, true);
        r.local(160, at(t0, 20), false); // 1@160
        let h = r.local(160, at(t0, 1020), true);
        assert_eq!((h.seq, h.ts, h.marker), (2, 160 + 8000, true));
        // Without a pause, a marker does not move it back.
        let h = r.local(160, at(t0, 1021), true);
        assert_eq!(h.ts, 8160 + 160);
    }

    #[test]
    fn counts_what_the_caller_sends_and_reports_timestamps() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1, 0, 4000, 48_000);
        assert_eq!(r.ts_at(t0), 4000);
        r.forward(1, 0, 0, t0);
        r.count(160);
        r.local(960, at(t0, 20), true);
        r.count(4);
        assert_eq!((r.packets_sent(), r.octets_sent()), (2, 164));
        assert_eq!(r.last_ts(), 4000 + 960);
        assert_eq!(r.ts_at(at(t0, 30)), 4000 + 960 + 480);
        // An Instant earlier than the last packet is no time at all.
        assert_eq!(r.ts_at(t0), 4960);
        let mut r = RtpRewriter::new(1, 0, 0, 8000);
        r.octets = u32::MAX;
        r.count(2);
        assert_eq!(r.octets_sent(), 1);
    }
}
