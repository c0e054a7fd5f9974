//! `[connections]`: the limits an edge puts on client connections before and
//! around HTTP — how many one address may hold open, how long a request
//! header and a request body may take, how long a kept-alive connection may
//! stay idle, how many requests it may carry, and how many HTTP/2 streams and
//! stream resets it may open. The edge enforces them (`palisade_edge::conn`);
//! this module only says what they are and validates them.
//!
//! ```toml
//! [connections]
//! max_per_ip = 1000         # concurrent connections per client address (0: no cap)
//! header_timeout = "10s"    # whole request header, first byte to last
//! body_timeout = "20s"      # request body: this long, plus 1 s per body_min_rate bytes
//! body_min_rate = 500       # bytes per second (0: body_timeout alone, no extension)
//! idle_timeout = "60s"      # kept-alive connection with no request in progress
//! max_requests = 1000       # per connection, then `Connection: close` (0: no cap)
//! h2_max_streams = 100      # concurrent HTTP/2 streams per connection
//! h2_max_resets = 100       # stream resets a client may send per h2_reset_window
//! h2_reset_window = "10s"
//! ban_at_accept = true      # refuse banned addresses before TLS and HTTP
//! quarantine = true         # connections of unfamiliar networks on a thread of their own
//! familiar_after = "5s"     # a network (/24, IPv6 /64) is familiar once connected this long ago
//! ```
//!
//! Every key is optional; an absent section means these defaults.

use crate::duration::parse_duration_ms;
use crate::policy::Diagnostics;
use serde::Deserialize;
use toml::Spanned;

/// The connection limits in force (compiled from `[connections]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Concurrent connections one client address may hold (0: no cap).
    pub max_per_ip: u32,
    /// Time from the first byte of a request header to its end.
    pub header_timeout_ms: u64,
    /// Time a request body may take before `body_min_rate` extends it.
    pub body_timeout_ms: u64,
    /// Each `body_min_rate` bytes received extend the body deadline by 1 s (0: no extension).
    pub body_min_rate: u32,
    /// Time a connection may wait for its next request.
    pub idle_timeout_ms: u64,
    /// Requests one connection may carry (0: no cap).
    pub max_requests: u32,
    /// Concurrent HTTP/2 streams per connection (advertised in SETTINGS).
    pub h2_max_streams: u32,
    /// Stream resets (RST_STREAM from the client) allowed per window; one more closes the connection.
    pub h2_max_resets: u32,
    /// The window of `h2_max_resets`.
    pub h2_reset_window_ms: u64,
    /// Whether a banned socket peer is refused when its connection is accepted.
    pub ban_at_accept: bool,
    /// Whether connections from networks the edge does not know yet are
    /// served on a thread of their own, so that a flood of new sources
    /// cannot delay the clients it already knew (`palisade_edge::conn`).
    pub quarantine: bool,
    /// A network (IPv4 /24, IPv6 /64) is familiar once its first
    /// connection is at least this old.
    pub familiar_after_ms: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_per_ip: 1000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 20_000,
            body_min_rate: 500,
            idle_timeout_ms: 60_000,
            max_requests: 1000,
            h2_max_streams: 100,
            h2_max_resets: 100,
            h2_reset_window_ms: 10_000,
            ban_at_accept: true,
            quarantine: true,
            familiar_after_ms: 5_000,
        }
    }
}

/// `[connections]` as the file gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnections {
    #[serde(default)]
    max_per_ip: Option<Spanned<i64>>,
    #[serde(default)]
    header_timeout: Option<Spanned<String>>,
    #[serde(default)]
    body_timeout: Option<Spanned<String>>,
    #[serde(default)]
    body_min_rate: Option<Spanned<i64>>,
    #[serde(default)]
    idle_timeout: Option<Spanned<String>>,
    #[serde(default)]
    max_requests: Option<Spanned<i64>>,
    #[serde(default)]
    h2_max_streams: Option<Spanned<i64>>,
    #[serde(default)]
    h2_max_resets: Option<Spanned<i64>>,
    #[serde(default)]
    h2_reset_window: Option<Spanned<String>>,
    #[serde(default)]
    ban_at_accept: Option<bool>,
    #[serde(default)]
    quarantine: Option<bool>,
    #[serde(default)]
    familiar_after: Option<Spanned<String>>,
}

/// Bounds of the duration keys: at least 100 ms (a smaller value would
/// close legitimate connections), at most a day.
const MIN_MS: u64 = 100;
const MAX_MS: u64 = 86_400_000;

