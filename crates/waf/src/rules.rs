//! The compiled rule set: directives turned into rules grouped by phase,
//! with markers, removals and target updates applied at load time.

use std::collections::HashMap;
use std::path::Path;

use crate::body::Processor;
use crate::macros::MacroText;
use crate::operators::{Operator, Phrases};
use crate::parser::{split_actions, Directive, Location};
use crate::transform::Transform;
use crate::variables::{parse_targets, Selector, TargetList, Var};
use crate::WafError;

/// `SecRuleEngine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineMode {
    #[default]
    On,
    DetectionOnly,
    Off,
}

/// What a matching rule does to the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disruptive {
    Pass,
    /// `block`: whatever `SecDefaultAction` of the phase says.
    Block,
    Deny,
    Drop,
    Allow,
    Redirect(String),
}

/// `setvar`.
#[derive(Debug, Clone)]
pub struct SetVar {
    /// Collection (lower-case, `tx` in practice).
    pub collection: String,
    pub name: MacroText,
    pub op: SetOp,
    /// For a literal TX name: its number (see [`crate::txvars`]).
    pub tx_slot: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum SetOp {
    Set(MacroText),
    Add(MacroText),
    Sub(MacroText),
    Delete,
}

/// An id or an inclusive id range (`942100-942199`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange(pub u32, pub u32);

impl IdRange {
    pub fn contains(&self, id: u32) -> bool {
        self.0 <= id && id <= self.1
    }

    fn parse(s: &str) -> Result<IdRange, String> {
        let s = s.trim().trim_matches('\'').trim_matches('"');
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a, b),
            None => (s, s),
        };
        let a: u32 = a.trim().parse().map_err(|_| format!("bad rule id {s:?}"))?;
        let b: u32 = b.trim().parse().map_err(|_| format!("bad rule id {s:?}"))?;
        Ok(IdRange(a.min(b), a.max(b)))
    }
}

/// `ctl:` runtime configuration changes.
#[derive(Debug, Clone)]
pub enum Ctl {
    RuleRemoveById(Vec<IdRange>),
    RuleRemoveByTag(String),
    RuleRemoveTargetById(IdRange, Var, Selector),
    RuleRemoveTargetByTag(String, Var, Selector),
    RuleEngine(EngineMode),
    RequestBodyProcessor(Processor),
    ForceRequestBodyVariable(bool),
    RequestBodyAccess(bool),
    /// Accepted and ignored: audit logging is not ours.
    Ignored,
}

/// One SecRule / SecAction (a chain link when `id` is 0).
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: u32,
    pub phase: u8,
    pub location: Location,
    pub targets: TargetList,
    pub operator: Operator,
    pub negated: bool,
    pub transforms: Vec<Transform>,
    /// Interned transformation chain (see [`TransformChains`]).
    pub chain_id: Option<u32>,
    pub msg: Option<MacroText>,
    pub logdata: Option<MacroText>,
    pub tags: Vec<String>,
    pub severity: Option<u8>,
    pub setvars: Vec<SetVar>,
    pub ctls: Vec<Ctl>,
    pub capture: bool,
    pub multi_match: bool,
    pub log: bool,
    pub disruptive: Option<Disruptive>,
    pub status: Option<u16>,
    pub skip_after: Option<String>,
    pub skip: u32,
    pub chained: Option<Box<Rule>>,
    /// True for SecAction (no targets, always matches).
    pub unconditional: bool,
    /// Rules with the same static targets and transformations share a
    /// group: one pass over the group's values per request (or response)
    /// tells which of them can match at all (see [`RuleGroup`]).
    pub group: Option<u32>,
    /// For a `@pm` rule of a group: its bit in the per-transaction "may
    /// match" bitset the group's [`crate::pmset::PmSet`] fills.
    pub pm_bit: Option<u32>,
    /// The step `skip_after` leads to in the rule's phase (`None`: the
    /// marker is not ahead, so the rest of the phase is skipped).
    pub skip_after_step: Option<usize>,
    /// For `@contains` over whitespace removal / lower-casing: tells,
    /// without transforming, values that cannot match.
    pub contains_filter: Option<crate::prefilter::ContainsFilter>,
    /// This link's bit in the value memo ([`crate::memo`]): set for links
    /// whose answer on a value depends on the value alone.
    pub memo_slot: Option<u32>,
}

/// What the rules of a group (same static targets, same transformations)
/// share: their patterns as sets checked once per value.
#[derive(Debug, Default)]
pub struct RuleGroup {
    /// The literal `@rx` patterns of its rules as one lazy DFA ("does any
    /// match?"): when none does, none of these rules can match.
    pub rx: Option<crate::lazydfa::AnySet>,
    /// The phrases of its `@pm` rules (two or more): which of them can match.
    pub pm: Option<crate::pmset::PmSet>,
    /// The `pm_bit`s of those rules.
    pub pm_bits: Vec<u32>,
}

/// A step of a phase's program.
#[derive(Debug, Clone)]
pub enum Step {
    Rule(usize),
    Marker(String),
}

