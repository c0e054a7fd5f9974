//! Escalations: a source that keeps getting blocked gets a decision.
//!
//! `[[escalations]]` in the policy: when one node sees a source (an address,
//! its /24 (IPv6: /64), or its AS) trigger `threshold` blocks of the listed
//! kinds within `window`, it issues a decision that every node enforces.
//! Counting uses the rate limiter's sliding window with a mitigation timeout
//! of `duration`, so a source escalates once per `duration`, not once per block.

use crate::decisions::{Decision, DecisionAction, Scope};
use crate::ratelimit::{LimitSpec, RateLimiter, RateOutcome};
use crate::request::Geo;
use crate::verdict::CheckKind;
use crate::UnixMillis;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

/// What an escalation counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client address.
    Ip,
    /// The client's /24 (IPv4) or /64 (IPv6) network.
    Cidr,
    /// The client's autonomous system (needs GeoIP ASN data).
    Asn,
}

impl Source {
    /// Parses `ip`, `cidr` (alias `cidr24`) or `asn`.
    pub fn parse(s: &str) -> Result<Source, String> {
        match s {
            "ip" => Ok(Source::Ip),
            "cidr" | "cidr24" => Ok(Source::Cidr),
            "asn" => Ok(Source::Asn),
            other => Err(format!(
                "unknown source `{other}` (expected ip, cidr or asn)"
            )),
        }
    }

    /// The decision scope and value for a client; None when unknown (no ASN).
    pub fn key(self, ip: IpAddr, geo: Geo) -> Option<(Scope, String)> {
        match self {
            // IPv4-mapped IPv6 is the IPv4 client (as decisions normalize it).
            Source::Ip => Some((Scope::Ip, ip.to_canonical().to_string())),
            Source::Cidr => {
                let net = match ip {
                    IpAddr::V4(v4) => ipnet::IpNet::from(ipnet::Ipv4Net::new(v4, 24).ok()?.trunc()),
                    IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                        Some(v4) => ipnet::IpNet::from(ipnet::Ipv4Net::new(v4, 24).ok()?.trunc()),
                        None => ipnet::IpNet::from(ipnet::Ipv6Net::new(v6, 64).ok()?.trunc()),
                    },
                };
                Some((Scope::Cidr, net.to_string()))
            }
            Source::Asn => geo.asn.map(|a| (Scope::Asn, a.to_string())),
        }
    }
}

/// One `[[escalations]]` entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Unique id.
    pub id: String,
    /// What is counted per.
    pub source: Source,
    /// Which blocks count.
    pub kinds: Vec<CheckKind>,
    /// Blocks within `window_ms` that trigger the decision.
    pub threshold: u64,
    /// The counting window.
    pub window_ms: u64,
    /// The decision's action.
    pub action: DecisionAction,
    /// The decision's duration.
    pub duration_ms: u64,
    /// Issue simulated decisions (logged by every node, not enforced).
    pub simulate: bool,
}

/// Counts blocks per (escalation, source); bounded memory.
#[derive(Debug)]
pub struct EscalationTracker {
    counters: RateLimiter,
    hasher: ahash::RandomState,
}

impl Default for EscalationTracker {
    fn default() -> Self {
        Self::new(200_000)
    }
}

impl EscalationTracker {
    /// At most about `max_keys` sources tracked.
    pub fn new(max_keys: usize) -> Self {
        EscalationTracker {
            counters: RateLimiter::new(max_keys),
            hasher: ahash::RandomState::with_seeds(
                0x5eed_e5ca,
                0x1a7e_0001,
                0xdec1_5105,
                0x0b10_c4ed,
            ),
        }
    }

