//! The `[waf]` TOML section → [`WafSettings`], every problem located.
//!
//! The value checks are the ones [`WafSettings::validate`] runs (shared
//! functions in the parent module); this file only maps TOML spans to them.

use super::*;
use crate::policy::Diagnostics;
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWaf {
    #[serde(default)]
    crs_dir: Option<Spanned<String>>,
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
    max_body_bytes_no_files: Option<Spanned<i64>>,
    #[serde(default)]
    body_limit_action: Option<Spanned<String>>,
    #[serde(default)]
    body_content_encoding: Option<Spanned<String>>,
    #[serde(default)]
    inspect_responses: Option<bool>,
    #[serde(default)]
    max_response_body_bytes: Option<Spanned<i64>>,
    #[serde(default)]
    response_body_limit_action: Option<Spanned<String>>,
    #[serde(default)]
    response_body_mime_types: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    tx: BTreeMap<Spanned<String>, Spanned<RawScalar>>,
    #[serde(default)]
    extra_rules: Vec<Spanned<String>>,
    #[serde(default)]
    plugins_dir: Option<Spanned<String>>,
    #[serde(default)]
    exclusions: Vec<Spanned<RawExclusion>>,
    #[serde(default)]
    skip_unsupported_rules: bool,
    #[serde(default)]
    value_memo: Option<bool>,
    #[serde(default)]
    detectors: Option<bool>,
    #[serde(default)]
    refinements: Option<bool>,
    #[serde(default)]
    model: Option<RawModel>,
}

/// `[waf.model]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(default)]
    learn: Option<bool>,
    #[serde(default)]
    apply: Option<Spanned<String>>,
    #[serde(default)]
    min_requests: Option<Spanned<i64>>,
    #[serde(default)]
    min_sources: Option<Spanned<i64>>,
    #[serde(default)]
    max_routes: Option<Spanned<i64>>,
    #[serde(default)]
    share_every: Option<Spanned<String>>,
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
            .map(RuleIdRange::one)
            .ok_or_else(|| format!("rule id {n} must be between 1 and 9999999")),
        RawRuleId::Str(s) => {
            let t = s.trim();
            match t.split_once('-') {
                None => one(t).map(RuleIdRange::one).ok_or_else(|| bad(s)),
                Some((a, b)) => match (one(a.trim()), one(b.trim())) {
                    (Some(first), Some(last)) if first <= last => Ok(RuleIdRange { first, last }),
                    (Some(_), Some(_)) => Err(format!("range `{s}` ends before it starts")),
                    _ => Err(bad(s)),
                },
            }
        }
    }
}

/// `reject` or `inspect_prefix`.
fn limit_action(v: &Spanned<String>, key: &str) -> Result<BodyLimitAction, String> {
    match v.get_ref().as_str() {
        "reject" => Ok(BodyLimitAction::Reject),
        "inspect_prefix" => Ok(BodyLimitAction::InspectPrefix),
        other => Err(format!(
            "waf: unknown {key} `{other}` (expected reject or inspect_prefix)"
        )),
    }
}

impl RawWaf {
    /// Validates the section; every problem goes to `diag`. None when any was found.
    pub(crate) fn compile(&self, diag: &mut Diagnostics<'_>) -> Option<WafSettings> {
        let before = diag.len();
        let mut s = WafSettings::default();
        // Runs a check: its value, or its message at the span.
        fn at<T>(
            diag: &mut Diagnostics<'_>,
            span: std::ops::Range<usize>,
            r: Result<T, String>,
        ) -> Option<T> {
            r.map_err(|m| diag.span(span, m)).ok()
        }

        let path = |diag: &mut Diagnostics<'_>, v: &Spanned<String>, what: &str| {
            at(diag, v.span(), check_path(what, v.get_ref()));
            v.get_ref().clone()
        };
        s.crs_dir = self.crs_dir.as_ref().map(|v| path(diag, v, "crs_dir"));
        s.skip_unsupported_rules = self.skip_unsupported_rules;
        s.detectors = self.detectors.unwrap_or(true);
        s.refinements = self.refinements.unwrap_or(true);
        s.value_memo = self.value_memo.unwrap_or(true);
        s.setup = self.setup.as_ref().map(|v| path(diag, v, "setup"));
        s.plugins_dir = self
            .plugins_dir
            .as_ref()
            .map(|v| path(diag, v, "plugins_dir"));
        s.extra_rules = self
            .extra_rules
            .iter()
            .map(|v| path(diag, v, "extra_rules entries"))
            .collect();

