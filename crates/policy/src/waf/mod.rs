//! The `[waf]` section of a policy: the one settings type of the OWASP Core
//! Rule Set engine.
//!
//! [`WafSettings`] is what the policy file's `[waf]` section compiles to, what
//! the engine (`palisade-waf`) is built from, and what the edge reads for its
//! body and response limits: there is no second configuration type. Checks
//! of the values live here once ([`WafSettings::validate`]); the TOML parser
//! ([`parse`]) runs the same checks and reports each problem with its file,
//! line and column. This module does not read the rule files: the edge
//! builds the engine (and keeps the running one when the build fails).
//!
//! ```toml
//! [waf]
//! # crs_dir = "/usr/share/modsecurity-crs/rules"   # optional: searched for when left out
//! mode = "block"                  # or "detect"
//! blocking_paranoia_level = 1
//! inbound_threshold = 5
//!
//! [[waf.exclusions]]
//! path_prefix = "/search"
//! tags = ["attack-sqli"]
//! ```

mod parse;
#[cfg(test)]
mod tests;
pub mod tune;

pub(crate) use parse::RawWaf;

use crate::learn::model::{ModelApply, ModelSettings};
use std::collections::BTreeMap;
use std::fmt;

/// The largest request body limit a policy may set (1 GiB).
pub const MAX_BODY_LIMIT: usize = 1 << 30;

/// ModSecurity's default `SecRequestBodyLimit` (bodies with files): 13 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 13_107_200;

/// ModSecurity's default `SecRequestBodyNoFilesLimit`: 128 KiB.
pub const DEFAULT_BODY_LIMIT_NO_FILES: usize = 131_072;

/// ModSecurity's default `SecResponseBodyLimit`: 512 KiB.
pub const DEFAULT_RESPONSE_BODY_LIMIT: usize = 524_288;

/// The response types whose bodies are inspected by default (ModSecurity's
/// recommended `SecResponseBodyMimeType`).
pub const DEFAULT_RESPONSE_MIME_TYPES: &[&str] = &["text/plain", "text/html", "text/xml"];

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

/// What happens to a body longer than its limit (ModSecurity's
/// `SecRequestBodyLimitAction` / `SecResponseBodyLimitAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimitAction {
    /// Refuse it: a request gets 413 (before anything reaches the upstream
    /// when its length is declared); a response is cut off.
    Reject,
    /// Inspect the first `limit` bytes and pass the rest uninspected.
    InspectPrefix,
}

impl BodyLimitAction {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyLimitAction::Reject => "reject",
            BodyLimitAction::InspectPrefix => "inspect_prefix",
        }
    }
}

/// What happens to a request body sent with a `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentEncodingAction {
    /// Decompress (gzip, deflate, br) within the body limits and inspect.
    #[default]
    Decompress,
    /// Refuse with 415.
    Refuse,
}

impl ContentEncodingAction {
    /// The name used in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncodingAction::Decompress => "decompress",
            ContentEncodingAction::Refuse => "refuse",
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

impl RuleIdRange {
    /// One rule.
    pub fn one(id: u32) -> RuleIdRange {
        RuleIdRange {
            first: id,
            last: id,
        }
    }
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

/// How request bodies are held back and inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBodySettings {
    /// Largest body inspected when it carries files (`multipart/form-data`);
    /// ModSecurity's `SecRequestBodyLimit`. 0: bodies are not inspected.
    pub limit: usize,
    /// Largest body inspected for every other content type; ModSecurity's
    /// `SecRequestBodyNoFilesLimit`. At most `limit`.
    pub limit_no_files: usize,
    /// What a longer body gets.
    pub limit_action: BodyLimitAction,
    /// Bodies with a `Content-Encoding`.
    pub content_encoding: ContentEncodingAction,
}

impl Default for RequestBodySettings {
    fn default() -> Self {
        RequestBodySettings {
            limit: DEFAULT_BODY_LIMIT,
            limit_no_files: DEFAULT_BODY_LIMIT_NO_FILES,
            limit_action: BodyLimitAction::Reject,
            content_encoding: ContentEncodingAction::Decompress,
        }
    }
}

impl RequestBodySettings {
    /// The limit that applies to a body of this `Content-Type`.
    pub fn limit_for(&self, content_type: &[u8]) -> usize {
        let ct = content_type.trim_ascii_start();
        let multipart = ct.len() >= 19 && ct[..19].eq_ignore_ascii_case(b"multipart/form-data");
        if multipart {
            self.limit
        } else {
            self.limit_no_files.min(self.limit)
        }
    }
}

/// Whether and how responses go through the response phases (3 and 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSettings {
    /// Run the response phases at all (headers, and bodies of `mime_types`).
    pub enabled: bool,
    /// Largest response body inspected; ModSecurity's `SecResponseBodyLimit`.
    /// 0: response headers only.
    pub body_limit: usize,
    /// What a longer body gets: its prefix inspected, or the response cut off.
    pub limit_action: BodyLimitAction,
    /// Media types (lower case, without parameters) whose bodies are inspected.
    pub mime_types: Vec<String>,
}

