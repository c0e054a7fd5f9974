//! # palisade-mesh — coordination between edges and control planes
//!
//! One trait, [`Mesh`], carries everything that crosses node boundaries:
//! policy versions (every node converges on the newest valid one), the
//! cluster-wide decision log (add / delete, keyed by scope + value, totally
//! ordered by a sequence number), security events (consumed durably by the
//! control plane), heartbeats, learned statistics and the count reports of
//! global rate limits (ephemeral broadcasts).
//!
//! Two backends: [`memory::MemoryMesh`] (in-process, the embedded default of
//! `palisade up`) and `nats::NatsMesh` (NATS JetStream, cargo feature `nats`,
//! on by default; the quick start's build leaves it out). The coordination
//! logic that does not depend on the transport — applying the decision log
//! exactly once, in order, across reconnects — is pure ([`replica`]) and is
//! tested over an in-memory transport with injected drops, delays and
//! partitions. [`patient::Patient`] wraps a mesh for callers that answer
//! people (the control plane's API): it retries through a short
//! unavailability such as a JetStream leader election.
//!
//! What it must not do: make enforcement decisions, or implement consensus,
//! gossip or replication of its own (JetStream does that).

pub mod memory;
pub mod mesh;
#[cfg(feature = "nats")]
pub mod nats;
pub mod patient;
pub mod replica;
pub mod types;

pub use memory::MemoryMesh;
pub use mesh::{
    CountStream, DecisionStream, EventDelivery, EventStream, Mesh, PolicyStream, MAX_COUNTS_BYTES,
    MAX_STATS_BYTES,
};
#[cfg(feature = "nats")]
pub use nats::{NatsMesh, NatsOptions, ReplicaPolicy, Replication};
pub use patient::Patient;
pub use replica::{must_resync, Applied, DecisionReplica, Follower, ReplicaSnapshot};
pub use types::{DecisionOp, DecisionUpdate, Heartbeat, MeshError, PolicyRefusal, PolicyVersion};
