//! SQL injection detection: a port of libinjection's `libinjection_sqli`.
//!
//! The input is tokenized as SQL (up to four times: as-is and as if it were
//! preceded by a `'` or a `"`, in ANSI and MySQL comment flavours), adjacent
//! tokens are folded, and the resulting token-type string (the fingerprint,
//! at most 5 chars) is looked up in libinjection's table of known SQL
//! injection fingerprints, followed by a few false-positive filters.
//!
//! The port follows the C code decision for decision, including its quirks
//! (NUL bytes handling, signed `char` comparisons, the token value cap of 31
//! bytes), since the goal is to give the same answer as libinjection 3.x on
//! every input. It does not allocate and has no `unsafe`.
//!
//! Derived from libinjection (Copyright (c) 2012-2016, Nick Galbreath;
//! Copyright 2021 LibInjection), BSD-3-Clause; see `sqli_data.rs` for the
//! license text.

use super::sqli_data::{FINGERPRINTS, KEYWORDS, MAX_KEYWORD_LEN};
use super::Fingerprint;

/// Size of a token value buffer; values are cut to `TOKEN_SIZE - 1` bytes.
const TOKEN_SIZE: usize = 32;
/// Longest fingerprint.
const MAX_TOKENS: usize = 5;

const FLAG_QUOTE_NONE: u8 = 1;
const FLAG_QUOTE_SINGLE: u8 = 2;
const FLAG_QUOTE_DOUBLE: u8 = 4;
const FLAG_SQL_ANSI: u8 = 8;
const FLAG_SQL_MYSQL: u8 = 16;

// Token types (the fingerprint alphabet).
const TYPE_NONE: u8 = 0;
const TYPE_KEYWORD: u8 = b'k';
const TYPE_UNION: u8 = b'U';
const TYPE_GROUP: u8 = b'B';
const TYPE_EXPRESSION: u8 = b'E';
const TYPE_SQLTYPE: u8 = b't';
const TYPE_FUNCTION: u8 = b'f';
const TYPE_BAREWORD: u8 = b'n';
const TYPE_NUMBER: u8 = b'1';
const TYPE_VARIABLE: u8 = b'v';
const TYPE_STRING: u8 = b's';
const TYPE_OPERATOR: u8 = b'o';
const TYPE_LOGIC_OPERATOR: u8 = b'&';
const TYPE_COMMENT: u8 = b'c';
const TYPE_COLLATE: u8 = b'A';
const TYPE_LEFTPARENS: u8 = b'(';
const TYPE_RIGHTPARENS: u8 = b')';
const TYPE_LEFTBRACE: u8 = b'{';
const TYPE_RIGHTBRACE: u8 = b'}';
const TYPE_DOT: u8 = b'.';
const TYPE_COMMA: u8 = b',';
const TYPE_COLON: u8 = b':';
const TYPE_SEMICOLON: u8 = b';';
const TYPE_TSQL: u8 = b'T';
const TYPE_UNKNOWN: u8 = b'?';
const TYPE_EVIL: u8 = b'X';
const TYPE_BACKSLASH: u8 = b'\\';

const CHAR_SINGLE: u8 = b'\'';
const CHAR_DOUBLE: u8 = b'"';
const CHAR_TICK: u8 = b'`';

/// Bytes that end a word (C: `strlencspn` set, NUL included).
const WORD_DELIMS: &[u8] = b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r\"\xa0\x00";
/// Bytes that end a `@variable` name (NUL included).
const VAR_DELIMS: &[u8] = b" <>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r'`\"\x00";
// Accept sets of C's `strlenspn`, which also accepts NUL.
const BINARY_DIGITS: &[u8] = b"01\x00";
const HEX_DIGITS: &[u8] = b"0123456789ABCDEFabcdef\x00";
const MONEY_CHARS: &[u8] = b"0123456789.,\x00";
const LETTERS: &[u8] = b"abcdefghjiklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\x00";

/// Which parser handles a token starting with a given byte.
#[derive(Clone, Copy)]
enum Lex {
    White,
    Operator1,
    Operator2,
    Char,
    Other,
    String,
    Hash,
    Money,
    Dash,
    Slash,
    Number,
    Var,
    Word,
    BString,
    EString,
    NqString,
    QString,
    UString,
    XString,
    BWord,
    Backslash,
    Tick,
}

fn lex_class(ch: u8) -> Lex {
    match ch {
        0..=32 | 127 | 160 => Lex::White,
        b'!' | b'&' | b'*' | b':' | b'<' | b'=' | b'>' | b'|' => Lex::Operator2,
        b'"' | b'\'' => Lex::String,
        b'#' => Lex::Hash,
        b'$' => Lex::Money,
        b'%' | b'+' | b'^' | b'~' => Lex::Operator1,
        b'(' | b')' | b',' | b';' | b'{' | b'}' => Lex::Char,
        b'-' => Lex::Dash,
        b'.' | b'0'..=b'9' => Lex::Number,
        b'/' => Lex::Slash,
        b'?' | b']' => Lex::Other,
        b'@' => Lex::Var,
        b'B' | b'b' => Lex::BString,
        b'E' | b'e' => Lex::EString,
        b'N' | b'n' => Lex::NqString,
        b'Q' | b'q' => Lex::QString,
        b'U' | b'u' => Lex::UString,
        b'X' | b'x' => Lex::XString,
        b'[' => Lex::BWord,
        b'\\' => Lex::Backslash,
        b'`' => Lex::Tick,
        _ => Lex::Word,
    }
}

/// libinjection's `char_is_white` (NUL and Latin-1 NBSP included).
fn is_white(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | 0)
}

/// Length of the prefix of `s` made of bytes in `accept`.
fn span(s: &[u8], accept: &[u8]) -> usize {
    s.iter()
        .position(|b| !accept.contains(b))
        .unwrap_or(s.len())
}

/// Length of the prefix of `s` made of bytes not in `reject`.
fn cspan(s: &[u8], reject: &[u8]) -> usize {
    s.iter().position(|b| reject.contains(b)).unwrap_or(s.len())
}

/// Index of the first `c0` immediately followed by `c1`.
fn find2(s: &[u8], c0: u8, c1: u8) -> Option<usize> {
    s.windows(2).position(|w| w[0] == c0 && w[1] == c1)
}

