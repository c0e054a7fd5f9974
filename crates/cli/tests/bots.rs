//! The bot defence across a fleet (real NATS JetStream, a control plane and
//! edges): the challenge and its clearance (minted on one edge, accepted on
//! another, refused when forged, expired or re-bound, kept across a key
//! rotation), a real browser through it, behaviour learned on one edge
//! scoring a client on another, and failed logins counted fleet-wide with
//! usernames never in clear.

mod common;

use common::*;
use palisade_bots::clearance::{solve, KeyRing, Keys, Kind, Token};
use palisade_mesh::nats::{NatsMesh, NatsOptions};
use palisade_mesh::Mesh;
use std::time::Duration;

const CHROME_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

fn put_policy(c: &Control, policy: &str) {
    let r = client()
        .put(format!("{}/api/v1/policy", c.api))
        .bearer_auth(&c.token)
        .body(policy.to_string())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
}

/// A GET as a page (Accept: text/html) from `ip` (through the trusted proxy).
fn page(edge: &Edge, ip: &str, ua: &str, cookie: Option<&str>) -> (u16, String) {
    let mut r = client()
        .get(format!("{}/", edge.proxy))
        .header("x-forwarded-for", ip)
        .header("user-agent", ua)
        .header("accept", "text/html");
    if let Some(c) = cookie {
        r = r.header("cookie", format!("palisade_clearance={c}"));
    }
    let r = r.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn token_of(page: &str) -> Option<String> {
    let at = page.find("TOKEN = \"")? + "TOKEN = \"".len();
    Some(page[at..].split('"').next()?.to_string())
}

/// Solves the challenge `edge` gives `ip` and posts it; the clearance.
fn clear(edge: &Edge, ip: &str, ua: &str) -> String {
    let (status, body) = page(edge, ip, ua, None);
    assert_eq!(status, 403, "not challenged: {body}");
    let token = token_of(&body).expect("a challenge token in the page");
    let bits = Token::decode_unverified(&token).unwrap().bits;
    let n = solve(&token, bits);
    let r = client()
        .post(format!("{}/.well-known/palisade/challenge", edge.proxy))
        .header("x-forwarded-for", ip)
        .header("user-agent", ua)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&counter={n}"))
        .send()
        .unwrap();
    let status = r.status();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap_or("").to_string());
    assert_eq!(status, 200, "{}\n{}", r.text().unwrap(), edge.log());
    let cookie = cookie.unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("palisade_clearance=")
        .to_string()
}

const CHALLENGE_ALL: &str = r#"
[bots]
[bots.challenge]
bits = 18

[[rules]]
id = "challenge-everyone"
expression = 'http.request.uri.path starts_with "/"'
action = "challenge"
"#;

