//! End-to-end tests of `palisade up`: a real binary, a real origin, a real HTTP client.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const POLICY: &str = r#"
[lists]
office = ["10.0.0.0/8", "192.0.2.7"]

[[rules]]
id = "block-admin"
expression = 'http.request.uri.path starts_with "/admin" and not ip.src in $office'
action = "block"

[[rules]]
id = "shadow-debug"
expression = 'http.request.uri.path eq "/debug"'
action = "block"
simulate = true

[[rate_limits]]
id = "login"
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src"]
requests = 3
period = "1s"
mitigation_timeout = "2s"
"#;

fn start() -> (Proc, Up) {
    let (origin, url) = demo_origin();
    let up = Up::start(&[url], Some(POLICY), &["--trusted-proxy", "127.0.0.1/32"]);
    (origin, up)
}

#[test]
fn pass_through_block_allow_and_shadow() {
    let (_origin, up) = start();

    let r = up.get("/", None);
    assert_eq!(r.status(), 200);
    let id = r
        .headers()
        .get("x-request-id")
        .expect("x-request-id on proxied responses")
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16);
    assert!(r.text().unwrap().contains("Palisade demo origin"));

    // Rule block: /admin from outside the office.
    let r = up.get("/admin/users", None);
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("x-request-id").is_some());
    assert!(r.text().unwrap().contains("blocked by Palisade"));

    // List allow: the same path from an office address (through the trusted proxy).
    assert_eq!(up.get("/admin/users", Some("10.1.2.3")).status(), 200);
    // An untrusted X-Forwarded-For chain does not help: the right-most untrusted hop counts.
    assert_eq!(
        up.get("/admin/users", Some("10.1.2.3, 8.8.8.8")).status(),
        403
    );

    // Simulate: logged, not enforced.
    assert_eq!(up.get("/debug", None).status(), 200);

    assert!(
        eventually(Duration::from_secs(5), || {
            let ev = up.events();
            ev.iter().any(|e| {
                e["rule_id"] == "block-admin" && e["status"] == 403 && e["simulate"] == false
            }) && ev
                .iter()
                .any(|e| e["rule_id"] == "shadow-debug" && e["simulate"] == true)
        }),
        "events: {:?}",
        up.events()
    );
    let ev = up.events();
    let blocked = ev.iter().find(|e| e["rule_id"] == "block-admin").unwrap();
    for field in ["time_ms", "request_id", "client_ip", "check", "action"] {
        assert!(!blocked[field].is_null(), "event lacks {field}: {blocked}");
    }

    let m = up.metrics();
    assert!(m.contains(r#"palisade_verdicts_total{check="rule",id="block-admin",simulate="false",verdict="block"}"#), "{m}");
    assert!(m.contains("palisade_pipeline_seconds_bucket"), "{m}");
    assert!(m.contains("palisade_request_seconds_bucket"), "{m}");
    assert!(
        eventually(Duration::from_secs(5), || up
            .metrics()
            .contains("palisade_upstream_healthy{")),
        "{m}"
    );
}

#[test]
fn decisions_through_the_api_block_and_unblock() {
    let (_origin, up) = start();
    let c = client();
    let ip = "203.0.113.9";
    assert_eq!(up.get("/", Some(ip)).status(), 200);

    // Unauthenticated writes are refused.
    let r = c
        .post(format!("{}/api/v1/decisions", up.api))
        .body(r#"{"scope":"ip","value":"203.0.113.9"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(r#"{"scope":"ip","value":"203.0.113.9","action":"ban","duration":"10m","reason":"test"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let d: serde_json::Value = r.json().unwrap();
    let id = d["id"].as_u64().unwrap();

    // Takes effect on the very next request.
    assert_eq!(up.get("/", Some(ip)).status(), 403);
    assert_eq!(up.get("/", Some("203.0.113.10")).status(), 200);
    // Counted without its id (one series for every decision: escalations
    // mint one per source); the event names it.
    let m = up.metrics();
    assert!(
        m.contains(r#"palisade_verdicts_total{check="decision",id="decision",simulate="false",verdict="block"}"#),
        "{m}"
    );
    assert!(!m.contains(&format!("id=\"{id}\"")), "{m}");
    let id_text = id.to_string();
    assert!(
        eventually(Duration::from_secs(5), || {
            up.events()
                .iter()
                .any(|e| e["check"] == "decision" && e["rule_id"] == id_text.as_str())
        }),
        "{:?}",
        up.events()
    );

    let list: serde_json::Value = c
        .get(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    let r = c
        .delete(format!("{}/api/v1/decisions/{id}", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.get("/", Some(ip)).status(), 200);

    // A CIDR decision, through the CLI wrapper.
    let out = std::process::Command::new(BIN)
        .args([
            "decisions",
            "add",
            "--scope",
            "cidr",
            "--value",
            "198.51.100.0/24",
            "--duration",
            "1m",
        ])
        .env("PALISADE_API", &up.api)
        .env("PALISADE_TOKEN", &up.token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(up.get("/", Some("198.51.100.77")).status(), 403);
    let out = std::process::Command::new(BIN)
        .args(["decisions", "list"])
        .env("PALISADE_API", &up.api)
        .env("PALISADE_TOKEN", &up.token)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("198.51.100.0/24"));
    // Filtered and paged listing.
    let r = c
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .body(r#"{"scope":"ip","value":"192.0.2.44","duration":"1h"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let list = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = std::process::Command::new(BIN)
            .args(["decisions", "list", "--json"])
            .args(args)
            .env("PALISADE_API", &up.api)
            .env("PALISADE_TOKEN", &up.token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(list(&[]).len(), 2);
    let cidr = list(&["--scope", "cidr"]);
    assert_eq!(cidr.len(), 1);
    assert_eq!(cidr[0]["value"], "198.51.100.0/24");
    assert_eq!(list(&["--limit", "1"]).len(), 1);
    assert_eq!(
        list(&["--origin", "api:admin:cli"]).len(),
        1,
        "the CLI's label"
    );
    let r = c
        .get(format!("{}/api/v1/decisions?limit=1", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "2");
    assert!(r.headers().contains_key("x-next-after"));
    assert_eq!(r.json::<Vec<serde_json::Value>>().unwrap().len(), 1);
}

#[test]
fn rate_limit_429_with_retry_after_then_recovers() {
    let (_origin, up) = start();
    let ip = "198.51.100.1";
    for i in 0..3 {
        assert_eq!(up.get("/login", Some(ip)).status(), 200, "request {i}");
    }
    let r = up.get("/login", Some(ip));
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    // Still limited right away; other clients are not.
    assert_eq!(up.get("/login", Some(ip)).status(), 429);
    assert_eq!(up.get("/login", Some("198.51.100.2")).status(), 200);
    // After the mitigation timeout (plus a window for the sliding estimate to decay) it recovers.
    std::thread::sleep(Duration::from_millis(retry * 1000 + 1500));
    assert_eq!(up.get("/login", Some(ip)).status(), 200);
}

#[test]
fn failover_when_one_of_two_upstreams_dies() {
    let (mut a, url_a) = demo_origin();
    let (_b, url_b) = demo_origin();
    let up = Up::start(&[url_a, url_b], None, &[]);
    // SIGHUP without a policy file is logged, not fatal.
    let pid = up.proc.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    for _ in 0..10 {
        assert_eq!(up.get("/", None).status(), 200);
    }
    a.kill();
    let mut failures = 0;
    for _ in 0..100 {
        if up.get("/", None).status() != 200 {
            failures += 1;
        }
    }
    assert_eq!(
        failures,
        0,
        "requests failed after one upstream died; log:\n{}",
        up.log()
    );
}

#[test]
fn no_healthy_upstream_is_a_clear_503() {
    let (mut a, url) = demo_origin();
    let up = Up::start(&[url], None, &[]);
    a.kill();
    let r = up.get("/", None);
    assert!(r.status() == 502 || r.status() == 503, "{}", r.status());
    assert!(eventually(Duration::from_secs(5), || up
        .get("/", None)
        .status()
        == 503));
    let r = up.get("/", None);
    assert!(r.headers().get("x-request-id").is_some());
    assert!(r.text().unwrap().contains("no healthy upstream"));
}

#[test]
fn hot_reload_under_traffic_and_invalid_reload_keeps_policy() {
    let (_origin, up) = start();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, url) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            format!("{}/", up.proxy),
        );
        workers.push(std::thread::spawn(move || {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).send() {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(300));

    // A valid new policy: adds a rule; swapped in while traffic flows.
    let v2 = format!("{POLICY}\n[[rules]]\nid = \"block-new\"\nexpression = 'http.request.uri.path eq \"/new\"'\naction = \"block\"\n");
    assert_eq!(up.get("/new", None).status(), 200);
    up.dir.write("policy.toml", &v2);
    assert!(
        eventually(Duration::from_secs(5), || up.get("/new", None).status()
            == 403),
        "new policy never became active"
    );

    // SIGHUP reloads too (unchanged file: counted as unchanged, nothing breaks).
    let pid = up.proc.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());

    // An invalid file: the running policy stays.
    up.dir.write(
        "policy.toml",
        "[[rules]]\nid = \"broken\"\nexpression = 'http.host eq'\naction = \"block\"\n",
    );
    assert!(eventually(Duration::from_secs(5), || up
        .metrics()
        .contains(r#"palisade_policy_reloads_total{result="invalid"}"#)));
    assert_eq!(up.get("/new", None).status(), 403);
    assert_eq!(up.get("/admin", None).status(), 403);
    assert!(up.log().contains("invalid policy"), "{}", up.log());

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "too little traffic: {}",
        ok.load(Ordering::Relaxed)
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
}

#[test]
fn malformed_and_oversized_requests_get_4xx_not_a_crash() {
    use std::io::{Read, Write};
    let (_origin, up) = start();
    let addr = up.proxy.trim_start_matches("http://").to_string();
    let send = |raw: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).to_string()
    };
    let r = send(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = send(b"THIS IS NOT HTTP AT ALL, NOT EVEN CLOSE\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert!(send(long.as_bytes()).starts_with("HTTP/1.1 414"));
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert!(send(many.as_bytes()).starts_with("HTTP/1.1 431"));
    let big = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n";
    assert!(send(big.as_bytes()).starts_with("HTTP/1.1 413"));
    // Still serving.
    assert_eq!(up.get("/", None).status(), 200);
    let m = up.metrics();
    assert!(
        m.contains(r#"palisade_bad_requests_total{reason="malformed"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(r#"palisade_bad_requests_total{reason="uri_too_long"} 1"#),
        "{m}"
    );
    assert!(up.log().contains("rejected request"), "{}", up.log());
}

#[test]
fn http2_cleartext_prior_knowledge() {
    let (_origin, up) = start();
    let c = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c.get(format!("{}/", up.proxy)).send().unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/admin", up.proxy)).send().unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn policy_validate_reports_every_error_with_location() {
    let dir = TempDir::new("validate");
    let bad = dir.write(
        "bad.toml",
        "[[rules]]\nid = \"a\"\nexpression = 'http.host eq'\naction = \"block\"\n\n[[rules]]\nid = \"b\"\nexpression = 'http.host eq \"x\"'\naction = \"explode\"\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["policy", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let name = bad.display().to_string();
    assert!(err.contains(&format!("{name}:3:")), "{err}");
    assert!(
        err.contains(&format!("{name}:9:")) && err.contains("explode"),
        "{err}"
    );

    let good = dir.write("good.toml", POLICY);
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
fn tls_termination_with_http2() {
    let (_origin, url) = demo_origin();
    let dir = TempDir::new("tls");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    let port = free_port();
    let up = Up::start(
        &[url],
        Some(POLICY),
        &[
            "--tls-listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let c = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = c.get(format!("https://127.0.0.1:{port}/")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN should pick h2");
    let r = c
        .get(format!("https://127.0.0.1:{port}/admin"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    // Plain HTTP keeps working beside TLS.
    assert_eq!(up.get("/", None).status(), 200);
}

#[test]
fn country_and_asn_decisions_with_maxmind_databases() {
    // MaxMind-format databases written by the test (its own networks):
    // 1.0.0.0/24 is AS15169, 198.51.100.0/24 is KP.
    let dir = TempDir::new("geoip");
    let (country, asn) = palisade_edge::geoip::fixtures::write(dir.path());
    let (_origin, url) = demo_origin();
    let policy = "[[rules]]\nid = \"asn-rule\"\nexpression = 'ip.geoip.asnum eq 15169 and http.request.uri.path eq \"/asn\"'\naction = \"block\"\n\n[[rules]]\nid = \"country-rule\"\nexpression = 'ip.geoip.country eq \"KP\" and http.request.uri.path eq \"/country\"'\naction = \"block\"\n";
    let up = Up::start(
        &[url],
        Some(policy),
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--geoip-country",
            country.to_str().unwrap(),
            "--geoip-asn",
            asn.to_str().unwrap(),
        ],
    );
    assert_eq!(up.get("/asn", Some("1.0.0.1")).status(), 403);
    assert_eq!(up.get("/asn", Some("198.51.100.7")).status(), 200);
    assert_eq!(up.get("/country", Some("198.51.100.7")).status(), 403);
    assert_eq!(up.get("/country", Some("1.0.0.1")).status(), 200);
    let c = client();
    for body in [
        r#"{"scope":"country","value":"kp","duration":"1h"}"#,
        r#"{"scope":"asn","value":"AS15169","permanent":true}"#,
    ] {
        let r = c
            .post(format!("{}/api/v1/decisions", up.api))
            .bearer_auth(&up.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "{body}");
    }
    assert_eq!(
        up.get("/", Some("198.51.100.7")).status(),
        403,
        "country decision"
    );
    assert_eq!(up.get("/", Some("1.0.0.1")).status(), 403, "asn decision");
    assert_eq!(up.get("/", Some("192.0.2.1")).status(), 200);
}

#[test]
fn escalation_turns_repeated_blocks_into_a_decision() {
    let (_origin, url) = demo_origin();
    let policy = format!("{POLICY}\n[[escalations]]\nid = \"repeat\"\nsource = \"cidr\"\nthreshold = 3\nwindow = \"1m\"\nduration = \"5m\"\n");
    let up = Up::start(&[url], Some(&policy), &["--trusted-proxy", "127.0.0.1/32"]);
    for ip in ["192.0.2.10", "192.0.2.11", "192.0.2.12"] {
        assert_eq!(up.get("/admin", Some(ip)).status(), 403);
    }
    // The whole /24 is now banned, on any path.
    assert_eq!(up.get("/", Some("192.0.2.200")).status(), 403);
    assert_eq!(up.get("/", Some("192.0.3.1")).status(), 200);
    let list: serde_json::Value = client()
        .get(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let d = &list.as_array().unwrap()[0];
    assert_eq!(d["scope"], "cidr");
    assert_eq!(d["value"], "192.0.2.0/24");
    assert!(
        d["origin"]
            .as_str()
            .unwrap()
            .starts_with("escalation:repeat@"),
        "{d}"
    );
}

/// A full decision table (`--max-decisions`): escalations stop issuing
/// decisions (counted), and an operator's write evicts the oldest automatic
/// decision, then gets 507 once only operators' remain.
#[test]
fn a_full_decision_table_stops_escalations_and_refuses_writes() {
    let (_origin, url) = demo_origin();
    let policy = format!("{POLICY}\n[[escalations]]\nid = \"repeat\"\nsource = \"ip\"\nthreshold = 2\nwindow = \"1m\"\nduration = \"5m\"\n");
    let up = Up::start(
        &[url],
        Some(&policy),
        &["--trusted-proxy", "127.0.0.1/32", "--max-decisions", "2"],
    );
    let post = |value: &str| {
        client()
            .post(format!("{}/api/v1/decisions", up.api))
            .bearer_auth(&up.token)
            .body(format!(
                r#"{{"scope":"ip","value":"{value}","duration":"1h"}}"#
            ))
            .send()
            .unwrap()
    };
    assert_eq!(post("203.0.113.1").status(), 201);
    // An escalation fills the table (2 of 2)...
    for _ in 0..2 {
        assert_eq!(up.get("/admin", Some("192.0.2.10")).status(), 403);
    }
    assert!(eventually(Duration::from_secs(5), || up
        .get("/", Some("192.0.2.10"))
        .status()
        == 403));
    // ...so the next source is not escalated.
    for _ in 0..3 {
        assert_eq!(up.get("/admin", Some("192.0.2.11")).status(), 403);
    }
    assert_eq!(up.get("/", Some("192.0.2.11")).status(), 200);
    assert!(
        up.metrics()
            .contains("palisade_escalations_dropped_total 1"),
        "{}",
        up.metrics()
    );
    // An operator's decision evicts the escalation's, then the table is
    // full of operators' decisions: 507.
    assert_eq!(post("203.0.113.2").status(), 201);
    assert!(eventually(Duration::from_secs(5), || up
        .get("/", Some("192.0.2.10"))
        .status()
        == 200));
    let r = post("203.0.113.3");
    assert_eq!(r.status(), 507);
    assert!(r.text().unwrap().contains("full"));
}

#[test]
fn up_serves_the_control_plane_api_over_the_in_process_mesh() {
    let (_origin, url) = demo_origin();
    // Without --policy, policy versions are managed through the API.
    let up = Up::start(&[url], None, &[]);
    let c = client();
    assert_eq!(up.get("/admin", None).status(), 200);
    let r = c
        .put(format!("{}/api/v1/policy", up.api))
        .bearer_auth(&up.token)
        .body("[[rules]]\nid = \"a\"\nexpression = 'http.request.uri.path eq \"/admin\"'\naction = \"block\"\n")
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(eventually(Duration::from_secs(5), || up
        .get("/admin", None)
        .status()
        == 403));
    // The node reports in; its events are stored and queryable.
    assert!(eventually(Duration::from_secs(10), || {
        let nodes: serde_json::Value = c
            .get(format!("{}/api/v1/nodes", up.api))
            .bearer_auth(&up.token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        nodes
            .as_array()
            .is_some_and(|n| n.len() == 1 && n[0]["policy_version"] == 1)
    }));
    assert!(eventually(Duration::from_secs(10), || {
        let ev: serde_json::Value = c
            .get(format!("{}/api/v1/events?rule=a", up.api))
            .bearer_auth(&up.token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        ev.as_array().is_some_and(|l| !l.is_empty())
    }));

    // A decision, then a restart of `up` on the same data dir: both survive.
    let r = c
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(r#"{"scope":"ip","value":"127.0.0.1","duration":"10m"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    // A banned socket peer is dropped at accept ([connections] ban_at_accept).
    assert!(up.refused_at_accept());
    std::thread::sleep(Duration::from_millis(500)); // the persister writes every 200 ms
    let mut up = up;
    up.restart_banned();
    assert!(
        up.refused_at_accept(),
        "decision lost across a restart:\n{}",
        up.log()
    );
    // The edge got the persisted table numbered as the fresh in-process mesh
    // numbered its replay: a decision written after the restart is applied on
    // top of it, and nothing was rebuilt from the log (a resync happens before
    // the edge follows the log, so the applied write proves it did not).
    let r = c
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(r#"{"scope":"ip","value":"192.0.2.77","duration":"10m"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let m = up.metrics();
    let line = |name: &str| {
        m.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in the metrics:\n{m}"))
            .to_string()
    };
    assert_eq!(
        line("palisade_decisions_active "),
        "palisade_decisions_active 2"
    );
    assert_eq!(
        line("palisade_decision_resyncs_total "),
        "palisade_decision_resyncs_total 0",
        "{}",
        up.log()
    );
    let pv: serde_json::Value = c
        .get(format!("{}/api/v1/policy", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        pv["source"]
            .as_str()
            .is_some_and(|s| s.contains("id = \"a\"")),
        "policy lost across a restart: {pv}"
    );
    // Restart once more: the archived history comes back as it was (one version).
    up.restart_banned();
    let versions: serde_json::Value = c
        .get(format!("{}/api/v1/policy/versions", up.api))
        .bearer_auth(&up.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        versions.as_array().map(Vec::len),
        Some(1),
        "policy history not kept across restarts: {versions}"
    );

    // With --policy, the file rules: policy writes through the API are refused.
    let (_origin2, url2) = demo_origin();
    let up2 = Up::start(&[url2], Some(POLICY), &[]);
    let r = c
        .put(format!("{}/api/v1/policy", up2.api))
        .bearer_auth(&up2.token)
        .body("")
        .send()
        .unwrap();
    assert_eq!(r.status(), 501);
}

/// `palisade up` runs the exchange of global rate limits over its in-process
/// mesh: one edge, so a global limit admits exactly the limit there.
#[test]
fn a_global_rate_limit_in_up_admits_the_limit() {
    const GLOBAL: &str = r#"
[[rate_limits]]
id = "fleet"
expression = 'http.request.uri.path eq "/fleet"'
requests = 20
period = "1h"
scope = "global"
"#;
    let (_origin, url) = demo_origin();
    let up = Up::start(&[url], Some(GLOBAL), &["--trusted-proxy", "127.0.0.1/32"]);
    assert!(
        eventually(Duration::from_secs(10), || up
            .metrics()
            .contains("\npalisade_ratelimit_global_nodes 1\n")),
        "the exchange does not run:\n{}",
        up.metrics()
    );
    let admitted = (0..60)
        .filter(|_| up.get("/fleet", Some("198.51.100.7")).status() == 200)
        .count();
    assert_eq!(admitted, 20);
    assert_eq!(up.get("/fleet", Some("198.51.100.8")).status(), 200);
    // The gauges are refreshed every round.
    assert!(
        eventually(Duration::from_secs(10), || up
            .metrics()
            .contains("\npalisade_ratelimit_global_keys 2\n")),
        "{}",
        up.metrics()
    );
    assert!(up
        .metrics()
        .contains("\npalisade_ratelimit_partitioned_total 0\n"));
}
