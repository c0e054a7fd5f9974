//! Flood detection: a rate far above what was learned as normal.
//!
//! `[[floods]]` in the policy: per source (address, /24 or /64, AS) or per
//! host, or per host and path, every node counts requests in windows of
//! `window` and learns a **baseline** — an exponentially weighted moving
//! average (EWMA) over windows, with a horizon of `learn`:
//!
//! - per **source** kinds (`ip`, `cidr`, `asn`) the baseline is one value per
//!   flood entry: the EWMA of the 99th percentile of the per-source counts of
//!   each window, what a busy but normal client sends. A source is new when it
//!   floods (its own history is empty), so it is compared with the others;
//! - per **host** and per **path** the baseline is each key's own EWMA.
//!
//! A key whose rate over the last `window` (sliding: the current window's
//! count plus the previous window's, weighted by how much of it the sliding
//! window still covers) passes
//! `max(min_requests, factor × baseline)` — scaled by `[attack_mode]`'s
//! `flood_factor` for a host under attack — *fires*: once per `duration`, at
//! the request that crosses the threshold (no waiting for the window to end).
//! A firing source gets a decision (`ban`), a firing host its under-attack
//! mode (`attack_mode`), or only an event (`log`).
//!
//! Learning resists poisoning: windows in which the entry fired are not
//! learned from, and one window may raise the baseline to at most twice its
//! value (or `min_requests`), so a slow ramp takes many `learn` horizons.
//!
//! Baselines are **fleet-merged** ([`FloodStats`], a [`Mergeable`] shared
//! through the mesh like the other learned statistics): each node compares
//! with the largest baseline any node learned, so a node that has just
//! started, or that has not seen a busy client yet, does not take the first
//! one for a flood.
//!
//! Memory is bounded: each entry tracks at most `max_keys` keys (keys seen
//! when it is full are not tracked, and counted).

use crate::decisions::{DecisionAction, Scope};
use crate::escalation::Source;
use crate::expr::Expr;
use crate::learn::stable_hash;
use crate::learn::Mergeable;
use crate::request::Geo;
use crate::UnixMillis;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a flood entry counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKey {
    /// A client source (address, /24 or /64, AS).
    Source(Source),
    /// The host (without port).
    Host,
    /// The host and the normalized path.
    Path,
}

impl FloodKey {
    /// Parses `ip`, `cidr`, `asn`, `host` or `path`.
    pub fn parse(s: &str) -> Result<FloodKey, String> {
        match s {
            "host" => Ok(FloodKey::Host),
            "path" => Ok(FloodKey::Path),
            other => Source::parse(other).map(FloodKey::Source).map_err(|_| {
                format!("unknown `per` value `{other}` (expected ip, cidr, asn, host or path)")
            }),
        }
    }

    /// The name used in policies, metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            FloodKey::Source(Source::Ip) => "ip",
            FloodKey::Source(Source::Cidr) => "cidr",
            FloodKey::Source(Source::Asn) => "asn",
            FloodKey::Host => "host",
            FloodKey::Path => "path",
        }
    }
}

/// What a firing flood entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodAction {
    /// A ban decision for the source (source kinds only).
    Ban,
    /// The host's under-attack mode, fleet-wide (host and path kinds).
    AttackMode,
    /// An event and a metric only.
    Log,
    /// A challenge decision for the source (source kinds only): its
    /// clients must solve a proof of work, once.
    Challenge,
}

impl FloodAction {
    /// The name used in policies, metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            FloodAction::Ban => "ban",
            FloodAction::AttackMode => "attack_mode",
            FloodAction::Log => "log",
            FloodAction::Challenge => "challenge",
        }
    }
}

/// One `[[floods]]` entry, compiled.
#[derive(Debug, Clone)]
pub struct Flood {
    /// Unique id.
    pub id: String,
    /// What is counted per.
    pub per: FloodKey,
    /// Which requests count (all when `None`).
    pub expression: Option<Expr>,
    /// Counting window.
    pub window_ms: u64,
    /// Horizon of the baseline's moving average.
    pub learn_ms: u64,
    /// A spike is a count above `factor` × the baseline…
    pub factor: f64,
    /// … and above this many requests per window.
    pub min_requests: u64,
    /// What firing does.
    pub action: FloodAction,
    /// How long the decision or the under-attack mode lasts; a key fires at
    /// most once per `duration`.
    pub duration_ms: u64,
    /// Issue simulated decisions (logged by every node, not enforced).
    pub simulate: bool,
    /// Keys tracked at most.
    pub max_keys: usize,
}

