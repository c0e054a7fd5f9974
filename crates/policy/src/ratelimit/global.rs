//! Global (fleet-wide) rate limits: the counters of a `scope = "global"`
//! limit are shared by every node of the mesh, with no network hop on the
//! request path.
//!
//! Each node keeps, per client key, its own sliding-window counts (as a local
//! limit does) plus the counts the other nodes reported, and judges a request
//! on the sum. A background task (the edge's `globalrate` module) runs
//! *rounds*, one every Δ: it takes the counts recorded since the last round
//! ([`GlobalLimiter::drain`]), publishes them, and applies the other nodes'
//! reports as they arrive ([`GlobalLimiter::apply`]).
//!
//! Counts alone would let every node admit what arrives during the Δ before it
//! hears from the others (a fast client spread over N nodes would get about
//! `L + r·Δ`). So each node also holds an **allowance** per key: the number of
//! requests it may admit before its next round. A key's first allowance is
//! `⌊(L − G + 1) / N⌋` (G: the fleet-wide estimate the node knows, N: the
//! nodes alive); each round then grants `round(s × (L − G − A_others))`, where
//! `s` is this node's share of the key's demand (its own requests in the round
//! against the demand the others reported in the last two rounds) and
//! `A_others` the allowances the others reported in the last two rounds (in a
//! key's first round each other node is assumed to hold `⌈L/N⌉`). An
//! allowance lapses two rounds after it was granted. A client on one node gets `s = 1`
//! from its second round; one spread evenly gets `s ≈ 1/N` on every node. A
//! request is admitted when the sliding estimate of G is within the limit
//! *and* the allowance is not spent; a request refused only because the
//! allowance is spent is not counted (it waits for the next round) and is
//! answered with a retry delay of one round. The bound this gives is stated
//! and argued in `docs/ratelimit.md`.
//!
//! Partition: a node that has heard from no peer for 1.5 rounds grants
//! nothing more ([`Mode::Doubt`]); after [`PARTITION_ROUNDS`] rounds, if it
//! knew others before, it enforces `⌊L / N_known⌋` on its own counts
//! (N_known: the node count when it last heard from peers), and counts each
//! such request ([`GlobalStats::partitioned`]). A node silent for
//! [`FORGET_MS`] is forgotten.
//!
//! Memory: the counters live in a table capped like the local one; remote
//! counts for unknown keys take a slot of the same table (evicted first: they
//! have never been hit here). The queue of keys to report holds each key at
//! most once per round and is capped by the table's capacity.
//!
//! What it must not do: read the clock (`now` is passed in), or wait on
//! anything but a shard's mutex on the request path.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::table::{Slot, Table};
use super::{Counter, LimitSpec, RateOutcome, KEY_HASHER};
use crate::UnixMillis;

/// Rounds of silence after which a node that knew peers counts itself partitioned.
pub const PARTITION_ROUNDS: u64 = 4;

/// A peer silent for this long is forgotten (a node that left the fleet).
pub const FORGET_MS: u64 = 5 * 60 * 1000;

/// The most peers remembered (node ids come from the mesh).
pub const MAX_PEERS: usize = 1024;

/// Entries per encoded batch (32 bytes each: well under NATS' 1 MiB payload).
pub const MAX_BATCH_ENTRIES: usize = 16 * 1024;

/// The largest limit a global counter holds (two bits of its word are flags).
const MAX_LIMIT: u64 = (1 << 30) - 1;
const QUEUED: u32 = 1 << 31;
const ROUNDED: u32 = 1 << 30;

/// One key's counts, 80 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct GlobalCounter {
    /// This node's counts, block, period and last hit.
    local: Counter,
    /// The other nodes' counts in the previous window.
    rprev: u32,
    /// The other nodes' counts in the current window.
    rcur: u32,
    /// Local hits of the current window not yet reported.
    unsent: u32,
    /// Local hits of the previous window not yet reported.
    owed: u32,
    /// Admissions left before the next round.
    left: u32,
    /// Remote demand heard since this key's last round.
    heard: u32,
    /// Remote demand heard in the round before.
    heard_prev: u32,
    /// The other nodes' allowances, as reported since this key's last round.
    rres: u32,
    /// The same, reported in the round before (an allowance lives two rounds).
    rres_prev: u32,
    /// Low 32 bits of the time `left` was granted: it lapses two rounds later.
    granted: u32,
    /// Local requests (admitted or not) since this key's last round.
    demand: u32,
    /// The limit (low 30 bits) and the QUEUED and ROUNDED flags.
    limit_flags: u32,
}

