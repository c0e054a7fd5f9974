//! Local rate limiting with Cloudflare's semantics.
//!
//! A limit counts requests per client, where the client is identified by
//! [`Characteristic`]s (the source address, a header, a cookie…). The counter
//! of one client of one limit is found by [`rate_key`], a 64-bit hash.
//!
//! [`RateLimiter`] keeps the counters. Its rate is Cloudflare's sliding window
//! approximation: windows are aligned to multiples of the period and the rate
//! is `previous window count × (period − elapsed in current window) / period +
//! current window count`. A request is counted first; when the estimate then
//! exceeds the limit, the client is limited:
//! - with a mitigation timeout, the key is blocked until `now + timeout` and
//!   every request meanwhile is limited without being counted;
//! - without one, only the requests over the rate are limited, with a retry
//!   delay after which a request would be allowed again.
//!
//! Memory is bounded: counters live in a fixed number of mutex-protected
//! shards, each a set-associative table (8 ways per set) that grows up to its
//! share of `max_keys`. When a new key's set is full, a stale counter (no
//! block and no requests in its last two windows) is reused; otherwise the
//! least recently used unblocked counter of the set is evicted and counted.
//!
//! What it must not do: read the clock (`now` is passed in) or allocate per
//! request.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ahash::RandomState;

use crate::request::Request;
use crate::UnixMillis;

/// What identifies a client for a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Characteristic {
    /// The client address (`ip.src`).
    IpSrc,
    /// Every value of a request header (lower-cased name), bytes as sent.
    Header(String),
    /// Every value of a cookie, in every `Cookie` field, bytes as sent.
    Cookie(String),
    /// Every raw (undecoded) value of a query argument.
    QueryArg(String),
    /// The normalized path of the request ([`crate::normalize`]).
    Path,
}

const ACCEPTED_FORMS: &str = "accepted: ip.src, http.request.headers[\"name\"], \
    http.request.cookies[\"name\"], http.request.uri.args[\"name\"], http.request.uri.path, \
    or the short forms ip, header:name, cookie:name, query:name, path";

impl Characteristic {
    /// Reads a characteristic as written in policy files.
    ///
    /// Accepted: `ip.src`, `http.request.headers["x-api-key"]`,
    /// `http.request.cookies["session"]`, `http.request.uri.args["user"]`,
    /// `http.request.uri.path`, and the short forms `ip`, `header:x-api-key`,
    /// `cookie:session`, `query:user`, `path`. Header names are lower-cased.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let err =
            |why: &str| format!("invalid rate-limit characteristic `{t}`: {why}; {ACCEPTED_FORMS}");
        match t {
            "ip.src" | "ip" => return Ok(Characteristic::IpSrc),
            "http.request.uri.path" | "path" => return Ok(Characteristic::Path),
            _ => {}
        }
        let (kind, name) = if let Some(n) = bracketed(t, "http.request.headers") {
            ("header", n)
        } else if let Some(n) = bracketed(t, "http.request.cookies") {
            ("cookie", n)
        } else if let Some(n) = bracketed(t, "http.request.uri.args") {
            ("query", n)
        } else if let Some((k, n)) = t.split_once(':') {
            (k.trim(), n.trim())
        } else {
            return Err(err("unknown form"));
        };
        if name.is_empty() {
            return Err(err("the name is empty"));
        }
        if name.contains('"') {
            return Err(err("the name contains a quote"));
        }
        match kind {
            "header" => {
                let lower = name.to_ascii_lowercase();
                if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                    return Err(err("not a valid header name"));
                }
                Ok(Characteristic::Header(lower))
            }
            "cookie" => {
                if name.bytes().any(|b| {
                    b.is_ascii_whitespace() || b.is_ascii_control() || b == b';' || b == b'='
                }) {
                    return Err(err("not a valid cookie name"));
                }
                Ok(Characteristic::Cookie(name.to_owned()))
            }
            "query" => {
                if name.contains('&') || name.contains('#') {
                    return Err(err("not a valid query argument name"));
                }
                Ok(Characteristic::QueryArg(name.to_owned()))
            }
            _ => Err(err("unknown form")),
        }
    }
}

/// `prefix["name"]` → `name`.
fn bracketed<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix)?
        .strip_prefix("[\"")?
        .strip_suffix("\"]")
}

impl fmt::Display for Characteristic {
    /// The long (Cloudflare) form, which [`Characteristic::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Characteristic::IpSrc => f.write_str("ip.src"),
            Characteristic::Header(n) => write!(f, "http.request.headers[\"{n}\"]"),
            Characteristic::Cookie(n) => write!(f, "http.request.cookies[\"{n}\"]"),
            Characteristic::QueryArg(n) => write!(f, "http.request.uri.args[\"{n}\"]"),
            Characteristic::Path => f.write_str("http.request.uri.path"),
        }
    }
}

