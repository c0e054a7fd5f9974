//! A bounded backtracking engine for the regexes that need PCRE-only
//! constructs: look-around, back-references, possessive repetition and
//! atomic groups (some CRS 3.x rules; CRS v4 has none).
//!
//! Every other `@rx` runs on the `regex` crate (linear time, see
//! [`crate::lazydfa`]); a pattern comes here only when it uses one of those
//! constructs ([`needs_backtracking`]). Matching is on
//! bytes with PCRE's non-UTF semantics (`.` is any byte, classes are
//! ASCII), through `fancy-regex`, whose search stops after
//! [`BACKTRACK_LIMIT`] backtracking steps. Like ModSecurity when PCRE hits
//! its match limit, a search that stops there is "no match"; each one is
//! counted ([`limit_hits`], exported by the edge as
//! `palisade_waf_backtrack_limit_hits`).

use std::sync::atomic::{AtomicU64, Ordering};

use fancy_regex::{BytesMode, RegexBuilder};

use crate::operators::Captures;

/// Backtracking steps one search may take (fancy-regex counts each
/// backtrack; ModSecurity's recommended `SecPcreMatchLimit` plays this part).
pub const BACKTRACK_LIMIT: usize = 100_000;

static LIMIT_HITS: AtomicU64 = AtomicU64::new(0);

/// How many searches stopped at their limit and answered "no match"
/// (process-wide).
pub fn limit_hits() -> u64 {
    LIMIT_HITS.load(Ordering::Relaxed)
}

/// Whether `pattern` (already rewritten by
/// [`crate::operators::rewrite_pcre`]) uses a construct that needs
/// backtracking: one the `regex` crate refuses (look-around,
/// back-references) or reads differently (possessive repetition).
pub fn needs_backtracking(pattern: &str) -> bool {
    use regex_syntax::ast::ErrorKind;
    match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Ok(ast) => has_possessive(&ast),
        Err(e) => matches!(
            e.kind(),
            ErrorKind::UnsupportedLookAround | ErrorKind::UnsupportedBackreference
        ),
    }
}

/// Whether `ast` holds a possessive repetition (`x*+`, `x++`, `x?+`,
/// `x{n,m}+`), which the `regex` crate reads as a repetition repeated and
/// so matches more than PCRE does.
fn has_possessive(ast: &regex_syntax::ast::Ast) -> bool {
    use regex_syntax::ast::{Ast, RepetitionKind};
    match ast {
        Ast::Repetition(r) => {
            let possessive = r.greedy
                && matches!(r.op.kind, RepetitionKind::OneOrMore)
                && matches!(*r.ast, Ast::Repetition(_));
            possessive || has_possessive(&r.ast)
        }
        Ast::Group(g) => has_possessive(&g.ast),
        Ast::Alternation(a) => a.asts.iter().any(has_possessive),
        Ast::Concat(c) => c.asts.iter().any(has_possessive),
        _ => false,
    }
}

/// A compiled backtracking regex.
#[derive(Debug)]
pub struct BacktrackRegex {
    re: fancy_regex::Regex,
}

impl BacktrackRegex {
    /// Compiles `pattern` (already rewritten by
    /// [`crate::operators::rewrite_pcre`]).
    pub fn new(pattern: &str) -> Result<BacktrackRegex, String> {
        let re = RegexBuilder::new(pattern)
            .bytes_mode(BytesMode::Ascii)
            .backtrack_limit(BACKTRACK_LIMIT)
            .delegate_size_limit(16 << 20)
            .build()
            .map_err(|e| format!("regex does not compile (backtracking engine): {e}"))?;
        Ok(BacktrackRegex { re })
    }

    /// The pattern as compiled.
    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }

    /// Whether `value` matches; a search that hits the limit does not.
    pub fn is_match(&self, value: &[u8]) -> bool {
        match self.re.is_match(value) {
            Ok(m) => m,
            Err(_) => {
                LIMIT_HITS.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Like [`BacktrackRegex::is_match`], filling `out` with the whole
    /// match and up to nine groups (`capture`, TX.0..TX.9).
    pub fn captures(&self, value: &[u8], out: &mut Captures) -> bool {
        match self.re.captures(value) {
            Ok(Some(c)) => {
                out.clear();
                for i in 0..c.len().min(10) {
                    out.push(c.get(i).map(|m| m.as_bytes().to_vec()).unwrap_or_default());
                }
                true
            }
            Ok(None) => false,
            Err(_) => {
                LIMIT_HITS.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_pcre_only_constructs_here() {
        assert!(needs_backtracking(r"<\?(?!xml)"));
        assert!(needs_backtracking(r"(?<!&amp);"));
        assert!(needs_backtracking(r"\b(\w+)\b=\b\1\b"));
        assert!(needs_backtracking(r"a\s*+;"));
        assert!(needs_backtracking(r"(?:x|[^a]++b)"));
        assert!(!needs_backtracking(r"a\s*;"));
        assert!(!needs_backtracking(r"a\*+b(?:c+)+"));
        // A syntax error is not a reason to backtrack.
        assert!(!needs_backtracking(r"[a"));
    }

    #[test]
    fn matches_bytes_like_pcre() {
        let re = BacktrackRegex::new(r"<\?(?!xml)").unwrap();
        assert!(re.is_match(b"<?php echo 1;"));
        assert!(!re.is_match(b"<?xml version='1.0'?>"));
        // Not UTF-8, and `.`/`\W` see single bytes.
        let re = BacktrackRegex::new(r"(?!a)\W.\x{ff}").unwrap();
        assert!(re.is_match(b"\xfe\x80\xff"));
        let re = BacktrackRegex::new(r"\b(\w+)\b=\b\1\b").unwrap();
        let mut caps = Vec::new();
        assert!(re.captures(b"x 1=1", &mut caps));
        assert_eq!(caps, vec![b"1=1".to_vec(), b"1".to_vec()]);
        assert!(!re.is_match(b"1=2"));
    }

    #[test]
    fn a_search_past_its_limit_is_no_match_and_counted() {
        let re = BacktrackRegex::new(r"^(a|aa)+\1c").unwrap();
        let input = vec![b'a'; 64];
        let before = limit_hits();
        assert!(!re.is_match(&input));
        assert!(
            limit_hits() > before,
            "the search should have hit its limit"
        );
        let mut caps = Vec::new();
        assert!(!re.captures(&input, &mut caps));
    }
}
