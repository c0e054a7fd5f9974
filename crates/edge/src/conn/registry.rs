//! The open connections of an edge, by client address: the per-address
//! count that the connection cap reads, and the handles that close a
//! connection when a ban on its address arrives.
//!
//! Touched on accept and on close only, never per request. The map is
//! sharded (one lock per shard) and holds an entry per address with at least
//! one open connection, so its size is bounded by the open connections.
//! IPv6 clients are counted per /64 (one subscriber's allocation), IPv4
//! (and IPv4-mapped IPv6) per address.

use ahash::AHashMap;
use atomic_waker::AtomicWaker;
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

const SHARDS: usize = 16;

/// What one open connection shares with the registry: its address and the
/// flag (and waker) that closes it from outside.
#[derive(Debug)]
pub struct ConnShared {
    /// The socket peer.
    pub ip: IpAddr,
    /// 0 while open; otherwise the [`super::Reason`] it was closed for.
    closed: AtomicU8,
    /// Wakes the connection's pending read when it is closed from outside.
    pub(crate) waker: AtomicWaker,
}

impl ConnShared {
    fn new(ip: IpAddr) -> Self {
        ConnShared {
            ip,
            closed: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        }
    }

    /// The reason the connection was closed from outside, if it was.
    #[inline]
    pub fn closed(&self) -> Option<super::Reason> {
        super::Reason::from_u8(self.closed.load(Ordering::Relaxed))
    }

    /// Closes the connection: its next read or write fails.
    pub fn close(&self, reason: super::Reason) {
        self.closed.store(reason as u8, Ordering::Relaxed);
        self.waker.wake();
    }
}

/// The key a connection is counted under: the IPv4 address, or the /64 of an IPv6 one.
pub fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

/// One shard: the open connections of the addresses that hash to it.
type Shard = Mutex<AHashMap<IpAddr, Vec<Arc<ConnShared>>>>;

/// Open connections by client address.
pub struct Registry {
    shards: Box<[Shard]>,
    open: AtomicUsize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(AHashMap::new())).collect(),
            open: AtomicUsize::new(0),
        }
    }
}

/// Refused by the per-address cap.
#[derive(Debug, PartialEq, Eq)]
pub struct OverCap;

impl Registry {
    fn shard(&self, key: &IpAddr) -> &Shard {
        let h = match key {
            IpAddr::V4(a) => u32::from(*a) as usize,
            IpAddr::V6(a) => (u128::from(*a) >> 64) as usize,
        };
        // Mix the bits so that neighbours spread over the shards.
        let h = h.wrapping_mul(0x9E37_79B9) >> 7;
        &self.shards[h % SHARDS]
    }

    /// Registers a connection from `ip`, unless its address already holds
    /// `cap` connections (`cap` 0: no cap).
    pub fn register(&self, ip: IpAddr, cap: u32) -> Result<Arc<ConnShared>, OverCap> {
        let key = key_of(ip);
        let mut map = self.shard(&key).lock();
        let conns = map.entry(key).or_default();
        if cap > 0 && conns.len() >= cap as usize {
            if conns.is_empty() {
                map.remove(&key);
            }
            return Err(OverCap);
        }
        let c = Arc::new(ConnShared::new(ip));
        conns.push(c.clone());
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(c)
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, conn: &Arc<ConnShared>) {
        let key = key_of(conn.ip);
        let mut map = self.shard(&key).lock();
        if let Some(conns) = map.get_mut(&key) {
            if let Some(i) = conns.iter().position(|c| Arc::ptr_eq(c, conn)) {
                conns.swap_remove(i);
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
            if conns.is_empty() {
                map.remove(&key);
            }
        }
    }

    /// Open connections counted under `ip`'s key.
    pub fn count(&self, ip: IpAddr) -> usize {
        let key = key_of(ip);
        self.shard(&key).lock().get(&key).map_or(0, Vec::len)
    }

    /// Open connections in all.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Closes every open connection whose address `doomed` says must go;
    /// returns how many. Each shard is walked under its lock, one at a time.
    pub fn close_where(
        &self,
        reason: super::Reason,
        mut doomed: impl FnMut(IpAddr) -> bool,
    ) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            let map = shard.lock();
            for conns in map.values() {
                for c in conns {
                    if c.closed().is_none() && doomed(c.ip) {
                        c.close(reason);
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_connections_per_address() {
        let r = Registry::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c1 = r.register(a, 2).unwrap();
        let _c2 = r.register(a, 2).unwrap();
        assert!(r.register(a, 2).is_err());
        assert!(r.register(b, 2).is_ok());
        assert_eq!(r.count(a), 2);
        r.unregister(&c1);
        assert_eq!(r.count(a), 1);
        assert!(r.register(a, 2).is_ok());
        assert!(r.register(a, 0).is_ok(), "0: no cap");
        assert_eq!(r.open(), 4);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let r = Registry::default();
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        r.register(x, 1).unwrap();
        assert!(r.register(y, 1).is_err());
        assert!(r.register(z, 1).is_ok());
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        r.register(v4, 1).unwrap();
        assert!(r.register(mapped, 1).is_err());
    }

    #[test]
    fn entries_go_when_their_last_connection_does() {
        let r = Registry::default();
        let conns: Vec<_> = (0..100u8)
            .map(|i| r.register(IpAddr::from([10, 0, 1, i]), 1).unwrap())
            .collect();
        assert_eq!(r.addresses(), 100);
        for c in &conns {
            r.unregister(c);
        }
        assert_eq!((r.addresses(), r.open()), (0, 0));
    }

    #[test]
    fn close_where_flags_only_the_doomed() {
        let r = Registry::default();
        let a = r.register("10.0.0.1".parse().unwrap(), 0).unwrap();
        let b = r.register("10.0.0.2".parse().unwrap(), 0).unwrap();
        let n = r.close_where(super::super::Reason::Banned, |ip| {
            ip == "10.0.0.1".parse::<IpAddr>().unwrap()
        });
        assert_eq!(n, 1);
        assert_eq!(a.closed(), Some(super::super::Reason::Banned));
        assert_eq!(b.closed(), None);
    }
}