/// Transformation chains interned as a prefix tree, so results are cached
/// and shared between rules that start with the same transformations.
#[derive(Debug, Default, Clone)]
pub struct TransformChains {
    /// (parent, transformation) for each node.
    pub nodes: Vec<(Option<u32>, Transform)>,
    /// Per node: union of the trigger masks from the root to it.
    pub masks: Vec<u32>,
    index: HashMap<(Option<u32>, Transform), u32>,
}

impl TransformChains {
    pub fn intern(&mut self, chain: &[Transform]) -> Option<u32> {
        let mut cur = None;
        for &t in chain {
            let key = (cur, t);
            let id = match self.index.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(key);
                    let parent = cur.map(|p: u32| self.masks[p as usize]).unwrap_or(0);
                    self.masks.push(parent | t.trigger_mask());
                    self.index.insert(key, id);
                    id
                }
            };
            cur = Some(id);
        }
        cur
    }
}

/// Engine-level settings read from configuration directives.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub mode: EngineMode,
    pub request_body_access: bool,
    pub request_body_limit: usize,
    pub response_body_access: bool,
    pub arguments_limit: usize,
    pub json_depth_limit: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            mode: EngineMode::On,
            request_body_access: true,
            request_body_limit: 13 * 1024 * 1024,
            response_body_access: false,
            arguments_limit: 1000,
            json_depth_limit: 512,
        }
    }
}

/// Default actions of a phase (`SecDefaultAction`).
#[derive(Debug, Clone)]
struct Defaults {
    disruptive: Disruptive,
    log: bool,
    transforms: Vec<Transform>,
}

/// A loaded, compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Program per phase 1..=5 (index 0 unused).
    pub phases: [Vec<Step>; 6],
    /// For each phase, marker name → step index.
    pub markers: [HashMap<String, usize>; 6],
    pub chains: TransformChains,
    pub settings: EngineSettings,
    /// What `block` means in each phase.
    pub block_action: [Disruptive; 6],
    /// Rule groups (see [`Rule::group`]): a value on which a group's sets
    /// find nothing cannot match any of its rules.
    pub groups: Vec<RuleGroup>,
    /// How many `@pm` rules are in groups (bits of [`Rule::pm_bit`]).
    pub pm_bits: usize,
    /// The TX names the rules use literally, numbered (see [`crate::txvars`]).
    pub tx_names: std::sync::Arc<crate::txvars::TxNames>,
    /// Rules left out by [`compile_with`] (`skip_unsupported`), with why.
    pub skipped: Vec<String>,
    /// Checks the value memo has a bit for: two per group (its `@rx` set
    /// found nothing, its `@pm` set found nothing), then one per link with
    /// a [`Rule::memo_slot`].
    pub memo_slots: usize,
    /// What pure checks found nothing in, across requests (`None`: off).
    pub memo: Option<crate::memo::ValueMemo>,
}

impl RuleSet {
    /// Number of rules (chain heads and SecActions).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rule(&self, id: u32) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Sets the value memo's size in values; 0 turns it off. A rule set
    /// starts with [`crate::memo::DEFAULT_ENTRIES`].
    pub fn set_value_memo(&mut self, entries: usize) {
        self.memo = crate::memo::ValueMemo::new(entries, self.memo_slots);
    }

    /// The group slots of the value memo: (`@rx` set, `@pm` set).
    pub(crate) fn group_memo_slots(g: u32) -> (u32, u32) {
        (2 * g, 2 * g + 1)
    }
}

/// Ordinary request values: a pattern matching any of them is not an
/// "attack" pattern and is always evaluated on its own.
const BENIGN_SAMPLES: &[&str] = &[
    "",
    "a",
    "0",
    "1",
    "running shoes",
    "price_asc",
    "/",
    "/shop/search",
    "search",
    "localhost",
    "shop.example.com",
    "8f14e45fceea167a5a36dedd4bea2543",
    "GA1.2.1234567890.1700000000",
    "lang%3Den%7Ccur%3DEUR",
    "jane.doe@example.com",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "en-US,en;q=0.9,de;q=0.8",
    "gzip, deflate, br",
    "https://shop.example.com/shop/sport",
    "keep-alive",
    "application/x-www-form-urlencoded",
];

/// Ordinary response values (status lines, headers, an HTML page), for
/// patterns over response variables (see [`BENIGN_SAMPLES`]).
const BENIGN_RESPONSE_SAMPLES: &[&str] = &[
    "200",
    "404",
    "HTTP/1.1",
    "HTTP/1.1 200 OK",
    "text/html; charset=utf-8",
    "application/json",
    "no-cache, no-store, must-revalidate",
    "Thu, 01 Jan 2026 00:00:00 GMT",
    "sessionid=8f14e45fceea167a5a36dedd4bea2543; Path=/; HttpOnly; Secure; SameSite=Lax",
    r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Running shoes | Shop</title>
<link rel="stylesheet" href="/static/css/main.css?v=3">
<style>body { margin: 0; font-family: sans-serif; } .price { color: #c00; }</style>
<script src="/static/js/app.js" defer></script>
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}</script>
</head>
<body class="shop">
<!-- header -->
<nav><a href="/">Home</a> &gt; <a href="/shop/sport">Sport</a></nav>
<h1>Running shoes</h1>
<form action="/shop/search" method="get"><input type="text" name="q" value="running shoes"><button type="submit">Search</button></form>
<ul class="items">
<li><a href="/shop/item/42"><img src="/img/42.jpg" alt="Trail runner 42"> Trail runner 42, size 42</a> <span class="price">89.90&nbsp;EUR</span></li>
<li><a href="/shop/item/43">Road runner, sizes 38-46</a> <span class="price">119.00&nbsp;EUR</span></li>
</ul>
<p>Free shipping from 50 EUR. Questions? Write to <a href="mailto:help@example.com">help@example.com</a>.</p>
<footer>&copy; 2026 Example Shop. All rights reserved.</footer>
</body>
</html>
"#,
];

