//! Account protection: failed logins counted per source and per username,
//! across the fleet.
//!
//! # The flow
//!
//! 1. **The policy declares login endpoints** (`[[bots.logins]]`, see
//!    [`LoginConfig`]; [`validate_all`] compiles them into [`LoginSpec`]s,
//!    reporting every problem at once). A report names its endpoint by its
//!    index in that list.
//! 2. **The edge extracts the username** from a login request's body with
//!    [`username_from_form`] or [`username_from_json`] (by content type), and
//!    immediately turns it into a [`UserHash`] with [`username_key_hash`]:
//!    HMAC-SHA256 under the fleet-wide key from the control plane, over the
//!    normalized username (trimmed, lower-cased), truncated to 16 bytes. The
//!    clear username is dropped with the request.
//! 3. **The origin answers**; [`LoginSpec::is_failure`] says whether the
//!    answer means a failed login. For each failure the edge builds a
//!    [`FailureReport`] (node, time, client address, ASN, user hash, endpoint)
//!    and queues it in a [`ReportBatcher`], which hands out an encoded batch
//!    ([`encode`], a compact binary format) about every 100 ms.
//! 4. **The mesh broadcasts the batch** to every node, best effort, not
//!    stored. Every node, the sender included, [`decode`]s each batch it
//!    receives and feeds every report into its [`LoginGuard`] with
//!    [`LoginGuard::record`]. All nodes apply the same reports to the same
//!    pure state, so they reach the same counts whatever the arrival order
//!    (counts are sets keyed by what the reports say, windows use the report
//!    time; see [`guard`]).
//! 5. **Escalations.** `record` returns what the report made cross a
//!    threshold:
//!    - [`Escalation::Source`] (credential stuffing: one address, /24 (IPv6
//!      /64) or AS failing logins for many distinct usernames). It becomes a
//!      decision in the fleet's decision table, and a decision must be issued
//!      once, not by every node: **the caller issues it only when
//!      `report.node` is its own node id** (the node that saw the failure).
//!      The guard does not know which node it runs on; it returns the same
//!      escalations on every node and leaves that filter to the caller.
//!    - [`Escalation::Username`] (password guessing: one username failing
//!      from many sources). There is no decision for it: **every node marks
//!      the username itself** from the same reports, and the edge asks
//!      [`LoginGuard::username_state`] on each login attempt (a cheap lookup)
//!      to challenge or refuse attempts for it until the mark expires.
//!
//! # Privacy
//!
//! Usernames are only ever kept in a request's memory. What is stored,
//! counted, broadcast and logged is the keyed hash: without the fleet key a
//! [`UserHash`] cannot be checked against a list of known usernames. Reports
//! carry no username, password or body bytes.
//!
//! # Bounds
//!
//! Everything keyed by client data is capped: the per-source and
//! per-username tables ([`GuardLimits`], 100,000 entries each by default;
//! when full, expired entries go first, then the least recently seen, and
//! evictions are counted in [`LoginGuard::stats`]); each entry keeps at most
//! a threshold's worth of hashes (thresholds are capped at
//! [`MAX_THRESHOLD`]); a batch holds at most [`MAX_REPORTS`] reports and
//! [`MAX_BATCH_BYTES`] bytes; extraction reads at most [`MAX_BODY`] bytes
//! and keeps at most [`MAX_USERNAME`] bytes of a username. Nothing here
//! panics on network or configuration input.

pub mod extract;
pub mod guard;
pub mod report;

#[cfg(test)]
mod tests;

pub use extract::{
    normalize_username, username_from_form, username_from_json, username_key_hash,
    usernames_from_form, UserHash, MAX_BODY, MAX_USERNAME,
};
pub use guard::{GuardLimits, LoginGuard, LoginStats};
pub use palisade_policy::bots::logins::{
    validate, validate_all, Action, GuessingConfig, GuessingSpec, LoginConfig, LoginSpec,
    StuffingConfig, StuffingSpec, UsernameField, MAX_LOGINS, MAX_THRESHOLD,
};
pub use report::{
    decode, encode, encode_batches, FailureReport, ReportBatcher, ReportError, MAX_BATCH_BYTES,
    MAX_NODE, MAX_REPORTS,
};

use palisade_policy::Scope;

/// What a failure report made cross a threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    /// A source tried too many distinct usernames (credential stuffing).
    /// Issued as a decision **only by the node that sent the report**
    /// (`report.node` equals the caller's node id); the other nodes ignore it.
    Source {
        /// [`Scope::Ip`], [`Scope::Cidr`] or [`Scope::Asn`].
        scope: Scope,
        /// The value as the decision table wants it: `203.0.113.7`,
        /// `203.0.113.0/24`, `2001:db8:1:2::/64`, `64496`.
        value: String,
        /// What the decision does.
        action: Action,
        /// How long the decision lasts.
        duration_ms: u64,
        /// Why, for the decision and the event log.
        reason: String,
    },
    /// A username failed from too many sources (password guessing). Every
    /// node marks it itself; [`LoginGuard::username_state`] answers until
    /// `until_ms`.
    Username {
        /// The keyed hash of the username.
        user: UserHash,
        /// What login attempts for it get.
        action: Action,
        /// When the mark expires (report time of the latest failure counted
        /// plus the guessing duration).
        until_ms: u64,
    },
}
