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

mod actions;
mod compile;
mod groups;

pub use compile::{compile, compile_with, load};

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
    /// For a link whose targets select request or response data alone
    /// ([`crate::variables::Var::is_data_only`]): the numbers of its target
    /// list among the rule set's distinct lists, with its exclusions (rule
    /// evaluation) and without (group checks). A transaction collects each
    /// list's values once per phase and shares them between the rules.
    pub item_lists: Option<(u32, u32)>,
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
    /// Distinct data-only target lists (see [`Rule::item_lists`]).
    pub item_lists: usize,
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
