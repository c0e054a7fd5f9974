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
use crate::policy::{LimitScope, Policy};
use crate::ratelimit::global::GlobalLimiter;
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
    /// The request's host is in under-attack mode: every rate limit's
    /// `requests` is multiplied by the policy's `[attack_mode]`
    /// `rate_limit_factor`.
    pub under_attack: bool,
    /// Counters of `scope = "global"` limits (without one, they count in `limiter`).
    pub global: Option<&'a GlobalLimiter>,
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
            let hit = match self.decisions.lookup_hit(req.client_ip, req.geo, now) {
                Some(h) if h.action == DecisionAction::Challenge => {
                    // An enforced ban at a broader scope outranks the
                    // challenge; a cleared client passes the challenge.
                    match self
                        .decisions
                        .lookup_hit_beyond_challenges(req.client_ip, req.geo, now)
                    {
                        Some(b) if b.action == DecisionAction::Ban && !b.simulated => Some(b),
                        _ if req.client.cleared => None,
                        _ => Some(h),
                    }
                }
                h => h,
            };
            // Then the client's fingerprints (JA4, HTTP/2, headers).
            let hit = hit.or_else(|| {
                let c = &req.client;
                if !self.decisions.has_fingerprints() {
                    return None;
                }
                self.decisions
                    .lookup_fingerprints(&[c.ja4, c.h2_fp, c.header_fp], now)
                    .filter(|d| !(d.action == DecisionAction::Challenge && c.cleared))
            });
            if let Some(d) = hit {
                let (action, enforced) = match d.action {
                    DecisionAction::Challenge => (
                        Action::Challenge,
                        Verdict::Challenge {
                            status: Verdict::FORBIDDEN_STATUS,
                        },
                    ),
                    DecisionAction::Ban => (Action::Block, Verdict::FORBIDDEN),
                    DecisionAction::Allow => (Action::Allow, Verdict::Allow),
                    // Host decisions are never returned by `lookup`.
                    DecisionAction::AttackMode => (Action::Log, Verdict::Continue),
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
            let tightened;
            let spec = if self.under_attack {
                tightened = rl.spec.scaled(self.policy.attack_mode.rate_limit_factor);
                &tightened
            } else {
                &rl.spec
            };
            let outcome = match (rl.scope, self.global) {
                (LimitScope::Global, Some(global)) => global.hit(key, spec, now),
                _ => self.limiter.hit(key, spec, now),
            };
            if let RateOutcome::Limited { retry_after_ms } = outcome {
                if rl.action == Action::Challenge && req.client.cleared {
                    // A cleared client is past the challenge.
                    continue;
                }
                let enforced =
                    matches!(rl.action, Action::Block | Action::Challenge) && !rl.simulate;
                let verdict = match rl.action {
                    _ if !enforced => Verdict::Continue,
                    Action::Challenge => Verdict::Challenge { status: rl.status },
                    _ => Verdict::Block {
                        status: rl.status,
                        retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
                    },
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

        // 4. Custom rules, in file order; the literal prefilter skips rules
        // that certainly do not match.
        let index = &self.policy.rule_index;
        let mut inline = [0u64; 8];
        let mut heap = Vec::new();
        let candidates: &mut [u64] = if index.words() <= inline.len() {
            &mut inline[..index.words()]
        } else {
            heap.resize(index.words(), 0);
            &mut heap
        };
        index.candidates(req, candidates);
        for (i, rule) in self.policy.rules.iter().enumerate() {
            if candidates
                .get(i / 64)
                .is_none_or(|w| w & (1 << (i % 64)) == 0)
                || !rule.expression.eval(req)
                // A cleared client is past a challenge.
                || (rule.action == Action::Challenge && req.client.cleared)
            {
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
                    Action::Challenge => Verdict::Challenge {
                        status: rule.status,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decisions::{Decision, Scope};
    use crate::request::tests::with_request;

    const POLICY: &str = r#"
[lists]
office = ["10.0.0.0/8"]

[allowlist]
ips = ["192.0.2.1"]

[[rate_limits]]
id = "login"
expression = 'http.request.uri.path eq "/login"'
requests = 2
period = "10s"
mitigation_timeout = "30s"

[[rate_limits]]
id = "shadow-limit"
expression = 'http.request.uri.path eq "/search"'
requests = 1
period = "10s"
simulate = true

[[rules]]
id = "allow-health"
expression = 'http.request.uri.path eq "/health"'
action = "allow"

[[rules]]
id = "skip-static"
expression = 'http.request.uri.path starts_with "/static/"'
action = "skip"

[[rules]]
id = "log-all"
expression = 'http.request.method eq "DELETE"'
action = "log"

[[rules]]
id = "shadow"
expression = 'http.request.uri.path eq "/shadow"'
action = "block"
simulate = true

[[rules]]
id = "block-admin"
expression = 'http.request.uri.path starts_with "/admin" and not ip.src in $office'
action = "block"

[[rules]]
id = "teapot"
expression = 'http.request.uri.path contains "tea"'
action = "block"
status = 418
"#;

    struct World {
        policy: Policy,
        decisions: DecisionSet,
        limiter: RateLimiter,
    }

    fn world() -> World {
        World {
            policy: Policy::from_toml(POLICY, "test").unwrap(),
            decisions: DecisionSet::new(),
            limiter: RateLimiter::new(10_000),
        }
    }

    fn run(
        w: &World,
        ip: &str,
        method: &str,
        uri: &str,
        now: u64,
    ) -> (Verdict, Vec<(CheckKind, String, bool)>) {
        let mut seen = Vec::new();
        let v = with_request(ip, method, uri, &[("host", "example.com")], |req| {
            Checks {
                under_attack: false,
                policy: &w.policy,
                decisions: &w.decisions,
                limiter: &w.limiter,
                global: None,
            }
            .evaluate(req, now, &mut |m| {
                seen.push((m.check, m.id.to_string(), m.simulate))
            })
        });
        (v, seen)
    }

    fn ban(
        id: u64,
        scope: Scope,
        value: &str,
        simulated: bool,
        expires_at: Option<u64>,
    ) -> Decision {
        Decision {
            id,
            scope,
            value: value.into(),
            action: DecisionAction::Ban,
            reason: "test".into(),
            origin: "test".into(),
            simulated,
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn pass_through_is_continue_with_no_match() {
        let w = world();
        assert_eq!(
            run(&w, "1.2.3.4", "GET", "/", 0),
            (Verdict::Continue, vec![])
        );
    }

    #[test]
    fn rule_block_with_default_and_custom_status() {
        let w = world();
        let (v, seen) = run(&w, "1.2.3.4", "GET", "/admin/x", 0);
        assert_eq!(v, Verdict::FORBIDDEN);
        assert_eq!(seen, vec![(CheckKind::Rule, "block-admin".into(), false)]);
        assert_eq!(
            run(&w, "10.1.1.1", "GET", "/admin/x", 0).0,
            Verdict::Continue
        );
        assert_eq!(
            run(&w, "1.2.3.4", "GET", "/teapot", 0).0,
            Verdict::Block {
                status: 418,
                retry_after_secs: None
            }
        );
    }

    #[test]
    fn allowlist_beats_decisions_and_rules() {
        let mut w = world();
        w.decisions
            .insert(ban(1, Scope::Ip, "192.0.2.1", false, None))
            .unwrap();
        let (v, seen) = run(&w, "192.0.2.1", "GET", "/admin", 0);
        assert_eq!(v, Verdict::Allow);
        assert_eq!(seen[0].0, CheckKind::Allowlist);
    }

    fn run_cleared(w: &World, ip: &str, uri: &str, cleared: bool) -> Verdict {
        with_request(ip, "GET", uri, &[("host", "example.com")], |req| {
            let mut req = *req;
            req.client.cleared = cleared;
            Checks {
                under_attack: false,
                policy: &w.policy,
                decisions: &w.decisions,
                limiter: &w.limiter,
                global: None,
            }
            .evaluate(&req, 0, &mut |_| {})
        })
    }

    #[test]
    fn challenge_decisions_pass_cleared_clients_but_never_hide_a_ban() {
        let mut w = world();
        let mut challenge = ban(1, Scope::Ip, "198.51.100.7", false, None);
        challenge.action = DecisionAction::Challenge;
        w.decisions.insert(challenge).unwrap();
        let challenged = Verdict::Challenge { status: 403 };
        assert_eq!(run_cleared(&w, "198.51.100.7", "/", false), challenged);
        assert_eq!(
            run_cleared(&w, "198.51.100.7", "/", true),
            Verdict::Continue
        );
        // A broader ban outranks the narrower challenge, cleared or not.
        w.decisions
            .insert(ban(2, Scope::Cidr, "198.51.100.0/24", false, None))
            .unwrap();
        for cleared in [false, true] {
            assert_eq!(
                run_cleared(&w, "198.51.100.7", "/", cleared),
                Verdict::FORBIDDEN
            );
        }
        // A simulated broader ban does not.
        w.decisions.remove(2);
        w.decisions
            .insert(ban(3, Scope::Cidr, "198.51.100.0/24", true, None))
            .unwrap();
        assert_eq!(run_cleared(&w, "198.51.100.7", "/", false), challenged);
    }

    #[test]
    fn fingerprint_decisions_match_the_clients_fingerprints() {
        let mut w = world();
        let mut fp = ban(
            9,
            Scope::Fingerprint,
            " t13d1516h2_8daaf6152771_e5627efa2ab1 ",
            false,
            None,
        );
        fp.action = DecisionAction::Ban;
        w.decisions.insert(fp).unwrap();
        let mut ch = ban(10, Scope::Fingerprint, "h1n03c_fe444ad14866", false, None);
        ch.action = DecisionAction::Challenge;
        w.decisions.insert(ch).unwrap();
        let run_fp = |ja4: &str, headers: &str, cleared: bool| {
            with_request(
                "192.0.2.50",
                "GET",
                "/",
                &[("host", "example.com")],
                |req| {
                    let mut req = *req;
                    req.client.ja4 = ja4;
                    req.client.header_fp = headers;
                    req.client.cleared = cleared;
                    Checks {
                        under_attack: false,
                        policy: &w.policy,
                        decisions: &w.decisions,
                        limiter: &w.limiter,
                        global: None,
                    }
                    .evaluate(&req, 0, &mut |_| {})
                },
            )
        };
        assert_eq!(
            run_fp("t13d1516h2_8daaf6152771_e5627efa2ab1", "", false),
            Verdict::FORBIDDEN
        );
        assert_eq!(
            run_fp(
                "t13d1516h2_8daaf6152771_000000000000",
                "h1n03c_fe444ad14866",
                false
            ),
            Verdict::Challenge { status: 403 }
        );
        assert_eq!(
            run_fp("", "h1n03c_fe444ad14866", true),
            Verdict::Continue,
            "a cleared client passes a challenge"
        );
        assert_eq!(run_fp("", "", false), Verdict::Continue);
        // The value reads back as given (trimmed), and attack_mode is refused.
        assert_eq!(
            w.decisions.get(9).unwrap().value(),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        let mut bad = ban(11, Scope::Fingerprint, "x", false, None);
        bad.action = DecisionAction::AttackMode;
        assert!(w.decisions.insert(bad).is_err());
        assert!(w
            .decisions
            .insert(ban(12, Scope::Fingerprint, "has space", false, None))
            .is_err());
        assert_eq!("fingerprint".parse::<Scope>().unwrap(), Scope::Fingerprint);
    }

    #[test]
    fn decisions_block_before_rules_and_expire() {
        let mut w = world();
        w.decisions
            .insert(ban(7, Scope::Cidr, "203.0.113.0/24", false, Some(1_000)))
            .unwrap();
        let (v, seen) = run(&w, "203.0.113.9", "GET", "/", 500);
        assert_eq!(v, Verdict::FORBIDDEN);
        assert_eq!(seen, vec![(CheckKind::Decision, "7".into(), false)]);
        assert_eq!(
            run(&w, "203.0.113.9", "GET", "/", 1_000).0,
            Verdict::Continue
        );
    }

    #[test]
    fn simulated_decision_is_reported_not_enforced() {
        let mut w = world();
        w.decisions
            .insert(ban(3, Scope::Ip, "5.6.7.8", true, None))
            .unwrap();
        let (v, seen) = run(&w, "5.6.7.8", "GET", "/", 0);
        assert_eq!(v, Verdict::Continue);
        assert_eq!(seen, vec![(CheckKind::Decision, "3".into(), true)]);
    }

    #[test]
    fn allow_decision_skips_the_rest() {
        let mut w = world();
        let mut d = ban(4, Scope::Ip, "5.6.7.9", false, None);
        d.action = DecisionAction::Allow;
        w.decisions.insert(d).unwrap();
        assert_eq!(run(&w, "5.6.7.9", "GET", "/admin", 0).0, Verdict::Allow);
    }

    #[test]
    fn rate_limit_then_recovery() {
        let w = world();
        assert_eq!(run(&w, "9.9.9.9", "POST", "/login", 0).0, Verdict::Continue);
        assert_eq!(run(&w, "9.9.9.9", "POST", "/login", 1).0, Verdict::Continue);
        let (v, seen) = run(&w, "9.9.9.9", "POST", "/login", 2);
        assert_eq!(
            v,
            Verdict::Block {
                status: 429,
                retry_after_secs: Some(30)
            }
        );
        assert_eq!(seen, vec![(CheckKind::RateLimit, "login".into(), false)]);
        // Another client is unaffected.
        assert_eq!(run(&w, "9.9.9.8", "POST", "/login", 3).0, Verdict::Continue);
        // Retry-After counts down, then the client recovers.
        assert_eq!(
            run(&w, "9.9.9.9", "POST", "/login", 20_002).0,
            Verdict::Block {
                status: 429,
                retry_after_secs: Some(10)
            }
        );
        assert_eq!(
            run(&w, "9.9.9.9", "POST", "/login", 60_000).0,
            Verdict::Continue
        );
    }

    #[test]
    fn simulated_rate_limit_only_reports() {
        let w = world();
        assert_eq!(run(&w, "9.9.9.7", "GET", "/search", 0).0, Verdict::Continue);
        let (v, seen) = run(&w, "9.9.9.7", "GET", "/search", 1);
        assert_eq!(v, Verdict::Continue);
        assert_eq!(
            seen,
            vec![(CheckKind::RateLimit, "shadow-limit".into(), true)]
        );
    }

    #[test]
    fn rule_actions_allow_skip_log_and_simulate() {
        let w = world();
        assert_eq!(run(&w, "1.2.3.4", "GET", "/health", 0).0, Verdict::Allow);
        // skip ends the rules: the teapot rule below does not run.
        let (v, seen) = run(&w, "1.2.3.4", "GET", "/static/tea.css", 0);
        assert_eq!(v, Verdict::Continue);
        assert_eq!(seen, vec![(CheckKind::Rule, "skip-static".into(), false)]);
        // log reports and goes on to the next rules.
        let (v, seen) = run(&w, "1.2.3.4", "DELETE", "/admin", 0);
        assert_eq!(v, Verdict::FORBIDDEN);
        assert_eq!(
            seen.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
            vec!["log-all", "block-admin"]
        );
        // simulate reports a would-be block and goes on.
        let (v, seen) = run(&w, "1.2.3.4", "GET", "/shadow", 0);
        assert_eq!(v, Verdict::Continue);
        assert_eq!(seen, vec![(CheckKind::Rule, "shadow".into(), true)]);
    }

    #[test]
    fn global_limits_count_in_the_global_limiter() {
        use crate::ratelimit::global::{GlobalLimiter, Mode};
        let policy = Policy::from_toml(
            r#"
[[rate_limits]]
id = "fleet"
expression = 'http.request.uri.path eq "/api"'
requests = 10
period = "10s"
scope = "global"

[[rate_limits]]
id = "node"
expression = 'http.request.uri.path eq "/local"'
requests = 10
period = "10s"
"#,
            "test",
        )
        .unwrap();
        let decisions = DecisionSet::new();
        let limiter = RateLimiter::new(100);
        let global = GlobalLimiter::new(100);
        // Cut off from a fleet of 5: the global limit falls back to 10 / 5 here.
        global.set_mode(Mode::Partitioned { nodes: 5 });
        let admitted = |path: &str| {
            (0..20)
                .filter(|_| {
                    with_request("1.2.3.4", "GET", path, &[("host", "a")], |req| {
                        Checks {
                            policy: &policy,
                            decisions: &decisions,
                            limiter: &limiter,
                            global: Some(&global),
                            under_attack: false,
                        }
                        .evaluate(req, 1_000, &mut |_| {})
                    }) == Verdict::Continue
                })
                .count()
        };
        assert_eq!(admitted("/api"), 2);
        assert_eq!(admitted("/local"), 10);
        assert_eq!(
            global
                .stats
                .partitioned
                .load(std::sync::atomic::Ordering::Relaxed),
            20
        );
        assert_eq!(global.len(), 1);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn formats_ids_without_allocating() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), "0");
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, u64::MAX), "18446744073709551615");
    }
}
