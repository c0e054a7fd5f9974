//! The request-path verifier: range sets, the result cache and the queue of
//! lookups for the edge's DNS worker.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use ahash::{AHashMap, RandomState};
use ipnet::IpNet;
use palisade_policy::expr::IpSet;
use parking_lot::{Mutex, RwLock};

use super::fcrdns::{canonical_ip, LookupOutcome};
use palisade_policy::bots::crawlers::{normalize_suffix, validate, CrawlerSpec};

/// The verifier's sizes and lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierLimits {
    /// At most this many (IP, crawler) results cached. When the cache (or,
    /// from 1,024 entries, its shard: one of 16) is full, a new result first
    /// sweeps the expired ones; if none had expired, it replaces the refuted
    /// or inconclusive result closest to expiry, or, when all are verified,
    /// the verified one closest to expiry. So a flood of false claims from
    /// many addresses churns false claims, not verified crawlers.
    pub max_cache: usize,
    /// How long a verified result is trusted.
    pub verified_ttl_ms: u64,
    /// How long a refuted claim stays refuted.
    pub failed_ttl_ms: u64,
    /// How long a resolver error stands before the lookup is tried again.
    pub error_ttl_ms: u64,
    /// At most this many lookups queued or handed to the worker and not yet
    /// completed; more are dropped (and counted).
    pub max_pending: usize,
    /// A lookup handed out and not completed within this time no longer
    /// holds its place (so a worker that loses lookups cannot block the
    /// queue for good).
    pub pending_timeout_ms: u64,
}

impl Default for VerifierLimits {
    fn default() -> Self {
        VerifierLimits {
            max_cache: 65_536,
            verified_ttl_ms: 24 * 3_600_000,
            failed_ttl_ms: 3_600_000,
            error_ttl_ms: 60_000,
            max_pending: 1_024,
            pending_timeout_ms: 120_000,
        }
    }
}

/// Why a crawler claim is not (yet) verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Not known yet: a lookup is queued or running (or was dropped because
    /// the queue was full; a later request queues it again).
    Pending,
    /// DNS says the client is not that crawler: the User-Agent lies.
    Refuted,
    /// The last lookup failed at the resolver; tried again after a while.
    ResolverError,
}

/// Who the client is, as far as known crawlers are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotIdentity {
    /// The User-Agent claims no known crawler.
    None,
    /// A known crawler, verified by its ranges or by FCrDNS.
    Verified {
        /// The crawler's name.
        name: Arc<str>,
    },
    /// The User-Agent claims a crawler that is not verified.
    Unverified {
        /// The claimed crawler's name.
        claimed: Arc<str>,
        /// Pending, refuted, or inconclusive.
        status: ClaimStatus,
    },
}

/// A reverse-DNS lookup for the edge's worker: run
/// [`fcrdns`](fn@super::fcrdns)`(lookup.ip, &lookup.domains, resolver)` and
/// report with [`Verifier::complete`]. A lookup belongs to the verifier that
/// handed it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The client address (IPv4 for IPv4-mapped addresses).
    pub ip: IpAddr,
    /// The crawler's index in the specs the verifier was built from.
    pub crawler: usize,
    /// The crawler's rDNS suffixes, lower case, without leading or trailing
    /// dots.
    pub domains: Arc<[Box<str>]>,
}

/// Counters, for metrics. All monotonic except `cache_size` and `pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Calls to [`Verifier::check`].
    pub checks: u64,
    /// Checks whose User-Agent claimed a known crawler.
    pub claims: u64,
    /// Claims verified by the crawler's published ranges.
    pub range_hits: u64,
    /// Claims answered by an unexpired cached result.
    pub cache_hits: u64,
    /// Lookups queued for the worker.
    pub lookups_queued: u64,
    /// Lookups not queued because `max_pending` was reached.
    pub lookups_dropped: u64,
    /// Completed lookups that verified.
    pub verified: u64,
    /// Completed lookups that refuted the claim.
    pub failed: u64,
    /// Completed lookups that ended in a resolver error.
    pub errors: u64,
    /// Cached results (expired ones included until swept or replaced).
    pub cache_size: u64,
    /// Lookups queued or handed out and not completed.
    pub pending: u64,
}

