//! Metrics and events of the connection guard: every refused or closed
//! connection is counted by reason (`palisade_connections_dropped_total`),
//! and sampled into security events — at most one event per reason per
//! second, so a flood of connections cannot become a flood of events.

use super::Reason;
use palisade_policy::{CheckKind, SecurityEvent};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The guard's metrics, resolved once.
pub struct ConnMetrics {
    /// Connections refused or closed, by reason.
    pub dropped: IntCounterVec,
    by_reason: [IntCounter; Reason::ALL.len()],
    /// Connections open now (handed to HTTP).
    pub open: IntGauge,
    /// Client addresses (IPv6: /64s) with at least one open connection.
    pub addresses: IntGauge,
    /// Connections served on the quarantine thread (unfamiliar networks).
    pub quarantined: IntCounter,
    /// Quarantined connections closed after a response once their network
    /// became familiar.
    pub promoted: IntCounter,
    /// Networks (/24, /64) the edge tracks for familiarity.
    pub familiar_networks: IntGauge,
    /// New networks not tracked because the familiarity table was full.
    pub familiar_untracked: IntGauge,
    /// The second (since the epoch) of the last event of each reason.
    last_event: [AtomicU64; Reason::ALL.len()],
}

impl ConnMetrics {
    /// Creates the metrics and registers them in `r`.
    pub fn new(r: &Registry) -> Self {
        let dropped = IntCounterVec::new(
            Opts::new(
                "palisade_connections_dropped_total",
                "Client connections refused at accept or closed by a [connections] limit, by reason (banned, per_ip_cap, ban_closed, header_timeout, body_rate, idle_timeout, h2_resets, h2_limits, max_requests)",
            ),
            &["reason"],
        )
        .expect("static metric");
        let open = IntGauge::new(
            "palisade_connections_open",
            "Client connections open (accepted and handed to HTTP)",
        )
        .expect("static metric");
        let addresses = IntGauge::new(
            "palisade_connections_addresses",
            "Client addresses (IPv6: /64 prefixes) with at least one open connection",
        )
        .expect("static metric");
        let quarantined = IntCounter::new(
            "palisade_connections_quarantined_total",
            "Client connections served on the quarantine thread: their network (/24, IPv6 /64) was not familiar yet ([connections] quarantine, familiar_after)",
        )
        .expect("static metric");
        let promoted = IntCounter::new(
            "palisade_connections_promoted_total",
            "Quarantined HTTP/1 connections answered with Connection: close once their network became familiar (the client reconnects onto the edge's threads)",
        )
        .expect("static metric");
        let familiar_networks = IntGauge::new(
            "palisade_connections_familiar_networks",
            "Client networks (/24, IPv6 /64) tracked for familiarity (at most 262144)",
        )
        .expect("static metric");
        let familiar_untracked = IntGauge::new(
            "palisade_connections_familiar_untracked",
            "New client networks not tracked for familiarity because the table was full (they stay unfamiliar), since the start",
        )
        .expect("static metric");
        for m in [
            Box::new(dropped.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(open.clone()),
            Box::new(addresses.clone()),
            Box::new(quarantined.clone()),
            Box::new(promoted.clone()),
            Box::new(familiar_networks.clone()),
            Box::new(familiar_untracked.clone()),
        ] {
            // Names are static and unique, so registration cannot fail.
            let _ = r.register(m);
        }
        let by_reason = Reason::ALL.map(|r| dropped.with_label_values(&[r.as_str()]));
        ConnMetrics {
            dropped,
            by_reason,
            open,
            addresses,
            quarantined,
            promoted,
            familiar_networks,
            familiar_untracked,
            last_event: Default::default(),
        }
    }

    /// Counts one drop; the event to emit, unless one of the same reason
    /// went out this second.
    pub fn count(&self, reason: Reason, ip: IpAddr, node: &str) -> Option<SecurityEvent> {
        let i = reason as usize - 1;
        self.by_reason[i].inc();
        let now = crate::now_ms();
        let sec = now / 1000;
        let last = &self.last_event[i];
        let prev = last.load(Ordering::Relaxed);
        if prev >= sec
            || last
                .compare_exchange(prev, sec, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(SecurityEvent {
            time_ms: now,
            node: node.to_string(),
            request_id: String::new(),
            client_ip: ip,
            check: CheckKind::Connection,
            rule_id: reason.as_str().to_string(),
            action: "block".to_string(),
            simulate: false,
            method: String::new(),
            host: String::new(),
            path: String::new(),
            status: None,
            waf: None,
            bot: None,
        })
    }

    /// How many drops of `reason` were counted.
    pub fn dropped(&self, reason: Reason) -> u64 {
        self.by_reason[reason as usize - 1].get()
    }
}
