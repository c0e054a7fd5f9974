//! SecLang operators (`@rx`, `@pm`, `@eq`, ...), compiled once at load.

use std::path::Path;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ipnet::IpNet;
use regex::bytes::{Regex, RegexBuilder};

use crate::backtrack::{self, BacktrackRegex};
use crate::macros::{MacroText, Resolve};

/// Largest compiled regex program we accept (bytes); CRS needs far less.
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// A compiled operator.
#[derive(Debug, Clone)]
pub enum Operator {
    Rx(Arc<Regex>),
    /// `@rx` whose pattern needs PCRE-only constructs: the bounded
    /// backtracking engine ([`crate::backtrack`]).
    RxBacktrack(Arc<BacktrackRegex>),
    /// `@rx` whose pattern holds macros: compiled per transaction.
    RxMacro(MacroText),
    Pm(Arc<Phrases>),
    Eq(MacroText),
    Ge(MacroText),
    Gt(MacroText),
    Lt(MacroText),
    Le(MacroText),
    Within(MacroText),
    Streq(MacroText),
    Contains(MacroText),
    ContainsWord(MacroText),
    BeginsWith(MacroText),
    EndsWith(MacroText),
    StrMatch(MacroText),
    ValidateByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    DetectSqli,
    DetectXss,
    /// Palisade's structural detectors (`@detectTraversal`,
    /// `@detectSQLGrammar`, `@detectJS`, `@detectShell`; see
    /// `palisade_detect`): the finding's evidence is captured as `TX.0`.
    Detect(palisade_detect::Detector),
    IpMatch(Arc<Vec<IpNet>>),
    /// `@sameSite`, Palisade's own: the value and the parameter (each a
    /// `host[:port]`) are the same site, i.e. the same registrable domain
    /// (see [`crate::site`]).
    SameSite(MacroText),
    UnconditionalMatch,
    NoMatch,
    /// `@geoLookup`: no GeoIP database is loaded, so it never matches (as
    /// ModSecurity without `SecGeoLookupDb`). CRS 3.x rule 910100 runs it
    /// only when `tx.high_risk_country_codes` is set.
    GeoLookup,
    /// `@rbl`: the engine does no DNS in the request path, so it never
    /// matches. CRS 3.x rule 910140 runs it only when
    /// `tx.block_*_ip` settings are set.
    Rbl,
}

/// A compiled `@pm` / `@pmFromFile`: its automaton, and its phrases until
/// the rule set is compiled (they go into the rule groups' phrase sets,
/// see [`crate::pmset`], and are dropped afterwards).
#[derive(Debug)]
pub struct Phrases {
    pub ac: AhoCorasick,
    pub phrases: Vec<Box<str>>,
}

/// What a successful match captured, for `capture` (TX.0..TX.9).
pub type Captures = Vec<Vec<u8>>;

/// Compiles a regex the way ModSecurity's PCRE sees it: bytes, no Unicode
/// classes (`\w`, `.` and case folding are ASCII/byte-wise).
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    let rewritten = rewrite_pcre(pattern);
    RegexBuilder::new(&rewritten)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT / 4)
        .build()
        .map_err(|e| format!("regex does not compile: {e}"))
}

/// Compiles `pattern` for the backtracking engine when it uses a PCRE-only
/// construct the `regex` crate refuses or reads differently (`None`
/// otherwise: it belongs to the `regex` crate).
pub fn compile_backtracking(pattern: &str) -> Option<Result<BacktrackRegex, String>> {
    let rewritten = rewrite_pcre(pattern);
    backtrack::needs_backtracking(&rewritten).then(|| BacktrackRegex::new(&rewritten))
}

