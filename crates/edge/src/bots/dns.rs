//! DNS for verified crawlers, off the request path: the request path only
//! queues a lookup ([`palisade_bots::crawlers::Verifier::check`]); the
//! worker ([`run`]) takes the queue, resolves on a blocking thread with the
//! system resolver (reverse, then forward: forward-confirmed reverse DNS)
//! and records the outcome in the verifier's cache. Tests replace the
//! resolver ([`super::BotState::set_resolver`]).

use crate::state::EdgeState;
use palisade_bots::crawlers::{fcrdns, LookupOutcome, ResolveError, Resolver};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// The system's resolver (`getnameinfo` / `getaddrinfo`, so `/etc/hosts`
/// and `nsswitch.conf` apply).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, ResolveError> {
        let sa = SocketAddr::new(ip, 0);
        let (storage, len) = sockaddr_of(&sa);
        let mut host = [0 as libc::c_char; 1025];
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is
        // a writable buffer of the length given; no service is asked for.
        let rc = unsafe {
            libc::getnameinfo(
                std::ptr::addr_of!(storage).cast::<libc::sockaddr>(),
                len,
                host.as_mut_ptr(),
                host.len() as libc::socklen_t,
                std::ptr::null_mut(),
                0,
                libc::NI_NAMEREQD,
            )
        };
        match rc {
            0 => {
                // SAFETY: getnameinfo wrote a NUL-terminated name into `host`.
                let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
                Ok(vec![name.to_string_lossy().into_owned()])
            }
            libc::EAI_NONAME => Ok(Vec::new()),
            other => Err(ResolveError(format!("getnameinfo: error {other}"))),
        }
    }

    fn forward(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        match (name, 0u16).to_socket_addrs() {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            // getaddrinfo's "not found" arrives as an uncategorized error.
            Err(e) if e.to_string().contains("not known") => Ok(Vec::new()),
            Err(e) => Err(ResolveError(e.to_string())),
        }
    }
}

fn sockaddr_of(sa: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe {
                std::ptr::write(
                    std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in>(),
                    sin,
                )
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe {
                std::ptr::write(
                    std::ptr::addr_of_mut!(storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                )
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Lookups resolved per round.
const PER_ROUND: usize = 16;

/// Resolves queued lookups for as long as the edge runs.
pub async fn run(state: Arc<EdgeState>) {
    loop {
        tokio::select! {
            () = state.bots.dns_wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        resolve_round(&state).await;
    }
}

/// Resolves up to [`PER_ROUND`] queued lookups on a blocking thread;
/// how many.
pub async fn resolve_round(state: &Arc<EdgeState>) -> usize {
    let Some(v) = state.bots.verifier() else {
        return 0;
    };
    let lookups = v.verifier.take_pending(PER_ROUND);
    if lookups.is_empty() {
        return 0;
    }
    let n = lookups.len();
    let resolver = state.bots.resolver();
    let st = state.clone();
    let done = tokio::task::spawn_blocking(move || {
        for l in &lookups {
            let outcome = fcrdns(l.ip, &l.domains, resolver.as_ref());
            let label = match outcome {
                LookupOutcome::Verified => "verified",
                LookupOutcome::Failed => "refuted",
                LookupOutcome::Error => "error",
            };
            st.metrics.bots.crawlers.with_label_values(&[label]).inc();
            v.verifier.complete(l, outcome, crate::now_ms());
        }
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "crawler DNS worker failed");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_ip::TrustedProxies;
    use crate::config::Limits;
    use crate::events::EventSink;
    use palisade_bots::crawlers::BotIdentity;
    use palisade_policy::ratelimit::RateLimiter;
    use palisade_policy::Policy;
    use std::collections::HashMap;

    /// A resolver of the test's own: a table, never the network.
    struct Table {
        ptr: HashMap<IpAddr, Vec<String>>,
        a: HashMap<String, Vec<IpAddr>>,
    }

    impl Resolver for Table {
        fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, ResolveError> {
            Ok(self.ptr.get(&ip).cloned().unwrap_or_default())
        }
        fn forward(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
            Ok(self.a.get(name).cloned().unwrap_or_default())
        }
    }

    const POLICY: &str = r#"
[bots]
score = false

[[bots.crawlers]]
name = "Googlebot"
user_agent = "Googlebot"
domains = ["googlebot.com"]
"#;

    #[tokio::test]
    async fn the_worker_verifies_by_forward_confirmed_reverse_dns_off_the_request_path() {
        let st = Arc::new(
            EdgeState::new(
                "test".into(),
                Policy::from_toml(POLICY, "p.toml").unwrap(),
                RateLimiter::new(1000),
                None,
                EventSink::new(None).unwrap(),
                TrustedProxies::new(Vec::new()),
                Limits::default(),
            )
            .unwrap(),
        );
        let real: IpAddr = "66.249.66.1".parse().unwrap();
        let spoof: IpAddr = "203.0.113.9".parse().unwrap();
        st.bots.set_resolver(Arc::new(Table {
            ptr: HashMap::from([
                (real, vec!["crawl-66-249-66-1.googlebot.com.".to_string()]),
                // A PTR the spoofer controls, whose name does not resolve back.
                (spoof, vec!["crawl-1.googlebot.com".to_string()]),
            ]),
            a: HashMap::from([
                ("crawl-66-249-66-1.googlebot.com".to_string(), vec![real]),
                ("crawl-1.googlebot.com".to_string(), vec![real]),
            ]),
        }));
        let ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let v = st
            .bots
            .verifier()
            .expect("a verifier for the policy's crawlers");
        let now = crate::now_ms();
        // The request path only queues: both are unverified claims at first.
        for ip in [real, spoof] {
            assert!(matches!(
                v.verifier.check(ip, ua, now),
                BotIdentity::Unverified { .. }
            ));
        }
        assert_eq!(resolve_round(&st).await, 2);
        assert!(matches!(
            v.verifier.check(real, ua, now),
            BotIdentity::Verified { ref name } if &**name == "Googlebot"
        ));
        assert!(matches!(
            v.verifier.check(spoof, ua, now),
            BotIdentity::Unverified { .. }
        ));
        // Cached: nothing more to resolve.
        assert_eq!(resolve_round(&st).await, 0);
    }
}
