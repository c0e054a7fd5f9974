//! Verified crawlers: is a client that says it is Googlebot really Googlebot?
//!
//! A request *claims* a known crawler when its `User-Agent` contains the
//! crawler's `user_agent` substring (ASCII case-insensitive; the longest
//! matching substring wins). A claim is verified in one of two ways:
//!
//! 1. **Published IP ranges.** The policy names range files per crawler
//!    (Google's and Bing's JSON, or plain text; see [`parse_range_file`]).
//!    The edge reads the files; this module parses their text and keeps the
//!    prefixes as sorted, merged ranges (a binary search per lookup).
//! 2. **Forward-confirmed reverse DNS** ([`fcrdns`](fn@fcrdns)): the client IP's PTR
//!    names that lie in one of the crawler's domains (on a label boundary:
//!    `evilgooglebot.com` is not in `googlebot.com`) are resolved forward;
//!    the claim holds when one of them resolves back to the client IP.
//!
//! # Where DNS happens
//!
//! Not here, and never on the request path. [`Verifier::check`] only reads
//! the ranges and a result cache; on a miss it queues a [`Lookup`] and
//! answers "unverified, pending". The edge's DNS worker takes lookups with
//! [`Verifier::take_pending`], runs [`fcrdns`](fn@fcrdns) with a [`Resolver`] it
//! implements (the system resolver), and reports with
//! [`Verifier::complete`]. Results are cached: verified for 24 h, refuted
//! for 1 h, resolver errors for 60 s (a DNS outage neither hammers the
//! resolver nor verifies anyone).
//!
//! # Caps
//!
//! Everything keyed by client data is bounded: the result cache
//! (`max_cache`, 65,536 by default; when full, expired entries go first,
//! then the non-verified entry closest to expiry, see [`VerifierLimits`]),
//! the lookup queue and in-flight set (`max_pending`, 1,024; further lookups
//! are dropped and counted), the PTR names (8) and forward addresses (16 per
//! name) looked at per lookup. Config is bounded too: 128 crawlers, 32
//! domains and 16 range files each, 100,000 prefixes and 16 MiB per range
//! file.
//!
//! # What it must not do
//!
//! No I/O (files, DNS, network), no threads, no clock: time is passed in as
//! `now_ms`, milliseconds since the Unix epoch. Nothing panics on network
//! input (User-Agents, PTR names, addresses) or on config input.
//!
//! # Config
//!
//! ```toml
//! [[bots.crawlers]]
//! name = "Googlebot"
//! user_agent = "Googlebot"
//! domains = ["googlebot.com", "google.com"]
//! ranges = ["/etc/palisade/ranges/googlebot.json"]
//! ```

mod fcrdns;
mod ranges;
mod verifier;

pub use fcrdns::{
    canonical_ip, fcrdns, in_domain, LookupOutcome, ResolveError, Resolver, MAX_FORWARD_ADDRS,
    MAX_PTR_NAMES,
};
pub use palisade_policy::bots::crawlers::{
    validate, validate_at, CrawlerSpec, DEFAULT_SECTION, MAX_CRAWLERS, MAX_DOMAINS,
    MAX_RANGE_FILES, MAX_USER_AGENT_LEN,
};
pub use ranges::{
    parse_range_file, RangeError, RangeLocation, MAX_FILE_BYTES, MAX_PREFIXES, MAX_REPORTED_ERRORS,
};
pub use verifier::{BotIdentity, ClaimStatus, Lookup, Verifier, VerifierLimits, VerifierStats};