/// Rewrites PCRE spellings the `regex` crate reads differently:
/// - `\x{hh}` with two hex digits is a byte in PCRE's non-UTF mode;
/// - `\<` and `\>` are the literal `<` and `>` (word boundaries there);
/// - in a character class, `[` (other than `[:name:]`), `&` and `~` are
///   literal (the start of a nested class and set operators there), a `]`
///   right after the opening `[` or `[^` is literal, and `\b` is a backspace;
/// - a `{` that does not start a counted repetition is literal;
/// - a non-ASCII literal is its UTF-8 bytes.
pub fn rewrite_pcre(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let b = pattern.as_bytes();
    let mut i = 0;
    // Inside a character class: where its members start (after `[` / `[^`).
    let mut class: Option<usize> = None;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' && b.get(i + 2) == Some(&b'{') {
                if let Some(end) = pattern[i + 3..].find('}') {
                    let hex = &pattern[i + 3..i + 3 + end];
                    if hex.len() <= 2
                        && !hex.is_empty()
                        && hex.bytes().all(|c| c.is_ascii_hexdigit())
                    {
                        out.push_str("\\x");
                        if hex.len() == 1 {
                            out.push('0');
                        }
                        out.push_str(hex);
                        i += 3 + end + 1;
                        continue;
                    }
                }
            }
            // `\x{...}`, `\p{...}`: copy the braces with the escape.
            if b[i + 1].is_ascii_alphabetic() && b.get(i + 2) == Some(&b'{') {
                if let Some(end) = pattern[i + 3..].find('}') {
                    out.push_str(&pattern[i..i + 3 + end + 1]);
                    i += 3 + end + 1;
                    continue;
                }
            }
            match b[i + 1] {
                b'<' | b'>' => {
                    out.push_str(&format!("\\x{:02x}", b[i + 1]));
                    i += 2;
                    continue;
                }
                b'b' if class.is_some() => {
                    out.push_str("\\x08");
                    i += 2;
                    continue;
                }
                _ => {}
            }
            // An escaped character (which may be non-ASCII: keep it whole,
            // as bytes like any other non-ASCII literal).
            let next = pattern[i + 1..].chars().next().unwrap_or('\\');
            if next.is_ascii() {
                out.push('\\');
                out.push(next);
            } else {
                let mut buf = [0u8; 4];
                for b in next.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            i += 1 + next.len_utf8();
            continue;
        }
        if let Some(start) = class {
            match b[i] {
                b']' if i == start => {
                    out.push_str("\\]");
                    i += 1;
                    continue;
                }
                b']' => {
                    class = None;
                    out.push(']');
                    i += 1;
                    continue;
                }
                b'[' => {
                    // A POSIX class `[:alpha:]` stays; any other `[` is literal.
                    let posix = b.get(i + 1) == Some(&b':')
                        && pattern[i + 2..].find(":]").is_some_and(|e| {
                            pattern[i + 2..i + 2 + e]
                                .bytes()
                                .all(|c| c.is_ascii_alphabetic())
                        });
                    if posix {
                        let e = pattern[i + 2..].find(":]").unwrap_or(0);
                        out.push_str(&pattern[i..i + 2 + e + 2]);
                        i += 2 + e + 2;
                    } else {
                        out.push_str("\\[");
                        i += 1;
                    }
                    continue;
                }
                b'&' | b'~' => {
                    out.push('\\');
                    out.push(b[i] as char);
                    i += 1;
                    continue;
                }
                _ => {}
            }
        } else if b[i] == b'[' {
            out.push('[');
            i += 1;
            if b.get(i) == Some(&b'^') {
                out.push('^');
                i += 1;
            }
            class = Some(i);
            continue;
        }
        if b[i] == b'{' && !is_quantifier(&b[i + 1..]) {
            // PCRE reads a `{` that does not start `{n}`, `{n,}` or `{n,m}`
            // as a literal.
            out.push_str("\\{");
            i += 1;
            continue;
        }
        let ch = pattern[i..].chars().next().unwrap_or('\u{fffd}');
        if ch.is_ascii() {
            out.push(ch);
        } else {
            // PCRE without UTF reads a non-ASCII literal as its bytes (also
            // inside a class, where each byte becomes a member).
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        i += ch.len_utf8();
    }
    out
}