        if let Some(m) = &self.mode {
            let mode = match m.get_ref().as_str() {
                "block" => Ok(WafMode::Block),
                "detect" => Ok(WafMode::Detect),
                other => Err(format!(
                    "waf: unknown mode `{other}` (expected block or detect)"
                )),
            };
            if let Some(mode) = at(diag, m.span(), mode) {
                s.mode = mode;
            }
        }
        if let Some(pl) = &self.blocking_paranoia_level {
            let r = check_paranoia("blocking_paranoia_level", *pl.get_ref());
            if let Some(n) = at(diag, pl.span(), r) {
                s.blocking_paranoia_level = n;
            }
        }
        if let Some(pl) = &self.detection_paranoia_level {
            let r = check_detection_level(*pl.get_ref(), s.blocking_paranoia_level);
            s.detection_paranoia_level = at(diag, pl.span(), r);
        }
        let int = |diag: &mut Diagnostics<'_>,
                   v: &Option<Spanned<i64>>,
                   check: &dyn Fn(i64) -> Result<usize, String>|
         -> Option<usize> {
            let v = v.as_ref()?;
            at(diag, v.span(), check(*v.get_ref()))
        };
        let threshold =
            |name: &'static str| move |n: i64| check_threshold(name, n).map(|n| n as usize);
        if let Some(n) = int(
            diag,
            &self.inbound_threshold,
            &threshold("inbound_threshold"),
        ) {
            s.inbound_threshold = n as u32;
        }
        if let Some(n) = int(
            diag,
            &self.outbound_threshold,
            &threshold("outbound_threshold"),
        ) {
            s.outbound_threshold = n as u32;
        }
        let limit = |name: &'static str| move |n: i64| check_body_limit(name, n);
        if let Some(n) = int(diag, &self.max_body_bytes, &limit("max_body_bytes")) {
            s.body.limit = n;
            // An explicit overall limit below the default no-files limit lowers it too.
            s.body.limit_no_files = s.body.limit_no_files.min(n);
        }
        if let Some(n) = int(
            diag,
            &self.max_body_bytes_no_files,
            &limit("max_body_bytes_no_files"),
        ) {
            if n > s.body.limit {
                if let Some(v) = &self.max_body_bytes_no_files {
                    diag.span(
                        v.span(),
                        format!(
                            "waf: max_body_bytes_no_files ({n}) must not exceed max_body_bytes ({})",
                            s.body.limit
                        ),
                    );
                }
            } else {
                s.body.limit_no_files = n;
            }
        }
        if let Some(v) = &self.body_limit_action {
            if let Some(a) = at(diag, v.span(), limit_action(v, "body_limit_action")) {
                s.body.limit_action = a;
            }
        }
        if let Some(v) = &self.body_content_encoding {
            let r = match v.get_ref().as_str() {
                "decompress" => Ok(ContentEncodingAction::Decompress),
                "refuse" => Ok(ContentEncodingAction::Refuse),
                other => Err(format!(
                    "waf: unknown body_content_encoding `{other}` (expected decompress or refuse)"
                )),
            };
            if let Some(a) = at(diag, v.span(), r) {
                s.body.content_encoding = a;
            }
        }
        if let Some(on) = self.inspect_responses {
            s.response.enabled = on;
        }
        if let Some(n) = int(
            diag,
            &self.max_response_body_bytes,
            &limit("max_response_body_bytes"),
        ) {
            s.response.body_limit = n;
        }
        if let Some(v) = &self.response_body_limit_action {
            if let Some(a) = at(
                diag,
                v.span(),
                limit_action(v, "response_body_limit_action"),
            ) {
                s.response.limit_action = a;
            }
        }
        if let Some(types) = &self.response_body_mime_types {
            s.response.mime_types = types
                .iter()
                .filter_map(|t| at(diag, t.span(), check_mime_type(t.get_ref())))
                .collect();
        }

