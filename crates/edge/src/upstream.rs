//! The upstream pool: round robin over Pingora's load balancer, with active
//! health checks (Pingora's TCP check, run by a background service) and
//! passive failure detection (a failed connection takes the upstream out of
//! rotation for `passive_eject`; the next success or health check brings it back).

use crate::config::UpstreamSpec;
use crate::metrics::Metrics;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::{
    health_check::TcpHealthCheck, selection::RoundRobin, Backend, LoadBalancer,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The upstreams of one edge.
pub struct UpstreamPool {
    lb: Arc<LoadBalancer<RoundRobin>>,
    members: Vec<Member>,
    passive_eject_ms: u64,
}

struct Member {
    spec: UpstreamSpec,
    peer: HttpPeer,
    /// Until when (ms since epoch) the member is out of rotation after a failure.
    ejected_until: AtomicU64,
}

/// Which upstreams a request has already tried (bit per member; pools beyond 64 reuse bits).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tried(u64);

impl Tried {
    fn has(&self, i: usize) -> bool {
        self.0 & (1 << (i % 64)) != 0
    }
    /// Marks member `i` as tried.
    pub fn add(&mut self, i: usize) {
        self.0 |= 1 << (i % 64);
    }
}

impl UpstreamPool {
    /// Pingora's round-robin load balancer over `specs`, with a TCP health check
    /// every `health_interval`. Run it as a background service, then hand its
    /// `Arc` to [`UpstreamPool::new`].
    pub fn load_balancer(
        specs: &[UpstreamSpec],
        health_interval: Duration,
    ) -> Result<LoadBalancer<RoundRobin>, String> {
        if specs.is_empty() {
            return Err("at least one upstream is required".into());
        }
        let addrs: Vec<String> = specs.iter().map(|s| s.addr.to_string()).collect();
        let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(addrs.iter().map(String::as_str))
            .map_err(|e| format!("upstreams: {e}"))?;
        let mut hc = TcpHealthCheck::new();
        hc.consecutive_failure = 1;
        hc.consecutive_success = 1;
        lb.set_health_check(hc);
        lb.health_check_frequency = Some(health_interval);
        lb.parallel_health_check = true;
        Ok(lb)
    }

    /// The pool over a running load balancer.
    pub fn new(
        lb: Arc<LoadBalancer<RoundRobin>>,
        specs: &[UpstreamSpec],
        passive_eject: Duration,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> UpstreamPool {
        let members = specs
            .iter()
            .map(|s| {
                let mut peer = HttpPeer::new(s.addr, s.tls, s.sni.clone());
                peer.options.connection_timeout = Some(connect_timeout);
                peer.options.total_connection_timeout = Some(connect_timeout);
                peer.options.read_timeout = Some(io_timeout);
                peer.options.write_timeout = Some(io_timeout);
                peer.options.idle_timeout = Some(Duration::from_secs(60));
                Member {
                    spec: s.clone(),
                    peer,
                    ejected_until: AtomicU64::new(0),
                }
            })
            .collect();
        UpstreamPool {
            lb,
            members,
            passive_eject_ms: passive_eject.as_millis() as u64,
        }
    }

    fn index_of(&self, b: &Backend) -> Option<usize> {
        let addr: Option<SocketAddr> = b.addr.as_inet().copied();
        self.members.iter().position(|m| Some(m.spec.addr) == addr)
    }

    /// Picks the next upstream: round robin over healthy members not yet tried
    /// and not passively ejected; ejected ones only as a last resort.
    pub fn select(&self, tried: &Tried, now_ms: u64) -> Option<(usize, Box<HttpPeer>)> {
        let n = self.members.len();
        let pick = |allow_ejected: bool| {
            self.lb.select_with(b"", n * 2 + 1, |b, healthy| {
                healthy
                    && match self.index_of(b) {
                        Some(i) => {
                            !tried.has(i)
                                && (allow_ejected
                                    || self.members[i].ejected_until.load(Ordering::Relaxed)
                                        <= now_ms)
                        }
                        None => false,
                    }
            })
        };
        let backend = pick(false).or_else(|| pick(true))?;
        let i = self.index_of(&backend)?;
        Some((i, Box::new(self.members[i].peer.clone())))
    }

    /// Records a failed connection or exchange with member `i`.
    pub fn report_failure(&self, i: usize, now_ms: u64, metrics: &Metrics) {
        if let Some(m) = self.members.get(i) {
            m.ejected_until
                .store(now_ms + self.passive_eject_ms, Ordering::Relaxed);
            metrics
                .upstream_failures
                .with_label_values(&[m.spec.url.as_str()])
                .inc();
            tracing::warn!(upstream = %m.spec.url, eject_ms = self.passive_eject_ms, "upstream failed; out of rotation");
        }
    }

    /// Records a successful exchange with member `i` (ends a passive ejection early).
    pub fn report_success(&self, i: usize) {
        if let Some(m) = self.members.get(i) {
            if m.ejected_until.load(Ordering::Relaxed) != 0 {
                m.ejected_until.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Whether another untried member could still serve this request.
    pub fn has_untried(&self, tried: &Tried) -> bool {
        (0..self.members.len()).any(|i| !tried.has(i))
    }

    /// Publishes each member's health to the `palisade_upstream_healthy` gauge.
    pub fn publish_health(&self, metrics: &Metrics, now_ms: u64) {
        for b in self.lb.backends().get_backend().iter() {
            if let Some(i) = self.index_of(b) {
                let m = &self.members[i];
                let up = self.lb.backends().ready(b)
                    && m.ejected_until.load(Ordering::Relaxed) <= now_ms;
                metrics
                    .upstream_healthy
                    .with_label_values(&[m.spec.url.as_str()])
                    .set(i64::from(up));
            }
        }
    }

    /// The URL of member `i`.
    pub fn url(&self, i: usize) -> &str {
        self.members
            .get(i)
            .map(|m| m.spec.url.as_str())
            .unwrap_or("")
    }
}
