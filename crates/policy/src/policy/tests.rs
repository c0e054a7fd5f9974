//! Tests of the policy loader.
use super::*;

const EXAMPLE: &str = r#"
[lists]
office = ["10.0.0.0/8", "192.0.2.7"]

[[rules]]
id = "block-admin"
expression = 'http.request.uri.path starts_with "/admin" and not ip.src in $office'
action = "block"

[[rate_limits]]
id = "login"
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src"]
requests = 5
period = "10s"
mitigation_timeout = "60s"
"#;

#[test]
fn the_issue_example_compiles() {
    let p = Policy::from_toml(EXAMPLE, "p.toml").unwrap();
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.rules[0].action, Action::Block);
    assert_eq!(p.rules[0].status, 403);
    assert_eq!(p.rate_limits.len(), 1);
    let rl = &p.rate_limits[0];
    assert_eq!(
        rl.spec,
        LimitSpec {
            requests: 5,
            period_ms: 10_000,
            mitigation_timeout_ms: 60_000
        }
    );
    assert_eq!(rl.characteristics, vec![Characteristic::IpSrc]);
    assert_eq!(rl.status, 429);
    assert_eq!(p.digest.len(), 16);
}

#[test]
fn the_shipped_examples_compile() {
    for f in ["policy.toml", "bench-policy.toml"] {
        let path = format!("{}/../../examples/{f}", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = Policy::from_toml(&src, f) {
            panic!("{e}");
        }
    }
}

#[test]
fn expression_errors_point_into_the_file() {
    let src = "[[rules]]\nid = \"a\"\nexpression = 'http.host eq'\naction = \"block\"\n";
    let e = Policy::from_toml(src, "f.toml").unwrap_err();
    assert_eq!(e.0.len(), 1);
    let err = &e.0[0];
    assert_eq!((err.file.as_str(), err.line), ("f.toml", 3));
    // The error is at or after the start of the expression text (column 15 is after the quote).
    assert!(err.column >= 14, "{err}");
    assert!(err.message.starts_with("`a`:"), "{err}");
}

#[test]
fn multi_line_expression_errors_have_the_right_line() {
    let src = "[[rules]]\nid = \"a\"\nexpression = '''\nhttp.host eq \"x\"\nand nonsense.field eq 1\n'''\naction = \"block\"\n";
    let e = Policy::from_toml(src, "f.toml").unwrap_err();
    assert_eq!(e.0[0].line, 5, "{e}");
    assert_eq!(e.0[0].column, 5, "{e}");
}

#[test]
fn every_problem_is_reported() {
    let src = r#"
[[rules]]
id = "dup"
expression = 'http.host eq "a"'
action = "explode"

[[rules]]
id = "dup"
expression = 'http.host eq "b"'
action = "block"
status = 200

[[rate_limits]]
id = "rl"
expression = 'http.host eq "c"'
characteristics = ["nope"]
requests = 0
period = "10parsecs"
"#;
    let e = Policy::from_toml(src, "f.toml").unwrap_err();
    let msgs: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
    let joined = msgs.join("\n");
    for needle in [
        "f.toml:5:",
        "unknown action `explode`",
        "f.toml:8:",
        "duplicate id `dup`",
        "f.toml:11:",
        "status",
        "f.toml:16:",
        "f.toml:17:",
        "requests must be at least 1",
        "f.toml:18:",
        "unknown unit",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    // Sorted by position in the file.
    let lines: Vec<usize> = e.0.iter().map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn toml_syntax_and_unknown_fields_are_located() {
    let e = Policy::from_toml("[[rules]\nid = 1\n", "f.toml").unwrap_err();
    assert_eq!(e.0[0].line, 1, "{e}");
    let e = Policy::from_toml(
        "[[rules]]\nid = \"a\"\nexpresion = 'x'\naction = \"block\"\n",
        "f.toml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("expresion"), "{e}");
}

#[test]
fn every_error_of_every_section_and_expression_is_reported() {
    let src = r#"colour = "blue"
[[rules]]
id = "a"
expression = 'http.nope eq "x" and (http.host eq 5 or lower(http.bad) eq "y") and http.host eq "z"'
action = "block"
[[rules]]
id = "b"
expresion = 'http.host eq "x"'
action = "block"
[[rules]]
id = "c"
expression = 'http.host eq "x"'
action = "explode"
[[rate_limits]]
id = "r"
expression = 'http.host eq "x"'
requests = "five"
period = "1s"
"#;
    let e = Policy::from_toml(src, "f").unwrap_err();
    let lines: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "f:1:1: unknown section `colour` (expected one of `lists`, `allowlist`, `rules`, `rate_limits`, `escalations`, `waf`, `url_normalization`, `floods`, `attack_mode`, `connections`, `bots`)",
            "f:4:15: `a`: unknown field `http.nope`",
            "f:4:50: `a`: expected a string after `eq`, found an integer",
            "f:4:61: `a`: unknown field `http.bad`",
            "f:8:1: [[rules]]: unknown field `expresion`, expected one of `id`, `description`, `expression`, `action`, `simulate`, `status`, `enabled`",
            "f:13:10: rule `c`: unknown action `explode` (expected block, challenge, log, allow or skip)",
            "f:17:1: [[rate_limits]]: `requests`: invalid type: string \"five\", expected i64",
        ],
        "{e}"
    );
    // The first error of an expression is still what `Expr::compile` reports.
    let first =
        crate::expr::Expr::compile("a eq 1 and b eq 2", &crate::expr::Lists::new()).unwrap_err();
    assert_eq!(first.message, "unknown field `a`");
    let all = crate::expr::Expr::compile_all("a eq 1 and b eq 2", &crate::expr::Lists::new())
        .unwrap_err();
    assert_eq!(all.len(), 2);
    // A syntax error that leaves nothing to resume at ends the list.
    let all = crate::expr::Expr::compile_all("(http.host eq \"x\"", &crate::expr::Lists::new())
        .unwrap_err();
    assert_eq!(all.len(), 1, "{all:?}");
}

#[test]
fn bad_lists_and_allowlist_entries() {
    let src = "[allowlist]\nips = [\"10.0.0.0/8\", \"not-an-ip\"]\n";
    let e = Policy::from_toml(src, "f.toml").unwrap_err();
    assert_eq!(e.0[0].line, 2);
    assert!(e.0[0].message.contains("not-an-ip"));
    let p = Policy::from_toml(
        "[allowlist]\nips = [\"10.0.0.0/8\"]\nexpression = 'http.host eq \"ok\"'\n",
        "f",
    )
    .unwrap();
    assert!(p.allowlist.is_some());
}

#[test]
fn disabled_rules_are_checked_but_not_loaded() {
    let src = "[[rules]]\nid = \"a\"\nexpression = 'http.host eq \"x\"'\naction = \"block\"\nenabled = false\n";
    let p = Policy::from_toml(src, "f").unwrap();
    assert!(p.rules.is_empty());
}

#[test]
fn basic_string_escapes_map_back_to_the_file() {
    // In a basic string `\"` is two bytes in the file, one in the value.
    let src = "[[rules]]\nid = \"a\"\nexpression = \"http.host eq \\\"x\\\" and bogus.field eq 1\"\naction = \"block\"\n";
    let e = Policy::from_toml(src, "f").unwrap_err();
    let line = src.lines().nth(2).unwrap();
    let col = line.find("bogus").unwrap() + 1;
    assert_eq!((e.0[0].line, e.0[0].column), (3, col), "{e}");
}

#[test]
fn escalations_compile_and_report_errors() {
    let src = "[[escalations]]\nid = \"repeat\"\nsource = \"cidr\"\nthreshold = 10\nwindow = \"1m\"\nduration = \"1h\"\n";
    let p = Policy::from_toml(src, "f").unwrap();
    assert_eq!(p.escalations.len(), 1);
    assert_eq!(p.escalations[0].source, Source::Cidr);
    assert_eq!(
        p.escalations[0].kinds,
        vec![CheckKind::Rule, CheckKind::RateLimit]
    );
    assert_eq!(
        (p.escalations[0].window_ms, p.escalations[0].duration_ms),
        (60_000, 3_600_000)
    );
    let bad = "[[escalations]]\nid = \"x\"\nsource = \"planet\"\nkinds = [\"planet\"]\nthreshold = 1\nwindow = \"0s\"\nduration = \"x\"\n";
    let e = Policy::from_toml(bad, "f").unwrap_err();
    let lines: Vec<usize> = e.0.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7], "{e}");
}

