//! Compile-error tests (messages and exact positions) and robustness.

use super::*;
use crate::request::tests::with_request;

fn lists() -> Lists {
    let mut l = Lists::new();
    l.insert("office", &["10.0.0.0/8".to_string()]).unwrap();
    l.insert("bots", &["curl/8.0".to_string()]).unwrap();
    l
}

/// The error for `src`: (line, column, message).
fn err(src: &str) -> (usize, usize, String) {
    match Expr::compile(src, &lists()) {
        Ok(_) => panic!("{src:?} compiled"),
        Err(e) => {
            assert_eq!(
                ExprError::at(src, e.offset, String::new()).column,
                e.column,
                "offset and column disagree for {src:?}"
            );
            (e.line, e.column, e.message)
        }
    }
}

fn check(src: &str, line: usize, column: usize, message: &str) {
    assert_eq!(err(src), (line, column, message.to_owned()), "for {src:?}");
}

#[test]
fn display_has_line_and_column() {
    let e = Expr::compile("http.host eq", &lists()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 13: expected a value after `eq`"
    );
    assert_eq!(e.offset, 12);
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().starts_with("line 1"));
}

#[test]
fn syntax_errors() {
    check("http.host eq", 1, 13, "expected a value after `eq`");
    check("http.host ==", 1, 13, "expected a value after `==`");
    check(r#"http.host eq "abc"#, 1, 14, "unterminated string");
    check(r#"http.host eq "abc\"#, 1, 14, "unterminated string");
    check(r#"http.host eq r#"abc"#, 1, 14, "unterminated raw string");
    check(
        r#"http.host equals "x""#,
        1,
        11,
        "unknown operator `equals`",
    );
    check(
        r#"http.host = "x""#,
        1,
        11,
        "unknown operator `=`; use `eq` or `==`",
    );
    check(
        r#"http.host eq "a" & true"#,
        1,
        18,
        "unknown operator `&`; use `and` or `&&`",
    );
    check(r#"(http.host eq "x""#, 1, 1, "unclosed `(`");
    check(r#"((http.host eq "x")"#, 1, 1, "unclosed `(`");
    check(
        r#"(http.host eq "x" "y")"#,
        1,
        19,
        "expected `)`, found a string",
    );
    check(
        r#"http.host eq "x")"#,
        1,
        17,
        "unexpected `)` without a matching `(`",
    );
    check(
        r#"http.host eq "x" foo"#,
        1,
        18,
        "expected `and`, `or`, `xor` or the end of the expression, found `foo`",
    );
    check(
        r#"http.host eq "x" and"#,
        1,
        21,
        "expected a field, a function or `(`, found the end of the expression",
    );
    check(
        "",
        1,
        1,
        "expected a field, a function or `(`, found the end of the expression",
    );
    check("http.host", 1, 10, "expected an operator after `http.host`");
    check(
        r#"lower(http.host) "x""#,
        1,
        18,
        "expected an operator after `lower(http.host)`, found a string",
    );
    check(
        r#"http.host eq "a" and @"#,
        1,
        22,
        "unexpected character `@`",
    );
    check(
        r#""a" eq http.host"#,
        1,
        1,
        "expected a field or a function, found a string (a literal goes on the right of an operator)",
    );
    check(
        r#"http.host strict "x""#,
        1,
        18,
        "expected `wildcard` after `strict`, found a string",
    );
    check("ip.src in $", 1, 11, "expected a list name after `$`");
}

#[test]
fn name_errors() {
    check(r#"foo.bar eq "x""#, 1, 1, "unknown field `foo.bar`");
    check(r#"foo(http.host) eq "x""#, 1, 1, "unknown function `foo`");
    check("ip.src in $foo", 1, 11, "unknown list `$foo`");
    check(
        r#"http.request.headers eq "x""#,
        1,
        22,
        "`http.request.headers` needs a key, as in http.request.headers[\"name\"]",
    );
    check(
        r#"http.request.headers["bad name"] eq "x""#,
        1,
        22,
        "invalid header name `bad name`",
    );
    check(
        r#"http.request.headers["a"][1] eq "x""#,
        1,
        26,
        "only `[0]` (the first value) may follow the key",
    );
    check(
        r#"http.request.uri.args[1] eq "x""#,
        1,
        23,
        "expected a string key after `[`, found an integer",
    );
}

#[test]
fn type_errors() {
    check(
        r#"ip.src contains "x""#,
        1,
        8,
        "operator `contains` cannot be used with an IP address",
    );
    check(
        r#"ip.src eq "x""#,
        1,
        11,
        "expected an IP address after `eq`, found a string",
    );
    check(
        r#"len(http.host) eq "a""#,
        1,
        19,
        "expected an integer after `eq`, found a string",
    );
    check(
        r#"len(http.host) ~ "a""#,
        1,
        16,
        "operator `~` cannot be used with an integer",
    );
    check(
        "http.host eq 5",
        1,
        14,
        "expected a string after `eq`, found an integer",
    );
    check(
        "http.host eq 1.2.3.4",
        1,
        14,
        "expected a string after `eq`, found an IP address",
    );
    check(
        "http.host eq true",
        1,
        14,
        "expected a string after `eq`, found a boolean",
    );
    check(
        r#"starts_with(http.host, "a") contains "x""#,
        1,
        29,
        "operator `contains` cannot be used with a boolean",
    );
    check(
        r#"starts_with(http.host, "a") eq "x""#,
        1,
        32,
        "expected a boolean after `eq`, found a string",
    );
    check(
        r#"lower(http.host, "a") eq "x""#,
        1,
        1,
        "`lower` takes 1 argument, found 2",
    );
    check(
        r#"concat() eq "x""#,
        1,
        1,
        "`concat` takes at least 1 argument, found 0",
    );
    check(
        r#"starts_with(http.host) eq true"#,
        1,
        1,
        "`starts_with` takes 2 arguments, found 1",
    );
    check(
        r#"lower(len(http.host)) eq "x""#,
        1,
        7,
        "`lower` expects string arguments, found an integer",
    );
    check(
        r#"len(ip.src) eq 1"#,
        1,
        5,
        "`len` expects string arguments, found an IP address",
    );
    check(
        "starts_with(http.host, http.referer)",
        1,
        24,
        "the second argument of `starts_with` must be a string literal",
    );
    check(r#"lower(http.host"#, 1, 6, "unclosed `(`");
    check(
        r#"lower(http.host "x")"#,
        1,
        17,
        "expected `,` or `)` after an argument of `lower`, found a string",
    );
}

#[test]
fn literal_and_set_errors() {
    check(
        "ip.src eq 10.0.0.0/33",
        1,
        19,
        "expected a prefix length of 0 to 32 after `/`",
    );
    check(
        "ip.src eq ::/129",
        1,
        13,
        "expected a prefix length of 0 to 128 after `/`",
    );
    check(
        "ip.src eq 300.1.1.1",
        1,
        11,
        "invalid IP address `300.1.1.1`",
    );
    check(
        "ip.src eq 1.2.3.4:80",
        1,
        11,
        "invalid IP address `1.2.3.4:80`",
    );
    check(
        "len(http.host) eq 99999999999999999999",
        1,
        19,
        "integer `99999999999999999999` is too large",
    );
    check(r#"http.host in {}"#, 1, 14, "empty set");
    check(r#"http.host in { "a""#, 1, 14, "unclosed `{`");
    check(
        r#"http.host in { "a" ( }"#,
        1,
        20,
        "expected a string or `}` in the set, found `(`",
    );
    check(
        r#"ip.src in { 10.0.0.0/8 "x" }"#,
        1,
        24,
        "expected an IP address after `in`, found a string",
    );
    check("len(http.host) in { 5..3 }", 1, 21, "empty range `5..3`");
    check(
        "ip.src in 10.0.0.0/8",
        1,
        11,
        "expected a set of addresses `{ ... }` or a list `$name` after `in`, found an IP address",
    );
    check(
        "ip.src in $bots",
        1,
        11,
        "list `$bots` has `curl/8.0`, which is not an IP address or CIDR",
    );
    check(
        "len(http.host) in $office",
        1,
        19,
        "list `$office` has `10.0.0.0/8`, which is not an integer",
    );
    let (l, c, m) = err(r#"http.host matches "(abc""#);
    assert_eq!((l, c), (1, 19));
    assert_eq!(m, "invalid regular expression: unclosed group");
    let (_, _, m) = err(r#"http.host matches "a{1000}{1000}{1000}""#);
    assert!(
        m.starts_with("invalid regular expression") || m.contains("too large"),
        "{m}"
    );
}

#[test]
fn positions_on_later_lines_count_characters() {
    check(
        "http.host eq \"a\"\n and\n  http.bogus eq \"b\"",
        3,
        3,
        "unknown field `http.bogus`",
    );
    check(
        "http.host eq \"a\" and\r\n\tnope eq \"b\"",
        2,
        2,
        "unknown field `nope`",
    );
    let src = r#"http.host eq "été" and nope eq "y""#;
    let e = Expr::compile(src, &lists()).unwrap_err();
    assert_eq!((e.offset, e.line, e.column), (25, 1, 24));
    check("(\n(\ntrue)", 1, 1, "unclosed `(`");
    check(
        "true and\n\n",
        3,
        1,
        "expected a field, a function or `(`, found the end of the expression",
    );
}

#[test]
fn limits() {
    let deep = format!("{}true{}", "(".repeat(65), ")".repeat(65));
    check(
        &deep,
        1,
        65,
        "expression is nested too deeply (more than 64 levels)",
    );
    let ok = format!("{}true{}", "(".repeat(64), ")".repeat(64));
    assert!(Expr::compile(&ok, &lists()).is_ok());
    let nots = format!("{}true", "not ".repeat(100));
    check(
        &nots,
        1,
        257,
        "expression is nested too deeply (more than 64 levels)",
    );
    let bangs = format!("{}true", "!".repeat(100_000));
    assert!(err(&bangs).2.starts_with("expression is too long"));
    let calls = format!(
        "{}http.host{} eq \"x\"",
        "lower(".repeat(70),
        ")".repeat(70)
    );
    check(
        &calls,
        1,
        390,
        "expression is nested too deeply (more than 64 levels)",
    );
    let long = "true or ".repeat(9000) + "true";
    assert_eq!(err(&long).0, 1);
    assert!(err(&long).2.starts_with("expression is too long"));
}

/// A tiny deterministic generator, to throw noise at the compiler.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

#[test]
fn noise_never_panics() {
    let pieces = [
        "ip.src",
        "http.host",
        "http.request.uri.path",
        "http.request.headers[\"a\"]",
        "http.request.uri.args[\"q\"]",
        "ip.geoip.asnum",
        "lower(",
        "len(",
        "url_decode(",
        "starts_with(",
        "concat(",
        ")",
        "(",
        "{",
        "}",
        "[",
        "]",
        ",",
        "eq",
        "==",
        "ne",
        "lt",
        ">=",
        "contains",
        "matches",
        "~",
        "wildcard",
        "strict",
        "in",
        "and",
        "or",
        "xor",
        "not",
        "!",
        "&&",
        "||",
        "^^",
        "\"x\"",
        "\"",
        "r#\"",
        "\"#",
        "1",
        "..",
        "8000",
        "10.0.0.0/8",
        "::1",
        "fe80::/10",
        "$office",
        "$nope",
        "true",
        "false",
        "\\",
        "é",
        "\n",
        " ",
        "*",
        "/",
        ":",
        ".",
        "1.2.3.4",
        "ends_with",
        "\"(?i)a+\"",
        "\"*a*\"",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let l = lists();
    let mut compiled = 0;
    for _ in 0..20_000 {
        let n = 1 + rng.next() % 12;
        let mut src = String::new();
        for _ in 0..n {
            src.push_str(rng.pick(&pieces));
            if rng.next() % 3 == 1 {
                src.push(' ');
            }
        }
        if let Ok(e) = Expr::compile(&src, &l) {
            compiled += 1;
            with_request("10.1.2.3", "GET", "/a?q=1", &[("a", "b")], |r| e.eval(r));
        }
    }
    assert!(compiled > 20, "only {compiled} compiled");
}

#[test]
fn every_prefix_of_a_valid_expression_is_handled() {
    let src = "lower(url_decode(http.request.uri.path)) contains \"/été\" and\n\
               not ip.src in { 10.0.0.0/8 2001:db8::/32 } or len(http.host) in { 1..5 } \
               xor http.request.headers[\"x\"][0] matches r#\"^a\"#";
    assert!(Expr::compile(src, &lists()).is_ok());
    for (i, _) in src.char_indices() {
        if let Err(e) = Expr::compile(&src[..i], &lists()) {
            assert!(e.offset <= i, "{e} for prefix {i}");
        }
    }
}

/// A random well-formed expression of nesting at most `depth`.
fn gen(rng: &mut Rng, depth: u32, out: &mut String) {
    const LEAVES: &[&str] = &[
        "ip.src in $office",
        "ip.src eq 10.1.2.3",
        "ip.src in { 10.0.0.0/8 ::1 }",
        "http.host eq \"h\"",
        "lower(http.request.uri.path) contains \"/a\"",
        "upper(http.request.headers[\"a\"]) eq \"B\"",
        "url_decode(http.request.uri.args[\"q\"]) wildcard \"*1*\"",
        "http.request.uri strict wildcard \"/a?*\"",
        "len(http.request.uri) in { 1..9 20 }",
        "ip.geoip.asnum ne 5",
        "http.request.method in { \"GET\" \"POST\" }",
        "http.user_agent matches \"(?i)bot\"",
        "starts_with(http.request.uri.path, \"/a\")",
        "ends_with(concat(http.host, \"x\"), \"x\") eq true",
        "http.request.uri.path starts_with \"/\"",
        "true",
        "false",
    ];
    if depth == 0 || rng.next() % 3 == 1 {
        out.push_str(rng.pick(LEAVES));
        return;
    }
    match rng.next() % 5 {
        0 => {
            out.push('(');
            gen(rng, depth - 1, out);
            out.push(')');
        }
        1 => {
            out.push_str(rng.pick(&["not ", "!"]));
            gen(rng, depth - 1, out);
        }
        _ => {
            gen(rng, depth - 1, out);
            out.push_str(rng.pick(&[" and ", " or ", " xor ", " && ", " || ", " ^^ ", "\n and "]));
            gen(rng, depth - 1, out);
        }
    }
}

#[test]
fn generated_expressions_compile_and_mutants_never_panic() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let l = lists();
    let mut broken = 0;
    for _ in 0..3000 {
        let mut src = String::new();
        gen(&mut rng, 6, &mut src);
        let e = match Expr::compile(&src, &l) {
            Ok(e) => e,
            Err(e) => panic!("{src:?}: {e}"),
        };
        with_request("10.1.2.3", "GET", "/a?q=1", &[("a", "b")], |r| e.eval(r));
        // Mutate: cut a random byte range out (at char boundaries).
        let bounds: Vec<usize> = src
            .char_indices()
            .map(|(i, _)| i)
            .chain([src.len()])
            .collect();
        let a = bounds[(rng.next() % bounds.len() as u64) as usize];
        let b = bounds[(rng.next() % bounds.len() as u64) as usize];
        let (a, b) = (a.min(b), a.max(b));
        let mutant = format!("{}{}", &src[..a], &src[b..]);
        match Expr::compile(&mutant, &l) {
            Ok(e) => {
                with_request("::1", "POST", "/", &[], |r| e.eval(r));
            }
            Err(e) => {
                broken += 1;
                assert!(e.offset <= mutant.len() && e.line >= 1 && e.column >= 1);
            }
        }
    }
    assert!(broken > 100);
}
