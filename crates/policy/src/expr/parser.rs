//! Recursive-descent parser and type checker: tokens to a compiled [`Node`].
//!
//! Grammar, loosest first (Cloudflare's precedence):
//!
//! ```text
//! or      := xor (("or" | "||") xor)*
//! xor     := and (("xor" | "^^") and)*
//! and     := not (("and" | "&&") not)*
//! not     := ("not" | "!") not | primary
//! primary := "(" or ")" | "true" | "false" | value [operator rhs]
//! value   := field | name "(" args ")"
//! ```

use std::sync::Arc;

use http::header::{HeaderName, REFERER, USER_AGENT};
use memchr::memmem::Finder;

use super::eval::{
    compile_regex, str_test, ClientFlag, IntExpr, IntOp, IntTest, IpTest, Node, Pick, StrExpr,
    StrField, StrOp, Wildcard,
};
use super::lexer::{tokenize, Perr, Tok, Token};
use super::sets::{IntSet, IpSet};
use super::{Lists, MAX_DEPTH};

/// Parses and compiles `src`. On error, every problem found, in order: a
/// comparison that does not compile is reported and skipped (up to the next
/// `and`, `or`, `xor` or unmatched `)`), so the comparisons after it are
/// still checked.
pub(super) fn parse(src: &str, lists: &Lists) -> Result<Node, Vec<Perr>> {
    let toks = tokenize(src).map_err(|e| vec![e])?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
        lists,
        errors: Vec::new(),
    };
    let last = match p.or() {
        Ok(node) => {
            let t = p.peek();
            match t.tok {
                Tok::Eof => Ok(node),
                Tok::RParen => Err(Perr::new(t.start, "unexpected `)` without a matching `(`")),
                ref other => Err(Perr::new(
                    t.start,
                    format!(
                        "expected `and`, `or`, `xor` or the end of the expression, found {}",
                        other.describe()
                    ),
                )),
            }
        }
        Err(e) => Err(e),
    };
    let mut errors = std::mem::take(&mut p.errors);
    match last {
        Ok(node) if errors.is_empty() => Ok(node),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(e);
            Err(errors)
        }
    }
}

/// The type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Ip,
    Bool,
}

impl Ty {
    fn a(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "an integer",
            Ty::Ip => "an IP address",
            Ty::Bool => "a boolean",
        }
    }
}

/// A typed value on the left of a comparison or in a function argument.
enum Val {
    Str(StrExpr),
    Int(IntExpr),
    Ip,
    Bool(Node),
}

impl Val {
    fn ty(&self) -> Ty {
        match self {
            Val::Str(_) => Ty::Str,
            Val::Int(_) => Ty::Int,
            Val::Ip => Ty::Ip,
            Val::Bool(_) => Ty::Bool,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Matches,
    Wildcard,
    StrictWildcard,
    In,
    StartsWith,
    EndsWith,
}

fn op_of(tok: &Tok<'_>) -> Option<Op> {
    Some(match tok {
        Tok::Ident("eq") | Tok::Sym("==") => Op::Eq,
        Tok::Ident("ne") | Tok::Sym("!=") => Op::Ne,
        Tok::Ident("lt") | Tok::Sym("<") => Op::Lt,
        Tok::Ident("le") | Tok::Sym("<=") => Op::Le,
        Tok::Ident("gt") | Tok::Sym(">") => Op::Gt,
        Tok::Ident("ge") | Tok::Sym(">=") => Op::Ge,
        Tok::Ident("contains") => Op::Contains,
        Tok::Ident("matches") | Tok::Sym("~") => Op::Matches,
        Tok::Ident("wildcard") => Op::Wildcard,
        Tok::Ident("strict") => Op::StrictWildcard,
        Tok::Ident("in") => Op::In,
        Tok::Ident("starts_with") => Op::StartsWith,
        Tok::Ident("ends_with") => Op::EndsWith,
        _ => return None,
    })
}

fn is_logical(tok: &Tok<'_>) -> bool {
    matches!(
        tok,
        Tok::Ident("and" | "or" | "xor" | "not") | Tok::Sym("&&" | "||" | "^^" | "!")
    )
}

struct Parser<'s, 'l> {
    src: &'s str,
    toks: Vec<Token<'s>>,
    pos: usize,
    depth: usize,
    lists: &'l Lists,
    /// Problems of comparisons already skipped.
    errors: Vec<Perr>,
}

impl<'s> Parser<'s, '_> {
    fn peek(&self) -> &Token<'s> {
        // The last token is always Eof and is never consumed.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek2(&self) -> &Tok<'s> {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token<'s> {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or(0, |t| t.end)
    }

