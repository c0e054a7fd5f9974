//! Evaluation of one rule: its targets, transformations (cached per
//! transaction), operator, and the rule-group prefilter checks.

use super::actions::{record_match, record_match_str, run_actions, Ctx};
use super::collect::excluded;
use super::request::RequestData;
use super::*;

fn bit_is_set(bits: &[u64], bit: u32) -> bool {
    bits.get(bit as usize / 64)
        .is_some_and(|w| w & (1 << (bit % 64)) != 0)
}

impl<'d> Phase<'d> {
    /// Evaluates one link against its targets. Sets MATCHED_VAR(S) and
    /// captures. `head` carries the id and tags used by exclusions.
    pub(super) fn eval_rule(&mut self, head: &'d Rule, rule: &'d Rule) -> bool {
        if rule.unconditional {
            run_actions(self.data, self.state, rule);
            return true;
        }
        let rs = self.rs;
        let data = self.data;
        let state = &mut *self.state;
        let cache = &mut *self.cache;
        let local = &mut *self.memo;
        // Fast path: one `TX:key` target, read where it is stored (CRS'
        // paranoia-level checks and scoring).
        if let [t] = rule.targets.targets.as_slice() {
            if let (Some(key), false) = (t.tx_key.as_deref(), t.count) {
                // (Captures are only taken by rules that are not negated.)
                let captures = rule.capture && !rule.negated;
                if rule.chain_id.is_none() && !rule.multi_match && !captures {
                    if excluded(&rule.targets, state, Some(head), t.var, key.as_bytes()) {
                        state.matched_vars_len = 0;
                        return false;
                    }
                    return eval_tx_scalar(data, state, rule, t, key);
                }
            }
        }
        // Fast path: the rule's group tells whether it can match at all.
        let mut op_false = false;
        if let Some(g) = rule.group {
            let rx_dirty = group_check(rs, data, state, cache, local, &mut self.items, rule, g);
            match rule.pm_bit {
                None if !rx_dirty => return false,
                None => {}
                Some(bit) if !bit_is_set(&state.pm_bits, bit) => {
                    if !rule.negated {
                        return false;
                    }
                    // None of its phrases is in any value: `!@pm` matches
                    // every one, without searching them again.
                    op_false = true;
                }
                Some(_) => {}
            }
        }
        let selected = self.items.select(data, state, rule, Some(head));
        state.matched_vars_len = 0;
        let mut matched = false;
        let chains = &rs.chains;
        for item in self.items.items(&selected) {
            let cacheable = item.var.is_request_static() && item.value.is_ref();
            // A value this link found nothing in before, in any request.
            let memo = match (&rs.memo, rule.memo_slot, cacheable) {
                (Some(m), Some(slot), true) => local.rec(m, &item.value).map(|r| (m, r, slot)),
                _ => None,
            };
            if let Some((m, r, slot)) = memo {
                if local.negative(m, r, slot) {
                    continue;
                }
            }
            if rule.multi_match {
                let Some(v) = multi_match(chains, state, cache, data, rule, &item.value, cacheable)
                else {
                    if let Some((m, r, slot)) = memo {
                        local.set_negative(m, r, slot);
                    }
                    continue;
                };
                record_match(state, item, &v);
            } else {
                if let Some(f) = &rule.contains_filter {
                    if !f.may_match(&item.value) {
                        continue;
                    }
                }
                let t = transformed(chains, cache, &item.value, rule.chain_id, cacheable);
                let value: &[u8] = match &t {
                    Some(v) => cache.bytes(v),
                    None => &item.value,
                };
                let hit = if op_false {
                    rule.negated
                } else {
                    eval_op(rule, value, data, state)
                };
                if !hit {
                    if let Some((m, r, slot)) = memo {
                        local.set_negative(m, r, slot);
                    }
                    continue;
                }
                record_match(state, item, value);
            }
            matched = true;
            // Like ModSecurity, actions run once per matching value.
            run_actions(data, state, rule);
        }
        self.items.release(selected);
        matched
    }
}

