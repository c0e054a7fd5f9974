//! The client address: the socket peer, or the right-most untrusted address of
//! `X-Forwarded-For` when (and only when) the peer is a trusted proxy.

use ipnet::IpNet;
use std::net::IpAddr;

/// Trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// From a list of networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies { nets }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The `X-Forwarded-For` to send upstream for a request from `peer`:
    /// `None` when the peer is not a trusted proxy (the caller sends the
    /// client address alone, whatever the client claimed); otherwise the
    /// part of the received chain this edge trusts — the client address it
    /// computed and the trusted hops after it — followed by the peer.
    /// Addresses left of the client (which the client itself could have
    /// written) are dropped.
    pub fn forwarded_chain<'a, I: DoubleEndedIterator<Item = &'a [u8]>>(
        &self,
        peer: IpAddr,
        xff: I,
    ) -> Option<String> {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return None;
        }
        let mut hops: Vec<IpAddr> = Vec::new();
        'walk: for value in xff.rev() {
            let Ok(s) = std::str::from_utf8(value) else {
                break;
            };
            for part in s.rsplit(',') {
                let Ok(ip) = part.trim().parse::<IpAddr>() else {
                    break 'walk;
                };
                let ip = canonical(ip);
                hops.push(ip);
                if !self.trusts(ip) {
                    break 'walk;
                }
            }
        }
        let mut out = String::with_capacity(16 * (hops.len() + 1));
        for ip in hops.iter().rev().chain(std::iter::once(&peer)) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            use std::fmt::Write;
            let _ = write!(out, "{ip}");
        }
        Some(out)
    }

    /// Resolves the client address. `xff` yields every `X-Forwarded-For` header
    /// value in order; it is only called when the peer is a trusted proxy.
    pub fn client_ip<'a, I: DoubleEndedIterator<Item = &'a [u8]>>(
        &self,
        peer: IpAddr,
        xff: impl FnOnce() -> I,
    ) -> IpAddr {
        let peer = canonical(peer);
        if self.nets.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let xff = xff();
        let mut client = peer;
        // Walk from the closest hop outwards; stop at the first untrusted address.
        for value in xff.rev() {
            let Ok(s) = std::str::from_utf8(value) else {
                return client;
            };
            for part in s.rsplit(',') {
                let part = part.trim();
                let Ok(ip) = part.parse::<IpAddr>() else {
                    return client;
                };
                client = canonical(ip);
                if !self.trusts(client) {
                    return client;
                }
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()])
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let xff: Vec<&[u8]> = vec![b"1.2.3.4"];
        assert_eq!(
            tp().client_ip("8.8.8.8".parse().unwrap(), || xff.into_iter()),
            "8.8.8.8".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_peer_walks_xff_right_to_left() {
        let xff: Vec<&[u8]> = vec![b"6.6.6.6, 1.2.3.4", b"10.0.0.2"];
        assert_eq!(
            tp().client_ip("10.0.0.1".parse().unwrap(), || xff.into_iter()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn garbage_in_xff_stops_the_walk() {
        let xff: Vec<&[u8]> = vec![b"1.2.3.4, nonsense"];
        assert_eq!(
            tp().client_ip("10.0.0.1".parse().unwrap(), || xff.into_iter()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_chain_keeps_only_what_is_trusted() {
        let xff: Vec<&[u8]> = vec![b"6.6.6.6, 1.2.3.4", b"10.0.0.2"];
        assert_eq!(
            tp().forwarded_chain("10.0.0.1".parse().unwrap(), xff.clone().into_iter()),
            Some("1.2.3.4, 10.0.0.2, 10.0.0.1".to_string())
        );
        // An untrusted peer: the caller sends the client address alone.
        assert_eq!(
            tp().forwarded_chain("8.8.8.8".parse().unwrap(), xff.into_iter()),
            None
        );
        // Garbage stops the walk; the peer is still named.
        let xff: Vec<&[u8]> = vec![b"1.2.3.4, nonsense"];
        assert_eq!(
            tp().forwarded_chain("10.0.0.1".parse().unwrap(), xff.into_iter()),
            Some("10.0.0.1".to_string())
        );
        let none: Vec<&[u8]> = vec![];
        assert_eq!(
            tp().forwarded_chain("10.0.0.1".parse().unwrap(), none.into_iter()),
            Some("10.0.0.1".to_string())
        );
    }

    #[test]
    fn mapped_v6_peer_is_v4() {
        let xff: Vec<&[u8]> = vec![];
        assert_eq!(
            TrustedProxies::default()
                .client_ip("::ffff:1.2.3.4".parse().unwrap(), || xff.into_iter()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }
}
