//! Evaluation tests of what rules see: every value of a repeated field, bytes
//! that are not UTF-8, the normalized host and path — each one a way around
//! a rule that must no longer work.

use super::*;
use crate::request::tests::{with_raw_request, with_request};
use crate::request::Geo;

fn compile(src: &str) -> Expr {
    let mut lists = Lists::new();
    lists
        .insert("bots", &["sqlmap".to_string(), "nikto".to_string()])
        .unwrap();
    match Expr::compile(src, &lists) {
        Ok(e) => e,
        Err(e) => panic!("{src:?} does not compile: {e}"),
    }
}

/// `src` against `GET uri` with `headers`.
fn eval(src: &str, uri: &str, headers: &[(&str, &str)]) -> bool {
    let e = compile(src);
    with_request("203.0.113.9", "GET", uri, headers, |r| e.eval(r))
}

/// `src` against a raw target and raw header values.
fn eval_raw(src: &str, target: &[u8], headers: &[(&str, &[u8])]) -> bool {
    let e = compile(src);
    with_raw_request("203.0.113.9", "GET", target, headers, |r| e.eval(r))
}

fn check(cases: &[(&str, bool)], uri: &str, headers: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(eval(src, uri, headers), *want, "{src} on {uri} {headers:?}");
    }
}