/// [`Transaction::eval_rule`] for a link with one `TX:key` target, no
/// transformation, no capture, no exclusion: the value is compared where
/// it is stored, without copying it unless it matches.
fn eval_tx_scalar(
    data: &RequestData,
    state: &mut State,
    rule: &Rule,
    t: &Target,
    key: &str,
) -> bool {
    state.matched_vars_len = 0;
    let mut scratch = std::mem::take(&mut state.scratch);
    let value = match t.tx_slot {
        Some(slot) => state.tx.get_slot(slot),
        None => state.tx.get(key),
    };
    let hit = match value {
        None => false,
        Some(v) => {
            let hit = match rule.operator.literal_compare(v) {
                Some(hit) => hit,
                None => {
                    let ctx = Ctx { data, state };
                    rule.operator.eval_with(v, &ctx, None, &mut scratch)
                }
            } != rule.negated;
            if hit {
                scratch.clear();
                scratch.extend_from_slice(v);
            }
            hit
        }
    };
    if hit {
        record_match_str(state, t.var, key, &scratch);
    }
    state.scratch = scratch;
    if hit {
        run_actions(data, state, rule);
    }
    hit
}

/// A rule group's answer for the current values, computed once (until the
/// values are replaced): whether some value may match one of its `@rx`
/// patterns (returned), and which of its `@pm` rules have a phrase in some
/// value (their bits set in `state.pm_bits`). It checks every value the
/// targets select, ignoring exclusions and runtime target removals, so it
/// over-approximates: it is only used to skip rules that cannot match.
#[allow(clippy::too_many_arguments)]
fn group_check<'d>(
    rs: &RuleSet,
    data: &'d RequestData,
    state: &mut State,
    cache: &mut TransformCache,
    local: &mut LocalMemo,
    items: &mut ItemCache<'d>,
    rule: &'d Rule,
    g: u32,
) -> bool {
    match state.group_bits.get(g as usize).copied() {
        Some(RX_NONE) => {}
        Some(dirty) => return dirty != 0,
        None => return true,
    }
    let Some(group) = rs.groups.get(g as usize) else {
        return true;
    };
    // No exclusions: what a group checks is every value its rules'
    // targets select, whatever each rule leaves out.
    let selected = items.select(data, state, rule, None);
    // Without an `@rx` set there is no `@rx` rule to skip.
    let mut rx_dirty = group.rx.is_none();
    // The bits were cleared with the values: all of them are pending.
    let mut pending = if group.pm.is_some() {
        group.pm_bits.len()
    } else {
        0
    };
    let (rx_slot, pm_slot) = RuleSet::group_memo_slots(g);
    let all_pm = pending;
    for item in items.items(&selected) {
        if rx_dirty && pending == 0 {
            break;
        }
        let cacheable = item.value.is_ref();
        // What the memo knows of this value: the sets that found nothing.
        let memo = match (&rs.memo, cacheable && item.var.is_request_static()) {
            (Some(m), true) => local.rec(m, &item.value).map(|r| (m, r)),
            _ => None,
        };
        let (mut rx_known, mut pm_known) = (false, false);
        if let Some((m, r)) = memo {
            rx_known = local.negative(m, r, rx_slot);
            pm_known = local.negative(m, r, pm_slot);
        }
        let rx_todo = !rx_dirty && !rx_known && group.rx.is_some();
        let pm_todo = pending > 0 && !pm_known && group.pm.is_some();
        if !rx_todo && !pm_todo {
            continue;
        }
        let v = transformed(&rs.chains, cache, &item.value, rule.chain_id, cacheable);
        let value: &[u8] = match &v {
            Some(v) => cache.bytes(v),
            None => &item.value,
        };
        if let (true, Some(set)) = (rx_todo, &group.rx) {
            rx_dirty = set.is_match(value);
            if let (false, Some((m, r))) = (rx_dirty, memo) {
                local.set_negative(m, r, rx_slot);
            }
        }
        if let (true, Some(pm)) = (pm_todo, &group.pm) {
            let before = pending;
            pending = pm.scan(value, &mut state.pm_bits, pending);
            // Nothing found while every phrase list was still looked for:
            // none of them is in this value.
            if let (true, Some((m, r))) = (before == all_pm && pending == before, memo) {
                local.set_negative(m, r, pm_slot);
            }
        }
    }
    items.release(selected);
    if let Some(slot) = state.group_bits.get_mut(g as usize) {
        *slot = rx_dirty as u32;
    }
    rx_dirty
}