impl Default for ResponseSettings {
    fn default() -> Self {
        ResponseSettings {
            enabled: true,
            body_limit: DEFAULT_RESPONSE_BODY_LIMIT,
            limit_action: BodyLimitAction::InspectPrefix,
            mime_types: DEFAULT_RESPONSE_MIME_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl ResponseSettings {
    /// Whether a body of this `Content-Type` is inspected.
    pub fn inspects_type(&self, content_type: &[u8]) -> bool {
        let media = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        self.mime_types
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(media))
    }
}

/// The `[waf]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafSettings {
    /// The CRS directory: its `rules/` directory or the directory above it.
    /// Relative paths are relative to the edge's working directory. `None`:
    /// the engine looks for an installed CRS in the usual places
    /// (`palisade_waf::crs::SEARCH_PATHS`, in order).
    pub crs_dir: Option<String>,
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
    /// Outbound anomaly score at which a response is blocked.
    pub outbound_threshold: u32,
    /// Request bodies: limits and encodings.
    pub body: RequestBodySettings,
    /// Responses: whether and how much of them is inspected.
    pub response: ResponseSettings,
    /// Further CRS `tx.` settings, by name without `tx.` (lower case).
    pub tx: BTreeMap<String, String>,
    /// Rule files loaded after CRS.
    pub extra_rules: Vec<String>,
    /// A CRS v4 plugins directory (CRS' `plugins/` layout): its
    /// `*-config.conf` files load after the settings, its `*-before.conf`
    /// files before the rules and its `*-after.conf` files after them, each
    /// kind in file name order, as CRS' own install instructions include
    /// them. `None`: a `plugins/` directory beside the CRS `rules/`
    /// directory, when there is one.
    pub plugins_dir: Option<String>,
    /// Exclusions, in file order.
    pub exclusions: Vec<WafExclusion>,
    /// Leave out rules the engine cannot run (PCRE-only regexes of CRS 3.x)
    /// instead of refusing the rule set; each one is logged. Off by default.
    pub skip_unsupported_rules: bool,
    /// Palisade's own detectors (path traversal, SQL and JavaScript by
    /// grammar, shell commands: rules 9200100-9200400, scoring into CRS'
    /// inbound anomaly score), loaded before CRS' blocking evaluation. On
    /// by default; one detector is turned off by excluding its rule id.
    pub detectors: bool,
    /// Palisade's refinements of CRS rules that block common legitimate
    /// traffic (`palisade_waf::refine`: a rule's operator replaced by a
    /// narrower one, only when the rule is exactly the CRS text it was
    /// written for). On by default; `false`: CRS as shipped.
    pub refinements: bool,
    /// The positive model learned from passed traffic (`[waf.model]`).
    pub model: crate::learn::model::ModelSettings,
    /// Remember, across requests, which checks found nothing in a value
    /// (the WAF's value memo: repeated headers, cookies and parameters are
    /// not searched again). On by default; it never changes a verdict.
    pub value_memo: bool,
}

impl Default for WafSettings {
    fn default() -> Self {
        WafSettings {
            crs_dir: None,
            setup: None,
            mode: WafMode::Block,
            blocking_paranoia_level: 1,
            detection_paranoia_level: None,
            inbound_threshold: 5,
            outbound_threshold: 4,
            body: RequestBodySettings::default(),
            response: ResponseSettings::default(),
            tx: BTreeMap::new(),
            extra_rules: Vec::new(),
            plugins_dir: None,
            exclusions: Vec::new(),
            skip_unsupported_rules: false,
            detectors: true,
            refinements: true,
            model: Default::default(),
            value_memo: true,
        }
    }
}

impl WafSettings {
    /// The paranoia level of rules that run (reported or blocking).
    pub fn effective_detection_level(&self) -> u8 {
        self.detection_paranoia_level
            .unwrap_or(self.blocking_paranoia_level)
    }

