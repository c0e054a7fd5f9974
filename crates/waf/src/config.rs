//! Building a WAF from a CRS directory and the policy's [`WafSettings`],
//! and asking it for a verdict on a request.
//!
//! The settings a user puts in a policy (`mode`, paranoia levels,
//! thresholds, exclusions, body limits) become SecLang directives placed
//! before the CRS rules, exactly where a `crs-setup.conf` and `REQUEST-900`
//! exclusions would go; the engine has no second configuration type or path.
//! What to do with bodies (limits, encodings, which responses to inspect) is
//! read from the same settings by [`crate::exchange`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use palisade_policy::learn::model::ModelApply;
use palisade_policy::waf::{BodyLimitAction, WafMode, WafSettings};

use crate::crs::{self, CrsInfo, CrsLocation, RuleStats};
use crate::exchange::Exchange;
use crate::parser::{self, Directive};
use crate::rules::{self, RuleSet};
use crate::transaction::HttpRequest;
use crate::WafError;

pub use crate::transaction::MatchedRule;

/// The result of inspecting a request (or, from an [`Exchange`], of one of
/// its steps: see [`crate::exchange::ExchangeVerdict`], which adds the
/// phase, the outbound score and a reason).
#[derive(Debug, Clone, Default)]
pub struct WafVerdict {
    /// The engine decided to block (only in `block` mode).
    pub blocked: bool,
    /// The anomaly score reached the threshold, or a rule or limit would
    /// have refused the transaction (in either mode).
    pub would_block: bool,
    pub status: u16,
    /// Rule that blocked (949110 / 959100 for CRS anomaly scoring; `None`
    /// for a body refused by a limit or its encoding).
    pub rule_id: Option<u32>,
    pub inbound_score: i64,
    /// Detection rules that matched (logged ones), in evaluation order.
    pub matched: Vec<MatchedRule>,
}

/// A loaded WAF, cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Waf {
    pub(crate) rules: Arc<RuleSet>,
    pub(crate) settings: Arc<WafSettings>,
    pub(crate) crs: Arc<CrsInfo>,
}

/// Refuse request bodies the processors could not parse, like rules
/// 200002/200003 of ModSecurity's recommended configuration.
const BODY_ERROR_RULES: &str = r#"SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation',logdata:'%{reqbody_error_msg}'"
"#;

/// CRS settings whose CRS defaults block common legitimate traffic, set
/// to Palisade's defaults when the policy has no `setup` file and its `tx`
/// does not name them (docs/waf.md, "Defaults", says what each gives up):
/// REST APIs use PUT, PATCH and DELETE (CRS allows GET HEAD POST OPTIONS).
/// The content types are CRS 3.3's list (a superset of 4.28's) plus the
/// patch types and `text/plain`, and [`ANY_MEDIA_TYPE_RULE`] adds any other
/// well-formed media type per request: every body is inspected whatever its
/// type (parsed by its processor; text types as JSON when they are JSON,
/// else as one argument; any other type as JSON when it is JSON: see
/// `body::parse_text` and `body::parse_other`), so CRS' reason for the list
/// (bodies ModSecurity cannot parse go uninspected) does not hold.
pub const PALISADE_TX_DEFAULTS: &[(&str, &str)] = &[
    ("allowed_methods", "GET HEAD POST OPTIONS PUT PATCH DELETE"),
    // CRS 4.28's list without `content-encoding` (request bodies are
    // decompressed and inspected, or refused: `[waf] body_content_encoding`)
    // and `expect` (only `Expect: 100-continue` exists; [`EXPECT_RULE`]
    // refuses any other value).
    (
        "restricted_headers_basic",
        "/proxy/ /lock-token/ /content-range/ /if/ /x-http-method-override/ /x-http-method/ /x-method-override/ /x-middleware-subrequest/",
    ),
    // The same for CRS 3.3, whose single list has this name.
    (
        "restricted_headers",
        "/accept-charset/ /proxy/ /lock-token/ /content-range/ /if/",
    ),
    // Palisade's own: 1 runs [`SAME_SITE_REFERER_RULE`].
    ("palisade_same_site_referer", "1"),
    // Palisade's own: 1 runs the rule of `restricted_files_rule`.
    ("palisade_file_names_at_segment_start", "1"),
    (
        "allowed_request_content_type",
        "|application/x-www-form-urlencoded| |multipart/form-data| |multipart/related| |text/xml| |application/xml| |application/soap+xml| |application/json| |application/cloudevents+json| |application/cloudevents-batch+json| |application/json-patch+json| |application/merge-patch+json| |application/strategic-merge-patch+json| |text/plain|",
    ),
];