/// Directives that configure the host server or logging; accepted and
/// ignored because they do not change what the rules detect. Body limits,
/// limit actions and response media types are applied by
/// [`crate::exchange`] from the policy's settings (the generated preamble
/// states them as these directives).
const IGNORED_DIRECTIVES: &[&str] = &[
    "seccomponentsignature",
    "secauditengine",
    "secauditlog",
    "secauditlog2",
    "secauditlogparts",
    "secauditlogrelevantstatus",
    "secauditlogtype",
    "secauditlogformat",
    "secauditlogstoragedir",
    "secauditlogdirmode",
    "secauditlogfilemode",
    "secdebuglog",
    "secdebugloglevel",
    "sectmpdir",
    "secdatadir",
    "secuploaddir",
    "secuploadkeepfiles",
    "secuploadfilemode",
    "secuploadfilelimit",
    "secstatusengine",
    "secserversignature",
    "secwebappid",
    "seccollectiontimeout",
    "secunicodemapfile",
    "secunicodecodepage",
    "secpcrematchlimit",
    "secpcrematchlimitrecursion",
    "secrequestbodyinmemorylimit",
    "secrequestbodynofileslimit",
    "secrequestbodylimitaction",
    "secresponsebodylimit",
    "secresponsebodylimitaction",
    "secresponsebodymimetype",
    "secresponsebodymimetypesclear",
    "seccookieformat",
    "secargumentseparator",
    "sectmpsaveuploadedfiles",
    "sechashengine",
    "secsensorid",
    "secconnengine",
];

/// Turns directives into a rule set, collecting every error.
pub fn compile(directives: &[Directive]) -> Result<RuleSet, WafError> {
    compile_with(directives, false)
}

/// Like [`compile`]; with `skip_unsupported`, a rule the engine cannot run
/// (a PCRE-only regex such as a look-around, an unsupported operator) is
/// left out together with its chain instead of failing the load. Every
/// skipped rule is listed in [`RuleSet::skipped`]: nothing is dropped
/// silently. Syntax errors and other problems still fail.
pub fn compile_with(directives: &[Directive], skip_unsupported: bool) -> Result<RuleSet, WafError> {
    let mut c = Compiler::default();
    let mut skipping_chain = false;
    for d in directives {
        let is_rule =
            d.name.eq_ignore_ascii_case("SecRule") || d.name.eq_ignore_ascii_case("SecAction");
        let has_chain = || {
            d.args
                .last()
                .and_then(|a| split_actions(a).ok())
                .is_some_and(|acts| acts.iter().any(|(n, _)| n.eq_ignore_ascii_case("chain")))
        };
        if skip_unsupported && skipping_chain && is_rule {
            // A link of a chain whose head (or an earlier link) was skipped.
            skipping_chain = has_chain();
            continue;
        }
        if let Err(message) = c.directive(d) {
            let unsupported = message.contains("does not compile")
                || message.contains("unsupported operator")
                || message.contains("unsupported action");
            if skip_unsupported && is_rule && unsupported {
                c.skipped.push(crate::report::error_line(d, &message));
                // Drop the chain this rule belongs to.
                if let Some((head, _)) = c.pending_chain.take() {
                    c.order
                        .retain(|it| !matches!(it, Item::Rule(i) if *i == head));
                }
                skipping_chain = has_chain();
                continue;
            }
            c.errors.push(crate::report::error_line(d, &message));
        }
    }
    if c.pending_chain.is_some() {
        c.errors
            .push("the last rule ends with `chain` but no rule follows".into());
    }
    if !c.errors.is_empty() {
        return Err(WafError::Invalid(crate::report::capped(c.errors)));
    }
    let skipped = std::mem::take(&mut c.skipped);
    let mut rs = c.finish();
    rs.skipped = skipped;
    Ok(rs)
}

#[derive(Default)]
struct Compiler {
    rules: Vec<Rule>,
    /// Per rule: steps are built at the end from this order list.
    order: Vec<Item>,
    chains: TransformChains,
    settings: EngineSettings,
    defaults: [Option<Defaults>; 6],
    pending_chain: Option<(usize, Vec<usize>)>,
    errors: Vec<String>,
    skipped: Vec<String>,
    ids: HashMap<u32, Location>,
}

enum Item {
    Rule(usize),
    Marker(String),
}

fn on_off(v: Option<&String>) -> Result<bool, String> {
    match v.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err(format!("expects On or Off, got {v:?}")),
    }
}

