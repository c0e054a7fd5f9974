//! After `palisade policy apply`: which edges run the new version, which
//! refused it and why (from `GET /api/v1/nodes`).

use crate::client::Api;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Where one edge stands with a policy version.
#[derive(Debug, Serialize)]
pub struct EdgeStatus {
    pub node_id: String,
    /// The version it enforces (None: none yet).
    pub policy_version: Option<u64>,
    /// It runs the version (or a newer one).
    pub applied: bool,
    /// Why it refused the version (or a newer one).
    pub refused: Option<String>,
    /// Its last heartbeat is stale: it is not waited for.
    pub stale: bool,
}

fn status(n: &serde_json::Value, version: u64) -> EdgeStatus {
    let running = n["policy_version"].as_u64();
    let refused = n["policy_refused"]
        .get("version")
        .and_then(|v| v.as_u64())
        .filter(|&v| v >= version)
        .map(|_| {
            n["policy_refused"]["reason"]
                .as_str()
                .unwrap_or("")
                .to_string()
        });
    EdgeStatus {
        node_id: n["node_id"].as_str().unwrap_or("").to_string(),
        policy_version: running,
        applied: running.is_some_and(|v| v >= version),
        refused,
        stale: !n["healthy"].as_bool().unwrap_or(false),
    }
}

/// Polls the nodes until every healthy edge applied or refused `version`,
/// or `wait` passed; returns each edge's status (empty without waiting, or
/// when the deployment has no nodes list).
pub async fn wait(api: &Api, version: u64, wait: Duration) -> anyhow::Result<Vec<EdgeStatus>> {
    if wait.is_zero() {
        return Ok(Vec::new());
    }
    let deadline = Instant::now() + wait;
    loop {
        let nodes: Vec<serde_json::Value> =
            match api.call(reqwest::Method::GET, "/api/v1/nodes", None).await {
                Ok(r) => r.json().await?,
                // `palisade up --policy` has no nodes list (it takes no versions either).
                Err(e) if e.to_string().starts_with("501") => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
        let edges: Vec<EdgeStatus> = nodes.iter().map(|n| status(n, version)).collect();
        let settled = edges
            .iter()
            .all(|e| e.stale || e.applied || e.refused.is_some());
        if (settled && !edges.is_empty()) || Instant::now() >= deadline {
            return Ok(edges);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The per-edge table printed after `policy apply`.
pub fn render(version: u64, edges: &[EdgeStatus]) -> String {
    if edges.is_empty() {
        return "no edge has reported yet (palisade nodes shows them once they do)\n".into();
    }
    let rows: Vec<Vec<String>> = edges
        .iter()
        .map(|e| {
            let running = e
                .policy_version
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "-".into());
            let state = match (&e.refused, e.applied, e.stale) {
                (Some(_), _, _) => format!("REFUSED v{version}"),
                (None, true, _) => "applied".into(),
                (None, false, true) => "stale (not waited for)".into(),
                (None, false, false) => "not yet applied".into(),
            };
            vec![
                e.node_id.clone(),
                running,
                state,
                e.refused.as_deref().map(one_line).unwrap_or_default(),
            ]
        })
        .collect();
    crate::table::render(&["NODE", "RUNS", "STATUS", "REASON"], &rows)
}

/// A reason on one line (its lines joined with ` | `).
pub fn one_line(reason: &str) -> String {
    reason
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_from_nodes() {
        let n = serde_json::json!({"node_id": "a", "policy_version": 3, "healthy": true,
            "policy_refused": {"version": 4, "reason": "[waf] extra_rules \"/etc/passwd\": outside\nmore"}});
        let s = status(&n, 4);
        assert!(!s.applied && s.refused.is_some());
        // An older refusal does not count against a newer version.
        assert!(status(&n, 5).refused.is_none());
        let ok = serde_json::json!({"node_id": "b", "policy_version": 4, "healthy": true});
        assert!(status(&ok, 4).applied);
        let table = render(4, &[s, status(&ok, 4)]);
        assert!(
            table.contains("REFUSED v4") && table.contains("outside | more"),
            "{table}"
        );
        assert!(table.contains("applied"), "{table}");
    }
}
