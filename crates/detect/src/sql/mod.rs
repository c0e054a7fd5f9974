//! SQL by grammar: whole statements and clauses in a value, recognized by a
//! tokenizer ([`lex`]) and a recursive-descent recognizer ([`parse`]), not
//! by token patterns.
//!
//! The value is read three ways: as it is (a number or raw SQL context),
//! and inside a single- and a double-quoted string (`'` + value + `'`: the
//! application's own quotes around it). It is SQL when it holds
//! - a `SELECT` with structure no prose has: a `*` list, a SQL function
//!   call, `CASE ... END`, `@@variable`, a subquery, a system table
//!   (`all_tables`, `information_schema`, ...), a comparison of constants;
//!   or a literal / list select placed after a break (`UNION`, `)`, a
//!   quote, `;`) that ends the value; or `FROM name WHERE ...`;
//! - a statement stacked after `;` (`DROP TABLE x`, `DELETE FROM x`,
//!   `INSERT INTO x VALUES (...)`, `UPDATE x SET a=b`, `EXEC xp_...`,
//!   `WAITFOR DELAY '...'`, `SHUTDOWN`, `DECLARE @x ...`, a `SELECT`)
//!   that runs to the end of the value, a `;` or a comment;
//! - a boolean clause right after the quote or number it breaks out of
//!   (`' OR 'a'='a`, `1 AND 1=1--`, `' OR sleep(5)#`) that ends the value,
//!   or a quote closed and the rest commented out (`admin'--`).
//!
//! Gives up, by design: SQL words in prose ("select the best from our
//! range", "drop table mountain"), a `SELECT` naming plain columns of a
//! plain table with no clause (`SELECT name FROM users`, read like prose),
//! statements that do not end cleanly, and dialect corners the grammar does
//! not know (those fail to parse and pass). libinjection (rule 942100)
//! still sees every value.

mod lex;
mod parse;

use crate::text::{capped, contains_ci};
use crate::{stats, Detector, Finding};
use lex::Kind;
use parse::{Parser, Seen};

/// Finds SQL in `input` (see the module documentation).
pub fn detect(input: impl AsRef<[u8]>) -> Option<Finding> {
    let found = find(capped(input.as_ref()));
    stats::record(Detector::Sql, found.is_some());
    found
}

/// Words one of which every recognized construct holds.
const TRIGGERS: &[&[u8]] = &[
    b"select",
    b"or",
    b"and",
    b"xor",
    b"||",
    b"&&",
    b"drop",
    b"delete",
    b"insert",
    b"update",
    b"exec",
    b"waitfor",
    b"shutdown",
    b"declare",
    b"truncate",
    b"alter",
    b"create",
    b"--",
    b"#",
    b"copy",
    b"set",
];

fn find(input: &[u8]) -> Option<Finding> {
    if !TRIGGERS.iter().any(|t| contains_ci(input, t)) {
        return None;
    }
    let mut buf = Vec::with_capacity(input.len() + 2);
    for quote in [None, Some(b'\''), Some(b'"')] {
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
        let toks = lex::tokens(&buf);
        let mut p = Parser::new(&buf, &toks);
        if let Some(f) = check(&mut p, quote.is_some()) {
            return Some(f);
        }
    }
    None
}

fn check(p: &mut Parser<'_>, quoted: bool) -> Option<Finding> {
    let evidence = |p: &Parser<'_>, from: usize, to: usize| -> String {
        let start = p.toks.get(from).map_or(0, |t| t.start);
        let end = p
            .toks
            .get(to.saturating_sub(1).max(from))
            .map_or(p.src.len(), |t| t.end);
        String::from_utf8_lossy(&p.src[start.min(end)..end]).into_owned()
    };
    if let Some((i, j, reason)) = boolean_after_break(p, quoted) {
        return Some(Finding::new(Detector::Sql, reason, &evidence(p, i, j)));
    }
    for i in 0..p.toks.len() {
        p.reset();
        if p.kind(i) == Some(Kind::Semi) {
            if let Some(j) = stacked(p, i + 1) {
                return Some(Finding::new(
                    Detector::Sql,
                    "statement stacked after ;",
                    &evidence(p, i, j),
                ));
            }
        }
        if p.is(i, "select") {
            p.reset();
            let mut seen = Seen::default();
            if let Some(j) = p.select(i, &mut seen) {
                if let Some(reason) = judge_select(p, i, j, &seen) {
                    return Some(Finding::new(Detector::Sql, reason, &evidence(p, i, j)));
                }
            }
        }
    }
    None
}

