//! Helpers for the evaluation fast path: fast hashers for the per-request
//! caches and collections, the "not computed" marker of per-request group
//! results, and a prefilter for `@contains` after whitespace removal and
//! lower-casing.
//!
//! How rules are skipped is described in `docs/waf.md` ("Speed"): rule
//! groups checked once per request on a lazy DFA ([`crate::lazydfa`]), and
//! transformation chains skipped by byte classes ([`crate::transform::flags`]).

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::transform::{ws_class, Transform};

/// Marker: no bitset computed (or none available).
pub const RX_NONE: u32 = u32::MAX;

/// FxHash (as used by rustc): fast for short keys; the caches it serves
/// are per request and keyed by addresses or request bytes.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

/// Hashes for maps whose keys a client can choose (TX variables named
/// after request data, like `tx.paramcounter_<arg name>`): about as fast
/// as FxHash on short keys, but keyed with per-process random values and
/// mixed by a folded 128-bit multiply per word (the construction of
/// foldhash and aHash's fallback), so colliding keys cannot be computed
/// in advance to slow a map down.
#[derive(Clone, Copy, Debug)]
pub struct SeededBuild {
    k0: u64,
    k1: u64,
}

impl Default for SeededBuild {
    fn default() -> Self {
        static KEYS: OnceLock<SeededBuild> = OnceLock::new();
        *KEYS.get_or_init(|| {
            let r = std::collections::hash_map::RandomState::new();
            SeededBuild {
                k0: r.hash_one(0x243f_6a88_85a3_08d3u64),
                k1: r.hash_one(0x1319_8a2e_0370_7344u64) | 1,
            }
        })
    }
}

impl BuildHasher for SeededBuild {
    type Hasher = SeededHasher;
    #[inline]
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            hash: self.k0,
            key: self.k1,
        }
    }
}

/// The hasher of [`SeededBuild`].
#[derive(Clone, Copy)]
pub struct SeededHasher {
    hash: u64,
    key: u64,
}

#[inline(always)]
fn word8(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl SeededHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = folded_multiply(self.hash ^ word, self.key);
    }
}

impl Hasher for SeededHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        // The length goes in with the last word: "ab" and "ab\0" differ.
        let len = (n as u64) << 56;
        if n >= 8 {
            let mut at = 0;
            while at + 8 < n {
                self.add(word8(&bytes[at..]));
                at += 8;
            }
            // The last 8 bytes (overlapping the previous word if need be).
            self.add(word8(&bytes[n - 8..]) ^ len);
        } else if n >= 4 {
            let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as u64;
            let hi = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
            self.add((lo | (hi as u64) << 32) ^ len);
        } else {
            let w = bytes
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &b)| w | (b as u64) << (8 * i));
            self.add(w ^ len);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.hash, self.key.rotate_left(23) ^ 0x9e37_79b9_7f4a_7c15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_filter_agrees_with_the_transformations() {
        let chains: [&[Transform]; 3] = [
            &[Transform::RemoveWhitespace, Transform::Lowercase],
            &[Transform::Lowercase],
            &[Transform::RemoveWhitespace],
        ];
        let needles = ["<title>punkholicshell</title>", "a<b", "<T>"];
        let pieces: [&[u8]; 11] = [
            b"<title>",
            b"PUNK",
            b"holic",
            b"shell",
            b"</title>",
            b" ",
            b"\t\r\n",
            b"\xc2\xa0",
            b"\xe0\xa0\x80",
            b"a<B",
            b"<Title>punk hol\xc2\xa0ic\tSHELL</ti\ntle>",
        ];
        let mut seed = 3u64;
        let mut found = 0;
        for _ in 0..20_000 {
            let mut v = Vec::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for k in 0..(seed >> 59) {
                v.extend_from_slice(pieces[(seed.rotate_right(3 * k as u32) % 11) as usize]);
            }
            for chain in chains {
                let mut t = v.clone();
                for tr in chain {
                    if let Some(out) = tr.apply(&t) {
                        t = out;
                    }
                }
                for needle in needles {
                    let Some(f) = ContainsFilter::new(needle, chain) else {
                        assert!(needle.bytes().any(|b| b.is_ascii_uppercase()));
                        continue;
                    };
                    let exact = memchr::memmem::find(&t, needle.as_bytes()).is_some();
                    found += exact as usize;
                    assert_eq!(
                        f.may_match(&v),
                        exact,
                        "{:?} {chain:?} {needle:?}",
                        String::from_utf8_lossy(&v)
                    );
                }
            }
        }
        assert!(found > 1000, "{found}");
        assert!(ContainsFilter::new("a b", chains[0]).is_none());
        assert!(ContainsFilter::new("x", &[Transform::UrlDecode]).is_none());
        assert!(ContainsFilter::new("x", &[]).is_none());
    }

    #[test]
    fn seeded_hashes_tell_keys_apart() {
        let b = SeededBuild::default();
        let h = |s: &str| b.hash_one(s);
        assert_eq!(h("anomaly_score"), h("anomaly_score"));
        assert_ne!(h("anomaly_score"), h("anomaly_scorf"));
        assert_ne!(h(""), h("\0"));
        assert_ne!(h("ab"), h("ab\0"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            seen.insert(h(&format!("paramcounter_{i}")) >> 50);
        }
        // The top 14 bits of 10,000 keys: uniform hashes give about 7,500
        // distinct values of 16,384.
        assert!(seen.len() > 7_000, "{}", seen.len());
    }
}

