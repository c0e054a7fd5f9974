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
    /// matched several variables).
    pub fn event_hit(&self) -> palisade_policy::WafRuleHit {
        palisade_policy::WafRuleHit {
            id: self.id,
            msg: self.msg.clone(),
            data: self.logdata.clone(),
            var: self.matched_var_name.clone(),
            vars: if self.matched_var_names.len() > 1 {
                self.matched_var_names.clone()
            } else {
                Vec::new()
            },
        }
    }
}
