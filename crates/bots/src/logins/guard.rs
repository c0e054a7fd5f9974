//! [`LoginGuard`]: the fleet-wide counts of failed logins.
//!
//! # Counting
//!
//! - **Per source** (address, /24 or IPv6 /64, and AS when the endpoint sets
//!   `asn_usernames`): the distinct user hashes that failed from it, each
//!   with the latest report time it failed at. At most a threshold's worth
//!   is kept (the most recent), which is all the threshold needs: exact.
//! - **Per username**: its failures (identified by node, report time,
//!   address and user hash), the most recent `failures` kept; and the
//!   distinct addresses they came from, the most recent `sources` kept.
//!
//! Windows **slide** and use the **report time** (`time_ms`, the sending
//! node's clock), not the arrival time: a failure counts while
//! `time_ms + window > now_ms`. Reports from further than
//! [`GuardLimits::max_skew_ms`] in the future, or already out of both
//! windows, are ignored (`stale`).
//!
//! # Same state everywhere, duplicates harmless
//!
//! Every count is a set keyed by what the reports say (user hash per
//! source; failure identity and address per username), kept as the most
//! recent N by report time with a fixed tie-break. That is a function of
//! the set of reports received, not of their order, so nodes receiving the
//! same reports in any order hold the same counts, and a report delivered
//! twice changes nothing (two genuine failures with the same node,
//! millisecond, address and username count once). The tie-break hash uses
//! fixed seeds so that every node (of one build) makes the same choice.
//!
//! Counts are shared by every login endpoint (an account is one account, an
//! attacker one attacker); each report is judged with the thresholds of its
//! own endpoint.
//!
//! # When escalations fire
//!
//! - [`Escalation::Source`] fires for a report when its source is at or
//!   over the threshold and the source has not fired **for the report's
//!   node** within the escalation's duration. Only that node issues the
//!   decision (see the module documentation), so each node issues it at its
//!   own first failure once the fleet-wide count (as it knows it) reaches
//!   the threshold, and at most once per duration. When the threshold is
//!   crossed by another node's report, no decision is issued until one of
//!   the nodes sees the source fail again (a stuffing source keeps failing,
//!   so this costs one more attempt); several nodes may issue the same
//!   decision in that race, which the decision table tolerates as
//!   duplicates.
//!
//! # Memory
//!
//! At most [`GuardLimits::max_sources`] and [`GuardLimits::max_usernames`]
//! entries; a source entry holds up to its threshold of 16-byte pairs (so
//! 10 for an address by default, at most [`MAX_THRESHOLD`]), a username
//! entry up to `failures` + `sources` pairs.
//!
//! [`MAX_THRESHOLD`]: super::MAX_THRESHOLD
//! - [`Escalation::Username`] fires when a username becomes marked: at
//!   least `failures` failures from at least `sources` addresses in the
//!   window. The mark lasts until the latest counted failure's time plus
//!   the duration, and is extended (silently) by later failures while the
//!   condition holds.
//!
//! [`Escalation::Source`]: super::Escalation::Source
//! [`Escalation::Username`]: super::Escalation::Username

use super::extract::UserHash;
use super::report::FailureReport;
use super::{Action, Escalation};
use palisade_policy::bots::logins::LoginSpec;
use palisade_policy::duration::format_duration_ms;
use palisade_policy::escalation::Source;
use palisade_policy::{Geo, Scope};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Most shards per table; small tables (tests, tiny caps) get fewer, down
/// to one (a shard holds at least 4,096 entries of the cap).
const SHARDS: usize = 16;
/// Nodes remembered per source as having fired (beyond, the oldest is
/// forgotten and may fire again: a duplicate decision, harmless).
const FIRED_NODES: usize = 8;

/// The guard's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardLimits {
    /// Sources (addresses, networks, ASes) tracked, at most.
    pub max_sources: usize,
    /// Usernames tracked, at most.
    pub max_usernames: usize,
    /// How far in the future a report's time may be.
    pub max_skew_ms: u64,
}

