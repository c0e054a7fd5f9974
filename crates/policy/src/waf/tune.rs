//! `palisade waf tune`: turns WAF events into proposed `[[waf.exclusions]]`.
//!
//! Run CRS in `mode = "detect"` on real traffic, collect the events the edges
//! write (or read them from the control plane), and [`propose`] groups every
//! would-be block by rule × host × path × matched variable: one proposal per
//! group, with how many requests and clients it covers, sample values, and a
//! risk note. [`render`] prints them as TOML, ready to paste into a policy or
//! to apply as a new policy version. Nothing here decides that an event was
//! a false positive: that is the operator's call, which the counts, samples
//! and risk notes are there to inform.
//!
//! The narrowest exclusion that covers the traffic is proposed: one rule,
//! one variable (`ARGS:q`, `REQUEST_COOKIES:session`), one path prefix, one
//! host. Only when the match was on a whole-request value (the path, the
//! body, a TX variable) is the rule itself switched off for the path.

use std::collections::{BTreeMap, BTreeSet};

use super::{RuleIdRange, WafExclusion};
use crate::event::{SecurityEvent, WafRuleHit};
use crate::verdict::CheckKind;

/// What [`propose`] keeps.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Groups seen in fewer requests are left out (counted in
    /// [`Tuning::below_min`]).
    pub min_requests: usize,
    /// Sample values kept per proposal.
    pub samples: usize,
    /// Longest sample kept (characters); longer ones are cut with `…`.
    pub sample_chars: usize,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            min_requests: 1,
            samples: 3,
            sample_chars: 80,
        }
    }
}

/// How much protection an exclusion gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// One proposed exclusion and the traffic behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub rule_id: u32,
    /// The rule's message (from the first event).
    pub msg: String,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    /// The variable to stop inspecting for this rule; `None`: the rule
    /// itself is switched off for the host and path.
    pub target: Option<String>,
    /// Requests (events) it covers.
    pub requests: usize,
    /// Distinct client addresses among them.
    pub clients: usize,
    /// Distinct paths among them.
    pub paths: usize,
    pub samples: Vec<String>,
    pub risk: Risk,
    pub note: String,
}

impl Proposal {
    /// The exclusion, as the policy's `[[waf.exclusions]]` holds it.
    pub fn exclusion(&self) -> WafExclusion {
        WafExclusion {
            host: self.host.clone(),
            path_prefix: self.path_prefix.clone(),
            rule_ids: vec![RuleIdRange::one(self.rule_id)],
            tags: Vec::new(),
            targets: self.target.iter().cloned().collect(),
        }
    }
}

/// The result of [`propose`].
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    pub proposals: Vec<Proposal>,
    /// Events read.
    pub events: usize,
    /// WAF events that were blocks or would-be blocks (the ones tuned).
    pub would_block: usize,
    /// Groups left out by [`TuneOptions::min_requests`], and their requests.
    pub below_min: (usize, usize),
}

/// Rules that report or decide rather than detect: never excluded.
fn is_scoring_rule(id: u32) -> bool {
    matches!(id / 1000, 900 | 901 | 905 | 949 | 959 | 980)
}

/// The block and would-be block events: WAF events of the request or
/// response phases whose anomaly score reached the threshold (blocked, or
/// reported by the blocking evaluation rules 949110 / 959100 in detect mode).
fn would_block(e: &SecurityEvent) -> bool {
    if e.check != CheckKind::Waf {
        return false;
    }
    let Some(w) = &e.waf else { return false };
    e.action == "block"
        || e.rule_id == "949110"
        || e.rule_id == "959100"
        || w.rules.iter().any(|r| r.id == 949110 || r.id == 959100)
}

/// Collections whose `:key` names one value a rule can stop inspecting.
const KEYED: &[&str] = &[
    "ARGS",
    "ARGS_GET",
    "ARGS_POST",
    "ARGS_NAMES",
    "ARGS_GET_NAMES",
    "ARGS_POST_NAMES",
    "REQUEST_COOKIES",
    "REQUEST_COOKIES_NAMES",
    "REQUEST_HEADERS",
    "REQUEST_HEADERS_NAMES",
    "FILES",
    "FILES_NAMES",
    "RESPONSE_HEADERS",
    "RESPONSE_HEADERS_NAMES",
];