#[test]
fn a_clearance_from_one_edge_passes_every_edge_and_survives_a_rotation() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("bots-clear");
    let nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    let control = Control::start(dir.path(), "control", &nats.url());
    let a = Edge::start("edge-a", dir.path(), &nats.url(), &origin_url);
    let b = Edge::start("edge-b", dir.path(), &nats.url(), &origin_url);
    put_policy(&control, CHALLENGE_ALL);
    let ip = "203.0.113.7";
    // The policy and the key ring on both edges: a challenge page with a token.
    assert!(
        eventually(Duration::from_secs(30), || [&a, &b]
            .iter()
            .all(|e| token_of(&page(e, ip, "curl/8.5", None).1).is_some())),
        "the policy or the key ring did not reach the edges:\n{}\n{}",
        a.log(),
        b.log()
    );
    // A client that asks for JSON gets JSON, not the page.
    let r = client()
        .get(format!("{}/api/status", a.proxy))
        .header("x-forwarded-for", ip)
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!(j["error"], "challenge_required");

    // Solved on edge A: the origin through A and through B.
    let cookie = clear(&a, ip, "curl/8.5");
    for e in [&a, &b] {
        let (s, body) = page(e, ip, "curl/8.5", Some(&cookie));
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("Palisade demo origin"));
        // Another address of the same /24: the binding's prefix.
        assert_eq!(page(e, "203.0.113.99", "curl/8.5", Some(&cookie)).0, 200);
    }
    // Without solving, curl stays challenged.
    assert_eq!(page(&b, ip, "curl/8.5", None).0, 403);
    // Re-bound: another network, another User-Agent.
    assert_eq!(page(&b, "198.51.100.7", "curl/8.5", Some(&cookie)).0, 403);
    assert_eq!(page(&a, ip, "curl/8.6", Some(&cookie)).0, 403);
    // Forged: one signature byte changed.
    let mut forged = cookie.clone().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(page(&a, ip, "curl/8.5", Some(&forged)).0, 403);
    // Expired: minted with the fleet's own key, an hour ago, for an hour.
    let mesh = rt
        .block_on(NatsMesh::connect(
            &nats.url(),
            NatsOptions {
                node_id: "test".into(),
                ..NatsOptions::default()
            },
        ))
        .unwrap();
    let ring = KeyRing::from_json(&rt.block_on(mesh.keyring()).unwrap().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut t = Token::decode_unverified(&cookie).unwrap();
    t.issued_ms = now - 3_600_000;
    t.expires_ms = now - 1_000;
    let expired = t.sign(&Keys::new(ring.clone()), now).unwrap();
    assert_eq!(page(&a, ip, "curl/8.5", Some(&expired)).0, 403);
    // The same token re-signed unexpired passes: the expiry alone refused it.
    t.expires_ms = now + 600_000;
    let fresh = t.sign(&Keys::new(ring), now).unwrap();
    assert_eq!(page(&a, ip, "curl/8.5", Some(&fresh)).0, 200);

    // A rotation: new challenges are signed by key 2 on every edge, and the
    // clearance minted before it still passes on both.
    let r = client()
        .post(format!("{}/api/v1/keys/rotate", control.api))
        .bearer_auth(&control.token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let signed_by = |e: &Edge| {
        let (_, body) = page(e, "192.0.2.1", "curl/8.5", None);
        token_of(&body).map(|t| Token::decode_unverified(&t).unwrap().key_id)
    };
    assert!(
        eventually(Duration::from_secs(20), || signed_by(&a) == Some(2)
            && signed_by(&b) == Some(2)),
        "the rotation did not reach the edges: {:?} {:?}\n{}\n{}",
        signed_by(&a),
        signed_by(&b),
        a.log(),
        b.log()
    );
    for e in [&a, &b] {
        assert_eq!(page(e, ip, "curl/8.5", Some(&cookie)).0, 200);
    }
    assert_eq!(
        Token::decode_unverified(&cookie).unwrap().kind,
        Kind::Clearance
    );
    let keys: serde_json::Value = client()
        .get(format!("{}/api/v1/keys", control.api))
        .bearer_auth(&control.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    assert!(!keys.to_string().contains("seed"), "no secret in the API");
}

#[test]
fn a_real_browser_solves_the_challenge_on_one_edge_and_passes_another() {
    let dir = TempDir::new("bots-browser");
    let nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    let control = Control::start(dir.path(), "control", &nats.url());
    let a = Edge::start("edge-a", dir.path(), &nats.url(), &origin_url);
    let b = Edge::start("edge-b", dir.path(), &nats.url(), &origin_url);
    put_policy(&control, CHALLENGE_ALL);
    // The policy and the key ring on both edges: a challenge page with a token.
    assert!(
        eventually(Duration::from_secs(30), || [&a, &b].iter().all(|e| {
            client()
                .get(format!("{}/", e.proxy))
                .header("accept", "text/html")
                .send()
                .is_ok_and(|r| {
                    r.status() == 403 && token_of(&r.text().unwrap_or_default()).is_some()
                })
        })),
        "the policy or the key ring did not reach the edges"
    );
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("challenge-page.png");
    let _ = std::fs::remove_file(&shot);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/challenge.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(["--edge-a", &a.proxy, "--edge-b", &b.proxy, "--screenshot"])
        .arg(&shot)
        .output()
        .expect("python3 runs (scripts/setup-test-deps.sh installs selenium and chromium)");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}\nedge A log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        a.log()
    );
    let seen: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(seen["edge_b"], "origin", "{seen}");
    assert_eq!(seen["cookie_http_only"], true);
    let png = std::fs::read(&shot).expect("the screenshot was kept");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000);
    eprintln!("browser: {seen}; screenshot {}", shot.display());
}

