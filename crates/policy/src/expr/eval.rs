//! The compiled form of an expression and its evaluation against a request.
//!
//! A string field may have several values (a repeated header, cookie or
//! query argument); an absent one has one, the empty string. Values are
//! produced one by one as `Cow<str>` borrowed from the request, and a test
//! holds when it holds for any value (then `ne` negates that). Functions map
//! over values; a function allocates only when its result differs from its
//! input, and `concat` always builds its result.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderName;
use memchr::memmem::Finder;
use regex::Regex;

use super::sets::{IntSet, IpSet, StrSet};
use crate::request::{form_decode, lossy, Request};

/// A boolean node.
#[derive(Debug)]
pub(super) enum Node {
    Const(bool),
    Not(Box<Node>),
    /// `and`: all hold (short-circuit).
    All(Vec<Node>),
    /// `or`: any holds (short-circuit).
    Any(Vec<Node>),
    /// `xor` chain: an odd number hold.
    Xor(Vec<Node>),
    Str(Box<StrTest>),
    Int(IntTest),
    Ip(IpTest),
    /// A boolean field of the client (`palisade.bot.verified`, ...).
    Flag(ClientFlag),
}

/// A boolean field of [`crate::request::Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientFlag {
    VerifiedBot,
    Cleared,
}

impl Node {
    pub fn eval(&self, req: &Request<'_>) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::Not(n) => !n.eval(req),
            Node::All(v) => v.iter().all(|n| n.eval(req)),
            Node::Any(v) => v.iter().any(|n| n.eval(req)),
            Node::Xor(v) => v.iter().fold(false, |acc, n| acc ^ n.eval(req)),
            Node::Str(t) => t.eval(req),
            Node::Int(t) => t.eval(req),
            Node::Ip(t) => t.set.contains(req.client_ip) != t.negate,
            Node::Flag(ClientFlag::VerifiedBot) => req.client.verified_bot,
            Node::Flag(ClientFlag::Cleared) => req.client.cleared,
        }
    }
}

/// Which values of a field that can repeat a test sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Pick {
    /// Every value (the default).
    All,
    /// Only the first (`[0]`).
    First,
}

/// A string-valued field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum StrField {
    Host,
    Method,
    /// The target with the path normalized.
    Uri,
    /// The normalized path.
    Path,
    /// The target as sent.
    RawUri,
    /// The path as sent.
    RawPath,
    Query,
    /// `http.cookie`: every `Cookie` field joined with `"; "`.
    CookieHeader,
    Arg(Box<str>, Pick),
    Header(HeaderName, Pick),
    Cookie(Box<str>, Pick),
    Country,
    /// `palisade.bot.name`.
    BotName,
    /// `palisade.fingerprint.headers`.
    HeaderFp,
    /// `palisade.fingerprint.ja4`.
    Ja4,
    /// `palisade.fingerprint.h2`.
    H2Fp,
}

