//! Seatline's SIP layer for carrier trunks, as a sans-IO core.
//!
//! Owns: SIP message syntax ([`message`]), RFC 3261 transactions with their
//! timers over UDP ([`transaction`]), dialogs and the INVITE/ACK/BYE/CANCEL
//! and re-INVITE flows of a user agent ([`ua`]), the sources we take
//! requests from ([`trust`]) and the SDP of a G.711 audio leg ([`sdp`]).
//!
//! Must never: open a socket, read a clock or spawn a task. The shell feeds
//! datagrams and the time in, and sends what [`ua::UserAgent::poll_transmit`]
//! gives out. Nothing here logs, so no phone number leaks into a log. Its
//! randomness (tags, branches, Call-IDs, glare back-off) comes from one
//! seeded generator per [`UserAgent`], so a test replays exactly.

pub mod auth;
pub mod message;
mod register;
pub mod sdp;
pub mod stream;
mod timer;
pub mod transaction;
pub mod trust;
pub mod ua;

pub use auth::Credentials;
pub use message::{Message, Method};
pub use transaction::{Timers, Transmit};
pub use trust::{TrustParseError, TrustedSource};
pub use ua::{CallRef, DialogRole, DialogSnapshot, Transport, UaEvent, UserAgent};

const TOKEN_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A random token of `n` lowercase letters and digits, from the thread's
/// generator. For callers outside the user agent, which has its own seeded one.
pub fn random_token(n: usize) -> String {
    token(&mut rand::thread_rng(), n)
}

/// A token of `n` lowercase letters and digits from `rng`.
pub(crate) fn token(rng: &mut impl rand::Rng, n: usize) -> String {
    (0..n)
        .map(|_| TOKEN_CHARS[rng.gen_range(0..TOKEN_CHARS.len())] as char)
        .collect()
}
