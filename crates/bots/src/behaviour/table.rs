//! The per-node client table: sharded, capped, with sampled eviction of the
//! least recently seen client; and the route baselines it feeds.

use super::baseline::Routes;
use super::reasons::Reasons;
use super::score::{bot_score, Scores};
use super::share::{FleetIndex, FleetShare, MAX_SHARE_CLIENTS};
use super::signals::{ClientKey, RequestSignals, RouteKey};
use super::stats::{ClientStats, Evidence, Observation};
use ahash::AHashMap;
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Shards of the table (one short lock per call).
pub const SHARDS: usize = 16;
/// The default capacity (clients).
pub const DEFAULT_CLIENTS: usize = 65_536;
/// Slots looked at to choose whom to evict.
const EVICTION_SAMPLE: usize = 8;
/// Clients seen this recently are candidates for the share.
pub const SHARE_WINDOW_MS: u64 = 10 * 60_000;

#[derive(Default)]
struct Shard {
    index: AHashMap<u64, u32>,
    slots: Vec<(u64, ClientStats)>,
    rng: u64,
    evicted: u64,
}

impl Shard {
    /// The slot of `key`, making one (evicting if the shard is full).
    fn slot(&mut self, key: u64, cap: usize) -> &mut ClientStats {
        if let Some(&i) = self.index.get(&key) {
            return &mut self.slots[i as usize].1;
        }
        if self.slots.len() < cap {
            self.index.insert(key, self.slots.len() as u32);
            self.slots.push((key, ClientStats::default()));
            let last = self.slots.len() - 1;
            return &mut self.slots[last].1;
        }
        // Sampled LRU: of a few pseudo-random slots, the one seen least
        // recently (then with the fewest requests) goes.
        let n = self.slots.len();
        let mut victim = 0usize;
        let mut best = (u64::MAX, u32::MAX);
        for _ in 0..EVICTION_SAMPLE {
            // xorshift64*, seeded by the keys it sees: no clock, no I/O.
            self.rng ^= key | 1;
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let i = (self.rng % n as u64) as usize;
            let s = &self.slots[i].1;
            let rank = (s.ev.last_ms, s.ev.requests);
            if rank < best {
                best = rank;
                victim = i;
            }
        }
        let old = self.slots[victim].0;
        self.index.remove(&old);
        self.index.insert(key, victim as u32);
        self.slots[victim] = (key, ClientStats::default());
        self.evicted += 1;
        &mut self.slots[victim].1
    }
}

/// A node's behaviour statistics: at most `capacity` clients (in
/// [`SHARDS`] shards) and [`super::baseline::MAX_ROUTES`] routes.
/// Thread-safe: every call takes one shard lock for a few hundred
/// nanoseconds (the route lock only at a client's sampling milestones).
pub struct ClientTable {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    routes: Mutex<Routes>,
}

impl Default for ClientTable {
    fn default() -> Self {
        ClientTable::new(DEFAULT_CLIENTS)
    }
}

/// The table's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub clients: usize,
    pub evicted: u64,
    pub routes: usize,
    /// Baseline samples dropped because the route table was full.
    pub routes_dropped: u64,
}

impl ClientTable {
    /// A table of at most `capacity` clients (16 to 2^20; rounded up to a
    /// multiple of [`SHARDS`]).
    pub fn new(capacity: usize) -> ClientTable {
        let per_shard = capacity.clamp(SHARDS, 1 << 20).div_ceil(SHARDS);
        ClientTable {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
            routes: Mutex::new(Routes::default()),
        }
    }

