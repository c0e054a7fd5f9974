//! Runs the rounds of the global rate limits: every [`ROUND`] (Δ) this edge
//! reports the counts its `scope = "global"` limits recorded since the last
//! round to the mesh, and applies the other nodes' reports as they arrive.
//! The algorithm and its bounds are in `palisade_policy::ratelimit::global`
//! and `docs/ratelimit.md`; this module is the thin async loop around it.
//!
//! The request path never waits on it: a request under a global limit only
//! touches the counter of its key in [`EdgeState::global_limiter`].
//!
//! What it must not do: block on the mesh while holding a counter, or keep
//! anything per client key (the limiter does, capped).

use crate::metrics::reg;
use crate::now_ms;
use crate::state::EdgeState;
use palisade_mesh::Mesh;
use palisade_policy::ratelimit::global::{self, GlobalLimiter, Mode, Peers};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Δ: how often counts are reported.
pub const ROUND: Duration = Duration::from_millis(50);

/// A report slower than this is given up (counted as failed).
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

/// Metrics of the global rate limits.
#[derive(Clone)]
pub struct GlobalRateMetrics {
    /// Requests judged on the local share of a global limit while cut off from the mesh.
    pub partitioned: IntCounter,
    /// Requests refused because this node's allowance of a global limit was spent.
    pub waiting: IntCounter,
    /// 1 while this node counts itself cut off from the other nodes.
    pub partitioned_now: IntGauge,
    /// Nodes sharing the global limits, this one included (0: no exchange runs).
    pub nodes: IntGauge,
    /// Count reports by direction and result.
    pub reports: IntCounterVec,
    /// Counters of global limits in memory.
    pub keys: IntGauge,
    /// Counters of global limits evicted because the table was full (since start).
    pub evictions: IntGauge,
}

impl GlobalRateMetrics {
    /// Creates the metrics and registers them in `r`.
    pub fn new(r: &Registry) -> Self {
        GlobalRateMetrics {
            partitioned: reg(
                r,
                IntCounter::new(
                    "palisade_ratelimit_partitioned_total",
                    "Requests judged on this node's share of a global rate limit while cut off from the mesh",
                )
                .expect("static metric"),
            ),
            waiting: reg(
                r,
                IntCounter::new(
                    "palisade_ratelimit_global_waiting_total",
                    "Requests refused because this node's allowance of a global rate limit was spent until the next round",
                )
                .expect("static metric"),
            ),
            partitioned_now: reg(
                r,
                IntGauge::new(
                    "palisade_ratelimit_global_partitioned",
                    "1 while this node counts itself cut off from the nodes it shares global rate limits with",
                )
                .expect("static metric"),
            ),
            nodes: reg(
                r,
                IntGauge::new(
                    "palisade_ratelimit_global_nodes",
                    "Nodes sharing the global rate limits, this one included (0: no exchange)",
                )
                .expect("static metric"),
            ),
            reports: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_ratelimit_global_reports_total",
                        "Count reports of the global rate limits, by direction (sent, received) and result",
                    ),
                    &["direction", "result"],
                )
                .expect("static metric"),
            ),
            keys: reg(
                r,
                IntGauge::new(
                    "palisade_ratelimit_global_keys",
                    "Counters of global rate limits in memory",
                )
                .expect("static metric"),
            ),
            evictions: reg(
                r,
                IntGauge::new(
                    "palisade_ratelimit_global_evictions",
                    "Counters of global rate limits evicted because the table was full (since start)",
                )
                .expect("static metric"),
            ),
        }
    }

    /// Copies the limiter's counters into the metrics.
    fn refresh(&self, limiter: &GlobalLimiter, mode: Mode) {
        let stats = &limiter.stats;
        let catch_up = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        catch_up(&self.partitioned, stats.partitioned.load(Ordering::Relaxed));
        catch_up(&self.waiting, stats.waiting.load(Ordering::Relaxed));
        let (nodes, cut) = match mode {
            Mode::Alone => (0, 0),
            Mode::Connected { nodes, .. } | Mode::Doubt { nodes, .. } => (nodes, 0),
            Mode::Partitioned { nodes } => (nodes, 1),
        };
        self.nodes.set(i64::from(nodes));
        self.partitioned_now.set(cut);
        self.keys.set(limiter.len() as i64);
        self.evictions.set(limiter.evictions() as i64);
    }
}

/// Runs the rounds forever (from `sync::run`, once the mesh is joined).
pub async fn exchange<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>, round: Duration) {
    let limiter = &state.global_limiter;
    let metrics = &state.metrics.global_rate;
    let round_ms = u64::try_from(round.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut peers = Peers::default();
    let mut tick = tokio::time::interval(round);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reports = None;
    let mut refused = 0;
    loop {
        if reports.is_none() {
            match mesh.subscribe_counts().await {
                Ok(s) => reports = Some(s),
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to count reports; retrying"),
            }
        }
        tokio::select! {
            _ = tick.tick() => {
                let now = now_ms();
                let mode = peers.mode(now, round_ms);
                limiter.set_mode(mode);
                let entries = limiter.drain(now, mode);
                for report in global::encode(&state.node_id, &entries) {
                    let sent = tokio::time::timeout(PUBLISH_TIMEOUT, mesh.publish_counts(report)).await;
                    let result = match sent {
                        Ok(Ok(())) => "ok",
                        Ok(Err(_)) | Err(_) => "failed",
                    };
                    metrics.reports.with_label_values(&["sent", result]).inc();
                }
                if peers.refused > refused {
                    metrics
                        .reports
                        .with_label_values(&["received", "too_many_peers"])
                        .inc_by(peers.refused - refused);
                    refused = peers.refused;
                }
                metrics.refresh(limiter, mode);
            }
            report = async { reports.as_mut()?.next().await }, if reports.is_some() => {
                let Some(report) = report else {
                    // The subscription ended: subscribe again at the next turn.
                    reports = None;
                    tokio::time::sleep(round).await;
                    continue;
                };
                match global::decode(&report) {
                    Ok(r) if r.node == state.node_id => {}
                    Ok(r) => {
                        let now = now_ms();
                        if peers.heard(&r.node, now) {
                            limiter.apply(&r.entries, now);
                            metrics.reports.with_label_values(&["received", "ok"]).inc();
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "skipping an undecodable count report");
                        metrics.reports.with_label_values(&["received", "invalid"]).inc();
                    }
                }
            }
        }
    }
}