    fn eat(&mut self, f: impl Fn(&Tok<'s>) -> bool) -> bool {
        if f(&self.peek().tok) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), Perr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Perr {
                fatal: true,
                ..Perr::new(
                    at,
                    format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
                )
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn or(&mut self) -> Result<Node, Perr> {
        let mut items = vec![self.xor()?];
        while self.eat(|t| matches!(t, Tok::Ident("or") | Tok::Sym("||"))) {
            items.push(self.xor()?);
        }
        Ok(join(items, Node::Any))
    }

    fn xor(&mut self) -> Result<Node, Perr> {
        let mut items = vec![self.and()?];
        while self.eat(|t| matches!(t, Tok::Ident("xor") | Tok::Sym("^^"))) {
            items.push(self.and()?);
        }
        Ok(join(items, Node::Xor))
    }

    fn and(&mut self) -> Result<Node, Perr> {
        let mut items = vec![self.not()?];
        while self.eat(|t| matches!(t, Tok::Ident("and") | Tok::Sym("&&"))) {
            items.push(self.not()?);
        }
        Ok(join(items, Node::All))
    }

    fn not(&mut self) -> Result<Node, Perr> {
        let t = self.peek().start;
        if self.eat(|t| matches!(t, Tok::Ident("not") | Tok::Sym("!"))) {
            self.enter(t)?;
            let inner = self.not()?;
            self.leave();
            return Ok(match inner {
                Node::Not(n) => *n,
                n => Node::Not(Box::new(n)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, Perr> {
        let t = self.peek().clone();
        match t.tok {
            Tok::LParen => {
                self.bump();
                self.enter(t.start)?;
                let inner = self.or()?;
                self.leave();
                self.close(t.start, "`(`", Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Ident("true") => {
                self.bump();
                Ok(Node::Const(true))
            }
            Tok::Ident("false") => {
                self.bump();
                Ok(Node::Const(false))
            }
            _ => self.comparison(),
        }
    }

    /// Expects `close`; at the end of input, blames the opening token.
    fn close(
        &mut self,
        open_at: usize,
        open: &str,
        close: Tok<'static>,
        close_s: &str,
    ) -> Result<(), Perr> {
        let t = self.peek();
        if t.tok == close {
            self.bump();
            return Ok(());
        }
        if t.tok == Tok::Eof {
            return Err(Perr::new(open_at, format!("unclosed {open}")));
        }
        Err(Perr::new(
            t.start,
            format!("expected {close_s}, found {}", t.tok.describe()),
        ))
    }

    /// A comparison; one that does not compile is recorded in `errors` and
    /// skipped (see [`parse`]), standing for `false`.
    fn comparison(&mut self) -> Result<Node, Perr> {
        let (start, depth) = (self.pos, self.depth);
        match self.comparison_strict() {
            Ok(node) => Ok(node),
            Err(e) if e.fatal => Err(e),
            Err(e) => {
                self.errors.push(e);
                self.depth = depth;
                // Parentheses opened inside the comparison (function calls) are skipped to their close.
                let mut open = self.toks[start..self.pos]
                    .iter()
                    .map(|t| match t.tok {
                        Tok::LParen => 1,
                        Tok::RParen => -1,
                        _ => 0,
                    })
                    .sum::<i64>()
                    .max(0);
                loop {
                    let t = &self.peek().tok;
                    match t {
                        Tok::Eof => break,
                        Tok::RParen if open == 0 => break,
                        Tok::RParen => open -= 1,
                        Tok::LParen => open += 1,
                        Tok::Ident("and" | "or" | "xor") | Tok::Sym("&&" | "||" | "^^")
                            if open == 0 =>
                        {
                            break
                        }
                        _ => {}
                    }
                    self.bump();
                }
                // A comparison that consumed nothing would loop: stop there.
                if self.pos == start {
                    return Err(self.errors.pop().unwrap_or_else(|| Perr::new(0, "")));
                }
                Ok(Node::Const(false))
            }
        }
    }

    fn comparison_strict(&mut self) -> Result<Node, Perr> {
        let lhs_at = self.peek().start;
        let lhs = self.value(false)?;
        let lhs_text = &self.src[lhs_at..self.prev_end().max(lhs_at)];
        let op_tok = self.peek().clone();
        let Some(op) = op_of(&op_tok.tok) else {
            if let Val::Bool(n) = lhs {
                return Ok(n);
            }
            let msg = match op_tok.tok {
                Tok::Ident(w) if !is_logical(&op_tok.tok) => format!("unknown operator `{w}`"),
                Tok::Eof => format!("expected an operator after `{lhs_text}`"),
                ref t => format!(
                    "expected an operator after `{lhs_text}`, found {}",
                    t.describe()
                ),
            };
            return Err(Perr::new(op_tok.start, msg));
        };
        self.bump();
        if op == Op::StrictWildcard && !self.eat(|t| *t == Tok::Ident("wildcard")) {
            let t = self.peek();
            return Err(Perr::new(
                t.start,
                format!(
                    "expected `wildcard` after `strict`, found {}",
                    t.tok.describe()
                ),
            ));
        }
        let op_text = &self.src[op_tok.start..self.prev_end()];
        let supported = match lhs.ty() {
            Ty::Str => true,
            Ty::Int => matches!(
                op,
                Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::In
            ),
            Ty::Ip => matches!(op, Op::Eq | Op::Ne | Op::In),
            Ty::Bool => matches!(op, Op::Eq | Op::Ne),
        };
        if !supported {
            return Err(Perr::new(
                op_tok.start,
                format!("operator `{op_text}` cannot be used with {}", lhs.ty().a()),
            ));
        }
        let negate = op == Op::Ne;
        match lhs {
            Val::Str(value) => {
                let op = self.str_op(op, op_text)?;
                Ok(str_test(value, op, negate))
            }
            Val::Int(value) => {
                let op = match op {
                    Op::In => IntOp::In(self.int_set(op_text)?),
                    _ => {
                        let (Tok::Int(v), _) = self.literal(Ty::Int, op_text)? else {
                            return Err(Perr::new(0, "internal: integer literal expected"));
                        };
                        match op {
                            Op::Lt => IntOp::Lt(v),
                            Op::Le => IntOp::Le(v),
                            Op::Gt => IntOp::Gt(v),
                            Op::Ge => IntOp::Ge(v),
                            _ => IntOp::Eq(v),
                        }
                    }
                };
                Ok(Node::Int(IntTest { value, op, negate }))
            }
            Val::Ip => {
                let set = match op {
                    Op::In => self.ip_set(op_text)?,
                    _ => {
                        let (Tok::Ip { net, .. }, _) = self.literal(Ty::Ip, op_text)? else {
                            return Err(Perr::new(0, "internal: IP literal expected"));
                        };
                        Arc::new(IpSet::from_nets([net]))
                    }
                };
                Ok(Node::Ip(IpTest { set, negate }))
            }
            Val::Bool(n) => {
                let (lit, _) = self.literal(Ty::Bool, op_text)?;
                let want = lit == Tok::Ident("true");
                Ok(if want != negate { n } else { not(n) })
            }
        }
    }

    /// The literal after an operator, of type `ty`: its token and offset.
    fn literal(&mut self, ty: Ty, op_text: &str) -> Result<(Tok<'s>, usize), Perr> {
        let t = self.peek().clone();
        let found = match t.tok {
            Tok::Str(_) => Ty::Str,
            Tok::Int(_) => Ty::Int,
            Tok::Ip { .. } => Ty::Ip,
            Tok::Ident("true" | "false") => Ty::Bool,
            Tok::Eof => {
                return Err(Perr::new(
                    t.start,
                    format!("expected a value after `{op_text}`"),
                ))
            }
            ref other => {
                return Err(Perr::new(
                    t.start,
                    format!(
                        "expected a value after `{op_text}`, found {}",
                        other.describe()
                    ),
                ))
            }
        };
        if found != ty {
            return Err(Perr::new(
                t.start,
                format!("expected {} after `{op_text}`, found {}", ty.a(), found.a()),
            ));
        }
        self.bump();
        Ok((t.tok, t.start))
    }

    fn str_lit(&mut self, op_text: &str) -> Result<(String, usize), Perr> {
        match self.literal(Ty::Str, op_text)? {
            (Tok::Str(s), at) => Ok((s, at)),
            (_, at) => Err(Perr::new(at, "internal: string literal expected")),
        }
    }

    fn str_op(&mut self, op: Op, op_text: &str) -> Result<StrOp, Perr> {
        if op == Op::In {
            return self.str_set(op_text);
        }
        let (lit, at) = self.str_lit(op_text)?;
        Ok(match op {
            Op::Lt => StrOp::Lt(lit.into()),
            Op::Le => StrOp::Le(lit.into()),
            Op::Gt => StrOp::Gt(lit.into()),
            Op::Ge => StrOp::Ge(lit.into()),
            Op::Contains => StrOp::Contains(Box::new(Finder::new(lit.as_bytes()).into_owned())),
            Op::StartsWith => StrOp::StartsWith(lit.into()),
            Op::EndsWith => StrOp::EndsWith(lit.into()),
            Op::Wildcard => StrOp::Wildcard(Wildcard::new(&lit, false)),
            Op::StrictWildcard => StrOp::Wildcard(Wildcard::new(&lit, true)),
            Op::Matches => StrOp::Matches(compile_regex(&lit).map_err(|m| Perr::new(at, m))?),
            _ => StrOp::Eq(lit.into()),
        })
    }

    /// `$name` after `in`, if that is what comes: the list's sets.
    fn list(&mut self) -> Result<Option<(&super::sets::ListSets, String, usize)>, Perr> {
        let t = self.peek().clone();
        let Tok::List(name) = t.tok else {
            return Ok(None);
        };
        self.bump();
        match self.lists.get(name) {
            Some(l) => Ok(Some((l, name.to_owned(), t.start))),
            None => Err(Perr::new(t.start, format!("unknown list `${name}`"))),
        }
    }

    fn str_set(&mut self, op_text: &str) -> Result<StrOp, Perr> {
        if let Some((l, _, _)) = self.list()? {
            return Ok(StrOp::In(Arc::clone(&l.strings)));
        }
        let mut set = super::sets::StrSet::default();
        self.set_elements(Ty::Str, op_text, |p| {
            let (s, _) = p.str_lit("in")?;
            set.insert(s.into());
            Ok(())
        })?;
        Ok(StrOp::In(Arc::new(set)))
    }

    fn int_set(&mut self, op_text: &str) -> Result<Arc<IntSet>, Perr> {
        if let Some((l, name, at)) = self.list()? {
            return l.ints.clone().map_err(|item| {
                Perr::new(
                    at,
                    format!("list `${name}` has `{item}`, which is not an integer"),
                )
            });
        }
        let mut ranges = Vec::new();
        self.set_elements(Ty::Int, op_text, |p| {
            let (Tok::Int(lo), at) = p.literal(Ty::Int, "in")? else {
                return Err(Perr::new(0, "internal: integer literal expected"));
            };
            let mut hi = lo;
            if p.eat(|t| *t == Tok::DotDot) {
                let (Tok::Int(h), _) = p.literal(Ty::Int, "..")? else {
                    return Err(Perr::new(0, "internal: integer literal expected"));
                };
                if h < lo {
                    return Err(Perr::new(at, format!("empty range `{lo}..{h}`")));
                }
                hi = h;
            }
            ranges.push((lo, hi));
            Ok(())
        })?;
        Ok(Arc::new(IntSet::from_ranges(ranges)))
    }

    fn ip_set(&mut self, op_text: &str) -> Result<Arc<IpSet>, Perr> {
        if let Some((l, name, at)) = self.list()? {
            return l.ips.clone().map_err(|item| {
                Perr::new(
                    at,
                    format!("list `${name}` has `{item}`, which is not an IP address or CIDR"),
                )
            });
        }
        let mut nets = Vec::new();
        self.set_elements(Ty::Ip, op_text, |p| {
            if let (Tok::Ip { net, .. }, _) = p.literal(Ty::Ip, "in")? {
                nets.push(net);
            }
            Ok(())
        })?;
        Ok(Arc::new(IpSet::from_nets(nets)))
    }

    /// `{ elem elem ... }` (commas optional); `elem` parses one element.
    fn set_elements(
        &mut self,
        ty: Ty,
        op_text: &str,
        mut elem: impl FnMut(&mut Self) -> Result<(), Perr>,
    ) -> Result<(), Perr> {
        let open = self.peek().clone();
        if open.tok != Tok::LBrace {
            let what = match ty {
                Ty::Str => "strings",
                Ty::Int => "integers",
                _ => "addresses",
            };
            let found = match open.tok {
                Tok::Eof => String::new(),
                ref t => format!(", found {}", t.describe()),
            };
            return Err(Perr::new(
                open.start,
                format!("expected a set of {what} `{{ ... }}` or a list `$name` after `{op_text}`{found}"),
            ));
        }
        self.bump();
        let mut count = 0usize;
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                Tok::Eof => return Err(Perr::new(open.start, "unclosed `{`")),
                Tok::Comma if count > 0 => {
                    self.bump();
                }
                Tok::Str(_) | Tok::Int(_) | Tok::Ip { .. } | Tok::Ident("true" | "false") => {
                    elem(self)?;
                    count += 1;
                }
                ref other => {
                    return Err(Perr::new(
                        t.start,
                        format!(
                            "expected {} or `}}` in the set, found {}",
                            ty.a(),
                            other.describe()
                        ),
                    ))
                }
            }
        }
        if count == 0 {
            return Err(Perr::new(open.start, "empty set"));
        }
        Ok(())
    }

    /// A field or function call (or, in arguments, a string literal).
    fn value(&mut self, in_args: bool) -> Result<Val, Perr> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Ident(name) if *self.peek2() == Tok::LParen => self.call(name, t.start),
            Tok::Ident(name) if op_of(&t.tok).is_none() && !is_logical(&t.tok) => {
                self.bump();
                self.field(name, t.start)
            }
            Tok::Str(s) if in_args => {
                self.bump();
                Ok(Val::Str(StrExpr::Lit(s.into())))
            }
            Tok::Str(_) | Tok::Int(_) | Tok::Ip { .. } => Err(Perr::new(
                t.start,
                format!(
                    "expected a field or a function, found {} (a literal goes on the right of an operator)",
                    t.tok.describe()
                ),
            )),
            ref other => {
                let want = if in_args {
                    "a field, a function or a string"
                } else {
                    "a field, a function or `(`"
                };
                Err(Perr::new(
                    t.start,
                    format!("expected {want}, found {}", other.describe()),
                ))
            }
        }
    }

    fn field(&mut self, name: &str, at: usize) -> Result<Val, Perr> {
        let header = |h: HeaderName| StrField::Header(h, Pick::All);
        let f = match name {
            "ip.src" => return Ok(Val::Ip),
            "ip.geoip.asnum" | "ip.src.asnum" => return Ok(Val::Int(IntExpr::Asn)),
            "palisade.bot.score" | "cf.bot_management.score" => {
                return Ok(Val::Int(IntExpr::BotScore))
            }
            "palisade.anomaly.score" => return Ok(Val::Int(IntExpr::AnomalyScore)),
            "palisade.bot.verified" | "cf.bot_management.verified_bot" | "cf.client.bot" => {
                return Ok(Val::Bool(Node::Flag(ClientFlag::VerifiedBot)))
            }
            "palisade.challenge.passed" => return Ok(Val::Bool(Node::Flag(ClientFlag::Cleared))),
            "palisade.bot.name" => StrField::BotName,
            "palisade.fingerprint.headers" => StrField::HeaderFp,
            "palisade.fingerprint.ja4" | "cf.bot_management.ja4" => StrField::Ja4,
            "palisade.fingerprint.h2" => StrField::H2Fp,
            "http.host" => StrField::Host,
            "http.request.method" => StrField::Method,
            "http.request.uri" => StrField::Uri,
            "http.request.uri.path" => StrField::Path,
            "raw.http.request.uri" => StrField::RawUri,
            "raw.http.request.uri.path" => StrField::RawPath,
            "http.request.uri.query" => StrField::Query,
            "http.cookie" => StrField::CookieHeader,
            "http.user_agent" => header(USER_AGENT),
            "http.referer" => header(REFERER),
            "http.x_forwarded_for" => header(HeaderName::from_static("x-forwarded-for")),
            "ip.geoip.country" | "ip.src.country" => StrField::Country,
            "http.request.uri.args" | "http.request.headers" | "http.request.cookies" => {
                let (key, key_at, pick) = self.map_key(name)?;
                match name {
                    "http.request.uri.args" => StrField::Arg(key.into(), pick),
                    "http.request.cookies" => StrField::Cookie(key.into(), pick),
                    _ => match HeaderName::from_bytes(key.as_bytes()) {
                        Ok(h) => StrField::Header(h, pick),
                        Err(_) => {
                            return Err(Perr::new(key_at, format!("invalid header name `{key}`")))
                        }
                    },
                }
            }
            _ => return Err(Perr::new(at, format!("unknown field `{name}`"))),
        };
        Ok(Val::Str(StrExpr::Field(f)))
    }

    /// `["key"]` with an optional `[0]` after it (only the first value).
    fn map_key(&mut self, name: &str) -> Result<(String, usize, Pick), Perr> {
        let open = self.peek().clone();
        if open.tok != Tok::LBracket {
            return Err(Perr::new(
                open.start,
                format!("`{name}` needs a key, as in {name}[\"name\"]"),
            ));
        }
        self.bump();
        let t = self.bump();
        let Tok::Str(key) = t.tok else {
            return Err(Perr::new(
                t.start,
                format!(
                    "expected a string key after `[`, found {}",
                    t.tok.describe()
                ),
            ));
        };
        self.close(open.start, "`[`", Tok::RBracket, "`]`")?;
        let mut pick = Pick::All;
        if self.peek().tok == Tok::LBracket {
            let open = self.bump();
            if !self.eat(|t| *t == Tok::Int(0)) {
                return Err(Perr::new(
                    open.start,
                    "only `[0]` (the first value) may follow the key",
                ));
            }
            self.close(open.start, "`[`", Tok::RBracket, "`]`")?;
            pick = Pick::First;
        }
        Ok((key, t.start, pick))
    }

    fn call(&mut self, name: &'s str, at: usize) -> Result<Val, Perr> {
        let arity = match name {
            "lower" | "upper" | "url_decode" | "len" => 1..=1,
            "starts_with" | "ends_with" => 2..=2,
            "concat" => 1..=usize::MAX,
            _ => return Err(Perr::new(at, format!("unknown function `{name}`"))),
        };
        self.bump();
        let open = self.bump();
        self.enter(open.start)?;
        let mut args = Vec::new();
        if !self.eat(|t| *t == Tok::RParen) {
            loop {
                let arg_at = self.peek().start;
                let v = self.value(true)?;
                let s = match v {
                    Val::Str(s) => s,
                    other => {
                        return Err(Perr::new(
                            arg_at,
                            format!(
                                "`{name}` expects string arguments, found {}",
                                other.ty().a()
                            ),
                        ))
                    }
                };
                args.push((s, arg_at));
                if self.eat(|t| *t == Tok::Comma) {
                    continue;
                }
                let t = self.peek();
                match t.tok {
                    Tok::RParen => {
                        self.bump();
                        break;
                    }
                    Tok::Eof => return Err(Perr::new(open.start, "unclosed `(`")),
                    ref other => {
                        return Err(Perr::new(
                            t.start,
                            format!(
                                "expected `,` or `)` after an argument of `{name}`, found {}",
                                other.describe()
                            ),
                        ))
                    }
                }
            }
        }
        self.leave();
        if !arity.contains(&args.len()) {
            let want = match (arity.start(), arity.end()) {
                (1, 1) => "1 argument".to_owned(),
                (n, m) if n == m => format!("{n} arguments"),
                (n, _) => format!("at least {n} argument"),
            };
            return Err(Perr::new(
                at,
                format!("`{name}` takes {want}, found {}", args.len()),
            ));
        }
        let mut args = args.into_iter();
        let mut next = || {
            args.next()
                .ok_or_else(|| Perr::new(at, "internal: missing argument"))
        };
        Ok(match name {
            "lower" => Val::Str(StrExpr::Lower(Box::new(next()?.0))),
            "upper" => Val::Str(StrExpr::Upper(Box::new(next()?.0))),
            "url_decode" => Val::Str(StrExpr::UrlDecode(Box::new(next()?.0))),
            "len" => Val::Int(IntExpr::Len(Box::new(next()?.0))),
            "starts_with" | "ends_with" => {
                let value = next()?.0;
                let (lit, lit_at) = next()?;
                let StrExpr::Lit(lit) = lit else {
                    return Err(Perr::new(
                        lit_at,
                        format!("the second argument of `{name}` must be a string literal"),
                    ));
                };
                let op = if name == "starts_with" {
                    StrOp::StartsWith(lit)
                } else {
                    StrOp::EndsWith(lit)
                };
                Val::Bool(str_test(value, op, false))
            }
            _ => Val::Str(StrExpr::Concat(args.map(|(p, _)| p).collect())),
        })
    }
}

fn join(mut items: Vec<Node>, f: fn(Vec<Node>) -> Node) -> Node {
    if items.len() == 1 {
        if let Some(n) = items.pop() {
            return n;
        }
    }
    f(items)
}

fn not(n: Node) -> Node {
    match n {
        Node::Not(inner) => *inner,
        n => Node::Not(Box::new(n)),
    }
}