/// Allows any well-formed media type (`type/subtype` of RFC 6838
/// restricted-name characters, parameters ignored) on top of
/// `tx.allowed_request_content_type`, when that list is Palisade's default:
/// 920420 then flags only malformed `Content-Type` values. Runs before the
/// positive model's rule, so `[waf.model] apply = "replace"` still limits a
/// route to the types it learned.
pub const ANY_MEDIA_TYPE_RULE: &str = r#"SecRule REQUEST_HEADERS:Content-Type "@rx ^\s*([a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*)\s*(?:;|$)" "id:9100004,phase:1,pass,nolog,t:none,t:lowercase,capture,setvar:'tx.allowed_request_content_type=%{tx.allowed_request_content_type} |%{tx.1}|'""#;

/// CRS' session-fixation rule 943110 counts a session-id parameter as an
/// attack when the `Referer`'s host does not end with the request's `Host`
/// — also when the referer is a sibling subdomain of the same site
/// (`www.example.com` linking to `api.example.com`, single sign-on hops).
/// This rule takes 943110 out for a request whose referer is the same site
/// (the same registrable domain by the Public Suffix List: `@sameSite`,
/// [`crate::site`]) when `tx.palisade_same_site_referer` is 1 (Palisade's
/// default; CRS' regression settings set 0). Off-site referers, and
/// userinfo tricks (`https://example.com@evil.test/`), still match.
pub const SAME_SITE_REFERER_RULE: &str = r#"SecRule TX:palisade_same_site_referer "@eq 1" "id:9100005,phase:1,pass,nolog,t:none,chain"
SecRule REQUEST_HEADERS:Referer "@rx ^(?:ht|f)tps?://([^/?#]+)" "t:none,capture,chain"
SecRule TX:1 "@sameSite %{request_headers.host}" "t:none,ctl:ruleRemoveById=943110""#;