impl Compiler {
    fn directive(&mut self, d: &Directive) -> Result<(), String> {
        let name = d.name.to_ascii_lowercase();
        match name.as_str() {
            "secrule" => {
                if d.args.len() < 2 || d.args.len() > 3 {
                    return Err(format!("takes 2 or 3 arguments, got {}", d.args.len()));
                }
                let actions = d.args.get(2).map(String::as_str).unwrap_or("");
                self.rule(d, Some((&d.args[0], &d.args[1])), actions)
            }
            "secaction" => {
                if d.args.len() != 1 {
                    return Err(format!("takes 1 argument, got {}", d.args.len()));
                }
                self.rule(d, None, &d.args[0])
            }
            "secmarker" => {
                let m = d.args.first().ok_or("needs a name")?;
                if self.pending_chain.is_some() {
                    return Err("a marker cannot follow a rule ending in `chain`".into());
                }
                self.order
                    .push(Item::Marker(m.trim_matches('\'').to_string()));
                Ok(())
            }
            "secdefaultaction" => {
                let text = d.args.first().ok_or("needs actions")?;
                let acts = split_actions(text)?;
                let mut phase = 2u8;
                let mut disruptive = Disruptive::Pass;
                let mut log = true;
                let mut transforms = Vec::new();
                for (n, v) in &acts {
                    match n.to_ascii_lowercase().as_str() {
                        "phase" => phase = parse_phase(v.as_deref())?,
                        "log" => log = true,
                        "nolog" => log = false,
                        "auditlog" | "noauditlog" => {}
                        "pass" => disruptive = Disruptive::Pass,
                        "deny" => disruptive = Disruptive::Deny,
                        "drop" => disruptive = Disruptive::Drop,
                        "block" => return Err("`block` cannot be a default action".into()),
                        "status" | "tag" => {}
                        "t" => {
                            let v = v.as_deref().unwrap_or("");
                            if v.eq_ignore_ascii_case("none") {
                                transforms.clear();
                            } else {
                                transforms.push(
                                    Transform::from_name(v)
                                        .ok_or_else(|| format!("unknown transformation t:{v}"))?,
                                );
                            }
                        }
                        other => return Err(format!("unsupported default action {other:?}")),
                    }
                }
                self.defaults[phase as usize] = Some(Defaults {
                    disruptive,
                    log,
                    transforms,
                });
                Ok(())
            }
            "secruleremovebyid" => {
                let mut ranges = Vec::new();
                for a in &d.args {
                    for part in a.split([' ', ',']).filter(|p| !p.is_empty()) {
                        ranges.push(IdRange::parse(part)?);
                    }
                }
                self.remove(|r| ranges.iter().any(|x| x.contains(r.id)));
                Ok(())
            }
            "secruleremovebytag" => {
                let tag = d.args.first().ok_or("needs a tag")?.clone();
                self.remove(|r| r.tags.iter().any(|t| t == &tag));
                Ok(())
            }
            "secruleremovebymsg" => {
                let msg = d.args.first().ok_or("needs a message")?.clone();
                self.remove(|r| r.msg.as_ref().is_some_and(|m| m.literal() == msg));
                Ok(())
            }
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
                if d.args.len() < 2 {
                    return Err("needs a rule selector and targets".into());
                }
                let list = parse_targets(&d.args[1])?;
                let replace = d.args.get(2).map(|s| s.as_str());
                let sel = d.args[0].clone();
                let by_id = name == "secruleupdatetargetbyid";
                let by_tag = name == "secruleupdatetargetbytag";
                let ranges = if by_id {
                    sel.split([' ', ','])
                        .filter(|p| !p.is_empty())
                        .map(IdRange::parse)
                        .collect::<Result<Vec<_>, _>>()?
                } else {
                    Vec::new()
                };
                let mut hit = false;
                for r in self.rules.iter_mut() {
                    let selected = if by_id {
                        ranges.iter().any(|x| x.contains(r.id))
                    } else if by_tag {
                        r.tags.iter().any(|t| t == &sel)
                    } else {
                        r.msg.as_ref().is_some_and(|m| m.literal() == sel)
                    };
                    if !selected {
                        continue;
                    }
                    hit = true;
                    if let Some(old) = replace {
                        let old = parse_targets(old)?;
                        for o in &old.targets {
                            r.targets.targets.retain(|t| {
                                !(t.var == o.var && t.selector.text() == o.selector.text())
                            });
                        }
                    }
                    r.targets.targets.extend(list.targets.iter().cloned());
                    r.targets.exclusions.extend(list.exclusions.iter().cloned());
                }
                let _ = hit; // updating rules that were removed is not an error
                Ok(())
            }
            "secruleengine" => {
                self.settings.mode = match d.args.first().map(|s| s.to_ascii_lowercase()).as_deref()
                {
                    Some("on") => EngineMode::On,
                    Some("off") => EngineMode::Off,
                    Some("detectiononly") => EngineMode::DetectionOnly,
                    other => {
                        return Err(format!("expects On, Off or DetectionOnly, got {other:?}"))
                    }
                };
                Ok(())
            }
            "secrequestbodyaccess" => {
                self.settings.request_body_access = on_off(d.args.first())?;
                Ok(())
            }
            "secresponsebodyaccess" => {
                self.settings.response_body_access = on_off(d.args.first())?;
                Ok(())
            }
            "secrequestbodylimit" => {
                self.settings.request_body_limit = parse_num(d.args.first())?;
                Ok(())
            }
            "secargumentslimit" => {
                self.settings.arguments_limit = parse_num(d.args.first())?;
                Ok(())
            }
            "secrequestbodyjsondepthlimit" => {
                self.settings.json_depth_limit = parse_num(d.args.first())?;
                Ok(())
            }
            n if IGNORED_DIRECTIVES.contains(&n) => Ok(()),
            _ => Err("is not a supported directive".into()),
        }
    }

    fn remove(&mut self, pred: impl Fn(&Rule) -> bool) {
        let removed: Vec<usize> = (0..self.rules.len())
            .filter(|&i| pred(&self.rules[i]))
            .collect();
        if removed.is_empty() {
            return;
        }
        self.order
            .retain(|it| !matches!(it, Item::Rule(i) if removed.contains(i)));
    }

    fn rule(
        &mut self,
        d: &Directive,
        target_op: Option<(&String, &String)>,
        actions: &str,
    ) -> Result<(), String> {
        let (targets, operator, negated) = match target_op {
            Some((t, op)) => {
                let targets = parse_targets(t)?;
                let (negated, op) = match op.trim_start().strip_prefix('!') {
                    Some(rest) => (true, rest.trim_start()),
                    None => (false, op.as_str()),
                };
                let (name, param) = match op.strip_prefix('@') {
                    Some(rest) => match rest.split_once(|c: char| c.is_whitespace()) {
                        Some((n, p)) => (n, p.trim_start()),
                        None => (rest, ""),
                    },
                    None => ("rx", op),
                };
                (targets, Operator::compile(name, param, &d.dir)?, negated)
            }
            None => (TargetList::default(), Operator::UnconditionalMatch, false),
        };
        let acts = split_actions(actions)?;
        let in_chain = self.pending_chain.is_some();
        let mut rule = Rule {
            id: 0,
            phase: 2,
            location: d.location.clone(),
            targets,
            operator,
            negated,
            transforms: Vec::new(),
            chain_id: None,
            msg: None,
            logdata: None,
            tags: Vec::new(),
            severity: None,
            setvars: Vec::new(),
            ctls: Vec::new(),
            capture: false,
            multi_match: false,
            log: true,
            disruptive: None,
            status: None,
            skip_after: None,
            skip: 0,
            chained: None,
            unconditional: target_op.is_none(),
            group: None,
            pm_bit: None,
            skip_after_step: None,
            contains_filter: None,
            memo_slot: None,
        };
        let mut phase_set = false;
        let mut chain = false;
        let mut explicit_log = None;
        let mut transforms_reset = false;
        let mut own_transforms = Vec::new();
        for (n, v) in &acts {
            let arg = v.as_deref().unwrap_or("");
            match n.to_ascii_lowercase().as_str() {
                "id" => {
                    let id: u32 = arg.trim().parse().map_err(|_| format!("bad id {arg:?}"))?;
                    rule.id = id;
                }
                "phase" => {
                    rule.phase = parse_phase(v.as_deref())?;
                    phase_set = true;
                }
                "chain" => chain = true,
                "t" => {
                    if arg.eq_ignore_ascii_case("none") {
                        transforms_reset = true;
                        own_transforms.clear();
                    } else {
                        own_transforms.push(
                            Transform::from_name(arg)
                                .ok_or_else(|| format!("unknown transformation t:{arg}"))?,
                        );
                    }
                }
                "msg" => rule.msg = Some(MacroText::parse(arg)),
                "logdata" => rule.logdata = Some(MacroText::parse(arg)),
                "tag" => rule.tags.push(arg.to_string()),
                "severity" => rule.severity = Some(parse_severity(arg)?),
                "setvar" => rule.setvars.push(parse_setvar(arg)?),
                "ctl" => rule.ctls.push(parse_ctl(arg)?),
                "capture" => rule.capture = true,
                "multimatch" => rule.multi_match = true,
                "log" => explicit_log = Some(true),
                "nolog" => explicit_log = Some(false),
                "pass" => rule.disruptive = Some(Disruptive::Pass),
                "block" => rule.disruptive = Some(Disruptive::Block),
                "deny" => rule.disruptive = Some(Disruptive::Deny),
                "drop" => rule.disruptive = Some(Disruptive::Drop),
                "allow" => rule.disruptive = Some(Disruptive::Allow),
                "redirect" => rule.disruptive = Some(Disruptive::Redirect(arg.to_string())),
                "status" => {
                    rule.status = Some(
                        arg.trim()
                            .parse()
                            .map_err(|_| format!("bad status {arg:?}"))?,
                    )
                }
                "skipafter" => rule.skip_after = Some(arg.trim().to_string()),
                "skip" => {
                    rule.skip = arg
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad skip {arg:?}"))?
                }
                // Metadata and logging knobs with no effect on detection.
                "ver"
                | "rev"
                | "maturity"
                | "accuracy"
                | "auditlog"
                | "noauditlog"
                | "sanitisematched"
                | "sanitisearg"
                | "sanitiserequestheader"
                | "sanitiseresponseheader"
                | "sanitisematchedbytes" => {}
                // Persistent collections are not kept between requests (CRS
                // only initialises them for its optional sampling/DoS plugins).
                "initcol" | "setsid" | "setuid" | "expirevar" | "deprecatevar" | "setenv" => {}
                other => return Err(format!("unsupported action {other:?}")),
            }
        }
        let _ = phase_set;
        if in_chain {
            if rule.id != 0 {
                return Err(format!("id:{} is not allowed in a chained rule", rule.id));
            }
            if rule.disruptive.is_some() && rule.disruptive != Some(Disruptive::Pass) {
                return Err(
                    "disruptive actions are only allowed in the first rule of a chain".into(),
                );
            }
        } else if rule.id == 0 {
            return Err("rule has no id".into());
        } else if let Some(prev) = self.ids.get(&rule.id) {
            return Err(format!(
                "duplicate rule id {} (first defined at {prev})",
                rule.id
            ));
        }
        // Chain links run in the head's phase.
        let head_phase = self
            .pending_chain
            .as_ref()
            .map(|(h, _)| self.rules[*h].phase);
        if let Some(p) = head_phase {
            rule.phase = p;
        }
        let defaults = self.defaults[rule.phase as usize].clone();
        rule.transforms = if transforms_reset {
            own_transforms
        } else {
            let mut t = defaults
                .as_ref()
                .map(|d| d.transforms.clone())
                .unwrap_or_default();
            t.extend(own_transforms);
            t
        };
        rule.chain_id = self.chains.intern(&rule.transforms);
        rule.log = explicit_log.unwrap_or(defaults.as_ref().map(|d| d.log).unwrap_or(true));

        if let Some((head, mut links)) = self.pending_chain.take() {
            // Attach to the end of the chain.
            let mut slot = &mut self.rules[head];
            for _ in 0..links.len() {
                slot = slot.chained.as_deref_mut().expect("chain link present");
            }
            slot.chained = Some(Box::new(rule));
            links.push(0);
            if chain {
                self.pending_chain = Some((head, links));
            }
        } else {
            self.ids.insert(rule.id, d.location.clone());
            let idx = self.rules.len();
            self.rules.push(rule);
            self.order.push(Item::Rule(idx));
            if chain {
                self.pending_chain = Some((idx, Vec::new()));
            }
        }
        Ok(())
    }

    fn finish(self) -> RuleSet {
        let mut phases: [Vec<Step>; 6] = Default::default();
        let mut markers: [HashMap<String, usize>; 6] = Default::default();
        for item in &self.order {
            match item {
                Item::Rule(i) => {
                    let p = self.rules[*i].phase as usize;
                    phases[p].push(Step::Rule(*i));
                }
                Item::Marker(m) => {
                    for p in 1..6 {
                        markers[p].insert(m.clone(), phases[p].len());
                        phases[p].push(Step::Marker(m.clone()));
                    }
                }
            }
        }
        let mut block_action: [Disruptive; 6] = std::array::from_fn(|_| Disruptive::Pass);
        for (p, d) in self.defaults.iter().enumerate() {
            if let Some(d) = d {
                block_action[p] = d.disruptive.clone();
            }
        }
        let mut rules = self.rules;
        for r in rules.iter_mut() {
            if let Some(m) = &r.skip_after {
                r.skip_after_step = markers[r.phase as usize].get(m).copied();
            }
        }
        let (groups, pm_bits) = build_groups(&mut rules);
        let tx_names = number_tx_names(&mut rules);
        for head in rules.iter_mut() {
            let mut link = Some(head);
            while let Some(r) = link {
                if let (Operator::Contains(t), false, false) =
                    (&r.operator, r.negated, r.multi_match)
                {
                    r.contains_filter = t
                        .as_literal()
                        .and_then(|lit| crate::prefilter::ContainsFilter::new(lit, &r.transforms));
                }
                link = r.chained.as_deref_mut();
            }
        }
        let mut memo_slots = 2 * groups.len() as u32;
        for head in rules.iter_mut() {
            let mut link = Some(head);
            while let Some(r) = link {
                if !r.unconditional && crate::memo::value_only(&r.operator) {
                    r.memo_slot = Some(memo_slots);
                    memo_slots += 1;
                }
                link = r.chained.as_deref_mut();
            }
        }
        let memo_slots = memo_slots as usize;
        RuleSet {
            memo: crate::memo::ValueMemo::new(crate::memo::DEFAULT_ENTRIES, memo_slots),
            memo_slots,
            rules,
            phases,
            markers,
            chains: self.chains,
            settings: self.settings,
            block_action,
            groups,
            pm_bits,
            tx_names: std::sync::Arc::new(tx_names),
            skipped: Vec::new(),
        }
    }
}

