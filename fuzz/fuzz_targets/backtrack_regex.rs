//! Fuzzes the `@rx` compilation and the bounded backtracking engine: an
//! arbitrary pattern (after the PCRE rewrite) compiles on one engine or is
//! refused, never panics, and matching arbitrary bytes with it — and with
//! patterns shaped like CRS 3.3's PCRE-only ones (look-around,
//! back-references, possessive repetition) — never panics and stays
//! bounded (a search past its backtrack limit is "no match").
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::backtrack::{limit_hits, BacktrackRegex};
use palisade_waf::macros::Resolve;
use palisade_waf::operators::{rewrite_pcre, Operator};
use std::path::Path;
use std::sync::OnceLock;

struct NoVars;
impl Resolve for NoVars {
    fn resolve(&self, _: &str, _: Option<&str>, _: &mut Vec<u8>) {}
}

/// The constructs CRS 3.3.4's backtracking rules use, in patterns of our own.
const SHAPES: &[&str] = &[
    r"(?i:[\s'`()]*?\b([\d\w]+)\b[\s'`()]*?(?:=|like|<>?)[\s'`()]*?\b\1\b)",
    r"(?<!&(?:amp|quot|[aeiou]uml|[aeiou]acute|[cC]cedil));|['=]",
    r"<\?(?!xml)",
    r"^(?:[^;,]++\s*+;\s*+(?:charset\s*+=\s*+[^;,]++)?)*+$",
    r"(?:[^?\w\s=.,;)(]++\s*?[(@'`]*?\s*?\w+\W+\w)",
];

fn shapes() -> &'static [BacktrackRegex] {
    static S: OnceLock<Vec<BacktrackRegex>> = OnceLock::new();
    S.get_or_init(|| {
        SHAPES
            .iter()
            .map(|p| BacktrackRegex::new(&rewrite_pcre(p)).expect("shape compiles"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for re in shapes() {
        let before = limit_hits();
        let m = re.is_match(data);
        // Captures agree with the plain search unless a limit was hit.
        let mut caps = Vec::new();
        let c = re.captures(data, &mut caps);
        assert!(m == c || limit_hits() > before, "is_match {m}, captures {c}");
        assert!(!c || !caps.is_empty());
    }
    // An arbitrary pattern: the first byte says how long it is.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize).min(rest.len());
    let (pattern, input) = rest.split_at(n);
    let pattern = String::from_utf8_lossy(pattern);
    if let Ok(op) = Operator::compile("rx", &pattern, Path::new(".")) {
        let mut caps = Vec::new();
        let _ = op.eval(input, &NoVars, Some(&mut caps));
        let _ = op.eval(input, &NoVars, None);
    }
});
