//! The nodes of a cluster as the API shows them (`GET /api/v1/nodes`):
//! each one's last heartbeat, its health, whether it runs the same CRS
//! rule set as the others, and the policy version it refused, if any.

use palisade_mesh::{Heartbeat, PolicyRefusal};

/// A node whose last heartbeat is older than this is reported unhealthy.
pub const NODE_STALE_MS: u64 = 10_000;

/// A node as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeView {
    pub node_id: String,
    pub address: String,
    pub policy_version: Option<u64>,
    pub decisions: u64,
    pub decisions_seq: u64,
    pub last_heartbeat_ms: u64,
    pub healthy: bool,
    /// CRS version and rule-file digest the node's WAF runs (None: no WAF,
    /// or a node too old to say).
    pub crs_version: Option<String>,
    pub crs_digest: Option<String>,
    /// The node runs other CRS rules than most nodes: another digest, a
    /// WAF where most have none, or none where most have one.
    pub crs_differs: bool,
    /// The newest policy version the node refused (it keeps enforcing
    /// `policy_version`), and why.
    pub policy_refused: Option<PolicyRefusal>,
}

/// The views of these heartbeats at `now_ms`, by node id.
pub fn views(list: Vec<Heartbeat>, now_ms: u64) -> Vec<NodeView> {
    let mut views: Vec<NodeView> = list
        .into_iter()
        .map(|h| NodeView {
            healthy: now_ms.saturating_sub(h.time_ms) <= NODE_STALE_MS,
            node_id: h.node_id,
            address: h.address,
            policy_version: h.policy_version,
            decisions: h.decisions,
            decisions_seq: h.decisions_seq,
            last_heartbeat_ms: h.time_ms,
            crs_version: h.crs_version,
            crs_digest: h.crs_digest,
            crs_differs: false,
            policy_refused: h.policy_refused,
        })
        .collect();
    views.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    flag_crs_differences(&mut views);
    views
}

/// Flags the nodes whose CRS digest is not the most common one (on a tie,
/// the one seen first in node order is the reference).
fn flag_crs_differences(views: &mut [NodeView]) {
    let mut counts: Vec<(Option<&str>, usize)> = Vec::new();
    for v in views.iter() {
        let d = v.crs_digest.as_deref();
        match counts.iter_mut().find(|(seen, _)| *seen == d) {
            Some((_, n)) => *n += 1,
            None => counts.push((d, 1)),
        }
    }
    if counts.len() < 2 {
        return;
    }
    let mut reference = counts[0];
    for &c in &counts {
        if c.1 > reference.1 {
            reference = c;
        }
    }
    let reference = reference.0.map(str::to_string);
    for v in views.iter_mut() {
        v.crs_differs = v.crs_digest != reference;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(node: &str, digest: Option<&str>) -> Heartbeat {
        Heartbeat {
            node_id: node.into(),
            address: format!("{node}:8080"),
            policy_version: Some(1),
            decisions: 0,
            decisions_seq: 0,
            time_ms: 1_000,
            crs_version: digest.map(|_| "4.28.0".into()),
            crs_digest: digest.map(str::to_string),
            policy_refused: None,
        }
    }

    fn differs(list: Vec<Heartbeat>) -> Vec<(String, bool)> {
        views(list, 2_000)
            .into_iter()
            .map(|v| (v.node_id, v.crs_differs))
            .collect()
    }

    #[test]
    fn the_odd_rule_set_out_is_flagged() {
        let same = differs(vec![hb("b", Some("sha256:1")), hb("a", Some("sha256:1"))]);
        assert_eq!(same, vec![("a".into(), false), ("b".into(), false)]);
        let odd = differs(vec![
            hb("a", Some("sha256:1")),
            hb("b", Some("sha256:2")),
            hb("c", Some("sha256:1")),
            hb("d", None),
        ]);
        assert_eq!(
            odd,
            vec![
                ("a".into(), false),
                ("b".into(), true),
                ("c".into(), false),
                ("d".into(), true)
            ]
        );
        // Old nodes that report nothing, all alike: nothing to flag.
        assert!(differs(vec![hb("a", None), hb("b", None)])
            .iter()
            .all(|(_, d)| !d));
    }

    #[test]
    fn health_follows_the_last_heartbeat() {
        let v = views(vec![hb("a", None)], 1_000 + NODE_STALE_MS + 1);
        assert!(!v[0].healthy);
        assert!(views(vec![hb("a", None)], 1_000)[0].healthy);
    }
}
