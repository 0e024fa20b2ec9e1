//! Call quality as a MOS estimate: the ITU-T G.107 E-model, simplified for
//! G.711 with packet loss concealment.

/// Packetisation delay: 20 ms frames.
const PACKET_MS: f64 = 20.0;
/// G.113 Appendix I: G.711 equipment impairment and loss robustness with PLC.
const IE: f64 = 0.0;
const BPL: f64 = 25.1;
/// G.107 default basic signal-to-noise ratio, less the default simultaneous
/// impairment (R0 - Is).
const R_DEFAULT: f64 = 93.2;

/// `x` made usable: NaN and negative values count as 0.
fn clean(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        0.0
    } else {
        x
    }
}

/// The E-model rating R (0 to 100) for G.711 with PLC under random loss.
fn r_factor(loss_pct: f64, jitter_ms: f64, rtt_ms: f64) -> f64 {
    let ppl = clean(loss_pct).min(100.0);
    // One-way delay: half the round trip, a jitter buffer of twice the
    // jitter, and one packet.
    let d = clean(rtt_ms) / 2.0 + 2.0 * clean(jitter_ms) + PACKET_MS;
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie_eff = IE + (95.0 - IE) * ppl / (ppl + BPL);
    let r = R_DEFAULT - id - ie_eff;
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 100.0)
    }
}

/// Mean opinion score (1 to 4.5, two decimals) of a G.711 call with packet
/// loss concealment, from the loss in percent, the jitter and the round-trip
/// time in milliseconds. NaN or negative inputs count as 0.
pub fn mos_g711(loss_pct: f64, jitter_ms: f64, rtt_ms: f64) -> f64 {
    let r = r_factor(loss_pct, jitter_ms, rtt_ms);
    let mos = if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    };
    (mos * 100.0).round() / 100.0
}

/// One measurement of a stream's quality, with its MOS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySample {
    pub packets: u64,
    pub loss_pct: f64,
    pub jitter_ms: f64,
    pub rtt_ms: f64,
    pub mos: f64,
}

impl QualitySample {
    /// A sample of `packets` packets with the given loss, jitter and round
    /// trip, its MOS from [`mos_g711`].
    pub fn new(packets: u64, loss_pct: f64, jitter_ms: f64, rtt_ms: f64) -> Self {
        Self {
            packets,
            loss_pct,
            jitter_ms,
            rtt_ms,
            mos: mos_g711(loss_pct, jitter_ms, rtt_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_network_is_about_4_4() {
        // Only the 20 ms packet delay: Id = 0.48, R = 92.72.
        assert!((r_factor(0.0, 0.0, 0.0) - 92.72).abs() < 1e-9);
        assert_eq!(mos_g711(0.0, 0.0, 0.0), 4.40);
    }

    #[test]
    fn matches_a_hand_computation() {
        // d = 50 + 20 + 20 = 90 ms: Id = 2.16; Ie_eff = 95 * 2 / 27.1.
        let r = 93.2 - 2.16 - 190.0 / 27.1;
        assert!((r_factor(2.0, 10.0, 100.0) - r).abs() < 1e-9);
        assert_eq!(mos_g711(2.0, 10.0, 100.0), 4.17);
        assert_eq!(mos_g711(1.0, 0.0, 0.0), 4.32);
        assert_eq!(mos_g711(5.0, 0.0, 0.0), 3.90);
    }

    #[test]
    fn loss_and_delay_lower_it() {
        assert!(mos_g711(5.0, 0.0, 0.0) < mos_g711(1.0, 0.0, 0.0));
        assert!(mos_g711(1.0, 0.0, 0.0) < mos_g711(0.0, 0.0, 0.0));
        // Past 177.3 ms one way the delay impairment grows fast.
        assert_eq!(mos_g711(0.0, 0.0, 800.0), 2.91);
        assert!(mos_g711(0.0, 0.0, 800.0) < mos_g711(0.0, 0.0, 300.0) - 1.0);
        assert!(mos_g711(0.0, 80.0, 0.0) < mos_g711(0.0, 10.0, 0.0));
    }

    #[test]
    fn values_clamp() {
        assert_eq!(mos_g711(0.0, 0.0, 10_000.0), 1.0);
        assert_eq!(mos_g711(0.0, f64::INFINITY, 0.0), 1.0);
        assert_eq!(r_factor(0.0, 0.0, 10_000.0), 0.0);
        // Loss above 100 % is 100 %.
        assert_eq!(mos_g711(250.0, 0.0, 0.0), mos_g711(100.0, 0.0, 0.0));
        assert_eq!(mos_g711(f64::INFINITY, 0.0, 0.0), 1.16);
        for l in [0.0, 0.5, 3.0, 20.0, 100.0] {
            for d in [0.0, 50.0, 400.0, 2000.0] {
                let m = mos_g711(l, d / 4.0, d);
                assert!((1.0..=4.5).contains(&m), "{l} {d} {m}");
            }
        }
    }

    #[test]
    fn nan_and_negative_inputs_count_as_zero() {
        let perfect = mos_g711(0.0, 0.0, 0.0);
        assert_eq!(mos_g711(f64::NAN, f64::NAN, f64::NAN), perfect);
        assert_eq!(mos_g711(-5.0, -1.0, -300.0), perfect);
        assert_eq!(mos_g711(-5.0, 10.0, 100.0), mos_g711(0.0, 10.0, 100.0));
        assert_eq!(mos_g711(f64::NEG_INFINITY, 0.0, 0.0), perfect);
    }

    #[test]
    fn a_sample_carries_its_mos() {
        let s = QualitySample::new(1500, 2.0, 10.0, 100.0);
        assert_eq!(
            s,
            QualitySample {
                packets: 1500,
                loss_pct: 2.0,
                jitter_ms: 10.0,
                rtt_ms: 100.0,
                mos: 4.17
            }
        );
    }
}