#[test]
fn url_normalization_setting() {
    assert!(!Policy::from_toml("", "f").unwrap().forward_normalized_path);
    assert!(
        !Policy::from_toml("[url_normalization]\n", "f")
            .unwrap()
            .forward_normalized_path
    );
    let on = "[url_normalization]\nforward_normalized = true\n";
    assert!(Policy::from_toml(on, "f").unwrap().forward_normalized_path);
    let off = "[url_normalization]\nforward_normalized = false\n";
    assert!(!Policy::from_toml(off, "f").unwrap().forward_normalized_path);
    // A wrong type or an unknown key is located.
    let bad = "[[rules]]\nid = \"a\"\nexpression = 'true'\naction = \"log\"\n\n[url_normalization]\nforward_normalized = \"yes\"\n";
    let e = Policy::from_toml(bad, "f.toml").unwrap_err();
    assert_eq!((e.0[0].file.as_str(), e.0[0].line), ("f.toml", 7), "{e}");
    assert!(e.0[0].column >= 1, "{e}");
    assert!(e.to_string().contains("bool"), "{e}");
    let unknown = "[url_normalization]\nforward = true\n";
    let e = Policy::from_toml(unknown, "f.toml").unwrap_err();
    assert_eq!(e.0[0].line, 2, "{e}");
    assert!(e.to_string().contains("forward_normalized"), "{e}");
}

#[test]
fn line_col_counts_chars() {
    assert_eq!(line_col("ab\ncé d", 7), (2, 4));
    assert_eq!(line_col("", 10), (1, 1));
}

#[test]
fn rate_limit_scopes() {
    let src = |scope: &str| {
        format!(
            "[[rate_limits]]\nid = \"a\"\nexpression = 'true'\nrequests = 1\nperiod = \"1s\"\n{scope}\n"
        )
    };
    let p = Policy::from_toml(&src(""), "p.toml").unwrap();
    assert_eq!(p.rate_limits[0].scope, LimitScope::Local);
    let p = Policy::from_toml(&src("scope = \"local\""), "p.toml").unwrap();
    assert_eq!(p.rate_limits[0].scope, LimitScope::Local);
    let p = Policy::from_toml(&src("scope = \"global\""), "p.toml").unwrap();
    assert_eq!(p.rate_limits[0].scope, LimitScope::Global);
    let e = Policy::from_toml(&src("scope = \"fleet\""), "p.toml").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("unknown scope `fleet`"), "{msg}");
    assert!(msg.contains("p.toml:6"), "{msg}");
}
