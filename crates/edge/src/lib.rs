//! # palisade-edge — the data plane
//!
//! A Pingora reverse proxy that runs Palisade's security pipeline in the
//! request path. It owns: the [`ProxyHttp`](pingora_proxy::ProxyHttp)
//! implementation ([`proxy`]), the upstream pool with active and passive health
//! checking ([`upstream`]), the live state the checks read ([`state`]: a policy
//! snapshot in an `ArcSwap`, the decision table, rate-limit counters), the
//! mapping of verdicts to responses ([`respond`], the only place that writes a
//! synthetic response), metrics ([`metrics`]), security events ([`events`]),
//! GeoIP lookups ([`geoip`]), policy hot reload ([`reload`]), the bridge
//! to the WAF engine ([`waf`]: settings to engine, request to engine input)
//! and connection-level defence ([`conn`]: bans and the per-IP cap at
//! accept, header/body/idle deadlines, HTTP/2 stream and reset limits).
//!
//! What it must not do: decide anything itself. Every decision is made by
//! `palisade_policy::pipeline` (and, after it, by the `palisade_waf` engine);
//! this crate gathers the request facts, calls them, and carries out the verdict.

pub mod bots;
pub mod budget;
pub mod client_ip;
pub mod config;
pub mod conn;
pub mod decision_files;
pub mod events;
pub mod flood;
pub mod forwarded;
pub mod framing;
pub mod geoip;
pub mod globalrate;
pub mod h2c;
pub mod inspect;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod proxy;
pub mod reload;
pub mod request_id;
pub mod respond;
pub mod server;
pub mod spool;
pub mod state;
pub mod sync;
pub mod upstream;
pub mod waf;

pub use config::{EdgeConfig, Limits, TlsConfig, UpstreamSpec};
pub use server::EdgeServer;
pub use state::{ApplyError, EdgeState};

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