/// Numbers the TX names the rules use literally (targets, macros, setvar
/// names; TX.0 to TX.9 first, for captures) and records the numbers where
/// they are used, so that they are read and written without hashing.
fn number_tx_names(rules: &mut [Rule]) -> crate::txvars::TxNames {
    let mut names = crate::txvars::TxNames::default();
    for i in 0..10 {
        names.intern(&i.to_string());
    }
    for head in rules.iter_mut() {
        let mut link = Some(head);
        while let Some(r) = link {
            let mut number = |k: &str| names.intern(k);
            for t in &mut r.targets.targets {
                if let Some(k) = &t.tx_key {
                    t.tx_slot = Some(number(k));
                }
            }
            for m in [&mut r.msg, &mut r.logdata].into_iter().flatten() {
                m.bind_tx(&mut number);
            }
            if let Some(m) = r.operator.macro_text_mut() {
                m.bind_tx(&mut number);
            }
            for sv in &mut r.setvars {
                if sv.collection == "tx" {
                    sv.tx_slot = sv.name.as_literal().map(&mut number);
                }
                sv.name.bind_tx(&mut number);
                if let SetOp::Set(v) | SetOp::Add(v) | SetOp::Sub(v) = &mut sv.op {
                    v.bind_tx(&mut number);
                }
            }
            link = r.chained.as_deref_mut();
        }
    }
    names
}