/// `[attack_mode]`: how a host under attack is treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackModeSettings {
    /// Every rate limit's `requests` is multiplied by this (at least 1 request).
    pub rate_limit_factor: f64,
    /// Every flood threshold is multiplied by this.
    pub flood_factor: f64,
}

impl Default for AttackModeSettings {
    fn default() -> Self {
        AttackModeSettings {
            rate_limit_factor: 0.5,
            flood_factor: 0.5,
        }
    }
}

/// A key that crossed its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    /// The flood entry's id.
    pub flood: String,
    /// Its kind.
    pub per: FloodKey,
    /// Its action.
    pub action: FloodAction,
    /// For source kinds, the decision scope and value; for host and path
    /// kinds, `(Scope::Host, host)`.
    pub target: (Scope, String),
    /// Requests counted in the window when it fired.
    pub count: u64,
    /// The threshold it crossed.
    pub threshold: u64,
    /// The baseline the threshold came from.
    pub baseline: f64,
    /// Whether the entry is simulated.
    pub simulate: bool,
    /// How long the decision lasts.
    pub duration_ms: u64,
}

impl Fire {
    /// The decision this fire asks for (`None` for `log`).
    pub fn decision(&self, node: &str, now: UnixMillis) -> Option<crate::Decision> {
        let action = match self.action {
            FloodAction::Ban => DecisionAction::Ban,
            FloodAction::AttackMode => DecisionAction::AttackMode,
            FloodAction::Challenge => DecisionAction::Challenge,
            FloodAction::Log => return None,
        };
        Some(crate::Decision {
            id: 0,
            scope: self.target.0,
            value: self.target.1.clone(),
            action,
            reason: format!(
                "flood {}: {} requests per window, threshold {} (baseline {:.1})",
                self.flood, self.count, self.threshold, self.baseline
            ),
            origin: format!("flood:{}@{node}", self.flood),
            simulated: self.simulate,
            created_at: now,
            expires_at: Some(now.saturating_add(self.duration_ms)),
        })
    }
}

/// The request facts a flood entry counts by.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Client address.
    pub ip: IpAddr,
    /// Its geolocation.
    pub geo: Geo,
    /// Host without port, lower case.
    pub host: &'a str,
    /// Normalized path.
    pub path: &'a str,
    /// Whether the host is under attack (thresholds × `flood_factor`).
    pub under_attack: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Window index of `count`.
    win: u64,
    count: u32,
    /// Count of window `win - 1`, when the key had requests in it.
    prev: u32,
    /// No fire before this time.
    quiet_until: UnixMillis,
    /// Per-key baseline (host and path kinds).
    ewma: f32,
}

const SHARDS: usize = 16;

/// Counters and baseline of one flood entry.
#[derive(Debug)]
struct RuleState {
    per: FloodKey,
    window_ms: u64,
    shards: Box<[Mutex<ahash::AHashMap<u64, Entry>>]>,
    max_per_shard: usize,
    /// Threshold of source kinds for the current window.
    threshold: AtomicU64,
    /// Untracked keys (table full).
    untracked: AtomicU64,
    learn: Mutex<Learn>,
}

#[derive(Debug, Default)]
struct Learn {
    /// Local baseline of source kinds.
    baseline: f64,
    /// Last window rolled (`None` before the first roll: the first window
    /// is partial, not learned from).
    rolled: Option<u64>,
    /// Whether the entry fired in the window being filled.
    fired: bool,
    /// Fleet baseline of source kinds (largest of the peers').
    fleet: f64,
    /// Fleet per-key baselines (host and path kinds).
    fleet_keys: ahash::AHashMap<u64, f32>,
}

impl RuleState {
    fn new(f: &Flood) -> RuleState {
        RuleState {
            per: f.per,
            window_ms: f.window_ms,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(ahash::AHashMap::new()))
                .collect(),
            max_per_shard: f.max_keys.div_ceil(SHARDS).max(1),
            threshold: AtomicU64::new(f.min_requests.max(1)),
            untracked: AtomicU64::new(0),
            learn: Mutex::new(Learn::default()),
        }
    }
}

/// The flood counters of every `[[floods]]` entry of the running policy.
#[derive(Debug, Default)]
pub struct FloodDetector {
    rules: parking_lot::RwLock<BTreeMap<String, Arc<RuleState>>>,
}