/// Names of TX.0 to TX.9.
const CAPTURE_KEYS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Runs the operator; on a match with `capture`, copies captures to TX.0-9.
fn eval_op(rule: &Rule, value: &[u8], data: &RequestData, state: &mut State) -> bool {
    let want_caps = rule.capture && !rule.negated;
    if let (Some(re), false) = (rule.operator.static_regex(), want_caps) {
        return re.is_match(value) != rule.negated;
    }
    let mut caps = std::mem::take(&mut state.captures);
    let mut scratch = std::mem::take(&mut state.scratch);
    let hit = {
        let ctx = Ctx { data, state };
        rule.operator
            .eval_with(value, &ctx, want_caps.then_some(&mut caps), &mut scratch)
    };
    let result = hit != rule.negated;
    if result && want_caps {
        for (key, c) in CAPTURE_KEYS.iter().zip(caps.iter()) {
            state.tx.set(key, c);
        }
    }
    state.captures = caps;
    state.scratch = scratch;
    result
}

fn multi_match(
    chains: &crate::rules::TransformChains,
    state: &mut State,
    cache: &mut TransformCache,
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
    let mut last: Option<Vec<u8>> = None;
    for &id in path.iter().rev() {
        let Some(v) = transformed(chains, cache, original, Some(id), cacheable) else {
            continue;
        };
        let val = cache.bytes(&v);
        if last.as_deref() != Some(val) {
            if eval_op(rule, val, data, state) {
                return Some(val.to_vec());
            }
            last = Some(val.to_vec());
        }
    }
    None
}

/// The value after the chain ending at `node`; `None` = unchanged.
fn transformed(
    chains: &crate::rules::TransformChains,
    cache: &mut TransformCache,
    value: &[u8],
    node: Option<u32>,
    cacheable: bool,
) -> Option<Transformed> {
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
    cache: &mut TransformCache,
    value: &[u8],
    node: u32,
    flags: u32,
    cacheable: bool,
) -> Option<Transformed> {
    let mask = chains.masks.get(node as usize).copied().unwrap_or(u32::MAX);
    if flags & mask == 0 {
        return None;
    }
    let key = (value.as_ptr() as usize, value.len(), node);
    if cacheable {
        if let Some(hit) = cache.index.get(&key) {
            return hit.map(Transformed::Cached);
        }
    }
    let (parent, t) = chains.nodes[node as usize];
    let input = match parent {
        Some(p) => transformed_from(chains, cache, value, p, flags, cacheable),
        None => None,
    };
    let out = {
        let src: &[u8] = match &input {
            Some(v) => cache.bytes(v),
            None => value,
        };
        match t {
            Transform::None => None,
            t => t.apply(src),
        }
    };
    let result = match out {
        Some(v) if cacheable => {
            cache.values.push(v);
            Some(Transformed::Cached((cache.values.len() - 1) as u32))
        }
        Some(v) => Some(Transformed::Owned(v)),
        None => input,
    };
    if cacheable {
        let slot = match &result {
            Some(Transformed::Cached(i)) => Some(*i),
            // Not reached: cacheable chains produce cached values.
            Some(Transformed::Owned(_)) => return result,
            None => None,
        };
        cache.index.insert(key, slot);
    }
    result
}

pub(super) fn num(v: &[u8]) -> i64 {
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
