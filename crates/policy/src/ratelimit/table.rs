//! The bounded counter table shared by local ([`super::RateLimiter`]) and
//! global ([`super::global::GlobalLimiter`]) limits.
//!
//! Counters live in a fixed number of mutex-protected shards, each a
//! set-associative table (8 ways per set) that grows up to its share of
//! `max_keys`. When a new key's set is full, a stale counter (no block and no
//! requests in its last two windows) is reused; otherwise the least recently
//! used unblocked counter of the set is evicted and counted.
//!
//! What it must not do: read the clock or allocate per request (growth aside).

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::UnixMillis;

/// What the table needs to know of a counter to reuse or evict it.
pub(crate) trait Slot: Copy {
    /// A fresh counter.
    const ZERO: Self;
    /// Blocked until this time (0: never blocked).
    fn blocked_until(&self) -> UnixMillis;
    /// Not blocked and nothing counted in the current or previous window.
    fn is_stale(&self, now: UnixMillis) -> bool;
    /// Milliseconds since the last hit.
    fn age(&self, now: UnixMillis) -> u32;

    fn is_blocked(&self, now: UnixMillis) -> bool {
        self.blocked_until() > now
    }
}

pub(crate) const WAYS: usize = 8;

/// One set of the set-associative table; the tags fill the first cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Set<T> {
    /// `0` marks a free way; live tags have their low bit set.
    tags: [u64; WAYS],
    counters: [T; WAYS],
}

impl<T: Slot> Set<T> {
    fn empty() -> Self {
        Set {
            tags: [0; WAYS],
            counters: [T::ZERO; WAYS],
        }
    }

    /// The way to evict: the least recently used unblocked counter, or the
    /// blocked one whose block ends first when all are blocked.
    fn victim(&self, now: UnixMillis) -> usize {
        let mut best = 0;
        let mut best_rank = (true, 0u64);
        for (i, c) in self.counters.iter().enumerate() {
            let rank = if c.is_blocked(now) {
                (true, c.blocked_until())
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

/// The tag of a key: never 0 (the free mark).
#[inline]
fn tag_of(key: u64) -> u64 {
    mix(key) | 1
}

pub(crate) struct Shard<T> {
    sets: Vec<Set<T>>,
    max_sets: usize,
    len: usize,
    evictions: u64,
}

const INITIAL_SETS: usize = 4;

impl<T: Slot> Shard<T> {
    fn new(max_sets: usize) -> Self {
        Shard {
            sets: vec![Set::empty(); INITIAL_SETS.min(max_sets)],
            max_sets,
            len: 0,
            evictions: 0,
        }
    }

    /// The counter of `tag`, if kept.
    fn get(&mut self, tag: u64) -> Option<&mut T> {
        let si = set_index(tag, self.sets.len());
        let set = self.sets.get_mut(si)?;
        let w = set.tags.iter().position(|&t| t == tag)?;
        set.counters.get_mut(w)
    }

    /// The counter of `tag`, made (zeroed) when not kept.
    fn get_or_insert(&mut self, tag: u64, now: UnixMillis) -> Option<&mut T> {
        let si = set_index(tag, self.sets.len());
        let found = self
            .sets
            .get(si)
            .and_then(|set| set.tags.iter().position(|&t| t == tag));
        let (si, w) = match found {
            Some(w) => (si, w),
            None => {
                let (si, w) = self.place(tag, now);
                let set = self.sets.get_mut(si)?;
                set.tags[w] = tag;
                set.counters[w] = T::ZERO;
                (si, w)
            }
        };
        self.sets.get_mut(si)?.counters.get_mut(w)
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
        let mut sets = vec![Set::<T>::empty(); n];
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
        self.sets = vec![Set::empty(); INITIAL_SETS.min(self.max_sets)];
        self.len = 0;
    }
}

/// A shard on its own cache lines, so that two cores locking neighbours do not contend.
#[repr(align(128))]
struct PaddedShard<T>(Mutex<Shard<T>>);

const MAX_SHARDS: usize = 64;

/// Counters shared by all worker threads, at most about `max_keys` of them.
pub(crate) struct Table<T> {
    shards: Box<[PaddedShard<T>]>,
    shard_mask: usize,
    capacity: usize,
}

impl<T> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T: Slot> Table<T> {
    /// A table keeping at most about `max_keys` counters overall (never fewer than 8).
    pub(crate) fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(WAYS);
        // Each shard gets at least 8 sets when possible.
        let mut n = MAX_SHARDS;
        while n > 1 && max_keys / n < WAYS * 8 {
            n /= 2;
        }
        let max_sets = (max_keys / n / WAYS).max(1);
        let shards: Box<[PaddedShard<T>]> = (0..n)
            .map(|_| PaddedShard(Mutex::new(Shard::new(max_sets))))
            .collect();
        Table {
            shards,
            shard_mask: n - 1,
            capacity: n * max_sets * WAYS,
        }
    }

    /// Runs `f` on the counter of `key`, made when not kept.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        key: u64,
        now: UnixMillis,
        f: impl FnOnce(&mut T) -> R,
        fallback: R,
    ) -> R {
        let tag = tag_of(key);
        match self.shard(tag).get_or_insert(tag, now) {
            Some(c) => f(c),
            // Unreachable: `place` returns an index into `sets`.
            None => fallback,
        }
    }

    /// Runs `f` on the counter of `key` when it is kept.
    pub(crate) fn with_existing<R>(&self, key: u64, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let tag = tag_of(key);
        self.shard(tag).get(tag).map(f)
    }

    /// How many counters are kept (including stale ones not yet reused).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).len).sum()
    }

    /// The most counters this table keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters dropped because the table was full, since creation.
    pub(crate) fn evictions(&self) -> u64 {
        self.shards.iter().map(|s| lock(&s.0).evictions).sum()
    }

    /// Forgets every counter (the eviction count is kept).
    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            lock(&s.0).clear();
        }
    }

    #[inline]
    fn shard(&self, tag: u64) -> MutexGuard<'_, Shard<T>> {
        let i = (tag >> 1) as usize & self.shard_mask;
        // The mask keeps `i` in range; the fallback only satisfies the no-panic rule.
        match self.shards.get(i) {
            Some(s) => lock(&s.0),
            None => lock(&self.shards[0].0),
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, key: u64) -> bool {
        let tag = tag_of(key);
        self.shard(tag).get(tag).is_some()
    }
}

/// A poisoned lock only means another thread panicked mid-update; counters stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
