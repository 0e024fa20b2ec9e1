//! Media building blocks, without I/O: RTP packets, G.711 (PCMU/PCMA),
//! generated tones (ringback, test tone) and RFC 4733 telephone events;
//! one rewritten outgoing stream per call, symmetric RTP latching, RTCP
//! statistics and reports, a MOS estimate, SRTP for SDES trunks, and the
//! timeline and stereo mix of call recordings.
//!
//! Must never: allocate per packet on the relay path beyond the packet
//! itself, or read a clock (timestamps come in from the caller).

pub mod announce;
pub mod dtmf;
pub mod g711;
pub mod latch;
pub mod music;
pub mod quality;
pub mod recording;
pub mod relay;
pub mod rewrite;
pub mod rtcp;
pub mod rtp;
pub mod srtp;
pub mod tone;