impl StrField {
    /// Calls `f` on each value of the field, in order, until it returns
    /// true; whether it did. An absent field has one value, the empty string.
    ///
    /// The first value is passed directly and the others (rare: a repeated
    /// header, cookie or argument) through a dynamic call, which keeps the
    /// common case as small and fast as a field with one value.
    #[inline]
    pub fn any(&self, req: &Request<'_>, mut f: impl FnMut(Cow<'_, str>) -> bool) -> bool {
        let mut more = false;
        let first = match self {
            StrField::Host => Cow::Borrowed(req.host),
            StrField::Method => Cow::Borrowed(req.method),
            StrField::Uri => Cow::Borrowed(req.uri),
            StrField::Path => Cow::Borrowed(req.path()),
            StrField::RawUri => Cow::Borrowed(req.raw_uri),
            StrField::RawPath => Cow::Borrowed(req.raw_path()),
            StrField::Query => Cow::Borrowed(req.query()),
            _ => self.first(req, &mut more),
        };
        f(first) || (more && self.any_after_first(req, &mut f))
    }

    /// The first value (an absent field: the empty string); sets `more` when
    /// more values may follow ([`StrField::any_after_first`] gives them).
    pub fn first<'s>(&self, req: &'s Request<'_>, more: &mut bool) -> Cow<'s, str> {
        /// The text of the first of `it`; `more` when there is a second one
        /// and `pick` wants it (the second is not decoded: that could allocate).
        fn first_of<'s, T>(
            mut it: impl Iterator<Item = T>,
            pick: Pick,
            more: &mut bool,
            text: impl FnOnce(T) -> Cow<'s, str>,
        ) -> Cow<'s, str> {
            match it.next() {
                None => Cow::Borrowed(""),
                Some(v) => {
                    *more = pick == Pick::All && it.next().is_some();
                    text(v)
                }
            }
        }
        match self {
            StrField::Host => Cow::Borrowed(req.host),
            StrField::Method => Cow::Borrowed(req.method),
            StrField::Uri => Cow::Borrowed(req.uri),
            StrField::Path => Cow::Borrowed(req.path()),
            StrField::RawUri => Cow::Borrowed(req.raw_uri),
            StrField::RawPath => Cow::Borrowed(req.raw_path()),
            StrField::Query => Cow::Borrowed(req.query()),
            StrField::Country => Cow::Borrowed(req.geo.country_str().unwrap_or("")),
            StrField::BotName => Cow::Borrowed(req.client.bot_name),
            StrField::HeaderFp => Cow::Borrowed(req.client.header_fp),
            StrField::Ja4 => Cow::Borrowed(req.client.ja4),
            StrField::H2Fp => Cow::Borrowed(req.client.h2_fp),
            StrField::CookieHeader => req.cookie_header(),
            StrField::Arg(k, pick) => first_of(req.query_args_raw(k), *pick, more, form_decode),
            StrField::Header(h, pick) => {
                first_of(req.headers.get_all(h).iter(), *pick, more, |v| {
                    lossy(v.as_bytes())
                })
            }
            StrField::Cookie(k, pick) => first_of(req.cookies_raw(k), *pick, more, lossy),
        }
    }

    /// Calls `f` on each value after the first, until it returns true.
    pub fn any_after_first(&self, req: &Request<'_>, f: &mut Visit<'_>) -> bool {
        match self {
            StrField::Arg(k, Pick::All) => req.query_args_raw(k).skip(1).any(|v| f(form_decode(v))),
            StrField::Header(h, Pick::All) => req
                .headers
                .get_all(h)
                .iter()
                .skip(1)
                .any(|v| f(lossy(v.as_bytes()))),
            StrField::Cookie(k, Pick::All) => req.cookies_raw(k).skip(1).any(|v| f(lossy(v))),
            _ => false,
        }
    }
}

/// A string-valued expression.
#[derive(Debug, Clone)]
pub(super) enum StrExpr {
    Field(StrField),
    Lit(Box<str>),
    Lower(Box<StrExpr>),
    Upper(Box<StrExpr>),
    UrlDecode(Box<StrExpr>),
    Concat(Vec<StrExpr>),
}

/// At most this many combinations of argument values are tried by `concat`;
/// beyond, each value of each argument is tried with the first value of the
/// others (every combination still, when only one argument repeats).
pub(super) const MAX_CONCAT_COMBINATIONS: usize = 64;

/// A callback over values; returns true to stop.
pub(super) type Visit<'f> = dyn FnMut(Cow<'_, str>) -> bool + 'f;

impl StrExpr {
    /// Calls `f` on each value, in order, until it returns true; whether it
    /// did. A field gives its values (an absent field, the empty string), a
    /// function maps over the values of its argument.
    pub fn any(&self, req: &Request<'_>, f: &mut Visit<'_>) -> bool {
        match self {
            StrExpr::Field(field) => field.any(req, f),
            StrExpr::Lit(s) => f(Cow::Borrowed(s)),
            StrExpr::Lower(e) => e.any(req, &mut |v| f(Fold::Lower.apply(v))),
            StrExpr::Upper(e) => e.any(req, &mut |v| f(Fold::Upper.apply(v))),
            StrExpr::UrlDecode(e) => e.any(req, &mut |v| f(url_decode(v))),
            StrExpr::Concat(parts) => concat_any(parts, req, f),
        }
    }

