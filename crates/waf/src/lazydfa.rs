//! "Does any pattern of this set match?" on a lazy DFA whose cache is
//! watched.
//!
//! A lazy DFA builds its states while it searches and keeps them in a
//! bounded cache. Hostile input can make it create states faster than the
//! cache holds them; rather than thrashing, the search then gives up. Each
//! give-up is counted ([`giveups`], exported by the edge as
//! `palisade_waf_dfa_giveups_total`) and the question is answered by the
//! `regex` crate's set instead, which falls back to its linear-time NFA
//! simulation. Either way matching stays linear in the input: there is no
//! backtracking engine anywhere.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use regex::bytes::RegexSet;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

static GIVEUPS: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How many searches gave up on their lazy DFA (process-wide).
pub fn giveups() -> u64 {
    GIVEUPS.load(Ordering::Relaxed)
}

// Per-thread caches, one per `AnySet` in use on this thread.
thread_local! {
    static CACHES: RefCell<Vec<(u64, Cache)>> = const { RefCell::new(Vec::new()) };
}

/// A set of patterns answering "any match?".
#[derive(Debug)]
pub struct AnySet {
    id: u64,
    dfa: Option<DFA>,
    set: RegexSet,
}

impl AnySet {
    /// Builds the set; `None` if the patterns do not compile.
    pub fn new(patterns: &[String]) -> Option<AnySet> {
        let set = regex::bytes::RegexSetBuilder::new(patterns)
            .unicode(false)
            .size_limit(64 << 20)
            .dfa_size_limit(2 << 20)
            .build()
            .ok()?;
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
            .ok();
        Some(AnySet {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dfa,
            set,
        })
    }

    /// Whether any pattern matches somewhere in `value`.
    pub fn is_match(&self, value: &[u8]) -> bool {
        let Some(dfa) = &self.dfa else {
            return self.set.is_match(value);
        };
        let input = Input::new(value).earliest(true);
        let outcome = CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let i = match caches.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    caches.push((self.id, dfa.create_cache()));
                    caches.len() - 1
                }
            };
            dfa.try_search_fwd(&mut caches[i].1, &input)
        });
        match outcome {
            Ok(m) => m.is_some(),
            Err(_) => {
                GIVEUPS.fetch_add(1, Ordering::Relaxed);
                self.set.is_match(value)
            }
        }
    }
}

impl Drop for AnySet {
    fn drop(&mut self) {
        // Free this set's cache on the dropping thread (others are freed
        // when their thread ends or the slot is reused).
        let id = self.id;
        let _ = CACHES.try_with(|c| c.borrow_mut().retain(|(i, _)| *i != id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_a_regex_set() {
        let pats = vec![
            r"(?i)\bunion\b.{0,20}\bselect\b".to_string(),
            r"<script".to_string(),
        ];
        let s = AnySet::new(&pats).unwrap();
        assert!(s.is_match(b"1 UNION all SELECT x"));
        assert!(s.is_match(b"a<script>"));
        assert!(!s.is_match(b"running shoes"));
        assert!(!s.is_match(b""));
    }

    #[test]
    fn hostile_input_gives_up_and_still_answers() {
        // A pattern whose DFA explodes: the n-th byte from the end is 'a'.
        let pats = vec![r"a[ab]{18}$".to_string(), r"zzz".to_string()];
        let s = AnySet::new(&pats).unwrap();
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