    /// The most clients the table holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: ClientKey) -> &Mutex<Shard> {
        &self.shards[(key.0 >> 56) as usize % SHARDS]
    }

    /// Counts one request of `key` (call it when the request's headers are
    /// read, before or after [`ClientTable::score`]).
    pub fn observe(&self, key: ClientKey, obs: &Observation, now_ms: u64) {
        let sample = {
            let mut shard = self.shard(key).lock();
            let per_shard = self.per_shard;
            let stats = shard.slot(key.0, per_shard);
            stats.observe(obs, now_ms).map(|_| stats.ev.features())
        };
        if let Some(f) = sample {
            self.routes.lock().add(obs.route.0, &f);
        }
    }

    /// Counts the response to a request of `key` (call it when the origin's
    /// status is known): `status`, and whether the response set a cookie
    /// (a clearance or the origin's session cookie).
    pub fn observe_response(&self, key: ClientKey, status: u16, set_cookie: bool, now_ms: u64) {
        let mut shard = self.shard(key).lock();
        let per_shard = self.per_shard;
        shard
            .slot(key.0, per_shard)
            .observe_response(status, set_cookie, now_ms);
    }

    /// This node's evidence on `key` (none for an unknown or expired client).
    pub fn evidence(&self, key: ClientKey, now_ms: u64) -> Option<Evidence> {
        let shard = self.shard(key).lock();
        let i = *shard.index.get(&key.0)?;
        shard.slots[i as usize].1.current(now_ms)
    }

    /// Scores a request of `key` on `route`: this node's evidence combined
    /// with the fleet's (`fleet`), the request's `signals`, the route's
    /// fleet-wide baseline. Takes one shard lock; does not change the table.
    pub fn score(
        &self,
        key: ClientKey,
        signals: &RequestSignals,
        route: RouteKey,
        fleet: &FleetIndex,
        now_ms: u64,
    ) -> Scores {
        let local = self.evidence(key, now_ms);
        let remote = fleet
            .client(key.0)
            .filter(|e| now_ms.saturating_sub(e.last_ms) <= super::stats::IDLE_RESET_MS);
        let mut reasons = Reasons::empty();
        let ev = match (local, remote) {
            (Some(l), Some(r)) => {
                reasons |= Reasons::FLEET_EVIDENCE;
                Some(l.combine(r))
            }
            (Some(l), None) => Some(l),
            (None, Some(r)) => {
                reasons |= Reasons::FLEET_EVIDENCE;
                Some(*r)
            }
            (None, None) => None,
        };
        let features = ev.map(|e| e.features());
        let (bot, why) = bot_score(signals, features.as_ref());
        reasons |= why;
        let (anomaly, why) = match (features, fleet.route(route.0)) {
            (Some(f), Some(h)) => h.anomaly(&f),
            _ => (0, Reasons::empty()),
        };
        reasons |= why;
        Scores {
            bot,
            anomaly,
            reasons,
        }
    }

    /// This node's share for the fleet: its [`MAX_SHARE_CLIENTS`] most
    /// active clients seen in the last [`SHARE_WINDOW_MS`] (by requests,
    /// then key) and its route baselines. Takes each shard lock in turn
    /// (one pass over the table): call it once per publication.
    pub fn snapshot(&self, now_ms: u64) -> FleetShare {
        struct Cand(u32, u64, Evidence);
        impl PartialEq for Cand {
            fn eq(&self, o: &Self) -> bool {
                (self.0, Reverse(self.1)) == (o.0, Reverse(o.1))
            }
        }
        impl Eq for Cand {}
        impl PartialOrd for Cand {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for Cand {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                (self.0, Reverse(self.1)).cmp(&(o.0, Reverse(o.1)))
            }
        }
        // A min-heap of the best so far.
        let mut heap: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(MAX_SHARE_CLIENTS + 1);
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (key, stats) in &shard.slots {
                let ev = &stats.ev;
                if ev.is_empty() || now_ms.saturating_sub(ev.last_ms) > SHARE_WINDOW_MS {
                    continue;
                }
                let c = Cand(ev.requests, *key, *ev);
                if heap.len() < MAX_SHARE_CLIENTS {
                    heap.push(Reverse(c));
                } else if heap.peek().is_some_and(|Reverse(min)| c > *min) {
                    heap.pop();
                    heap.push(Reverse(c));
                }
            }
        }
        let clients = heap.into_iter().map(|Reverse(c)| (c.1, c.2)).collect();
        let routes = self
            .routes
            .lock()
            .map
            .iter()
            .map(|(k, h)| (*k, *h))
            .collect();
        FleetShare::new(clients, routes)
    }

    /// Counters for metrics.
    pub fn stats(&self) -> TableStats {
        let mut t = TableStats::default();
        for s in self.shards.iter() {
            let s = s.lock();
            t.clients += s.slots.len();
            t.evicted += s.evicted;
        }
        let r = self.routes.lock();
        t.routes = r.map.len();
        t.routes_dropped = r.dropped;
        t
    }
}
