//! Generated tones in 20 ms G.711 frames: a sum of sine waves with an
//! on/off cadence (ringback) or steady (the sandbox's 1 kHz test tone).

pub const FRAME: usize = 160; // 20 ms at 8 kHz

#[derive(Debug, Clone)]
pub struct Tone {
    freqs: Vec<f32>,
    amplitude: f32,
    /// (on, off) in ms; `None` for a steady tone.
    cadence: Option<(u32, u32)>,
    sample: u64,
}

impl Tone {
    /// The North American ringback: 440 + 480 Hz, 2 s on, 4 s off.
    pub fn ringback() -> Self {
        Self {
            freqs: vec![440.0, 480.0],
            amplitude: 4000.0,
            cadence: Some((2000, 4000)),
            sample: 0,
        }
    }

    /// The ring of an inbound call in the agent's ear: 440 + 480 Hz, 1 s on, 2 s off.
    pub fn ring() -> Self {
        Self {
            freqs: vec![440.0, 480.0],
            amplitude: 5000.0,
            cadence: Some((1000, 2000)),
            sample: 0,
        }
    }

    /// A steady tone.
    pub fn steady(freq: f32) -> Self {
        Self {
            freqs: vec![freq],
            amplitude: 8000.0,
            cadence: None,
            sample: 0,
        }
    }

    /// The next 20 ms, as linear samples.
    pub fn next_linear(&mut self) -> [i16; FRAME] {
        let mut out = [0i16; FRAME];
        for v in out.iter_mut() {
            let t = self.sample as f32 / 8000.0;
            let on = match self.cadence {
                None => true,
                Some((on, off)) => ((self.sample / 8) % (on + off) as u64) < (on as u64),
            };
            if on {
                let sum: f32 = self
                    .freqs
                    .iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum();
                *v = (sum * self.amplitude / self.freqs.len() as f32) as i16;
            }
            self.sample += 1;
        }
        out
    }

    /// The next 20 ms encoded for payload type 0 (PCMU) or 8 (PCMA).
    pub fn next_frame(&mut self, pt: u8) -> [u8; FRAME] {
        crate::g711::encode(&self.next_linear(), pt)
    }
}

/// Root-mean-square level of a G.711 frame, 0..32767: how loud it is.
pub fn level(pt: u8, payload: &[u8]) -> f32 {
    if payload.is_empty() {
        return 0.0;
    }
    let sum: f64 = payload
        .iter()
        .map(|b| {
            let s = if pt == 8 {
                crate::g711::alaw_to_linear(*b)
            } else {
                crate::g711::ulaw_to_linear(*b)
            } as f64;
            s * s
        })
        .sum();
    (sum / payload.len() as f64).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_tone_is_loud_and_ringback_has_its_silence() {
        let mut t = Tone::steady(1000.0);
        assert!(level(0, &t.next_frame(0)) > 4000.0);
        let mut r = Tone::ringback();
        let frames: Vec<f32> = (0..300).map(|_| level(8, &r.next_frame(8))).collect();
        assert!(frames[..100].iter().all(|l| *l > 1000.0), "2 s on");
        assert!(frames[100..300].iter().all(|l| *l < 50.0), "4 s off");
    }

    #[test]
    fn a_1khz_tone_crosses_zero_2000_times_a_second() {
        let mut t = Tone::steady(1000.0);
        let samples: Vec<i16> = (0..50).flat_map(|_| t.next_linear()).collect();
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((1990..=2010).contains(&crossings), "{crossings}");
    }
}
