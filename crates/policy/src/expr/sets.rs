//! Precompiled sets for `in`: IP ranges, integer ranges, strings.

use std::net::IpAddr;
use std::sync::Arc;

use ahash::AHashSet;
use ipnet::IpNet;

/// A set of IPv4 and IPv6 networks, stored as sorted, merged address ranges:
/// a lookup is a binary search, whatever the number of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    /// The set of addresses in any of `nets`.
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        IpSet {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    /// Whether `ip` is in the set. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) also matches the IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => {
                in_ranges(&self.v6, u128::from(a))
                    || a.to_ipv4_mapped()
                        .is_some_and(|m| in_ranges(&self.v4, u32::from(m)))
            }
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// A set of integers, stored as sorted, merged inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntSet {
    ranges: Vec<(i64, i64)>,
}

impl IntSet {
    /// The set of integers in any of the inclusive `ranges` (`lo <= hi`).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (i64, i64)>) -> Self {
        IntSet {
            ranges: merge(ranges.into_iter().collect()),
        }
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: i64) -> bool {
        in_ranges(&self.ranges, v)
    }
}

/// A set of strings.
pub(super) type StrSet = AHashSet<Box<str>>;

/// Sorts inclusive ranges and merges the overlapping or adjacent ones.
fn merge<T: Copy + Ord + num::Succ>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        if let Some(last) = out.last_mut() {
            if lo <= last.1 || last.1.succ() == Some(lo) {
                last.1 = last.1.max(hi);
                continue;
            }
        }
        out.push((lo, hi));
    }
    out.shrink_to_fit();
    out
}

fn in_ranges<T: Copy + Ord>(ranges: &[(T, T)], v: T) -> bool {
    let i = ranges.partition_point(|r| r.0 <= v);
    i > 0 && ranges[i - 1].1 >= v
}

mod num {
    /// The next value, if any.
    pub trait Succ: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl Succ for u32 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl Succ for i64 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
}

/// Parses an IP address or CIDR (host bits ignored).
pub(super) fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Parses an integer or an inclusive `a..b` range.
fn parse_int_range(s: &str) -> Option<(i64, i64)> {
    let s = s.trim();
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => s.parse().ok().map(|v| (v, v)),
    }
}

/// One named list, interpreted all three ways once, at insertion.
#[derive(Debug, Clone)]
pub(crate) struct ListSets {
    pub strings: Arc<StrSet>,
    /// The IP set, or the first item that is not an IP address or CIDR.
    pub ips: Result<Arc<IpSet>, String>,
    /// The integer set, or the first item that is not an integer or range.
    pub ints: Result<Arc<IntSet>, String>,
}

impl ListSets {
    pub fn build(items: &[String]) -> Self {
        let strings = items.iter().map(|s| Box::from(s.as_str())).collect();
        let ips = items
            .iter()
            .map(|s| parse_net(s).ok_or_else(|| s.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| Arc::new(IpSet::from_nets(nets)));
        let ints = items
            .iter()
            .map(|s| parse_int_range(s).ok_or_else(|| s.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(|r| Arc::new(IntSet::from_ranges(r)));
        ListSets {
            strings: Arc::new(strings),
            ips,
            ints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(items: &[&str]) -> IpSet {
        IpSet::from_nets(items.iter().map(|s| parse_net(s).unwrap()))
    }

    #[test]
    fn ip_set_lookup_and_merge() {
        let s = ips(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "192.0.2.7",
            "192.0.2.8",
            "2001:db8::/32",
        ]);
        assert_eq!(
            s.v4,
            vec![(0x0a00_0000, 0x0aff_ffff), (0xc000_0207, 0xc000_0208)]
        );
        for ip in [
            "10.0.0.0",
            "10.255.255.255",
            "192.0.2.7",
            "192.0.2.8",
            "2001:db8::1",
        ] {
            assert!(s.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["9.255.255.255", "11.0.0.0", "192.0.2.9", "2001:db9::", "::"] {
            assert!(!s.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(s.contains("::ffff:10.2.3.4".parse().unwrap()));
        let all = ips(&["0.0.0.0/0", "::/0"]);
        assert!(all.contains("255.255.255.255".parse().unwrap()));
        assert!(all.contains("ffff::".parse().unwrap()));
    }

    #[test]
    fn ip_set_with_thousands_of_entries() {
        let nets: Vec<IpNet> = (0..5000u32)
            .map(|i| IpNet::from(IpAddr::from((0x0b00_0000 + i * 2).to_be_bytes())))
            .collect();
        let s = IpSet::from_nets(nets);
        assert!(s.contains("11.0.0.2".parse().unwrap()));
        assert!(!s.contains("11.0.0.3".parse().unwrap()));
    }

    #[test]
    fn int_set_and_list_parsing() {
        let s = IntSet::from_ranges([(80, 80), (8000, 8999), (443, 443), (81, 81)]);
        assert_eq!(s.ranges, vec![(80, 81), (443, 443), (8000, 8999)]);
        assert!(s.contains(8500) && s.contains(81) && !s.contains(82));
        assert_eq!(parse_int_range(" 5 .. 7 "), Some((5, 7)));
        assert_eq!(parse_int_range("7..5"), None);
        let l = ListSets::build(&["1.2.3.4".into(), "x".into()]);
        assert_eq!(l.ips.unwrap_err(), "x");
        assert_eq!(l.ints.unwrap_err(), "1.2.3.4");
        assert!(l.strings.contains("x"));
    }
}
