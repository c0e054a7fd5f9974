//! Evaluation tests: fields, operators, functions, sets, lists, logic.

use super::*;
use crate::request::tests::with_request;
use crate::request::Geo;

fn lists() -> Lists {
    let mut l = Lists::new();
    let items = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    l.insert(
        "office",
        &items(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]),
    )
    .unwrap();
    l.insert("bots", &items(&["curl/8.0", "wget"])).unwrap();
    l.insert("ports", &items(&["80", "443", "8000..8999"]))
        .unwrap();
    l
}

fn compile(src: &str) -> Expr {
    match Expr::compile(src, &lists()) {
        Ok(e) => e,
        Err(e) => panic!("{src:?} does not compile: {e}"),
    }
}

/// Evaluates `src` against a request from 203.0.113.9 for `GET uri` with `headers`.
fn eval_with(src: &str, ip: &str, uri: &str, headers: &[(&str, &str)]) -> bool {
    let e = compile(src);
    with_request(ip, "GET", uri, headers, |r| e.eval(r))
}

/// Evaluates `src` against a typical request.
fn eval(src: &str) -> bool {
    eval_with(
        src,
        "203.0.113.9",
        "/Admin/Login.php?id=42&q=caf%C3%A9+au+lait&id=43&empty=",
        &[
            ("host", "www.Example.com"),
            ("user-agent", "curl/8.0"),
            ("referer", "https://example.org/"),
            ("x-forwarded-for", "198.51.100.1, 10.0.0.1"),
            ("cookie", "session=abc123; theme=dark"),
            ("x-api-key", "K-1"),
            ("x-multi", "first"),
            ("x-multi", "second"),
        ],
    )
}

fn all_true(cases: &[&str]) {
    for src in cases {
        assert!(eval(src), "expected true: {src}");
    }
}

fn all_false(cases: &[&str]) {
    for src in cases {
        assert!(!eval(src), "expected false: {src}");
    }
}

#[test]
fn string_fields() {
    all_true(&[
        r#"http.host eq "www.example.com""#,
        r#"http.request.method eq "GET""#,
        r#"http.request.uri eq "/Admin/Login.php?id=42&q=caf%C3%A9+au+lait&id=43&empty=""#,
        r#"http.request.uri.path eq "/Admin/Login.php""#,
        r#"http.request.uri.query eq "id=42&q=caf%C3%A9+au+lait&id=43&empty=""#,
        r#"http.request.uri.args["id"] eq "42""#,
        r#"http.request.uri.args["q"] eq "café au lait""#,
        r#"http.request.uri.args["empty"] eq """#,
        r#"http.request.headers["x-api-key"] eq "K-1""#,
        r#"http.request.headers["X-API-Key"] eq "K-1""#,
        r#"http.request.headers["x-multi"] eq "first""#,
        r#"http.request.headers["x-multi"][0] eq "first""#,
        r#"http.request.cookies["session"] eq "abc123""#,
        r#"http.request.cookies["theme"] == "dark""#,
        r#"http.cookie eq "session=abc123; theme=dark""#,
        r#"http.request.headers["Cookie"] eq "session=abc123; theme=dark""#,
        r#"http.user_agent eq "curl/8.0""#,
        r#"http.referer eq "https://example.org/""#,
        r#"http.x_forwarded_for eq "198.51.100.1, 10.0.0.1""#,
    ]);
    all_false(&[
        r#"http.request.cookies["Session"] eq "abc123""#,
        r#"http.request.method eq "get""#,
    ]);
}

#[test]
fn absent_strings_are_empty() {
    all_true(&[
        r#"http.request.headers["x-missing"] eq """#,
        r#"http.request.headers["x-missing"] ne "x""#,
        r#"len(http.request.headers["x-missing"]) eq 0"#,
        r#"http.request.uri.args["nope"] eq """#,
        r#"http.request.cookies["nope"] eq """#,
        r#"ip.geoip.country eq """#,
        r#"not http.request.headers["x-missing"] contains "a""#,
    ]);
    assert!(eval_with(
        r#"http.cookie eq "" and http.host eq """#,
        "::1",
        "/",
        &[]
    ));
    assert!(eval_with(
        r#"http.request.uri.query eq """#,
        "::1",
        "/a",
        &[]
    ));
}

