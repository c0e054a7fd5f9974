//! # palisade-bots — people or machines
//!
//! The pure core of Palisade's bot defence. Each module owns one concept:
//!
//! - [`fingerprint`]: client fingerprints — HTTP header names, order and
//!   case; a JA4-style TLS ClientHello fingerprint; an HTTP/2 SETTINGS and
//!   priority fingerprint — computed from the bytes the client sent.
//! - [`behaviour`]: streaming per-client and per-route statistics, merged
//!   across the fleet, and the bot and anomaly scores computed from them.
//! - [`crawlers`]: verified crawlers (forward-confirmed reverse DNS and
//!   published IP ranges), with a resolver the caller provides.
//! - [`clearance`]: the challenge's proof of work and the Ed25519-signed
//!   clearance cookie, with the fleet's key ring.
//! - [`logins`]: account protection — failed logins per source and per
//!   (keyed-hash) username, counted across the fleet.
//!
//! What it must not do: I/O, threads, async, or reading the clock. Time is
//! passed in (milliseconds since the Unix epoch); lookups the edge must make
//! (DNS) go through traits the edge implements.

pub mod behaviour;
pub mod clearance;
pub mod crawlers;
pub mod fingerprint;
pub mod logins;
