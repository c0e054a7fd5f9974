//! Edge configuration: what the CLI (or a config file) hands to [`crate::EdgeServer`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Limits on request input. A request over a limit is answered without proxying.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum number of request headers (431 above).
    pub max_headers: usize,
    /// Maximum total size of request header names and values, in bytes (431 above).
    pub max_header_bytes: usize,
    /// Maximum length of the request target (path and query), in bytes (414 above).
    pub max_uri_bytes: usize,
    /// Maximum request body size, in bytes (413 above); 0 disables the limit.
    pub max_body_bytes: u64,
    /// Cap on request body bytes held back for WAF inspection across all
    /// requests; a body that finds no room waits, then gets 503.
    pub body_buffer_bytes: usize,
    /// How long a request body may wait for room under `body_buffer_bytes`.
    pub body_buffer_wait: Duration,
    /// Cap on response body bytes held back for inspection across all
    /// responses; a response that finds no room passes uninspected (counted).
    pub response_buffer_bytes: usize,
    /// Active decisions the table holds at most: past it this node issues no
    /// escalation decision (counted in `palisade_escalations_dropped_total`),
    /// and the control plane refuses or evicts (`--max-decisions`).
    pub max_decisions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            body_buffer_bytes: 256 * 1024 * 1024,
            body_buffer_wait: Duration::from_secs(30),
            response_buffer_bytes: 64 * 1024 * 1024,
            max_decisions: 1_000_000,
        }
    }
}

/// TLS termination from PEM files.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address of the TLS listener.
    pub listen: String,
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// One upstream server, from a URL such as `http://127.0.0.1:8081` or `https://origin.example:443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// Whether to connect with TLS.
    pub tls: bool,
    /// Host name for SNI (and certificate verification) when `tls`.
    pub sni: String,
    /// The URL as given, for logs and metrics.
    pub url: String,
}

impl UpstreamSpec {
    /// Parses `http://host[:port]` or `https://host[:port]` (ports 80 and 443
    /// by default). Anything else — another scheme, no scheme at all — is
    /// refused with one message saying what is accepted.
    pub fn parse(url: &str) -> Result<UpstreamSpec, String> {
        const ACCEPTED: &str =
            "an upstream is a URL starting with http:// or https://, such as http://127.0.0.1:8081";
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else {
            return Err(format!("upstream `{url}`: {ACCEPTED}"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(format!("upstream `{url}`: missing host; {ACCEPTED}"));
        }
        if authority.contains('@') {
            return Err(format!(
                "upstream `{url}`: user information (`user@`) is not supported"
            ));
        }
        if authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!(
                "upstream `{url}`: the host contains spaces; {ACCEPTED}"
            ));
        }
        let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        });
        let with_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{}", if tls { 443 } else { 80 })
        };
        use std::net::ToSocketAddrs;
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("upstream `{url}`: cannot resolve `{with_port}`: {e}"))?
            .next()
            .ok_or_else(|| format!("upstream `{url}`: `{with_port}` resolves to no address"))?;
        let host = with_port
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .unwrap_or_default();
        Ok(UpstreamSpec {
            addr,
            tls,
            sni: host,
            url: url.to_string(),
        })
    }
}

/// `s` without `prefix`, compared ignoring ASCII case.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Everything an edge needs to run.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Node id used in events and metrics.
    pub node_id: String,
    /// Plain HTTP listeners (HTTP/1.1 and h2c).
    pub listen: Vec<String>,
    /// Optional TLS listener (HTTP/1.1 and h2 by ALPN).
    pub tls: Option<TlsConfig>,
    /// Upstream pool (round robin).
    pub upstreams: Vec<UpstreamSpec>,
    /// Peers allowed to set the client address through `X-Forwarded-For`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Policy file; `None` runs with an empty policy (decisions still apply).
    pub policy_path: Option<PathBuf>,
    /// MaxMind country database (`GeoLite2-Country.mmdb` or `GeoIP2-City.mmdb`).
    pub geoip_country: Option<PathBuf>,
    /// MaxMind ASN database (`GeoLite2-ASN.mmdb`).
    pub geoip_asn: Option<PathBuf>,
    /// Worker threads for the proxy.
    pub threads: usize,
    /// Input limits.
    pub limits: Limits,
    /// Interval of active health checks.
    pub health_check_interval: Duration,
    /// How long an upstream stays out of rotation after a failed connection.
    pub passive_eject: Duration,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Upstream read/write idle timeout.
    pub upstream_timeout: Duration,
    /// Where security events go: `None` = standard output.
    pub events_path: Option<PathBuf>,
    /// Maximum rate-limit counters kept in memory.
    pub ratelimit_max_keys: usize,
    /// The directories whose files a pushed policy (a cluster version) may
    /// name in `[waf]`; `policy_path` is not confined (docs/trust.md).
    pub rule_roots: palisade_waf::confine::RuleRoots,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            node_id: "edge-1".into(),
            listen: vec!["127.0.0.1:8080".into()],
            tls: None,
            upstreams: Vec::new(),
            trusted_proxies: Vec::new(),
            policy_path: None,
            geoip_country: None,
            geoip_asn: None,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            limits: Limits::default(),
            health_check_interval: Duration::from_secs(1),
            passive_eject: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            upstream_timeout: Duration::from_secs(60),
            events_path: None,
            ratelimit_max_keys: 1_000_000,
            rule_roots: palisade_waf::confine::RuleRoots::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        let u = UpstreamSpec::parse("http://127.0.0.1:8081").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8081".parse().unwrap());
        assert!(!u.tls);
        let u = UpstreamSpec::parse("https://127.0.0.1").unwrap();
        assert_eq!(u.addr.port(), 443);
        assert!(u.tls);
        assert_eq!(u.sni, "127.0.0.1");
        let u = UpstreamSpec::parse("http://[::1]:9000/").unwrap();
        assert_eq!(u.addr, "[::1]:9000".parse().unwrap());
        assert!(UpstreamSpec::parse("HTTP://127.0.0.1:1").is_ok());
        // One rule, one message: no scheme, another scheme, not a URL.
        for bad in [
            "127.0.0.1:9000",
            "ftp://x",
            "not a url",
            "http://",
            "http://a b",
        ] {
            let e = UpstreamSpec::parse(bad).unwrap_err();
            assert!(
                e.contains("an upstream is a URL starting with http:// or https://"),
                "{bad}: {e}"
            );
        }
    }
}