#[test]
fn absent_asnum_fails_every_comparison_but_ne() {
    all_false(&[
        "ip.geoip.asnum eq 0",
        "ip.geoip.asnum lt 100",
        "ip.geoip.asnum ge 0",
        "ip.geoip.asnum in { 0..4294967295 }",
    ]);
    all_true(&["ip.geoip.asnum ne 15169", "not ip.geoip.asnum in { 1 }"]);
}

#[test]
fn geo_fields() {
    let map = http::HeaderMap::new();
    let req = Request {
        client_ip: "8.8.8.8".parse().unwrap(),
        host: "h",
        method: "GET",
        uri: "/",
        raw_uri: "/",
        headers: &map,
        geo: Geo {
            country: Some(*b"US"),
            asn: Some(15169),
        },
        client: crate::Client::UNKNOWN,
    };
    for src in [
        r#"ip.geoip.country eq "US""#,
        r#"ip.src.country in { "US" "CA" }"#,
        r#"lower(ip.geoip.country) eq "us""#,
        "ip.geoip.asnum eq 15169",
        "ip.src.asnum == 15169",
        "ip.geoip.asnum in { 15169 16509 }",
        "ip.geoip.asnum gt 15000 and ip.geoip.asnum lt 16000",
        "ip.geoip.asnum ge 15169 && ip.geoip.asnum <= 15169",
        "ip.geoip.asnum in $ports or ip.geoip.asnum != 1",
    ] {
        assert!(compile(src).eval(&req), "expected true: {src}");
    }
    for src in [r#"ip.geoip.country ne "US""#, "ip.geoip.asnum in $ports"] {
        assert!(!compile(src).eval(&req), "expected false: {src}");
    }
}

#[test]
fn string_operators() {
    all_true(&[
        r#"http.host ne "example.com""#,
        r#"http.host != "example.com""#,
        r#"http.request.method lt "HEAD" and http.request.method < "H""#,
        r#"http.request.method le "GET" and http.request.method <= "GET""#,
        r#"http.request.method gt "DELETE" and http.request.method > "A""#,
        r#"http.request.method ge "GET" and http.request.method >= "GE""#,
        r#"http.request.uri.path contains "Login""#,
        r#"http.request.uri.path contains """#,
        r#"http.request.uri.path starts_with "/Admin""#,
        r#"http.request.uri.path ends_with ".php""#,
        r#"http.request.uri.path matches "^/admin/.*\\.php$" or http.request.uri.path ~ "(?i)^/admin/""#,
        r#"http.user_agent matches r"^curl/\d+\.\d+$""#,
        r#"http.host wildcard "*.example.COM""#,
        r#"http.host strict wildcard "*.example.com""#,
        r#"http.request.uri.path wildcard "/admin/*""#,
        r#"http.request.method in { "GET" "HEAD" }"#,
        r#"http.request.method in { "POST", "GET" }"#,
        r#"http.user_agent in $bots"#,
    ]);
    all_false(&[
        r#"http.request.uri.path contains "login""#,
        r#"http.request.uri.path starts_with "/admin""#,
        r#"http.request.uri.path ends_with ".PHP""#,
        r#"http.request.uri.path matches "^/admin/""#,
        r#"http.host strict wildcard "*.Example.com""#,
        r#"http.host wildcard "example.com""#,
        r#"http.request.method in { "POST" }"#,
        r#"http.host in $bots"#,
    ]);
}

