//! # palisade-control — the control plane
//!
//! Owns the management REST API (`/api/v1`), its authentication, and the
//! translation of API requests into domain values ([`Decision`]). It does not
//! enforce anything: it hands decisions to a [`DecisionStore`], which the
//! binary wires to the edge (in `palisade up`, directly to the edge's table).
//!
//! [`Decision`]: palisade_policy::Decision

pub mod api;

pub use api::{router, ApiConfig, DecisionStore, NewDecision};