/// The exclusion target for a matched variable, when it names one value
/// that can be left out alone (`ARGS:q`); `None` for whole-request values.
fn target_of(var: &str) -> Option<String> {
    let (coll, key) = var.split_once(':')?;
    let coll = coll.to_ascii_uppercase();
    if !KEYED.contains(&coll.as_str()) || key.is_empty() {
        return None;
    }
    // `ctl:ruleRemoveTargetById=ID;VAR` and the policy's checks: no
    // separators, quotes, regex slashes or spaces in the key.
    if key.chars().any(|c| {
        matches!(c, '"' | '\'' | '\\' | ',' | ';' | '|' | '`' | '/')
            || c.is_whitespace()
            || c.is_control()
    }) {
        return None;
    }
    let key = if coll.starts_with("REQUEST_HEADERS") || coll.starts_with("RESPONSE_HEADERS") {
        key.to_ascii_lowercase()
    } else {
        key.to_string()
    };
    Some(format!("{coll}:{key}"))
}

/// The host of an event as an exclusion names it: lower case, no port, no
/// trailing dot; `None` when it is empty or not a plain host name.
fn host_of(h: &str) -> Option<String> {
    let h = h.trim().to_ascii_lowercase();
    let h = match h.strip_prefix('[') {
        Some(_) => h.split(']').next().map(|s| format!("{s}]"))?,
        None => h.split(':').next().unwrap_or("").to_string(),
    };
    let h = h.trim_end_matches('.').to_string();
    let plain = !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    plain.then_some(h)
}

/// The path of an event, without its query, cut before the first byte an
/// exclusion's `path_prefix` cannot hold (or that the engine would decode:
/// `%`), at the segment before it.
fn path_of(p: &str) -> String {
    let p = p.split(['?', '#']).next().unwrap_or("");
    if !p.starts_with('/') {
        return "/".into();
    }
    let bad = p
        .char_indices()
        .find(|&(_, c)| {
            matches!(c, '"' | '\'' | '\\' | ',' | ';' | '|' | '`' | '%')
                || c.is_whitespace()
                || c.is_control()
        })
        .map(|(i, _)| i);
    match bad {
        None => p.to_string(),
        Some(i) => {
            let cut = p[..i].rfind('/').unwrap_or(0);
            p[..=cut].to_string()
        }
    }
}

