//! Evaluation of one HTTP transaction against a [`RuleSet`], phase by phase.
//!
//! The request is parsed once into [`RequestData`] (arguments, cookies,
//! body). Mutable evaluation state (TX collection, matched variables,
//! runtime `ctl:` changes, transformation cache) lives in [`State`], so
//! rules can read request data by reference while updating state.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use crate::body::{self, BodyLimits, ParsedBody, Processor};
use crate::macros::Resolve;
use crate::operators::Captures;
use crate::prefilter::{FxBuild, RX_NONE};
use crate::rules::{Ctl, Disruptive, EngineMode, IdRange, Rule, RuleSet, SetOp, Step};
use crate::transform::Transform;
use crate::variables::{Selector, Target, TargetList, Var};

/// The request as the engine sees it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: Vec<u8>,
    /// The request target exactly as sent (`/a/b?x=1`).
    pub uri: Vec<u8>,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub remote_addr: String,
    pub remote_port: u16,
    pub unique_id: String,
}

/// Why and how the engine stopped the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub rule_id: u32,
    pub status: u16,
    pub action: Disruptive,
    pub phase: u8,
}

/// A rule that matched (the whole chain, for chained rules).
#[derive(Debug, Clone)]
pub struct MatchedRule {
    pub id: u32,
    pub phase: u8,
    pub msg: String,
    pub logdata: String,
    pub severity: Option<u8>,
    pub tags: Vec<String>,
    pub matched_var_name: String,
    pub log: bool,
}

/// Request data derived once per transaction.
#[derive(Debug, Default)]
pub struct RequestData {
    pub req: HttpRequest,
    pub path_decoded: Vec<u8>,
    pub uri_decoded: Vec<u8>,
    pub basename: Vec<u8>,
    pub query: Vec<u8>,
    pub request_line: Vec<u8>,
    pub args_get: Vec<(Vec<u8>, Vec<u8>)>,
    pub cookies: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Option<ParsedBody>,
    pub processor: Option<Processor>,
    pub server_name: Vec<u8>,
}

/// One value selected by a target: its variable name and its bytes.
struct Item<'d> {
    var: Var,
    key: Cow<'d, [u8]>,
    value: Cow<'d, [u8]>,
}

impl Item<'_> {
    fn full_name(&self) -> String {
        if self.key.is_empty() {
            self.var.name().to_string()
        } else {
            format!("{}:{}", self.var.name(), String::from_utf8_lossy(&self.key))
        }
    }
}

/// A runtime exclusion from `ctl:ruleRemoveTarget*`.
#[derive(Debug, Clone)]
enum RuleSel {
    Id(IdRange),
    Tag(String),
}

/// Mutable evaluation state.
#[derive(Default)]
pub struct State {
    pub tx: HashMap<String, Vec<u8>>,
    /// Other collections written by setvar (ip, global, ...), per request.
    colls: HashMap<String, HashMap<String, Vec<u8>>>,
    matched_var: Vec<u8>,
    matched_var_name: Vec<u8>,
    matched_vars: Vec<(String, Vec<u8>)>,
    removed_ids: Vec<IdRange>,
    removed_tags: Vec<String>,
    removed_targets: Vec<(RuleSel, Var, Selector)>,
    pub mode: EngineMode,
    body_processor: Option<Processor>,
    body_access: bool,
    force_body_var: bool,
    /// (value address, value length, chain node) → transformed value
    /// (`None` = unchanged from the original) and its pattern matches.
    cache: HashMap<(usize, usize, u32), Cached, FxBuild>,
    /// Per rule group: 0 = clean, 1 = some value may match, else not yet known.
    group_bits: Vec<u32>,
    pub matched: Vec<MatchedRule>,
    pub interruption: Option<Interruption>,
    allowed: bool,
    rule_id: u32,
    rule_msg: Vec<u8>,
    captures: Captures,
}

/// A transaction: request data plus evaluation state.
pub struct Transaction<'r> {
    rules: &'r RuleSet,
    pub data: RequestData,
    pub state: State,
}

/// URL percent-decoding (`%XX` only; `+` kept), ModSecurity-style:
/// invalid escapes are kept as they are.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            let h = hex(input[i + 1]);
            let l = hex(input[i + 2]);
            if let (Some(h), Some(l)) = (h, l) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_cookies(headers: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for piece in value.split(|&b| b == b';') {
            let start = piece
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(piece.len());
            let piece = &piece[start..];
            if piece.is_empty() {
                continue;
            }
            match piece.iter().position(|&b| b == b'=') {
                Some(eq) => out.push((piece[..eq].to_vec(), piece[eq + 1..].to_vec())),
                None => out.push((piece.to_vec(), Vec::new())),
            }
        }
    }
}

