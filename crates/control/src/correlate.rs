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
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

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

/// What a track follows: a client address or a rule id. (An address is
/// kept as one, not as text: a flood's tracks are mostly addresses.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TrackKey {
    Source(IpAddr),
    Rule(Box<str>),
}

impl TrackKey {
    fn kind(&self) -> IncidentKind {
        match self {
            TrackKey::Source(_) => IncidentKind::SourceAcrossNodes,
            TrackKey::Rule(_) => IncidentKind::RuleAcrossNodes,
        }
    }

    fn text(&self) -> String {
        match self {
            TrackKey::Source(ip) => ip.to_string(),
            TrackKey::Rule(r) => r.to_string(),
        }
    }
}

/// One pattern's state for one key: 32 bytes, plus the node list (one
/// entry, 24 bytes, in the common case of a source seen by one node).
#[derive(Debug, Default)]
struct Track {
    /// (node, last block time), one entry per node.
    nodes: Vec<(Arc<str>, u64)>,
    open: Option<Box<Incident>>,
}

/// Node names held at most by the interner; past it, it starts over (tracks
/// keep their names; only sharing is lost).
const MAX_NODE_NAMES: usize = 4096;

/// The correlator's state.
#[derive(Debug)]
pub struct Correlator {
    cfg: CorrelationConfig,
    tracks: HashMap<TrackKey, Track>,
    /// Node names, shared by every track that saw the node.
    node_names: HashSet<Arc<str>>,
    /// Tracks held at most ([`MAX_TRACKS`] by default).
    max_tracks: usize,
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
        Self::with_max_tracks(cfg, MAX_TRACKS)
    }

    /// A correlator holding at most `max_tracks` tracks (at least 10).
    pub fn with_max_tracks(cfg: CorrelationConfig, max_tracks: usize) -> Self {
        Correlator {
            cfg,
            tracks: HashMap::new(),
            node_names: HashSet::new(),
            max_tracks: max_tracks.max(10),
        }
    }

    /// The shared name of `node`.
    fn node_name(&mut self, node: &str) -> Arc<str> {
        if let Some(n) = self.node_names.get(node) {
            return n.clone();
        }
        if self.node_names.len() >= MAX_NODE_NAMES {
            self.node_names.clear();
        }
        let n: Arc<str> = Arc::from(node);
        self.node_names.insert(n.clone());
        n
    }

    /// Feeds one event; only enforced blocks by rules and rate limits count
    /// (blocks by decisions are already the cluster's answer; a challenge
    /// is not an attack: every new browser a challenging rule sees gets one).
    pub fn observe(&mut self, ev: &SecurityEvent) -> Vec<Observed> {
        if ev.simulate
            || ev.status.is_none()
            || ev.check == palisade_policy::CheckKind::Decision
            || ev.action == palisade_policy::Action::Challenge.as_str()
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        let node = self.node_name(&ev.node);
        let keys = [
            (
                TrackKey::Source(ev.client_ip),
                self.cfg.min_nodes_per_source,
            ),
            (
                TrackKey::Rule(ev.rule_id.as_str().into()),
                self.cfg.min_nodes_per_rule,
            ),
        ];
        let window = self.cfg.window_ms;
        for (key, min_nodes) in keys {
            let kind = key.kind();
            let t = match self.tracks.get_mut(&key) {
                Some(t) => t,
                None => self.tracks.entry(key.clone()).or_default(),
            };
            match t.nodes.iter_mut().find(|(n, _)| **n == *node) {
                Some((_, last)) => *last = ev.time_ms,
                None => t.nodes.push((node.clone(), ev.time_ms)),
            }
            t.nodes
                .retain(|(_, last)| last.saturating_add(window) > ev.time_ms);
            if let Some(inc) = &mut t.open {
                if inc.last_ms.saturating_add(window) <= ev.time_ms {
                    t.open = None; // closed by a quiet window
                } else {
                    if !inc.nodes.contains(&*node) {
                        inc.nodes.insert(node.to_string());
                    }
                    inc.events += 1;
                    inc.last_ms = inc.last_ms.max(ev.time_ms);
                    out.push(Observed::Updated(Incident::clone(inc)));
                    continue;
                }
            }
            if t.nodes.len() >= min_nodes.max(1) {
                let inc = Incident {
                    kind,
                    key: key.text(),
                    nodes: t.nodes.iter().map(|(n, _)| n.to_string()).collect(),
                    events: t.nodes.len() as u64,
                    first_ms: t.nodes.iter().map(|(_, l)| *l).min().unwrap_or(ev.time_ms),
                    last_ms: ev.time_ms,
                };
                t.open = Some(Box::new(inc.clone()));
                out.push(Observed::Opened(inc));
            }
        }
        if self.tracks.len() > self.max_tracks {
            self.evict(ev.time_ms);
        }
        out
    }

    /// Tracks held (each keyed by a client address or a rule id).
    pub fn tracks(&self) -> usize {
        self.tracks.len()
    }

    /// Bounds memory (sources are client data: a flood from a million
    /// addresses must not grow the correlator): drops every track quiet for
    /// a window (its incident, if any, closed by then), then, while more
    /// than 90% of `max_tracks` remain, the least recently active ones,
    /// open incidents last. Run when the cap is passed, so its cost (a
    /// selection over 16 bytes per track) is paid once per tenth of the cap.
    fn evict(&mut self, now: u64) {
        let window = self.cfg.window_ms;
        self.tracks
            .retain(|_, t| last_seen(t).saturating_add(window) > now);
        let keep = self.max_tracks - self.max_tracks / 10;
        if self.tracks.len() <= keep {
            return;
        }
        let excess = self.tracks.len() - keep;
        let mut ranks: Vec<(bool, u64)> = self.tracks.values().map(rank).collect();
        let (_, &mut cut, _) = ranks.select_nth_unstable(excess - 1);
        drop(ranks);
        // Fewer than `excess` tracks rank below the cut: all go, then as
        // many at the cut as needed.
        let mut left = excess;
        self.tracks.retain(|_, t| {
            let gone = left > 0 && rank(t) < cut;
            left -= usize::from(gone);
            !gone
        });
        self.tracks.retain(|_, t| {
            let gone = left > 0 && rank(t) == cut;
            left -= usize::from(gone);
            !gone
        });
    }
}