impl Default for GuardLimits {
    fn default() -> Self {
        GuardLimits {
            max_sources: 100_000,
            max_usernames: 100_000,
            max_skew_ms: 60_000,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginStats {
    /// Reports recorded (duplicates and stale ones included).
    pub reports: u64,
    /// Reports already counted (same failure identity).
    pub duplicates: u64,
    /// Reports ignored: out of the windows or from the future.
    pub stale: u64,
    /// Sources tracked now.
    pub sources: usize,
    /// Usernames tracked now.
    pub usernames: usize,
    /// Sources evicted to stay within the cap.
    pub source_evictions: u64,
    /// Usernames evicted to stay within the cap.
    pub username_evictions: u64,
    /// Source escalations returned.
    pub source_escalations: u64,
    /// Username escalations returned.
    pub username_escalations: u64,
}

/// Keeps the `k` greatest `(time, key)` pairs of distinct keys, each with
/// its greatest time. Returns whether `key` was new.
fn keep_latest<K: PartialEq + Ord + Copy>(
    v: &mut Vec<(u64, K)>,
    key: K,
    time: u64,
    k: usize,
) -> bool {
    if let Some(e) = v.iter_mut().find(|(_, x)| *x == key) {
        e.0 = e.0.max(time);
        return false;
    }
    v.push((time, key));
    if v.len() > k {
        if let Some(min) = v
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| **e)
            .map(|(i, _)| i)
        {
            v.swap_remove(min);
        }
    }
    true
}

struct SourceEntry {
    /// (latest failure time, user hash prefix).
    users: Vec<(u64, u64)>,
    /// (node hash, fired until).
    fired: Vec<(u64, u64)>,
    last_ms: u64,
    keep_until: u64,
}

struct UserEntry {
    /// (time, failure identity).
    events: Vec<(u64, u64)>,
    /// (latest failure time, address).
    sources: Vec<(u64, u128)>,
    marked_until: u64,
    action: Action,
    last_ms: u64,
    keep_until: u64,
}

trait Aged {
    fn last_ms(&self) -> u64;
    fn keep_until(&self) -> u64;
    /// Evicted last when the table is full (a marked username: flooding
    /// the table with new usernames must not clear the marks).
    fn protected(&self, _now_ms: u64) -> bool {
        false
    }
}

impl Aged for SourceEntry {
    fn last_ms(&self) -> u64 {
        self.last_ms
    }
    fn keep_until(&self) -> u64 {
        self.keep_until
    }
}

impl Aged for UserEntry {
    fn last_ms(&self) -> u64 {
        self.last_ms
    }
    fn keep_until(&self) -> u64 {
        self.keep_until
    }
    fn protected(&self, now_ms: u64) -> bool {
        self.marked_until > now_ms
    }
}

/// A capped, sharded map.
struct Table<K, V> {
    shards: Vec<Mutex<HashMap<K, V, ahash::RandomState>>>,
    per_shard: usize,
    hasher: ahash::RandomState,
    evictions: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Aged> Table<K, V> {
    fn new(cap: usize) -> Self {
        let shards = (cap / 4096).clamp(1, SHARDS);
        Table {
            shards: (0..shards)
                .map(|_| Mutex::new(HashMap::with_hasher(ahash::RandomState::new())))
                .collect(),
            per_shard: (cap / shards).max(1),
            hasher: ahash::RandomState::new(),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &K) -> &Mutex<HashMap<K, V, ahash::RandomState>> {
        &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()]
    }

    /// Makes room for one more key in a full shard: drops what expired,
    /// then the least recently seen eighth (unprotected entries first).
    fn make_room(&self, map: &mut HashMap<K, V, ahash::RandomState>, now_ms: u64) {
        if map.len() < self.per_shard {
            return;
        }
        let before = map.len();
        map.retain(|_, v| v.keep_until() > now_ms);
        if map.len() >= self.per_shard {
            let n = (self.per_shard / 8).max(1);
            let mut ages: Vec<((bool, u64), K)> = map
                .iter()
                .map(|(k, v)| ((v.protected(now_ms), v.last_ms()), k.clone()))
                .collect();
            if n < ages.len() {
                ages.select_nth_unstable_by_key(n - 1, |(rank, _)| *rank);
            }
            for (_, k) in ages.into_iter().take(n) {
                map.remove(&k);
            }
        }
        self.evictions
            .fetch_add((before - map.len()) as u64, Relaxed);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    fn sweep(&self, now_ms: u64) {
        for s in &self.shards {
            s.lock().retain(|_, v| v.keep_until() > now_ms);
        }
    }
}

/// Failed-login counts and marked usernames. Thread-safe (`&self`), sharded.
pub struct LoginGuard {
    sources: Table<(Scope, String), SourceEntry>,
    users: Table<UserHash, UserEntry>,
    limits: GuardLimits,
    /// Fixed seeds: failure identities and node hashes are the same on every
    /// node, so tie-breaks are too.
    ids: ahash::RandomState,
    reports: AtomicU64,
    duplicates: AtomicU64,
    stale: AtomicU64,
    source_escalations: AtomicU64,
    username_escalations: AtomicU64,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new(GuardLimits::default())
    }
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The client's /24 (IPv4) or /64 (IPv6), as bits.
fn net_bits(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4) & 0xffff_ff00) | (1 << 100),
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 64) - 1),
    }
}