/// Whether the token before `i` breaks out of a value into SQL.
fn break_before(p: &Parser<'_>, i: usize) -> bool {
    if i == 0 {
        return false;
    }
    let k = i - 1;
    matches!(
        p.kind(k),
        Some(Kind::Semi | Kind::RParen | Kind::LParen | Kind::Num | Kind::Str { closed: true, .. })
    ) || p.is(k, "union")
        || ((p.is(k, "all") || p.is(k, "distinct")) && p.is(k.wrapping_sub(1), "union"))
}

fn judge_select(p: &Parser<'_>, i: usize, j: usize, s: &Seen) -> Option<&'static str> {
    let strong = s.star
        || s.sql_call
        || s.case
        || s.var
        || s.subquery
        || s.system_table
        || s.const_cmp
        || (s.from && s.qualified);
    let weak = s.literal || s.items >= 2 || s.call || (s.clause && s.cmp);
    let brk = break_before(p, i);
    let end = p.at_end(j);
    let union = p.is(i.wrapping_sub(1), "union")
        || p.is(i.wrapping_sub(1), "all") && p.is(i.wrapping_sub(2), "union");
    if union && (strong || weak) {
        return Some("UNION SELECT");
    }
    if strong && (end || brk || i == 0) {
        return Some("SELECT statement");
    }
    if weak && brk && end {
        return Some("SELECT after a break");
    }
    if s.from && s.clause && s.cmp && (i == 0 || brk) {
        return Some("SELECT ... FROM ... WHERE");
    }
    None
}

/// A boolean clause right after the quote or number the value starts
/// with: (start, end, reason).
fn boolean_after_break(p: &mut Parser<'_>, quoted: bool) -> Option<(usize, usize, &'static str)> {
    let first_ok = if quoted {
        matches!(p.kind(0), Some(Kind::Str { closed: true, .. }))
    } else {
        p.kind(0) == Some(Kind::Num)
    };
    if !first_ok {
        return None;
    }
    let mut i = 1;
    while p.kind(i) == Some(Kind::RParen) {
        i += 1;
    }
    if quoted && i == 1 && p.kind(1) == Some(Kind::LineComment) {
        return Some((0, 2, "quote closed and the query commented out"));
    }
    let boolean = p.is(i, "or")
        || p.is(i, "and")
        || p.is(i, "xor")
        || p.is(i, "having")
        || p.is_op(i, "||")
        || p.is_op(i, "&&");
    if !boolean {
        return None;
    }
    // The parentheses the value closed are opened again for the
    // application's own closing ones: `') OR ('a'='a`.
    let closed = i - 1;
    let mut start = i + 1;
    let mut seen;
    let j = loop {
        p.reset();
        seen = Seen::default();
        match p.expr(start, &mut seen) {
            Some(j) if p.at_end(j) => break j,
            _ if start - (i + 1) < closed && p.kind(start) == Some(Kind::LParen) => start += 1,
            _ => return None,
        }
    };
    let commented = p.kind(j) == Some(Kind::LineComment);
    if seen.const_cmp {
        return Some((0, j, "tautology after a break"));
    }
    if (seen.sql_call || seen.case || seen.subquery) && !seen.ident {
        return Some((0, j, "SQL expression after a break"));
    }
    if commented && seen.literal && !seen.ident {
        return Some((0, j, "constant condition and a comment after a break"));
    }
    None
}

/// A statement stacked at `i` (after a `;`) that ends cleanly: its end.
fn stacked(p: &mut Parser<'_>, i: usize) -> Option<usize> {
    let mut seen = Seen::default();
    let rest = |p: &Parser<'_>, mut j: usize| {
        while !p.at_end(j) {
            j += 1;
        }
        j
    };
    let j = if p.is(i, "drop") {
        let objects = [
            "table",
            "database",
            "view",
            "user",
            "procedure",
            "function",
            "schema",
            "index",
            "trigger",
        ];
        if !objects.iter().any(|o| p.is(i + 1, o)) {
            return None;
        }
        let mut j = i + 2;
        if p.is(j, "if") && p.is(j + 1, "exists") {
            j += 2;
        }
        p.table_name(j, &mut seen)?
    } else if p.is(i, "delete") && p.is(i + 1, "from") {
        let j = p.table_name(i + 2, &mut seen)?;
        if p.is(j, "where") {
            p.expr(j + 1, &mut seen)?
        } else {
            j
        }
    } else if p.is(i, "insert") && p.is(i + 1, "into") {
        let mut j = p.table_name(i + 2, &mut seen)?;
        if p.kind(j) == Some(Kind::LParen) {
            j = p.expr(j, &mut seen)?;
        }
        if p.is(j, "values") {
            p.expr(j + 1, &mut seen)?
        } else if p.is(j, "select") {
            p.select(j, &mut seen)?
        } else {
            return None;
        }
    } else if p.is(i, "update") {
        let mut j = p.table_name(i + 1, &mut seen)?;
        if !p.is(j, "set") {
            return None;
        }
        loop {
            j = p.table_name(j + 1, &mut seen)?;
            if !p.is_op(j, "=") {
                return None;
            }
            j = p.expr(j + 1, &mut seen)?;
            if p.kind(j) != Some(Kind::Comma) {
                break;
            }
        }
        if p.is(j, "where") {
            p.expr(j + 1, &mut seen)?
        } else {
            j
        }
    } else if p.is(i, "truncate") {
        let j = if p.is(i + 1, "table") { i + 2 } else { i + 1 };
        p.table_name(j, &mut seen)?
    } else if p.is(i, "alter") || p.is(i, "create") || p.is(i, "grant") {
        let objects = [
            "table",
            "database",
            "user",
            "login",
            "procedure",
            "function",
            "trigger",
            "view",
            "role",
            "all",
            "select",
            "or",
        ];
        if !objects.iter().any(|o| p.is(i + 1, o)) {
            return None;
        }
        p.table_name(i + 2, &mut seen).map(|j| rest(p, j))?
    } else if p.is(i, "exec") || p.is(i, "execute") {
        let name = p.text(i + 1).to_ascii_lowercase();
        let quoted_cmd = matches!(p.kind(i + 1), Some(Kind::LParen | Kind::Str { .. }));
        if !(name.starts_with(b"xp_")
            || name.starts_with(b"sp_")
            || name.starts_with(b"master.")
            || p.is(i + 1, "master")
            || quoted_cmd)
        {
            return None;
        }
        rest(p, i + 1)
    } else if p.is(i, "shutdown") {
        if p.is(i + 1, "with") && p.is(i + 2, "nowait") {
            i + 3
        } else {
            i + 1
        }
    } else if p.is(i, "waitfor") {
        if !(p.is(i + 1, "delay") || p.is(i + 1, "time"))
            || !matches!(p.kind(i + 2), Some(Kind::Str { .. }))
        {
            return None;
        }
        i + 3
    } else if p.is(i, "declare") {
        if p.kind(i + 1) != Some(Kind::Var) {
            return None;
        }
        rest(p, i + 2)
    } else if p.is(i, "set") {
        if p.kind(i + 1) != Some(Kind::Var) || !p.is_op(i + 2, "=") {
            return None;
        }
        p.expr(i + 3, &mut seen)?
    } else if p.is(i, "select") {
        let j = p.select(i, &mut seen)?;
        if !(seen.from || seen.star || seen.literal || seen.call || seen.var || seen.case) {
            return None;
        }
        j
    } else if p.is(i, "copy") {
        let j = p.table_name(i + 1, &mut seen)?;
        if !(p.is(j, "from") || p.is(j, "to")) || !p.is(j + 1, "program") {
            return None;
        }
        rest(p, j)
    } else {
        return None;
    };
    p.at_end(j).then_some(j)
}

#[cfg(test)]
mod tests;
