//! Call recording without I/O: where each direction's audio falls on the
//! recording's timeline, and the two directions mixed into one stereo
//! stream (left: the agent, right: the customer) written in order.
//!
//! The two directions arrive independently, each with its own RTP clock,
//! and a packet can come late. Each packet is placed by its own RTP
//! timestamp, anchored to its arrival: a lost packet leaves silence where
//! it was, a late one still lands in its place. A timestamp that strays
//! more than [`MAX_SKEW`] from the arrival time (a new sender after an
//! agent's audio leg was replaced, a forged jump, clock drift) anchors
//! again at its arrival, so no packet can move audio far from when it was
//! heard, and the buffer stays bounded by [`WINDOW`].

/// G.711's clock: samples per second.
pub const RATE: u32 = 8000;

/// How far (samples) a packet's timestamp may place it from its arrival
/// before the direction anchors again (300 ms).
pub const MAX_SKEW: u64 = 2400;

/// Samples kept unwritten for late packets of either direction (500 ms).
pub const HOLD_BACK: usize = 4000;

/// The most samples the mixer buffers (10 s); audio placed beyond is dropped.
pub const WINDOW: usize = 80_000;

/// One direction's mapping from RTP timestamps to recording positions.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// An RTP timestamp and the position it was placed at.
    anchor: Option<(u32, u64)>,
}

impl Timeline {
    /// Where a packet with RTP timestamp `ts`, arriving `arrival` samples
    /// after the recording began, starts on the recording.
    pub fn place(&mut self, ts: u32, arrival: u64) -> u64 {
        if let Some((anchor_ts, anchor_pos)) = self.anchor {
            let delta = i64::from(ts.wrapping_sub(anchor_ts) as i32);
            let pos = anchor_pos as i64 + delta;
            if pos >= 0 && pos.abs_diff(arrival as i64) <= MAX_SKEW {
                return pos as u64;
            }
        }
        self.anchor = Some((ts, arrival));
        arrival
    }
}

/// The two directions mixed into interleaved stereo, in order.
#[derive(Debug, Default)]
pub struct StereoMixer {
    /// Position of `buf[0]`: everything before it was taken.
    base: u64,
    buf: std::collections::VecDeque<[i16; 2]>,
    /// Samples dropped: too late (already taken) or too far ahead.
    dropped: u64,
}

impl StereoMixer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `pcm` on channel `ch` (0 or 1) from position `pos`; what falls
    /// before the part already taken, or beyond the window, is dropped.
    pub fn put(&mut self, ch: usize, pos: u64, pcm: &[i16]) {
        let ch = ch.min(1);
        let end = pos + pcm.len() as u64;
        if end <= self.base {
            self.dropped += pcm.len() as u64;
            return;
        }
        let skip = self.base.saturating_sub(pos) as usize;
        let start = (pos + skip as u64 - self.base) as usize;
        let want = (end - self.base) as usize;
        if want > WINDOW {
            self.dropped += pcm.len() as u64;
            return;
        }
        self.dropped += skip as u64;
        if self.buf.len() < want {
            self.buf.resize(want, [0, 0]);
        }
        for (i, s) in pcm[skip..].iter().enumerate() {
            self.buf[start + i][ch] = *s;
        }
    }

    /// Moves the samples that no late packet can change any more (all but
    /// the last [`HOLD_BACK`]) into `out`, interleaved left/right.
    pub fn take_ready(&mut self, out: &mut Vec<i16>) {
        let n = self.buf.len().saturating_sub(HOLD_BACK);
        self.take(n, out);
    }

    /// Moves everything buffered into `out` (the recording ends).
    pub fn take_all(&mut self, out: &mut Vec<i16>) {
        self.take(self.buf.len(), out);
    }

    fn take(&mut self, n: usize, out: &mut Vec<i16>) {
        out.reserve(n * 2);
        for [l, r] in self.buf.drain(..n) {
            out.push(l);
            out.push(r);
        }
        self.base += n as u64;
    }

    /// Samples dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Samples taken so far (per channel): the recording's length.
    pub fn taken(&self) -> u64 {
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_follow_their_timestamps_and_a_lost_one_leaves_a_gap() {
        let mut t = Timeline::default();
        assert_eq!(t.place(1000, 0), 0);
        // Late arrival does not shift it: its timestamp places it.
        assert_eq!(t.place(1160, 400), 160);
        // 1320 lost; 1480 comes on time and lands after the gap.
        assert_eq!(t.place(1480, 480), 480);
        // Timestamps wrap around.
        let mut t = Timeline::default();
        assert_eq!(t.place(u32::MAX - 79, 100), 100);
        assert_eq!(t.place(80, 260), 260);
    }

    #[test]
    fn a_jump_in_timestamps_anchors_again_at_arrival() {
        let mut t = Timeline::default();
        assert_eq!(t.place(0, 0), 0);
        // A new sender (another audio leg) starts from a random timestamp.
        assert_eq!(t.place(3_000_000_000, 8000), 8000);
        assert_eq!(t.place(3_000_000_160, 8160), 8160);
        // A forged far-future timestamp cannot place audio far ahead.
        assert_eq!(t.place(3_100_000_000, 8320), 8320);
        // Nor before the recording began.
        let mut t = Timeline::default();
        assert_eq!(t.place(100_000, 100), 100);
        assert_eq!(t.place(99_000, 200), 200);
    }

    #[test]
    fn two_directions_interleave_with_silence_where_one_is_missing() {
        let mut m = StereoMixer::new();
        m.put(0, 0, &[1, 2, 3, 4]);
        m.put(1, 2, &[9, 9, 9, 9]);
        let mut out = Vec::new();
        m.take_all(&mut out);
        assert_eq!(out, vec![1, 0, 2, 0, 3, 9, 4, 9, 0, 9, 0, 9]);
        assert_eq!(m.taken(), 6);
    }

    #[test]
    fn only_what_late_packets_cannot_change_is_taken_and_later_ones_are_dropped() {
        let mut m = StereoMixer::new();
        let frame = [7i16; 160];
        for i in 0..50 {
            m.put(0, i * 160, &frame);
        }
        let mut out = Vec::new();
        m.take_ready(&mut out);
        assert_eq!(out.len(), (50 * 160 - HOLD_BACK) * 2);
        // A packet for a part already written is dropped, not misplaced.
        m.put(1, 0, &frame);
        assert_eq!(m.dropped(), 160);
        // One straddling the edge keeps its tail.
        let edge = m.taken() - 10;
        m.put(1, edge, &[5; 20]);
        assert_eq!(m.dropped(), 170);
        let mut rest = Vec::new();
        m.take_all(&mut rest);
        assert_eq!(&rest[..4], &[7, 5, 7, 5]);
        assert_eq!(rest[21], 0);
    }

    #[test]
    fn audio_beyond_the_window_is_dropped() {
        let mut m = StereoMixer::new();
        m.put(0, WINDOW as u64, &[1; 160]);
        assert_eq!(m.dropped(), 160);
        let mut out = Vec::new();
        m.take_all(&mut out);
        assert!(out.is_empty());
    }
}