impl LoginGuard {
    /// An empty guard within `limits`.
    pub fn new(limits: GuardLimits) -> Self {
        LoginGuard {
            sources: Table::new(limits.max_sources),
            users: Table::new(limits.max_usernames),
            limits,
            ids: ahash::RandomState::with_seeds(
                0x6c6f_6769_6e73_0001,
                0x6661_696c_7572_6573,
                0x0f1e_e700_5eed_0002,
                0x7573_6572_6861_7368,
            ),
            reports: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            source_escalations: AtomicU64::new(0),
            username_escalations: AtomicU64::new(0),
        }
    }

    /// Applies one failure report (from any node, this one included) with
    /// the thresholds of its endpoint (`spec` is `specs[report.login]`, the
    /// caller's lookup; the caller drops a report whose `login` names no
    /// endpoint, e.g. from a node on another policy version).
    /// Returns the escalations it triggered: issue a [`Escalation::Source`]
    /// as a decision only if `report.node` is this node's id.
    pub fn record(&self, report: &FailureReport, spec: &LoginSpec, now_ms: u64) -> Vec<Escalation> {
        self.reports.fetch_add(1, Relaxed);
        let t = report.time_ms;
        let live = |window: u64| t.saturating_add(window) > now_ms;
        let (src_live, user_live) = (live(spec.stuffing.window_ms), live(spec.guessing.window_ms));
        if t > now_ms.saturating_add(self.limits.max_skew_ms) || !(src_live || user_live) {
            self.stale.fetch_add(1, Relaxed);
            return Vec::new();
        }
        let mut out = Vec::new();
        if src_live {
            self.record_sources(report, spec, now_ms, &mut out);
        }
        if user_live {
            self.record_user(report, spec, now_ms, &mut out);
        }
        out
    }

