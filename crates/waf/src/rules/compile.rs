//! Compilation of parsed directives into a [`RuleSet`]: `SecRule` /
//! `SecAction` chains, markers, defaults, removals and target updates
//! applied at load time, and the numbering of literal TX names.

use super::actions::{parse_ctl, parse_num, parse_phase, parse_setvar, parse_severity};
use super::groups::build_groups;
use super::*;

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
    pub(super) rules: Vec<Rule>,
    /// Per rule: steps are built at the end from this order list.
    order: Vec<Item>,
    pub(super) chains: TransformChains,
    pub(super) settings: EngineSettings,
    defaults: [Option<Defaults>; 6],
    pending_chain: Option<(usize, Vec<usize>)>,
    errors: Vec<String>,
    pub(super) skipped: Vec<String>,
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

    pub(super) fn rule(
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
            item_lists: None,
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
        share_regexes(&mut rules);
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
        let item_lists = number_item_lists(&mut rules);
        RuleSet {
            item_lists,
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

/// Numbers the distinct target lists of data-only links (see
/// [`Rule::item_lists`]); returns how many there are.
fn number_item_lists(rules: &mut [Rule]) -> usize {
    let mut keys: HashMap<String, u32> = HashMap::new();
    let mut number = |key: String| {
        let n = keys.len() as u32;
        *keys.entry(key).or_insert(n)
    };
    for head in rules.iter_mut() {
        let mut link = Some(head);
        while let Some(r) = link {
            let t = &r.targets;
            if !r.unconditional
                && !t.targets.is_empty()
                && t.targets.iter().all(|t| t.var.is_data_only())
            {
                let targets = format!("{:?}", t.targets);
                let with_exclusions = match t.exclusions.is_empty() {
                    true => number(targets.clone()),
                    false => number(format!("{targets}|{:?}", t.exclusions)),
                };
                r.item_lists = Some((with_exclusions, number(targets)));
            }
            link = r.chained.as_deref_mut();
        }
    }
    keys.len()
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

/// Loads a rule set from one path (file or directory of `*.conf`).
pub fn load(path: &Path) -> Result<RuleSet, WafError> {
    compile(&crate::parser::load_path(path)?)
}

/// Makes the links whose literal `@rx` patterns are the same share one
/// compiled regex (and its search caches): CRS v4.28 has 319 such links
/// but 295 patterns. A regex is immutable; sharing it changes no answer.
fn share_regexes(rules: &mut [Rule]) {
    let mut seen: HashMap<String, std::sync::Arc<regex::bytes::Regex>> = HashMap::new();
    for head in rules.iter_mut() {
        let mut link = Some(head);
        while let Some(r) = link {
            if let Operator::Rx(re) = &mut r.operator {
                match seen.get(re.as_str()) {
                    Some(first) => *re = first.clone(),
                    None => {
                        seen.insert(re.as_str().to_string(), re.clone());
                    }
                }
            }
            link = r.chained.as_deref_mut();
        }
    }
}
