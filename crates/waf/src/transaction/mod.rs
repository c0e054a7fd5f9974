//! Evaluation of one HTTP transaction against a [`RuleSet`], phase by phase.
//!
//! The request is parsed once into [`RequestData`] (arguments, cookies,
//! body), the response (when there is one) into [`ResponseData`]. Mutable
//! evaluation state (TX collection, matched variables, runtime `ctl:`
//! changes) lives in [`State`], and transformation results in a cache of
//! their own, so rules can read request data and transformed values by
//! reference while updating state.
//!
//! A transaction owns an `Arc` of its rule set and is `Send + Sync`: it may
//! live between the hooks of a proxy, on any thread. Which phase runs when,
//! and what happens to bodies, is decided by [`crate::exchange`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::body::{self, BodyLimits, ParsedBody, Processor};
use crate::macros::Resolve;
use crate::memo::LocalMemo;
use crate::operators::Captures;
use crate::prefilter::{FxBuild, SeededBuild, RX_NONE};
use crate::rules::{Ctl, Disruptive, EngineMode, IdRange, Rule, RuleSet, SetOp, Step};
use crate::transform::Transform;
use crate::txvars::TxVars;
use crate::variables::{Selector, Target, TargetList, Var};

mod actions;
mod collect;
mod eval;
mod items;
mod report;
mod request;
#[cfg(test)]
mod tests;
mod values;

use actions::{disruptive_of, Ctx};
use items::{ItemBuffers, ItemCache};
pub use report::{Interruption, MatchedRule};
pub use request::{
    default_processor, percent_decode, reason_phrase, HttpRequest, RequestData, ResponseData,
};

/// A runtime exclusion from `ctl:ruleRemoveTarget*`.
#[derive(Debug, Clone)]
enum RuleSel {
    Id(IdRange),
    Tag(String),
}

/// Mutable evaluation state.
#[derive(Default)]
pub struct State {
    // Every field is owned data (no `Rc`, no cells): a transaction can move
    // between threads with the proxy hook that drives it.
    pub tx: TxVars,
    /// Other collections written by setvar (ip, global, ...), per request.
    colls: HashMap<String, HashMap<String, Vec<u8>, SeededBuild>>,
    matched_var: Vec<u8>,
    matched_var_name: Vec<u8>,
    /// `MATCHED_VARS` of the rule being evaluated: the first
    /// `matched_vars_len` entries (the others are buffers kept for reuse).
    matched_vars: Vec<(String, Vec<u8>)>,
    matched_vars_len: usize,
    /// Most severe (lowest) severity of the rules matched so far.
    highest_severity: Option<u8>,
    /// Buffers for macro expansion and names (reused, not reallocated).
    scratch: Vec<u8>,
    scratch_name: String,
    removed_ids: Vec<IdRange>,
    removed_tags: Vec<String>,
    removed_targets: Vec<(RuleSel, Var, Selector)>,
    pub mode: EngineMode,
    body_processor: Option<Processor>,
    body_access: bool,
    response_body_access: bool,
    force_body_var: bool,
    /// Per rule group: 0 = no `@rx` pattern can match, 1 = some value may
    /// match one, [`RX_NONE`] = not computed yet for the current values.
    group_bits: Vec<u32>,
    /// Per grouped `@pm` rule ([`Rule::pm_bit`]): a phrase of it is in some
    /// value (valid where its group is computed).
    pm_bits: Vec<u64>,
    pub matched: Vec<MatchedRule>,
    pub interruption: Option<Interruption>,
    allowed: bool,
    rule_id: u32,
    rule_msg: Vec<u8>,
    captures: Captures,
}

impl State {
    /// The values the rule groups check changed: their answers must be
    /// computed again.
    fn groups_replaced(&mut self) {
        self.group_bits.fill(RX_NONE);
        self.pm_bits.fill(0);
    }
}

/// A transaction: request data plus evaluation state, and the rule set
/// it is evaluated against.
pub struct Transaction {
    rules: Arc<RuleSet>,
    pub data: RequestData,
    pub state: State,
    /// Transformation results (apart from `state`: rules borrow values from
    /// it while they update the state).
    cache: TransformCache,
    /// This transaction's entries of the rule set's value memo.
    memo: LocalMemo,
    /// The buffers of the phases' [`ItemCache`]s.
    items: ItemBuffers,
}

/// What a phase's rules work on: the transaction's parts borrowed apart,
/// so that the values rules select (borrowed from `data` and the rule set,
/// shared through `items`) are read while the rules update `state`.
struct Phase<'d> {
    rs: &'d RuleSet,
    data: &'d RequestData,
    state: &'d mut State,
    cache: &'d mut TransformCache,
    memo: &'d mut LocalMemo,
    items: ItemCache<'d>,
}

