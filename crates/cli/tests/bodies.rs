//! Request bodies under load and over their limits, against the real binary
//! with OWASP CRS: many large uploads at once are all held back and
//! inspected while the process stays within the body buffer cap; a body over
//! the WAF's limit is refused with 413 (`reject`) or inspected by its prefix
//! (`inspect_prefix`).
//!
//! Every request goes to loopback; the load loop is bounded in count (200
//! uploads) and time (each client gives up after 5 minutes).

mod common;
#[path = "bypass/echo.rs"]
mod echo;

use common::*;
use echo::Echo;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

fn waf_policy(extra: &str) -> String {
    let crs = crs_dir();
    format!(
        "[waf]\ncrs_dir = {:?}\nskip_unsupported_rules = {}\n{extra}\n",
        crs.display().to_string(),
        !crs_is_v4(&crs)
    )
}

/// Resident set size of a process, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A multipart upload of one file of `size` bytes.
fn upload_head(size: usize, boundary: &str) -> (String, String, String) {
    let pre = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let post = format!("\r\n--{boundary}--\r\n");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        pre.len() + size + post.len()
    );
    (head, pre, post)
}

/// Sends one upload and returns the response status (0: no answer).
fn upload(addr: &str, size: usize) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(300)));
    let (head, pre, post) = upload_head(size, "b0undary");
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    let ok = s.write_all(head.as_bytes()).is_ok()
        && s.write_all(pre.as_bytes()).is_ok()
        && {
            let mut ok = true;
            while sent < size && ok {
                let n = chunk.len().min(size - sent);
                ok = s.write_all(&chunk[..n]).is_ok();
                sent += n;
            }
            ok
        }
        && s.write_all(post.as_bytes()).is_ok();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    if !ok && resp.is_empty() {
        return 0;
    }
    String::from_utf8_lossy(&resp)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn metric(m: &str, name: &str) -> f64 {
    m.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn many_large_uploads_are_all_inspected_within_the_buffer_cap() {
    const UPLOADS: usize = 200;
    const SIZE: usize = 10_000_000;
    const CAP: usize = 64 * MIB;
    let echo = Echo::start();
    let policy = waf_policy(&format!("max_body_bytes = {}", 16 * MIB));
    let up = Up::start(
        std::slice::from_ref(&echo.url),
        Some(&policy),
        &[
            "--max-body-bytes",
            "0",
            "--body-buffer-bytes",
            &CAP.to_string(),
            "--body-buffer-wait-ms",
            "300000",
        ],
    );
    let addr = up.proxy.trim_start_matches("http://").to_string();
    let pid = up.proc.child.id();
    // Warm up (threads, allocator, connection pool), then take the idle RSS.
    for _ in 0..4 {
        assert_eq!(upload(&addr, 100_000), 200);
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(idle));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let t0 = Instant::now();
    let clients: Vec<_> = (0..UPLOADS)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || upload(&addr, SIZE))
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let elapsed = t0.elapsed();
    let peak = peak.load(Ordering::Relaxed);

    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let m = up.metrics();
    eprintln!(
        "{UPLOADS} uploads of {SIZE} bytes in {elapsed:?}: {ok} passed; RSS idle {} MiB, peak {} MiB (cap {} MiB); {} waited for room",
        idle / MIB as u64,
        peak / MIB as u64,
        CAP / MIB,
        metric(&m, "palisade_body_buffer_waits_total"),
    );
    assert_eq!(ok, UPLOADS, "statuses: {statuses:?}\n{}", up.log());
    // Every body reached the origin whole, after the WAF passed it.
    let (_, pre, post) = upload_head(SIZE, "b0undary");
    let note = format!("<{} bytes>", pre.len() + SIZE + post.len());
    let whole = echo
        .seen()
        .iter()
        .filter(|s| s.target == "/upload" && s.body.ends_with(&note))
        .count();
    assert_eq!(whole, UPLOADS, "bodies that reached the origin whole");
    assert!(
        metric(&m, "palisade_waf_requests_total{result=\"pass\"}") >= (UPLOADS + 4) as f64,
        "{m}"
    );
    assert_eq!(
        metric(&m, "palisade_waf_body_uninspected_total"),
        0.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "palisade_bad_requests_total{reason=\"body_buffer_full\"}"
        ),
        0.0
    );
    assert!(
        peak <= idle + CAP as u64,
        "peak RSS {peak} over the idle RSS {idle} plus the cap {CAP}"
    );
}

#[test]
fn a_body_over_the_limit_is_refused_or_inspected_by_its_prefix() {
    let echo = Echo::start();
    let up = Up::start(
        std::slice::from_ref(&echo.url),
        Some(&waf_policy("max_body_bytes = 1048576")),
        &["--max-body-bytes", "0"],
    );
    let addr = up.proxy.trim_start_matches("http://").to_string();
    // Declared too large: 413 before anything reaches the upstream.
    assert_eq!(upload(&addr, 2 * MIB), 413);
    // Chunked, growing past the limit: 413, the upstream request aborted.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..40 {
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(
        echo.seen().iter().all(|s| s.target != "/upload"),
        "{:?}",
        echo.seen()
    );
    // Under the limit: passes.
    assert_eq!(upload(&addr, MIB / 2), 200);
    let m = up.metrics();
    assert!(
        metric(&m, "palisade_bad_requests_total{reason=\"body_too_large\"}") >= 2.0,
        "{m}"
    );

    // inspect_prefix: the first MiB is inspected, the rest streams through.
    let echo2 = Echo::start();
    let up2 = Up::start(
        std::slice::from_ref(&echo2.url),
        Some(&waf_policy(
            "max_body_bytes = 1048576\nbody_limit_action = \"inspect_prefix\"",
        )),
        &["--max-body-bytes", "0"],
    );
    let addr2 = up2.proxy.trim_start_matches("http://").to_string();
    assert_eq!(upload(&addr2, 3 * MIB), 200);
    let m = up2.metrics();
    assert_eq!(
        metric(&m, "palisade_waf_body_uninspected_total{reason=\"prefix\"}"),
        1.0,
        "{m}"
    );
}