    fn record_sources(
        &self,
        r: &FailureReport,
        spec: &LoginSpec,
        now_ms: u64,
        out: &mut Vec<Escalation>,
    ) {
        let st = &spec.stuffing;
        let geo = Geo {
            country: None,
            asn: r.asn,
        };
        let mut keys = vec![
            (Source::Ip, st.ip_usernames),
            (Source::Cidr, st.cidr_usernames),
        ];
        if let Some(n) = st.asn_usernames {
            keys.push((Source::Asn, n));
        }
        let node = self.ids.hash_one(&r.node);
        for (source, threshold) in keys {
            let Some(key) = source.key(r.ip, geo) else {
                continue;
            };
            let mut map = self.sources.shard(&key).lock();
            if !map.contains_key(&key) {
                self.sources.make_room(&mut map, now_ms);
            }
            let e = map.entry(key.clone()).or_insert_with(|| SourceEntry {
                users: Vec::new(),
                fired: Vec::new(),
                last_ms: 0,
                keep_until: 0,
            });
            e.users
                .retain(|(t, _)| t.saturating_add(st.window_ms) > now_ms);
            keep_latest(&mut e.users, r.user.short(), r.time_ms, threshold as usize);
            e.last_ms = e.last_ms.max(r.time_ms);
            e.fired.retain(|(_, until)| *until > now_ms);
            let count = e.users.len() as u64;
            if count >= threshold && !e.fired.iter().any(|(n, _)| *n == node) {
                e.fired
                    .push((node, r.time_ms.max(now_ms).saturating_add(st.duration_ms)));
                if e.fired.len() > FIRED_NODES {
                    if let Some(i) = e
                        .fired
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, f)| f.1)
                        .map(|(i, _)| i)
                    {
                        e.fired.swap_remove(i);
                    }
                }
                self.source_escalations.fetch_add(1, Relaxed);
                let (scope, value) = key;
                out.push(Escalation::Source {
                    reason: format!(
                        "login stuffing on {} {}: {count} usernames failed from {} {value} within {}",
                        spec.method,
                        spec.path,
                        scope.as_str(),
                        format_duration_ms(st.window_ms)
                    ),
                    scope,
                    value,
                    action: st.action,
                    duration_ms: st.duration_ms,
                });
            }
            let fired_until = e.fired.iter().map(|f| f.1).max().unwrap_or(0);
            e.keep_until = e.last_ms.saturating_add(st.window_ms).max(fired_until);
        }
    }

    fn record_user(
        &self,
        r: &FailureReport,
        spec: &LoginSpec,
        now_ms: u64,
        out: &mut Vec<Escalation>,
    ) {
        let g = &spec.guessing;
        let id = self
            .ids
            .hash_one((&r.node, r.time_ms, ip_bits(r.ip), r.user.0));
        let mut map = self.users.shard(&r.user).lock();
        if !map.contains_key(&r.user) {
            self.users.make_room(&mut map, now_ms);
        }
        let e = map.entry(r.user).or_insert_with(|| UserEntry {
            events: Vec::new(),
            sources: Vec::new(),
            marked_until: 0,
            action: g.action,
            last_ms: 0,
            keep_until: 0,
        });
        e.events
            .retain(|(t, _)| t.saturating_add(g.window_ms) > now_ms);
        e.sources
            .retain(|(t, _)| t.saturating_add(g.window_ms) > now_ms);
        if e.events.iter().any(|(_, x)| *x == id) {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        keep_latest(&mut e.events, id, r.time_ms, g.failures as usize);
        // Sources by network (/24, IPv6 /64): one network's many addresses
        // are one source, so nobody marks a username from a single /64.
        keep_latest(
            &mut e.sources,
            net_bits(r.ip),
            r.time_ms,
            g.sources as usize,
        );
        e.last_ms = e.last_ms.max(r.time_ms);
        if e.events.len() as u64 >= g.failures && e.sources.len() as u64 >= g.sources {
            let latest = e.events.iter().map(|(t, _)| *t).max().unwrap_or(r.time_ms);
            let until = latest.saturating_add(g.duration_ms);
            let newly = e.marked_until <= now_ms;
            e.action = if newly {
                g.action
            } else {
                e.action.max(g.action)
            };
            e.marked_until = e.marked_until.max(until);
            if newly && e.marked_until > now_ms {
                self.username_escalations.fetch_add(1, Relaxed);
                out.push(Escalation::Username {
                    user: r.user,
                    action: e.action,
                    until_ms: e.marked_until,
                });
            }
        }
        e.keep_until = e.last_ms.saturating_add(g.window_ms).max(e.marked_until);
    }

    /// What a login attempt for `user` gets now: `None` unless the username
    /// is marked (password guessing). One shard lock and one map lookup.
    pub fn username_state(&self, user: &UserHash, now_ms: u64) -> Option<Action> {
        let map = self.users.shard(user).lock();
        let e = map.get(user)?;
        (e.marked_until > now_ms).then_some(e.action)
    }

    /// When the username's mark expires, if it is marked.
    pub fn username_until(&self, user: &UserHash, now_ms: u64) -> Option<u64> {
        let map = self.users.shard(user).lock();
        let e = map.get(user)?;
        (e.marked_until > now_ms).then_some(e.marked_until)
    }

    /// Distinct usernames that failed from a source (scope and value as in
    /// decisions) within `window_ms`, up to the threshold kept.
    pub fn source_usernames(&self, scope: Scope, value: &str, window_ms: u64, now_ms: u64) -> u64 {
        let key = (scope, value.to_owned());
        let map = self.sources.shard(&key).lock();
        map.get(&key).map_or(0, |e| {
            e.users
                .iter()
                .filter(|(t, _)| t.saturating_add(window_ms) > now_ms)
                .count() as u64
        })
    }

    /// A username's failures and distinct addresses within `window_ms` (up
    /// to the thresholds kept).
    pub fn username_counts(&self, user: &UserHash, window_ms: u64, now_ms: u64) -> (u64, u64) {
        let map = self.users.shard(user).lock();
        map.get(user).map_or((0, 0), |e| {
            let live = |t: u64| t.saturating_add(window_ms) > now_ms;
            (
                e.events.iter().filter(|(t, _)| live(*t)).count() as u64,
                e.sources.iter().filter(|(t, _)| live(*t)).count() as u64,
            )
        })
    }

    /// Drops every entry with nothing left in its window and no mark or
    /// recent escalation (the edge may call this from a housekeeping timer;
    /// full tables also do it themselves).
    pub fn sweep(&self, now_ms: u64) {
        self.sources.sweep(now_ms);
        self.users.sweep(now_ms);
    }

    /// Counters and sizes for metrics.
    pub fn stats(&self) -> LoginStats {
        LoginStats {
            reports: self.reports.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            stale: self.stale.load(Relaxed),
            sources: self.sources.len(),
            usernames: self.users.len(),
            source_evictions: self.sources.evictions.load(Relaxed),
            username_evictions: self.users.evictions.load(Relaxed),
            source_escalations: self.source_escalations.load(Relaxed),
            username_escalations: self.username_escalations.load(Relaxed),
        }
    }
}
