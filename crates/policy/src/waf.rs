//! The `[waf]` section of a policy: settings of the OWASP Core Rule Set engine.
//!
//! This module only parses and validates the settings, so that every mistake
//! is reported with its file, line and column like the rest of the policy.
//! It does not read the rule files: the edge builds the engine from
//! [`WafSettings`] (and keeps the running one when the build fails).
//!
//! ```toml
//! [waf]
//! crs_dir = "/usr/share/owasp-crs/rules"
//! mode = "block"                  # or "detect"
//! blocking_paranoia_level = 1
//! inbound_threshold = 5
//!
//! [[waf.exclusions]]
//! path_prefix = "/search"
//! tags = ["attack-sqli"]
//! ```

use crate::policy::Diagnostics;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// The largest request body the edge can inspect: Pingora replays at most
/// 64 KiB of a body it has already read to the upstream.
pub const MAX_INSPECTED_BODY_BYTES: usize = 64 * 1024;

/// `tx` variables that have a key of their own in `[waf]`.
const RESERVED_TX: &[(&str, &str)] = &[
    ("blocking_paranoia_level", "blocking_paranoia_level"),
    ("detection_paranoia_level", "detection_paranoia_level"),
    ("paranoia_level", "blocking_paranoia_level"),
    ("executing_paranoia_level", "detection_paranoia_level"),
    ("inbound_anomaly_score_threshold", "inbound_threshold"),
    ("outbound_anomaly_score_threshold", "outbound_threshold"),
];

/// Block requests over the anomaly threshold, or only report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WafMode {
    /// Requests whose inbound anomaly score reaches the threshold get 403.
    #[default]
    Block,
    /// Nothing is blocked; what would be is reported as a simulated event.
    Detect,
}

impl WafMode {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            WafMode::Block => "block",
            WafMode::Detect => "detect",
        }
    }
}

/// A range of CRS rule ids (`first == last` for one rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleIdRange {
    /// First id of the range.
    pub first: u32,
    /// Last id of the range (inclusive).
    pub last: u32,
}

impl fmt::Display for RuleIdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Rules (or targets of rules) not to run, for one host and/or path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WafExclusion {
    /// Only for this host (lowercase, without port); None: every host.
    pub host: Option<String>,
    /// Only for paths starting with this; None: every path.
    pub path_prefix: Option<String>,
    /// Rules to skip.
    pub rule_ids: Vec<RuleIdRange>,
    /// CRS tags (e.g. `attack-sqli`) whose rules are skipped.
    pub tags: Vec<String>,
    /// Variables not to inspect (e.g. `ARGS:password`), for the listed rules
    /// and tags, or for every rule when none are listed.
    pub targets: Vec<String>,
}

/// The `[waf]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafSettings {
    /// The CRS directory: its `rules/` directory or the directory above it.
    pub crs_dir: String,
    /// A `crs-setup.conf` to load before the rules (optional: the edge generates one).
    pub setup: Option<String>,
    /// Block or detect only.
    pub mode: WafMode,
    /// Paranoia level whose rules count towards blocking (1-4).
    pub blocking_paranoia_level: u8,
    /// Paranoia level of rules run for reporting only (≥ the blocking level).
    pub detection_paranoia_level: Option<u8>,
    /// Inbound anomaly score at which a request is blocked.
    pub inbound_threshold: u32,
    /// Outbound anomaly score threshold (response rules).
    pub outbound_threshold: u32,
    /// Largest request body inspected (at most [`MAX_INSPECTED_BODY_BYTES`]; 0: headers only).
    pub max_body_bytes: usize,
    /// Further CRS `tx.` settings, by name without `tx.`.
    pub tx: BTreeMap<String, String>,
    /// Rule files loaded after CRS.
    pub extra_rules: Vec<String>,
    /// Exclusions, in file order.
    pub exclusions: Vec<WafExclusion>,
    /// Leave out rules the engine cannot run (PCRE-only regexes of CRS 3.x)
    /// instead of refusing the rule set; each one is logged. Off by default.
    pub skip_unsupported_rules: bool,
}

