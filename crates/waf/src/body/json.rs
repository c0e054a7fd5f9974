//! JSON request bodies, flattened into `ARGS_POST` the way libmodsecurity v3
//! (yajl callbacks in `request_body_processor/json.cc`) names them:
//!
//! * the root container is named `json`; object members append `.key`
//!   (`{"a":{"b":1}}` → `json.a.b=1`), an empty key becomes `empty-key`;
//! * array elements append `.array_N` with N counting from 0
//!   (`{"a":[1,2]}` → `json.a.array_0=1`, `json.a.array_1=2`;
//!   `[{"b":1}]` → `json.array_0.b=1`; `[[1]]` → `json.array_0.array_0=1`);
//! * a scalar document is named `json`;
//! * strings are unescaped, numbers keep their source text, booleans are
//!   `true`/`false`, `null` is the empty string; empty containers add nothing.
//!
//! Naming choice: Coraza names array elements `json.a.0` and also adds
//! `json.a=<length>`; libmodsecurity v3 names them `json.a.array_0`. None of
//! the CRS regression cases (two JSON bodies with arrays, 933100-34 and
//! 934210-13) depends on the difference — 934210 matches through
//! `REQUEST_BODY` and 933100 must not match either way — so we follow
//! libmodsecurity v3, whose `json.` prefix the CRS `^(?:json\.)?` anchors
//! were written for.
//!
//! Errors follow yajl (strict RFC 8259 grammar, UTF-8 checked the way yajl
//! does, no comments, one top-level value): `REQBODY_ERROR_MSG` is
//! `JSON parsing error: <yajl-like message>`. Arguments seen before an
//! error are kept, as with libmodsecurity. An empty body is not an error.
//! Exceeding the depth limit, the argument limit or the name-size budget
//! cancels the parse like a yajl callback returning 0.
//!
//! A *partial* body (only the first bytes of a longer one, cut at a limit)
//! may end anywhere: running out of input there is not an error, and a
//! string value cut by the end is still reported with what it holds.

use super::{BodyLimits, ParsedBody};

/// Names may repeat a long key prefix once per argument; cap the total size
/// of generated names to keep memory linear in the input.
const NAME_BUDGET_FACTOR: usize = 8;
const NAME_BUDGET_MIN: usize = 1 << 20;

struct Container {
    is_array: bool,
    name: Vec<u8>,
    /// `path.len()` while this container is the innermost one.
    seg_start: usize,
    counter: usize,
}

struct Flattener<'o> {
    stack: Vec<Container>,
    /// Segments (name + `.` or `.array_N`) of every container but the
    /// innermost.
    path: Vec<u8>,
    current_key: Vec<u8>,
    out: &'o mut Vec<(Vec<u8>, Vec<u8>)>,
    max_args: usize,
    max_depth: usize,
    name_budget: usize,
    args_exceeded: bool,
    depth_exceeded: bool,
}

