//! The waiting music a queued caller hears: a short tune made here, in
//! code, so it ships inside the binary and costs no file and no network.
//! Soft sine notes with a little of their octave, each with a gentle rise
//! and fall so no note clicks, looping every few seconds; quiet enough
//! (about -20 dBFS at its peak) that a caller's own line noise stays
//! below it and no carrier's level control pumps.

use crate::tone::FRAME;

/// The tune: (frequency in Hz, 0 for a rest; length in 20 ms frames).
const TUNE: &[(f32, u32)] = &[
    (523.25, 20), // C5
    (659.25, 20), // E5
    (783.99, 20), // G5
    (659.25, 20), // E5
    (587.33, 20), // D5
    (698.46, 20), // F5
    (880.00, 20), // A5
    (698.46, 20), // F5
    (523.25, 40), // C5
    (0.0, 20),
    (493.88, 20), // B4
    (587.33, 20), // D5
    (783.99, 20), // G5
    (587.33, 20), // D5
    (523.25, 60), // C5
    (0.0, 40),
];

const PEAK: f32 = 3_300.0;
/// Rise and fall of every note, in samples (15 ms).
const EDGE: u32 = 120;

/// The longest music a tenant may give: 5 minutes at 8 kHz.
pub const CLIP_MAX_SAMPLES: usize = 5 * 60 * 8_000;

/// Plays [`TUNE`] (or a tenant's own clip) over and over, 20 ms at a time.
#[derive(Debug, Clone, Default)]
pub struct Music {
    note: usize,
    /// Samples played of the current note (of the clip, with one).
    at: u32,
    /// Frames played since the start.
    frames: u64,
    /// A tenant's own music: 8 kHz linear samples, looped.
    clip: Option<std::sync::Arc<[i16]>>,
    /// Words said over the music's place (an announcement), and how far
    /// they are said; the music goes on where it stopped after them.
    say: Vec<i16>,
    said: usize,
}

impl Music {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tenant's own music (8 kHz mono samples) in place of the tune; an
    /// empty clip plays the tune.
    pub fn with_clip(clip: Option<std::sync::Arc<[i16]>>) -> Self {
        Self {
            clip: clip.filter(|c| !c.is_empty()),
            ..Self::default()
        }
    }

    /// Whether the next frame is the first one (a talk spurt starts).
    pub fn starting(&self) -> bool {
        self.frames == 0
    }

    /// Says `samples` (8 kHz) in place of the music, from the next frame,
    /// cutting short whatever was being said; the music resumes after.
    pub fn announce(&mut self, samples: Vec<i16>) {
        self.say = samples;
        self.said = 0;
    }

    /// Whether words are being said now.
    pub fn announcing(&self) -> bool {
        self.said < self.say.len()
    }

    /// The next 20 ms as linear samples.
    pub fn next_linear(&mut self) -> [i16; FRAME] {
        let mut out = [0i16; FRAME];
        if self.announcing() {
            let end = (self.said + FRAME).min(self.say.len());
            out[..end - self.said].copy_from_slice(&self.say[self.said..end]);
            self.said = end;
            if !self.announcing() {
                self.say = Vec::new();
                self.said = 0;
            }
            self.frames += 1;
            return out;
        }
        if let Some(clip) = &self.clip {
            for v in out.iter_mut() {
                *v = clip[self.at as usize % clip.len()];
                self.at = (self.at + 1) % clip.len() as u32;
            }
            self.frames += 1;
            return out;
        }
        for v in out.iter_mut() {
            let (freq, frames) = TUNE[self.note];
            let len = frames * FRAME as u32;
            if freq > 0.0 {
                let t = self.at as f32 / 8000.0;
                let edge = self.at.min(len - self.at).min(EDGE) as f32 / EDGE as f32;
                let w = 2.0 * std::f32::consts::PI * freq * t;
                let s = w.sin() * 0.8 + (2.0 * w).sin() * 0.2;
                *v = (s * PEAK * edge) as i16;
            }
            self.at += 1;
            if self.at >= len {
                self.at = 0;
                self.note = (self.note + 1) % TUNE.len();
            }
        }
        self.frames += 1;
        out
    }