#[test]
fn a_byte_that_is_not_utf8_does_not_empty_a_header() {
    let mut map = http::HeaderMap::new();
    map.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_bytes(b"sqlmap/1.7\x80").unwrap(),
    );
    let req = Request {
        client_ip: "192.0.2.1".parse().unwrap(),
        host: "example.com",
        method: "GET",
        uri: "/",
        raw_uri: "/",
        headers: &map,
        geo: Geo::default(),
        client: crate::Client::UNKNOWN,
    };
    for src in [
        r#"lower(http.user_agent) contains "sqlmap""#,
        r#"http.user_agent contains "sqlmap""#,
        r#"http.request.headers["user-agent"] starts_with "sqlmap/1.7""#,
        r#"http.user_agent matches "^sqlmap/1\.7.$""#,
        r#"len(http.user_agent) eq 13"#,
        r#"http.user_agent ne """#,
        r#"http.user_agent wildcard "SQLMAP*""#,
    ] {
        assert!(compile(src).eval(&req), "{src}");
    }
    let mut bits = vec![0u64; 1];
    let exprs = [compile(r#"lower(http.user_agent) contains "sqlmap""#)];
    ExprIndex::new(exprs.iter()).candidates(&req, &mut bits);
    assert_eq!(bits[0], 1, "the prefilter must not skip it");
}

#[test]
fn lossy_cookies_arguments_and_paths() {
    let h: &[(&str, &[u8])] = &[
        ("cookie", b"theme=dark\xff; role=admin"),
        ("referer", b"http://\xc3evil.example/"),
    ];
    for src in [
        r#"http.request.cookies["role"] eq "admin""#,
        r#"http.request.cookies["theme"] starts_with "dark""#,
        r#"http.cookie contains "role=admin""#,
        r#"http.referer contains "evil.example""#,
        r#"http.request.uri.args["q"] contains "union""#,
        r#"http.request.uri.path starts_with "/admin""#,
        r#"raw.http.request.uri.path starts_with "/%61dmin/""#,
    ] {
        assert!(
            eval_raw(src, b"/%61dmin/\x80?q=1\xff union select", h),
            "{src}"
        );
    }
}

#[test]
fn repeated_headers_give_every_value() {
    let h = [
        ("x-role", "user"),
        ("x-role", "admin"),
        ("user-agent", "Mozilla/5.0"),
        ("user-agent", "sqlmap/1.7"),
        ("referer", "https://ok.example/"),
        ("referer", "https://casino.example/"),
        ("x-forwarded-for", "198.51.100.1"),
        ("x-forwarded-for", "10.0.0.1"),
    ];
    check(
        &[
            (r#"http.request.headers["x-role"] eq "admin""#, true),
            (r#"http.request.headers["X-Role"] eq "user""#, true),
            (r#"http.request.headers["x-role"][0] eq "admin""#, false),
            (r#"http.request.headers["x-role"][0] eq "user""#, true),
            (r#"lower(http.user_agent) contains "sqlmap""#, true),
            (
                r#"http.user_agent in $bots or http.user_agent matches "^sqlmap/""#,
                true,
            ),
            (r#"http.referer wildcard "*casino*""#, true),
            (r#"http.x_forwarded_for eq "10.0.0.1""#, true),
            (r#"http.x_forwarded_for contains "198.51.""#, true),
        ],
        "/",
        &h,
    );
}

#[test]
fn repeated_cookies_and_split_cookie_fields() {
    // Two `Cookie` headers (or HTTP/2's one field per cookie) are one cookie header.
    let h = [
        ("cookie", "session=abc; role=user"),
        ("cookie", "role=admin"),
        ("cookie", "x=<script>"),
    ];
    check(
        &[
            (r#"http.request.cookies["role"] eq "admin""#, true),
            (r#"http.request.cookies["role"][0] eq "admin""#, false),
            (r#"http.request.cookies["role"][0] eq "user""#, true),
            (r#"http.request.cookies["session"] eq "abc""#, true),
            (r#"http.request.cookies["x"] contains "<script""#, true),
            (r#"http.cookie contains "<script""#, true),
            (
                r#"http.cookie eq "session=abc; role=user; role=admin; x=<script>""#,
                true,
            ),
            (r#"http.request.headers["cookie"] eq "role=admin""#, true),
            (r#"http.request.cookies["nope"] eq """#, true),
        ],
        "/",
        &h,
    );
}

#[test]
fn repeated_query_arguments() {
    check(
        &[
            (r#"http.request.uri.args["debug"] eq "1""#, true),
            (r#"http.request.uri.args["debug"] eq "0""#, true),
            (r#"http.request.uri.args["debug"][0] eq "1""#, false),
            (r#"http.request.uri.args["debug"][0] eq "0""#, true),
            (r#"http.request.uri.args["debug"] in { "1" "true" }"#, true),
            (r#"http.request.uri.args["debug"] ne "1""#, false),
            (
                r#"url_decode(http.request.uri.args["q"]) contains "a b""#,
                true,
            ),
        ],
        "/?debug=0&q=x&debug=1&q=a%2Bb%20c+d",
        &[],
    );
    // An escaped name is the same argument.
    assert!(eval(
        r#"http.request.uri.args["debug"] eq "1""#,
        "/?debug=0&%64ebug=1",
        &[]
    ));
}

/// Every operator holds when it holds for any value; `ne` is `not eq`.
#[test]
fn every_operator_tests_every_value() {
    let h = [("x-v", "bbb"), ("x-v", "Mmm"), ("x-v", "zz")];
    let f = r#"http.request.headers["x-v"]"#;
    let cases: Vec<(String, bool)> = [
        ("eq \"zz\"", true),
        ("eq \"nope\"", false),
        ("ne \"zz\"", false),
        ("ne \"nope\"", true),
        ("!= \"bbb\"", false),
        ("lt \"c\"", true),
        ("lt \"M\"", false),
        ("le \"bbb\"", true),
        ("gt \"y\"", true),
        ("gt \"zz\"", false),
        ("ge \"zz\"", true),
        ("contains \"mm\"", true),
        ("contains \"q\"", false),
        ("matches \"^z+$\"", true),
        ("~ \"^q\"", false),
        ("wildcard \"m*\"", true),
        ("strict wildcard \"m*\"", false),
        ("strict wildcard \"M*\"", true),
        ("starts_with \"z\"", true),
        ("ends_with \"mm\"", true),
        ("ends_with \"x\"", false),
        ("in { \"a\" \"zz\" }", true),
        ("in { \"a\" \"b\" }", false),
    ]
    .iter()
    .map(|(op, want)| (format!("{f} {op}"), *want))
    .collect();
    for (src, want) in &cases {
        assert_eq!(eval(src, "/", &h), *want, "{src}");
        // `not` and `ne` are exact negations.
        assert_eq!(eval(&format!("not ({src})"), "/", &h), !*want, "not {src}");
    }
}

#[test]
fn ne_is_true_only_when_no_value_equals() {
    let h = [("x-k", "a"), ("x-k", "b")];
    check(
        &[
            (r#"http.request.headers["x-k"] eq "a""#, true),
            (r#"http.request.headers["x-k"] ne "a""#, false),
            (r#"http.request.headers["x-k"] ne "c""#, true),
            (r#"http.request.headers["x-k"][0] ne "b""#, true),
            // An absent field is one empty value.
            (r#"http.request.headers["x-none"] eq """#, true),
            (r#"http.request.headers["x-none"] ne "a""#, true),
            (r#"http.request.headers["x-none"] ne """#, false),
        ],
        "/",
        &h,
    );
    // `args["cmd"] ne ""` is false when any `cmd` is empty; `len(...) gt 0`
    // asks whether any is not.
    check(
        &[
            (r#"http.request.uri.args["cmd"] ne """#, false),
            (r#"len(http.request.uri.args["cmd"]) gt 0"#, true),
            (r#"http.request.uri.args["cmd"] eq "id""#, true),
        ],
        "/?cmd=&cmd=id",
        &[],
    );
}

#[test]
fn functions_map_over_values() {
    let h = [("x-v", "One"), ("x-v", "TWO%21"), ("x-v", "three")];
    check(
        &[
            (r#"lower(http.request.headers["x-v"]) eq "two%21""#, true),
            (r#"lower(http.request.headers["x-v"]) contains "thr""#, true),
            (
                r#"lower(http.request.headers["x-v"]) matches "^one$""#,
                true,
            ),
            (r#"upper(http.request.headers["x-v"]) eq "THREE""#, true),
            (r#"upper(http.request.headers["x-v"]) in { "ONE" }"#, true),
            (r#"url_decode(http.request.headers["x-v"]) eq "TWO!""#, true),
            (
                r#"lower(url_decode(http.request.headers["x-v"])) eq "two!""#,
                true,
            ),
            (r#"len(http.request.headers["x-v"]) eq 6"#, true),
            (r#"len(http.request.headers["x-v"]) eq 3"#, true),
            (r#"len(http.request.headers["x-v"]) gt 6"#, false),
            (r#"len(http.request.headers["x-v"]) ne 5"#, false),
            (r#"len(http.request.headers["x-v"][0]) ne 5"#, true),
            (r#"starts_with(http.request.headers["x-v"], "thr")"#, true),
            (
                r#"ends_with(lower(http.request.headers["x-v"]), "%21")"#,
                true,
            ),
            (r#"starts_with(http.request.headers["x-v"], "four")"#, false),
            (r#"lower(http.request.headers["x-v"][0]) eq "three""#, false),
        ],
        "/",
        &h,
    );
}

#[test]
fn concat_tries_combinations_of_values() {
    let h = [
        ("x-a", "1"),
        ("x-a", "2"),
        ("x-b", "x"),
        ("x-b", "y"),
        ("x-b", "z"),
    ];
    check(
        &[
            // One repeated argument: each of its values.
            (
                r#"concat(http.request.method, ":", http.request.headers["x-a"]) eq "GET:2""#,
                true,
            ),
            // Two: every combination.
            (
                r#"concat(http.request.headers["x-a"], http.request.headers["x-b"]) eq "2z""#,
                true,
            ),
            (
                r#"concat(http.request.headers["x-a"], http.request.headers["x-b"]) eq "1y""#,
                true,
            ),
            (
                r#"concat(http.request.headers["x-a"], http.request.headers["x-b"]) eq "3x""#,
                false,
            ),
            (
                r#"concat(http.request.headers["x-a"], http.request.headers["x-b"]) ne "1y""#,
                false,
            ),
            (
                r#"lower(concat("A", http.request.headers["x-b"])) eq "ay""#,
                true,
            ),
            (
                r#"len(concat(http.request.headers["x-a"], "--")) eq 3"#,
                true,
            ),
            (
                r#"concat(http.request.headers["x-a"][0], http.request.headers["x-b"]) eq "2x""#,
                false,
            ),
            (
                r#"concat(http.request.headers["x-none"], "a") eq "a""#,
                true,
            ),
        ],
        "/",
        &h,
    );
}

#[test]
fn concat_beyond_the_combination_limit_still_tries_every_value() {
    use super::eval::MAX_CONCAT_COMBINATIONS;
    let n = MAX_CONCAT_COMBINATIONS + 1;
    let a: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let b: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
    let mut h: Vec<(&str, &str)> = Vec::new();
    h.extend(a.iter().map(|v| ("x-a", v.as_str())));
    h.extend(b.iter().map(|v| ("x-b", v.as_str())));
    let last_a = format!("a{}", n - 1);
    let last_b = format!("b{}", n - 1);
    let e = |lit: &str| {
        format!(
            r#"concat(http.request.headers["x-a"], "/", http.request.headers["x-b"]) eq "{lit}""#
        )
    };
    // Each value with the first value of the other argument...
    assert!(eval(&e(&format!("{last_a}/b0")), "/", &h));
    assert!(eval(&e(&format!("a0/{last_b}")), "/", &h));
    // ... but not every one of the n² combinations.
    assert!(!eval(&e(&format!("{last_a}/{last_b}")), "/", &h));
}

#[test]
fn host_variants_are_one_host() {
    let rule = r#"http.host eq "admin.example.com""#;
    for host in [
        "admin.example.com",
        "admin.example.com.",
        "ADMIN.example.com",
        "Admin.Example.COM.",
        "admin.example.com..",
    ] {
        assert!(eval(rule, "/", &[("host", host)]), "{host}");
    }
    assert!(eval(
        r#"http.host eq "admin.example.com:8080""#,
        "/",
        &[("host", "Admin.Example.COM.:8080")]
    ));
    assert!(!eval(rule, "/", &[("host", "admin.example.com.evil")]));
}

/// The paths that nginx, IIS or Java servers serve as `/admin`.
const ADMIN_VARIANTS: &[&str] = &[
    "/admin",
    "/%61dmin",
    "/%61%64%6D%69%6E",
    "//admin",
    "/./admin",
    "/%2fadmin",
    "/%2Fadmin",
    "/%5cadmin",
    "/admin;a=1",
    "/admin;jsessionid=x/",
    "/x/../admin",
    "\\admin",
    "/\\admin",
    "/foo/..;/admin",
    "/%2e%2e/admin",
    "/.%2e/admin",
    "/%2E/admin",
    "/x%2f..%2fadmin",
    "/;/admin",
    "/admin/.",
    "/admin%2f",
    "//admin//",
    "/../../admin",
];

#[test]
fn path_variants_are_one_path() {
    let rule = compile(r#"http.request.uri.path starts_with "/admin""#);
    let uri_rule = compile(r#"http.request.uri starts_with "/admin""#);
    let raw = compile(r#"raw.http.request.uri.path starts_with "/admin""#);
    for p in ADMIN_VARIANTS {
        for target in [p.to_string(), format!("{p}?next=/x")] {
            with_request("192.0.2.1", "GET", &target, &[], |r| {
                assert!(rule.eval(r), "{target} -> {}", r.path());
                assert!(uri_rule.eval(r), "{target} -> {}", r.uri);
            });
        }
    }
    // The raw fields see what was sent.
    with_request("192.0.2.1", "GET", "/%61dmin;x?a=%61", &[], |r| {
        assert!(!raw.eval(r));
        assert!(compile(r#"raw.http.request.uri eq "/%61dmin;x?a=%61""#).eval(r));
        assert!(compile(r#"http.request.uri eq "/admin?a=%61""#).eval(r));
        assert!(compile(r#"http.request.uri.query eq "a=%61""#).eval(r));
        assert!(compile(r#"http.request.uri.args["a"] eq "a""#).eval(r));
    });
    // An encoded `;` is not a parameter separator.
    assert!(!eval(
        r#"http.request.uri.path eq "/admin""#,
        "/admin%3Bx",
        &[]
    ));
    assert!(eval(
        r#"http.request.uri.path eq "/admin%3Bx""#,
        "/admin%3bx",
        &[]
    ));
}

#[test]
fn the_prefilter_sees_normalized_paths_and_every_value() {
    let exprs = [
        compile(r#"http.request.uri.path starts_with "/admin""#),
        compile(r#"lower(http.user_agent) contains "sqlmap""#),
        compile(r#"http.request.uri.args["debug"] eq "1""#),
        compile(r#"http.request.cookies["role"] eq "admin""#),
        compile(r#"http.cookie contains "<script""#),
    ];
    let idx = ExprIndex::new(exprs.iter());
    let h = [
        ("user-agent", "Mozilla"),
        ("user-agent", "SQLMap"),
        ("cookie", "role=user"),
        ("cookie", "role=admin"),
        ("cookie", "x=<script>"),
    ];
    for p in ADMIN_VARIANTS {
        let target = format!("{p}?debug=0&debug=1");
        with_request("192.0.2.1", "GET", &target, &h, |r| {
            let mut bits = vec![0u64; idx.words()];
            idx.candidates(r, &mut bits);
            for (i, e) in exprs.iter().enumerate() {
                assert!(e.eval(r), "{i} on {target}");
                assert!(bits[0] & (1 << i) != 0, "{i} filtered on {target}");
            }
        });
    }
}
