//! Connection-level defence (`[connections]`), against the real binary:
//! slowloris, slow POST, the idle timeout, requests per connection, the
//! per-IP connection cap, bans at accept (and open connections closed when
//! a ban arrives) and HTTP/2 rapid reset past the policy's own limit. Every
//! test reads the drop reason from `palisade_connections_dropped_total`.
//!
//! Deadlines in these policies are short (1 s) so the tests run quickly;
//! what they assert is what the server did (closed the connection, and why),
//! never how long it took.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The value of `palisade_connections_dropped_total{reason}`.
fn dropped(up: &Up, reason: &str) -> u64 {
    metric(
        up,
        &format!("palisade_connections_dropped_total{{reason=\"{reason}\"}}"),
    )
}

fn metric(up: &Up, series: &str) -> u64 {
    up.metrics()
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .map(|v| v.trim().parse::<f64>().unwrap_or(0.0))
        })
        .unwrap_or(0.0) as u64
}

fn connect(up: &Up) -> TcpStream {
    let addr = up.proxy.trim_start_matches("http://");
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Whether the server has closed `s`: a read returns end of file or a
/// reset (not a timeout) before any byte beyond `budget` arrives.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body).
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// Waits until the edge has no client connection open (the readiness
/// checks' connections are gone), so counts start from zero.
fn quiet(up: &Up) {
    assert!(
        eventually(Duration::from_secs(20), || metric(
            up,
            "palisade_connections_open"
        ) == 0),
        "connections still open"
    );
}

#[test]
fn slowloris_is_closed_at_the_header_deadline() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nheader_timeout = \"1s\"\n"),
        &[],
    );
    quiet(&up);
    let mut s = connect(&up);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let start = Instant::now();
    // One header line every 200 ms, for up to 20 s: far past the deadline
    // (Pingora's own read timeout applies per read, and each read is quick).
    let mut closed = false;
    for i in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .is_err()
        {
            closed = true;
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        let r = s.read(&mut b);
        s.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() != ErrorKind::WouldBlock) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a header trickled for 20 s was not cut off");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "closed before the deadline"
    );
    assert_eq!(dropped(&up, "header_timeout"), 1);
    let events = up.events();
    assert!(
        events
            .iter()
            .any(|e| e["check"] == "connection" && e["rule_id"] == "header_timeout"),
        "no connection event: {events:?}"
    );
    // A request that sends its header at once is served.
    let mut s = connect(&up);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_silent_connection_is_closed_at_the_header_deadline() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nheader_timeout = \"1s\"\n"),
        &[],
    );
    quiet(&up);
    let mut s = connect(&up);
    assert!(closed_by_server(&mut s), "a silent connection stayed open");
    // The socket closes as the deadline's future is dropped, just before
    // the drop is counted: the count may trail the close by a moment.
    eventually(Duration::from_secs(2), || {
        dropped(&up, "header_timeout") >= 1
    });
    assert_eq!(dropped(&up, "header_timeout"), 1);
}