impl GlobalCounter {
    const ZERO: GlobalCounter = GlobalCounter {
        local: Counter::ZERO,
        rprev: 0,
        rcur: 0,
        unsent: 0,
        owed: 0,
        left: 0,
        heard: 0,
        heard_prev: 0,
        rres: 0,
        rres_prev: 0,
        granted: 0,
        demand: 0,
        limit_flags: 0,
    };

    fn advance(&mut self, period: u64, now: UnixMillis) {
        if let Some(adjacent) = self.local.advance(period, now) {
            self.rprev = if adjacent { self.rcur } else { 0 };
            self.rcur = 0;
            self.owed = if adjacent { self.unsent } else { 0 };
            self.unsent = 0;
        }
    }

    /// `G`: the weighted fleet-wide estimate, rounded down.
    fn estimate(&self, now: UnixMillis) -> u64 {
        let period = u64::from(self.local.period.max(1));
        let elapsed = now.saturating_sub(self.local.window_start).min(period);
        let p = u128::from(self.local.prev) + u128::from(self.rprev);
        let c = u128::from(self.local.cur) + u128::from(self.rcur);
        let w = p * u128::from(period - elapsed) / u128::from(period) + c;
        u64::try_from(w).unwrap_or(u64::MAX)
    }

    fn limit(&self) -> u64 {
        u64::from(self.limit_flags & !(QUEUED | ROUNDED))
    }

    /// The allowance of a key's first request here: an even share of what is
    /// left, `⌊(L − G + 1) / N⌋` (G counts this request, which the share covers).
    fn first_grant(&self, now: UnixMillis, nodes: u32) -> u32 {
        let room = (self.limit() + 1).saturating_sub(self.estimate(now));
        u32::try_from(room / u64::from(nodes.max(1))).unwrap_or(u32::MAX)
    }

    /// One request. Returns the outcome and whether it was counted.
    fn hit(&mut self, spec: &LimitSpec, now: UnixMillis, mode: Mode) -> (RateOutcome, Hit) {
        self.local.touched = now as u32;
        if self.local.is_blocked(now) {
            let retry_after_ms = self.local.blocked_until - now;
            return (RateOutcome::Limited { retry_after_ms }, Hit::Blocked);
        }
        let period = spec.period_ms.max(1);
        self.advance(period, now);
        let flags = self.limit_flags & (QUEUED | ROUNDED);
        self.limit_flags = (spec.requests.min(MAX_LIMIT) as u32) | flags;
        self.demand = self.demand.saturating_add(1);
        self.local.cur = self.local.cur.saturating_add(1);
        self.unsent = self.unsent.saturating_add(1);
        match mode {
            Mode::Alone => (self.local.judge(spec, period, now, 0, 0), Hit::Counted),
            Mode::Partitioned { nodes } => {
                let share = LimitSpec {
                    requests: (spec.requests / u64::from(nodes.max(1))).max(1),
                    ..*spec
                };
                (
                    self.local.judge(&share, period, now, 0, 0),
                    Hit::Partitioned,
                )
            }
            Mode::Connected { nodes, round_ms } | Mode::Doubt { nodes, round_ms } => {
                if flags & ROUNDED == 0 && self.demand == 1 {
                    // First request since the key appeared here: an even share.
                    self.left = self.first_grant(now, nodes);
                    self.granted = now as u32;
                }
                let out = self.local.judge(spec, period, now, self.rprev, self.rcur);
                if out != RateOutcome::Allowed {
                    return (out, Hit::Counted);
                }
                // An allowance lapses two rounds after it was granted (when the
                // rounds stall, the others stop counting it after two of theirs).
                let age = (now as u32).wrapping_sub(self.granted);
                if u64::from(age) > 2 * round_ms {
                    self.left = 0;
                }
                if self.left == 0 {
                    // Within the limit as far as this node knows, but its share is
                    // spent: not counted; wait for the next round.
                    self.local.cur -= 1;
                    self.unsent -= 1;
                    let retry_after_ms = round_ms.max(1);
                    return (RateOutcome::Limited { retry_after_ms }, Hit::Waiting);
                }
                self.left -= 1;
                (out, Hit::Counted)
            }
        }
    }

