//! Prometheus metrics of the edge. Handles for the hot path are resolved once,
//! so recording a request costs a few atomic operations.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the edge exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by status class (`2xx` … `5xx`).
    pub requests: IntCounterVec,
    pub(crate) requests_by_class: [IntCounter; 6],
    /// Verdicts by check, rule id, verdict and simulate flag.
    pub verdicts: IntCounterVec,
    /// Time spent in the security pipeline.
    pub pipeline_seconds: Histogram,
    /// Time from request start to the end of logging.
    pub request_seconds: Histogram,
    /// Upstream health (1 healthy, 0 not) by upstream URL.
    pub upstream_healthy: IntGaugeVec,
    /// Upstream failures observed in the request path, by upstream URL.
    pub upstream_failures: IntCounterVec,
    /// Policy reloads by result (`ok`, `invalid`, `unchanged`).
    pub policy_reloads: IntCounterVec,
    /// Rules in the active policy.
    pub policy_rules: IntGauge,
    /// Active decisions.
    pub decisions_active: IntGauge,
    /// Decision tables rebuilt from the whole log (the log no longer held
    /// what this edge missed).
    pub decision_resyncs: IntCounter,
    /// Escalation decisions not issued because the table was full.
    pub escalations_dropped: IntCounter,
    /// Flood detection (`crate::flood`).
    pub flood: crate::flood::FloodMetrics,
    /// The bot defence (`[bots]`).
    pub bots: crate::bots::metrics::BotMetrics,
    /// Rate-limit counters in memory.
    pub ratelimit_keys: IntGauge,
    /// Rate-limit counters dropped because the table was full.
    pub ratelimit_evictions: IntGauge,
    /// The global rate limits (`crate::globalrate`).
    pub global_rate: crate::globalrate::GlobalRateMetrics,
    /// Requests rejected for malformed or oversized input, by reason.
    pub bad_requests: IntCounterVec,
    /// Security events dropped because the event writer fell behind.
    pub events_dropped: IntCounter,
    /// Bytes of security events spooled and not yet acknowledged by the mesh.
    pub events_spooled_bytes: IntGauge,
    /// Requests inspected by the WAF, by result (`pass`, `block`, `detect`).
    pub waf_requests: IntCounterVec,
    pub(crate) waf_results: [IntCounter; 3],
    /// Time spent in the WAF engine per request.
    pub waf_seconds: Histogram,
    /// WAF rule matches, by CRS rule id (only ids that matched appear).
    pub waf_rule_matches: IntCounterVec,
    /// Requests whose body the WAF did not inspect, by reason.
    pub waf_body_uninspected: IntCounterVec,
    /// Responses whose body the WAF did not inspect, by reason.
    pub waf_response_uninspected: IntCounterVec,
    /// Responses the WAF stopped, by phase: `headers` (replaced by the block
    /// page) or `body` (cut off: connection closed or stream reset).
    pub waf_response_blocked: IntCounterVec,
    /// Bytes held back for inspection right now, by `kind` (request, response).
    pub body_buffer_bytes: IntGaugeVec,
    /// Bodies that had to wait for room under the buffer cap, by kind.
    pub body_buffer_waits: IntCounterVec,
    /// Rules in the running WAF (0: no WAF).
    pub waf_rules: IntGauge,
    /// Requests the WAF's positive model learned from.
    pub model_learned: IntCounter,
    /// Requests whose CRS lists the positive model extended or replaced.
    pub model_applied: IntCounter,
    /// Routes in the fleet's merged positive model.
    pub model_routes: IntGauge,
    /// Other nodes whose positive model is merged into this node's view.
    pub model_peers: IntGauge,
    /// Failed attempts to share the positive model over the mesh.
    pub model_share_failures: IntCounter,
    /// Lazy-DFA searches of the WAF that gave up (cache thrashing on hostile
    /// input) and fell back to the linear NFA simulation; process-wide.
    pub waf_dfa_giveups: IntGauge,
    pub waf_backtrack_limit_hits: IntGauge,
    /// Values Palisade's detectors inspected / found to be attacks, by
    /// detector (traversal, sql, js, shell); process-wide, since start.
    pub waf_detector_calls: IntGaugeVec,
    pub waf_detector_findings: IntGaugeVec,
    /// The WAF's value memo (`palisade_waf::memo`): values found in it, not
    /// found, and dropped to stay under its cap; process-wide.
    pub waf_memo_hits: IntGauge,
    pub waf_memo_misses: IntGauge,
    pub waf_memo_evictions: IntGauge,
    /// Connection limits (`crate::conn`): drops by reason, open connections.
    pub conn: crate::conn::metrics::ConnMetrics,
}

