//! The live state of an edge that the request path reads: the policy snapshot
//! (swapped atomically on reload), the decision table, the rate-limit counters,
//! and the shared services (GeoIP, metrics, events).

use crate::client_ip::TrustedProxies;
use crate::config::Limits;
use crate::events::EventSink;
use crate::geoip::GeoIp;
use crate::metrics::Metrics;
use crate::request_id::RequestIds;
use arc_swap::ArcSwap;
use palisade_mesh::replica::{Applied, DecisionReplica, ReplicaSnapshot};
use palisade_mesh::DecisionUpdate;
use palisade_policy::decisions::DecisionError;
use palisade_policy::ratelimit::RateLimiter;
use palisade_policy::{Decision, DecisionSet, Policy};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shared by every worker thread of one edge.
pub struct EdgeState {
    /// This node's id.
    pub node_id: String,
    policy: ArcSwap<Policy>,
    decisions: RwLock<DecisionReplica>,
    /// Version of the cluster policy in force (0: none from the mesh).
    policy_version: AtomicU64,
    next_decision_id: AtomicU64,
    /// Rate-limit counters.
    pub limiter: RateLimiter,
    /// GeoIP databases, when configured.
    pub geo: Option<GeoIp>,
    /// Metrics.
    pub metrics: Metrics,
    /// Security event output.
    pub events: EventSink,
    /// Who may set the client address through `X-Forwarded-For`.
    pub trusted: TrustedProxies,
    /// Input limits.
    pub limits: Limits,
    /// Request id generator.
    pub ids: RequestIds,
    /// Block counters of the policy's escalations.
    pub escalations: palisade_policy::escalation::EscalationTracker,
    /// Where decisions issued by escalations go besides this node's table (the mesh).
    pub escalation_tx: std::sync::OnceLock<tokio::sync::mpsc::Sender<Decision>>,
}

impl EdgeState {
    /// New state with an initial policy.
    pub fn new(
        node_id: String,
        policy: Policy,
        limiter: RateLimiter,
        geo: Option<GeoIp>,
        events: EventSink,
        trusted: TrustedProxies,
        limits: Limits,
    ) -> EdgeState {
        let metrics = Metrics::new();
        metrics.policy_rules.set(policy.rules.len() as i64);
        EdgeState {
            node_id,
            policy: ArcSwap::from_pointee(policy),
            decisions: RwLock::new(DecisionReplica::new()),
            policy_version: AtomicU64::new(0),
            next_decision_id: AtomicU64::new(1),
            limiter,
            geo,
            metrics,
            events,
            trusted,
            limits,
            ids: RequestIds::default(),
            escalations: Default::default(),
            escalation_tx: std::sync::OnceLock::new(),
        }
    }

    /// The active policy snapshot.
    pub fn policy(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.policy.load()
    }

    /// Atomically replaces the active policy. Requests in flight finish with the old one.
    pub fn set_policy(&self, policy: Policy) {
        self.metrics.policy_rules.set(policy.rules.len() as i64);
        self.policy.store(Arc::new(policy));
    }

    /// Runs `f` with the decision table (read lock).
    pub fn with_decisions<R>(&self, f: impl FnOnce(&DecisionSet) -> R) -> R {
        f(self.decisions.read().set())
    }

    /// Replaces the policy with a cluster policy version.
    pub fn set_cluster_policy(&self, policy: Policy, version: u64) {
        self.set_policy(policy);
        self.policy_version.store(version, Ordering::Relaxed);
    }

    /// Version of the cluster policy in force (None: none received).
    pub fn policy_version(&self) -> Option<u64> {
        match self.policy_version.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }

    /// Applies one update of the cluster decision log (at most once, in order).
    pub fn apply_update(&self, update: DecisionUpdate) -> Applied {
        let mut table = self.decisions.write();
        let applied = table.apply(update);
        self.metrics.decisions_active.set(table.set().len() as i64);
        applied
    }

