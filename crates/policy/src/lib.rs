//! # palisade-policy — the pure domain core of Palisade
//!
//! Owns the lexicon types ([`Verdict`], [`Action`], [`Decision`], [`Policy`],
//! [`SecurityEvent`]), the rule-expression language ([`expr`]), decision sets
//! keyed by scope ([`decisions`]), sliding-window rate-limit math
//! ([`ratelimit`]), the policy file loader ([`policy`]), the normalization of
//! the host and path that rules see ([`normalize`]) and the settings of the
//! WAF ([`waf`]; the engine itself is `palisade-waf`, built by the edge).
//!
//! What it must not do: I/O, threads, async, or reading the clock. Every
//! time-dependent function takes `now` (milliseconds since the Unix epoch) as
//! an argument, so behaviour over time is tested without sleeping.

pub mod bots;
pub mod connections;
pub mod decisions;
pub mod duration;
pub mod escalation;
pub mod event;
pub mod expr;
pub mod flood;
pub mod learn;
pub mod normalize;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod request;
pub mod verdict;
pub mod waf;

pub use decisions::{Decision, DecisionAction, DecisionRef, DecisionSet, Scope};
pub use event::{BotEventDetail, SecurityEvent, WafEventDetail, WafRuleHit};
pub use normalize::{normalize_host, normalize_path, normalize_uri};
pub use policy::{Policy, PolicyError, PolicyErrors};
pub use request::{Client, Geo, Request};
pub use verdict::{Action, CheckKind, Verdict};
pub use waf::WafSettings;

/// Milliseconds since the Unix epoch. The only notion of time in this crate.
pub type UnixMillis = u64;