impl RawConnections {
    /// Validates the section; every problem goes to `diag`. None when any was found.
    pub(crate) fn compile(&self, diag: &mut Diagnostics<'_>) -> Option<ConnectionLimits> {
        let before = diag.len();
        let mut c = ConnectionLimits::default();
        let int = |diag: &mut Diagnostics<'_>,
                   v: &Option<Spanned<i64>>,
                   name: &str,
                   min: i64,
                   max: i64,
                   into: &mut u32| {
            if let Some(v) = v {
                let n = *v.get_ref();
                if (min..=max).contains(&n) {
                    *into = n as u32;
                } else {
                    diag.span(
                        v.span(),
                        format!("[connections]: {name} must be between {min} and {max}, not {n}"),
                    );
                }
            }
        };
        int(
            diag,
            &self.max_per_ip,
            "max_per_ip",
            0,
            1_000_000,
            &mut c.max_per_ip,
        );
        int(
            diag,
            &self.body_min_rate,
            "body_min_rate",
            0,
            1 << 30,
            &mut c.body_min_rate,
        );
        int(
            diag,
            &self.max_requests,
            "max_requests",
            0,
            100_000_000,
            &mut c.max_requests,
        );
        int(
            diag,
            &self.h2_max_streams,
            "h2_max_streams",
            1,
            10_000,
            &mut c.h2_max_streams,
        );
        int(
            diag,
            &self.h2_max_resets,
            "h2_max_resets",
            1,
            1_000_000,
            &mut c.h2_max_resets,
        );
        let dur = |diag: &mut Diagnostics<'_>,
                   v: &Option<Spanned<String>>,
                   name: &str,
                   into: &mut u64| {
            if let Some(v) = v {
                match parse_duration_ms(v.get_ref()) {
                    Ok(ms) if (MIN_MS..=MAX_MS).contains(&ms) => *into = ms,
                    Ok(_) => diag.span(
                        v.span(),
                        format!("[connections]: {name} must be between 100ms and 1d"),
                    ),
                    Err(e) => diag.span(v.span(), format!("[connections]: {name}: {e}")),
                }
            }
        };
        dur(
            diag,
            &self.header_timeout,
            "header_timeout",
            &mut c.header_timeout_ms,
        );
        dur(
            diag,
            &self.body_timeout,
            "body_timeout",
            &mut c.body_timeout_ms,
        );
        dur(
            diag,
            &self.idle_timeout,
            "idle_timeout",
            &mut c.idle_timeout_ms,
        );
        dur(
            diag,
            &self.h2_reset_window,
            "h2_reset_window",
            &mut c.h2_reset_window_ms,
        );
        dur(
            diag,
            &self.familiar_after,
            "familiar_after",
            &mut c.familiar_after_ms,
        );
        if let Some(b) = self.ban_at_accept {
            c.ban_at_accept = b;
        }
        if let Some(q) = self.quarantine {
            c.quarantine = q;
        }
        (diag.len() == before).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    #[test]
    fn defaults_without_the_section() {
        let p = Policy::from_toml("", "p.toml").unwrap();
        assert_eq!(p.connections, super::ConnectionLimits::default());
        assert_eq!(p.connections.max_per_ip, 1000);
        assert_eq!(p.connections.header_timeout_ms, 10_000);
        assert!(p.connections.ban_at_accept);
    }

    #[test]
    fn values_are_read() {
        let p = Policy::from_toml(
            "[connections]\nmax_per_ip = 3\nheader_timeout = \"2s\"\nbody_timeout = \"1s\"\nbody_min_rate = 0\nidle_timeout = \"5m\"\nmax_requests = 0\nh2_max_streams = 10\nh2_max_resets = 7\nh2_reset_window = \"1m\"\nban_at_accept = false\nquarantine = false\nfamiliar_after = \"30s\"\n",
            "p.toml",
        )
        .unwrap();
        let c = p.connections;
        assert_eq!(
            (
                c.max_per_ip,
                c.header_timeout_ms,
                c.body_timeout_ms,
                c.body_min_rate
            ),
            (3, 2000, 1000, 0)
        );
        assert_eq!((c.idle_timeout_ms, c.max_requests), (300_000, 0));
        assert_eq!(
            (c.h2_max_streams, c.h2_max_resets, c.h2_reset_window_ms),
            (10, 7, 60_000)
        );
        assert!(!c.ban_at_accept);
        assert!(!c.quarantine);
        assert_eq!(c.familiar_after_ms, 30_000);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_line() {
        let src = "[connections]\nmax_per_ip = -1\nheader_timeout = \"soon\"\nidle_timeout = \"1ms\"\nh2_max_streams = 0\n";
        let e = Policy::from_toml(src, "p.toml").unwrap_err().to_string();
        for (line, what) in [
            (2, "max_per_ip must be between 0 and"),
            (3, "header_timeout"),
            (4, "idle_timeout must be between 100ms and 1d"),
            (5, "h2_max_streams must be between 1 and"),
        ] {
            assert!(e.contains(&format!("p.toml:{line}:")), "{line} in {e}");
            assert!(e.contains(what), "{what} in {e}");
        }
        let e = Policy::from_toml("[connections]\nmax_conns = 1\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_conns"), "{e}");
    }
}