/// What one roll of the windows observed (for metrics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollReport {
    /// Keys tracked, over all entries.
    pub keys: usize,
    /// Keys not tracked because an entry was full, since the start.
    pub untracked: u64,
    /// `(flood id, baseline in effect)` of source kinds.
    pub baselines: Vec<(String, f64)>,
}

/// The counter key of a request, without allocating.
fn hash_of(per: FloodKey, seen: &Seen<'_>) -> Option<u64> {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), true),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), true),
            None => (u128::from(a), false),
        },
    };
    Some(match per {
        FloodKey::Source(Source::Ip) => {
            let (a, v4) = canonical(seen.ip);
            stable_hash(&a.to_le_bytes()) ^ u64::from(v4)
        }
        FloodKey::Source(Source::Cidr) => {
            let (a, v4) = canonical(seen.ip);
            let net = if v4 {
                a & 0xffff_ff00
            } else {
                a & !u128::from(u64::MAX)
            };
            stable_hash(&net.to_le_bytes()) ^ u64::from(v4)
        }
        FloodKey::Source(Source::Asn) => stable_hash(&seen.geo.asn?.to_le_bytes()),
        FloodKey::Host => stable_hash(seen.host.as_bytes()),
        FloodKey::Path => {
            stable_hash(seen.host.as_bytes()) ^ stable_hash(seen.path.as_bytes()).rotate_left(17)
        }
    })
}

/// What a fire designates: the decision scope and value.
fn target_of(per: FloodKey, seen: &Seen<'_>) -> Option<(Scope, String)> {
    match per {
        FloodKey::Source(src) => src.key(seen.ip, seen.geo),
        FloodKey::Host | FloodKey::Path => Some((Scope::Host, seen.host.to_owned())),
    }
}

fn threshold(min_requests: u64, factor: f64, baseline: f64, tighten: f64) -> u64 {
    let t = (factor * baseline).ceil().max(min_requests as f64) * tighten;
    (t.ceil() as u64).max(1)
}

impl FloodDetector {
    /// Keeps the state of the entries of `floods` whose id, kind and window
    /// are unchanged (their baselines survive a reload), creates the others
    /// and forgets entries no longer in the policy.
    pub fn sync(&self, floods: &[Flood]) {
        let mut rules = self.rules.write();
        let mut next = BTreeMap::new();
        for f in floods {
            let keep = rules
                .remove(&f.id)
                .filter(|s| s.per == f.per && s.window_ms == f.window_ms);
            next.insert(
                f.id.clone(),
                keep.unwrap_or_else(|| Arc::new(RuleState::new(f))),
            );
        }
        *rules = next;
    }

    /// Counts one request for every entry of `floods` it matches (the caller
    /// evaluated `expression`s: `matches(i)`), and returns the entries that
    /// fire. Nothing is allocated unless something fires.
    pub fn observe(
        &self,
        floods: &[Flood],
        attack: &AttackModeSettings,
        seen: &Seen<'_>,
        mut matches: impl FnMut(&Flood) -> bool,
        now: UnixMillis,
    ) -> Vec<Fire> {
        let mut out = Vec::new();
        if floods.is_empty() {
            return out;
        }
        let rules = self.rules.read();
        for f in floods {
            let Some(state) = rules.get(&f.id) else {
                continue;
            };
            if !matches(f) {
                continue;
            }
            let tighten = if seen.under_attack {
                attack.flood_factor
            } else {
                1.0
            };
            if let Some(fire) = Self::count(f, state, seen, tighten, now) {
                out.push(fire);
            }
        }
        out
    }