    /// Records a block of `kind` for the client; returns the decisions to issue
    /// (each escalation fires once per `duration`, at its `threshold`-th block).
    pub fn observe(
        &self,
        escalations: &[Escalation],
        kind: CheckKind,
        ip: IpAddr,
        geo: Geo,
        node: &str,
        now: UnixMillis,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        for esc in escalations.iter().filter(|e| e.kinds.contains(&kind)) {
            let Some((scope, value)) = esc.source.key(ip, geo) else {
                continue;
            };
            let mut h = self.hasher.build_hasher();
            esc.id.hash(&mut h);
            value.hash(&mut h);
            let spec = LimitSpec {
                requests: esc.threshold.saturating_sub(1),
                period_ms: esc.window_ms,
                mitigation_timeout_ms: esc.duration_ms.max(1),
            };
            // The hit that starts the mitigation is the threshold-th block: its
            // retry-after is the whole timeout. Later hits in the block are quieter.
            if let RateOutcome::Limited { retry_after_ms } =
                self.counters.hit(h.finish(), &spec, now)
            {
                if retry_after_ms == spec.mitigation_timeout_ms {
                    out.push(Decision {
                        id: 0,
                        scope,
                        value,
                        action: esc.action,
                        reason: format!(
                            "escalation {}: {} blocks within {}",
                            esc.id,
                            esc.threshold,
                            crate::duration::format_duration_ms(esc.window_ms)
                        ),
                        origin: format!("escalation:{}@{node}", esc.id),
                        simulated: esc.simulate,
                        created_at: now,
                        expires_at: Some(now.saturating_add(esc.duration_ms)),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(source: Source, threshold: u64) -> Escalation {
        Escalation {
            id: "e".into(),
            source,
            kinds: vec![CheckKind::Rule, CheckKind::RateLimit],
            threshold,
            window_ms: 60_000,
            action: DecisionAction::Ban,
            duration_ms: 600_000,
            simulate: false,
        }
    }

    #[test]
    fn fires_once_at_the_threshold() {
        let t = EscalationTracker::new(1000);
        let e = [esc(Source::Ip, 3)];
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(t
            .observe(&e, CheckKind::Rule, ip, Geo::default(), "n1", 1)
            .is_empty());
        assert!(t
            .observe(&e, CheckKind::RateLimit, ip, Geo::default(), "n1", 2)
            .is_empty());
        let d = t.observe(&e, CheckKind::Rule, ip, Geo::default(), "n1", 3);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].scope, d[0].value.as_str()),
            (Scope::Ip, "203.0.113.9")
        );
        assert_eq!(d[0].expires_at, Some(3 + 600_000));
        assert!(d[0].origin.contains("n1"));
        // Further blocks within the duration do not fire again.
        assert!(t
            .observe(&e, CheckKind::Rule, ip, Geo::default(), "n1", 4)
            .is_empty());
        // Another source counts separately; decisions (not listed) never count.
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        assert!(t
            .observe(&e, CheckKind::Decision, other, Geo::default(), "n1", 5)
            .is_empty());
    }

    #[test]
    fn cidr_and_asn_sources() {
        let ip: IpAddr = "198.51.100.77".parse().unwrap();
        assert_eq!(
            Source::Cidr.key(ip, Geo::default()),
            Some((Scope::Cidr, "198.51.100.0/24".into()))
        );
        let v6: IpAddr = "2001:db8:1:2:3::4".parse().unwrap();
        assert_eq!(
            Source::Cidr.key(v6, Geo::default()),
            Some((Scope::Cidr, "2001:db8:1:2::/64".into()))
        );
        assert_eq!(Source::Asn.key(ip, Geo::default()), None);
        let geo = Geo {
            country: None,
            asn: Some(64496),
        };
        assert_eq!(Source::Asn.key(ip, geo), Some((Scope::Asn, "64496".into())));
        let t = EscalationTracker::new(1000);
        let e = [esc(Source::Cidr, 2)];
        assert!(t
            .observe(
                &e,
                CheckKind::Rule,
                "198.51.100.1".parse().unwrap(),
                Geo::default(),
                "n",
                1
            )
            .is_empty());
        assert_eq!(
            t.observe(
                &e,
                CheckKind::Rule,
                "198.51.100.2".parse().unwrap(),
                Geo::default(),
                "n",
                2
            )
            .len(),
            1
        );
    }
}