/// `@contains` with a literal after `t:removeWhitespace` and/or
/// `t:lowercase` (CRS 955300 on every response body): whether the
/// transformed value can contain the text, decided on the value as it is,
/// without transforming it (a `memchr` for the first byte and a short walk
/// at each hit, instead of two copies of the body).
#[derive(Debug, Clone)]
pub struct ContainsFilter {
    needle: Box<[u8]>,
    lowercase: bool,
    remove_ws: bool,
}

impl ContainsFilter {
    /// For `needle` after `chain`; `None` unless the chain only removes
    /// whitespace and lower-cases, and the needle is printable ASCII
    /// without whitespace (nor upper case, when lower-cased).
    pub fn new(needle: &str, chain: &[Transform]) -> Option<ContainsFilter> {
        if chain.is_empty()
            || !chain
                .iter()
                .all(|t| matches!(t, Transform::RemoveWhitespace | Transform::Lowercase))
        {
            return None;
        }
        let lowercase = chain.contains(&Transform::Lowercase);
        let ok = !needle.is_empty()
            && needle
                .bytes()
                .all(|b| b.is_ascii_graphic() && !(lowercase && b.is_ascii_uppercase()));
        ok.then(|| ContainsFilter {
            needle: needle.as_bytes().into(),
            lowercase,
            remove_ws: chain.contains(&Transform::RemoveWhitespace),
        })
    }

    /// False only when the transformed `value` cannot contain the needle.
    pub fn may_match(&self, value: &[u8]) -> bool {
        let first = self.needle[0];
        let other = if self.lowercase && first.is_ascii_lowercase() {
            first.to_ascii_uppercase()
        } else {
            first
        };
        memchr::memchr2_iter(first, other, value).any(|at| self.matches_at(value, at + 1))
    }

    /// Whether the needle's bytes after the first follow from `at` on.
    fn matches_at(&self, value: &[u8], mut at: usize) -> bool {
        // `at` follows an ASCII byte: it is where a character starts, as
        // when the transformation reads the value from its start.
        for &want in &self.needle[1..] {
            loop {
                let Some(&b) = value.get(at) else {
                    return false;
                };
                if self.remove_ws {
                    let (len, ws) = ws_class(value, at);
                    if ws {
                        at += len;
                        continue;
                    }
                }
                let b = if self.lowercase {
                    b.to_ascii_lowercase()
                } else {
                    b
                };
                if b != want {
                    return false;
                }
                at += 1;
                break;
            }
        }
        true
    }
}
