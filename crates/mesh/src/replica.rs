//! The pure core of decision following: no I/O, no clock.
//!
//! [`DecisionReplica`] applies the decision log to a local
//! [`DecisionSet`], each sequence at most once and in order, and can be
//! snapshotted to disk so that an edge restarts fail-static from its last
//! state. [`Follower`] adds what an unreliable transport needs: it numbers
//! the deliveries of one subscription and asks for a resubscription from
//! `last_seq` as soon as one is missing or out of order.
//!
//! The resync rule is the whole protocol: on (re)connect, subscribe with
//! `decisions_since(replica.last_seq())`. Because the log keeps the latest op
//! of every key (deletes as tombstones), replaying from `last_seq` brings the
//! replica to the same set as the log, however many updates were lost,
//! duplicated or delayed before.
//!
//! Decision ids: a decision keeps the id its origin gave it, unless another
//! key already holds that id locally (an origin reused it); then the replica
//! uses `LOCAL_ID_BASE | seq`, which is unique because sequences are.

use palisade_policy::{Decision, DecisionSet};
use serde::{Deserialize, Serialize};

use crate::types::{DecisionOp, DecisionUpdate, MeshError};

/// Ids at or above this value are assigned by the replica (see the module doc).
pub const LOCAL_ID_BASE: u64 = 1 << 63;

/// What [`DecisionReplica::apply`] did with an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The decision was inserted (`replaced`: it replaced one for the same key).
    Upserted {
        /// Whether a decision for the same key was replaced.
        replaced: bool,
    },
    /// The key was removed (`found`: a decision was there).
    Deleted {
        /// Whether a decision was removed.
        found: bool,
    },
    /// `seq <= last_seq`: already applied (or superseded); nothing changed.
    Duplicate,
    /// The update could not be applied (invalid value); its sequence counts as seen.
    Rejected(String),
}

/// The local copy of the cluster decision table, and how far in the log it is.
#[derive(Debug, Clone, Default)]
pub struct DecisionReplica {
    set: DecisionSet,
    last_seq: u64,
}

/// A serializable image of a [`DecisionReplica`] (persisted by edges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSnapshot {
    /// The last sequence applied.
    pub last_seq: u64,
    /// The decisions, with the ids the replica gave them.
    pub decisions: Vec<Decision>,
}

impl DecisionReplica {
    /// An empty replica that has seen nothing (`last_seq` 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// A replica holding `set`, at `last_seq` (loaded from disk).
    pub fn with_set(set: DecisionSet, last_seq: u64) -> Self {
        DecisionReplica { set, last_seq }
    }

    /// The last sequence applied; resubscribe with `decisions_since(last_seq)`.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The decisions.
    pub fn set(&self) -> &DecisionSet {
        &self.set
    }

    /// Mutable access for local maintenance such as `purge_expired`. Expiry
    /// is not a log op: each node purges on its own clock.
    pub fn set_mut(&mut self) -> &mut DecisionSet {
        &mut self.set
    }

    /// Applies one update, unless its sequence was already passed.
    pub fn apply(&mut self, update: DecisionUpdate) -> Applied {
        if update.seq <= self.last_seq {
            return Applied::Duplicate;
        }
        self.last_seq = update.seq;
        match update.op {
            DecisionOp::Upsert { mut decision } => {
                let value = match DecisionSet::normalize(decision.scope, &decision.value) {
                    Ok(v) => v,
                    Err(e) => return Applied::Rejected(e.to_string()),
                };
                let taken_by_other = self
                    .set
                    .get(decision.id)
                    .is_some_and(|d| d.scope != decision.scope || d.value() != value);
                if taken_by_other {
                    decision.id = LOCAL_ID_BASE | update.seq;
                }
                decision.value = value;
                match self.set.insert(decision) {
                    Ok(old) => Applied::Upserted {
                        replaced: old.is_some(),
                    },
                    Err(e) => Applied::Rejected(e.to_string()),
                }
            }
            DecisionOp::Delete { scope, value } => Applied::Deleted {
                found: self.set.remove_key(scope, &value).is_some(),
            },
        }
    }

    /// A serializable image of the replica.
    pub fn snapshot(&self) -> ReplicaSnapshot {
        let mut decisions: Vec<Decision> = self.set.iter().map(|d| d.to_decision()).collect();
        decisions.sort_by_key(|d| d.id);
        ReplicaSnapshot {
            last_seq: self.last_seq,
            decisions,
        }
    }

    /// The replica a snapshot was taken of.
    pub fn restore(snapshot: ReplicaSnapshot) -> Result<Self, MeshError> {
        let mut set = DecisionSet::new();
        for d in snapshot.decisions {
            set.insert(d)
                .map_err(|e| MeshError::Codec(format!("decision snapshot: {e}")))?;
        }
        Ok(DecisionReplica {
            set,
            last_seq: snapshot.last_seq,
        })
    }
}

/// Whether a follower at `last_seq` must rebuild its table from the whole
/// log (`decisions_since(0)`) instead of replaying from `last_seq`: the log
/// dropped ops it may not have seen (`last_seq < floor`, see
/// `Mesh::decisions_floor`), or the log restarted below it (`last_seq > head`:
/// a new stream, an in-process mesh after a restart). A fresh follower
/// (`last_seq` 0) reads the whole log anyway.
pub fn must_resync(last_seq: u64, floor: u64, head: u64) -> bool {
    last_seq > 0 && (last_seq < floor || last_seq > head)
}

/// One subscription as seen by a [`Follower`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Distinguishes this subscription from earlier ones.
    pub id: u64,
    /// Subscribe with `decisions_since(from_seq)`.
    pub from_seq: u64,
}

/// What a [`Follower`] did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Applied to the replica.
    Applied(Applied),
    /// From an old session, or delivered twice: ignored.
    Stale,
    /// A delivery is missing or out of order: subscribe again with this session.
    Resync(Session),
}

/// A [`DecisionReplica`] fed by numbered deliveries (1, 2, 3… per session).
#[derive(Debug, Clone, Default)]
pub struct Follower {
    replica: DecisionReplica,
    session: u64,
    next: u64,
    resyncs: u64,
}

impl Follower {
    /// Follows from `replica` (fresh, or restored from disk).
    pub fn new(replica: DecisionReplica) -> Self {
        Follower {
            replica,
            session: 0,
            next: 1,
            resyncs: 0,
        }
    }

    /// Starts a new session (after a connect, a resync or a timeout).
    pub fn subscribe(&mut self) -> Session {
        self.session += 1;
        self.next = 1;
        Session {
            id: self.session,
            from_seq: self.replica.last_seq(),
        }
    }

    /// Handles delivery number `n` of session `session`.
    pub fn on_delivery(&mut self, session: u64, n: u64, update: DecisionUpdate) -> Step {
        if session != self.session || n < self.next {
            return Step::Stale;
        }
        if n > self.next {
            self.resyncs += 1;
            return Step::Resync(self.subscribe());
        }
        self.next += 1;
        Step::Applied(self.replica.apply(update))
    }

    /// The replica.
    pub fn replica(&self) -> &DecisionReplica {
        &self.replica
    }

    /// How many times a gap forced a resubscription.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }
}

#[cfg(test)]
mod tests;
