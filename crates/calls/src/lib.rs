//! Calls without I/O.
//!
//! Owns: the call record (CDR) and the `dialStatus` messages built from it
//! ([`record`]), the checks a `callOut` must pass before anything is dialed
//! ([`policy`]), what a carrier's SIP answer means for the agent
//! ([`outcome`]), and the sandbox carrier's behaviour table ([`sandbox`]).
//!
//! Must never: open a socket, read a clock or touch the database; times
//! come in as milliseconds, results go out as values.

pub mod controller;
pub mod numbers;
pub mod outcome;
pub mod policy;
pub mod record;
pub mod sandbox;
