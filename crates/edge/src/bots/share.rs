//! The bot defence's background tasks, on the edge's sync runtime:
//!
//! - the key ring: read from the mesh every [`KEYRING_EVERY`] and installed
//!   when it changed (a rotation adds a key; older keys keep verifying);
//! - behaviour: this node's share of its clients and route baselines is
//!   published every [`SHARE_EVERY`], the other nodes' shares are merged
//!   into the fleet index the scores read;
//! - failed logins: reports are broadcast as they come (coalesced for a few
//!   milliseconds), and every report of every node, this one's included, is
//!   counted; what crosses a threshold becomes a decision (issued by the
//!   node whose report crossed it) or a marked username (on every node);
//! - the crawler DNS worker ([`super::dns::run`]).

use crate::state::EdgeState;
use palisade_bots::behaviour::{FleetIndex, FleetShare, STATS_NAME};
use palisade_bots::clearance::KeyRing;
use palisade_bots::logins::{decode, Action, Escalation};
use palisade_mesh::Mesh;
use palisade_policy::decisions::{Decision, DecisionAction};
use palisade_policy::learn::FleetView;
use std::sync::Arc;
use std::time::Duration;

/// How often the key ring is read.
pub const KEYRING_EVERY: Duration = Duration::from_secs(2);
/// How often behaviour is shared.
pub const SHARE_EVERY: Duration = Duration::from_secs(1);
/// Most other nodes merged.
const MAX_PEERS: usize = 256;

/// Runs every task for as long as the edge runs.
pub async fn run<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>) {
    let _ = tokio::join!(
        follow_keyring(state.clone(), mesh.clone()),
        share_behaviour(state.clone(), mesh.clone()),
        send_logins(state.clone(), mesh.clone()),
        receive_logins(state.clone(), mesh),
        super::dns::run(state),
    );
}

async fn follow_keyring<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>) {
    let mut last: Option<Vec<u8>> = None;
    loop {
        match mesh.keyring().await {
            Ok(Some(bytes)) if last.as_ref() != Some(&bytes) => match KeyRing::from_json(&bytes) {
                Ok(ring) => {
                    let ids: Vec<u32> = ring.keys.iter().map(|k| k.id).collect();
                    state.bots.clearances.set_keys(ring);
                    tracing::info!(keys = ?ids, "challenge key ring installed");
                    last = Some(bytes);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "key ring from the mesh refused; the running keys stay");
                    last = Some(bytes);
                }
            },
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "could not read the key ring"),
        }
        tokio::time::sleep(KEYRING_EVERY).await;
    }
}

async fn share_behaviour<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>) {
    let own_token = palisade_mesh::mesh::token(&state.node_id);
    let mut view: FleetView<FleetShare> = FleetView::default();
    loop {
        tokio::time::sleep(SHARE_EVERY).await;
        let scoring = state.policy().bots.as_ref().is_some_and(|b| b.score);
        let m = &state.metrics.bots;
        let t = state.bots.table.stats();
        m.tables
            .with_label_values(&["clients"])
            .set(t.clients as i64);
        m.tables
            .with_label_values(&["clearance_cache"])
            .set(state.bots.clearances.stats().cache_entries as i64);
        let l = state.bots.logins.stats();
        m.tables
            .with_label_values(&["login_sources"])
            .set(l.sources as i64);
        m.tables
            .with_label_values(&["login_usernames"])
            .set(l.usernames as i64);
        if let Some(v) = state.bots.verifier() {
            m.tables
                .with_label_values(&["crawler_cache"])
                .set(v.verifier.stats().cache_size as i64);
        }
        if !scoring {
            continue;
        }
        let now = crate::now_ms();
        let own = state.bots.table.snapshot(now);
        if let Err(e) = mesh
            .publish_stats(STATS_NAME, &state.node_id, own.to_bytes())
            .await
        {
            tracing::debug!(error = %e, "could not share the behaviour statistics");
        }
        let states = match mesh.stats(STATS_NAME).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "could not fetch the fleet's behaviour statistics");
                continue;
            }
        };
        let alive: std::collections::BTreeSet<String> =
            states.iter().map(|(n, _)| n.clone()).collect();
        view.retain_peers(|n| alive.contains(n));
        for (node, bytes) in states {
            if node == own_token {
                continue;
            }
            match FleetShare::from_bytes(&bytes) {
                Ok(s) => {
                    view.set_peer(&node, s, MAX_PEERS);
                }
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "a node's behaviour statistics did not decode; ignored")
                }
            }
        }
        // The other nodes' merge: this node's own clients are live in its table.
        let peers = view.rebuild(&FleetShare::default());
        state
            .bots
            .fleet
            .store(Arc::new(FleetIndex::build(peers, &own)));
        m.peers.set(view.peers() as i64);
    }
}

async fn send_logins<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>) {
    loop {
        state.bots.reports_ready.notified().await;
        // Two milliseconds to coalesce a burst into one message.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let batches = state.bots.reports.lock().take_all();
        for b in batches {
            if let Err(e) = mesh.publish_logins(b).await {
                tracing::warn!(error = %e, "failed-login reports not sent");
            }
        }
    }
}

async fn receive_logins<M: Mesh>(state: Arc<EdgeState>, mesh: Arc<M>) {
    loop {
        let mut sub = match mesh.subscribe_logins().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "could not subscribe to failed-login reports");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(bytes) = sub.next().await {
            let reports = match decode(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "failed-login reports did not decode; ignored");
                    continue;
                }
            };
            let policy = state.policy();
            let Some(bots) = policy.bots.as_ref() else {
                continue;
            };
            let now = crate::now_ms();
            for r in &reports {
                let Some(spec) = bots.logins.get(usize::from(r.login)) else {
                    continue;
                };
                for esc in state.bots.logins.record(r, spec, now) {
                    escalate(&state, esc, r.node == state.node_id, now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn escalate(state: &EdgeState, esc: Escalation, mine: bool, now: u64) {
    let m = &state.metrics.bots;
    match esc {
        Escalation::Source {
            scope,
            value,
            action,
            duration_ms,
            reason,
        } => {
            let d = Decision {
                id: 0,
                scope,
                value,
                action: match action {
                    Action::Ban => DecisionAction::Ban,
                    Action::Challenge => DecisionAction::Challenge,
                },
                reason,
                origin: format!("logins:{}", state.node_id),
                created_at: now,
                expires_at: Some(now.saturating_add(duration_ms)),
                simulated: false,
            };
            if mine {
                // The node whose report crossed the threshold issues the
                // decision for the fleet (through the mesh's log).
                m.login_escalations
                    .with_label_values(&["source", action.as_str()])
                    .inc();
                state.issue_decision(d, "account protection");
            } else {
                // Every other node counted the same reports: it enforces at
                // once, without waiting for the issuer's decision to arrive
                // (which then replaces this local one, same source).
                state.enforce_locally(d);
            }
        }
        Escalation::Username { action, .. } => {
            m.login_escalations
                .with_label_values(&["username", action.as_str()])
                .inc();
            tracing::warn!(
                action = action.as_str(),
                "a username failed from many sources: its login attempts are challenged fleet-wide"
            );
        }
    }
}
