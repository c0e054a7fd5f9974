//! The client networks an edge already knew: an IPv4 /24 or an IPv6 /64 is
//! *familiar* once its first connection is at least `familiar_after` old
//! (`[connections]`). Connections from networks that are not familiar yet
//! are served on the quarantine thread ([`super::quarantine`]), so that a
//! flood of new sources, however many, competes for that thread and not for
//! the threads serving the clients the edge knew before it started.
//!
//! Keyed by client data, so capped: at most [`MAX_NETWORKS`] networks (about
//! 40 bytes each, 10 MiB in all). A network not seen for [`FORGET_MS`] is
//! forgotten when its shard needs the room; when a shard is full of networks
//! seen within that hour, a new network is not tracked (counted), and stays
//! unfamiliar: it is still served, on the quarantine thread.

use ahash::AHashMap;
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Networks tracked at most.
pub const MAX_NETWORKS: usize = 262_144;
/// A network not seen for this long may be forgotten (1 hour).
pub const FORGET_MS: u64 = 3_600_000;
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Seen {
    first: u64,
    last: u64,
}

#[derive(Default)]
struct Shard {
    map: AHashMap<u128, Seen>,
    /// When the shard last looked for networks to forget (at most once a
    /// second: a flood of new networks must not make every visit a sweep).
    swept_at: u64,
}

/// The familiar networks of an edge.
pub struct Familiar {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    untracked: AtomicU64,
}

impl Default for Familiar {
    fn default() -> Self {
        Familiar::with_capacity(MAX_NETWORKS)
    }
}

/// The network of an address: its /24 (IPv4, also IPv4-mapped IPv6) or /64.
fn network(ip: IpAddr) -> u128 {
    let v4 = match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    match (v4, ip) {
        (Some(a), _) => 1 << 127 | u128::from(u32::from(a) & 0xffff_ff00),
        (None, IpAddr::V6(a)) => u128::from(a) & !u128::from(u64::MAX),
        (None, IpAddr::V4(_)) => unreachable!("an IPv4 address always has a v4 form"),
    }
}

impl Familiar {
    /// A table of at most `max` networks.
    pub fn with_capacity(max: usize) -> Familiar {
        Familiar {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max.div_ceil(SHARDS).max(1),
            untracked: AtomicU64::new(0),
        }
    }

    /// `ip`'s network and the shard that holds it.
    fn shard_of(&self, ip: IpAddr) -> (u128, &Mutex<Shard>) {
        let key = network(ip);
        (key, &self.shards[(ahash_u128(key) as usize) % SHARDS])
    }

    /// Records a connection from `ip` at `now_ms`; whether its network was
    /// familiar (first seen at least `after_ms` before).
    pub fn visit(&self, ip: IpAddr, now_ms: u64, after_ms: u64) -> bool {
        let (key, shard) = self.shard_of(ip);
        let mut shard = shard.lock();
        if let Some(s) = shard.map.get_mut(&key) {
            s.last = s.last.max(now_ms);
            return now_ms.saturating_sub(s.first) >= after_ms;
        }
        if shard.map.len() >= self.per_shard {
            if now_ms.saturating_sub(shard.swept_at) >= 1_000 {
                shard.swept_at = now_ms;
                shard
                    .map
                    .retain(|_, s| now_ms.saturating_sub(s.last) < FORGET_MS);
            }
            if shard.map.len() >= self.per_shard {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        shard.map.insert(
            key,
            Seen {
                first: now_ms,
                last: now_ms,
            },
        );
        after_ms == 0
    }

    /// Whether `ip`'s network is familiar at `now_ms` (nothing recorded).
    pub fn knows(&self, ip: IpAddr, now_ms: u64, after_ms: u64) -> bool {
        let (key, shard) = self.shard_of(ip);
        let known = shard
            .lock()
            .map
            .get(&key)
            .is_some_and(|s| now_ms.saturating_sub(s.first) >= after_ms);
        known
    }

    /// Networks tracked.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether no network is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// New networks not tracked because the table was full, since the start.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }
}

fn ahash_u128(k: u128) -> u64 {
    // Fixed seeds: the shard of a network only spreads the locks.
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_network_becomes_familiar_after_its_first_connection_ages() {
        let f = Familiar::default();
        assert!(!f.visit(ip("192.0.2.1"), 1_000, 5_000));
        // Same /24, another address: the same network.
        assert!(!f.visit(ip("192.0.2.200"), 5_999, 5_000));
        assert!(!f.knows(ip("192.0.2.7"), 5_999, 5_000));
        assert!(f.knows(ip("192.0.2.7"), 6_000, 5_000));
        assert!(!f.knows(ip("203.0.113.1"), 6_000, 5_000), "never seen");
        assert!(f.visit(ip("192.0.2.7"), 6_000, 5_000));
        // IPv4-mapped IPv6 is the same network.
        assert!(f.visit(ip("::ffff:192.0.2.9"), 6_000, 5_000));
        // The next /24 is not.
        assert!(!f.visit(ip("192.0.3.1"), 6_000, 5_000));
        // IPv6: by /64.
        assert!(!f.visit(ip("2001:db8:1:2::1"), 0, 5_000));
        assert!(f.visit(ip("2001:db8:1:2:ffff::9"), 5_000, 5_000));
        assert!(!f.visit(ip("2001:db8:1:3::1"), 5_000, 5_000));
        assert_eq!(f.len(), 4);
        // familiar_after 0: everyone is familiar at once.
        assert!(f.visit(ip("198.51.100.1"), 0, 0));
    }

    #[test]
    fn the_table_is_capped_and_forgets_networks_not_seen_for_an_hour() {
        let f = Familiar::with_capacity(SHARDS * 4);
        let net = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)));
        for i in 0..1000 {
            f.visit(net(i), 0, 5_000);
        }
        assert!(f.len() <= SHARDS * 4, "{}", f.len());
        assert!(f.untracked() > 0);
        // An hour later the old networks make room for new ones.
        let later = FORGET_MS + 1;
        let before = f.untracked();
        for i in 1000..1000 + SHARDS as u32 {
            f.visit(net(i), later, 5_000);
        }
        assert!(f.untracked() - before < SHARDS as u64, "room was made");
        assert!(f.len() <= SHARDS * 4);
    }
}