    /// [`StrExpr::any`], with the common shapes (a field, `url_decode` of a
    /// field) evaluated without dynamic calls.
    #[inline]
    pub fn any_inline(&self, req: &Request<'_>, mut f: impl FnMut(Cow<'_, str>) -> bool) -> bool {
        match self {
            StrExpr::Field(field) => field.any(req, f),
            StrExpr::UrlDecode(inner) => match &**inner {
                StrExpr::Field(field) => field.any(req, |v| f(url_decode(v))),
                _ => self.any(req, &mut f),
            },
            _ => self.any(req, &mut f),
        }
    }
}

/// `url_decode` of one value: borrowed when it holds no escape.
fn url_decode(v: Cow<'_, str>) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(s) => form_decode(s),
        Cow::Owned(s) => match form_decode(&s) {
            Cow::Borrowed(_) => Cow::Owned(s),
            Cow::Owned(d) => Cow::Owned(d),
        },
    }
}

/// `concat(parts...)`: tries every combination of one value per argument
/// while there are at most [`MAX_CONCAT_COMBINATIONS`]; otherwise each value
/// of each argument with the first value of every other one.
fn concat_any(parts: &[StrExpr], req: &Request<'_>, f: &mut Visit<'_>) -> bool {
    let values: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            let mut vs = Vec::new();
            p.any(req, &mut |v| {
                vs.push(v.into_owned());
                false
            });
            if vs.is_empty() {
                vs.push(String::new());
            }
            vs
        })
        .collect();
    let combinations = values
        .iter()
        .try_fold(1usize, |n, vs| n.checked_mul(vs.len()));
    let join = |pick: &[usize]| -> String {
        let mut out = String::new();
        for (vs, &i) in values.iter().zip(pick) {
            out.push_str(&vs[i]);
        }
        out
    };
    let mut pick = vec![0usize; values.len()];
    if combinations.is_some_and(|n| n <= MAX_CONCAT_COMBINATIONS) {
        // An odometer over the value indices.
        loop {
            if f(Cow::Owned(join(&pick))) {
                return true;
            }
            let mut k = pick.len();
            loop {
                if k == 0 {
                    return false;
                }
                k -= 1;
                pick[k] += 1;
                if pick[k] < values[k].len() {
                    break;
                }
                pick[k] = 0;
            }
        }
    }
    if f(Cow::Owned(join(&pick))) {
        return true;
    }
    for (k, vs) in values.iter().enumerate() {
        for i in 1..vs.len() {
            pick[k] = i;
            if f(Cow::Owned(join(&pick))) {
                return true;
            }
        }
        pick[k] = 0;
    }
    false
}

/// `lower` or `upper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    Lower,
    Upper,
}

impl Fold {
    /// The case-mapped string; borrowed when nothing changes.
    pub fn apply(self, s: Cow<'_, str>) -> Cow<'_, str> {
        let changes = |c: char| match self {
            Fold::Lower => {
                let mut m = c.to_lowercase();
                m.next() != Some(c) || m.next().is_some()
            }
            Fold::Upper => {
                let mut m = c.to_uppercase();
                m.next() != Some(c) || m.next().is_some()
            }
        };
        if s.is_ascii() {
            let needs = match self {
                Fold::Lower => s.bytes().any(|b| b.is_ascii_uppercase()),
                Fold::Upper => s.bytes().any(|b| b.is_ascii_lowercase()),
            };
            if !needs {
                return s;
            }
            let mut o = s.into_owned();
            match self {
                Fold::Lower => o.make_ascii_lowercase(),
                Fold::Upper => o.make_ascii_uppercase(),
            }
            return Cow::Owned(o);
        }
        if !s.chars().any(changes) {
            return s;
        }
        Cow::Owned(match self {
            Fold::Lower => s.to_lowercase(),
            Fold::Upper => s.to_uppercase(),
        })
    }

    /// Whether `lit` can be compared case-insensitively against ASCII
    /// input in place of this mapping: it holds no ASCII letter that the
    /// mapping could never produce.
    pub fn fits_bytes(self, lit: &[u8]) -> bool {
        match self {
            Fold::Lower => !lit.iter().any(|b| b.is_ascii_uppercase()),
            Fold::Upper => !lit.iter().any(|b| b.is_ascii_lowercase()),
        }
    }
}

/// A test of a string value.
#[derive(Debug)]
pub(super) struct StrTest {
    pub value: StrExpr,
    pub op: StrOp,
    /// Set for `ne`.
    pub negate: bool,
    /// `lower(value)`/`upper(value)` folded into the test: ASCII values are
    /// compared case-insensitively without building the mapped string.
    pub fold: Option<Fold>,
}

impl StrTest {
    /// Whether the test holds for any value (then `negate`: for none).
    fn eval(&self, req: &Request<'_>) -> bool {
        self.value.any_inline(req, |v| self.test(v)) != self.negate
    }