/// The eviction order of a track: quiet first, open incidents last.
fn rank(t: &Track) -> (bool, u64) {
    (t.open.is_some(), last_seen(t))
}

/// When a track last saw a block.
fn last_seen(t: &Track) -> u64 {
    let nodes = t.nodes.iter().map(|(_, l)| *l).max().unwrap_or(0);
    t.open.as_ref().map_or(nodes, |i| nodes.max(i.last_ms))
}

/// Tracks a correlator holds at most by default.
pub const MAX_TRACKS: usize = 100_000;

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
            bot: None,
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
        // Nor do challenges (a browser gets one before it solves it).
        let mut c1 = block("g", "192.0.2.7", "challenge-all", 800);
        c1.action = "challenge".into();
        let mut c2 = block("h", "192.0.2.7", "challenge-all", 801);
        c2.action = "challenge".into();
        c.observe(&c1);
        assert!(c.observe(&c2).is_empty());
        // The same two as blocks would have opened one.
        c.observe(&block("g", "192.0.2.6", "r9", 900));
        assert!(!opened(&c.observe(&block("h", "192.0.2.6", "r9", 901))).is_empty());
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

    #[test]
    fn tracks_are_bounded_whatever_the_sources() {
        let mut c = Correlator::with_max_tracks(CorrelationConfig::default(), 1_000);
        // A source blocked on two nodes opens an incident first.
        c.observe(&block("n1", "192.0.2.1", "r", 1));
        assert!(matches!(
            c.observe(&block("n2", "192.0.2.1", "r", 2)).as_slice(),
            [Observed::Opened(_), ..]
        ));
        // Then 100,000 distinct sources within one window.
        for i in 0..100_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            c.observe(&block("n1", &ip, "r", 3 + u64::from(i) / 10));
            assert!(c.tracks() <= 1_001, "{} tracks", c.tracks());
        }
        // The open incident is the last thing evicted: it is still there.
        let grew = c.observe(&block("n3", "192.0.2.1", "r", 10_005));
        assert!(
            grew.iter()
                .any(|o| matches!(o, Observed::Updated(i) if i.key == "192.0.2.1")),
            "{grew:?}"
        );
        // Past a quiet window, stale tracks go first.
        let later = 10_005 + CorrelationConfig::default().window_ms + 1;
        for i in 0..1_001u32 {
            let ip = std::net::Ipv6Addr::from(u128::from(i) + 1).to_string();
            c.observe(&block("n1", &ip, "r2", later));
        }
        assert!(c.tracks() <= 1_001);
    }

    #[test]
    fn node_names_are_shared_and_bounded() {
        let mut c = Correlator::new(CorrelationConfig::default());
        for i in 0..3u32 {
            c.observe(&block("n1", &format!("192.0.2.{i}"), "r", 1));
        }
        assert_eq!(c.node_names.len(), 1, "one name for every track of n1");
        for i in 0..(MAX_NODE_NAMES as u32 + 100) {
            c.observe(&block(&format!("n{i}"), "192.0.2.1", "r", 2));
            assert!(c.node_names.len() <= MAX_NODE_NAMES);
        }
    }

    #[test]
    fn eviction_keeps_ninety_percent_and_drops_the_oldest() {
        let mut c = Correlator::with_max_tracks(CorrelationConfig::default(), 100);
        // 100 sources (and one rule track) at increasing times: the 101st
        // track passes the cap and evicts down to 90, the oldest first.
        for i in 0..100u32 {
            c.observe(&block("n1", &format!("192.0.2.{i}"), "r", 1 + u64::from(i)));
        }
        assert_eq!(c.tracks(), 90);
        // The rule track and the newest sources stay; the oldest went.
        assert!(c.tracks.contains_key(&TrackKey::Rule("r".into())));
        let has = |c: &Correlator, ip: &str| {
            c.tracks
                .contains_key(&TrackKey::Source(ip.parse().unwrap()))
        };
        assert!(has(&c, "192.0.2.99") && has(&c, "192.0.2.11"));
        assert!(!has(&c, "192.0.2.10") && !has(&c, "192.0.2.0"));
    }
}
