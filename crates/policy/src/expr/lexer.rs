//! Splits an expression source into tokens, each with its byte span.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// A problem found while lexing or parsing: a byte offset and a message.
#[derive(Debug)]
pub(super) struct Perr {
    pub offset: usize,
    pub message: String,
    /// The parser must stop here (the nesting limit): no recovery.
    pub fatal: bool,
}

impl Perr {
    pub fn new(offset: usize, message: impl Into<String>) -> Self {
        Perr {
            offset,
            message: message.into(),
            fatal: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok<'s> {
    /// A name: field, function, keyword operator or `true`/`false`.
    Ident(&'s str),
    Str(String),
    Int(i64),
    /// An address (`prefix` false) or a CIDR (`prefix` true; host bits cleared).
    Ip {
        net: IpNet,
        prefix: bool,
    },
    /// `$name`
    List(&'s str),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    DotDot,
    /// An operator or logical symbol: `== != < <= > >= ~ && || ^^ !`.
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token<'s> {
    pub tok: Tok<'s>,
    pub start: usize,
    pub end: usize,
}

impl Tok<'_> {
    /// How an error message names this token.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Sym(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Int(_) => "an integer".to_owned(),
            Tok::Ip { .. } => "an IP address".to_owned(),
            Tok::List(s) => format!("`${s}`"),
            Tok::LParen => "`(`".to_owned(),
            Tok::RParen => "`)`".to_owned(),
            Tok::LBrace => "`{`".to_owned(),
            Tok::RBrace => "`}`".to_owned(),
            Tok::LBracket => "`[`".to_owned(),
            Tok::RBracket => "`]`".to_owned(),
            Tok::Comma => "`,`".to_owned(),
            Tok::DotDot => "`..`".to_owned(),
            Tok::Eof => "the end of the expression".to_owned(),
        }
    }
}

/// Tokenizes all of `src`; the last token is always [`Tok::Eof`].
pub(super) fn tokenize(src: &str) -> Result<Vec<Token<'_>>, Perr> {
    let mut lx = Lexer { src, pos: 0 };
    let mut out = Vec::new();
    loop {
        lx.skip_space();
        let start = lx.pos;
        let tok = lx.next_tok()?;
        let done = tok == Tok::Eof;
        out.push(Token {
            tok,
            start,
            end: lx.pos,
        });
        if done {
            return Ok(out);
        }
    }
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

impl<'s> Lexer<'s> {
    fn bytes(&self) -> &'s [u8] {
        self.src.as_bytes()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.bytes().get(i).copied()
    }

    fn skip_space(&mut self) {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    /// Advances over bytes while `f` holds; returns the start.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> usize {
        let start = self.pos;
        while self.peek_at(self.pos).is_some_and(&f) {
            self.pos += 1;
        }
        start
    }