impl RequestData {
    pub fn new(req: HttpRequest) -> RequestData {
        let (path, query) = match req.uri.iter().position(|&b| b == b'?') {
            Some(q) => (&req.uri[..q], &req.uri[q + 1..]),
            None => (&req.uri[..], &b""[..]),
        };
        // An absolute-form target (`http://host/path`) names the path after the authority.
        let path = strip_scheme_host(path);
        let path_decoded = percent_decode(path);
        let basename = match path_decoded.iter().rposition(|&b| b == b'/' || b == b'\\') {
            Some(i) => path_decoded[i + 1..].to_vec(),
            None => path_decoded.clone(),
        };
        let mut request_line = req.method.clone();
        request_line.push(b' ');
        request_line.extend_from_slice(&req.uri);
        request_line.push(b' ');
        request_line.extend_from_slice(&req.protocol);
        let mut args_get = Vec::new();
        body::parse_urlencoded(query, &mut args_get);
        let mut cookies = Vec::new();
        parse_cookies(&req.headers, &mut cookies);
        let server_name = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))
            .map(|(_, v)| match v.iter().rposition(|&b| b == b':') {
                Some(i) if !v.contains(&b']') || v[i - 1..].starts_with(b"]") => v[..i].to_vec(),
                _ => v.clone(),
            })
            .unwrap_or_default();
        RequestData {
            uri_decoded: percent_decode(&req.uri),
            query: query.to_vec(),
            path_decoded,
            basename,
            request_line,
            args_get,
            cookies,
            body: None,
            processor: None,
            server_name,
            req,
        }
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn args_post(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.body.as_ref().map(|b| b.args.as_slice()).unwrap_or(&[])
    }
}

fn strip_scheme_host(path: &[u8]) -> &[u8] {
    if path.starts_with(b"/") {
        return path;
    }
    if let Some(i) = memchr::memmem::find(path, b"://") {
        let rest = &path[i + 3..];
        return match rest.iter().position(|&b| b == b'/') {
            Some(p) => &rest[p..],
            None => b"",
        };
    }
    path
}

/// Resolves macros against request data and state.
struct Ctx<'a> {
    data: &'a RequestData,
    state: &'a State,
}

impl Resolve for Ctx<'_> {
    fn resolve(&self, var: &str, key: Option<&str>, out: &mut Vec<u8>) {
        let s = self.state;
        match var {
            "TX" => {
                if let Some(v) = key.and_then(|k| s.tx.get(k)) {
                    out.extend_from_slice(v);
                }
            }
            "MATCHED_VAR" => out.extend_from_slice(&s.matched_var),
            "MATCHED_VAR_NAME" => out.extend_from_slice(&s.matched_var_name),
            "RULE" => match key {
                Some("id") => out.extend_from_slice(s.rule_id.to_string().as_bytes()),
                Some("msg") => out.extend_from_slice(&s.rule_msg),
                _ => {}
            },
            "REMOTE_ADDR" => out.extend_from_slice(self.data.req.remote_addr.as_bytes()),
            "UNIQUE_ID" => out.extend_from_slice(self.data.req.unique_id.as_bytes()),
            "REQUEST_HEADERS" => {
                if let Some(v) = key.and_then(|k| self.data.header(k.as_bytes())) {
                    out.extend_from_slice(v);
                }
            }
            "REQBODY_ERROR_MSG" => {
                if let Some(e) = self.data.body.as_ref().and_then(|b| b.error.as_ref()) {
                    out.extend_from_slice(e.as_bytes());
                }
            }
            "REQUEST_FILENAME" => out.extend_from_slice(&self.data.path_decoded),
            "REQUEST_METHOD" => out.extend_from_slice(&self.data.req.method),
            "ARGS"
            | "ARGS_GET"
            | "ARGS_POST"
            | "REQUEST_COOKIES"
            | "FILES"
            | "MULTIPART_PART_HEADERS"
            | "REQUEST_URI"
            | "REQUEST_URI_RAW"
            | "REQUEST_LINE"
            | "REQUEST_BASENAME"
            | "QUERY_STRING"
            | "REQUEST_PROTOCOL"
            | "REQBODY_PROCESSOR"
            | "SERVER_NAME"
            | "REMOTE_PORT" => {
                let Some(v) = Var::from_name(var) else {
                    return;
                };
                let target = Target {
                    var: v,
                    selector: match key {
                        Some(k) => Selector::Key(k.to_string()),
                        None => Selector::All,
                    },
                    count: false,
                };
                let mut items = Vec::new();
                collect(
                    self.data,
                    s,
                    &target,
                    &TargetList::default(),
                    None,
                    &mut items,
                );
                if let Some(first) = items.first() {
                    out.extend_from_slice(&first.value);
                }
            }
            "IP" | "GLOBAL" | "SESSION" | "USER" | "RESOURCE" => {
                let coll = var.to_ascii_lowercase();
                if let Some(v) = key.and_then(|k| s.colls.get(&coll).and_then(|c| c.get(k))) {
                    out.extend_from_slice(v);
                }
            }
            _ => {}
        }
    }
}