impl Flattener<'_> {
    /// libmodsecurity's `getCurrentKey()`.
    fn take_key(&mut self) -> Vec<u8> {
        if self.stack.is_empty() {
            return b"json".to_vec();
        }
        if self.current_key.is_empty() {
            if self.stack.last().is_some_and(|c| c.is_array) {
                return Vec::new();
            }
            return b"empty-key".to_vec();
        }
        std::mem::take(&mut self.current_key)
    }

    fn push_suffix(buf: &mut Vec<u8>, c: &Container) {
        buf.extend_from_slice(&c.name);
        if c.is_array {
            buf.extend_from_slice(b".array_");
            buf.extend_from_slice(c.counter.to_string().as_bytes());
        } else {
            buf.push(b'.');
        }
    }

    /// Returns false to cancel the parse.
    fn scalar(&mut self, value: Vec<u8>) -> bool {
        if self.out.len() >= self.max_args {
            self.args_exceeded = true;
            return false;
        }
        let name = match self.stack.last() {
            None => self.take_key(),
            Some(top) => {
                let mut name = Vec::with_capacity(self.path.len() + top.name.len() + 16);
                name.extend_from_slice(&self.path);
                Self::push_suffix(&mut name, top);
                if top.is_array {
                    if let Some(t) = self.stack.last_mut() {
                        t.counter += 1;
                    }
                } else {
                    let k = self.take_key();
                    name.extend_from_slice(&k);
                }
                name
            }
        };
        if name.len() > self.name_budget {
            self.args_exceeded = true;
            return false;
        }
        self.name_budget -= name.len();
        self.out.push((name, value));
        true
    }

    fn open(&mut self, is_array: bool) -> bool {
        let name = self.take_key();
        if let Some(top) = self.stack.last() {
            let mut seg = Vec::new();
            Self::push_suffix(&mut seg, top);
            if seg.len() > self.name_budget {
                self.args_exceeded = true;
                return false;
            }
            self.path.extend_from_slice(&seg);
        }
        self.stack.push(Container {
            is_array,
            name,
            seg_start: self.path.len(),
            counter: 0,
        });
        if self.stack.len() > self.max_depth {
            self.depth_exceeded = true;
            return false;
        }
        true
    }

    fn close(&mut self) {
        self.stack.pop();
        if let Some(top) = self.stack.last_mut() {
            self.path.truncate(top.seg_start);
            if top.is_array {
                top.counter += 1;
            }
        } else {
            self.path.clear();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value is required (document start, after `:` or after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ValueOrClose,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object.
    Key,
    Colon,
    CommaOrClose,
    Done,
}

/// Runs the JSON processor; `partial`: `body` is a prefix of the real body.
pub(crate) fn parse(body: &[u8], limits: &BodyLimits, out: &mut ParsedBody, partial: bool) {
    let budget = body
        .len()
        .saturating_mul(NAME_BUDGET_FACTOR)
        .max(NAME_BUDGET_MIN);
    let mut f = Flattener {
        stack: Vec::new(),
        path: Vec::new(),
        current_key: Vec::new(),
        out: &mut out.args,
        max_args: limits.max_args,
        max_depth: limits.max_json_depth,
        name_budget: budget,
        args_exceeded: false,
        depth_exceeded: false,
    };
    let res = match run(body, &mut f, partial) {
        // A prefix ends where it ends.
        Err(EOF) if partial => Ok(()),
        r => r,
    };
    let (args_exceeded, depth_exceeded) = (f.args_exceeded, f.depth_exceeded);
    out.args_exceeded |= args_exceeded;
    if let Err(msg) = res {
        if body.is_empty() {
            return;
        }
        let mut m = String::from("JSON parsing error: ");
        m.push_str(msg);
        if depth_exceeded {
            m.push_str(". Parsing depth limit exceeded");
        }
        out.error = Some(m);
    }
}

const CANCELLED: &str = "parse error: client cancelled parse";
const EOF: &str = "parse error: premature EOF";

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn run(s: &[u8], f: &mut Flattener, partial: bool) -> Result<(), &'static str> {
    let mut i = 0usize;
    let mut state = State::Value;
    loop {
        while i < s.len() && is_ws(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return if state == State::Done {
                Ok(())
            } else {
                Err(EOF)
            };
        }
        let c = s[i];
        match state {
            State::Done => return Err("parse error: trailing garbage"),
            State::Colon => {
                if c != b':' {
                    return Err("parse error: object key and value must be separated by a colon (':')");
                }
                i += 1;
                state = State::Value;
            }
            State::KeyOrClose | State::Key => {
                if c == b'}' && state == State::KeyOrClose {
                    i += 1;
                    f.close();
                    state = after_value(f);
                } else if c == b'"' {
                    let mut k = Vec::new();
                    i = lex_string(s, i, &mut k)?;
                    f.current_key = k;
                    state = State::Colon;
                } else {
                    return Err(if c == b'/' {
                        "lexical error: probable comment found in input text, comments are not enabled."
                    } else {
                        "parse error: invalid object key (must be a string)"
                    });
                }
            }
            State::CommaOrClose => {
                let top_is_array = f.stack.last().is_some_and(|c| c.is_array);
                match c {
                    b',' => {
                        i += 1;
                        state = if top_is_array { State::Value } else { State::Key };
                    }
                    b']' if top_is_array => {
                        i += 1;
                        f.close();
                        state = after_value(f);
                    }
                    b'}' if !top_is_array => {
                        i += 1;
                        f.close();
                        state = after_value(f);
                    }
                    _ => {
                        return Err(if top_is_array {
                            "parse error: after array element, I expect ',' or ']'"
                        } else {
                            "parse error: after key and value, inside map, I expect ',' or '}'"
                        })
                    }
                }
            }
            State::Value | State::ValueOrClose => match c {
                b']' if state == State::ValueOrClose => {
                    i += 1;
                    f.close();
                    state = after_value(f);
                }
                b'{' => {
                    i += 1;
                    if !f.open(false) {
                        return Err(CANCELLED);
                    }
                    state = State::KeyOrClose;
                }
                b'[' => {
                    i += 1;
                    if !f.open(true) {
                        return Err(CANCELLED);
                    }
                    state = State::ValueOrClose;
                }
                b'"' => {
                    let mut v = Vec::new();
                    match lex_string(s, i, &mut v) {
                        Ok(ni) => i = ni,
                        Err(EOF) if partial => {
                            // The value the prefix ends in, as far as it goes.
                            f.scalar(v);
                            return Err(EOF);
                        }
                        Err(e) => return Err(e),
                    }
                    if !f.scalar(v) {
                        return Err(CANCELLED);
                    }
                    state = after_value(f);
                }
                b'-' | b'0'..=b'9' => {
                    let ni = lex_number(s, i)?;
                    if !f.scalar(s[i..ni].to_vec()) {
                        return Err(CANCELLED);
                    }
                    i = ni;
                    state = after_value(f);
                }
                b't' | b'f' | b'n' => {
                    let (lit, val): (&[u8], &[u8]) = match c {
                        b't' => (b"true", b"true"),
                        b'f' => (b"false", b"false"),
                        _ => (b"null", b""),
                    };
                    let avail = &s[i..s.len().min(i + lit.len())];
                    if avail.len() < lit.len() {
                        return Err(if lit.starts_with(avail) { EOF } else { "lexical error: invalid string in json text." });
                    }
                    if avail != lit {
                        return Err("lexical error: invalid string in json text.");
                    }
                    i += lit.len();
                    if !f.scalar(val.to_vec()) {
                        return Err(CANCELLED);
                    }
                    state = after_value(f);
                }
                b'/' => return Err("lexical error: probable comment found in input text, comments are not enabled."),
                b',' | b':' | b'}' | b']' => return Err("parse error: unallowed token at this point in JSON text"),
                _ => return Err("lexical error: invalid char in json text."),
            },
        }
    }
}

fn after_value(f: &Flattener) -> State {
    if f.stack.is_empty() {
        State::Done
    } else {
        State::CommaOrClose
    }
}

fn lex_number(s: &[u8], mut i: usize) -> Result<usize, &'static str> {
    if s[i] == b'-' {
        i += 1;
        match s.get(i) {
            None => return Err(EOF),
            Some(c) if c.is_ascii_digit() => {}
            Some(_) => {
                return Err(
                    "lexical error: malformed number, a digit is required after the minus sign.",
                )
            }
        }
    }
    if s[i] == b'0' {
        i += 1;
    } else {
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        if i >= s.len() {
            return Err(EOF);
        }
        if !s[i].is_ascii_digit() {
            return Err(
                "lexical error: malformed number, a digit is required after the decimal point.",
            );
        }
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        i += 1;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            i += 1;
        }
        if i >= s.len() {
            return Err(EOF);
        }
        if !s[i].is_ascii_digit() {
            return Err("lexical error: malformed number, a digit is required after the exponent.");
        }
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
    }
    Ok(i)
}