    /// Adds another node's report of `count` hits in the window starting at `ws`.
    fn add_remote(&mut self, e: &CountEntry) {
        let (ws, period, count) = (e.window_start, u64::from(e.period_ms), e.count);
        let period = period.max(1);
        if self.local.period == 0 || ws > self.local.window_start {
            self.advance(period, ws);
        }
        let start = self.local.window_start;
        if ws == start {
            self.rcur = self.rcur.saturating_add(count);
        } else if ws.saturating_add(period) == start {
            self.rprev = self.rprev.saturating_add(count);
        }
        self.heard = self.heard.saturating_add(e.demand);
        self.rres = self.rres.saturating_add(e.left);
    }

    /// Ends this key's round: appends what to report to `out` and grants
    /// the next allowance. Returns whether the key stays queued (it holds an
    /// allowance: the next round reports it or lets it lapse).
    fn round(&mut self, key: u64, now: UnixMillis, mode: Mode, out: &mut Vec<CountEntry>) -> bool {
        let period = u64::from(self.local.period.max(1));
        let ws = self.local.window_start;
        let first = self.limit_flags & ROUNDED == 0;
        let left = match mode {
            // An allowance not used for a whole round lapses.
            Mode::Connected { .. } if self.demand == 0 => 0,
            Mode::Connected { nodes, .. } => {
                let nodes = u64::from(nodes.max(1));
                let limit = self.limit();
                // The others' allowances: as they reported them; in a key's
                // first round, those granted on their first requests may not
                // be reported yet, so each is assumed to hold an even share.
                let mut others = u64::from(self.rres.max(self.rres_prev));
                if first {
                    others = others.max((nodes - 1) * limit.div_ceil(nodes));
                }
                let room = limit
                    .saturating_sub(self.estimate(now))
                    .saturating_sub(others);
                // This node's share of the demand the fleet saw in the last
                // two rounds, applied to the room with stochastic rounding
                // (unbiased: the fleet's grants add up to the room on average).
                let d = u128::from(self.demand);
                let all = d + u128::from(self.heard) + u128::from(self.heard_prev);
                let scaled = u128::from(room) * d * 1024 / all;
                let frac = (mix_round(key, now) & 1023) as u128;
                let g = scaled / 1024 + u128::from(scaled % 1024 > frac);
                u32::try_from(g).unwrap_or(u32::MAX)
            }
            Mode::Doubt { .. } | Mode::Partitioned { .. } | Mode::Alone => 0,
        };
        if self.unsent > 0 || self.demand > 0 || left > 0 {
            out.push(CountEntry {
                key,
                window_start: ws,
                period_ms: self.local.period,
                count: self.unsent,
                demand: self.demand,
                left,
            });
        }
        if self.owed > 0 && ws >= period {
            out.push(CountEntry {
                key,
                window_start: ws - period,
                period_ms: self.local.period,
                count: self.owed,
                demand: 0,
                left: 0,
            });
        }
        self.left = left;
        self.granted = now as u32;
        self.unsent = 0;
        self.owed = 0;
        self.demand = 0;
        self.heard_prev = self.heard;
        self.heard = 0;
        self.rres_prev = self.rres;
        self.rres = 0;
        self.limit_flags |= ROUNDED;
        if left > 0 {
            true
        } else {
            self.limit_flags &= !QUEUED;
            false
        }
    }
}

impl Slot for GlobalCounter {
    const ZERO: GlobalCounter = GlobalCounter::ZERO;

    fn blocked_until(&self) -> UnixMillis {
        self.local.blocked_until
    }

    fn is_stale(&self, now: UnixMillis) -> bool {
        self.limit_flags & QUEUED == 0 && self.local.is_stale(now)
    }

    fn age(&self, now: UnixMillis) -> u32 {
        self.local.age(now)
    }
}

