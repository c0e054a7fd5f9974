//! The value memo: what pure checks found **nothing** in a value, kept
//! across requests.
//!
//! Real traffic repeats its values (the same `User-Agent`, `Accept`,
//! cookie values, common query values). For a check whose answer depends
//! only on the value's bytes — a rule link whose operator reads no
//! transaction state and has no side effect, after its transformations, or
//! a rule group's "may any of its patterns match?" — the answer on a value
//! is the same in every request. The memo records the checks that did
//! **not** match a value (a match runs the full path anyway, with its
//! captures and actions), so the next request carrying that value skips
//! them: no transformation, no regex, no phrase search.
//!
//! - Keys are a keyed 128-bit hash of the value (SipHash-1-3, 128-bit
//!   output, a random key per memo): nobody outside the process can craft
//!   an attack value whose key collides with a memoised clean value, nor
//!   aim values at one shard. Only the key is stored, never the value.
//! - One entry per value holds a bitset with one bit per memoisable check
//!   ([`crate::rules::Rule::memo_slot`], two per rule group): a transaction
//!   reads an entry once per distinct value ([`LocalMemo`]) and writes back
//!   what it learned when a phase ends.
//! - Bounded: a count cap split over shards (each a mutex held only for a
//!   lookup or a merge), first-in first-out eviction. Values longer than
//!   [`MAX_VALUE_LEN`] are not memoised.
//! - The memo belongs to one compiled rule set: a new rule set starts with
//!   an empty one, so answers never outlive the rules they came from.
//! - Counted: [`stats`] (hits, misses, evictions), exported by the edge.
//!
//! It never changes a verdict: a bit is only set after the full check ran
//! on that value's bytes and found nothing (`tests/memo.rs` runs the CRS
//! conformance cases twice through one engine and compares).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::operators::Operator;
use crate::prefilter::FxBuild;

/// Values longer than this are checked every time.
pub const MAX_VALUE_LEN: usize = 4096;

/// Default number of values remembered (per rule set).
pub const DEFAULT_ENTRIES: usize = 16 * 1024;

const SHARDS: usize = 16;

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static EVICTIONS: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters of the value memos.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoStats {
    /// A transaction's value was found in the memo.
    pub hits: u64,
    /// A transaction's value was not in the memo.
    pub misses: u64,
    /// Entries dropped to stay under the cap.
    pub evictions: u64,
}

/// The counters of every memo in the process.
pub fn stats() -> MemoStats {
    MemoStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        evictions: EVICTIONS.load(Ordering::Relaxed),
    }
}

/// Whether an operator's answer depends on the value alone: no macro to
/// expand from the transaction, no side effect, no counter of its own
/// (the backtracking engine counts the searches that hit its limit, so it
/// runs every time). Captures do not matter: they are only taken on a match.
pub fn value_only(op: &Operator) -> bool {
    match op {
        Operator::Rx(_)
        | Operator::Pm(_)
        | Operator::DetectSqli
        | Operator::DetectXss
        | Operator::Detect(_)
        | Operator::ValidateByteRange(_)
        | Operator::ValidateUrlEncoding
        | Operator::ValidateUtf8Encoding => true,
        Operator::Within(t)
        | Operator::Streq(t)
        | Operator::Contains(t)
        | Operator::ContainsWord(t)
        | Operator::BeginsWith(t)
        | Operator::EndsWith(t)
        | Operator::StrMatch(t) => t.as_literal().is_some(),
        // Cheap enough to run (numbers, addresses), or not pure.
        _ => false,
    }
}

/// SipHash with `C` compression and `D` finalisation rounds, 128-bit output.
fn siphash128<const C: usize, const D: usize>(k0: u64, k1: u64, msg: &[u8]) -> u128 {
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13);
        v[1] ^= v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16);
        v[3] ^= v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21);
        v[3] ^= v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17);
        v[1] ^= v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    let m = u64::from_le_bytes(w) | ((msg.len() as u64 & 0xff) << 56);
    v[3] ^= m;
    for _ in 0..C {
        round(&mut v);
    }
    v[0] ^= m;
    v[2] ^= 0xee;
    for _ in 0..D {
        round(&mut v);
    }
    let lo = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    for _ in 0..D {
        round(&mut v);
    }
    let hi = v[0] ^ v[1] ^ v[2] ^ v[3];
    (hi as u128) << 64 | lo as u128
}

