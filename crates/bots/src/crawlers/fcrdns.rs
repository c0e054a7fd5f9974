//! Forward-confirmed reverse DNS: the pure decision, over a resolver the
//! caller provides.

use std::net::IpAddr;

/// At most this many PTR names are considered per lookup.
pub const MAX_PTR_NAMES: usize = 8;
/// At most this many forward addresses are considered per PTR name.
pub const MAX_FORWARD_ADDRS: usize = 16;

/// A resolver failure that says nothing about the answer (timeout,
/// SERVFAIL, no resolver configured): the lookup is inconclusive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNS resolution failed: {0}")]
pub struct ResolveError(pub String);

/// DNS as the verifier needs it. The edge implements it with the system
/// resolver (on a worker, never on the request path); tests with a table.
///
/// A name or address that does not exist (NXDOMAIN) or has no record of the
/// asked type (NODATA) is a definite answer: `Ok` with an empty list, not an
/// error. Errors are for failures that leave the answer unknown.
pub trait Resolver {
    /// The PTR names of `ip`.
    fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, ResolveError>;
    /// The addresses (A and AAAA) of `name`.
    fn forward(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError>;
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupOutcome {
    /// A PTR name of the IP is in one of the crawler's domains, and resolves
    /// back to the IP.
    Verified,
    /// No PTR name in the crawler's domains, or none of them resolves back
    /// to the IP: the claim is false.
    Failed,
    /// The resolver failed before an answer could be reached: neither
    /// verified nor refuted (cached briefly, so a DNS outage neither hammers
    /// the resolver nor verifies anyone).
    Error,
}

/// Maps an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to its IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the DNS `name` is `domain` or lies under it, on a label boundary
/// (`crawl-1.googlebot.com` and `googlebot.com` are in `googlebot.com`;
/// `evilgooglebot.com` is not). ASCII case-insensitive; one trailing dot on
/// `name` and leading or trailing dots on `domain` are ignored. An empty
/// domain matches nothing.
pub fn in_domain(name: &str, domain: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
    let domain = domain.trim_matches('.').as_bytes();
    if domain.is_empty() || name.len() < domain.len() {
        return false;
    }
    let split = name.len() - domain.len();
    name[split..].eq_ignore_ascii_case(domain) && (split == 0 || name[split - 1] == b'.')
}

/// Forward-confirmed reverse DNS for `ip` against the crawler's `domains`:
/// the first [`MAX_PTR_NAMES`] PTR names of `ip` that are in one of
/// `domains` are resolved forward (each distinct name once), and the lookup
/// is [`Verified`](LookupOutcome::Verified) when one of the first
/// [`MAX_FORWARD_ADDRS`] addresses of one of them is `ip` (IPv4-mapped
/// addresses compare as IPv4).
///
/// [`Error`](LookupOutcome::Error) when the reverse lookup fails, or when no
/// name verified and a forward lookup failed; otherwise
/// [`Failed`](LookupOutcome::Failed). Makes at most `1 + MAX_PTR_NAMES`
/// resolver calls.
pub fn fcrdns<S: AsRef<str>>(ip: IpAddr, domains: &[S], resolver: &dyn Resolver) -> LookupOutcome {
    let ip = canonical_ip(ip);
    let names = match resolver.reverse(ip) {
        Ok(names) => names,
        Err(_) => return LookupOutcome::Error,
    };
    let mut tried: Vec<&str> = Vec::new();
    let mut error = false;
    for name in names.iter().take(MAX_PTR_NAMES) {
        let name = name.trim();
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty()
            || !domains.iter().any(|d| in_domain(name, d.as_ref()))
            || tried.iter().any(|t| t.eq_ignore_ascii_case(name))
        {
            continue;
        }
        tried.push(name);
        match resolver.forward(name) {
            Ok(addrs) => {
                if addrs
                    .iter()
                    .take(MAX_FORWARD_ADDRS)
                    .any(|a| canonical_ip(*a) == ip)
                {
                    return LookupOutcome::Verified;
                }
            }
            Err(_) => error = true,
        }
    }
    if error {
        LookupOutcome::Error
    } else {
        LookupOutcome::Failed
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A resolver answering from tables; names or IPs listed in `fail` fail.
    #[derive(Default)]
    pub(crate) struct TableResolver {
        pub ptr: HashMap<IpAddr, Vec<String>>,
        pub addrs: HashMap<String, Vec<IpAddr>>,
        pub fail: Vec<String>,
        pub calls: RefCell<Vec<String>>,
    }

    impl TableResolver {
        pub fn ptr(mut self, ip: &str, names: &[&str]) -> Self {
            self.ptr.insert(
                ip.parse().unwrap(),
                names.iter().map(|s| s.to_string()).collect(),
            );
            self
        }
        pub fn a(mut self, name: &str, ips: &[&str]) -> Self {
            self.addrs.insert(
                name.to_ascii_lowercase(),
                ips.iter().map(|s| s.parse().unwrap()).collect(),
            );
            self
        }
        pub fn fail(mut self, what: &str) -> Self {
            self.fail.push(what.into());
            self
        }
    }

    impl Resolver for TableResolver {
        fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, ResolveError> {
            self.calls.borrow_mut().push(format!("PTR {ip}"));
            if self.fail.contains(&ip.to_string()) {
                return Err(ResolveError("timeout".into()));
            }
            Ok(self.ptr.get(&ip).cloned().unwrap_or_default())
        }
        fn forward(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
            self.calls.borrow_mut().push(format!("A {name}"));
            if self.fail.iter().any(|f| f == name) {
                return Err(ResolveError("SERVFAIL".into()));
            }
            Ok(self
                .addrs
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default())
        }
    }

    const GOOGLE: &[&str] = &["googlebot.com", ".google.com"];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn suffix_matching_is_on_label_boundaries() {
        assert!(in_domain(
            "crawl-66-249-66-1.googlebot.com",
            "googlebot.com"
        ));
        assert!(in_domain(
            "crawl-66-249-66-1.googlebot.com.",
            ".googlebot.com"
        ));
        assert!(in_domain("CRAWL.GoogleBot.Com", "googlebot.com."));
        assert!(in_domain("googlebot.com", "googlebot.com"));
        assert!(!in_domain("evilgooglebot.com", "googlebot.com"));
        assert!(!in_domain("evilgooglebot.com", ".googlebot.com"));
        assert!(!in_domain("googlebot.com.evil.net", "googlebot.com"));
        assert!(!in_domain("ooglebot.com", "googlebot.com"));
        assert!(!in_domain("x.googlebot.com", ""));
        assert!(!in_domain("x.googlebot.com", "."));
        // Multi-byte characters never make a slice panic.
        assert!(!in_domain("é.googlebot.cém", "googlebot.com"));
        assert!(!in_domain("ébot.com", "t.com"));
        assert!(in_domain("é.bot.com", "bot.com"));
    }

    #[test]
    fn genuine_googlebot_is_verified() {
        let r = TableResolver::default()
            .ptr("66.249.66.1", &["crawl-66-249-66-1.googlebot.com."])
            .a("crawl-66-249-66-1.googlebot.com", &["66.249.66.1"]);
        assert_eq!(
            fcrdns(ip("66.249.66.1"), GOOGLE, &r),
            LookupOutcome::Verified
        );
        assert_eq!(
            *r.calls.borrow(),
            vec!["PTR 66.249.66.1", "A crawl-66-249-66-1.googlebot.com"]
        );
    }

    #[test]
    fn ipv4_mapped_client_is_resolved_as_ipv4() {
        let r = TableResolver::default()
            .ptr("66.249.66.1", &["crawl.googlebot.com"])
            .a("crawl.googlebot.com", &["::ffff:66.249.66.1"]);
        assert_eq!(
            fcrdns(ip("::ffff:66.249.66.1"), GOOGLE, &r),
            LookupOutcome::Verified
        );
    }

    #[test]
    fn spoofed_ptr_whose_forward_lacks_the_ip_fails() {
        // The attacker controls the PTR of their own address, not the
        // forward zone of googlebot.com.
        let r = TableResolver::default()
            .ptr("203.0.113.9", &["crawl-66-249-66-1.googlebot.com"])
            .a("crawl-66-249-66-1.googlebot.com", &["66.249.66.1"]);
        assert_eq!(fcrdns(ip("203.0.113.9"), GOOGLE, &r), LookupOutcome::Failed);
    }

    #[test]
    fn ptr_outside_the_domains_fails_without_forward_lookup() {
        let r = TableResolver::default()
            .ptr(
                "203.0.113.9",
                &["crawl.evilgooglebot.com", "googlebot.com.evil.net"],
            )
            .a("crawl.evilgooglebot.com", &["203.0.113.9"])
            .a("googlebot.com.evil.net", &["203.0.113.9"]);
        assert_eq!(fcrdns(ip("203.0.113.9"), GOOGLE, &r), LookupOutcome::Failed);
        assert_eq!(*r.calls.borrow(), vec!["PTR 203.0.113.9"]);
        // No PTR at all.
        let r = TableResolver::default();
        assert_eq!(fcrdns(ip("203.0.113.9"), GOOGLE, &r), LookupOutcome::Failed);
    }

    #[test]
    fn resolver_errors_are_inconclusive() {
        let r = TableResolver::default().fail("66.249.66.1");
        assert_eq!(fcrdns(ip("66.249.66.1"), GOOGLE, &r), LookupOutcome::Error);
        let r = TableResolver::default()
            .ptr("66.249.66.1", &["a.googlebot.com"])
            .fail("a.googlebot.com");
        assert_eq!(fcrdns(ip("66.249.66.1"), GOOGLE, &r), LookupOutcome::Error);
        // A failed forward lookup does not hide a name that verifies.
        let r = TableResolver::default()
            .ptr("66.249.66.1", &["a.googlebot.com", "b.google.com"])
            .fail("a.googlebot.com")
            .a("b.google.com", &["66.249.66.1"]);
        assert_eq!(
            fcrdns(ip("66.249.66.1"), GOOGLE, &r),
            LookupOutcome::Verified
        );
    }

    #[test]
    fn names_and_addresses_are_capped_and_names_deduplicated() {
        let mut names: Vec<String> = (0..MAX_PTR_NAMES)
            .map(|i| format!("n{i}.googlebot.com"))
            .collect();
        names.push("last.googlebot.com".into());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let r = TableResolver::default()
            .ptr("66.249.66.1", &refs)
            .a("last.googlebot.com", &["66.249.66.1"]);
        assert_eq!(fcrdns(ip("66.249.66.1"), GOOGLE, &r), LookupOutcome::Failed);
        assert_eq!(r.calls.borrow().len(), 1 + MAX_PTR_NAMES);

        let r = TableResolver::default()
            .ptr(
                "66.249.66.1",
                &["a.googlebot.com", "A.GOOGLEBOT.COM.", "a.googlebot.com"],
            )
            .a("a.googlebot.com", &["192.0.2.1"]);
        assert_eq!(fcrdns(ip("66.249.66.1"), GOOGLE, &r), LookupOutcome::Failed);
        assert_eq!(r.calls.borrow().len(), 2, "{:?}", r.calls.borrow());

        let mut addrs: Vec<String> = (0..MAX_FORWARD_ADDRS)
            .map(|i| format!("192.0.2.{i}"))
            .collect();
        addrs.push("66.249.66.1".into());
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let r = TableResolver::default()
            .ptr("66.249.66.1", &["a.googlebot.com"])
            .a("a.googlebot.com", &refs);
        assert_eq!(fcrdns(ip("66.249.66.1"), GOOGLE, &r), LookupOutcome::Failed);
    }
}
