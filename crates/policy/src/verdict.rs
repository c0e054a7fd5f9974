//! Verdicts: what a check decided about a request. A block is a value, never an error.

use serde::{Deserialize, Serialize};

/// The action a rule, a rate limit or a decision asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Deny the request (403 for rules and decisions, 429 for rate limits).
    Block,
    /// Record a security event and go on with the next check.
    Log,
    /// Let the request through and skip every later check.
    Allow,
    /// Skip the remaining custom rules; later phases still run.
    Skip,
    /// Ask for a proof of work (an interstitial page) unless the client
    /// holds a valid clearance; a cleared client goes on.
    Challenge,
}

impl Action {
    /// The name used in policy files and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Log => "log",
            Action::Allow => "allow",
            Action::Skip => "skip",
            Action::Challenge => "challenge",
        }
    }
}

/// Which stage of the pipeline produced a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The allowlist (`[allowlist]` in the policy).
    Allowlist,
    /// Active decisions (bans by ip, cidr, country, asn).
    Decision,
    /// Rate limits.
    RateLimit,
    /// Custom rules.
    Rule,
    /// The WAF (OWASP Core Rule Set), after custom rules.
    Waf,
    /// Connection limits (`[connections]`): a connection refused or closed
    /// before or around HTTP; the rule id is the reason.
    Connection,
}

impl CheckKind {
    /// The label used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Allowlist => "allowlist",
            CheckKind::Decision => "decision",
            CheckKind::RateLimit => "rate_limit",
            CheckKind::Rule => "rule",
            CheckKind::Waf => "waf",
            CheckKind::Connection => "connection",
        }
    }
}

/// The outcome of the security pipeline (or one check) for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No opinion: run the next check, then proxy.
    Continue,
    /// Proxy the request and skip every later check.
    Allow,
    /// Answer with `status` instead of proxying. `retry_after_secs` is set for rate limits.
    Block {
        /// The HTTP status to answer with.
        status: u16,
        /// Seconds for a `Retry-After` header.
        retry_after_secs: Option<u64>,
    },
    /// Answer with the challenge (a page for browsers, JSON otherwise) with
    /// `status` (403 for rules and decisions, 429 for rate limits).
    Challenge {
        /// The HTTP status of the challenge answer.
        status: u16,
    },
}

impl Verdict {
    /// A 403 block.
    pub const FORBIDDEN: Verdict = Verdict::Block {
        status: 403,
        retry_after_secs: None,
    };

    /// The status of a 403 block or challenge.
    pub const FORBIDDEN_STATUS: u16 = 403;

    /// Whether the pipeline stops here.
    pub fn is_final(&self) -> bool {
        !matches!(self, Verdict::Continue)
    }

    /// The label used in metrics and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Continue => "continue",
            Verdict::Allow => "allow",
            Verdict::Block { .. } => "block",
            Verdict::Challenge { .. } => "challenge",
        }
    }
}
