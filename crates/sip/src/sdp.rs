//! Just enough SDP (RFC 4566) for a G.711 audio leg toward a trunk:
//! address, port, codecs, telephone-event, direction, and SDES keys
//! (RFC 4568 `a=crypto`) when the profile is RTP/SAVP.
//!
//! Crypto lines are hostile input like the rest: bounded in length and
//! number, and one that is malformed (a bad tag, a key that is not 30
//! bytes of base64, a broken lifetime or MKI) makes the whole SDP
//! unusable. A well-formed line we cannot use (another suite, an MKI,
//! session parameters such as UNENCRYPTED_SRTP) is skipped.

use base64::Engine as _;
pub use seatline_media::srtp::{MasterKey, SrtpKeys, Suite, MASTER_LEN};
use std::net::IpAddr;

/// Longest `a=crypto` line read (a 30-byte key is 40 base64 characters;
/// a line with lifetime, MKI and a few parameters fits well within).
const MAX_CRYPTO_LINE: usize = 256;
/// Most `a=crypto` lines an SDP may carry.
const MAX_CRYPTO_LINES: usize = 16;

/// The transport profile of the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// RTP/AVP (or AVPF): plain RTP.
    Avp,
    /// RTP/SAVP (or SAVPF): SRTP, keyed by `a=crypto` lines (SDES).
    Savp,
}

/// One usable `a=crypto` line: its tag, suite and master key and salt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
}

impl Crypto {
    fn line(&self) -> String {
        format!(
            "a=crypto:{} {} inline:{}\r\n",
            self.tag,
            self.suite.name(),
            base64::engine::general_purpose::STANDARD.encode(self.key.0)
        )
    }

