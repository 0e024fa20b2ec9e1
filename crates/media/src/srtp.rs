//! SRTP and SRTCP (RFC 3711) with the two SDES suites trunks use
//! (RFC 4568 §6.2): AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32.
//!
//! The transform is small (AES in counter mode, HMAC-SHA1, the key
//! derivation and a replay window), so it is written here on RustCrypto's
//! `aes`, `ctr` and `hmac`/`sha1` rather than taken from `webrtc-srtp`:
//! that crate returns a freshly allocated `Bytes` per packet and brings in
//! the webrtc-rs runtime stack, while these crates are already in the
//! build (str0m, axum, sqlx use them), are constant-time where it matters
//! (tag comparison) and work in place on the shell's reused buffers.
//!
//! One [`SrtpSender`] protects what we send on a leg, one [`SrtpReceiver`]
//! checks and decrypts what the far end sends; each holds the RTP and the
//! RTCP session keys of its direction. No key derivation rate (KDR 0), no
//! MKI: what the SDP layer accepts.
//!
//! Must never: let a packet that failed its tag or was replayed change any
//! state, or show a key in `Debug` output (keys reach logs that way).

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128;
use ctr::{Ctr128BE, CtrCore};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Master key (16 bytes) and master salt (14 bytes), as SDES carries them.
pub const MASTER_LEN: usize = 30;

/// SRTCP's tag is 80 bits in both suites (RFC 4568 §6.2.2).
const SRTCP_TAG: usize = 10;

/// Packets older than this many indexes behind the newest are refused.
const REPLAY_WINDOW: u64 = 64;

/// The SDES crypto suites we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite named `name` in an `a=crypto` line; `None` for any other.
    pub fn from_name(name: &str) -> Option<Suite> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// Bytes of the SRTP authentication tag.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// A master key and salt. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(pub [u8; MASTER_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// What one SDES-secured leg negotiated: the suite, the key we send with
/// (ours, in our SDP) and the key the far end sends with (theirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: Suite,
    pub send: MasterKey,
    pub recv: MasterKey,
}

/// Why a packet was not protected or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("not an RTP/RTCP packet or too short")]
    Malformed,
    #[error("authentication tag does not match")]
    Auth,
    #[error("replayed or too old")]
    Replay,
}

/// The session keys of one direction of RTP or of RTCP.
#[derive(Clone)]
struct SessionKeys {
    aes: Aes128,
    salt: [u8; 14],
    mac: Hmac<Sha1>,
}

impl SessionKeys {
    /// RFC 3711 §4.3 with KDR 0: `labels` for the encryption key, the
    /// authentication key and the salt (0, 1, 2 for SRTP; 3, 4, 5 for SRTCP).
    fn derive(master: &MasterKey, labels: [u8; 3]) -> SessionKeys {
        let (key, salt) = master.0.split_at(16);
        let prf = Aes128::new(key.try_into().expect("16 bytes"));
        let salt: &[u8; 14] = salt.try_into().expect("14 bytes");
        let mut enc = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut session_salt = [0u8; 14];
        derive_into(&prf, salt, labels[0], &mut enc);
        derive_into(&prf, salt, labels[1], &mut auth);
        derive_into(&prf, salt, labels[2], &mut session_salt);
        SessionKeys {
            aes: Aes128::new(&enc.into()),
            salt: session_salt,
            mac: <Hmac<Sha1> as Mac>::new_from_slice(&auth).expect("HMAC takes any key length"),
        }
    }

    /// XORs the AES-CM keystream of packet `index` of stream `ssrc` into `data`.
    fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        // IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16) (§4.1.1).
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        keystream(&self.aes, &iv, data);
    }

    /// The full HMAC-SHA1 of `parts`, one after the other.
    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// AES-CM with the keyed `aes` from counter block `iv`, XORed into `data`.
fn keystream(aes: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    let core = CtrCore::<Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(aes.clone(), &(*iv).into());
    let mut c = Ctr128BE::<Aes128>::from_core(core);
    c.apply_keystream(data);
}