#[derive(Default)]
struct Counters {
    checks: AtomicU64,
    claims: AtomicU64,
    range_hits: AtomicU64,
    cache_hits: AtomicU64,
    lookups_queued: AtomicU64,
    lookups_dropped: AtomicU64,
    verified: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
}

struct Crawler {
    name: Arc<str>,
    /// The `user_agent` needle, ASCII lower case.
    needle: Box<[u8]>,
    domains: Arc<[Box<str>]>,
    ranges: IpSet,
}

/// (client IP, crawler index).
type Key = (IpAddr, u16);

#[derive(Debug, Clone, Copy)]
struct Entry {
    outcome: LookupOutcome,
    expires_ms: u64,
}

struct Pending {
    queue: VecDeque<Lookup>,
    /// Queued or handed-out keys, with the time they were queued.
    keys: AHashMap<Key, u64>,
    /// No key times out before this (a lower bound): stale keys are swept
    /// only when the set is full and this time has come.
    next_timeout_ms: u64,
}

/// Above this cache size the cache is split into [`SHARDS`] locks.
const SHARD_MIN_CACHE: usize = 1_024;
const SHARDS: usize = 16;

/// Verifies crawler claims; shared by all request threads (`&self`
/// methods). See the [module documentation](super).
pub struct Verifier {
    crawlers: Vec<Crawler>,
    limits: VerifierLimits,
    shards: Vec<RwLock<AHashMap<Key, Entry>>>,
    shard_cap: usize,
    hasher: RandomState,
    pending: Mutex<Pending>,
    counters: Counters,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "crawlers",
                &self.crawlers.iter().map(|c| &*c.name).collect::<Vec<_>>(),
            )
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Verifier {
    /// A verifier for `specs`; `ranges_by_spec[i]` holds the prefixes parsed
    /// from the range files of `specs[i]` (see
    /// [`parse_range_file`](super::parse_range_file); missing trailing
    /// entries count as none). Refuses invalid specs (every problem, as
    /// [`validate`] reports them), more range lists than specs, a crawler
    /// that could never be verified (no domains and no prefix), and zero
    /// limits.
    pub fn new(
        specs: &[CrawlerSpec],
        ranges_by_spec: Vec<Vec<IpNet>>,
        limits: VerifierLimits,
    ) -> Result<Verifier, Vec<String>> {
        let mut errors = validate(specs).err().unwrap_or_default();
        if ranges_by_spec.len() > specs.len() {
            errors.push(format!(
                "{} range lists for {} crawlers",
                ranges_by_spec.len(),
                specs.len()
            ));
        }
        for (field, v) in [
            ("max_cache", limits.max_cache as u64),
            ("max_pending", limits.max_pending as u64),
            ("verified_ttl_ms", limits.verified_ttl_ms),
            ("failed_ttl_ms", limits.failed_ttl_ms),
            ("error_ttl_ms", limits.error_ttl_ms),
            ("pending_timeout_ms", limits.pending_timeout_ms),
        ] {
            if v == 0 {
                errors.push(format!("verifier limits: {field} must be at least 1"));
            }
        }
        let mut ranges = ranges_by_spec.into_iter();
        let mut crawlers = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let nets = ranges.next().unwrap_or_default();
            if spec.domains.is_empty() && nets.is_empty() && !spec.ranges.is_empty() {
                errors.push(format!(
                    "bots.crawlers[{i}] ({:?}): no domains and its range files hold no prefix: it could never be verified",
                    spec.name
                ));
            }
            crawlers.push(Crawler {
                name: Arc::from(spec.name.trim()),
                needle: spec
                    .user_agent
                    .trim()
                    .to_ascii_lowercase()
                    .into_bytes()
                    .into(),
                domains: spec.domains.iter().map(|d| normalize_suffix(d)).collect(),
                ranges: IpSet::from_nets(nets),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let shards = if limits.max_cache >= SHARD_MIN_CACHE {
            SHARDS
        } else {
            1
        };
        Ok(Verifier {
            crawlers,
            limits,
            shards: (0..shards).map(|_| RwLock::new(AHashMap::new())).collect(),
            shard_cap: limits.max_cache / shards,
            hasher: RandomState::new(),
            pending: Mutex::new(Pending {
                queue: VecDeque::new(),
                keys: AHashMap::new(),
                next_timeout_ms: u64::MAX,
            }),
            counters: Counters::default(),
        })
    }

    /// The crawlers' names, by index.
    pub fn crawler_names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.crawlers.iter().map(|c| &c.name)
    }

    /// The limits the verifier was built with.
    pub fn limits(&self) -> VerifierLimits {
        self.limits
    }

    /// The crawler `user_agent` claims to be: the one with the longest
    /// matching needle (the first of equals), or `None`. Does not allocate.
    pub fn claimed(&self, user_agent: &str) -> Option<usize> {
        let ua = user_agent.as_bytes();
        let mut best: Option<(usize, usize)> = None;
        for (i, c) in self.crawlers.iter().enumerate() {
            if best.is_some_and(|(_, len)| len >= c.needle.len()) {
                continue;
            }
            if contains_ignore_ascii_case(ua, &c.needle) {
                best = Some((i, c.needle.len()));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Whether the client at `ip` sending `user_agent` is a known crawler.
    /// Cheap, for the request path: reads the ranges and the cache; on a
    /// miss (or an expired result) queues a lookup for the worker and
    /// answers `Unverified { status: Pending }`.
    pub fn check(&self, ip: IpAddr, user_agent: &str, now_ms: u64) -> BotIdentity {
        self.counters.checks.fetch_add(1, Relaxed);
        let Some(idx) = self.claimed(user_agent) else {
            return BotIdentity::None;
        };
        self.counters.claims.fetch_add(1, Relaxed);
        let crawler = &self.crawlers[idx];
        let ip = canonical_ip(ip);
        if crawler.ranges.contains(ip) {
            self.counters.range_hits.fetch_add(1, Relaxed);
            return BotIdentity::Verified {
                name: crawler.name.clone(),
            };
        }
        let unverified = |status| BotIdentity::Unverified {
            claimed: crawler.name.clone(),
            status,
        };
        if crawler.domains.is_empty() {
            // Ranges only, and not in them.
            return unverified(ClaimStatus::Refuted);
        }
        // `validate` caps crawlers at 128, so the index fits.
        let key: Key = (ip, idx as u16);
        let cached = self.shard(&key).read().get(&key).copied();
        if let Some(entry) = cached.filter(|e| e.expires_ms > now_ms) {
            self.counters.cache_hits.fetch_add(1, Relaxed);
            return match entry.outcome {
                LookupOutcome::Verified => BotIdentity::Verified {
                    name: crawler.name.clone(),
                },
                LookupOutcome::Failed => unverified(ClaimStatus::Refuted),
                LookupOutcome::Error => unverified(ClaimStatus::ResolverError),
            };
        }
        self.enqueue(key, crawler, now_ms);
        unverified(ClaimStatus::Pending)
    }

    fn enqueue(&self, key: Key, crawler: &Crawler, now_ms: u64) {
        let mut p = self.pending.lock();
        if p.keys.contains_key(&key) {
            return;
        }
        let max = self.limits.max_pending;
        let timeout = self.limits.pending_timeout_ms;
        if p.keys.len() >= max && now_ms >= p.next_timeout_ms {
            p.keys
                .retain(|_, queued| now_ms.saturating_sub(*queued) < timeout);
            p.next_timeout_ms = p
                .keys
                .values()
                .min()
                .map_or(u64::MAX, |q| q.saturating_add(timeout));
        }
        if p.keys.len() >= max || p.queue.len() >= max {
            drop(p);
            self.counters.lookups_dropped.fetch_add(1, Relaxed);
            return;
        }
        p.keys.insert(key, now_ms);
        p.next_timeout_ms = p.next_timeout_ms.min(now_ms.saturating_add(timeout));
        p.queue.push_back(Lookup {
            ip: key.0,
            crawler: usize::from(key.1),
            domains: crawler.domains.clone(),
        });
        drop(p);
        self.counters.lookups_queued.fetch_add(1, Relaxed);
    }

    /// Up to `max` queued lookups, oldest first, for the worker. They stay
    /// pending (a new request for the same client does not queue them again)
    /// until [`complete`](Self::complete)d or `pending_timeout_ms` passes.
    pub fn take_pending(&self, max: usize) -> Vec<Lookup> {
        let mut p = self.pending.lock();
        let n = max.min(p.queue.len());
        p.queue.drain(..n).collect()
    }

    /// Records what DNS said for `lookup` (see [`fcrdns`](fn@super::fcrdns)),
    /// cached for `verified_ttl_ms`, `failed_ttl_ms` or `error_ttl_ms`. A
    /// lookup naming no crawler of this verifier is ignored.
    pub fn complete(&self, lookup: &Lookup, outcome: LookupOutcome, now_ms: u64) {
        let Some(idx) = u16::try_from(lookup.crawler)
            .ok()
            .filter(|_| lookup.crawler < self.crawlers.len())
        else {
            return;
        };
        let key: Key = (canonical_ip(lookup.ip), idx);
        self.pending.lock().keys.remove(&key);
        let (ttl, counter) = match outcome {
            LookupOutcome::Verified => (self.limits.verified_ttl_ms, &self.counters.verified),
            LookupOutcome::Failed => (self.limits.failed_ttl_ms, &self.counters.failed),
            LookupOutcome::Error => (self.limits.error_ttl_ms, &self.counters.errors),
        };
        counter.fetch_add(1, Relaxed);
        let entry = Entry {
            outcome,
            expires_ms: now_ms.saturating_add(ttl),
        };
        let mut shard = self.shard(&key).write();
        if !shard.contains_key(&key) && shard.len() >= self.shard_cap {
            evict(&mut shard, self.shard_cap, now_ms);
        }
        shard.insert(key, entry);
    }

    /// The counters.
    pub fn stats(&self) -> VerifierStats {
        let c = &self.counters;
        VerifierStats {
            checks: c.checks.load(Relaxed),
            claims: c.claims.load(Relaxed),
            range_hits: c.range_hits.load(Relaxed),
            cache_hits: c.cache_hits.load(Relaxed),
            lookups_queued: c.lookups_queued.load(Relaxed),
            lookups_dropped: c.lookups_dropped.load(Relaxed),
            verified: c.verified.load(Relaxed),
            failed: c.failed.load(Relaxed),
            errors: c.errors.load(Relaxed),
            cache_size: self.shards.iter().map(|s| s.read().len() as u64).sum(),
            pending: self.pending.lock().keys.len() as u64,
        }
    }

    fn shard(&self, key: &Key) -> &RwLock<AHashMap<Key, Entry>> {
        let i = (self.hasher.hash_one(key) as usize) % self.shards.len();
        &self.shards[i]
    }
}

/// Makes room in a full shard: drops every expired entry; if none was,
/// drops one entry — a refuted or inconclusive one before a verified one,
/// the soonest to expire among those. So a flood of false claims from many
/// addresses churns the false claims, not the verified crawlers, and the
/// entry dropped is the one that would have lapsed first anyway. One pass
/// over the shard, only when it is full.
fn evict(shard: &mut AHashMap<Key, Entry>, cap: usize, now_ms: u64) {
    shard.retain(|_, e| e.expires_ms > now_ms);
    if shard.len() < cap {
        return;
    }
    let victim = shard
        .iter()
        .min_by_key(|(_, e)| (e.outcome == LookupOutcome::Verified, e.expires_ms))
        .map(|(k, _)| *k);
    if let Some(k) = victim {
        shard.remove(&k);
    }
}

/// Whether `hay` contains `needle` (ASCII lower case), ignoring ASCII case.
fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    hay[..=last_start].iter().enumerate().any(|(i, b)| {
        b.to_ascii_lowercase() == first
            && hay[i + 1..i + needle.len()]
                .iter()
                .zip(rest)
                .all(|(h, n)| h.to_ascii_lowercase() == *n)
    })
}

#[cfg(test)]
mod tests;