/// Case-insensitive (ASCII letters) equality with an upper-case constant.
fn eq_upper(val: &[u8], upper: &[u8]) -> bool {
    val.eq_ignore_ascii_case(upper)
}

/// FNV-1a, usable in `const` context.
const fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h
}

/// Open-addressing hash index over a word table, built at compile time.
/// A slot holds `hash >> 16` in its high half and `index + 1` in its low
/// half (0: empty).
struct WordIndex<const N: usize> {
    slots: [u32; N],
}

impl<const N: usize> WordIndex<N> {
    const EMPTY: Self = {
        assert!(N.is_power_of_two() && N <= 0x1_0000);
        WordIndex { slots: [0; N] }
    };

    const fn insert(mut self, word: &[u8], i: usize) -> Self {
        assert!(i + 1 < N / 2, "table too full");
        let h = fnv1a(word);
        let mut slot = h as usize & (N - 1);
        while self.slots[slot] != 0 {
            slot = (slot + 1) & (N - 1);
        }
        self.slots[slot] = (h & 0xffff_0000) | (i as u32 + 1);
        self
    }

    /// Index of `key`, `word(i)` giving the table's entry `i`.
    fn find<'w>(&self, key: &[u8], word: impl Fn(usize) -> Option<&'w [u8]>) -> Option<usize> {
        let h = fnv1a(key);
        let mut slot = h as usize & (N - 1);
        loop {
            let v = self.slots[slot];
            if v == 0 {
                return None;
            }
            if v & 0xffff_0000 == h & 0xffff_0000 {
                let i = (v & 0xffff) as usize - 1;
                if word(i) == Some(key) {
                    return Some(i);
                }
            }
            slot = (slot + 1) & (N - 1);
        }
    }
}

static KEYWORD_INDEX: WordIndex<4096> = {
    let mut index = WordIndex::EMPTY;
    let mut i = 0;
    while i < KEYWORDS.len() {
        index = index.insert(KEYWORDS[i].0, i);
        i += 1;
    }
    index
};

static FINGERPRINT_INDEX: WordIndex<32768> = {
    let mut index = WordIndex::EMPTY;
    let mut i = 0;
    while i < FINGERPRINTS.len() {
        index = index.insert(FINGERPRINTS[i], i);
        i += 1;
    }
    index
};

/// Type of a SQL word or phrase, `TYPE_NONE` when unknown.
fn lookup_word(word: &[u8]) -> u8 {
    if word.is_empty() || word.len() > MAX_KEYWORD_LEN {
        return TYPE_NONE;
    }
    let mut buf = [0u8; MAX_KEYWORD_LEN];
    let key = &mut buf[..word.len()];
    key.copy_from_slice(word);
    key.make_ascii_uppercase();
    KEYWORD_INDEX
        .find(key, |i| KEYWORDS.get(i).map(|k| k.0))
        .map_or(TYPE_NONE, |i| KEYWORDS[i].1)
}

/// Is the fingerprint one of libinjection's known SQLi fingerprints?
fn is_blacklisted(fp: &[u8]) -> bool {
    if fp.is_empty() || fp.len() > MAX_TOKENS {
        return false;
    }
    let mut buf = [0u8; MAX_TOKENS];
    let key = &mut buf[..fp.len()];
    key.copy_from_slice(fp);
    key.make_ascii_uppercase();
    FINGERPRINT_INDEX
        .find(key, |i| FINGERPRINTS.get(i).copied())
        .is_some()
}

#[derive(Clone, Copy)]
struct Token {
    pos: usize,
    len: usize,
    ty: u8,
    str_open: u8,
    str_close: u8,
    /// NUL-terminated value, at most `TOKEN_SIZE - 1` bytes.
    val: [u8; TOKEN_SIZE],
}

const EMPTY_TOKEN: Token = Token {
    pos: 0,
    len: 0,
    ty: TYPE_NONE,
    str_open: 0,
    str_close: 0,
    val: [0; TOKEN_SIZE],
};

impl Token {
    fn clear(&mut self) {
        *self = EMPTY_TOKEN;
    }

    /// C `st_assign`: `value` holds at least `len` bytes.
    fn assign(&mut self, ty: u8, pos: usize, len: usize, value: &[u8]) {
        let last = len.min(TOKEN_SIZE - 1).min(value.len());
        self.ty = ty;
        self.pos = pos;
        self.len = last;
        self.val[..last].copy_from_slice(&value[..last]);
        self.val[last] = 0;
    }

    fn assign_char(&mut self, ty: u8, pos: usize, value: u8) {
        self.ty = ty;
        self.pos = pos;
        self.len = 1;
        self.val[0] = value;
        self.val[1] = 0;
    }

    fn value(&self) -> &[u8] {
        &self.val[..self.len]
    }

    /// The value as a C string (up to the first NUL).
    fn cstr(&self) -> &[u8] {
        let end = self.val.iter().position(|&b| b == 0).unwrap_or(TOKEN_SIZE);
        &self.val[..end]
    }

    fn is_arithmetic_op(&self) -> bool {
        self.ty == TYPE_OPERATOR
            && self.len == 1
            && matches!(self.val[0], b'*' | b'/' | b'-' | b'+' | b'%')
    }

    fn is_unary_op(&self) -> bool {
        if self.ty != TYPE_OPERATOR {
            return false;
        }
        match self.len {
            1 => matches!(self.val[0], b'+' | b'-' | b'!' | b'~'),
            2 => self.val[0] == b'!' && self.val[1] == b'!',
            3 => eq_upper(self.value(), b"NOT"),
            _ => false,
        }
    }
}