impl<'r> Transaction<'r> {
    pub fn new(rules: &'r RuleSet, req: HttpRequest) -> Transaction<'r> {
        let state = State {
            // CRS sets about a hundred TX variables per request.
            tx: HashMap::with_capacity(128),
            mode: rules.settings.mode,
            body_access: rules.settings.request_body_access,
            group_bits: vec![RX_NONE; rules.group_sets.len()],
            ..State::default()
        };
        Transaction {
            rules,
            data: RequestData::new(req),
            state,
        }
    }

    /// Runs phases 1 and 2 (request headers and body).
    pub fn process_request(&mut self) -> Option<&Interruption> {
        if self.state.mode == EngineMode::Off {
            return None;
        }
        self.run_phase(1);
        if self.state.interruption.is_none() {
            self.parse_body();
            self.run_phase(2);
        }
        self.state.interruption.as_ref()
    }

    /// Inbound anomaly score CRS computed (`tx.blocking_inbound_anomaly_score`).
    pub fn inbound_score(&self) -> i64 {
        let get = |k: &str| {
            self.state
                .tx
                .get(k)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.trim().parse::<i64>().ok())
        };
        get("blocking_inbound_anomaly_score")
            .or_else(|| get("inbound_anomaly_score"))
            .or_else(|| get("anomaly_score"))
            .unwrap_or(0)
    }

    fn parse_body(&mut self) {
        let processor = self.state.body_processor.or_else(|| {
            let ct = self.data.header(b"content-type").unwrap_or(b"");
            default_processor(ct)
        });
        self.data.processor = processor;
        if !self.state.body_access {
            return;
        }
        let ct = self.data.header(b"content-type").unwrap_or(b"").to_vec();
        let limits = BodyLimits {
            max_body_bytes: self.rules.settings.request_body_limit,
            max_args: self.rules.settings.arguments_limit,
            max_json_depth: self.rules.settings.json_depth_limit,
        };
        let body = &self.data.req.body;
        let parsed = match processor {
            Some(p) => body::parse(p, &ct, body, &limits),
            None => ParsedBody::default(),
        };
        self.data.body = Some(parsed);
        // Group unions computed before the body was parsed miss its values.
        self.state.group_bits.iter_mut().for_each(|g| *g = RX_NONE);
    }

    fn run_phase(&mut self, phase: u8) {
        if self.state.allowed {
            return;
        }
        let rs = self.rules;
        let steps = &rs.phases[phase as usize];
        let mut i = 0;
        let mut skip = 0u32;
        while i < steps.len() {
            let Step::Rule(idx) = &steps[i] else {
                i += 1;
                continue;
            };
            if skip > 0 {
                skip -= 1;
                i += 1;
                continue;
            }
            let rule = &rs.rules[*idx];
            if self.is_removed(rule) {
                i += 1;
                continue;
            }
            if self.eval_chain(rule) {
                if let Some(m) = &rule.skip_after {
                    match rs.markers[phase as usize].get(m) {
                        Some(&pos) if pos > i => i = pos,
                        _ => i = steps.len(),
                    }
                }
                skip = rule.skip;
                if let Some(action) = self.disruptive_of(rule) {
                    match action {
                        Disruptive::Pass | Disruptive::Block => {}
                        Disruptive::Allow => {
                            self.state.allowed = true;
                            return;
                        }
                        other => {
                            if self.state.mode == EngineMode::On {
                                let status = rule.status.unwrap_or(match other {
                                    Disruptive::Redirect(_) => 302,
                                    _ => 403,
                                });
                                self.state.interruption = Some(Interruption {
                                    rule_id: rule.id,
                                    status,
                                    action: other,
                                    phase,
                                });
                                return;
                            }
                        }
                    }
                }
            }
            i += 1;
        }
    }

