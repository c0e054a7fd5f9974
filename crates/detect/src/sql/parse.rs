//! A recursive-descent recognizer over the tokens of [`super::lex`]: SQL
//! expressions, `SELECT` statements and the statements attackers stack.
//! Each rule returns the index after what it recognized, or `None`; what
//! was seen on the way (a `*` list, a function call, a comparison of two
//! constants, ...) is the evidence the detector weighs.

use super::lex::{Kind, Tok};

/// Deepest nesting of expressions and subqueries followed.
const MAX_DEPTH: usize = 24;
/// Most parser steps for one start position.
const MAX_STEPS: usize = 4_000;

/// Words that are never an identifier or an alias.
const RESERVED: &[&str] = &[
    "select",
    "from",
    "where",
    "union",
    "and",
    "or",
    "xor",
    "not",
    "case",
    "when",
    "then",
    "else",
    "end",
    "is",
    "null",
    "like",
    "rlike",
    "regexp",
    "in",
    "between",
    "as",
    "on",
    "join",
    "inner",
    "outer",
    "left",
    "right",
    "cross",
    "group",
    "order",
    "by",
    "having",
    "limit",
    "offset",
    "into",
    "values",
    "set",
    "drop",
    "delete",
    "insert",
    "update",
    "exec",
    "execute",
    "declare",
    "waitfor",
    "all",
    "distinct",
    "asc",
    "desc",
    "true",
    "false",
    "with",
    "procedure",
    "intersect",
    "except",
    "minus",
    "fetch",
    "for",
    "div",
    "mod",
    "escape",
    "top",
];

/// Functions whose call in a value is SQL, not prose.
const SQL_FUNCTIONS: &[&str] = &[
    "version",
    "user",
    "current_user",
    "system_user",
    "session_user",
    "database",
    "schema",
    "sleep",
    "pg_sleep",
    "benchmark",
    "load_file",
    "char",
    "chr",
    "nchar",
    "concat",
    "concat_ws",
    "group_concat",
    "string_agg",
    "listagg",
    "substring",
    "substr",
    "mid",
    "ascii",
    "ord",
    "hex",
    "unhex",
    "count",
    "length",
    "len",
    "cast",
    "convert",
    "extractvalue",
    "updatexml",
    "db_name",
    "user_name",
    "host_name",
    "is_srvrolemember",
    "xp_cmdshell",
    "randomblob",
    "sqlite_version",
    "dbms_pipe",
    "utl_inaddr",
    "ifnull",
    "isnull",
    "nvl",
    "coalesce",
    "if",
    "iif",
    "elt",
    "make_set",
    "floor",
    "rand",
    "md5",
    "sha1",
    "lower",
    "upper",
    "trim",
    "replace",
    "reverse",
    "left",
    "right",
    "json_extract",
    "current_database",
    "getpgusername",
    "pg_read_file",
    "to_char",
    "instr",
    "locate",
    "position",
    "row_count",
    "found_rows",
    "connection_id",
    "last_insert_id",
    "exp",
];

/// Tables and schemas that only an attacker's query names.
const SYSTEM_TABLES: &[&str] = &[
    "information_schema",
    "all_tables",
    "all_tab_columns",
    "user_tables",
    "user_tab_columns",
    "dba_users",
    "all_users",
    "dual",
    "sysobjects",
    "syscolumns",
    "sysusers",
    "sysdatabases",
    "sys",
    "master",
    "mysql",
    "pg_catalog",
    "pg_tables",
    "pg_user",
    "pg_shadow",
    "pg_database",
    "sqlite_master",
    "sqlite_schema",
    "msysobjects",
    "v$version",
    "performance_schema",
];