/// Tokenizer state (C: the parsing half of `libinjection_sqli_state`).
struct Lexer<'a> {
    s: &'a [u8],
    flags: u8,
    pos: usize,
    stats_comment_ddx: u32,
    stats_comment_hash: u32,
    stats_tokens: u32,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8], flags: u8) -> Self {
        Lexer {
            s,
            flags,
            pos: 0,
            stats_comment_ddx: 0,
            stats_comment_hash: 0,
            stats_tokens: 0,
        }
    }

    /// Reads the next token into `cur`; false at the end of input.
    fn tokenize(&mut self, cur: &mut Token) -> bool {
        let s = self.s;
        if s.is_empty() {
            return false;
        }
        cur.clear();

        // In quote context, pretend the input starts with a quote.
        if self.pos == 0 && self.flags & (FLAG_QUOTE_SINGLE | FLAG_QUOTE_DOUBLE) != 0 {
            let delim = if self.flags & FLAG_QUOTE_SINGLE != 0 {
                CHAR_SINGLE
            } else {
                CHAR_DOUBLE
            };
            self.pos = parse_string_core(s, 0, cur, delim, 0);
            self.stats_tokens += 1;
            return true;
        }

        while self.pos < s.len() {
            self.pos = match lex_class(s[self.pos]) {
                Lex::White => self.pos + 1,
                Lex::Operator1 => self.parse_operator1(cur),
                Lex::Operator2 => self.parse_operator2(cur),
                Lex::Char => {
                    let ch = s[self.pos];
                    cur.assign_char(ch, self.pos, ch);
                    self.pos + 1
                }
                Lex::Other => {
                    cur.assign_char(TYPE_UNKNOWN, self.pos, s[self.pos]);
                    self.pos + 1
                }
                Lex::String => self.parse_string(cur),
                Lex::Hash => self.parse_hash(cur),
                Lex::Money => self.parse_money(cur),
                Lex::Dash => self.parse_dash(cur),
                Lex::Slash => self.parse_slash(cur),
                Lex::Number => self.parse_number(cur),
                Lex::Var => self.parse_var(cur),
                Lex::Word => self.parse_word(cur),
                Lex::BString => self.parse_bxstring(cur, BINARY_DIGITS),
                Lex::EString => self.parse_estring(cur),
                Lex::NqString => self.parse_nqstring(cur),
                Lex::QString => self.parse_qstring_core(cur, 0),
                Lex::UString => self.parse_ustring(cur),
                Lex::XString => self.parse_bxstring(cur, HEX_DIGITS),
                Lex::BWord => self.parse_bword(cur),
                Lex::Backslash => self.parse_backslash(cur),
                Lex::Tick => self.parse_tick(cur),
            };
            if cur.ty != TYPE_NONE {
                self.stats_tokens += 1;
                return true;
            }
        }
        false
    }

    fn parse_operator1(&self, cur: &mut Token) -> usize {
        cur.assign_char(TYPE_OPERATOR, self.pos, self.s[self.pos]);
        self.pos + 1
    }

    fn parse_eol_comment(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b'\n', &s[pos..]) {
            None => {
                cur.assign(TYPE_COMMENT, pos, s.len() - pos, &s[pos..]);
                s.len()
            }
            Some(i) => {
                cur.assign(TYPE_COMMENT, pos, i, &s[pos..]);
                pos + i + 1
            }
        }
    }

    /// `#` is an operator in ANSI mode and an end-of-line comment in MySQL.
    fn parse_hash(&mut self, cur: &mut Token) -> usize {
        self.stats_comment_hash += 1;
        if self.flags & FLAG_SQL_MYSQL != 0 {
            self.stats_comment_hash += 1;
            self.parse_eol_comment(cur)
        } else {
            cur.assign_char(TYPE_OPERATOR, self.pos, b'#');
            self.pos + 1
        }
    }

    fn parse_dash(&mut self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        // "--" followed by whitespace or the end is always a comment.
        if (pos + 2 < slen && s[pos + 1] == b'-' && is_white(s[pos + 2]))
            || (pos + 2 == slen && s[pos + 1] == b'-')
        {
            self.parse_eol_comment(cur)
        } else if pos + 1 < slen && s[pos + 1] == b'-' && self.flags & FLAG_SQL_ANSI != 0 {
            self.stats_comment_ddx += 1;
            self.parse_eol_comment(cur)
        } else {
            cur.assign_char(TYPE_OPERATOR, pos, b'-');
            pos + 1
        }
    }

    fn parse_slash(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 == slen || s[pos + 1] != b'*' {
            return self.parse_operator1(cur);
        }
        // Skip the opening "/*" and look for "*/".
        let end = find2(&s[pos + 2..], b'*', b'/').map(|i| pos + 2 + i);
        let clen = match end {
            None => slen - pos,
            Some(e) => e + 2 - pos,
        };
        // A nested "/*" (PostgreSQL) or a MySQL "/*!" comment is evil.
        let nested = end.is_some_and(|e| find2(&s[pos + 2..e + 1], b'/', b'*').is_some());
        let mysql = pos + 2 < slen && s[pos + 2] == b'!';
        let ty = if nested || mysql {
            TYPE_EVIL
        } else {
            TYPE_COMMENT
        };
        cur.assign(ty, pos, clen, &s[pos..]);
        pos + clen
    }

    fn parse_backslash(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        // MySQL alias for NULL: "\N" (capital N only).
        if pos + 1 < s.len() && s[pos + 1] == b'N' {
            cur.assign(TYPE_NUMBER, pos, 2, &s[pos..]);
            pos + 2
        } else {
            cur.assign_char(TYPE_BACKSLASH, pos, s[pos]);
            pos + 1
        }
    }

    fn parse_operator2(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 1 >= s.len() {
            return self.parse_operator1(cur);
        }
        if pos + 2 < s.len() && &s[pos..pos + 3] == b"<=>" {
            cur.assign(TYPE_OPERATOR, pos, 3, &s[pos..]);
            return pos + 3;
        }
        let ch = lookup_word(&s[pos..pos + 2]);
        if ch != TYPE_NONE {
            cur.assign(ch, pos, 2, &s[pos..]);
            return pos + 2;
        }
        if s[pos] == b':' {
            cur.assign(TYPE_COLON, pos, 1, &s[pos..]);
            pos + 1
        } else {
            self.parse_operator1(cur)
        }
    }

    fn parse_string(&self, cur: &mut Token) -> usize {
        parse_string_core(self.s, self.pos, cur, self.s[self.pos], 1)
    }

    /// `E'...'` (PostgreSQL) and `N'...'` (MySQL) strings.
    fn parse_estring(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 >= s.len() || s[pos + 1] != CHAR_SINGLE {
            return self.parse_word(cur);
        }
        parse_string_core(s, pos, cur, CHAR_SINGLE, 2)
    }

    /// `U&'...'` strings.
    fn parse_ustring(&mut self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 < s.len() && s[pos + 1] == b'&' && s[pos + 2] == b'\'' {
            self.pos += 2;
            let next = self.parse_string(cur);
            cur.str_open = b'u';
            if cur.str_close == b'\'' {
                cur.str_close = b'u';
            }
            next
        } else {
            self.parse_word(cur)
        }
    }

    /// Oracle's `q'[...]'` strings (`offset` 1 for `nq'...'`).
    fn parse_qstring_core(&self, cur: &mut Token, offset: usize) -> usize {
        let s = self.s;
        let slen = s.len();
        let pos = self.pos + offset;
        if pos >= slen
            || (s[pos] != b'q' && s[pos] != b'Q')
            || pos + 2 >= slen
            || s[pos + 1] != b'\''
        {
            return self.parse_word(cur);
        }
        // C compares a signed char: bytes >= 0x80 are "< 33" too.
        let mut ch = s[pos + 2];
        if !(33..128).contains(&ch) {
            return self.parse_word(cur);
        }
        ch = match ch {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c => c,
        };
        let start = pos + 3;
        match find2(&s[start..], ch, b'\'') {
            None => {
                cur.assign(TYPE_STRING, start, slen - start, &s[start..]);
                cur.str_open = b'q';
                cur.str_close = 0;
                slen
            }
            Some(i) => {
                cur.assign(TYPE_STRING, start, i, &s[start..]);
                cur.str_open = b'q';
                cur.str_close = b'q';
                start + i + 2
            }
        }
    }

    fn parse_nqstring(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        if pos + 2 < s.len() && s[pos + 1] == CHAR_SINGLE {
            return self.parse_estring(cur);
        }
        self.parse_qstring_core(cur, 1)
    }

    /// Binary `b'0101'` and hex `x'4F'` literals.
    fn parse_bxstring(&self, cur: &mut Token, digits: &[u8]) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 2 >= slen || s[pos + 1] != b'\'' {
            return self.parse_word(cur);
        }
        let wlen = span(&s[pos + 2..], digits);
        if pos + 2 + wlen >= slen || s[pos + 2 + wlen] != b'\'' {
            return self.parse_word(cur);
        }
        cur.assign(TYPE_NUMBER, pos, wlen + 3, &s[pos..]);
        pos + 2 + wlen + 1
    }

    /// MS SQL Server `[bracketed words]`.
    fn parse_bword(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        match memchr::memchr(b']', &s[pos..]) {
            None => {
                cur.assign(TYPE_BAREWORD, pos, s.len() - pos, &s[pos..]);
                s.len()
            }
            Some(i) => {
                cur.assign(TYPE_BAREWORD, pos, i + 1, &s[pos..]);
                pos + i + 1
            }
        }
    }

    fn parse_word(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        let wlen = cspan(&s[pos..], WORD_DELIMS);
        cur.assign(TYPE_BAREWORD, pos, wlen, &s[pos..]);

        // "SELECT.1" or "SELECT`col`": a keyword before a '.' or '`'.
        for i in 0..cur.len {
            if matches!(cur.val[i], b'.' | b'`') {
                let ch = lookup_word(&cur.val[..i]);
                if ch != TYPE_NONE && ch != TYPE_BAREWORD {
                    cur.clear();
                    cur.assign(ch, pos, i, &s[pos..]);
                    return pos + i;
                }
            }
        }

        if wlen < TOKEN_SIZE {
            let ch = lookup_word(&cur.val[..wlen]);
            cur.ty = if ch == TYPE_NONE { TYPE_BAREWORD } else { ch };
        }
        pos + wlen
    }

    /// MySQL backticks: a string that acts like a bare word.
    fn parse_tick(&self, cur: &mut Token) -> usize {
        let next = parse_string_core(self.s, self.pos, cur, CHAR_TICK, 1);
        cur.ty = if lookup_word(cur.value()) == TYPE_FUNCTION {
            TYPE_FUNCTION
        } else {
            TYPE_BAREWORD
        };
        next
    }

    fn parse_var(&mut self, cur: &mut Token) -> usize {
        let s = self.s;
        let slen = s.len();
        let mut pos = self.pos + 1;
        if pos < slen && s[pos] == b'@' {
            pos += 1;
        }
        // MySQL allows @@`version` and @'quoted' names.
        if pos < slen {
            if s[pos] == CHAR_TICK {
                self.pos = pos;
                let next = self.parse_tick(cur);
                cur.ty = TYPE_VARIABLE;
                return next;
            } else if s[pos] == CHAR_SINGLE || s[pos] == CHAR_DOUBLE {
                self.pos = pos;
                let next = self.parse_string(cur);
                cur.ty = TYPE_VARIABLE;
                return next;
            }
        }
        let xlen = cspan(&s[pos..], VAR_DELIMS);
        cur.assign(TYPE_VARIABLE, pos, xlen, &s[pos..]);
        pos + xlen
    }

    /// `$1,000.00`, `$$ strings $$` and `$tag$ strings $tag$` (PostgreSQL).
    fn parse_money(&self, cur: &mut Token) -> usize {
        let (s, pos) = (self.s, self.pos);
        let slen = s.len();
        if pos + 1 == slen {
            cur.assign_char(TYPE_BAREWORD, pos, b'$');
            return slen;
        }
        let xlen = span(&s[pos + 1..], MONEY_CHARS);
        if xlen == 0 {
            if s[pos + 1] == b'$' {
                let start = pos + 2;
                return match find2(&s[start..], b'$', b'$') {
                    None => {
                        cur.assign(TYPE_STRING, start, slen - start, &s[start..]);
                        cur.str_open = b'$';
                        cur.str_close = 0;
                        slen
                    }
                    Some(i) => {
                        cur.assign(TYPE_STRING, start, i, &s[start..]);
                        cur.str_open = b'$';
                        cur.str_close = b'$';
                        start + i + 2
                    }
                };
            }
            let xlen = span(&s[pos + 1..], LETTERS);
            if xlen == 0 {
                cur.assign_char(TYPE_BAREWORD, pos, b'$');
                return pos + 1;
            }
            if pos + xlen + 1 == slen || s[pos + xlen + 1] != b'$' {
                cur.assign_char(TYPE_BAREWORD, pos, b'$');
                return pos + 1;
            }
            // "$tag$": find the closing "$tag$".
            let tag = &s[pos..pos + xlen + 2];
            let start = pos + xlen + 2;
            match memchr::memmem::find(&s[start..], tag) {
                None => {
                    cur.assign(TYPE_STRING, start, slen - start, &s[start..]);
                    cur.str_open = b'$';
                    cur.str_close = 0;
                    slen
                }
                Some(i) => {
                    cur.assign(TYPE_STRING, start, i, &s[start..]);
                    cur.str_open = b'$';
                    cur.str_close = b'$';
                    start + i + xlen + 2
                }
            }
        } else if xlen == 1 && s[pos + 1] == b'.' {
            // "$." is a word.
            self.parse_word(cur)
        } else {
            cur.assign(TYPE_NUMBER, pos, 1 + xlen, &s[pos..]);
            pos + 1 + xlen
        }
    }

    fn parse_number(&self, cur: &mut Token) -> usize {
        let s = self.s;
        let slen = s.len();
        let mut pos = self.pos;

        if s[pos] == b'0' && pos + 1 < slen {
            let digits: Option<&[u8]> = match s[pos + 1] {
                b'X' | b'x' => Some(HEX_DIGITS),
                b'B' | b'b' => Some(BINARY_DIGITS),
                _ => None,
            };
            if let Some(digits) = digits {
                let xlen = span(&s[pos + 2..], digits);
                if xlen == 0 {
                    cur.assign(TYPE_BAREWORD, pos, 2, &s[pos..]);
                    return pos + 2;
                }
                cur.assign(TYPE_NUMBER, pos, 2 + xlen, &s[pos..]);
                return pos + 2 + xlen;
            }
        }

        let start = pos;
        while pos < slen && s[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos < slen && s[pos] == b'.' {
            pos += 1;
            while pos < slen && s[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos - start == 1 {
                // Only a '.'.
                cur.assign_char(TYPE_DOT, start, b'.');
                return pos;
            }
        }

        let mut have_e = false;
        let mut have_exp = false;
        if pos < slen && (s[pos] == b'E' || s[pos] == b'e') {
            have_e = true;
            pos += 1;
            if pos < slen && (s[pos] == b'+' || s[pos] == b'-') {
                pos += 1;
            }
            while pos < slen && s[pos].is_ascii_digit() {
                have_exp = true;
                pos += 1;
            }
        }

        // Oracle's float/double suffixes: "1.2f", "1d".
        if pos < slen
            && matches!(s[pos], b'd' | b'D' | b'f' | b'F')
            && (pos + 1 == slen || is_white(s[pos + 1]) || matches!(s[pos + 1], b';' | b'u' | b'U'))
        {
            pos += 1;
        }

        // "1234.e", "10.10E": a word, not a number.
        let ty = if have_e && !have_exp {
            TYPE_BAREWORD
        } else {
            TYPE_NUMBER
        };
        cur.assign(ty, start, pos - start, &s[start..]);
        pos
    }
}

/// Parses a string delimited by `delim` that starts at `pos + offset`
/// (`offset` 0: the opening quote is only assumed); returns the next position.
fn parse_string_core(s: &[u8], pos: usize, cur: &mut Token, delim: u8, offset: usize) -> usize {
    let start = pos + offset;
    let slen = s.len();
    cur.str_open = if offset > 0 { delim } else { 0 };
    let mut q = memchr::memchr(delim, &s[start..]).map(|i| start + i);
    loop {
        let Some(qp) = q else {
            // No closing quote.
            cur.assign(TYPE_STRING, start, slen - start, &s[start..]);
            cur.str_close = 0;
            return slen;
        };
        let backslashes = s[start..qp]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            q = memchr::memchr(delim, &s[qp + 1..]).map(|i| qp + 1 + i);
        } else if qp + 1 < slen && s[qp + 1] == s[qp] {
            // Doubled quote: 'foo''bar'.
            q = memchr::memchr(delim, &s[qp + 2..]).map(|i| qp + 2 + i);
        } else {
            cur.assign(TYPE_STRING, start, qp - start, &s[start..]);
            cur.str_close = delim;
            return qp + 1;
        }
    }
}