/// Whether `rest` (after a `{`) is a counted repetition: `n}`, `n,}`, `n,m}`.
fn is_quantifier(rest: &[u8]) -> bool {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    match rest.get(digits) {
        Some(b'}') => true,
        Some(b',') => {
            let more = rest[digits + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            rest.get(digits + 1 + more) == Some(&b'}')
        }
        _ => false,
    }
}

impl Operator {
    /// Compiles `@name param` (`name` without the `@`). `dir` resolves
    /// `@pmFromFile` / `@ipMatchFromFile` paths.
    pub fn compile(name: &str, param: &str, dir: &Path) -> Result<Operator, String> {
        let m = || MacroText::parse(param);
        Ok(match name.to_ascii_lowercase().as_str() {
            "rx" => {
                let t = MacroText::parse(param);
                if t.is_literal() {
                    match compile_backtracking(param) {
                        Some(re) => Operator::RxBacktrack(Arc::new(re?)),
                        None => Operator::Rx(Arc::new(compile_regex(param)?)),
                    }
                } else {
                    Operator::RxMacro(t)
                }
            }
            "pm" => Operator::Pm(Arc::new(build_pm(param.split_whitespace())?)),
            "pmfromfile" | "pmf" => {
                let mut phrases = Vec::new();
                for file in param.split_whitespace() {
                    let path = dir.join(file);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("@pmFromFile {}: {e}", path.display()))?;
                    for line in text.lines() {
                        let l = line.trim();
                        if l.is_empty() || l.starts_with('#') {
                            continue;
                        }
                        phrases.push(l.to_string());
                    }
                }
                if phrases.is_empty() {
                    return Err(format!("@pmFromFile {param}: no phrases"));
                }
                Operator::Pm(Arc::new(build_pm(phrases.iter().map(String::as_str))?))
            }
            "eq" => Operator::Eq(m()),
            "ge" => Operator::Ge(m()),
            "gt" => Operator::Gt(m()),
            "lt" => Operator::Lt(m()),
            "le" => Operator::Le(m()),
            "within" => Operator::Within(m()),
            "streq" => Operator::Streq(m()),
            "contains" => Operator::Contains(m()),
            "containsword" => Operator::ContainsWord(m()),
            "beginswith" => Operator::BeginsWith(m()),
            "endswith" => Operator::EndsWith(m()),
            "strmatch" => Operator::StrMatch(m()),
            "samesite" => Operator::SameSite(m()),
            "validatebyterange" => Operator::ValidateByteRange(Box::new(parse_byte_ranges(param)?)),
            "validateurlencoding" => Operator::ValidateUrlEncoding,
            "validateutf8encoding" => Operator::ValidateUtf8Encoding,
            "detectsqli" => Operator::DetectSqli,
            "detectxss" => Operator::DetectXss,
            "detecttraversal" => Operator::Detect(palisade_detect::Detector::Traversal),
            "detectsqlgrammar" => Operator::Detect(palisade_detect::Detector::Sql),
            "detectjs" => Operator::Detect(palisade_detect::Detector::Js),
            "detectshell" => Operator::Detect(palisade_detect::Detector::Shell),
            "ipmatch" => Operator::IpMatch(Arc::new(parse_ips(param.split([',', ' ']))?)),
            "ipmatchfromfile" | "ipmatchf" => {
                let path = dir.join(param.trim());
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("@ipMatchFromFile {}: {e}", path.display()))?;
                let lines = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'));
                Operator::IpMatch(Arc::new(parse_ips(lines)?))
            }
            "unconditionalmatch" => Operator::UnconditionalMatch,
            "nomatch" => Operator::NoMatch,
            "geolookup" => Operator::GeoLookup,
            "rbl" => Operator::Rbl,
            other => return Err(format!("unsupported operator @{other}")),
        })
    }

    /// The parameter of an operator that takes a macro text.
    pub fn macro_text_mut(&mut self) -> Option<&mut MacroText> {
        match self {
            Operator::RxMacro(t)
            | Operator::Eq(t)
            | Operator::Ge(t)
            | Operator::Gt(t)
            | Operator::Lt(t)
            | Operator::Le(t)
            | Operator::Within(t)
            | Operator::Streq(t)
            | Operator::Contains(t)
            | Operator::ContainsWord(t)
            | Operator::BeginsWith(t)
            | Operator::EndsWith(t)
            | Operator::StrMatch(t)
            | Operator::SameSite(t) => Some(t),
            _ => None,
        }
    }

    /// The regex of a literal `@rx`, for the prefilter.
    pub fn static_regex(&self) -> Option<&Regex> {
        match self {
            Operator::Rx(r) => Some(r),
            _ => None,
        }
    }

    /// The shared regex of a literal `@rx`.
    pub fn static_regex_arc(&self) -> Option<Arc<Regex>> {
        match self {
            Operator::Rx(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// `@eq`, `@ge`, `@gt`, `@lt`, `@le` with a literal operand (CRS'
    /// paranoia-level and threshold checks), decided without expanding
    /// anything; `None` for any other operator.
    #[inline]
    pub fn literal_compare(&self, value: &[u8]) -> Option<bool> {
        let t = match self {
            Operator::Eq(t)
            | Operator::Ge(t)
            | Operator::Gt(t)
            | Operator::Lt(t)
            | Operator::Le(t) => t,
            _ => return None,
        };
        let (a, b) = (num(value), num(t.as_literal()?.as_bytes()));
        Some(match self {
            Operator::Eq(_) => a == b,
            Operator::Ge(_) => a >= b,
            Operator::Gt(_) => a > b,
            Operator::Lt(_) => a < b,
            _ => a <= b,
        })
    }

    /// Runs the operator on one value. `caps`, when given, receives the
    /// captures of a match.
    pub fn eval(&self, value: &[u8], ctx: &dyn Resolve, caps: Option<&mut Captures>) -> bool {
        self.eval_with(value, ctx, caps, &mut Vec::new())
    }

    /// [`Operator::eval`] with a buffer for the expanded parameter (kept by
    /// the caller between calls, so expanding allocates nothing).
    pub fn eval_with(
        &self,
        value: &[u8],
        ctx: &dyn Resolve,
        caps: Option<&mut Captures>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        fn expand<'s>(t: &'s MacroText, ctx: &dyn Resolve, scratch: &'s mut Vec<u8>) -> &'s [u8] {
            if let Some(lit) = t.as_literal() {
                return lit.as_bytes();
            }
            scratch.clear();
            t.expand_into(ctx, scratch);
            scratch
        }
        match self {
            Operator::Rx(re) => rx_eval(re, value, caps),
            Operator::RxBacktrack(re) => backtrack_eval(re, value, caps),
            Operator::RxMacro(t) => {
                let pattern = String::from_utf8_lossy(expand(t, ctx, scratch)).into_owned();
                match compile_backtracking(&pattern) {
                    Some(Ok(re)) => backtrack_eval(&re, value, caps),
                    Some(Err(_)) => false,
                    None => match compile_regex(&pattern) {
                        Ok(re) => rx_eval(&re, value, caps),
                        Err(_) => false,
                    },
                }
            }
            Operator::Pm(pm) => match pm.ac.find(value) {
                Some(m) => {
                    if let Some(c) = caps {
                        c.clear();
                        c.push(value[m.start()..m.end()].to_vec());
                    }
                    true
                }
                None => false,
            },
            Operator::Eq(t) => num(value) == num(expand(t, ctx, scratch)),
            Operator::Ge(t) => num(value) >= num(expand(t, ctx, scratch)),
            Operator::Gt(t) => num(value) > num(expand(t, ctx, scratch)),
            Operator::Lt(t) => num(value) < num(expand(t, ctx, scratch)),
            Operator::Le(t) => num(value) <= num(expand(t, ctx, scratch)),
            Operator::Within(t) => {
                let hay = expand(t, ctx, scratch);
                // ModSecurity: an empty input is not "within" anything.
                !value.is_empty() && memchr::memmem::find(hay, value).is_some()
            }
            Operator::Streq(t) => value == expand(t, ctx, scratch),
            Operator::Contains(t) => memchr::memmem::find(value, expand(t, ctx, scratch)).is_some(),
            Operator::ContainsWord(t) => contains_word(value, expand(t, ctx, scratch)),
            Operator::BeginsWith(t) => value.starts_with(expand(t, ctx, scratch)),
            Operator::EndsWith(t) => value.ends_with(expand(t, ctx, scratch)),
            Operator::StrMatch(t) => memchr::memmem::find(value, expand(t, ctx, scratch)).is_some(),
            Operator::SameSite(t) => {
                let other = expand(t, ctx, scratch);
                match (std::str::from_utf8(value), std::str::from_utf8(other)) {
                    (Ok(a), Ok(b)) => crate::site::same_site(a, b),
                    _ => false,
                }
            }
            Operator::ValidateByteRange(allowed) => value.iter().any(|&b| !allowed[b as usize]),
            Operator::ValidateUrlEncoding => !valid_url_encoding(value),
            Operator::ValidateUtf8Encoding => std::str::from_utf8(value).is_err(),
            Operator::DetectSqli => match palisade_detect::libinjection::detect_sqli(value) {
                Some(fp) => {
                    if let Some(c) = caps {
                        c.clear();
                        c.push(fp.as_str().as_bytes().to_vec());
                    }
                    true
                }
                None => false,
            },
            Operator::DetectXss => palisade_detect::libinjection::detect_xss(value),
            Operator::Detect(d) => match palisade_detect::detect(*d, value) {
                Some(f) => {
                    if let Some(c) = caps {
                        c.clear();
                        c.push(f.evidence.into_bytes());
                    }
                    true
                }
                None => false,
            },
            Operator::IpMatch(nets) => match std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
            {
                Some(ip) => nets.iter().any(|n| n.contains(&ip)),
                None => false,
            },
            Operator::UnconditionalMatch => true,
            Operator::NoMatch | Operator::GeoLookup | Operator::Rbl => false,
        }
    }
}

fn rx_eval(re: &Regex, value: &[u8], caps: Option<&mut Captures>) -> bool {
    match caps {
        None => re.is_match(value),
        // The DFA answers "no match" fast; captures need a slower engine.
        Some(_) if !re.is_match(value) => false,
        // Only the whole match is wanted: `find` stays on the DFA.
        Some(out) if re.captures_len() == 1 => match re.find(value) {
            Some(m) => {
                out.clear();
                out.push(m.as_bytes().to_vec());
                true
            }
            None => false,
        },
        Some(out) => match re.captures(value) {
            Some(c) => {
                out.clear();
                for i in 0..c.len().min(10) {
                    out.push(c.get(i).map(|m| m.as_bytes().to_vec()).unwrap_or_default());
                }
                true
            }
            None => false,
        },
    }
}

fn backtrack_eval(re: &BacktrackRegex, value: &[u8], caps: Option<&mut Captures>) -> bool {
    match caps {
        None => re.is_match(value),
        Some(out) => re.captures(value, out),
    }
}

fn build_pm<'a>(phrases: impl Iterator<Item = &'a str>) -> Result<Phrases, String> {
    let list: Vec<&str> = phrases.filter(|p| !p.is_empty()).collect();
    if list.is_empty() {
        return Err("@pm needs at least one phrase".into());
    }
    let ac = AhoCorasickBuilder::new()
        // The contiguous NFA: a fraction of a DFA's memory for CRS' large
        // phrase files, and still one linear pass.
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .ascii_case_insensitive(true)
        // The matched phrase is observable (`capture`, `MATCHED_VAR`):
        // ModSecurity reports the leftmost one.
        .match_kind(MatchKind::LeftmostFirst)
        .build(&list)
        .map_err(|e| format!("@pm: {e}"))?;
    Ok(Phrases {
        ac,
        phrases: list.into_iter().map(Box::from).collect(),
    })
}

/// ModSecurity reads numbers like `atoi`: leading digits, else 0.
fn num(v: &[u8]) -> i64 {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let v = &v[s..];
    let (neg, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let mut n: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((b - b'0') as i64);
    }
    if neg {
        -n
    } else {
        n
    }
}

fn contains_word(value: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = 0;
    while let Some(i) = memchr::memmem::find(&value[start..], word) {
        let at = start + i;
        let end = at + word.len();
        let before_ok = at == 0 || !is_word(value[at - 1]);
        let after_ok = end >= value.len() || !is_word(value[end]);
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
    }
    false
}

fn parse_byte_ranges(param: &str) -> Result<[bool; 256], String> {
    let mut allowed = [false; 256];
    for part in param.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: u8 = lo
            .parse()
            .map_err(|_| format!("@validateByteRange: bad range {part:?}"))?;
        let hi: u8 = hi
            .parse()
            .map_err(|_| format!("@validateByteRange: bad range {part:?}"))?;
        if lo > hi {
            return Err(format!("@validateByteRange: bad range {part:?}"));
        }
        for b in lo..=hi {
            allowed[b as usize] = true;
        }
    }
    Ok(allowed)
}