/// What was seen while recognizing an expression or a statement.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Seen {
    /// A bare identifier (a column, a word of prose).
    pub ident: bool,
    /// A known SQL function call.
    pub sql_call: bool,
    /// Any call `f(...)`.
    pub call: bool,
    /// `CASE ... END`.
    pub case: bool,
    /// A subquery.
    pub subquery: bool,
    /// `@@var` / `@var`.
    pub var: bool,
    /// A comparison whose two sides hold no identifier (`1=1`, `'a'='a'`),
    /// or of an identifier with itself.
    pub const_cmp: bool,
    /// Any comparison.
    pub cmp: bool,
    /// A literal (number, string, NULL).
    pub literal: bool,
    /// A qualified name (`a.b`).
    pub qualified: bool,
    /// A system table or schema.
    pub system_table: bool,
    /// A `*` select list.
    pub star: bool,
    /// A `FROM` clause.
    pub from: bool,
    /// A `WHERE` / `GROUP BY` / `ORDER BY` / `LIMIT` clause.
    pub clause: bool,
    /// Select-list items.
    pub items: usize,
}

impl Seen {
    fn merge(&mut self, o: Seen) {
        self.ident |= o.ident;
        self.sql_call |= o.sql_call;
        self.call |= o.call;
        self.case |= o.case;
        self.subquery |= o.subquery;
        self.var |= o.var;
        self.const_cmp |= o.const_cmp;
        self.cmp |= o.cmp;
        self.literal |= o.literal;
        self.qualified |= o.qualified;
        self.system_table |= o.system_table;
        self.star |= o.star;
        self.from |= o.from;
        self.clause |= o.clause;
    }
}