#[test]
fn slow_post_is_closed_below_the_minimum_body_rate() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nbody_timeout = \"1s\"\nbody_min_rate = 1000\n"),
        &[],
    );
    quiet(&up);
    // A body at full speed is served.
    let body = vec![b'a'; 100_000];
    let mut s = connect(&up);
    s.write_all(
        format!(
            "POST /post HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let r = read_response(&mut s);
    assert!(!r.is_empty());
    assert_eq!(dropped(&up, "body_rate"), 0);

    // 10 bytes every 200 ms (50 B/s, under 1000 B/s) of a 100,000-byte body.
    let mut s = connect(&up);
    s.write_all(
        b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n",
    )
    .unwrap();
    let mut closed = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(&[b'a'; 10]).is_err() {
            closed = true;
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 4096];
        let r = s.read(&mut b);
        s.set_nonblocking(false).unwrap();
        match r {
            Ok(0) => {
                closed = true;
                break;
            }
            // An answer before the body is complete: the connection ends after it.
            Ok(_) => {
                closed = closed_by_server(&mut s);
                break;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a body trickled at 50 B/s for 20 s was not cut off");
    assert_eq!(dropped(&up, "body_rate"), 1);
}

#[test]
fn idle_keepalive_and_requests_per_connection() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nidle_timeout = \"1s\"\nmax_requests = 3\n"),
        &[],
    );
    quiet(&up);
    // Three requests on one connection: the third is answered with
    // `Connection: close` and the connection ends.
    let mut s = connect(&up);
    for i in 1..=3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = read_response(&mut s);
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        let close = r.to_ascii_lowercase().contains("connection: close");
        assert_eq!(close, i == 3, "request {i}: {r}");
    }
    assert!(closed_by_server(&mut s));
    assert_eq!(dropped(&up, "max_requests"), 1);
    assert_eq!(dropped(&up, "idle_timeout"), 0);

    // A kept-alive connection with no next request is closed.
    let mut s = connect(&up);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    assert!(closed_by_server(&mut s), "an idle connection stayed open");
    assert_eq!(dropped(&up, "idle_timeout"), 1);
}

#[test]
fn the_per_ip_connection_cap() {
    let (_o, url) = demo_origin();
    let up = Up::start(&[url], Some("[connections]\nmax_per_ip = 3\n"), &[]);
    quiet(&up);
    let mut open: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect(&up);
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    assert_eq!(metric(&up, "palisade_connections_open"), 3);
    // The fourth is refused: closed without an answer.
    let mut s = connect(&up);
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed_by_server(&mut s), "a fourth connection was served");
    assert_eq!(dropped(&up, "per_ip_cap"), 1);
    // Still served on the three it holds.
    for s in open.iter_mut() {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(read_response(s).starts_with("HTTP/1.1 200"));
    }
    // One closed, one more is allowed.
    drop(open.pop());
    assert!(eventually(Duration::from_secs(10), || metric(
        &up,
        "palisade_connections_open"
    ) == 2));
    let mut s = connect(&up);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    assert_eq!(dropped(&up, "per_ip_cap"), 1);
}

#[test]
fn a_ban_closes_open_connections_and_refuses_new_ones_at_accept() {
    let (_o, url) = demo_origin();
    let up = Up::start(&[url], None, &[]);
    quiet(&up);
    let mut kept = connect(&up);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut kept).starts_with("HTTP/1.1 200"));
    let mut other = connect(&up);
    other
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut other).starts_with("HTTP/1.1 200"));

    let r = client()
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(r#"{"scope":"cidr","value":"127.0.0.0/8","action":"ban","duration":"10m","reason":"test"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    // The open connections are closed without any request from them.
    assert!(
        closed_by_server(&mut kept),
        "an open connection outlived the ban"
    );
    assert!(
        closed_by_server(&mut other),
        "an open connection outlived the ban"
    );
    assert_eq!(dropped(&up, "ban_closed"), 2);

    // A new connection is dropped at accept: no answer, not even a 403,
    // and the request never reaches the pipeline.
    let mut s = connect(&up);
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "answered: {}",
        String::from_utf8_lossy(&got)
    );
    assert!(dropped(&up, "banned") >= 1);
    assert_eq!(
        metric(&up, "palisade_verdicts_total{check=\"decision\",id=\"decision\",verdict=\"block\",simulate=\"false\"}"),
        0
    );
}