impl Default for WafSettings {
    fn default() -> Self {
        WafSettings {
            crs_dir: String::new(),
            setup: None,
            mode: WafMode::Block,
            blocking_paranoia_level: 1,
            detection_paranoia_level: None,
            inbound_threshold: 5,
            outbound_threshold: 4,
            max_body_bytes: MAX_INSPECTED_BODY_BYTES,
            tx: BTreeMap::new(),
            extra_rules: Vec::new(),
            exclusions: Vec::new(),
            skip_unsupported_rules: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaf {
    crs_dir: Spanned<String>,
    #[serde(default)]
    setup: Option<Spanned<String>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    blocking_paranoia_level: Option<Spanned<i64>>,
    #[serde(default)]
    detection_paranoia_level: Option<Spanned<i64>>,
    #[serde(default)]
    inbound_threshold: Option<Spanned<i64>>,
    #[serde(default)]
    outbound_threshold: Option<Spanned<i64>>,
    #[serde(default)]
    max_body_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    tx: BTreeMap<Spanned<String>, Spanned<RawScalar>>,
    #[serde(default)]
    extra_rules: Vec<Spanned<String>>,
    #[serde(default)]
    exclusions: Vec<Spanned<RawExclusion>>,
    #[serde(default)]
    skip_unsupported_rules: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRuleId {
    Int(i64),
    Str(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    #[serde(default)]
    host: Option<Spanned<String>>,
    #[serde(default)]
    path_prefix: Option<Spanned<String>>,
    #[serde(default)]
    rule_ids: Vec<Spanned<RawRuleId>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
}

/// Characters that would break out of the SecLang the settings become.
fn unsafe_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | ',' | ';' | '|' | '`') || c.is_whitespace())
}

/// A rule id: 1 to 9,999,999 (ModSecurity ids are 7 digits at most).
fn rule_id(n: i64) -> Option<u32> {
    (1..=9_999_999).contains(&n).then_some(n as u32)
}

fn parse_rule_ids(raw: &RawRuleId) -> Result<RuleIdRange, String> {
    let one = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<i64>().ok().and_then(rule_id)
    };
    let bad =
        |s: &str| format!("`{s}` is not a rule id or range (expected 942100 or \"942100-942199\")");
    match raw {
        RawRuleId::Int(n) => rule_id(*n)
            .map(|id| RuleIdRange {
                first: id,
                last: id,
            })
            .ok_or_else(|| format!("rule id {n} must be between 1 and 9999999")),
        RawRuleId::Str(s) => {
            let t = s.trim();
            match t.split_once('-') {
                None => one(t)
                    .map(|id| RuleIdRange {
                        first: id,
                        last: id,
                    })
                    .ok_or_else(|| bad(s)),
                Some((a, b)) => match (one(a.trim()), one(b.trim())) {
                    (Some(first), Some(last)) if first <= last => Ok(RuleIdRange { first, last }),
                    (Some(_), Some(_)) => Err(format!("range `{s}` ends before it starts")),
                    _ => Err(bad(s)),
                },
            }
        }
    }
}

/// `NAME` or `NAME:key` with NAME an upper-case collection (`ARGS`, `REQUEST_COOKIES`, …).
fn valid_target(t: &str) -> bool {
    let (name, key) = match t.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (t, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        && key.is_none_or(|k| !k.is_empty())
}

impl RawWaf {
    /// Validates the section; every problem goes to `diag`. None when any was found.
    pub(crate) fn compile(&self, diag: &mut Diagnostics<'_>) -> Option<WafSettings> {
        let before = diag.len();
        let mut s = WafSettings::default();

        let nonempty_path = |diag: &mut Diagnostics<'_>, v: &Spanned<String>, what: &str| {
            if v.get_ref().trim().is_empty() {
                diag.span(v.span(), format!("waf: {what} must not be empty"));
            }
            v.get_ref().clone()
        };
        s.crs_dir = nonempty_path(diag, &self.crs_dir, "crs_dir");
        s.skip_unsupported_rules = self.skip_unsupported_rules;
        s.setup = self.setup.as_ref().map(|v| nonempty_path(diag, v, "setup"));
        s.extra_rules = self
            .extra_rules
            .iter()
            .map(|v| nonempty_path(diag, v, "extra_rules entries"))
            .collect();

        if let Some(m) = &self.mode {
            match m.get_ref().as_str() {
                "block" => s.mode = WafMode::Block,
                "detect" => s.mode = WafMode::Detect,
                other => diag.span(
                    m.span(),
                    format!("waf: unknown mode `{other}` (expected block or detect)"),
                ),
            }
        }

        if let Some(pl) = &self.blocking_paranoia_level {
            match *pl.get_ref() {
                n @ 1..=4 => s.blocking_paranoia_level = n as u8,
                n => diag.span(
                    pl.span(),
                    format!("waf: blocking_paranoia_level must be 1 to 4, not {n}"),
                ),
            }
        }
        if let Some(pl) = &self.detection_paranoia_level {
            match *pl.get_ref() {
                n @ 1..=4 if n as u8 >= s.blocking_paranoia_level => {
                    s.detection_paranoia_level = Some(n as u8)
                }
                n => diag.span(
                    pl.span(),
                    format!(
                        "waf: detection_paranoia_level must be 1 to 4 and at least blocking_paranoia_level ({}), not {n}",
                        s.blocking_paranoia_level
                    ),
                ),
            }
        }
        let threshold = |diag: &mut Diagnostics<'_>, v: &Option<Spanned<i64>>, name: &str| {
            let v = v.as_ref()?;
            match u32::try_from(*v.get_ref()) {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    diag.span(
                        v.span(),
                        format!("waf: {name} must be between 1 and {}", u32::MAX),
                    );
                    None
                }
            }
        };
        if let Some(n) = threshold(diag, &self.inbound_threshold, "inbound_threshold") {
            s.inbound_threshold = n;
        }
        if let Some(n) = threshold(diag, &self.outbound_threshold, "outbound_threshold") {
            s.outbound_threshold = n;
        }
        if let Some(b) = &self.max_body_bytes {
            match usize::try_from(*b.get_ref()) {
                Ok(n) if n <= MAX_INSPECTED_BODY_BYTES => s.max_body_bytes = n,
                _ => diag.span(
                    b.span(),
                    format!(
                        "waf: max_body_bytes must be between 0 and {MAX_INSPECTED_BODY_BYTES} (the edge can hold back at most 64 KiB of a body for inspection)"
                    ),
                ),
            }
        }

