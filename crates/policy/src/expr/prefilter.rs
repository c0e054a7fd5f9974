//! A literal prefilter over many expressions.
//!
//! Most rules can only be true when some literal occurs in some field:
//! `lower(http.user_agent) contains "sqlmap"` needs `sqlmap` (any case) in the
//! user agent, `http.request.uri.path starts_with "/admin" and …` needs
//! `/admin` in the path. [`ExprIndex`] extracts such a *necessary* set of
//! literals from each expression at compile time, builds one Aho-Corasick
//! automaton per field, and per request scans each field once to find which
//! expressions can possibly match. The others are skipped without being
//! evaluated, so the cost of a policy grows with the rules a request could
//! trigger, not with the number of rules.
//!
//! The extraction is conservative: an expression without a usable literal
//! (negations, `ne`, numbers, IPs, regexes, `url_decode`, …) is always a
//! candidate, and a case-insensitive literal on a non-ASCII value makes every
//! expression of that group a candidate (Unicode case mapping is not ASCII
//! case folding). Every value of a field that repeats (headers, cookies,
//! query arguments) is scanned, since a test holds when any value satisfies
//! it. A candidate is then evaluated in full, so the prefilter never changes
//! a result — the tests check exactly that.

use std::borrow::Cow;

use ahash::AHashMap;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::eval::{Node, StrExpr, StrField, StrOp};
use super::Expr;
use crate::request::{form_decode, Request};

/// Sets with more members than this are not turned into literals.
const MAX_SET_LITERALS: usize = 64;

/// What a group of literals is searched in: a field, or a field after `url_decode`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Plain(StrField),
    Decoded(StrField),
}

impl Key {
    /// The first value the key reads; sets `more` when the field may have more.
    fn first<'s>(&self, req: &'s Request<'_>, more: &mut bool) -> Cow<'s, str> {
        match self {
            Key::Plain(field) => field.first(req, more),
            Key::Decoded(field) => match field.first(req, more) {
                Cow::Borrowed(s) => form_decode(s),
                Cow::Owned(s) => Cow::Owned(form_decode(&s).into_owned()),
            },
        }
    }

    /// Calls `f` on each value after the first, until it returns true.
    fn any_after_first(&self, req: &Request<'_>, f: &mut dyn FnMut(&str) -> bool) -> bool {
        match self {
            Key::Plain(field) => field.any_after_first(req, &mut |v| f(&v)),
            Key::Decoded(field) => field.any_after_first(req, &mut |v| f(&form_decode(&v))),
        }
    }
}

#[derive(Debug, Clone)]
struct Needle {
    field: Key,
    lit: Vec<u8>,
    ci: bool,
}

/// What a string test reads, and whether the comparison ignores ASCII case.
fn field_of(value: &StrExpr, folded: bool) -> Option<(Key, bool)> {
    let (inner, ci) = match value {
        StrExpr::Lower(inner) | StrExpr::Upper(inner) => (&**inner, true),
        v => (v, folded),
    };
    match inner {
        StrExpr::Field(f) => Some((Key::Plain(f.clone()), ci)),
        StrExpr::UrlDecode(d) => match &**d {
            StrExpr::Field(f) => Some((Key::Decoded(f.clone()), ci)),
            _ => None,
        },
        _ => None,
    }
}