#[test]
fn raw_and_escaped_strings() {
    all_true(&[
        r#"http.user_agent matches r"curl/\d""#,
        r##"http.user_agent matches r#"curl/\d"#"##,
        r#"concat(http.host, "\"\\") ends_with "m\"\\""#,
        r##"concat(http.host, r#"say "hi""#) ends_with "\"hi\"""##,
        // Other backslashes are kept, so regex escapes work in plain strings.
        r#"http.request.uri.path matches "^/\w+/Login\.php$""#,
        r#"concat("a\nb") eq r"a\nb""#,
    ]);
    let dotfiles = r#"http.request.uri.path matches "/\.(git|env|svn|hg)(/|$)""#;
    assert!(eval_with(dotfiles, "::1", "/x/.git/config", &[]));
    assert!(!eval_with(dotfiles, "::1", "/x/git/config", &[]));
}

#[test]
fn ip_operators_and_sets() {
    let t = |src: &str, ip: &str| eval_with(src, ip, "/", &[]);
    assert!(t("ip.src eq 1.2.3.4", "1.2.3.4"));
    assert!(t("ip.src == 1.2.3.4", "1.2.3.4"));
    assert!(!t("ip.src eq 1.2.3.4", "1.2.3.5"));
    assert!(t("ip.src ne 1.2.3.4", "1.2.3.5"));
    assert!(t("ip.src != 1.2.3.4", "1.2.3.5"));
    assert!(t("ip.src eq 1.2.3.0/24", "1.2.3.200"));
    assert!(t("ip.src in { 10.0.0.0/8 192.0.2.7 }", "10.200.0.1"));
    assert!(t("ip.src in { 10.0.0.0/8 192.0.2.7 }", "192.0.2.7"));
    assert!(!t("ip.src in { 10.0.0.0/8 192.0.2.7 }", "192.0.2.8"));
    assert!(t("ip.src in { 10.0.0.0/8, 2001:db8::/32 }", "2001:db8::1"));
    assert!(t("ip.src eq ::1", "::1"));
    assert!(t("ip.src eq 2001:db8::1", "2001:db8::1"));
    assert!(t("ip.src in {fe80::/10}", "fe80::abcd"));
    assert!(t("ip.src in $office", "10.9.9.9"));
    assert!(t("ip.src in $office", "2001:db8:ffff::1"));
    assert!(t("ip.src in $office", "::ffff:10.1.2.3"));
    assert!(!t("ip.src in $office", "11.0.0.1"));
    assert!(t("not ip.src in $office", "11.0.0.1"));
    assert!(t("ip.src eq 10.1.2.3/8", "10.200.0.0"));
}

#[test]
fn integer_operators_and_sets() {
    all_true(&[
        "len(http.request.method) eq 3",
        "len(http.request.method) ne 4",
        "len(http.request.method) lt 4 and len(http.request.method) le 3",
        "len(http.request.method) gt 2 and len(http.request.method) ge 3",
        "len(http.request.method) in { 1 2 3 }",
        "len(http.request.uri.path) in { 10..20 }",
        "len(http.request.uri.path) in { 0 100..200, 16 }",
        "len(http.request.uri.args[\"q\"]) eq 13",
        "len(url_decode(\"%41%42\")) eq 2",
    ]);
    let e = compile("len(http.request.uri.path) in $ports");
    let long = format!("/{}", "a".repeat(8499));
    assert!(with_request("::1", "GET", &long, &[], |r| e.eval(r)));
    assert!(with_request("::1", "GET", &"/x".repeat(40), &[], |r| e.eval(r)));
    assert!(!with_request("::1", "GET", &"/x".repeat(41), &[], |r| e.eval(r)));
    // The raw path is measured as sent; the normalized one merges the slashes.
    let raw = compile("len(raw.http.request.uri.path) in $ports");
    assert!(with_request("::1", "GET", &"/".repeat(80), &[], |r| raw.eval(r)));
    assert!(!with_request("::1", "GET", &"/".repeat(80), &[], |r| e.eval(r)));
}