#[test]
fn a_trusted_proxy_is_not_banned_at_accept() {
    let (_o, url) = demo_origin();
    let up = Up::start(&[url], None, &["--trusted-proxy", "127.0.0.1/32"]);
    let r = client()
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(
            r#"{"scope":"ip","value":"127.0.0.1","action":"ban","duration":"10m","reason":"test"}"#,
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    // The proxy's connection is accepted; the ban applies after parsing
    // to the client it names (here the proxy's own address, as before).
    assert_eq!(up.get("/", Some("203.0.113.7")).status(), 200);
    assert_eq!(up.get("/", None).status(), 403);
    assert_eq!(dropped(&up, "banned"), 0);
}

// --- HTTP/2, by hand: the frames of a rapid reset. ---

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = payload.len();
    let mut f = vec![(l >> 16) as u8, (l >> 8) as u8, l as u8, ty, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HEADERS (END_STREAM | END_HEADERS) of `GET http://x/` then RST_STREAM (CANCEL).
fn open_and_reset(stream: u32) -> Vec<u8> {
    // HPACK: :method GET, :scheme http, :path /, :authority "x" (literal, indexed name).
    let block = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
    let mut b = frame(0x1, 0x5, stream, &block);
    b.extend(frame(0x3, 0, stream, &8u32.to_be_bytes()));
    b
}

/// Reads frames until one satisfies `f`; None when the connection ends first.
fn read_frames_until(s: &mut TcpStream, mut f: impl FnMut(u8, u8, &[u8]) -> bool) -> Option<()> {
    loop {
        let mut h = [0u8; 9];
        s.read_exact(&mut h).ok()?;
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).ok()?;
        if f(h[3], h[4], &p) {
            return Some(());
        }
    }
}

#[test]
fn h2_rapid_reset_past_the_policys_limit_closes_the_connection() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nh2_max_resets = 5\nh2_reset_window = \"1h\"\nh2_max_streams = 7\n"),
        &[],
    );
    quiet(&up);
    let mut s = connect(&up);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    s.write_all(&hello).unwrap();
    // The server's SETTINGS advertise the policy's concurrent streams.
    let mut max_streams = None;
    read_frames_until(&mut s, |ty, flags, p| {
        if ty == 0x4 && flags & 1 == 0 {
            for kv in p.chunks(6) {
                if kv.len() == 6 && u16::from_be_bytes([kv[0], kv[1]]) == 0x3 {
                    max_streams = Some(u32::from_be_bytes([kv[2], kv[3], kv[4], kv[5]]));
                }
            }
            return true;
        }
        false
    })
    .expect("no SETTINGS");
    assert_eq!(max_streams, Some(7));
    s.write_all(&frame(0x4, 0x1, 0, &[])).unwrap(); // SETTINGS ACK

    // Five streams opened and reset: at the limit, the connection lives.
    let mut burst = Vec::new();
    for i in 0..5u32 {
        burst.extend(open_and_reset(2 * i + 1));
    }
    burst.extend(frame(0x6, 0, 0, b"pingpong"));
    s.write_all(&burst).unwrap();
    read_frames_until(&mut s, |ty, flags, p| {
        ty == 0x6 && flags & 1 == 1 && p == b"pingpong"
    })
    .expect("closed at the limit");
    assert_eq!(dropped(&up, "h2_resets"), 0);

    // One more reset: the connection is closed.
    let _ = s.write_all(&open_and_reset(11));
    let _ = s.write_all(&frame(0x6, 0, 0, b"pongping"));
    let answered = read_frames_until(&mut s, |ty, flags, p| {
        ty == 0x6 && flags & 1 == 1 && p == b"pongping"
    });
    assert!(
        answered.is_none(),
        "the connection lived past the reset limit"
    );
    assert_eq!(dropped(&up, "h2_resets"), 1);
}