        for (k, v) in &self.tx {
            let name = k.get_ref();
            let lower = name.to_ascii_lowercase();
            let name_ok =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !name_ok {
                diag.span(
                    k.span(),
                    format!("waf: tx setting `{name}`: names are letters, digits and `_`"),
                );
                continue;
            }
            if let Some((_, key)) = RESERVED_TX.iter().find(|(tx, _)| *tx == lower) {
                diag.span(
                    k.span(),
                    format!("waf: tx setting `{name}`: use `{key}` in [waf] instead"),
                );
                continue;
            }
            let value = match v.get_ref() {
                RawScalar::Str(s) => s.clone(),
                RawScalar::Int(i) => i.to_string(),
                RawScalar::Bool(b) => u8::from(*b).to_string(),
            };
            // Spaces separate list items in CRS settings (`allowed_methods`), so they are allowed here.
            if let Some(c) = value
                .chars()
                .find(|c| matches!(c, '"' | '\'' | '\\' | ',' | ';' | '|' | '`' | '\n' | '\r'))
            {
                diag.span(
                    v.span(),
                    format!("waf: tx setting `{name}`: the value must not contain {c:?}"),
                );
                continue;
            }
            s.tx.insert(lower, value);
        }

        for (i, e) in self.exclusions.iter().enumerate() {
            let e_span = e.span();
            let e = e.get_ref();
            let what = format!("waf exclusion #{}", i + 1);
            let mut ex = WafExclusion::default();
            if let Some(h) = &e.host {
                let host = h.get_ref().trim().to_ascii_lowercase();
                if host.is_empty() || host.contains(':') && !host.starts_with('[') {
                    diag.span(
                        h.span(),
                        format!("{what}: host must be a host name without port"),
                    );
                } else if let Some(c) = unsafe_char(&host) {
                    diag.span(h.span(), format!("{what}: host must not contain {c:?}"));
                }
                ex.host = Some(host);
            }
            if let Some(p) = &e.path_prefix {
                let path = p.get_ref();
                if !path.starts_with('/') {
                    diag.span(p.span(), format!("{what}: path_prefix must start with `/`"));
                } else if let Some(c) = unsafe_char(path) {
                    diag.span(
                        p.span(),
                        format!("{what}: path_prefix must not contain {c:?}"),
                    );
                }
                ex.path_prefix = Some(path.clone());
            }
            for r in &e.rule_ids {
                match parse_rule_ids(r.get_ref()) {
                    Ok(range) => ex.rule_ids.push(range),
                    Err(msg) => diag.span(r.span(), format!("{what}: {msg}")),
                }
            }
            for t in &e.tags {
                let tag = t.get_ref();
                if tag.is_empty() {
                    diag.span(t.span(), format!("{what}: empty tag"));
                } else if let Some(c) = unsafe_char(tag) {
                    diag.span(
                        t.span(),
                        format!("{what}: tag `{tag}` must not contain {c:?}"),
                    );
                }
                ex.tags.push(tag.clone());
            }
            for t in &e.targets {
                let target = t.get_ref();
                if let Some(c) = unsafe_char(target) {
                    diag.span(
                        t.span(),
                        format!("{what}: target `{target}` must not contain {c:?}"),
                    );
                } else if !valid_target(target) {
                    diag.span(
                        t.span(),
                        format!(
                            "{what}: target `{target}` is not a variable (expected e.g. ARGS:password or REQUEST_COOKIES)"
                        ),
                    );
                }
                ex.targets.push(target.clone());
            }
            if e.rule_ids.is_empty() && e.tags.is_empty() && e.targets.is_empty() {
                diag.span(
                    e_span,
                    format!("{what}: names no rule_ids, tags or targets"),
                );
            }
            s.exclusions.push(ex);
        }

