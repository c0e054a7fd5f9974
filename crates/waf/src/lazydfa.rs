//! "Does any pattern of this set match?" on a lazy DFA whose cache is
//! watched.
//!
//! A lazy DFA builds its states while it searches and keeps them in a
//! bounded cache. Hostile input can make it create states faster than the
//! cache holds them; rather than thrashing, the search then gives up. Each
//! give-up is counted ([`giveups`], exported by the edge as
//! `palisade_waf_dfa_giveups`) and the question is answered by the
//! patterns' own regexes instead (the `regex` crate, whose engines fall
//! back to a linear-time NFA simulation). Either way matching stays linear in the input: there is no
//! backtracking engine anywhere.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use regex::bytes::Regex;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

static GIVEUPS: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How many searches gave up on their lazy DFA (process-wide).
pub fn giveups() -> u64 {
    GIVEUPS.load(Ordering::Relaxed)
}

// Per-thread caches of the sets of one family (one rule set), indexed by
// the set's slot; a different family on this thread replaces them.
thread_local! {
    static CACHES: RefCell<(u64, Vec<Option<Cache>>)> = const { RefCell::new((0, Vec::new())) };
}

/// Identifies a family of sets whose caches live together (one per rule set).
pub fn new_family() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A set of patterns answering "any match?".
#[derive(Debug)]
pub struct AnySet {
    family: u64,
    slot: usize,
    dfa: DFA,
    /// The same patterns one by one, for when the DFA gives up.
    fallback: Vec<Arc<Regex>>,
}

impl AnySet {
    /// Builds the set; `None` if the patterns do not compile. `family` and
    /// `slot` (unique within the family) place its per-thread cache.
    pub fn new(
        patterns: &[String],
        fallback: Vec<Arc<Regex>>,
        family: u64,
        slot: usize,
    ) -> Option<AnySet> {
        if patterns.is_empty() || fallback.len() != patterns.len() {
            return None;
        }
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(1 << 20)
                    // Give up when the cache keeps being cleared without
                    // making progress, instead of thrashing.
                    .minimum_cache_clear_count(Some(8))
                    .minimum_bytes_per_state(Some(10)),
            )
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .build_many(patterns)
            .ok()?;
        Some(AnySet {
            family,
            slot,
            dfa,
            fallback,
        })
    }

    /// Whether any pattern matches somewhere in `value`.
    pub fn is_match(&self, value: &[u8]) -> bool {
        let dfa = &self.dfa;
        let input = Input::new(value).earliest(true);
        let outcome = CACHES.with(|caches| {
            let mut guard = caches.borrow_mut();
            let (family, caches) = &mut *guard;
            if *family != self.family {
                *family = self.family;
                caches.clear();
            }
            if caches.len() <= self.slot {
                caches.resize_with(self.slot + 1, || None);
            }
            let cache = caches[self.slot].get_or_insert_with(|| dfa.create_cache());
            dfa.try_search_fwd(cache, &input)
        });
        match outcome {
            Ok(m) => m.is_some(),
            Err(_) => {
                GIVEUPS.fetch_add(1, Ordering::Relaxed);
                self.fallback.iter().any(|r| r.is_match(value))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regexes(pats: &[String]) -> Vec<Arc<Regex>> {
        pats.iter()
            .map(|p| Arc::new(crate::operators::compile_regex(p).unwrap()))
            .collect()
    }

    #[test]
    fn answers_like_a_regex_set() {
        let pats = vec![
            r"(?i)\bunion\b.{0,20}\bselect\b".to_string(),
            r"<script".to_string(),
        ];
        let s = AnySet::new(&pats, regexes(&pats), new_family(), 0).unwrap();
        assert!(s.is_match(b"1 UNION all SELECT x"));
        assert!(s.is_match(b"a<script>"));
        assert!(!s.is_match(b"running shoes"));
        assert!(!s.is_match(b""));
    }

    #[test]
    fn hostile_input_gives_up_and_still_answers() {
        // A pattern whose DFA explodes: the n-th byte from the end is 'a'.
        let pats = vec![r"a[ab]{18}$".to_string(), r"zzz".to_string()];
        let s = AnySet::new(&pats, regexes(&pats), new_family(), 3).unwrap();
        let mut seed = 7u64;
        let hostile: Vec<u8> = (0..200_000)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                if seed >> 63 == 0 {
                    b'a'
                } else {
                    b'b'
                }
            })
            .collect();
        let before = giveups();
        let expected = regex::bytes::Regex::new(r"a[ab]{18}$")
            .unwrap()
            .is_match(&hostile);
        assert_eq!(s.is_match(&hostile), expected);
        assert!(giveups() > before, "the lazy DFA should have given up");
    }
}