/// The key of the group a rule link can join: its targets and its
/// transformations. `None` for links whose values change while a phase
/// runs (TX, MATCHED_VAR...), counts, and `multiMatch` (which inspects the
/// values between transformations too).
fn group_key(r: &Rule) -> Option<String> {
    let static_targets = !r.targets.targets.is_empty()
        && r.targets
            .targets
            .iter()
            .all(|t| t.var.is_request_static() && !t.count);
    // Exclusions only shrink what a rule sees: leaving them out of the key
    // lets more rules share a group (a group checks a superset of values).
    (static_targets && !r.multi_match).then(|| format!("{:?}|{:?}", r.targets.targets, r.chain_id))
}

/// Whether a literal `@rx` link is worth a group: its pattern must not
/// match ordinary values, or the group would never be clean.
fn rx_groupable(r: &Rule, re: &regex::bytes::Regex) -> bool {
    if r.negated || BENIGN_SAMPLES.iter().any(|s| re.is_match(s.as_bytes())) {
        return false;
    }
    let response = r.targets.targets.iter().any(|t| t.var.is_response());
    !(response
        && BENIGN_RESPONSE_SAMPLES
            .iter()
            .any(|s| re.is_match(s.as_bytes())))
}

/// Forms the rule groups (see [`RuleGroup`]) and sets [`Rule::group`] and
/// [`Rule::pm_bit`]: literal `@rx` links and `@pm` links (two or more
/// sharing a key) over static targets, in any phase (response variables
/// are fixed once the response headers, then its body, are given: the
/// transaction starts the groups afresh then). Returns the groups and the
/// number of `@pm` bits. Afterwards the `@pm` phrase lists are dropped.
fn build_groups(rules: &mut [Rule]) -> (Vec<RuleGroup>, usize) {
    fn links(rules: &mut [Rule], mut f: impl FnMut(&mut Rule)) {
        for head in rules.iter_mut() {
            let mut link = Some(head);
            while let Some(r) = link {
                f(r);
                link = r.chained.as_deref_mut();
            }
        }
    }
    let mut keys: HashMap<String, u32> = HashMap::new();
    let mut rx: Vec<(Vec<String>, Vec<std::sync::Arc<regex::bytes::Regex>>)> = Vec::new();
    let mut pm_count: Vec<usize> = Vec::new();
    let mut group_of = |key: String, rx: &mut Vec<_>, pm_count: &mut Vec<usize>| {
        let n = keys.len() as u32;
        let g = *keys.entry(key).or_insert(n);
        if g as usize == rx.len() {
            rx.push((Vec::new(), Vec::new()));
            pm_count.push(0);
        }
        g
    };
    links(rules, |r| {
        let Some(key) = group_key(r) else {
            return;
        };
        match &r.operator {
            Operator::Rx(re) if rx_groupable(r, re) => {
                let g = group_of(key, &mut rx, &mut pm_count);
                r.group = Some(g);
                rx[g as usize].0.push(re.as_str().to_string());
                rx[g as usize].1.push(re.clone());
            }
            Operator::Pm(p) if !p.phrases.is_empty() => {
                let g = group_of(key, &mut rx, &mut pm_count);
                r.group = Some(g);
                pm_count[g as usize] += 1;
            }
            _ => {}
        }
    });
    // One phrase list alone gains nothing from a set: it stays on its own.
    let mut pm_bits = 0u32;
    let mut phrase_lists: Vec<Vec<(u32, std::sync::Arc<Phrases>)>> = vec![Vec::new(); rx.len()];
    links(rules, |r| {
        if let (Some(g), Operator::Pm(p)) = (r.group, &r.operator) {
            if pm_count[g as usize] < 2 {
                r.group = None;
            } else {
                r.pm_bit = Some(pm_bits);
                phrase_lists[g as usize].push((pm_bits, p.clone()));
                pm_bits += 1;
            }
        }
    });
    let family = crate::lazydfa::new_family();
    let groups: Vec<RuleGroup> = rx
        .into_iter()
        .zip(&phrase_lists)
        .enumerate()
        .map(|(slot, ((patterns, regexes), lists))| {
            let rx = crate::lazydfa::AnySet::new(&patterns, regexes, family, slot);
            let input: Vec<(u32, &[Box<str>])> =
                lists.iter().map(|(b, p)| (*b, &p.phrases[..])).collect();
            RuleGroup {
                rx,
                pm: crate::pmset::PmSet::new(&input),
                pm_bits: lists.iter().map(|(b, _)| *b).collect(),
            }
        })
        .collect();
    drop(phrase_lists);
    links(rules, |r| {
        // A set that did not build: its rules run on their own.
        if let Some(g) = r.group {
            let group = &groups[g as usize];
            let built = match r.pm_bit {
                Some(_) => group.pm.is_some(),
                None => group.rx.is_some(),
            };
            if !built {
                r.group = None;
                r.pm_bit = None;
            }
        }
        if let Operator::Pm(p) = &mut r.operator {
            if let Some(p) = std::sync::Arc::get_mut(p) {
                p.phrases = Vec::new();
            }
        }
    });
    (groups, pm_bits as usize)
}