/// A pseudo-random number from a key and a time, for stochastic rounding.
fn mix_round(key: u64, now: UnixMillis) -> u64 {
    let h = (key ^ now.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 31)
}

/// How a request was handled, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    Counted,
    Blocked,
    Waiting,
    Partitioned,
}

/// What a node knows of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No exchange runs (no mesh): the limit is enforced as a local one.
    Alone,
    /// Exchanging with the mesh; `nodes` alive including this one.
    Connected {
        /// Nodes alive, this one included.
        nodes: u32,
        /// The round period Δ, in milliseconds.
        round_ms: u64,
    },
    /// Peers are alive but none reported for 1.5 rounds: this node may be
    /// getting cut off, so its rounds grant nothing (allowances granted before
    /// are still spent) until it hears from a peer or counts itself partitioned.
    Doubt {
        /// Nodes alive, this one included.
        nodes: u32,
        /// The round period Δ, in milliseconds.
        round_ms: u64,
    },
    /// Cut off from peers it knew: enforces `L / nodes` locally.
    Partitioned {
        /// The node count when it last heard from peers.
        nodes: u32,
    },
}

impl Mode {
    fn pack(self) -> u64 {
        match self {
            Mode::Alone => 0,
            Mode::Connected { nodes, round_ms } => {
                1 | (u64::from(nodes) << 8) | (round_ms.min(u64::from(u32::MAX)) << 32)
            }
            Mode::Partitioned { nodes } => 2 | (u64::from(nodes) << 8),
            Mode::Doubt { nodes, round_ms } => {
                3 | (u64::from(nodes) << 8) | (round_ms.min(u64::from(u32::MAX)) << 32)
            }
        }
    }

    fn unpack(v: u64) -> Mode {
        let nodes = ((v >> 8) & 0xff_ffff) as u32;
        match v & 0xff {
            1 => Mode::Connected {
                nodes,
                round_ms: v >> 32,
            },
            2 => Mode::Partitioned { nodes },
            3 => Mode::Doubt {
                nodes,
                round_ms: v >> 32,
            },
            _ => Mode::Alone,
        }
    }
}

/// One count report: `count` hits of `key` in the window starting at `window_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountEntry {
    /// The counter key ([`super::rate_key`]).
    pub key: u64,
    /// Start of the window (a multiple of the period).
    pub window_start: UnixMillis,
    /// The limit's period.
    pub period_ms: u32,
    /// Hits counted.
    pub count: u32,
    /// Requests seen since the sender's last report (counted or not): the
    /// sender's demand, from which each node derives its share.
    pub demand: u32,
    /// The sender's allowance for the next round (requests it may admit
    /// without further news), which the others keep out of their grants.
    pub left: u32,
}

/// Counters of what the limiter did, since start.
#[derive(Debug, Default)]
pub struct GlobalStats {
    /// Requests refused because this node's allowance was spent (not counted).
    pub waiting: AtomicU64,
    /// Requests judged on the local share while partitioned.
    pub partitioned: AtomicU64,
    /// Remote count entries applied.
    pub remote_entries: AtomicU64,
    /// Keys that could not be queued for a report (the queue was full).
    pub queue_full: AtomicU64,
}

/// The counters of the global limits of one node.
pub struct GlobalLimiter {
    table: Table<GlobalCounter>,
    /// Keys with something to report, at most once each per round.
    queue: Box<[Mutex<Vec<u64>>]>,
    queue_cap: usize,
    mode: AtomicU64,
    /// What the limiter did.
    pub stats: GlobalStats,
}

const QUEUES: usize = 16;

