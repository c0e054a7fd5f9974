//! What the edge tells the origin about the client: the truth, never what
//! the client claims.
//!
//! Before a request goes upstream, the headers an origin reads to learn the
//! client address and scheme are replaced:
//! - `X-Forwarded-For`: the client address the edge computed; behind a
//!   trusted proxy, the trusted part of the received chain (from the
//!   computed client on) followed by that proxy ([`TrustedProxies::forwarded_chain`]).
//! - `X-Real-IP`: the computed client address.
//! - `Forwarded`: `for=<client>;proto=<http|https>` (RFC 7239).
//! - `X-Forwarded-Proto`: the scheme the client used to reach the edge, unless
//!   a trusted proxy sent one.
//! - `True-Client-IP` (a CDN header a client could send itself): removed.
//!
//! This module only rewrites headers; the address itself comes from
//! [`crate::client_ip`].

use crate::client_ip::TrustedProxies;
use pingora_http::RequestHeader;
use std::fmt::Write;
use std::net::IpAddr;

const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: http::HeaderName = http::HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
const TRUE_CLIENT_IP: http::HeaderName = http::HeaderName::from_static("true-client-ip");

/// Rewrites the client-address headers of an upstream request. `peer` is the
/// socket peer, `client` the address computed from it (see
/// [`TrustedProxies::client_ip`]), `tls` whether the client connection is TLS.
pub fn rewrite(
    req: &mut RequestHeader,
    trusted: &TrustedProxies,
    peer: IpAddr,
    client: IpAddr,
    tls: bool,
) -> pingora_error::Result<()> {
    let peer_trusted = trusted.trusts(peer);
    let chain = if peer_trusted {
        trusted.forwarded_chain(
            peer,
            req.headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(|v| v.as_bytes())
                .collect::<Vec<_>>()
                .into_iter(),
        )
    } else {
        None
    };
    let mut client_str = String::with_capacity(40);
    let _ = write!(client_str, "{client}");
    match chain {
        Some(chain) => req.insert_header(X_FORWARDED_FOR, chain)?,
        None => req.insert_header(X_FORWARDED_FOR, client_str.as_str())?,
    }
    req.insert_header(X_REAL_IP, client_str.as_str())?;
    let proto = if tls { "https" } else { "http" };
    let mut forwarded = String::with_capacity(client_str.len() + 24);
    match client {
        // RFC 7239: an IPv6 address is quoted and bracketed.
        IpAddr::V6(_) => {
            let _ = write!(forwarded, "for=\"[{client}]\";proto={proto}");
        }
        IpAddr::V4(_) => {
            let _ = write!(forwarded, "for={client};proto={proto}");
        }
    }
    req.insert_header(http::header::FORWARDED, forwarded)?;
    if !(peer_trusted && req.headers.contains_key(X_FORWARDED_PROTO)) {
        req.insert_header(X_FORWARDED_PROTO, proto)?;
    }
    req.remove_header(&TRUE_CLIENT_IP);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forged() -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "7.7.7.7, 1.2.3.4"),
            ("x-real-ip", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("true-client-ip", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
        ] {
            r.append_header(k, v).unwrap();
        }
        r
    }

    fn values(r: &RequestHeader, name: &str) -> Vec<String> {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn an_untrusted_client_cannot_choose_its_address() {
        let mut r = forged();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        rewrite(&mut r, &TrustedProxies::default(), ip, ip, false).unwrap();
        assert_eq!(values(&r, "x-forwarded-for"), ["203.0.113.9"]);
        assert_eq!(values(&r, "x-real-ip"), ["203.0.113.9"]);
        assert_eq!(values(&r, "forwarded"), ["for=203.0.113.9;proto=http"]);
        assert_eq!(values(&r, "x-forwarded-proto"), ["http"]);
        assert!(values(&r, "true-client-ip").is_empty());
    }

    #[test]
    fn behind_a_trusted_proxy_the_trusted_chain_is_kept() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.append_header("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")
            .unwrap();
        r.append_header("x-forwarded-proto", "https").unwrap();
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let client = trusted.client_ip(peer, || {
            vec![&b"6.6.6.6, 1.2.3.4, 10.0.0.2"[..]].into_iter()
        });
        assert_eq!(client, "1.2.3.4".parse::<IpAddr>().unwrap());
        rewrite(&mut r, &trusted, peer, client, false).unwrap();
        assert_eq!(
            values(&r, "x-forwarded-for"),
            ["1.2.3.4, 10.0.0.2, 10.0.0.1"]
        );
        assert_eq!(values(&r, "x-real-ip"), ["1.2.3.4"]);
        // The trusted proxy terminated TLS: its scheme stands.
        assert_eq!(values(&r, "x-forwarded-proto"), ["https"]);
    }

    #[test]
    fn ipv6_clients_are_bracketed_in_forwarded() {
        let mut r = forged();
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        rewrite(&mut r, &TrustedProxies::default(), ip, ip, true).unwrap();
        assert_eq!(
            values(&r, "forwarded"),
            ["for=\"[2001:db8::1]\";proto=https"]
        );
        assert_eq!(values(&r, "x-forwarded-proto"), ["https"]);
    }
}