#[test]
fn behaviour_seen_on_one_edge_scores_the_client_on_another() {
    let dir = TempDir::new("bots-fleet");
    let nats = Nats::start(&dir.path().join("nats"));
    let (_origin, origin_url) = demo_origin();
    let control = Control::start(dir.path(), "control", &nats.url());
    let a = Edge::start("edge-a", dir.path(), &nats.url(), &origin_url);
    let b = Edge::start("edge-b", dir.path(), &nats.url(), &origin_url);
    put_policy(
        &control,
        r#"
[bots]
[[rules]]
id = "challenge-automated"
expression = 'palisade.bot.score lt 30'
action = "challenge"
"#,
    );
    // A browser-like client: its headers pass as a browser's.
    let browser = |e: &Edge, ip: &str, path: &str| {
        client()
            .get(format!("{}{path}", e.proxy))
            .header("x-forwarded-for", ip)
            .header("user-agent", CHROME_UA)
            .header("accept", "text/html,application/xhtml+xml")
            .header("accept-language", "en-US,en;q=0.9")
            .header("accept-encoding", "gzip, deflate")
            .header("sec-fetch-dest", "document")
            .header("sec-fetch-mode", "navigate")
            .header("sec-ch-ua", "\"Chromium\";v=\"156\"")
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert!(
        eventually(Duration::from_secs(20), || page(
            &a,
            "192.0.2.9",
            "curl/8",
            None
        )
        .0 == 403),
        "the policy did not reach edge A"
    );
    let scraper = "203.0.113.77";
    // Edge B lets such a client through when it knows nothing of it (the
    // scraper itself is not sent there first: its own requests to B would
    // be evidence of B's).
    assert_eq!(browser(&b, "198.51.100.29", "/page/0"), 200);
    // On edge A only: a page every 100 ms, never an asset, no cookie.
    let mut challenged_on_a = false;
    for i in 1..=30 {
        challenged_on_a |= browser(&a, scraper, &format!("/page/{i}")) == 403;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        challenged_on_a,
        "edge A never scored the scraper as automated"
    );
    // Edge B learns it from A's share (every second): the first request it
    // sees from the client after that is challenged.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        browser(&b, scraper, "/page/31"),
        403,
        "edge B did not take edge A's evidence into account"
    );
    // A client edge A never saw still passes on B.
    assert_eq!(browser(&b, "198.51.100.30", "/"), 200);
    let m = client()
        .get(format!("{}/metrics", b.metrics))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(m.contains("palisade_bot_peers 1"), "{m}");
}

