//! The values each target list selects, collected once per phase.
//!
//! CRS inspects the same values through many rules: dozens of links share
//! a target list such as `REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|
//! REQUEST_COOKIES_NAMES|ARGS_NAMES|ARGS|XML:/*`. For a list that selects
//! request or response data alone ([`Rule::item_lists`]), what it selects
//! cannot change while a phase runs (rules change the transaction's state,
//! never its data), so the first rule of the phase to read it collects its
//! values and the others reuse them. Runtime target removals
//! (`ctl:ruleRemoveTarget*`) depend on the rule: once there are any, rules
//! collect their values themselves again.
//!
//! Every list is collected into one buffer ([`ItemCache`]), kept (empty)
//! between phases and transactions' phases so that a phase allocates
//! nothing once it has run before.

use super::collect::collect;
use super::request::RequestData;
use super::values::Item;
use super::*;

/// Values the buffer has room for when a transaction starts.
const INITIAL_ITEMS: usize = 256;

/// A list not collected in this phase yet.
const UNSET: (u32, u32) = (u32::MAX, u32::MAX);

/// The buffers of an [`ItemCache`] between phases (empty: no value
/// borrowed from data that may be replaced).
#[derive(Default)]
pub(super) struct ItemBuffers {
    items: Vec<Item<'static>>,
    ranges: Vec<(u32, u32)>,
}

impl ItemBuffers {
    /// A phase's cache for `lists` target lists, in these buffers.
    pub(super) fn begin<'d>(&mut self, lists: usize) -> ItemCache<'d> {
        let mut ranges = std::mem::take(&mut self.ranges);
        ranges.clear();
        ranges.resize(lists, UNSET);
        let mut items = recycle(std::mem::take(&mut self.items));
        // Room for a request's values in most lists (CRS' about 20): one
        // allocation rather than a chain of growing copies.
        items.reserve(INITIAL_ITEMS);
        ItemCache { items, ranges }
    }

    /// Takes the buffers back when the phase ends.
    pub(super) fn end(&mut self, cache: ItemCache<'_>) {
        self.items = recycle(cache.items);
        self.ranges = cache.ranges;
    }
}

/// An empty vector of items of another lifetime, in the same allocation
/// (collecting a vector into one of the same layout reuses its buffer).
// (`filter` would keep the lifetime: the map to another type is the point.)
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'a, 'b>(mut v: Vec<Item<'a>>) -> Vec<Item<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// The values of a phase's target lists (see the module documentation).
pub(super) struct ItemCache<'d> {
    /// Collected lists, then the values of the rule being evaluated when
    /// its list is not cached (removed after it).
    items: Vec<Item<'d>>,
    /// Per list number: its values in `items`, or [`UNSET`].
    ranges: Vec<(u32, u32)>,
}

/// Where a rule's values are in an [`ItemCache`].
pub(super) struct Selected {
    start: usize,
    end: usize,
    /// Collected for this rule alone: dropped by [`ItemCache::release`].
    scratch: bool,
}

impl<'d> ItemCache<'d> {
    /// The values `rule` inspects: its targets minus its exclusions and
    /// the targets removed for `head` (`None`: every value the targets
    /// select, for a group check).
    pub(super) fn select(
        &mut self,
        data: &'d RequestData,
        state: &State,
        rule: &'d Rule,
        head: Option<&Rule>,
    ) -> Selected {
        static NO_EXCLUSIONS: TargetList = TargetList {
            targets: Vec::new(),
            exclusions: Vec::new(),
        };
        let list = match head {
            Some(_) => &rule.targets,
            None => &NO_EXCLUSIONS,
        };
        // Removed targets depend on the rule: not shared.
        let shared = match (rule.item_lists, head) {
            (Some((with, _)), Some(_)) if state.removed_targets.is_empty() => Some(with),
            (Some((_, without)), None) => Some(without),
            _ => None,
        };
        let slot = shared.and_then(|n| self.ranges.get(n as usize).map(|_| n as usize));
        if let Some(n) = slot {
            let (start, end) = self.ranges[n];
            if (start, end) != UNSET {
                return Selected {
                    start: start as usize,
                    end: end as usize,
                    scratch: false,
                };
            }
        }
        let start = self.items.len();
        for t in &rule.targets.targets {
            collect(data, state, t, list, head, &mut self.items);
        }
        let end = self.items.len();
        match slot {
            Some(n) if u32::try_from(end).is_ok() => {
                self.ranges[n] = (start as u32, end as u32);
                Selected {
                    start,
                    end,
                    scratch: false,
                }
            }
            _ => Selected {
                start,
                end,
                scratch: true,
            },
        }
    }

    /// The values of a selection.
    pub(super) fn items(&self, s: &Selected) -> &[Item<'d>] {
        self.items.get(s.start..s.end).unwrap_or(&[])
    }

    /// Done with a selection: values collected for one rule go.
    pub(super) fn release(&mut self, s: Selected) {
        if s.scratch {
            self.items.truncate(s.start);
        }
    }
}