    #[inline]
    fn test(&self, v: Cow<'_, str>) -> bool {
        match self.fold {
            Some(_) if v.is_ascii() => self.op.test_ascii_ci(v.as_bytes()),
            Some(f) => self.op.test(&f.apply(v)),
            None => self.op.test(&v),
        }
    }
}

#[derive(Debug)]
pub(super) enum StrOp {
    Eq(Box<str>),
    Lt(Box<str>),
    Le(Box<str>),
    Gt(Box<str>),
    Ge(Box<str>),
    Contains(Box<Finder<'static>>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Matches(Regex),
    Wildcard(Wildcard),
    In(Arc<StrSet>),
}

impl StrOp {
    pub fn test(&self, v: &str) -> bool {
        match self {
            StrOp::Eq(l) => v == &**l,
            StrOp::Lt(l) => v < &**l,
            StrOp::Le(l) => v <= &**l,
            StrOp::Gt(l) => v > &**l,
            StrOp::Ge(l) => v >= &**l,
            StrOp::Contains(f) => f.find(v.as_bytes()).is_some(),
            StrOp::StartsWith(l) => v.starts_with(&**l),
            StrOp::EndsWith(l) => v.ends_with(&**l),
            StrOp::Matches(re) => re.is_match(v),
            StrOp::Wildcard(w) => w.matches(v),
            StrOp::In(set) => set.contains(v),
        }
    }

    /// Whether this op supports [`StrOp::test_ascii_ci`].
    pub fn foldable(&self) -> bool {
        matches!(
            self,
            StrOp::Eq(_) | StrOp::Contains(_) | StrOp::StartsWith(_) | StrOp::EndsWith(_)
        )
    }

    /// The test, ignoring ASCII case, for an ASCII value.
    fn test_ascii_ci(&self, v: &[u8]) -> bool {
        match self {
            StrOp::Eq(l) => v.eq_ignore_ascii_case(l.as_bytes()),
            StrOp::Contains(f) => find_ascii_ci(v, f.needle()).is_some(),
            StrOp::StartsWith(l) => v
                .get(..l.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(l.as_bytes())),
            StrOp::EndsWith(l) => v
                .len()
                .checked_sub(l.len())
                .is_some_and(|i| v[i..].eq_ignore_ascii_case(l.as_bytes())),
            // Not foldable: never built with a fold.
            _ => false,
        }
    }
}

/// The first position of `needle` in `hay`, ignoring ASCII case.
pub(super) fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some(&first) = needle.first() else {
        return Some(0);
    };
    let last_start = hay.len().checked_sub(needle.len())?;
    let (a, b) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut from = 0;
    while from <= last_start {
        let i = from + memchr::memchr2(a, b, &hay[from..=last_start])?;
        if hay[i..i + needle.len()].eq_ignore_ascii_case(needle) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// A compiled `wildcard` pattern: literal segments separated by `*`.
#[derive(Debug)]
pub(super) struct Wildcard {
    /// Segments between stars (lower-cased when case-insensitive).
    pub(super) segs: Vec<Box<[u8]>>,
    pub(super) case_sensitive: bool,
}

impl Wildcard {
    /// `\*` is a literal star and `\\` a literal backslash; any other
    /// backslash is kept as is.
    pub fn new(pattern: &str, case_sensitive: bool) -> Self {
        let pattern: Cow<'_, str> = if case_sensitive {
            Cow::Borrowed(pattern)
        } else {
            Fold::Lower.apply(Cow::Borrowed(pattern))
        };
        let mut segs = Vec::new();
        let mut cur = Vec::new();
        let mut bytes = pattern.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'*' => segs.push(std::mem::take(&mut cur).into_boxed_slice()),
                b'\\' => match bytes.clone().next() {
                    Some(n @ (b'*' | b'\\')) => {
                        bytes.next();
                        cur.push(n);
                    }
                    _ => cur.push(b),
                },
                _ => cur.push(b),
            }
        }
        segs.push(cur.into_boxed_slice());
        Wildcard {
            segs,
            case_sensitive,
        }
    }