/// The PRF of §4.3.3: `out` from the master key and `label`, at index 0.
fn derive_into(prf: &Aes128, master_salt: &[u8; 14], label: u8, out: &mut [u8]) {
    // x = (label || index DIV kdr) XOR master salt, with the 56-bit key id
    // at the right of the 112-bit salt; the IV is x * 2^16.
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    keystream(prf, &iv, out);
}

/// Offset of an RTP packet's payload: after the CSRCs and any extension.
fn rtp_header_len(p: &[u8]) -> Option<usize> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let ext = p.get(len..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    (len <= p.len()).then_some(len)
}

/// A window over the last [`REPLAY_WINDOW`] packet indexes.
#[derive(Debug, Clone, Default)]
struct ReplayWindow {
    /// The highest index accepted, if any.
    top: Option<u64>,
    /// Bit i: index `top - i` was accepted.
    seen: u64,
}

impl ReplayWindow {
    fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(top) = self.top else {
            return Ok(());
        };
        if index > top {
            return Ok(());
        }
        let back = top - index;
        if back >= REPLAY_WINDOW || self.seen & (1 << back) != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        match self.top {
            Some(top) if index <= top => self.seen |= 1 << (top - index),
            Some(top) => {
                let ahead = index - top;
                self.seen = if ahead >= REPLAY_WINDOW {
                    1
                } else {
                    (self.seen << ahead) | 1
                };
                self.top = Some(index);
            }
            None => {
                self.top = Some(index);
                self.seen = 1;
            }
        }
    }
}

/// Protects what we send on one leg.
pub struct SrtpSender {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// The rollover counter and last sequence number of our stream.
    roc: u32,
    last_seq: Option<u16>,
    srtcp_index: u32,
}

impl std::fmt::Debug for SrtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSender")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpSender {
    pub fn new(suite: Suite, key: &MasterKey) -> Self {
        Self {
            suite,
            rtp: SessionKeys::derive(key, [0, 1, 2]),
            rtcp: SessionKeys::derive(key, [3, 4, 5]),
            roc: 0,
            last_seq: None,
            srtcp_index: 0,
        }
    }

    /// Encrypts the RTP packet in `packet` in place and appends its tag
    /// (no allocation while `packet` has room for the tag).
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let start = rtp_header_len(packet).ok_or(SrtpError::Malformed)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        if let Some(last) = self.last_seq {
            // Our own sequence numbers only move forward: a big step back
            // is a wrap.
            if seq < last && last - seq > 0x8000 {
                self.roc = self.roc.wrapping_add(1);
            }
        }
        if self.last_seq.is_none_or(|l| seq.wrapping_sub(l) < 0x8000) {
            self.last_seq = Some(seq);
        }
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        self.rtp.apply_keystream(ssrc, index, &mut packet[start..]);
        let tag = self.rtp.tag(&[packet, &self.roc.to_be_bytes()]);
        packet.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        Ok(())
    }

    /// Encrypts the RTCP compound packet in `packet` in place and appends
    /// the E flag with its SRTCP index, and the tag.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let index = self.srtcp_index;
        self.srtcp_index = (self.srtcp_index + 1) & 0x7fff_ffff;
        self.rtcp
            .apply_keystream(ssrc, u64::from(index), &mut packet[8..]);
        packet.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[packet]);
        packet.extend_from_slice(&tag[..SRTCP_TAG]);
        Ok(())
    }
}

/// Checks and decrypts what the far end of one leg sends.
pub struct SrtpReceiver {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// The stream being received: its SSRC, rollover counter, highest
    /// sequence number and replay window. A new SSRC starts afresh (a
    /// carrier that switches streams mid-call starts its new one at ROC 0).
    ssrc: Option<u32>,
    roc: u32,
    s_l: u16,
    replay: ReplayWindow,
    rtcp_replay: ReplayWindow,
}

