//! Just enough SDP (RFC 4566) for a G.711 audio leg toward a trunk:
//! address, port, codecs, telephone-event and direction.

use std::net::IpAddr;

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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("no audio stream")]
    NoAudio,
    #[error("no usable connection address")]
    NoAddress,
    #[error("no codec in common (G.711 needed)")]
    NoCodec,
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
                    parts.next();
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
        })
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
            "v=0\r\no=seatline {session_id} {version} IN {ip} {addr}\r\ns=seatline\r\nc=IN {ip} {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\n",
            addr = self.addr,
            port = self.port,
            pts = pts.join(" ")
        );
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
}