/// Fixed seeds: every thread (and every limiter) computes the same key for the same request.
static KEY_HASHER: RandomState = RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

/// The counter key of one client for limit number `limit_index`: a hash of the
/// index and of each characteristic's values. A header, cookie or query
/// argument hashes all its values (each length-prefixed, then their count;
/// header and cookie bytes as sent, so `\x80` and `\x81` differ), so a repeated one is keyed on
/// everything the client sent, not just the first value; a missing one hashes
/// as one empty value. The path is the normalized one (`/%61dmin` counts as
/// `/admin`). IPv4-mapped IPv6 addresses hash as IPv4. Allocates nothing.
/// Stable within a process (not across builds).
pub fn rate_key(limit_index: u32, chars: &[Characteristic], req: &Request<'_>) -> u64 {
    let mut h = KEY_HASHER.build_hasher();
    h.write_u32(limit_index);
    for c in chars {
        match c {
            Characteristic::IpSrc => match req.client_ip {
                IpAddr::V4(a) => {
                    h.write_u8(4);
                    h.write_u32(u32::from(a));
                }
                IpAddr::V6(a) => match a.to_ipv4_mapped() {
                    Some(v4) => {
                        h.write_u8(4);
                        h.write_u32(u32::from(v4));
                    }
                    None => {
                        h.write_u8(6);
                        h.write_u128(u128::from(a));
                    }
                },
            },
            Characteristic::Header(name) => write_values(
                &mut h,
                req.headers
                    .get_all(name.as_str())
                    .iter()
                    .map(|v| v.as_bytes()),
            ),
            Characteristic::Cookie(name) => write_values(&mut h, req.cookies_raw(name)),
            Characteristic::QueryArg(name) => {
                write_values(&mut h, req.query_args_raw(name).map(str::as_bytes))
            }
            Characteristic::Path => write_field(&mut h, req.path().as_bytes()),
        }
    }
    h.finish()
}

/// Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
fn write_field(h: &mut impl Hasher, v: &[u8]) {
    h.write_usize(v.len());
    h.write(v);
}

/// Every value, each length-prefixed, then their count: two requests share
/// a key only when they send the same values in the same order. No value
/// hashes as one empty value.
fn write_values<'v>(h: &mut impl Hasher, values: impl Iterator<Item = &'v [u8]>) {
    let mut n = 0usize;
    for v in values {
        write_field(h, v);
        n += 1;
    }
    if n == 0 {
        write_field(h, b"");
        n = 1;
    }
    h.write_usize(n);
}

/// A limit: at most `requests` per `period_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSpec {
    /// Requests allowed per period.
    pub requests: u64,
    /// The period in milliseconds (0 is treated as 1).
    pub period_ms: u64,
    /// How long a client that went over is blocked; 0 limits only the requests over the rate.
    pub mitigation_timeout_ms: u64,
}

