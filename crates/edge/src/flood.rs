//! Flood mitigation on the edge: counts requests for the policy's
//! `[[floods]]` (`palisade_policy::flood`), turns fires into decisions that
//! every node enforces, shares the learned baselines with the fleet, and
//! tells whether a host is in under-attack mode.
//!
//! The request path does one sharded counter update per matching flood
//! entry and allocates nothing unless an entry fires. Windows are closed and
//! baselines learned by the housekeeping thread ([`roll`]).

use crate::metrics::reg;
use crate::model::without_port;
use crate::state::EdgeState;
use palisade_mesh::Mesh;
use palisade_policy::flood::{FloodStats, Seen};
use palisade_policy::learn::FleetView;
use palisade_policy::{DecisionAction, Policy, Request};
use prometheus::{GaugeVec, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::Arc;
use std::time::Duration;

/// The flood and under-attack metrics.
pub struct FloodMetrics {
    /// Flood entries that fired, by flood id and action.
    pub fires: IntCounterVec,
    /// Keys the flood counters track.
    pub keys: IntGauge,
    /// Keys not tracked because a flood entry was full (since start).
    pub untracked: IntGauge,
    /// The baseline in effect of source floods (requests per window), by flood id.
    pub baseline: GaugeVec,
    /// Other nodes whose baselines this node merged.
    pub peers: IntGauge,
    /// Hosts in under-attack mode.
    pub attack_mode_hosts: IntGauge,
}

impl FloodMetrics {
    /// Registers the metrics in `r`.
    pub fn new(r: &Registry) -> FloodMetrics {
        FloodMetrics {
            fires: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_flood_fires_total",
                        "Flood entries that fired (a rate above the learned baseline), by flood id and action",
                    ),
                    &["flood", "action"],
                )
                .expect("static metric"),
            ),
            keys: reg(
                r,
                IntGauge::new("palisade_flood_keys", "Keys the flood counters track")
                    .expect("static metric"),
            ),
            untracked: reg(
                r,
                IntGauge::new(
                    "palisade_flood_untracked",
                    "Requests whose key the flood counters could not track because the entry was full (since start)",
                )
                .expect("static metric"),
            ),
            baseline: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "palisade_flood_baseline",
                        "Baseline in effect of per-source floods (requests per window, fleet-merged), by flood id",
                    ),
                    &["flood"],
                )
                .expect("static metric"),
            ),
            peers: reg(
                r,
                IntGauge::new(
                    "palisade_flood_peers",
                    "Other nodes whose flood baselines this node merged",
                )
                .expect("static metric"),
            ),
            attack_mode_hosts: reg(
                r,
                IntGauge::new(
                    "palisade_attack_mode_hosts",
                    "Hosts in under-attack mode (enforced host decisions)",
                )
                .expect("static metric"),
            ),
        }
    }
}

/// The name of the flood baselines in the mesh's statistics.
pub const STATS_NAME: &str = "floods";

/// How often the baselines are shared with the fleet.
pub const SHARE_EVERY: Duration = Duration::from_secs(2);

/// Peers whose baselines are kept at most.
const MAX_PEERS: usize = 1024;

/// Whether the request's host is in (enforced) under-attack mode. Costs one
/// emptiness check when no host is.
#[inline]
pub fn under_attack(decisions: &palisade_policy::DecisionSet, host: &str, now: u64) -> bool {
    decisions.has_hosts()
        && decisions
            .host_decision(without_port(host), now)
            .is_some_and(|d| d.action == DecisionAction::AttackMode && !d.simulated)
}

/// Counts `req` for the policy's floods; a fire issues its decision (enforced
/// here at once and sent to the mesh) or, for `log`, only an event.
pub fn observe(st: &EdgeState, policy: &Policy, req: &Request<'_>, under_attack: bool, now: u64) {
    if policy.floods.is_empty() {
        return;
    }
    let seen = Seen {
        ip: req.client_ip,
        geo: req.geo,
        host: without_port(req.host),
        path: req.path(),
        under_attack,
    };
    let fires = st.floods.observe(
        &policy.floods,
        &policy.attack_mode,
        &seen,
        |f| f.expression.as_ref().is_none_or(|e| e.eval(req)),
        now,
    );
    for fire in fires {
        st.metrics
            .flood
            .fires
            .with_label_values(&[fire.flood.as_str(), fire.action.as_str()])
            .inc();
        tracing::warn!(
            flood = %fire.flood,
            per = fire.per.as_str(),
            action = fire.action.as_str(),
            scope = fire.target.0.as_str(),
            value = %fire.target.1,
            count = fire.count,
            threshold = fire.threshold,
            baseline = fire.baseline,
            simulated = fire.simulate,
            "flood detected"
        );
        if let Some(d) = fire.decision(&st.node_id, now) {
            st.issue_decision(d, "flood");
        }
    }
}

/// Closes the flood windows (housekeeping thread) and updates the gauges.
pub fn roll(st: &EdgeState, now: u64) {
    let hosts = st.with_decisions(|d| {
        d.host_decisions()
            .filter(|d| {
                d.action == DecisionAction::AttackMode && !d.simulated && !d.is_expired(now)
            })
            .count()
    });
    st.metrics.flood.attack_mode_hosts.set(hosts as i64);
    let policy = st.policy();
    if policy.floods.is_empty() {
        return;
    }
    let report = st.floods.roll(&policy.floods, now);
    let m = &st.metrics.flood;
    m.keys.set(report.keys as i64);
    m.untracked.set(report.untracked as i64);
    for (id, base) in &report.baselines {
        m.baseline.with_label_values(&[id]).set(*base);
    }
}

/// Shares this node's baselines and takes the fleet's, for as long as the
/// edge runs. Without `[[floods]]` it only waits.
pub async fn share<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>) {
    let own = palisade_mesh::mesh::token(&state.node_id);
    let mut view: FleetView<FloodStats> = FleetView::default();
    loop {
        tokio::time::sleep(SHARE_EVERY).await;
        if state.policy().floods.is_empty() {
            continue;
        }
        let local = state.floods.local_stats();
        match serde_json::to_vec(&local) {
            Ok(bytes) => {
                if let Err(e) = mesh.publish_stats(STATS_NAME, &state.node_id, bytes).await {
                    tracing::debug!(error = %e, "could not share the flood baselines");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not encode the flood baselines"),
        }
        let states = match mesh.stats(STATS_NAME).await {
            Ok(s) => s,
            Err(e) => {
                // Keep the peers' last baselines.
                tracing::debug!(error = %e, "could not fetch the fleet's flood baselines");
                continue;
            }
        };
        let alive: std::collections::BTreeSet<String> =
            states.iter().map(|(n, _)| n.clone()).collect();
        view.retain_peers(|n| alive.contains(n));
        for (node, bytes) in states {
            if node == own {
                continue;
            }
            match serde_json::from_slice::<FloodStats>(&bytes) {
                Ok(s) => {
                    view.set_peer(&node, s, MAX_PEERS);
                }
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "a node's flood baselines did not decode; ignored")
                }
            }
        }
        // The peers' merge only: this node's own baselines are already in effect.
        let peers = view.rebuild(&FloodStats::default()).clone();
        state.floods.set_fleet(&peers);
        state.metrics.flood.peers.set(view.peers() as i64);
    }
}