/// The result of a WAF inspection, as counted in `palisade_waf_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafResult {
    /// Under the threshold.
    Pass,
    /// Blocked.
    Block,
    /// Would have been blocked (detect mode).
    Detect,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    // Names are static and unique, so registration cannot fail.
    let _ = r.register(Box::new(m.clone()));
    m
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let latency_buckets = vec![
            0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let requests = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "palisade_requests_total",
                    "Requests handled, by status class",
                ),
                &["class"],
            )
            .expect("static metric"),
        );
        let requests_by_class =
            ["1xx", "2xx", "3xx", "4xx", "5xx", "other"].map(|c| requests.with_label_values(&[c]));
        let waf_requests = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "palisade_waf_requests_total",
                    "Requests inspected by the WAF, by result (pass, block, detect)",
                ),
                &["result"],
            )
            .expect("static metric"),
        );
        let waf_results = ["pass", "block", "detect"].map(|c| waf_requests.with_label_values(&[c]));
        let waf_seconds = reg(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "palisade_waf_seconds",
                    "Time spent in the WAF engine per request (body reading excluded)",
                )
                .buckets(latency_buckets.clone()),
            )
            .expect("static metric"),
        );
        Metrics {
            waf_requests,
            waf_results,
            waf_seconds,
            waf_rule_matches: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_waf_rule_matches_total",
                        "WAF rule matches, by CRS rule id",
                    ),
                    &["rule_id"],
                )
                .expect("static metric"),
            ),
            waf_body_uninspected: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_waf_body_uninspected_total",
                        "Request bodies the WAF did not inspect, or inspected only in part, because the policy said so (disabled: a limit of 0; prefix: inspect_prefix past the limit), by reason",
                    ),
                    &["reason"],
                )
                .expect("static metric"),
            ),
            waf_response_uninspected: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_waf_response_uninspected_total",
                        "Responses whose body the WAF did not inspect, by reason (type, encoding, status, buffer_full, disabled)",
                    ),
                    &["reason"],
                )
                .expect("static metric"),
            ),
            waf_response_blocked: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_waf_response_blocked_total",
                        "Responses stopped by the WAF, by phase (headers: replaced by 403; body: cut off)",
                    ),
                    &["phase"],
                )
                .expect("static metric"),
            ),
            body_buffer_bytes: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "palisade_body_buffer_bytes",
                        "Body bytes held back for inspection, by kind (request, response)",
                    ),
                    &["kind"],
                )
                .expect("static metric"),
            ),
            body_buffer_waits: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_body_buffer_waits_total",
                        "Request bodies that waited for room under the buffer cap",
                    ),
                    &["kind"],
                )
                .expect("static metric"),
            ),
            waf_rules: reg(
                &r,
                IntGauge::new("palisade_waf_rules", "Rules in the running WAF (0: none)")
                    .expect("static metric"),
            ),
            model_learned: reg(
                &r,
                IntCounter::new(
                    "palisade_waf_model_learned_total",
                    "Requests the WAF's positive model learned from (passed every check)",
                )
                .expect("static metric"),
            ),
            model_applied: reg(
                &r,
                IntCounter::new(
                    "palisade_waf_model_applied_total",
                    "Requests whose CRS allowed lists the positive model extended or replaced",
                )
                .expect("static metric"),
            ),
            model_routes: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_model_routes",
                    "Routes in the fleet's merged positive model",
                )
                .expect("static metric"),
            ),
            model_peers: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_model_peers",
                    "Other nodes whose positive model this node merged",
                )
                .expect("static metric"),
            ),
            model_share_failures: reg(
                &r,
                IntCounter::new(
                    "palisade_waf_model_share_failures_total",
                    "Failed attempts to share or fetch the positive model over the mesh",
                )
                .expect("static metric"),
            ),
            waf_backtrack_limit_hits: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_backtrack_limit_hits",
                    "WAF regex searches on the backtracking engine (PCRE-only patterns) stopped at their backtrack limit and counted as no match, since start",
                )
                .expect("static metric"),
            ),
            waf_detector_calls: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "palisade_waf_detector_calls",
                        "Values Palisade's WAF detectors inspected, by detector, since start",
                    ),
                    &["detector"],
                )
                .expect("static metric"),
            ),
            waf_detector_findings: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "palisade_waf_detector_findings",
                        "Values Palisade's WAF detectors found to be an attack, by detector, since start",
                    ),
                    &["detector"],
                )
                .expect("static metric"),
            ),
            waf_memo_hits: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_memo_hits",
                    "Request values the WAF's value memo knew (checks that found nothing in them before were skipped), since start",
                )
                .expect("static metric"),
            ),
            waf_memo_misses: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_memo_misses",
                    "Request values the WAF's value memo did not know (every check ran), since start",
                )
                .expect("static metric"),
            ),
            waf_memo_evictions: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_memo_evictions",
                    "Values dropped from the WAF's value memo to stay under its cap, since start",
                )
                .expect("static metric"),
            ),
            waf_dfa_giveups: reg(
                &r,
                IntGauge::new(
                    "palisade_waf_dfa_giveups",
                    "WAF pattern searches whose lazy DFA gave up (hostile input) and fell back to the linear NFA, since start",
                )
                .expect("static metric"),
            ),
            requests,
            requests_by_class,
            verdicts: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_verdicts_total",
                        "Check matches, by check, rule or rate-limit id (\"decision\" for every decision: their ids are in events), verdict and simulate flag",
                    ),
                    &["check", "id", "verdict", "simulate"],
                )
                .expect("static metric"),
            ),
            pipeline_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "palisade_pipeline_seconds",
                        "Time spent in the security pipeline",
                    )
                    .buckets(latency_buckets.clone()),
                )
                .expect("static metric"),
            ),
            request_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "palisade_request_seconds",
                        "Whole request time, from request header to end of response",
                    )
                    .buckets(latency_buckets),
                )
                .expect("static metric"),
            ),
            upstream_healthy: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "palisade_upstream_healthy",
                        "1 when the upstream is in rotation",
                    ),
                    &["upstream"],
                )
                .expect("static metric"),
            ),
            upstream_failures: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_upstream_failures_total",
                        "Failed upstream connections or exchanges seen in the request path",
                    ),
                    &["upstream"],
                )
                .expect("static metric"),
            ),
            policy_reloads: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_policy_reloads_total",
                        "Policy reload attempts, by result",
                    ),
                    &["result"],
                )
                .expect("static metric"),
            ),
            policy_rules: reg(
                &r,
                IntGauge::new("palisade_policy_rules", "Custom rules in the active policy")
                    .expect("static metric"),
            ),
            flood: crate::flood::FloodMetrics::new(&r),
            bots: crate::bots::metrics::BotMetrics::new(&r),
            escalations_dropped: reg(
                &r,
                IntCounter::new(
                    "palisade_escalations_dropped_total",
                    "Escalation decisions not issued because the decision table was full (--max-decisions)",
                )
                .expect("static metric"),
            ),
            decisions_active: reg(
                &r,
                IntGauge::new("palisade_decisions_active", "Active decisions")
                    .expect("static metric"),
            ),
            decision_resyncs: reg(
                &r,
                IntCounter::new(
                    "palisade_decision_resyncs_total",
                    "Decision tables rebuilt from the whole log (this edge was away past the tombstone retention, or the log restarted)",
                )
                .expect("static metric"),
            ),
            ratelimit_keys: reg(
                &r,
                IntGauge::new("palisade_ratelimit_keys", "Rate-limit counters in memory")
                    .expect("static metric"),
            ),
            ratelimit_evictions: reg(
                &r,
                IntGauge::new(
                    "palisade_ratelimit_evictions",
                    "Rate-limit counters evicted because the table was full (since start)",
                )
                .expect("static metric"),
            ),
            global_rate: crate::globalrate::GlobalRateMetrics::new(&r),
            bad_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "palisade_bad_requests_total",
                        "Requests rejected for malformed or oversized input, by reason",
                    ),
                    &["reason"],
                )
                .expect("static metric"),
            ),
            events_dropped: reg(
                &r,
                IntCounter::new(
                    "palisade_events_dropped_total",
                    "Security events dropped because the writer fell behind",
                )
                .expect("static metric"),
            ),
            events_spooled_bytes: reg(
                &r,
                IntGauge::new(
                    "palisade_events_spooled_bytes",
                    "Bytes of security events on disk not yet acknowledged by the mesh",
                )
                .expect("static metric"),
            ),
            conn: crate::conn::metrics::ConnMetrics::new(&r),
            registry: r,
        }
    }

    /// Counts one finished request by its status.
    pub fn count_status(&self, status: u16) {
        let idx = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.requests_by_class[idx].inc();
    }

    /// Counts one WAF inspection.
    pub fn count_waf(&self, result: WafResult) {
        let idx = match result {
            WafResult::Pass => 0,
            WafResult::Block => 1,
            WafResult::Detect => 2,
        };
        self.waf_results[idx].inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let malformed =
            crate::logging::MALFORMED_REQUESTS.load(std::sync::atomic::Ordering::Relaxed);
        let c = self.bad_requests.with_label_values(&["malformed"]);
        c.inc_by(malformed.saturating_sub(c.get()));
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