    pub fn matches(&self, v: &str) -> bool {
        if self.case_sensitive {
            self.match_bytes(v.as_bytes(), |a, b| a == b, memchr::memmem::find)
        } else if v.is_ascii() {
            self.match_bytes(v.as_bytes(), <[u8]>::eq_ignore_ascii_case, find_ascii_ci)
        } else {
            let low = Fold::Lower.apply(Cow::Borrowed(v));
            self.match_bytes(low.as_bytes(), |a, b| a == b, memchr::memmem::find)
        }
    }

    fn match_bytes(
        &self,
        v: &[u8],
        eq: impl Fn(&[u8], &[u8]) -> bool,
        find: impl Fn(&[u8], &[u8]) -> Option<usize>,
    ) -> bool {
        let (first, rest) = match self.segs.split_first() {
            Some(x) => x,
            None => return v.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return eq(v, first);
        };
        if v.len() < first.len() + last.len() {
            return false;
        }
        let (head, tail) = v.split_at(first.len());
        if !eq(head, first) {
            return false;
        }
        let (mut mid, end) = tail.split_at(tail.len() - last.len());
        if !eq(end, last) {
            return false;
        }
        for seg in middle {
            match find(mid, seg) {
                Some(i) => mid = &mid[i + seg.len()..],
                None => return false,
            }
        }
        true
    }
}

/// An integer-valued expression.
#[derive(Debug, Clone)]
pub(super) enum IntExpr {
    Len(Box<StrExpr>),
    Asn,
    /// `palisade.bot.score`.
    BotScore,
    /// `palisade.anomaly.score`.
    AnomalyScore,
}

#[derive(Debug)]
pub(super) enum IntOp {
    Eq(i64),
    Lt(i64),
    Le(i64),
    Gt(i64),
    Ge(i64),
    In(Arc<IntSet>),
}

impl IntOp {
    fn test(&self, v: i64) -> bool {
        match self {
            IntOp::Eq(l) => v == *l,
            IntOp::Lt(l) => v < *l,
            IntOp::Le(l) => v <= *l,
            IntOp::Gt(l) => v > *l,
            IntOp::Ge(l) => v >= *l,
            IntOp::In(set) => set.contains(v),
        }
    }
}

/// A test of an integer value; an absent value fails every test (then
/// `negate` applies, so `ne` holds). `len` of a field with several values
/// holds when it holds for any of them.
#[derive(Debug)]
pub(super) struct IntTest {
    pub value: IntExpr,
    pub op: IntOp,
    pub negate: bool,
}

impl IntTest {
    /// Whether the test holds for any value (a `len` of each value of its
    /// argument; an absent AS number has none), then `negate`.
    fn eval(&self, req: &Request<'_>) -> bool {
        let hit = match &self.value {
            IntExpr::Len(e) => e.any_inline(req, |v| {
                i64::try_from(v.len()).is_ok_and(|n| self.op.test(n))
            }),
            IntExpr::Asn => req.geo.asn.is_some_and(|v| self.op.test(i64::from(v))),
            IntExpr::BotScore => req
                .client
                .bot_score
                .is_some_and(|v| self.op.test(i64::from(v))),
            IntExpr::AnomalyScore => req
                .client
                .anomaly_score
                .is_some_and(|v| self.op.test(i64::from(v))),
        };
        hit != self.negate
    }
}