    fn count(
        f: &Flood,
        state: &RuleState,
        seen: &Seen<'_>,
        tighten: f64,
        now: UnixMillis,
    ) -> Option<Fire> {
        let hash = hash_of(f.per, seen)?;
        let win = now / f.window_ms.max(1);
        let shard = &state.shards[(hash as usize) % SHARDS];
        let mut map = shard.lock();
        let full = map.len() >= state.max_per_shard;
        let entry = match map.get_mut(&hash) {
            Some(e) => e,
            None if full => {
                state.untracked.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            None => {
                let mut e = Entry {
                    win,
                    ..Entry::default()
                };
                if !matches!(f.per, FloodKey::Source(_)) {
                    let fleet = state
                        .learn
                        .lock()
                        .fleet_keys
                        .get(&hash)
                        .copied()
                        .unwrap_or(0.0);
                    e.ewma = fleet;
                }
                map.entry(hash).or_insert(e)
            }
        };
        if entry.win != win {
            entry.prev = if entry.win + 1 == win { entry.count } else { 0 };
            entry.count = 0;
            entry.win = win;
        }
        entry.count = entry.count.saturating_add(1);
        let limit = match f.per {
            FloodKey::Source(_) => {
                let t = state.threshold.load(Ordering::Relaxed);
                ((t as f64) * tighten).ceil().max(1.0) as u64
            }
            _ => threshold(f.min_requests, f.factor, f64::from(entry.ewma), tighten),
        };
        // The rate over the last `window`, sliding: this window's count plus
        // the share of the previous one the sliding window still covers. A
        // flood that starts late in a window fires as soon as its rate
        // crosses the threshold, not a window later.
        let window = f.window_ms.max(1);
        let left = window - now % window;
        let count = u64::from(entry.count) + u64::from(entry.prev) * left / window;
        if count <= limit || now < entry.quiet_until {
            return None;
        }
        entry.quiet_until = now.saturating_add(f.duration_ms.max(1));
        let key_baseline = f64::from(entry.ewma);
        drop(map);
        let target = target_of(f.per, seen)?;
        let baseline = {
            let mut learn = state.learn.lock();
            learn.fired = true;
            match f.per {
                FloodKey::Source(_) => learn.baseline.max(learn.fleet),
                _ => key_baseline,
            }
        };
        Some(Fire {
            flood: f.id.clone(),
            per: f.per,
            action: f.action,
            target,
            count,
            threshold: limit,
            baseline,
            simulate: f.simulate,
            duration_ms: f.duration_ms,
        })
    }

    /// Closes the windows that ended before `now`: learns the baselines and
    /// sets the thresholds of the next window, forgets idle keys. Call it
    /// regularly (at least once per window), off the request path.
    pub fn roll(&self, floods: &[Flood], now: UnixMillis) -> RollReport {
        let rules = self.rules.read();
        let mut report = RollReport::default();
        for f in floods {
            let Some(state) = rules.get(&f.id) else {
                continue;
            };
            report.untracked += state.untracked.load(Ordering::Relaxed);
            let win = now / f.window_ms.max(1);
            let alpha = 1.0 - (-(f.window_ms as f64) / (f.learn_ms.max(1) as f64)).exp();
            // Lock order: a shard, then `learn` (as `count` takes them);
            // never a shard while holding `learn`.
            let learnable = {
                let mut learn = state.learn.lock();
                let due = !(learn.rolled.is_some_and(|r| r >= win)
                    || (learn.rolled.is_none() && win == 0));
                let learnable = due && !learn.fired && learn.rolled.is_some();
                if due {
                    learn.fired = false;
                }
                learn.rolled = Some(win);
                due.then_some(learnable)
            };
            let Some(learnable) = learnable else {
                report.keys += state.shards.iter().map(|s| s.lock().len()).sum::<usize>();
                if let FloodKey::Source(_) = f.per {
                    let learn = state.learn.lock();
                    report
                        .baselines
                        .push((f.id.clone(), learn.baseline.max(learn.fleet)));
                }
                continue;
            };
            // The window that just ended is `win - 1`; windows skipped
            // entirely (no roll, e.g. the process was stopped) count as quiet.
            let closed = win - 1;
            let mut counts: Vec<u32> = Vec::new();
            for shard in state.shards.iter() {
                let mut map = shard.lock();
                map.retain(|_, e| {
                    let c = if e.win == closed {
                        e.count
                    } else if e.win == win {
                        e.prev
                    } else {
                        0
                    };
                    match f.per {
                        FloodKey::Source(_) => {
                            if c > 0 {
                                counts.push(c);
                            }
                            // Kept while in the current or the last window, or quiet.
                            e.win + 1 >= win || e.quiet_until > now
                        }
                        _ => {
                            if learnable {
                                let base = f64::from(e.ewma);
                                let cap = (2.0 * base).max(f.min_requests as f64);
                                let x = f64::from(c).min(cap);
                                e.ewma = (base + alpha * (x - base)) as f32;
                            }
                            e.ewma > 0.01 || e.win + 1 >= win || e.quiet_until > now
                        }
                    }
                });
                report.keys += map.len();
            }
            if let FloodKey::Source(_) = f.per {
                let x = p99(&mut counts);
                let mut learn = state.learn.lock();
                if learnable {
                    let base = learn.baseline;
                    let cap = (2.0 * base).max(f.min_requests as f64);
                    learn.baseline = base + alpha * (x.min(cap) - base);
                }
                let base = learn.baseline.max(learn.fleet);
                state.threshold.store(
                    threshold(f.min_requests, f.factor, base, 1.0),
                    Ordering::Relaxed,
                );
                report.baselines.push((f.id.clone(), base));
            }
        }
        report
    }

    /// This node's learned baselines, to share with the fleet.
    pub fn local_stats(&self) -> FloodStats {
        let rules = self.rules.read();
        let mut out = FloodStats::default();
        for (id, state) in rules.iter() {
            let learn = state.learn.lock();
            let mut rs = RuleStats {
                baseline: learn.baseline,
                keys: BTreeMap::new(),
            };
            drop(learn);
            if !matches!(state.per, FloodKey::Source(_)) {
                let mut keys: Vec<(u64, f32)> = Vec::new();
                for shard in state.shards.iter() {
                    keys.extend(
                        shard
                            .lock()
                            .iter()
                            .filter(|(_, e)| e.ewma > 0.01)
                            .map(|(k, e)| (*k, e.ewma)),
                    );
                }
                keys.sort_by(|a, b| b.1.total_cmp(&a.1));
                keys.truncate(MAX_SHARED_KEYS);
                rs.keys = keys.into_iter().collect();
            }
            out.rules.insert(id.clone(), rs);
        }
        out
    }

    /// Takes the merge of the peers' baselines (not this node's own).
    pub fn set_fleet(&self, peers: &FloodStats) {
        let rules = self.rules.read();
        for (id, state) in rules.iter() {
            let mut learn = state.learn.lock();
            match peers.rules.get(id) {
                Some(rs) => {
                    learn.fleet = if rs.baseline.is_finite() {
                        rs.baseline.max(0.0)
                    } else {
                        0.0
                    };
                    learn.fleet_keys = rs
                        .keys
                        .iter()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(k, v)| (*k, v.max(0.0)))
                        .collect();
                }
                None => {
                    learn.fleet = 0.0;
                    learn.fleet_keys.clear();
                }
            }
            let fleet_keys = std::mem::take(&mut learn.fleet_keys);
            drop(learn);
            // Raise each key's baseline to the fleet's (never lower it).
            if !fleet_keys.is_empty() {
                for shard in state.shards.iter() {
                    for (k, e) in shard.lock().iter_mut() {
                        if let Some(v) = fleet_keys.get(k) {
                            e.ewma = e.ewma.max(*v);
                        }
                    }
                }
            }
            state.learn.lock().fleet_keys = fleet_keys;
        }
    }
}