    fn disruptive_of(&self, rule: &Rule) -> Option<Disruptive> {
        match &rule.disruptive {
            Some(Disruptive::Block) => Some(self.rules.block_action[rule.phase as usize].clone()),
            Some(d) => Some(d.clone()),
            None => None,
        }
    }

    fn is_removed(&self, rule: &Rule) -> bool {
        let s = &self.state;
        s.removed_ids.iter().any(|r| r.contains(rule.id))
            || (!s.removed_tags.is_empty() && rule.tags.iter().any(|t| s.removed_tags.contains(t)))
    }

    /// Evaluates a rule and its chain; on a full match runs the actions of
    /// every link and records the match. Returns whether it matched.
    fn eval_chain(&mut self, head: &Rule) -> bool {
        self.state.rule_id = head.id;
        self.state.rule_msg.clear();
        // Like ModSecurity, the non-disruptive actions of a link run as soon
        // as that link matches: later links may read what earlier ones set.
        let mut link = head;
        loop {
            if !self.eval_rule(head, link) {
                return false;
            }
            match &link.chained {
                Some(next) => link = next,
                None => break,
            }
        }
        let ctx = Ctx {
            data: &self.data,
            state: &self.state,
        };
        let msg = head
            .msg
            .as_ref()
            .map(|m| String::from_utf8_lossy(&m.expand(&ctx)).into_owned())
            .unwrap_or_default();
        let mut logdata = String::new();
        let mut l = Some(head);
        while let Some(r) = l {
            if let Some(d) = &r.logdata {
                logdata = String::from_utf8_lossy(&d.expand(&ctx)).into_owned();
            }
            l = r.chained.as_deref();
        }
        let entry = MatchedRule {
            id: head.id,
            phase: head.phase,
            msg,
            logdata,
            severity: head.severity,
            tags: head.tags.clone(),
            matched_var_name: String::from_utf8_lossy(&self.state.matched_var_name).into_owned(),
            log: head.log,
        };
        self.state.rule_msg = entry.msg.as_bytes().to_vec();
        self.state.matched.push(entry);
        true
    }
}

/// Runs the non-disruptive actions (setvar, ctl) of a rule that matched.
fn run_actions(data: &RequestData, state: &mut State, rule: &Rule) {
    for sv in &rule.setvars {
        let ctx = Ctx { data, state };
        let name = String::from_utf8_lossy(&sv.name.expand(&ctx)).to_ascii_lowercase();
        let new = match &sv.op {
            SetOp::Set(v) => Some(v.expand(&ctx)),
            SetOp::Add(v) | SetOp::Sub(v) => {
                let cur = coll_get(state, &sv.collection, &name).map(num).unwrap_or(0);
                let delta = num(&v.expand(&ctx));
                let n = if matches!(sv.op, SetOp::Add(_)) {
                    cur.saturating_add(delta)
                } else {
                    cur.saturating_sub(delta)
                };
                Some(n.to_string().into_bytes())
            }
            SetOp::Delete => None,
        };
        let coll = if sv.collection == "tx" {
            &mut state.tx
        } else {
            state.colls.entry(sv.collection.clone()).or_default()
        };
        match new {
            Some(v) => {
                coll.insert(name, v);
            }
            None => {
                coll.remove(&name);
            }
        }
    }
    for ctl in &rule.ctls {
        match ctl {
            Ctl::RuleRemoveById(r) => state.removed_ids.extend_from_slice(r),
            Ctl::RuleRemoveByTag(t) => state.removed_tags.push(t.clone()),
            Ctl::RuleRemoveTargetById(r, v, s) => {
                state.removed_targets.push((RuleSel::Id(*r), *v, s.clone()))
            }
            Ctl::RuleRemoveTargetByTag(t, v, s) => {
                state
                    .removed_targets
                    .push((RuleSel::Tag(t.clone()), *v, s.clone()))
            }
            Ctl::RuleEngine(m) => state.mode = *m,
            Ctl::RequestBodyProcessor(p) => state.body_processor = Some(*p),
            Ctl::RequestBodyAccess(on) => state.body_access = *on,
            Ctl::ForceRequestBodyVariable(on) => state.force_body_var = *on,
            Ctl::Ignored => {}
        }
    }
}