impl LimitSpec {
    /// The same limit with `requests` multiplied by `factor` (rounded down,
    /// at least 1): under-attack mode tightens limits this way.
    pub fn scaled(&self, factor: f64) -> LimitSpec {
        let r = ((self.requests as f64) * factor).floor();
        LimitSpec {
            requests: if r.is_finite() && r >= 1.0 {
                (r as u64).min(self.requests)
            } else {
                1
            },
            ..*self
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOutcome {
    /// Under the limit.
    Allowed,
    /// Over the limit; a request after `retry_after_ms` (at least 1) would be considered again.
    Limited {
        /// Milliseconds until the block ends or the rate falls back within the limit.
        retry_after_ms: u64,
    },
}

/// One counter: 32 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    /// Start of the current window (a multiple of the period).
    window_start: UnixMillis,
    /// Blocked while `now < blocked_until`.
    blocked_until: UnixMillis,
    /// Requests counted in the previous window.
    prev: u32,
    /// Requests counted in the current window.
    cur: u32,
    /// The period of the last hit (saturated), to tell when the counter is stale.
    period: u32,
    /// Low 32 bits of the time of the last hit, for least-recently-used eviction.
    touched: u32,
}

impl Counter {
    const ZERO: Counter = Counter {
        window_start: 0,
        blocked_until: 0,
        prev: 0,
        cur: 0,
        period: 0,
        touched: 0,
    };

    fn is_blocked(&self, now: UnixMillis) -> bool {
        self.blocked_until > now
    }

    /// Not blocked and nothing counted in the current or previous window.
    fn is_stale(&self, now: UnixMillis) -> bool {
        !self.is_blocked(now) && now >= self.window_start.saturating_add(2 * u64::from(self.period))
    }

    /// Milliseconds since the last hit (wrapping arithmetic: right for ages under 49 days).
    fn age(&self, now: UnixMillis) -> u32 {
        (now as u32).wrapping_sub(self.touched)
    }

    fn hit(&mut self, spec: &LimitSpec, now: UnixMillis) -> RateOutcome {
        self.touched = now as u32;
        if self.is_blocked(now) {
            return RateOutcome::Limited {
                retry_after_ms: self.blocked_until - now,
            };
        }
        let period = spec.period_ms.max(1);
        self.period = u32::try_from(period).unwrap_or(u32::MAX);
        let win = now - now % period;
        // A `now` slightly behind another thread's (win < window_start) counts in the current window.
        if win > self.window_start {
            let adjacent = self.window_start >= win - period;
            self.prev = if adjacent { self.cur } else { 0 };
            self.cur = 0;
            self.window_start = win;
        }
        self.cur = self.cur.saturating_add(1);
        let elapsed = now.saturating_sub(self.window_start).min(period);
        let (p, c, big_p) = (
            u128::from(self.prev),
            u128::from(self.cur),
            u128::from(period),
        );
        // estimate > requests  ⟺  prev × (period − elapsed) + cur × period > requests × period
        let weighted = p * u128::from(period - elapsed) + c * big_p;
        if weighted <= u128::from(spec.requests) * big_p {
            return RateOutcome::Allowed;
        }
        let retry_after_ms = if spec.mitigation_timeout_ms > 0 {
            self.blocked_until = now.saturating_add(spec.mitigation_timeout_ms);
            spec.mitigation_timeout_ms
        } else {
            self.time_until_allowed(spec.requests, period, elapsed, now)
        };
        RateOutcome::Limited {
            retry_after_ms: retry_after_ms.max(1),
        }
    }

    /// Without a block: the delay after which one more request would be allowed,
    /// assuming no other request comes meanwhile.
    fn time_until_allowed(&self, requests: u64, period: u64, elapsed: u64, now: UnixMillis) -> u64 {
        if requests == 0 {
            return period;
        }
        let (r, p, c, big_p) = (
            u128::from(requests),
            u128::from(self.prev),
            u128::from(self.cur),
            u128::from(period),
        );
        let left = u128::from(period - elapsed);
        // Still in this window, at now + d: p × (left − d) + (c + 1) × P ≤ r × P.
        if c < r && p > 0 {
            let slack = (r - c - 1) * big_p / p;
            let d = left.saturating_sub(slack);
            if d < left {
                return u64::try_from(d).unwrap_or(u64::MAX);
            }
        }
        // In the next window, at offset t: c × (P − t) + P ≤ r × P.
        let to_next = self.window_start.saturating_add(period).saturating_sub(now);
        let t = ((r - 1) * big_p)
            .checked_div(c)
            .map_or(0, |q| big_p.saturating_sub(q));
        to_next.saturating_add(u64::try_from(t).unwrap_or(u64::MAX))
    }
}

const WAYS: usize = 8;

/// One set of the set-associative table; the tags fill the first cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Set {
    /// `0` marks a free way; live tags have their low bit set.
    tags: [u64; WAYS],
    counters: [Counter; WAYS],
}

const EMPTY_SET: Set = Set {
    tags: [0; WAYS],
    counters: [Counter::ZERO; WAYS],
};

impl Set {
    /// The way to evict: the least recently used unblocked counter, or the
    /// blocked one whose block ends first when all are blocked.
    fn victim(&self, now: UnixMillis) -> usize {
        let mut best = 0;
        let mut best_rank = (true, 0u64);
        for (i, c) in self.counters.iter().enumerate() {
            let blocked = c.is_blocked(now);
            let rank = if blocked {
                (true, c.blocked_until)
            } else {
                (false, u64::from(u32::MAX - c.age(now)))
            };
            if i == 0 || rank < best_rank {
                best = i;
                best_rank = rank;
            }
        }
        best
    }
}

/// Maps a tag uniformly onto `0..n` using its high bits.
#[inline]
fn set_index(tag: u64, n: usize) -> usize {
    ((u128::from(tag) * n as u128) >> 64) as usize
}

/// Spreads keys that are not already good hashes (a bijection, so keys stay distinct).
#[inline]
fn mix(key: u64) -> u64 {
    let h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

struct Shard {
    sets: Vec<Set>,
    max_sets: usize,
    len: usize,
    evictions: u64,
}

const INITIAL_SETS: usize = 4;

impl Shard {
    fn new(max_sets: usize) -> Self {
        Shard {
            sets: vec![EMPTY_SET; INITIAL_SETS.min(max_sets)],
            max_sets,
            len: 0,
            evictions: 0,
        }
    }

    fn hit(&mut self, tag: u64, spec: &LimitSpec, now: UnixMillis) -> RateOutcome {
        let si = set_index(tag, self.sets.len());
        if let Some(set) = self.sets.get_mut(si) {
            if let Some(w) = set.tags.iter().position(|&t| t == tag) {
                return set.counters[w].hit(spec, now);
            }
        }
        let (si, w) = self.place(tag, now);
        match self.sets.get_mut(si) {
            Some(set) => {
                set.tags[w] = tag;
                set.counters[w] = Counter::ZERO;
                set.counters[w].hit(spec, now)
            }
            // Unreachable: `place` returns an index into `sets`.
            None => RateOutcome::Allowed,
        }
    }

    /// Finds a way for a new tag: a free one, a stale one, room made by
    /// growing, or an evicted one, in that order.
    fn place(&mut self, tag: u64, now: UnixMillis) -> (usize, usize) {
        loop {
            let si = set_index(tag, self.sets.len());
            let Some(set) = self.sets.get(si) else {
                return (0, 0);
            };
            if let Some(w) = set.tags.iter().position(|&t| t == 0) {
                self.len += 1;
                return (si, w);
            }
            if let Some(w) = set.counters.iter().position(|c| c.is_stale(now)) {
                return (si, w);
            }
            if self.sets.len() < self.max_sets {
                self.grow(now);
                continue;
            }
            self.evictions += 1;
            return (si, set.victim(now));
        }
    }

    /// Doubles the number of sets (up to `max_sets`), dropping stale counters.
    fn grow(&mut self, now: UnixMillis) {
        let n = (self.sets.len() * 2).min(self.max_sets);
        let mut sets = vec![EMPTY_SET; n];
        for old in &self.sets {
            for (&tag, c) in old.tags.iter().zip(&old.counters) {
                if tag == 0 {
                    continue;
                }
                if c.is_stale(now) {
                    self.len -= 1;
                    continue;
                }
                let Some(dst) = sets.get_mut(set_index(tag, n)) else {
                    continue;
                };
                let w = match dst.tags.iter().position(|&t| t == 0) {
                    Some(w) => w,
                    None => {
                        // Only when the last growth step is not a doubling.
                        self.evictions += 1;
                        self.len -= 1;
                        let w = dst.victim(now);
                        if dst.counters[w].is_blocked(now) && !c.is_blocked(now) {
                            continue;
                        }
                        w
                    }
                };
                dst.tags[w] = tag;
                dst.counters[w] = *c;
            }
        }
        self.sets = sets;
    }

    fn clear(&mut self) {
        self.sets = vec![EMPTY_SET; INITIAL_SETS.min(self.max_sets)];
        self.len = 0;
    }
}

/// A shard on its own cache lines, so that two cores locking neighbours do not contend.
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

const MAX_SHARDS: usize = 64;

/// Rate-limit counters shared by all worker threads.
pub struct RateLimiter {
    shards: Box<[PaddedShard]>,
    shard_mask: usize,
    capacity: usize,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter keeping at most about `max_keys` counters overall (never
    /// fewer than 8). Memory grows with use, up to about 40 bytes per counter.
    pub fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(WAYS);
        // Each shard gets at least 8 sets when possible.
        let mut n = MAX_SHARDS;
        while n > 1 && max_keys / n < WAYS * 8 {
            n /= 2;
        }
        let max_sets = (max_keys / n / WAYS).max(1);
        let shards: Box<[PaddedShard]> = (0..n)
            .map(|_| PaddedShard(Mutex::new(Shard::new(max_sets))))
            .collect();
        RateLimiter {
            shards,
            shard_mask: n - 1,
            capacity: n * max_sets * WAYS,
        }
    }

    /// Counts one request of `key` against `spec` at `now`.
    pub fn hit(&self, key: u64, spec: &LimitSpec, now: UnixMillis) -> RateOutcome {
        let tag = mix(key) | 1;
        self.shard(tag).hit(tag, spec, now)
    }

    /// How many counters are kept (including stale ones not yet reused).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).len).sum()
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most counters this limiter keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters dropped because the table was full, since creation.
    pub fn evictions(&self) -> u64 {
        self.shards.iter().map(|s| lock(&s.0).evictions).sum()
    }

    /// Forgets every counter and block (the eviction count is kept).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            lock(&s.0).clear();
        }
    }