        for (k, v) in &self.tx {
            let Some(name) = at(diag, k.span(), check_tx_name(k.get_ref())) else {
                continue;
            };
            let value = match v.get_ref() {
                RawScalar::Str(s) => s.clone(),
                RawScalar::Int(i) => i.to_string(),
                RawScalar::Bool(b) => u8::from(*b).to_string(),
            };
            if at(diag, v.span(), check_tx_value(k.get_ref(), &value)).is_some() {
                s.tx.insert(name, value);
            }
        }

        if let Some(m) = &self.model {
            model(m, &mut s.model, diag);
        }

        for (i, e) in self.exclusions.iter().enumerate() {
            let e_span = e.span();
            let e = e.get_ref();
            let what = format!("waf exclusion #{}", i + 1);
            let located = |r: Result<(), String>| r.map_err(|m| format!("{what}: {m}"));
            let mut ex = WafExclusion::default();
            if let Some(h) = &e.host {
                let r = check_exclusion_host(h.get_ref()).map_err(|m| format!("{what}: {m}"));
                ex.host = Some(
                    at(diag, h.span(), r)
                        .unwrap_or_else(|| h.get_ref().trim().to_ascii_lowercase()),
                );
            }
            if let Some(p) = &e.path_prefix {
                at(diag, p.span(), located(check_path_prefix(p.get_ref())));
                ex.path_prefix = Some(p.get_ref().clone());
            }
            for r in &e.rule_ids {
                let range = parse_rule_ids(r.get_ref()).map_err(|m| format!("{what}: {m}"));
                if let Some(range) = at(diag, r.span(), range) {
                    ex.rule_ids.push(range);
                }
            }
            for t in &e.tags {
                at(diag, t.span(), located(check_tag(t.get_ref())));
                ex.tags.push(t.get_ref().clone());
            }
            for t in &e.targets {
                at(diag, t.span(), located(check_target(t.get_ref())));
                ex.targets.push(t.get_ref().clone());
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

/// `[waf.model]` into `out`, every problem located.
fn model(m: &RawModel, out: &mut ModelSettings, diag: &mut Diagnostics<'_>) {
    if let Some(on) = m.learn {
        out.learn = on;
    }
    if let Some(a) = &m.apply {
        match check_model_apply(a.get_ref()) {
            Ok(v) => out.apply = v,
            Err(e) => diag.span(a.span(), e),
        }
    }
    let mut int = |v: &Option<Spanned<i64>>, name: &str, max: i64, out: &mut u64| {
        if let Some(v) = v {
            match check_model_int(name, *v.get_ref(), max) {
                Ok(n) => *out = n,
                Err(e) => diag.span(v.span(), e),
            }
        }
    };
    int(
        &m.min_requests,
        "min_requests",
        1_000_000_000,
        &mut out.min_requests,
    );
    int(
        &m.min_sources,
        "min_sources",
        1_000_000,
        &mut out.min_sources,
    );
    let mut routes = out.max_routes as u64;
    int(
        &m.max_routes,
        "max_routes",
        MAX_MODEL_ROUTES as i64,
        &mut routes,
    );
    out.max_routes = routes as usize;
    if let Some(d) = &m.share_every {
        match check_share_every(d.get_ref()) {
            Ok(ms) => out.share_every_ms = ms,
            Err(e) => diag.span(d.span(), e),
        }
    }
}