#[test]
fn h2_streams_past_the_policys_limit_are_refused_then_the_connection_ends() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nh2_max_streams = 2\nh2_max_resets = 3\n"),
        &[],
    );
    quiet(&up);
    let mut s = connect(&up);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    hello.extend(frame(0x4, 0x1, 0, &[]));
    s.write_all(&hello).unwrap();
    // Streams that stay open (END_HEADERS, no END_STREAM): two are allowed,
    // the next three are refused, and one more refusal ends the connection.
    let block = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
    let mut burst = Vec::new();
    for id in [1u32, 3, 5, 7, 9, 11] {
        burst.extend(frame(0x1, 0x4, id, &block));
    }
    s.write_all(&burst).unwrap();
    let mut refused = Vec::new();
    let mut goaway = None;
    read_frames_until(&mut s, |ty, _flags, p| {
        if ty == 0x3 && p.len() == 4 && u32::from_be_bytes([p[0], p[1], p[2], p[3]]) == 0x7 {
            refused.push(());
        }
        if ty == 0x7 && p.len() >= 8 {
            goaway = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
            return true;
        }
        false
    })
    .expect("the connection ended without GOAWAY");
    assert_eq!(refused.len(), 3, "streams refused past h2_max_streams");
    assert_eq!(goaway, Some(0xb), "GOAWAY ENHANCE_YOUR_CALM");
    assert!(closed_by_server(&mut s));
    assert_eq!(dropped(&up, "h2_limits"), 1);
}

#[test]
fn a_banned_address_is_refused_before_the_tls_handshake() {
    let (_o, url) = demo_origin();
    let dir = TempDir::new("conn-tls");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.write("cert.pem", &ck.cert.pem());
    let key = dir.write("key.pem", &ck.key_pair.serialize_pem());
    let port = free_port();
    let up = Up::start(
        &[url],
        None,
        &[
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
    let https = format!("https://127.0.0.1:{port}/");
    assert_eq!(tls.get(&https).send().unwrap().status(), 200);
    let r = client()
        .post(format!("{}/api/v1/decisions", up.api))
        .bearer_auth(&up.token)
        .header("content-type", "application/json")
        .body(
            r#"{"scope":"ip","value":"127.0.0.1","action":"ban","duration":"10m","reason":"test"}"#,
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let banned = dropped(&up, "banned");
    let ban_closed = dropped(&up, "ban_closed");
    assert!(
        tls.get(&https).send().is_err(),
        "a banned client was served over TLS"
    );
    // Refused by the accept-time filter (`banned`), not after a handshake
    // (the guard behind TLS would count `ban_closed`).
    assert_eq!(dropped(&up, "banned"), banned + 1);
    assert_eq!(dropped(&up, "ban_closed"), ban_closed);
}

/// The SETTINGS_MAX_CONCURRENT_STREAMS a new h2c connection is offered.
fn advertised_max_streams(up: &Up) -> Option<u32> {
    let mut s = connect(up);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    s.write_all(&hello).unwrap();
    let mut max = None;
    read_frames_until(&mut s, |ty, flags, p| {
        if ty == 0x4 && flags & 1 == 0 {
            for kv in p.chunks(6) {
                if kv.len() == 6 && u16::from_be_bytes([kv[0], kv[1]]) == 0x3 {
                    max = Some(u32::from_be_bytes([kv[2], kv[3], kv[4], kv[5]]));
                }
            }
            return true;
        }
        false
    })?;
    max
}

#[test]
fn a_reloaded_policy_applies_to_new_connections() {
    let (_o, url) = demo_origin();
    let up = Up::start(&[url], Some("[connections]\nh2_max_streams = 7\n"), &[]);
    assert_eq!(advertised_max_streams(&up), Some(7));
    let reloads = metric(&up, "palisade_policy_reloads_total{result=\"ok\"}");
    up.dir.write(
        "policy.toml",
        "[connections]\nh2_max_streams = 9\nmax_per_ip = 1\n",
    );
    assert!(
        eventually(Duration::from_secs(20), || metric(
            &up,
            "palisade_policy_reloads_total{result=\"ok\"}"
        ) > reloads),
        "the policy was not reloaded:\n{}",
        up.log()
    );
    quiet(&up);
    assert_eq!(advertised_max_streams(&up), Some(9));
    // And the new cap: one connection held, a second refused.
    quiet(&up);
    let mut a = connect(&up);
    a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_response(&mut a).starts_with("HTTP/1.1 200"));
    let mut b = connect(&up);
    let _ = b.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed_by_server(&mut b));
    assert_eq!(dropped(&up, "per_ip_cap"), 1);
}

#[test]
fn an_idle_h2_connection_is_closed_at_the_policys_idle_timeout() {
    let (_o, url) = demo_origin();
    let up = Up::start(&[url], Some("[connections]\nidle_timeout = \"1s\"\n"), &[]);
    quiet(&up);
    let mut s = connect(&up);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    hello.extend(frame(0x4, 0x1, 0, &[]));
    s.write_all(&hello).unwrap();
    // One request, answered; then nothing: Pingora's HTTP/2 idle timeout,
    // set from the policy (60 s by default: past this read's 30 s timeout),
    // closes the connection.
    let block = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
    s.write_all(&frame(0x1, 0x5, 1, &block)).unwrap();
    read_frames_until(&mut s, |ty, flags, _| ty == 0x1 && flags & 0x4 != 0).expect("no response");
    assert!(
        closed_by_server(&mut s),
        "an idle HTTP/2 connection stayed open"
    );
}

/// CPU ticks (user + system) of the edge's quarantine thread.
fn quarantine_ticks(up: &Up) -> u64 {
    quarantine_stat(up).0
}

/// The quarantine thread's CPU ticks and nice value.
fn quarantine_stat(up: &Up) -> (u64, i64) {
    let pid = up.proc.child.id();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == "palisade-quaran" {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
            // Fields after the command name (which ends with ')'): utime and stime are 14 and 15.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime, stime (fields 14, 15) and nice (19).
            return (
                f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap(),
                f[16].parse::<i64>().unwrap(),
            );
        }
    }
    panic!("no quarantine thread in {pid}");
}