/// Literals one of which must occur (in its field) for `node` to be true;
/// `None` when no such set is known. `Some(vec![])` means "never true".
fn needles(node: &Node) -> Option<Vec<Needle>> {
    match node {
        Node::Const(false) => Some(Vec::new()),
        Node::Const(true)
        | Node::Not(_)
        | Node::Xor(_)
        | Node::Int(_)
        | Node::Ip(_)
        | Node::Flag(_) => None,
        Node::All(children) => children.iter().filter_map(needles).min_by_key(|n| n.len()),
        Node::Any(children) => {
            let mut all = Vec::new();
            for c in children {
                all.extend(needles(c)?);
            }
            Some(all)
        }
        Node::Str(t) => {
            if t.negate {
                // `http.request.uri.args["k"] ne ""`: the argument is present, so its
                // name — or an escape that could spell it — is in the raw query.
                return match (&t.value, &t.op, t.fold) {
                    (StrExpr::Field(StrField::Arg(k, _)), StrOp::Eq(l), None)
                        if l.is_empty() && !k.is_empty() =>
                    {
                        let q = Key::Plain(StrField::Query);
                        Some(
                            [k.as_bytes(), b"%", b"+"]
                                .into_iter()
                                .map(|lit| Needle {
                                    field: q.clone(),
                                    lit: lit.to_vec(),
                                    ci: false,
                                })
                                .collect(),
                        )
                    }
                    _ => None,
                };
            }
            let (field, ci) = field_of(&t.value, t.fold.is_some())?;
            let lits: Vec<Vec<u8>> = match &t.op {
                StrOp::Contains(f) => vec![f.needle().to_vec()],
                StrOp::StartsWith(l) | StrOp::EndsWith(l) | StrOp::Eq(l) => {
                    vec![l.as_bytes().to_vec()]
                }
                StrOp::In(set) if set.len() <= MAX_SET_LITERALS => {
                    set.iter().map(|s| s.as_bytes().to_vec()).collect()
                }
                StrOp::Wildcard(w) => {
                    let longest = w.segs.iter().max_by_key(|s| s.len())?;
                    let ci = ci || !w.case_sensitive;
                    if longest.is_empty() {
                        return None;
                    }
                    return Some(vec![Needle {
                        field,
                        lit: longest.to_vec(),
                        ci,
                    }]);
                }
                _ => return None,
            };
            // An empty literal occurs everywhere: no filtering possible.
            if lits.iter().any(|l| l.is_empty()) {
                return None;
            }
            Some(
                lits.into_iter()
                    .map(|lit| Needle {
                        field: field.clone(),
                        lit,
                        ci,
                    })
                    .collect(),
            )
        }
    }
}

/// A group under construction: (field, case-insensitive, literal → pattern index, patterns, owners).
type GroupBuilder = (
    Key,
    bool,
    AHashMap<Vec<u8>, usize>,
    Vec<Vec<u8>>,
    Vec<Vec<u32>>,
);

#[derive(Debug, Clone)]
struct Group {
    field: Key,
    ci: bool,
    ac: AhoCorasick,
    /// For each pattern, the expressions it admits.
    owners: Vec<Vec<u32>>,
}

/// Which of a list of expressions can possibly be true for a request.
#[derive(Debug, Clone, Default)]
pub struct ExprIndex {
    len: usize,
    /// Expressions that are always candidates (no usable literal).
    always: Vec<u64>,
    groups: Vec<Group>,
    filtered: usize,
}

