//! Rule actions (`setvar`, `msg`, `ctl:`, disruptive actions, ...), macro
//! expansion against the transaction, and the `MATCHED_VAR*` bookkeeping.

use super::collect::collect;
use super::eval::num;
use super::request::RequestData;
use super::values::{push_i64, Item};
use super::*;

/// Resolves macros against request data and state.
pub(super) struct Ctx<'a> {
    pub(super) data: &'a RequestData,
    pub(super) state: &'a State,
}

impl Resolve for Ctx<'_> {
    fn resolve_tx(&self, slot: u32, _key: &str, out: &mut Vec<u8>) {
        if let Some(v) = self.state.tx.get_slot(slot) {
            out.extend_from_slice(v);
        }
    }

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
            "RESPONSE_HEADERS" => {
                if let Some(v) = key.and_then(|k| self.data.resp.header(k.as_bytes())) {
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
            | "REMOTE_PORT"
            | "RESPONSE_STATUS"
            | "RESPONSE_PROTOCOL"
            | "RESPONSE_CONTENT_TYPE"
            | "RESPONSE_CONTENT_LENGTH"
            | "STATUS_LINE" => {
                let Some(v) = Var::from_name(var) else {
                    return;
                };
                let target = Target::new(
                    v,
                    match key {
                        Some(k) => Selector::Key(k.to_string()),
                        None => Selector::All,
                    },
                    false,
                );
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

pub(super) fn disruptive_of(rs: &RuleSet, rule: &Rule) -> Option<Disruptive> {
    match &rule.disruptive {
        Some(Disruptive::Block) => Some(rs.block_action[rule.phase as usize].clone()),
        Some(d) => Some(d.clone()),
        None => None,
    }
}

/// Runs the non-disruptive actions (setvar, ctl) of a rule that matched.
pub(super) fn run_actions(data: &RequestData, state: &mut State, rule: &Rule) {
    if rule.setvars.is_empty() && rule.ctls.is_empty() {
        return;
    }
    // Expansions go to buffers the state keeps: an existing variable is
    // updated in place, without allocating.
    let mut value = std::mem::take(&mut state.scratch);
    let mut name_buf = std::mem::take(&mut state.scratch_name);
    for sv in &rule.setvars {
        let ctx = Ctx { data, state };
        let name: &str = match sv.name.as_literal() {
            // Lower-cased when parsed.
            Some(l) => l,
            None => {
                value.clear();
                sv.name.expand_into(&ctx, &mut value);
                name_buf.clear();
                name_buf.push_str(&String::from_utf8_lossy(&value));
                name_buf.make_ascii_lowercase();
                &name_buf
            }
        };
        value.clear();
        let set = match &sv.op {
            SetOp::Set(v) => {
                v.expand_into(&ctx, &mut value);
                true
            }
            SetOp::Add(v) | SetOp::Sub(v) => {
                let cur = match sv.tx_slot {
                    Some(slot) => state.tx.get_slot(slot),
                    None => coll_get(state, &sv.collection, name),
                };
                let cur = cur.map(num).unwrap_or(0);
                v.expand_into(&ctx, &mut value);
                let delta = num(&value);
                let n = if matches!(sv.op, SetOp::Add(_)) {
                    cur.saturating_add(delta)
                } else {
                    cur.saturating_sub(delta)
                };
                value.clear();
                push_i64(&mut value, n);
                true
            }
            SetOp::Delete => false,
        };
        if sv.collection == "tx" {
            match (set, sv.tx_slot) {
                (true, Some(slot)) => state.tx.set_slot(slot, &value),
                (true, None) => state.tx.set(name, &value),
                (false, Some(slot)) => state.tx.remove_slot(slot),
                (false, None) => state.tx.remove(name),
            }
            continue;
        }
        let coll = state.colls.entry(sv.collection.clone()).or_default();
        if set {
            match coll.get_mut(name) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(&value);
                }
                None => {
                    coll.insert(name.to_string(), value.clone());
                }
            }
        } else {
            coll.remove(name);
        }
    }
    state.scratch = value;
    state.scratch_name = name_buf;
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
        state.tx.get(name)
    } else {
        state
            .colls
            .get(coll)
            .and_then(|c| c.get(name))
            .map(Vec::as_slice)
    }
}

/// Sets `MATCHED_VAR` and `MATCHED_VAR_NAME` and adds to `MATCHED_VARS`,
/// reusing their buffers.
pub(super) fn record_match(state: &mut State, item: &Item<'_>, value: &[u8]) {
    let name = next_matched_var(state, value);
    item.write_name(name);
    matched_var_name_done(state);
}

/// [`record_match`] for a value named `VAR:key` with a key known to be text.
pub(super) fn record_match_str(state: &mut State, var: Var, key: &str, value: &[u8]) {
    let name = next_matched_var(state, value);
    name.clear();
    name.push_str(var.name());
    name.push(':');
    name.push_str(key);
    matched_var_name_done(state);
}

/// Adds a `MATCHED_VARS` entry holding `value` and sets `MATCHED_VAR`;
/// returns the entry's name, to be written.
fn next_matched_var<'s>(state: &'s mut State, value: &[u8]) -> &'s mut String {
    let i = state.matched_vars_len;
    if i == state.matched_vars.len() {
        state.matched_vars.push((String::new(), Vec::new()));
    }
    state.matched_vars_len = i + 1;
    state.matched_var.clear();
    state.matched_var.extend_from_slice(value);
    let (name, v) = &mut state.matched_vars[i];
    v.clear();
    v.extend_from_slice(value);
    name
}

/// Sets `MATCHED_VAR_NAME` to the name of the last `MATCHED_VARS` entry.
fn matched_var_name_done(state: &mut State) {
    let name = &state.matched_vars[state.matched_vars_len - 1].0;
    state.matched_var_name.clear();
    state.matched_var_name.extend_from_slice(name.as_bytes());
}
