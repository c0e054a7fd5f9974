//! A K-minimum-values sketch: how many distinct things (client networks)
//! were seen, exact up to `K`, estimated beyond, in `8 × K` bytes.
//!
//! It keeps the `K` smallest hashes of what it saw. Two sketches merge by
//! keeping the `K` smallest of both (the sketch of the union), so nodes that
//! saw the same client count it once.

use super::Mergeable;
use serde::{Deserialize, Serialize};

/// Hashes kept: distinct counts are exact up to this many.
pub const K: usize = 16;

/// The sketch. Its hashes are sorted, distinct, at most [`K`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kmv(Vec<u64>);

impl Kmv {
    /// Records one thing, by its hash (`super::stable_hash`).
    pub fn insert(&mut self, hash: u64) {
        match self.0.binary_search(&hash) {
            Ok(_) => {}
            Err(i) if self.0.len() < K => self.0.insert(i, hash),
            Err(i) if i < K => {
                self.0.insert(i, hash);
                self.0.truncate(K);
            }
            Err(_) => {}
        }
    }

    /// How many distinct things were seen: exact up to [`K`], estimated
    /// (standard error about 1/√(K−2), 26 %) beyond.
    pub fn estimate(&self) -> u64 {
        if self.0.len() < K {
            return self.0.len() as u64;
        }
        let kth = self.0[K - 1].max(1) as f64;
        let est = (K as f64 - 1.0) * (u64::MAX as f64) / kth;
        (est as u64).max(K as u64)
    }

    /// Whether at least `n` distinct things were seen (estimated past [`K`]).
    pub fn at_least(&self, n: u64) -> bool {
        self.estimate() >= n
    }

    /// Drops hashes beyond `K` and out of order (a state from another node
    /// is checked before it is merged).
    pub fn sanitize(&mut self) {
        self.0.sort_unstable();
        self.0.dedup();
        self.0.truncate(K);
    }
}

impl Mergeable for Kmv {
    fn merge(&mut self, other: &Self) {
        self.0.extend_from_slice(&other.0);
        self.sanitize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::stable_hash;

    fn of(items: impl IntoIterator<Item = u32>) -> Kmv {
        let mut k = Kmv::default();
        for i in items {
            k.insert(stable_hash(&i.to_be_bytes()));
        }
        k
    }

    #[test]
    fn exact_up_to_k() {
        assert_eq!(of([]).estimate(), 0);
        assert_eq!(of([1, 2, 3, 2, 1]).estimate(), 3);
        assert_eq!(of(0..K as u32 - 1).estimate(), K as u64 - 1);
        assert!(of([1, 2]).at_least(2) && !of([1, 2]).at_least(3));
    }

    #[test]
    fn estimates_beyond_k_within_a_factor() {
        for n in [100u32, 1_000, 20_000] {
            let e = of(0..n).estimate() as f64;
            assert!(
                e > n as f64 * 0.4 && e < n as f64 * 2.5,
                "{n} distinct estimated as {e}"
            );
        }
    }

    #[test]
    fn merge_is_the_sketch_of_the_union() {
        let (a, b) = (of(0..500), of(250..900));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba, "commutative");
        assert_eq!(ab, of(0..900), "the union's sketch");
        let mut again = ab.clone();
        again.merge(&b);
        assert_eq!(again, ab, "idempotent");
        // Overlapping small sets count each thing once.
        let mut s = of([1, 2, 3]);
        s.merge(&of([2, 3, 4]));
        assert_eq!(s.estimate(), 4);
    }

    #[test]
    fn a_foreign_state_is_brought_within_bounds() {
        let mut k: Kmv = serde_json::from_str(&format!(
            "[{}]",
            (0..100)
                .rev()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap();
        k.sanitize();
        assert_eq!(k.0, (0..K as u64).collect::<Vec<_>>());
    }
}