/// The longest prefix of whole segments that all `paths` share ("/" at least).
fn common_prefix<'a>(paths: impl IntoIterator<Item = &'a String>) -> String {
    let mut common: Option<Vec<&str>> = None;
    for p in paths {
        let segs: Vec<&str> = p.split_inclusive('/').collect();
        common = Some(match common {
            None => segs,
            Some(c) => c
                .into_iter()
                .zip(segs)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let prefix = common.unwrap_or_default().concat();
    if prefix.is_empty() {
        "/".into()
    } else {
        prefix
    }
}

/// The first segment of a path (`/users/1` → `/users`), the unit paths are
/// grouped by before their common prefix is taken.
fn first_segment(p: &str) -> &str {
    match p[1.min(p.len())..].find('/') {
        Some(i) => &p[..i + 1],
        None => p,
    }
}

/// The variable CRS' log data names (`... found within ARGS:q: VALUE`).
fn logged_var(data: &str) -> Option<&str> {
    let rest = &data[data.find(" found within ")? + " found within ".len()..];
    let end = rest.find(": ").unwrap_or(rest.len());
    let var = &rest[..end];
    (!var.is_empty() && !var.contains(' ')).then_some(var)
}

/// The value a rule hit matched, from CRS' log data (`Matched Data: X found
/// within ARGS:q: VALUE`), else the log data itself.
fn sample_of(data: &str, max: usize) -> String {
    let v = match data.find(" found within ") {
        Some(i) => {
            let rest = &data[i + " found within ".len()..];
            match rest.find(": ") {
                Some(j) => &rest[j + 2..],
                None => rest,
            }
        }
        None => data.strip_prefix("Matched Data: ").unwrap_or(data),
    };
    let mut s: String = v.chars().take(max).collect();
    if v.chars().count() > max {
        s.push('…');
    }
    s
}

#[derive(Default)]
struct Group {
    msg: String,
    paths: BTreeMap<String, usize>,
    clients: BTreeSet<std::net::IpAddr>,
    samples: BTreeSet<String>,
    requests: usize,
}

/// Groups the blocks and would-be blocks among `events` into proposals,
/// most requests first.
pub fn propose<'a>(
    events: impl IntoIterator<Item = &'a SecurityEvent>,
    opts: &TuneOptions,
) -> Tuning {
    let mut out = Tuning::default();
    // (rule, host, target, first path segment) → group
    type Key = (u32, Option<String>, Option<String>, String);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for e in events {
        out.events += 1;
        if !would_block(e) {
            continue;
        }
        out.would_block += 1;
        let Some(w) = &e.waf else { continue };
        let host = host_of(&e.host);
        let path = path_of(&e.path);
        // One count per request and rule × target, however often it matched.
        let mut seen = BTreeSet::new();
        for hit in &w.rules {
            if is_scoring_rule(hit.id) {
                continue;
            }
            // For a chain, MATCHED_VAR_NAME is the last link's variable;
            // CRS' log data names the first link's (what a target exclusion
            // by id removes: `found within %{TX.<id>_MATCHED_VAR_NAME}`).
            // A rule that matched several variables needs each left out;
            // when one of them is not a single value (the path, a TX
            // variable), the rule itself.
            let targets: Vec<Option<String>> = match logged_var(&hit.data).and_then(target_of) {
                Some(t) if hit.vars.len() <= 1 => vec![Some(t)],
                // A list at its cap may have been cut: the rule itself.
                _ if hit.vars.len() >= WafRuleHit::MAX_VARS => vec![None],
                _ => {
                    let vars: Vec<&str> = if hit.vars.is_empty() {
                        vec![hit.var.as_str()]
                    } else {
                        hit.vars.iter().map(String::as_str).collect()
                    };
                    let ts: Vec<Option<String>> = vars.iter().map(|v| target_of(v)).collect();
                    if ts.iter().any(Option::is_none) {
                        vec![None]
                    } else {
                        ts
                    }
                }
            };
            for target in targets {
                if !seen.insert((hit.id, target.clone())) {
                    continue;
                }
                let key = (
                    hit.id,
                    host.clone(),
                    target,
                    first_segment(&path).to_string(),
                );
                let g = groups.entry(key).or_default();
                if g.msg.is_empty() {
                    g.msg = hit.msg.clone();
                }
                g.requests += 1;
                *g.paths.entry(path.clone()).or_default() += 1;
                g.clients.insert(e.client_ip);
                if g.samples.len() < opts.samples.max(1) * 4 {
                    g.samples.insert(sample_of(&hit.data, opts.sample_chars));
                }
            }
        }
    }
    for ((rule_id, host, target, _), g) in groups {
        if g.requests < opts.min_requests.max(1) {
            out.below_min.0 += 1;
            out.below_min.1 += g.requests;
            continue;
        }
        let prefix = common_prefix(g.paths.keys());
        let path_prefix = (prefix != "/").then_some(prefix);
        let (risk, note) = assess(rule_id, &host, &path_prefix, &target, &g);
        out.proposals.push(Proposal {
            rule_id,
            msg: g.msg,
            host,
            path_prefix,
            target,
            requests: g.requests,
            clients: g.clients.len(),
            paths: g.paths.len(),
            samples: g.samples.into_iter().take(opts.samples).collect(),
            risk,
            note,
        });
    }
    out.proposals.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(a.rule_id.cmp(&b.rule_id))
            .then(a.host.cmp(&b.host))
            .then(a.path_prefix.cmp(&b.path_prefix))
            .then(a.target.cmp(&b.target))
    });
    out
}

/// CRS' attack-detection rule files (930 to 944) and Palisade's detector
/// rules (9200100-9200400): excluding one opens a class of attack on what
/// it covers.
fn detects_attacks(rule_id: u32) -> Option<&'static str> {
    match rule_id {
        9_200_100..=9_200_199 => return Some("path traversal (Palisade detector)"),
        9_200_200..=9_200_299 => return Some("SQL injection (Palisade detector)"),
        9_200_300..=9_200_399 => {
            return Some("cross-site scripting / JavaScript (Palisade detector)")
        }
        9_200_400..=9_200_499 => return Some("remote command execution (Palisade detector)"),
        _ => {}
    }
    Some(match rule_id / 1000 {
        930 => "path traversal / local file inclusion",
        931 => "remote file inclusion",
        932 => "remote command execution",
        933 => "PHP injection",
        934 => "generic / Node.js / SSRF injection",
        941 => "cross-site scripting",
        942 => "SQL injection",
        943 => "session fixation",
        944 => "Java injection",
        _ => return None,
    })
}