/// Sends `n` requests on one kept-alive connection, each answered 200;
/// returns the connection.
fn requests_on_one_connection(up: &Up, n: usize) -> TcpStream {
    let mut s = connect(up);
    for _ in 0..n {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = read_response(&mut s);
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    s
}

#[test]
fn unfamiliar_networks_are_served_on_the_quarantine_thread() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nfamiliar_after = \"10s\"\n"),
        &[],
    );
    // 127.0.0.0/24 was first seen by the readiness check, just now: its
    // connections are quarantined, and served there.
    let started = Instant::now();
    let q0 = metric(&up, "palisade_connections_quarantined_total");
    let t0 = quarantine_ticks(&up);
    // (Fewer than max_requests, 1000: the connection stays open.)
    let mut old = requests_on_one_connection(&up, 500);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "too slow to test before familiarity"
    );
    assert!(metric(&up, "palisade_connections_quarantined_total") > q0);
    let t1 = quarantine_ticks(&up);
    eprintln!(
        "quarantine thread: {} ticks for 1000 unfamiliar requests",
        t1 - t0
    );
    assert!(
        t1 >= t0 + 5,
        "500 requests cost the quarantine thread {} ticks",
        t1 - t0
    );

    // Familiar ten seconds later: new connections stay on the edge's threads.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    std::thread::sleep(Duration::from_millis(200));
    // The quarantined connection is closed after its next response: the
    // client reconnects, onto the edge's threads.
    old.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = read_response(&mut old);
    assert!(
        r.starts_with("HTTP/1.1 200") && r.to_ascii_lowercase().contains("connection: close"),
        "{r}"
    );
    assert!(closed_by_server(&mut old));
    assert_eq!(metric(&up, "palisade_connections_promoted_total"), 1);
    let q1 = metric(&up, "palisade_connections_quarantined_total");
    requests_on_one_connection(&up, 500);
    assert_eq!(metric(&up, "palisade_connections_quarantined_total"), q1);
    let t2 = quarantine_ticks(&up);
    eprintln!(
        "quarantine thread: {} ticks for 1000 familiar requests",
        t2 - t1
    );
    assert!(
        t2 <= t1 + 2,
        "familiar requests cost the quarantine thread {} ticks",
        t2 - t1
    );
    assert_eq!(metric(&up, "palisade_connections_familiar_networks"), 1);
    // It yields the CPU to the edge's threads under contention.
    assert_eq!(quarantine_stat(&up).1, 5, "nice value");
}