/// Transformation results of a transaction, by (value address, value
/// length, chain node). Valid while the values they were computed from
/// live: cleared whenever values are freed or replaced.
#[derive(Default)]
struct TransformCache {
    /// Key → index in `values`, or `None`: the chain left the value unchanged.
    index: HashMap<(usize, usize, u32), Option<u32>, FxBuild>,
    values: Vec<Vec<u8>>,
}

impl TransformCache {
    fn clear(&mut self) {
        self.index.clear();
        self.values.clear();
    }

    fn bytes<'a>(&'a self, v: &'a Transformed) -> &'a [u8] {
        match v {
            Transformed::Cached(i) => self.values.get(*i as usize).map_or(&[], |v| v.as_slice()),
            Transformed::Owned(v) => v,
        }
    }
}

/// A value after its transformations (when they changed it).
enum Transformed {
    /// In the cache, at this index.
    Cached(u32),
    /// Not cacheable (a value computed for this rule only).
    Owned(Vec<u8>),
}

impl Transaction {
    pub fn new(rules: Arc<RuleSet>, req: HttpRequest) -> Transaction {
        let state = State {
            // CRS sets about a hundred TX variables per request.
            tx: TxVars::new(Arc::clone(&rules.tx_names)),
            mode: rules.settings.mode,
            body_access: rules.settings.request_body_access,
            response_body_access: rules.settings.response_body_access,
            group_bits: vec![RX_NONE; rules.groups.len()],
            pm_bits: vec![0; rules.pm_bits.div_ceil(64)],
            ..State::default()
        };
        Transaction {
            rules,
            data: RequestData::new(req),
            state,
            cache: TransformCache::default(),
            memo: LocalMemo::default(),
            items: ItemBuffers::default(),
        }
    }

    /// The rule set this transaction runs.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Runs phases 1 and 2 (request headers and body).
    pub fn process_request(&mut self) -> Option<&Interruption> {
        self.process_request_headers();
        self.process_request_body()
    }

    /// Phase 1: request headers.
    pub fn process_request_headers(&mut self) -> Option<&Interruption> {
        self.run_phase(1);
        self.state.interruption.as_ref()
    }

    /// Parses `data.req.body` (as far as inspected) and runs phase 2,
    /// unless an earlier phase interrupted the transaction.
    pub fn process_request_body(&mut self) -> Option<&Interruption> {
        if self.state.interruption.is_none() && self.state.mode != EngineMode::Off {
            self.parse_body();
            self.run_phase(2);
        }
        self.state.interruption.as_ref()
    }

    /// Gives the request body back and drops what was derived from it
    /// (`REQUEST_BODY`, `ARGS_POST`, `FILES`, `XML`...): later phases see
    /// a request without body.
    pub fn take_request_body(&mut self) -> Vec<u8> {
        let body = std::mem::take(&mut self.data.req.body);
        self.data.inspect_len = None;
        if let Some(b) = self.data.body.as_mut() {
            // Keep the error flags (`REQBODY_ERROR`...), drop the values.
            b.args = Vec::new();
            b.files = Vec::new();
            b.multipart_part_headers = Vec::new();
            b.xml = None;
        }
        self.values_replaced();
        body
    }

    /// Sets the response headers (phase 3 data).
    pub fn set_response(&mut self, resp: ResponseData) {
        self.data.resp = resp;
        self.values_replaced();
    }

    /// Phase 3: response headers, unless an earlier phase interrupted.
    pub fn process_response_headers(&mut self) -> Option<&Interruption> {
        if self.state.interruption.is_none() {
            self.run_phase(3);
        }
        self.state.interruption.as_ref()
    }

    /// Sets `RESPONSE_BODY` (what phase 4 inspects). Without body access
    /// (`SecResponseBodyAccess Off`) the body stays empty.
    pub fn set_response_body(&mut self, body: Vec<u8>, over_limit: bool) {
        self.data.resp.body = if self.state.response_body_access {
            body
        } else {
            Vec::new()
        };
        self.data.resp.body_read = true;
        self.data.resp.body_over_limit = over_limit;
        self.values_replaced();
    }

    /// Frees `RESPONSE_BODY` (after phase 4).
    pub fn release_response_body(&mut self) {
        self.data.resp.body = Vec::new();
        self.values_replaced();
    }

    /// The body processor a `ctl:requestBodyProcessor` chose, if any.
    pub fn request_body_processor(&self) -> Option<Processor> {
        self.state.body_processor
    }

    /// Phase 4: response body, unless an earlier phase interrupted.
    pub fn process_response_body(&mut self) -> Option<&Interruption> {
        if self.state.interruption.is_none() {
            self.run_phase(4);
        }
        self.state.interruption.as_ref()
    }

    /// Phase 5: logging. Runs even after an interruption; nothing it
    /// matches can interrupt.
    pub fn process_logging(&mut self) {
        self.run_phase(5);
    }

    /// Whether response bodies are inspected (`SecResponseBodyAccess`).
    pub fn response_body_access(&self) -> bool {
        self.state.response_body_access
    }