impl ExprIndex {
    /// Indexes `exprs`; bit `i` of [`ExprIndex::candidates`] refers to `exprs[i]`.
    pub fn new<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> ExprIndex {
        let mut len = 0;
        let mut always = Vec::new();
        let mut groups: Vec<GroupBuilder> = Vec::new();
        let mut filtered = 0;
        for (i, e) in exprs.into_iter().enumerate() {
            len = i + 1;
            if always.len() * 64 < len {
                always.push(0u64);
            }
            match needles(&e.root) {
                None => always[i / 64] |= 1 << (i % 64),
                Some(ns) => {
                    filtered += 1;
                    for n in ns {
                        let g = match groups.iter().position(|g| g.0 == n.field && g.1 == n.ci) {
                            Some(g) => g,
                            None => {
                                groups.push((
                                    n.field.clone(),
                                    n.ci,
                                    AHashMap::new(),
                                    Vec::new(),
                                    Vec::new(),
                                ));
                                groups.len() - 1
                            }
                        };
                        let (_, ci, by_lit, pats, owners) = &mut groups[g];
                        let key = if *ci {
                            n.lit.to_ascii_lowercase()
                        } else {
                            n.lit
                        };
                        let p = *by_lit.entry(key.clone()).or_insert_with(|| {
                            pats.push(key);
                            owners.push(Vec::new());
                            pats.len() - 1
                        });
                        if owners[p].last() != Some(&(i as u32)) {
                            owners[p].push(i as u32);
                        }
                    }
                }
            }
        }
        let mut built = Vec::with_capacity(groups.len());
        for (field, ci, _, pats, owners) in groups {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(ci)
                .match_kind(MatchKind::Standard)
                .build(&pats);
            match ac {
                Ok(ac) => built.push(Group {
                    field,
                    ci,
                    ac,
                    owners,
                }),
                // Cannot happen for plain literals; if it did, fall back to "always".
                Err(_) => {
                    for o in owners.iter().flatten() {
                        let o = *o as usize;
                        always[o / 64] |= 1 << (o % 64);
                    }
                }
            }
        }
        ExprIndex {
            len,
            always,
            groups: built,
            filtered,
        }
    }

    /// Number of indexed expressions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no expression is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Words (`u64`) a candidate bit set needs.
    pub fn words(&self) -> usize {
        self.len.div_ceil(64)
    }

    /// How many expressions have a literal prefilter (the rest are always evaluated).
    pub fn filtered(&self) -> usize {
        self.filtered
    }

    /// Sets bit `i` of `out` (which must hold [`ExprIndex::words`] words) for
    /// every expression that may be true for `req`; a clear bit means the
    /// expression is certainly false.
    pub fn candidates(&self, req: &Request<'_>, out: &mut [u64]) {
        let n = self.always.len().min(out.len());
        out[..n].copy_from_slice(&self.always[..n]);
        for g in &self.groups {
            // Every value of a repeated field is scanned: a literal in any
            // one of them makes its expressions candidates.
            let mut more = false;
            let first = g.field.first(req, &mut more);
            if !g.scan(&first, out) && more {
                g.field.any_after_first(req, &mut |v| g.scan(v, out));
            }
        }
    }
}

impl Group {
    /// Marks the expressions whose literals occur in `v`; true when it
    /// marked all of them (a case-insensitive group on a non-ASCII value),
    /// so that other values need no scan.
    #[inline(always)]
    fn scan(&self, v: &str, out: &mut [u64]) -> bool {
        if self.ci && !v.is_ascii() {
            for o in self.owners.iter().flatten() {
                set(out, *o);
            }
            return true;
        }
        for m in self.ac.find_overlapping_iter(v.as_bytes()) {
            for o in &self.owners[m.pattern().as_usize()] {
                set(out, *o);
            }
        }
        false
    }
}