#[test]
fn quarantine_off_and_trusted_proxies_serve_everything_on_the_edge_threads() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        std::slice::from_ref(&url),
        Some("[connections]\nquarantine = false\n"),
        &[],
    );
    requests_on_one_connection(&up, 10);
    assert_eq!(metric(&up, "palisade_connections_quarantined_total"), 0);
    let up = Up::start(&[url], None, &["--trusted-proxy", "127.0.0.1/32"]);
    requests_on_one_connection(&up, 10);
    assert_eq!(metric(&up, "palisade_connections_quarantined_total"), 0);
}

/// An HTTP/2 (h2c) connection past its preface and SETTINGS exchange.
fn h2_connect(up: &Up) -> TcpStream {
    let mut s = connect(up);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    s.write_all(&hello).unwrap();
    read_frames_until(&mut s, |ty, flags, _| ty == 0x4 && flags & 1 == 0).expect("no SETTINGS");
    s.write_all(&frame(0x4, 0x1, 0, &[])).unwrap(); // SETTINGS ACK
    s
}

/// HPACK: :method POST, :scheme http, :path /, :authority "x".
const POST_BLOCK: [u8; 6] = [0x83, 0x86, 0x84, 0x01, 0x01, b'x'];

#[test]
fn h2_slow_body_is_closed_below_the_minimum_rate_and_a_steady_one_is_served() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nbody_timeout = \"1s\"\nbody_min_rate = 500\n"),
        &[],
    );
    quiet(&up);
    // A body that comes at 600 B/s (deadline 1 s + 1.2 s per 600 B): served.
    let mut s = h2_connect(&up);
    s.write_all(&frame(0x1, 0x4, 1, &POST_BLOCK)).unwrap(); // HEADERS, END_HEADERS
    for i in 0..3 {
        s.write_all(&frame(0x0, 0, 1, &[b'a'; 600])).unwrap();
        std::thread::sleep(Duration::from_millis(if i < 2 { 1000 } else { 500 }));
    }
    s.write_all(&frame(0x0, 0x1, 1, b"end")).unwrap(); // DATA, END_STREAM
    read_frames_until(&mut s, |ty, _, _| ty == 0x1).expect("no response to a steady body");
    assert_eq!(dropped(&up, "body_rate"), 0);

    // Ten bytes, then nothing: the connection is closed at the deadline.
    let mut s = h2_connect(&up);
    s.write_all(&frame(0x1, 0x4, 1, &POST_BLOCK)).unwrap();
    s.write_all(&frame(0x0, 0, 1, b"0123456789")).unwrap();
    let started = Instant::now();
    assert!(
        closed_by_server(&mut s),
        "a stalled HTTP/2 body kept its connection"
    );
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(dropped(&up, "body_rate"), 1);
}

#[test]
fn h2_header_that_never_ends_is_closed_at_the_header_deadline() {
    let (_o, url) = demo_origin();
    let up = Up::start(
        &[url],
        Some("[connections]\nheader_timeout = \"1s\"\n"),
        &[],
    );
    quiet(&up);
    let mut s = h2_connect(&up);
    // HEADERS without END_HEADERS: CONTINUATION frames should follow; none does.
    s.write_all(&frame(0x1, 0x1, 1, &POST_BLOCK[..3])).unwrap();
    assert!(
        closed_by_server(&mut s),
        "an unfinished HTTP/2 header kept its connection"
    );
    assert_eq!(dropped(&up, "header_timeout"), 1);
}