fn coll_get<'s>(state: &'s State, coll: &str, name: &str) -> Option<&'s [u8]> {
    if coll == "tx" {
        state.tx.get(name).map(Vec::as_slice)
    } else {
        state
            .colls
            .get(coll)
            .and_then(|c| c.get(name))
            .map(Vec::as_slice)
    }
}

impl Transaction<'_> {
    /// Evaluates one link against its targets. Sets MATCHED_VAR(S) and
    /// captures. `head` carries the id and tags used by exclusions.
    fn eval_rule(&mut self, head: &Rule, rule: &Rule) -> bool {
        if rule.unconditional {
            run_actions(&self.data, &mut self.state, rule);
            return true;
        }
        let rs = self.rules;
        let data = &self.data;
        let state = &mut self.state;
        // Fast path: if no value of the rule's group (after its
        // transformations) matches any attack pattern, skip the rule.
        if let Some(g) = rule.group {
            if !group_dirty(rs, data, state, rule, g) {
                return false;
            }
        }
        let mut items: Vec<Item<'_>> = Vec::new();
        for t in &rule.targets.targets {
            collect(data, state, t, &rule.targets, Some(head), &mut items);
        }
        state.matched_vars.clear();
        let mut matched = false;
        let chains = &rs.chains;
        for item in &items {
            let cacheable = item.var.is_request_static() && matches!(item.value, Cow::Borrowed(_));
            let hit = if rule.multi_match {
                multi_match(chains, state, data, rule, &item.value, cacheable)
            } else {
                let value = transformed(
                    chains,
                    &mut state.cache,
                    &item.value,
                    rule.chain_id,
                    cacheable,
                );
                let value: &[u8] = match &value {
                    Some(v) => v,
                    None => &item.value,
                };
                let hit = eval_op(rule, value, data, state);
                hit.then(|| value.to_vec())
            };
            if let Some(v) = hit {
                matched = true;
                let name = item.full_name();
                state.matched_var = v.clone();
                state.matched_var_name = name.clone().into_bytes();
                state.matched_vars.push((name, v));
                // Like ModSecurity, actions run once per matching value.
                run_actions(data, state, rule);
            }
        }
        matched
    }
}

/// Whether any value a rule group inspects may match an attack pattern.
/// Ignores runtime target removals, so it over-approximates: it is only
/// used to skip rules that cannot match.
fn group_dirty(rs: &RuleSet, data: &RequestData, state: &mut State, rule: &Rule, g: u32) -> bool {
    match state.group_bits.get(g as usize).copied() {
        Some(0) => return false,
        Some(1) => return true,
        _ => {}
    }
    let Some(Some(set)) = rs.group_sets.get(g as usize) else {
        return true;
    };
    let mut items: Vec<Item<'_>> = Vec::new();
    for t in &rule.targets.targets {
        collect(data, state, t, &rule.targets, None, &mut items);
    }
    let mut dirty = false;
    for item in &items {
        let cacheable = matches!(item.value, Cow::Borrowed(_));
        let v = transformed(
            &rs.chains,
            &mut state.cache,
            &item.value,
            rule.chain_id,
            cacheable,
        );
        let value: &[u8] = match &v {
            Some(v) => v,
            None => &item.value,
        };
        if set.is_match(value) {
            dirty = true;
            break;
        }
    }
    if let Some(slot) = state.group_bits.get_mut(g as usize) {
        *slot = dirty as u32;
    }
    dirty
}

/// Runs the operator; on a match with `capture`, copies captures to TX.0-9.
fn eval_op(rule: &Rule, value: &[u8], data: &RequestData, state: &mut State) -> bool {
    let want_caps = rule.capture && !rule.negated;
    let mut caps = std::mem::take(&mut state.captures);
    let hit = {
        let ctx = Ctx { data, state };
        if let (Some(re), false) = (rule.operator.static_regex(), want_caps) {
            re.is_match(value)
        } else {
            rule.operator
                .eval(value, &ctx, want_caps.then_some(&mut caps))
        }
    };
    let result = hit != rule.negated;
    if result && want_caps {
        for (i, c) in caps.iter().enumerate() {
            state.tx.insert(i.to_string(), c.clone());
        }
    }
    state.captures = caps;
    result
}