pub(super) struct Parser<'a> {
    pub src: &'a [u8],
    pub toks: &'a [Tok],
    depth: usize,
    steps: usize,
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a [u8], toks: &'a [Tok]) -> Self {
        Parser {
            src,
            toks,
            depth: 0,
            steps: 0,
        }
    }

    /// Starts a new attempt (resets the step budget).
    pub fn reset(&mut self) {
        self.depth = 0;
        self.steps = 0;
    }

    pub fn kind(&self, i: usize) -> Option<Kind> {
        self.toks.get(i).map(|t| t.kind)
    }

    pub fn text(&self, i: usize) -> &'a [u8] {
        self.toks
            .get(i)
            .map_or(&[][..], |t| &self.src[t.start..t.end])
    }

    /// Whether token `i` is the keyword `kw` (lower case).
    pub fn is(&self, i: usize, kw: &str) -> bool {
        self.kind(i) == Some(Kind::Word) && self.text(i).eq_ignore_ascii_case(kw.as_bytes())
    }

    pub fn is_op(&self, i: usize, op: &str) -> bool {
        self.kind(i) == Some(Kind::Op) && self.text(i) == op.as_bytes()
    }

    fn is_reserved(&self, i: usize) -> bool {
        self.kind(i) == Some(Kind::Word) && RESERVED.iter().any(|k| self.is(i, k))
    }

    fn is_name(&self, i: usize) -> bool {
        match self.kind(i) {
            Some(Kind::Quoted) => true,
            Some(Kind::Word) => !self.is_reserved(i),
            _ => false,
        }
    }

    /// Whether the statement may end at `i`: the end, `;`, a comment, or
    /// the dangling quote the application adds (an empty unclosed string).
    pub fn at_end(&self, i: usize) -> bool {
        matches!(
            self.kind(i),
            None | Some(Kind::Semi) | Some(Kind::LineComment)
        ) || (matches!(
            self.kind(i),
            Some(Kind::Str {
                closed: false,
                empty: true
            })
        ) && i + 1 == self.toks.len())
    }

    fn tick(&mut self) -> Option<()> {
        self.steps += 1;
        (self.steps <= MAX_STEPS).then_some(())
    }

    /// `expr` (OR level).
    pub fn expr(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        self.tick()?;
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let r = self.or_expr(i, seen);
        self.depth -= 1;
        r
    }

    fn or_expr(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut j = self.and_expr(i, seen)?;
        while self.is(j, "or") || self.is(j, "xor") || self.is_op(j, "||") {
            j = self.and_expr(j + 1, seen)?;
        }
        Some(j)
    }

    fn and_expr(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut j = self.not_expr(i, seen)?;
        while self.is(j, "and") || self.is_op(j, "&&") {
            j = self.not_expr(j + 1, seen)?;
        }
        Some(j)
    }

    fn not_expr(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        self.tick()?;
        if self.is(i, "not") || self.is_op(i, "!") {
            return self.not_expr(i + 1, seen);
        }
        self.cmp_expr(i, seen)
    }

    fn cmp_expr(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut left = Seen::default();
        let j = self.add_expr(i, &mut left)?;
        let left_text = self.text(i);
        let single_left = j == i + 1;
        seen.merge(left);
        let mut k = j;
        if self.is(k, "not") {
            k += 1;
        }
        let mut right = Seen::default();
        let end = if self.kind(k) == Some(Kind::Op)
            && matches!(
                self.text(k),
                b"=" | b"==" | b"<>" | b"!=" | b"<" | b">" | b"<=" | b">=" | b"<=>"
            ) {
            let e = self.add_expr(k + 1, &mut right)?;
            if !left.ident && !right.ident
                || (single_left && e == k + 2 && left.ident && self.text(k + 1) == left_text)
            {
                seen.const_cmp = true;
            }
            e
        } else if self.is(k, "like") || self.is(k, "rlike") || self.is(k, "regexp") {
            let e = self.add_expr(k + 1, &mut right)?;
            if !left.ident && !right.ident {
                seen.const_cmp = true;
            }
            e
        } else if self.is(k, "is") {
            let mut e = k + 1;
            if self.is(e, "not") {
                e += 1;
            }
            if !(self.is(e, "null") || self.is(e, "true") || self.is(e, "false")) {
                return None;
            }
            if !left.ident {
                seen.const_cmp = true;
            }
            e + 1
        } else if self.is(k, "between") {
            let e = self.add_expr(k + 1, &mut right)?;
            if !self.is(e, "and") {
                return None;
            }
            let e = self.add_expr(e + 1, &mut right)?;
            if !left.ident && !right.ident {
                seen.const_cmp = true;
            }
            e
        } else if self.is(k, "in") && self.kind(k + 1) == Some(Kind::LParen) {
            let e = self.list_or_select(k + 1, &mut right)?;
            if !left.ident && !right.ident {
                seen.const_cmp = true;
            }
            e
        } else if k != j {
            return None;
        } else {
            return Some(j);
        };
        seen.cmp = true;
        seen.merge(right);
        Some(end)
    }

    fn add_expr(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut j = self.unary(i, seen)?;
        loop {
            let op = match self.kind(j) {
                Some(Kind::Op) => matches!(
                    self.text(j),
                    b"+" | b"-" | b"/" | b"%" | b"|" | b"&" | b"^" | b"::"
                ),
                Some(Kind::Star) => true,
                _ => self.is(j, "div") || self.is(j, "mod"),
            };
            if !op {
                return Some(j);
            }
            // `::type` casts (PostgreSQL).
            if self.is_op(j, "::") {
                if !self.is_name(j + 1) {
                    return None;
                }
                j += 2;
                continue;
            }
            j = self.unary(j + 1, seen)?;
        }
    }

    fn unary(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        self.tick()?;
        if self.kind(i) == Some(Kind::Op) && matches!(self.text(i), b"-" | b"+" | b"~" | b"!") {
            return self.unary(i + 1, seen);
        }
        self.primary(i, seen)
    }

    fn primary(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        self.tick()?;
        match self.kind(i)? {
            Kind::Num => {
                seen.literal = true;
                Some(i + 1)
            }
            Kind::Str { closed: true, .. } => {
                seen.literal = true;
                Some(i + 1)
            }
            Kind::Var => {
                seen.var = true;
                Some(i + 1)
            }
            Kind::LParen => {
                let j = self.list_or_select(i, seen)?;
                Some(j)
            }
            Kind::Word if self.is(i, "null") || self.is(i, "true") || self.is(i, "false") => {
                seen.literal = true;
                Some(i + 1)
            }
            Kind::Word if self.is(i, "case") => self.case(i, seen),
            Kind::Word | Kind::Quoted => {
                // A string with a charset / type prefix: N'x', X'41', _utf8'x'.
                if matches!(self.kind(i + 1), Some(Kind::Str { closed: true, .. }))
                    && self.toks[i].end == self.toks[i + 1].start
                {
                    seen.literal = true;
                    return Some(i + 2);
                }
                if self.kind(i + 1) == Some(Kind::LParen) && self.kind(i) == Some(Kind::Word) {
                    let known = SQL_FUNCTIONS.iter().any(|f| self.is(i, f));
                    if self.is_reserved(i) && !known {
                        return None;
                    }
                    let j = self.call_args(i + 1, seen)?;
                    seen.call = true;
                    seen.sql_call |= known;
                    return Some(j);
                }
                if !self.is_name(i) {
                    return None;
                }
                let mut j = i + 1;
                while self.kind(j) == Some(Kind::Dot) && self.is_name(j + 1) {
                    seen.qualified = true;
                    j += 2;
                }
                seen.ident = true;
                Some(j)
            }
            _ => None,
        }
    }

    /// `( args )` of a call: empty, `*`, `DISTINCT expr`, expressions.
    fn call_args(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut j = i + 1;
        if self.kind(j) == Some(Kind::RParen) {
            return Some(j + 1);
        }
        if self.kind(j) == Some(Kind::Star) && self.kind(j + 1) == Some(Kind::RParen) {
            return Some(j + 2);
        }
        if self.is(j, "distinct") {
            j += 1;
        }
        loop {
            j = self.expr(j, seen)?;
            // CAST(x AS type), CONVERT(x USING y).
            if self.is(j, "as") || self.is(j, "using") {
                j += 1;
                if !self.is_name(j) && !self.is(j, "char") {
                    return None;
                }
                j += 1;
                if self.kind(j) == Some(Kind::LParen) {
                    j = self.call_args(j, seen)?;
                }
            }
            match self.kind(j)? {
                Kind::Comma => j += 1,
                Kind::RParen => return Some(j + 1),
                _ => return None,
            }
        }
    }

    /// `( select )` or `( expr, ... )`.
    fn list_or_select(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut j = i + 1;
        if self.is(j, "select") {
            let mut inner = Seen::default();
            j = self.select(j, &mut inner)?;
            seen.merge(inner);
            seen.subquery = true;
        } else {
            loop {
                j = self.expr(j, seen)?;
                if self.kind(j) == Some(Kind::Comma) {
                    j += 1;
                } else {
                    break;
                }
            }
        }
        (self.kind(j) == Some(Kind::RParen)).then_some(j + 1)
    }

    /// `CASE [expr] WHEN expr THEN expr ... [ELSE expr] END`.
    fn case(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        let mut j = i + 1;
        if !self.is(j, "when") {
            j = self.expr(j, seen)?;
        }
        let mut whens = 0;
        while self.is(j, "when") {
            j = self.expr(j + 1, seen)?;
            if !self.is(j, "then") {
                return None;
            }
            j = self.expr(j + 1, seen)?;
            whens += 1;
        }
        if whens == 0 {
            return None;
        }
        if self.is(j, "else") {
            j = self.expr(j + 1, seen)?;
        }
        if !self.is(j, "end") {
            return None;
        }
        seen.case = true;
        Some(j + 1)
    }

    /// An optional alias: `AS name` or a bare name.
    fn alias(&self, i: usize) -> usize {
        if self.is(i, "as")
            && (self.is_name(i + 1)
                || matches!(self.kind(i + 1), Some(Kind::Str { closed: true, .. })))
        {
            return i + 2;
        }
        if self.is_name(i) {
            return i + 1;
        }
        i
    }

    /// `SELECT [DISTINCT|ALL|TOP n] items [FROM tables] [WHERE ...]
    /// [GROUP BY ...] [HAVING ...] [ORDER BY ...] [LIMIT ...]
    /// [UNION [ALL] select]`.
    pub fn select(&mut self, i: usize, seen: &mut Seen) -> Option<usize> {
        self.tick()?;
        if self.depth >= MAX_DEPTH || !self.is(i, "select") {
            return None;
        }
        self.depth += 1;
        let r = self.select_body(i + 1, seen);
        self.depth -= 1;
        r
    }

    fn select_body(&mut self, mut j: usize, seen: &mut Seen) -> Option<usize> {
        while self.is(j, "distinct") || self.is(j, "all") || self.is(j, "sql_calc_found_rows") {
            j += 1;
        }
        if self.is(j, "top") && self.kind(j + 1) == Some(Kind::Num) {
            j += 2;
        }
        // The select list.
        loop {
            if self.kind(j) == Some(Kind::Star) {
                seen.star = true;
                j += 1;
            } else {
                let start = j;
                j = self.expr(j, seen)?;
                // `t.*`
                if self.kind(j) == Some(Kind::Dot) && self.kind(j + 1) == Some(Kind::Star) {
                    seen.star = true;
                    j += 2;
                }
                if j == start {
                    return None;
                }
                j = self.alias(j);
            }
            seen.items += 1;
            if self.kind(j) == Some(Kind::Comma) {
                j += 1;
            } else {
                break;
            }
        }
        if self.is(j, "into") {
            j += 1;
            while self.is_name(j)
                || self.kind(j) == Some(Kind::Var)
                || self.kind(j) == Some(Kind::Comma)
            {
                j += 1;
            }
        }
        if self.is(j, "from") {
            j = self.tables(j + 1, seen)?;
            seen.from = true;
        }
        if self.is(j, "where") {
            j = self.expr(j + 1, seen)?;
            seen.clause = true;
        }
        if self.is(j, "group") && self.is(j + 1, "by") {
            j = self.expr_list(j + 2, seen)?;
            seen.clause = true;
        }
        if self.is(j, "having") {
            j = self.expr(j + 1, seen)?;
            seen.clause = true;
        }
        if self.is(j, "order") && self.is(j + 1, "by") {
            j = self.expr_list(j + 2, seen)?;
            if self.is(j, "asc") || self.is(j, "desc") {
                j += 1;
            }
            seen.clause = true;
        }
        if self.is(j, "limit") {
            j = self.expr_list(j + 1, seen)?;
            if self.is(j, "offset") {
                j = self.expr(j + 1, seen)?;
            }
            seen.clause = true;
        }
        if self.is(j, "union") || self.is(j, "intersect") || self.is(j, "except") {
            let mut k = j + 1;
            if self.is(k, "all") || self.is(k, "distinct") {
                k += 1;
            }
            if self.is(k, "select") {
                j = self.select(k, seen)?;
            }
        }
        Some(j)
    }

    fn expr_list(&mut self, mut j: usize, seen: &mut Seen) -> Option<usize> {
        loop {
            j = self.expr(j, seen)?;
            if self.is(j, "asc") || self.is(j, "desc") {
                j += 1;
            }
            if self.kind(j) == Some(Kind::Comma) {
                j += 1;
            } else {
                return Some(j);
            }
        }
    }

    /// A table name (`a`, `a.b`, `` `a` ``); marks system tables.
    pub fn table_name(&self, i: usize, seen: &mut Seen) -> Option<usize> {
        if !self.is_name(i) && !self.is(i, "dual") {
            return None;
        }
        let mut j = i;
        loop {
            if SYSTEM_TABLES.iter().any(|t| self.is(j, t)) {
                seen.system_table = true;
            }
            if self.kind(j + 1) == Some(Kind::Dot) && self.is_name(j + 2) {
                seen.qualified = true;
                j += 2;
            } else {
                return Some(j + 1);
            }
        }
    }

    /// `FROM` targets: names or subqueries with aliases, joins, commas.
    fn tables(&mut self, mut j: usize, seen: &mut Seen) -> Option<usize> {
        loop {
            if self.kind(j) == Some(Kind::LParen) && self.is(j + 1, "select") {
                let mut inner = Seen::default();
                j = self.select(j + 1, &mut inner)?;
                seen.merge(inner);
                seen.subquery = true;
                if self.kind(j) != Some(Kind::RParen) {
                    return None;
                }
                j += 1;
            } else {
                j = self.table_name(j, seen)?;
            }
            j = self.alias(j);
            while self.is(j, "inner")
                || self.is(j, "left")
                || self.is(j, "right")
                || self.is(j, "outer")
                || self.is(j, "cross")
            {
                j += 1;
            }
            if self.is(j, "join") {
                j += 1;
                continue;
            }
            if self.is(j, "on") {
                j = self.expr(j + 1, seen)?;
            }
            if self.kind(j) == Some(Kind::Comma) {
                j += 1;
                continue;
            }
            return Some(j);
        }
    }
}
