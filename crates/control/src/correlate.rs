//! Cross-node correlation: turns the events of many nodes into incidents.
//!
//! Pure (time comes from the events). Two patterns, each within a sliding
//! `window`: the same source blocked by at least `min_nodes_per_source`
//! different nodes, and the same rule blocking on at least
//! `min_nodes_per_rule` different nodes. An incident opens once per pattern
//! and key, stays open while events keep coming, and closes after a quiet
//! window; then it can open again.

use palisade_policy::SecurityEvent;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Thresholds of the correlator.
#[derive(Debug, Clone)]
pub struct CorrelationConfig {
    /// The window over which nodes are counted, in ms.
    pub window_ms: u64,
    /// Distinct nodes blocking one source that open an incident.
    pub min_nodes_per_source: usize,
    /// Distinct nodes on which one rule blocks that open an incident.
    pub min_nodes_per_rule: usize,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            window_ms: 60_000,
            min_nodes_per_source: 2,
            min_nodes_per_rule: 3,
        }
    }
}

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// One source blocked across nodes (`key` is the client address).
    SourceAcrossNodes,
    /// One rule blocking across nodes (`key` is the rule id).
    RuleAcrossNodes,
}

/// An incident as the correlator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// What it is about.
    pub kind: IncidentKind,
    /// The source address or rule id.
    pub key: String,
    /// The nodes involved.
    pub nodes: BTreeSet<String>,
    /// Blocks counted while it is open.
    pub events: u64,
    /// First and last block (ms since the epoch).
    pub first_ms: u64,
    /// Last block.
    pub last_ms: u64,
}

#[derive(Debug, Default)]
struct Track {
    /// node -> last block time
    nodes: HashMap<String, u64>,
    open: Option<Incident>,
}

/// The correlator's state.
#[derive(Debug, Default)]
pub struct Correlator {
    cfg: CorrelationConfig,
    tracks: HashMap<(IncidentKind, String), Track>,
}

/// What observing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// An incident opened.
    Opened(Incident),
    /// An open incident grew.
    Updated(Incident),
}

impl Correlator {
    /// A correlator with these thresholds.
    pub fn new(cfg: CorrelationConfig) -> Self {
        Correlator {
            cfg,
            tracks: HashMap::new(),
        }
    }

