//! The rule expression language: Cloudflare-rules-compatible filters over a
//! [`Request`].
//!
//! An expression is parsed, type-checked and compiled **once** per policy load
//! ([`Expr::compile`]); evaluating it ([`Expr::eval`]) walks a small tree of
//! precompiled tests (regexes, hash sets, IP range tables) and, in the common
//! case, allocates nothing. This module owns the syntax, the type rules and
//! the evaluation; it must not do I/O or look at anything but the [`Request`].
//!
//! # Syntax
//!
//! ```text
//! ip.src in $office and not http.request.uri.path starts_with "/public"
//! lower(url_decode(http.request.uri.path)) contains "/admin"
//! http.request.headers["x-api-key"] eq "" or ip.geoip.asnum in { 64496..64511 }
//! ```
//!
//! **Fields.** `ip.src` (IP); `http.host` (the `Host` header, or the
//! authority of the target, lower-cased without a trailing dot:
//! `Admin.Example.COM.:8080` is `admin.example.com:8080`),
//! `http.request.method`, `http.request.uri` (the target with its path
//! normalized, then `?` and the query as sent), `http.request.uri.path` (the
//! normalized path: see [`crate::normalize`]; `/%61dmin`, `//admin`,
//! `/x/../admin`, `/admin;a=1` and `\admin` are all `/admin`),
//! `raw.http.request.uri` and `raw.http.request.uri.path` (the target and its
//! path as sent), `http.request.uri.query` (as sent, without `?`),
//! `http.request.uri.args["k"]` (query argument `k`, form-decoded; names
//! match after decoding), `http.request.headers["name"]` (the name is
//! case-insensitive), `http.request.cookies["name"]` (looked up in every
//! `Cookie` field), `http.cookie` (every `Cookie` field joined with `"; "`,
//! as HTTP/2 splits cookies into several fields), `http.user_agent`,
//! `http.referer`, `http.x_forwarded_for`, `ip.geoip.country` (alias
//! `ip.src.country`; two upper-case letters) — all strings; and
//! `ip.geoip.asnum` (alias `ip.src.asnum`), an integer. Header, cookie and
//! argument values are text with every byte that is not UTF-8 replaced by
//! U+FFFD — never dropped, so `sqlmap/1.7\x80` still contains `sqlmap`.
//!
//! **Repeated fields.** `http.request.headers[...]`, `http.request.cookies[...]`,
//! `http.request.uri.args[...]`, `http.user_agent`, `http.referer` and
//! `http.x_forwarded_for` have every value the request carries, in order (a
//! header sent twice, `?debug=0&debug=1`, a cookie in two `Cookie` fields),
//! as Cloudflare's arrays do. A comparison holds when it holds for **any**
//! value; `ne` is the exact negation of `eq`: true when **no** value equals
//! (so `http.request.uri.args["cmd"] ne ""` is false for `?cmd=&cmd=id`;
//! `len(http.request.uri.args["cmd"]) gt 0` asks whether any is non-empty).
//! `not` negates the whole comparison likewise. Functions map over the
//! values: `lower(http.request.headers["x"]) contains "y"` holds when any
//! lower-cased value contains `y`, `len(...) gt 10` when any value is longer.
//! `concat` tries every combination of one value per argument (up to 64
//! combinations; beyond, each value of each argument with the first value
//! of the others — still every combination when only one argument repeats).
//! Cloudflare's trailing `[0]` (`http.request.headers["a"][0]`, also after
//! `cookies[...]` and `args[...]`) selects only the first value.
//!
//! **Literals.** `"double quoted"` strings (`\"` and `\\` are escapes; any
//! other backslash is kept as written, so `"\.php$"` is the regex it looks
//! like), raw strings `r"..."`, `r#"..."#` (any number of `#`), non-negative
//! integers,
//! `true`/`false`, and bare IPv4/IPv6 addresses and CIDRs (`10.0.0.0/8`,
//! `2001:db8::/32`; host bits of a CIDR are ignored).
//!
//! **Comparisons** (field or function on the left, literal on the right):
//! `eq ==`, `ne !=`, `lt <`, `le <=`, `gt >`, `ge >=` (strings compare byte
//! by byte), `contains`, `matches ~` (a `regex` crate regular expression),
//! `wildcard` (whole-value glob where `*` matches anything and `\*` is a
//! literal star; case-insensitive), `strict wildcard` (the same,
//! case-sensitive), `starts_with`, `ends_with`, and `in` with a set
//! `{ "a" "b" }`, `{ 10.0.0.0/8 192.0.2.7 }`, `{ 80 443 8000..8999 }` (commas
//! between elements are optional) or a named list `$name` (see [`Lists`]).
//! IP fields take `eq`, `ne` and `in` (`eq` with a CIDR tests membership);
//! integers take the ordering operators and `in`; strings take all of them.
//! A boolean function may stand alone or be compared with `true`/`false`.
//!
//! **Functions.** `lower(s)`, `upper(s)`, `url_decode(s)` (`%XX` and `+` as
//! a space), `concat(s, ...)` — strings; `len(s)` — the length in bytes;
//! `starts_with(s, "lit")`, `ends_with(s, "lit")` — booleans. Arguments may be
//! fields, functions or string literals, and nest.
//!
//! **Logic.** `not !`, `and &&`, `xor ^^`, `or ||` — in that order of
//! precedence, highest first, as in Cloudflare — and parentheses.
//!
//! # Absent values
//!
//! A string field that has no value in the request (a missing header, cookie
//! or query argument, no `Cookie` header, no GeoIP country) **is one empty
//! string**: `http.request.headers["x-api-key"] eq ""` is true when the
//! header is missing, `len(...)` of it is `0`, and `ne "x"` is true.
//! `ip.geoip.asnum` without GeoIP data is truly absent: every comparison with
//! it is false (`eq`, `lt`, `in`, ...), except `ne`, which is the negation of
//! `eq` and so true. `ip.src` is always present; an IPv4-mapped IPv6 client
//! address (`::ffff:1.2.3.4`) also matches IPv4 literals and sets.
//!
//! # Limits
//!
//! Sources longer than [`MAX_SOURCE_LEN`] bytes, or nesting (parentheses,
//! `not`, function calls) deeper than [`MAX_DEPTH`], are compile errors, so
//! no input can exhaust the stack; a regex may compile to at most 2 MiB.