impl std::fmt::Debug for GlobalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalLimiter")
            .field("capacity", &self.table.capacity())
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl GlobalLimiter {
    /// A limiter keeping at most about `max_keys` counters, in [`Mode::Alone`].
    pub fn new(max_keys: usize) -> Self {
        let table = Table::new(max_keys);
        let queue_cap = table.capacity().div_ceil(QUEUES) + 64;
        GlobalLimiter {
            table,
            queue: (0..QUEUES).map(|_| Mutex::new(Vec::new())).collect(),
            queue_cap,
            mode: AtomicU64::new(Mode::Alone.pack()),
            stats: GlobalStats::default(),
        }
    }

    /// What this node knows of the fleet.
    pub fn mode(&self) -> Mode {
        Mode::unpack(self.mode.load(Ordering::Relaxed))
    }

    /// Set by the exchange task each round.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode.pack(), Ordering::Relaxed);
    }

    /// Counts one request of `key` against `spec` at `now`.
    #[inline]
    pub fn hit(&self, key: u64, spec: &LimitSpec, now: UnixMillis) -> RateOutcome {
        let mode = self.mode();
        let (out, how) = self.table.with(
            key,
            now,
            |c| {
                let r = c.hit(spec, now, mode);
                if mode != Mode::Alone && c.limit_flags & QUEUED == 0 && self.enqueue(key) {
                    c.limit_flags |= QUEUED;
                }
                r
            },
            (RateOutcome::Allowed, Hit::Counted),
        );
        match how {
            Hit::Waiting => self.stats.waiting.fetch_add(1, Ordering::Relaxed),
            Hit::Partitioned => self.stats.partitioned.fetch_add(1, Ordering::Relaxed),
            Hit::Counted | Hit::Blocked => 0,
        };
        out
    }

    fn enqueue(&self, key: u64) -> bool {
        let q = &self.queue[(key as usize) % QUEUES];
        let mut q = q.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= self.queue_cap {
            self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        q.push(key);
        true
    }

    /// Ends the round of every key hit since the last one: returns their
    /// unreported counts and grants their next allowances (nothing unless
    /// `mode` is [`Mode::Connected`]).
    pub fn drain(&self, now: UnixMillis, mode: Mode) -> Vec<CountEntry> {
        let mut out = Vec::new();
        for q in self.queue.iter() {
            // The next round's queue is allocated here, off the request path.
            let keys = {
                let mut q = q.lock().unwrap_or_else(PoisonError::into_inner);
                let room = Vec::with_capacity(q.len());
                std::mem::replace(&mut *q, room)
            };
            for key in keys {
                self.table.with_existing(key, |c| {
                    if c.round(key, now, mode, &mut out) && !self.enqueue(key) {
                        c.limit_flags &= !QUEUED;
                    }
                });
            }
        }
        out
    }

    /// Applies another node's report.
    pub fn apply(&self, entries: &[CountEntry], now: UnixMillis) {
        for e in entries {
            self.table.with(e.key, now, |c| c.add_remote(e), ());
        }
        self.stats
            .remote_entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
    }

    /// How many counters are kept.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters dropped because the table was full, since creation.
    pub fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    /// The most counters this limiter keeps.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }
}

/// Who this node has heard from, to tell how many nodes share the limits and
/// whether this node is cut off.
#[derive(Debug, Default)]
pub struct Peers {
    last_seen: HashMap<String, UnixMillis>,
    /// The node count when a peer was last alive (this node included).
    known: u32,
    /// Reports refused (another build's keys, or too many peers).
    pub refused: u64,
}

impl Peers {
    /// Notes a report from `node` at `now`; false when refused (too many peers).
    pub fn heard(&mut self, node: &str, now: UnixMillis) -> bool {
        if let Some(t) = self.last_seen.get_mut(node) {
            *t = now;
            return true;
        }
        if self.last_seen.len() >= MAX_PEERS {
            self.last_seen
                .retain(|_, t| now.saturating_sub(*t) < FORGET_MS);
            if self.last_seen.len() >= MAX_PEERS {
                self.refused += 1;
                return false;
            }
        }
        self.last_seen.insert(node.to_owned(), now);
        true
    }