/// CRS' 930130 looks for restricted file names (`restricted-files.data`:
/// `.env`, `.profile`, `config.json`, `/debug.log` ...) anywhere in the
/// request's path (`@pmFromFile`, a substring search), so API paths whose
/// segments merely contain one — Slack's `/api/users.profile.get`, a
/// `/api/app-config.json` — count as attacks. A file is reached only by a
/// path segment that starts with its name (or, for names that start with a
/// dot, which are also extensions such as `.sql.gz`, ends with it, its last
/// extension possibly longer): this
/// rule takes the path out of 930130 when no listed name does (after 930130's own
/// transformations), when `tx.palisade_file_names_at_segment_start` is 1
/// (Palisade's default; CRS' regression settings set 0). `None` when CRS
/// has no such data file (the rule is then not generated).
fn restricted_files_rule(rules_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(rules_dir.join("restricted-files.data")).ok()?;
    let escape = |l: &str| -> String {
        l.chars()
            .map(|c| match c {
                '.' => "[.]".to_string(),
                '~' => "[~]".to_string(),
                c => c.to_string(),
            })
            .collect()
    };
    let names: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| {
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/@ ~".contains(&b))
        })
        .collect();
    let starts: Vec<String> = names
        .iter()
        .map(|l| escape(l.trim_start_matches('/')))
        .filter(|l| !l.is_empty())
        .collect();
    // Names that start with a dot are also extensions (`.sql.gz`,
    // `.bak`): they count at the end of a segment too, their last
    // extension possibly longer (CRS' `.sql.z` is meant to catch
    // `backup.sql.zip`), but not followed by another extension
    // (`users.profile.get`).
    let ends: Vec<String> = names
        .iter()
        .filter(|l| l.starts_with('.') && !l.ends_with('/'))
        .map(|l| escape(l))
        .collect();
    if starts.is_empty() {
        return None;
    }
    let mut rx = format!("(?:^|/)(?:{})", starts.join("|"));
    if !ends.is_empty() {
        rx = format!("{rx}|(?:{})[a-z0-9]*(?:/|$)", ends.join("|"));
    }
    let t = "t:none,t:utf8toUnicode,t:urlDecodeUni,t:normalizePathWin";
    Some(format!(
        "SecRule TX:palisade_file_names_at_segment_start \"@eq 1\" \"id:{id},phase:1,pass,nolog,t:none,chain\"\n\
         SecRule REQUEST_FILENAME \"!@rx (?i){rx}\" \"{t},ctl:ruleRemoveTargetById=930130;REQUEST_FILENAME\"",
        id = RESTRICTED_FILES_RULE_ID,
    ))
}

/// The id of the rule [`restricted_files_rule`] generates.
pub const RESTRICTED_FILES_RULE_ID: u32 = 9_100_006;

/// The id of [`EXPECT_RULE`]: a check, so outside the hidden range of the
/// generated settings (9100000-9199999) and reported like any rule.
pub const EXPECT_RULE_ID: u32 = 9_201_000;

/// Refuses (417) an `Expect` header other than `100-continue`, the one
/// expectation HTTP defines, when Palisade's `restricted_headers_basic`
/// (which lets `Expect` through) is in force.
pub const EXPECT_RULE: &str = r#"SecRule REQUEST_HEADERS:Expect "!@streq 100-continue" "id:9201000,phase:1,deny,status:417,log,t:none,t:lowercase,t:trim,msg:'Expectation other than 100-continue',logdata:'%{MATCHED_VAR}',tag:'palisade-defaults',severity:'CRITICAL'""#;

/// The `tx` variable the edge sets to a route's learned methods
/// (`palisade_policy::learn::model::Allowances::methods`).
pub const MODEL_METHODS_TX: &str = "palisade_model_methods";
/// The `tx` variable the edge sets to a route's learned content types.
pub const MODEL_CONTENT_TYPES_TX: &str = "palisade_model_content_types";

/// Whether directives set `tx.<key>` (a stock `crs-setup.conf` has these
/// settings commented out: the parser left them out).
fn sets_tx(directives: &[Directive], key: &str) -> bool {
    let needle = format!("tx.{}=", key.to_ascii_lowercase());
    directives
        .iter()
        .flat_map(|d| &d.args)
        .any(|a| a.to_ascii_lowercase().contains(&needle))
}

/// A CRS v4 plugins directory's files, by kind, in load order.
#[derive(Default)]
struct Plugins {
    config: Vec<PathBuf>,
    before: Vec<PathBuf>,
    after: Vec<PathBuf>,
}

/// Ids for rules generated from the policy, far from CRS' 900000-999999:
/// 9100000-9199999 (never reported as matches).
pub(crate) const GENERATED_ID_BASE: u32 = 9_100_000;

/// Whether `id` is one of the rules generated from the policy.
pub(crate) fn is_generated(id: u32) -> bool {
    (GENERATED_ID_BASE..GENERATED_ID_BASE + 100_000).contains(&id)
}

/// Palisade's built-in detector rules (`[waf] detectors`): ids
/// 9200000-9200999, loaded right before CRS' blocking evaluation.
pub const DETECTOR_RULES: &str = include_str!("../rules/palisade-detectors.conf");