    /// Every problem with these settings, each as `key: message` (the
    /// policy parser reports the same checks with file, line and column).
    /// Empty when they are valid.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let mut err = |r: Result<(), String>| {
            if let Err(e) = r {
                errs.push(e);
            }
        };
        if let Some(d) = &self.crs_dir {
            err(check_path("crs_dir", d));
        }
        if let Some(s) = &self.setup {
            err(check_path("setup", s));
        }
        if let Some(p) = &self.plugins_dir {
            err(check_path("plugins_dir", p));
        }
        for f in &self.extra_rules {
            err(check_path("extra_rules entries", f));
        }
        err(check_paranoia(
            "blocking_paranoia_level",
            self.blocking_paranoia_level as i64,
        )
        .map(drop));
        if let Some(d) = self.detection_paranoia_level {
            err(check_detection_level(d as i64, self.blocking_paranoia_level).map(drop));
        }
        err(check_threshold("inbound_threshold", self.inbound_threshold as i64).map(drop));
        err(check_threshold("outbound_threshold", self.outbound_threshold as i64).map(drop));
        err(check_body_limit("max_body_bytes", self.body.limit as i64).map(drop));
        err(check_body_limit("max_body_bytes_no_files", self.body.limit_no_files as i64).map(drop));
        err(check_body_limit("max_response_body_bytes", self.response.body_limit as i64).map(drop));
        for m in &self.response.mime_types {
            err(check_mime_type(m).map(drop));
        }
        for (k, v) in &self.tx {
            err(check_tx_name(k).map(drop));
            err(check_tx_value(k, v));
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            let what = format!("waf exclusion #{}", i + 1);
            if let Some(h) = &e.host {
                err(check_exclusion_host(h)
                    .map(drop)
                    .map_err(|m| format!("{what}: {m}")));
            }
            if let Some(p) = &e.path_prefix {
                err(check_path_prefix(p).map_err(|m| format!("{what}: {m}")));
            }
            for r in &e.rule_ids {
                if !(rule_id(r.first as i64).is_some() && rule_id(r.last as i64).is_some())
                    || r.first > r.last
                {
                    err(Err(format!("{what}: `{r}` is not a valid rule id range")));
                }
            }
            for t in &e.tags {
                err(check_tag(t).map_err(|m| format!("{what}: {m}")));
            }
            for t in &e.targets {
                err(check_target(t).map_err(|m| format!("{what}: {m}")));
            }
            if e.rule_ids.is_empty() && e.tags.is_empty() && e.targets.is_empty() {
                err(Err(format!("{what}: names no rule_ids, tags or targets")));
            }
        }
        let m = &self.model;
        err(check_model_int("min_requests", m.min_requests as i64, 1_000_000_000).map(drop));
        err(check_model_int("min_sources", m.min_sources as i64, 1_000_000).map(drop));
        err(check_model_int("max_routes", m.max_routes as i64, MAX_MODEL_ROUTES as i64).map(drop));
        if !(100..=3_600_000).contains(&m.share_every_ms) {
            err(Err(
                "waf.model: share_every must be between 100ms and 1h".to_string()
            ));
        }
        errs
    }
}

// The checks below are shared by `WafSettings::validate` and the TOML parser.

/// The most routes `[waf.model] max_routes` may keep.
pub const MAX_MODEL_ROUTES: usize = 100_000;

fn check_model_apply(v: &str) -> Result<ModelApply, String> {
    match v {
        "off" => Ok(ModelApply::Off),
        "extend" => Ok(ModelApply::Extend),
        "replace" => Ok(ModelApply::Replace),
        other => Err(format!(
            "waf.model: unknown apply `{other}` (expected off, extend or replace)"
        )),
    }
}

fn check_model_int(name: &str, n: i64, max: i64) -> Result<u64, String> {
    if (1..=max).contains(&n) {
        Ok(n as u64)
    } else {
        Err(format!(
            "waf.model: {name} must be between 1 and {max}, not {n}"
        ))
    }
}