#[test]
fn functions() {
    all_true(&[
        r#"lower(http.request.uri.path) eq "/admin/login.php""#,
        r#"upper(http.request.uri.path) eq "/ADMIN/LOGIN.PHP""#,
        r#"lower(http.host) contains "example""#,
        r#"lower(http.host) starts_with "www.""#,
        r#"upper(http.host) ends_with ".COM""#,
        r#"lower(http.host) in { "www.example.com" }"#,
        r#"lower(http.host) wildcard "WWW.*""#,
        r#"lower(http.host) matches "^www\\.example""#,
        r#"url_decode(http.request.uri.query) contains "café au lait""#,
        r#"url_decode("a%2Fb+c") eq "a/b c""#,
        r#"lower(url_decode(http.request.uri.path)) contains "/admin""#,
        r#"starts_with(http.request.uri.path, "/Admin")"#,
        r#"ends_with(lower(http.request.uri.path), ".php")"#,
        r#"starts_with(http.request.uri.path, "/Admin") eq true"#,
        r#"starts_with(http.request.uri.path, "/x") == false"#,
        r#"starts_with(http.request.uri.path, "/x") ne true"#,
        r#"concat(http.request.method, " ", http.request.uri.path) eq "GET /Admin/Login.php""#,
        r#"concat(lower(http.request.method)) eq "get""#,
        r#"lower(upper(lower(http.host))) eq "www.example.com""#,
    ]);
    all_false(&[
        r#"lower(http.host) eq "www.Example.com""#,
        r#"lower(http.host) contains "Example""#,
        r#"upper(http.host) contains "example""#,
        r#"ends_with(http.request.uri.path, ".PHP")"#,
        r#"starts_with(http.request.uri.path, "/Admin") eq false"#,
    ]);
}