    /// Feeds one event; only enforced blocks by rules and rate limits count
    /// (blocks by decisions are already the cluster's answer).
    pub fn observe(&mut self, ev: &SecurityEvent) -> Vec<Observed> {
        if ev.simulate || ev.status.is_none() || ev.check == palisade_policy::CheckKind::Decision {
            return Vec::new();
        }
        let mut out = Vec::new();
        let keys = [
            (
                IncidentKind::SourceAcrossNodes,
                ev.client_ip.to_string(),
                self.cfg.min_nodes_per_source,
            ),
            (
                IncidentKind::RuleAcrossNodes,
                ev.rule_id.clone(),
                self.cfg.min_nodes_per_rule,
            ),
        ];
        let window = self.cfg.window_ms;
        for (kind, key, min_nodes) in keys {
            let t = self.tracks.entry((kind, key.clone())).or_default();
            t.nodes.insert(ev.node.clone(), ev.time_ms);
            t.nodes
                .retain(|_, last| last.saturating_add(window) > ev.time_ms);
            if let Some(inc) = &mut t.open {
                if inc.last_ms.saturating_add(window) <= ev.time_ms {
                    t.open = None; // closed by a quiet window
                } else {
                    inc.nodes.insert(ev.node.clone());
                    inc.events += 1;
                    inc.last_ms = inc.last_ms.max(ev.time_ms);
                    out.push(Observed::Updated(inc.clone()));
                    continue;
                }
            }
            if t.nodes.len() >= min_nodes.max(1) {
                let inc = Incident {
                    kind,
                    key,
                    nodes: t.nodes.keys().cloned().collect(),
                    events: t.nodes.len() as u64,
                    first_ms: t.nodes.values().copied().min().unwrap_or(ev.time_ms),
                    last_ms: ev.time_ms,
                };
                t.open = Some(inc.clone());
                out.push(Observed::Opened(inc));
            }
        }
        // Bound memory: drop tracks with nothing recent and nothing open.
        if self.tracks.len() > 100_000 {
            self.tracks
                .retain(|_, t| t.open.is_some() || !t.nodes.is_empty());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::CheckKind;

    fn block(node: &str, ip: &str, rule: &str, t: u64) -> SecurityEvent {
        SecurityEvent {
            time_ms: t,
            node: node.into(),
            request_id: format!("{node}-{t}"),
            client_ip: ip.parse().unwrap(),
            check: CheckKind::Rule,
            rule_id: rule.into(),
            action: "block".into(),
            simulate: false,
            method: "GET".into(),
            host: "h".into(),
            path: "/".into(),
            status: Some(403),
            waf: None,
        }
    }

    fn opened(o: &[Observed]) -> Vec<(IncidentKind, String)> {
        o.iter()
            .filter_map(|x| match x {
                Observed::Opened(i) => Some((i.kind, i.key.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn source_seen_by_two_nodes_opens_once() {
        let mut c = Correlator::new(CorrelationConfig {
            window_ms: 1000,
            min_nodes_per_source: 2,
            min_nodes_per_rule: 9,
        });
        assert!(opened(&c.observe(&block("a", "192.0.2.1", "r", 0))).is_empty());
        assert!(opened(&c.observe(&block("a", "192.0.2.1", "r", 10))).is_empty());
        let o = c.observe(&block("b", "192.0.2.1", "r", 20));
        assert_eq!(
            opened(&o),
            vec![(IncidentKind::SourceAcrossNodes, "192.0.2.1".into())]
        );
        let o = c.observe(&block("c", "192.0.2.1", "r", 30));
        assert!(opened(&o).is_empty());
        assert!(matches!(&o[0], Observed::Updated(i) if i.nodes.len() == 3));
        // After a quiet window it closes; a single node then does not reopen it.
        assert!(opened(&c.observe(&block("a", "192.0.2.1", "r", 5000))).is_empty());
    }

    #[test]
    fn nodes_outside_the_window_do_not_count_and_simulations_never_do() {
        let mut c = Correlator::new(CorrelationConfig {
            window_ms: 100,
            min_nodes_per_source: 2,
            min_nodes_per_rule: 2,
        });
        c.observe(&block("a", "192.0.2.1", "r1", 0));
        assert!(opened(&c.observe(&block("b", "192.0.2.1", "r2", 500))).is_empty());
        let mut sim = block("c", "192.0.2.9", "r3", 600);
        sim.simulate = true;
        c.observe(&sim);
        let mut sim2 = block("d", "192.0.2.9", "r3", 601);
        sim2.simulate = true;
        assert!(c.observe(&sim2).is_empty());
        // Blocks by decisions do not count either.
        let mut d1 = block("e", "192.0.2.8", "7", 700);
        d1.check = CheckKind::Decision;
        let mut d2 = block("f", "192.0.2.8", "7", 701);
        d2.check = CheckKind::Decision;
        c.observe(&d1);
        assert!(c.observe(&d2).is_empty());
    }

    #[test]
    fn rule_across_nodes() {
        let mut c = Correlator::new(CorrelationConfig {
            window_ms: 1000,
            min_nodes_per_source: 99,
            min_nodes_per_rule: 3,
        });
        c.observe(&block("a", "192.0.2.1", "sqli", 0));
        c.observe(&block("b", "192.0.2.2", "sqli", 1));
        let o = c.observe(&block("c", "192.0.2.3", "sqli", 2));
        assert_eq!(
            opened(&o),
            vec![(IncidentKind::RuleAcrossNodes, "sqli".into())]
        );
    }
}