/// A test of `ip.src`: membership (`eq` of an address is a one-address set).
#[derive(Debug)]
pub(super) struct IpTest {
    pub set: Arc<IpSet>,
    pub negate: bool,
}

/// A string test, with `lower(x)`/`upper(x)` folded into a case-insensitive
/// comparison when the operator and literal allow it.
pub(super) fn str_test(value: StrExpr, op: StrOp, negate: bool) -> Node {
    let lit: Option<&[u8]> = match &op {
        StrOp::Eq(l) | StrOp::StartsWith(l) | StrOp::EndsWith(l) => Some(l.as_bytes()),
        StrOp::Contains(f) => Some(f.needle()),
        _ => None,
    };
    let fold = match (&value, lit) {
        (StrExpr::Lower(_), Some(l)) if op.foldable() && Fold::Lower.fits_bytes(l) => {
            Some(Fold::Lower)
        }
        (StrExpr::Upper(_), Some(l)) if op.foldable() && Fold::Upper.fits_bytes(l) => {
            Some(Fold::Upper)
        }
        _ => None,
    };
    let value = match (fold, value) {
        (Some(_), StrExpr::Lower(inner) | StrExpr::Upper(inner)) => *inner,
        (_, v) => v,
    };
    Node::Str(Box::new(StrTest {
        value,
        op,
        negate,
        fold,
    }))
}

/// Compiles a `matches` pattern, with a bounded size.
pub(super) fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(2 << 20)
        .dfa_size_limit(2 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "regular expression is too large".to_owned(),
            e => {
                let text = e.to_string();
                let why = text
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(text.lines().next().unwrap_or("syntax error"));
                format!("invalid regular expression: {why}")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_borrows_when_unchanged() {
        assert!(matches!(
            Fold::Lower.apply(Cow::Borrowed("/abc")),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            Fold::Lower.apply(Cow::Borrowed("/été")),
            Cow::Borrowed(_)
        ));
        assert_eq!(Fold::Lower.apply(Cow::Borrowed("/ÉtÉ")), "/été");
        assert_eq!(Fold::Upper.apply(Cow::Borrowed("ab")), "AB");
        assert!(matches!(
            Fold::Upper.apply(Cow::Borrowed("AB1")),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn ascii_ci_find() {
        assert_eq!(find_ascii_ci(b"xxAdMiN", b"admin"), Some(2));
        assert_eq!(find_ascii_ci(b"adm", b"admin"), None);
        assert_eq!(find_ascii_ci(b"aaab", b"AB"), Some(2));
        assert_eq!(find_ascii_ci(b"", b""), Some(0));
    }

    #[test]
    fn wildcards() {
        let w = |p: &str, cs: bool, v: &str| Wildcard::new(p, cs).matches(v);
        assert!(w("*.example.com", false, "WWW.Example.COM"));
        assert!(!w("*.example.com", false, "example.com"));
        assert!(w("/a*b*c", false, "/abc"));
        assert!(w("/a*b*c", false, "/a_b_b_c"));
        assert!(!w("/a*b*c", false, "/a_c_b"));
        assert!(w("*", true, ""));
        assert!(w("", true, ""));
        assert!(!w("", true, "x"));
        assert!(!w("ab*ba", true, "aba"));
        assert!(w("ab*ba", true, "abba"));
        assert!(!w("/Admin*", true, "/admin/x"));
        assert!(w("/Admin*", false, "/admin/x"));
        assert!(w(r"a\*b", true, "a*b"));
        assert!(!w(r"a\*b", true, "axxb"));
        assert!(w("*ÉTÉ*", false, "xétéy"));
        assert!(w("*ÉTÉ*", false, "xÉTÉy"));
    }
}