/// Per-key baselines shared per flood entry, at most.
pub const MAX_SHARED_KEYS: usize = 256;

/// The 99th percentile of `counts` (0 when empty).
fn p99(counts: &mut [u32]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    let i = ((counts.len() as f64) * 0.99).ceil() as usize;
    let i = i.clamp(1, counts.len()) - 1;
    let (_, v, _) = counts.select_nth_unstable(i);
    f64::from(*v)
}

/// The learned baselines of one flood entry, as shared with the fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleStats {
    /// Baseline of source kinds.
    pub baseline: f64,
    /// Per-key baselines (host and path kinds), by stable key hash.
    #[serde(default)]
    pub keys: BTreeMap<u64, f32>,
}

/// Every flood entry's learned baselines (what a node shares).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FloodStats {
    /// By flood id.
    pub rules: BTreeMap<String, RuleStats>,
}

impl Mergeable for FloodStats {
    /// The largest baseline of each entry and key; at most
    /// [`MAX_SHARED_KEYS`] keys per entry (the largest).
    fn merge(&mut self, other: &Self) {
        for (id, o) in &other.rules {
            let mine = self.rules.entry(id.clone()).or_default();
            if o.baseline.is_finite() && o.baseline > mine.baseline {
                mine.baseline = o.baseline;
            }
            for (k, v) in &o.keys {
                if !v.is_finite() {
                    continue;
                }
                let e = mine.keys.entry(*k).or_insert(*v);
                if *v > *e {
                    *e = *v;
                }
            }
            if mine.keys.len() > MAX_SHARED_KEYS {
                let mut all: Vec<(u64, f32)> = std::mem::take(&mut mine.keys).into_iter().collect();
                // Largest first; ties by key so that the merge is order-independent.
                all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                all.truncate(MAX_SHARED_KEYS);
                mine.keys = all.into_iter().collect();
            }
        }
    }
}

#[cfg(test)]
mod tests;