/// The name the detector rules carry in locations and logs.
pub const DETECTOR_RULES_NAME: &str = "<palisade detectors>";

/// Whether the detector rules go before this CRS file: the first file
/// that runs after the request attack rules (`REQUEST-949-...`,
/// `REQUEST-95x`+, any `RESPONSE-` file).
fn detectors_before(file: &Path) -> bool {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_uppercase())
        .unwrap_or_default();
    match name.strip_prefix("REQUEST-") {
        Some(rest) => rest.get(..3).is_some_and(|n| n >= "949"),
        None => name.starts_with("RESPONSE-"),
    }
}

/// Every directive `settings` stand for, in load order: the generated
/// preamble, the setup file, the generated `tx.` settings and exclusions,
/// CRS' rule files (with Palisade's detector rules before
/// `REQUEST-949-BLOCKING-EVALUATION` when `detectors` is on), then
/// `extra_rules`. Invalid settings are refused with
/// every problem listed. The CRS is `crs_dir`, or the one
/// [`crate::crs::locate`] finds (with its setup file, when the settings
/// name none).
pub fn directives(settings: &WafSettings) -> Result<Vec<Directive>, WafError> {
    Settings(settings).directives().map(|(d, _)| d)
}

/// The SecLang a policy's settings stand for, and the files to load.
struct Settings<'a>(&'a WafSettings);

impl Settings<'_> {
    /// The setup file to load: the policy's, else the one found with CRS.
    fn setup(&self, crs: &CrsLocation) -> Option<PathBuf> {
        self.0
            .setup
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| crs.setup.clone())
    }
}

/// The generated SecLang placed before the setup file and CRS.
struct Preamble<'a> {
    settings: &'a WafSettings,
    /// A setup file follows (else the preamble stands in for one).
    has_setup: bool,
}

impl Preamble<'_> {
    /// The SecLang this configuration stands for, placed before CRS.
    fn text(&self) -> String {
        let mut s = String::new();
        let engine = match self.settings.mode {
            WafMode::Block => "On",
            WafMode::Detect => "DetectionOnly",
        };
        let _ = writeln!(s, "SecRuleEngine {engine}");
        let body = &self.settings.body;
        let limit_action = |a: BodyLimitAction| match a {
            BodyLimitAction::Reject => "Reject",
            BodyLimitAction::InspectPrefix => "ProcessPartial",
        };
        let _ = writeln!(s, "SecRequestBodyAccess On");
        let _ = writeln!(s, "SecRequestBodyLimit {}", body.limit);
        let _ = writeln!(s, "SecRequestBodyNoFilesLimit {}", body.limit_no_files);
        let _ = writeln!(
            s,
            "SecRequestBodyLimitAction {}",
            limit_action(body.limit_action)
        );
        // Phases 3 and 4 run when responses are enabled; bodies are read
        // (and this limit applies) only for these media types.
        let resp = &self.settings.response;
        let access = if resp.enabled && resp.body_limit > 0 {
            "On"
        } else {
            "Off"
        };
        let _ = writeln!(s, "SecResponseBodyAccess {access}");
        let _ = writeln!(s, "SecResponseBodyLimit {}", resp.body_limit);
        let _ = writeln!(
            s,
            "SecResponseBodyLimitAction {}",
            limit_action(resp.limit_action)
        );
        if !resp.mime_types.is_empty() {
            let _ = writeln!(s, "SecResponseBodyMimeType {}", resp.mime_types.join(" "));
        }
        if !self.has_setup {
            for p in 1..=5 {
                let _ = writeln!(s, "SecDefaultAction \"phase:{p},log,auditlog,pass\"");
            }
            let _ = writeln!(
                s,
                "SecAction \"id:{},phase:1,pass,nolog,setvar:tx.crs_setup_version=4280\"",
                GENERATED_ID_BASE
            );
        }
        // As ModSecurity's recommended configuration: a body that cannot be
        // parsed cannot be inspected, so it is refused (400).
        s.push_str(BODY_ERROR_RULES);
        s
    }
}

