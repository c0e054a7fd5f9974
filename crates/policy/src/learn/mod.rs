//! Fleet-merged learned statistics: what the edges learn from traffic, kept
//! as **mergeable sketches** so that every node can combine what every other
//! node learned without a coordinator.
//!
//! The component is generic ([`Mergeable`], [`FleetView`]); its first user is
//! the WAF's positive model ([`model`]), and the flood and bot work reuses it
//! with other statistics. The rules every statistic follows:
//!
//! - **Bounded**: every sketch has a fixed cap on its size, whatever the
//!   traffic (keys come from clients).
//! - **State-based merge**: a node shares its whole local state (not deltas);
//!   the fleet view is the merge of the latest state of every node. Merging
//!   is commutative and associative, so the order in which states arrive does
//!   not matter, and a state delivered twice replaces itself (nothing is
//!   counted twice: the view is rebuilt from the latest state per node).
//! - **Pure**: no clock, no I/O. The edge publishes and fetches states
//!   through the mesh (`palisade_mesh::Mesh::publish_stats`).

pub mod kmv;
pub mod model;
pub mod top;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// A statistic that can be combined with the same statistic learned elsewhere.
pub trait Mergeable: Clone + Default + Serialize + DeserializeOwned {
    /// Folds `other` into `self`. Must be commutative and associative
    /// (`a.merge(b)` equals `b.merge(a)` as a value), and keep `self` within
    /// its caps.
    fn merge(&mut self, other: &Self);
}

/// The fleet's view of one statistic: this node's local state plus the latest
/// state of each other node, and their merge.
#[derive(Debug, Clone, Default)]
pub struct FleetView<T: Mergeable> {
    peers: BTreeMap<String, T>,
    merged: T,
}

impl<T: Mergeable> FleetView<T> {
    /// Records the latest state of `node` (replacing the one it had).
    /// Returns false, keeping the previous state, when there are already
    /// `max_peers` other nodes.
    pub fn set_peer(&mut self, node: &str, state: T, max_peers: usize) -> bool {
        if !self.peers.contains_key(node) && self.peers.len() >= max_peers {
            return false;
        }
        self.peers.insert(node.to_string(), state);
        true
    }

    /// Forgets nodes not in `alive` (gone from the mesh).
    pub fn retain_peers(&mut self, alive: impl Fn(&str) -> bool) {
        self.peers.retain(|k, _| alive(k));
    }

    /// How many other nodes contribute.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// Rebuilds the merge from `local` and every peer's latest state.
    pub fn rebuild(&mut self, local: &T) -> &T {
        let mut merged = local.clone();
        for s in self.peers.values() {
            merged.merge(s);
        }
        self.merged = merged;
        &self.merged
    }

    /// The last merge [`FleetView::rebuild`] made.
    pub fn merged(&self) -> &T {
        &self.merged
    }
}

/// A stable 64-bit hash of `bytes`, the same on every node and every build
/// (sketches of different nodes are merged: they must hash alike). FNV-1a
/// followed by a 64-bit finalizer (MurmurHash3's `fmix64`) for good low bits.
/// Not collision resistant against a chosen input: use it only where a
/// collision can make a statistic lower, never grant anything.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Sum(u64);
    impl Mergeable for Sum {
        fn merge(&mut self, other: &Self) {
            self.0 += other.0;
        }
    }

    #[test]
    fn a_state_delivered_twice_is_not_counted_twice() {
        let mut v = FleetView::<Sum>::default();
        assert!(v.set_peer("b", Sum(5), 8));
        assert!(v.set_peer("b", Sum(7), 8));
        assert!(v.set_peer("c", Sum(1), 8));
        assert_eq!(v.rebuild(&Sum(2)), &Sum(10));
        assert!(!v.set_peer("d", Sum(100), 2), "peer cap");
        assert_eq!(v.rebuild(&Sum(2)), &Sum(10));
        v.retain_peers(|n| n == "c");
        assert_eq!((v.peers(), v.rebuild(&Sum(2)).0), (1, 3));
        assert_eq!(v.merged(), &Sum(3));
    }

    #[test]
    fn the_hash_is_stable() {
        // The same on every node and build: sketches of different nodes merge.
        assert_eq!(stable_hash(b""), stable_hash(b""));
        assert_ne!(stable_hash(b"a"), stable_hash(b"b"));
        // Pinned: a change of the function would split a fleet of mixed versions.
        assert_eq!(stable_hash(b"198.51.100.0/24"), 7_577_674_462_468_359_797);
    }
}
