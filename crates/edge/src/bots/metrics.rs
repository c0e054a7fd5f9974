//! The bot defence's metrics.

use crate::metrics::reg;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Registered once per edge.
pub struct BotMetrics {
    /// Clearance cookies checked, by result (`valid`, or why refused).
    pub clearances: IntCounterVec,
    /// Challenges answered, by kind (`page`, `json`) and check.
    pub challenges: IntCounterVec,
    /// Solved challenges posted back, by result (`cleared`, or why refused).
    pub solved: IntCounterVec,
    /// Requests scored, by band of the bot score.
    pub scored: IntCounterVec,
    /// Verified-crawler checks, by outcome.
    pub crawlers: IntCounterVec,
    /// Failed logins seen by this node.
    pub login_failures: IntCounterVec,
    /// Login escalations (decisions issued by this node, usernames marked), by kind and action.
    pub login_escalations: IntCounterVec,
    /// Sizes of the bot defence's tables.
    pub tables: IntGaugeVec,
    /// Other nodes whose behaviour statistics this node merged.
    pub peers: IntGauge,
}

impl BotMetrics {
    /// Registers the metrics in `r`.
    pub fn new(r: &Registry) -> BotMetrics {
        let vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("static metric"),
            )
        };
        BotMetrics {
            clearances: vec(
                "palisade_bot_clearances_total",
                "Clearance cookies checked, by result (valid, or the reason it was refused)",
                &["result"],
            ),
            challenges: vec(
                "palisade_bot_challenges_total",
                "Challenges answered, by kind (page, json) and the check that asked for it",
                &["kind", "check"],
            ),
            solved: vec(
                "palisade_bot_challenges_solved_total",
                "Solved challenges posted back, by result (cleared, or the reason it was refused)",
                &["result"],
            ),
            scored: vec(
                "palisade_bot_scored_total",
                "Requests scored, by bot score band (automated 1-29, likely_automated 30-49, likely_human 50-79, human 80-99)",
                &["band"],
            ),
            crawlers: vec(
                "palisade_bot_crawler_lookups_total",
                "Reverse-DNS verifications of claimed crawlers, by outcome",
                &["outcome"],
            ),
            login_failures: vec(
                "palisade_login_failures_total",
                "Failed logins at declared login endpoints seen by this node, by endpoint path",
                &["path"],
            ),
            login_escalations: vec(
                "palisade_login_escalations_total",
                "Account-protection escalations: decisions issued by this node (source) and usernames marked (username), by action",
                &["kind", "action"],
            ),
            tables: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "palisade_bot_table_entries",
                        "Entries of the bot defence's tables (clients, clearance_cache, crawler_cache, login_sources, login_usernames)",
                    ),
                    &["table"],
                )
                .expect("static metric"),
            ),
            peers: reg(
                r,
                IntGauge::new(
                    "palisade_bot_peers",
                    "Other nodes whose behaviour statistics this node merged",
                )
                .expect("static metric"),
            ),
        }
    }
}