/// One shard: entries and their insertion order (for eviction).
#[derive(Default)]
struct Shard {
    map: HashMap<u128, Box<[u64]>, FxBuild>,
    order: VecDeque<u128>,
}

/// A rule set's memo (see the module documentation).
pub struct ValueMemo {
    k0: u64,
    k1: u64,
    /// `u64` words per entry.
    words: usize,
    per_shard: usize,
    shards: Box<[Mutex<Shard>]>,
}

impl std::fmt::Debug for ValueMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueMemo")
            .field("words", &self.words)
            .field("entries", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl ValueMemo {
    /// A memo of about `entries` values for `slots` checks; `None` when
    /// either is 0 (memo off).
    pub fn new(entries: usize, slots: usize) -> Option<ValueMemo> {
        if entries == 0 || slots == 0 {
            return None;
        }
        let r = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        Some(ValueMemo {
            k0: r.hash_one(0x0123_4567_89ab_cdefu64),
            k1: r.hash_one(0xfedc_ba98_7654_3210u64),
            words: slots.div_ceil(64),
            per_shard: entries.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        })
    }

    /// `u64` words of an entry's bitset.
    pub fn words(&self) -> usize {
        self.words
    }

    /// The memo key of a value.
    pub fn key(&self, value: &[u8]) -> u128 {
        siphash128::<1, 3>(self.k0, self.k1, value)
    }

    fn shard(&self, key: u128) -> &Mutex<Shard> {
        // The key is a keyed hash: its top bits are as good as any.
        &self.shards[(key >> 124) as usize % self.shards.len()]
    }

    /// Copies the entry of `key` into `out` (whose length is
    /// [`ValueMemo::words`]); whether there was one.
    pub fn lookup(&self, key: u128, out: &mut [u64]) -> bool {
        let found = match self.shard(key).lock() {
            Ok(s) => match s.map.get(&key) {
                Some(bits) => {
                    for (o, b) in out.iter_mut().zip(bits.iter()) {
                        *o = *b;
                    }
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        if found {
            HITS.fetch_add(1, Ordering::Relaxed);
        } else {
            MISSES.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Adds the bits of `bits` to the entry of `key`, creating it (and
    /// evicting the oldest entry of its shard when full).
    pub fn merge(&self, key: u128, bits: &[u64]) {
        let Ok(mut s) = self.shard(key).lock() else {
            return;
        };
        if let Some(e) = s.map.get_mut(&key) {
            for (e, b) in e.iter_mut().zip(bits) {
                *e |= *b;
            }
            return;
        }
        while s.map.len() >= self.per_shard {
            let Some(old) = s.order.pop_front() else {
                break;
            };
            s.map.remove(&old);
            EVICTIONS.fetch_add(1, Ordering::Relaxed);
        }
        let mut entry = vec![0u64; self.words].into_boxed_slice();
        for (e, b) in entry.iter_mut().zip(bits) {
            *e = *b;
        }
        s.map.insert(key, entry);
        s.order.push_back(key);
    }

    /// Values remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.map.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A transaction's view of the memo: the entry of each distinct value it
/// inspects, found by the value's address (valid while the values live:
/// [`LocalMemo::flush_and_clear`] whenever they are freed or replaced).
#[derive(Default)]
pub struct LocalMemo {
    index: HashMap<(usize, usize), u32, FxBuild>,
    keys: Vec<u128>,
    /// What the entry held when read, and what was learned since.
    known: Vec<u64>,
    /// What this transaction learned (not yet written back).
    learned: Vec<u64>,
    dirty: Vec<bool>,
}

/// A value's entry in a [`LocalMemo`].
#[derive(Clone, Copy)]
pub struct Rec(u32);

impl LocalMemo {
    /// The entry of `value` (borrowed from the transaction's data), read
    /// from `memo` the first time; `None` for a value too long to memoise.
    #[inline]
    pub fn rec(&mut self, memo: &ValueMemo, value: &[u8]) -> Option<Rec> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let addr = (value.as_ptr() as usize, value.len());
        if let Some(&i) = self.index.get(&addr) {
            return Some(Rec(i));
        }
        let i = self.keys.len();
        let w = memo.words();
        let key = memo.key(value);
        self.keys.push(key);
        self.known.resize((i + 1) * w, 0);
        self.learned.resize((i + 1) * w, 0);
        self.dirty.push(false);
        memo.lookup(key, &mut self.known[i * w..(i + 1) * w]);
        self.index.insert(addr, i as u32);
        Some(Rec(i as u32))
    }

    /// Whether check `slot` is known to find nothing in the value.
    #[inline]
    pub fn negative(&self, memo: &ValueMemo, rec: Rec, slot: u32) -> bool {
        let at = rec.0 as usize * memo.words() + slot as usize / 64;
        self.known
            .get(at)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Check `slot` ran on the value and found nothing.
    #[inline]
    pub fn set_negative(&mut self, memo: &ValueMemo, rec: Rec, slot: u32) {
        let at = rec.0 as usize * memo.words() + slot as usize / 64;
        if let (Some(k), Some(l)) = (self.known.get_mut(at), self.learned.get_mut(at)) {
            *k |= 1 << (slot % 64);
            *l |= 1 << (slot % 64);
            self.dirty[rec.0 as usize] = true;
        }
    }

    /// Writes what was learned back to `memo`.
    pub fn flush(&mut self, memo: &ValueMemo) {
        let w = memo.words();
        for (i, dirty) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(dirty) {
                let learned = &mut self.learned[i * w..(i + 1) * w];
                memo.merge(self.keys[i], learned);
                learned.fill(0);
            }
        }
    }

    /// [`LocalMemo::flush`], then forgets the values (they are about to be
    /// freed or replaced).
    pub fn flush_and_clear(&mut self, memo: &ValueMemo) {
        self.flush(memo);
        self.index.clear();
        self.keys.clear();
        self.known.clear();
        self.learned.clear();
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SipHash-2-4 with 128-bit output, the reference implementation's
    /// first vectors (key 00..0f, messages 00, 00 01, ...): the rounds and
    /// the 128-bit finalisation are the ones SipHash-1-3 uses.
    #[test]
    fn siphash_128_matches_the_reference_vectors() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let expected: [[u8; 16]; 2] = [
            [
                0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55,
                0x02, 0x93,
            ],
            [
                0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22,
                0xfc, 0x45,
            ],
        ];
        for (len, want) in expected.iter().enumerate() {
            let msg: Vec<u8> = (0..len as u8).collect();
            let got = siphash128::<2, 4>(k0, k1, &msg).to_le_bytes();
            assert_eq!(&got, want, "message of {len} bytes");
        }
    }

    #[test]
    fn keys_differ_between_memos_and_values() {
        let (a, b) = (ValueMemo::new(8, 8).unwrap(), ValueMemo::new(8, 8).unwrap());
        assert_ne!(a.key(b"curl/8.0"), b.key(b"curl/8.0"));
        assert_ne!(a.key(b"curl/8.0"), a.key(b"curl/8.1"));
        assert_eq!(a.key(b"curl/8.0"), a.key(b"curl/8.0"));
    }

    #[test]
    fn remembers_negatives_and_stays_under_its_cap() {
        let memo = ValueMemo::new(SHARDS * 2, 70).unwrap();
        assert_eq!(memo.words(), 2);
        let mut local = LocalMemo::default();
        let value = b"text/html".to_vec();
        let r = local.rec(&memo, &value).unwrap();
        assert!(!local.negative(&memo, r, 65));
        local.set_negative(&memo, r, 65);
        assert!(local.negative(&memo, r, 65));
        local.flush_and_clear(&memo);
        let mut next = LocalMemo::default();
        let copy = value.clone();
        let r = next.rec(&memo, &copy).unwrap();
        assert!(next.negative(&memo, r, 65));
        assert!(!next.negative(&memo, r, 64));
        for i in 0..10_000u32 {
            memo.merge(memo.key(&i.to_le_bytes()), &[1, 0]);
        }
        assert!(memo.len() <= SHARDS * 2, "{} entries", memo.len());
        assert!(next.rec(&memo, &vec![b'a'; MAX_VALUE_LEN + 1]).is_none());
    }

    #[test]
    fn off_when_empty() {
        assert!(ValueMemo::new(0, 10).is_none());
        assert!(ValueMemo::new(10, 0).is_none());
    }
}