fn set(out: &mut [u64], i: u32) {
    if let Some(w) = out.get_mut(i as usize / 64) {
        *w |= 1 << (i % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Lists;
    use crate::request::tests::with_request;

    fn index(srcs: &[&str]) -> (Vec<Expr>, ExprIndex) {
        let mut lists = Lists::new();
        lists.insert("office", &["10.0.0.0/8".to_string()]).unwrap();
        let exprs: Vec<Expr> = srcs
            .iter()
            .map(|s| Expr::compile(s, &lists).unwrap())
            .collect();
        let idx = ExprIndex::new(exprs.iter());
        (exprs, idx)
    }

    fn cands(idx: &ExprIndex, uri: &str, headers: &[(&str, &str)]) -> Vec<usize> {
        with_request("1.2.3.4", "GET", uri, headers, |req| {
            let mut bits = vec![0u64; idx.words()];
            idx.candidates(req, &mut bits);
            (0..idx.len())
                .filter(|i| bits[i / 64] & (1 << (i % 64)) != 0)
                .collect()
        })
    }

    #[test]
    fn literal_rules_are_skipped_when_their_literal_is_absent() {
        let (_, idx) = index(&[
            r#"http.request.uri.path starts_with "/admin" and not ip.src in $office"#,
            r#"lower(http.user_agent) contains "sqlmap""#,
            r#"ends_with(http.request.uri.path, ".bak")"#,
            r#"ip.src in $office"#,
            r#"http.request.uri.path in { "/a" "/b" } or http.host wildcard "*.evil.example""#,
            r#"http.request.headers["x-a"] ne """#,
        ]);
        assert_eq!(idx.filtered(), 4);
        assert_eq!(cands(&idx, "/", &[("user-agent", "curl")]), vec![3, 5]);
        // "/a" (rule 4) also occurs in "/admin".
        assert_eq!(
            cands(&idx, "/admin/x.bak", &[("user-agent", "SQLMap/1.0")]),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert_eq!(cands(&idx, "/b", &[]), vec![3, 4, 5]);
        assert_eq!(
            cands(&idx, "/", &[("host", "WWW.EVIL.EXAMPLE")]),
            vec![3, 4, 5]
        );
    }

    #[test]
    fn decoded_fields_and_present_arguments() {
        let (_, idx) = index(&[
            r#"http.request.uri.args["cmd"] ne "" or lower(url_decode(http.request.uri.query)) contains "exec(""#,
        ]);
        assert_eq!(cands(&idx, "/?id=42&ref=home", &[]), Vec::<usize>::new());
        assert_eq!(cands(&idx, "/?cmd=1", &[]), vec![0]);
        assert_eq!(cands(&idx, "/?a=%65XEC(", &[]), vec![0]);
        assert_eq!(cands(&idx, "/?%63md=1", &[]), vec![0]);
    }

    #[test]
    fn non_ascii_values_disable_case_insensitive_filtering() {
        let (_, idx) = index(&[r#"lower(http.user_agent) contains "i""#]);
        // Unicode lower-casing of "İ" gives "i̇": the rule may match though ASCII folding finds no "i".
        assert_eq!(cands(&idx, "/", &[("user-agent", "İ")]), vec![0]);
    }

    #[test]
    fn never_misses_a_match() {
        let srcs = [
            r#"http.request.uri.path starts_with "/admin" and not ip.src in $office"#,
            r#"lower(http.user_agent) contains "nikto" or http.request.uri.query contains "union""#,
            r#"http.request.uri.path wildcard "/wp-*" and http.request.method eq "POST""#,
            r#"upper(http.request.headers["x-mode"]) eq "DEBUG""#,
            r#"http.request.uri.args["cmd"] contains "sh""#,
            r#"http.cookie contains "<script" xor http.request.uri.path eq "/x""#,
            r#"http.request.uri.path strict wildcard "/Static/*.JS""#,
            r#"lower(url_decode(http.request.uri.query)) contains "exec(""#,
            r#"http.request.uri.args["cmd"] ne "" and http.request.method eq "POST""#,
        ];
        let (exprs, idx) = index(&srcs);
        let uris = [
            "/",
            "/admin",
            "/ADMIN",
            "/wp-login",
            "/Static/a.JS",
            "/static/a.js",
            "/x?cmd=bash",
            "/?q=UNION",
            "/?a=%65xec(",
            "/x",
        ];
        let uas = ["", "Nikto/2", "nikto", "NİKTO", "Mozilla"];
        let modes = ["", "debug", "DeBuG", "dEbUg!"];
        for uri in uris {
            for ua in uas {
                for mode in modes {
                    let headers = [
                        ("user-agent", ua),
                        ("x-mode", mode),
                        ("cookie", "a=<script"),
                    ];
                    with_request("1.2.3.4", "POST", uri, &headers, |req| {
                        let mut bits = vec![0u64; idx.words()];
                        idx.candidates(req, &mut bits);
                        for (i, e) in exprs.iter().enumerate() {
                            if e.eval(req) {
                                assert!(
                                    bits[i / 64] & (1 << (i % 64)) != 0,
                                    "expr {i} ({}) matched {uri} {ua} {mode} but was filtered",
                                    srcs[i]
                                );
                            }
                        }
                    });
                }
            }
        }
    }

    #[test]
    fn never_misses_a_match_in_any_value_of_a_repeated_field() {
        let srcs = [
            r#"lower(http.user_agent) contains "nikto""#,
            r#"http.request.headers["x-mode"] eq "debug""#,
            r#"upper(http.request.headers["x-mode"]) starts_with "DEB""#,
            r#"http.request.headers["x-mode"][0] eq "debug""#,
            r#"http.request.cookies["role"] in { "admin" "root" }"#,
            r#"http.cookie contains "<script""#,
            r#"http.request.uri.args["cmd"] contains "sh""#,
            r#"lower(url_decode(http.request.uri.args["q"])) contains "union""#,
            r#"http.request.uri.args["cmd"] ne "" and http.request.method eq "POST""#,
            r#"http.referer wildcard "*casino*""#,
            r#"http.x_forwarded_for ends_with ".666""#,
        ];
        let (exprs, idx) = index(&srcs);
        let uris = [
            "/",
            "/?cmd=ls&cmd=bash",
            "/?cmd=&cmd=x",
            "/?q=1&q=%55NION",
            "/?%63md=sh",
            "/?q=x&q=UNION&cmd=x",
        ];
        let values = ["", "Mozilla", "NIKTO", "nİkto", "debug", "DEBUG", "x"];
        let cookies = [
            "",
            "role=user",
            "role=admin",
            "a=<script>",
            "role=root; x=1",
        ];
        for uri in uris {
            for (i, a) in values.iter().enumerate() {
                for b in &values[i..] {
                    for c in cookies {
                        // Each field repeated: the match may be in the second value only.
                        let headers = [
                            ("user-agent", *a),
                            ("user-agent", *b),
                            ("x-mode", *a),
                            ("x-mode", *b),
                            ("referer", "https://ok.example/"),
                            (
                                "referer",
                                if *b == "x" {
                                    "https://casino.example/"
                                } else {
                                    *b
                                },
                            ),
                            ("x-forwarded-for", "10.0.0.1"),
                            ("x-forwarded-for", if *a == "x" { "10.6.6.666" } else { *a }),
                            ("cookie", "session=1"),
                            ("cookie", c),
                        ];
                        with_request("1.2.3.4", "POST", uri, &headers, |req| {
                            let mut bits = vec![0u64; idx.words()];
                            idx.candidates(req, &mut bits);
                            for (i, e) in exprs.iter().enumerate() {
                                if e.eval(req) {
                                    assert!(
                                        bits[i / 64] & (1 << (i % 64)) != 0,
                                        "expr {i} ({}) matched {uri} {headers:?} but was filtered",
                                        srcs[i]
                                    );
                                }
                            }
                        });
                    }
                }
            }
        }
        // The second value alone makes a candidate.
        let (_, idx) = index(&[r#"lower(http.user_agent) contains "nikto""#]);
        assert_eq!(
            cands(
                &idx,
                "/",
                &[("user-agent", "curl"), ("user-agent", "Nikto")]
            ),
            vec![0]
        );
        assert_eq!(
            cands(&idx, "/", &[("user-agent", "curl"), ("user-agent", "wget")]),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn more_than_64_expressions() {
        let srcs: Vec<String> = (0..130)
            .map(|i| format!(r#"http.request.uri.path eq "/p{i}""#))
            .collect();
        let refs: Vec<&str> = srcs.iter().map(String::as_str).collect();
        let (_, idx) = index(&refs);
        assert_eq!(idx.words(), 3);
        assert_eq!(cands(&idx, "/p129", &[]), vec![1, 12, 129]);
    }
}