/// Could `a` and `b` form a compound phrase ("UNION" + "ALL")?
fn merge_words(a: &mut Token, b: &Token) -> bool {
    const A_TYPES: &[u8] = &[
        TYPE_KEYWORD,
        TYPE_BAREWORD,
        TYPE_OPERATOR,
        TYPE_UNION,
        TYPE_FUNCTION,
        TYPE_EXPRESSION,
        TYPE_TSQL,
        TYPE_SQLTYPE,
    ];
    if !A_TYPES.contains(&a.ty) || !(A_TYPES.contains(&b.ty) || b.ty == TYPE_LOGIC_OPERATOR) {
        return false;
    }
    let (sz1, sz2) = (a.len, b.len);
    let sz3 = sz1 + sz2 + 1;
    if sz3 >= TOKEN_SIZE {
        return false;
    }
    let mut tmp = [0u8; TOKEN_SIZE];
    tmp[..sz1].copy_from_slice(a.value());
    tmp[sz1] = b' ';
    tmp[sz1 + 1..sz3].copy_from_slice(b.value());
    let ch = lookup_word(&tmp[..sz3]);
    if ch == TYPE_NONE {
        return false;
    }
    let pos = a.pos;
    a.assign(ch, pos, sz3, &tmp[..sz3]);
    true
}