fn multi_match(
    chains: &crate::rules::TransformChains,
    state: &mut State,
    data: &RequestData,
    rule: &Rule,
    original: &[u8],
    cacheable: bool,
) -> Option<Vec<u8>> {
    if eval_op(rule, original, data, state) {
        return Some(original.to_vec());
    }
    // Walk the chain from the root, testing each value that changed.
    let mut path = Vec::new();
    let mut n = rule.chain_id;
    while let Some(id) = n {
        path.push(id);
        n = chains.nodes[id as usize].0;
    }
    let mut last: Option<Rc<[u8]>> = None;
    for &id in path.iter().rev() {
        let v = transformed(chains, &mut state.cache, original, Some(id), cacheable);
        let changed = match (&v, &last) {
            (None, _) => false,
            (Some(a), Some(b)) => a != b,
            (Some(_), None) => true,
        };
        if changed {
            if let Some(val) = &v {
                if eval_op(rule, val, data, state) {
                    return Some(val.to_vec());
                }
            }
        }
        last = v;
    }
    None
}

/// A cached transformation result.
#[derive(Clone)]
struct Cached {
    /// `None`: the transformations left the value unchanged.
    value: Option<Rc<[u8]>>,
}

/// The value after the chain ending at `node`; `None` = unchanged.
fn transformed(
    chains: &crate::rules::TransformChains,
    cache: &mut HashMap<(usize, usize, u32), Cached, FxBuild>,
    value: &[u8],
    node: Option<u32>,
    cacheable: bool,
) -> Option<Rc<[u8]>> {
    let node = node?;
    // No byte this chain reacts to: every step leaves the value alone.
    let mask = chains.masks.get(node as usize).copied().unwrap_or(u32::MAX);
    let flags = if mask == u32::MAX {
        u32::MAX
    } else {
        crate::transform::byte_flags(value)
    };
    if flags & mask == 0 {
        return None;
    }
    transformed_from(chains, cache, value, node, flags, cacheable)
}

/// [`transformed`] once the value's byte classes are known.
fn transformed_from(
    chains: &crate::rules::TransformChains,
    cache: &mut HashMap<(usize, usize, u32), Cached, FxBuild>,
    value: &[u8],
    node: u32,
    flags: u32,
    cacheable: bool,
) -> Option<Rc<[u8]>> {
    let mask = chains.masks.get(node as usize).copied().unwrap_or(u32::MAX);
    if flags & mask == 0 {
        return None;
    }
    let key = (value.as_ptr() as usize, value.len(), node);
    if cacheable {
        if let Some(hit) = cache.get(&key) {
            return hit.value.clone();
        }
    }
    let (parent, t) = chains.nodes[node as usize];
    let input = match parent {
        Some(p) => transformed_from(chains, cache, value, p, flags, cacheable),
        None => None,
    };
    let out = {
        let src: &[u8] = match &input {
            Some(v) => v,
            None => value,
        };
        match t {
            Transform::None => None,
            t => t.apply(src).map(Rc::from),
        }
    };
    let result = out.or(input);
    if cacheable {
        cache.insert(
            key,
            Cached {
                value: result.clone(),
            },
        );
    }
    result
}

fn num(v: &[u8]) -> i64 {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            let end = s
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
                .map(|(i, _)| i)
                .unwrap_or(s.len());
            s[..end].parse().ok()
        })
        .unwrap_or(0)
}

/// The default body processor for a Content-Type, as ModSecurity's
/// recommended configuration selects it.
pub fn default_processor(ct: &[u8]) -> Option<Processor> {
    match Processor::for_content_type(ct) {
        Processor::None => None,
        p => Some(p),
    }
}

fn excluded(list: &TargetList, state: &State, head: Option<&Rule>, var: Var, key: &[u8]) -> bool {
    if list
        .exclusions
        .iter()
        .any(|(v, s)| *v == var && s.matches(key))
    {
        return true;
    }
    let Some(head) = head else {
        return false;
    };
    state.removed_targets.iter().any(|(sel, v, s)| {
        *v == var
            && s.matches(key)
            && match sel {
                RuleSel::Id(r) => r.contains(head.id),
                RuleSel::Tag(t) => head.tags.iter().any(|x| x == t),
            }
    })
}