    #[inline]
    fn shard(&self, tag: u64) -> MutexGuard<'_, Shard> {
        let i = (tag >> 1) as usize & self.shard_mask;
        // The mask keeps `i` in range; the fallback only satisfies the no-panic rule.
        match self.shards.get(i) {
            Some(s) => lock(&s.0),
            None => lock(&self.shards[0].0),
        }
    }

    #[cfg(test)]
    fn contains(&self, key: u64) -> bool {
        let tag = mix(key) | 1;
        let shard = self.shard(tag);
        let si = set_index(tag, shard.sets.len());
        shard.sets[si].tags.contains(&tag)
    }
}

/// A poisoned lock only means another thread panicked mid-update; counters stay usable.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::tests::{with_raw_request, with_request};

    #[allow(non_snake_case)]
    fn LIMITED(retry_after_ms: u64) -> RateOutcome {
        RateOutcome::Limited { retry_after_ms }
    }

    fn spec(requests: u64, period_ms: u64, mitigation_timeout_ms: u64) -> LimitSpec {
        LimitSpec {
            requests,
            period_ms,
            mitigation_timeout_ms,
        }
    }

    #[test]
    fn counter_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Counter>(), 32);
        assert_eq!(std::mem::size_of::<Set>(), 320);
    }

    #[test]
    fn limiter_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RateLimiter>();
    }

    #[test]
    fn exactly_n_allowed_then_blocked_for_the_mitigation_timeout() {
        let rl = RateLimiter::new(1000);
        let s = spec(5, 10_000, 60_000);
        for i in 0..5 {
            assert_eq!(
                rl.hit(7, &s, 100_000 + i),
                RateOutcome::Allowed,
                "request {i}"
            );
        }
        assert_eq!(rl.hit(7, &s, 100_005), LIMITED(60_000));
        // Retry-After is the remaining block, and blocked requests are not counted.
        assert_eq!(rl.hit(7, &s, 101_005), LIMITED(59_000));
        for i in 0..100 {
            assert_eq!(rl.hit(7, &s, 150_000 + i), LIMITED(10_005 - i));
        }
        assert_eq!(rl.hit(7, &s, 160_004), LIMITED(1));
        // Recovery: the block ended and nothing was counted in the last windows.
        for i in 0..5 {
            assert_eq!(rl.hit(7, &s, 160_005 + i), RateOutcome::Allowed);
        }
        assert_eq!(rl.hit(7, &s, 160_010), LIMITED(60_000));
    }

    #[test]
    fn without_mitigation_only_requests_over_the_rate_are_limited() {
        let rl = RateLimiter::new(1000);
        let s = spec(5, 10_000, 0);
        for i in 0..5 {
            assert_eq!(rl.hit(1, &s, i), RateOutcome::Allowed);
        }
        // 6 counted: in the next window the estimate is 6 × (1 − t/P) + 1 ≤ 5 from t = 3334.
        assert_eq!(rl.hit(1, &s, 5), LIMITED(10_000 - 5 + 3_334));
        // Same history on two keys; one retries 1 ms early, the other on time.
        for k in [2, 3] {
            for i in 0..6 {
                rl.hit(k, &s, i);
            }
        }
        assert!(matches!(rl.hit(2, &s, 13_333), RateOutcome::Limited { .. }));
        assert_eq!(rl.hit(3, &s, 13_334), RateOutcome::Allowed);
    }

    #[test]
    fn retry_within_the_same_window_when_the_previous_one_decays() {
        let rl = RateLimiter::new(1000);
        let s = spec(10, 1_000, 0);
        for i in 0..10 {
            assert_eq!(rl.hit(1, &s, 500 + i), RateOutcome::Allowed);
        }
        // Window [1000, 2000): prev = 10. At 1500 the estimate is 5 + cur.
        for i in 0..5 {
            assert_eq!(rl.hit(1, &s, 1_500), RateOutcome::Allowed, "request {i}");
        }
        // The 6th makes it 10 × 0.5 + 6 = 11; one more request fits when 10 × (500 − d)/1000 + 7 ≤ 10,
        // that is d ≥ 200.
        assert_eq!(rl.hit(1, &s, 1_500), LIMITED(200));
        assert_eq!(rl.hit(1, &s, 1_700), RateOutcome::Allowed);
    }

    #[test]
    fn sliding_window_carries_over_the_previous_window() {
        let rl = RateLimiter::new(1000);
        let s = spec(10, 10_000, 0);
        for i in 0..10 {
            assert_eq!(rl.hit(9, &s, 1_000 + i), RateOutcome::Allowed);
        }
        // Half-way through the next window, half of the previous count still weighs.
        for _ in 0..5 {
            assert_eq!(rl.hit(9, &s, 15_000), RateOutcome::Allowed);
        }
        assert!(matches!(rl.hit(9, &s, 15_000), RateOutcome::Limited { .. }));
        // At 28 000, prev = 6 weighs 6 × 0.2 = 1.2: 8 more requests fit, not 9.
        for _ in 0..8 {
            assert_eq!(rl.hit(9, &s, 28_000), RateOutcome::Allowed);
        }
        assert!(matches!(rl.hit(9, &s, 28_000), RateOutcome::Limited { .. }));
        // A window with no request in between: nothing carries over.
        for _ in 0..10 {
            assert_eq!(rl.hit(9, &s, 40_000), RateOutcome::Allowed);
        }
        // A `now` a little behind (another thread's clock) counts in the current window.
        assert!(matches!(rl.hit(9, &s, 39_999), RateOutcome::Limited { .. }));
    }

    #[test]
    fn zero_requests_and_zero_period_do_not_panic() {
        let rl = RateLimiter::new(100);
        assert_eq!(rl.hit(1, &spec(0, 1_000, 0), 5), LIMITED(1_000));
        assert_eq!(rl.hit(2, &spec(1, 0, 0), 5), RateOutcome::Allowed);
        // 2 counted at 5: at 6 the previous window still weighs 2.
        assert_eq!(rl.hit(2, &spec(1, 0, 0), 5), LIMITED(2));
        assert_eq!(rl.hit(2, &spec(1, 0, 0), 7), RateOutcome::Allowed);
        assert_eq!(
            rl.hit(3, &spec(1, u64::MAX, u64::MAX), u64::MAX - 1),
            RateOutcome::Allowed
        );
        assert_eq!(
            rl.hit(3, &spec(1, u64::MAX, u64::MAX), u64::MAX - 1),
            LIMITED(u64::MAX)
        );
        assert!(matches!(
            rl.hit(3, &spec(1, u64::MAX, u64::MAX), u64::MAX),
            RateOutcome::Limited { .. }
        ));
    }

    #[test]
    fn keys_are_independent() {
        let rl = RateLimiter::new(1000);
        let s = spec(2, 60_000, 30_000);
        assert_eq!(rl.hit(1, &s, 0), RateOutcome::Allowed);
        assert_eq!(rl.hit(1, &s, 1), RateOutcome::Allowed);
        assert!(matches!(rl.hit(1, &s, 2), RateOutcome::Limited { .. }));
        assert_eq!(rl.hit(2, &s, 3), RateOutcome::Allowed);
        assert_eq!(rl.hit(2, &s, 4), RateOutcome::Allowed);
        assert_eq!(rl.len(), 2);
        rl.clear();
        assert_eq!(rl.len(), 0);
        assert!(rl.is_empty());
        assert_eq!(rl.hit(1, &s, 5), RateOutcome::Allowed);
    }

    #[test]
    fn memory_is_bounded_and_evictions_counted() {
        let rl = RateLimiter::new(10_000);
        assert!(
            rl.capacity() <= 10_000 && rl.capacity() >= 9_000,
            "{}",
            rl.capacity()
        );
        let s = spec(100, 60_000, 0);
        let n = 1_000_000u64;
        for k in 0..n {
            rl.hit(k, &s, 1_000 + k / 1_000);
        }
        let len = rl.len();
        assert!(len <= 10_000, "{len}");
        assert!(len >= 9_000, "{len}");
        // Nothing was stale: every new key either took a free way or evicted one.
        assert_eq!(len as u64 + rl.evictions(), n);
    }

    #[test]
    fn stale_counters_are_reused_without_eviction() {
        // 8 keys: one shard of one 8-way set.
        let rl = RateLimiter::new(8);
        assert_eq!(rl.capacity(), 8);
        let s = spec(100, 1_000, 0);
        let strict = spec(1, 1_000, 10_000);
        rl.hit(0, &strict, 0);
        assert!(matches!(rl.hit(0, &strict, 0), RateOutcome::Limited { .. }));
        for k in 1..8u64 {
            rl.hit(k, &s, 0);
        }
        assert_eq!((rl.len(), rl.evictions()), (8, 0));
        // Two periods later the seven unblocked counters are stale and get reused.
        for k in 8..15u64 {
            rl.hit(k, &s, 2_000);
        }
        assert_eq!((rl.len(), rl.evictions()), (8, 0));
        assert!(rl.contains(0));
        // Now nothing is stale: a new key evicts the least recently used unblocked counter.
        assert!((1..8).all(|k| !rl.contains(k)));
        rl.hit(8, &s, 2_500);
        rl.hit(15, &s, 2_600);
        assert_eq!((rl.len(), rl.evictions()), (8, 1));
        assert!(rl.contains(0) && rl.contains(8) && rl.contains(15));
        assert_eq!((9..15).filter(|&k| rl.contains(k)).count(), 5);
        assert!(matches!(
            rl.hit(0, &strict, 2_700),
            RateOutcome::Limited { .. }
        ));
    }

    #[test]
    fn recently_used_and_blocked_counters_survive_a_flood() {
        let rl = RateLimiter::new(10_000);
        let strict = spec(1, 60_000, 600_000);
        let loose = spec(1_000, 60_000, 0);
        assert_eq!(rl.hit(u64::MAX, &strict, 0), RateOutcome::Allowed);
        assert!(matches!(
            rl.hit(u64::MAX, &strict, 0),
            RateOutcome::Limited { .. }
        ));
        for k in 0..200_000u64 {
            let now = 1 + k / 100;
            rl.hit(k, &loose, now);
            if k % 50 == 0 {
                rl.hit(u64::MAX - 1, &loose, now);
            }
        }
        assert!(rl.evictions() > 150_000);
        assert!(rl.contains(u64::MAX - 1));
        assert!(rl.contains(u64::MAX));
        assert!(matches!(
            rl.hit(u64::MAX, &strict, 5_000),
            RateOutcome::Limited { .. }
        ));
    }

    #[test]
    fn concurrent_hits_are_counted_exactly() {
        let rl = RateLimiter::new(1_000);
        let s = spec(2_500, 60_000, 0);
        let allowed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..1_000)
                            .filter(|_| rl.hit(42, &s, 1_000) == RateOutcome::Allowed)
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(allowed, 2_500);
    }

    #[test]
    fn parses_characteristics() {
        let p = Characteristic::parse;
        assert_eq!(p("ip.src"), Ok(Characteristic::IpSrc));
        assert_eq!(p(" ip "), Ok(Characteristic::IpSrc));
        assert_eq!(p("path"), Ok(Characteristic::Path));
        assert_eq!(p("http.request.uri.path"), Ok(Characteristic::Path));
        assert_eq!(
            p("http.request.headers[\"X-API-Key\"]"),
            Ok(Characteristic::Header("x-api-key".into()))
        );
        assert_eq!(
            p("header:X-Api-Key"),
            Ok(Characteristic::Header("x-api-key".into()))
        );
        assert_eq!(
            p("http.request.cookies[\"session\"]"),
            Ok(Characteristic::Cookie("session".into()))
        );
        assert_eq!(
            p("cookie:session"),
            Ok(Characteristic::Cookie("session".into()))
        );
        assert_eq!(
            p("http.request.uri.args[\"user\"]"),
            Ok(Characteristic::QueryArg("user".into()))
        );
        assert_eq!(p("query:user"), Ok(Characteristic::QueryArg("user".into())));
        for bad in [
            "",
            "ip.dst",
            "header:",
            "header:bad header",
            "cookie:a;b",
            "http.request.headers[x]",
            "http.request.headers[\"\"]",
            "http.request.headers[\"a\"b\"]",
            "foo:bar",
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains("http.request.headers[\"name\"]"), "{bad}: {e}");
        }
        for c in [
            Characteristic::IpSrc,
            Characteristic::Path,
            Characteristic::Header("x-a".into()),
            Characteristic::Cookie("s".into()),
            Characteristic::QueryArg("u".into()),
        ] {
            assert_eq!(p(&c.to_string()), Ok(c));
        }
    }

    #[test]
    fn rate_keys() {
        let chars = [
            Characteristic::IpSrc,
            Characteristic::Header("x-api-key".into()),
            Characteristic::Cookie("session".into()),
            Characteristic::QueryArg("user".into()),
            Characteristic::Path,
        ];
        let key = |ip: &str, uri: &str, headers: &[(&str, &str)], index: u32| {
            with_request(ip, "GET", uri, headers, |r| rate_key(index, &chars, r))
        };
        let h = [("x-api-key", "k1"), ("cookie", "session=s1")];
        let base = key("1.2.3.4", "/a?user=u1", &h, 0);
        assert_eq!(base, key("1.2.3.4", "/a?user=u1", &h, 0));
        assert_eq!(base, key("::ffff:1.2.3.4", "/a?x=1&user=u1", &h, 0));
        assert_ne!(base, key("1.2.3.4", "/a?user=u1", &h, 1));
        assert_ne!(base, key("1.2.3.5", "/a?user=u1", &h, 0));
        assert_ne!(base, key("1.2.3.4", "/b?user=u1", &h, 0));
        assert_ne!(base, key("1.2.3.4", "/a?user=u2", &h, 0));
        assert_ne!(
            base,
            key("1.2.3.4", "/a?user=u1", &[("x-api-key", "k2"), h[1]], 0)
        );
        assert_ne!(
            base,
            key(
                "1.2.3.4",
                "/a?user=u1",
                &[h[0], ("cookie", "session=s2")],
                0
            )
        );
        // Missing values hash as empty ones.
        assert_eq!(
            key("1.2.3.4", "/a", &[], 0),
            key(
                "1.2.3.4",
                "/a?user=",
                &[("x-api-key", ""), ("cookie", "session=")],
                0
            )
        );
        // Field boundaries matter.
        let two = [
            Characteristic::QueryArg("a".into()),
            Characteristic::QueryArg("b".into()),
        ];
        let k = |uri| with_request("::1", "GET", uri, &[], |r| rate_key(0, &two, r));
        assert_ne!(k("/?a=xy&b=z"), k("/?a=x&b=yz"));
        // Only the listed characteristics count.
        let ip_only = [Characteristic::IpSrc];
        let k = |uri| with_request("::1", "GET", uri, &[], |r| rate_key(3, &ip_only, r));
        assert_eq!(k("/a"), k("/b?c=d"));
    }

    #[test]
    fn rate_keys_cover_every_value_and_every_byte() {
        let chars = [
            Characteristic::Header("x-api-key".into()),
            Characteristic::Cookie("session".into()),
            Characteristic::QueryArg("user".into()),
        ];
        let key = |uri: &str, headers: &[(&str, &[u8])]| {
            with_raw_request("::1", "GET", uri.as_bytes(), headers, |r| {
                rate_key(0, &chars, r)
            })
        };
        let one: &[(&str, &[u8])] = &[("x-api-key", b"k1"), ("cookie", b"session=s1")];
        let base = key("/?user=u1", one);
        // A second value (same first value) is another client, for each kind.
        let more_keys: &[(&str, &[u8])] = &[
            ("x-api-key", b"k1"),
            ("x-api-key", b"k2"),
            ("cookie", b"session=s1"),
        ];
        assert_ne!(base, key("/?user=u1", more_keys));
        let more_cookies: &[(&str, &[u8])] = &[
            ("x-api-key", b"k1"),
            ("cookie", b"session=s1"),
            ("cookie", b"session=s2"),
        ];
        assert_ne!(base, key("/?user=u1", more_cookies));
        assert_ne!(base, key("/?user=u1&user=u2", one));
        // Split cookie fields are one cookie header.
        let joined: &[(&str, &[u8])] = &[("x-api-key", b"k1"), ("cookie", b"a=1; session=s1")];
        let split: &[(&str, &[u8])] = &[
            ("x-api-key", b"k1"),
            ("cookie", b"a=1"),
            ("cookie", b"session=s1"),
        ];
        assert_eq!(key("/?user=u1", joined), key("/?user=u1", split));
        assert_eq!(base, key("/?user=u1", split));
        // Value boundaries matter: ("ab", "c") is not ("a", "bc").
        let ab_c: &[(&str, &[u8])] = &[("x-api-key", b"ab"), ("x-api-key", b"c")];
        let a_bc: &[(&str, &[u8])] = &[("x-api-key", b"a"), ("x-api-key", b"bc")];
        assert_ne!(key("/", ab_c), key("/", a_bc));
        // Bytes that are not UTF-8 count, and differ from one another.
        let h80: &[(&str, &[u8])] = &[("x-api-key", b"k\x80"), ("cookie", b"session=\x80")];
        let h81: &[(&str, &[u8])] = &[("x-api-key", b"k\x81"), ("cookie", b"session=\x80")];
        let c81: &[(&str, &[u8])] = &[("x-api-key", b"k\x80"), ("cookie", b"session=\x81")];
        let empty: &[(&str, &[u8])] = &[("x-api-key", b""), ("cookie", b"session=")];
        assert_ne!(key("/", h80), key("/", h81));
        assert_ne!(key("/", h80), key("/", c81));
        assert_ne!(key("/", h80), key("/", empty));
        // The path characteristic is the normalized path.
        let path = [Characteristic::Path];
        let k = |uri: &str| with_request("::1", "GET", uri, &[], |r| rate_key(0, &path, r));
        for same in [
            "/%61dmin",
            "//admin",
            "/x/../admin",
            "/admin;p=1",
            "/admin?x=1",
        ] {
            assert_eq!(k("/admin"), k(same), "{same}");
        }
        assert_ne!(k("/admin"), k("/admin/"));
    }
}
