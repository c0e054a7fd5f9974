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

use ahash::RandomState;

use crate::request::Request;
use crate::UnixMillis;
use table::{Slot, Table};

pub mod global;
mod table;

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

    fn hit(&mut self, spec: &LimitSpec, now: UnixMillis) -> RateOutcome {
        self.touched = now as u32;
        if self.is_blocked(now) {
            return RateOutcome::Limited {
                retry_after_ms: self.blocked_until - now,
            };
        }
        let period = spec.period_ms.max(1);
        self.advance(period, now);
        self.cur = self.cur.saturating_add(1);
        self.judge(spec, period, now, 0, 0)
    }

    /// Moves to the window of `now` (period `period`, at least 1); returns
    /// `Some(adjacent)` when the window changed, `adjacent` telling whether the
    /// old current window became the previous one.
    fn advance(&mut self, period: u64, now: UnixMillis) -> Option<bool> {
        self.period = u32::try_from(period).unwrap_or(u32::MAX);
        let win = now - now % period;
        // A `now` slightly behind another thread's (win < window_start) counts in the current window.
        if win > self.window_start {
            let adjacent = self.window_start >= win - period;
            self.prev = if adjacent { self.cur } else { 0 };
            self.cur = 0;
            self.window_start = win;
            return Some(adjacent);
        }
        None
    }

    /// Whether the counted requests, plus `extra_prev` and `extra_cur` counted
    /// elsewhere, are over `spec`; when they are, blocks (with a mitigation
    /// timeout) and says when to retry.
    fn judge(
        &mut self,
        spec: &LimitSpec,
        period: u64,
        now: UnixMillis,
        extra_prev: u32,
        extra_cur: u32,
    ) -> RateOutcome {
        let elapsed = now.saturating_sub(self.window_start).min(period);
        let p = u128::from(self.prev) + u128::from(extra_prev);
        let c = u128::from(self.cur) + u128::from(extra_cur);
        let big_p = u128::from(period);
        // estimate > requests  ⟺  prev × (period − elapsed) + cur × period > requests × period
        let weighted = p * u128::from(period - elapsed) + c * big_p;
        if weighted <= u128::from(spec.requests) * big_p {
            return RateOutcome::Allowed;
        }
        let retry_after_ms = if spec.mitigation_timeout_ms > 0 {
            self.blocked_until = now.saturating_add(spec.mitigation_timeout_ms);
            spec.mitigation_timeout_ms
        } else {
            self.time_until_allowed(spec.requests, (p, c), period, elapsed, now)
        };
        RateOutcome::Limited {
            retry_after_ms: retry_after_ms.max(1),
        }
    }

    /// Without a block: the delay after which one more request would be allowed,
    /// assuming no other request comes meanwhile; `(p, c)` are the previous and
    /// current window's counts.
    fn time_until_allowed(
        &self,
        requests: u64,
        (p, c): (u128, u128),
        period: u64,
        elapsed: u64,
        now: UnixMillis,
    ) -> u64 {
        if requests == 0 {
            return period;
        }
        let (r, big_p) = (u128::from(requests), u128::from(period));
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

impl Slot for Counter {
    const ZERO: Counter = Counter::ZERO;

    fn blocked_until(&self) -> UnixMillis {
        self.blocked_until
    }

    /// Not blocked and nothing counted in the current or previous window.
    fn is_stale(&self, now: UnixMillis) -> bool {
        !self.is_blocked(now) && now >= self.window_start.saturating_add(2 * u64::from(self.period))
    }

    /// Milliseconds since the last hit (wrapping arithmetic: right for ages under 49 days).
    fn age(&self, now: UnixMillis) -> u32 {
        (now as u32).wrapping_sub(self.touched)
    }
}

/// Rate-limit counters shared by all worker threads.
pub struct RateLimiter {
    table: Table<Counter>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("capacity", &self.table.capacity())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter keeping at most about `max_keys` counters overall (never
    /// fewer than 8). Memory grows with use, up to about 40 bytes per counter.
    pub fn new(max_keys: usize) -> Self {
        RateLimiter {
            table: Table::new(max_keys),
        }
    }

    /// Counts one request of `key` against `spec` at `now`.
    #[inline]
    pub fn hit(&self, key: u64, spec: &LimitSpec, now: UnixMillis) -> RateOutcome {
        self.table
            .with(key, now, |c| c.hit(spec, now), RateOutcome::Allowed)
    }

    /// How many counters are kept (including stale ones not yet reused).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most counters this limiter keeps.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Counters dropped because the table was full, since creation.
    pub fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    /// Forgets every counter and block (the eviction count is kept).
    pub fn clear(&self) {
        self.table.clear()
    }

    #[cfg(test)]
    fn contains(&self, key: u64) -> bool {
        self.table.contains(key)
    }
}

#[cfg(test)]
mod tests;