impl std::fmt::Debug for SrtpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpReceiver")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpReceiver {
    pub fn new(suite: Suite, key: &MasterKey) -> Self {
        Self {
            suite,
            rtp: SessionKeys::derive(key, [0, 1, 2]),
            rtcp: SessionKeys::derive(key, [3, 4, 5]),
            ssrc: None,
            roc: 0,
            s_l: 0,
            replay: ReplayWindow::default(),
            rtcp_replay: ReplayWindow::default(),
        }
    }

    /// The ROC the packet with `seq` belongs to (RFC 3711 Appendix A).
    fn guess_roc(&self, seq: u16) -> u32 {
        let (roc, s_l) = (self.roc, self.s_l);
        if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 && roc > 0 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc.wrapping_add(1)
        } else {
            roc
        }
    }

    /// Checks the SRTP packet in `packet` and, when it is authentic and
    /// new, decrypts it in place and removes its tag. On any error the
    /// packet and the receiver are left as they were.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let body_len = packet
            .len()
            .checked_sub(tag_len)
            .ok_or(SrtpError::Malformed)?;
        let start = rtp_header_len(&packet[..body_len]).ok_or(SrtpError::Malformed)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let same_stream = self.ssrc == Some(ssrc);
        let roc = if same_stream { self.guess_roc(seq) } else { 0 };
        let index = (u64::from(roc) << 16) | u64::from(seq);
        if same_stream {
            self.replay.check(index)?;
        }
        let (body, tag) = packet.split_at(body_len);
        if !self.rtp.verify(&[body, &roc.to_be_bytes()], tag) {
            return Err(SrtpError::Auth);
        }
        if !same_stream {
            self.ssrc = Some(ssrc);
            self.replay = ReplayWindow::default();
            self.roc = 0;
            self.s_l = seq;
        }
        if self.replay.top.is_none_or(|top| index > top) {
            self.roc = roc;
            self.s_l = seq;
        }
        self.replay.accept(index);
        packet.truncate(body_len);
        self.rtp.apply_keystream(ssrc, index, &mut packet[start..]);
        Ok(())
    }

    /// Checks the SRTCP packet in `packet` and, when it is authentic and
    /// new, decrypts it in place and removes its index and tag.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 + 4 + SRTCP_TAG || packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let body_len = packet.len() - SRTCP_TAG;
        let (body, tag) = packet.split_at(body_len);
        let e_index = u32::from_be_bytes(body[body_len - 4..].try_into().expect("4 bytes"));
        let index = u64::from(e_index & 0x7fff_ffff);
        self.rtcp_replay.check(index)?;
        if !self.rtcp.verify(&[body], tag) {
            return Err(SrtpError::Auth);
        }
        self.rtcp_replay.accept(index);
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        packet.truncate(body_len - 4);
        if e_index & 0x8000_0000 != 0 {
            self.rtcp.apply_keystream(ssrc, index, &mut packet[8..]);
        }
        Ok(())
    }
}

/// Both directions of one SRTP leg.
#[derive(Debug)]
pub struct SrtpLeg {
    keys: SrtpKeys,
    pub tx: SrtpSender,
    pub rx: SrtpReceiver,
}

impl SrtpLeg {
    pub fn new(keys: SrtpKeys) -> Self {
        Self {
            tx: SrtpSender::new(keys.suite, &keys.send),
            rx: SrtpReceiver::new(keys.suite, &keys.recv),
            keys,
        }
    }

