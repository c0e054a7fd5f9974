//! A small SQL tokenizer: words, numbers, strings, variables, operators,
//! punctuation and comments, across MySQL, PostgreSQL, MSSQL, Oracle and
//! SQLite spellings. Never fails: any byte becomes some token.

/// Most tokens of one value that are parsed.
pub(super) const MAX_TOKENS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A keyword or an identifier (also `` `quoted` ``).
    Word,
    /// A quoted identifier (`` `x` ``, `[x]`): never a keyword.
    Quoted,
    Num,
    /// A string literal; `closed` is false when the value ended inside it.
    Str {
        closed: bool,
        empty: bool,
    },
    /// `@x` or `@@x`.
    Var,
    /// An operator (`=`, `<>`, `||`, `+`, ...).
    Op,
    LParen,
    RParen,
    Comma,
    Semi,
    Dot,
    Star,
    /// `--` or `#` to the end of the line.
    LineComment,
    /// Anything else.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The tokens of `s`, at most [`MAX_TOKENS`]; `/* */` comments are
/// whitespace and MySQL's `/*! ... */` is code.
pub(super) fn tokens(s: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = s.len();
    while i < n && out.len() < MAX_TOKENS {
        let c = s[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0 | 0xa0 => {
                i += 1;
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                if s.get(i + 2) == Some(&b'!') {
                    // MySQL executable comment: its content is code.
                    i += 3;
                    while i < n && s[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = match memchr::memmem::find(&s[i + 2..], b"*/") {
                        Some(p) => i + 2 + p + 2,
                        None => n,
                    };
                }
                continue;
            }
            b'*' if s.get(i + 1) == Some(&b'/') => {
                i += 2;
                continue;
            }
            b'-' if s.get(i + 1) == Some(&b'-') => {
                i = line_end(s, i);
                Kind::LineComment
            }
            b'#' => {
                i = line_end(s, i);
                Kind::LineComment
            }
            b'\'' | b'"' => {
                let (end, closed) = string_end(s, i, c);
                i = end;
                Kind::Str {
                    closed,
                    empty: end - start <= if closed { 2 } else { 1 },
                }
            }
            b'`' => {
                i = match memchr::memchr(b'`', &s[i + 1..]) {
                    Some(p) => i + 1 + p + 1,
                    None => n,
                };
                Kind::Quoted
            }
            b'@' => {
                i += 1;
                if s.get(i) == Some(&b'@') {
                    i += 1;
                }
                while i < n && is_word(s[i]) {
                    i += 1;
                }
                Kind::Var
            }
            b'0'..=b'9' => {
                i = number_end(s, i);
                Kind::Num
            }
            b'.' if s.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(s, i);
                Kind::Num
            }
            b'(' => {
                i += 1;
                Kind::LParen
            }
            b')' => {
                i += 1;
                Kind::RParen
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b';' => {
                i += 1;
                Kind::Semi
            }
            b'.' => {
                i += 1;
                Kind::Dot
            }
            b'*' => {
                i += 1;
                Kind::Star
            }
            b'=' | b'<' | b'>' | b'!' | b'|' | b'&' | b'+' | b'-' | b'/' | b'%' | b'^' | b'~'
            | b':' => {
                i += 1;
                while i < n && i - start < 3 && b"=<>|&:".contains(&s[i]) {
                    i += 1;
                }
                Kind::Op
            }
            c if is_word(c) => {
                while i < n && is_word(s[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        out.push(Tok {
            kind,
            start,
            end: i,
        });
    }
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn line_end(s: &[u8], i: usize) -> usize {
    match memchr::memchr(b'\n', &s[i..]) {
        Some(p) => i + p,
        None => s.len(),
    }
}

/// The end of the string starting at `i` (quote `q`; a doubled quote or a
/// backslash escapes), and whether it was closed.
fn string_end(s: &[u8], i: usize, q: u8) -> (usize, bool) {
    let mut j = i + 1;
    while j < s.len() {
        if s[j] == b'\\' {
            j += 2;
            continue;
        }
        if s[j] == q {
            if s.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return (j + 1, true);
        }
        j += 1;
    }
    (s.len(), false)
}

fn number_end(s: &[u8], mut i: usize) -> usize {
    if s[i] == b'0' && matches!(s.get(i + 1), Some(b'x' | b'X' | b'b' | b'B')) {
        i += 2;
        while i < s.len() && s[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
        i += 1;
    }
    if i < s.len() && matches!(s[i], b'e' | b'E') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}
