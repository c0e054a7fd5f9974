//! The security pipeline: the fixed order in which checks run on a request.
//!
//! ```text
//! allowlist → active decisions → rate limits → custom rules → (proxy)
//! ```
//!
//! Each stage yields a [`Verdict`]; the first final verdict (allow or block)
//! ends the pipeline. Every match — enforced or simulated — is reported to the
//! caller's `on_match` callback, which turns it into metrics and an event. The
//! pipeline itself allocates nothing.

use crate::decisions::{DecisionAction, DecisionSet};
use crate::policy::Policy;
use crate::ratelimit::{rate_key, RateLimiter, RateOutcome};
use crate::request::Request;
use crate::verdict::{Action, CheckKind, Verdict};
use crate::UnixMillis;

/// One check that matched a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'p> {
    /// Which stage matched.
    pub check: CheckKind,
    /// The rule or limit id, or the decision id (as text) for decisions.
    pub id: &'p str,
    /// What the check asks for.
    pub action: Action,
    /// Shadow mode: reported, not enforced.
    pub simulate: bool,
    /// The verdict this match produced (Continue when simulated or log-only).
    pub verdict: Verdict,
}

/// The state the checks read besides the policy.
pub struct Checks<'a> {
    /// The compiled policy.
    pub policy: &'a Policy,
    /// Active decisions.
    pub decisions: &'a DecisionSet,
    /// Rate-limit counters.
    pub limiter: &'a RateLimiter,
}

impl Checks<'_> {
    /// Runs every check in order. `now` is the request time.
    pub fn evaluate(
        &self,
        req: &Request<'_>,
        now: UnixMillis,
        on_match: &mut dyn FnMut(&Match<'_>),
    ) -> Verdict {
        // 1. Allowlist.
        if let Some(allow) = &self.policy.allowlist {
            if allow.eval(req) {
                on_match(&Match {
                    check: CheckKind::Allowlist,
                    id: "allowlist",
                    action: Action::Allow,
                    simulate: false,
                    verdict: Verdict::Allow,
                });
                return Verdict::Allow;
            }
        }

        // 2. Active decisions.
        if !self.decisions.is_empty() {
            if let Some(d) = self.decisions.lookup(req.client_ip, req.geo, now) {
                let (action, enforced) = match d.action {
                    DecisionAction::Ban => (Action::Block, Verdict::FORBIDDEN),
                    DecisionAction::Allow => (Action::Allow, Verdict::Allow),
                };
                let verdict = if d.simulated {
                    Verdict::Continue
                } else {
                    enforced
                };
                let mut buf = itoa_buf();
                on_match(&Match {
                    check: CheckKind::Decision,
                    id: fmt_u64(&mut buf, d.id),
                    action,
                    simulate: d.simulated,
                    verdict,
                });
                if verdict.is_final() {
                    return verdict;
                }
            }
        }

        // 3. Rate limits.
        for rl in &self.policy.rate_limits {
            if !rl.expression.eval(req) {
                continue;
            }
            let key = rate_key(rl.key_seed, &rl.characteristics, req);
            if let RateOutcome::Limited { retry_after_ms } = self.limiter.hit(key, &rl.spec, now) {
                let enforced = rl.action == Action::Block && !rl.simulate;
                let verdict = if enforced {
                    Verdict::Block {
                        status: rl.status,
                        retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
                    }
                } else {
                    Verdict::Continue
                };
                on_match(&Match {
                    check: CheckKind::RateLimit,
                    id: &rl.id,
                    action: rl.action,
                    simulate: rl.simulate,
                    verdict,
                });
                if enforced {
                    return verdict;
                }
            }
        }

        // 4. Custom rules, in file order.
        for rule in &self.policy.rules {
            if !rule.expression.eval(req) {
                continue;
            }
            let verdict = if rule.simulate {
                Verdict::Continue
            } else {
                match rule.action {
                    Action::Block => Verdict::Block {
                        status: rule.status,
                        retry_after_secs: None,
                    },
                    Action::Allow => Verdict::Allow,
                    Action::Log | Action::Skip => Verdict::Continue,
                }
            };
            on_match(&Match {
                check: CheckKind::Rule,
                id: &rule.id,
                action: rule.action,
                simulate: rule.simulate,
                verdict,
            });
            if verdict.is_final() {
                return verdict;
            }
            if rule.action == Action::Skip && !rule.simulate {
                break;
            }
        }
        Verdict::Continue
    }
}

type ItoaBuf = [u8; 20];

fn itoa_buf() -> ItoaBuf {
    [0; 20]
}

/// Formats a u64 into a stack buffer (no allocation).
fn fmt_u64(buf: &mut ItoaBuf, mut n: u64) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}