fn parse_num(v: Option<&String>) -> Result<usize, String> {
    v.and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("expects a number, got {v:?}"))
}

fn parse_phase(v: Option<&str>) -> Result<u8, String> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("1") | Some("request_headers") => Ok(1),
        Some("2") | Some("request") => Ok(2),
        Some("3") | Some("response_headers") => Ok(3),
        Some("4") | Some("response") => Ok(4),
        Some("5") | Some("logging") => Ok(5),
        other => Err(format!("bad phase {other:?}")),
    }
}

fn parse_severity(s: &str) -> Result<u8, String> {
    Ok(match s.trim().to_ascii_uppercase().as_str() {
        "EMERGENCY" | "0" => 0,
        "ALERT" | "1" => 1,
        "CRITICAL" | "2" => 2,
        "ERROR" | "3" => 3,
        "WARNING" | "4" => 4,
        "NOTICE" | "5" => 5,
        "INFO" | "6" => 6,
        "DEBUG" | "7" => 7,
        other => return Err(format!("bad severity {other:?}")),
    })
}

fn parse_setvar(s: &str) -> Result<SetVar, String> {
    let s = s.trim();
    let (delete, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (lhs, op) = if delete {
        (s, SetOp::Delete)
    } else if let Some((l, r)) = s.split_once('=') {
        if let Some(rest) = r.strip_prefix('+') {
            (l, SetOp::Add(MacroText::parse(rest)))
        } else if let Some(rest) = r.strip_prefix('-') {
            (l, SetOp::Sub(MacroText::parse(rest)))
        } else {
            (l, SetOp::Set(MacroText::parse(r)))
        }
    } else {
        (s, SetOp::Set(MacroText::parse("1")))
    };
    let (coll, name) = lhs
        .split_once('.')
        .ok_or_else(|| format!("setvar needs collection.name, got {lhs:?}"))?;
    let coll = coll.trim().to_ascii_lowercase();
    if !matches!(
        coll.as_str(),
        "tx" | "ip" | "global" | "session" | "user" | "resource"
    ) {
        return Err(format!("setvar: unknown collection {coll:?}"));
    }
    Ok(SetVar {
        tx_slot: None,
        collection: coll,
        name: MacroText::parse(&name.trim().to_ascii_lowercase()),
        op,
    })
}

fn parse_ctl(s: &str) -> Result<Ctl, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("ctl needs name=value, got {s:?}"))?;
    let value = value.trim();
    let target = |v: &str| -> Result<(Var, Selector), String> {
        let list = parse_targets(v)?;
        let t = list
            .targets
            .into_iter()
            .next()
            .ok_or_else(|| format!("ctl: no target in {v:?}"))?;
        Ok((t.var, t.selector))
    };
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RuleRemoveById(
            value
                .split([' ', ','])
                .filter(|p| !p.is_empty())
                .map(IdRange::parse)
                .collect::<Result<_, _>>()?,
        ),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(value.to_string()),
        "ruleremovetargetbyid" => {
            let (id, t) = value
                .split_once(';')
                .ok_or("ruleRemoveTargetById needs id;TARGET")?;
            let (v, sel) = target(t)?;
            Ctl::RuleRemoveTargetById(IdRange::parse(id)?, v, sel)
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = value
                .split_once(';')
                .ok_or("ruleRemoveTargetByTag needs tag;TARGET")?;
            let (v, sel) = target(t)?;
            Ctl::RuleRemoveTargetByTag(tag.to_string(), v, sel)
        }
        "ruleengine" => Ctl::RuleEngine(match value.to_ascii_lowercase().as_str() {
            "on" => EngineMode::On,
            "off" => EngineMode::Off,
            "detectiononly" => EngineMode::DetectionOnly,
            v => return Err(format!("ctl:ruleEngine: bad value {v:?}")),
        }),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(
            Processor::from_name(value)
                .ok_or_else(|| format!("unknown body processor {value:?}"))?,
        ),
        "forcerequestbodyvariable" => {
            Ctl::ForceRequestBodyVariable(value.eq_ignore_ascii_case("on"))
        }
        "requestbodyaccess" => Ctl::RequestBodyAccess(value.eq_ignore_ascii_case("on")),
        "auditengine" | "auditlogparts" | "debugloglevel" | "requestbodylimit"
        | "responsebodyaccess" | "hashengine" => Ctl::Ignored,
        other => return Err(format!("unsupported ctl:{other}")),
    })
}

/// Loads a rule set from one path (file or directory of `*.conf`).
pub fn load(path: &Path) -> Result<RuleSet, WafError> {
    compile(&crate::parser::load_path(path)?)
}
