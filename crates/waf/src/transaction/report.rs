//! What a transaction reports: the [`Interruption`] and the matched rules.

use super::*;

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
    /// Every variable the rule (for a chain: its last link) matched, in
    /// order, at most [`MatchedRule::MAX_VARS`] (a full list may have been
    /// cut): `matched_var_name` is the last of them.
    pub matched_var_names: Vec<String>,
    pub log: bool,
}

impl MatchedRule {
    /// Variables kept in [`MatchedRule::matched_var_names`].
    pub const MAX_VARS: usize = 32;

    /// The rule as a security event records it (`vars` only when it
    /// matched several variables), each field cut to its event limit
    /// (`palisade_policy::event::field_limits`) as it is copied: a rule
    /// whose log data quotes a 60 KB value copies 160 bytes of it.
    pub fn event_hit(&self) -> palisade_policy::WafRuleHit {
        use palisade_policy::event::{cut_copy, field_limits as l};
        palisade_policy::WafRuleHit {
            id: self.id,
            msg: cut_copy(&self.msg, l::HIT_MSG),
            data: cut_copy(&self.logdata, l::HIT_DATA),
            var: cut_copy(&self.matched_var_name, l::HIT_VAR),
            vars: if self.matched_var_names.len() > 1 {
                self.matched_var_names
                    .iter()
                    .take(l::HIT_VARS)
                    .map(|v| cut_copy(v, l::HIT_VAR))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}