fn check_share_every(v: &str) -> Result<u64, String> {
    let ms = crate::duration::parse_duration_ms(v)
        .map_err(|e| format!("waf.model: share_every: {e}"))?;
    if (100..=3_600_000).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "waf.model: share_every must be between 100ms and 1h, not {v}"
        ))
    }
}

fn check_path(what: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(format!("waf: {what} must not be empty"))
    } else {
        Ok(())
    }
}

fn check_paranoia(what: &str, n: i64) -> Result<u8, String> {
    match n {
        1..=4 => Ok(n as u8),
        _ => Err(format!("waf: {what} must be 1 to 4, not {n}")),
    }
}

fn check_detection_level(n: i64, blocking: u8) -> Result<u8, String> {
    match n {
        1..=4 if n as u8 >= blocking => Ok(n as u8),
        _ => Err(format!(
            "waf: detection_paranoia_level must be 1 to 4 and at least blocking_paranoia_level ({blocking}), not {n}"
        )),
    }
}

fn check_threshold(what: &str, n: i64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("waf: {what} must be between 1 and {}", u32::MAX)),
    }
}

fn check_body_limit(what: &str, n: i64) -> Result<usize, String> {
    match usize::try_from(n) {
        Ok(n) if n <= MAX_BODY_LIMIT => Ok(n),
        _ => Err(format!(
            "waf: {what} must be between 0 and {MAX_BODY_LIMIT} (1 GiB)"
        )),
    }
}

fn check_mime_type(m: &str) -> Result<String, String> {
    let lower = m.trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match lower.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(lower),
        _ => Err(format!(
            "waf: `{m}` is not a media type (expected e.g. text/html, without parameters)"
        )),
    }
}

fn check_tx_name(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name_ok {
        return Err(format!(
            "waf: tx setting `{name}`: names are letters, digits and `_`"
        ));
    }
    if let Some((_, key)) = RESERVED_TX.iter().find(|(tx, _)| *tx == lower) {
        return Err(format!(
            "waf: tx setting `{name}`: use `{key}` in [waf] instead"
        ));
    }
    Ok(lower)
}

fn check_tx_value(name: &str, value: &str) -> Result<(), String> {
    // Spaces and `|` separate list items in CRS settings (`allowed_methods`,
    // `|text/xml| |application/json|`), so they are allowed here: inside the
    // single-quoted `setvar:'tx.name=value'` they are plain characters.
    match value
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | ',' | ';' | '`' | '\n' | '\r'))
    {
        Some(c) => Err(format!(
            "waf: tx setting `{name}`: the value must not contain {c:?}"
        )),
        None => Ok(()),
    }
}

/// Characters that would break out of the SecLang the settings become.
fn unsafe_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | ',' | ';' | '|' | '`') || c.is_whitespace())
}

fn check_exclusion_host(h: &str) -> Result<String, String> {
    let host = h.trim().to_ascii_lowercase();
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return Err("host must be a host name without port".into());
    }
    if let Some(c) = unsafe_char(&host) {
        return Err(format!("host must not contain {c:?}"));
    }
    Ok(host)
}

fn check_path_prefix(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("path_prefix must start with `/`".into());
    }
    if let Some(c) = unsafe_char(p) {
        return Err(format!("path_prefix must not contain {c:?}"));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("empty tag".into());
    }
    if let Some(c) = unsafe_char(tag) {
        return Err(format!("tag `{tag}` must not contain {c:?}"));
    }
    Ok(())
}

fn check_target(target: &str) -> Result<(), String> {
    if let Some(c) = unsafe_char(target) {
        return Err(format!("target `{target}` must not contain {c:?}"));
    }
    // `NAME` or `NAME:key` with NAME an upper-case collection (`ARGS`, `REQUEST_COOKIES`, …).
    let (name, key) = match target.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (target, None),
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        && key.is_none_or(|k| !k.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "target `{target}` is not a variable (expected e.g. ARGS:password or REQUEST_COOKIES)"
        ))
    }
}

/// A rule id: 1 to 9,999,999 (ModSecurity ids are 7 digits at most).
fn rule_id(n: i64) -> Option<u32> {
    (1..=9_999_999).contains(&n).then_some(n as u32)
}