    /// Reads the value of an `a=crypto:` attribute: `Ok(None)` for a
    /// well-formed line we cannot use.
    fn parse(value: &str) -> Result<Option<Crypto>, SdpError> {
        if value.len() > MAX_CRYPTO_LINE {
            return Err(SdpError::Crypto);
        }
        let mut fields = value.split(' ').filter(|f| !f.is_empty());
        let tag = fields.next().ok_or(SdpError::Crypto)?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdpError::Crypto);
        }
        let tag: u32 = tag.parse().map_err(|_| SdpError::Crypto)?;
        let suite_name = fields.next().ok_or(SdpError::Crypto)?;
        let key_params = fields.next().ok_or(SdpError::Crypto)?;
        let Some(suite) = Suite::from_name(suite_name) else {
            return Ok(None);
        };
        // Several keys (`;`-separated) only make sense with MKIs.
        if key_params.contains(';') {
            return Ok(None);
        }
        let mut parts = key_params
            .strip_prefix("inline:")
            .ok_or(SdpError::Crypto)?
            .split('|');
        let key_b64 = parts.next().unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key_b64)
            .map_err(|_| SdpError::Crypto)?;
        let key: [u8; seatline_media::srtp::MASTER_LEN] =
            bytes.try_into().map_err(|_| SdpError::Crypto)?;
        let mut usable = true;
        for (i, p) in parts.enumerate() {
            match p.split_once(':') {
                // MKI:length. We send and expect no MKI.
                Some((mki, len)) if i < 2 => {
                    let digits = |s: &str| {
                        !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
                    };
                    if !digits(mki) || !digits(len) {
                        return Err(SdpError::Crypto);
                    }
                    usable = false;
                }
                // A lifetime (2^n or a number of packets): longer than any call.
                None if i == 0 => {
                    let n = p.strip_prefix("2^").unwrap_or(p);
                    if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(SdpError::Crypto);
                    }
                }
                _ => return Err(SdpError::Crypto),
            }
        }
        // Session parameters: a window size hint is only a hint; anything
        // else changes the transform (KDR, unencrypted or unauthenticated
        // SRTP, FEC order) and we do not speak it.
        for param in fields {
            if !param.starts_with("WSH=") {
                usable = false;
            }
        }
        Ok(usable.then_some(Crypto {
            tag,
            suite,
            key: MasterKey(key),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// What the answerer uses when the offer has this direction.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// G.711 codecs, by their static payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu = 0,
    Pcma = 8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSdp {
    pub addr: IpAddr,
    pub port: u16,
    /// Offered/accepted G.711 codecs in preference order.
    pub codecs: Vec<Codec>,
    /// Payload type of telephone-event (RFC 4733), if any.
    pub dtmf_pt: Option<u8>,
    pub direction: Direction,
    pub profile: Profile,
    /// RTP/SAVP: the usable `a=crypto` lines in the writer's order (an
    /// offer's choices, or the one line of an answer).
    pub crypto: Vec<Crypto>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no audio stream")]
    NoAudio,
    #[error("no usable connection address")]
    NoAddress,
    #[error("no codec in common (G.711 needed)")]
    NoCodec,
    #[error("a transport profile other than RTP/AVP or RTP/SAVP")]
    Profile,
    #[error("a malformed or oversized a=crypto line, or too many")]
    Crypto,
}

impl AudioSdp {
    pub fn parse(text: &str) -> Result<AudioSdp, SdpError> {
        let mut session_addr: Option<IpAddr> = None;
        let mut media_addr: Option<IpAddr> = None;
        let mut in_audio = false;
        let mut seen_audio = false;
        let mut port = 0u16;
        let mut pts: Vec<u8> = Vec::new();
        let mut dtmf_pt = None;
        let mut direction = Direction::SendRecv;
        let mut profile = Profile::Avp;
        let mut crypto = Vec::new();
        let mut crypto_lines = 0usize;
        for line in text.lines() {
            let line = line.trim_end();
            if let Some(m) = line.strip_prefix("m=") {
                in_audio = m.starts_with("audio ") && !seen_audio;
                if in_audio {
                    seen_audio = true;
                    let mut parts = m.split_whitespace();
                    parts.next();
                    port = parts
                        .next()
                        .and_then(|p| p.split('/').next()?.parse().ok())
                        .unwrap_or(0);
                    profile = match parts.next() {
                        Some("RTP/AVP" | "RTP/AVPF") => Profile::Avp,
                        Some("RTP/SAVP" | "RTP/SAVPF") => Profile::Savp,
                        _ => return Err(SdpError::Profile),
                    };
                    pts = parts.filter_map(|p| p.parse().ok()).collect();
                }
                continue;
            }
            if let Some(c) = line.strip_prefix("c=") {
                let addr = c
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next()?.parse().ok());
                if seen_audio && in_audio {
                    media_addr = addr;
                } else if !seen_audio {
                    session_addr = addr;
                }
                continue;
            }
            if !in_audio {
                continue;
            }
            if let Some(value) = line.strip_prefix("a=crypto:") {
                crypto_lines += 1;
                if crypto_lines > MAX_CRYPTO_LINES {
                    return Err(SdpError::Crypto);
                }
                if let Some(c) = Crypto::parse(value)? {
                    crypto.push(c);
                }
                continue;
            }
            if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
                let (pt, name) = rtpmap.split_once(' ').unwrap_or((rtpmap, ""));
                if name
                    .to_ascii_lowercase()
                    .starts_with("telephone-event/8000")
                {
                    dtmf_pt = pt.parse().ok();
                }
            }
            match line {
                "a=sendrecv" => direction = Direction::SendRecv,
                "a=sendonly" => direction = Direction::SendOnly,
                "a=recvonly" => direction = Direction::RecvOnly,
                "a=inactive" => direction = Direction::Inactive,
                _ => {}
            }
        }
        if !seen_audio {
            return Err(SdpError::NoAudio);
        }
        let addr = media_addr.or(session_addr).ok_or(SdpError::NoAddress)?;
        let codecs: Vec<Codec> = pts
            .iter()
            .filter_map(|pt| match pt {
                0 => Some(Codec::Pcmu),
                8 => Some(Codec::Pcma),
                _ => None,
            })
            .collect();
        if codecs.is_empty() {
            return Err(SdpError::NoCodec);
        }
        // An old-style hold (c=0.0.0.0) means no media is wanted.
        let direction = if addr.is_unspecified() {
            Direction::Inactive
        } else {
            direction
        };
        Ok(AudioSdp {
            addr,
            port,
            codecs,
            dtmf_pt: dtmf_pt.filter(|_| pts.contains(&dtmf_pt.unwrap_or(0))),
            direction,
            profile,
            // Keys mean nothing on plain RTP.
            crypto: if profile == Profile::Savp {
                crypto
            } else {
                Vec::new()
            },
        })
    }

    /// A plain RTP/AVP audio description.
    pub fn plain(
        addr: IpAddr,
        port: u16,
        codecs: Vec<Codec>,
        dtmf_pt: Option<u8>,
        direction: Direction,
    ) -> AudioSdp {
        AudioSdp {
            addr,
            port,
            codecs,
            dtmf_pt,
            direction,
            profile: Profile::Avp,
            crypto: Vec::new(),
        }
    }

    /// Makes this SDP an SDES offer or answer with one crypto line.
    pub fn secure(mut self, crypto: Crypto) -> AudioSdp {
        self.profile = Profile::Savp;
        self.crypto = vec![crypto];
        self
    }

    /// An SDES offer's first crypto line we can use (the offerer's order).
    pub fn usable_crypto(&self) -> Option<&Crypto> {
        (self.profile == Profile::Savp)
            .then(|| self.crypto.first())
            .flatten()
    }

    /// The far end's crypto line in `answer` to this offer of ours: the
    /// answer must be RTP/SAVP and name one of our tags with its suite.
    /// `None` when an SDES offer was not answered acceptably (or this
    /// offer was plain).
    pub fn answered_crypto<'a>(&self, answer: &'a AudioSdp) -> Option<&'a Crypto> {
        if self.profile != Profile::Savp || answer.profile != Profile::Savp {
            return None;
        }
        let [theirs] = answer.crypto.as_slice() else {
            return None;
        };
        self.crypto
            .iter()
            .any(|ours| ours.tag == theirs.tag && ours.suite == theirs.suite)
            .then_some(theirs)
    }

    /// The answer to this offer from a side at `addr:port` that supports
    /// `ours` (in our preference order).
    pub fn answer(&self, addr: IpAddr, port: u16, ours: &[Codec]) -> Result<AudioSdp, SdpError> {
        // The offerer's order wins among the codecs both sides have.
        let codec = self
            .codecs
            .iter()
            .find(|c| ours.contains(c))
            .copied()
            .ok_or(SdpError::NoCodec)?;
        Ok(AudioSdp {
            addr,
            port,
            codecs: vec![codec],
            dtmf_pt: self.dtmf_pt,
            direction: self.direction.answer(),
            // Keys of the answer are the answerer's own: see `secure`.
            profile: Profile::Avp,
            crypto: Vec::new(),
        })
    }

    pub fn to_string(&self, session_id: u64, version: u64) -> String {
        let ip = match self.addr {
            IpAddr::V4(_) => "IP4",
            IpAddr::V6(_) => "IP6",
        };
        let mut pts: Vec<String> = self.codecs.iter().map(|c| (*c as u8).to_string()).collect();
        if let Some(pt) = self.dtmf_pt {
            pts.push(pt.to_string());
        }
        let mut s = format!(
            "v=0\r\no=seatline {session_id} {version} IN {ip} {addr}\r\ns=seatline\r\nc=IN {ip} {addr}\r\nt=0 0\r\nm=audio {port} {profile} {pts}\r\n",
            addr = self.addr,
            port = self.port,
            profile = match self.profile {
                Profile::Avp => "RTP/AVP",
                Profile::Savp => "RTP/SAVP",
            },
            pts = pts.join(" ")
        );
        if self.profile == Profile::Savp {
            for c in &self.crypto {
                s.push_str(&c.line());
            }
        }
        for c in &self.codecs {
            match c {
                Codec::Pcmu => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
                Codec::Pcma => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            }
        }
        if let Some(pt) = self.dtmf_pt {
            s.push_str(&format!(
                "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
            ));
        }
        s.push_str("a=ptime:20\r\n");
        s.push_str(&format!("a={}\r\n", self.direction.as_str()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n";

    #[test]
    fn reads_an_offer_and_answers_with_the_offerers_first_common_codec() {
        let offer = AudioSdp::parse(SIPP).unwrap();
        assert_eq!(offer.port, 6000);
        assert_eq!(offer.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(offer.dtmf_pt, Some(101));
        assert_eq!(offer.direction, Direction::SendRecv);
        let ans = offer
            .answer(
                "127.0.0.1".parse().unwrap(),
                7000,
                &[Codec::Pcmu, Codec::Pcma],
            )
            .unwrap();
        assert_eq!(ans.codecs, vec![Codec::Pcma]);
        let text = ans.to_string(1, 1);
        let back = AudioSdp::parse(&text).unwrap();
        assert_eq!(back, ans);
        assert!(text.contains("m=audio 7000 RTP/AVP 8 101\r\n"));
    }

    #[test]
    fn hold_directions_and_errors() {
        let held = SIPP.replace(
            "a=fmtp:101 0-11,16\r\n",
            "a=fmtp:101 0-11,16\r\na=sendonly\r\n",
        );
        let o = AudioSdp::parse(&held).unwrap();
        assert_eq!(o.direction, Direction::SendOnly);
        assert_eq!(o.direction.answer(), Direction::RecvOnly);
        let old_hold = SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert_eq!(
            AudioSdp::parse(&old_hold).unwrap().direction,
            Direction::Inactive
        );
        assert_eq!(AudioSdp::parse("v=0\r\n"), Err(SdpError::NoAudio));
        let g729 = SIPP.replace("RTP/AVP 8 0 101", "RTP/AVP 18");
        assert_eq!(AudioSdp::parse(&g729), Err(SdpError::NoCodec));
        let no_c = SIPP.replace("c=IN IP4 127.0.0.1\r\n", "");
        assert_eq!(AudioSdp::parse(&no_c), Err(SdpError::NoAddress));
    }

    const BARESIP_SAVP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 10000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AEAD_AES_256_GCM inline:AAAA\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|2^31 WSH=64\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn\r\na=sendrecv\r\n";

    #[test]
    fn sdes_offers_keep_usable_crypto_lines_in_order() {
        let o = AudioSdp::parse(BARESIP_SAVP).unwrap();
        assert_eq!(o.profile, Profile::Savp);
        // The GCM line (another suite) is skipped, not an error.
        let tags: Vec<(u32, Suite)> = o.crypto.iter().map(|c| (c.tag, c.suite)).collect();
        assert_eq!(
            tags,
            vec![
                (2, Suite::AesCm128HmacSha1_32),
                (3, Suite::AesCm128HmacSha1_80)
            ]
        );
        assert_eq!(o.usable_crypto().unwrap().tag, 2);
        assert_eq!(o.crypto[0].key.0[0], 0x1b);
        // Plain RTP ignores crypto lines.
        let plain = AudioSdp::parse(&BARESIP_SAVP.replace("RTP/SAVP", "RTP/AVP")).unwrap();
        assert_eq!((plain.profile, plain.crypto.len()), (Profile::Avp, 0));
        assert_eq!(plain.usable_crypto(), None);
    }

    #[test]
    fn an_sdes_offer_and_answer_round_trip_and_are_matched() {
        let key = |b| MasterKey([b; 30]);
        let offer = AudioSdp::plain(
            "127.0.0.1".parse().unwrap(),
            4000,
            vec![Codec::Pcmu, Codec::Pcma],
            Some(101),
            Direction::SendRecv,
        )
        .secure(Crypto {
            tag: 1,
            suite: Suite::AesCm128HmacSha1_80,
            key: key(7),
        });
        let text = offer.to_string(1, 1);
        assert!(text.contains("m=audio 4000 RTP/SAVP 0 8 101\r\n"), "{text}");
        assert!(text.contains(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\r\n"
        ));
        let back = AudioSdp::parse(&text).unwrap();
        assert_eq!(back, offer);

        let answer = |tag, suite| {
            back.answer("127.0.0.2".parse().unwrap(), 5000, &[Codec::Pcmu])
                .unwrap()
                .secure(Crypto {
                    tag,
                    suite,
                    key: key(9),
                })
        };
        let good = AudioSdp::parse(&answer(1, Suite::AesCm128HmacSha1_80).to_string(1, 1)).unwrap();
        assert_eq!(offer.answered_crypto(&good).unwrap().key, key(9));
        // Another tag, another suite, plain RTP, two lines: not an answer to us.
        for bad in [
            answer(2, Suite::AesCm128HmacSha1_80),
            answer(1, Suite::AesCm128HmacSha1_32),
            back.answer("127.0.0.2".parse().unwrap(), 5000, &[Codec::Pcmu])
                .unwrap(),
        ] {
            assert_eq!(offer.answered_crypto(&bad), None, "{bad:?}");
        }
        let mut two = good.clone();
        two.crypto.push(good.crypto[0].clone());
        assert_eq!(offer.answered_crypto(&two), None);
        // A plain offer expects no keys.
        let plain = AudioSdp {
            profile: Profile::Avp,
            crypto: vec![],
            ..offer.clone()
        };
        assert_eq!(plain.answered_crypto(&good), None);
    }

    #[test]
    fn malformed_crypto_lines_make_the_sdp_unusable() {
        let line = "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn\r\n";
        let with = |l: &str| BARESIP_SAVP.replace(line, l);
        for bad in [
            "a=crypto:\r\n",
            "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn\r\n",
            "a=crypto:1234567890 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn\r\n",
            // 29 and 33 bytes, not base64.
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJk=\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmnAAAA\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJ!n\r\n",
            // Broken lifetime and MKI.
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|2^x\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|1:\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|2^31|1:4|9\r\n",
        ] {
            assert_eq!(AudioSdp::parse(&with(bad)), Err(SdpError::Crypto), "{bad}");
        }
        let long = format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn WSH=64{}\r\n", " WSH=64".repeat(40));
        assert_eq!(AudioSdp::parse(&with(&long)), Err(SdpError::Crypto));
        let many = line.repeat(MAX_CRYPTO_LINES);
        assert_eq!(AudioSdp::parse(&with(&many)), Err(SdpError::Crypto));
        // Well-formed but not for us: an MKI, several keys, a transform
        // parameter. Skipped: only the SHA1_32 line is left.
        for skipped in [
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|2^20|1:4\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|1:4;inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn|2:4\r\n",
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:Gx3AL+8S5Vwz+bhIepCBvtwRkEWT8BpfP/Q8yJmn UNENCRYPTED_SRTP\r\n",
        ] {
            let o = AudioSdp::parse(&with(skipped)).unwrap();
            assert_eq!(o.crypto.len(), 1, "{skipped}");
            assert_eq!(o.crypto[0].tag, 2);
        }
        // DTLS-SRTP and other profiles are not ours.
        assert_eq!(
            AudioSdp::parse(&BARESIP_SAVP.replace("RTP/SAVP", "UDP/TLS/RTP/SAVP")),
            Err(SdpError::Profile)
        );
    }
}