        (diag.len() == before).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;
    use crate::verdict::CheckKind;

    use super::*;

    fn errors(src: &str) -> Vec<String> {
        match Policy::from_toml(src, "f.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_apply() {
        let p = Policy::from_toml("[waf]\ncrs_dir = \"crs/rules\"\n", "f").unwrap();
        let w = p.waf.unwrap();
        assert_eq!(
            w,
            WafSettings {
                crs_dir: "crs/rules".into(),
                ..WafSettings::default()
            }
        );
        assert_eq!(
            (
                w.mode,
                w.blocking_paranoia_level,
                w.inbound_threshold,
                w.max_body_bytes
            ),
            (WafMode::Block, 1, 5, 65536)
        );
        assert!(Policy::from_toml("", "f").unwrap().waf.is_none());
    }

    #[test]
    fn every_key_is_read() {
        let src = r#"
[waf]
crs_dir = "/srv/crs"
setup = "/srv/crs-setup.conf"
mode = "detect"
blocking_paranoia_level = 2
detection_paranoia_level = 3
inbound_threshold = 10
outbound_threshold = 8
max_body_bytes = 1024
extra_rules = ["/srv/local.conf"]
tx = { arg_length = 400, allowed_methods = "GET HEAD POST", Enforce_BodyProc_URLencoded = true }

[[waf.exclusions]]
host = "Shop.Example.com"
path_prefix = "/search"
rule_ids = [942100, "942200-942299"]

[[waf.exclusions]]
tags = ["attack-sqli"]
targets = ["ARGS:password", "REQUEST_COOKIES:/^sess/"]
"#;
        let w = Policy::from_toml(src, "f").unwrap().waf.unwrap();
        assert_eq!(w.mode, WafMode::Detect);
        assert_eq!(w.setup.as_deref(), Some("/srv/crs-setup.conf"));
        assert_eq!(
            (
                w.blocking_paranoia_level,
                w.detection_paranoia_level,
                w.inbound_threshold,
                w.outbound_threshold,
                w.max_body_bytes
            ),
            (2, Some(3), 10, 8, 1024)
        );
        assert_eq!(w.extra_rules, vec!["/srv/local.conf".to_string()]);
        assert_eq!(w.tx["arg_length"], "400");
        assert_eq!(w.tx["allowed_methods"], "GET HEAD POST");
        assert_eq!(w.tx["enforce_bodyproc_urlencoded"], "1");
        assert_eq!(w.exclusions.len(), 2);
        let e = &w.exclusions[0];
        assert_eq!(e.host.as_deref(), Some("shop.example.com"));
        assert_eq!(e.path_prefix.as_deref(), Some("/search"));
        let ids: Vec<String> = e.rule_ids.iter().map(|r| r.to_string()).collect();
        assert_eq!(ids, vec!["942100", "942200-942299"]);
        assert_eq!(w.exclusions[1].tags, vec!["attack-sqli".to_string()]);
        assert_eq!(w.exclusions[1].targets.len(), 2);
    }

    #[test]
    fn bad_values_are_located() {
        let src = r#"[waf]
crs_dir = ""
mode = "shout"
blocking_paranoia_level = 5
detection_paranoia_level = 0
inbound_threshold = 0
outbound_threshold = -1
max_body_bytes = 1000000
tx = { "bad-name" = 1, inbound_anomaly_score_threshold = 3, ok = "a'b" }
"#;
        let e = errors(src);
        let joined = e.join("\n");
        for needle in [
            "f.toml:2:11: waf: crs_dir must not be empty",
            "f.toml:3:8: waf: unknown mode `shout`",
            "f.toml:4:27: waf: blocking_paranoia_level must be 1 to 4",
            "f.toml:5:28: waf: detection_paranoia_level",
            "f.toml:6:21: waf: inbound_threshold",
            "f.toml:7:22: waf: outbound_threshold",
            "f.toml:8:18: waf: max_body_bytes",
            "tx setting `bad-name`",
            "use `inbound_threshold`",
            "tx setting `ok`: the value must not contain '\\''",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
        assert!(e.iter().all(|l| l.starts_with("f.toml:")), "{joined}");
    }

    #[test]
    fn detection_level_below_blocking_is_refused() {
        let e = errors(
            "[waf]\ncrs_dir = \"x\"\nblocking_paranoia_level = 3\ndetection_paranoia_level = 2\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("f.toml:4:"), "{e:?}");
        assert!(
            e[0].contains("at least blocking_paranoia_level (3)"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_exclusions_are_located() {
        let src = r#"[waf]
crs_dir = "x"

[[waf.exclusions]]
path_prefix = "/a"

[[waf.exclusions]]
host = "a b"
path_prefix = "no-slash"
rule_ids = [0, "942100-942000", "abc", "1-2-3"]
tags = ["a,b"]
targets = ["args:x", "ARGS:"]

[[waf.exclusions]]
path_prefix = "/x\"y"
tags = ["attack-xss"]
"#;
        let e = errors(src);
        let joined = e.join("\n");
        for needle in [
            "f.toml:4:1: waf exclusion #1: names no rule_ids, tags or targets",
            "f.toml:8:8: waf exclusion #2: host must not contain ' '",
            "f.toml:9:15: waf exclusion #2: path_prefix must start with `/`",
            "f.toml:10:13: waf exclusion #2: rule id 0",
            "f.toml:10:16: waf exclusion #2: range `942100-942000` ends before it starts",
            "f.toml:10:33: waf exclusion #2: `abc` is not a rule id",
            "f.toml:10:40: waf exclusion #2: `1-2-3` is not a rule id",
            "f.toml:11:9: waf exclusion #2: tag `a,b`",
            "f.toml:12:12: waf exclusion #2: target `args:x`",
            "f.toml:12:22: waf exclusion #2: target `ARGS:`",
            "f.toml:15:15: waf exclusion #3: path_prefix must not contain '\"'",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
    }

    #[test]
    fn missing_crs_dir_and_unknown_keys_are_errors() {
        let e = errors("[waf]\nmode = \"block\"\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("crs_dir"), "{e:?}");
        let e = errors("[waf]\ncrs_dir = \"x\"\nparanoia = 2\n");
        assert!(e[0].starts_with("f.toml:3:"), "{e:?}");
        assert!(e[0].contains("paranoia"), "{e:?}");
    }

    #[test]
    fn other_errors_are_still_reported_with_waf_errors() {
        let src = "[waf]\ncrs_dir = \"x\"\nmode = \"nope\"\n\n[[rules]]\nid = \"a\"\nexpression = 'http.host eq'\naction = \"block\"\n";
        let e = errors(src);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("f.toml:3:"));
        assert!(e[1].starts_with("f.toml:7:"));
    }

    #[test]
    fn the_commented_example_compiles_when_uncommented() {
        let path = format!("{}/../../examples/policy.toml", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(path).unwrap();
        let start = src.find("# [waf]").expect("a [waf] example");
        let uncommented: String = src[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let full = format!("{}{uncommented}\n", &src[..start]);
        let p = match Policy::from_toml(&full, "policy.toml") {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let w = p.waf.unwrap();
        assert_eq!(w.mode, WafMode::Detect);
        assert_eq!(w.exclusions.len(), 1);
        assert!(p.escalations.iter().any(|e| e.kinds == [CheckKind::Waf]));
    }

    #[test]
    fn escalations_may_count_waf_blocks() {
        let src = "[waf]\ncrs_dir = \"x\"\n\n[[escalations]]\nid = \"w\"\nkinds = [\"waf\"]\nthreshold = 2\nwindow = \"1m\"\nduration = \"1h\"\n";
        let p = Policy::from_toml(src, "f").unwrap();
        assert_eq!(p.escalations[0].kinds, vec![CheckKind::Waf]);
        assert_eq!(CheckKind::Waf.as_str(), "waf");
    }
}