fn valid_url_encoding(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            match (v.get(i + 1), v.get(i + 2)) {
                (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

fn parse_ips<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let net = if item.contains('/') {
            item.parse::<IpNet>()
                .map_err(|e| format!("@ipMatch {item:?}: {e}"))?
        } else {
            let ip: std::net::IpAddr = item
                .parse()
                .map_err(|e| format!("@ipMatch {item:?}: {e}"))?;
            IpNet::from(ip)
        };
        out.push(net);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoVars;
    impl Resolve for NoVars {
        fn resolve(&self, _: &str, _: Option<&str>, _: &mut Vec<u8>) {}
    }

    fn op(name: &str, param: &str) -> Operator {
        Operator::compile(name, param, Path::new(".")).unwrap()
    }

    #[test]
    fn basic_operators() {
        assert!(op("rx", "(?i)sel\\x{65}ct").eval(b"SELECT", &NoVars, None));
        assert!(op("pm", "foo bar").eval(b"xxBARxx", &NoVars, None));
        assert!(op("eq", "0").eval(b"", &NoVars, None));
        assert!(op("ge", "5").eval(b"7", &NoVars, None));
        assert!(op("within", "GET HEAD POST").eval(b"GET", &NoVars, None));
        assert!(!op("within", "GET HEAD POST").eval(b"PUT", &NoVars, None));
        assert!(op("validateByteRange", "32-126").eval(b"a\x01", &NoVars, None));
        assert!(!op("validateByteRange", "32-126").eval(b"abc", &NoVars, None));
        assert!(op("validateUrlEncoding", "").eval(b"%zz", &NoVars, None));
        assert!(op("validateUrlEncoding", "").eval(b"ab%4", &NoVars, None));
        assert!(!op("validateUrlEncoding", "").eval(b"a%41", &NoVars, None));
        assert!(op("ipMatch", "127.0.0.1,10.0.0.0/8").eval(b"10.1.2.3", &NoVars, None));
        assert!(op("containsWord", "select").eval(b"a select b", &NoVars, None));
        assert!(!op("containsWord", "select").eval(b"selected", &NoVars, None));
        assert!(!op("geoLookup", "").eval(b"10.1.2.3", &NoVars, None));
        assert!(!op("rbl", "dnsbl.httpbl.org").eval(b"10.1.2.3", &NoVars, None));
        assert!(Operator::compile("inspectFile", "x", Path::new(".")).is_err());
    }

    #[test]
    fn rx_captures() {
        let mut caps = Vec::new();
        assert!(op("rx", "a(b+)c").eval(b"xabbc", &NoVars, Some(&mut caps)));
        assert_eq!(caps, vec![b"abbc".to_vec(), b"bb".to_vec()]);
    }

    #[test]
    fn rewrites_pcre_hex_bytes() {
        assert_eq!(rewrite_pcre(r"\x{0b}\x{a}\x{1F600}"), r"\x0b\x0a\x{1F600}");
        assert_eq!(rewrite_pcre("[´]"), r"[\xc2\xb4]");
        // Found by fuzzing: an escaped non-ASCII character.
        assert_eq!(rewrite_pcre("a\\փb"), r"a\xd6\x83b");
        assert_eq!(
            rewrite_pcre(r"a{2}b{1,}c{1,3}{{x}}"),
            r"a{2}b{1,}c{1,3}\{\{x}}"
        );
        let re = compile_regex("[a´]").unwrap();
        assert!(re.is_match(b"\xb4"));
        let re = compile_regex(r"[\x{80}-\x{ff}]").unwrap();
        assert!(re.is_match(b"\xc3"));
    }

    #[test]
    fn rewrites_pcre_class_syntax() {
        // Found in CRS 3.3.4: `[` inside a class, `\<` / `\>`, `\b` in a class.
        assert_eq!(rewrite_pcre(r"[([]*?"), r"[(\[]*?");
        assert_eq!(rewrite_pcre(r"[^\<\>\~&]"), r"[^\x3c\x3e\~\&]");
        assert_eq!(rewrite_pcre(r"[]a][^]b]"), r"[\]a][^\]b]");
        assert_eq!(
            rewrite_pcre(r"[[:alpha:][]\b[\b]"),
            r"[[:alpha:]\[]\b[\x08]"
        );
        let re = compile_regex(r#"[\'" ?[=<>]+x"#).unwrap();
        assert!(re.is_match(b"[=x"));
        assert!(!re.is_match(b"]x"));
        let re = compile_regex(r"^[^:\(\)\&\|\!\<\>\~]*\)").unwrap();
        assert!(re.is_match(b"cn=a)"));
        assert!(!re.is_match(b"<a)"));
        let re = compile_regex(r"a\<b").unwrap();
        assert!(re.is_match(b"a<b"));
    }

    #[test]
    fn pcre_only_constructs_run_on_the_backtracking_engine() {
        assert!(matches!(op("rx", r"<\?(?!xml)"), Operator::RxBacktrack(_)));
        assert!(op("rx", r"<\?(?!xml)").eval(b"<?php", &NoVars, None));
        assert!(!op("rx", r"<\?(?!xml)").eval(b"<?xml", &NoVars, None));
        let mut caps = Vec::new();
        assert!(op("rx", r"(\w)\1").eval(b"abbc", &NoVars, Some(&mut caps)));
        assert_eq!(caps, vec![b"bb".to_vec(), b"b".to_vec()]);
        // Everything else stays on the `regex` crate.
        assert!(matches!(op("rx", r"a+b"), Operator::Rx(_)));
        // Possessive: PCRE never gives back what `[^a]++` took.
        assert!(matches!(op("rx", r"[^a]++b"), Operator::RxBacktrack(_)));
        assert!(!op("rx", r"^[^a]++b").eval(b"xxb", &NoVars, None));
        assert!(op("rx", r"^[^a]+b").eval(b"xxb", &NoVars, None));
        assert!(Operator::compile("rx", "[a", Path::new(".")).is_err());
    }
}