    /// The next 20 ms encoded for payload type 0 (PCMU) or 8 (PCMA).
    pub fn next_frame(&mut self, pt: u8) -> [u8; FRAME] {
        crate::g711::encode(&self.next_linear(), pt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loop_frames() -> u64 {
        TUNE.iter().map(|&(_, f)| u64::from(f)).sum()
    }

    #[test]
    fn the_tune_is_audible_quiet_and_loops_exactly() {
        let mut m = Music::new();
        assert!(m.starting());
        let first: Vec<[i16; FRAME]> = (0..loop_frames()).map(|_| m.next_linear()).collect();
        assert!(!m.starting());
        let peak = first
            .iter()
            .flatten()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((2_000..=3_300).contains(&peak), "peak {peak}");
        // Rests are silent, notes are not.
        assert!(
            first[9 * 20 + 25].iter().all(|&s| s == 0),
            "the rest after the fourth bar"
        );
        assert!(first[5].iter().any(|&s| s.unsigned_abs() > 1_000));
        // The second time round is the same, sample for sample.
        let again: Vec<[i16; FRAME]> = (0..loop_frames()).map(|_| m.next_linear()).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn notes_start_and_end_softly() {
        let mut m = Music::new();
        let f = m.next_linear();
        // The first sample of a note is silent, and it rises from there.
        assert_eq!(f[0], 0);
        assert!(f[..10].iter().all(|s| s.unsigned_abs() < 300));
    }

    #[test]
    fn a_tenant_clip_plays_in_place_of_the_tune_and_loops_across_frames() {
        // 250 samples: not a whole number of frames.
        let clip: std::sync::Arc<[i16]> = (0..250).map(|i| i as i16 * 10).collect();
        let mut m = Music::with_clip(Some(clip.clone()));
        assert!(m.starting());
        let a = m.next_linear();
        let b = m.next_linear();
        assert!(!m.starting());
        assert_eq!(&a[..], &clip[..160]);
        assert_eq!(&b[..90], &clip[160..]);
        assert_eq!(&b[90..], &clip[..70], "round again without a gap");
        // No clip, or an empty one: the tune.
        let mut tune = Music::new();
        let mut empty = Music::with_clip(Some(Vec::new().into()));
        assert_eq!(tune.next_linear(), empty.next_linear());
    }

    #[test]
    fn an_announcement_takes_the_musics_place_and_the_music_goes_on_where_it_was() {
        let clip: std::sync::Arc<[i16]> = (0..400).map(|i| i as i16).collect();
        let mut m = Music::with_clip(Some(clip.clone()));
        assert_eq!(&m.next_linear()[..], &clip[..160]);
        // 200 samples of words: a frame and a part, the rest silent.
        m.announce(vec![7; 200]);
        assert!(m.announcing());
        assert_eq!(m.next_linear(), [7; FRAME]);
        let f = m.next_linear();
        assert!(!m.announcing());
        assert!(f[..40].iter().all(|&s| s == 7) && f[40..].iter().all(|&s| s == 0));
        assert_eq!(&m.next_linear()[..], &clip[160..320], "the music resumes");
        // A new announcement cuts the one being said short.
        m.announce(vec![1; 400]);
        m.next_linear();
        m.announce(vec![2; 160]);
        assert_eq!(m.next_linear(), [2; FRAME]);
        assert!(!m.announcing());
    }

    #[test]
    fn frames_encode_to_both_laws() {
        let mut a = Music::new();
        let mut b = a.clone();
        let u = a.next_frame(0);
        let l = b.next_frame(8);
        assert_ne!(u, l);
        assert_eq!(u.len(), FRAME);
    }
}