/// Appends the values a target selects.
fn collect<'d>(
    data: &'d RequestData,
    state: &State,
    t: &Target,
    list: &TargetList,
    head: Option<&Rule>,
    out: &mut Vec<Item<'d>>,
) {
    let start = out.len();
    let var = t.var;
    let kv = |pairs: &'d [(Vec<u8>, Vec<u8>)], names: bool, out: &mut Vec<Item<'d>>| {
        for (k, v) in pairs {
            if !t.selector.matches(k) || excluded(list, state, head, var, k) {
                continue;
            }
            out.push(Item {
                var,
                key: Cow::Borrowed(k.as_slice()),
                value: Cow::Borrowed(if names { k.as_slice() } else { v.as_slice() }),
            });
        }
    };
    let scalar = |value: Cow<'d, [u8]>, out: &mut Vec<Item<'d>>| {
        if !excluded(list, state, head, var, b"") {
            out.push(Item {
                var,
                key: Cow::Borrowed(b""),
                value,
            });
        }
    };
    let body = data.body.as_ref();
    match var {
        Var::Args => {
            kv(&data.args_get, false, out);
            kv(data.args_post(), false, out);
        }
        Var::ArgsNames => {
            kv(&data.args_get, true, out);
            kv(data.args_post(), true, out);
        }
        Var::ArgsGet => kv(&data.args_get, false, out),
        Var::ArgsGetNames => kv(&data.args_get, true, out),
        Var::ArgsPost => kv(data.args_post(), false, out),
        Var::ArgsPostNames => kv(data.args_post(), true, out),
        Var::ArgsCombinedSize => {
            let n: usize = data
                .args_get
                .iter()
                .chain(data.args_post())
                .map(|(k, v)| k.len() + v.len())
                .sum();
            scalar(Cow::Owned(n.to_string().into_bytes()), out)
        }
        Var::RequestHeaders => kv(&data.req.headers, false, out),
        Var::RequestHeadersNames => kv(&data.req.headers, true, out),
        Var::RequestCookies => kv(&data.cookies, false, out),
        Var::RequestCookiesNames => kv(&data.cookies, true, out),
        Var::RequestFilename => scalar(Cow::Borrowed(&data.path_decoded), out),
        Var::RequestBasename => scalar(Cow::Borrowed(&data.basename), out),
        Var::RequestUri => scalar(Cow::Borrowed(&data.uri_decoded), out),
        Var::RequestUriRaw => scalar(Cow::Borrowed(&data.req.uri), out),
        Var::RequestLine => scalar(Cow::Borrowed(&data.request_line), out),
        Var::RequestMethod => scalar(Cow::Borrowed(&data.req.method), out),
        Var::RequestProtocol => scalar(Cow::Borrowed(&data.req.protocol), out),
        Var::RequestBody => {
            // The URLENCODED and JSON processors (as in Coraza, which the CRS
            // suite runs against) or ctl:forceRequestBodyVariable expose the
            // raw body here; XML and MULTIPART do not.
            let exposed = matches!(
                data.processor,
                Some(Processor::UrlEncoded | Processor::Json)
            );
            if exposed || state.force_body_var {
                scalar(Cow::Borrowed(&data.req.body), out)
            }
        }
        Var::RequestBodyLength => scalar(
            Cow::Owned(data.req.body.len().to_string().into_bytes()),
            out,
        ),
        Var::QueryString => scalar(Cow::Borrowed(&data.query), out),
        Var::Files | Var::FilesNames | Var::FilesSizes | Var::FilesTmpContent => {
            if let Some(b) = body {
                for f in &b.files {
                    let key = f.name.as_slice();
                    if !t.selector.matches(key) || excluded(list, state, head, var, key) {
                        continue;
                    }
                    let value = match var {
                        Var::Files => Cow::Borrowed(f.filename.as_slice()),
                        Var::FilesNames => Cow::Borrowed(key),
                        Var::FilesSizes => Cow::Owned(f.size.to_string().into_bytes()),
                        _ => Cow::Borrowed(f.content.as_slice()),
                    };
                    out.push(Item {
                        var,
                        key: Cow::Borrowed(key),
                        value,
                    });
                }
            }
        }
        Var::FilesCombinedSize => {
            let n: usize = body
                .map(|b| b.files.iter().map(|f| f.size).sum())
                .unwrap_or(0);
            scalar(Cow::Owned(n.to_string().into_bytes()), out)
        }
        Var::MultipartPartHeaders => {
            if let Some(b) = body {
                kv(&b.multipart_part_headers, false, out)
            }
        }
        Var::Multipart(m) => {
            let v = body
                .and_then(|b| b.multipart.as_ref())
                .and_then(|f| f.get(m.name()))
                .map(|v| v.to_bytes())
                .unwrap_or_else(|| b"0".to_vec());
            scalar(Cow::Owned(v), out)
        }
        Var::Xml => {
            if let Some(x) = body.and_then(|b| b.xml.as_ref()) {
                let attrs = matches!(&t.selector, Selector::XPath(p) if p.contains('@'));
                let list = if attrs { &x.attributes } else { &x.text };
                for v in list {
                    out.push(Item {
                        var,
                        key: Cow::Borrowed(b""),
                        value: Cow::Borrowed(v.as_slice()),
                    });
                }
            }
        }
        Var::Tx if matches!(t.selector, Selector::Key(_)) => {
            if let Selector::Key(k) = &t.selector {
                let lower = k.to_ascii_lowercase();
                if let Some((k, v)) = state.tx.get_key_value(&lower) {
                    if !excluded(list, state, head, var, k.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Cow::Owned(k.as_bytes().to_vec()),
                            value: Cow::Owned(v.clone()),
                        });
                    }
                }
            }
        }
        Var::Tx => {
            let mut keys: Vec<&String> = state
                .tx
                .keys()
                .filter(|k| t.selector.matches(k.as_bytes()))
                .collect();
            keys.sort();
            for k in keys {
                if excluded(list, state, head, var, k.as_bytes()) {
                    continue;
                }
                out.push(Item {
                    var,
                    key: Cow::Owned(k.as_bytes().to_vec()),
                    value: Cow::Owned(state.tx[k].clone()),
                });
            }
        }
        Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource => {
            if let Some(c) = state.colls.get(&var.name().to_ascii_lowercase()) {
                for (k, v) in c {
                    if t.selector.matches(k.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Cow::Owned(k.as_bytes().to_vec()),
                            value: Cow::Owned(v.clone()),
                        });
                    }
                }
            }
        }
        Var::MatchedVar => scalar(Cow::Owned(state.matched_var.clone()), out),
        Var::MatchedVarName => scalar(Cow::Owned(state.matched_var_name.clone()), out),
        Var::MatchedVars | Var::MatchedVarsNames => {
            for (name, v) in &state.matched_vars {
                if !t.selector.matches(name.as_bytes()) {
                    continue;
                }
                let value = if var == Var::MatchedVars {
                    v.clone()
                } else {
                    name.as_bytes().to_vec()
                };
                out.push(Item {
                    var,
                    key: Cow::Owned(name.as_bytes().to_vec()),
                    value: Cow::Owned(value),
                });
            }
        }
        Var::ReqbodyError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyProcessorError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyErrorMsg => {
            let m = body
                .and_then(|b| b.error.as_ref())
                .map(|e| e.as_bytes().to_vec())
                .unwrap_or_default();
            scalar(Cow::Owned(m), out)
        }
        Var::ReqbodyProcessor => {
            // Before the body is read, this reflects a ctl: choice or the default.
            let p = data
                .processor
                .or(state.body_processor)
                .or_else(|| default_processor(data.header(b"content-type").unwrap_or(b"")));
            // Empty (not absent) without a processor: CRS tests it with `!@rx`.
            let name: &'static [u8] = p.map(|p| p.name().as_bytes()).unwrap_or(b"");
            scalar(Cow::Borrowed(name), out)
        }
        Var::RemoteAddr => scalar(Cow::Borrowed(data.req.remote_addr.as_bytes()), out),
        Var::RemotePort => scalar(
            Cow::Owned(data.req.remote_port.to_string().into_bytes()),
            out,
        ),
        Var::ServerName => scalar(Cow::Borrowed(&data.server_name), out),
        Var::UniqueId => scalar(Cow::Borrowed(data.req.unique_id.as_bytes()), out),
        Var::FullRequestLength => {
            let n = data.request_line.len()
                + data
                    .req
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + data.req.body.len();
            scalar(Cow::Owned(n.to_string().into_bytes()), out)
        }
        Var::HighestSeverity => {
            let s = state
                .matched
                .iter()
                .filter_map(|m| m.severity)
                .min()
                .unwrap_or(255);
            scalar(Cow::Owned(s.to_string().into_bytes()), out)
        }
        Var::Duration => scalar(Cow::Borrowed(b"0"), out),
        Var::UrlencodedError => {
            let e = body.is_some_and(|b| b.urlencoded_error);
            scalar(Cow::Borrowed(if e { b"1" } else { b"0" }), out)
        }
        Var::InboundDataError | Var::OutboundDataError => scalar(Cow::Borrowed(b"0"), out),
        // Response-side and host variables are empty in request phases.
        _ => {}
    }
    if t.count {
        let n = out.len() - start;
        out.truncate(start);
        out.push(Item {
            var,
            key: Cow::Owned(t.selector.text().into_bytes()),
            value: Cow::Owned(n.to_string().into_bytes()),
        });
    }
}
