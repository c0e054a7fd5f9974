//! The policy file: TOML in, a compiled [`Policy`] out.
//!
//! Loading is all-or-nothing: [`Policy::from_toml`] either returns a policy in
//! which every expression is compiled, or every problem it found, each with the
//! file, line and column it points at. A running edge only ever swaps in a
//! policy that compiled, so an invalid file never replaces a good one. The
//! `[waf]` section is validated by [`crate::waf`] with the same diagnostics.
//!
//! ```toml
//! [lists]
//! office = ["10.0.0.0/8", "192.0.2.7"]
//!
//! [allowlist]
//! ips = ["127.0.0.1"]
//!
//! [[rules]]
//! id = "block-admin"
//! expression = 'http.request.uri.path starts_with "/admin" and not ip.src in $office'
//! action = "block"
//!
//! [[rate_limits]]
//! id = "login"
//! expression = 'http.request.uri.path eq "/login"'
//! characteristics = ["ip.src"]
//! requests = 5
//! period = "10s"
//! mitigation_timeout = "60s"
//! scope = "global"    # counted across the fleet; "local" (default): per node
//!
//! [url_normalization]
//! forward_normalized = false   # send the origin the URL as sent (default)
//! ```

use crate::decisions::DecisionAction;
use crate::duration::parse_duration_ms;
use crate::escalation::{Escalation, Source};
use crate::expr::{Expr, ExprIndex, Lists};
use crate::ratelimit::{Characteristic, LimitSpec};
use crate::verdict::Action;
use crate::verdict::CheckKind;
use crate::waf::WafSettings;
use raw::{elements, lenient, unknown_sections, RawListItem, RawPolicy, SECTIONS};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// Name of the implicit list that holds `[allowlist] ips`.
const ALLOWLIST_LIST: &str = "__allowlist";

mod floods;
mod raw;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file the policy came from (`<policy>` when loaded from a string).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in a policy file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A custom rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, used in events and metrics.
    pub id: String,
    /// Free text.
    pub description: String,
    /// When the rule matches.
    pub expression: Expr,
    /// What a match does.
    pub action: Action,
    /// Shadow mode: a match is logged as an event, the action is not taken.
    pub simulate: bool,
    /// Status sent by a `block`.
    pub status: u16,
}

/// A rate limit, compiled.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// Unique id, used in events and metrics.
    pub id: String,
    /// Which requests count.
    pub expression: Expr,
    /// What identifies a client (its counter).
    pub characteristics: Vec<Characteristic>,
    /// Requests per period, period and mitigation timeout.
    pub spec: LimitSpec,
    /// `block` (answer `status` with `Retry-After`) or `log`.
    pub action: Action,
    /// Shadow mode: an exceeded limit is logged, not enforced.
    pub simulate: bool,
    /// Status sent when the limit is exceeded (429 by default).
    pub status: u16,
    /// Seeds the counter keys; derived from `id` so counters survive a reload.
    pub key_seed: u32,
    /// Whose requests count: this node's (`local`, the default) or the whole
    /// fleet's (`global`, [`crate::ratelimit::global`]).
    pub scope: LimitScope,
}

/// The `scope` of a rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LimitScope {
    /// Each node counts the requests it sees.
    #[default]
    Local,
    /// The nodes of the mesh share their counts.
    Global,
}

/// A compiled policy: what every check of the pipeline reads.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Requests matching it skip every other check.
    pub allowlist: Option<Expr>,
    /// Custom rules, in file order.
    pub rules: Vec<Rule>,
    /// Rate limits, in file order.
    pub rate_limits: Vec<RateLimit>,
    /// Escalations: repeated blocks of one source become a decision.
    pub escalations: Vec<Escalation>,
    /// Flood detection: rates far above the learned baseline.
    pub floods: Vec<crate::flood::Flood>,
    /// How a host under attack is treated.
    pub attack_mode: crate::flood::AttackModeSettings,
    /// Literal prefilter over the rules' expressions (bit `i` = `rules[i]`).
    pub rule_index: ExprIndex,
    /// The WAF (OWASP CRS) settings, when the policy has a `[waf]` section.
    pub waf: Option<WafSettings>,
    /// `[url_normalization] forward_normalized`: whether the edge sends the
    /// origin the normalized path ([`crate::normalize`], what rules saw)
    /// instead of the target as the client sent it. Default `false`: the URL
    /// is forwarded as sent.
    pub forward_normalized_path: bool,
    /// `[connections]`: limits on client connections (defaults when absent).
    pub connections: crate::connections::ConnectionLimits,
    /// `[bots]`: the bot defence (off when absent).
    pub bots: Option<crate::bots::BotsPolicy>,
    /// A digest of the source, to tell versions apart in logs and metrics.
    pub digest: String,
}

