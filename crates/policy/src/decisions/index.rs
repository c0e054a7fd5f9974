//! Indexes over networks: which prefix lengths are in use, and a bucket filter
//! that lets most addresses skip the per-length probes.

/// How many networks of each prefix length are indexed, and a bitmask of the
/// lengths present so that lookups probe only those.
#[derive(Clone)]
pub(super) struct PrefixLens {
    pub(super) counts: [u32; 129],
    pub(super) present: [u64; 3],
}

impl Default for PrefixLens {
    fn default() -> Self {
        PrefixLens {
            counts: [0; 129],
            present: [0; 3],
        }
    }
}

impl PrefixLens {
    pub(super) fn add(&mut self, len: u8) {
        let l = usize::from(len.min(128));
        self.counts[l] += 1;
        self.present[l / 64] |= 1 << (l % 64);
    }

    pub(super) fn remove(&mut self, len: u8) {
        let l = usize::from(len.min(128));
        self.counts[l] = self.counts[l].saturating_sub(1);
        if self.counts[l] == 0 {
            self.present[l / 64] &= !(1 << (l % 64));
        }
    }

    /// The lengths present, longest first.
    pub(super) fn longest_first(&self) -> LensDesc {
        LensDesc {
            words: self.present,
            word: 3,
            bits: 0,
        }
    }

    /// The lengths present that are shorter than `limit` (at most 64), longest first.
    pub(super) fn longest_first_below(&self, limit: u8) -> LensDesc {
        let keep = 1u64
            .checked_shl(u32::from(limit))
            .map_or(u64::MAX, |b| b - 1);
        LensDesc {
            words: [self.present[0] & keep, 0, 0],
            word: 3,
            bits: 0,
        }
    }
}

pub(super) struct LensDesc {
    words: [u64; 3],
    /// Index of the word `bits` came from (3 before the first).
    word: usize,
    bits: u64,
}

impl Iterator for LensDesc {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        while self.bits == 0 {
            if self.word == 0 {
                return None;
            }
            self.word -= 1;
            self.bits = self.words[self.word];
        }
        let b = 63 - self.bits.leading_zeros();
        self.bits &= !(1u64 << b);
        // At most 2 * 64 + 63 = 191, and only bits up to 128 are ever set.
        Some((self.word * 64 + b as usize) as u8)
    }
}

/// A counting filter over 2^16 buckets of the address space: a lookup reads
/// one bit to learn whether any network may contain the address, so that
/// clients outside every network (the common case) skip the per-length probes.
#[derive(Clone, Default)]
pub(super) struct BucketFilter {
    /// Networks touching each bucket (allocated with the first network).
    pub(super) counts: Vec<u32>,
    /// Bit `b` is set when `counts[b] > 0`.
    pub(super) bits: Vec<u64>,
}

pub(super) const BUCKETS: usize = 1 << 16;

impl BucketFilter {
    pub(super) fn add(&mut self, b: usize) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
            self.bits = vec![0; BUCKETS / 64];
        }
        if let (Some(c), Some(w)) = (self.counts.get_mut(b), self.bits.get_mut(b / 64)) {
            *c = c.saturating_add(1);
            *w |= 1 << (b % 64);
        }
    }

    pub(super) fn remove(&mut self, b: usize) {
        if let (Some(c), Some(w)) = (self.counts.get_mut(b), self.bits.get_mut(b / 64)) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                *w &= !(1 << (b % 64));
            }
        }
    }

    #[inline]
    pub(super) fn may_contain(&self, b: usize) -> bool {
        self.bits
            .get(b / 64)
            .is_some_and(|w| (w >> (b % 64)) & 1 != 0)
    }
}

/// IPv4 buckets are /16s: a network of length ≥ 16 touches one, a shorter one
/// touches every /16 it covers.
pub(super) fn buckets4(net: u32, len: u8) -> std::ops::Range<usize> {
    let first = (net >> 16) as usize;
    let n = if len >= 16 { 1 } else { 1usize << (16 - len) };
    first..first + n
}

#[inline]
pub(super) fn bucket4(a: u32) -> usize {
    (a >> 16) as usize
}

/// IPv6 networks of length ≥ 32 are filtered by a hash of their first 32
/// bits; shorter ones (rare) are always probed.
pub(super) const GATE6: u8 = 32;

#[inline]
pub(super) fn bucket6(a: u128) -> usize {
    let top = (a >> 96) as u32;
    (top.wrapping_mul(0x9e37_79b1) >> 16) as usize
}
