//! Building a WAF from a CRS directory and the policy's [`WafSettings`],
//! and asking it for a verdict on a request.
//!
//! The settings a user puts in a policy (`mode`, paranoia levels,
//! thresholds, exclusions, body limits) become SecLang directives placed
//! before the CRS rules, exactly where a `crs-setup.conf` and `REQUEST-900`
//! exclusions would go; the engine has no second configuration type or path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use palisade_policy::waf::{WafMode, WafSettings};

use crate::parser::{self, Directive};
use crate::rules::{self, RuleSet};
use crate::transaction::{HttpRequest, MatchedRule, Transaction};
use crate::WafError;

/// The result of inspecting a request.
#[derive(Debug, Clone, Default)]
pub struct WafVerdict {
    /// The engine decided to block (only in `block` mode).
    pub blocked: bool,
    /// The inbound score reached the threshold (in either mode).
    pub would_block: bool,
    pub status: u16,
    /// Rule that blocked (949110 for CRS anomaly scoring).
    pub rule_id: Option<u32>,
    pub inbound_score: i64,
    /// Detection rules that matched (logged ones), in evaluation order.
    pub matched: Vec<MatchedRule>,
}

/// A loaded WAF, cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Waf {
    rules: Arc<RuleSet>,
    mode: WafMode,
    inbound_threshold: i64,
}

/// Refuse request bodies the processors could not parse, like rules
/// 200002/200003 of ModSecurity's recommended configuration.
const BODY_ERROR_RULES: &str = r#"SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation',logdata:'%{reqbody_error_msg}'"
"#;

/// Ids for rules generated from the policy, far from CRS' 900000-999999.
const GENERATED_ID_BASE: u32 = 9_100_000;

/// The CRS `rules/` directory for `dir` (the directory itself or `dir/rules`).
pub fn rules_dir(dir: &Path) -> PathBuf {
    let sub = dir.join("rules");
    if sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    }
}

/// Every directive `settings` stand for, in load order: the generated
/// preamble, the setup file, the generated `tx.` settings and exclusions,
/// CRS' rule files, then `extra_rules`. Invalid settings are refused with
/// every problem listed.
pub fn directives(settings: &WafSettings) -> Result<Vec<Directive>, WafError> {
    Settings(settings).directives()
}

/// The SecLang a policy's settings stand for, and the files to load.
struct Settings<'a>(&'a WafSettings);

impl Settings<'_> {
    /// The SecLang this configuration stands for, placed before CRS.
    fn preamble(&self) -> String {
        let mut s = String::new();
        let engine = match self.0.mode {
            WafMode::Block => "On",
            WafMode::Detect => "DetectionOnly",
        };
        let _ = writeln!(s, "SecRuleEngine {engine}");
        let _ = writeln!(s, "SecRequestBodyAccess On");
        let _ = writeln!(s, "SecRequestBodyLimit {}", self.0.body.limit);
        if self.0.setup.is_none() {
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

    fn settings_rules(&self) -> String {
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

    /// Every directive, in load order.
    fn directives(&self) -> Result<Vec<Directive>, WafError> {
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
        let dir = rules_dir(Path::new(&self.0.crs_dir));
        if !dir.is_dir() {
            return Err(WafError::Config(format!(
                "crs_dir {}: not a directory (install OWASP CRS and point crs_dir at it)",
                self.0.crs_dir
            )));
        }
        let files = parser::conf_files_in(&dir)?;
        if !files.iter().any(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("REQUEST-"))
        }) {
            return Err(WafError::Config(format!(
                "crs_dir {}: no REQUEST-*.conf rule files found",
                dir.display()
            )));
        }
        let here: Arc<Path> = Arc::from(dir.as_path());
        let mut out = parser::parse_str(&self.preamble(), &Arc::from("<waf settings>"), &here)?;
        if let Some(setup) = &self.0.setup {
            out.extend(parser::load_path(Path::new(setup))?);
        }
        out.extend(parser::parse_str(
            &self.settings_rules(),
            &Arc::from("<waf settings>"),
            &here,
        )?);
        for f in files {
            out.extend(parser::load_path(&f)?);
        }
        for f in &self.0.extra_rules {
            out.extend(parser::load_path(Path::new(f))?);
        }
        Ok(out)
    }
}

impl Waf {
    /// Loads and compiles CRS with these settings. Every problem is reported.
    pub fn build(settings: &WafSettings) -> Result<Waf, WafError> {
        let rules = rules::compile_with(&directives(settings)?, settings.skip_unsupported_rules)?;
        Ok(Waf {
            rules: Arc::new(rules),
            mode: settings.mode,
            inbound_threshold: settings.inbound_threshold as i64,
        })
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Rules left out because the engine cannot run them (only with
    /// `skip_unsupported_rules`), one line each with file, line and reason.
    pub fn skipped_rules(&self) -> &[String] {
        &self.rules.skipped
    }

    pub fn mode(&self) -> WafMode {
        self.mode
    }

    /// Runs the request phases (headers and body) over `req`.
    pub fn inspect(&self, req: HttpRequest) -> WafVerdict {
        let mut tx = Transaction::new(&self.rules, req);
        let interruption = tx.process_request().cloned();
        let score = tx.inbound_score();
        let matched: Vec<MatchedRule> = std::mem::take(&mut tx.state.matched)
            .into_iter()
            .filter(|m| m.log && m.id < GENERATED_ID_BASE)
            .collect();
        let anomaly_rule = matched.iter().find(|m| m.id == 949110).map(|m| m.id);
        WafVerdict {
            blocked: interruption.is_some(),
            would_block: interruption.is_some()
                || anomaly_rule.is_some()
                || score >= self.inbound_threshold,
            status: interruption.as_ref().map(|i| i.status).unwrap_or(0),
            rule_id: interruption.as_ref().map(|i| i.rule_id).or(anomaly_rule),
            inbound_score: score,
            matched,
        }
    }
}
