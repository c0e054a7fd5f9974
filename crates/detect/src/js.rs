//! JavaScript by grammar: calls and property accesses that reach a
//! dangerous sink once JavaScript's own escapes are decoded.
//!
//! The value is tokenized as JavaScript (identifiers with `\u` escapes
//! decoded, strings with `\x65` `\u0065` `\u{65}` octal `\145` decoded,
//! numbers, punctuation; comments skipped). It is an attack when it holds
//! - a computed property access whose key is a constant string expression
//!   naming a sink (`self['\x65\x76\x61\x6c'](...)`, `window["al"+"ert"](1)`,
//!   `[]["constructor"]["constructor"](...)`) and is called, indexed or
//!   assigned, or was escaped or concatenated;
//! - an identifier spelled with escapes that names a sink (`\u0061lert(1)`);
//! - a call of `eval`, `Function`, `setTimeout`, `setInterval` or
//!   `execScript` whose arguments are a JavaScript expression
//!   (`eval(atob('...'))`, `Function('...')()`);
//! - a call of a sink reached through a global object or a constructor
//!   chain (`top.alert(1)`, `''.constructor.constructor('...')()`), or a
//!   dialog (`alert` `prompt` `confirm`) called right after a JavaScript
//!   token (`=`, `;`, `(`, `javascript:`, ...);
//! - a JSFuck-style run: 24 or more characters of `[]()!+` holding `![]` or
//!   `+[]`.
//!
//! Gives up, by design: sinks named in prose ("eval (the function)",
//! "an alert (daily)"), JSON arrays holding sink names (`["eval", 1]`),
//! math with brackets, obfuscation that computes names at run time
//! (`atob` of a name, `String.fromCharCode` arithmetic) unless a sink call
//! wraps it, and dialogs called without JavaScript around them (`alert(1)`
//! alone: CRS' XSS rules and libinjection see those).

use crate::text::{capped, hex, push_char};
use crate::{stats, Detector, Finding};

/// Properties and functions that run code, write markup or leak data.
const SINKS: &[&str] = &[
    "eval",
    "Function",
    "constructor",
    "alert",
    "prompt",
    "confirm",
    "setTimeout",
    "setInterval",
    "execScript",
    "write",
    "writeln",
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "srcdoc",
    "cookie",
    "location",
    "fromCharCode",
    "atob",
    "fetch",
    "import",
];

/// Functions that turn a string into code.
const CODE_SINKS: &[&str] = &[
    "eval",
    "Function",
    "setTimeout",
    "setInterval",
    "execScript",
];

/// Dialogs: the usual proof of an XSS.
const DIALOGS: &[&str] = &["alert", "prompt", "confirm", "print"];

/// Global objects a sink is reached through.
const GLOBALS: &[&str] = &[
    "window",
    "self",
    "top",
    "parent",
    "frames",
    "globalThis",
    "this",
    "document",
    "content",
    "opener",
];

/// Finds JavaScript reaching a sink in `input` (see the module documentation).
pub fn detect(input: impl AsRef<[u8]>) -> Option<Finding> {
    let found = find(capped(input.as_ref()));
    stats::record(Detector::Js, found.is_some());
    found
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An identifier; `escaped` when spelled with `\u` escapes.
    Ident {
        name: String,
        escaped: bool,
    },
    /// A string literal, decoded; `escaped` when it held escapes.
    Str {
        value: String,
        escaped: bool,
    },
    Num,
    /// One punctuation character.
    P(u8),
}

fn find(input: &[u8]) -> Option<Finding> {
    if let Some(f) = jsfuck(input) {
        return Some(f);
    }
    if !input
        .iter()
        .any(|&b| matches!(b, b'(' | b'[' | b'\\' | b'`'))
    {
        return None;
    }
    // Read as it is, and as the content of a string the value breaks out
    // of (`"-alert(1)-"` in `var x = "..."`).
    let mut buf = Vec::with_capacity(input.len() + 2);
    for quote in [None, Some(b'\''), Some(b'"'), Some(b'`')] {
        buf.clear();
        match quote {
            Some(q) if !input.contains(&q) => continue,
            Some(q) => {
                buf.push(q);
                buf.extend_from_slice(input);
                buf.push(q);
            }
            None => buf.extend_from_slice(input),
        }
        let toks = tokens(&buf);
        for i in 0..toks.len() {
            if let Some(f) = at(&toks, i) {
                return Some(f);
            }
        }
    }
    None
}