/// Words that are functions when followed by '(' but often column names.
fn is_function_like_word(val: &[u8]) -> bool {
    const WORDS: &[&[u8]] = &[
        b"USER_ID",
        b"USER_NAME",
        b"DATABASE",
        b"PASSWORD",
        b"USER",
        b"CURRENT_USER",
        b"CURRENT_DATE",
        b"CURRENT_TIME",
        b"CURRENT_TIMESTAMP",
        b"LOCALTIME",
        b"LOCALTIMESTAMP",
    ];
    WORDS.iter().any(|w| eq_upper(val, w))
}

/// One fingerprinting pass (C: `libinjection_sqli_state`).
struct Sqli<'a> {
    lexer: Lexer<'a>,
    tokens: [Token; MAX_TOKENS + 3],
    fingerprint: [u8; MAX_TOKENS + 1],
    fp_len: usize,
}

impl<'a> Sqli<'a> {
    fn new(s: &'a [u8]) -> Self {
        Sqli {
            lexer: Lexer::new(s, FLAG_QUOTE_NONE | FLAG_SQL_ANSI),
            tokens: [EMPTY_TOKEN; MAX_TOKENS + 3],
            fingerprint: [0; MAX_TOKENS + 1],
            fp_len: 0,
        }
    }

    fn next_token(&mut self, i: usize) -> bool {
        self.lexer.tokenize(&mut self.tokens[i])
    }

