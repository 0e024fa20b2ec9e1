//! Seatline's SIP layer for carrier trunks, as a sans-IO core.
//!
//! Owns: SIP message syntax ([`message`]), RFC 3261 transactions with their
//! timers over UDP ([`transaction`]), dialogs and the INVITE/ACK/BYE/CANCEL
//! and re-INVITE flows of a user agent ([`ua`]), and the SDP of a G.711
//! audio leg ([`sdp`]).
//!
//! Must never: open a socket, read a clock or spawn a task. The shell feeds
//! datagrams and the time in, and sends what [`ua::UserAgent::poll_transmit`]
//! gives out. Nothing here logs, so no phone number leaks into a log.

pub mod message;
pub mod sdp;
pub mod transaction;
pub mod ua;

pub use message::{Message, Method};
pub use transaction::{Timers, Transmit};
pub use ua::{CallRef, UaEvent, UserAgent};

/// A random token of `n` lowercase letters and digits (tags, branches, Call-IDs).
pub fn random_token(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}