/// Whether `name` is one of `list`.
fn one_of(name: &str, list: &[&str]) -> bool {
    list.contains(&name)
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident { name, .. }) => Some(name),
        _ => None,
    }
}

fn is_p(t: Option<&Tok>, c: u8) -> bool {
    t == Some(&Tok::P(c))
}

/// The finding that starts at token `i`, if any.
fn at(toks: &[Tok], i: usize) -> Option<Finding> {
    let tok = &toks[i];
    let prev = i.checked_sub(1).map(|p| &toks[p]);
    match tok {
        // `x[ 'key' ]` with a constant key.
        Tok::P(b'[') => {
            let member = matches!(prev, Some(Tok::Ident { .. } | Tok::P(b')') | Tok::P(b']')));
            if !member {
                return None;
            }
            let (key, end, hidden) = constant_string(toks, i + 1)?;
            if !is_p(toks.get(end), b']') || !one_of(&key, SINKS) {
                return None;
            }
            let used = matches!(toks.get(end + 1), Some(Tok::P(b'(' | b'[' | b'=' | b'`')));
            (used || hidden).then(|| {
                Finding::new(
                    Detector::Js,
                    "computed access to a sink",
                    &format!("[{key:?}]"),
                )
            })
        }
        Tok::Ident { name, escaped } => {
            let called = is_p(toks.get(i + 1), b'(') || is_p(toks.get(i + 1), b'`');
            if *escaped && one_of(name, SINKS) {
                return Some(Finding::new(
                    Detector::Js,
                    "escaped identifier names a sink",
                    name,
                ));
            }
            if !called {
                return None;
            }
            let dotted = is_p(prev, b'.');
            let owner = i.checked_sub(2).and_then(|k| ident(toks.get(k)));
            if one_of(name, CODE_SINKS) && !dotted
                || dotted && owner.is_some_and(|o| one_of(o, GLOBALS)) && one_of(name, CODE_SINKS)
            {
                let end = call_end(toks, i + 1)?;
                if valid_args(&toks[i + 2..end]) && !toks[i + 2..end].is_empty() {
                    return Some(Finding::new(Detector::Js, "code built from a string", name));
                }
                return None;
            }
            if dotted && one_of(name, SINKS) {
                let via_global = owner.is_some_and(|o| one_of(o, GLOBALS) && o != "document");
                let via_constructor = owner == Some("constructor");
                if via_global || via_constructor {
                    let end = call_end(toks, i + 1)?;
                    if valid_args(&toks[i + 2..end]) {
                        return Some(Finding::new(
                            Detector::Js,
                            "sink called through a global",
                            name,
                        ));
                    }
                }
                return None;
            }
            if one_of(name, DIALOGS) && !dotted {
                let structural = matches!(
                    prev,
                    Some(Tok::P(
                        b'=' | b';'
                            | b'('
                            | b','
                            | b'{'
                            | b'+'
                            | b'&'
                            | b'|'
                            | b'?'
                            | b':'
                            | b'>'
                            | b'`'
                            | b'!'
                    ))
                );
                // An operator after an operand: `"-alert(1)-"`.
                let operator = matches!(
                    prev,
                    Some(Tok::P(b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'~'))
                ) && matches!(
                    i.checked_sub(2).map(|k| &toks[k]),
                    Some(Tok::Str { .. } | Tok::Num | Tok::P(b')' | b']'))
                );
                if structural || operator {
                    let end = call_end(toks, i + 1)?;
                    if valid_args(&toks[i + 2..end]) {
                        return Some(Finding::new(
                            Detector::Js,
                            "dialog called from script",
                            name,
                        ));
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// A constant string expression at `i` (`'a'`, `'a'+"b"`, `('a')`): its
/// value, the index after it, and whether it was escaped or concatenated.
fn constant_string(toks: &[Tok], mut i: usize) -> Option<(String, usize, bool)> {
    let mut out = String::new();
    let mut hidden = false;
    let mut parts = 0;
    let mut open = 0usize;
    loop {
        while is_p(toks.get(i), b'(') {
            open += 1;
            i += 1;
        }
        match toks.get(i)? {
            Tok::Str { value, escaped } => {
                out.push_str(value);
                hidden |= *escaped;
                parts += 1;
                i += 1;
            }
            _ => return None,
        }
        while open > 0 && is_p(toks.get(i), b')') {
            open -= 1;
            i += 1;
        }
        if is_p(toks.get(i), b'+') {
            i += 1;
            continue;
        }
        break;
    }
    (open == 0).then_some((out, i, hidden || parts > 1))
}

/// The index of the `)` that closes the `(` at `open` (at most 64 tokens on).
fn call_end(toks: &[Tok], open: usize) -> Option<usize> {
    if is_p(toks.get(open), b'`') {
        // A tagged template: alert`1` (the template is one string token).
        return matches!(toks.get(open + 1), Some(Tok::Str { .. })).then_some(open + 2);
    }
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open).take(256) {
        match t {
            Tok::P(b'(' | b'[' | b'{') => depth += 1,
            Tok::P(b')' | b']' | b'}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `args` read as JavaScript: no two operands side by side (prose
/// puts words next to each other; code puts an operator between them).
fn valid_args(args: &[Tok]) -> bool {
    let operand = |t: &Tok| matches!(t, Tok::Ident { .. } | Tok::Str { .. } | Tok::Num);
    let keyword = |t: &Tok| matches!(t, Tok::Ident { name, .. } if matches!(name.as_str(), "new" | "typeof" | "void" | "return" | "await" | "delete"));
    args.windows(2)
        .all(|w| !(operand(&w[0]) && operand(&w[1])) || keyword(&w[0]))
}

/// A run of JSFuck's alphabet `[]()!+` (spaces allowed) of 24 or more
/// characters holding `![]` or `+[]`.
fn jsfuck(input: &[u8]) -> Option<Finding> {
    let mut run = 0usize;
    let mut start = 0usize;
    for (k, &b) in input.iter().chain(std::iter::once(&b'\n')).enumerate() {
        if matches!(b, b'[' | b']' | b'(' | b')' | b'!' | b'+') {
            if run == 0 {
                start = k;
            }
            run += 1;
        } else if b == b' ' && run > 0 {
        } else {
            if run >= 24 {
                let s = &input[start..k.min(input.len())];
                let compact: Vec<u8> = s.iter().copied().filter(|&c| c != b' ').collect();
                if memchr::memmem::find(&compact, b"![]").is_some()
                    || memchr::memmem::find(&compact, b"+[]").is_some()
                {
                    return Some(Finding::new(
                        Detector::Js,
                        "JSFuck-style expression",
                        &String::from_utf8_lossy(s),
                    ));
                }
            }
            run = 0;
        }
    }
    None
}

/// JavaScript tokens of `s` (at most 2,048).
fn tokens(s: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() && out.len() < 2048 {
        let c = s[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
            // `//` starts a comment, except after a URL scheme
            // (`https://`; `javascript://` is a comment).
            b'/' if s.get(i + 1) == Some(&b'/') && !after_url_scheme(&out) => {
                i = memchr::memchr(b'\n', &s[i..]).map_or(s.len(), |p| i + p);
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(&s[i + 2..], b"*/").map_or(s.len(), |p| i + 2 + p + 2);
            }
            b'\'' | b'"' | b'`' => {
                // A tagged template (alert`1`) reads as a call.
                if c == b'`' && matches!(out.last(), Some(Tok::Ident { .. })) {
                    out.push(Tok::P(b'`'));
                }
                let (value, escaped, end) = string(s, i + 1, c);
                out.push(Tok::Str { value, escaped });
                i = end;
            }
            b'0'..=b'9' => {
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'.') {
                    i += 1;
                }
                out.push(Tok::Num);
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'\\' || c >= 0x80 => {
                let (name, escaped, end) = identifier(s, i);
                if end == i {
                    out.push(Tok::P(c));
                    i += 1;
                } else {
                    out.push(Tok::Ident { name, escaped });
                    i = end;
                }
            }
            _ => {
                out.push(Tok::P(c));
                i += 1;
            }
        }
    }
    out
}

/// Whether the tokens so far end with a URL scheme other than
/// `javascript` and its colon (`https:`).
fn after_url_scheme(out: &[Tok]) -> bool {
    match out {
        [.., Tok::Ident { name, .. }, Tok::P(b':')] => !name.eq_ignore_ascii_case("javascript"),
        _ => false,
    }
}

/// An identifier at `i` (with `\uXXXX` / `\u{X}` escapes): its name,
/// whether it was escaped, and its end.
fn identifier(s: &[u8], mut i: usize) -> (String, bool, usize) {
    let mut name = Vec::new();
    let mut escaped = false;
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            name.push(c);
            i += 1;
        } else if c == b'\\' && s.get(i + 1) == Some(&b'u') {
            match unicode_escape(s, i + 2) {
                Some((ch, end)) => {
                    push_char(&mut name, ch);
                    escaped = true;
                    i = end;
                }
                None => break,
            }
        } else {
            break;
        }
        if name.len() > 64 {
            break;
        }
    }
    (String::from_utf8_lossy(&name).into_owned(), escaped, i)
}

/// `XXXX` or `{X...}` after `\u`: the character and the end.
fn unicode_escape(s: &[u8], i: usize) -> Option<(char, usize)> {
    if s.get(i) == Some(&b'{') {
        let close = s[i + 1..].iter().take(8).position(|&b| b == b'}')?;
        let digits = &s[i + 1..i + 1 + close];
        let cp = digits.iter().try_fold(0u32, |a, &b| {
            hex(b).map(|v| a.saturating_mul(16).saturating_add(v))
        })?;
        return Some((char::from_u32(cp)?, i + close + 2));
    }
    let digits = s.get(i..i + 4)?;
    let cp = digits
        .iter()
        .try_fold(0u32, |a, &b| hex(b).map(|v| a * 16 + v))?;
    Some((char::from_u32(cp).unwrap_or('\u{fffd}'), i + 4))
}

/// A string literal's content from `i` up to quote `q`, decoded: its
/// value, whether it held escapes, and the index after it.
fn string(s: &[u8], mut i: usize, q: u8) -> (String, bool, usize) {
    let mut out = Vec::new();
    let mut escaped = false;
    while i < s.len() {
        let c = s[i];
        if c == q {
            i += 1;
            break;
        }
        if c != b'\\' || i + 1 >= s.len() {
            out.push(c);
            i += 1;
            continue;
        }
        escaped = true;
        let e = s[i + 1];
        i += 2;
        match e {
            b'x' => match (
                s.get(i).and_then(|&b| hex(b)),
                s.get(i + 1).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    push_char(&mut out, char::from_u32(h * 16 + l).unwrap_or('\u{fffd}'));
                    i += 2;
                }
                _ => out.push(b'x'),
            },
            b'u' => match unicode_escape(s, i) {
                Some((ch, end)) => {
                    push_char(&mut out, ch);
                    i = end;
                }
                None => out.push(b'u'),
            },
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3
                    && i < s.len()
                    && (b'0'..=b'7').contains(&s[i])
                    && v * 8 + u32::from(s[i] - b'0') < 256
                {
                    v = v * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                push_char(&mut out, char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            other => out.push(other),
        }
        if out.len() > 256 {
            // Only short keys matter; skip to the closing quote.
            while i < s.len() && s[i] != q {
                i += if s[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(s.len());
            break;
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), escaped, i)
}

#[cfg(test)]
mod tests;