    /// Last decision-log sequence applied.
    pub fn decisions_seq(&self) -> u64 {
        self.decisions.read().last_seq()
    }

    /// The decision table and its log position, for persistence.
    pub fn decisions_snapshot(&self) -> ReplicaSnapshot {
        self.decisions.read().snapshot()
    }

    /// Replaces the decision table with a persisted one.
    pub fn restore_decisions(
        &self,
        snapshot: ReplicaSnapshot,
    ) -> Result<usize, palisade_mesh::MeshError> {
        let replica = DecisionReplica::restore(snapshot)?;
        let n = replica.set().len();
        *self.decisions.write() = replica;
        self.metrics.decisions_active.set(n as i64);
        Ok(n)
    }

    /// Adds (or replaces, same scope and value) a decision. `d.id` of 0 gets a fresh id.
    pub fn add_decision(&self, mut d: Decision) -> Result<Decision, DecisionError> {
        let mut replica = self.decisions.write();
        let table = replica.set_mut();
        if d.id == 0 {
            // Fresh id, skipping ids that decisions from elsewhere (the mesh) already use.
            loop {
                d.id = self.next_decision_id.fetch_add(1, Ordering::Relaxed);
                if table.get(d.id).is_none() {
                    break;
                }
            }
        } else {
            self.next_decision_id.fetch_max(d.id + 1, Ordering::Relaxed);
        }
        table.insert(d.clone())?;
        let stored = table.get(d.id).cloned().unwrap_or(d);
        self.metrics.decisions_active.set(table.len() as i64);
        Ok(stored)
    }

    /// Every active decision (expired ones are left out).
    pub fn list_decisions(&self, now_ms: u64) -> Vec<Decision> {
        let replica = self.decisions.read();
        let mut out: Vec<Decision> = replica
            .set()
            .iter()
            .filter(|d| d.expires_at.is_none_or(|e| e > now_ms))
            .cloned()
            .collect();
        out.sort_by_key(|d| d.id);
        out
    }

    /// Deletes a decision by id.
    pub fn delete_decision(&self, id: u64) -> Option<Decision> {
        let mut replica = self.decisions.write();
        let table = replica.set_mut();
        let d = table.remove(id);
        self.metrics.decisions_active.set(table.len() as i64);
        d
    }

    /// Drops expired decisions. Looks under the read lock first, so the write
    /// lock is only taken when there is something to remove.
    pub fn purge_expired(&self, now_ms: u64) -> usize {
        let any = self
            .decisions
            .read()
            .set()
            .iter()
            .any(|d| d.expires_at.is_some_and(|e| e <= now_ms));
        if !any {
            return 0;
        }
        let mut replica = self.decisions.write();
        let table = replica.set_mut();
        let n = table.purge_expired(now_ms).len();
        self.metrics.decisions_active.set(table.len() as i64);
        n
    }

    /// Counts a block for the policy's escalations and issues the decisions
    /// that reach their threshold: enforced here at once, and sent to the mesh.
    pub fn escalate(
        &self,
        policy: &Policy,
        kind: palisade_policy::CheckKind,
        ip: std::net::IpAddr,
        geo: palisade_policy::Geo,
        now_ms: u64,
    ) {
        for d in self
            .escalations
            .observe(&policy.escalations, kind, ip, geo, &self.node_id, now_ms)
        {
            tracing::warn!(scope = d.scope.as_str(), value = %d.value, reason = %d.reason, simulated = d.simulated, "escalation issued a decision");
            match self.add_decision(d) {
                Ok(d) => {
                    if let Some(tx) = self.escalation_tx.get() {
                        if tx.try_send(d).is_err() {
                            tracing::error!("escalation decision not sent to the mesh: queue full");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "escalation decision rejected"),
            }
        }
    }

    /// Refreshes gauges that are read from state rather than counted.
    pub fn refresh_gauges(&self) {
        self.metrics.ratelimit_keys.set(self.limiter.len() as i64);
        self.metrics
            .ratelimit_evictions
            .set(self.limiter.evictions() as i64);
    }
}