    /// Tokenizes and folds; returns the number of tokens of the fingerprint.
    fn fold(&mut self) -> usize {
        let mut last_comment = EMPTY_TOKEN;
        // `pos`: where the next token goes; `left`: tokens already final.
        let mut pos = 0usize;
        let mut left = 0usize;
        let mut more;

        // Skip leading comments, '(', SQL types and unary operators.
        loop {
            more = self.next_token(0);
            let t = &self.tokens[0];
            if !(t.ty == TYPE_COMMENT
                || t.ty == TYPE_LEFTPARENS
                || t.ty == TYPE_SQLTYPE
                || t.is_unary_op())
            {
                break;
            }
        }
        if !more {
            return 0;
        }
        pos += 1;

        loop {
            if pos >= MAX_TOKENS {
                let t = |i: usize| self.tokens[i].ty;
                if (t(0) == TYPE_NUMBER
                    && (t(1) == TYPE_OPERATOR || t(1) == TYPE_COMMA)
                    && t(2) == TYPE_LEFTPARENS
                    && t(3) == TYPE_NUMBER
                    && t(4) == TYPE_RIGHTPARENS)
                    || (t(0) == TYPE_BAREWORD
                        && t(1) == TYPE_OPERATOR
                        && t(2) == TYPE_LEFTPARENS
                        && (t(3) == TYPE_BAREWORD || t(3) == TYPE_NUMBER)
                        && t(4) == TYPE_RIGHTPARENS)
                    || (t(0) == TYPE_NUMBER
                        && t(1) == TYPE_RIGHTPARENS
                        && t(2) == TYPE_COMMA
                        && t(3) == TYPE_LEFTPARENS
                        && t(4) == TYPE_NUMBER)
                    || (t(0) == TYPE_BAREWORD
                        && t(1) == TYPE_RIGHTPARENS
                        && t(2) == TYPE_OPERATOR
                        && t(3) == TYPE_LEFTPARENS
                        && t(4) == TYPE_BAREWORD)
                {
                    if pos > MAX_TOKENS {
                        self.tokens[1] = self.tokens[MAX_TOKENS];
                        pos = 2;
                    } else {
                        pos = 1;
                    }
                    left = 0;
                }
            }

            if !more || left >= MAX_TOKENS {
                left = pos;
                break;
            }

            // Get up to two tokens.
            while more && pos <= MAX_TOKENS && pos - left < 2 {
                more = self.next_token(pos);
                if more {
                    if self.tokens[pos].ty == TYPE_COMMENT {
                        last_comment = self.tokens[pos];
                    } else {
                        last_comment.ty = TYPE_NONE;
                        pos += 1;
                    }
                }
            }
            if pos - left < 2 {
                left = pos;
                continue;
            }

            // Two-token folding.
            let a = self.tokens[left];
            let b = self.tokens[left + 1];
            if (a.ty == TYPE_STRING && b.ty == TYPE_STRING)
                || (a.ty == TYPE_SEMICOLON && b.ty == TYPE_SEMICOLON)
            {
                // "foo" "bar" is valid SQL; repeated ';' are dropped.
                pos -= 1;
                continue;
            } else if (a.ty == TYPE_OPERATOR || a.ty == TYPE_LOGIC_OPERATOR)
                && (b.is_unary_op() || b.ty == TYPE_SQLTYPE)
            {
                pos -= 1;
                left = 0;
                continue;
            } else if (a.ty == TYPE_LEFTPARENS && b.is_unary_op())
                || merge_words(&mut self.tokens[left], &b)
            {
                pos -= 1;
                left = left.saturating_sub(1);
                continue;
            } else if a.ty == TYPE_SEMICOLON
                && b.ty == TYPE_FUNCTION
                && (b.val[0] == b'I' || b.val[0] == b'i')
                && (b.val[1] == b'F' || b.val[1] == b'f')
            {
                // T-SQL "; IF 1=1 ...": IF is a statement, not a function.
                self.tokens[left + 1].ty = TYPE_TSQL;
                continue;
            } else if (a.ty == TYPE_BAREWORD || a.ty == TYPE_VARIABLE)
                && b.ty == TYPE_LEFTPARENS
                && is_function_like_word(a.value())
            {
                self.tokens[left].ty = TYPE_FUNCTION;
                continue;
            } else if a.ty == TYPE_KEYWORD
                && (eq_upper(a.value(), b"IN") || eq_upper(a.value(), b"NOT IN"))
            {
                // "IN (" is an operator; otherwise maybe "IN BOOLEAN MODE".
                self.tokens[left].ty = if b.ty == TYPE_LEFTPARENS {
                    TYPE_OPERATOR
                } else {
                    TYPE_BAREWORD
                };
                continue;
            } else if a.ty == TYPE_OPERATOR
                && (eq_upper(a.value(), b"LIKE") || eq_upper(a.value(), b"NOT LIKE"))
            {
                if b.ty == TYPE_LEFTPARENS {
                    // "SELECT LIKE(...": a function.
                    self.tokens[left].ty = TYPE_FUNCTION;
                }
            } else if a.ty == TYPE_SQLTYPE
                && matches!(
                    b.ty,
                    TYPE_BAREWORD
                        | TYPE_NUMBER
                        | TYPE_SQLTYPE
                        | TYPE_LEFTPARENS
                        | TYPE_FUNCTION
                        | TYPE_VARIABLE
                        | TYPE_STRING
                )
            {
                self.tokens[left] = b;
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == TYPE_COLLATE && b.ty == TYPE_BAREWORD {
                // Too many collations: a bareword with '_' is a SQL type.
                if b.cstr().contains(&b'_') {
                    self.tokens[left + 1].ty = TYPE_SQLTYPE;
                    left = 0;
                }
            } else if a.ty == TYPE_BACKSLASH {
                if b.is_arithmetic_op() {
                    // T-SQL parses '\%1' as '0 % 1'.
                    self.tokens[left].ty = TYPE_NUMBER;
                } else {
                    // T-SQL parses '\1' as '1'.
                    self.tokens[left] = b;
                    pos -= 1;
                }
                left = 0;
                continue;
            } else if (a.ty == TYPE_LEFTPARENS && b.ty == TYPE_LEFTPARENS)
                || (a.ty == TYPE_RIGHTPARENS && b.ty == TYPE_RIGHTPARENS)
            {
                pos -= 1;
                left = 0;
                continue;
            } else if a.ty == TYPE_LEFTBRACE && b.ty == TYPE_BAREWORD {
                // MySQL "{``.``.id}": too odd to parse, call it evil.
                if b.len == 0 {
                    self.tokens[left + 1].ty = TYPE_EVIL;
                    return left + 2;
                }
                // ODBC "{foo expr}": drop "{ foo".
                left = 0;
                pos -= 2;
                continue;
            } else if b.ty == TYPE_RIGHTBRACE {
                pos -= 1;
                left = 0;
                continue;
            }

            // Nothing folded: get a third token.
            while more && pos <= MAX_TOKENS && pos - left < 3 {
                more = self.next_token(pos);
                if more {
                    if self.tokens[pos].ty == TYPE_COMMENT {
                        last_comment = self.tokens[pos];
                    } else {
                        last_comment.ty = TYPE_NONE;
                        pos += 1;
                    }
                }
            }
            if pos - left < 3 {
                left = pos;
                continue;
            }

            // Three-token folding.
            let a = self.tokens[left].ty;
            let b = self.tokens[left + 1];
            let c = self.tokens[left + 2].ty;
            let drop_two = (a == TYPE_NUMBER && b.ty == TYPE_OPERATOR && c == TYPE_NUMBER)
                || (a == TYPE_OPERATOR && b.ty != TYPE_LEFTPARENS && c == TYPE_OPERATOR)
                || (a == TYPE_LOGIC_OPERATOR && c == TYPE_LOGIC_OPERATOR)
                || (a == TYPE_VARIABLE
                    && b.ty == TYPE_OPERATOR
                    && matches!(c, TYPE_VARIABLE | TYPE_NUMBER | TYPE_BAREWORD))
                || (matches!(a, TYPE_BAREWORD | TYPE_NUMBER)
                    && b.ty == TYPE_OPERATOR
                    && matches!(c, TYPE_NUMBER | TYPE_BAREWORD))
                || (matches!(a, TYPE_BAREWORD | TYPE_NUMBER | TYPE_VARIABLE | TYPE_STRING)
                    && b.ty == TYPE_OPERATOR
                    && b.cstr() == b"::"
                    && c == TYPE_SQLTYPE)
                || (matches!(a, TYPE_BAREWORD | TYPE_NUMBER | TYPE_STRING | TYPE_VARIABLE)
                    && b.ty == TYPE_COMMA
                    && matches!(c, TYPE_NUMBER | TYPE_BAREWORD | TYPE_STRING | TYPE_VARIABLE));
            // Drop the unary operator of "SELECT + (", "LIMIT + (", "SELECT - 1".
            let drop_unary = b.is_unary_op()
                && ((matches!(a, TYPE_EXPRESSION | TYPE_GROUP | TYPE_COMMA)
                    && c == TYPE_LEFTPARENS)
                    || (matches!(a, TYPE_KEYWORD | TYPE_EXPRESSION | TYPE_GROUP)
                        && matches!(
                            c,
                            TYPE_NUMBER
                                | TYPE_BAREWORD
                                | TYPE_VARIABLE
                                | TYPE_STRING
                                | TYPE_FUNCTION
                        )));
            if drop_two {
                // "1+1", "a,b", "x::int" ... fold to their first token.
                pos -= 2;
                left = 0;
                continue;
            } else if drop_unary {
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if a == TYPE_COMMA
                && b.is_unary_op()
                && matches!(c, TYPE_NUMBER | TYPE_BAREWORD | TYPE_VARIABLE | TYPE_STRING)
            {
                // "1,-1" -> "1": drop the unary operator and back up.
                self.tokens[left + 1] = self.tokens[left + 2];
                left = 0;
                pos = pos.saturating_sub(3);
                continue;
            } else if a == TYPE_COMMA && b.is_unary_op() && c == TYPE_FUNCTION {
                // "1,-sin(1)" -> "1,sin(1)".
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if a == TYPE_BAREWORD && b.ty == TYPE_DOT && c == TYPE_BAREWORD {
                // "database.table".
                pos -= 2;
                left = 0;
                continue;
            } else if a == TYPE_EXPRESSION && b.ty == TYPE_DOT && c == TYPE_BAREWORD {
                // "SELECT . `foo`" -> "SELECT `foo`".
                self.tokens[left + 1] = self.tokens[left + 2];
                pos -= 1;
                left = 0;
                continue;
            } else if a == TYPE_FUNCTION
                && b.ty == TYPE_LEFTPARENS
                && c != TYPE_RIGHTPARENS
                && eq_upper(self.tokens[left].value(), b"USER")
            {
                // USER() takes no argument: "User(foo)" is not the function.
                self.tokens[left].ty = TYPE_BAREWORD;
            }

            left += 1;
        }

        // Add back a trailing comment if there is room.
        if left < MAX_TOKENS && last_comment.ty == TYPE_COMMENT {
            self.tokens[left] = last_comment;
            left += 1;
        }
        left.min(MAX_TOKENS)
    }

    /// Computes the fingerprint of the input under `flags`.
    fn fingerprint(&mut self, flags: u8) {
        let s = self.lexer.s;
        self.lexer = Lexer::new(s, flags);
        self.tokens = [EMPTY_TOKEN; MAX_TOKENS + 3];
        let tlen = self.fold();

        // PHP's unclosed empty backtick "comment".
        if tlen > 2 {
            let last = &mut self.tokens[tlen - 1];
            if last.ty == TYPE_BAREWORD
                && last.str_open == CHAR_TICK
                && last.len == 0
                && last.str_close == 0
            {
                last.ty = TYPE_COMMENT;
            }
        }

        self.fingerprint = [0; MAX_TOKENS + 1];
        for (f, t) in self.fingerprint.iter_mut().zip(&self.tokens[..tlen]) {
            *f = t.ty;
        }
        self.fp_len = self
            .fingerprint
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(tlen);

        // Unparsable input.
        if self.fingerprint[..self.fp_len].contains(&TYPE_EVIL) {
            self.fingerprint = [0; MAX_TOKENS + 1];
            self.fingerprint[0] = TYPE_EVIL;
            self.fp_len = 1;
            self.tokens[0].ty = TYPE_EVIL;
            self.tokens[0].val = [0; TOKEN_SIZE];
            self.tokens[0].val[0] = TYPE_EVIL;
            self.tokens[1].ty = TYPE_NONE;
        }
    }

    fn reparse_as_mysql(&self) -> bool {
        self.lexer.stats_comment_ddx != 0 || self.lexer.stats_comment_hash != 0
    }

    /// C `libinjection_sqli_check_fingerprint`.
    fn check(&self) -> bool {
        is_blacklisted(&self.fingerprint[..self.fp_len]) && self.not_whitelist()
    }

    /// False-positive filters: true when the input still looks like SQLi.
    fn not_whitelist(&self) -> bool {
        let s = self.lexer.s;
        let fp = &self.fingerprint[..self.fp_len];
        let tlen = fp.len();
        let stats_tokens = self.lexer.stats_tokens;
        let t0 = &self.tokens[0];
        let t1 = &self.tokens[1];

        if tlen > 1
            && fp[tlen - 1] == TYPE_COMMENT
            && memchr::memmem::find(s, b"sp_password").is_some()
        {
            return true;
        }

        match tlen {
            2 => {
                if fp[1] == TYPE_UNION {
                    // "1 union" alone is not SQLi; folded, it is.
                    return stats_tokens != 2;
                }
                if t1.val[0] == b'#' {
                    return false;
                }
                // "foo --" is not SQLi, "foo /*" is.
                if t0.ty == TYPE_BAREWORD && t1.ty == TYPE_COMMENT && t1.val[0] != b'/' {
                    return false;
                }
                if t0.ty == TYPE_NUMBER && t1.ty == TYPE_COMMENT && t1.val[0] == b'/' {
                    return true;
                }
                if t0.ty == TYPE_NUMBER && t1.ty == TYPE_COMMENT {
                    if stats_tokens > 2 {
                        return true;
                    }
                    // C reads `s[len of token 0]` (not its end) as a signed
                    // char, and the byte past the input as NUL.
                    let at = |i: usize| s.get(i).copied().unwrap_or(0);
                    let ch = at(t0.len);
                    if ch <= 32 || ch >= 128 {
                        return true;
                    }
                    if ch == b'/' && at(t0.len + 1) == b'*' {
                        return true;
                    }
                    if ch == b'-' && at(t0.len + 1) == b'-' {
                        return true;
                    }
                    return false;
                }
                // Only detect "1--" when the input ends with the comment.
                if t1.len > 2 && t1.val[0] == b'-' {
                    return false;
                }
            }
            3 => {
                if fp == b"sos" || fp == b"s&s" {
                    // "...foo' + 'bar...": SQLi only without outer quotes.
                    return t0.str_open == 0
                        && self.tokens[2].str_close == 0
                        && t0.str_close == self.tokens[2].str_open;
                } else if matches!(fp, b"s&n" | b"n&1" | b"1&1" | b"1&v" | b"1&s") {
                    // "sexy and 17" is not SQLi, "sexy and 17<18" is.
                    if stats_tokens == 3 {
                        return false;
                    }
                } else if t1.ty == TYPE_KEYWORD && (t1.len < 5 || !eq_upper(&t1.val[..4], b"INTO"))
                {
                    // Only "INTO OUTFILE" / "INTO DUMPFILE" keywords count.
                    return false;
                }
            }
            _ => {}
        }
        true
    }

    fn result(&self) -> Fingerprint {
        Fingerprint::from_bytes(&self.fingerprint[..self.fp_len])
    }
}

/// libinjection's `libinjection_sqli` / `libinjection_is_sqli`.
pub(super) fn detect(input: &[u8]) -> Option<Fingerprint> {
    if input.is_empty() {
        return None;
    }
    let mut st = Sqli::new(input);

    // As-is.
    st.fingerprint(FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
    if st.check() {
        return Some(st.result());
    }
    if st.reparse_as_mysql() {
        st.fingerprint(FLAG_QUOTE_NONE | FLAG_SQL_MYSQL);
        if st.check() {
            return Some(st.result());
        }
    }

    // As if preceded by a single quote.
    if memchr::memchr(CHAR_SINGLE, input).is_some() {
        st.fingerprint(FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI);
        if st.check() {
            return Some(st.result());
        }
        if st.reparse_as_mysql() {
            st.fingerprint(FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL);
            if st.check() {
                return Some(st.result());
            }
        }
    }

    // As if preceded by a double quote.
    if memchr::memchr(CHAR_DOUBLE, input).is_some() {
        st.fingerprint(FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL);
        if st.check() {
            return Some(st.result());
        }
    }
    None
}

/// The fingerprint of `input` in one context, detected or not (for tests).
#[cfg(test)]
pub(super) fn fingerprint_with(input: &[u8], quote: u8, mysql: bool) -> Fingerprint {
    let mut st = Sqli::new(input);
    let q = match quote {
        b'\'' => FLAG_QUOTE_SINGLE,
        b'"' => FLAG_QUOTE_DOUBLE,
        _ => FLAG_QUOTE_NONE,
    };
    st.fingerprint(q | if mysql { FLAG_SQL_MYSQL } else { FLAG_SQL_ANSI });
    st.result()
}