    /// Values were freed or replaced: cached results keyed by their
    /// address must go, and group checks must see the new values.
    fn values_replaced(&mut self) {
        if let Some(memo) = &self.rules.memo {
            self.memo.flush_and_clear(memo);
        }
        self.cache.clear();
        self.state.groups_replaced();
    }

    /// Inbound anomaly score CRS computed (`tx.blocking_inbound_anomaly_score`).
    pub fn inbound_score(&self) -> i64 {
        self.tx_num("blocking_inbound_anomaly_score")
            .or_else(|| self.tx_num("inbound_anomaly_score"))
            .or_else(|| self.tx_num("anomaly_score"))
            .unwrap_or(0)
    }

    /// Outbound anomaly score CRS computed (`tx.blocking_outbound_anomaly_score`).
    pub fn outbound_score(&self) -> i64 {
        self.tx_num("blocking_outbound_anomaly_score")
            .or_else(|| self.tx_num("outbound_anomaly_score"))
            .unwrap_or(0)
    }

    /// Sets `tx.<name>` (any case) before the rules run: values the caller
    /// knows per request (the edge's positive model, see
    /// [`crate::config::MODEL_METHODS_TX`]).
    pub fn set_tx(&mut self, name: &str, value: &[u8]) {
        self.state.tx.set(&name.to_ascii_lowercase(), value);
    }

    /// A `tx.` variable as a number.
    pub fn tx_num(&self, name: &str) -> Option<i64> {
        self.state
            .tx
            .get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
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
        let body = self.data.inspected_body();
        let parsed = match processor {
            Some(p) => body::parse_with(p, &ct, body, &limits, self.data.body_partial),
            None if body::is_text_like(&ct) => {
                body::parse_text(body, &limits, self.data.body_partial)
            }
            None => body::parse_other(body, &limits, self.data.body_partial),
        };
        self.data.body = Some(parsed);
        // Group answers computed before the body was parsed miss its values.
        self.state.groups_replaced();
    }

    fn run_phase(&mut self, phase: u8) {
        self.run_phase_rules(phase);
        // What the phase learned goes back to the memo for later requests.
        if let Some(memo) = &self.rules.memo {
            self.memo.flush(memo);
        }
    }

    fn run_phase_rules(&mut self, phase: u8) {
        // `allow` ends the transaction's rule processing, but not logging.
        if self.state.mode == EngineMode::Off || (self.state.allowed && phase != 5) {
            return;
        }
        let holder = Arc::clone(&self.rules);
        let rs: &RuleSet = &holder;
        let items = self.items.begin(rs.item_lists);
        let mut p = Phase {
            rs,
            data: &self.data,
            state: &mut self.state,
            cache: &mut self.cache,
            memo: &mut self.memo,
            items,
        };
        p.run(phase);
        let Phase { items, .. } = p;
        self.items.end(items);
    }
}

impl<'d> Phase<'d> {
    /// Runs the rules of `phase`, in order, until one interrupts.
    fn run(&mut self, phase: u8) {
        let rs = self.rs;
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
                if rule.skip_after.is_some() {
                    match rule.skip_after_step {
                        Some(pos) if pos > i => i = pos,
                        _ => i = steps.len(),
                    }
                }
                skip = rule.skip;
                if matches!(rule.disruptive, None | Some(Disruptive::Pass)) {
                    i += 1;
                    continue;
                }
                if let Some(action) = disruptive_of(rs, rule) {
                    match action {
                        Disruptive::Pass | Disruptive::Block => {}
                        Disruptive::Allow => {
                            self.state.allowed = true;
                            return;
                        }
                        // Too late to interrupt anything in logging.
                        _ if phase == 5 => {}
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

    fn is_removed(&self, rule: &Rule) -> bool {
        let s = &*self.state;
        s.removed_ids.iter().any(|r| r.contains(rule.id))
            || (!s.removed_tags.is_empty() && rule.tags.iter().any(|t| s.removed_tags.contains(t)))
    }

    /// Evaluates a rule and its chain; on a full match runs the actions of
    /// every link and records the match. Returns whether it matched.
    fn eval_chain(&mut self, head: &'d Rule) -> bool {
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
        if let Some(s) = head.severity {
            let h = &mut self.state.highest_severity;
            *h = Some(h.map_or(s, |h| h.min(s)));
        }
        // Only logged matches are reported (verdicts, the log): a `nolog`
        // rule (CRS' paranoia-level skips, its scoring) costs no more.
        if !head.log {
            return true;
        }
        let ctx = Ctx {
            data: self.data,
            state: self.state,
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
            matched_var_names: self.state.matched_vars[..self.state.matched_vars_len]
                .iter()
                .take(MatchedRule::MAX_VARS)
                .map(|(name, _)| name.clone())
                .collect(),
            log: head.log,
        };
        self.state.rule_msg.extend_from_slice(entry.msg.as_bytes());
        self.state.matched.push(entry);
        true
    }
}