/// Collects errors with positions resolved against the source text.
pub(crate) struct Diagnostics<'a> {
    file: &'a str,
    src: &'a str,
    errors: Vec<(usize, PolicyError)>,
}

impl<'a> Diagnostics<'a> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = line_col(self.src, offset);
        self.errors.push((
            offset,
            PolicyError {
                file: self.file.to_string(),
                line,
                column,
                message: message.into(),
            },
        ));
    }

    pub(crate) fn span(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.at(span.start, message)
    }

    /// Errors collected so far.
    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    fn finish(self) -> Result<(), PolicyErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.into_errors())
        }
    }

    fn into_errors(mut self) -> PolicyErrors {
        self.errors.sort_by_key(|(o, _)| *o);
        PolicyErrors(self.errors.into_iter().map(|(_, e)| e).collect())
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in src.as_bytes()[..offset].iter().enumerate() {
        if *b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let column = src
        .get(line_start..offset)
        .map(|s| s.chars().count())
        .unwrap_or(offset - line_start)
        + 1;
    (line, column)
}

/// Maps a byte offset inside a TOML string's value to the offset in the file.
/// `span` is the span of the whole string token, quotes included.
fn string_value_offset(src: &str, span: &Range<usize>, value_offset: usize) -> usize {
    let raw = src.get(span.clone()).unwrap_or("");
    let (open, literal) = if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with('\'') {
        (1, true)
    } else if raw.starts_with('"') {
        (1, false)
    } else {
        return span.start;
    };
    let mut pos = open;
    // A newline right after a multi-line opening delimiter is not part of the value.
    if open == 3 {
        if raw[pos..].starts_with("\r\n") {
            pos += 2;
        } else if raw[pos..].starts_with('\n') {
            pos += 1;
        }
    }
    if literal {
        return span.start + (pos + value_offset).min(raw.len());
    }
    // Basic string: walk escapes, counting decoded bytes.
    let bytes = raw.as_bytes();
    let mut decoded = 0;
    while decoded < value_offset && pos < bytes.len() {
        if bytes[pos] == b'\\' && pos + 1 < bytes.len() {
            let (raw_len, dec_len) = match bytes[pos + 1] {
                b'u' => (6, decoded_len(raw.get(pos + 2..pos + 6))),
                b'U' => (10, decoded_len(raw.get(pos + 2..pos + 10))),
                _ => (2, 1),
            };
            pos += raw_len;
            decoded += dec_len;
        } else {
            let ch_len = raw[pos..].chars().next().map(char::len_utf8).unwrap_or(1);
            pos += ch_len;
            decoded += ch_len;
        }
    }
    span.start + pos.min(raw.len())
}

fn decoded_len(hex: Option<&str>) -> usize {
    hex.and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
        .map(char::len_utf8)
        .unwrap_or(1)
}

/// A stable 32-bit hash (FNV-1a) of a rate-limit id.
fn seed_of(id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A short hex digest of the source text (FNV-1a 64), to tell versions apart.
fn digest_of(src: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in src.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl Policy {
    /// An empty policy: allows everything (decisions still apply).
    pub fn empty() -> Self {
        Policy {
            digest: digest_of(""),
            ..Policy::default()
        }
    }

    /// Parses and compiles a policy. `file` names the source in error messages.
    pub fn from_toml(src: &str, file: &str) -> Result<Policy, PolicyErrors> {
        Self::check_toml(src, file).0
    }

    /// [`Policy::from_toml`], and the `[waf]` settings whenever that section
    /// is valid, even when other sections are not: a checker can then load
    /// the WAF and report its problems beside the policy's.
    pub fn check_toml(
        src: &str,
        file: &str,
    ) -> (Result<Policy, PolicyErrors>, Option<WafSettings>) {
        let mut diag = Diagnostics {
            file,
            src,
            errors: Vec::new(),
        };
        let raw: RawPolicy = match toml::from_str(src) {
            Ok(raw) => raw,
            Err(e) => {
                // A syntax error: nothing after it can be read reliably.
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                let msg = e.message().trim().to_string();
                diag.at(offset, msg);
                return (Err(diag.into_errors()), None);
            }
        };
        for (key, span) in unknown_sections(src) {
            diag.span(
                span,
                format!(
                    "unknown section `{key}` (expected one of {})",
                    SECTIONS.map(|s| format!("`{s}`")).join(", ")
                ),
            );
        }
        let no_lists = BTreeMap::new();
        let raw_lists = match &raw.lists {
            Some(l) => lenient(&mut diag, l, "[lists]").unwrap_or(&no_lists),
            None => &no_lists,
        };
        let raw_allowlist = match &raw.allowlist {
            Some(a) => lenient(&mut diag, a, "[allowlist]"),
            None => None,
        };
        let raw_rules = elements(&mut diag, &raw.rules, "rules");
        let raw_rate_limits = elements(&mut diag, &raw.rate_limits, "rate_limits");
        let raw_escalations = elements(&mut diag, &raw.escalations, "escalations");
        let raw_floods = elements(&mut diag, &raw.floods, "floods");
        let raw_attack_mode = match &raw.attack_mode {
            Some(a) => lenient(&mut diag, a, "[attack_mode]"),
            None => None,
        };
        let raw_waf = match &raw.waf {
            Some(w) => lenient(&mut diag, w, "[waf]"),
            None => None,
        };
        let raw_url_normalization = match &raw.url_normalization {
            Some(u) => lenient(&mut diag, u, "[url_normalization]"),
            None => None,
        };

        // Named lists.
        let mut lists = Lists::new();
        for (name, items) in raw_lists {
            let mut values = Vec::with_capacity(items.get_ref().len());
            for item in items.get_ref() {
                match item.get_ref() {
                    RawListItem::Str(s) => values.push(s.clone()),
                    RawListItem::Int(i) => values.push(i.to_string()),
                }
            }
            if let Err(msg) = lists.insert(name, &values) {
                diag.span(items.span(), format!("list `{name}`: {msg}"));
            }
        }

        // Allowlist: its IPs become a hidden list, OR-ed with its expression.
        let mut allowlist = None;
        if let Some(al) = raw_allowlist {
            let mut parts = Vec::new();
            if let Some(ips) = &al.ips {
                let values: Vec<String> =
                    ips.get_ref().iter().map(|s| s.get_ref().clone()).collect();
                let mut all_valid = true;
                for v in ips.get_ref() {
                    if v.get_ref().parse::<ipnet::IpNet>().is_err()
                        && v.get_ref().parse::<std::net::IpAddr>().is_err()
                    {
                        all_valid = false;
                        diag.span(
                            v.span(),
                            format!("allowlist: `{}` is not an IP address or CIDR", v.get_ref()),
                        );
                    }
                }
                if all_valid && !values.is_empty() {
                    if let Err(msg) = lists.insert(ALLOWLIST_LIST, &values) {
                        diag.span(ips.span(), format!("allowlist: {msg}"));
                    } else {
                        parts.push(format!("ip.src in ${ALLOWLIST_LIST}"));
                    }
                }
            }
            let mut user_expr_ok = true;
            if let Some(e) = &al.expression {
                if let Err(errors) = Expr::compile_all(e.get_ref(), &lists) {
                    user_expr_ok = false;
                    for err in errors {
                        diag.at(
                            string_value_offset(src, &e.span(), err.offset),
                            format!("allowlist expression: {}", err.message),
                        );
                    }
                } else {
                    parts.push(format!("({})", e.get_ref()));
                }
            }
            if user_expr_ok && !parts.is_empty() {
                match Expr::compile(&parts.join(" or "), &lists) {
                    Ok(expr) => allowlist = Some(expr),
                    Err(err) => diag.at(0, format!("allowlist: {}", err.message)),
                }
            }
        }

        // Rules.
        let mut ids = HashSet::new();
        let mut rules = Vec::with_capacity(raw_rules.len());
        for r in raw_rules {
            let id = r.id.get_ref();
            if !valid_id(id) {
                diag.span(
                    r.id.span(),
                    format!("rule id `{id}` must be 1-128 characters of letters, digits, `-_.:`"),
                );
            } else if !ids.insert(id.clone()) {
                diag.span(
                    r.id.span(),
                    format!("duplicate id `{id}` (rule and rate-limit ids must be unique)"),
                );
            }
            let action = match r.action.get_ref().as_str() {
                "block" => Some(Action::Block),
                "log" => Some(Action::Log),
                "allow" => Some(Action::Allow),
                "skip" => Some(Action::Skip),
                "challenge" => Some(Action::Challenge),
                other => {
                    diag.span(r.action.span(), format!("rule `{id}`: unknown action `{other}` (expected block, challenge, log, allow or skip)"));
                    None
                }
            };
            let status = status_of(&mut diag, r.status.as_ref(), 403, id);
            let expr = compile_expr(&mut diag, src, &r.expression, &lists, id);
            if let (Some(action), Some(expression), Some(status), true) =
                (action, expr, status, r.enabled)
            {
                rules.push(Rule {
                    id: id.clone(),
                    description: r.description.clone(),
                    expression,
                    action,
                    simulate: r.simulate,
                    status,
                });
            }
        }

        // Rate limits.
        let mut rate_limits = Vec::with_capacity(raw_rate_limits.len());
        for rl in raw_rate_limits {
            let id = rl.id.get_ref();
            let _ = &rl.description;
            if !valid_id(id) {
                diag.span(
                    rl.id.span(),
                    format!(
                        "rate limit id `{id}` must be 1-128 characters of letters, digits, `-_.:`"
                    ),
                );
            } else if !ids.insert(id.clone()) {
                diag.span(
                    rl.id.span(),
                    format!("duplicate id `{id}` (rule and rate-limit ids must be unique)"),
                );
            }
            let expr = compile_expr(&mut diag, src, &rl.expression, &lists, id);
            let mut characteristics = Vec::new();
            match &rl.characteristics {
                None => characteristics.push(Characteristic::IpSrc),
                Some(cs) => {
                    if cs.get_ref().is_empty() {
                        diag.span(
                            cs.span(),
                            format!("rate limit `{id}`: characteristics must not be empty"),
                        );
                    }
                    for c in cs.get_ref() {
                        match Characteristic::parse(c.get_ref()) {
                            Ok(ch) => characteristics.push(ch),
                            Err(msg) => diag.span(c.span(), format!("rate limit `{id}`: {msg}")),
                        }
                    }
                }
            }
            let requests = *rl.requests.get_ref();
            if requests < 1 {
                diag.span(
                    rl.requests.span(),
                    format!("rate limit `{id}`: requests must be at least 1"),
                );
            }
            let period_ms = match parse_duration_ms(rl.period.get_ref()) {
                Ok(0) => {
                    diag.span(
                        rl.period.span(),
                        format!("rate limit `{id}`: period must be longer than 0"),
                    );
                    None
                }
                Ok(ms) if ms > 86_400_000 => {
                    diag.span(
                        rl.period.span(),
                        format!("rate limit `{id}`: period must be at most 1d"),
                    );
                    None
                }
                Ok(ms) => Some(ms),
                Err(msg) => {
                    diag.span(rl.period.span(), format!("rate limit `{id}`: {msg}"));
                    None
                }
            };
            let timeout_ms = match &rl.mitigation_timeout {
                None => Some(0),
                Some(t) => match parse_duration_ms(t.get_ref()) {
                    Ok(ms) => Some(ms),
                    Err(msg) => {
                        diag.span(t.span(), format!("rate limit `{id}`: {msg}"));
                        None
                    }
                },
            };
            let action = match rl.action.as_ref().map(|a| a.get_ref().as_str()) {
                None | Some("block") => Some(Action::Block),
                Some("log") => Some(Action::Log),
                Some("challenge") => Some(Action::Challenge),
                Some(other) => {
                    let span = rl.action.as_ref().map(|a| a.span()).unwrap_or(0..0);
                    diag.span(
                        span,
                        format!(
                            "rate limit `{id}`: unknown action `{other}` (expected block, challenge or log)"
                        ),
                    );
                    None
                }
            };
            let status = status_of(&mut diag, rl.status.as_ref(), 429, id);
            let scope = match rl.scope.as_ref().map(|s| s.get_ref().as_str()) {
                None | Some("local") => Some(LimitScope::Local),
                Some("global") => Some(LimitScope::Global),
                Some(other) => {
                    let span = rl.scope.as_ref().map(|s| s.span()).unwrap_or(0..0);
                    diag.span(
                        span,
                        format!(
                            "rate limit `{id}`: unknown scope `{other}` (expected local or global)"
                        ),
                    );
                    None
                }
            };
            if let (
                Some(expression),
                Some(period_ms),
                Some(mitigation_timeout_ms),
                Some(action),
                Some(status),
                Some(scope),
                true,
            ) = (
                expr,
                period_ms,
                timeout_ms,
                action,
                status,
                scope,
                rl.enabled && requests >= 1,
            ) {
                rate_limits.push(RateLimit {
                    id: id.clone(),
                    expression,
                    characteristics,
                    spec: LimitSpec {
                        requests: requests as u64,
                        period_ms,
                        mitigation_timeout_ms,
                    },
                    action,
                    simulate: rl.simulate,
                    status,
                    key_seed: seed_of(id),
                    scope,
                });
            }
        }

        // Escalations.
        let mut escalations = Vec::with_capacity(raw_escalations.len());
        for e in raw_escalations {
            let id = e.id.get_ref();
            let _ = &e.description;
            if !valid_id(id) {
                diag.span(
                    e.id.span(),
                    format!(
                        "escalation id `{id}` must be 1-128 characters of letters, digits, `-_.:`"
                    ),
                );
            } else if !ids.insert(id.clone()) {
                diag.span(
                    e.id.span(),
                    format!(
                        "duplicate id `{id}` (rule, rate-limit and escalation ids must be unique)"
                    ),
                );
            }
            let source = match &e.source {
                None => Some(Source::Ip),
                Some(s) => match Source::parse(s.get_ref()) {
                    Ok(src) => Some(src),
                    Err(msg) => {
                        diag.span(s.span(), format!("escalation `{id}`: {msg}"));
                        None
                    }
                },
            };
            let mut kinds = Vec::new();
            match &e.kinds {
                None => kinds.extend([CheckKind::Rule, CheckKind::RateLimit]),
                Some(ks) => {
                    if ks.get_ref().is_empty() {
                        diag.span(
                            ks.span(),
                            format!("escalation `{id}`: kinds must not be empty"),
                        );
                    }
                    for k in ks.get_ref() {
                        match k.get_ref().as_str() {
                            "rule" => kinds.push(CheckKind::Rule),
                            "rate_limit" => kinds.push(CheckKind::RateLimit),
                            "waf" => kinds.push(CheckKind::Waf),
                            other => diag.span(k.span(), format!("escalation `{id}`: unknown kind `{other}` (expected rule, rate_limit or waf)")),
                        }
                    }
                }
            }
            let threshold = *e.threshold.get_ref();
            if !(2..=1_000_000).contains(&threshold) {
                diag.span(e.threshold.span(), format!("escalation `{id}`: threshold must be between 2 and 1000000 (for one block, use a rule)"));
            }
            let window_ms = match parse_duration_ms(e.window.get_ref()) {
                Ok(ms) if ms > 0 && ms <= 86_400_000 => Some(ms),
                Ok(_) => {
                    diag.span(
                        e.window.span(),
                        format!("escalation `{id}`: window must be between 1ms and 1d"),
                    );
                    None
                }
                Err(msg) => {
                    diag.span(e.window.span(), format!("escalation `{id}`: {msg}"));
                    None
                }
            };
            let duration_ms = match parse_duration_ms(e.duration.get_ref()) {
                Ok(ms) if ms > 0 => Some(ms),
                Ok(_) => {
                    diag.span(
                        e.duration.span(),
                        format!("escalation `{id}`: duration must be longer than 0"),
                    );
                    None
                }
                Err(msg) => {
                    diag.span(e.duration.span(), format!("escalation `{id}`: {msg}"));
                    None
                }
            };
            let action = match e.action.as_ref().map(|a| a.get_ref().as_str()) {
                None | Some("ban") => Some(DecisionAction::Ban),
                Some("challenge") => Some(DecisionAction::Challenge),
                Some(other) => {
                    let span = e.action.as_ref().map(|a| a.span()).unwrap_or(0..0);
                    diag.span(
                        span,
                        format!("escalation `{id}`: unknown action `{other}` (expected ban or challenge)"),
                    );
                    None
                }
            };
            if let (Some(source), Some(window_ms), Some(duration_ms), Some(action), true) = (
                source,
                window_ms,
                duration_ms,
                action,
                (2..=1_000_000).contains(&threshold),
            ) {
                escalations.push(Escalation {
                    id: id.clone(),
                    source,
                    kinds,
                    threshold: threshold as u64,
                    window_ms,
                    action,
                    duration_ms,
                    simulate: e.simulate,
                });
            }
        }

        let floods = floods::compile_floods(&mut diag, src, &raw_floods, &lists, &mut ids);
        let attack_mode = floods::compile_attack_mode(&mut diag, raw_attack_mode);

        let waf = raw_waf.and_then(|w| w.compile(&mut diag));
        let connections = match &raw.connections {
            Some(c) => lenient(&mut diag, c, "[connections]").and_then(|c| c.compile(&mut diag)),
            None => None,
        }
        .unwrap_or_default();
        let bots = raw.bots.as_ref().and_then(|b| {
            let start = b.span().start;
            let raw = lenient(&mut diag, b, "[bots]")?;
            match raw.compile() {
                Ok(b) => Some(b),
                Err(errors) => {
                    for e in errors {
                        diag.at(start, e);
                    }
                    None
                }
            }
        });

        // `challenge` anywhere needs the challenge's endpoint and clearance
        // checks: without `[bots]`, they run with their defaults.
        let challenges = rules.iter().any(|r| r.action == Action::Challenge)
            || rate_limits.iter().any(|r| r.action == Action::Challenge)
            || escalations
                .iter()
                .any(|e| e.action == DecisionAction::Challenge)
            || floods
                .iter()
                .any(|f| f.action == crate::flood::FloodAction::Challenge);
        let bots = bots.or_else(|| challenges.then(crate::bots::BotsPolicy::challenge_only));

        if let Err(errors) = diag.finish() {
            return (Err(errors), waf);
        }
        let rule_index = ExprIndex::new(rules.iter().map(|r| &r.expression));
        let policy = Policy {
            allowlist,
            escalations,
            floods,
            attack_mode,
            rule_index,
            rules,
            rate_limits,
            forward_normalized_path: raw_url_normalization.is_some_and(|u| u.forward_normalized),
            connections,
            bots,
            digest: digest_of(src),
            waf: waf.clone(),
        };
        (Ok(policy), waf)
    }
}

fn status_of(
    diag: &mut Diagnostics<'_>,
    status: Option<&Spanned<u16>>,
    default: u16,
    id: &str,
) -> Option<u16> {
    match status {
        None => Some(default),
        Some(s) if (400..=599).contains(s.get_ref()) => Some(*s.get_ref()),
        Some(s) => {
            diag.span(
                s.span(),
                format!("`{id}`: status must be between 400 and 599"),
            );
            None
        }
    }
}

fn compile_expr(
    diag: &mut Diagnostics<'_>,
    src: &str,
    e: &Spanned<String>,
    lists: &Lists,
    id: &str,
) -> Option<Expr> {
    match Expr::compile_all(e.get_ref(), lists) {
        Ok(expr) => Some(expr),
        Err(errors) => {
            for err in errors {
                diag.at(
                    string_value_offset(src, &e.span(), err.offset),
                    format!("`{id}`: {}", err.message),
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests;