    /// A leg's SRTP after a (re-)negotiation: unchanged when the keys are
    /// the same (a re-INVITE for hold keeps its rollover counters and
    /// replay windows), each direction rebuilt whose key changed, none
    /// for plain RTP.
    pub fn update(slot: &mut Option<SrtpLeg>, keys: Option<SrtpKeys>) {
        match (slot.as_mut(), keys) {
            (_, None) => *slot = None,
            (Some(leg), Some(keys)) if leg.keys.suite == keys.suite => {
                if leg.keys.send != keys.send {
                    leg.tx = SrtpSender::new(keys.suite, &keys.send);
                }
                if leg.keys.recv != keys.recv {
                    leg.rx = SrtpReceiver::new(keys.suite, &keys.recv);
                }
                leg.keys = keys;
            }
            (_, Some(keys)) => *slot = Some(SrtpLeg::new(keys)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn master(key: &str, salt: &str) -> MasterKey {
        let mut m = [0u8; MASTER_LEN];
        m[..16].copy_from_slice(&hex(key));
        m[16..].copy_from_slice(&hex(salt));
        MasterKey(m)
    }

    #[test]
    fn key_derivation_matches_rfc_3711_appendix_b3() {
        let m = master(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        let (key, salt) = m.0.split_at(16);
        let prf = Aes128::new(key.try_into().unwrap());
        let salt: &[u8; 14] = salt.try_into().unwrap();
        let mut enc = [0u8; 16];
        derive_into(&prf, salt, 0, &mut enc);
        assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut s = [0u8; 14];
        derive_into(&prf, salt, 2, &mut s);
        assert_eq!(s.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 94];
        derive_into(&prf, salt, 1, &mut auth);
        assert_eq!(
            auth.to_vec(),
            hex(
                "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    #[test]
    fn keystream_matches_rfc_3711_appendix_b2() {
        let aes = Aes128::new(
            hex("2B7E151628AED2A6ABF7158809CF4F3C")[..]
                .try_into()
                .unwrap(),
        );
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut out = [0u8; 48];
        keystream(&aes, &iv, &mut out);
        assert_eq!(
            out.to_vec(),
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0xcafe_f00du32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn pair(suite: Suite) -> (SrtpSender, SrtpReceiver) {
        let key = MasterKey(std::array::from_fn(|i| i as u8 * 7 + 3));
        (SrtpSender::new(suite, &key), SrtpReceiver::new(suite, &key))
    }

    #[test]
    fn rtp_round_trips_in_both_suites() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let (mut tx, mut rx) = pair(suite);
            for seq in [65_530u16, 65_531, 65_535, 0, 1, 2] {
                let plain = rtp(seq, &[0x55; 160]);
                let mut wire = Vec::with_capacity(1500);
                wire.extend_from_slice(&plain);
                tx.protect_rtp(&mut wire).unwrap();
                assert_eq!(wire.len(), plain.len() + suite.rtp_tag_len());
                assert_eq!(wire[..12], plain[..12], "the header stays clear");
                assert_ne!(wire[12..172], plain[12..], "the payload is not");
                rx.unprotect_rtp(&mut wire).unwrap();
                assert_eq!(wire, plain, "{suite:?} seq {seq}");
            }
            // After the wrap, both sides are at ROC 1.
            assert_eq!((tx.roc, rx.roc), (1, 1));
        }
    }

    #[test]
    fn replays_forgeries_and_junk_are_dropped_and_change_nothing() {
        let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
        let mut first = rtp(10, &[1; 160]);
        tx.protect_rtp(&mut first).unwrap();
        let mut p = first.clone();
        rx.unprotect_rtp(&mut p).unwrap();
        // The same packet again.
        let mut again = first.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replay));
        assert_eq!(again, first);
        // A flipped payload bit, a flipped tag bit, a flipped header bit.
        for at in [20, first.len() - 1, 5] {
            let mut next = rtp(11, &[1; 160]);
            let mut tx2 = SrtpSender::new(Suite::AesCm128HmacSha1_80, &MasterKey([9; 30]));
            tx2.protect_rtp(&mut next).unwrap();
            let mut bad = first.clone();
            bad[at] ^= 1;
            let kept = bad.clone();
            assert!(rx.unprotect_rtp(&mut bad).is_err(), "bit at {at}");
            assert_eq!(bad, kept, "a refused packet is left as it came");
            // Another key's packet is not ours either.
            assert_eq!(rx.unprotect_rtp(&mut next), Err(SrtpError::Auth));
        }
        // Too short for a header and a tag; not RTP.
        for junk in [vec![], vec![0x80; 15], vec![0u8; 40]] {
            let mut j = junk.clone();
            assert_eq!(rx.unprotect_rtp(&mut j), Err(SrtpError::Malformed));
        }
        // Nothing above moved the window: packet 11 still passes, and an
        // old one (more than 64 behind the newest) does not.
        let mut p11 = rtp(11, &[2; 160]);
        tx.protect_rtp(&mut p11).unwrap();
        rx.unprotect_rtp(&mut p11).unwrap();
        let mut late = rtp(12, &[3; 160]);
        tx.protect_rtp(&mut late).unwrap();
        let mut far = rtp(200, &[3; 160]);
        tx.protect_rtp(&mut far).unwrap();
        rx.unprotect_rtp(&mut far).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut late), Err(SrtpError::Replay));
    }

    #[test]
    fn out_of_order_within_the_window_passes_once() {
        let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_32);
        let mut packets: Vec<Vec<u8>> = (100..110u16)
            .map(|s| {
                let mut p = rtp(s, &[s as u8; 80]);
                tx.protect_rtp(&mut p).unwrap();
                p
            })
            .collect();
        packets.swap(2, 7);
        for p in &packets {
            rx.unprotect_rtp(&mut p.clone()).unwrap();
        }
        for p in &packets {
            assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(SrtpError::Replay));
        }
    }

    #[test]
    fn rtcp_round_trips_and_replays_are_dropped() {
        let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_32);
        // An RR with one report block.
        let mut rr = vec![0x81, 201, 0, 7];
        rr.extend_from_slice(&0x1111_2222u32.to_be_bytes());
        rr.extend_from_slice(&[0xab; 24]);
        let mut wire = rr.clone();
        tx.protect_rtcp(&mut wire).unwrap();
        assert_eq!(wire.len(), rr.len() + 4 + 10, "80-bit tag in both suites");
        assert_ne!(wire[8..rr.len()], rr[8..]);
        let sent = wire.clone();
        rx.unprotect_rtcp(&mut wire).unwrap();
        assert_eq!(wire, rr);
        let mut again = sent.clone();
        assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replay));
        let mut next = rr.clone();
        tx.protect_rtcp(&mut next).unwrap();
        let mut bad = next.clone();
        bad[10] ^= 0x80;
        assert_eq!(rx.unprotect_rtcp(&mut bad), Err(SrtpError::Auth));
        rx.unprotect_rtcp(&mut next).unwrap();
        assert_eq!(next, rr);
        assert_eq!(
            rx.unprotect_rtcp(&mut vec![0x81, 201, 0, 1]),
            Err(SrtpError::Malformed)
        );
    }

    #[test]
    fn a_renegotiation_keeps_the_state_of_unchanged_keys() {
        let keys = |send, recv| SrtpKeys {
            suite: Suite::AesCm128HmacSha1_80,
            send: MasterKey([send; 30]),
            recv: MasterKey([recv; 30]),
        };
        let mut far = SrtpSender::new(Suite::AesCm128HmacSha1_80, &MasterKey([2; 30]));
        let mut slot = None;
        SrtpLeg::update(&mut slot, Some(keys(1, 2)));
        let mut p = rtp(5, &[0; 20]);
        far.protect_rtp(&mut p).unwrap();
        slot.as_mut()
            .unwrap()
            .rx
            .unprotect_rtp(&mut p.clone())
            .unwrap();
        // The same keys again (a hold): the replay window is kept.
        SrtpLeg::update(&mut slot, Some(keys(1, 2)));
        let rx = &mut slot.as_mut().unwrap().rx;
        assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(SrtpError::Replay));
        // A new key from the far end: a new receiver, the old key's packets fail.
        SrtpLeg::update(&mut slot, Some(keys(1, 3)));
        let rx = &mut slot.as_mut().unwrap().rx;
        assert_eq!(rx.unprotect_rtp(&mut p.clone()), Err(SrtpError::Auth));
        SrtpLeg::update(&mut slot, None);
        assert!(slot.is_none());
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let key = MasterKey([0x42; 30]);
        let keys = SrtpKeys {
            suite: Suite::AesCm128HmacSha1_80,
            send: key.clone(),
            recv: key.clone(),
        };
        let shown = format!(
            "{keys:?} {:?} {:?}",
            SrtpSender::new(keys.suite, &key),
            SrtpReceiver::new(keys.suite, &key)
        );
        assert!(!shown.contains("42") && !shown.contains("66"), "{shown}");
    }
}