fn hex4(s: &[u8], i: usize) -> Option<u32> {
    let h = s.get(i..i + 4)?;
    let mut v = 0u32;
    for &c in h {
        v = (v << 4) | (c as char).to_digit(16)?;
    }
    Some(v)
}

/// yajl's `Utf32toUtf8` (including its quirks: U+FFFF takes the 4-byte
/// branch, anything above 0x1FFFFF becomes `?`).
fn push_utf32(out: &mut Vec<u8>, cp: u32) {
    if cp < 0x80 {
        out.push(cp as u8);
    } else if cp < 0x800 {
        out.push(0xC0 | (cp >> 6) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    } else if cp < 0xFFFF {
        out.push(0xE0 | (cp >> 12) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    } else if cp < 0x1F_FFFF {
        out.push(0xF0 | (cp >> 18) as u8);
        out.push(0x80 | ((cp >> 12) & 0x3F) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    } else {
        out.push(b'?');
    }
}

/// Lexes and decodes the string starting at the `"` at `s[start]` into
/// `out`; returns the index after the closing quote. On an error, `out`
/// holds what was decoded before it.
fn lex_string(s: &[u8], start: usize, out: &mut Vec<u8>) -> Result<usize, &'static str> {
    let mut i = start + 1;
    loop {
        // Copy a run of plain bytes.
        let run_start = i;
        while i < s.len() && s[i] != b'"' && s[i] != b'\\' && s[i] >= 0x20 && s[i] < 0x80 {
            i += 1;
        }
        out.extend_from_slice(&s[run_start..i]);
        let Some(&c) = s.get(i) else {
            return Err(EOF);
        };
        match c {
            b'"' => return Ok(i + 1),
            b'\\' => {
                let Some(&e) = s.get(i + 1) else {
                    return Err(EOF);
                };
                match e {
                    b'"' | b'\\' | b'/' => out.push(e),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0C),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let Some(mut cp) = hex4(s, i + 2) else {
                            return Err(if s.len() < i + 6 && s[i + 2..].iter().all(|c| c.is_ascii_hexdigit()) {
                                EOF
                            } else {
                                "lexical error: invalid (non-hex) character occurs after '\\u' inside string."
                            });
                        };
                        i += 6;
                        if cp & 0xFC00 == 0xD800 {
                            if s.get(i) == Some(&b'\\') && s.get(i + 1) == Some(&b'u') {
                                let Some(sur) = hex4(s, i + 2) else {
                                    return Err(if s.len() < i + 6 {
                                        EOF
                                    } else {
                                        "lexical error: invalid (non-hex) character occurs after '\\u' inside string."
                                    });
                                };
                                cp = ((cp & 0x3F) << 10) | ((((cp >> 6) & 0xF) + 1) << 16) | (sur & 0x3FF);
                                i += 6;
                            } else {
                                out.push(b'?');
                                continue;
                            }
                        }
                        push_utf32(out, cp);
                        continue;
                    }
                    _ => return Err("lexical error: inside a string, '\\' occurs before a character which it may not."),
                }
                i += 2;
            }
            0x00..=0x1F => return Err("lexical error: invalid character inside string."),
            _ => {
                // Non-ASCII: yajl's structural UTF-8 check.
                let need = if c >> 5 == 0x6 {
                    1
                } else if c >> 4 == 0xE {
                    2
                } else if c >> 3 == 0x1E {
                    3
                } else {
                    return Err("lexical error: invalid bytes in UTF8 string.");
                };
                for k in 1..=need {
                    match s.get(i + k) {
                        None => return Err(EOF),
                        Some(b) if b >> 6 == 0x2 => {}
                        Some(_) => return Err("lexical error: invalid bytes in UTF8 string."),
                    }
                }
                out.extend_from_slice(&s[i..i + 1 + need]);
                i += 1 + need;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BodyLimits, ParsedBody};
    use super::*;

    fn run_json(s: &str) -> ParsedBody {
        run_bytes(s.as_bytes(), &BodyLimits::default())
    }

    fn run_bytes(s: &[u8], l: &BodyLimits) -> ParsedBody {
        let mut out = ParsedBody::default();
        parse(s, l, &mut out, false);
        out
    }

    fn args(p: &ParsedBody) -> Vec<(String, String)> {
        p.args
            .iter()
            .map(|(a, b)| {
                (
                    String::from_utf8_lossy(a).into_owned(),
                    String::from_utf8_lossy(b).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(x: &[(&str, &str)]) -> Vec<(String, String)> {
        x.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn naming_like_libmodsecurity_v3() {
        let p = run_json(r#"{"a":{"b":1},"c":"x","d":true,"e":false,"f":null,"g":-1.5e3}"#);
        assert!(p.error.is_none());
        assert_eq!(
            args(&p),
            pairs(&[
                ("json.a.b", "1"),
                ("json.c", "x"),
                ("json.d", "true"),
                ("json.e", "false"),
                ("json.f", ""),
                ("json.g", "-1.5e3")
            ])
        );
        let p = run_json(r#"{"a":[1,2,[3,{"k":4}],5],"b":[]}"#);
        assert_eq!(
            args(&p),
            pairs(&[
                ("json.a.array_0", "1"),
                ("json.a.array_1", "2"),
                ("json.a.array_2.array_0", "3"),
                ("json.a.array_2.array_1.k", "4"),
                ("json.a.array_3", "5"),
            ])
        );
        let p = run_json(r#"[{"b":1},{"b":2}]"#);
        assert_eq!(
            args(&p),
            pairs(&[("json.array_0.b", "1"), ("json.array_1.b", "2")])
        );
        let p = run_json(r#"[[1],[2]]"#);
        assert_eq!(
            args(&p),
            pairs(&[("json.array_0.array_0", "1"), ("json.array_1.array_0", "2")])
        );
        let p = run_json(r#""top""#);
        assert_eq!(args(&p), pairs(&[("json", "top")]));
        let p = run_json(r#"{"":1,"x":{"":{"y":2}}}"#);
        assert_eq!(
            args(&p),
            pairs(&[("json.empty-key", "1"), ("json.x.empty-key.y", "2")])
        );
        let p = run_json(r#"{"array":["php","test"]}"#);
        assert_eq!(
            args(&p),
            pairs(&[
                ("json.array.array_0", "php"),
                ("json.array.array_1", "test")
            ])
        );
        let p = run_json(r#"{"a":{},"b":[],"c":1}"#);
        assert_eq!(args(&p), pairs(&[("json.c", "1")]));
    }

    #[test]
    fn string_escapes() {
        let p = run_json(r#"{"k\"":"a\n\t\/\\\u0041\u00e9\u20ac\ud83d\ude00"}"#);
        assert_eq!(p.args[0].0, b"json.k\"".to_vec());
        assert_eq!(p.args[0].1, "a\n\t/\\Aé€😀".as_bytes().to_vec());
        let p = run_json(r#"["\ud800x","\udc00"]"#);
        assert!(p.error.is_none());
        assert_eq!(p.args[0].1, b"?x".to_vec());
        assert_eq!(p.args[1].1, vec![0xED, 0xB0, 0x80]);
        let p = run_json("[\"\u{e9}\"]");
        assert_eq!(p.args[0].1, "é".as_bytes().to_vec());
    }

    #[test]
    fn errors() {
        for bad in [
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "nul",
            "{a:1}",
            "[1]x",
            "[\"\\x\"]",
            "[\"a\nb\"]",
            "// c\n1",
            "[\"\\u12g4\"]",
            "   ",
            "[1}",
            "{\"a\":1]",
            "\"abc",
        ] {
            let p = run_json(bad);
            assert!(p.error.is_some(), "{bad:?} should fail");
            assert!(p
                .error
                .as_ref()
                .unwrap()
                .starts_with("JSON parsing error: "));
        }
        let p = run_bytes(b"[\"\xff\"]", &BodyLimits::default());
        assert!(p.error.as_ref().unwrap().contains("UTF8"));
        // Partial results are kept.
        let p = run_json(r#"{"a":"x","b":oops}"#);
        assert!(p.error.is_some());
        assert_eq!(args(&p), pairs(&[("json.a", "x")]));
        // Empty body: no error.
        let p = run_json("");
        assert!(p.error.is_none() && p.args.is_empty());
        for ok in [
            "0",
            "-0.0e+1",
            " [ ] ",
            "{}",
            "1E5",
            "\"\"",
            "[null,true,false]",
        ] {
            assert!(run_json(ok).error.is_none(), "{ok:?} should pass");
        }
    }

    #[test]
    fn depth_limit() {
        let l = BodyLimits {
            max_json_depth: 3,
            ..BodyLimits::default()
        };
        let p = run_bytes(br#"{"a":{"b":{"c":1}}}"#, &l);
        assert!(p.error.is_none());
        let p = run_bytes(br#"{"a":{"b":{"c":{"d":1}}}}"#, &l);
        let e = p.error.unwrap();
        assert!(e.contains("depth limit"), "{e}");
        // Deep nesting with the default limit never recurses.
        let deep = "[".repeat(200_000);
        let p = run_json(&deep);
        assert!(p.error.unwrap().contains("depth"));
    }

    #[test]
    fn args_limit_cancels() {
        let l = BodyLimits {
            max_args: 2,
            ..BodyLimits::default()
        };
        let p = run_bytes(b"[1,2,3]", &l);
        assert!(p.args_exceeded);
        assert_eq!(p.args.len(), 2);
        assert!(p.error.unwrap().contains("cancelled"));
    }

    #[test]
    fn name_budget_bounds_memory() {
        // A long key repeated as a prefix for many arguments.
        let key = "k".repeat(100_000);
        let mut s = format!("{{\"{key}\":{{\"{key}\":[");
        for _ in 0..500 {
            s.push_str("1,");
        }
        s.push_str("1]}}");
        let l = BodyLimits {
            max_args: usize::MAX,
            ..BodyLimits::default()
        };
        let p = run_bytes(s.as_bytes(), &l);
        let total: usize = p.args.iter().map(|(n, _)| n.len()).sum();
        assert!(total <= (s.len() * NAME_BUDGET_FACTOR).max(NAME_BUDGET_MIN));
        assert!(p.args_exceeded);
    }
}