#[test]
fn logins_are_counted_across_the_fleet_and_usernames_never_travel_in_clear() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("bots-logins");
    let nats = Nats::start(&dir.path().join("nats"));
    // Everything published on the bus, to look for usernames in clear.
    let seen: std::sync::Arc<parking_lot_free::Bytes> = Default::default();
    let tap = {
        let seen = seen.clone();
        let url = nats.url();
        rt.spawn(async move {
            let c = async_nats::connect(url).await.unwrap();
            let mut sub = c.subscribe(">").await.unwrap();
            use futures_util::StreamExt;
            while let Some(m) = sub.next().await {
                seen.push(&m.payload);
            }
        })
    };
    let (_origin, origin_url) = demo_origin();
    let control = Control::start(dir.path(), "control", &nats.url());
    let edges: Vec<Edge> = ["edge-a", "edge-b", "edge-c"]
        .iter()
        .map(|n| Edge::start(n, dir.path(), &nats.url(), &origin_url))
        .collect();
    put_policy(
        &control,
        r#"
[bots]
score = false

[[bots.logins]]
path = "/login"
username_field = "user"
stuffing = { usernames = 5, cidr_usernames = 100, window = "10m", action = "ban", duration = "10m" }
guessing = { failures = 6, sources = 3, window = "10m", action = "challenge", duration = "10m" }

[[rules]]
id = "marker"
expression = 'http.request.uri.path eq "/policy-marker"'
action = "block"
"#,
    );
    assert!(
        eventually(Duration::from_secs(20), || edges
            .iter()
            .all(|e| e.status("/policy-marker", "192.0.2.200") == 403)),
        "the policy did not reach the edges"
    );
    let login = |e: &Edge, ip: &str, user: &str| {
        client()
            .post(format!("{}/login", e.proxy))
            .header("x-forwarded-for", ip)
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user={user}&password=wrong"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // Distributed guessing: one username, six sources, two failures per
    // edge. No edge saw six; together they did.
    let victim = "Alice.Victim@example.com";
    for i in 0..6 {
        let e = &edges[i % 3];
        assert_eq!(login(e, &format!("198.51.{i}.10"), victim), 401);
    }
    // Every edge now challenges a login for that username (another source),
    // and still lets another username through to the origin.
    assert!(
        eventually(Duration::from_secs(10), || edges.iter().all(|e| login(
            e,
            "192.0.2.77",
            victim
        ) == 403)),
        "the username was not marked fleet-wide"
    );
    for e in &edges {
        assert_eq!(login(e, "192.0.2.78", "bob.other.user@example.org"), 401);
    }
    // Tricks that must not take the victim's name out of the count: the
    // field twice, a media type that mentions json, a padded body, another
    // case or a trailing slash in the path, JSON.
    let raw = |path: &str, ctype: &str, body: String| {
        client()
            .post(format!("{}{path}", edges[0].proxy))
            .header("x-forwarded-for", "192.0.2.79")
            .header("content-type", ctype)
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let form = "application/x-www-form-urlencoded";
    let enc = victim.replace('@', "%40");
    for (path, ctype, body) in [
        (
            "/login",
            form,
            format!("user=someone-else&user={enc}&password=x"),
        ),
        (
            "/login",
            "application/x-www-form-urlencoded; x=json",
            format!("user={enc}&password=x"),
        ),
        (
            "/login",
            form,
            format!("user={enc}&password=x&pad={}", "p".repeat(70_000)),
        ),
        ("/LOGIN/", form, format!("user={enc}&password=x")),
        (
            "/login",
            "application/json",
            format!("{{\"user\":\"{victim}\",\"password\":\"x\"}}"),
        ),
        ("/login", "text/plain", format!("{{\"user\":\"{victim}\"}}")),
    ] {
        assert_eq!(raw(path, ctype, body), 403, "{path} {ctype}");
    }
    // Credential stuffing: one source, five usernames across the edges: it
    // is banned everywhere.
    let stuffer = "203.0.113.66";
    for i in 0..5 {
        let s = login(
            &edges[i % 3],
            stuffer,
            &format!("stuffing.target.{i}@example.org"),
        );
        assert_eq!(s, 401, "attempt {i}");
    }
    assert!(
        eventually(Duration::from_secs(10), || edges
            .iter()
            .all(|e| e.status("/", stuffer) == 403)),
        "the stuffing source was not banned on every edge"
    );

    // No username in clear: not on the bus, not in events, logs or the store.
    std::thread::sleep(Duration::from_millis(500));
    tap.abort();
    let bus = seen.all();
    assert!(
        bus.len() > 1_000,
        "the tap saw the bus ({} bytes)",
        bus.len()
    );
    for needle in ["alice.victim", "stuffing.target.3", "bob.other.user"] {
        assert!(!contains(&bus, needle.as_bytes()), "`{needle}` on the bus");
    }
    let mut files = Vec::new();
    collect_files(dir.path(), &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for needle in ["alice.victim", "stuffing.target.3", "bob.other.user"] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "`{needle}` in {}",
                f.display()
            );
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            // NATS' own store holds the policy text (which names no user).
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A byte log shared with the bus tap.
mod parking_lot_free {
    #[derive(Default)]
    pub struct Bytes(std::sync::Mutex<Vec<u8>>);

    impl Bytes {
        pub fn push(&self, b: &[u8]) {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
                v.push(b'\n');
            }
        }

        pub fn all(&self) -> Vec<u8> {
            self.0.lock().map(|v| v.clone()).unwrap_or_default()
        }
    }
}

#[test]
fn fingerprints_and_verified_crawlers_are_rule_fields() {
    let (_origin, url) = demo_origin();
    let dir = TempDir::new("bots-prints");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    let ranges = dir.write(
        "googlebot.json",
        r#"{"creationTime":"2026-11-30T00:00:00","prefixes":[{"ipv4Prefix":"66.249.64.0/27"},{"ipv6Prefix":"2001:4860:4801:10::/64"}]}"#,
    );
    let policy = format!(
        r#"
[bots]
score = false

[[bots.crawlers]]
name = "Googlebot"
user_agent = "Googlebot"
ranges = ["{}"]

[[rules]]
id = "tls13-ja4"
expression = 'http.request.uri.path eq "/ja4" and palisade.fingerprint.ja4 starts_with "t13"'
action = "block"

[[rules]]
id = "h2-preface"
expression = 'http.request.uri.path eq "/h2" and palisade.fingerprint.h2 contains "|"'
action = "block"

[[rules]]
id = "h1-headers"
expression = 'http.request.uri.path eq "/h1" and palisade.fingerprint.headers starts_with "h1n"'
action = "block"

[[rules]]
id = "googlebot"
expression = 'http.request.uri.path eq "/crawler" and palisade.bot.verified and palisade.bot.name eq "Googlebot"'
action = "block"
"#,
        ranges.display()
    );
    let port = free_port();
    let up = Up::start(
        &[url],
        Some(&policy),
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--tls-listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let tls = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Over TLS (h2 by ALPN): the ClientHello's JA4 and the h2 preface.
    for path in ["/ja4", "/h2"] {
        let r = tls
            .get(format!("https://127.0.0.1:{port}{path}"))
            .send()
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 403, "{path} over TLS");
    }
    assert_eq!(
        tls.get(format!("https://127.0.0.1:{port}/other"))
            .send()
            .unwrap()
            .status(),
        200
    );
    // Plain HTTP/1: no JA4, no h2 preface; a header fingerprint.
    assert_eq!(up.get("/ja4", None).status(), 200);
    assert_eq!(up.get("/h2", None).status(), 200);
    assert_eq!(up.get("/h1", None).status(), 403);
    // Googlebot from its published range is verified; from elsewhere it is not.
    let crawl = |ip: &str| {
        client()
            .get(format!("{}/crawler", up.proxy))
            .header("x-forwarded-for", ip)
            .header(
                "user-agent",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            )
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(crawl("66.249.64.7"), 403);
    assert_eq!(crawl("192.0.2.66"), 200);
    // A decision by fingerprint: the header fingerprint of a client of our
    // own (raw HTTP/1.1), computed as the edge does; the same request with
    // its headers in another order is another fingerprint.
    let raw = |head: &str| -> u16 {
        use std::io::{Read, Write};
        let addr = up.proxy.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    };
    let head = "GET /fp HTTP/1.1\r\nHost: a.example\r\nX-Tool: probe\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    let other = "GET /fp HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nX-Tool: probe\r\nConnection: close\r\n\r\n";
    let fp = palisade_bots::fingerprint::http1(head.as_bytes()).unwrap();
    assert_eq!(raw(head), 200);
    let r = client()
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"scope":"fingerprint","value":"{}","duration":"1h"}}"#,
            fp.as_str()
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    assert!(
        eventually(Duration::from_secs(10), || raw(head) == 403),
        "the fingerprint decision did not apply"
    );
    assert_eq!(raw(other), 200);

    // A range file that does not load refuses the policy, with the reason.
    std::fs::write(&ranges, "not a range\n").unwrap();
    let bad = policy.replace("score = false", "score = false\n# reload");
    std::fs::write(up.dir.path().join("policy.toml"), bad).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || up.log().contains("line 1")),
        "the bad range file was not reported:\n{}",
        up.log()
    );
    assert_eq!(crawl("66.249.64.7"), 403, "the running policy stays");
}