    fn next_tok(&mut self) -> Result<Tok<'s>, Perr> {
        let start = self.pos;
        let Some(c) = self.peek_at(start) else {
            return Ok(Tok::Eof);
        };
        let next = self.peek_at(start + 1);
        let two = |lx: &mut Self, s: &'static str| {
            lx.pos += 2;
            Ok(Tok::Sym(s))
        };
        let one = |lx: &mut Self, t: Tok<'s>| {
            lx.pos += 1;
            Ok(t)
        };
        match c {
            b'(' => one(self, Tok::LParen),
            b')' => one(self, Tok::RParen),
            b'{' => one(self, Tok::LBrace),
            b'}' => one(self, Tok::RBrace),
            b'[' => one(self, Tok::LBracket),
            b']' => one(self, Tok::RBracket),
            b',' => one(self, Tok::Comma),
            b'~' => one(self, Tok::Sym("~")),
            b'=' if next == Some(b'=') => two(self, "=="),
            b'=' => Err(Perr::new(start, "unknown operator `=`; use `eq` or `==`")),
            b'!' if next == Some(b'=') => two(self, "!="),
            b'!' => one(self, Tok::Sym("!")),
            b'<' if next == Some(b'=') => two(self, "<="),
            b'<' => one(self, Tok::Sym("<")),
            b'>' if next == Some(b'=') => two(self, ">="),
            b'>' => one(self, Tok::Sym(">")),
            b'&' if next == Some(b'&') => two(self, "&&"),
            b'&' => Err(Perr::new(start, "unknown operator `&`; use `and` or `&&`")),
            b'|' if next == Some(b'|') => two(self, "||"),
            b'|' => Err(Perr::new(start, "unknown operator `|`; use `or` or `||`")),
            b'^' if next == Some(b'^') => two(self, "^^"),
            b'^' => Err(Perr::new(start, "unknown operator `^`; use `xor` or `^^`")),
            b'.' if next == Some(b'.') => {
                self.pos += 2;
                Ok(Tok::DotDot)
            }
            b'"' => self.string(),
            b'$' => {
                self.pos += 1;
                let s = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
                if s == self.pos {
                    return Err(Perr::new(start, "expected a list name after `$`"));
                }
                Ok(Tok::List(&self.src[s..self.pos]))
            }
            b'r' if matches!(next, Some(b'"' | b'#')) => self.raw_string(),
            b':' => self.address(),
            c if c.is_ascii_hexdigit() && self.looks_like_ipv6() => self.address(),
            c if c.is_ascii_digit() => self.number(),
            c if is_ident_start(c) => {
                let s = self.take_while(is_ident_char);
                Ok(Tok::Ident(&self.src[s..self.pos]))
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                Err(Perr::new(start, format!("unexpected character `{ch}`")))
            }
        }
    }

    /// Whether the run of hex digits, `:` and `.` starting here has a `:`.
    fn looks_like_ipv6(&self) -> bool {
        self.bytes()[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit() || **b == b':' || **b == b'.')
            .any(|b| *b == b':')
    }

    /// An IPv6 address (the run has a `:`), with an optional `/len`.
    fn address(&mut self) -> Result<Tok<'s>, Perr> {
        let start = self.take_while(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let text = &self.src[start..self.pos];
        let addr: Ipv6Addr = text
            .parse()
            .map_err(|_| Perr::new(start, format!("invalid IP address `{text}`")))?;
        self.prefix(IpAddr::V6(addr))
    }

    /// An integer, or an IPv4 address with an optional `/len`.
    fn number(&mut self) -> Result<Tok<'s>, Perr> {
        let start = self.pos;
        let run = self.bytes()[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let text = &self.src[start..start + run];
        let dots = text.bytes().filter(|b| *b == b'.').count();
        if dots == 3 && !text.contains("..") && !text.ends_with('.') {
            self.pos = start + run;
            let addr: Ipv4Addr = text
                .parse()
                .map_err(|_| Perr::new(start, format!("invalid IP address `{text}`")))?;
            return self.prefix(IpAddr::V4(addr));
        }
        let s = self.take_while(|b| b.is_ascii_digit());
        let digits = &self.src[s..self.pos];
        digits
            .parse::<i64>()
            .map(Tok::Int)
            .map_err(|_| Perr::new(start, format!("integer `{digits}` is too large")))
    }

    /// An optional `/len` after an address.
    fn prefix(&mut self, addr: IpAddr) -> Result<Tok<'s>, Perr> {
        if self.peek_at(self.pos) != Some(b'/') {
            let net = IpNet::from(addr);
            return Ok(Tok::Ip { net, prefix: false });
        }
        let slash = self.pos;
        self.pos += 1;
        let s = self.take_while(|b| b.is_ascii_digit());
        let len = self.src[s..self.pos]
            .parse::<u8>()
            .ok()
            .and_then(|len| IpNet::new(addr, len).ok())
            .ok_or_else(|| {
                let max = if addr.is_ipv4() { 32 } else { 128 };
                Perr::new(
                    slash,
                    format!("expected a prefix length of 0 to {max} after `/`"),
                )
            })?;
        Ok(Tok::Ip {
            net: len.trunc(),
            prefix: true,
        })
    }

    /// A `"..."` string: `\"` and `\\` are escapes; any other backslash is
    /// kept as is.
    fn string(&mut self) -> Result<Tok<'s>, Perr> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.bytes()[self.pos..];
            let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
                return Err(Perr::new(open, "unterminated string"));
            };
            out.push_str(&self.src[self.pos..self.pos + i]);
            self.pos += i;
            if rest[i] == b'"' {
                self.pos += 1;
                return Ok(Tok::Str(out));
            }
            match self.peek_at(self.pos + 1) {
                Some(c @ (b'"' | b'\\')) => {
                    out.push(char::from(c));
                    self.pos += 2;
                }
                None => return Err(Perr::new(open, "unterminated string")),
                // Any other escape is kept as written, backslash included, so
                // that regexes like "\.php$" mean what they say.
                Some(_) => {
                    out.push('\\');
                    self.pos += 1;
                }
            }
        }
    }

    /// `r"..."`, `r#"..."#`, `r##"..."##`, ...
    fn raw_string(&mut self) -> Result<Tok<'s>, Perr> {
        let open = self.pos;
        self.pos += 1;
        let hashes = self.pos;
        self.take_while(|b| b == b'#');
        let n = self.pos - hashes;
        if self.peek_at(self.pos) != Some(b'"') {
            return Err(Perr::new(
                open,
                "expected `\"` to start a raw string after `r#`",
            ));
        }
        self.pos += 1;
        let body = self.pos;
        let mut from = body;
        while let Some(i) = memchr::memchr(b'"', &self.bytes()[from..]) {
            let quote = from + i;
            let after = &self.bytes()[quote + 1..];
            if after.len() >= n && after[..n].iter().all(|b| *b == b'#') {
                self.pos = quote + 1 + n;
                return Ok(Tok::Str(self.src[body..quote].to_owned()));
            }
            from = quote + 1;
        }
        Err(Perr::new(open, "unterminated raw string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok<'_>> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_addresses_numbers_and_ranges() {
        let t = toks("10.0.0.0/8 ::1 fe80::/10 80 8000..8999 1.2.3.4 add");
        assert!(matches!(t[0], Tok::Ip { prefix: true, .. }));
        assert!(matches!(t[1], Tok::Ip { prefix: false, .. }));
        assert!(matches!(t[2], Tok::Ip { prefix: true, .. }));
        assert_eq!(t[3], Tok::Int(80));
        assert_eq!(&t[4..7], &[Tok::Int(8000), Tok::DotDot, Tok::Int(8999)]);
        assert!(matches!(t[7], Tok::Ip { prefix: false, .. }));
        assert_eq!(t[8], Tok::Ident("add"));
        assert_eq!(t[9], Tok::Eof);
    }

    #[test]
    fn lexes_strings() {
        assert_eq!(toks(r#""a\"b\\c""#)[0], Tok::Str("a\"b\\c".into()));
        assert_eq!(toks(r#"r"a\d""#)[0], Tok::Str("a\\d".into()));
        assert_eq!(toks(r##"r#"say "hi""#"##)[0], Tok::Str("say \"hi\"".into()));
        assert_eq!(toks("\"é\"")[0], Tok::Str("é".into()));
        assert_eq!(toks(r#""\.php\d\\x""#)[0], Tok::Str(r"\.php\d\x".into()));
    }

    #[test]
    fn spans_are_byte_offsets() {
        let t = tokenize("é == \"x\"").unwrap_err();
        assert_eq!(t.offset, 0);
        let t = tokenize("a  ==  \"x\"").unwrap();
        assert_eq!((t[1].start, t[1].end), (3, 5));
        assert_eq!((t[2].start, t[2].end), (7, 10));
    }
}