impl Settings<'_> {
    fn settings_rules(&self, setup: &[Directive], rules_dir: &Path) -> String {
        let mut s = String::new();
        let detection = self.0.effective_detection_level();
        let mut vars = vec![
            (
                "blocking_paranoia_level".to_string(),
                self.0.blocking_paranoia_level.to_string(),
            ),
            (
                "detection_paranoia_level".to_string(),
                detection.to_string(),
            ),
            // The same levels under their CRS 3.x names.
            (
                "paranoia_level".to_string(),
                self.0.blocking_paranoia_level.to_string(),
            ),
            (
                "executing_paranoia_level".to_string(),
                detection.to_string(),
            ),
            (
                "inbound_anomaly_score_threshold".to_string(),
                self.0.inbound_threshold.to_string(),
            ),
            (
                "outbound_anomaly_score_threshold".to_string(),
                self.0.outbound_threshold.to_string(),
            ),
        ];
        // Palisade's defaults for real traffic (docs/waf.md, "Defaults"),
        // unless `tx` or the setup file in use (the policy's, or the
        // crs-setup.conf found with CRS) sets them.
        let (mut default_types, mut default_headers) = (false, false);
        for (k, v) in PALISADE_TX_DEFAULTS {
            let in_tx = self.0.tx.keys().any(|t| t.eq_ignore_ascii_case(k));
            if !in_tx && !sets_tx(setup, k) {
                vars.push((k.to_string(), v.to_string()));
                default_types |= *k == "allowed_request_content_type";
                default_headers |= *k == "restricted_headers_basic";
            }
        }
        vars.extend(self.0.tx.iter().map(|(k, v)| (k.clone(), v.clone())));
        let setvars: Vec<String> = vars
            .iter()
            .map(|(k, v)| format!("setvar:'tx.{}={}'", k.to_ascii_lowercase(), v))
            .collect();
        let _ = writeln!(
            s,
            "SecAction \"id:{},phase:1,pass,nolog,{}\"",
            GENERATED_ID_BASE + 1,
            setvars.join(",")
        );
        if default_types {
            s.push_str(ANY_MEDIA_TYPE_RULE);
            s.push('\n');
        }
        s.push_str(SAME_SITE_REFERER_RULE);
        s.push('\n');
        if let Some(rule) = restricted_files_rule(rules_dir) {
            s.push_str(&rule);
            s.push('\n');
        }
        if default_headers {
            s.push_str(EXPECT_RULE);
            s.push('\n');
        }
        // The positive model's lists for this request's route (the edge sets
        // `tx.palisade_model_*` per request; see `Exchange::set_tx`).
        let model = &self.0.model;
        if model.apply != ModelApply::Off {
            for (i, (list, learned)) in [
                ("allowed_methods", MODEL_METHODS_TX),
                ("allowed_request_content_type", MODEL_CONTENT_TYPES_TX),
            ]
            .into_iter()
            .enumerate()
            {
                let value = match model.apply {
                    ModelApply::Replace => format!("%{{tx.{learned}}}"),
                    _ => format!("%{{tx.{list}}} %{{tx.{learned}}}"),
                };
                let _ = writeln!(
                    s,
                    "SecRule &TX:{learned} \"@gt 0\" \"id:{},phase:1,pass,nolog,setvar:'tx.{list}={value}'\"",
                    GENERATED_ID_BASE + 2 + i as u32,
                );
            }
        }
        for (i, e) in self.0.exclusions.iter().enumerate() {
            let id = GENERATED_ID_BASE + 100 + i as u32;
            let mut ctls = Vec::new();
            for r in &e.rule_ids {
                if e.targets.is_empty() {
                    ctls.push(format!("ctl:ruleRemoveById={r}"));
                }
            }
            for t in &e.tags {
                if e.targets.is_empty() {
                    ctls.push(format!("ctl:ruleRemoveByTag={t}"));
                }
            }
            for t in &e.targets {
                if e.rule_ids.is_empty() && e.tags.is_empty() {
                    ctls.push(format!("ctl:ruleRemoveTargetByTag=OWASP_CRS;{t}"));
                }
                for r in &e.rule_ids {
                    ctls.push(format!("ctl:ruleRemoveTargetById={r};{t}"));
                }
                for tag in &e.tags {
                    ctls.push(format!("ctl:ruleRemoveTargetByTag={tag};{t}"));
                }
            }
            let actions = ctls.join(",");
            match (&e.host, &e.path_prefix) {
                (None, None) => {
                    let _ = writeln!(s, "SecAction \"id:{id},phase:1,pass,nolog,{actions}\"");
                }
                (Some(h), None) => {
                    let _ = writeln!(
                        s,
                        "SecRule SERVER_NAME \"@streq {h}\" \"id:{id},phase:1,pass,nolog,t:lowercase,{actions}\""
                    );
                }
                (None, Some(p)) => {
                    let _ = writeln!(
                        s,
                        "SecRule REQUEST_FILENAME \"@beginsWith {p}\" \"id:{id},phase:1,pass,nolog,{actions}\""
                    );
                }
                (Some(h), Some(p)) => {
                    let _ = writeln!(
                        s,
                        "SecRule SERVER_NAME \"@streq {h}\" \"id:{id},phase:1,pass,nolog,t:lowercase,chain\""
                    );
                    let _ = writeln!(
                        s,
                        "SecRule REQUEST_FILENAME \"@beginsWith {p}\" \"{actions}\""
                    );
                }
            }
        }
        s
    }

    /// The plugin files to load: from `plugins_dir`, else from a
    /// `plugins/` directory beside the CRS `rules/` directory.
    fn plugins(&self, rules: &Path) -> Result<Plugins, WafError> {
        let dir = match &self.0.plugins_dir {
            Some(d) => {
                let d = PathBuf::from(d);
                if !d.is_dir() {
                    return Err(WafError::Config(format!(
                        "plugins_dir {}: not a directory",
                        d.display()
                    )));
                }
                d
            }
            None => match rules.parent().map(|p| p.join("plugins")) {
                Some(d) if d.is_dir() => d,
                _ => return Ok(Plugins::default()),
            },
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| WafError::Config(format!("plugins_dir {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut out = Plugins::default();
        for p in names {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with("-config.conf") {
                out.config.push(p);
            } else if name.ends_with("-before.conf") {
                out.before.push(p);
            } else if name.ends_with("-after.conf") {
                out.after.push(p);
            }
        }
        Ok(out)
    }

    /// Every directive, in load order, and the CRS they come from.
    fn directives(&self) -> Result<(Vec<Directive>, CrsLocation), WafError> {
        let mut errs = self.0.validate();
        for (i, e) in self.0.exclusions.iter().enumerate() {
            for t in &e.targets {
                if let Err(m) = crate::variables::parse_targets(t) {
                    errs.push(format!("waf exclusion #{}: target {t:?}: {m}", i + 1));
                }
            }
        }
        if !errs.is_empty() {
            return Err(WafError::Invalid(errs));
        }
        let crs = crs::locate(self.0.crs_dir.as_deref())?;
        let dir = &crs.rules_dir;
        let files = parser::conf_files_in(dir)?;
        let plugins = self.plugins(dir)?;
        let here: Arc<Path> = Arc::from(dir.as_path());
        let setup = self.setup(&crs);
        let preamble = Preamble {
            settings: self.0,
            has_setup: setup.is_some(),
        };
        let mut out = parser::parse_str(&preamble.text(), &Arc::from("<waf settings>"), &here)?;
        let setup_directives = match &setup {
            Some(setup) => parser::load_path(setup)?,
            None => Vec::new(),
        };
        let settings = self.settings_rules(&setup_directives, dir);
        out.extend(setup_directives);
        out.extend(parser::parse_str(
            &settings,
            &Arc::from("<waf settings>"),
            &here,
        )?);
        for f in plugins.config.iter().chain(&plugins.before) {
            out.extend(parser::load_path(f)?);
        }
        let mut detectors = self.0.detectors;
        for f in files {
            if detectors && detectors_before(&f) {
                out.extend(detector_directives(&here)?);
                detectors = false;
            }
            out.extend(parser::load_path(&f)?);
        }
        if detectors {
            out.extend(detector_directives(&here)?);
        }
        // CRS' rules (and the plugins before them) are all in: refine them.
        if self.0.refinements {
            crate::refine::apply(&mut out);
        }
        for f in &plugins.after {
            out.extend(parser::load_path(f)?);
        }
        for f in &self.0.extra_rules {
            out.extend(parser::load_path(Path::new(f))?);
        }
        Ok((out, crs))
    }
}

/// The built-in detector rules, parsed.
fn detector_directives(here: &Arc<Path>) -> Result<Vec<Directive>, WafError> {
    parser::parse_str(DETECTOR_RULES, &Arc::from(DETECTOR_RULES_NAME), here)
}

impl Waf {
    /// Loads and compiles CRS with these settings. Every problem is reported.
    pub fn build(settings: &WafSettings) -> Result<Waf, WafError> {
        let (directives, crs) = Settings(settings).directives()?;
        let mut rules = rules::compile_with(&directives, settings.skip_unsupported_rules)?;
        if !settings.value_memo {
            rules.set_value_memo(0);
        }
        Ok(Waf {
            rules: Arc::new(rules),
            settings: Arc::new(settings.clone()),
            crs: Arc::new(CrsInfo::read(&crs)?),
        })
    }

    /// Which CRS was loaded: where, its version and digest.
    pub fn crs(&self) -> &CrsInfo {
        &self.crs
    }

    /// Rules per phase, and those on the backtracking engine.
    pub fn rule_stats(&self) -> RuleStats {
        RuleStats::of(&self.rules)
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Sizes the value memo ([`crate::memo`]) in values; 0 turns it off.
    /// Only before the rule set is shared with a transaction or a clone of
    /// this `Waf`: returns whether it was applied.
    pub fn set_value_memo(&mut self, entries: usize) -> bool {
        match Arc::get_mut(&mut self.rules) {
            Some(rules) => {
                rules.set_value_memo(entries);
                true
            }
            None => false,
        }
    }

    /// The compiled rule set, shared (what a transaction holds).
    pub fn rule_set(&self) -> Arc<RuleSet> {
        Arc::clone(&self.rules)
    }

    /// The settings the WAF was built from.
    pub fn settings(&self) -> &WafSettings {
        &self.settings
    }

    /// Rules left out because the engine cannot run them (only with
    /// `skip_unsupported_rules`), one line each with file, line and reason.
    pub fn skipped_rules(&self) -> &[String] {
        &self.rules.skipped
    }

    pub fn mode(&self) -> WafMode {
        self.settings.mode
    }

    /// Runs the request phases (headers and body) over `req`, its body
    /// (if any) as one piece: [`Waf::begin`] → `request_headers` → the body
    /// plan → `finish_request_body`. A body the plan refuses gives the
    /// refusal's verdict (413 / 415, `rule_id` `None`).
    pub fn inspect(&self, mut req: HttpRequest) -> WafVerdict {
        let body = std::mem::take(&mut req.body);
        self.begin(req).inspect_request(body)
    }

    /// Starts the inspection of one HTTP exchange (see [`Exchange`]).
    pub fn begin(&self, req: HttpRequest) -> Exchange {
        Exchange::new(self, req)
    }
}