mod eval;
mod lexer;
mod parser;
mod prefilter;
mod sets;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_values;

use std::sync::Arc;

use ahash::AHashMap;

use crate::request::Request;

pub use prefilter::ExprIndex;
pub use sets::{IntSet, IpSet};

/// The longest source accepted by [`Expr::compile`], in bytes.
pub const MAX_SOURCE_LEN: usize = 64 * 1024;

/// The deepest nesting of parentheses, `not` and function calls accepted.
pub const MAX_DEPTH: usize = 64;

/// Named lists usable in expressions as `$name` (on the right of `in`).
///
/// Each list is parsed once when inserted into a string set, an integer set
/// and an IP set, so any number of expressions can share it cheaply.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    lists: AHashMap<String, sets::ListSets>,
}

impl Lists {
    /// No lists.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds list `$name`. Items are strings from the policy file: each is an
    /// IP address, a CIDR, an integer (or `a..b` range) or any other string.
    /// Which interpretation applies depends on the field the list is matched
    /// against; an item that does not fit that field's type is a compile
    /// error of the expression using it.
    ///
    /// Errors (a message) when `name` is not made of `[A-Za-z0-9_]` or is
    /// already taken.
    pub fn insert(&mut self, name: &str, items: &[String]) -> Result<(), String> {
        if name.is_empty() {
            return Err("a list name must not be empty".to_owned());
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "invalid list name `{name}`: use only letters, digits and `_`"
            ));
        }
        if self.lists.contains_key(name) {
            return Err(format!("duplicate list `${name}`"));
        }
        self.lists
            .insert(name.to_owned(), sets::ListSets::build(items));
        Ok(())
    }

    /// Whether list `$name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.lists.contains_key(name)
    }

    /// The number of lists.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Whether there is no list.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&sets::ListSets> {
        self.lists.get(name)
    }
}

/// A compile error, with where in the source it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Byte offset into the source.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl ExprError {
    /// An error at byte `offset` of `src` (clamped to the source, rounded
    /// down to a character boundary).
    pub(crate) fn at(src: &str, offset: usize, message: String) -> Self {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line = 1 + memchr::memchr_iter(b'\n', before.as_bytes()).count();
        let line_start = memchr::memrchr(b'\n', before.as_bytes()).map_or(0, |i| i + 1);
        let column = 1 + before[line_start..].chars().count();
        ExprError {
            message,
            offset,
            line,
            column,
        }
    }
}

/// A compiled expression. Cheap to clone (shared), `Send` and `Sync`.
#[derive(Debug, Clone)]
pub struct Expr {
    source: Arc<str>,
    root: Arc<eval::Node>,
}

impl Expr {
    /// Parses, type-checks and compiles `src`, resolving `$name` lists in
    /// `lists`.
    pub fn compile(src: &str, lists: &Lists) -> Result<Expr, ExprError> {
        Self::compile_all(src, lists).map_err(|mut errors| errors.swap_remove(0))
    }

    /// [`Expr::compile`], reporting every problem found (at least one), in
    /// source order: a comparison that does not compile is skipped up to the
    /// next `and`, `or`, `xor` or unmatched `)`, so the ones after it are
    /// checked too. A syntax error that leaves no comparison to resume at
    /// ends the list.
    pub fn compile_all(src: &str, lists: &Lists) -> Result<Expr, Vec<ExprError>> {
        if src.len() > MAX_SOURCE_LEN {
            return Err(vec![ExprError::at(
                src,
                0,
                format!(
                    "expression is too long ({} bytes; at most {MAX_SOURCE_LEN})",
                    src.len()
                ),
            )]);
        }
        match parser::parse(src, lists) {
            Ok(root) => Ok(Expr {
                source: Arc::from(src),
                root: Arc::new(root),
            }),
            Err(errors) if errors.is_empty() => Err(vec![ExprError::at(
                src,
                0,
                "internal: the expression did not compile".into(),
            )]),
            Err(errors) => Err(errors
                .into_iter()
                .map(|e| ExprError::at(src, e.offset, e.message))
                .collect()),
        }
    }

    /// Whether `req` matches. Allocates only when a function must build a
    /// new string (`concat`, `url_decode` of an escaped value, `lower` of a
    /// non-ASCII upper-case value, ...), or a value has bytes that are not
    /// UTF-8, or `http.cookie` joins several `Cookie` fields.
    pub fn eval(&self, req: &Request<'_>) -> bool {
        self.root.eval(req)
    }

    /// The source text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }
}