#[test]
fn case_folding_handles_non_ascii() {
    let hdr = |v: &'static str| [("x-v", v)];
    let t = |src: &str, v: &'static str| eval_with(src, "::1", "/", &hdr(v));
    assert!(t(r#"lower(http.request.headers["x-v"]) eq "été""#, "ÉTÉ"));
    assert!(!t(
        r#"lower(http.request.headers["x-v"]) contains "tÉ""#,
        "ÉTÉ"
    ));
    assert!(t(
        r#"lower(http.request.headers["x-v"]) contains "té""#,
        "ÉTÉ"
    ));
    assert!(t(
        r#"upper(http.request.headers["x-v"]) starts_with "ÉT""#,
        "été"
    ));
    assert!(t(
        r#"lower(http.request.headers["x-v"]) ends_with "admin""#,
        "/ADMIN"
    ));
    // The Kelvin sign lower-cases to an ASCII `k`.
    assert!(t(
        r#"lower(http.request.headers["x-v"]) eq "k""#,
        "\u{212a}"
    ));
    assert!(t(
        r#"http.request.headers["x-v"] wildcard "*été*""#,
        "L'ÉTÉ!"
    ));
}

#[test]
fn fields_borrow_from_the_request() {
    use super::eval::{Fold, Pick, StrExpr, StrField};
    /// Whether every value of `e` is borrowed, and what they are.
    fn borrowed(e: &StrExpr, r: &Request<'_>) -> (bool, Vec<String>) {
        let mut all = true;
        let mut vals = Vec::new();
        e.any(r, &mut |v| {
            all &= matches!(v, Cow::Borrowed(_));
            vals.push(v.into_owned());
            false
        });
        (all, vals)
    }
    let headers = [
        ("x-h", "v"),
        ("x-h", "w"),
        ("cookie", "c=1"),
        ("cookie", "c=2"),
    ];
    with_request("::1", "GET", "/a?x=1&x=2", &headers, |r| {
        let f = StrExpr::Field(StrField::Header(
            http::HeaderName::from_static("x-h"),
            Pick::All,
        ));
        assert_eq!(borrowed(&f, r), (true, vec!["v".into(), "w".into()]));
        let arg = StrExpr::Field(StrField::Arg("x".into(), Pick::All));
        assert_eq!(borrowed(&arg, r), (true, vec!["1".into(), "2".into()]));
        let first = StrExpr::Field(StrField::Arg("x".into(), Pick::First));
        assert_eq!(borrowed(&first, r), (true, vec!["1".into()]));
        let cookie = StrExpr::Field(StrField::Cookie("c".into(), Pick::All));
        assert_eq!(borrowed(&cookie, r), (true, vec!["1".into(), "2".into()]));
        let low = StrExpr::Lower(Box::new(StrExpr::Field(StrField::Path)));
        assert_eq!(borrowed(&low, r), (true, vec!["/a".into()]));
        let dec = StrExpr::UrlDecode(Box::new(StrExpr::Field(StrField::Path)));
        assert_eq!(borrowed(&dec, r), (true, vec!["/a".into()]));
        let absent = StrExpr::Field(StrField::Header(
            http::HeaderName::from_static("x-none"),
            Pick::All,
        ));
        assert_eq!(borrowed(&absent, r), (true, vec![String::new()]));
        assert!(matches!(
            Fold::Upper.apply(Cow::Borrowed("/A")),
            Cow::Borrowed(_)
        ));
    });
}
use std::borrow::Cow;

#[test]
fn precedence_not_and_xor_or() {
    // not > and > xor > or
    all_true(&[
        "true or false and false",
        "not false and true",
        "true xor true or true",
        "false or true xor false",
        "true xor false and false",
        "not (true and false)",
        "!false && !!true",
        "true ^^ false ^^ false",
        "(true or false) and true",
        "false || true",
    ]);
    all_false(&[
        "(true or false) and false",
        "not true and true",
        "not (false or true)",
        "true xor true",
        "true ^^ true ^^ false",
        "true xor (false or true)",
        "false and true or false",
        "true xor true and true",
    ]);
    // `true xor false and false` = `true xor (false and false)` = true,
    // whereas `(true xor false) and false` would be false.
    assert!(!eval("(true xor false) and false"));
}

#[test]
fn logic_over_comparisons() {
    all_true(&[
        r#"http.request.method eq "GET" and http.host contains "example""#,
        r#"not http.request.method eq "POST""#,
        r#"http.request.method eq "POST" or ip.src in { 203.0.113.0/24 }"#,
        r#"http.request.method eq "POST" xor http.host ne """#,
        "not not not false",
    ]);
    let src = (0..200)
        .map(|i| format!("http.request.uri.args[\"id\"] eq \"{i}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    assert!(eval(&src));
    let xors = vec!["true"; 1001].join(" xor ");
    assert!(eval(&xors));
}

#[test]
fn multi_line_sources() {
    let src = "http.request.method eq \"GET\"\n  and (\n    ip.src in $office\n    or http.user_agent in $bots\n  )";
    assert!(eval(src));
    assert_eq!(compile(src).source(), src);
}

#[test]
fn exprs_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Expr>();
    check::<Lists>();
    let e = compile("true");
    let e2 = e.clone();
    assert!(std::thread::spawn(move || e2.source() == "true")
        .join()
        .unwrap());
}

#[test]
fn lists_reject_bad_and_duplicate_names() {
    let mut l = Lists::new();
    assert!(l.is_empty());
    assert!(l.insert("Good_1", &[]).is_ok());
    assert!(l.contains("Good_1"));
    assert_eq!(l.len(), 1);
    assert!(l.insert("Good_1", &[]).unwrap_err().contains("duplicate"));
    assert!(l.insert("", &[]).is_err());
    assert!(l.insert("bad-name", &[]).is_err());
    assert!(l.insert("bad name", &[]).is_err());
    assert!(l.insert("é", &[]).is_err());
}

#[test]
fn empty_list_matches_nothing() {
    let mut l = Lists::new();
    l.insert("none", &[]).unwrap();
    for src in [
        "ip.src in $none",
        "http.host in $none",
        "len(http.host) in $none",
    ] {
        let e = Expr::compile(src, &l).unwrap();
        assert!(
            !with_request("::1", "GET", "/", &[], |r| e.eval(r)),
            "{src}"
        );
    }
}
