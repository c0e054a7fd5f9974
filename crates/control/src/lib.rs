//! # palisade-control — the control plane
//!
//! Owns the management REST API (`/api/v1`), its authentication, and the
//! translation of API requests into domain values ([`Decision`]). It does not
//! enforce anything: it hands decisions and policy versions to a [`Backend`] —
//! the edge's own table in `palisade up`, the mesh ([`MeshBackend`]) in a
//! cluster, where the edges pick them up.
//!
//! [`Decision`]: palisade_policy::Decision

pub mod api;
pub mod attack_mode;
pub mod backend;
pub mod correlate;
pub mod import;
pub mod keys;
pub mod nodes;
pub mod policy_check;
pub mod store;

pub use api::{router, ApiConfig, NewDecision, Role, Tokens};
pub use backend::{ApiError, Backend, MeshBackend, StoredPolicy};
pub use store::{EventFilter, EventStore};