fn assess(
    rule_id: u32,
    host: &Option<String>,
    path: &Option<String>,
    target: &Option<String>,
    g: &Group,
) -> (Risk, String) {
    let mut risk;
    let mut notes = Vec::new();
    let where_ = match path {
        Some(p) => format!("paths under {p}"),
        None => "every path".to_string(),
    };
    let where_ = match host {
        Some(h) => format!("{where_} of {h}"),
        None => format!("{where_} of every host"),
    };
    match target {
        Some(t) => {
            risk = Risk::Low;
            notes.push(format!(
                "rule {rule_id} stops inspecting {t} on {where_}; every other rule still does"
            ));
        }
        None => {
            risk = Risk::Medium;
            notes.push(format!(
                "the match was on a whole-request value: rule {rule_id} is switched off for {where_}"
            ));
        }
    }
    if path.is_none() {
        risk = risk.max(Risk::Medium);
        notes.push("no common path: it applies site-wide".into());
    }
    if let Some(class) = detects_attacks(rule_id) {
        if target.is_none() {
            risk = Risk::High;
        }
        notes.push(format!(
            "{class} in what it covers is then caught only by other rules"
        ));
    }
    if g.clients.len() == 1 && g.requests > 1 {
        risk = risk.max(Risk::Medium);
        notes.push(
            "all from one client: check that this is not an attacker probing before applying"
                .into(),
        );
    }
    (risk, notes.join("; "))
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The proposals as TOML: one `[[waf.exclusions]]` table per host × path ×
/// variable, naming the rules proposed for it, each rule preceded by
/// comments with its counts, samples and risk.
pub fn render(t: &Tuning) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# palisade waf tune: {} for {} ({} read).",
        plural(
            t.proposals.len(),
            "proposed rule exclusion",
            "proposed rule exclusions"
        ),
        plural(
            t.would_block,
            "block or would-be block",
            "blocks or would-be blocks"
        ),
        plural(t.events, "event", "events"),
    );
    if t.below_min.0 > 0 {
        let _ = writeln!(
            s,
            "# {} ({}) left out by --min-requests.",
            plural(t.below_min.0, "smaller group", "smaller groups"),
            plural(t.below_min.1, "request", "requests")
        );
    }
    let _ = writeln!(
        s,
        "# Review each one: an exclusion is a hole in the WAF. Paste the ones you keep into the policy's [waf] section."
    );
    // Tables in order of their first (largest) proposal.
    type Table<'p> = (
        &'p Option<String>,
        &'p Option<String>,
        &'p Option<String>,
        Vec<&'p Proposal>,
    );
    let mut tables: Vec<Table<'_>> = Vec::new();
    for p in &t.proposals {
        match tables
            .iter_mut()
            .find(|(h, pp, tg, _)| *h == &p.host && *pp == &p.path_prefix && *tg == &p.target)
        {
            Some((_, _, _, list)) => list.push(p),
            None => tables.push((&p.host, &p.path_prefix, &p.target, vec![p])),
        }
    }
    for (host, path, target, list) in tables {
        let _ = writeln!(s);
        for p in &list {
            let _ = writeln!(s, "# {} {}", p.rule_id, p.msg);
            let _ = writeln!(
                s,
                "#   {} from {} on {}; risk: {} ({})",
                plural(p.requests, "request", "requests"),
                plural(p.clients, "client", "clients"),
                plural(p.paths, "path", "paths"),
                p.risk.as_str(),
                p.note
            );
            if !p.samples.is_empty() {
                let samples: Vec<String> = p.samples.iter().map(|v| format!("{v:?}")).collect();
                let _ = writeln!(s, "#   samples: {}", samples.join(", "));
            }
        }
        let _ = writeln!(s, "[[waf.exclusions]]");
        if let Some(h) = host {
            let _ = writeln!(s, "host = {}", toml_str(h));
        }
        if let Some(pp) = path {
            let _ = writeln!(s, "path_prefix = {}", toml_str(pp));
        }
        let ids: Vec<String> = list.iter().map(|p| p.rule_id.to_string()).collect();
        let _ = writeln!(s, "rule_ids = [{}]", ids.join(", "));
        if let Some(t) = target {
            let _ = writeln!(s, "targets = [{}]", toml_str(t));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::WafEventDetail;

    fn ev(ip: &str, host: &str, path: &str, hits: &[(u32, &str, &str)]) -> SecurityEvent {
        let mut rules: Vec<WafRuleHit> = hits
            .iter()
            .map(|&(id, var, value)| WafRuleHit {
                id,
                msg: format!("rule {id}"),
                data: format!("Matched Data: x found within {var}: {value}"),
                var: var.to_string(),
                vars: Vec::new(),
            })
            .collect();
        rules.push(WafRuleHit {
            id: 949110,
            msg: "Inbound Anomaly Score Exceeded".into(),
            data: String::new(),
            var: "TX:blocking_inbound_anomaly_score".into(),
            vars: Vec::new(),
        });
        SecurityEvent {
            time_ms: 1,
            node: "n".into(),
            request_id: "r".into(),
            client_ip: ip.parse().unwrap(),
            check: CheckKind::Waf,
            rule_id: "949110".into(),
            action: "log".into(),
            simulate: true,
            method: "GET".into(),
            host: host.into(),
            path: path.into(),
            status: None,
            waf: Some(WafEventDetail {
                anomaly_score: 5,
                rules,
                ..WafEventDetail::default()
            }),
            bot: None,
        }
    }

    #[test]
    fn groups_by_rule_host_path_and_target() {
        let events = vec![
            ev(
                "192.0.2.1",
                "Shop.Example.com:8443",
                "/search?q=x",
                &[(942100, "ARGS:q", "O'Brien")],
            ),
            ev(
                "192.0.2.2",
                "shop.example.com",
                "/search",
                &[(942100, "ARGS:q", "select the best")],
            ),
            ev(
                "192.0.2.3",
                "shop.example.com",
                "/users/12/edit",
                &[(941160, "ARGS:bio", "<b>hi</b>")],
            ),
            ev(
                "192.0.2.4",
                "shop.example.com",
                "/users/13/edit",
                &[(941160, "ARGS:bio", "<i>yo</i>")],
            ),
            ev(
                "192.0.2.4",
                "shop.example.com",
                "/users/13/edit",
                &[(920420, "TX:content_type", "text/x-foo")],
            ),
        ];
        let t = propose(&events, &TuneOptions::default());
        assert_eq!((t.events, t.would_block), (5, 5));
        assert_eq!(t.proposals.len(), 3, "{:#?}", t.proposals);
        let sqli = &t.proposals.iter().find(|p| p.rule_id == 942100).unwrap();
        assert_eq!(sqli.host.as_deref(), Some("shop.example.com"));
        assert_eq!(sqli.path_prefix.as_deref(), Some("/search"));
        assert_eq!(sqli.target.as_deref(), Some("ARGS:q"));
        assert_eq!((sqli.requests, sqli.clients), (2, 2));
        assert_eq!(sqli.risk, Risk::Low);
        assert!(
            sqli.samples.contains(&"O'Brien".to_string()),
            "{:?}",
            sqli.samples
        );
        let xss = &t.proposals.iter().find(|p| p.rule_id == 941160).unwrap();
        assert_eq!(xss.path_prefix.as_deref(), Some("/users/"));
        assert_eq!(xss.target.as_deref(), Some("ARGS:bio"));
        // A match on a TX variable: the rule itself, for the path.
        let ct = &t.proposals.iter().find(|p| p.rule_id == 920420).unwrap();
        assert_eq!(ct.target, None);
        assert_eq!(ct.path_prefix.as_deref(), Some("/users/13/edit"));
        assert_eq!(ct.risk, Risk::Medium);
    }

    #[test]
    fn passes_and_other_checks_are_not_tuned() {
        let mut pass = ev("192.0.2.1", "h", "/", &[(942100, "ARGS:q", "x")]);
        pass.rule_id = "942100".into();
        pass.waf.as_mut().unwrap().rules.retain(|r| r.id != 949110);
        let mut rl = ev("192.0.2.1", "h", "/", &[(942100, "ARGS:q", "x")]);
        rl.check = CheckKind::RateLimit;
        let t = propose(&[pass, rl], &TuneOptions::default());
        assert_eq!((t.events, t.would_block, t.proposals.len()), (2, 0, 0));
    }

    #[test]
    fn risky_proposals_say_so() {
        // Attack rule on a whole-request value, site-wide, one client.
        let events = vec![
            ev(
                "192.0.2.9",
                "h",
                "/a",
                &[(930120, "REQUEST_FILENAME", "/a")],
            ),
            ev(
                "192.0.2.9",
                "h",
                "/b",
                &[(930120, "REQUEST_FILENAME", "/b")],
            ),
        ];
        let t = propose(&events, &TuneOptions::default());
        assert_eq!(t.proposals.len(), 2);
        for p in &t.proposals {
            assert_eq!(p.risk, Risk::High, "{p:?}");
            assert!(p.note.contains("path traversal"), "{}", p.note);
        }
        let opts = TuneOptions {
            min_requests: 2,
            ..TuneOptions::default()
        };
        let t = propose(&events, &opts);
        assert_eq!((t.proposals.len(), t.below_min), (0, (2, 2)));
    }

    #[test]
    fn rendered_proposals_parse_as_policy_exclusions() {
        let events = vec![
            ev(
                "192.0.2.1",
                "shop.example.com",
                "/search",
                &[(942100, "ARGS:q", "a \"quoted\" value")],
            ),
            ev(
                "192.0.2.2",
                "shop.example.com",
                "/p/a b;c",
                &[(941100, "REQUEST_COOKIES:pref", "x")],
            ),
            ev("192.0.2.3", "", "/x", &[(932160, "ARGS:a;b", "y")]),
        ];
        let t = propose(&events, &TuneOptions::default());
        let toml = render(&t);
        let policy = format!(
            "[waf]\ncrs_dir = \"/usr/share/modsecurity-crs/rules\"\nmode = \"detect\"\n{}",
            toml
        );
        let p = crate::Policy::from_toml(&policy, "tune.toml")
            .unwrap_or_else(|e| panic!("{e}\n{policy}"));
        let waf = p.waf.as_ref().unwrap();
        assert_eq!(waf.exclusions.len(), 3, "{toml}");
        let want: Vec<WafExclusion> = t.proposals.iter().map(Proposal::exclusion).collect();
        for w in &want {
            assert!(
                waf.exclusions.contains(w),
                "{w:?} not in {:?}",
                waf.exclusions
            );
        }
        // The unsafe path was cut at its segment, the key with `;` became a
        // rule exclusion, the empty host none.
        assert!(want.iter().any(|e| e.path_prefix.as_deref() == Some("/p/")));
        assert!(want
            .iter()
            .any(|e| e.rule_ids[0].first == 932160 && e.targets.is_empty() && e.host.is_none()));
    }

    #[test]
    fn prefixes_and_samples() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(common_prefix(&s(&["/a/b/c", "/a/b/d"])), "/a/b/");
        assert_eq!(common_prefix(&s(&["/a/bc", "/a/bd"])), "/a/");
        assert_eq!(common_prefix(&s(&["/a/b", "/a/b"])), "/a/b");
        assert_eq!(common_prefix(&s(&["/x", "/y"])), "/");
        assert_eq!(first_segment("/users/1"), "/users");
        assert_eq!(first_segment("/"), "/");
        assert_eq!(path_of("/a%2fb/c"), "/");
        assert_eq!(path_of("/a/b%20c"), "/a/");
        assert_eq!(host_of("Example.COM.:80").as_deref(), Some("example.com"));
        assert_eq!(host_of("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(host_of("").as_deref(), None);
        assert_eq!(
            sample_of("Matched Data: ' found within ARGS:q: O'Brien", 80),
            "O'Brien"
        );
        assert_eq!(sample_of("abcdef", 3), "abc…");
        assert_eq!(
            target_of("REQUEST_HEADERS:User-Agent").as_deref(),
            Some("REQUEST_HEADERS:user-agent")
        );
        assert_eq!(target_of("REQUEST_FILENAME"), None);
        assert_eq!(target_of("TX:0"), None);
        assert_eq!(
            logged_var("Matched Data: sid found within ARGS_NAMES:sid: sid"),
            Some("ARGS_NAMES:sid")
        );
        assert_eq!(logged_var("Matched Data: x"), None);
    }
}