    /// The mode for the next round, with rounds of `round_ms`.
    pub fn mode(&mut self, now: UnixMillis, round_ms: u64) -> Mode {
        self.last_seen
            .retain(|_, t| now.saturating_sub(*t) < FORGET_MS);
        let silence = PARTITION_ROUNDS * round_ms.max(1);
        let alive = self
            .last_seen
            .values()
            .filter(|t| now.saturating_sub(**t) <= silence)
            .count();
        // Every peer reports once a round: none for a round and a half is a sign of isolation.
        let recent = round_ms.max(1) * 3 / 2;
        if self
            .last_seen
            .values()
            .any(|t| now.saturating_sub(*t) <= recent)
        {
            self.known = u32::try_from(alive + 1).unwrap_or(u32::MAX);
            return Mode::Connected {
                nodes: self.known,
                round_ms,
            };
        }
        // Nobody recent: the node count is kept as it was (peers dropping out
        // one by one now are more likely this node's own isolation).
        if alive > 0 {
            return Mode::Doubt {
                nodes: self.known.max(1),
                round_ms,
            };
        }
        if self.known > 1 && !self.last_seen.is_empty() {
            return Mode::Partitioned { nodes: self.known };
        }
        self.known = 1;
        Mode::Connected { nodes: 1, round_ms }
    }
}

/// A value every node of one build computes alike: reports from a build that
/// hashes keys differently are refused rather than mixed in.
pub fn key_fingerprint() -> u64 {
    let mut h = KEY_HASHER.build_hasher();
    h.write(b"palisade global rate limits v1");
    h.finish()
}

const MAGIC: &[u8; 4] = b"PGRL";
const ENTRY_BYTES: usize = 32;

/// Encodes `node`'s report in batches of at most [`MAX_BATCH_ENTRIES`]
/// entries (an empty report is one empty batch: a sign of life). Node ids
/// longer than 255 bytes are cut.
pub fn encode(node: &str, entries: &[CountEntry]) -> Vec<Vec<u8>> {
    let mut id = node.as_bytes();
    if id.len() > 255 {
        id = &id[..255];
    }
    let header = |n: usize| {
        let mut b = Vec::with_capacity(4 + 1 + 8 + 1 + id.len() + 4 + n * ENTRY_BYTES);
        b.extend_from_slice(MAGIC);
        b.push(1);
        b.extend_from_slice(&key_fingerprint().to_le_bytes());
        b.push(id.len() as u8);
        b.extend_from_slice(id);
        b.extend_from_slice(&(n as u32).to_le_bytes());
        b
    };
    if entries.is_empty() {
        return vec![header(0)];
    }
    entries
        .chunks(MAX_BATCH_ENTRIES)
        .map(|chunk| {
            let mut b = header(chunk.len());
            for e in chunk {
                b.extend_from_slice(&e.key.to_le_bytes());
                b.extend_from_slice(&e.window_start.to_le_bytes());
                b.extend_from_slice(&e.period_ms.to_le_bytes());
                b.extend_from_slice(&e.count.to_le_bytes());
                b.extend_from_slice(&e.demand.to_le_bytes());
                b.extend_from_slice(&e.left.to_le_bytes());
            }
            b
        })
        .collect()
}

/// A decoded report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The node that sent it.
    pub node: String,
    /// Its counts.
    pub entries: Vec<CountEntry>,
}

/// Decodes a batch made by [`encode`]; refuses anything else, and reports of
/// a build whose keys differ.
pub fn decode(b: &[u8]) -> Result<Report, String> {
    let mut r = Reader(b);
    if r.take(4)? != MAGIC {
        return Err("not a count report".into());
    }
    let version = r.take(1)?[0];
    if version != 1 {
        return Err(format!("count report version {version} (expected 1)"));
    }
    if r.u64()? != key_fingerprint() {
        return Err("count report from a build that hashes keys differently".into());
    }
    let id_len = usize::from(r.take(1)?[0]);
    let node = String::from_utf8_lossy(r.take(id_len)?).into_owned();
    let n = r.u32()? as usize;
    if n > MAX_BATCH_ENTRIES || r.0.len() != n * ENTRY_BYTES {
        return Err(format!(
            "count report of {n} entries has {} bytes of entries",
            r.0.len()
        ));
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let e = CountEntry {
            key: r.u64()?,
            window_start: r.u64()?,
            period_ms: r.u32()?,
            count: r.u32()?,
            demand: r.u32()?,
            left: r.u32()?,
        };
        if e.period_ms == 0 || u64::from(e.period_ms) > 86_400_000 {
            return Err(format!("count report with a period of {} ms", e.period_ms));
        }
        entries.push(e);
    }
    Ok(Report { node, entries })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated count report".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests;
