//! Whether two host names are the same *site* (RFC 6265bis: the same
//! registrable domain, which the Public Suffix List defines): the
//! `@sameSite` operator, Palisade's own, behind the default that treats a
//! sibling subdomain's `Referer` as on-domain for CRS' session-fixation rule
//! 943110 (docs/waf.md, "Defaults").
//!
//! The list is `data/public_suffix_list.txt`: every rule of the Public
//! Suffix List (Debian's `publicsuffix` package, MPL 2.0; see
//! `data/README.md`), comments left out, Unicode rules also in their
//! punycode form (what `Host` headers carry), sorted bytewise, one rule a
//! line. It is searched in place (binary search over lines): no allocation
//! at load, none kept.

use std::cmp::Ordering;
use std::net::IpAddr;

const PSL: &str = include_str!("../data/public_suffix_list.txt");

/// Whether `rule` is a line of [`PSL`].
fn listed(rule: &str) -> bool {
    let b = PSL.as_bytes();
    // `lo` is always the start of a line; `hi` a line start or the end.
    let (mut lo, mut hi) = (0usize, b.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = b[lo..mid]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(lo, |p| lo + p + 1);
        let end = b[start..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |p| start + p);
        match PSL[start..end].cmp(rule) {
            Ordering::Equal => return true,
            Ordering::Less => lo = (end + 1).min(b.len()),
            Ordering::Greater => hi = start,
        }
    }
    false
}

/// A host as a `Host` header or a URL's authority gives it: lower case,
/// without port, user info or trailing dot.
fn host_of(authority: &str) -> String {
    let a = authority.trim();
    let a = a.rsplit_once('@').map_or(a, |(_, h)| h);
    let h = if a.parse::<IpAddr>().is_ok() {
        a // a bare IPv6 address
    } else if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        a.split(':').next().unwrap_or("")
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// The registrable domain of a lower-case host name (its public suffix and
/// one more label), `None` for an IP address, a public suffix itself or a
/// malformed name.
pub fn registrable_domain(host: &str) -> Option<&str> {
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return None;
    }
    // Byte offsets where each label starts.
    let mut starts = vec![0usize];
    starts.extend(host.match_indices('.').map(|(i, _)| i + 1));
    let n = starts.len();
    if starts.windows(2).any(|w| w[1] - w[0] < 2) || starts[n - 1] >= host.len() {
        return None; // an empty label
    }
    // Labels of the public suffix: the longest matching rule, an exception
    // rule winning (it names a registrable domain); otherwise "*" (the last
    // label).
    let mut suffix = 1;
    for (i, &s) in starts.iter().enumerate() {
        let candidate = &host[s..];
        if listed(&format!("!{candidate}")) {
            suffix = n - i - 1;
            break;
        }
        let wildcard = starts
            .get(i + 1)
            .is_some_and(|&next| listed(&format!("*.{}", &host[next..])));
        if listed(candidate) || wildcard {
            suffix = n - i;
            break;
        }
    }
    (n > suffix).then(|| &host[starts[n - suffix - 1]..])
}

/// Whether two authorities (`host[:port]`) are the same site: the same
/// host, or host names with the same registrable domain. IP addresses are
/// only the same site as themselves.
pub fn same_site(a: &str, b: &str) -> bool {
    let (a, b) = (host_of(a), host_of(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    match (registrable_domain(&a), registrable_domain(&b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_searchable() {
        let lines: Vec<&str> = PSL.lines().collect();
        assert!(lines.len() > 9_000, "{} rules", lines.len());
        assert!(
            lines.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for l in [lines[0], lines[lines.len() / 2], lines[lines.len() - 1]] {
            assert!(listed(l), "{l}");
        }
        for rule in ["com", "co.uk", "github.io", "*.ck", "!www.ck", "xn--p1ai"] {
            assert!(listed(rule), "{rule}");
        }
        for no in ["", "example.com", "co.u", "comx", "zzzzzz"] {
            assert!(!listed(no), "{no}");
        }
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        for (host, want) in [
            ("www.example.com", Some("example.com")),
            ("example.com", Some("example.com")),
            ("a.b.example.co.uk", Some("example.co.uk")),
            ("co.uk", None),
            ("com", None),
            ("alice.github.io", Some("alice.github.io")),
            ("github.io", None),
            ("www.ck", Some("www.ck")), // exception rule !www.ck
            ("a.b.ck", Some("a.b.ck")), // wildcard *.ck
            ("city.kobe.jp", Some("city.kobe.jp")),
            ("localhost", None),
            ("intranet.local", Some("intranet.local")), // unlisted TLD: "*"
            ("127.0.0.1", None),
            ("::1", None),
            ("a..com", None),
            (".com", None),
        ] {
            assert_eq!(registrable_domain(host), want, "{host}");
        }
    }

    #[test]
    fn same_site_compares_registrable_domains() {
        for (a, b) in [
            ("www.example.com", "api.example.com"),
            ("example.com", "shop.example.com:8443"),
            ("WWW.Example.COM.", "example.com"),
            ("localhost:8080", "localhost"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("[::1]:443", "::1"),
            ("user@login.example.org", "example.org"),
        ] {
            assert!(same_site(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("attacker.com", "example.com"),
            ("example.com.attacker.com", "example.com"),
            ("alice.github.io", "bob.github.io"),
            ("evil.co.uk", "good.co.uk"),
            ("10.0.0.1", "10.0.0.2"),
            ("", ""),
            ("localhost", "localhost.attackersite.com"),
        ] {
            assert!(!same_site(a, b), "{a} {b}");
        }
    }
}
